"""Stable event ids: an event announcing a change that happens once derives its id from the
change, so the same event built again (a timer's pass after a crash, a retry) keeps it."""
from datetime import UTC, datetime, timedelta

from services.intake import domain as intake
from services.intake.policy import Policies
from services.revisit import domain as revisit
from services.revisit.policies import PolicyBook
from services.survey import invitations
from shared.config import load_config
from shared.envelope import new_event

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
CLOSED = {"complaint_id": "cmp-1", "household_id": "h-1", "category": "cleaning",
          "severity": "normal", "closed_at": NOW, "owner_signoff": "none", "closing_no": 1}


def test_a_key_gives_the_same_id_and_none_a_fresh_one():
    def built(**kwargs):
        return new_event("complaint_closed", "intake", "e-1", CLOSED, NOW, **kwargs)["id"]
    assert built(key="cmp-1/7") == built(key="cmp-1/7")
    assert built(key="cmp-1/7") != built(key="cmp-1/8")
    assert built() != built()
    assert len(built(key="cmp-1/7")) == 32      # hex, like the random ones


def test_a_revisit_is_announced_under_one_id_however_often_it_is_built():
    policy = PolicyBook(load_config()).for_estate("e-1")
    later = dict(CLOSED, closed_at=NOW + timedelta(days=2))
    planned, events = revisit.schedule_complaint_revisit(later, "e-1", policy, NOW)
    assert events == []                                  # its window opens later
    first = revisit.announce(planned, NOW + timedelta(days=2))[1][0]
    again = revisit.announce(planned, NOW + timedelta(days=2, minutes=1))[1][0]
    assert first["id"] == again["id"]
    other, _ = revisit.schedule_complaint_revisit(dict(later, closing_no=2), "e-1", policy, NOW)
    assert revisit.announce(other, NOW)[1][0]["id"] != first["id"]
    # a revisit announced at once is announced under the id the timer would use
    _, [at_once] = revisit.schedule_complaint_revisit(CLOSED, "e-1", policy, NOW)
    planned_now, _ = revisit.schedule_complaint_revisit(CLOSED, "e-1", policy,
                                                        NOW - timedelta(days=1))
    assert revisit.announce(planned_now, NOW)[1][0]["id"] == at_once["id"]


def test_overdue_alerts_built_again_keep_their_ids():
    policy = Policies.from_config(load_config()).for_estate("e-1")
    complaint, _ = intake.register("cmp-1", {
        "estate_id": "e-1", "household_id": "h-1", "reporter": None, "channel": "hotline",
        "category": "cleaning", "severity": "normal", "content": "楼道垃圾",
        "staff_id": None}, [], policy, NOW)
    late = NOW + timedelta(days=10)
    _, first = intake.check_deadlines(complaint, late, policy)
    _, again = intake.check_deadlines(complaint, late + timedelta(minutes=5), policy)
    assert first and [event["id"] for event in first] == [event["id"] for event in again]
    assert len({event["id"] for event in first}) == len(first)


def test_each_closing_of_a_complaint_has_its_own_id():
    policy = Policies.from_config(load_config()).for_estate("e-1")
    complaint, _ = intake.register("cmp-1", {
        "estate_id": "e-1", "household_id": "h-1", "reporter": None, "channel": "hotline",
        "category": "cleaning", "severity": "normal", "content": "楼道垃圾",
        "staff_id": None}, [], policy, NOW)
    for action, details in (("acknowledge", {}), ("assign", {}),
                            ("resolve", {"resolution": "已打扫"})):
        complaint, _ = intake.apply(complaint, action, "s-1", NOW, policy, **details)
    closed, [first] = intake.apply(complaint, "close", "s-1", NOW, policy,
                                   owner_signoff="none")
    _, [rebuilt] = intake.apply(complaint, "close", "s-1", NOW, policy, owner_signoff="none")
    assert rebuilt["id"] == first["id"]
    reopened, _ = intake.apply(closed, "reopen", "s-1", NOW, policy, reason="没修好",
                               source="owner")
    for action, details in (("acknowledge", {}), ("assign", {}),
                            ("resolve", {"resolution": "再修"})):
        reopened, _ = intake.apply(reopened, action, "s-1", NOW, policy, **details)
    _, [second] = intake.apply(reopened, "close", "s-1", NOW, policy, owner_signoff="none")
    assert second["id"] != first["id"]


def test_reminders_keep_their_ids_and_each_has_its_own():
    round_ = {"_id": "rnd-1", "title": "2026 下半年", "reminders": {"interval_days": 3, "max": 2},
              "closes_at": NOW + timedelta(days=14)}
    invitation = {"_id": "inv-1", "estate_id": "e-1", "round_id": "rnd-1", "household_id": "h-1",
                  "token": "t" * 22, "expires_at": NOW + timedelta(days=14),
                  "reminders_sent": 0, "issued_at": NOW}
    _, [first] = invitations.remind(round_, invitation, NOW)
    _, [again] = invitations.remind(round_, invitation, NOW + timedelta(minutes=1))
    _, [second] = invitations.remind(round_, dict(invitation, reminders_sent=1), NOW)
    assert first["id"] == again["id"] != second["id"]
    _, [issued] = invitations.issue(round_, invitation, NOW)
    _, [reissued] = invitations.issue(round_, invitation, NOW + timedelta(minutes=1))
    assert issued["id"] == reissued["id"]
