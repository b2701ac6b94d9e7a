"""The console's jobs (services/gateway/jobs.py) on the embedded store: progress counted
step by step, a job cut short by a stopped gateway taken over where it stopped (the step
in flight sent again with the same key), one holder at a time, retries then a failure
that says which lines were not done, who may watch a job, and the jobs list asked of the
store for the person's jobs alone (through an index). Plus the import's steps
(console_jobs.import_step) reading intake's answers with the command's own code."""
import io
import zipfile
from datetime import UTC, datetime, timedelta

import pytest

from services.gateway import console_jobs, jobs
from services.gateway.permissions import may_action
from services.gateway.problems import Problem
from shared import embedded
from shared.actor import Actor
from shared.embedded import new_client

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
MANAGER = Actor("u-em", ("estate_manager",), ("e-1",))


@pytest.fixture
def store():
    return jobs.JobStore(new_client()["gateway"])


def import_job(store, chunks=3, queued=True):
    steps = [{"estate_id": "e-1", "n": n, "span": [n * 10 + 2, n * 10 + 11]}
             for n in range(chunks)]
    return store.create(console_jobs.IMPORT, MANAGER, ["e-1"], steps, [10] * chunks, NOW,
                        queued=queued, permission="households.import")


class Intake:
    """Counts the chunks it stores, keyed as intake keeps requests (a key: one answer)."""

    def __init__(self, fail_on=None, failures=1):
        self.stored, self.answers, self.keys = [], {}, []
        self.fail_on, self.failures = fail_on, failures

    def __call__(self, job, step):
        key = jobs.step_key(job, step)
        self.keys.append(key)
        if step["n"] == self.fail_on and self.failures:
            self.failures -= 1
            raise ConnectionError("intake away")
        if key not in self.answers:          # a key seen before: its first answer
            self.stored.append(step["n"])
            self.answers[key] = jobs.Outcome(done=10, counts={"imported": 10})
        return self.answers[key]


def test_a_job_counts_its_progress_step_by_step(store):
    import_job(store)
    seen = []

    def run_step(job, step):
        seen.append(store.get(job["_id"])["done"])   # what the page reads meanwhile
        return jobs.Outcome(done=10, counts={"imported": 7, "updated": 3},
                            failed=[{"from": 5, "to": 6, "why": "x"}] if step["n"] == 1 else [])

    finished = jobs.run_next(store, run_step, NOW)
    assert seen == [0, 10, 20]
    assert finished["status"] == jobs.DONE and finished["done"] == finished["total"] == 30
    assert finished["counts"] == {"imported": 21, "updated": 9}
    assert finished["failed"] == [{"from": 5, "to": 6, "why": "x"}]
    assert jobs.run_next(store, run_step, NOW) is None          # nothing left to claim


def test_a_step_sent_keeps_no_households_in_the_gateway(store):
    rows = [{"household_id": "h-1", "contacts": [{"name": "王芳", "phone": "13812345678"}]}]
    job = store.create(console_jobs.IMPORT, MANAGER, ["e-1"],
                       [{"estate_id": "e-1", "rows": rows, "span": [2, 2]}], [1], NOW,
                       queued=True, permission="households.import")
    sent = []
    jobs.run_next(store, lambda job, step: sent.append(step["input"]["rows"]) or
                  jobs.Outcome(done=1), NOW)
    assert sent == [rows]                                    # the step had them to send
    step = store.db[jobs.STEPS].find_one({"job_id": job["_id"]})
    assert step["done"] and "rows" not in step["input"] and step["input"]["span"] == [2, 2]


def test_a_checked_job_waits_until_started(store):
    job = import_job(store, queued=False)
    assert jobs.run_next(store, Intake(), NOW) is None
    assert store.start(job["_id"], NOW)["status"] == jobs.QUEUED
    assert store.start(job["_id"], NOW) is None                 # started once
    assert jobs.run_next(store, Intake(), NOW)["status"] == jobs.DONE


def test_a_job_cut_short_goes_on_where_it_stopped_and_writes_nothing_twice(store):
    job = import_job(store, chunks=4)
    intake = Intake()
    first = store.claim(NOW)
    steps = list(store.pending(first))
    assert store.record(first, steps[0], intake(first, steps[0]), NOW)
    intake(first, steps[1])        # stored by intake; the gateway stopped before noting it
    # while the lease holds, no other instance takes the job
    assert store.claim(NOW + timedelta(seconds=30)) is None
    later = NOW + jobs.LEASE + timedelta(seconds=1)
    finished = jobs.run_next(store, intake, later)
    assert finished["status"] == jobs.DONE and finished["runs"] == 2
    assert finished["done"] == 40 and finished["counts"] == {"imported": 40}
    assert intake.stored == [0, 1, 2, 3]                        # chunk 1 stored once
    assert intake.keys.count(f"job-{job['_id']}-1") == 2        # sent again, same key
    # the first holder, back, writes nothing more
    assert not store.record(first, steps[2], jobs.Outcome(done=10), later)
    assert store.get(job["_id"])["done"] == 40


def test_a_failing_step_is_tried_again_then_the_job_says_what_was_not_done(store):
    import_job(store)
    intake = Intake(fail_on=1, failures=1)
    left = jobs.run_next(store, intake, NOW)
    assert left["status"] == jobs.RUNNING and "intake away" in left["error"]
    assert jobs.run_next(store, intake, NOW) is None            # not before RETRY_AFTER
    assert jobs.run_next(store, intake, NOW + jobs.RETRY_AFTER)["status"] == jobs.DONE

    job = import_job(store)
    always = Intake(fail_on=1, failures=jobs.ATTEMPTS)
    moment = NOW
    for _ in range(jobs.ATTEMPTS):
        moment += jobs.RETRY_AFTER
        left = jobs.run_next(store, always, moment)
    assert left["_id"] == job["_id"] and left["status"] == jobs.FAILED
    assert left["done"] == 10
    assert left["failed"] == [{"from": 12, "to": 31, "why": "ConnectionError: intake away"}]


def test_only_who_may_do_the_work_in_every_estate_of_the_job_sees_it(store):
    job = import_job(store)
    assert jobs.may_see(job, MANAGER, may_action)
    assert jobs.may_see(job, Actor("u-sup", ("supervisor",), ("e-1",)), may_action)
    assert not jobs.may_see(job, Actor("u-em2", ("estate_manager",), ("e-2",)), may_action)
    assert not jobs.may_see(job, Actor("u-cs", ("cs_staff",), ("e-1",)), may_action)
    assert jobs.may_see(job, Actor("u-adm", ("admin",), ()), may_action)   # the group's


def test_an_exports_file_is_kept_until_it_expires(store):
    job = store.create(console_jobs.SURVEY_EXPORT, MANAGER, ["e-1", "e-2"],
                       [{"estate_id": "e-1"}, {"estate_id": "e-2"}], [1, 1], NOW,
                       queued=True, permission="survey.rounds.export",
                       about={"title": "2026下半年", "names": ["阳光花园", "碧水湾"]})
    finished = jobs.run_next(store, lambda job, step: jobs.Outcome(
        done=1, file=step["input"]["estate_id"].encode()), NOW, console_jobs.assemble)
    assert finished["has_file"]
    kept = store.file(job["_id"], NOW)
    assert kept["name"] == "2026下半年.zip" and kept["mimetype"] == console_jobs.ZIP
    bundle = zipfile.ZipFile(io.BytesIO(kept["content"]))
    assert bundle.namelist() == ["阳光花园-2026下半年.xlsx", "碧水湾-2026下半年.xlsx"]
    assert bundle.read("碧水湾-2026下半年.xlsx") == b"e-2"
    assert store.file(job["_id"], NOW + jobs.FILE_KEPT) is None


class Services:
    """``api.Services`` with intake's import answered as given."""

    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def call(self, target, *args, **kwargs):
        self.calls.append((target, args, kwargs))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def chunk_step():
    rows = [{"household_id": f"h-{n}", "contacts": [{"name": "x", "phone": "1"}] * (n + 1)}
            for n in range(3)]
    return {"n": 0, "input": {"estate_id": "e-1", "rows": rows, "lines": [[2], [3, 4], [5]],
                              "span": [2, 5]}}


def test_an_import_step_sends_its_chunk_with_its_own_key_and_counts_intakes_answer():
    services = Services({"imported": 2, "updated": 1, "failed": [{"rows": [2, 2],
                                                                  "error": "timeout"}]})
    job = {"_id": "j-1", "kind": console_jobs.IMPORT}
    outcome = console_jobs.import_step(MANAGER, services, job, chunk_step())
    target, args, kwargs = services.calls[0]
    assert target == "intake.import_households" and args[0] == "e-1"
    assert kwargs["request_id"] == "job-j-1-0"
    assert outcome.done == 3
    assert outcome.counts == {"imported": 2, "updated": 1, "contacts": 3}   # rows 0 and 1
    assert outcome.failed == [{"from": 5, "to": 5, "why": "timeout"}]


def test_an_import_step_refused_by_intake_names_the_lines():
    from nameko.exceptions import RemoteError
    services = Services(RemoteError("InvalidInput",
                                    '{"rows.1.household_id": ["belongs to estate e-2"]}'))
    outcome = console_jobs.import_step(MANAGER, services, {"_id": "j-1"}, chunk_step())
    assert outcome.refused == [{"line": 3, "column": "household_id",
                                "messages": "belongs to estate e-2"}]
    assert outcome.counts == {"imported": 0, "updated": 0, "contacts": 0}
    services = Services(RemoteError("RpcTimeout", "intake did not answer"))
    with pytest.raises(Problem):        # not a refusal: the job tries again
        console_jobs.import_step(MANAGER, services, {"_id": "j-1"}, chunk_step())
    other = Actor("u-em2", ("estate_manager",), ("e-2",))
    with pytest.raises(Problem) as refused:    # another estate's: the API's scope holds
        console_jobs.import_step(other, Services({}), {"_id": "j-1"}, chunk_step())
    assert refused.value.status == 404



def listed(store, actor):
    allowed = [permission for permission in console_jobs.PERMISSIONS.values()
               if may_action(actor, permission)]
    return [job["_id"] for job in store.recent(actor, allowed)]


def test_the_jobs_list_asks_the_store_for_the_persons_jobs_only():
    store = jobs.JobStore(new_client()["gateway"])
    for collection, indexes in jobs.INDEXES.items():
        store.db[collection].create_indexes(indexes)

    def job(estates, minutes, kind=console_jobs.SURVEY_EXPORT, queued=True):
        return store.create(kind, MANAGER, estates, [{"estate_id": e} for e in estates],
                            [1] * len(estates), NOW + timedelta(minutes=minutes),
                            queued=queued, permission=console_jobs.PERMISSIONS[kind])["_id"]

    mine = [job(["e-1"], 0, console_jobs.PLAN_EXPORT), job(["e-1"], 1, console_jobs.IMPORT)]
    both = job(["e-1", "e-2"], 2)
    job(["e-1"], 3, console_jobs.IMPORT, queued=False)     # checked, not started
    others = [job([f"e-{n}"], 10 + n) for n in range(2, 40)]   # the group's newest
    with embedded.recording_scans() as scans:
        # the person's two, though 39 newer jobs are others': none of a part of theirs
        assert listed(store, MANAGER) == mine[::-1]
        of_both = Actor("u-em12", ("estate_manager",), ("e-1", "e-2"))
        assert listed(store, of_both) == [others[0], both, *mine[::-1]]
        # a role without imports or survey workbooks: the plan's workbook alone
        assert listed(store, Actor("u-cs", ("cs_staff",), ("e-1",))) == [mine[0]]
        # the group's: the newest of all, as many as the page shows
        assert listed(store, Actor("u-adm", ("admin",), ())) == others[::-1][:20]
    # each person's list read through the estates' index, not by a scan of the jobs
    assert [shape for collection, shape in scans if "estate_ids" in shape] == []


def test_a_checked_job_is_listed_for_its_starter_alone_while_kept():
    store = jobs.JobStore(new_client()["gateway"])
    for collection, indexes in jobs.INDEXES.items():
        store.db[collection].create_indexes(indexes)
    allowed = [console_jobs.PERMISSIONS[console_jobs.IMPORT]]
    now = datetime.now(UTC)      # the embedded store's TTL sweep reads the wall clock
    checked = store.create(console_jobs.IMPORT, MANAGER, ["e-1"], [{"estate_id": "e-1"}],
                           [1], now, permission="households.import")
    store.create(console_jobs.IMPORT, MANAGER, ["e-1"], [{"estate_id": "e-1"}], [1], now,
                 queued=True, permission="households.import")      # the recent list's
    colleague = Actor("u-em2", ("estate_manager",), ("e-1",))
    with embedded.recording_scans() as scans:
        assert [job["_id"] for job in store.checked_of(MANAGER, allowed, now)] == \
            [checked["_id"]]
        assert store.checked_of(colleague, allowed, now) == []
        assert store.checked_of(MANAGER, [], now) == []      # who may no longer import
        # a day later it has lapsed, though the store's sweep has not taken it yet
        assert store.checked_of(MANAGER, allowed, now + jobs.CHECKED_KEPT) == []
        # moved to another estate: not theirs to start any more
        assert store.checked_of(Actor(MANAGER.id, MANAGER.roles, ("e-2",)), allowed, now) == []
    assert scans == []
    store.start(checked["_id"], now)
    assert store.checked_of(MANAGER, allowed, now) == []
