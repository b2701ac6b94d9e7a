"""The fault-injection suite's machinery, one helper per mechanism:

* ``FaultyServices`` — the four back-end services as OS processes that can be killed
  (``kill -9``) and started again;
* ``LoopDriver`` — drives N complaints round the whole loop over RPC (register ->
  acknowledge -> assign -> resolve -> close) from concurrent clients that retry what a
  fault cut off (same ``request_id``), and fires the scenario's faults mid-stream;
* ``Outcomes`` — counts what came of each complaint: the events on a durable audit queue
  of our own (it keeps what is published while every connection is cut) and the owner's
  revisit notices as the console channel wrote them (notify's log);
* ``Report`` — the numbers of one scenario, printed as a table and written to
  ``test-artifacts/faults/<scenario>.json``;
* ``Duplicator`` and ``publish_poison`` — the shim that delivers every event twice, and
  the poison mixed into the stream.

A complaint is known by its household (one complaint per household, ``h<scenario>-<n>``,
phone ``1380000<n>``): the console channel logs the phone masked as ``138****<n>``, so a
notice names its household even when notify's own records died with it.
"""
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import eventlet
from kombu import Connection, Consumer, Exchange, Producer, Queue, binding
from nameko.exceptions import RemoteError
from nameko.standalone.events import get_event_exchange

from scripts.healthcheck import is_serving
from shared import topology
from shared.dlq import list_dead_letters
from shared.envelope import parse_event
from shared.errors import InvalidInput
from shared.schemas.vocabulary import SERVICES
from tests.helpers import (
    ROOT,
    RetryingIntakeClient,
    ServiceProcesses,
    close_connections_of,
    wait_until,
)

log = logging.getLogger(__name__)

CLIENTS = 8
LOOP_SERVICES = ("intake", "revisit", "survey", "notify")
STEPS = (  # (rpc, data, the state the caller saw)
    ("acknowledge_complaint", {"staff_id": "s-1", "note": "已致歉"}, "registered"),
    ("assign_complaint", {"department": "环境部", "assignee_id": "s-7"}, "acknowledged"),
    ("resolve_complaint", {"staff_id": "s-7", "resolution": "已清理"}, "assigned"),
    ("close_complaint", {"closed_by": "s-1", "owner_signoff": "satisfied"}, "resolved"),
)
# How long after a slot's last sign of life a kill may still have held part of it (an
# event in an outbox, a message in a handler or a retry queue): longer than the pipeline's
# lag behind the driver at 1,000 complaints on two cores.
EXPOSURE_SECONDS = 10.0
ARTIFACTS = ROOT / "test-artifacts" / "faults"


def complaints_per_scenario() -> int:
    """``FAULTS_COMPLAINTS`` (``make faults``: 1,000); the short form of ``make test`` else."""
    return int(os.environ.get("FAULTS_COMPLAINTS") or 40)


def durable_store() -> bool:
    """With ``MONGO_URI`` a killed service keeps its data: then nothing at all may be lost."""
    return bool(os.environ.get("MONGO_URI"))


# the services, killable ----------------------------------------------------------------

class FaultyServices(ServiceProcesses):
    """``ServiceProcesses`` whose services can be killed and started again; their logs
    are appended to across restarts (notify's log is where owner messages are counted)."""

    def __init__(self, config, log_dir):
        super().__init__(config, log_dir, services=LOOP_SERVICES, NOTIFY_QUIET_HOURS="",
                         RPC_TIMEOUT_SECONDS="10", OUTBOX_RELAY_INTERVAL="0.5",
                         PYTHONUNBUFFERED="1")

    def kill(self, service: str) -> None:
        process = self.processes[service]
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=15)
        # the broker sees the socket close; wait until nobody consumes its RPC queue
        wait_until(lambda: not is_serving(self.config, service), timeout=30,
                   message=f"{service} gone")

    def restart(self, service: str, timeout: float = 60) -> None:
        nameko = Path(sys.executable).parent / "nameko"
        with open(self.log_dir / f"{service}.log", "ab") as log_file:
            self.processes[service] = subprocess.Popen(
                [str(nameko), "run", "--config", "config.yaml", f"services.{service}.service"],
                cwd=ROOT, env=self.environment, stdout=log_file, stderr=subprocess.STDOUT)
        wait_until(lambda: is_serving(self.config, service) or self._died(service),
                   timeout=timeout, interval=0.2, message=f"{service} serving again")
        assert not self._died(service), f"{service} died:\n{self.log(service)}"


# the driver --------------------------------------------------------------------------

@dataclass
class Slot:
    """One complaint's journey as the driver saw it (wall-clock seconds)."""
    number: int
    started_at: float | None = None
    finished_at: float | None = None
    complaint_id: str | None = None
    failed: str | None = None        # the step and the error that stopped it


@dataclass
class Fault:
    """What a scenario does to the system once ``at`` (a share of the complaints) started."""
    at: float
    name: str
    action: Callable[[], None]
    kills: bool = False              # a process killed: what it held in memory is gone
    started_at: float = 0.0
    ended_at: float = 0.0


class LoopDriver:
    """N complaints round the whole loop from ``CLIENTS`` concurrent RPC clients, on an
    estate of the scenario's own (``tag``): its households, request ids and estate are
    apart from the other scenarios' on the same services."""

    def __init__(self, config, size: int, tag: str):
        self.config, self.size, self.tag = config, size, tag
        self.estate = f"estate-{tag}"
        self.slots = [Slot(number) for number in range(size)]
        self.retries, self.seconds = 0, 0.0
        self.faults: list[Fault] = []

    def household(self, number: int) -> str:
        return f"h{self.tag}-{number}"

    def import_households(self) -> None:
        """The estate's owners (again after a killed intake lost them: reference data).
        Listed as not moved in: an occupied household gets its year's routine visit
        (announced to it too), which is not the complaint loop these scenarios count."""
        client = RetryingIntakeClient(self.config)
        try:
            client.call("import_households", self.estate, [
                {"household_id": self.household(n), "building": str(n // 100), "unit": "1",
                 "room": str(n), "occupied": False,
                 "contacts": [{"name": "业主", "phone": f"1380000{n:04d}"}]}
                for n in range(self.size)], estate={"name": "故障演练小区"})
        finally:
            client.stop()

    def run(self, faults: list[Fault] = ()) -> list[Fault]:
        """Every slot round the loop; each fault fires once its share of the slots
        started, and the slots after that share wait for it to start: however short the
        stream, every fault lands in the middle of it."""
        self.faults = sorted(faults, key=lambda fault: fault.at)
        started_at = time.time()
        threads = [eventlet.spawn(self._client, index) for index in range(CLIENTS)]
        for fault in self.faults:
            wait_until(lambda fault=fault: self._started() >= self._threshold(fault),
                       timeout=600, interval=0.02, message=f"{fault.name} due")
            fault.started_at = time.time()
            log.warning("fault: %s (%d of %d complaints started)", fault.name,
                        self._started(), self.size)
            fault.action()
            fault.ended_at = time.time()
        for thread in threads:
            thread.wait()
        self.seconds = time.time() - started_at
        return self.faults

    def _threshold(self, fault: Fault) -> int:
        return max(1, int(fault.at * self.size))

    def _started(self) -> int:
        return sum(slot.started_at is not None for slot in self.slots)

    def _wait_for_due_faults(self, slot: Slot) -> None:
        while any(not fault.started_at and slot.number >= self._threshold(fault)
                  for fault in self.faults):
            eventlet.sleep(0.02)

    def _client(self, index: int) -> None:
        client = RetryingIntakeClient(self.config)
        try:
            for slot in self.slots[index::CLIENTS]:
                self._drive(client, slot)
        finally:
            self.retries += client.retries
            client.stop()

    def _drive(self, client: RetryingIntakeClient, slot: Slot) -> None:
        self._wait_for_due_faults(slot)
        slot.started_at = time.time()
        n, tag = slot.number, self.tag
        try:
            complaint = client.call("register_complaint", {
                "estate_id": self.estate, "household_id": self.household(n),
                "channel": "hotline", "category": "cleaning", "content": f"楼道垃圾 {n}"},
                request_id=f"{tag}-reg-{n}")
            slot.complaint_id = complaint["id"]
            for step, data, seen in STEPS:
                client.call(step, slot.complaint_id, data, request_id=f"{tag}-{step}-{n}",
                            expected_status=seen)
        except RemoteError as error:   # e.g. NotFound: the record died with a killed intake
            slot.failed = f"{error.exc_type}: {error.value}"[:200]
            log.warning("complaint %d stopped: %s", n, slot.failed)
        slot.finished_at = time.time()


# what came of it -----------------------------------------------------------------------

REVISIT_NOTICE = re.compile(r"console message to 138\*\*\*\*(\d{4}): .*前以")


@dataclass
class Tally:
    """What one complaint (one household) led to."""
    registered: set = field(default_factory=set)          # complaint ids
    closed: set = field(default_factory=set)              # complaint_closed event ids
    revisits: set = field(default_factory=set)            # revisit ids
    announcements: set = field(default_factory=set)       # revisit_scheduled event ids
    messages: int = 0                                      # revisit notices the owner got
    last_seen: float = 0.0

    def counts(self) -> tuple[int, int, int, int]:
        return len(self.registered), len(self.closed), len(self.revisits), self.messages

    def balanced(self) -> bool:
        return self.counts() == (1, 1, 1, 1) and len(self.announcements) == 1


class Outcomes:
    """Counts every complaint's effects from outside, as an auditor would: from the
    moment it is made (the notify log and the dead letters before it are not counted)."""

    def __init__(self, config, services: FaultyServices, driver: LoopDriver):
        self.config, self.services, self.driver = config, services, driver
        self.audit = f"faults.audit.{driver.tag}"
        self.events: dict[str, dict] = {}     # event id -> envelope
        self.copies = Counter()               # event id -> times heard
        self.unreadable = 0                   # poison heard on the exchanges
        self.log_from = len(services.log("notify")) if services.processes else 0
        self.letters_before = {service: len(letters)
                               for service, letters in self._dead_letters().items()}
        with Connection(config["AMQP_URI"]) as connection:
            channel = connection.channel()
            exchanges = [get_event_exchange(source, config)(channel) for source in SERVICES]
            for exchange in exchanges:
                exchange.declare()
            Queue(self.audit, durable=True, channel=channel, bindings=[
                binding(exchange, routing_key="#") for exchange in exchanges]).declare()

    def close(self) -> None:
        """The audit queue goes (the next scenario has its own)."""
        with Connection(self.config["AMQP_URI"]) as connection:
            Queue(self.audit, channel=connection.channel()).delete()

    def collect(self) -> int:
        """Take what the audit queue holds; how many messages that was."""
        taken = 0
        with Connection(self.config["AMQP_URI"]) as connection:
            queue = Queue(self.audit, durable=True, channel=connection.channel())
            while (message := queue.get(no_ack=True)) is not None:
                taken += 1
                try:
                    envelope = parse_event(json.loads(message.body))
                except (ValueError, InvalidInput):
                    self.unreadable += 1
                    continue
                self.events.setdefault(envelope["id"], envelope)
                self.copies[envelope["id"]] += 1
        return taken

    def owner_notices(self) -> Counter:
        """household number -> revisit notices the console channel wrote."""
        return Counter(int(number) for number in
                       REVISIT_NOTICE.findall(self.services.log("notify")[self.log_from:]))

    def tally(self) -> dict[int, Tally]:
        size = self.driver.size
        tallies = {n: Tally() for n in range(size)}
        by_household = {self.driver.household(n): n for n in range(size)}
        for envelope in self.events.values():
            n = by_household.get(envelope["data"].get("household_id"))
            if n is None:
                continue
            tally, data = tallies[n], envelope["data"]
            if envelope["type"] == "complaint_registered":
                tally.registered.add(data["complaint_id"])
            elif envelope["type"] == "complaint_closed":
                tally.closed.add(envelope["id"])
            elif envelope["type"] == "revisit_scheduled":
                tally.revisits.add(data["revisit_id"])
                tally.announcements.add(envelope["id"])
            else:
                continue
            tally.last_seen = max(tally.last_seen, envelope["time"].timestamp()
                                  if isinstance(envelope["time"], datetime)
                                  else datetime.fromisoformat(envelope["time"]).timestamp())
        for n, count in self.owner_notices().items():
            if n in tallies:
                tallies[n].messages = count
        return tallies

    def settle(self, timeout: float, quiet: float = 12.0) -> None:
        """Wait until every complaint the driver got round the loop has its notice, or
        nothing moved for ``quiet`` s (something was lost), and no event waits in a
        service's queue or retry queue."""
        driven = [slot.number for slot in self.driver.slots if slot.failed is None]
        deadline, last_change = time.monotonic() + timeout, time.monotonic()
        notices = -1
        while time.monotonic() < deadline:
            eventlet.sleep(0.5)
            now_notices = sum(self.owner_notices().values())
            if self.collect() or now_notices != notices:
                notices, last_change = now_notices, time.monotonic()
            tallies = self.tally()
            done = all(tallies[number].messages for number in driven)
            if (done or time.monotonic() - last_change > quiet) and self.queues_empty():
                return
        raise AssertionError(f"the loop did not settle within {timeout} s")

    def queues_empty(self) -> bool:
        with Connection(self.config["AMQP_URI"]) as connection:
            channel = connection.channel()
            for service in topology.SUBSCRIPTIONS:
                names = [topology.queue_name(service, *pair)
                         for pair in topology.SUBSCRIPTIONS[service]]
                names += [topology.retry_exchange_name(service, delay)
                          for delay in topology.retry_delays({})]
                for name in names:
                    try:
                        _, ready, _ = channel.queue_declare(name, passive=True)
                    except Exception:   # noqa: BLE001 - not declared (yet): nothing waits there
                        channel = connection.channel()
                        continue
                    if ready:
                        return False
        return True

    def dead_letters(self) -> dict[str, list[dict]]:
        """{service: the dead letters that came since this count began}"""
        return {service: letters[self.letters_before[service]:]
                for service, letters in self._dead_letters().items()}

    def _dead_letters(self) -> dict[str, list[dict]]:
        return {service: list_dead_letters(self.config, service, limit=100_000)
                for service in topology.SUBSCRIPTIONS}


# the report -----------------------------------------------------------------------------

@dataclass
class Report:
    """One scenario's numbers. Per complaint the loop must make exactly one of each."""
    scenario: str
    complaints: int
    registered: int = 0
    closed: int = 0
    revisits_scheduled: int = 0
    owner_messages: int = 0
    duplicates: int = 0
    lost: int = 0
    dead_letters: int = 0
    held_in_memory_by_killed_process: int = 0
    details: dict = field(default_factory=dict)
    unbalanced: list = field(default_factory=list)   # (complaint, counts, why), the first few

    COLUMNS = ("complaints", "registered", "closed", "revisits_scheduled", "owner_messages",
               "duplicates", "lost", "dead_letters", "held_in_memory_by_killed_process")

    @classmethod
    def build(cls, scenario: str, driver: LoopDriver, outcomes: Outcomes,
              faults: list[Fault] = (), excuse_kills: bool = False) -> "Report":
        """Count each complaint; an unbalanced one counts as held in memory by a killed
        process only if ``excuse_kills`` and a kill came while it was under way."""
        report = cls(scenario, driver.size)
        kills = [fault for fault in faults if fault.kills]
        tallies = outcomes.tally()
        for slot in driver.slots:
            tally = tallies[slot.number]
            counts = tally.counts()
            report.registered += counts[0]
            report.closed += counts[1]
            report.revisits_scheduled += counts[2]
            report.owner_messages += counts[3]
            if tally.balanced() and slot.failed is None:
                continue
            exposed = excuse_kills and any(_under_way(slot, tally, kill) for kill in kills)
            why = slot.failed or "counts"
            if exposed:
                report.held_in_memory_by_killed_process += 1
            else:
                report.duplicates += sum(max(0, count - 1) for count in counts) + max(
                    0, len(tally.announcements) - len(tally.revisits))
                report.lost += 1 if (min(counts) == 0 or slot.failed) else 0
            if len(report.unbalanced) < 20:
                report.unbalanced.append({"complaint": slot.number, "counts": counts,
                                          "held": exposed, "why": why})
        return report

    def print(self) -> None:
        width = max(len(column) for column in self.COLUMNS)
        lines = [f"fault-injection report: {self.scenario}"]
        lines += [f"  {column:<{width}}  {getattr(self, column):>7}" for column in self.COLUMNS]
        lines += [f"  {key:<{width}}  {value}" for key, value in self.details.items()]
        lines += [f"  unbalanced: {item}" for item in self.unbalanced]
        print("\n".join(lines))

    def write(self) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.scenario}.json"
        path.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=2, default=str))
        return path

    def publish(self) -> "Report":
        self.print()
        self.write()
        return self


def _under_way(slot: Slot, tally: Tally, kill: Fault) -> bool:
    """Did the kill come while this complaint was under way (its driver's calls, or its
    events still moving, within ``EXPOSURE_SECONDS`` of its last sign of life)?"""
    if slot.started_at is None or slot.started_at > kill.ended_at:
        return False
    last = max(slot.finished_at or 0.0, tally.last_seen)
    return last + EXPOSURE_SECONDS >= kill.started_at


# the faults -------------------------------------------------------------------------------

def consumer_queues(source: str, event_type: str) -> list[str]:
    """The services' queues an event of ``source``/``event_type`` is routed to."""
    return [topology.queue_name(consumer, source, event_type)
            for consumer, pairs in topology.SUBSCRIPTIONS.items()
            if (source, event_type) in pairs]


class Duplicator:
    """A shim that delivers every event a second time to each service consuming it: a tap
    queue on the same bindings republishes each message, same body and message id,
    straight into those queues (what a publisher retrying after a lost confirm does)."""

    TAP = "faults.duplicator"

    def __init__(self, config):
        self.copies, self.running = 0, True
        self.connection = Connection(config["AMQP_URI"])
        # its own connection: a confirm awaited on the consuming one would hand the next
        # delivery to a nested callback, which takes the outer publish's confirm
        self.publishing = Connection(config["AMQP_URI"],
                                     transport_options={"confirm_publish": True})
        channel = self.connection.channel()
        pairs = {pair for pairs in topology.SUBSCRIPTIONS.values() for pair in pairs}
        tap = Queue(self.TAP, durable=True, channel=channel, bindings=[
            binding(get_event_exchange(source, config), routing_key=event_type)
            for source, event_type in sorted(pairs)])
        tap.declare()
        self.producer = Producer(self.publishing.channel())
        self.consumer = Consumer(channel, [tap], callbacks=[self._again], accept=["json"])
        self.consumer.consume()
        self.thread = eventlet.spawn(self._drain)

    def _again(self, body, message):
        source = message.delivery_info["exchange"].removesuffix(".events")
        for queue in consumer_queues(source, message.delivery_info["routing_key"]):
            self.producer.publish(message.body, exchange="", routing_key=queue,
                                  content_type=message.content_type,
                                  content_encoding=message.content_encoding,
                                  headers=message.headers, delivery_mode=2,
                                  message_id=message.properties.get("message_id"))
            self.copies += 1
        message.ack()

    def _drain(self):
        while self.running:
            try:
                self.connection.drain_events(timeout=0.1)
            except TimeoutError:
                pass

    def close(self):
        self.running = False
        with eventlet.Timeout(30):
            self.thread.wait()
        self.consumer.cancel()
        Queue(self.TAP, channel=self.connection.channel()).delete()
        self.connection.release()
        self.publishing.release()


POISON_KINDS = ("undecodable body", "wrong schema", "unknown event type")
# where poison is published: an exchange and routing key the services consume
POISON_ROUTES = (("intake", "complaint_closed"), ("revisit", "revisit_scheduled"),
                 ("intake", "complaint_registered"))


def poison(number: int) -> tuple[str, str, str, bytes]:
    """The ``number``-th poison message: (kind, source, routing key, body); every kind
    goes every way in turn."""
    kind = POISON_KINDS[number % len(POISON_KINDS)]
    source, event_type = POISON_ROUTES[number // len(POISON_KINDS) % len(POISON_ROUTES)]
    marker = f"poison-{number}"
    if kind == "undecodable body":
        return kind, source, event_type, b"\xff\xfe{not json " + marker.encode()
    envelope = {"specversion": "1.0", "id": marker, "type": event_type, "source": source,
                "time": "2026-11-20T08:00:00+00:00", "estate_id": "estate-poison",
                "schema_version": 1, "data": {"complaint_id": 42}}     # wrong schema
    if kind == "unknown event type":
        envelope.update(type="complaint_teleported", data={"complaint_id": marker})
    return kind, source, event_type, json.dumps(envelope).encode()


def publish_poison(config, numbers) -> Counter:
    """Publish poison on the services' exchanges; {service: dead letters to expect}."""
    expected = Counter()
    with Connection(config["AMQP_URI"], transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel())
        for number in numbers:
            _, source, event_type, body = poison(number)
            producer.publish(body, exchange=Exchange(f"{source}.events", type="topic",
                                                     durable=True),
                             routing_key=event_type, content_type="application/json",
                             content_encoding="utf-8", delivery_mode=2,
                             message_id=f"poison-{number}")
            for queue in consumer_queues(source, event_type):
                expected[queue.split(".", 1)[0]] += 1
    return expected


def spread(count: int) -> list[float]:
    """``count`` moments spread over a stream (shares of its complaints, the last before
    90 %)."""
    return [round(0.9 * (index + 1) / (count + 1), 3) for index in range(count)]


def each_service_killed(services: FaultyServices, driver: LoopDriver) -> list[Fault]:
    """Each service in turn killed (``kill -9``) and started again mid-stream; intake's
    households are imported again after its restart (with the embedded store they died
    with it)."""
    def kill_and_restart(service):
        def action():
            services.kill(service)
            services.restart(service)
            if service == "intake" and not durable_store():
                driver.import_households()
        return action

    return [Fault(at, f"kill -9 {service}", kill_and_restart(service), kills=True)
            for at, service in zip(spread(len(LOOP_SERVICES)), LOOP_SERVICES)]


def listed_connections(rabbit_manager, vhost: str) -> int:
    return sum(connection.get("vhost") == vhost
               for connection in rabbit_manager.get_connections())


def connections_closed(rabbit_manager, vhost: str, times: int) -> list[Fault]:
    """Every connection of ``vhost`` closed, ``times`` times over the stream (through the
    management API: only this vhost, never the whole shared node)."""
    def action(fault_index):
        def close():
            # The management API lists a connection some seconds after it opens: the
            # services' connections (several each) are waited for, not missed.
            wait_until(lambda: listed_connections(rabbit_manager, vhost)
                       >= 2 * len(LOOP_SERVICES), timeout=60, interval=0.5,
                       message=f"the services' connections to {vhost} listed")
            closed = close_connections_of(rabbit_manager, vhost)
            faults[fault_index].name += f" ({closed} connections)"
        return close

    faults = [Fault(at, f"close all connections #{index + 1}", action(index))
              for index, at in enumerate(spread(times))]
    return faults
