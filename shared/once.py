"""Insert once: a write whose document has an id (or another unique key) derived from what
caused it, so doing it again - a redelivered event, a retried request, a second instance
at the same moment - finds the key taken instead of storing a copy.

``insert_once`` runs the write and gives its answer, or None when it stored nothing: the
store's ``DuplicateKeyError`` (the key is taken) is the "already done" answer, never an
error to the caller. Any write that inserts will do: ``insert_one``, a repository's
``insert_with_events``, or an upsert (``update_one(..., upsert=True)``: two upserts of one
new ``_id`` at the same moment can both try to insert on MongoDB, and one is refused).

    >>> from shared.embedded import new_client
    >>> orders = new_client()["example"]["orders"]
    >>> insert_once(orders.insert_one, {"_id": "wo-1", "kind": "repair"}).inserted_id
    'wo-1'
    >>> insert_once(orders.insert_one, {"_id": "wo-1", "kind": "repair"}) is None
    True
    >>> orders.count_documents({})
    1
"""
from collections.abc import Callable
from typing import TypeVar

from pymongo.errors import DuplicateKeyError

Answer = TypeVar("Answer")


def insert_once(write: Callable[..., Answer], *args: object, **kwargs: object) -> Answer | None:
    """``write(*args, **kwargs)``'s answer (what it stored, or the store's result), or None
    if the store refused it because a document holds its unique key already."""
    try:
        return write(*args, **kwargs)
    except DuplicateKeyError:
        return None
