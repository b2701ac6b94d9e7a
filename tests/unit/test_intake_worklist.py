"""What a staff worklist asks of intake: the actions a complaint's state allows now
(``allowed_actions``, in ``get_complaint``), and the open complaints by their next
deadline (``list_complaints`` with ``open`` and ``order`` "due"), paged by one cursor."""
from datetime import timedelta

import pytest

from services.intake import domain
from services.intake.repository import IntakeRepository
from shared.clock import FrozenClock
from shared.errors import InvalidInput, InvalidTransition
from shared.paging import encode_cursor
from tests.helpers import embedded
from tests.unit.test_intake_domain import DETAILS, NOW, POLICY, in_state, registered
from tests.unit.test_intake_service import (
    ALL_STEPS,
    COMPLAINT,
    HOUSEHOLD,
    make_service,
    work_through,
)

# allowed_actions: the state machine's answer, asked before acting ------------------------

@pytest.mark.parametrize("state", domain.STATES)
def test_the_allowed_transitions_are_exactly_those_apply_accepts(state):
    complaint = in_state(state)
    offered = set(domain.allowed_actions(complaint, POLICY)) & set(domain.TRANSITIONS)
    accepted = set()
    for action in domain.TRANSITIONS:
        try:
            domain.apply(complaint, action, "s-1", NOW, POLICY, **DETAILS[action])
        except InvalidTransition:
            continue
        accepted.add(action)
    assert offered == accepted


@pytest.mark.parametrize("state", domain.STATES)
def test_escalation_is_offered_while_the_complaint_is_handled_and_a_rung_is_left(state):
    complaint = in_state(state)
    offered = "escalate" in domain.allowed_actions(complaint, POLICY)
    assert offered == (state in domain.ESCALATABLE)
    while offered:        # climb by hand to the top: then it is offered no more
        complaint, _ = domain.escalate(complaint, "s-1", "业主要求上报", NOW, POLICY)
        offered = "escalate" in domain.allowed_actions(complaint, POLICY)
    with pytest.raises(InvalidTransition):
        domain.escalate(complaint, "s-1", "再上报", NOW, POLICY)


def test_special_measures_for_a_repeat_and_the_outside_unit_once_referred():
    first, _ = registered()
    repeat, _ = registered(earlier=[dict(first, _id="cmp-0", received_at=NOW - timedelta(days=1))])
    assert "special_measures" in domain.allowed_actions(repeat, POLICY)
    assert "special_measures" not in domain.allowed_actions(first, POLICY)
    acknowledged = in_state("acknowledged")
    assert "external_status" not in domain.allowed_actions(acknowledged, POLICY)
    referred, _ = domain.apply(acknowledged, "assign", "s-1", NOW, POLICY,
                               department="客服中心", external_unit="自来水公司")
    assert "external_status" in domain.allowed_actions(referred, POLICY)
    assert domain.allowed_actions(referred, POLICY)[-1] == "flag_malicious"


def test_get_complaint_carries_what_its_state_allows(service):
    cid = service.register_complaint(COMPLAINT)["id"]
    assert service.get_complaint(cid)["allowed_actions"] == [
        "acknowledge", "escalate", "flag_malicious"]
    work_through(service, cid, *ALL_STEPS)
    assert service.get_complaint(cid)["allowed_actions"] == [
        "reopen", "request_review", "flag_malicious"]


# the worklist: open complaints by their next deadline -------------------------------------

@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def service(clock):
    service = make_service(embedded(IntakeRepository), clock)
    service.import_households("e-1", [HOUSEHOLD], estate={"name": "测试小区"})
    service.import_households("e-2", [dict(HOUSEHOLD, household_id="h-2")], estate={"name": "测试小区"})
    return service


@pytest.fixture
def worklist(service, clock):
    """Complaints received an hour apart (no repeats: each of its own category): two
    resolved (nothing due), one closed, one of another estate, and the rest at their
    first-reply or reply deadline."""
    made = {}
    for name, category in zip("abcdefg", ("noise", "parking", "cleaning", "greening",
                                           "fees", "order", "other")):
        made[name] = service.register_complaint(dict(COMPLAINT, category=category))["id"]
        clock.advance(timedelta(hours=1))
    work_through(service, made["a"], "acknowledge_complaint")      # due: its reply, 3 days
    work_through(service, made["b"], *ALL_STEPS[:3])                # resolved: nothing due
    work_through(service, made["c"], *ALL_STEPS)                    # closed: not in it
    work_through(service, made["d"], *ALL_STEPS[:3])                # resolved: nothing due
    other = service.register_complaint(dict(COMPLAINT, estate_id="e-2", household_id="h-2"))
    made["other"] = other["id"]
    return made


def read_all(service, filters, limit):
    """Every page of the list, and the size of each page."""
    items, sizes, cursor = [], [], None
    while True:
        page = service.list_complaints({**filters, "limit": limit,
                                        **({"cursor": cursor} if cursor else {})}, paged=True)
        items += [item["id"] for item in page["items"]]
        sizes.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            return items, sizes


# e, f, g first replies (a day) in the order received; a's reply (three days); then the
# resolved ones, newest first
EXPECTED = ["e", "f", "g", "a", "d", "b"]


@pytest.mark.parametrize("limit", [1, 2, 3, 4, 5, 6, 7, 100])
def test_open_complaints_by_next_deadline_then_those_with_nothing_due(service, worklist,
                                                                      limit):
    items, sizes = read_all(service, {"estate_id": "e-1", "open": True, "order": "due"}, limit)
    assert items == [worklist[name] for name in EXPECTED]
    assert all(size == limit for size in sizes[:-1]) and 0 < sizes[-1] <= limit


def test_the_worklist_filters_as_any_list_does(service, worklist):
    mine = service.list_complaints({"estate_ids": ["e-1"], "open": True, "order": "due",
                                    "status": "resolved"})
    assert [item["id"] for item in mine] == [worklist["d"], worklist["b"]]
    closed = service.list_complaints({"open": False})
    assert [item["id"] for item in closed] == [worklist["c"]]
    both = service.list_complaints({"open": True, "order": "due", "limit": 1000})
    assert worklist["other"] in {item["id"] for item in both}
    assert [item["id"] for item in service.list_complaints({"estate_id": "e-1"})][:2] == [
        worklist["g"], worklist["f"]]                               # newest first, as before


def test_a_cursor_of_another_list_is_refused(service, worklist):
    revisits = encode_cursor([("due_at", 1)], [NOW, "rv-1"])
    with pytest.raises(InvalidInput) as refused:
        service.list_complaints({"estate_id": "e-1", "open": True, "order": "due",
                                 "cursor": revisits}, paged=True)
    assert "cursor" in refused.value.errors
