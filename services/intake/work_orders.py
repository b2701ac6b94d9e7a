"""Work orders (派工单): repairs, special services, assistance, community activities. Pure Python.

Their completion is what revisit samples and follows up, so
``work_order_completed`` carries everything a revisit needs.
"""
import uuid
from datetime import datetime, timedelta

from services.intake.history import history_entry
from services.intake.policy import ComplaintPolicy
from shared.envelope import Changed, Envelope, record_event
from shared.errors import InvalidInput, InvalidTransition
from shared.expected_state import already_done

SOURCE = "intake"
# A clock a few minutes fast at the desk must not make a fresh record "in the future".
CLOCK_SKEW = timedelta(minutes=5)

# action -> (states it may start from, state it leads to)
TRANSITIONS = {
    "complete": ({"registered"}, "completed"),
    # registered by mistake, twice, or withdrawn by the owner: kept, never deleted
    "cancel": ({"registered"}, "cancelled"),
}
STATES = ("registered", "completed", "cancelled")





def new_work_order_id() -> str:
    return f"wo-{uuid.uuid4().hex[:16]}"


def emergency_work_order_id(complaint_id: str) -> str:
    """One repair order per emergency complaint, whoever creates it and however often."""
    return f"wo-{complaint_id}"


def is_important(kind: str, content: str, policy: ComplaintPolicy) -> bool:
    """「对重要服务做针对性回访,如屋面漏水、墙外开裂等维修后,应随时观察效果」"""
    return kind == "repair" and any(word in content for word in policy.important_repair_keywords)


def is_emergency_repair(complaint: dict, policy: ComplaintPolicy) -> bool:
    """「对业主投诉的紧急维修内容转报处理」: an emergency about something to repair, or
    content that names an emergency (a burst pipe, someone stuck in a lift)."""
    if complaint["severity"] == "emergency" and complaint["category"] in policy.repair_categories:
        return True
    return any(word in complaint["content"] for word in policy.emergency_repair_keywords)


def register(order_id: str, data: dict, policy: ComplaintPolicy, now: datetime) -> Changed:
    """A new work order and its ``work_order_registered`` event."""
    received_at = data.get("received_at") or now
    _not_in_the_future(received_at, now, "received_at")
    important = data.get("important")
    if important is None:
        important = is_important(data["kind"], data["content"], policy)
    order = {
        "_id": order_id,
        "estate_id": data["estate_id"],
        "household_id": data.get("household_id"),
        "complaint_id": data.get("complaint_id"),
        "kind": data["kind"],
        "content": data["content"],
        "location": data.get("location"),
        "important": important,
        "contract_start": data.get("contract_start"),
        "contract_end": data.get("contract_end"),
        "status": "registered",
        "received_at": received_at,
        "registered_at": now,
        "completed_at": None,
        "completed_by": None,
        "cancelled_at": None,
        "cancelled_by": None,
        "cancel_reason": None,
        "history": [history_entry(now, data.get("staff_id") or "desk", "register", None, "registered",
                           data["kind"])],
    }
    return order, [_event("work_order_registered", order, {
        key: order[key] for key in ("household_id", "complaint_id", "kind", "important",
                                    "received_at", "contract_start", "contract_end")
    }, now)]


def for_emergency(complaint: dict, policy: ComplaintPolicy, now: datetime) -> Changed:
    """The repair order an emergency complaint opens at once."""
    return register(emergency_work_order_id(complaint["_id"]), {
        "estate_id": complaint["estate_id"],
        "household_id": complaint["household_id"],
        "complaint_id": complaint["_id"],
        "kind": "repair",
        "content": complaint["content"],
        "received_at": complaint["received_at"],
        "staff_id": "intake",
    }, policy, now)


def complete(order: dict, data: dict, now: datetime,
             expected_status: str | None = None) -> Changed | None:
    """Mark the work done. ``completed_at`` may be in the past (paper records typed in
    later) but not in the future, nor before the order was received. None when
    ``expected_status`` shows this very step already happened (answer the order as it is)."""
    allowed_from, target = TRANSITIONS["complete"]
    if _retried(order, "complete", data["staff_id"], expected_status):
        return None
    if order["status"] not in allowed_from:
        raise InvalidTransition("work order", order["_id"], order["status"], "complete")
    completed_at = data.get("completed_at") or now
    _not_in_the_future(completed_at, now, "completed_at")
    if completed_at < order["received_at"]:
        raise InvalidInput({"completed_at": [
            f"before the order was received ({order['received_at'].isoformat()})"]})
    order = dict(order, status=target, completed_at=completed_at, completed_by=data["staff_id"],
                 completion_note=data.get("note") or "")
    order["history"] = order["history"] + [
        history_entry(now, data["staff_id"], "complete", "registered", target, data.get("note"))]
    return order, [_event("work_order_completed", order, {
        key: order[key] for key in ("household_id", "complaint_id", "kind", "important",
                                    "completed_at", "contract_start", "contract_end")
    }, now)]


def cancel(order: dict, data: dict, now: datetime,
           expected_status: str | None = None) -> Changed | None:
    """Withdraw an order that will not be done, with the reason. No event: nothing
    was done, so there is nothing to revisit (revisit follows completions only). None as
    for ``complete``."""
    allowed_from, target = TRANSITIONS["cancel"]
    if _retried(order, "cancel", data["staff_id"], expected_status):
        return None
    if order["status"] not in allowed_from:
        raise InvalidTransition("work order", order["_id"], order["status"], "cancel")
    order = dict(order, status=target, cancelled_at=now, cancelled_by=data["staff_id"],
                 cancel_reason=data["reason"])
    order["history"] = order["history"] + [
        history_entry(now, data["staff_id"], "cancel", "registered", target, data["reason"])]
    return order, []


def _retried(order: dict, action: str, by: str | None, expected_status: str | None) -> bool:
    """Whether this step is a retry of one that happened (``shared.expected_state``)."""
    last = order["history"][-1]
    return already_done("work order", order["_id"], action, order["status"], expected_status,
                        STATES, leads_to=TRANSITIONS[action][1],
                        last=(last["by"], last["action"]), this=(by, action))


def _not_in_the_future(moment: datetime, now: datetime, field: str) -> None:
    if moment > now + CLOCK_SKEW:
        raise InvalidInput({field: ["must not be in the future"]})


def _event(event_type: str, order: dict, data: dict, now: datetime) -> Envelope:
    # an order is registered once and completed once: its id names the change
    return record_event(event_type, SOURCE, order, "work_order_id", data, now, key=order["_id"])
