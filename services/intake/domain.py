"""Complaints: registration, deadlines and the state machine. Pure Python.

Policy texts (../shared/seed): 「所有投诉无论解决与否均须在一个工作日内做出第一次回复」
and 「一般投诉应在3日内回复业主、住户」.
"""
import uuid
from dataclasses import dataclass

from shared.envelope import new_event
from shared.errors import InvalidTransition
from shared.masking import mask_email, mask_phone

SOURCE = "intake"


@dataclass(frozen=True)
class ComplaintPolicy:
    """Per-estate deadlines; defaults from the policy texts quoted above."""

    first_response_working_days: int = 1
    reply_working_days: int = 3
    timezone: str = "Asia/Shanghai"


# action -> (states it may start from, state it leads to)
TRANSITIONS = {
    "acknowledge": ({"registered", "reopened"}, "acknowledged"),
    "assign": ({"acknowledged", "assigned"}, "assigned"),
    "resolve": ({"assigned"}, "resolved"),
    "close": ({"resolved"}, "closed"),
    "reopen": ({"resolved", "closed"}, "reopened"),
}

# action -> the event it announces and the timestamp field it sets
ANNOUNCED = {
    "acknowledge": ("complaint_acknowledged", "acknowledged_at"),
    "assign": ("complaint_assigned", "assigned_at"),
    "resolve": ("complaint_resolved", "resolved_at"),
    "close": ("complaint_closed", "closed_at"),
    "reopen": ("complaint_reopened", "reopened_at"),
}


def new_complaint_id():
    return f"cmp-{uuid.uuid4().hex[:16]}"


def deadlines(received_at, policy, calendar):
    return {
        "first_response_due": calendar.add_working_days(
            received_at, policy.first_response_working_days),
        "reply_due": calendar.add_working_days(received_at, policy.reply_working_days),
    }


def register(complaint_id, data, policy, calendar, now):
    """A new complaint and its ``complaint_registered`` event."""
    received_at = data.get("received_at") or now
    complaint = {
        "_id": complaint_id,
        "estate_id": data["estate_id"],
        "household_id": data.get("household_id"),
        "reporter": data.get("reporter"),
        "channel": data["channel"],
        "category": data["category"],
        "severity": data["severity"],
        "content": data["content"],
        "status": "registered",
        "received_at": received_at,
        **deadlines(received_at, policy, calendar),
        "repeat_of": None,
        "closing_no": 0,
        "reopen_no": 0,
        "history": [_entry(now, "reporter", "register", None, "registered", data["channel"])],
    }
    event = _event(complaint, "complaint_registered", now, {
        key: complaint[key] for key in (
            "household_id", "category", "severity", "channel", "received_at",
            "first_response_due", "reply_due", "repeat_of",
        )
    })
    return complaint, [event]


def apply(complaint, action, actor, now, note="", changes=None, policy=None, calendar=None):
    """Move ``complaint`` through ``action``; the changed complaint and its event.

    Raises ``InvalidTransition`` naming the current state if the action is not
    allowed from it.
    """
    allowed_from, target = TRANSITIONS[action]
    current = complaint["status"]
    if current not in allowed_from:
        raise InvalidTransition("complaint", complaint["_id"], current, action)
    event_type, stamp = ANNOUNCED[action]
    at = (changes or {}).pop("at", None) or now
    complaint = dict(complaint, **(changes or {}), status=target, **{stamp: at})
    complaint["history"] = complaint["history"] + [
        _entry(now, actor, action, current, target, note)
    ]
    payload = {"complaint_id": complaint["_id"]}
    if action == "close":
        complaint["closing_no"] += 1
        payload.update({key: complaint[key] for key in (
            "household_id", "category", "severity", "closed_at", "owner_signoff", "closing_no")})
    elif action == "reopen":
        # A reopened complaint starts over: fresh deadlines, counted from now.
        complaint["reopen_no"] += 1
        complaint.update(deadlines(at, policy or ComplaintPolicy(), calendar))
        payload.update(reason=note, source=complaint["reopen_source"], reopened_at=at,
                       reopen_no=complaint["reopen_no"])
    elif action == "acknowledge":
        payload.update(staff_id=actor, acknowledged_at=at)
    elif action == "assign":
        payload.update({key: complaint.get(key) for key in (
            "department", "assignee_id", "external_unit", "reply_promised_at")},
            assigned_at=at)
    elif action == "resolve":
        payload.update(staff_id=actor, resolved_at=at)
    return complaint, [_event(complaint, event_type, now, payload)]


def can_reopen_after_revisit(complaint):
    """An unsatisfied follow-up reopens a finished complaint; a live one is already open."""
    return complaint["status"] in TRANSITIONS["reopen"][0]


def public_view(document):
    """A complaint or household as staff and other services may see it: contacts masked."""
    view = dict(document)
    if view.get("reporter"):
        view["reporter"] = dict(view["reporter"], phone=mask_phone(view["reporter"]["phone"]))
    if "contacts" in view:
        view["contacts"] = [
            dict(contact, phone=mask_phone(contact["phone"]), email=mask_email(contact.get("email")))
            for contact in view["contacts"]
        ]
    return view


def preferred_contact(contacts):
    return contacts[0] if contacts else None


def _entry(at, by, action, from_state, to_state, note):
    return {"at": at, "by": by, "action": action, "from": from_state, "to": to_state,
            "note": note or ""}


def _event(complaint, event_type, now, payload):
    return new_event(event_type, SOURCE, complaint["estate_id"],
                     dict(payload, complaint_id=complaint["_id"]), now)
