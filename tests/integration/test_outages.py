"""Outages mid-stream lose nothing and do nothing twice: a consumer
killed, the broker restarted. Each test queues a backlog of closed complaints for
revisit, interrupts it while it works, and counts exactly one revisit per closing.

A test that stops the broker stops a node of its own (the ``private_rabbit`` fixture),
never the machine's shared one, which everyone else on the machine is using."""
from datetime import UTC, datetime

import pytest

from services.revisit.service import RevisitService
from shared.dependencies import Store, declare_topology
from shared.dlq import list_dead_letters
from shared.envelope import new_event
from shared.messaging import EventPublisher
from tests.helpers import one_event_a_batch, wait_until

pytestmark = pytest.mark.broker


def queue_closed_complaints(config, count):
    """``count`` complaint_closed events waiting in revisit's queue; the revisit ids owed."""
    declare_topology(config)
    publisher = EventPublisher(config)
    at = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    for n in range(count):
        publisher.publish(new_event("complaint_closed", "intake", "estate-k", {
            "complaint_id": f"cmp-k{n}", "household_id": f"h-{n}", "category": "cleaning",
            "severity": "normal", "closed_at": at, "owner_signoff": "none", "closing_no": 1,
        }, at))
    return {f"rv-cmp-k{n}-1" for n in range(count)}


def start_revisit(container_factory, config):
    container = one_event_a_batch(container_factory(RevisitService, config))
    container.start()
    return container, next(d for d in container.dependencies
                           if isinstance(d, Store)).repository.db.revisits


def test_revisit_killed_mid_stream_schedules_each_revisit_exactly_once(
        service_config, container_factory, listener):
    # one worker and a backlog long enough that the kill lands mid-stream on a fast machine
    # too (with ten workers, 300 closings were all done between two polls of the test)
    service_config["max_workers"] = 1
    expected = queue_closed_complaints(service_config, 1000)
    first, revisits = start_revisit(container_factory, service_config)
    wait_until(lambda: revisits.count_documents({}) >= 10, message="some revisits scheduled")
    first.kill()
    assert revisits.count_documents({}) < len(expected), "the kill came too late"

    # a new instance picks up the unacknowledged rest; the store survived (same process)
    start_revisit(container_factory, service_config)
    wait_until(lambda: revisits.count_documents({}) == len(expected), timeout=90,
               message="every revisit scheduled")
    wait_until(lambda: {e["data"]["revisit_id"] for e in listener.of_type("revisit_scheduled")}
               >= expected, timeout=60, message="every revisit announced")
    assert {doc["_id"] for doc in revisits.find({}, {"_id": 1})} == expected
    assert list_dead_letters(service_config, "revisit") == []


def test_revisit_rides_out_a_broker_restart(private_service_config, private_rabbit,
                                            container_factory):
    service_config = private_service_config
    service_config["OUTBOX_GRACE_SECONDS"] = 1
    service_config["max_workers"] = 1          # a slow consumer, so the restart lands mid-stream
    expected = queue_closed_complaints(service_config, 1500)
    _, revisits = start_revisit(container_factory, service_config)
    wait_until(lambda: revisits.count_documents({}) >= 10, message="some revisits scheduled")
    private_rabbit.stop_app()
    assert revisits.count_documents({}) < len(expected), "stopped too late"
    private_rabbit.start_app()                 # returns once the AMQP port answers again

    # the durable queue kept the rest; the consumer reconnects and finishes the backlog,
    # and what could not be announced while the broker was down leaves the outbox
    wait_until(lambda: revisits.count_documents({}) == len(expected), timeout=90,
               message="every revisit scheduled after the restart")
    wait_until(lambda: revisits.count_documents({"outbox.0": {"$exists": True}}) == 0,
               timeout=60, message="outboxes emptied")
    assert {doc["_id"] for doc in revisits.find({}, {"_id": 1})} == expected
    assert list_dead_letters(service_config, "revisit") == []
