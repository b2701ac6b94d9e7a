from datetime import UTC, datetime
from itertools import product

import pytest

from services.intake import domain
from shared.errors import InvalidTransition
from shared.workdays import WorkingCalendar

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)   # Monday 10:00 in Shanghai
CALENDAR = WorkingCalendar()
POLICY = domain.ComplaintPolicy()
# what each action's RPC supplies besides actor and note
CHANGES = {"assign": {"department": "环境部"}, "close": {"owner_signoff": "none"},
           "reopen": {"reopen_source": "owner"}}
STATES = ("registered", "acknowledged", "assigned", "resolved", "closed", "reopened")


def registered(**overrides):
    data = {"estate_id": "e-1", "household_id": "h-1", "reporter": None, "channel": "hotline",
            "category": "cleaning", "severity": "normal", "content": "垃圾未清理",
            "received_at": None, **overrides}
    return domain.register("cmp-1", data, POLICY, CALENDAR, NOW)


def in_state(state):
    complaint, _ = registered()
    return dict(complaint, status=state, reopen_source="owner")


def test_registration_sets_deadlines_from_working_days_and_announces_it():
    complaint, [event] = registered()
    assert complaint["status"] == "registered"
    assert complaint["first_response_due"] == datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
    assert complaint["reply_due"] == datetime(2026, 11, 26, 2, 0, tzinfo=UTC)
    assert event["type"] == "complaint_registered"
    assert event["data"]["reply_due"] == "2026-11-26T02:00:00+00:00"
    assert complaint["history"][0]["action"] == "register"


@pytest.mark.parametrize("state, action", list(product(STATES, domain.TRANSITIONS)))
def test_every_transition_is_allowed_or_refused_by_the_table(state, action):
    allowed_from, target = domain.TRANSITIONS[action]
    complaint = in_state(state)
    if state in allowed_from:
        changed, [event] = domain.apply(complaint, action, "s-1", NOW, "note",
                                        dict(CHANGES.get(action, {})), POLICY, CALENDAR)
        assert changed["status"] == target
        assert event["type"] == domain.ANNOUNCED[action][0]
        assert changed["history"][-1] == {"at": NOW, "by": "s-1", "action": action,
                                          "from": state, "to": target, "note": "note"}
    else:
        with pytest.raises(InvalidTransition, match=f"it is {state}"):
            domain.apply(complaint, action, "s-1", NOW, "", {}, POLICY, CALENDAR)


def test_closing_counts_closings_and_carries_what_revisit_needs():
    complaint = dict(in_state("resolved"), closing_no=1)
    closed, [event] = domain.apply(
        complaint, "close", "s-1", NOW, "", {"owner_signoff": "satisfied", "at": None},
        POLICY, CALENDAR)
    assert closed["closing_no"] == 2
    assert event["data"] == {
        "complaint_id": "cmp-1", "household_id": "h-1", "category": "cleaning",
        "severity": "normal", "closed_at": NOW.isoformat(), "owner_signoff": "satisfied",
        "closing_no": 2,
    }


def test_reopened_complaint_gets_fresh_deadlines():
    later = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    reopened, [event] = domain.apply(in_state("closed"), "reopen", "revisit", later,
                                     "业主不满意", {"reopen_source": "revisit"}, POLICY, CALENDAR)
    assert reopened["first_response_due"] == datetime(2026, 12, 8, 2, 0, tzinfo=UTC)
    assert event["data"]["source"] == "revisit"
    assert event["data"]["reopen_no"] == 1


def test_public_view_masks_contacts():
    view = domain.public_view({
        "reporter": {"name": "李", "phone": "13812345678"},
        "contacts": [{"name": "王", "phone": "13987654321", "email": "wang.fang@example.com"}],
    })
    assert view["reporter"]["phone"] == "138****5678"
    assert view["contacts"][0] == {"name": "王", "phone": "139****4321",
                                   "email": "w***@example.com"}
