"""Every staff duty and owner notice of issue 12 not proven elsewhere, on the real broker:
each event reaches notify through its queue, and a delivery to the right people is
logged, and sent, exactly once — with two notify instances taking redelivered copies of
the same event at the same time. (The repeat, the deadline warning, the assignment, a
done rectification: test_notify_duties.py; the follow-ups: test_revisit_followups.py;
the survey cadence: test_cadences.py.)"""
from datetime import UTC, datetime, timedelta

import pytest

from shared.envelope import new_event
from tests.integration.test_notify_duties import (
    ESTATE,
    STAFF,
    told_once_by_two_instances,
)

pytestmark = pytest.mark.broker

AT = datetime.now(UTC).replace(microsecond=0)
COMPLAINT = {"complaint_id": "cmp-7", "summary": "楼道垃圾三天没人清理",
             "department": "工程部", "assignee_id": None}
RECTIFICATION = {"rectification_id": "rect-7", "round_id": "rnd-7", "category": "greening",
                 "department": "工程部", "due_at": AT + timedelta(days=7),
                 "action": "补种中心花园草坪", "status": "open"}

# (source, event type, data, template, who hears it, what its text must show)
DUTIES = [
    # supervisors first (mgr-2 is one too), the managers only when there is none
    ("intake", "complaint_overdue", {**COMPLAINT, "deadline": "reply", "due_at": AT},
     "complaint_overdue", ["mgr-2", "sup-1"], ["楼道垃圾三天没人清理", "/console/complaints/cmp-7"]),
    # the rung it was taken up to
    ("intake", "complaint_escalated", {**COMPLAINT, "level": 3, "role": "company_manager",
                                       "reason": "超出权限", "manual": True},
     "complaint_escalated", ["cm-1"], ["员工上报", "楼道垃圾三天没人清理", "/console/complaints/cmp-7"]),
    # whoever has the complaint: its department's staff
    ("intake", "complaint_instruction_recorded", {
        **COMPLAINT, "instruction": "今天下班前清运完毕", "instructed_by": "mgr-1",
        "role": "manager", "escalated_to": "manager", "instructed_at": AT},
     "complaint_instruction_recorded", ["eng-3"], ["今天下班前清运完毕", "/console/complaints/"]),
    # 复核: the estate managers decide
    ("intake", "complaint_review_requested", {
        "complaint_id": "cmp-7", "review_no": 1, "requested_at": AT,
        "due_at": AT + timedelta(days=3), "reason": "垃圾还在"},
     "complaint_review_requested", ["mgr-1", "mgr-2"], ["垃圾还在", "/console/complaints/cmp-7"]),
    # the owner: what was done, and a review's outcome, with their complaint's page
    ("intake", "complaint_resolved", {"complaint_id": "cmp-7", "staff_id": "eng-3",
                                      "resolved_at": AT, "resolution": "已清运并加派保洁"},
     "complaint_resolved", ["h-1"], ["已清运并加派保洁"]),
    ("intake", "complaint_reviewed", {"complaint_id": "cmp-7", "review_no": 1,
                                      "outcome": "upheld", "reviewer_id": "mgr-1",
                                      "decided_at": AT, "finding": "已核实清运记录"},
     "complaint_review_decided", ["h-1"], ["维持原处理结果", "已核实清运记录"]),
    # 「重大投诉…由主管或经理上门回访」: the supervisors who go
    ("revisit", "revisit_scheduled", {
        "revisit_id": "rv-cmp-7-1", "kind": "complaint", "source_id": "cmp-7",
        "household_id": "h-1", "due_at": AT + timedelta(days=3),
        "assigned_role": "supervisor", "method": "onsite"},
     "revisit_onsite", ["mgr-2", "sup-1"], ["上门回访", "/console/revisits/rv-cmp-7-1"]),
    # 「回访逾期…上报公司领导」: the managers
    ("revisit", "revisit_overdue", {
        "revisit_id": "rv-cmp-7-1", "kind": "complaint", "source_id": "cmp-7",
        "due_at": AT, "deadline": "promised_reply"},
     "revisit_overdue", ["mgr-1", "mgr-2"], ["承诺答复", "/console/revisits/rv-cmp-7-1"]),
    # the estate managers and the company's, together, with the round's report
    ("survey", "survey_round_closed", {"round_id": "rnd-7", "invited": 40, "returned": 30,
                                       "response_rate": 0.75},
     "survey_round_closed", ["cm-1", "mgr-1", "mgr-2"], ["75.0%", "/console/surveys/rnd-7"]),
    # 「责成有关部门限期解决」: the department
    ("survey", "rectification_created", RECTIFICATION, "rectification_created", ["eng-3"],
     ["补种中心花园草坪", "/console/surveys/rectifications"]),
    ("survey", "rectification_overdue", RECTIFICATION, "rectification_overdue", ["eng-3"],
     ["到期仍未完成", "/console/surveys/rectifications"]),
]


@pytest.fixture
def notify_config(service_config):
    # the directory of test_notify_duties; no quiet hours, so owners' messages go at once
    return {**service_config, "NOTIFY_STAFF": STAFF, "NOTIFY_QUIET_HOURS": "",
            "NOTIFY_DISPATCH_INTERVAL": 0.2}


@pytest.mark.parametrize("source, event_type, data, template, told, shows", DUTIES,
                         ids=[duty[3] for duty in DUTIES])
def test_two_notify_instances_tell_the_right_people_once(
        notify_config, container_factory, listener, source, event_type, data, template,
        told, shows):
    logged = told_once_by_two_instances(notify_config, container_factory, listener,
                                        new_event(event_type, source, ESTATE, data, AT),
                                        template, told)
    for text in shows:
        assert text in logged[0]["text"], logged[0]["text"]
