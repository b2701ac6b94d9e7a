"""Exactly-once effects under faults, against the real broker: every connection of the
test's vhost closed while a stream of complaint commands runs, and revisit killed while it
drains its backlog and while its timer announces. Counted afterwards: one complaint per
request, no doubled history line, one ``complaint_closed`` per closing, one event id per
announced revisit.

Connections are closed through the management API, only those of this test's vhost
(``tests.helpers.close_connections_of``)."""
import logging
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
from kombu import Connection, Exchange, Queue

from services.intake.service import IntakeService
from services.revisit.service import RevisitService
from shared.clock import FrozenClock
from shared.dependencies import ClockProvider, Store, declare_topology
from shared.envelope import new_event
from shared.idempotency import RequestLog
from shared.messaging import EventPublisher
from tests.helpers import RetryingIntakeClient, close_connections_of, one_event_a_batch, wait_until

pytestmark = pytest.mark.broker
log = logging.getLogger(__name__)

COMPLAINTS = 150
CLIENTS = 10
ESTATE = "estate-x"
STEPS = (  # (rpc, data, the state the caller saw, the state it leads to)
    ("acknowledge_complaint", {"staff_id": "s-1", "note": "已致歉"}, "registered",
     "acknowledged"),
    ("assign_complaint", {"department": "环境部", "assignee_id": "s-7"}, "acknowledged",
     "assigned"),
    ("resolve_complaint", {"staff_id": "s-7", "resolution": "已清理"}, "assigned", "resolved"),
    ("close_complaint", {"closed_by": "s-1", "owner_signoff": "satisfied"}, "resolved",
     "closed"),
)
HISTORY = ["register", "acknowledge", "assign", "resolve", "close"]
CLOSED_AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def count_repeats(monkeypatch):
    """{how: count} of the requests that reached intake more than once: answered from the
    first run's record, or taken over."""
    repeats = defaultdict(int)
    claim, take_over = RequestLog._claim_or_wait, RequestLog._take_over

    def counted_claim(self, *args):
        record = claim(self, *args)
        if record["status"] == "done":
            repeats["answered again"] += 1
        return record

    def counted_take_over(self, *args):
        taken = take_over(self, *args)
        repeats["taken over"] += bool(taken)
        return taken

    monkeypatch.setattr(RequestLog, "_claim_or_wait", counted_claim)
    monkeypatch.setattr(RequestLog, "_take_over", counted_take_over)
    return repeats


def audit_queue(config, name, routing_keys):
    """A durable queue of our own on ``intake.events``: it keeps what is published while
    every connection is cut, to be counted at the end."""
    exchange = Exchange("intake.events", type="topic", durable=True)
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.channel()
        queue = Queue(name, durable=True, channel=channel)
        queue.declare()
        for key in routing_keys:
            queue.bind_to(exchange=exchange, routing_key=key)
    return name


def drain(config, name):
    bodies = []
    with Connection(config["AMQP_URI"]) as connection:
        queue = Queue(name, durable=True, channel=connection.channel())
        while (message := queue.get(no_ack=True)) is not None:
            bodies.append(message.payload)
    return bodies


def test_closing_every_connection_mid_stream_does_nothing_twice(
        service_config, container_factory, rabbit_manager, rabbit_config, monkeypatch):
    service_config["OUTBOX_GRACE_SECONDS"] = 0.5
    repeats = count_repeats(monkeypatch)
    declare_topology(service_config)
    audit = audit_queue(service_config, "audit.intake", ["complaint_registered",
                                                          "complaint_closed"])
    intake = container_factory(IntakeService, service_config)
    intake.start()
    store = next(d for d in intake.dependencies if isinstance(d, Store)).repository
    setup = RetryingIntakeClient(service_config)
    setup.call("import_households", ESTATE, [
        {"household_id": f"hx-{n}", "building": "1", "unit": "1", "room": str(100 + n),
         "occupied": True, "contacts": [{"name": "王芳", "phone": "13812345678"}]}
        for n in range(COMPLAINTS)], estate={"name": "测试小区"}, request_id="import-1")
    setup.stop()

    made = {}           # request -> complaint id
    # each client waits halfway until a cut has come: on a fast machine the whole stream
    # could otherwise end before the management API lists the connections to cut
    first_cut = eventlet.event.Event()

    def work(clients_index):
        client = RetryingIntakeClient(service_config)
        mine = range(clients_index, COMPLAINTS, CLIENTS)
        for n in mine:
            if n == mine[len(mine) // 2]:
                with eventlet.Timeout(60, False):
                    first_cut.wait()
            complaint = client.call("register_complaint", {
                "estate_id": ESTATE, "household_id": f"hx-{n}", "channel": "hotline",
                "category": "cleaning", "content": f"楼道垃圾 {n}"}, request_id=f"reg-{n}")
            made[f"reg-{n}"] = complaint["id"]
            for step, data, seen, leads_to in STEPS:
                # a step that worked is never answered InvalidTransition (it would raise)
                answer = client.call(step, complaint["id"], data,
                                     request_id=f"{step}-{n}", expected_status=seen)
                assert answer["status"] == leads_to
        client.stop()
        return client.retries

    closed, stream = [], [eventlet.spawn(work, index) for index in range(CLIENTS)]
    while not all(thread.dead for thread in stream):
        eventlet.sleep(0.3)
        closed.append(close_connections_of(rabbit_manager, rabbit_config["vhost"]))
        if sum(closed) and not first_cut.ready():
            first_cut.send()
    retries = sum(thread.wait() for thread in stream)
    # the cuts came mid-stream; whether one caught a request in flight (so that it came
    # again, redelivered or retried) depends on timing - the log line below says how many,
    # and the unit tests of shared/idempotency.py prove each repeat path on its own
    assert sum(closed) > 0, "the connections were never cut mid-stream"

    # one complaint per request, each with its history once
    assert len(set(made.values())) == COMPLAINTS
    complaints = list(store.db.complaints.find())
    assert {doc["_id"] for doc in complaints} == set(made.values())
    for doc in complaints:
        assert [line["action"] for line in doc["history"]] == HISTORY, doc["_id"]
        assert doc["status"] == "closed" and doc["closing_no"] == 1
    # every event left the outbox; one complaint_closed (one id) per closing
    wait_until(lambda: store.db.complaints.count_documents({"outbox.0": {"$exists": True}})
               == 0, timeout=30, message="outboxes emptied")
    events = defaultdict(set)
    for body in drain(service_config, audit):
        events[(body["type"], body["data"]["complaint_id"])].add(body["id"])
    for complaint_id in made.values():
        assert len(events[("complaint_registered", complaint_id)]) == 1, complaint_id
        assert len(events[("complaint_closed", complaint_id)]) == 1, complaint_id
    log.warning("%d connection(s) closed in %d round(s); %d call(s) retried by clients; "
                "requests that came again: %s", sum(closed), len(closed), retries,
                dict(repeats))


# revisit killed while it drains its backlog, and while its timer announces -------------

def queue_closings(config, count, closed_at):
    declare_topology(config)
    publisher = EventPublisher(config)
    for n in range(count):
        publisher.publish(new_event("complaint_closed", "intake", "estate-k", {
            "complaint_id": f"cmp-k{n}", "household_id": f"h-{n}", "category": "cleaning",
            "severity": "normal", "closed_at": closed_at(n), "owner_signoff": "none",
            "closing_no": 1,
        }, closed_at(n)))
    return {f"rv-cmp-k{n}-1" for n in range(count)}


def start_revisit(container_factory, config, clock):
    """A revisit instance on ``clock`` (the test moves time: its timer announces when told)."""
    container = one_event_a_batch(container_factory(RevisitService, config))
    next(d for d in container.dependencies if isinstance(d, ClockProvider)).clock = clock
    container.start()
    return container, next(d for d in container.dependencies
                           if isinstance(d, Store)).repository.db.revisits


def test_revisit_killed_while_draining_and_announcing_announces_each_revisit_under_one_id(
        service_config, container_factory, listener):
    service_config["REVISIT_TIMER_INTERVAL"] = 0.05
    service_config["OUTBOX_GRACE_SECONDS"] = 0.5
    # one worker, so the kills land mid-stream on a fast machine too (ten drained a backlog
    # between two polls of the test)
    service_config["max_workers"] = 1
    clock = FrozenClock(CLOSED_AT)
    # even: announced when scheduled; odd: their window opens a day later, the timer's
    expected = queue_closings(service_config, 600, lambda n: (
        CLOSED_AT - timedelta(days=1) if n % 2 == 0 else CLOSED_AT + timedelta(days=1)))
    later = {f"rv-cmp-k{n}-1" for n in range(1, 600, 2)}

    def announced_later():
        return revisits.count_documents({"_id": {"$in": list(later)}, "announced": True})

    first, revisits = start_revisit(container_factory, service_config, clock)
    wait_until(lambda: revisits.count_documents({}) >= 20, message="some revisits scheduled")
    first.kill()                                              # mid-drain
    assert revisits.count_documents({}) < len(expected), "the first kill came too late"

    second, _ = start_revisit(container_factory, service_config, clock)
    wait_until(lambda: revisits.count_documents({}) == len(expected), timeout=30,
               message="every revisit scheduled")
    assert announced_later() == 0
    clock.advance(timedelta(days=1, minutes=1))               # their windows open
    deadline = time.monotonic() + 30
    while announced_later() < 5:                              # the timer's pass is on
        assert time.monotonic() < deadline, "the timer never announced"
        eventlet.sleep(0.001)
    second.kill()                                             # mid-pass
    assert announced_later() < len(later), "the second kill came too late"

    start_revisit(container_factory, service_config, clock)
    wait_until(lambda: revisits.count_documents({"announced": True}) == len(expected),
               timeout=30, message="every revisit announced")
    wait_until(lambda: revisits.count_documents({"outbox.0": {"$exists": True}}) == 0,
               timeout=30, message="outboxes emptied")

    def ids_by_revisit():
        ids = defaultdict(set)
        for event in listener.of_type("revisit_scheduled"):
            ids[event["data"]["revisit_id"]].add(event["id"])
        return ids

    wait_until(lambda: set(ids_by_revisit()) >= expected, timeout=30,
               message="every announcement heard")
    ids = ids_by_revisit()
    assert set(ids) == expected
    doubled = {revisit: found for revisit, found in ids.items() if len(found) > 1}
    assert doubled == {}, f"announced under several ids: {doubled}"
