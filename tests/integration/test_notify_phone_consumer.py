"""Phone systems plug in by consuming the public events: the README's kombu consumer,
run exactly as printed, against the broker and a running intake. It calls about the
events it binds, finds the number through ``intake.get_contact`` (events carry none),
and neither crashes nor stalls on an event with nobody to call."""
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from kombu import Connection, Queue
from nameko.standalone.rpc import ServiceRpcProxy

from services.intake.service import IntakeService
from shared.envelope import new_event
from shared.messaging import EventPublisher
from tests.helpers import ROOT, wait_until

pytestmark = pytest.mark.broker

OWNER_PHONE = "13812345678"
HOUSEHOLDS = [{"household_id": "h-1", "building": "1", "unit": "2", "room": "301",
               "occupied": True, "contacts": [{"name": "王芳", "phone": OWNER_PHONE}]}]
QUEUE = "call-centre.events"


def readme_consumer():
    """The README's consumer block, verbatim."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```python\n(\"\"\"Hand complaint escalations.*?)```", readme, re.DOTALL)
    return block


def consumers_on(uri, name):
    """How many consumers the queue ``name`` has; 0 while it does not exist yet."""
    with Connection(uri) as connection:
        try:
            return Queue(name, durable=True).bind(connection.channel()).queue_declare(
                passive=True).consumer_count
        except connection.channel_errors:
            return 0


@pytest.fixture
def intake(service_config, container_factory):
    # as the README says: the call centre is a standalone script, allowed by name
    config = {**service_config, "CONTACT_CALLERS": ["notify", "standalone_rpc_proxy"]}
    container_factory(IntakeService, config).start()
    with ServiceRpcProxy("intake", service_config, timeout=15) as rpc:
        rpc.import_households("estate-1", HOUSEHOLDS, estate={"name": "测试小区"})
        yield rpc


@pytest.fixture
def call_centre(service_config, tmp_path):
    """The README consumer as its own process; ``output()`` is what it printed."""
    script, printed = tmp_path / "call_centre.py", tmp_path / "call_centre.out"
    script.write_text(readme_consumer(), encoding="utf-8")
    with printed.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(script)], stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
            env={**os.environ, "AMQP_URI": service_config["AMQP_URI"]})
    process.output = lambda: printed.read_text(encoding="utf-8")
    process.calls = lambda: [line for line in process.output().splitlines()
                             if line.startswith("call ")]
    wait_until(lambda: consumers_on(service_config["AMQP_URI"], QUEUE) or process.poll(),
               timeout=20, message="the call centre consuming")
    assert process.poll() is None, process.output()
    yield process
    process.terminate()
    process.wait(timeout=10)


def booked(household_id):
    at = datetime.now(UTC) + timedelta(days=2)
    return new_event("revisit_booked", "revisit", "estate-1", {
        "revisit_id": f"rv-{household_id}", "household_id": household_id, "at": at,
        "method": "phone"}, datetime.now(UTC))


def test_the_readme_consumer_is_about_twenty_lines():
    code = [line for line in readme_consumer().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]
    assert len(code) <= 30


def test_the_readme_consumer_calls_about_escalations_and_bookings_with_the_number_from_intake(
        service_config, intake, call_centre):
    complaint = intake.register_complaint({
        "estate_id": "estate-1", "household_id": "h-1", "channel": "hotline",
        "category": "cleaning", "content": "楼道垃圾三天没人清理"})
    intake.escalate_complaint(complaint["id"], {"staff_id": "cs-01", "reason": "业主要求经理处理"})
    wait_until(call_centre.calls, timeout=15, message="the escalation called")
    assert call_centre.calls() == ["call complaint_escalated estate-1 138****5678"]

    publisher = EventPublisher(service_config)
    for household_id in ("h-404", None, "h-1"):   # unknown to intake, none (common area), h-1
        publisher.publish(booked(household_id))
    wait_until(lambda: len(call_centre.calls()) == 2, timeout=15,
               message="the booking called")

    # One queue, one consumer, in order: the events before h-1's were taken without a call.
    assert call_centre.calls() == ["call complaint_escalated estate-1 138****5678",
                                   "call revisit_booked estate-1 138****5678"]
    assert call_centre.poll() is None, call_centre.output()
    assert OWNER_PHONE not in call_centre.output()
    with Connection(service_config["AMQP_URI"]) as connection:
        left = Queue(QUEUE, durable=True).bind(connection.channel()).queue_declare(passive=True)
    assert left.message_count == 0
