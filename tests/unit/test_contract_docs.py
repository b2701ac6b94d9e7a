"""The documents and the code tell the same story."""
import ast
import importlib
import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.rpc import Rpc

from scripts import asyncapi
from services.notify.notifications import NOTIFICATIONS
from shared.messaging import ReliableEventHandler
from shared.schemas.events import EVENTS
from shared.topology import SUBSCRIPTIONS

ROOT = Path(__file__).resolve().parents[2]
# The official AsyncAPI 3.0.0 JSON Schema, from the npm registry (sha-pinned, into .cache/).
ASYNCAPI_SPECS = ("@asyncapi/specs", "6.11.1",
                  "01af8744dc33c0c7eb2e908f6a955319ee58b70ecadc9387d1aeb16c0cd28928")
ASYNCAPI_SCHEMA = "schemas/3.0.0-without-$id.json"
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


def asyncapi_json_schema():
    package, version, sha256 = ASYNCAPI_SPECS
    directory = ROOT / ".cache" / "asyncapi-specs" / version
    subprocess.run([ROOT / "scripts" / "npm-file.sh", package, version, sha256, directory,
                    ASYNCAPI_SCHEMA], check=True)
    return json.loads((directory / Path(ASYNCAPI_SCHEMA).name).read_text(encoding="utf-8"))


def resolve(document, reference):
    """The object a local ``$ref`` ("#/a/b~1c") points to in ``document``."""
    found = document
    for part in reference.removeprefix("#/").split("/"):
        found = found[part.replace("~1", "/").replace("~0", "~")]
    return found


def test_asyncapi_document_is_valid_asyncapi_3_and_its_references_resolve():
    document = yaml.safe_load(asyncapi.render())
    jsonschema.validate(document, asyncapi_json_schema())
    for operation in document["operations"].values():
        channel = resolve(document, operation["channel"]["$ref"])
        for message in operation["messages"]:
            assert resolve(document, message["$ref"]) in channel["messages"].values()


def test_every_event_has_its_sender_and_every_reader_a_receive_operation():
    operations = asyncapi.document()["operations"]
    sent = {name.split(".send.")[1] for name in operations if ".send." in name}
    assert sent == set(EVENTS)
    received = {tuple(name.split(".receive.")) for name in operations if ".receive." in name}
    for consumer, subscriptions in SUBSCRIPTIONS.items():
        assert {(consumer, event) for _, event in subscriptions} <= received
    assert {("headquarters", event) for event in EVENTS} <= received
    assert {("call-centre", "complaint_escalated"), ("call-centre", "revisit_booked")} <= received


def test_the_readmes_call_centre_consumer_is_the_one_the_contract_lists():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    wanted = ast.literal_eval(re.search(r"^WANTED = (\{.*\})$", readme, re.MULTILINE).group(1))
    queue, listed = asyncapi.OUTSIDE_CONSUMERS["call-centre"]
    assert wanted == listed
    assert f'queue = Queue("{queue}"' in readme


@pytest.mark.parametrize("service", SERVICES)
def test_rpc_reference_lists_exactly_the_rpcs_each_service_has(service):
    assert documented_rpcs().get(service, set()) == set(entrypoints(service, Rpc))


@pytest.mark.parametrize("service", SERVICES)
def test_handlers_and_topology_agree(service):
    handled = {(h.source_service, h.event_type)
               for h in entrypoints(service, ReliableEventHandler).values()}
    assert handled == set(SUBSCRIPTIONS[service])
    assert all(EVENTS[event][0] == source for source, event in handled)


def notify_events_table():
    """{event type: its row's message column} from the table of what notify handles."""
    rows, in_notify, in_table = {}, False, False
    for line in (ROOT / "docs" / "rpc.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            in_notify = line == "## notify"
        elif in_notify and line.startswith("| event | message"):
            in_table = True
        elif in_table and not line.startswith("|"):
            break
        elif in_table and line.startswith("| `"):
            events, message = line.split(" | ")[:2]
            for event in re.findall(r"`(\w+)`", events):
                rows[event] = message
    return rows


def test_notify_events_table_lists_every_event_notify_handles_and_its_messages():
    handled = {handler.event_type for handler in
               entrypoints("notify", ReliableEventHandler).values()}
    table = notify_events_table()
    assert set(table) == handled
    for event, message in table.items():
        sent = {notification.template for notification in NOTIFICATIONS.get(event, ())}
        assert sent <= set(re.findall(r"`(\w+)`", message)), (event, sent)
        assert sent or message.startswith("none"), event
