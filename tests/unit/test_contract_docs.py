"""The documents and the code tell the same story."""
import importlib
import re
from pathlib import Path

import pytest
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.rpc import Rpc

from scripts import asyncapi
from shared.messaging import ReliableEventHandler
from shared.schemas.events import EVENTS
from shared.topology import SUBSCRIPTIONS

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"intake": "IntakeService", "revisit": "RevisitService",
            "survey": "SurveyService", "notify": "NotifyService"}


def entrypoints(service, kind):
    cls = getattr(importlib.import_module(f"services.{service}.service"), SERVICES[service])
    found = {}
    for name in dir(cls):
        for extension in getattr(getattr(cls, name), ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if isinstance(extension, kind):
                found[name] = extension
    return found


def documented_rpcs():
    """{service: {rpc names}} from the tables of docs/rpc.md."""
    documented, service = {}, None
    for line in (ROOT / "docs" / "rpc.md").read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^## (\w+)", line)
        if heading:
            service = heading.group(1)
        row = re.match(r"^\| `(\w+)\(", line)
        if row and service in SERVICES:
            documented.setdefault(service, set()).add(row.group(1))
    return documented


def test_asyncapi_document_is_generated_from_the_schemas():
    committed = (ROOT / "docs" / "asyncapi.yaml").read_text(encoding="utf-8")
    assert committed == asyncapi.render(), "docs/asyncapi.yaml is stale: run `make contract`"


@pytest.mark.parametrize("service", SERVICES)
def test_rpc_reference_lists_exactly_the_rpcs_each_service_has(service):
    assert documented_rpcs().get(service, set()) == set(entrypoints(service, Rpc))


@pytest.mark.parametrize("service", SERVICES)
def test_handlers_and_topology_agree(service):
    handled = {(h.source_service, h.event_type)
               for h in entrypoints(service, ReliableEventHandler).values()}
    assert handled == set(SUBSCRIPTIONS[service])
    assert all(EVENTS[event][0] == source for source, event in handled)
