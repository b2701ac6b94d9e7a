"""RabbitMQ restarted mid-stream: nothing lost, nothing done twice (DESIGN.md §8)."""
import shutil
import subprocess
from datetime import UTC, datetime

import pytest

from services.revisit.service import RevisitService
from shared.dependencies import Store, declare_topology
from shared.dlq import list_dead_letters
from shared.envelope import new_event
from shared.messaging import EventPublisher
from tests.helpers import wait_until

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(shutil.which("rabbitmqctl") is None,
                       reason="needs a local broker this test may restart"),
]

EVENTS = 1500


def closed(n):
    at = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    return new_event("complaint_closed", "intake", "estate-r", {
        "complaint_id": f"cmp-r{n}", "household_id": f"h-{n}", "category": "greening",
        "severity": "normal", "closed_at": at, "owner_signoff": "none", "closing_no": 1,
    }, at)


def rabbitmqctl(*command):
    subprocess.run(["rabbitmqctl", "-q", *command], check=True, timeout=120,
                   capture_output=True)


def test_revisit_rides_out_a_broker_restart(service_config, container_factory):
    service_config["OUTBOX_GRACE_SECONDS"] = 1
    service_config["max_workers"] = 1          # a slow consumer, so the restart lands mid-stream
    declare_topology(service_config)
    publisher = EventPublisher(service_config)
    for n in range(EVENTS):
        publisher.publish(closed(n))

    container = container_factory(RevisitService, service_config)
    container.start()
    repository = next(d for d in container.dependencies if isinstance(d, Store)).repository
    wait_until(lambda: repository.db.revisits.count_documents({}) >= 10,
               message="some revisits scheduled")
    rabbitmqctl("stop_app")
    assert repository.db.revisits.count_documents({}) < EVENTS, "stopped too late"
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")

    # the durable queue kept the rest; the consumer reconnects and finishes the backlog,
    # and whatever could not be announced while the broker was down leaves the outbox
    wait_until(lambda: repository.db.revisits.count_documents({}) == EVENTS, timeout=90,
               message="every revisit scheduled after the restart")
    wait_until(lambda: repository.db.revisits.count_documents(
        {"outbox.0": {"$exists": True}}) == 0, timeout=60, message="outboxes emptied")
    assert {doc["_id"] for doc in repository.db.revisits.find({}, {"_id": 1})} == {
        f"rv-cmp-r{n}-1" for n in range(EVENTS)}
    assert list_dead_letters(service_config, "revisit") == []
