"""Deep copies of stored documents: what a record holds is dicts, lists and values nothing
changes in place (text, numbers, times), so only the dicts and lists are copied — about
ten times faster than ``copy.deepcopy``, whose memo and ``__reduce_ex__`` per datetime
cost more than a write (the embedded store copies on every read and update; the domain
copies a record before it changes it).

>>> from datetime import UTC, datetime
>>> record = {"status": "open", "history": [{"at": datetime(2026, 12, 1, tzinfo=UTC)}]}
>>> copied = deep_copy(record)
>>> copied["history"].append({"at": None})
>>> len(record["history"]), copied["history"][0]["at"] is record["history"][0]["at"]
(1, True)
"""
import copy
from collections import OrderedDict
from datetime import date, datetime
from typing import Any, TypeVar

# values a document shares safely between copies: nothing changes them in place
UNCHANGING = frozenset({str, int, float, bool, bytes, datetime, date, type(None)})

T = TypeVar("T")


def deep_copy(value: T, memo: dict[int, Any] | None = None) -> T:
    """``copy.deepcopy`` for what documents hold: dicts and lists copied, values that never
    change in place shared, anything else deep-copied as before."""
    kind = type(value)
    if kind is dict:
        return {key: deep_copy(item) for key, item in value.items()}  # type: ignore[attr-defined,return-value]
    if kind is OrderedDict:   # an upserted document as mongomock stores it
        return OrderedDict((key, deep_copy(item)) for key, item in value.items())  # type: ignore[attr-defined,return-value]
    if kind is list:
        return [deep_copy(item) for item in value]  # type: ignore[attr-defined,return-value]
    if kind in UNCHANGING:
        return value
    return copy.deepcopy(value, memo)
