"""revisit's statistics from counters kept per estate × month: after any sequence of
changes — crashes between a write and its counters included — the counters equal a
recount of the raw documents, and ``revisit_stats`` answers exactly what the scan of
the raw documents (``scan_stats`` below, the figures as they were computed before the
counters) answers, at any moment of asking."""
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nameko.testing.services import worker_factory

from services.revisit import stats
from services.revisit.dependencies import ZonedPolicies
from services.revisit.policies import PolicyBook
from services.revisit.repository import COUNTERS, PENDING, UNSETTLED, RevisitRepository
from services.revisit.service import RevisitService
from shared.actor import Caller
from shared.clock import FrozenClock
from shared.config import load_config
from shared.counters import GROUP
from shared.envelope import new_event, parse_event
from shared.errors import InvalidInput
from shared.estates import EstateCopies
from shared.periods import period_bounds, period_months
from shared.rates import rate
from shared.schemas.vocabulary import REVISIT_KINDS, UNSATISFIED_LEVELS, WORK_ORDER_KINDS
from tests.helpers import embedded, estate_copies, handle_one
from tests.unit.test_revisit_service import (
    PHONE_VISIT,
    closed_event,
    completed_event,
    make_service,
    reopened_event,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 10, 28, 2, 0, tzinfo=UTC)
ESTATES = ("e-1", "e-2", "e-30")     # e-30 follows another policy (another quota)
PERIODS = ("2026-11", "2026-Q4", "2026")


# -- the scan the counters replace (the oracle) ---------------------------------------------

SATISFIED = ("very_satisfied", "satisfied")


def scan_stats(revisits, work_orders, quota_for, now, followups=()):
    """The statistics as measured by one pass over the raw documents, before counters."""
    kinds = {kind: _scan_kind([r for r in revisits if r["kind"] == kind], now)
             for kind in REVISIT_KINDS}
    for kind in WORK_ORDER_KINDS:
        kinds[kind].update(_scan_sampling(
            kind, [o for o in work_orders if o["kind"] == kind],
            [r for r in revisits if r["kind"] == kind], quota_for))
    for kind in ("routine", "complaint"):
        kinds[kind]["required"] = kinds[kind]["owed"]
        kinds[kind]["revisit_rate"] = rate(kinds[kind]["done"], kinds[kind]["owed"])
    owed = [r for r in revisits if r["status"] != "cancelled"]
    done = [r for r in owed if r["status"] == "done"]
    reached = [r for r in done if (r.get("outcome") or {}).get("reached")]
    rated = [r for r in reached if r["outcome"].get("satisfaction")]
    promised = [r for r in owed if r.get("promised_reply_at")]
    return {
        "complaints_closed": kinds["complaint"]["owed"],
        "complaint_revisits_done": kinds["complaint"]["done"],
        "revisit_rate": kinds["complaint"]["revisit_rate"],
        "revisits": len(owed), "done": len(done),
        "on_time_rate": rate(sum(1 for r in done if _scan_on_time(r)), len(done)),
        "reach_rate": rate(len(reached), len(done)),
        "satisfaction_rate": rate(
            sum(1 for r in rated if r["outcome"]["satisfaction"] in SATISFIED), len(rated)),
        "overdue": sum(1 for r in owed if _scan_late(r, now)),
        "promised_replies": {
            "promised": len(promised),
            "given": sum(1 for r in promised if r.get("reply_given_at")),
            "given_on_time": sum(1 for r in promised if r.get("reply_given_at")
                                 and r["reply_given_at"] <= r["promised_reply_at"]),
            "overdue": sum(1 for r in promised if not r.get("reply_given_at")
                           and r["promised_reply_at"] < now),
        },
        "followups": _scan_followups(followups, now),
        "kinds": kinds,
    }


def _scan_followups(followups, now):
    answered = [f for f in followups if f["status"] == "answered"]
    on_time = [f for f in answered if f["answered_at"] <= f["answer_due_at"]]
    return {"opened": len(followups), "answered": len(answered),
            "answered_on_time": len(on_time), "on_time_rate": rate(len(on_time), len(answered)),
            "overdue": sum(1 for f in followups
                           if f["status"] != "answered" and f["answer_due_at"] < now)}


def _scan_kind(revisits, now):
    owed = [r for r in revisits if r["status"] != "cancelled"]
    done = [r for r in owed if r["status"] == "done"]
    reached = [r for r in done if (r.get("outcome") or {}).get("reached")]
    rated = [r for r in reached if r["outcome"].get("satisfaction")]
    return {
        "owed": len(owed), "done": len(done),
        "on_time": sum(1 for r in done if _scan_on_time(r)),
        "on_time_rate": rate(sum(1 for r in done if _scan_on_time(r)), len(done)),
        "reach_rate": rate(len(reached), len(done)),
        "satisfaction_rate": rate(
            sum(1 for r in rated if r["outcome"]["satisfaction"] in SATISFIED), len(rated)),
        "unsatisfied": sum(1 for r in rated if r["outcome"]["satisfaction"] in UNSATISFIED_LEVELS),
        "overdue": sum(1 for r in owed if _scan_late(r, now)),
        "cancelled": len(revisits) - len(owed),
    }


def _scan_sampling(kind, orders, revisits, quota_for):
    population = {}
    for order in orders:
        if order.get("in_population"):
            key = (order["estate_id"], order["month"])
            population[key] = population.get(key, 0) + 1
    required = sum(min(quota_for(estate_id)(kind, count), count)
                   for (estate_id, _), count in population.items())
    revisited = {r["source_id"] for r in revisits if r["status"] == "done"}
    selected = [o for o in orders if o.get("selected")]
    return {
        "orders": sum(population.values()), "required": required,
        "sampled": sum(1 for o in selected if o.get("in_population")),
        "top_up": sum(1 for o in selected if o.get("reason") == "top_up"),
        "revisited_orders": len(revisited), "revisit_rate": rate(len(revisited), required),
    }


def _scan_on_time(revisit):
    return revisit["completed_at"] is not None and revisit["completed_at"] <= revisit["due_at"]


def _scan_late(revisit, now):
    return revisit["status"] in ("scheduled", "booked", "overdue") and revisit["due_at"] < now


def scanned(service, estate_id, period, now):
    """What ``revisit_stats`` answered when it scanned the raw documents."""
    policy = service.policies.for_estate(estate_id) if estate_id else service.policies.default
    since, until = period_bounds(period, policy.timezone)
    revisits = service.store.revisits_for_stats(estate_id, since, until)
    orders = service.store.work_orders_for_stats(estate_id, period_months(period))
    followups = service.store.followups_for_stats(estate_id, period_months(period))

    def quota_for(estate):
        return service.policies.for_estate(estate).quota

    result = {"estate_id": estate_id, "period": period, "from": since.isoformat(),
              "until": until.isoformat(),
              **scan_stats(revisits, orders, quota_for, now, followups)}
    if estate_id is None:
        _required_as_closed(result, service, period_months(period))
        estates = sorted({r["estate_id"] for r in revisits} | {o["estate_id"] for o in orders})
        result["estates"] = {estate: scan_stats(
            [r for r in revisits if r["estate_id"] == estate],
            [o for o in orders if o["estate_id"] == estate], quota_for, now,
            [f for f in followups if f["estate_id"] == estate])
            for estate in estates}
    return result


def _required_as_closed(result, service, months):
    """The group's total: each sampled kind's ``required`` as the closings of the period's
    estate-months fixed it, and the orders no closing saw (``stats.group_figures``)."""
    closings = [closed["report"] for closed in service.store.db.sampling_months.find(
        {"month": {"$in": months}}) if closed.get("report")]
    for kind in WORK_ORDER_KINDS:
        figures = result["kinds"][kind]
        figures["required"] = sum(report[kind]["required"] for report in closings)
        figures["revisit_rate"] = rate(figures["revisited_orders"], figures["required"])
        figures["awaiting_closing"] = figures["orders"] - sum(report[kind]["orders"]
                                                              for report in closings)


# -- random sequences of changes --------------------------------------------------------------

class Crash(Exception):
    """The writer died after writing the revisit or work order, before its counters."""


moments = st.integers(0, 60 * 24 * 3)      # minutes after the previous change
changes = st.one_of(
    st.tuples(st.just("close"), st.sampled_from(ESTATES), st.integers(1, 4), st.integers(1, 2)),
    st.tuples(st.just("complete"), st.sampled_from(ESTATES), st.sampled_from(WORK_ORDER_KINDS),
              st.integers(1, 12), st.booleans()),
    st.tuples(st.just("reopen"), st.integers(1, 4), st.integers(1, 2)),
    st.tuples(st.just("record"), st.integers(0, 40),
              st.sampled_from(["very_satisfied", "satisfied", "neutral", "unsatisfied", None]),
              st.booleans()),
    st.tuples(st.just("reply"), st.integers(0, 40)),
    st.tuples(st.just("follow_up"), st.integers(0, 40), st.sampled_from(["measures", "answer"])),
    st.tuples(st.just("close_month"), st.sampled_from(ESTATES)),
    st.tuples(st.just("watch"),),
)
crashes = st.sampled_from([None, None, None, "before counting", "before forgetting"])


def run(service, clock, change, crash):
    """Apply ``change`` through the service; ``crash`` stops a writer after step 1 or 2."""
    repository = service.store
    if crash == "before counting":
        repository._settle = _crash
    elif crash == "before forgetting":
        repository._forget = _crash
    try:
        _change(service, clock, change)
    except Crash:
        pass
    finally:
        repository.__dict__.pop("_settle", None)
        repository.__dict__.pop("_forget", None)


def _crash(*args):
    raise Crash()


def _change(service, clock, change):
    name, *args = change
    if name == "close":
        estate, complaint, closing = args
        handle_one(service.schedule_complaint_revisits, closed_event(
            complaint_id=f"cmp-{estate}-{complaint}", closing_no=closing,
            closed_at=clock.now(), estate=estate))
    elif name == "complete":
        estate, kind, number, important = args
        service.follow_up_work_order(completed_event(
            f"wo-{estate}-{kind}-{number}", kind=kind, at=clock.now(), estate=estate,
            important=important))
    elif name == "reopen":
        complaint, reopen = args
        for estate in ESTATES:
            event = reopened_event(f"cmp-{estate}-{complaint}", reopen)
            service.cancel_superseded_revisits(event)
    elif name == "record":
        _record(service, clock, *args)
    elif name == "reply":
        revisit = _pick(service, args[0], {"promised_reply_at": {"$ne": None},
                                           "reply_given_at": None})
        if revisit is not None:
            service.record_reply(revisit["_id"], {"staff_id": "s-1", "reply": "答复"})
    elif name == "follow_up":
        _follow_up(service, *args)
    elif name == "close_month":
        month = (clock.now() - timedelta(days=40)).astimezone(SHANGHAI).strftime("%Y-%m")
        service.close_sampling_month(args[0], month)
    else:
        service.watch_deadlines()


def _record(service, clock, pick, satisfaction, promise):
    revisit = _pick(service, pick, {"status": {"$in": ["scheduled", "booked", "overdue"]}})
    if revisit is None:
        return
    visit = dict(PHONE_VISIT, satisfaction=satisfaction, reached=satisfaction is not None,
                 resolved=True if satisfaction else None)
    if promise and satisfaction is not None:     # promised to an owner reached
        visit["promised_reply_at"] = (clock.now() + timedelta(hours=20)).isoformat()
    service.record_revisit(revisit["_id"], visit)
    # revisit's own handler of the revisit_unsatisfied just queued opens the follow-up
    for event in service.store.db.revisits.find_one({"_id": revisit["_id"]})["outbox"]:
        if event["type"] == "revisit_unsatisfied":
            service.open_followup(parse_event(event))


def _follow_up(service, pick, step):
    """A department records measures on a follow-up, or answers the owner (measures first)."""
    followup = _pick(service, pick, {"status": {"$ne": "answered"}}, "followups")
    if followup is None:
        return
    if step == "answer" and followup["status"] == "measures_recorded":
        service.answer_followup(followup["_id"], {"staff_id": "s-1", "answer": "已整改"})
    else:
        service.record_followup_measures(followup["_id"], {
            "staff_id": "s-1", "measures": "更换配件", "responsible": "王工"})


def _pick(service, number, query, collection="revisits"):
    found = list(service.store.db[collection].find(query).sort("_id", 1))
    return found[number % len(found)] if found else None


@pytest.fixture
def world():
    repository = embedded(RevisitRepository)
    repository.outbox_grace = timedelta(0)      # the relay may take over at once
    clock = FrozenClock(START)
    return make_service(repository, clock), clock


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(moments, changes, crashes), min_size=1, max_size=30),
       asked_after=st.integers(0, 60 * 24 * 20))
def test_counters_equal_a_recount_and_the_scan_after_any_changes(steps, asked_after):
    repository = embedded(RevisitRepository)
    repository.outbox_grace = timedelta(0)
    clock = FrozenClock(START)
    service = make_service(repository, clock)
    for minutes, change, crash in steps:
        clock.advance(timedelta(minutes=minutes))
        run(service, clock, change, crash)
    # the relay, once the leases of crashed relays have lapsed: what crashed writers left
    repository.settle_counts(now=datetime.now(UTC) + timedelta(minutes=1))
    assert repository.db.revisits.count_documents({UNSETTLED: True}) == 0
    assert repository.db.followups.count_documents({UNSETTLED: True}) == 0
    assert repository.db.sampling_months.count_documents({UNSETTLED: True}) == 0
    assert service.check_statistics() == {"consistent": True, "differences": [],
                                          "repaired": False}
    assert all(not counter["in_flight"] for counter in repository.db[COUNTERS].find())
    clock.advance(timedelta(minutes=asked_after))
    for period in PERIODS:
        for estate_id in (None, "e-1", "e-30"):
            assert service.revisit_stats(estate_id, period) == scanned(
                service, estate_id, period, clock.now()), (estate_id, period)
        alone = dict(scanned(service, None, period, clock.now()))
        alone.pop("estates")    # the group's figures alone: its total counters only
        assert service.revisit_stats(None, period, per_estate=False) == alone
        # several estates' rows in one call: each as asked by its estate_id
        rows = service.revisit_stats(None, period, estate_ids=["e-30", "e-1", "e-2"])
        assert rows == {"period": period, "estates": {
            estate_id: _row(service.revisit_stats(estate_id, period)) for estate_id in ESTATES}}


def _row(figures):
    """An estate's figures as its row among others' gives them: without the envelope."""
    return {key: value for key, value in figures.items()
            if key not in ("estate_id", "period", "from", "until")}


# -- the pure parts -------------------------------------------------------------------------

revisit_documents = st.fixed_dictionaries({
    "_id": st.text("ab.$%", min_size=1, max_size=4),
    "estate_id": st.sampled_from(ESTATES),
    "kind": st.sampled_from(REVISIT_KINDS),
    "status": st.sampled_from(["scheduled", "booked", "done", "overdue", "cancelled"]),
    "source_id": st.sampled_from(["s.1", "s2", "$s3"]),
    "due_at": st.sampled_from([START, START + timedelta(days=1)]),
    "completed_at": st.sampled_from([None, START, START + timedelta(days=2)]),
    "outcome": st.one_of(st.none(), st.fixed_dictionaries({
        "reached": st.booleans(),
        "satisfaction": st.sampled_from([None, "very_satisfied", "satisfied", "neutral",
                                         "unsatisfied", "very_unsatisfied"])})),
    "promised_reply_at": st.sampled_from([None, START, START + timedelta(hours=5)]),
    "reply_given_at": st.sampled_from([None, START + timedelta(hours=1),
                                       START + timedelta(hours=9)]),
    "stats_month": st.just("2026-10"),
})
order_documents = st.fixed_dictionaries({
    "estate_id": st.sampled_from(ESTATES), "kind": st.sampled_from(WORK_ORDER_KINDS),
    "month": st.sampled_from(["2026-10", "2026-11"]), "in_population": st.booleans(),
    "selected": st.booleans(), "reason": st.sampled_from(["sampled", "top_up", "important"]),
})


def quota_for(estate_id):
    return {"e-30": lambda kind, n: (3 * n + 9) // 10}.get(estate_id, lambda kind, n: min(n, 5))


@settings(max_examples=200, deadline=None)
@given(revisits=st.lists(revisit_documents, max_size=25),
       orders=st.lists(order_documents, max_size=25),
       now=st.sampled_from([START - timedelta(days=1), START + timedelta(hours=3),
                            START + timedelta(days=3)]))
def test_the_recount_measures_as_the_scan_did(revisits, orders, now):
    # ids with "." and "$" (made safe as counter names); a work order is one estate's
    unique = {revisit["_id"]: dict(revisit, source_id=f"{revisit['estate_id']}/"
                                   f"{revisit['source_id']}") for revisit in revisits}
    revisits = list(unique.values())
    assert stats.revisit_stats(revisits, orders, quota_for, now) == \
        scan_stats(revisits, orders, quota_for, now)


def test_a_change_adds_its_difference_only():
    before = {"kinds.repair.owed": 1}
    after = {"kinds.repair.owed": 1, "kinds.repair.done": 1, "revisited.x": 1}
    assert stats.difference(before, after) == {"kinds.repair.done": 1, "revisited.x": 1}
    assert stats.difference(after, after) == {}


def test_a_promised_reply_is_overdue_only_once_its_time_has_passed():
    promised = datetime(2026, 11, 1, 8, 0, 0, 123000, tzinfo=UTC)
    awaiting = stats.nested({stats.awaited_reply("rv.1", promised): 1})["awaiting"]
    assert stats.replies_overdue(awaiting, promised) == 0
    assert stats.replies_overdue(awaiting, promised + timedelta(microseconds=1)) == 1


def test_the_deadline_watch_changes_no_counter():
    """Marking a visit overdue (the timer) writes no counters: overdue is asked of the open
    revisits when the statistics are asked for."""
    revisit = {"_id": "rv-1", "kind": "repair", "status": "scheduled", "source_id": "wo-1",
               "due_at": START, "completed_at": None, "outcome": None,
               "promised_reply_at": None, "reply_given_at": None}
    assert stats.contribution(revisit) == stats.contribution(dict(revisit, status="overdue"))


# -- the check command -------------------------------------------------------------------------

def test_check_finds_counters_that_disagree_and_repairs_them(world):
    service, clock = world
    handle_one(service.schedule_complaint_revisits, closed_event(closed_at=clock.now()))
    service.follow_up_work_order(completed_event(at=clock.now()))
    service.record_revisit("rv-cmp-1-1", PHONE_VISIT)
    assert service.check_statistics()["consistent"] is True
    counter = service.store.db[COUNTERS].find_one({"estate_id": "e-1"})
    service.store.db[COUNTERS].update_one({"_id": counter["_id"]},
                                          {"$inc": {"kinds.complaint.done": 5}})
    service.store.db.revisits.update_one({"_id": "rv-cmp-1-1"}, {"$set": {PENDING: [
        {"id": "rv-cmp-1-1@lost"}]}})
    check = service.check_statistics()
    assert check["consistent"] is False and check["repaired"] is False
    assert check["differences"] == [{"estate_id": "e-1", "month": "2026-10",
                                     "counter": "kinds.complaint.done", "kept": 6,
                                     "recomputed": 1}]
    assert service.check_statistics({"repair": True})["repaired"] is True
    assert service.check_statistics()["consistent"] is True
    assert service.store.db.revisits.find_one({"_id": "rv-cmp-1-1"})[PENDING] == []
    assert service.revisit_stats("e-1", "2026-10")["complaint_revisits_done"] == 1


def test_a_change_is_counted_once_when_the_relay_finishes_it(world):
    service, clock = world
    run(service, clock, ("close", "e-1", 1, 1), "before forgetting")
    assert service.store.db[COUNTERS].find_one()["in_flight"] == ["rv-cmp-e-1-1-1@scheduled"]
    run(service, clock, ("close", "e-1", 2, 1), "before counting")
    assert service.store.settle_counts() == 2
    assert service.store.settle_counts() == 0
    assert service.revisit_stats("e-1", "2026-10")["complaints_closed"] == 2
    assert service.check_statistics()["consistent"] is True


@pytest.mark.parametrize("zone_from", ["record", "config"])
def test_across_estates_an_estate_in_another_time_zone_is_counted_in_the_asked_ones(zone_from):
    """Its counters are its own months (its record's zone, from revisit's copy; the
    configured one until the copy comes); across estates the months are the default
    zone's, so it is recounted from its documents."""
    repository = embedded(RevisitRepository)
    copies = EstateCopies(repository.db, None, "Asia/Shanghai")
    configured = {"e-ny": {"timezone": "America/New_York"}} if zone_from == "config" else {}
    if zone_from == "record":
        copies.learn(parse_event(new_event("estate_registered", "intake", "e-ny", {
            "name": "纽约花园", "company": None, "region": None, "timezone": "America/New_York",
            "revision": 0}, START, key="e-ny@0")))
    clock = FrozenClock(datetime(2026, 11, 1, 2, 0, tzinfo=UTC))   # 31 Oct in New York
    service = worker_factory(
        RevisitService, store=repository, clock=clock, estates=copies, caller=Caller(None, None),
        policies=ZonedPolicies(PolicyBook(load_config(REVISIT_ESTATE_POLICIES=configured)),
                               copies))
    handle_one(service.schedule_complaint_revisits, closed_event(closed_at=clock.now(), estate="e-ny"))
    assert service.revisit_stats("e-ny", "2026-10")["complaints_closed"] == 1
    across = service.revisit_stats(None, "2026-11")
    assert across["complaints_closed"] == 1 and set(across["estates"]) == {"e-ny"}
    named = {"record": "纽约花园", "config": "e-ny"}[zone_from]   # the record's name, else its id
    figures = {key: value for key, value in across["estates"]["e-ny"].items()
               if key not in ("estate_name", "company", "region")}
    assert across["estates"]["e-ny"]["estate_name"] == named
    assert {**across, "estates": {"e-ny": figures}} == scanned(service, None, "2026-11",
                                                               clock.now())


def test_several_estates_rows_are_named_and_leave_out_an_estate_intake_does_not_know():
    repository = embedded(RevisitRepository)
    copies = estate_copies(repository, ["e-1"])
    clock = FrozenClock(datetime(2026, 11, 3, 2, 0, tzinfo=UTC))
    service = worker_factory(RevisitService, store=repository, clock=clock, estates=copies,
                             policies=ZonedPolicies(PolicyBook(load_config()), copies),
                             caller=Caller(None, None))
    handle_one(service.schedule_complaint_revisits, closed_event(closed_at=clock.now(), estate="e-1"))
    rows = service.revisit_stats(None, "2026-11", estate_ids=["e-1", "e-404"])["estates"]
    assert list(rows) == ["e-1"]     # intake knows no e-404 (no copy, nothing to ask)
    assert rows["e-1"]["estate_name"] == "e-1" and rows["e-1"]["complaints_closed"] == 1
    with pytest.raises(InvalidInput) as refused:
        service.revisit_stats("e-1", "2026-11", estate_ids=["e-1"])
    assert "estate_ids" in refused.value.errors
    with pytest.raises(InvalidInput) as refused:
        service.revisit_stats(None, "2026-11", estate_ids=[])
    assert "estate_ids" in refused.value.errors


def test_a_change_applied_twice_counts_once(world):
    """Two settlers of the same change (a writer slower than its grace, and the relay):
    the second finds its id in ``in_flight`` and adds nothing."""
    service, clock = world
    run(service, clock, ("close", "e-1", 1, 1), "before forgetting")
    change = service.store.db.revisits.find_one()[PENDING][0]
    service.store._apply(change)
    assert service.revisit_stats("e-1", "2026-10")["complaints_closed"] == 1


def test_revisits_stored_before_the_counters_are_counted_after_a_repair(world):
    """Upgrading: revisits written before the counters have no ``stats_month`` nor what
    the counters hold of them; ``check`` finds them missing, ``--repair`` counts them, and
    their later changes count from there."""
    service, clock = world
    handle_one(service.schedule_complaint_revisits, closed_event(closed_at=clock.now()))
    service.store.db.revisits.update_many({}, {"$unset": {"stats_month": "",
                                                          "stats_counted": ""}})
    service.store.db[COUNTERS].delete_many({})
    open_until = stats.open_until(service.store.db.revisits.find_one())   # its due time
    assert service.check_statistics()["differences"] == [{
        "estate_id": estate, "month": "2026-10", "counter": counter, "kept": 0,
        "recomputed": 1} for estate in (GROUP, "e-1")      # the group's total too
        for counter in (open_until, "kinds.complaint.owed")]
    assert service.check_statistics({"repair": True})["repaired"] is True
    service.record_revisit("rv-cmp-1-1", PHONE_VISIT)
    assert service.check_statistics()["consistent"] is True
    for estate_id in ("e-1", None):
        figures = service.revisit_stats(estate_id, "2026-10")
        assert (figures["complaints_closed"], figures["complaint_revisits_done"]) == (1, 1)


def test_a_store_without_group_totals_gets_them_from_a_repair(world):
    """Upgrading a store kept before the group's totals: ``check`` names the missing
    group counters, ``--repair`` writes them, and the group's figures count from there."""
    service, clock = world
    handle_one(service.schedule_complaint_revisits, closed_event(closed_at=clock.now()))
    service.store.db[COUNTERS].delete_many({"estate_id": GROUP})
    assert service.revisit_stats(None, "2026-10")["complaints_closed"] == 0
    assert {row["estate_id"] for row in service.check_statistics()["differences"]} == {GROUP}
    assert service.check_statistics({"repair": True})["repaired"] is True
    assert service.revisit_stats(None, "2026-10")["complaints_closed"] == 1


def test_the_group_total_counts_a_work_order_revisited_once(world):
    """Two visits done of one work order: its estate's counters count it once
    (``done_sources``), and the group's total adds what the estate's document decided,
    without the work orders' own bookkeeping."""
    service, clock = world
    service.follow_up_work_order(completed_event("wo-9", kind="repair", at=clock.now(),
                                                 important=True))
    first = service.store.db.revisits.find_one({"source_id": "wo-9"})
    service.record_revisit(first["_id"], PHONE_VISIT)
    again = dict(first, _id="rv-again", version=1)
    again.pop("outbox", None)
    service.store.schedule({**again, "status": "scheduled", "completed_at": None,
                            "outcome": None}, [])
    service.record_revisit("rv-again", PHONE_VISIT)
    group = service.store.db[COUNTERS].find_one({"estate_id": GROUP})
    assert group["revisited"] == {"repair": 1} and "done_sources" not in group
    assert service.revisit_stats(None, first["stats_month"])["kinds"]["repair"][
        "revisited_orders"] == 1
    assert service.check_statistics()["consistent"] is True


def test_the_check_command_reports_and_repairs_through_the_rpc(world, monkeypatch, capsys):
    from services.revisit import cli
    from shared import cli as command_line

    service, clock = world
    handle_one(service.schedule_complaint_revisits, closed_event(closed_at=clock.now()))
    service.store.db[COUNTERS].delete_many({})

    class Proxy:     # the service itself, as ServiceRpcProxy would reach it
        def __init__(self, name, config, timeout):
            assert name == "revisit"

        def __enter__(self):
            return service

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(command_line, "ServiceRpcProxy", Proxy)
    assert cli.main(["check"]) == 1
    out, err = capsys.readouterr()
    assert '"counter": "kinds.complaint.owed"' in out and "4 difference(s)" in err   # + group
    assert cli.main(["check", "--repair"]) == 0
    assert "repaired" in capsys.readouterr().err
    assert cli.main(["check"]) == 0
    assert "consistent" in capsys.readouterr().err
