"""intake's complaint rules, without a broker or a store."""
import copy
from datetime import UTC, datetime, time, timedelta
from itertools import product
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.intake import domain
from services.intake.policy import Policies
from shared.errors import InvalidInput, InvalidTransition
from shared.schemas.intake import COMPLAINT_STATUSES

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)   # Monday 10:00 in Shanghai
POLICY = Policies().for_estate("e-1")
# An estate that answers on working days (reply_day_kind: working) rather than 「3日」.
WORKING_REPLY = Policies(group={"reply_day_kind": "working"}).for_estate("e-1")
# what each action's RPC supplies besides the actor
DETAILS = {
    "acknowledge": {"note": "已致歉"},
    "assign": {"department": "环境部"},
    "resolve": {"resolution": "已清理"},
    "close": {"owner_signoff": "none"},
    "reopen": {"reason": "又脏了", "source": "owner"},
    "request_review": {"reason": "处理结果不合理"},
    "uphold_review": {"finding": "处理符合规定"},
    "overturn_review": {"finding": "处理不到位"},
}


def local(text):
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def warn_at(complaint, kind):
    """When the open deadline of ``kind`` is announced as approaching."""
    return next(deadline["warn_at"] for deadline in domain.open_deadlines(complaint)
                if deadline["kind"] == kind)


def registered(earlier=(), policy=POLICY, now=NOW, **overrides):
    data = {"estate_id": "e-1", "household_id": "h-1", "reporter": None, "channel": "hotline",
            "category": "cleaning", "severity": "normal", "content": "垃圾未清理",
            "received_at": None, **overrides}
    return domain.register("cmp-1", data, list(earlier), policy, now)


def in_state(state):
    """A complaint as it would be after reaching ``state`` the usual way."""
    complaint, _ = registered()
    path = {
        "registered": [], "acknowledged": ["acknowledge"],
        "assigned": ["acknowledge", "assign"],
        "resolved": ["acknowledge", "assign", "resolve"],
        "closed": ["acknowledge", "assign", "resolve", "close"],
        "reopened": ["acknowledge", "assign", "resolve", "close", "reopen"],
        "under_review": ["acknowledge", "assign", "resolve", "close", "request_review"],
    }[state]
    for action in path:
        complaint, _ = domain.apply(complaint, action, "s-1", NOW, POLICY, **DETAILS[action])
    return complaint


def test_the_filter_vocabulary_is_the_state_machine():
    targets = {target for _, target in domain.TRANSITIONS.values()}
    starts = set().union(*(allowed for allowed, _ in domain.TRANSITIONS.values()))
    assert set(domain.STATES) == targets | starts | {"registered"}
    assert set(COMPLAINT_STATUSES) == set(domain.STATES)


# registration and deadlines ----------------------------------------------------------

def test_registration_sets_deadlines_and_announces_it():
    complaint, [event] = registered()
    assert complaint["status"] == "registered"
    assert complaint["first_response_due"] == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    assert complaint["reply_due"] == datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    assert complaint["routed_department"] == "环境部"
    assert complaint["next_due"] == "first_response"
    # the timer looks next 2 working hours before the first reply is due, to warn
    assert complaint["alert_due_at"] == complaint["first_response_due"] - timedelta(hours=2)
    assert complaint["next_warn_at"] == complaint["alert_due_at"]
    assert event["type"] == "complaint_registered"
    assert event["data"]["reply_due"] == "2026-11-26T02:00:00+00:00"
    assert complaint["history"][0]["action"] == "register"


@pytest.mark.parametrize("received, first_due, reply_due", [
    # Friday afternoon: over the weekend
    ("2026-11-20T15:00", "2026-11-23T15:00", "2026-11-25T15:00"),
    # the eve of the National Day golden week (1-7 October off)
    ("2026-09-30T10:00", "2026-10-08T10:00", "2026-10-10T10:00"),
    # Saturday 10 October is a make-up working day
    ("2026-10-09T10:00", "2026-10-10T10:00", "2026-10-13T10:00"),
    # Saturday 19 September is a rest day; Sunday 20 September is a make-up working day
    ("2026-09-19T10:00", "2026-09-21T00:00", "2026-09-23T00:00"),
    # Spring Festival 15-23 February off; Saturdays 14 and 28 February are working days
    ("2026-02-13T09:00", "2026-02-14T09:00", "2026-02-25T09:00"),
    ("2026-02-16T09:00", "2026-02-25T00:00", "2026-02-27T00:00"),
    ("2026-02-26T09:00", "2026-02-27T09:00", "2026-03-02T09:00"),
    # across the new year, 1 January 2027 a holiday
    ("2026-12-30T16:00", "2026-12-31T16:00", "2027-01-05T16:00"),
])
def test_deadlines_on_the_chinese_calendar(received, first_due, reply_due):
    # the first reply always, the answer where the estate counts it in working days
    complaint, _ = registered(received_at=local(received).astimezone(UTC), now=local(received),
                              policy=WORKING_REPLY)
    assert complaint["first_response_due"] == local(first_due)
    assert complaint["reply_due"] == local(reply_due)


def test_deadlines_count_in_the_estates_time_zone():
    # Friday 17:30 UTC is Friday 23:30 in Urumqi (UTC+6), a working day: due Monday 23:30
    # there. In Shanghai it would be Saturday 01:30: due at the end of Monday instead.
    urumqi = Policies(estates={"e-x": {"timezone": "Asia/Urumqi"}}).for_estate("e-x")
    received = datetime(2026, 11, 20, 17, 30, tzinfo=UTC)
    complaint, _ = registered(policy=urumqi, received_at=received, estate_id="e-x",
                              now=received)
    assert complaint["first_response_due"] == datetime(2026, 11, 23, 17, 30, tzinfo=UTC)


def test_an_estate_with_shorter_deadlines():
    strict = Policies(estates={"e-1": {"reply_working_days": 2}}).for_estate("e-1")
    complaint, _ = registered(policy=strict)
    assert complaint["reply_due"] == datetime(2026, 11, 25, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize("received, reply_due", [
    # 「一般投诉应在3日内回复」: three days on, weekends and holidays included
    ("2026-11-20T15:00", "2026-11-23T15:00"),       # Friday: due Monday
    ("2026-09-30T10:00", "2026-10-03T10:00"),       # into the golden week
    ("2026-11-21T10:00", "2026-11-24T10:00"),       # received on a Saturday
    ("2026-12-30T16:00", "2027-01-02T16:00"),
])
def test_the_answer_is_due_three_calendar_days_on_by_default(received, reply_due):
    complaint, _ = registered(received_at=local(received).astimezone(UTC), now=local(received))
    assert complaint["reply_due"] == local(reply_due)


def test_an_estate_counts_the_answer_in_working_days_by_either_spelling():
    for values in ({"reply_day_kind": "working"}, {"reply_working_days": 3}):
        policy = Policies(estates={"e-1": values}).for_estate("e-1")
        complaint, _ = registered(policy=policy, received_at=local("2026-11-20T15:00"),
                                  now=local("2026-11-20T15:00"))
        assert complaint["reply_due"] == local("2026-11-25T15:00"), values


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31, 23, 59)))
def test_deadlines_over_a_year_land_on_working_days_n_working_days_on(naive):
    received = naive.replace(tzinfo=SHANGHAI)
    complaint, _ = registered(received_at=received.astimezone(UTC), now=received,
                              policy=WORKING_REPLY)
    calendar = POLICY.calendar
    for key, days in (("first_response_due", 1), ("reply_due", 3)):
        due = complaint[key].astimezone(SHANGHAI)
        if calendar.is_working_day(received.date()):
            assert due.time() == received.time()
            last = due.date()
        else:
            assert due.time() == time(0)   # the end of the n-th working day
            last = due.date() - timedelta(days=1)
        assert calendar.is_working_day(last)
        between = [received.date() + timedelta(days=offset)
                   for offset in range(1, (last - received.date()).days + 1)]
        assert sum(map(calendar.is_working_day, between)) == days
    assert complaint["first_response_due"] < complaint["reply_due"]


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=2000, max_value=2099), st.times())
def test_a_deadline_set_on_30_december_works_in_any_year(year, moment):
    received = datetime.combine(datetime(year, 12, 30).date(), moment, SHANGHAI)
    complaint, _ = registered(received_at=received.astimezone(UTC), now=received,
                              policy=WORKING_REPLY)
    calendar = POLICY.calendar
    for key in ("first_response_due", "reply_due"):
        due = complaint[key].astimezone(SHANGHAI)
        # from a rest day a deadline is the end (midnight) of its last working day
        from_working_day = calendar.is_working_day(received.date())
        last = due.date() if from_working_day else due.date() - timedelta(days=1)
        assert calendar.is_working_day(last)
        assert last.year in (year, year + 1)
    assert received < complaint["first_response_due"] < complaint["reply_due"]


def test_received_in_the_future_is_refused():
    with pytest.raises(InvalidInput) as error:
        registered(received_at=NOW + timedelta(hours=1))
    assert "received_at" in error.value.errors


# the state machine -------------------------------------------------------------------

@pytest.mark.parametrize("state, action", list(product(domain.STATES, domain.TRANSITIONS)))
def test_every_transition_is_allowed_or_refused_by_the_table(state, action):
    allowed_from, target = domain.TRANSITIONS[action]
    complaint = in_state(state)
    assert complaint["status"] == state
    if state in allowed_from:
        changed, events = domain.apply(complaint, action, "s-9", NOW, POLICY, **DETAILS[action])
        assert changed["status"] == target
        assert events, "every transition is announced"
        entry = changed["history"][-1]
        assert (entry["by"], entry["action"], entry["from"], entry["to"]) == (
            "s-9", action, state, target)
        assert entry["at"] == NOW and entry["note"]
    else:
        with pytest.raises(InvalidTransition, match=f"it is {state}"):
            domain.apply(complaint, action, "s-9", NOW, POLICY, **DETAILS[action])


def test_a_refused_transition_leaves_the_complaint_untouched():
    complaint = in_state("registered")
    before = repr(complaint)
    with pytest.raises(InvalidTransition):
        domain.apply(complaint, "close", "s-1", NOW, POLICY, owner_signoff="none")
    assert repr(complaint) == before


def test_events_of_each_transition():
    expected = {
        "acknowledge": ["complaint_acknowledged"], "assign": ["complaint_assigned"],
        "resolve": ["complaint_resolved"], "close": ["complaint_closed"],
        "reopen": ["complaint_reopened"], "request_review": ["complaint_review_requested"],
        "uphold_review": ["complaint_reviewed"],
        "overturn_review": ["complaint_reviewed", "complaint_reopened"],
    }
    for action, types in expected.items():
        start = next(iter(sorted(domain.TRANSITIONS[action][0])))
        _, events = domain.apply(in_state(start), action, "s-1", NOW, POLICY, **DETAILS[action])
        assert [event["type"] for event in events] == types


def test_closing_counts_closings_and_carries_what_revisit_needs():
    complaint = dict(in_state("resolved"), closing_no=1)
    closed, [event] = domain.apply(complaint, "close", "s-1", NOW, POLICY,
                                   owner_signoff="satisfied")
    assert closed["closing_no"] == 2
    assert event["data"] == {
        "complaint_id": "cmp-1", "household_id": "h-1", "category": "cleaning",
        "severity": "normal", "closed_at": NOW.isoformat(), "owner_signoff": "satisfied",
        "closing_no": 2, "malicious": False,
    }


def test_closing_time_from_paper_may_be_past_but_not_future():
    typed_in, signed = NOW + timedelta(days=2), NOW + timedelta(hours=3)
    closed, [event] = domain.apply(in_state("resolved"), "close", "s-1", typed_in, POLICY,
                                   owner_signoff="none", closed_at=signed)
    assert closed["closed_at"] == signed and event["data"]["closed_at"] == signed.isoformat()
    for wrong in (typed_in + timedelta(days=1), NOW - timedelta(hours=1)):   # future, pre-receipt
        with pytest.raises(InvalidInput, match="closed_at"):
            domain.apply(in_state("resolved"), "close", "s-1", typed_in, POLICY,
                         owner_signoff="none", closed_at=wrong)


def test_assign_defaults_to_the_estates_routing_table():
    outsourced = Policies(estates={"e-1": {"routing": {"cleaning": "保洁外包组"}}}).for_estate("e-1")
    acknowledged = in_state("acknowledged")
    assigned, [event] = domain.apply(acknowledged, "assign", "s-1", NOW, outsourced)
    assert assigned["department"] == "保洁外包组"
    assert event["data"]["department"] == "保洁外包组"
    assigned, _ = domain.apply(acknowledged, "assign", "s-1", NOW, POLICY)
    assert assigned["department"] == "环境部"


@pytest.mark.parametrize("state", ["acknowledged", "assigned"])   # assigned: a reassignment
def test_a_department_the_estates_routing_does_not_name_is_refused(state):
    """Whoever calls (the gateway, an outside system over RPC): work goes only to a
    department some category of the estate's routing names, else no account could get it."""
    complaint = in_state(state)
    before = copy.deepcopy(complaint)
    for department in ("保洁部", "保洁外包组", "环境部 "):
        with pytest.raises(InvalidInput) as refused:
            domain.apply(complaint, "assign", "s-1", NOW, POLICY, department=department)
        assert list(refused.value.errors) == ["department"]
        assert "环境部" in refused.value.errors["department"][0]     # the known ones named
    assert complaint == before                                       # nothing changed
    # the estate's own routing names it: handed over
    outsourced = Policies(estates={"e-1": {"routing": {"cleaning": "保洁外包组"}}}).for_estate("e-1")
    assigned, [event] = domain.apply(complaint, "assign", "s-1", NOW, outsourced,
                                     department="保洁外包组")
    assert assigned["department"] == event["data"]["department"] == "保洁外包组"
    # a department still routed for another category stays assignable
    assigned, _ = domain.apply(complaint, "assign", "s-1", NOW, outsourced, department="财务部")
    assert assigned["department"] == "财务部"


def test_the_departments_are_every_one_the_routing_names():
    outsourced = Policies(estates={"e-1": {"routing": {"cleaning": "保洁外包组",
                                                       "greening": "保洁外包组"}}})
    assert POLICY.departments() == ["客服中心", "工程部", "环境部", "秩序部", "财务部"]
    assert outsourced.for_estate("e-1").departments() == [
        "保洁外包组", "客服中心", "工程部", "秩序部", "财务部"]       # 环境部: nothing routed to it


def test_acknowledging_meets_the_first_reply_and_resolving_the_answer():
    complaint = in_state("resolved")
    kinds = {d["kind"]: d for d in complaint["deadlines"]}
    assert kinds["first_response"]["met_at"] == NOW
    assert kinds["reply"]["met_at"] == NOW
    assert domain.open_deadlines(complaint) == []
    assert complaint["next_due_at"] is None and complaint["alert_due_at"] is None


def test_a_promised_reply_time_is_a_firm_reply_and_becomes_the_next_deadline():
    promise = NOW + timedelta(days=10)
    assigned, [event] = domain.apply(in_state("acknowledged"), "assign", "s-1", NOW, POLICY,
                                     department="工程部", reply_promised_at=promise)
    open_kinds = {d["kind"]: d["due_at"] for d in domain.open_deadlines(assigned)}
    assert open_kinds == {"promised_reply": promise}
    assert event["data"]["reply_promised_at"] == promise.isoformat()
    # a new promise replaces the old one
    later = promise + timedelta(days=5)
    again, _ = domain.apply(assigned, "assign", "s-1", NOW, POLICY, reply_promised_at=later)
    assert {d["kind"]: d["due_at"] for d in domain.open_deadlines(again)} == {
        "promised_reply": later}
    resolved, _ = domain.apply(again, "resolve", "s-1", NOW, POLICY, resolution="修好了")
    assert domain.open_deadlines(resolved) == []


def test_a_promise_in_the_past_is_refused():
    with pytest.raises(InvalidInput, match="reply_promised_at"):
        domain.apply(in_state("acknowledged"), "assign", "s-1", NOW, POLICY,
                     reply_promised_at=NOW - timedelta(hours=1))


def test_reopened_complaint_gets_fresh_deadlines():
    later = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    reopened, [event] = domain.apply(in_state("closed"), "reopen", "revisit", later, POLICY,
                                     reason="业主不满意", source="revisit")
    assert reopened["first_response_due"] == datetime(2026, 12, 8, 2, 0, tzinfo=UTC)
    assert reopened["round"] == 1
    assert {d["kind"] for d in domain.open_deadlines(reopened)} == {"first_response", "reply"}
    assert event["data"]["source"] == "revisit"
    assert event["data"]["reopen_no"] == 1


# review (复核) ---------------------------------------------------------------------------

def test_review_has_its_own_deadline_and_outcome():
    under_review = in_state("under_review")
    [review] = under_review["reviews"]
    assert review["reason"] == "处理结果不合理" and review["outcome"] is None
    assert {d["kind"] for d in domain.open_deadlines(under_review)} == {"review"}
    upheld, [event] = domain.apply(under_review, "uphold_review", "mgr-1", NOW, POLICY,
                                   finding="处理符合规定")
    assert upheld["status"] == "closed"
    assert upheld["closing_no"] == 1, "an upheld review is not a new closing"
    assert upheld["reviews"][-1]["outcome"] == "upheld"
    assert event["data"]["outcome"] == "upheld"
    assert domain.open_deadlines(upheld) == []


def test_overturned_review_reopens_the_complaint_from_review():
    overturned, [decided, reopened] = domain.apply(
        in_state("under_review"), "overturn_review", "mgr-1", NOW, POLICY, finding="处理不到位")
    assert overturned["status"] == "reopened"
    assert overturned["reviews"][-1]["outcome"] == "overturned"
    assert decided["data"]["outcome"] == "overturned"
    assert reopened["data"]["source"] == "review"
    assert {d["kind"] for d in domain.open_deadlines(overturned)} == {"first_response", "reply"}


# repeat complaints --------------------------------------------------------------------------

def earlier_complaint(status="closed", closed_days_ago=3, **overrides):
    return {"_id": "cmp-0", "estate_id": "e-1", "household_id": "h-1", "reporter": None,
            "category": "cleaning", "status": status,
            "received_at": NOW - timedelta(days=40),
            "closed_at": NOW - timedelta(days=closed_days_ago) if status == "closed" else None,
            **overrides}


@pytest.mark.parametrize("earlier, repeat", [
    (earlier_complaint(status="assigned"), True),               # still open
    (earlier_complaint(status="resolved"), True),               # not yet closed
    (earlier_complaint(closed_days_ago=3), True),               # closed within the window
    (earlier_complaint(closed_days_ago=30), True),              # the window's edge
    (earlier_complaint(closed_days_ago=31), False),             # long closed
    (earlier_complaint(category="noise"), False),               # another matter
    (earlier_complaint(household_id="h-2"), False),             # another household
    (earlier_complaint(estate_id="e-2"), False),
    (earlier_complaint(received_at=NOW + timedelta(hours=1), status="assigned"), False),
])
def test_repeat_detection(earlier, repeat):
    complaint, events = registered(earlier=[earlier])
    assert complaint["repeat_of"] == ("cmp-0" if repeat else None)
    assert [e["type"] for e in events] == (
        ["complaint_registered", "complaint_repeated"] if repeat else ["complaint_registered"])


def test_repeat_detection_follows_the_estates_window():
    short = Policies(estates={"e-1": {"repeat_window_days": 7}}).for_estate("e-1")
    complaint, _ = registered(earlier=[earlier_complaint(closed_days_ago=8)], policy=short)
    assert complaint["repeat_of"] is None


def test_a_reporter_without_household_repeats_by_phone():
    reporter = {"name": "路人", "phone": "13812345678"}
    earlier = earlier_complaint(status="assigned", household_id=None,
                                reporter={"name": "路人", "phone": "+86 13812345678"})
    complaint, _ = registered(earlier=[earlier], household_id=None, reporter=reporter)
    assert complaint["repeat_of"] == "cmp-0"
    other, _ = registered(earlier=[earlier], household_id=None,
                          reporter={"name": "别人", "phone": "13900001111"})
    assert other["repeat_of"] is None


def test_the_most_recent_earlier_complaint_is_the_one_repeated():
    older = earlier_complaint(status="closed", closed_days_ago=2)
    newer = earlier_complaint(status="assigned", _id="cmp-00",
                              received_at=NOW - timedelta(days=1))
    complaint, _ = registered(earlier=[older, newer])
    assert complaint["repeat_of"] == "cmp-00"


def test_a_repeat_owes_special_measures_within_24_hours():
    complaint, [_, repeated] = registered(earlier=[earlier_complaint(status="assigned")])
    due = NOW + timedelta(hours=24)
    assert complaint["special_measures_due"] == due
    assert repeated["data"] == {"complaint_id": "cmp-1", "repeat_of": "cmp-0",
                                "household_id": "h-1", "category": "cleaning",
                                "special_measures_due": due.isoformat(),
                                "summary": "垃圾未清理"}   # what the supervisors read
    taken, [event] = domain.take_special_measures(complaint, "sup-1", "主管上门并派专人跟进",
                                                  NOW + timedelta(hours=5), POLICY)
    assert event["data"]["on_time"] is True
    assert "special_measures" not in {d["kind"] for d in domain.open_deadlines(taken)}
    assert taken["history"][-1]["action"] == "special_measures"


def test_the_summary_staff_read_is_masked_before_it_is_cut():
    number_at_the_cut = "楼道漏水" * 13 + "请回电13812345678"   # the number spans the cut
    summary = domain.summary({"content": number_at_the_cut})
    assert len(summary) == domain.SUMMARY_CHARS and "1381" not in summary[52:]
    assert "138123" not in summary


def test_special_measures_only_for_a_repeat():
    with pytest.raises(InvalidTransition, match="not a repeat complaint"):
        domain.take_special_measures(in_state("registered"), "sup-1", "x", NOW, POLICY)


# overdue alerts and escalation -----------------------------------------------------------

def alerts(complaint, at, policy=POLICY):
    complaint, events = domain.check_deadlines(complaint, at, policy)
    return complaint, [(e["type"], e["data"]["role"] if e["type"] == "complaint_escalated"
                        else e["data"]["deadline"]) for e in events]


def test_nothing_is_alerted_before_a_deadline_but_its_warning():
    complaint, _ = registered()
    warning = warn_at(complaint, "first_response")
    assert alerts(complaint, warning - timedelta(seconds=1))[1] == []
    complaint, sent = alerts(complaint, complaint["first_response_due"] - timedelta(seconds=1))
    assert sent == [("complaint_deadline_approaching", "first_response")]


def test_the_overdue_alert_and_the_escalation_say_what_the_complaint_is_about():
    complaint, _ = registered(content="楼道垃圾没人清理，请回电13812345678")
    _, events = domain.check_deadlines(complaint, complaint["first_response_due"], POLICY)
    _, [manual] = domain.escalate(complaint, "s-1", "超出权限", NOW, POLICY)
    for event in (*events, manual):
        assert event["data"]["summary"] == domain.summary(complaint), event["type"]
        assert "13812345678" not in event["data"]["summary"]
    assert [event["type"] for event in events] == ["complaint_overdue", "complaint_escalated"]


def test_overdue_then_the_ladder_each_rung_once():
    complaint, _ = registered()
    first_due = complaint["first_response_due"]
    complaint, sent = alerts(complaint, first_due)
    assert sent == [("complaint_overdue", "first_response"),
                    ("complaint_escalated", "supervisor")]
    assert alerts(complaint, first_due + timedelta(hours=1))[1] == []
    assert complaint["alert_due_at"] == first_due + timedelta(hours=24)
    complaint, sent = alerts(complaint, first_due + timedelta(hours=24))
    assert sent == [("complaint_escalated", "manager")]
    complaint, sent = alerts(complaint, complaint["reply_due"])
    assert sent == [("complaint_overdue", "reply")], "one ladder, not one per deadline"
    complaint, sent = alerts(complaint, first_due + timedelta(hours=72))
    assert sent == [("complaint_escalated", "company_manager")]
    assert alerts(complaint, first_due + timedelta(days=30))[1] == []
    assert complaint["alert_due_at"] is None
    assert [step["level"] for step in complaint["escalations"]] == [1, 2, 3]


def test_a_long_outage_catches_up_on_every_alert_in_order():
    complaint, _ = registered()
    _, sent = alerts(complaint, NOW + timedelta(days=10))
    assert sent == [("complaint_overdue", "first_response"), ("complaint_overdue", "reply"),
                    ("complaint_escalated", "supervisor"), ("complaint_escalated", "manager"),
                    ("complaint_escalated", "company_manager")]


def test_escalation_event_names_the_level_and_deadline():
    complaint, _ = registered()
    _, events = domain.check_deadlines(complaint, complaint["first_response_due"], POLICY)
    escalated = events[-1]["data"]
    assert (escalated["level"], escalated["role"], escalated["deadline"]) == (
        1, "supervisor", "first_response")
    assert escalated["manual"] is False and escalated["department"] == "环境部"


def test_major_complaints_start_with_the_estate_manager():
    complaint, _ = registered(severity="major")
    first_due = complaint["first_response_due"]
    complaint, sent = alerts(complaint, first_due)
    assert sent == [("complaint_overdue", "first_response"), ("complaint_escalated", "manager")]
    complaint, sent = alerts(complaint, first_due + timedelta(hours=47))
    assert sent == [("complaint_deadline_approaching", "reply")]    # half a day before
    assert alerts(complaint, first_due + timedelta(hours=48))[1] == [   # 72 h - 24 h
        ("complaint_overdue", "reply"), ("complaint_escalated", "company_manager")]


def test_an_estates_own_ladder():
    ladder = Policies(estates={"e-1": {"escalation_levels": [
        {"role": "supervisor", "after_hours": 2}, {"role": "general_manager", "after_hours": 6},
    ], "major_escalation_from": None}}).for_estate("e-1")
    complaint, _ = registered(policy=ladder)
    first_due = complaint["first_response_due"]
    complaint, sent = alerts(complaint, first_due + timedelta(hours=1), ladder)
    assert sent == [("complaint_overdue", "first_response")]
    complaint, sent = alerts(complaint, first_due + timedelta(hours=2), ladder)
    assert sent == [("complaint_escalated", "supervisor")]
    complaint, sent = alerts(complaint, first_due + timedelta(hours=6), ladder)
    assert sent == [("complaint_escalated", "general_manager")]


def test_a_met_deadline_stops_the_climb():
    complaint, _ = registered()
    first_due = complaint["first_response_due"]
    complaint, _ = alerts(complaint, first_due)
    complaint, _ = domain.apply(complaint, "acknowledge", "s-1", first_due + timedelta(hours=1),
                                POLICY, note="迟到的致歉")
    assert complaint["alert_due_at"] == warn_at(complaint, "reply")
    assert alerts(complaint, first_due + timedelta(hours=30))[1] == []


def test_reopened_complaint_has_no_stale_alerts_and_a_fresh_ladder():
    complaint, _ = registered()
    complaint, _ = alerts(complaint, NOW + timedelta(days=10))      # all rungs used
    for action in ("acknowledge", "assign", "resolve", "close"):
        complaint, _ = domain.apply(complaint, action, "s-1", NOW + timedelta(days=10), POLICY,
                                    **DETAILS[action])
    reopen_at = NOW + timedelta(days=11)                            # Friday 4 December
    complaint, _ = domain.apply(complaint, "reopen", "revisit", reopen_at, POLICY,
                                reason="仍未解决", source="revisit")
    assert alerts(complaint, reopen_at)[1] == []
    # Friday + 3 days: the answer is due with the first reply, on Monday, and warned first
    assert complaint["alert_due_at"] == warn_at(complaint, "reply") > reopen_at
    complaint, events = domain.check_deadlines(complaint, complaint["first_response_due"], POLICY)
    assert [(e["type"], e["data"].get("deadline"), e["data"].get("reopen_no"))
            for e in events] == [
        ("complaint_overdue", "first_response", 1), ("complaint_overdue", "reply", 1),
        ("complaint_escalated", "first_response", 1)]   # warnings the timer missed: not sent
    assert events[2]["data"]["level"] == 1


def test_manual_escalation_takes_one_rung_and_counts_for_the_round():
    complaint = in_state("assigned")
    complaint, [event] = domain.escalate(complaint, "s-1", "超出客服权限", NOW, POLICY)
    assert (event["data"]["level"], event["data"]["manual"]) == (1, True)
    complaint, [event] = domain.escalate(complaint, "s-1", "需公司协调", NOW, POLICY)
    assert event["data"]["role"] == "manager"
    complaint, _ = domain.escalate(complaint, "s-1", "需公司协调", NOW, POLICY)
    with pytest.raises(InvalidTransition, match="already escalated to company_manager"):
        domain.escalate(complaint, "s-1", "again", NOW, POLICY)
    with pytest.raises(InvalidTransition, match="it is closed"):
        domain.escalate(in_state("closed"), "s-1", "x", NOW, POLICY)


def test_beyond_ones_authority_goes_straight_to_the_company_manager():
    complaint = in_state("assigned")
    complaint, [event] = domain.escalate(complaint, "s-1", "涉及赔偿，超出项目权限", NOW, POLICY,
                                         role="company_manager")
    assert (event["data"]["level"], event["data"]["role"], event["data"]["manual"]) == (
        3, "company_manager", True)
    assert complaint["history"][-1]["note"].startswith("level 3 (company_manager)")
    # the rungs below are passed: the timer does not send them afterwards
    assert alerts(complaint, NOW + timedelta(days=10))[1] == [
        ("complaint_overdue", "reply")]
    with pytest.raises(InvalidTransition, match="already escalated to company_manager"):
        domain.escalate(complaint, "s-1", "again", NOW, POLICY, role="manager")


def test_escalating_to_a_rung_refuses_what_the_ladder_does_not_have():
    complaint = in_state("assigned")
    with pytest.raises(InvalidInput) as error:
        domain.escalate(complaint, "s-1", "x", NOW, POLICY, role="mayor")
    assert error.value.errors == {"role": [
        "not on the estate's escalation ladder (supervisor, manager, company_manager)"]}
    major, _ = registered(severity="major")
    with pytest.raises(InvalidTransition, match="major complaint, escalated above supervisor"):
        domain.escalate(major, "s-1", "x", NOW, POLICY, role="supervisor")
    climbed, [event] = domain.escalate(major, "s-1", "x", NOW, POLICY)
    assert event["data"]["role"] == "manager"
    assert domain.escalate(climbed, "s-1", "x", NOW, POLICY,
                           role="company_manager")[1][0]["data"]["level"] == 3


def test_a_finished_complaint_owing_special_measures_is_alerted_not_escalated():
    complaint, _ = registered(earlier=[earlier_complaint(status="assigned")])
    for action in ("acknowledge", "assign", "resolve", "close"):
        complaint, _ = domain.apply(complaint, action, "s-1", NOW + timedelta(hours=1), POLICY,
                                    **DETAILS[action])
    complaint, sent = alerts(complaint, NOW + timedelta(hours=24))
    assert sent == [("complaint_overdue", "special_measures")]
    assert complaint["alert_due_at"] is None, "nothing more to send: the timer leaves it"
    assert alerts(complaint, NOW + timedelta(days=10))[1] == []
    # worked again, it climbs its new round's ladder as any complaint does
    reopened, _ = domain.apply(complaint, "reopen", "s-1", NOW + timedelta(days=10), POLICY,
                               reason="仍未解决", source="owner")
    assert alerts(reopened, reopened["first_response_due"])[1] == [
        ("complaint_overdue", "first_response"), ("complaint_escalated", "supervisor")]


def test_overdue_repeat_without_special_measures_is_alerted():
    complaint, _ = registered(earlier=[earlier_complaint(status="assigned")])
    complaint, _ = domain.apply(complaint, "acknowledge", "s-1", NOW, POLICY)
    _, sent = alerts(complaint, NOW + timedelta(hours=24))
    assert sent == [("complaint_overdue", "special_measures"),
                    ("complaint_escalated", "supervisor")]


# outside units and malicious flags ------------------------------------------------------------

# warnings before a deadline ----------------------------------------------------------------

def test_each_deadline_is_warned_once_before_it_falls_due():
    complaint, _ = registered()    # Monday 10:00: first reply Tuesday 10:00, answer Thursday
    assert warn_at(complaint, "first_response") == local("2026-11-24T08:00")   # 2 working h
    assert warn_at(complaint, "reply") == local("2026-11-25T22:00")   # half a (calendar) day
    complaint, events = domain.check_deadlines(complaint, local("2026-11-24T08:30"), POLICY)
    [event] = events
    assert event["type"] == "complaint_deadline_approaching"
    assert event["data"] == {
        "complaint_id": "cmp-1", "deadline": "first_response",
        "due_at": "2026-11-24T02:00:00+00:00", "minutes_left": 90, "reopen_no": 0,
        "summary": "垃圾未清理", "department": "环境部", "assignee_id": None}
    assert complaint["history"][-1]["action"] == "deadline_approaching"
    assert alerts(complaint, local("2026-11-24T09:59"))[1] == []      # once
    assert complaint["alert_due_at"] == complaint["first_response_due"]
    complaint, sent = alerts(complaint, local("2026-11-25T22:00"))
    assert sent == [("complaint_overdue", "first_response"),
                    ("complaint_deadline_approaching", "reply"),
                    ("complaint_escalated", "supervisor"), ("complaint_escalated", "manager")]


def test_a_warning_counts_working_hours_over_the_weekend():
    # Thursday 01:00 + one working day: due Friday 01:00; 4 working hours before it is
    # Thursday 21:00. Saturday's complaint is due at the end of Monday: warned Monday 22:00.
    four_hours = Policies(group={"warn_before": {"first_response": "4h"}}).for_estate("e-1")
    thursday = local("2026-11-19T01:00")
    complaint, _ = registered(policy=four_hours, received_at=thursday, now=thursday)
    assert warn_at(complaint, "first_response") == local("2026-11-19T21:00")
    saturday = local("2026-11-21T10:00")
    complaint, _ = registered(received_at=saturday, now=saturday)
    assert complaint["first_response_due"] == local("2026-11-24T00:00")
    assert warn_at(complaint, "first_response") == local("2026-11-23T22:00")
    # Friday 22:00 + one working day: Monday 22:00; 0.5d is 12 working hours before it,
    # 1d (24) reaches back over the weekend to Friday 22:00: warned at the next pass
    friday = local("2026-11-20T22:00")
    for lead, warned in (("0.5d", "2026-11-23T10:00"), ("1d", "2026-11-20T22:00")):
        policy = Policies(group={"warn_before": {"first_response": lead}}).for_estate("e-1")
        complaint, _ = registered(policy=policy, received_at=friday, now=friday)
        assert warn_at(complaint, "first_response") == local(warned), lead


def test_a_working_day_answer_is_warned_in_working_hours():
    complaint, _ = registered(policy=WORKING_REPLY, received_at=local("2026-11-19T10:00"),
                              now=local("2026-11-19T10:00"))      # Thursday: due Tuesday 10:00
    assert complaint["reply_due"] == local("2026-11-24T10:00")
    assert warn_at(complaint, "reply") == local("2026-11-23T22:00")   # the weekend skipped


def test_a_warning_the_timer_reaches_after_the_deadline_is_not_sent():
    complaint, _ = registered()
    _, sent = alerts(complaint, complaint["first_response_due"] + timedelta(minutes=1))
    assert ("complaint_deadline_approaching", "first_response") not in sent
    assert ("complaint_overdue", "first_response") in sent


def test_a_met_deadline_is_not_warned():
    complaint, _ = registered()
    complaint, _ = domain.apply(complaint, "acknowledge", "s-1", NOW, POLICY, note="已致歉")
    assert complaint["alert_due_at"] == warn_at(complaint, "reply")
    _, sent = alerts(complaint, complaint["first_response_due"] - timedelta(minutes=30))
    assert sent == []


def test_a_deadline_set_anew_is_warned_anew():
    complaint = in_state("assigned")
    complaint, [warning] = domain.check_deadlines(complaint, local("2026-11-25T23:00"), POLICY)
    assert warning["data"]["deadline"] == "reply" and warning["data"]["reopen_no"] == 0
    for action in ("resolve", "close", "reopen"):
        complaint, _ = domain.apply(complaint, action, "s-1", local("2026-11-25T23:30"), POLICY,
                                    **DETAILS[action])
    due = complaint["first_response_due"]
    complaint, [warning] = domain.check_deadlines(complaint, due - timedelta(hours=1), POLICY)
    assert (warning["data"]["deadline"], warning["data"]["reopen_no"]) == ("first_response", 1)
    # a promised reply time is a deadline of its own, warned when the estate asks for it
    promising = Policies(group={"warn_before": {"promised_reply": "1h"}}).for_estate("e-1")
    complaint = in_state("acknowledged")
    complaint, _ = domain.apply(complaint, "assign", "s-1", NOW, promising, department="环境部",
                                reply_promised_at=NOW + timedelta(hours=5))
    assert warn_at(complaint, "promised_reply") == NOW + timedelta(hours=4)
    complaint, _ = domain.apply(complaint, "assign", "s-1", NOW, promising, department="环境部",
                                reply_promised_at=NOW + timedelta(hours=8))
    assert warn_at(complaint, "promised_reply") == NOW + timedelta(hours=7)


def test_an_estate_without_warnings_and_one_with_its_own():
    quiet = Policies(estates={"e-1": {"warn_before": {}}}).for_estate("e-1")
    complaint, _ = registered(policy=quiet)
    assert complaint["alert_due_at"] == complaint["first_response_due"]
    assert alerts(complaint, complaint["first_response_due"] - timedelta(minutes=1), quiet)[1] == []
    own = Policies(estates={"e-1": {"warn_before": {"reply": "1d", "first_response": "0h"}}}
                   ).for_estate("e-1")
    complaint, _ = registered(policy=own)
    assert warn_at(complaint, "first_response") is None
    assert warn_at(complaint, "reply") == complaint["reply_due"] - timedelta(days=1)


def test_a_deadline_stored_before_warnings_gets_its_warning_at_the_next_change():
    complaint, _ = registered()
    for deadline in complaint["deadlines"]:
        del deadline["warn_at"], deadline["warned_at"]
    assert alerts(complaint, local("2026-11-24T08:30"))[1] == []   # not known yet: not sent
    complaint, _ = domain.escalate(complaint, "s-1", "业主催办", NOW, POLICY)
    assert warn_at(complaint, "first_response") == local("2026-11-24T08:00")


# company-level complaints ---------------------------------------------------------------------

def test_a_complaint_made_to_the_company_is_handled_as_any_other():
    company = Policies(estates={"hq-east": {"routing": {"cleaning": "品质管理部"}}}
                       ).for_estate("hq-east")
    complaint, [event] = registered(policy=company, estate_id="hq-east", level="company",
                                    household_id=None,
                                    reporter={"name": "王先生", "phone": "13800138000"})
    assert complaint["level"] == "company" and event["data"]["level"] == "company"
    assert complaint["routed_department"] == "品质管理部"
    assert [deadline["kind"] for deadline in complaint["deadlines"]] == ["first_response", "reply"]
    for action in ("acknowledge", "assign", "resolve", "close"):
        complaint, events = domain.apply(complaint, action, "cm-1", NOW, company,
                                         **DETAILS[action])
    assert events[0]["type"] == "complaint_closed"   # what schedules its revisit
    assert registered()[0]["level"] == "estate"


def test_an_outside_unit_matter_keeps_its_own_status():
    assigned, [event] = domain.apply(in_state("acknowledged"), "assign", "s-1", NOW, POLICY,
                                     department="客服中心", external_unit="自来水公司")
    assert assigned["external"]["status"] == "referred"
    assert event["data"]["external_unit"] == "自来水公司"
    updated, [event] = domain.update_external_status(
        assigned, "s-1", {"status": "in_progress", "note": "已派抢修", "reference": "W-88"},
        NOW, POLICY)
    assert updated["external"] == dict(assigned["external"], status="in_progress",
                                       reference="W-88", updated_at=NOW)
    assert event["data"]["status"] == "in_progress"
    # it stays with the complaint through resolution and closing
    resolved, _ = domain.apply(updated, "resolve", "s-1", NOW, POLICY, resolution="协调已修复")
    assert resolved["external"]["status"] == "in_progress"
    with pytest.raises(InvalidTransition, match="not referred to an outside unit"):
        domain.update_external_status(in_state("assigned"), "s-1",
                                      {"status": "resolved", "note": "x"}, NOW, POLICY)


def test_malicious_flag_is_recorded_and_can_be_lifted():
    flag = {"flagged_by": "sup-1", "role": "supervisor", "reason": "多次无理投诉", "malicious": True}
    flagged, [event] = domain.flag_malicious(in_state("assigned"), flag, NOW, POLICY)
    assert flagged["malicious"] is True
    assert flagged["malicious_flag"]["reason"] == "多次无理投诉"
    assert event["data"]["malicious"] is True
    with pytest.raises(InvalidTransition, match="already flagged"):
        domain.flag_malicious(flagged, flag, NOW, POLICY)
    lifted, _ = domain.flag_malicious(flagged, dict(flag, malicious=False, reason="误判"), NOW,
                                      POLICY)
    assert lifted["malicious"] is False
    assert [h["action"] for h in lifted["history"][-2:]] == ["flag_malicious",
                                                             "unflag_malicious"]


# views and households -------------------------------------------------------------------------

def test_public_view_masks_contacts_and_hides_bookkeeping():
    view = domain.public_view({
        "reporter": {"name": "李", "phone": "13812345678"}, "alert_due_at": NOW,
        "contacts": [{"name": "王", "phone": "13987654321", "email": "wang.fang@example.com"}],
    })
    assert view["reporter"]["phone"] == "138****5678"
    assert view["contacts"][0] == {"name": "王", "phone": "139****4321",
                                   "email": "w***@example.com"}
    assert "alert_due_at" not in view


def test_preferred_contact_is_the_primary_one():
    contacts = [{"name": "甲", "primary": False}, {"name": "乙", "primary": True}]
    assert domain.preferred_contact(contacts)["name"] == "乙"
    assert domain.preferred_contact(contacts[:1])["name"] == "甲"
    assert domain.preferred_contact([]) is None


def test_household_conflicts_name_the_row():
    rows = [{"household_id": "h-1"}, {"household_id": "h-2"}, {"household_id": "h-1"}]
    assert domain.household_conflicts("e-1", rows, {"h-2": "e-9"}) == {
        "rows.1.household_id": ["belongs to estate e-9"],
        "rows.2.household_id": ["listed twice (also row 0)"],
    }

