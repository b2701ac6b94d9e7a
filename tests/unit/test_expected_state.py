"""The state a caller saw (``expected_status``, shared/expected_state.py): a retried step
that happened answers the record as it is; any other state is InvalidTransition naming it."""
from datetime import UTC, datetime
from unittest.mock import Mock

import pytest
from nameko.testing.services import worker_factory

from services.intake.policy import Policies
from services.intake.repository import IntakeRepository
from services.intake.service import IntakeService
from services.revisit.policies import PolicyBook
from services.revisit.repository import RevisitRepository
from services.revisit.service import RevisitService
from services.survey.repository import SurveyRepository
from services.survey.rounds import SurveyPolicies
from services.survey.service import SurveyService
from shared.actor import Caller
from shared.clock import FrozenClock
from shared.config import load_config
from shared.envelope import new_event, parse_event
from shared.errors import InvalidInput, InvalidTransition
from shared.expected_state import already_done
from tests.helpers import embedded, estates_answered_by_households, handle_one, prepared

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
STATES = ("open", "closed")
HOUSEHOLD = {"household_id": "h-1", "building": "3", "unit": "1", "room": "502",
             "occupied": True, "contacts": [{"name": "王芳", "phone": "13812345678"}]}
COMPLAINT = {"estate_id": "e-1", "household_id": "h-1", "channel": "wechat",
             "category": "noise", "severity": "normal", "content": "楼上装修到晚上十点"}


# the rule ------------------------------------------------------------------------------

def test_no_expectation_leaves_the_state_machine_alone():
    assert already_done("door", "d-1", "close", "closed", None, STATES) is False


def test_the_expected_state_goes_on():
    assert already_done("door", "d-1", "close", "open", "open", STATES,
                        leads_to="closed", last=None, this=("s-1", "close")) is False


def test_the_outcome_of_this_very_step_by_this_actor_is_a_retry():
    assert already_done("door", "d-1", "close", "closed", "open", STATES, leads_to="closed",
                        last=("s-1", "close"), this=("s-1", "close")) is True


@pytest.mark.parametrize("last", [("s-2", "close"), ("s-1", "lock"), None])
def test_the_outcome_by_someone_else_or_another_step_is_refused(last):
    with pytest.raises(InvalidTransition, match="it is closed, not open as expected"):
        already_done("door", "d-1", "close", "closed", "open", STATES, leads_to="closed",
                     last=last, this=("s-1", "close"))


@pytest.mark.parametrize("expected", ["ajar", 3, {"$ne": "open"}])
def test_an_expected_status_that_is_no_state_is_invalid_input(expected):
    with pytest.raises(InvalidInput) as error:
        already_done("door", "d-1", "close", "open", expected, STATES)
    assert list(error.value.errors) == ["expected_status"]


# intake --------------------------------------------------------------------------------

@pytest.fixture
def intake():
    config = load_config()
    service = worker_factory(IntakeService, store=embedded(IntakeRepository),
                             clock=FrozenClock(NOW), config=config,
                             policies=Policies.from_config(config), caller=Caller(None, None),
                             contact_callers=("notify",))
    service.import_households("e-1", [HOUSEHOLD], estate={"name": "测试小区"})
    return service


def actions(intake, complaint_id):
    return [line["action"] for line in intake.get_complaint(complaint_id)["history"]]


def test_a_retried_close_answers_the_closed_complaint(intake):
    cid = intake.register_complaint(COMPLAINT)["id"]
    intake.acknowledge_complaint(cid, {"staff_id": "s-1", "note": "已致歉"})
    intake.assign_complaint(cid, {"department": "秩序部", "assignee_id": "s-7"})
    intake.resolve_complaint(cid, {"staff_id": "s-7", "resolution": "已劝导"})
    close = {"closed_by": "s-1", "owner_signoff": "satisfied"}
    first = intake.close_complaint(cid, close, expected_status="resolved")
    again = intake.close_complaint(cid, close, expected_status="resolved")
    assert again == first
    assert actions(intake, cid).count("close") == 1
    with pytest.raises(InvalidTransition, match="it is closed"):     # without: as before
        intake.close_complaint(cid, close)
    with pytest.raises(InvalidTransition, match="it is closed, not resolved as expected"):
        intake.close_complaint(cid, dict(close, closed_by="s-2"), expected_status="resolved")


def test_a_retried_assign_is_not_a_second_assignment(intake):
    cid = intake.register_complaint(COMPLAINT)["id"]
    intake.acknowledge_complaint(cid, {"staff_id": "s-1", "note": "已致歉"})
    assign = {"department": "秩序部", "assignee_id": "s-7"}
    intake.assign_complaint(cid, assign, expected_status="acknowledged")
    intake.assign_complaint(cid, assign, expected_status="acknowledged")
    assert actions(intake, cid) == ["register", "acknowledge", "assign"]
    # re-assigning, having seen it assigned, still is one
    intake.assign_complaint(cid, dict(assign, assignee_id="s-8"), expected_status="assigned")
    assert actions(intake, cid) == ["register", "acknowledge", "assign", "assign"]


def test_another_state_than_expected_is_refused_naming_it(intake):
    cid = intake.register_complaint(COMPLAINT)["id"]
    with pytest.raises(InvalidTransition, match="it is registered, not acknowledged"):
        intake.resolve_complaint(cid, {"staff_id": "s-7", "resolution": "已劝导"},
                                 expected_status="acknowledged")
    with pytest.raises(InvalidTransition, match="it is registered, not assigned"):
        intake.escalate_complaint(cid, {"staff_id": "s-1", "reason": "业主很生气"},
                                  expected_status="assigned")
    with pytest.raises(InvalidInput) as error:
        intake.acknowledge_complaint(cid, {"staff_id": "s-1", "note": "x"},
                                     expected_status="pending")
    assert list(error.value.errors) == ["expected_status"]
    assert actions(intake, cid) == ["register"]


def test_a_retried_work_order_completion_answers_the_order(intake):
    order = intake.register_work_order({"estate_id": "e-1", "household_id": "h-1",
                                        "kind": "repair", "content": "卫生间灯不亮"})
    done = intake.complete_work_order(order["id"], {"staff_id": "eng-1"},
                                      expected_status="registered")
    again = intake.complete_work_order(order["id"], {"staff_id": "eng-1"},
                                       expected_status="registered")
    assert again == done
    stored = intake.store.db.work_orders.find_one({"_id": order["id"]})
    assert [line["action"] for line in stored["history"]] == ["register", "complete"]
    assert [event["type"] for event in stored["outbox"]] == [
        "work_order_registered", "work_order_completed"]
    with pytest.raises(InvalidTransition, match="it is completed, not registered"):
        intake.cancel_work_order(order["id"], {"staff_id": "eng-1", "reason": "重复"},
                                 expected_status="registered")


# revisit ---------------------------------------------------------------------------------

def test_a_retried_revisit_record_answers_the_done_revisit():
    service = worker_factory(RevisitService, store=embedded(RevisitRepository),
                             clock=FrozenClock(NOW), policies=PolicyBook(load_config()),
                             caller=Caller(None, None))
    handle_one(service.schedule_complaint_revisits, parse_event(new_event("complaint_closed", "intake", "e-1", {
        "complaint_id": "cmp-1", "household_id": "h-1", "category": "cleaning",
        "severity": "normal", "closed_at": NOW, "owner_signoff": "none", "closing_no": 1,
    }, NOW)))
    [revisit] = service.list_revisits({})
    visit = {"visitor_id": "s-1", "method": "phone", "reached": True,
             "satisfaction": "satisfied", "resolved": True}
    done = service.record_revisit(revisit["id"], visit, expected_status="scheduled")
    assert service.record_revisit(revisit["id"], visit, expected_status="scheduled") == done
    assert len(service.get_revisit(revisit["id"])["attempts"]) == 1
    with pytest.raises(InvalidTransition, match="it is done, not scheduled"):
        service.record_revisit(revisit["id"], dict(visit, visitor_id="s-2"),
                               expected_status="scheduled")


# survey ----------------------------------------------------------------------------------

@pytest.fixture
def survey():
    intake = estates_answered_by_households(Mock())
    intake.list_households.return_value = {"items": [
        {"id": "h1", "estate_id": "e1", "building": "3", "unit": "1", "room": "501",
         "occupied": True, "contacts": []}], "next_cursor": None}
    return worker_factory(SurveyService, store=embedded(SurveyRepository),
                          clock=FrozenClock(NOW), intake=intake, config={},
                          policies=SurveyPolicies.from_config({}), caller=Caller(None, None))


def new_round(survey):
    return prepared(survey, survey.create_round({
        "title": "2026 下半年", "estate_ids": ["e1"], "opens_at": NOW.isoformat(),
        "closes_at": "2026-12-15T18:00:00+08:00"}))


def test_a_retried_close_round_answers_the_closed_round(survey):
    round_ = new_round(survey)
    closed = survey.close_round(round_["id"], expected_status="open")
    assert survey.close_round(round_["id"], expected_status="open") == closed
    stored = survey.store.db.rounds.find_one({"_id": round_["id"]})
    assert [event["type"] for event in stored["outbox"]].count("survey_round_closed") == 1
    with pytest.raises(InvalidTransition, match="it is closed"):
        survey.close_round(round_["id"])


def test_a_retried_rectification_step_is_one_step(survey):
    round_ = new_round(survey)
    item = survey.add_rectification(round_["id"], {
        "estate_id": "e1", "category": "general", "action": "公示整改进度",
        "department": "客服中心", "due_at": "2026-12-10T18:00:00+08:00"})
    step = {"status": "done", "staff_id": "s-1", "note": "已公示"}
    done = survey.update_rectification(item["id"], step, expected_status="open")
    assert survey.update_rectification(item["id"], step, expected_status="open") == done
    assert [line["status"] for line in done["history"]] == ["open", "done"]
    with pytest.raises(InvalidTransition, match="it is done, not in_progress"):
        survey.update_rectification(item["id"], dict(step, staff_id="s-2"),
                                    expected_status="in_progress")
