"""Claim with a lease: background work that every instance of a service runs (a timer, a
relay) takes one document at a time, so that two instances never do the same piece.

A document is free when its lease field - the moment its last holder's claim ends -
has passed; ``claim`` takes a free one in a single ``find_one_and_update`` that moves
the field to ``now + lease``. Of two instances asking at once, one gets it; a holder
that dies lets the lease lapse, and the document comes back to whoever asks next. The
field's name is the caller's (each kind of work has its own, under its own index; the
stored names stay as they always were): ``outbox_lease``, ``stats_settle_after``,
``count_after``, ``closing_until``, ``progress.lease_until``, ``lease_until``.

    >>> from datetime import UTC, datetime, timedelta
    >>> from shared.embedded import new_client
    >>> months = new_client()["example"]["months"]
    >>> now = datetime(2026, 11, 1, tzinfo=UTC)
    >>> _ = months.insert_one({"_id": "e-1:2026-10", "pending": True, "closing_until": now})
    >>> claim(months, {"pending": True}, "closing_until", now, timedelta(minutes=5))["_id"]
    'e-1:2026-10'
    >>> claim(months, {"pending": True}, "closing_until", now, timedelta(minutes=5)) is None
    True
    >>> later = now + timedelta(minutes=5)   # its holder died: the lease lapsed
    >>> claim(months, {"pending": True}, "closing_until", later, timedelta(minutes=5))["_id"]
    'e-1:2026-10'

``claim_many`` takes a batch in three requests instead of one a document (notify's
dispatcher), each document still taken by one holder only:

    >>> queue = new_client()["example"]["queue"]
    >>> _ = queue.insert_many([{"_id": n, "status": "queued", "due_at": now} for n in range(3)])
    >>> [d["_id"] for d in claim_many(queue, {"status": "queued"}, "due_at", now,
    ...                               timedelta(minutes=5), 2, {"claim": "mine"})]
    [0, 1]
    >>> [d["_id"] for d in claim_many(queue, {"status": "queued"}, "due_at", now,
    ...                               timedelta(minutes=5), 5, {"claim": "other"})]
    [2]
"""
import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from pymongo.collection import Collection


def claim(collection: Collection, query: dict, field: str, now: datetime, lease: timedelta,
          update: dict | None = None, free_when_missing: bool = False,
          **options: Any) -> dict | None:
    """One document of ``query`` whose ``field`` is not after ``now``, now held until
    ``now + lease`` (``update``: more changes in the same write); None if none is free.

    ``free_when_missing``: a document without the field (or with None) is free too - for
    work whose documents are made without one. Leave it off where the field exists only
    while there is work (a sparse index then finds the candidates without looking at
    the rest). ``options`` go to ``find_one_and_update`` (``projection``,
    ``return_document``)."""
    lapsed: dict[str, Any] = {field: {"$lte": now}}
    if free_when_missing:
        lapsed = {"$or": [{field: None}, lapsed]}
    update = dict(update or {})
    update["$set"] = {**update.get("$set", {}), field: now + lease}
    return collection.find_one_and_update({**query, **lapsed}, update, **options)


def claim_each(collection: Collection, query: dict, field: str, now: datetime,
               lease: timedelta, limit: int | None = None, **options: Any) -> Iterator[dict]:
    """``claim`` again and again: each free document in turn (up to ``limit`` of them, if
    given). Each is held before it is handed out, so the caller may take its time over it."""
    for _ in itertools.count() if limit is None else range(limit):
        document = claim(collection, query, field, now, lease, **options)
        if document is None:
            return
        yield document


def claim_many(collection: Collection, query: dict, field: str, now: datetime,
               lease: timedelta, limit: int, holder: dict, update: dict | None = None,
               ) -> list[dict]:
    """Up to ``limit`` free documents of ``query`` at once, held until ``now + lease`` and
    marked with ``holder`` (a field and a value unique to this caller) in the same write
    (``update``: more to ``$set``); the list, in no set order.

    One query finds candidates by the lease field alone (unsorted: its sparse index, no
    copy of all that are free), one ``update_many`` takes them by id, each on condition
    that it is still free and in ``query`` (atomic per document: of two callers, one gets
    each), one read gets those ``holder`` holds."""
    found = [document["_id"] for document in
             collection.find({field: {"$lte": now}}, {"_id": 1}).limit(limit)]
    if not found:
        return []
    collection.update_many({"_id": {"$in": found}, field: {"$lte": now}, **query},
                           {"$set": {**(update or {}), **holder, field: now + lease}})
    return list(collection.find({"_id": {"$in": found}, **holder}))
