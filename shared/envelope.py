"""The one event envelope (CloudEvents structured JSON, plus ``estate_id``).

``new_event`` builds and validates an envelope at the publisher;
``parse_event`` validates it again at every consumer with the same schema.
Envelopes are stored in outboxes and sent as plain JSON: ids are strings,
times ISO 8601 UTC.

An event that announces a change which happens once (a revisit's announcement, an
invitation, the n-th closing of a complaint) is built with the ``key`` of that change: its
id derives from it, so an event built again for the same change (a retry, a timer's pass
after a crash) has the same id, and consumers, who keep one effect per event id (notify's
deliveries), do it once.

>>> from datetime import UTC, datetime
>>> at = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
>>> complaint = {"_id": "cmp-1", "estate_id": "estate-1"}
>>> told = {"staff_id": "s-1", "acknowledged_at": at}
>>> event = record_event("complaint_acknowledged", "intake", complaint, "complaint_id", told,
...                      at, key="cmp-1/2")
>>> event["type"], event["source"], event["estate_id"], event["data"]["acknowledged_at"]
('complaint_acknowledged', 'intake', 'estate-1', '2026-11-23T02:00:00+00:00')
>>> again = new_event("complaint_acknowledged", "intake", "estate-1",
...                   dict(told, complaint_id="cmp-1"), at, key="cmp-1/2")
>>> again == event      # the same change built again: the same event, the same id
True
>>> parse_event(event)["data"]["acknowledged_at"] == at   # what a consumer reads
True
>>> parse_event(dict(event, source="survey"))
Traceback (most recent call last):
shared.errors.InvalidInput: {"source": ["complaint_acknowledged is published by intake"]}
"""
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import cache
from typing import Any, TypedDict, TypeVar

from marshmallow import ValidationError, fields, validates_schema
from marshmallow.decorators import VALIDATES_SCHEMA

from shared.errors import InvalidInput
from shared.schemas.base import Id, OneOf, Schema, UtcDateTime, load
from shared.schemas.base import _bad_text as bad_text  # (load's own check of text)
from shared.schemas.events import EVENTS
from shared.schemas.vocabulary import SERVICES

SCHEMA_VERSION = 1


class Envelope(TypedDict):
    """An event as published, stored in an outbox and sent: plain JSON."""
    specversion: str
    id: str
    type: str
    source: str
    time: str               # ISO 8601, UTC
    estate_id: str
    schema_version: int
    datacontenttype: str
    data: dict[str, Any]


class Event(TypedDict):
    """An event as a consumer reads it (``parse_event``): times are aware datetimes again,
    in ``time`` and in ``data``."""
    specversion: str
    id: str
    type: str
    source: str
    time: datetime
    estate_id: str
    schema_version: int
    datacontenttype: str
    data: dict[str, Any]


# What a domain step returns: the record as changed (or the changes to write to it) and
# the events that announce it.
Changed = tuple[dict, list[Envelope]]

SchemaT = TypeVar("SchemaT", bound=Schema)


class EnvelopeSchema(Schema):
    specversion = fields.String(load_default="1.0")
    id = fields.String(required=True)
    type = OneOf(list(EVENTS), required=True)
    source = OneOf(SERVICES, required=True)
    time = UtcDateTime(required=True)
    estate_id = Id(required=True)
    schema_version = fields.Integer(required=True, strict=True)
    datacontenttype = fields.String(load_default="application/json")
    data = fields.Dict(required=True)

    @validates_schema
    def source_publishes_type(self, envelope: dict[str, Any], **kwargs: Any) -> None:
        publisher, _ = EVENTS[envelope["type"]]
        if envelope["source"] != publisher:
            raise ValidationError(f"{envelope['type']} is published by {publisher}", "source")


@cache
def _schema(schema_class: type[SchemaT]) -> SchemaT:
    """One instance per schema: building marshmallow schemas costs more than using them."""
    return schema_class()


# Derived ids are UUIDs (hex, like the random ones) in a namespace of Huifang's own.
EVENT_ID_NAMESPACE = uuid.UUID("5b2f3c1e-8d4a-4f6e-9a7b-2c1d0e9f8a61")


def event_id(source: str, event_type: str, key: str | None = None) -> str:
    """A random id, or with ``key`` (what makes the change unique) one derived from it."""
    if key is None:
        return uuid.uuid4().hex
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}/{event_type}/{key}").hex


def new_event(event_type: str, source: str, estate_id: str, data: dict[str, Any], at: datetime,
              key: str | None = None) -> Envelope:
    """A validated, JSON-able envelope for ``data`` (which may hold datetimes); ``key``
    names the change it announces when that happens once (``event_id``)."""
    publisher, payload_schema = EVENTS[event_type]
    assert source == publisher, f"{source} does not publish {event_type}"
    firsts = _SIMILAR.get()
    kind = (event_type, estate_id, frozenset(data))
    if firsts is not None and kind in firsts:
        first_data, first = firsts[kind]
        return _like(first, first_data, data, at, key)
    payload = _schema(payload_schema).dump(data)
    load(_schema(payload_schema), payload)  # the publisher refuses what consumers would refuse
    envelope: Envelope = {
        "specversion": "1.0",
        "id": event_id(source, event_type, key),
        "type": event_type,
        "source": source,
        "time": at.isoformat(),
        "estate_id": estate_id,
        "schema_version": SCHEMA_VERSION,
        "datacontenttype": "application/json",
        "data": payload,
    }
    # its own fields (the payload was checked just above: not walked through again)
    load(_schema(EnvelopeSchema), dict(envelope, data={}))
    if firsts is not None and not _schema(payload_schema)._hooks[VALIDATES_SCHEMA]:
        firsts[kind] = dict(data), {**envelope, "data": dict(payload)}   # (copies: kept)
    return envelope


# Within ``similar_events``: (type, estate, fields) -> (data, envelope) of the first such
# event ``new_event`` built and checked in full; None outside.
_SIMILAR: ContextVar[dict | None] = ContextVar("similar_events", default=None)


@contextmanager
def similar_events() -> Iterator[None]:
    """Many events of one kind built one by one (notify's dispatcher: a batch's
    ``notification_sent``): within, ``new_event`` checks the first of each type, estate and
    set of fields in full, and each other like it as ``new_events`` checks a batch — only
    the values that differ, by the payload schema's own fields (payload schemas with a
    whole-payload rule are always checked in full)."""
    token = _SIMILAR.set({})
    try:
        yield
    finally:
        _SIMILAR.reset(token)


def _like(first: Envelope, first_data: dict[str, Any], data: dict[str, Any], at: datetime,
          key: str | None) -> Envelope:
    """``first`` (built from ``first_data``, checked in full) for ``data``, which has the
    same fields: its own id and time, and the values that differ dumped and checked one by
    one (their field, and clean text as ``load`` wants it)."""
    fields_ = _schema(EVENTS[first["type"]][1]).fields
    payload = dict(first["data"])
    for name, value in data.items():
        same = first_data[name]
        if type(value) is type(same) and value == same:   # (1 == True: not the same value)
            continue
        payload[name] = fields_[name].serialize(name, data)
        problems: list[Any] = [problem for _, problem in bad_text(payload[name])]
        try:
            fields_[name].deserialize(payload[name], name, payload)
        except ValidationError as error:
            problems += error.messages if isinstance(error.messages, list) else [error.messages]
        if problems:
            raise InvalidInput({f"data.{name}": problems})
    event = {**first, "id": event_id(first["source"], first["type"], key), "data": payload}
    if event["time"] != at.isoformat():
        event["time"] = at.isoformat()
        try:
            _schema(EnvelopeSchema).fields["time"].deserialize(event["time"], "time", event)
        except ValidationError as error:
            raise InvalidInput({"time": error.messages}) from None
    return event  # type: ignore[return-value]


def record_event(event_type: str, source: str, record: dict, id_field: str, data: dict,
                 at: datetime, key: str | None = None) -> Envelope:
    """``new_event`` announcing a change to a stored ``record`` (a complaint, a work order, a
    revisit, a delivery): in the record's estate, naming the record in ``data`` as
    ``id_field``. Each domain module binds its own source and id field once (its ``_event``)."""
    return new_event(event_type, source, record["estate_id"],
                     dict(data, **{id_field: record["_id"]}), at, key=key)


def new_events(event_type: str, source: str, estate_id: str, rows: Sequence[dict[str, Any]],
               at: datetime, keys: Sequence[str]) -> list[Envelope]:
    """``new_event`` for each of ``rows`` (with its ``key``): a batch of one type and estate
    whose data have the same fields (a batch of invitations). The first is built and checked
    as ``new_event`` does; each other is that envelope with its own id and the values that
    differ dumped and checked one by one by the payload schema's own fields (checking whole
    envelopes cost more than everything else a batch does)."""
    if not rows:
        return []
    first = new_event(event_type, source, estate_id, rows[0], at, keys[0])
    events = [first]
    for data, key in zip(rows[1:], keys[1:], strict=True):
        if data.keys() != rows[0].keys():
            raise ValueError(f"{event_type}: every event of a batch has the same fields")
        events.append(_like(first, rows[0], data, at, key))
    return events


def parse_event(body: object) -> Event:
    """The envelope with ``data`` loaded by its payload schema; ``InvalidInput`` if malformed."""
    envelope = load(_schema(EnvelopeSchema), body)
    _, payload_schema = EVENTS[envelope["type"]]
    try:
        envelope["data"] = load(_schema(payload_schema), envelope["data"])
    except InvalidInput as exc:
        raise InvalidInput({"data": exc.errors}) from None
    return envelope
