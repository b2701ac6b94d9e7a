"""intake.get_contacts: the contacts of a batch of refs, for notify's dispatcher."""
import pytest

from services.intake.repository import IntakeRepository
from shared.actor import Actor, Caller
from shared.clock import FrozenClock
from shared.errors import Forbidden, InvalidInput
from shared.schemas.intake import MAX_CONTACT_REFS
from tests.helpers import embedded
from tests.unit.test_intake_service import (
    COMPLAINT,
    FROM_NOTIFY,
    HOUSEHOLD,
    NOW,
    ORDER,
    make_service,
)


@pytest.fixture
def service():
    service = make_service(embedded(IntakeRepository), FrozenClock(NOW))
    service.import_households("e-1", [HOUSEHOLD], estate={"name": "测试小区"})
    return service


AGENT = Actor("u-cs", ("cs_staff",), ("e-1",))


def test_a_batch_answers_every_ref_as_get_contact_does_and_unknown_ones_as_missing(service):
    service.import_households("e-1", [dict(HOUSEHOLD, household_id="h-2", contacts=[
        {"name": "李雷", "phone": "13900000002"}])], estate={"name": "测试小区"})
    complaint = service.register_complaint(COMPLAINT)
    order = service.register_work_order(ORDER)
    service.caller = FROM_NOTIFY
    refs = ["h-1", "h-2", complaint["id"], order["id"], "nobody"]

    contacts = service.get_contacts(refs)

    assert list(contacts) == refs
    assert contacts["nobody"] is None
    for ref in refs[:-1]:
        assert contacts[ref] == service.get_contact(ref)
    assert contacts["h-2"]["phone"] == "13900000002"
    assert contacts[complaint["id"]]["owner_url_token"]   # the owner's link, as get_contact


def test_a_complaint_reported_without_household_is_answered_with_its_reporter(service):
    complaint = service.register_complaint(dict(COMPLAINT, household_id=None,
                                                reporter={"name": "路人", "phone": "13700000007"}))
    service.caller = FROM_NOTIFY
    contact = service.get_contacts([complaint["id"]])[complaint["id"]]
    assert contact["household_id"] is None and contact["phone"] == "13700000007"


def test_full_contacts_in_batches_go_only_to_the_listed_services(service):
    for caller in (Caller(None, "revisit"), Caller(None, None), Caller(AGENT, "notify"),
                   Caller(None, "notify", unreadable_actor=True)):
        service.caller = caller
        with pytest.raises(Forbidden, match="full contacts"):
            service.get_contacts(["h-1"])


@pytest.mark.parametrize("refs", [
    [], ["h-1"] * (MAX_CONTACT_REFS + 1), ["h-1", {"$ne": None}], ["bad id"], "h-1", None,
])
def test_the_refs_are_a_bounded_list_of_ids(service, refs):
    service.caller = FROM_NOTIFY
    with pytest.raises(InvalidInput) as error:
        service.get_contacts(refs)
    assert "refs" in str(error.value.errors)
