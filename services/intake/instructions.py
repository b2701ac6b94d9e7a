"""The manager's instruction on an escalated complaint. Pure Python.

「对于超越自己权限的投诉事件应及时向公司经理汇报…待经理做出明确指示后,妥善处理」: a
complaint taken up to a manager's rung (``domain.awaits_instruction``) waits for that
manager to say what is to be done. The instruction is written into the complaint
(``instructions``: what, who, their rung, when) and its history, and announced
(``complaint_instruction_recorded``) so that whoever has the complaint — its assignee,
else its department — acts on it.
"""
from datetime import datetime

from services.intake import domain
from services.intake.policy import ComplaintPolicy
from shared.documents import deep_copy
from shared.envelope import Changed
from shared.errors import InvalidInput, InvalidTransition
from shared.schemas.intake import INSTRUCTING_ROLES


def record(complaint: dict, data: dict, now: datetime, policy: ComplaintPolicy,
           expected_status: str | None = None) -> Changed:
    """The complaint with ``data``'s instruction (``RecordInstruction``: ``staff_id``,
    ``role``, ``instruction``) and its event. Refused unless the complaint awaits a
    manager's instruction, and from a manager below the rung it was taken up to (the
    company manager's matter is not the estate manager's to decide)."""
    domain.expect(complaint, expected_status, "instruct")
    if not domain.awaits_instruction(complaint):
        raise InvalidTransition("complaint", complaint["_id"],
                                "not escalated to a manager", "instruct")
    escalated_to = domain.escalated_role(complaint)
    assert escalated_to is not None     # it awaits an instruction: escalated to a manager
    if INSTRUCTING_ROLES.index(data["role"]) < INSTRUCTING_ROLES.index(escalated_to):
        whose = escalated_to.replace("_", " ")
        raise InvalidInput({"role": [f"escalated to the {whose}: the instruction is theirs"]})
    complaint = deep_copy(complaint)
    instruction = {"at": now, "by": data["staff_id"], "role": data["role"],
                   "instruction": data["instruction"], "round": complaint["round"]}
    complaint.setdefault("instructions", []).append(instruction)
    domain._note(complaint, now, data["staff_id"], "instruct", data["instruction"])
    return domain._rescheduled(complaint, policy), [domain._event(
        "complaint_instruction_recorded", complaint, {
            "instruction": data["instruction"], "instructed_by": data["staff_id"],
            "role": data["role"], "instructed_at": now, "escalated_to": escalated_to,
            "summary": domain.summary(complaint), **domain._handlers(complaint)}, now)]
