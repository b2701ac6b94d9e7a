"""Follow-ups of unsatisfied revisits (回访结果处理). Pure Python.

「将回访结果整理成报告,向相关部门反馈问题和建议,并进行改进措施的制定和实施」 and
「物业服务中心应将业主的意见和建议进行分类整理,并于一个月内向业主反馈」: a work-order or
routine revisit that finds the owner unsatisfied, or the problem unresolved, opens one
follow-up for the responsible department. It records the owner's words; the department
records its measures, each with the person who carries it out (「落实到人」), then the
answer given to the owner, due ``followup_answer_days`` after opening. An unsatisfied
*complaint* revisit is not followed up here: intake reopens the complaint.

A follow-up is a record of its own (collection ``followups``), not a stage of the
revisit: the revisit is done when the owner has spoken, while the follow-up lives on for
a month with its own states, people and deadline, and is listed as a department's
worklist. Its id derives from the revisit's, so it is opened once however often the
``revisit_unsatisfied`` that opens it arrives.

open → measures_recorded (more measures may follow) → answered (closed).
"""
from datetime import datetime
from typing import Any

from services.revisit.domain import is_unsatisfied
from services.revisit.policies import RevisitPolicy
from services.revisit.sampling import month_of
from shared.clock import to_millis
from shared.envelope import Changed, Envelope, new_event
from shared.errors import InvalidTransition
from shared.expected_state import already_done
from shared.schemas.vocabulary import FOLLOWUP_STATUSES

SOURCE = "revisit"
KIND = "follow-up"
# what the timer may still flag overdue: not answered yet
UNANSWERED = ("open", "measures_recorded")
# step -> (states it may start from, state it leads to)
STEPS = {
    "record measures": (("open", "measures_recorded"), "measures_recorded"),
    # 「改进措施…落实到人」 before the owner is told what was done
    "answer": (("measures_recorded",), "answered"),
}


def followup_id(revisit_id: str) -> str:
    """One follow-up per revisit: a redelivered ``revisit_unsatisfied`` finds it there."""
    return f"fu-{revisit_id}"


def needs_followup(revisit: dict) -> bool:
    """A done work-order or routine revisit whose owner was unsatisfied or unresolved."""
    outcome = revisit.get("outcome") or {}
    return (revisit["kind"] != "complaint" and revisit["status"] == "done"
            and bool(outcome) and is_unsatisfied(outcome))


def open_followup(revisit: dict, policy: RevisitPolicy, now: datetime) -> Changed:
    """The follow-up of ``revisit`` (``needs_followup``), for its kind's department, and
    its ``revisit_followup_opened`` event."""
    outcome = revisit["outcome"]
    followup = {
        "_id": followup_id(revisit["_id"]),
        "estate_id": revisit["estate_id"],
        "revisit_id": revisit["_id"],
        "kind": revisit["kind"],
        "source_id": revisit["source_id"],
        "household_id": revisit.get("household_id"),
        "department": policy.followup_department(revisit["kind"]),
        "owner_words": outcome.get("comments") or "",
        "satisfaction": outcome.get("satisfaction"),
        "resolved": outcome.get("resolved"),
        "status": "open",
        "opened_at": now,
        "answer_due_at": policy.followup_answer_due(now),
        "measures": [],
        "answer": None,
        "answered_at": None,
        "answered_on_time": None,
        "overdue_at": None,
        # counted with its revisit, in the period the revisit's source fell in (``stats``)
        "stats_month": revisit.get("stats_month")
        or month_of(revisit["source_at"], policy.timezone),
        "history": [{"at": now, "by": None, "action": "open", "note": None}],
    }
    return followup, [_event("revisit_followup_opened", followup, now,
                             summary=followup["owner_words"] or None)]


def record_measures(followup: dict, data: dict, now: datetime,
                    expected_status: str | None = None) -> Changed | None:
    """Add improvement measures, each with who carries it out; None for a retry."""
    if _retry(followup, "record measures", data["staff_id"], expected_status):
        return None
    measure = {"measures": data["measures"], "responsible": data["responsible"],
               "recorded_by": data["staff_id"], "recorded_at": now}
    return _moved(followup, "record measures", data["staff_id"], now, data["measures"],
                  measures=followup["measures"] + [measure]), []


def answer(followup: dict, data: dict, now: datetime,
           expected_status: str | None = None) -> Changed | None:
    """The owner was told what was done: the follow-up closes, on time or late, and the
    owner hears it (``revisit_followup_answered``). None for a retry."""
    if _retry(followup, "answer", data["staff_id"], expected_status):
        return None
    answered = _moved(followup, "answer", data["staff_id"], now, data["answer"],
                      answer={"text": data["answer"], "by": data["staff_id"], "at": now},
                      answered_at=now,
                      # as the store keeps times (to the ms): the recount agrees
                      answered_on_time=to_millis(now) <= to_millis(followup["answer_due_at"]))
    return answered, [_event("revisit_followup_answered", answered, now,
                             answer=data["answer"], answered_at=now,
                             on_time=answered["answered_on_time"])]


def awaits_reply(revisit: dict) -> bool:
    """Whether the visit promised the owner a reply not given yet (``domain.record_reply``):
    the follow-up's answer gives it."""
    return revisit.get("promised_reply_at") is not None and revisit.get("reply_given_at") is None


def is_overdue(followup: dict, now: datetime) -> bool:
    return followup["status"] in UNANSWERED and followup["answer_due_at"] < now


def mark_overdue(followup: dict, now: datetime) -> Changed:
    """The one ``revisit_followup_overdue`` of a follow-up not answered in time."""
    return {"overdue_at": now}, [_event("revisit_followup_overdue", followup, now,
                                        key=f"{followup['_id']}/overdue")]


def view(followup: dict, now: datetime) -> dict:
    """A follow-up as staff read it, with whether it is overdue at ``now``."""
    return dict(followup, overdue=is_overdue(followup, now))


# -- helpers ------------------------------------------------------------------------------

def _retry(followup: dict, step: str, actor: str | None, expected_status: str | None) -> bool:
    """True when this step by this person already happened (its answer was lost);
    ``InvalidTransition`` when the follow-up is not in a state the step starts from."""
    starts, leads_to = STEPS[step]
    last = followup["history"][-1]
    if already_done(KIND, followup["_id"], step, followup["status"], expected_status,
                    FOLLOWUP_STATUSES, leads_to=leads_to, last=(last["by"], last["action"]),
                    this=(actor, step)):
        return True
    if followup["status"] not in starts:
        raise InvalidTransition(KIND, followup["_id"], followup["status"], step)
    return False


def _moved(followup: dict, step: str, actor: str | None, now: datetime, note: str | None,
           **changes: Any) -> dict:
    return dict(followup, **changes, status=STEPS[step][1], history=followup["history"] + [
        {"at": now, "by": actor, "action": step, "note": note}])


def _event(event_type: str, followup: dict, now: datetime, key: str | None = None,
           **extra: Any) -> Envelope:
    payload = {name: followup[name] for name in (
        "revisit_id", "kind", "source_id", "household_id", "department", "answer_due_at",
        "status")}
    # each happens once to a follow-up: the id names the change
    return new_event(event_type, SOURCE, followup["estate_id"],
                     dict(payload, followup_id=followup["_id"], **extra), now,
                     key=key or followup["_id"])
