"""The base of every service's repository over its own MongoDB database.

Events travel with the state change (transactional outbox inside the
document): a repository writes the change and its pending events in one
document write, then publishes them with confirms and removes them. A relay
in every instance republishes what a crash left behind; each document is
claimed atomically through a lease so two instances do not both send it.
"""
import logging
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from pymongo import ReturnDocument

from shared.errors import NotFound

log = logging.getLogger(__name__)

OUTBOX = "outbox"
OUTBOX_LEASE = "outbox_lease"
HANDLED_EVENTS = "handled_events"   # ids of the events already applied to this document
VERSION = "version"


def _utcnow():
    return datetime.now(UTC)


class Repository:
    """Base of each service's repository: domain verbs over its database.

    Subclasses list ``indexes`` ({collection: [IndexModel, ...]}) and
    ``outbox_collections`` (collections whose documents carry events).
    """

    indexes: ClassVar[dict] = {}
    outbox_collections = ()

    def __init__(self, db, publisher=None, outbox_grace_seconds=10):
        self.db = db
        self.publisher = publisher
        # How long a fresh outbox entry is left to its writer before the relay takes it.
        self.outbox_grace = timedelta(seconds=outbox_grace_seconds)

    def create_indexes(self):
        for name, models in self.indexes.items():
            if models:
                self.db[name].create_indexes(models)
        for name in self.outbox_collections:
            self.db[name].create_index([(OUTBOX_LEASE, 1)], sparse=True)

    def fetch(self, collection, document_id, kind):
        """The document with this id, or ``NotFound`` naming what was asked for."""
        document = self.db[collection].find_one({"_id": document_id})
        if document is None:
            raise NotFound(kind, document_id)
        return document

    # -- writes that carry events -------------------------------------------

    def _outbox_fields(self, events):
        return {OUTBOX_LEASE: _utcnow() + self.outbox_grace} if events else {}

    def insert_with_events(self, collection, document, events):
        """Insert ``document`` with its pending ``events`` in the same write, then publish."""
        document = dict(document, **self._outbox_fields(events), **{OUTBOX: list(events)})
        document.setdefault(VERSION, 0)
        self.db[collection].insert_one(document)
        self.flush(collection, document["_id"], events)
        return document

    def update_with_events(self, collection, query, update, events):
        """Apply ``update`` and queue ``events`` in one write; the document after, or None."""
        update = {key: dict(value) for key, value in update.items()}
        if events:
            update.setdefault("$push", {})[OUTBOX] = {"$each": list(events)}
            update.setdefault("$set", {}).update(self._outbox_fields(events))
        document = self.db[collection].find_one_and_update(
            query, update, return_document=ReturnDocument.AFTER
        )
        if document is not None:
            self.flush(collection, document["_id"], events)
        return document

    def save_versioned(self, collection, document, events, handled_event=None):
        """Write an aggregate read earlier, if nobody changed it since (optimistic lock).

        With ``handled_event`` the write also records that event as applied, and
        matches nothing if it already was: redelivery cannot apply it twice.
        """
        query = {"_id": document["_id"], VERSION: document.get(VERSION, 0)}
        update = {"$set": {
            key: value for key, value in document.items()
            if key not in ("_id", OUTBOX, OUTBOX_LEASE, HANDLED_EVENTS)
        }}
        update["$set"][VERSION] = document.get(VERSION, 0) + 1
        if handled_event:
            query[HANDLED_EVENTS] = {"$ne": handled_event}
            update["$push"] = {HANDLED_EVENTS: handled_event}
        saved = self.update_with_events(collection, query, update, events)
        if saved is None:
            raise ConcurrentUpdate(f"{collection} {document['_id']!r} changed meanwhile")
        return saved

    def flush(self, collection, document_id, events):
        """Publish ``events`` (confirmed) and drop each from the outbox once the broker has it."""
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

    def relay_outbox(self, lease=timedelta(seconds=30)):
        """Send what earlier writes left in outboxes (a crash between write and publish)."""
        sent = 0
        for name in self.outbox_collections:
            while True:
                now = _utcnow()
                document = self.db[name].find_one_and_update(
                    {f"{OUTBOX}.0": {"$exists": True}, OUTBOX_LEASE: {"$lt": now}},
                    {"$set": {OUTBOX_LEASE: now + lease}},
                    projection={OUTBOX: 1},
                )
                if document is None:
                    break
                self.flush(name, document["_id"], document[OUTBOX])
                sent += len(document[OUTBOX])
        return sent


class ConcurrentUpdate(Exception):
    """The document changed between read and write; the caller may retry."""


def estate_scope(filters, field="estate_id"):
    """The query part for a list filter's ``estate_id`` and ``estate_ids`` (any of them):
    both give their intersection, so an ``estate_id`` outside ``estate_ids`` finds nothing.
    ``field`` may hold one estate or, like a survey round's ``estate_ids``, several."""
    estate_id, estate_ids = filters.get("estate_id"), filters.get("estate_ids")
    if estate_ids is None:
        return {} if estate_id is None else {field: estate_id}
    if estate_id is None:
        return {field: {"$in": list(estate_ids)}}
    return {field: estate_id if estate_id in estate_ids else {"$in": []}}
