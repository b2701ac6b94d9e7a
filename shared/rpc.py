"""RPC helpers: the entrypoint that knows our expected errors, and results as JSON.

RPC results are JSON-able dicts: ids are strings, times ISO 8601 with offset,
no BSON type and no store bookkeeping (outbox, versions) crosses the wire.
"""
from datetime import datetime
from functools import partial

from nameko.rpc import rpc as _rpc

from shared.errors import EXPECTED_ERRORS

rpc = partial(_rpc, expected_exceptions=EXPECTED_ERRORS)

INTERNAL_KEYS = frozenset({"outbox", "outbox_lease", "handled_events", "version"})


def to_json(value):
    if isinstance(value, dict):
        return {
            ("id" if key == "_id" else key): to_json(item)
            for key, item in value.items() if key not in INTERNAL_KEYS
        }
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
