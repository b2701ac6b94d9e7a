"""A consumer killed mid-stream loses nothing and does nothing twice (DESIGN.md §8)."""
from datetime import UTC, datetime

import pytest

from services.revisit.service import RevisitService
from shared.dependencies import Store, declare_topology
from shared.dlq import list_dead_letters
from shared.envelope import new_event
from shared.messaging import EventPublisher
from tests.helpers import wait_until

pytestmark = pytest.mark.broker

EVENTS = 300


def closed(n):
    at = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    return new_event("complaint_closed", "intake", "estate-k", {
        "complaint_id": f"cmp-k{n}", "household_id": f"h-{n}", "category": "cleaning",
        "severity": "normal", "closed_at": at, "owner_signoff": "none", "closing_no": 1,
    }, at)


def test_revisit_killed_mid_stream_schedules_each_revisit_exactly_once(
        service_config, container_factory, listener):
    # a backlog waits in revisit's queue before it starts
    declare_topology(service_config)
    publisher = EventPublisher(service_config)
    for n in range(EVENTS):
        publisher.publish(closed(n))

    first = container_factory(RevisitService, service_config)
    first.start()
    revisits = next(d for d in first.dependencies if isinstance(d, Store)).repository.db.revisits
    # kill it abruptly while it is working through the backlog
    wait_until(lambda: revisits.count_documents({}) >= 10, message="some revisits scheduled")
    first.kill()
    assert revisits.count_documents({}) < EVENTS, "the kill came too late to prove anything"

    # a new instance picks up the unacknowledged rest; the store survived (same process)
    second = container_factory(RevisitService, service_config)
    second.start()
    wait_until(lambda: revisits.count_documents({}) == EVENTS, timeout=30,
               message="every revisit scheduled")
    expected = {f"rv-cmp-k{n}-1" for n in range(EVENTS)}
    wait_until(lambda: {e["data"]["revisit_id"] for e in listener.of_type("revisit_scheduled")}
               >= expected, timeout=30, message="every revisit announced")

    assert {doc["_id"] for doc in revisits.find({}, {"_id": 1})} == expected
    assert list_dead_letters(service_config, "revisit") == []
