"""Idempotent commands: a state-changing RPC takes effect once per request, however
often the request comes (delivery is at least once, RPC included).

Which request: the caller's key, the keyword argument ``request_id`` (an id; the gateway
sends one per HTTP request, from ``Idempotency-Key`` or a fresh one), kept apart per
acting person (or, with none, per calling service). Without one, the AMQP
``correlation_id`` of the request message: the broker hands an unacknowledged request out
again after a lost connection, with the same correlation id, so a redelivered message is
the same request.

``@idempotent``, under ``@rpc``, keeps one record per request in the service's own
database (collection ``requests``, ``_id`` the key, so unique): the fingerprint of what
was asked (the method and its arguments) and, once done, the answer.

1. **Claim**: insert the record ``running`` with a lease and a random ``instance``. Of
   several callers, one can.
2. **Run** the method. Each document it changes with ``save_versioned`` records the
   instance in the same write (``shared.store.already_applied``), and a record it creates
   has an id derived from the instance (``derived_id``). The instance, not the key: a key
   used again once its record expired is a new request, and must neither find the first
   one's mark nor make the first one's ids.
3. **Complete**: keep the answer.

The same key again:

* with another input (another method, other arguments): ``InvalidInput`` on
  ``request_id``, nothing run;
* done: the first answer, nothing run;
* running, its lease not lapsed (a redelivered copy while the first still runs): waits
  for that answer, up to ``WAIT``, then ``ConcurrentUpdate`` (retry in a moment). A first
  runner that died is told from a slow one only by its lease: until ``LEASE`` lapsed a
  repeat hears ``ConcurrentUpdate``, so a caller that needs its change once across the
  crash of a service sends a ``request_id`` and retries (a redelivered message, keyed by
  its correlation id, has nobody to retry it);
* running, its lease lapsed (the first runner died between claim and completion): taken
  over, atomically by one, and run again as the same instance. What the first run wrote
  is not written twice: a document it changed carries the instance (the method answers
  it as it is), a record it created has the id the second run derives again (the store
  refuses a second one). Other writes carry the mark themselves (``request_marker``,
  ``with_request``: an answered invitation, a template version) or are the same however
  often made (upserts of households and preferences, revisits with derived ids). The
  answer is then the record as it is now: the first one was never kept.

A method that raises an expected error (``EXPECTED_ERRORS``, ``ConcurrentUpdate``) wrote
nothing: its record is dropped and the key may be used again. Any other error lets the
lease lapse at once, so a retry takes the request over without waiting.

What holds where. On MongoDB the unique ``_id`` makes the claim atomic across instances
and processes, the takeover is one ``find_one_and_update``, the record survives a crash
of the service (written with the server's default write concern: majority on a replica
set) and a TTL index drops it after ``KEPT`` (a correlation id after ``CALL_KEPT``). On
the embedded store (one process) the same holds between the workers and instances of
that process, since a mongomock operation never yields to another green thread; records
live as long as the process, like everything else there, and a thread of the ``Store``
purges expired ones every ``PURGE_SECONDS`` (mongomock's TTL index would re-scan them all
on every access).

In a service, ``@idempotent`` under ``@rpc`` (``self``'s ``Store`` keeps the records)::

    @rpc
    @idempotent
    def close_complaint(self, complaint_id, data, expected_status=None): ...

What it does with a request, on the service's database:

>>> from shared.embedded import new_client
>>> requests = RequestLog(new_client()["intake"])
>>> asked = fingerprint("close_complaint", ("cmp-1",), {})
>>> requests.run("person:s-1|req-1", asked, lambda: {"status": "closed"})
{'status': 'closed'}
>>> requests.run("person:s-1|req-1", asked, lambda: 1 / 0)    # again: the first answer
{'status': 'closed'}
>>> requests.run("person:s-1|req-1", fingerprint("close_complaint", ("cmp-2",), {}), dict)
Traceback (most recent call last):
shared.errors.InvalidInput: {"request_id": ["already used for another request (other \
input); send a new request_id"]}
"""
import functools
import hashlib
import inspect
import json
import logging
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import eventlet
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.database import Database

from shared.actor import Actor
from shared.errors import EXPECTED_ERRORS, InvalidInput
from shared.leases import claim
from shared.once import insert_once
from shared.schemas.base import require_id
from shared.store import APPLYING_REQUEST, ConcurrentUpdate, Document, Repository

log = logging.getLogger(__name__)

REQUESTS = "requests"
REQUEST_ID = "request_id"
# Context data of an RPC worker: its request message's correlation id (shared/rpc.py sets
# it from the message and never passes it on to the calls the worker makes).
CALL_CONTEXT_KEY = "huifang.call"
# How long a claim holds before a retry may take the request over: longer than any RPC
# runs (a group-wide survey round included).
LEASE = timedelta(seconds=60)
# How long a repeat waits for the answer of the same request running elsewhere; less
# than a caller's RPC timeout (30 s), so the caller hears ConcurrentUpdate, not nothing.
WAIT = timedelta(seconds=10)
POLL_SECONDS = (0.02, 0.5)       # first and longest pause between two looks
KEPT = timedelta(hours=24)       # a client's request id (the gateway's Idempotency-Key)
CALL_KEPT = timedelta(hours=1)   # a correlation id: redelivery comes within minutes
PURGE_SECONDS = 60               # the embedded store's purge of expired records
RUNNING, DONE = "running", "done"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

INDEXES = [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)]


@dataclass(frozen=True)
class CallContext:
    """What the worker knows about the RPC it runs: the message's correlation id and
    whose keys a ``request_id`` belongs to."""
    correlation_id: str | None = None
    scope: str = "nobody"


# The RPC this green thread runs (set by shared.dependencies.Store for each worker).
CURRENT_CALL: ContextVar[CallContext | None] = ContextVar("huifang_call", default=None)


def call_context(worker_ctx: Any) -> CallContext:
    """The ``CallContext`` of a nameko worker: its context data and call-id stack."""
    actor = Actor.from_context(worker_ctx.data)
    parent = worker_ctx.immediate_parent_call_id   # "<service>.<method>.<uuid>"
    scope = (f"person:{actor.id}" if actor is not None
             else f"service:{parent.split('.', 1)[0] if parent else 'nobody'}")
    correlation_id = worker_ctx.data.get(CALL_CONTEXT_KEY)
    return CallContext(correlation_id if isinstance(correlation_id, str) else None, scope)


def request_key(request_id: Any) -> str | None:
    """The key of the call being made: the caller's ``request_id`` in its scope, else the
    message's correlation id, else None (a direct call, as in unit tests: not kept)."""
    call = CURRENT_CALL.get() or CallContext()
    if request_id is not None:
        return f"{call.scope}|{require_id(request_id, REQUEST_ID)}"
    if call.correlation_id:
        return f"call|{call.correlation_id}"
    return None


def derived_id(prefix: str, length: int = 16) -> str | None:
    """``<prefix>-<hex>`` for the record the running request creates, derived from it: run
    again after a crash, the request makes the same id and the store refuses it twice.
    None outside a request (the caller makes a random id)."""
    instance = APPLYING_REQUEST.get()
    if instance is None:
        return None
    return f"{prefix}-{hashlib.sha256(f'{prefix}/{instance}'.encode()).hexdigest()[:length]}"


def fingerprint(method: str, args: tuple, kwargs: dict) -> str:
    """A digest of what was asked. Passwords are left out: a plain digest of one, kept
    beside the account, would be a weak hash of it."""
    asked = {"rpc": method, "args": _without_passwords(list(args)),
             "kwargs": _without_passwords(kwargs)}
    text = json.dumps(asked, sort_keys=True, ensure_ascii=False, default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()


def idempotent(method: Callable) -> Callable:
    """Make an RPC method idempotent (put it under ``@rpc``): it takes the keyword
    argument ``request_id`` and answers a repeat of a request with the first answer."""
    signature = inspect.signature(method)
    parameters = [*signature.parameters.values(),
                  inspect.Parameter(REQUEST_ID, inspect.Parameter.KEYWORD_ONLY, default=None)]

    @functools.wraps(method)
    def run_once(self: object, *args: Any, request_id: Any = None, **kwargs: Any) -> Any:
        if APPLYING_REQUEST.get() is not None:   # called by another idempotent method
            return method(self, *args, **kwargs)
        key = request_key(request_id)
        if key is None:
            return method(self, *args, **kwargs)
        return RequestLog(_repository(self).db).run(
            key, fingerprint(method.__name__, args, kwargs),
            lambda: method(self, *args, **kwargs), CALL_KEPT if request_id is None else KEPT)

    # nameko checks a call's arguments against this (inspect.getcallargs honours it)
    run_once.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=parameters)
    return run_once


def purge_expired(db: Database[Document]) -> int:
    """Drop the records past ``expires_at`` (what MongoDB's TTL index does by itself)."""
    return db[REQUESTS].delete_many({"expires_at": {"$lt": _now()}}).deleted_count


class RequestLog:
    """The ``requests`` collection of one service's database: claim, complete, take over."""

    def __init__(self, db: Database[Document]) -> None:
        self.collection = db[REQUESTS]

    def run(self, key: str, asked: str, work: Callable[[], Any],
            kept: timedelta = KEPT) -> Any:
        """``work()``'s answer, computed once for ``key`` (see the module's docstring)."""
        owner = uuid.uuid4().hex
        record = self._claim_or_wait(key, asked, owner, kept)
        if record["status"] == DONE:
            return json.loads(record["result"])
        token = APPLYING_REQUEST.set(record["instance"])
        try:
            result = work()
        except (*EXPECTED_ERRORS, ConcurrentUpdate):
            # nothing written: the key is free again (a corrected retry may use it)
            self.collection.delete_one({"_id": key, "owner": owner, "status": RUNNING})
            raise
        except Exception:
            # something may be half-done: a retry takes over now, with the same input
            self.collection.update_one({"_id": key, "owner": owner, "status": RUNNING},
                                       {"$set": {"lease_until": EPOCH}})
            raise
        finally:
            APPLYING_REQUEST.reset(token)
        self.collection.update_one(
            {"_id": key, "owner": owner},
            {"$set": {"status": DONE, "result": json.dumps(result, default=_plain),
                      "done_at": _now()}, "$unset": {"lease_until": ""}})
        return result

    def _claim_or_wait(self, key: str, asked: str, owner: str, kept: timedelta) -> Document:
        """The record: done (its answer), or running and held by this caller (to run it)."""
        deadline = _now() + WAIT
        pause = POLL_SECONDS[0]
        while True:
            now = _now()
            claimed = {"_id": key, "fingerprint": asked, "status": RUNNING, "owner": owner,
                       "instance": uuid.uuid4().hex, "lease_until": now + LEASE,
                       "created_at": now, "expires_at": now + kept}
            if insert_once(self.collection.insert_one, claimed) is not None:
                return claimed
            record = self.collection.find_one({"_id": key})
            if record is None:
                continue            # released meanwhile (its run failed): claim it now
            if record["fingerprint"] != asked:
                raise InvalidInput({REQUEST_ID: [
                    "already used for another request (other input); send a new request_id"]})
            if record["status"] == DONE:
                return record
            taken = self._take_over(key, owner, now)
            if taken is not None:
                log.warning("request %s: taken over after its first run stopped", key)
                return taken
            if now >= deadline:
                raise ConcurrentUpdate(
                    f"request {key.rsplit('|', 1)[-1]!r} is still being carried out; "
                    "retry in a moment")
            eventlet.sleep(pause)
            pause = min(pause * 2, POLL_SECONDS[1])

    def _take_over(self, key: str, owner: str, now: datetime) -> Document | None:
        """The record of a request whose lease lapsed (its runner died), now held by this
        caller (the same instance, run again); None if it is not (another caller got it)."""
        return claim(self.collection, {"_id": key, "status": RUNNING}, "lease_until", now, LEASE,
                     {"$set": {"owner": owner}, "$inc": {"takeovers": 1}},
                     return_document=ReturnDocument.AFTER)


def _repository(service: object) -> Repository:
    """The service's store (its ``Store`` dependency: a repository, or one wrapped)."""
    for value in vars(service).values():
        for candidate in (value, getattr(value, "repository", None)):
            if isinstance(candidate, Repository):
                return candidate
    raise RuntimeError(f"{type(service).__name__}: @idempotent needs a Store dependency")


def _without_passwords(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: "…" if "password" in str(key) else _without_passwords(item)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_passwords(item) for item in value]
    return value


def _plain(value: object) -> str:
    """JSON for what a result may hold beyond JSON (as nameko's serializer would send it)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _now() -> datetime:
    return datetime.now(UTC)
