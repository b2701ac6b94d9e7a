from datetime import UTC, datetime, timedelta

import pytest

from services.revisit import domain
from shared.errors import InvalidTransition

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
POLICY = domain.RevisitPolicy()


def closed(severity="normal", closing_no=1):
    return {"complaint_id": "cmp-1", "household_id": "h-1", "category": "cleaning",
            "severity": severity, "closed_at": NOW, "owner_signoff": "none",
            "closing_no": closing_no}


def outcome(**overrides):
    return {"visitor_id": "s-1", "method": "phone", "reached": True,
            "satisfaction": "satisfied", "resolved": True, "comments": "",
            "signed_by": None, "promised_reply_at": None, **overrides}


def test_complaint_revisit_is_due_within_three_days_of_closing():
    revisit, [event] = domain.schedule_complaint_revisit(closed(), "e-1", POLICY, NOW)
    assert revisit["due_at"] == NOW + timedelta(days=3)
    assert (revisit["assigned_role"], revisit["method"]) == ("staff", "phone")
    assert event["type"] == "revisit_scheduled"


def test_major_complaint_is_revisited_by_a_supervisor_on_site():
    revisit, _ = domain.schedule_complaint_revisit(closed("major"), "e-1", POLICY, NOW)
    assert (revisit["assigned_role"], revisit["method"]) == ("supervisor", "onsite")


def test_each_closing_has_its_own_revisit():
    first, _ = domain.schedule_complaint_revisit(closed(closing_no=1), "e-1", POLICY, NOW)
    second, _ = domain.schedule_complaint_revisit(closed(closing_no=2), "e-1", POLICY, NOW)
    assert first["_id"] != second["_id"]


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


def test_not_reached_is_tried_again_until_the_attempts_run_out():
    revisit, _ = domain.schedule_complaint_revisit(closed(), "e-1", POLICY, NOW)
    missed = outcome(reached=False, satisfaction=None, resolved=None)
    for _ in range(POLICY.max_attempts - 1):
        revisit, events = domain.record(revisit, missed, POLICY, NOW)
        assert (revisit["status"], events) == ("scheduled", [])
    revisit, events = domain.record(revisit, missed, POLICY, NOW)
    assert revisit["status"] == "done" and revisit["outcome"]["unreachable"]
    assert [e["type"] for e in events] == ["revisit_completed"]


def test_a_finished_revisit_cannot_be_recorded_again():
    revisit, _ = domain.schedule_complaint_revisit(closed(), "e-1", POLICY, NOW)
    done, _ = domain.record(revisit, outcome(), POLICY, NOW)
    with pytest.raises(InvalidTransition, match="it is done"):
        domain.record(done, outcome(), POLICY, NOW)
