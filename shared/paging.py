"""Cursor paging of the list RPCs: one opaque cursor, one keyset query.

A list is read in a total order: its own sort keys, then ``_id``. A page is the
next ``limit`` documents in that order; the cursor holds the sort-key values of
the last document returned, and the next page is what comes after them — a
keyset condition the list's index starts at, never a ``skip`` over the earlier
pages — so a record inserted before the cursor neither repeats nor hides one.

The cursor is opaque to clients: urlsafe base64 (unpadded) of compact JSON,
``[check, [value, ...]]``, times as ``{"d": microseconds since 1970}``. The
check covers the list's order and the values, so a cursor of another list, a
mangled one or garbage is refused: ``InvalidInput`` on ``cursor``. It is not a
secret: a forged cursor can only choose where a page starts, never widen the
query (the filters and estates come with each request).

Limits: each list's ``limit`` keeps its bounds and default (``Limit``); when it
pages, ``limit`` is the page size, and a list that had no limit of its own
pages by ``DEFAULT_PAGE_SIZE``.

>>> from shared.embedded import new_client
>>> complaints = new_client()["intake"]["complaints"]
>>> _ = complaints.insert_many([{"_id": f"cmp-{n}", "received_at": n % 3} for n in range(5)])
>>> newest_first = [("received_at", DESCENDING)]
>>> page, cursor = find_page(complaints, {}, newest_first, limit=2)
>>> [complaint["_id"] for complaint in page]      # ties broken by _id, in the same direction
['cmp-2', 'cmp-4']
>>> page, cursor = find_page(complaints, {}, newest_first, limit=2, cursor=cursor)
>>> [complaint["_id"] for complaint in page]
['cmp-1', 'cmp-3']
>>> page, cursor = find_page(complaints, {}, newest_first, limit=2, cursor=cursor)
>>> [complaint["_id"] for complaint in page], cursor      # the last page: no cursor
(['cmp-0'], None)
>>> answer(["cmp-0"], None, paged=True)
{'items': ['cmp-0'], 'next_cursor': None}
>>> decode_cursor([("status", ASCENDING)], encode_cursor(newest_first, [1, "cmp-1"]))
Traceback (most recent call last):
shared.errors.InvalidInput: {"cursor": ["not a valid cursor"]}
"""
import base64
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn, TypedDict

from marshmallow import ValidationError, fields, validate
from pymongo.collection import Collection

from shared.errors import InvalidInput
from shared.schemas.base import Schema, load

ASCENDING, DESCENDING = 1, -1
DEFAULT_PAGE_SIZE = 100
MAX_CURSOR_LENGTH = 2048
NOT_A_CURSOR = "not a valid cursor"

Order = Sequence[tuple[str, int]]
Key = str | int | float | bool | datetime

_CURSOR_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
_CHECK_PATTERN = re.compile(r"^[0-9a-f]{16}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


# the cursor ------------------------------------------------------------------------

def total_order(sort: Order) -> list[tuple[str, int]]:
    """``sort`` with ``_id`` last (in the last key's direction): every tie broken."""
    order = [(field, direction) for field, direction in sort]
    if all(field != "_id" for field, _ in order):
        order.append(("_id", order[-1][1] if order else ASCENDING))
    return order


def encode_cursor(sort: Order, values: Sequence[Key]) -> str:
    """The cursor after a document whose keys in ``total_order(sort)`` are ``values``."""
    body = [_key_to_json(value) for value in values]
    text = json.dumps([_check(total_order(sort), body), body], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("ascii")).rstrip(b"=").decode("ascii")


def decode_cursor(sort: Order, cursor: Any) -> list[Key]:
    """The key values a cursor of this order holds; ``InvalidInput`` on ``cursor`` if it
    is not one (garbage, mangled, or made for another list)."""
    order = total_order(sort)
    try:
        check, body = _parse(cursor)
        if len(body) != len(order) or check != _check(order, body):
            raise ValueError("not made for this order")
        return [_key_from_json(value) for value in body]
    except ValueError:
        raise InvalidInput({"cursor": [NOT_A_CURSOR]}) from None


def _parse(cursor: Any) -> tuple[str, list]:
    """The check and values of a well-formed cursor; ValueError for anything else."""
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_LENGTH \
            or not _CURSOR_PATTERN.fullmatch(cursor):
        raise ValueError("not a cursor")
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)),
                             parse_constant=_refuse_constant)
    except RecursionError:           # "[[[[…": nesting deeper than json can read
        raise ValueError("nested too deep") from None
    if not (isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], str)
            and _CHECK_PATTERN.match(payload[0]) and isinstance(payload[1], list)
            and payload[1]):
        raise ValueError("not a cursor")
    for value in payload[1]:
        _key_from_json(value)
    return payload[0], payload[1]


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a key value")


def _check(order: Order, body: list) -> str:
    text = json.dumps([list(map(list, order)), body], separators=(",", ":"), sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _key_to_json(value: Key) -> Any:
    if isinstance(value, datetime):   # stored UTC; exact to the microsecond
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return {"d": (moment - _EPOCH) // _MICROSECOND}
    if isinstance(value, (str, bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return value
    raise TypeError(f"{type(value).__name__} cannot be a sort key of a paged list")


def _key_from_json(value: Any) -> Key:
    if isinstance(value, dict):
        micros = value.get("d")
        if set(value) != {"d"} or not isinstance(micros, int) or isinstance(micros, bool):
            raise ValueError("not a time")
        try:
            return _EPOCH + micros * _MICROSECOND
        except OverflowError:
            raise ValueError("out of range") from None
    if isinstance(value, (str, bool, int, float)):   # json gives no NaN or infinity here
        return value
    raise ValueError("not a key value")


# the query -------------------------------------------------------------------------

def find_page(collection: Collection, query: Mapping, sort: Order, limit: int | None,
              cursor: str | None = None, projection: Mapping | None = None,
              ) -> tuple[list[dict], str | None]:
    """The documents of ``query`` in ``total_order(sort)`` after ``cursor`` (None: from the
    start), at most ``limit`` (None: all), and the cursor of the next page (None: last)."""
    order = total_order(sort)
    if cursor is not None:
        query = {"$and": [query, _after(order, decode_cursor(sort, cursor))]}
    found = collection.find(query, projection).sort(order)
    if limit is None:
        return list(found), None
    documents = list(found.limit(limit + 1))   # one more: is there a next page?
    if len(documents) <= limit:
        return documents, None
    documents = documents[:limit]
    return documents, encode_cursor(sort, [documents[-1][field] for field, _ in order])


def _after(order: Order, values: Sequence[Key]) -> dict:
    """What comes after ``values`` in ``order``: the keyset ``$or``, with a bound on the
    first key so the index scan starts at the cursor instead of at the first page."""
    branches = []
    for position, (field, direction) in enumerate(order):
        branch: dict[str, Any] = {name: value
                                  for (name, _), value in zip(order[:position], values)}
        branch[field] = {"$gt" if direction == ASCENDING else "$lt": values[position]}
        branches.append(branch)
    first, direction = order[0]
    return {first: {"$gte" if direction == ASCENDING else "$lte": values[0]}, "$or": branches}


# the RPC side ------------------------------------------------------------------------

class Cursor(fields.String):
    """``cursor``: the ``next_cursor`` of the page before (null: the first page)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_none=True, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Mapping[str, Any] | None,
                     **kwargs: Any) -> Any:
        try:
            _parse(value)
        except ValueError:
            raise ValidationError(NOT_A_CURSOR) from None
        return value


def Limit(maximum: int, default: int | None = None) -> fields.Integer:
    """``limit``: 1 to ``maximum``; without one, ``default`` (None: the whole list, or
    ``DEFAULT_PAGE_SIZE`` when paged). Paged, it is the page size."""
    return fields.Integer(strict=True, validate=validate.Range(1, maximum), load_default=default)


class ListFilters(Schema):
    """What every paged list accepts besides its own filters (each declares its ``limit``)."""

    cursor = Cursor()


def load_filters(schema: Schema, filters: Any, paged: Any) -> dict:
    """A list RPC's filters, loaded by ``load`` (``$`` keys refused): ``cursor`` only on a
    paged call, and a paged call's page size."""
    if not isinstance(paged, bool):
        raise InvalidInput({"paged": ["must be true or false"]})
    data = load(schema, filters)
    if data.get("cursor") is None:
        data.pop("cursor", None)
    elif not paged:
        raise InvalidInput({"cursor": ["only with paged=true"]})
    if paged and data.get("limit") is None:
        data["limit"] = DEFAULT_PAGE_SIZE
    return data


class Page(TypedDict):
    """A paged list RPC's result."""
    items: list[Any]
    next_cursor: str | None     # None: the last page


def answer(items: list, next_cursor: str | None, paged: bool) -> list | Page:
    """A list RPC's result: the plain list, or paged ``{"items", "next_cursor"}``."""
    return {"items": items, "next_cursor": next_cursor} if paged else items
