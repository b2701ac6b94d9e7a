"""Generate docs/asyncapi.yaml from the event schemas and the topology.

    make contract     (a test fails when the committed file is stale)

The contract is written once, in shared/schemas/events.py; this file only
translates it, so the document cannot drift from what services send. Operations:
each event is *sent* by its service and *received* by every service that subscribes
to it (shared/topology.py) and by the outside consumers the README describes, so
generators and catalogues that read operations see who reads what.
"""
import sys

import yaml
from marshmallow import fields, validate

from shared.envelope import EnvelopeSchema
from shared.schemas.events import EVENTS
from shared.topology import SUBSCRIPTIONS, queue_name

# The outside consumers of README.md ("Nothing lost, nothing done twice"): each binds a
# durable queue of its own, {consumer: (queue, {source: [event types]} or None for all)}.
OUTSIDE_CONSUMERS = {
    # the call-centre (IVR) consumer printed in the README, phoning owners
    "call-centre": ("call-centre.events", {"intake": ["complaint_escalated"],
                                           "revisit": ["revisit_booked"]}),
    # headquarters' data warehouse: every estate's events, all of them ("#")
    "headquarters": ("headquarters.events", None),
}

FIELD_TYPES = [
    (fields.AwareDateTime, {"type": "string", "format": "date-time"}),
    (fields.Boolean, {"type": "boolean"}),
    (fields.Integer, {"type": "integer"}),
    (fields.Float, {"type": "number"}),
    (fields.Dict, {"type": "object"}),
    (fields.List, {"type": "array"}),
    (fields.String, {"type": "string"}),
]


def field_schema(field):
    schema = next((dict(s) for kind, s in FIELD_TYPES if isinstance(field, kind)), {})
    for rule in field.validators:
        if isinstance(rule, validate.OneOf):
            schema["enum"] = list(rule.choices)
    if field.allow_none:
        schema["type"] = [schema["type"], "null"]
    return schema


def object_schema(schema):
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [name for name, field in schema.fields.items() if field.required],
        "properties": {name: field_schema(field) for name, field in schema.fields.items()},
    }


def consumers_of(source, event_type):
    return sorted(consumer for consumer, pairs in SUBSCRIPTIONS.items()
                  if (source, event_type) in pairs)


def receivers_of(source, event_type):
    """[(consumer, its queue)] of every service and outside consumer that reads the event."""
    found = [(consumer, queue_name(consumer, source, event_type))
             for consumer in consumers_of(source, event_type)]
    for consumer, (queue, wanted) in OUTSIDE_CONSUMERS.items():
        if wanted is None or event_type in wanted.get(source, ()):
            found.append((consumer, queue))
    return found


def operations_of(channel_id, source, event_type):
    """The operations on one event's channel: its service sends it, each reader receives it
    from a durable queue of its own and acks it once handled."""
    channel = {"$ref": f"#/channels/{channel_id}"}
    messages = [{"$ref": f"#/channels/{channel_id}/messages/{event_type}"}]
    operations = {f"{source}.send.{event_type}": {
        "action": "send", "channel": channel, "messages": messages,
        "summary": f"{source} publishes {event_type} (persistent, with publisher confirms)",
        "bindings": {"amqp": {"deliveryMode": 2}},
    }}
    for consumer, queue in receivers_of(source, event_type):
        operations[f"{consumer}.receive.{event_type}"] = {
            "action": "receive", "channel": channel, "messages": messages,
            "summary": f"{consumer} reads {event_type} from its durable queue '{queue}'",
            "bindings": {"amqp": {"ack": True}},
        }
    return operations


def document():
    envelope = object_schema(EnvelopeSchema())
    channels, operations, messages = {}, {}, {}
    for event_type, (source, payload) in EVENTS.items():
        message = {
            "name": event_type,
            "summary": (payload.__doc__ or event_type).strip().splitlines()[0],
            "contentType": "application/json",
            "payload": {**envelope, "properties": {
                **envelope["properties"],
                "type": {"const": event_type},
                "source": {"const": source},
                "data": object_schema(payload()),
            }},
        }
        messages[event_type] = message
        channel_id = f"{source}.events.{event_type}"
        readers = [consumer for consumer, _ in receivers_of(source, event_type)]
        channels[channel_id] = {
            "address": event_type,
            "description": f"Published by {source} on the topic exchange '{source}.events' "
                           f"with routing key '{event_type}'. Consumed by: "
                           f"{', '.join(readers)}.",
            "messages": {event_type: {"$ref": f"#/components/messages/{event_type}"}},
            "bindings": {"amqp": {"is": "routingKey", "exchange": {
                "name": f"{source}.events", "type": "topic", "durable": True}}},
        }
        operations.update(operations_of(channel_id, source, event_type))
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Huifang events",
            "version": "1.0.0",
            "description": "Every event Huifang publishes, in one envelope (specversion, "
                           "id, type, source, time, estate_id, schema_version, "
                           "datacontenttype, data), who sends it and who receives it. "
                           "Generated by scripts/asyncapi.py from shared/schemas/events.py.",
        },
        "servers": {"rabbitmq": {"host": "127.0.0.1:5672", "protocol": "amqp"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def render():
    return yaml.safe_dump(document(), allow_unicode=True, sort_keys=False, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
