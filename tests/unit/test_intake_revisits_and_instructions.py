"""A complaint keeps its revisits (from ``revisit_completed``) and its managers'
instructions (「待经理做出明确指示」): the rules without a store, then intake's entrypoints
with the embedded store (no broker)."""
from datetime import timedelta

import pytest

from services.intake import domain, instructions, revisits
from services.intake.repository import IntakeRepository
from shared.actor import Actor, Caller
from shared.clock import FrozenClock
from shared.envelope import new_event, parse_event
from shared.errors import InvalidInput, InvalidTransition
from tests.helpers import embedded
from tests.unit.test_intake_domain import NOW, POLICY, in_state, registered
from tests.unit.test_intake_service import (
    COMPLAINT,
    HOUSEHOLD,
    events_of,
    make_service,
    work_through,
)


def completed(revisit_id="rv-cmp-1-1", at=NOW, **changes):
    """A ``revisit_completed`` payload as intake's handler gets it."""
    return {"revisit_id": revisit_id, "kind": "complaint", "source_id": "cmp-1",
            "reached": True, "satisfaction": "satisfied", "resolved": True, "completed_at": at,
            "method": "phone", "visitor_id": "s-3", "comments": "已修好", **changes}


def escalated(role, complaint=None, policy=POLICY):
    complaint = complaint if complaint is not None else registered()[0]
    return domain.escalate(complaint, "s-1", "超出权限", NOW, policy, role=role)[0]


ORDER = {"staff_id": "m-1", "role": "manager", "instruction": "今天内派工程部处理并回复业主"}


# keeping revisits -----------------------------------------------------------------------

def test_a_revisit_is_kept_with_its_outcome_and_nothing_else_changes():
    complaint = in_state("closed")
    kept = revisits.keep_revisit(complaint, completed())
    assert kept["revisits"] == [{
        "revisit_id": "rv-cmp-1-1", "completed_at": NOW, "method": "phone", "reached": True,
        "satisfaction": "satisfied", "resolved": True, "comments": "已修好", "visitor_id": "s-3"}]
    assert {key: value for key, value in kept.items() if key != "revisits"} == complaint
    assert "revisits" not in complaint            # the complaint read is not changed


def test_a_revisit_already_kept_is_not_kept_again_and_revisits_stay_in_order():
    first = revisits.keep_revisit(in_state("closed"), completed("rv-cmp-1-2", NOW))
    assert revisits.keep_revisit(first, completed("rv-cmp-1-2", NOW, comments="又一次")) is None
    both = revisits.keep_revisit(first, completed("rv-cmp-1-1", NOW - timedelta(days=9)))
    assert [line["revisit_id"] for line in both["revisits"]] == ["rv-cmp-1-1", "rv-cmp-1-2"]


def test_an_online_answer_is_kept_without_a_visitor():
    kept = revisits.keep_revisit(in_state("closed"), completed(method="online", visitor_id=None))
    assert kept["revisits"][0]["visitor_id"] is None


# when an instruction is awaited ---------------------------------------------------------

def test_not_escalated_or_only_to_the_supervisor_awaits_no_instruction():
    assert not domain.awaits_instruction(registered()[0])
    to_supervisor = escalated(None)
    assert domain.escalated_role(to_supervisor) == "supervisor"
    assert not domain.awaits_instruction(to_supervisor)
    assert "instruct" not in domain.allowed_actions(to_supervisor, POLICY)


@pytest.mark.parametrize("role", ["manager", "company_manager"])
def test_escalated_to_a_manager_awaits_that_managers_instruction(role):
    complaint = escalated(role)
    assert domain.escalated_role(complaint) == role
    assert domain.awaits_instruction(complaint)
    assert "instruct" in domain.allowed_actions(complaint, POLICY)


def test_a_major_complaint_escalated_by_the_timer_awaits_the_estate_manager():
    complaint, _ = registered(severity="major")
    late = complaint["first_response_due"] + timedelta(minutes=1)
    checked, _ = domain.check_deadlines(complaint, late, POLICY)
    assert domain.escalated_role(checked) == "manager"      # major complaints start there
    assert domain.awaits_instruction(checked)


def test_a_resolved_complaint_or_a_new_round_awaits_no_instruction():
    complaint = escalated("manager", in_state("assigned"))
    resolved, _ = domain.apply(complaint, "resolve", "s-7", NOW, POLICY, resolution="已处理")
    assert not domain.awaits_instruction(resolved)
    closed, _ = domain.apply(resolved, "close", "s-1", NOW, POLICY, owner_signoff="none")
    reopened, _ = domain.apply(closed, "reopen", "s-1", NOW, POLICY, reason="又坏了",
                               source="owner")
    # the escalation was the last round's: this round has not been taken up yet
    assert not domain.awaits_instruction(reopened)


# recording it -----------------------------------------------------------------------------

def test_the_instruction_is_written_with_who_gave_it_and_announced_to_the_handler():
    complaint = escalated("manager", in_state("assigned"))
    instructed, [event] = instructions.record(complaint, ORDER, NOW, POLICY)
    assert instructed["instructions"] == [{"at": NOW, "by": "m-1", "role": "manager",
                                           "instruction": ORDER["instruction"], "round": 0}]
    line = instructed["history"][-1]
    assert (line["by"], line["action"], line["note"]) == ("m-1", "instruct", ORDER["instruction"])
    assert instructed["status"] == complaint["status"] == "assigned"
    assert event["type"] == "complaint_instruction_recorded"
    data = parse_event(event)["data"]
    assert (data["instructed_by"], data["role"], data["escalated_to"]) == ("m-1", "manager",
                                                                           "manager")
    assert (data["department"], data["assignee_id"]) == (complaint["department"],
                                                         complaint["assignee_id"])


def test_a_second_instruction_is_added_after_the_first():
    complaint = escalated("manager")
    once, _ = instructions.record(complaint, ORDER, NOW, POLICY)
    twice, _ = instructions.record(once, dict(ORDER, instruction="改为明天上门"), NOW, POLICY)
    assert [line["instruction"] for line in twice["instructions"]] == [
        ORDER["instruction"], "改为明天上门"]


def test_no_instruction_on_a_complaint_not_escalated_to_a_manager():
    with pytest.raises(InvalidTransition, match="not escalated to a manager"):
        instructions.record(escalated(None), ORDER, NOW, POLICY)


def test_the_company_managers_matter_is_not_the_estate_managers_to_instruct():
    complaint = escalated("company_manager")
    with pytest.raises(InvalidInput) as refused:
        instructions.record(complaint, ORDER, NOW, POLICY)
    assert "role" in refused.value.errors
    instructed, _ = instructions.record(complaint, dict(ORDER, role="company_manager"), NOW,
                                        POLICY)
    assert instructed["instructions"][0]["role"] == "company_manager"


def test_the_company_manager_may_instruct_on_the_estate_managers_matter():
    instructed, _ = instructions.record(escalated("manager"), dict(ORDER, role="company_manager"),
                                        NOW, POLICY)
    assert len(instructed["instructions"]) == 1


def test_a_stale_page_is_refused_with_the_state_it_shows():
    with pytest.raises(InvalidTransition):
        instructions.record(escalated("manager"), ORDER, NOW, POLICY, expected_status="assigned")


# intake's entrypoints ------------------------------------------------------------------------

@pytest.fixture
def service():
    service = make_service(embedded(IntakeRepository), FrozenClock(NOW))
    service.import_households("e-1", [HOUSEHOLD], estate={"name": "测试小区"})
    return service


def revisit_event(complaint_id, revisit_id="rv-1", kind="complaint", **changes):
    data = completed(revisit_id, NOW, source_id=complaint_id, kind=kind, **changes)
    return parse_event(new_event("revisit_completed", "revisit", "e-1", data, NOW,
                                 key=revisit_id))


def test_a_redelivered_revisit_completed_is_kept_once_and_changes_no_status_or_count(service):
    cid = service.register_complaint(COMPLAINT)["id"]
    work_through(service, cid, "acknowledge_complaint", "assign_complaint",
                 "resolve_complaint", "close_complaint")
    before = service.store.find_complaint(cid)
    stats = service.complaint_stats("e-1", "2026-11")
    event = revisit_event(cid, comments="满意，电话13812345678")
    service.keep_revisit(event)
    service.keep_revisit(event)                                        # redelivered
    service.keep_revisit(revisit_event(cid, comments="满意"))          # announced again
    complaint = service.get_complaint(cid)
    assert [line["revisit_id"] for line in complaint["revisits"]] == ["rv-1"]
    assert complaint["revisits"][0]["comments"] == "满意，电话138****5678"   # masked as sent
    assert complaint["status"] == "closed"
    assert len(complaint["history"]) == len(before["history"])
    assert service.complaint_stats("e-1", "2026-11") == stats
    assert events_of(service.store.find_complaint(cid)) == events_of(before)


def test_a_work_orders_revisit_is_not_kept_on_any_complaint(service):
    cid = service.register_complaint(COMPLAINT)["id"]
    service.keep_revisit(revisit_event(cid, kind="repair"))
    assert "revisits" not in service.get_complaint(cid)


def test_the_instruction_names_the_logged_in_manager_whatever_the_body_says(service):
    cid = service.register_complaint(COMPLAINT)["id"]
    service.escalate_complaint(cid, {"staff_id": "s-1", "reason": "超出权限", "role": "manager"})
    assert "instruct" in service.get_complaint(cid)["allowed_actions"]
    service.caller = Caller(Actor("u-em", ("estate_manager",), ("e-1",)), "gateway")
    body = {"staff_id": "someone-else", "role": "company_manager", "instruction": "马上处理"}
    first = service.record_instruction(cid, body, request_id="k-1")
    again = service.record_instruction(cid, body, request_id="k-1")   # the same request
    assert again == first
    assert [(line["by"], line["role"]) for line in first["instructions"]] == [
        ("u-em", "manager")]
    stored = service.store.find_complaint(cid)
    [event] = events_of(stored, "complaint_instruction_recorded")
    assert event["data"]["instructed_by"] == "u-em"


def test_a_supervisor_cannot_instruct_and_nothing_is_written(service):
    cid = service.register_complaint(COMPLAINT)["id"]
    service.escalate_complaint(cid, {"staff_id": "s-1", "reason": "超出权限", "role": "manager"})
    service.caller = Caller(Actor("u-sup", ("supervisor",), ("e-1",)), "gateway")
    with pytest.raises(InvalidInput) as refused:
        service.record_instruction(cid, {"instruction": "马上处理"})
    assert "role" in refused.value.errors
    assert "instructions" not in service.get_complaint(cid)


@pytest.mark.parametrize("instruction", ["", "   ", "长" * 1001])
def test_an_empty_or_overlong_instruction_names_the_field(service, instruction):
    cid = service.register_complaint(COMPLAINT)["id"]
    service.escalate_complaint(cid, {"staff_id": "s-1", "reason": "超出权限", "role": "manager"})
    with pytest.raises(InvalidInput) as refused:
        service.record_instruction(cid, dict(ORDER, instruction=instruction))
    assert "instruction" in refused.value.errors
