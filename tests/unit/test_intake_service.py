"""intake's entrypoints with the embedded store (no broker)."""
from datetime import UTC, datetime

import pytest
from nameko.testing.services import worker_factory

from services.intake.repository import IntakeRepository
from services.intake.service import IntakeService
from shared.clock import FrozenClock
from shared.config import load_config
from shared.errors import InvalidInput, InvalidTransition, NotFound
from tests.helpers import embedded

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
HOUSEHOLD = {"household_id": "h-1", "building": "3", "unit": "1", "room": "502",
             "occupied": True,
             "contacts": [{"name": "王芳", "phone": "13812345678", "email": "wf@example.com"}]}
COMPLAINT = {"estate_id": "e-1", "household_id": "h-1", "channel": "wechat",
             "category": "noise", "severity": "normal", "content": "楼上装修到晚上十点"}


@pytest.fixture
def service():
    repository = embedded(IntakeRepository)
    service = worker_factory(IntakeService, store=repository, clock=FrozenClock(NOW),
                             config=load_config())
    service.import_households("e-1", [HOUSEHOLD])
    return service


def stored_complaints(service):
    return list(service.store.db.complaints.find())


def test_import_then_reimport_updates(service):
    assert service.import_households("e-1", [HOUSEHOLD, dict(HOUSEHOLD, household_id="h-2")]) \
        == {"imported": 1, "updated": 1}
    [household] = service.list_households("e-1", {"building": "3", "occupied": True})[:1]
    assert household["contacts"][0]["phone"] == "138****5678"


def test_get_contact_is_the_only_place_with_the_full_number(service):
    complaint = service.register_complaint(COMPLAINT)
    assert service.get_contact(complaint["id"])["phone"] == "13812345678"
    assert service.get_contact("h-1")["email"] == "wf@example.com"
    with pytest.raises(NotFound):
        service.get_contact("nobody")


def test_complaint_lifecycle_records_who_did_what(service):
    complaint = service.register_complaint(COMPLAINT)
    cid = complaint["id"]
    assert complaint["status"] == "registered"
    assert complaint["first_response_due"] == "2026-11-24T02:00:00+00:00"
    service.acknowledge_complaint(cid, {"staff_id": "s-1", "note": "已致歉"})
    service.assign_complaint(cid, {"department": "秩序部", "assignee_id": "s-7"})
    service.resolve_complaint(cid, {"staff_id": "s-7", "resolution": "已劝导"})
    closed = service.close_complaint(cid, {"closed_by": "s-1", "owner_signoff": "satisfied"})
    assert closed["status"] == "closed" and closed["closing_no"] == 1
    assert [h["action"] for h in service.get_complaint(cid)["history"]] == [
        "register", "acknowledge", "assign", "resolve", "close"]
    with pytest.raises(InvalidTransition, match="it is closed"):
        service.resolve_complaint(cid, {"staff_id": "s-7", "resolution": "again"})
    reopened = service.reopen_complaint(cid, {"reason": "又开始了", "source": "owner"})
    assert reopened["status"] == "reopened"


def test_reporter_without_household_is_masked_in_results(service):
    complaint = service.register_complaint(dict(
        COMPLAINT, household_id=None, reporter={"name": "路人", "phone": "021-64301234"}))
    assert complaint["reporter"]["phone"] == "021****1234"


@pytest.mark.parametrize("change, field", [
    ({"estate_id": None}, "estate_id"),
    ({"channel": "fax"}, "channel"),
    ({"category": "weather"}, "category"),
    ({"severity": "catastrophic"}, "severity"),
    ({"content": ""}, "content"),
    ({"content": "长" * 2001}, "content"),
    ({"received_at": "2026-11-23T10:00:00"}, "received_at"),
    ({"estate_id": "e-unknown"}, "estate_id"),
    ({"household_id": "h-elsewhere"}, "household_id"),
    ({"household_id": None}, "reporter"),
    ({"household_id": None, "reporter": {"name": "x", "phone": "12345"}}, "reporter"),
    ({"$where": "sleep(1000)"}, "$where"),
    ({"household_id": {"$ne": None}}, "household_id.$ne"),
    ({"colour": "red"}, "colour"),
])
def test_bad_complaint_input_names_the_field_and_writes_nothing(service, change, field):
    with pytest.raises(InvalidInput) as error:
        service.register_complaint({**COMPLAINT, **change})
    assert field in error.value.errors
    assert stored_complaints(service) == []


def test_bad_transition_input_changes_nothing(service):
    cid = service.register_complaint(COMPLAINT)["id"]
    before = service.get_complaint(cid)
    with pytest.raises(InvalidInput) as error:
        service.acknowledge_complaint(cid, {"staff_id": {"$gt": ""}})
    assert "staff_id.$gt" in error.value.errors
    with pytest.raises(InvalidInput, match="id"):
        service.acknowledge_complaint({"$ne": 1}, {"staff_id": "s-1"})
    assert service.get_complaint(cid) == before


def test_bad_household_rows_import_nothing(service):
    rows = [dict(HOUSEHOLD, household_id="h-9"),
            dict(HOUSEHOLD, household_id="h-10", occupied="yes")]
    with pytest.raises(InvalidInput) as error:
        service.import_households("e-1", rows)
    assert error.value.errors == {"rows": {"1": {"occupied": ["Not a valid boolean."]}}}
    assert service.store.find_household("h-9") is None
