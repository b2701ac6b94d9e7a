"""`make bench --only notices`: a notice to every household of an estate (survey's
``rectification_done``) through notify's console channel, at sizes a factor of 10 apart,
in process (worker_factory, the embedded store with its indexes, intake a stand-in that
answers ``get_contacts``/``get_contact`` at once, a publisher that only counts).

Two phases, each timed: the broadcast event handled (one delivery logged a household,
their contacts looked up), then the dispatcher's ticks until every notice went (claimed,
sent, its ``notification_sent`` published). The same round through today's dispatcher and
the one before issue 14 (one delivery claimed at a time by a sorted range query, one
``get_contact`` a household, one confirm an event) at the smaller sizes, in the same run:
the baseline. Intake calls and publisher confirms are counted: in process they cost
nothing, over the broker each is a round trip (~5-10 ms). Times are CPU seconds of this
process (the machine is shared), and the wall seconds of the whole round.

A survey round's invitations (``survey_invitation_issued``, one event a household) are
handled as they arrive, not dispatched: the same sizes through notify's batch handler as
its entrypoint hands them over (``INVITATION_BATCH`` events a worker: one ``get_contacts``
and one confirm for them all), and one event a worker (a look-up and a confirm each, as
before) at the smaller sizes. Then the same through the broker (``--only notices`` with
the run's vhost): notify and a stand-in intake as nameko services in this process, the
invitations queued first, timed from notify's start until each was handled: notices a
second (wall) and CPU a notice of the whole process (notify, intake, nameko, kombu).
"""
import time
from datetime import UTC, datetime

from nameko.rpc import rpc

from bench.run import exponent_note, growth_exponent

NOW = datetime(2026, 10, 9, 2, 30, tzinfo=UTC)   # 10:30 in Shanghai: no quiet hours


class CountingPublisher:
    """Counts events and confirms (a batch is one)."""

    def __init__(self):
        self.events = self.confirms = 0

    def publish(self, event):
        self.events += 1
        self.confirms += 1

    def publish_batch(self, events):
        self.events += len(events)
        self.confirms += 1


class StubIntake:
    """intake as notify asks it: the estate's households and their contacts; calls counted."""

    def __init__(self, households):
        self.households, self.calls = households, 0

    def list_households(self, estate_id, filters=None):
        self.calls += 1
        return [{"id": f"h-{number:07d}"} for number in range(self.households)]

    def get_contact(self, ref):
        self.calls += 1
        return self.contact(ref)

    def get_contacts(self, refs):
        self.calls += 1
        return {ref: self.contact(ref) for ref in refs}

    @staticmethod
    def contact(ref):
        return {"household_id": ref, "estate_id": "e-1", "name": "王芳",
                "phone": f"138{int(ref[2:]):08d}", "preferred_channel": "sms"}


def notice_round(households, one_at_a_time=False):
    """(handled CPU s, dispatched CPU s, wall s, intake calls, confirms) of one round to
    ``households``."""
    from pymongo import ASCENDING, IndexModel

    from shared.envelope import new_event, parse_event

    service, publisher, intake = notify_worker(households)
    if one_at_a_time:   # the index the old claim used
        service.store.db.deliveries.create_indexes([IndexModel(
            [("status", ASCENDING), ("next_attempt_at", ASCENDING),
             ("claimed_until", ASCENDING)])])
        book = service.address_book   # each contact looked up alone, as it was
        book.households = lambda ids: (
            (household_id, lambda household_id=household_id: book.contact(household_id))
            for household_id in ids)
    done = parse_event(new_event("rectification_done", "survey", "e-1", {
        "rectification_id": "rect-1", "round_id": "rnd-1", "category": "greening",
        "department": "绿化部", "due_at": NOW, "action": "补种中心花园草坪",
        "status": "done"}, NOW))
    wall, started = time.perf_counter(), time.process_time()
    service.announce_rectification_done(done)
    handled = time.process_time() - started
    started = time.process_time()
    if one_at_a_time:
        dispatch_one_at_a_time(service)
    else:
        while publisher.events < households:
            service.dispatch_due()
    dispatched, wall = time.process_time() - started, time.perf_counter() - wall
    assert publisher.events == households
    return handled, dispatched, wall, intake.calls, publisher.confirms


def dispatch_one_at_a_time(service):
    """The dispatcher before issue 14: one delivery claimed a time (a range on
    next_attempt_at/claimed_until, sorted), sent, saved and its event published."""
    from pymongo import ASCENDING, ReturnDocument

    from services.notify import delivery_log

    now, lease = service.clock.now(), service.settings.estate(None).claim
    while True:
        claim = delivery_log.new_claim()
        delivery = service.store.db.deliveries.find_one_and_update(
            {"status": "queued", "next_attempt_at": {"$lte": now},
             "claimed_until": {"$lte": now}},
            {"$set": {"claim": claim, "claimed_until": now + lease}},
            sort=[("next_attempt_at", ASCENDING)], return_document=ReturnDocument.AFTER)
        if delivery is None:
            return
        service.deliveries.save(delivery, claim, *service.deliveries.attempt(delivery))


def invitation_round(households, batch):
    """(CPU s, wall s, intake calls, confirms) of ``households`` invitations handed to
    notify's ``invite_to_survey`` ``batch`` at a time."""
    from shared.envelope import parse_event

    service, publisher, intake = notify_worker(households)
    events = [parse_event(event) for event in invitation_events(households, NOW)]
    wall, started = time.perf_counter(), time.process_time()
    for start in range(0, households, batch):
        assert service.invite_to_survey(events[start:start + batch]) == {}
    cpu, wall = time.process_time() - started, time.perf_counter() - wall
    assert publisher.events == households
    return cpu, wall, intake.calls, publisher.confirms


def invitation_events(count, now, run=""):
    """``count`` survey_invitation_issued envelopes, one a household (``run``: a key suffix,
    so that each run's events are new to notify)."""
    from datetime import timedelta

    from shared.envelope import new_event

    return [new_event("survey_invitation_issued", "survey", "e-1", {
        "round_id": "rnd-1", "invitation_id": f"inv-{number}",
        "household_id": f"h-{number:07d}", "token": f"tok-{number:016d}",
        "expires_at": now + timedelta(days=14), "title": "业主满意度调查"}, now,
        key=f"inv-{number}{run}") for number in range(count)]


def notify_worker(households):
    """(notify worker, its counting publisher, its stand-in intake) on a fresh store."""
    from nameko.testing.services import worker_factory

    from services.notify.repository import NotifyRepository
    from services.notify.service import NotifyService
    from services.notify.settings import NotifySettings
    from shared import embedded
    from shared.actor import Caller
    from shared.clock import FrozenClock

    publisher, intake = CountingPublisher(), StubIntake(households)
    store = NotifyRepository(embedded.new_client()["bench_notify"], publisher=publisher)
    store.create_indexes()
    settings = NotifySettings({"NOTIFY_CHANNELS": ["console"]})
    service = worker_factory(NotifyService, store=store, clock=FrozenClock(NOW),
                             intake=intake, settings=settings, caller=Caller(None, None))
    return service, publisher, intake


def invitation_times(sizes, baseline_sizes):
    """{variant: [(size, CPU s, wall s, intake calls, confirms)]}."""
    from services.notify.service import INVITATION_BATCH

    invitation_round(50, INVITATION_BATCH)   # imports, first calls
    return {f"batches of {INVITATION_BATCH}": [
        (size, *invitation_round(size, INVITATION_BATCH)) for size in sizes],
        "one event a worker (before)": [
            (size, *invitation_round(size, 1)) for size in baseline_sizes]}


def print_invitation_times(results, limit=1.15):
    print("notices: a survey round's invitations (survey_invitation_issued, one a household) "
          "through the console channel (in process, embedded store; CPU s):")
    for name, runs in results.items():
        if not runs:
            continue
        print(f"  {name}:")
        for size, cpu, wall, calls, confirms in runs:
            print(f"    {size:>9,} invitations  {cpu:7.2f} s  {size / cpu:7,.0f} notices/s  "
                  f"{cpu / size * 1000:.3f} ms CPU a notice  (wall {wall:.1f} s)  "
                  f"intake calls {calls:,}, confirms {confirms:,}")
        print("    growth" + exponent_note(growth_exponent(
            [size for size, *_ in runs], [cpu / size for size, cpu, *_ in runs]), limit))


class ContactsIntake:
    """intake over RPC as notify asks it for invitations: contacts; calls counted."""

    name = "intake"
    calls = 0

    @rpc
    def get_contacts(self, refs):
        ContactsIntake.calls += 1
        return {ref: StubIntake.contact(ref) for ref in refs}

    @rpc
    def get_contact(self, ref):
        ContactsIntake.calls += 1
        return StubIntake.contact(ref)


def invitations_through_broker(config, count, one_at_a_time=False):
    """(wall s, CPU s, intake calls) of notify taking ``count`` queued invitations from
    its queue until each is handled (``one_at_a_time``: a worker an event, as before)."""
    from unittest.mock import patch

    from kombu import Connection
    from nameko.runners import ServiceRunner

    from services.notify.delivery import Deliveries
    from services.notify.service import NotifyService
    from shared import topology
    from shared.messaging import BatchEventHandler, EventPublisher
    from tests.helpers import wait_until

    config = dict(config, NOTIFY_CHANNELS=["console"], NOTIFY_QUIET_HOURS="",
                  MONGO_DB_PREFIX=f"bench{count}{int(one_at_a_time)}")
    with Connection(config["AMQP_URI"]) as connection:
        topology.declare_all(connection, config)
    publisher = EventPublisher(config)
    events = invitation_events(count, datetime.now(UTC), run=f"-{one_at_a_time}")
    for start in range(0, count, 1000):
        publisher.publish_batch(events[start:start + 1000])
    handled, announce_all = [0], Deliveries.announce_all

    def counted(self, batch, address_book):
        failed = announce_all(self, batch, address_book)
        handled[0] += len(batch) - len(failed)
        return failed

    def alone(self, envelope, message):   # the batch handler, a batch of one
        self._waiting.append((envelope, message))
        self._start_batch()

    ContactsIntake.calls = 0
    runner = ServiceRunner(config)
    runner.add_service(NotifyService)
    runner.add_service(ContactsIntake)
    with patch.object(Deliveries, "announce_all", counted), patch.object(
            BatchEventHandler, "hand_over", alone if one_at_a_time
            else BatchEventHandler.hand_over):
        cpu, wall = time.process_time(), time.perf_counter()
        runner.start()
        try:
            wait_until(lambda: handled[0] >= count, timeout=1800, interval=0.05,
                       message="every invitation handled")
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        finally:
            runner.stop()
    return wall, cpu, ContactsIntake.calls


def print_invitations_through_broker(runs):
    import os

    print("notices: invitations through the broker (queued first; notify and a stand-in "
          "intake in this process, console channel):")
    for name, size, (wall, cpu, calls) in runs:
        print(f"  {name:28} {size:>9,} invitations  {size / wall:7,.0f} notices/s (wall "
              f"{wall:.1f} s)  CPU {cpu / size * 1000:.2f} ms a notice  intake calls {calls:,}")
    print(f"  load average {os.getloadavg()[0]:.2f} at the end (2 cores)")


def notices_times(sizes, baseline_sizes):
    """{variant: [(size, handled CPU s, dispatched CPU s, wall s, intake calls, confirms)]}."""
    notice_round(50)   # imports, first calls
    results = {"batches": [(size, *notice_round(size)) for size in sizes]}
    results["one at a time (before)"] = [
        (size, *notice_round(size, one_at_a_time=True)) for size in baseline_sizes]
    return results


def print_notices_times(results, limit=1.15):
    print("notices: a rectification_done broadcast to every household through the console "
          "channel (in process, embedded store; CPU s):")
    for name, runs in results.items():
        if not runs:
            continue
        sizes = [size for size, *_ in runs]
        per_notice = [(handled + dispatched) / size
                      for size, handled, dispatched, *_ in runs]
        print(f"  {name}:")
        for size, handled, dispatched, wall, calls, confirms in runs:
            total = handled + dispatched
            print(f"    {size:>9,} households  handled {handled:7.2f} s  dispatched "
                  f"{dispatched:7.2f} s  {size / total:7,.0f} notices/s  (dispatcher alone "
                  f"{size / dispatched:7,.0f}/s; wall {wall:.1f} s)  intake calls {calls:,}, "
                  f"confirms {confirms:,}")
        print("    growth" + exponent_note(growth_exponent(sizes, per_notice), limit))
        size, handled, dispatched, *_ = runs[-1]
        print(f"    1,000,000 households at {size / (handled + dispatched):,.0f}/s: "
              f"{1_000_000 / (size / (handled + dispatched)) / 60:,.1f} min in process")
