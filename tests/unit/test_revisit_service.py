"""revisit's entrypoints with the embedded store (no broker)."""
from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import worker_factory

from services.revisit.repository import RevisitRepository
from services.revisit.service import RevisitService
from shared.clock import FrozenClock
from shared.envelope import new_event, parse_event
from shared.errors import InvalidInput, InvalidTransition, NotFound
from tests.helpers import embedded

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def service():
    repository = embedded(RevisitRepository)
    return worker_factory(RevisitService, store=repository, clock=FrozenClock(NOW),
                          config={"REVISIT_POLICY": {"complaint_revisit_days": 3}})


def closed_event(severity="normal"):
    return parse_event(new_event("complaint_closed", "intake", "e-1", {
        "complaint_id": "cmp-1", "household_id": "h-1", "category": "cleaning",
        "severity": severity, "closed_at": NOW, "owner_signoff": "none", "closing_no": 1,
    }, NOW))


def test_the_same_closing_delivered_twice_schedules_one_revisit(service):
    event = closed_event()
    service.schedule_complaint_revisit(event)
    service.schedule_complaint_revisit(event)
    [revisit] = service.list_revisits({"source_id": "cmp-1"})
    assert revisit["due_at"] == (NOW + timedelta(days=3)).isoformat()
    assert revisit["status"] == "scheduled"


def test_on_site_record_needs_the_owners_signature(service):
    service.schedule_complaint_revisit(closed_event("major"))
    [revisit] = service.list_revisits({})
    visit = {"visitor_id": "m-1", "method": "onsite", "reached": True,
             "satisfaction": "satisfied", "resolved": True}
    with pytest.raises(InvalidInput) as error:
        service.record_revisit(revisit["id"], visit)
    assert "signed_by" in error.value.errors
    assert service.get_revisit(revisit["id"])["attempts"] == []
    done = service.record_revisit(revisit["id"], dict(visit, signed_by="王芳"))
    assert done["status"] == "done"
    with pytest.raises(InvalidTransition):
        service.record_revisit(revisit["id"], dict(visit, signed_by="王芳"))


@pytest.mark.parametrize("change, field", [
    ({"satisfaction": "ecstatic"}, "satisfaction"),
    ({"reached": "yes"}, "reached"),
    ({"method": "pigeon"}, "method"),
    ({"satisfaction": None}, "satisfaction"),
    ({"visitor_id": {"$gt": ""}}, "visitor_id.$gt"),
])
def test_bad_outcome_names_the_field_and_writes_nothing(service, change, field):
    service.schedule_complaint_revisit(closed_event())
    [revisit] = service.list_revisits({})
    visit = {"visitor_id": "s-1", "method": "phone", "reached": True,
             "satisfaction": "satisfied", "resolved": True, **change}
    with pytest.raises(InvalidInput) as error:
        service.record_revisit(revisit["id"], visit)
    assert field in error.value.errors
    assert service.get_revisit(revisit["id"])["attempts"] == []


def test_appointment_needs_consent(service):
    service.schedule_complaint_revisit(closed_event("major"))
    [revisit] = service.list_revisits({})
    at = (NOW + timedelta(days=1)).isoformat()
    with pytest.raises(InvalidInput) as error:
        service.book_appointment(revisit["id"], {"at": at, "owner_consent": False})
    assert "owner_consent" in error.value.errors
    booked = service.book_appointment(revisit["id"], {"at": at, "owner_consent": True})
    assert booked["status"] == "booked"


def test_unknown_revisit_is_not_found(service):
    with pytest.raises(NotFound):
        service.get_revisit("rv-nothing")
