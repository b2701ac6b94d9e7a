"""The reliability rules (README: "Nothing lost, nothing done twice"), against the real broker."""
import time
from datetime import UTC, datetime
from typing import ClassVar
from unittest import mock

import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from services.intake.service import IntakeService
from services.revisit.service import RevisitService
from shared import topology
from shared.dependencies import Store
from shared.dlq import list_dead_letters, replay
from shared.envelope import new_event
from shared.messaging import EventPublisher, handles, handles_batch
from tests.helpers import wait_until

pytestmark = pytest.mark.broker

CLOSED_AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def closed_event(complaint_id="cmp-1", closing_no=1):
    return new_event("complaint_closed", "intake", "estate-1", {
        "complaint_id": complaint_id, "household_id": "h-1", "category": "cleaning",
        "severity": "normal", "closed_at": CLOSED_AT, "owner_signoff": "satisfied",
        "closing_no": closing_no,
    }, CLOSED_AT)


class Probe:
    """A consumer that fails while told to, counting every call."""

    name = "probe"
    calls: ClassVar[list] = []
    failing = True

    @handles("intake", "complaint_closed")
    def on_closed(self, event):
        Probe.calls.append(event["id"])
        if Probe.failing:
            raise RuntimeError("department system is down")


@pytest.fixture(params=["classic", "quorum"])
def queue_type(request, service_config):
    """The durable queues as one node (classic) or a cluster (quorum) declares them."""
    service_config["QUEUE_TYPE"] = request.param
    return request.param


@pytest.fixture
def probe(monkeypatch, service_config, container_factory):
    monkeypatch.setitem(topology.SUBSCRIPTIONS, "probe", [("intake", "complaint_closed")])
    Probe.calls, Probe.failing = [], True
    container = container_factory(Probe, service_config)
    container.start()
    return container


def test_failing_handler_is_retried_with_back_off_then_dead_lettered_and_replayed(
        queue_type, probe, service_config, rabbit_manager, rabbit_config):
    event = closed_event()
    EventPublisher(service_config).publish(event)

    # first try + one retry per configured delay (100 ms, 200 ms), then the dead-letter queue
    letters = wait_until(lambda: list_dead_letters(service_config, "probe"), timeout=10,
                         message="event in probe.dead-letter")
    assert Probe.calls == [event["id"]] * 3
    assert len(letters) == 1
    letter = letters[0]
    assert letter["event_id"] == event["id"]
    assert letter["queue"] == "probe.intake.complaint_closed"
    assert letter["attempts"] == 3
    assert "department system is down" in letter["error"]
    for name in ("probe.intake.complaint_closed", "probe.retry.100ms", "probe.dead-letter"):
        declared = rabbit_manager.get_queue(rabbit_config["vhost"], name)
        assert declared.get("type", "classic") == queue_type
    # listing does not consume: still there, and no further (hot) retries happen
    eventlet_sleep(0.5)
    assert len(list_dead_letters(service_config, "probe")) == 1
    assert len(Probe.calls) == 3

    Probe.failing = False
    with entrypoint_waiter(probe, "on_closed"):
        assert replay(service_config, "probe", {event["id"]}) == 1
    assert Probe.calls == [event["id"]] * 4
    assert list_dead_letters(service_config, "probe") == []


def test_malformed_event_goes_straight_to_the_dead_letter_queue(probe, service_config):
    bad = dict(closed_event(), time="yesterday")
    EventPublisher(service_config).publish(bad)
    letters = wait_until(lambda: list_dead_letters(service_config, "probe"), timeout=10,
                         message="malformed event dead-lettered")
    assert Probe.calls == []           # never reached the handler
    assert "time" in letters[0]["error"]


class BatchProbe:
    """A batch consumer that cannot handle one event (answers it failed), counting batches."""

    name = "probe"
    batches: ClassVar[list] = []
    poison = ""

    @handles_batch("intake", "complaint_closed", size=40, wait=1.0)
    def on_closed(self, events):
        BatchProbe.batches.append([event["id"] for event in events])
        return {event["id"]: RuntimeError("cannot file it") for event in events
                if event["id"] == BatchProbe.poison}


def test_a_batch_consumer_takes_many_at_once_and_settles_each_event_alone(
        monkeypatch, service_config, container_factory):
    monkeypatch.setitem(topology.SUBSCRIPTIONS, "probe", [("intake", "complaint_closed")])
    events = [closed_event(f"cmp-{number}") for number in range(100)]
    BatchProbe.batches, BatchProbe.poison = [], events[7]["id"]
    container_factory(BatchProbe, service_config).start()
    EventPublisher(service_config).publish_batch(events)

    letters = wait_until(lambda: list_dead_letters(service_config, "probe"), timeout=15,
                         message="the poison event dead-lettered")
    eventlet_sleep(0.5)
    handled = [event_id for batch in BatchProbe.batches for event_id in batch]
    # batches of up to 40: more than the 10 workers' prefetch a plain consumer gets
    assert max(len(batch) for batch in BatchProbe.batches) == 40
    assert len(BatchProbe.batches) <= 6
    # every other event acked after its first batch; the poison one alone tried 3 times
    assert sorted(handled) == sorted([event["id"] for event in events] + [events[7]["id"]] * 2)
    assert [letter["event_id"] for letter in letters] == [events[7]["id"]]
    assert letters[0]["attempts"] == 3 and "cannot file it" in letters[0]["error"]


class AsTheyComeProbe:
    """A batch consumer of one batch at a time with no wait (group commit): each batch
    noted with whether another was running; each takes ``AsTheyComeProbe.pause``."""

    name = "probe"
    batches: ClassVar[list] = []
    running: ClassVar[list] = []
    pause = 0.0

    @handles_batch("intake", "complaint_closed", size=25, wait=0, batches_at_once=1)
    def on_closed(self, events):
        AsTheyComeProbe.batches.append((time.perf_counter(), [event["id"] for event in events],
                                        bool(AsTheyComeProbe.running)))
        AsTheyComeProbe.running.append(1)
        eventlet_sleep(AsTheyComeProbe.pause)
        AsTheyComeProbe.running.pop()
        return {}


def test_one_batch_at_a_time_takes_a_calm_stream_at_once_and_a_burst_in_growing_batches(
        monkeypatch, service_config, container_factory):
    monkeypatch.setitem(topology.SUBSCRIPTIONS, "probe", [("intake", "complaint_closed")])
    AsTheyComeProbe.batches, AsTheyComeProbe.running = [], []
    # one worker: each next batch starts while the one ending still holds the pool's place
    container_factory(AsTheyComeProbe, dict(service_config, max_workers=1)).start()
    publisher = EventPublisher(service_config)

    # calm: each event alone, handled at once (not held back to fill a batch: a wait of
    # even a quarter second would show)
    AsTheyComeProbe.pause = 0.0
    sent = []
    for number in range(5):
        sent.append(time.perf_counter())
        publisher.publish(closed_event(f"cmp-calm-{number}"))
        wait_until(lambda n=number: len(AsTheyComeProbe.batches) > n, timeout=10,
                   interval=0.005, message="the event handled")
    assert [len(ids) for _, ids, _ in AsTheyComeProbe.batches] == [1] * 5
    assert max(at - published for (at, _, _), published
               in zip(AsTheyComeProbe.batches, sent)) < 0.25

    # a burst while each batch takes a while: one batch runs at a time, the rest wait
    # and go together as the next ones
    AsTheyComeProbe.batches, AsTheyComeProbe.pause = [], 0.3
    events = [closed_event(f"cmp-burst-{number}") for number in range(60)]
    publisher.publish_batch(events)
    wait_until(lambda: sum(len(ids) for _, ids, _ in AsTheyComeProbe.batches) >= 60,
               timeout=30, message="the burst handled")
    eventlet_sleep(0.5)
    sizes = [len(ids) for _, ids, _ in AsTheyComeProbe.batches]
    assert sorted(i for _, ids, _ in AsTheyComeProbe.batches for i in ids) == \
        sorted(event["id"] for event in events)
    assert not any(overlapping for _, _, overlapping in AsTheyComeProbe.batches)
    assert max(sizes) == 25 and len(sizes) <= 5, sizes


def test_duplicate_delivery_schedules_one_revisit(service_config, container_factory, listener):
    container = container_factory(RevisitService, service_config)
    container.start()
    event = closed_event("cmp-dup")
    publisher = EventPublisher(service_config)
    for _ in range(2):
        with entrypoint_waiter(container, "schedule_complaint_revisits"):
            publisher.publish(event)

    with ServiceRpcProxy("revisit", service_config) as revisit:
        revisits = revisit.list_revisits({"source_id": "cmp-dup"})
    assert [r["id"] for r in revisits] == ["rv-cmp-dup-1"]
    listener.wait_for("revisit_scheduled", revisit_id="rv-cmp-dup-1")
    eventlet_sleep(0.3)
    assert len(listener.of_type("revisit_scheduled")) == 1


def test_event_sent_before_the_consumer_ever_started_still_arrives(
        service_config, container_factory):
    # Only intake runs: it declares the whole topology on start, then publishes.
    intake = container_factory(IntakeService, service_config)
    intake.start()
    with ServiceRpcProxy("intake", service_config) as rpc:
        complaint_id = close_a_complaint(rpc)
    intake.stop()

    revisit = container_factory(RevisitService, service_config)
    with entrypoint_waiter(revisit, "schedule_complaint_revisits", timeout=10):
        revisit.start()
    with ServiceRpcProxy("revisit", service_config) as rpc:
        # the household's move-in also plans a routine visit: only the complaint's matters here
        revisits = rpc.list_revisits({"kind": "complaint"})
    assert [r["source_id"] for r in revisits] == [complaint_id]


def test_outbox_event_left_by_a_crash_is_sent_by_the_relay(
        service_config, container_factory, listener):
    service_config["OUTBOX_GRACE_SECONDS"] = 0.5
    intake = container_factory(IntakeService, service_config)
    intake.start()
    repository = next(ext for ext in intake.dependencies if isinstance(ext, Store)).repository

    with ServiceRpcProxy("intake", service_config) as rpc:
        # The process "dies" between the database write and the publish.
        with mock.patch.object(type(repository), "flush", autospec=True):
            complaint_id = close_a_complaint(rpc)
        stored = repository.db.complaints.find_one({"_id": complaint_id})
        assert [e["type"] for e in stored["outbox"]][-1] == "complaint_closed"

        closed = listener.wait_for("complaint_closed", complaint_id=complaint_id, timeout=10)
        assert closed["id"] == stored["outbox"][-1]["id"]
        wait_until(lambda: not repository.db.complaints.find_one({"_id": complaint_id})["outbox"],
                   message="outbox emptied after relay")


def close_a_complaint(rpc):
    rpc.import_households("estate-1", [{
        "household_id": "h-1", "building": "1", "unit": "2", "room": "301", "occupied": True,
        "contacts": [{"name": "王芳", "phone": "13812345678"}],
    }], estate={"name": "测试小区"})
    complaint = rpc.register_complaint({
        "estate_id": "estate-1", "household_id": "h-1", "channel": "hotline",
        "category": "cleaning", "content": "楼道垃圾三天没人清理",
    })
    rpc.acknowledge_complaint(complaint["id"], {"staff_id": "s-1", "note": "已致歉"})
    rpc.assign_complaint(complaint["id"], {"department": "环境部"})
    rpc.resolve_complaint(complaint["id"], {"staff_id": "s-2", "resolution": "已清理"})
    rpc.close_complaint(complaint["id"], {"closed_by": "s-1", "owner_signoff": "satisfied"})
    return complaint["id"]


def eventlet_sleep(seconds):
    import eventlet
    eventlet.sleep(seconds)
