"""The base of every service's repository over its own MongoDB database.

Events travel with the state change (transactional outbox inside the
document): a repository writes the change and its pending events in one
document write, then publishes them with confirms and removes them. A relay
in every instance republishes what a crash left behind; each document is
claimed atomically through a lease so two instances do not both send it.
The lease exists only while its document has events to send (it goes once the
outbox is empty), under a sparse index: a relay pass looks at the documents
with unsent events, never at the history.

A write made while an idempotent RPC runs (``shared.idempotency``) records the request
(its instance) in the document it changes, in the same write (``applied_requests``): a
retry of that request whose first run died before answering finds it there
(``already_applied``) and does not apply it again.
"""
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import pymongo
from pymongo import IndexModel, ReturnDocument
from pymongo.client_session import ClientSession
from pymongo.database import Database

from shared.envelope import Envelope
from shared.errors import NotFound
from shared.leases import claim_each
from shared.messaging import publish_all

if TYPE_CHECKING:
    from shared.messaging import EventPublisher

log = logging.getLogger(__name__)

# A document as stored and read back (pymongo's and the embedded store's).
Document = dict[str, Any]

OUTBOX = "outbox"
OUTBOX_LEASE = "outbox_lease"
HANDLED_EVENTS = "handled_events"   # ids of the events already applied to this document
VERSION = "version"
APPLIED_REQUESTS = "applied_requests"   # the requests that changed this document
# Enough to outlive the lease of a request (a retry takes over only once it lapsed).
APPLIED_REQUESTS_KEPT = 50
# what a versioned write appends to rather than sets (``save_versioned``)
APPENDED_ONLY = (OUTBOX, OUTBOX_LEASE, HANDLED_EVENTS, APPLIED_REQUESTS)
# The idempotent request this worker runs (its instance, shared.idempotency), if any.
APPLYING_REQUEST: ContextVar[str | None] = ContextVar("huifang_applying_request",
                                                       default=None)


# Where MongoDB runs multi-document transactions (a standalone server does not).
TRANSACTIONAL_TOPOLOGIES = ("ReplicaSetWithPrimary", "Sharded")


def _utcnow() -> datetime:
    return datetime.now(UTC)


def already_applied(document: dict) -> bool:
    """Whether the request being run changed ``document`` already: its first run wrote
    the change and died before its answer was kept, and this is the retry that took the
    request over. The caller answers the document as it is."""
    request = APPLYING_REQUEST.get()
    return request is not None and request in document.get(APPLIED_REQUESTS, ())


def with_request(document: dict) -> dict:
    """``document``, to insert, recording the running request (if any) as
    ``save_versioned`` records it in what it changes."""
    request = APPLYING_REQUEST.get()
    return document if request is None else {**document, APPLIED_REQUESTS: [request]}


def request_marker() -> dict:
    """The update part that records the running request in a document (nothing outside
    one), for writes that are not ``save_versioned``."""
    request = APPLYING_REQUEST.get()
    if request is None:
        return {}
    return {"$push": {APPLIED_REQUESTS: {"$each": [request],
                                         "$slice": -APPLIED_REQUESTS_KEPT}}}


class Repository:
    """Base of each service's repository: domain verbs over its database.

    Subclasses list ``indexes`` ({collection: [IndexModel, ...]}) and
    ``outbox_collections`` (collections whose documents carry events).
    """

    indexes: ClassVar[dict[str, list[IndexModel]]] = {}
    outbox_collections: tuple[str, ...] = ()

    def __init__(self, db: Database[Document], publisher: "EventPublisher | None" = None,
                 outbox_grace_seconds: float = 10) -> None:
        self.db = db
        self.publisher = publisher
        # How long a fresh outbox entry is left to its writer before the relay takes it.
        self.outbox_grace = timedelta(seconds=outbox_grace_seconds)

    def create_indexes(self) -> None:
        for name, models in self.indexes.items():
            if models:
                self.db[name].create_indexes(models)
        for name in self.outbox_collections:
            self.db[name].create_index([(OUTBOX_LEASE, 1)], sparse=True)

    def fetch(self, collection: str, document_id: str, kind: str) -> Document:
        """The document with this id, or ``NotFound`` naming what was asked for."""
        document = self.db[collection].find_one({"_id": document_id})
        if document is None:
            raise NotFound(kind, document_id)
        return document

    @contextmanager
    def all_or_nothing(self, **documents: Sequence[str]) -> Iterator[ClientSession | None]:
        """Writes to several documents (``collection=[ids]``) that happen together or not
        at all. On a MongoDB replica set (or mongos) they run in one transaction: pass the
        session this yields to each write. Elsewhere (the embedded store, a standalone
        server) the session is None, the documents are read first and, if a write fails,
        put back as they were or deleted (compensation). On the embedded store nothing runs
        in between (no I/O, no other green thread) and a crash loses all data anyway; on a
        standalone server a crash between the writes can still leave some of them."""
        client = self.db.client
        if isinstance(client, pymongo.MongoClient) and \
                client.topology_description.topology_type_name in TRANSACTIONAL_TOPOLOGIES:
            with client.start_session() as session, session.start_transaction():
                yield session
            return
        before = {name: {document["_id"]: document
                         for document in self.db[name].find({"_id": {"$in": list(ids)}})}
                  for name, ids in documents.items()}
        try:
            yield None
        except BaseException:
            for name, ids in documents.items():
                for document_id in ids:
                    if document_id in before[name]:
                        self.db[name].replace_one({"_id": document_id},
                                                  before[name][document_id], upsert=True)
                    else:
                        self.db[name].delete_one({"_id": document_id})
            raise

    # -- writes that carry events -------------------------------------------

    def _outbox_fields(self, events: Sequence[Envelope]) -> dict[str, datetime]:
        return {OUTBOX_LEASE: _utcnow() + self.outbox_grace} if events else {}

    def insert_with_events(self, collection: str, document: Mapping[str, Any],
                           events: Sequence[Envelope], publish: bool = True) -> Document:
        """Insert ``document`` with its pending ``events`` in the same write, then publish
        (``publish=False``: held in the outbox; the caller flushes them once what they
        announce holds, or deletes the document)."""
        document = dict(document, **self._outbox_fields(events), **{OUTBOX: list(events)})
        document.setdefault(VERSION, 0)
        self.db[collection].insert_one(document)
        if publish and events:
            self.flush(collection, document["_id"], events)
        return document

    def update_with_events(self, collection: str, query: Mapping[str, Any],
                           update: Mapping[str, Mapping[str, Any]],
                           events: Sequence[Envelope], publish: bool = True) -> Document | None:
        """Apply ``update`` and queue ``events`` in one write; the document after, or None
        (``publish=False``: the events held in its outbox, for ``publish_outboxes``)."""
        document = self.db[collection].find_one_and_update(
            query, self._with_events(update, events), return_document=ReturnDocument.AFTER
        )
        if document is not None and events and publish:
            self.flush(collection, document["_id"], events)
        return document

    def _with_events(self, update: Mapping[str, Mapping[str, Any]],
                     events: Sequence[Envelope]) -> dict[str, dict[str, Any]]:
        """``update`` that also queues ``events`` in the document's outbox."""
        copied = {key: dict(value) for key, value in update.items()}
        if events:
            copied.setdefault("$push", {})[OUTBOX] = {"$each": list(events)}
            copied.setdefault("$set", {}).update(self._outbox_fields(events))
        return copied

    def publish_outboxes(self, collection: str, held: Mapping[str, Sequence[Envelope]],
                         whole: bool = False) -> None:
        """{document id: events held in its outbox}: all published with one wait for the
        broker's confirms (``publish_all``), then dropped from those outboxes — ``whole``
        (each outbox holds just these: nothing else writes events to those documents) in
        one write with their leases; otherwise each document's by id, a write each, and the
        leases in one more where nothing else waits. If the broker did not confirm them
        all, they all stay for the relay (each is handled once by its id)."""
        events = [event for batch in held.values() for event in batch]
        if not events or self.publisher is None:
            return
        try:
            publish_all(self.publisher, events)
        except Exception:
            log.exception("%d events stay in the outbox for the relay", len(events))
            return
        documents = self.db[collection]
        if whole:
            documents.update_many({"_id": {"$in": list(held)}},
                                  {"$set": {OUTBOX: []}, "$unset": {OUTBOX_LEASE: ""}})
            return
        for document_id, sent in held.items():
            documents.update_one({"_id": document_id}, {
                "$pull": {OUTBOX: {"id": {"$in": [event["id"] for event in sent]}}}})
        documents.update_many(
            {"_id": {"$in": list(held)}, OUTBOX: {"$size": 0}, OUTBOX_LEASE: {"$exists": True}},
            {"$unset": {OUTBOX_LEASE: ""}})

    def save_versioned(self, collection: str, document: Mapping[str, Any],
                       events: Sequence[Envelope], handled_event: str | None = None,
                       push: Mapping[str, Any] | None = None) -> Document:
        """Write an aggregate read earlier, if nobody changed it since (optimistic lock);
        the aggregate as written (its version moved on), without the lists the write
        appends to (outbox, handled events, applied requests, ``push``): read them from
        the store if needed. (No read back: the lock says the rest is what is stored.)

        With ``handled_event`` the write also records that event as applied, and
        matches nothing if it already was: redelivery cannot apply it twice. ``push``
        ({field: value}): appended to those lists in the same write (fields ``document``
        does not set).
        """
        version = document.get(VERSION, 0)
        query = {"_id": document["_id"], VERSION: version}
        fields = {key: value for key, value in document.items() if key not in APPENDED_ONLY}
        update = {"$set": {**fields, VERSION: version + 1}}
        del update["$set"]["_id"]
        # the running request, if any, in the same write: the version lock keeps a retry
        # that read the document before it from applying it again
        update.update(request_marker())
        if handled_event:
            query[HANDLED_EVENTS] = {"$ne": handled_event}
            update.setdefault("$push", {})[HANDLED_EVENTS] = handled_event
        if push:
            update.setdefault("$push", {}).update(push)
        written = self.db[collection].update_one(query, self._with_events(update, events))
        if not written.matched_count:
            raise ConcurrentUpdate(f"{collection} {document['_id']!r} changed meanwhile")
        if events:
            self.flush(collection, document["_id"], events)
        return {**fields, VERSION: version + 1}

    def flush(self, collection: str, document_id: str, events: Sequence[Envelope]) -> None:
        """Publish ``events`` (confirmed) and drop each from the outbox once the broker has it;
        then the lease too, if the outbox is empty."""
        if self.publisher is None:
            return
        for event in events:
            try:
                self.publisher.publish(event)
            except Exception:
                log.exception("event %s stays in the outbox for the relay", event["id"])
                return
            self.db[collection].update_one(
                {"_id": document_id}, {"$pull": {OUTBOX: {"id": event["id"]}}}
            )
        # Only if nothing was queued meanwhile (its write set the lease again, so the
        # condition is checked in the same write as the unset).
        self.db[collection].update_one(
            {"_id": document_id, OUTBOX: {"$size": 0}, OUTBOX_LEASE: {"$exists": True}},
            {"$unset": {OUTBOX_LEASE: ""}})

    def relay_outbox(self, lease: timedelta = timedelta(seconds=30)) -> int:
        """Send what earlier writes left in outboxes (a crash between write and publish).

        Found by their lease alone (a sparse index: only documents with unsent events hold
        one); a lease left on an empty outbox (a crash before its unset, data written
        before leases went) is claimed once and dropped by ``flush``."""
        sent = 0
        for name in self.outbox_collections:
            for document in claim_each(self.db[name], {}, OUTBOX_LEASE, _utcnow(), lease,
                                       projection={OUTBOX: 1}):
                events = document.get(OUTBOX, [])
                self.flush(name, document["_id"], events)
                sent += len(events)
        return sent


class ConcurrentUpdate(Exception):
    """The document changed between read and write; the caller may retry."""


def estate_scope(filters: Mapping[str, Any], field: str = "estate_id") -> dict[str, Any]:
    """The query part for a list filter's ``estate_id`` and ``estate_ids`` (any of them):
    both give their intersection, so an ``estate_id`` outside ``estate_ids`` finds nothing.
    ``field`` may hold one estate or, like a survey round's ``estate_ids``, several."""
    estate_id, estate_ids = filters.get("estate_id"), filters.get("estate_ids")
    if estate_ids is None:
        return {} if estate_id is None else {field: estate_id}
    if estate_id is None:
        return {field: {"$in": list(estate_ids)}}
    return {field: estate_id if estate_id in estate_ids else {"$in": []}}
