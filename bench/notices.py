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
"""
import time
from datetime import UTC, datetime

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
    from nameko.testing.services import worker_factory
    from pymongo import ASCENDING, IndexModel

    from services.notify.repository import NotifyRepository
    from services.notify.service import NotifyService
    from services.notify.settings import NotifySettings
    from shared import embedded
    from shared.actor import Caller
    from shared.clock import FrozenClock
    from shared.envelope import new_event, parse_event

    publisher, intake = CountingPublisher(), StubIntake(households)
    store = NotifyRepository(embedded.new_client()["bench_notify"], publisher=publisher)
    store.create_indexes()
    settings = NotifySettings({"NOTIFY_CHANNELS": ["console"]})
    service = worker_factory(NotifyService, store=store, clock=FrozenClock(NOW),
                             intake=intake, settings=settings, caller=Caller(None, None))
    if one_at_a_time:   # the index the old claim used
        store.db.deliveries.create_indexes([IndexModel(
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

    from services.notify import domain

    now, lease = service.clock.now(), service.settings.estate(None).claim
    while True:
        claim = domain.new_claim()
        delivery = service.store.db.deliveries.find_one_and_update(
            {"status": "queued", "next_attempt_at": {"$lte": now},
             "claimed_until": {"$lte": now}},
            {"$set": {"claim": claim, "claimed_until": now + lease}},
            sort=[("next_attempt_at", ASCENDING)], return_document=ReturnDocument.AFTER)
        if delivery is None:
            return
        service.deliveries.save(delivery, claim, *service.deliveries.attempt(delivery))


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
