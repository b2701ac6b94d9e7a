"""Follow-up visits (回访): scheduling from events and recording outcomes. Pure Python.

「所有投诉应100%进行回访」 — every closing of a complaint gets one revisit.
"""
from dataclasses import dataclass
from datetime import timedelta

from shared.envelope import new_event
from shared.errors import InvalidTransition
from shared.schemas.vocabulary import UNSATISFIED_LEVELS

SOURCE = "revisit"
RECORDABLE = {"scheduled", "booked", "overdue"}
BOOKABLE = {"scheduled", "overdue"}


@dataclass(frozen=True)
class RevisitPolicy:
    # 「投诉事件应在处理完毕后三天内进行回访」 (another text allows 3-5 days)
    complaint_revisit_days: int = 3
    # Not reached: try again (other time or channel) before counting as unreachable.
    max_attempts: int = 3


def complaint_revisit_id(complaint_id, closing_no):
    """One revisit per closing: redelivered events map to the same revisit."""
    return f"rv-{complaint_id}-{closing_no}"


def schedule_complaint_revisit(closed, estate_id, policy, now):
    """The revisit owed for a ``complaint_closed`` payload, and its event.

    「客服组负责人或项目经理对重大投诉进行回访,一般采取上门回访方式」: major
    complaints go to a supervisor, on site; the rest to staff by phone.
    """
    major = closed["severity"] == "major"
    revisit = {
        "_id": complaint_revisit_id(closed["complaint_id"], closed["closing_no"]),
        "estate_id": estate_id,
        "kind": "complaint",
        "source_id": closed["complaint_id"],
        "household_id": closed["household_id"],
        "category": closed["category"],
        "severity": closed["severity"],
        "closing_no": closed["closing_no"],
        "due_at": closed["closed_at"] + timedelta(days=policy.complaint_revisit_days),
        "status": "scheduled",
        "assigned_role": "supervisor" if major else "staff",
        "method": "onsite" if major else "phone",
        "attempts": [],
        "outcome": None,
        "created_at": now,
    }
    return revisit, [_event("revisit_scheduled", revisit, now, {
        key: revisit[key] for key in ("kind", "source_id", "household_id", "due_at",
                                      "assigned_role", "method")
    })]


def book(revisit, appointment, now):
    """An on-site appointment the owner agreed to (checked by the input schema)."""
    if revisit["status"] not in BOOKABLE:
        raise InvalidTransition("revisit", revisit["_id"], revisit["status"], "book")
    revisit = dict(revisit, status="booked", method="onsite", appointment_at=appointment["at"])
    return revisit, [_event("revisit_booked", revisit, now, {
        "household_id": revisit["household_id"], "at": appointment["at"], "method": "onsite",
    })]


def record(revisit, outcome, policy, now):
    """Record one contact attempt; the changed revisit and its events.

    Not reached: the revisit stays open for another try until ``max_attempts``.
    Unsatisfied or unresolved after a complaint: ``revisit_unsatisfied``, which
    reopens the complaint in intake.
    """
    if revisit["status"] not in RECORDABLE:
        raise InvalidTransition("revisit", revisit["_id"], revisit["status"], "record")
    attempt = dict(outcome, at=now)
    revisit = dict(revisit, attempts=revisit["attempts"] + [attempt])
    if not outcome["reached"]:
        if len(revisit["attempts"]) < policy.max_attempts:
            return revisit, []
        revisit.update(status="done", outcome=dict(attempt, unreachable=True), completed_at=now)
    else:
        revisit.update(status="done", outcome=attempt, completed_at=now)
    events = [_event("revisit_completed", revisit, now, {
        "kind": revisit["kind"], "source_id": revisit["source_id"],
        "reached": outcome["reached"], "satisfaction": outcome["satisfaction"],
        "resolved": outcome["resolved"], "completed_at": now,
    })]
    if revisit["kind"] == "complaint" and is_unsatisfied(outcome):
        events.append(_event("revisit_unsatisfied", revisit, now, {
            "kind": revisit["kind"], "source_id": revisit["source_id"],
            "satisfaction": outcome["satisfaction"], "resolved": outcome["resolved"],
            "comments": outcome["comments"],
        }))
    return revisit, events


def is_unsatisfied(outcome):
    return outcome["reached"] and (
        outcome["satisfaction"] in UNSATISFIED_LEVELS or outcome["resolved"] is False
    )


def _event(event_type, revisit, now, payload):
    return new_event(event_type, SOURCE, revisit["estate_id"],
                     dict(payload, revisit_id=revisit["_id"]), now)
