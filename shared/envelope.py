"""The one event envelope (CloudEvents structured JSON, plus ``estate_id``).

``new_event`` builds and validates an envelope at the publisher;
``parse_event`` validates it again at every consumer with the same schema.
Envelopes are stored in outboxes and sent as plain JSON: ids are strings,
times ISO 8601 UTC.
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


def new_event(event_type, source, estate_id, data, at):
    """A validated, JSON-able envelope for ``data`` (which may hold datetimes)."""
    publisher, payload_schema = EVENTS[event_type]
    assert source == publisher, f"{source} does not publish {event_type}"
    payload = _schema(payload_schema).dump(data)
    load(_schema(payload_schema), payload)  # the publisher refuses what consumers would refuse
    envelope = {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
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


def parse_event(body):
    """The envelope with ``data`` loaded by its payload schema; ``InvalidInput`` if malformed."""
    envelope = load(_schema(EnvelopeSchema), body)
    _, payload_schema = EVENTS[envelope["type"]]
    try:
        envelope["data"] = load(_schema(payload_schema), envelope["data"])
    except InvalidInput as exc:
        raise InvalidInput({"data": exc.errors}) from None
    return envelope
