from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.revisit import domain
from services.revisit.policies import InHomeRepairShare, RevisitPolicy
from shared.errors import InvalidInput, InvalidTransition

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)          # Monday 10:00 in Shanghai
POLICY = RevisitPolicy()


def closed(severity="normal", closing_no=1):
    return {"complaint_id": "cmp-1", "household_id": "h-1", "category": "cleaning",
            "severity": severity, "closed_at": NOW, "owner_signoff": "none",
            "closing_no": closing_no}


def completed(kind="repair", **changes):
    return {"work_order_id": "wo-1", "household_id": "h-1", "kind": kind, "important": False,
            "completed_at": NOW, "contract_start": None, "contract_end": None, **changes}


def outcome(**overrides):
    return {"visitor_id": "s-1", "method": "phone", "reached": True,
            "satisfaction": "satisfied", "resolved": True, "comments": "",
            "signed_by": None, "promised_reply_at": None, **overrides}


def complaint_revisit(severity="normal", policy=POLICY):
    revisit, _ = domain.schedule_complaint_revisit(closed(severity), "e-1", policy, NOW)
    return revisit


# -- complaints --------------------------------------------------------------------------

def test_complaint_revisit_is_due_within_three_days_of_closing():
    revisit, [event] = domain.schedule_complaint_revisit(closed(), "e-1", POLICY, NOW)
    assert revisit["due_at"] == NOW + timedelta(days=3)
    assert (revisit["assigned_role"], revisit["method"]) == ("staff", "phone")
    assert event["type"] == "revisit_scheduled" and revisit["announced"]
    assert revisit["source_at"] == NOW


def test_an_estate_may_allow_five_days_and_send_its_manager():
    policy = RevisitPolicy(complaint_revisit_days=5, major_complaint_role="manager")
    revisit = complaint_revisit("major", policy)
    assert revisit["due_at"] == NOW + timedelta(days=5)
    assert (revisit["assigned_role"], revisit["method"]) == ("manager", "onsite")


def test_major_complaint_is_revisited_by_a_supervisor_on_site():
    revisit, _ = domain.schedule_complaint_revisit(closed("major"), "e-1", POLICY, NOW)
    assert (revisit["assigned_role"], revisit["method"]) == ("supervisor", "onsite")


def test_each_closing_has_its_own_revisit():
    first, _ = domain.schedule_complaint_revisit(closed(closing_no=1), "e-1", POLICY, NOW)
    second, _ = domain.schedule_complaint_revisit(closed(closing_no=2), "e-1", POLICY, NOW)
    assert first["_id"] != second["_id"]


def test_reopening_supersedes_the_open_revisit_of_earlier_closings_only():
    first = complaint_revisit()
    second, _ = domain.schedule_complaint_revisit(closed(closing_no=2), "e-1", POLICY, NOW)
    reopened = {"complaint_id": "cmp-1", "reopen_no": 1, "source": "owner"}
    assert domain.superseded_by_reopening(first, reopened)
    # a reopening delivered late must not cancel the visit of a later closing
    assert not domain.superseded_by_reopening(second, reopened)
    done, _ = domain.record(first, outcome(), POLICY, NOW)
    assert not domain.superseded_by_reopening(done, reopened)
    cancelled = domain.cancel(first, "complaint reopened (owner)", NOW)
    assert cancelled["status"] == "cancelled"
    with pytest.raises(InvalidTransition):
        domain.cancel(done, "late", NOW)


# -- outcomes -------------------------------------------------------------------------------

@pytest.mark.parametrize("change", [{"satisfaction": "unsatisfied"},
                                    {"satisfaction": "very_unsatisfied"},
                                    {"resolved": False}])
def test_unsatisfied_or_unresolved_owner_reopens_the_complaint(change):
    revisit, _ = domain.schedule_complaint_revisit(closed(), "e-1", POLICY, NOW)
    done, events = domain.record(revisit, outcome(**change), POLICY, NOW)
    assert done["status"] == "done"
    assert [e["type"] for e in events] == ["revisit_completed", "revisit_unsatisfied"]
    assert events[1]["data"]["source_id"] == "cmp-1"


def test_satisfied_owner_only_completes_the_revisit():
    revisit, _ = domain.schedule_complaint_revisit(closed(), "e-1", POLICY, NOW)
    _, events = domain.record(revisit, outcome(), POLICY, NOW)
    assert [e["type"] for e in events] == ["revisit_completed"]


def test_not_reached_is_tried_again_at_other_times_until_the_attempts_run_out():
    revisit = complaint_revisit()
    missed = outcome(reached=False, satisfaction=None, resolved=None)
    for attempt in range(POLICY.max_attempts - 1):
        revisit, events = domain.record(revisit, missed, POLICY, NOW + timedelta(hours=3 * attempt))
        assert (revisit["status"], events) == ("scheduled", [])
        assert revisit["next_try_after"] == NOW + timedelta(hours=3 * attempt + 2)
    revisit, events = domain.record(revisit, missed, POLICY, NOW + timedelta(hours=6))
    assert revisit["status"] == "done" and revisit["outcome"]["unreachable"]
    assert [e["type"] for e in events] == ["revisit_completed"]
    assert events[0]["data"]["reached"] is False


def test_calling_again_at_once_on_the_same_channel_is_not_another_try():
    revisit = complaint_revisit()
    missed = outcome(reached=False, satisfaction=None, resolved=None)
    for minutes in (0, 5, 10, 15):           # four quick redials: still the first try
        revisit, _ = domain.record(revisit, missed, POLICY, NOW + timedelta(minutes=minutes))
    assert (revisit["status"], revisit["tries"], len(revisit["attempts"])) == ("scheduled", 1, 4)
    # another channel at once is a new try; so is the phone again hours later
    revisit, _ = domain.record(revisit, dict(missed, method="sms"), POLICY,
                               NOW + timedelta(minutes=20))
    assert revisit["tries"] == 2
    revisit, _ = domain.record(revisit, missed, POLICY, NOW + timedelta(hours=3))
    assert (revisit["tries"], revisit["status"]) == (3, "done")


def test_a_finished_revisit_cannot_be_recorded_again():
    revisit, _ = domain.schedule_complaint_revisit(closed(), "e-1", POLICY, NOW)
    done, _ = domain.record(revisit, outcome(), POLICY, NOW)
    with pytest.raises(InvalidTransition, match="it is done"):
        domain.record(done, outcome(), POLICY, NOW)


def test_an_overdue_revisit_can_still_be_recorded():
    changes, _ = domain.mark_overdue(complaint_revisit(), NOW)
    done, _ = domain.record(dict(complaint_revisit(), **changes), outcome(), POLICY, NOW)
    assert done["status"] == "done"


def test_a_question_left_open_gets_a_promised_reply_time():
    promised = NOW + timedelta(days=2)
    revisit, _ = domain.record(complaint_revisit(), outcome(promised_reply_at=promised),
                               POLICY, NOW)
    assert revisit["promised_reply_at"] == promised
    with pytest.raises(InvalidInput, match="promised_reply_at"):
        domain.record(complaint_revisit(), outcome(promised_reply_at=NOW - timedelta(hours=1)),
                      POLICY, NOW)
    answered = domain.record_reply(revisit, {"staff_id": "s-2", "reply": "下周二停水检修",
                                             "replied_at": None}, NOW + timedelta(days=1))
    assert answered["reply_given_at"] == NOW + timedelta(days=1)
    with pytest.raises(InvalidTransition, match="already answered"):
        domain.record_reply(answered, {"staff_id": "s-2", "reply": "again", "replied_at": None},
                            NOW)
    with pytest.raises(InvalidTransition, match="not awaiting a reply"):
        domain.record_reply(complaint_revisit(), {"staff_id": "s-2", "reply": "x",
                                                  "replied_at": None}, NOW)


# -- work orders ----------------------------------------------------------------------------

def visits(order, policy=POLICY, now=NOW):
    return [revisit for revisit, _ in
            domain.schedule_work_order_revisits(order, "e-1", "sampled", policy, now)]


def test_a_repair_is_revisited_by_the_end_of_the_next_day_local_time():
    # completed Monday 23:30 in Shanghai (15:30 UTC): due before Wednesday 00:00 there
    late_evening = datetime(2026, 11, 23, 15, 30, tzinfo=UTC)
    [revisit] = visits(completed(completed_at=late_evening))
    assert revisit["due_at"] == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)
    assert (revisit["kind"], revisit["stage"], revisit["method"]) == (
        "repair", "after_repair", "phone")
    assert revisit["_id"] == "rv-wo-1-after_repair"


def test_special_service_is_revisited_at_mid_contract_and_at_the_end():
    start, end = NOW, NOW + timedelta(days=180)
    mid, last = visits(completed("special_service", contract_start=start, contract_end=end))
    assert (mid["stage"], mid["not_before"]) == ("mid_contract", NOW + timedelta(days=90))
    assert mid["due_at"] == NOW + timedelta(days=97)
    assert (last["stage"], last["not_before"], last["due_at"]) == (
        "contract_end", end, end + timedelta(days=7))
    assert not mid["announced"] and not last["announced"]   # the timer announces them later


def test_special_service_completed_after_mid_contract_gets_only_the_end_visit():
    order = completed("special_service", contract_start=NOW - timedelta(days=100),
                      contract_end=NOW + timedelta(days=20))
    [last] = visits(order)
    assert last["stage"] == "contract_end"


@pytest.mark.parametrize("kind, days", [
    ("community_activity", 30), ("other_service", 7), ("assistance", 7),
    ("special_service", 7),          # without a contract period: within a week
])
def test_other_kinds_are_due_within_their_window(kind, days):
    [revisit] = visits(completed(kind))
    assert revisit["due_at"] == NOW + timedelta(days=days)


def test_important_repair_is_observed_again_until_confirmed():
    [first] = visits(completed(important=True))
    assert (first["stage"], first["observation_no"], first["method"]) == (
        "observation", 1, "onsite")
    signed = outcome(method="onsite", signed_by="王芳")
    first, _ = domain.book(first, {"at": at_local(10), "owner_consent": True}, POLICY, NOW)
    # still leaking: another observation a week later
    first, events = domain.record(first, dict(signed, resolved=False), POLICY, at_local(10))
    second, second_events = domain.next_observation(first, POLICY, NOW)
    assert (second["observation_no"], second["not_before"]) == (2, NOW + timedelta(days=7))
    assert second["_id"] == "rv-wo-1-observation-2" and second_events == []
    assert "revisit_unsatisfied" in [e["type"] for e in events]
    # confirmed: no more observations
    second, _ = domain.book(dict(second, not_before=NOW),
                            {"at": at_local(16), "owner_consent": True}, POLICY, NOW)
    second, _ = domain.record(second, signed, POLICY, at_local(16))
    assert domain.next_observation(second, POLICY, NOW) is None


def test_observations_stop_at_the_policy_limit():
    policy = RevisitPolicy(important_max_observations=2)
    [first] = visits(completed(important=True), policy)
    first, _ = domain.record(first, outcome(reached=False, satisfaction=None, resolved=None),
                             RevisitPolicy(max_attempts=1), NOW)
    second, _ = domain.next_observation(first, policy, NOW)
    second, _ = domain.record(second, outcome(resolved=False), policy, NOW)
    assert domain.next_observation(second, policy, NOW) is None


def test_a_plain_repair_has_no_follow_up_observation():
    [revisit] = visits(completed())
    done, _ = domain.record(revisit, outcome(resolved=False), POLICY, NOW)
    assert domain.next_observation(done, POLICY, NOW) is None


def test_a_top_up_decided_at_month_end_is_due_counting_from_then():
    closing = NOW + timedelta(days=10)
    [revisit] = [r for r, _ in domain.schedule_work_order_revisits(
        completed(), "e-1", "top_up", POLICY, closing, decided_at=closing)]
    assert revisit["due_at"] == datetime(2026, 12, 4, 16, 0, tzinfo=UTC)
    assert revisit["reason"] == "top_up"


# -- appointments ---------------------------------------------------------------------------

def at_local(hour, minute=0):
    """Tomorrow (24 November) at this time in Shanghai, in UTC."""
    return datetime(2026, 11, 24, hour, minute, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


def test_an_appointment_is_booked_outside_quiet_hours():
    booked, [event] = domain.book(complaint_revisit("major"),
                                  {"at": at_local(10), "owner_consent": True}, POLICY, NOW)
    assert (booked["status"], booked["appointment_at"]) == ("booked", at_local(10))
    assert event["type"] == "revisit_booked"


@pytest.mark.parametrize("hour, minute", [(12, 30), (21, 0), (23, 0), (7, 59)])
def test_no_appointment_in_the_estates_quiet_hours(hour, minute):
    with pytest.raises(InvalidInput, match="quiet hours") as error:
        domain.book(complaint_revisit("major"),
                    {"at": at_local(hour, minute), "owner_consent": True}, POLICY, NOW)
    assert "at" in error.value.errors


def test_the_owners_own_quiet_hours_replace_the_estates():
    appointment = {"at": at_local(12, 30), "owner_consent": True,
                   "quiet_hours": ["09:00-11:00"]}
    booked, _ = domain.book(complaint_revisit("major"), appointment, POLICY, NOW)
    assert booked["owner_quiet_hours"] == ["09:00-11:00"]
    with pytest.raises(InvalidInput, match="09:00-11:00"):
        domain.book(complaint_revisit("major"), dict(appointment, at=at_local(10)), POLICY, NOW)


def test_no_appointment_in_the_past_or_without_a_household():
    with pytest.raises(InvalidInput, match="future"):
        domain.book(complaint_revisit("major"), {"at": NOW - timedelta(hours=1),
                                                 "owner_consent": True}, POLICY, NOW)
    [activity] = visits(completed("community_activity", household_id=None))
    with pytest.raises(InvalidInput, match="no household"):
        domain.book(activity, {"at": at_local(10), "owner_consent": True}, POLICY, NOW)


def test_no_one_visits_on_site_without_a_booked_appointment():
    revisit = complaint_revisit("major")
    with pytest.raises(InvalidInput, match="book_appointment") as error:
        domain.record(revisit, outcome(method="onsite", signed_by="王芳"), POLICY, NOW)
    assert "method" in error.value.errors
    # the same owner may still be phoned without one
    done, _ = domain.record(revisit, outcome(method="phone"), POLICY, NOW)
    assert done["status"] == "done"


@pytest.mark.parametrize("hour, minute", [(8, 0), (11, 59), (14, 0), (20, 59)])
def test_visits_are_booked_between_the_estates_quiet_hours(hour, minute):
    booked, _ = domain.book(complaint_revisit("major"),
                            {"at": at_local(hour, minute), "owner_consent": True}, POLICY, NOW)
    assert booked["status"] == "booked"


def test_a_booked_visit_may_be_moved_but_a_done_one_not():
    booked, _ = domain.book(complaint_revisit("major"),
                            {"at": at_local(10), "owner_consent": True}, POLICY, NOW)
    moved, _ = domain.book(booked, {"at": at_local(16), "owner_consent": True}, POLICY, NOW)
    assert moved["appointment_at"] == at_local(16)
    done, _ = domain.record(moved, outcome(method="onsite", signed_by="王芳"), POLICY,
                            at_local(16))
    with pytest.raises(InvalidTransition, match="it is done"):
        domain.book(done, {"at": at_local(10), "owner_consent": True}, POLICY, NOW)


@pytest.mark.parametrize("arrived, recorded", [
    (at_local(15, 29), False),   # more than half an hour early: not made yet
    (at_local(15, 30), True),    # the visitor may arrive a little early
    (at_local(18), True),        # or late
])
def test_an_on_site_visit_is_recorded_from_shortly_before_its_booked_time(arrived, recorded):
    booked, _ = domain.book(complaint_revisit("major"),
                            {"at": at_local(16), "owner_consent": True}, POLICY, NOW)
    made = outcome(method="onsite", signed_by="王芳")
    if recorded:
        assert domain.record(booked, made, POLICY, arrived)[0]["status"] == "done"
    else:
        with pytest.raises(InvalidInput, match="booked for") as error:
            domain.record(booked, made, POLICY, arrived)
        assert list(error.value.errors) == ["method"]


# -- the timer --------------------------------------------------------------------------------

def test_overdue_and_late_replies_each_announce_themselves():
    revisit = complaint_revisit()
    changes, [event] = domain.mark_overdue(revisit, NOW)
    assert changes == {"status": "overdue", "overdue_at": NOW}
    assert (event["type"], event["data"]["deadline"]) == ("revisit_overdue", "revisit")
    promised = dict(revisit, promised_reply_at=NOW - timedelta(hours=1))
    changes, [event] = domain.mark_reply_overdue(promised, NOW)
    assert changes == {"reply_overdue_at": NOW}
    assert event["data"]["deadline"] == "promised_reply"
    changes, [event] = domain.announce(revisit, NOW)
    assert (changes, event["type"]) == ({"announced": True}, "revisit_scheduled")


# -- routine visits ---------------------------------------------------------------------------

def households(count, start=0, building_size=24):
    return [{"id": f"h-{n:04d}", "building": str(n // building_size + 1), "unit": "1",
             "room": str(n % building_size + 101)} for n in range(start, start + count)]


def plan(houses, planned=(), year=2027, now=NOW, policy=POLICY):
    return domain.plan_routine("e-1", year, houses, list(planned), policy, now)


def test_a_year_plan_reaches_every_occupied_household_evenly_over_the_months():
    scheduled, cancelled, summary = plan(households(250))
    assert (summary["households"], summary["planned"], cancelled) == (250, 250, [])
    counts = list(summary["by_month"].values())
    assert len(counts) == 12 and max(counts) - min(counts) <= 1
    revisits = [revisit for revisit, _ in scheduled]
    assert len({r["household_id"] for r in revisits}) == 250
    # neighbours go in the same month: building 1 is visited in January
    january = [r for r in revisits if r["month"] == 1]
    assert {r["building"] for r in january} == {"1"}
    first = revisits[0]
    assert (first["not_before"], first["due_at"]) == (
        datetime(2026, 12, 31, 16, 0, tzinfo=UTC), datetime(2027, 1, 31, 16, 0, tzinfo=UTC))
    assert all(events == [] for _, events in scheduled)     # announced when their month comes


def test_households_added_later_are_fitted_into_the_emptiest_months():
    scheduled, _, _ = plan(households(120))
    planned = [revisit for revisit, _ in scheduled]
    more, _, summary = plan(households(120) + households(7, start=500), planned)
    assert summary["added"] == 7 and summary["planned"] == 127
    counts = list(summary["by_month"].values())
    assert max(counts) - min(counts) <= 1
    again, _, unchanged = plan(households(120) + households(7, start=500),
                               planned + [r for r, _ in more])
    assert again == [] and unchanged["by_month"] == summary["by_month"]


def test_planning_this_year_uses_the_months_still_ahead():
    scheduled, _, summary = plan(households(10), year=2026)      # it is November
    assert {revisit["month"] for revisit, _ in scheduled} == {11, 12}
    assert summary["by_month"]["2026-11"] == 5 and summary["by_month"]["2026-01"] == 0
    november = [events for revisit, events in scheduled if revisit["month"] == 11]
    assert all(len(events) == 1 for events in november)          # this month's: told now


def test_a_household_that_moved_out_loses_its_open_visit_and_a_new_one_is_planned_again():
    scheduled, _, _ = plan(households(24))
    planned = [revisit for revisit, _ in scheduled]
    _, cancelled, summary = plan(households(23), planned)
    assert cancelled == ["rv-routine-2027-h-0023"] and summary["planned"] == 23
    gone = [dict(r, status="cancelled") if r["_id"] in cancelled else r for r in planned]
    back, _, summary = plan(households(24), gone)
    assert [r["_id"] for r, _ in back] == ["rv-routine-2027-h-0023-2"]
    assert summary["planned"] == 24


def test_a_past_year_cannot_be_planned():
    with pytest.raises(InvalidInput, match="year"):
        plan(households(3), year=2025)


def test_the_thirty_percent_policy_keeps_the_default_timing():
    assert InHomeRepairShare().complaint_visit(closed())[2] == NOW + timedelta(days=3)
