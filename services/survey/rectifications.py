"""Rectifications: 「对存在的问题,服务中心主任提出整改意见,责成有关部门限期解决」 — an action
with a department and a deadline, followed to done or overdue. Pure Python."""
import uuid
from collections.abc import Collection
from datetime import datetime

from services.survey.rounds import SOURCE, check_estate, questionnaire
from services.survey.templates import label
from shared.departments import check_department
from shared.envelope import Changed, Envelope, new_event
from shared.errors import InvalidInput, InvalidTransition
from shared.expected_state import already_done
from shared.schemas.survey import GENERAL_COMMENT, RECTIFICATION_STATUSES


def new_rectification_id() -> str:
    return f"rect-{uuid.uuid4().hex[:16]}"


def new_rectification(rectification_id: str, round_: dict, data: dict, now: datetime,
                      departments: Collection[str], by: str | None = None) -> Changed:
    """「对存在的问题,服务中心主任提出整改意见,责成有关部门限期解决」: an action with a
    department and a deadline, for one estate and category of the round; the department
    one of ``departments`` (the estate's complaint routing names them, as intake answers:
    shared/departments.py); ``by`` the person who set it, in its first history line."""
    check_estate(round_, data["estate_id"])
    check_department(data["department"], departments)
    if round_["status"] in ("creating", "abandoned"):
        raise InvalidTransition("survey round", round_["_id"], round_["status"],
                                "add a rectification to")
    allowed = questionnaire(round_, data["estate_id"]) + [GENERAL_COMMENT]
    if data["category"] not in allowed:
        raise InvalidInput({"category": [
            f"not asked in {data['estate_id']}: one of {', '.join(allowed)}"]})
    if data["due_at"] <= now:
        raise InvalidInput({"due_at": ["a deadline must be in the future"]})
    rectification = {
        "_id": rectification_id,
        "round_id": round_["_id"],
        "estate_id": data["estate_id"],
        "category": data["category"],
        "action": data["action"],
        "department": data["department"],
        "assignee_id": data["assignee_id"],
        "due_at": data["due_at"],
        "status": "open",
        "created_at": now,
        "done_at": None,
        "overdue_at": None,
        "history": [{"at": now, "status": "open", "note": None, "by": by}],
    }
    return rectification, [_rectification_event("rectification_created", rectification, now)]


RECTIFICATION_TRANSITIONS = {"open": ("in_progress", "done"), "in_progress": ("done",)}


def update_rectification(rectification: dict, data: dict, now: datetime,
                         expected_status: str | None = None) -> Changed | None:
    """The rectification moved on, with its history line; None when ``expected_status``
    shows this very step happened already (a retry)."""
    current = rectification["status"]
    last = rectification["history"][-1] if rectification["history"] else {}
    if already_done("rectification", rectification["_id"], f"move to {data['status']}", current,
                    expected_status, RECTIFICATION_STATUSES, leads_to=data["status"],
                    last=(last.get("by"), last.get("status")),
                    this=(data["staff_id"], data["status"])):
        return None
    if data["status"] not in RECTIFICATION_TRANSITIONS.get(current, ()):
        raise InvalidTransition("rectification", rectification["_id"], current,
                                f"move to {data['status']}")
    rectification = dict(
        rectification, status=data["status"],
        history=rectification["history"] + [
            {"at": now, "status": data["status"], "note": data["note"], "by": data["staff_id"]}])
    events = []
    if data["status"] == "done":
        rectification["done_at"] = now
        events.append(_rectification_event("rectification_done", rectification, now))
    return rectification, events


def rectification_overdue(rectification: dict, now: datetime) -> Changed:
    """The one ``rectification_overdue`` of an action past its deadline and not done."""
    return {"overdue_at": now}, [_rectification_event("rectification_overdue", rectification, now)]


def is_overdue(rectification: dict, now: datetime) -> bool:
    return rectification["status"] != "done" and rectification["due_at"] <= now


def rectification_view(rectification: dict, round_: dict | None, now: datetime) -> dict:
    label_zh, label_en = label(round_, rectification["category"]) if round_ else (None, None)
    return dict(rectification, overdue=is_overdue(rectification, now),
                label_zh=label_zh, label_en=label_en)


def _rectification_event(event_type: str, rectification: dict, now: datetime) -> Envelope:
    # created, done and overdue each happen once to a rectification
    return new_event(event_type, SOURCE, rectification["estate_id"], {
        "rectification_id": rectification["_id"],
        **{key: rectification[key] for key in
           ("round_id", "category", "department", "due_at", "action", "status")},
    }, now, key=rectification["_id"])
