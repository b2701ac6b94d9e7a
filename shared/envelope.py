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
"""
import uuid
from functools import cache

from marshmallow import ValidationError, fields, validates_schema

from shared.errors import InvalidInput
from shared.schemas.base import Id, OneOf, Schema, UtcDateTime, load
from shared.schemas.events import EVENTS
from shared.schemas.vocabulary import SERVICES

SCHEMA_VERSION = 1


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
    def source_publishes_type(self, envelope, **kwargs):
        publisher, _ = EVENTS[envelope["type"]]
        if envelope["source"] != publisher:
            raise ValidationError(f"{envelope['type']} is published by {publisher}", "source")


@cache
def _schema(schema_class):
    """One instance per schema: building marshmallow schemas costs more than using them."""
    return schema_class()


# Derived ids are UUIDs (hex, like the random ones) in a namespace of Huifang's own.
EVENT_ID_NAMESPACE = uuid.UUID("5b2f3c1e-8d4a-4f6e-9a7b-2c1d0e9f8a61")


def event_id(source, event_type, key=None):
    """A random id, or with ``key`` (what makes the change unique) one derived from it."""
    if key is None:
        return uuid.uuid4().hex
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}/{event_type}/{key}").hex


def new_event(event_type, source, estate_id, data, at, key=None):
    """A validated, JSON-able envelope for ``data`` (which may hold datetimes); ``key``
    names the change it announces when that happens once (``event_id``)."""
    publisher, payload_schema = EVENTS[event_type]
    assert source == publisher, f"{source} does not publish {event_type}"
    payload = _schema(payload_schema).dump(data)
    load(_schema(payload_schema), payload)  # the publisher refuses what consumers would refuse
    envelope = {
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
    load(_schema(EnvelopeSchema), envelope)
    return envelope


def new_events(event_type, source, estate_id, rows, at, keys):
    """``new_event`` for each of ``rows`` (with its ``key``): a batch of one type and estate
    whose data have the same fields (a batch of invitations). The first is built and checked
    as ``new_event`` does; each other is that envelope with its own id and the values that
    differ dumped and checked one by one by the payload schema's own fields (checking whole
    envelopes cost more than everything else a batch does)."""
    if not rows:
        return []
    first = new_event(event_type, source, estate_id, rows[0], at, keys[0])
    fields_ = _schema(EVENTS[event_type][1]).fields
    events = [first]
    for data, key in zip(rows[1:], keys[1:], strict=True):
        if data.keys() != rows[0].keys():
            raise ValueError(f"{event_type}: every event of a batch has the same fields")
        payload = dict(first["data"])
        for name, value in data.items():
            if value != rows[0][name]:
                payload[name] = fields_[name].serialize(name, data)
                try:
                    fields_[name].deserialize(payload[name], name, payload)
                except ValidationError as error:
                    raise InvalidInput({f"data.{name}": error.messages}) from None
        events.append(dict(first, id=event_id(source, event_type, key), data=payload))
    return events


def parse_event(body):
    """The envelope with ``data`` loaded by its payload schema; ``InvalidInput`` if malformed."""
    envelope = load(_schema(EnvelopeSchema), body)
    _, payload_schema = EVENTS[envelope["type"]]
    try:
        envelope["data"] = load(_schema(payload_schema), envelope["data"])
    except InvalidInput as exc:
        raise InvalidInput({"data": exc.errors}) from None
    return envelope
