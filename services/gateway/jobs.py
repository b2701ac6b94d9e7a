"""Long work the console starts and watches: an estate's household list imported, a long
export written. One mechanism for both, kept in the gateway's own store, so that closing
the page loses nothing and a gateway restart does nothing twice.

A job is a document of ``jobs`` (its kind, estates, who started it, status, the units
done of its total, its counts, what failed, when it expires) and its steps, a document
each in ``job_steps`` (a chunk of households, an estate's workbook), numbered in order.
A job is made ``checked`` (its input read and found right, nothing done yet: the person
looks before starting it) or ``queued``; ``start`` queues a checked one.

Every gateway instance runs ``run_next`` on a timer: it claims one queued or running job
whose lease has lapsed (``shared.leases.claim``: of two instances, one gets it) and works
through its steps not yet done, in order. Each step's outcome is written with the step
marked done and the job's progress counted, in one condition on the claim it holds
(``holder``): an instance that lost its claim writes nothing more. A gateway stopped in
the middle of a job lets its lease lapse; the next claim goes on from the first step not
done. The step that was running then is sent again, with the same key (its
``Idempotency-Key``, ``step_key``): the service answers as the first time if it had done
it, and does it otherwise. A step that fails (a service away) is tried again after
``RETRY_AFTER``, up to ``ATTEMPTS`` times; then the job ends ``failed``, saying which
steps were not done.

    >>> from datetime import UTC, datetime
    >>> from shared.embedded import new_client
    >>> from shared.actor import Actor
    >>> store = JobStore(new_client()["gateway"])
    >>> now = datetime(2026, 12, 1, tzinfo=UTC)
    >>> job = store.create("export", Actor("u-1", ("supervisor",), ("e-1",)), ["e-1"],
    ...                    [{"estate_id": "e-1"}], [1], now, queued=True)
    >>> run_next(store, lambda job, step: Outcome(done=1), now)["status"]
    'done'
    >>> store.get(job["_id"])["done"], store.get(job["_id"])["total"]
    (1, 1)
"""
import uuid
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.database import Database

from shared.actor import Actor
from shared.leases import claim

JOBS, STEPS, FILES = "jobs", "job_steps", "job_files"
CHECKED, QUEUED, RUNNING, DONE, FAILED = "checked", "queued", "running", "done", "failed"
STATUSES = (CHECKED, QUEUED, RUNNING, DONE, FAILED)
FINISHED = (DONE, FAILED)
# How long a claim holds without a step written: longer than any one step takes.
LEASE = timedelta(minutes=2)
RETRY_AFTER = timedelta(seconds=5)
ATTEMPTS = 3
# A checked job nobody started, a finished one and its file: kept this long.
KEPT = timedelta(days=7)
CHECKED_KEPT = timedelta(days=1)
FILE_KEPT = timedelta(days=1)

INDEXES: dict[str, list[IndexModel]] = {
    JOBS: [IndexModel([("status", ASCENDING), ("lease_until", ASCENDING)]),
           IndexModel([("created_at", DESCENDING)]),               # the group's newest
           IndexModel([("estate_ids", ASCENDING), ("created_at", DESCENDING)]),  # an estate's
           IndexModel([("started_by", ASCENDING), ("status", ASCENDING),          # one's checked
                       ("created_at", DESCENDING)]),
           IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
    STEPS: [IndexModel([("job_id", ASCENDING), ("n", ASCENDING)]),
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
    FILES: [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
}


@dataclass(frozen=True)
class Outcome:
    """What one step did: ``done`` units (rows, workbooks) of the job's total, ``counts``
    to add up, ``failed`` ranges ({from, to, why}: lines not stored) and ``refused`` lines
    ({line, column, messages}) to note, ``file`` bytes to keep for the job's result."""
    done: int
    counts: dict[str, int] = field(default_factory=dict)
    failed: list[dict] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)
    file: bytes | None = None


# Runs one step of a job (as the person who started it); raises if it could not.
StepRunner = Callable[[dict, dict], Outcome]
# The job's file once every step is done, from its steps' files: (bytes, name, type).
Assembler = Callable[[dict, list[bytes]], tuple[bytes, str, str] | None]


def span(step: dict) -> tuple[Any, Any]:
    """What a step covers, as people name it: a chunk's first and last line of the
    spreadsheet (its input's ``span``), else its number."""
    first, last = step["input"].get("span") or (step["n"] + 1, step["n"] + 1)
    return first, last


def step_key(job: dict, step: dict) -> str:
    """The step's Idempotency-Key: the same each time the step is sent."""
    return f"job-{job['_id']}-{step['n']}"


def may_see(job: dict, actor: Actor, may: Callable[[Actor, str], bool]) -> bool:
    """Who may watch a job and take its file: whoever ``may`` do what it does (its
    ``permission``, ``permissions.may_action``) in every estate it concerns."""
    return may(actor, job["permission"]) and all(
        actor.covers(estate) for estate in job["estate_ids"])


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, kind: str, actor: Actor, estate_ids: list[str], steps: list[dict],
               units: list[int], now: datetime, queued: bool = False,
               permission: str = "", about: dict | None = None) -> dict:
        """A job of ``steps`` (``units[i]``: what step ``i`` counts for, of the total),
        ``checked`` until ``start`` unless ``queued``."""
        job_id = uuid.uuid4().hex
        kept = now + (KEPT if queued else CHECKED_KEPT)
        job = {"_id": job_id, "kind": kind, "permission": permission, "about": about or {},
               "estate_ids": estate_ids, "started_by": actor.id,
               "status": QUEUED if queued else CHECKED, "total": sum(units), "done": 0,
               "steps": len(steps), "counts": {}, "failed": [], "refused": [], "runs": 0,
               "attempts": 0, "error": None, "lease_until": None, "holder": None,
               "created_at": now, "updated_at": now, "finished_at": None,
               "expires_at": kept}
        if steps:
            self.db[STEPS].insert_many([
                {"_id": f"{job_id}:{n:06d}", "job_id": job_id, "n": n, "input": step,
                 "units": units[n], "done": False, "expires_at": kept}
                for n, step in enumerate(steps)])
        self.db[JOBS].insert_one(job)
        return job

    def get(self, job_id: str) -> dict | None:
        return self.db[JOBS].find_one({"_id": job_id})

    def recent(self, actor: Actor, permissions: Collection[str],
               limit: int = 20) -> list[dict]:
        """The newest jobs ``actor`` may watch (``may_see``), asked of the store as such —
        doing what they may (``permissions``), in estates they all cover — so that others'
        jobs never crowd theirs out of ``limit``. (A checked job is its starter's alone to
        start: ``checked_of``.)"""
        query: dict[str, Any] = {"status": {"$ne": CHECKED},
                                 "permission": {"$in": list(permissions)}}
        if not actor.group_wide:
            estates = list(actor.estates)
            query["$and"] = [{"estate_ids": {"$in": estates}},    # one of theirs: the index
                             {"estate_ids": {"$not": {"$elemMatch": {"$nin": estates}}}}]
        return list(self.db[JOBS].find(query).sort("created_at", DESCENDING).limit(limit))

    def checked_of(self, actor: Actor, permissions: Collection[str], now: datetime,
                   limit: int = 20) -> list[dict]:
        """The jobs ``actor`` had checked and not started, newest first, while kept (a
        lapsed one may outlive its ``expires_at`` until the store's TTL sweep) and while
        they may still do them (``permissions``, in estates they cover)."""
        found = self.db[JOBS].find({"started_by": actor.id, "status": CHECKED,
                                    "expires_at": {"$gt": now},
                                    "permission": {"$in": list(permissions)}})
        return [job for job in found.sort("created_at", DESCENDING).limit(limit)
                if all(actor.covers(estate) for estate in job["estate_ids"])]

    def start(self, job_id: str, now: datetime) -> dict | None:
        """Queue a checked job (once: a second start finds it queued already)."""
        self._keep(job_id, now + KEPT)
        return self.db[JOBS].find_one_and_update(
            {"_id": job_id, "status": CHECKED},
            {"$set": {"status": QUEUED, "updated_at": now, "expires_at": now + KEPT}},
            return_document=ReturnDocument.AFTER)

    def _keep(self, job_id: str, until: datetime) -> None:
        self.db[STEPS].update_many({"job_id": job_id}, {"$set": {"expires_at": until}})

    def claim(self, now: datetime, lease: timedelta = LEASE) -> dict | None:
        """A queued job, or a running one whose holder stopped, now held by a new holder."""
        return claim(self.db[JOBS], {"status": {"$in": [QUEUED, RUNNING]}}, "lease_until",
                     now, lease, {"$set": {"status": RUNNING, "holder": uuid.uuid4().hex},
                                  "$inc": {"runs": 1}},
                     free_when_missing=True, return_document=ReturnDocument.AFTER)

    def pending(self, job: dict) -> Iterator[dict]:
        yield from self.db[STEPS].find({"job_id": job["_id"], "done": False}).sort(
            "n", ASCENDING)

    def record(self, job: dict, step: dict, outcome: Outcome, now: datetime,
               lease: timedelta = LEASE) -> bool:
        """The step done and its outcome counted, if ``job``'s holder still holds it."""
        held = {"_id": job["_id"], "holder": job["holder"], "status": RUNNING}
        if self.db[JOBS].count_documents(held, limit=1) == 0:
            return False
        if outcome.file is not None:
            self.db[FILES].replace_one(
                {"_id": step["_id"]},
                {"content": outcome.file, "expires_at": now + FILE_KEPT}, upsert=True)
        # a step's input leaves with it: an owner list's phone numbers are intake's to keep,
        # not the gateway's for the job's week
        changed = self.db[STEPS].update_one({"_id": step["_id"], "done": False},
                                            {"$set": {"done": True}, "$unset": {"input.rows": ""}})
        if changed.modified_count == 0:
            return True     # counted already (cannot happen while the claim holds)
        update: dict[str, Any] = {
            "$inc": {"done": outcome.done,
                     **{f"counts.{name}": value for name, value in outcome.counts.items()}},
            "$set": {"updated_at": now, "lease_until": now + lease, "attempts": 0}}
        pushed = {name: {"$each": values} for name, values in
                  (("failed", outcome.failed), ("refused", outcome.refused)) if values}
        if pushed:
            update["$push"] = pushed
        return self.db[JOBS].update_one(held, update).modified_count == 1

    def retry_later(self, job: dict, why: str, now: datetime) -> dict | None:
        """A step failed: tried again after ``RETRY_AFTER`` (by whichever instance claims
        it); the job after its last attempt (the caller ends it)."""
        return self.db[JOBS].find_one_and_update(
            {"_id": job["_id"], "holder": job["holder"], "status": RUNNING},
            {"$inc": {"attempts": 1},
             "$set": {"error": why, "updated_at": now, "lease_until": now + RETRY_AFTER}},
            return_document=ReturnDocument.AFTER)

    def finish(self, job: dict, status: str, now: datetime, failed: list[dict] | None = None,
               file: tuple[bytes, str, str] | None = None) -> dict | None:
        held = {"_id": job["_id"], "holder": job["holder"], "status": RUNNING}
        if file is not None:
            content, name, mimetype = file
            self.db[FILES].replace_one({"_id": job["_id"]}, {
                "content": content, "name": name, "mimetype": mimetype,
                "expires_at": now + FILE_KEPT}, upsert=True)
        update: dict[str, Any] = {"$set": {
            "status": status, "finished_at": now, "updated_at": now, "lease_until": None,
            "holder": None, "expires_at": now + KEPT, "has_file": file is not None}}
        if failed:
            update["$push"] = {"failed": {"$each": failed}}
        return self.db[JOBS].find_one_and_update(held, update,
                                                 return_document=ReturnDocument.AFTER)

    def step_files(self, job: dict) -> list[bytes]:
        ids = [f"{job['_id']}:{n:06d}" for n in range(job["steps"])]
        found = {doc["_id"]: doc["content"] for doc in self.db[FILES].find({"_id": {"$in": ids}})}
        return [found[key] for key in ids if key in found]

    def file(self, job_id: str, now: datetime) -> dict | None:
        """The finished job's file, while it is kept."""
        return self.db[FILES].find_one({"_id": job_id, "expires_at": {"$gt": now}})


def run_next(store: JobStore, run_step: StepRunner, now: datetime | Callable[[], datetime],
             assemble: Assembler | None = None, lease: timedelta = LEASE) -> dict | None:
    """Claim one job and work through its steps not yet done; the job as it was left
    (None: no job was free). ``now``: the moment, or the clock to read after each step."""
    clock = now if callable(now) else (lambda: now)
    job = store.claim(clock(), lease)
    if job is None:
        return None
    for step in store.pending(job):
        try:
            outcome = run_step(job, step)
        except Exception as exc:  # noqa: BLE001 - the service's answer, kept on the job
            why = f"{type(exc).__name__}: {exc}"
            left = store.retry_later(job, why, clock())
            if left is None or left["attempts"] < ATTEMPTS:
                return left
            not_done = list(store.pending(job))
            return store.finish(job, FAILED, clock(), failed=[{
                "from": span(not_done[0])[0], "to": span(not_done[-1])[1], "why": why}])
        if not store.record(job, step, outcome, clock(), lease):
            return store.get(job["_id"])      # another holder took it over: theirs now
    file = assemble(job, store.step_files(job)) if assemble else None
    return store.finish(job, DONE, clock(), file=file)
