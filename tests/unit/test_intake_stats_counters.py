"""Complaint statistics from counters: after any sequence of changes, crashes and relay
passes, the counters equal a recount of the raw complaints, and the figures equal the
scan of the raw complaints they replace (``stats.complaint_figures``)."""
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.intake import stats
from services.intake.repository import (
    BOOKKEEPING,
    COUNTERS,
    PENDING,
    IntakeRepository,
)
from shared.errors import InvalidInput, InvalidTransition
from shared.periods import period_bounds, period_months
from tests.unit.test_intake_service import HOUSEHOLD, make_service

NOW = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)     # 23:00 on the last day of November, Shanghai
ESTATES = ("e-1", "e-2")
PERIODS = ("2026-10", "2026-11", "2026-12", "2026-Q4", "2026-H2", "2026")


class Crash(Exception):
    """The process died between two writes."""


def new_service():
    from shared.clock import FrozenClock
    from tests.helpers import embedded

    repository = embedded(IntakeRepository)
    repository.outbox_grace = timedelta(0)    # the relay may take what is left at once
    service = make_service(repository, FrozenClock(NOW))
    for number, estate_id in enumerate(ESTATES):
        service.import_households(estate_id, [dict(HOUSEHOLD, household_id=f"h-{number}")], estate={"name": "测试小区"})
    return service


def scanned(service, estate_id, period):
    """The figures as they were computed before the counters: a scan of the raw complaints."""
    now = service.clock.now()
    start, end = period_bounds(period, service.policies.for_estate(estate_id).timezone)
    complaints = service.store.complaints_received(estate_id, start, end, stats.FIELDS)
    names = {key: service.get_estate(estate_id)[key] for key in ("name", "company", "region")}
    return {"estate_id": estate_id, **names, "period": period, "from": start.isoformat(),
            "until": end.isoformat(), **stats.complaint_figures(complaints, now)}, complaints


def assert_counters_hold(service):
    """Counters == recount, and every figure == the scan, for each estate and period."""
    recounted, kept = service.store.recount()
    assert stats.counter_differences(kept, recounted) == []
    assert service.check_statistics()["consistent"]
    for period in PERIODS:
        everything, estates = [], {}
        for estate_id in ESTATES:
            expected, complaints = scanned(service, estate_id, period)
            assert service.complaint_stats(estate_id, period) == expected
            estates[estate_id] = expected
            everything += complaints
        group = service.group_complaint_stats(period)
        assert group["estates"] == estates
        assert group["total"] == stats.complaint_figures(everything, service.clock.now())
        # the group's monthly totals alone: the same total, no estate read
        assert service.group_complaint_stats(period, per_estate=False) == {
            "period": period, "group_by": "estate", "total": group["total"]}


# -- a random day at the complaint desk ---------------------------------------------------

STEP_DATA = {
    "acknowledge_complaint": {"staff_id": "s-1", "note": "已致歉"},
    "assign_complaint": {"department": "秩序部", "assignee_id": "s-7"},
    "resolve_complaint": {"staff_id": "s-7", "resolution": "已处理"},
    "close_complaint": {"closed_by": "s-1", "owner_signoff": "satisfied"},
    "reopen_complaint": {"reason": "又坏了", "source": "owner", "staff_id": "s-1"},
    "request_review": {"reason": "不服", "staff_id": "s-1"},
    "escalate_complaint": {"staff_id": "s-1", "reason": "拖太久"},
    "record_special_measures": {"staff_id": "s-1", "measures": "专人跟进"},
}
MOVES = (*STEP_DATA, "promise_reply", "refer_out", "uphold_review", "overturn_review",
         "flag", "unflag", "external_update", "close_unsatisfied")

register = st.tuples(
    st.just("register"), st.sampled_from(ESTATES),
    st.sampled_from(["noise", "cleaning", "parking", "repair_service"]),
    st.sampled_from(["hotline", "wechat", "visit"]),
    st.sampled_from(["normal", "major", "emergency"]),
    # from the middle of October to now: across the end of October and of November in
    # Shanghai; microseconds too (the store keeps milliseconds)
    st.integers(min_value=0, max_value=47 * 24 * 3600 * 1000).map(
        lambda ms: NOW - timedelta(milliseconds=ms)),
    st.integers(min_value=0, max_value=999).map(lambda us: timedelta(microseconds=us)))
move = st.tuples(st.just("move"), st.integers(min_value=0, max_value=50),
                 st.sampled_from(MOVES))
elapse = st.tuples(st.just("elapse"),
                   st.sampled_from([timedelta(minutes=30), timedelta(hours=5),
                                    timedelta(days=1), timedelta(days=4)]))
timers = st.tuples(st.just("timers"))
# the next write's settling dies: before its $inc, or after it (before it is forgotten)
crash = st.tuples(st.just("crash"), st.sampled_from(["before_inc", "after_inc"]))
relay = st.tuples(st.just("relay"))
desk_day = st.lists(st.one_of(register, register, move, move, move, move, elapse, timers,
                              crash, relay), min_size=1, max_size=40)


def move_complaint(service, complaint_id, name):
    if name in STEP_DATA:
        getattr(service, name)(complaint_id, STEP_DATA[name])
    elif name == "promise_reply":
        service.assign_complaint(complaint_id, {
            "reply_promised_at": (service.clock.now() + timedelta(days=2)).isoformat()})
    elif name == "close_unsatisfied":     # counted apart (issue 12)
        service.close_complaint(complaint_id, {"closed_by": "s-1",
                                               "owner_signoff": "unsatisfied"})
    elif name == "refer_out":
        service.assign_complaint(complaint_id, {"external_unit": "自来水公司"})
    elif name in ("uphold_review", "overturn_review"):
        outcome = {"uphold_review": "upheld", "overturn_review": "overturned"}[name]
        service.decide_review(complaint_id, {"reviewer_id": "m-1", "finding": "复核",
                                             "outcome": outcome})
    elif name == "external_update":
        service.update_external_status(complaint_id, {"staff_id": "s-1", "status": "in_progress",
                                                      "note": "跟进"})
    else:
        service.flag_malicious(complaint_id, {"flagged_by": "m-1", "role": "manager",
                                              "reason": "恶意", "malicious": name == "flag"})


def cut_settling(monkeypatch, service, where):
    """The next write's settling dies at ``where``; later ones run normally."""
    repository = service.store
    real_apply = repository._apply

    def apply(change):
        if where == "after_inc":
            real_apply(change)
        monkeypatch.setattr(repository, "_apply", real_apply)
        raise Crash(where)

    monkeypatch.setattr(repository, "_apply", apply)


def run_day(service, day, monkeypatch):
    ids = []
    for step in day:
        kind = step[0]
        try:
            if kind == "register":
                _, estate_id, category, channel, severity, received_at, extra = step
                household = f"h-{ESTATES.index(estate_id)}"
                created = service.register_complaint({
                    "estate_id": estate_id, "household_id": household, "channel": channel,
                    "category": category, "severity": severity, "content": "投诉",
                    "received_at": (min(received_at + extra, service.clock.now())).isoformat()})
                ids.append(created["id"])
            elif kind == "move" and ids:
                move_complaint(service, ids[step[1] % len(ids)], step[2])
            elif kind == "elapse":
                service.clock.advance(step[1])
            elif kind == "timers":
                service.send_deadline_alerts()
            elif kind == "crash":
                cut_settling(monkeypatch, service, step[1])
            elif kind == "relay":
                service.settle_interrupted_counts()
        except (InvalidTransition, InvalidInput, Crash):
            pass
    return ids


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(day=desk_day)
def test_counters_equal_a_recount_after_any_day(day, monkeypatch):
    service = new_service()
    with monkeypatch.context() as patched:
        run_day(service, day, patched)
    # the relay, once the leases of passes that died have lapsed, finishes what is left
    service.store.db.complaints.update_many({"stats_unsettled": True}, {"$set": {
        "stats_settle_after": datetime.now(UTC)}})
    service.settle_interrupted_counts()
    assert service.store.db.complaints.count_documents({PENDING: {"$ne": []}}) == 0
    assert_counters_hold(service)
    service.clock.advance(timedelta(days=3))   # deadlines pass: only the moment changed
    assert_counters_hold(service)


# -- exactly once ---------------------------------------------------------------------------

@pytest.fixture
def service():
    return new_service()


def register(service, **overrides):
    return service.register_complaint({
        "estate_id": "e-1", "household_id": "h-0", "channel": "wechat", "category": "noise",
        "severity": "normal", "content": "楼上装修", **overrides})["id"]


def counters(service):
    return {document["_id"]: document for document in service.store.db[COUNTERS].find()}


@pytest.mark.parametrize("where", ["before_inc", "after_inc"])
def test_a_write_that_dies_while_counting_is_counted_once_by_the_relay(service, monkeypatch,
                                                                       where):
    cid = register(service)
    cut_settling(monkeypatch, service, where)
    with pytest.raises(Crash):
        service.acknowledge_complaint(cid, STEP_DATA["acknowledge_complaint"])
    stored = service.store.find_complaint(cid)
    assert stored["status"] == "acknowledged" and len(stored[PENDING]) == 1
    assert service.store.settle_counts() == 1
    assert service.store.settle_counts() == 0      # a second pass finds nothing
    assert service.store.find_complaint(cid)[PENDING] == []
    figures = service.complaint_stats("e-1", "2026-11")
    assert figures["by_status"]["acknowledged"] == 1 and figures["by_status"]["registered"] == 0
    assert figures["first_reply"]["on_time"] == 1
    assert all(document["in_flight"] == [] for document in counters(service).values())
    assert_counters_hold(service)


def test_a_change_settled_twice_counts_once(service):
    cid = register(service)
    stored = service.store.find_complaint(cid)
    service.store.db.complaints.update_one({"_id": cid}, {"$set": {PENDING: [{
        "id": f"{cid}@0", "counter": f"e-1:{stored['stats_month']}", "estate_id": "e-1",
        "month": stored["stats_month"], "inc": [["received", 1]]}]}})
    for estate in ("e-1", "*"):     # the estate's counter and the group's total, month and year
        for key in (stored["stats_month"], stored["stats_month"][:4]):
            service.store.db[COUNTERS].update_one({"_id": f"{estate}:{key}"},
                                                  {"$push": {"in_flight": f"{cid}@0"}})
    # the relay finds the change's $inc already made (its id still in flight): not again
    service.store.db.complaints.update_one({"_id": cid}, {"$set": {
        "stats_unsettled": True, "stats_settle_after": datetime.now(UTC)}})
    assert service.store.settle_counts() == 1
    for period in ("2026-11", "2026"):
        assert service.complaint_stats("e-1", period)["received"] == 1
        assert service.group_complaint_stats(period, per_estate=False)["total"]["received"] == 1
    assert_counters_hold(service)


def test_a_crash_between_the_estates_counter_and_the_groups_total(service):
    """The writer died after the estate's $inc, before the totals' (the group's month,
    the estate's and the group's year): the relay makes those alone, once."""
    cid = register(service)
    month = service.store.find_complaint(cid)["stats_month"]
    change = {"id": f"{cid}@0", "counter": f"e-1:{month}", "estate_id": "e-1",
              "month": month, "inc": [["received", 1]]}
    service.store.db.complaints.update_one({"_id": cid}, {"$set": {
        PENDING: [change], "stats_unsettled": True, "stats_settle_after": datetime.now(UTC)}})
    service.store.db[COUNTERS].update_one({"_id": f"e-1:{month}"},
                                          {"$push": {"in_flight": change["id"]}})
    for total in (f"*:{month}", f"e-1:{month[:4]}", f"*:{month[:4]}"):
        service.store.db[COUNTERS].update_one({"_id": total}, {"$inc": {"received": -1}})
    assert service.store.settle_counts() == 1
    assert service.store.settle_counts() == 0
    for period in ("2026-11", "2026"):
        assert service.group_complaint_stats(period, per_estate=False)["total"]["received"] == 1
        assert service.complaint_stats("e-1", period)["received"] == 1
    assert_counters_hold(service)


def test_a_changes_inc_made_twice_counts_once(service):
    """Two settlers of one change at once (a slow writer and the relay): one $inc."""
    cid = register(service)
    month = service.store.find_complaint(cid)["stats_month"]
    change = {"id": f"{cid}@7", "counter": f"e-1:{month}", "estate_id": "e-1", "month": month,
              "inc": [["received", 1]]}
    service.store._apply(change)
    service.store._apply(change)
    assert service.complaint_stats("e-1", "2026-11")["received"] == 2


def test_the_relay_leaves_a_fresh_write_to_its_writer(service, monkeypatch):
    service.store.outbox_grace = timedelta(minutes=1)
    cid = register(service)
    cut_settling(monkeypatch, service, "before_inc")
    with pytest.raises(Crash):
        service.acknowledge_complaint(cid, STEP_DATA["acknowledge_complaint"])
    assert service.store.settle_counts() == 0
    assert len(service.store.find_complaint(cid)[PENDING]) == 1


def test_bookkeeping_is_never_shown(service):
    cid = register(service)
    shown = service.get_complaint(cid)
    assert not set(BOOKKEEPING) & set(shown)
    assert shown["stats_month"] == "2026-11"


def test_a_complaint_is_counted_in_its_month_of_receipt_in_the_estates_zone(service):
    # 16:30 UTC on 30 November is 00:30 on 1 December in Shanghai
    service.clock.advance(timedelta(hours=2))
    register(service, received_at="2026-11-30T16:30:00+00:00")
    register(service, received_at="2026-11-30T15:59:59.999+00:00")
    assert service.complaint_stats("e-1", "2026-12")["received"] == 1
    assert service.complaint_stats("e-1", "2026-11")["received"] == 1
    assert service.group_complaint_stats("2026-Q4")["total"]["received"] == 2
    assert_counters_hold(service)


def test_overdue_now_and_late_deadlines_come_from_the_moment_of_asking(service):
    cid = register(service)
    assert service.complaint_stats("e-1", "2026-11")["first_reply"] == {
        "on_time": 0, "late": 0, "pending": 1}
    due = service.get_complaint(cid)["first_response_due"]
    service.clock.advance(datetime.fromisoformat(due) - service.clock.now())
    figures = service.complaint_stats("e-1", "2026-11")     # due now: late (as the scan)
    assert figures["first_reply"] == {"on_time": 0, "late": 1, "pending": 0}
    assert figures["reply"] == {"on_time": 0, "late": 0, "pending": 1}
    assert figures["overdue_now"] == 1
    service.clock.advance(timedelta(days=10))
    assert service.complaint_stats("e-1", "2026-11")["reply"]["late"] == 1
    assert service.group_complaint_stats("2026-11")["total"]["overdue_now"] == 1
    assert_counters_hold(service)


def test_a_month_keeps_as_many_deadline_times_as_it_has_open_work(service):
    cids = [register(service, category=category) for category in ("noise", "cleaning", "fees")]
    for cid in cids:
        for step in ("acknowledge_complaint", "assign_complaint", "resolve_complaint",
                     "close_complaint"):
            getattr(service, step)(cid, STEP_DATA[step])
    kept = counters(service)
    # the estate's and the group's total, each a month and a year
    assert sorted(kept) == ["*:2026", "*:2026-11", "e-1:2026", "e-1:2026-11"]
    for document in kept.values():
        # the deadline times of the open work are gone with it, and the statuses passed through
        assert (document["first_reply_due"], document["reply_due"], document["next_due"]) == (
            {}, {}, {})
        assert document["by_status"] == {"closed": 3}
    assert_counters_hold(service)


# -- a store filled before the counters ------------------------------------------------------

def test_check_finds_a_store_filled_before_the_counters_and_repairs_it(service):
    first, second = register(service), register(service, estate_id="e-2", household_id="h-1")
    service.acknowledge_complaint(first, STEP_DATA["acknowledge_complaint"])
    # as stored before the counters: no month, no bookkeeping, no counters
    service.store.db.complaints.update_many({}, {"$unset": {
        "stats_month": "", **{field: "" for field in BOOKKEEPING}}})
    service.store.db[COUNTERS].delete_many({})
    report = service.check_statistics()
    assert (report["consistent"], report["unfiled"], report["repaired"]) == (False, 2, False)
    assert {"estate_id": "e-1", "month": None, "counter": "received", "kept": 0,
            "recomputed": 1} in report["differences"]
    assert service.complaint_stats("e-1", "2026-11")["received"] == 0   # not counted yet
    assert service.check_statistics({"repair": True})["repaired"] is True
    assert service.check_statistics() == {"consistent": True, "differences": [], "unfiled": 0,
                                          "repaired": False}
    assert_counters_hold(service)
    service.assign_complaint(first, STEP_DATA["assign_complaint"])   # and it goes on counting
    service.acknowledge_complaint(second, STEP_DATA["acknowledge_complaint"])
    assert_counters_hold(service)


def test_a_complaint_from_before_the_counters_is_counted_whole_at_its_next_change(service):
    cid = register(service)
    service.store.db.complaints.update_one({"_id": cid}, {"$unset": {
        "stats_month": "", **{field: "" for field in BOOKKEEPING}}})
    service.store.db[COUNTERS].delete_many({})
    service.acknowledge_complaint(cid, STEP_DATA["acknowledge_complaint"])
    assert service.complaint_stats("e-1", "2026-11")["by_status"]["acknowledged"] == 1
    assert_counters_hold(service)


def test_check_reports_a_counter_that_drifted_and_repair_restores_it(service):
    register(service)
    month = period_months("2026-11")[0]
    service.store.db[COUNTERS].update_one({"_id": f"e-1:{month}"}, {"$inc": {"received": 2}})
    report = service.check_statistics()
    assert report["differences"] == [{"estate_id": "e-1", "month": month, "counter": "received",
                                      "kept": 3, "recomputed": 1}]
    assert service.check_statistics({"repair": True})["repaired"] is True
    assert service.complaint_stats("e-1", "2026-11")["received"] == 1
    with pytest.raises(InvalidInput, match="repair"):
        service.check_statistics({"repair": "yes please"})
