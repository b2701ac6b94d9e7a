"""Which MongoDB a service's repository works on: a server's when ``MONGO_URI`` names one,
otherwise the embedded store (mongomock, ``shared.embedded``), one per process, shared
like a server would be: two instances of a service in one process see the same data.

    >>> client = open_client({}, "intake")           # no MONGO_URI: the embedded store
    >>> client is open_client({}, "survey")
    True
    >>> database_name({"MONGO_DB_PREFIX": "test"}, "intake")
    'test_intake'
    >>> close_client(client)                         # the embedded store stays open
    >>> client["test_intake"].list_collection_names()
    []
"""
import logging
from typing import Any

import pymongo

from shared import embedded

log = logging.getLogger(__name__)
_embedded_client = None


def open_client(config: dict, service: str) -> "pymongo.MongoClient[dict[str, Any]]":
    """A client of the server ``MONGO_URI`` names (times come back aware, in UTC), or the
    process's embedded store, which says once that its data will not survive a restart."""
    uri = config.get("MONGO_URI") or ""
    return pymongo.MongoClient(uri, tz_aware=True) if uri else embedded_client(service)


def embedded_client(service: str) -> Any:
    """The process's one embedded store."""
    global _embedded_client
    if _embedded_client is None:
        _embedded_client = embedded.new_client()
        log.warning(
            "%s: MONGO_URI is not set - using the embedded in-memory store, for trying "
            "the system and for tests (one process; lookups by a declared index's first "
            "key, shared/embedded.py); data will NOT survive a restart", service,
        )
    return _embedded_client


def is_embedded(client: object) -> bool:
    return client is _embedded_client


def database_name(config: dict, service: str) -> str:
    """The service's own database: ``<MONGO_DB_PREFIX or huifang>_<service>``."""
    return f"{config.get('MONGO_DB_PREFIX') or 'huifang'}_{service}"


def close_client(client: "pymongo.MongoClient[dict[str, Any]]") -> None:
    """Close a server's client; the embedded store stays, for the process's other services."""
    if not is_embedded(client):
        client.close()
