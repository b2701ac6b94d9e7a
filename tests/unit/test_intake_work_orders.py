"""Work orders: registration, completion, and the repair an emergency complaint opens."""
from datetime import UTC, datetime, timedelta
from itertools import product

import pytest

from services.intake import domain, work_orders
from services.intake.policy import Policies
from shared.envelope import parse_event
from shared.errors import InvalidInput, InvalidTransition
from shared.schemas.intake import WORK_ORDER_STATUSES

POLICY = Policies().for_estate("e-1")
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def order(**overrides):
    data = {"estate_id": "e-1", "household_id": "h-1", "kind": "repair", "content": "卫生间灯不亮",
            **overrides}
    return work_orders.register("wo-1", data, POLICY, NOW)


@pytest.mark.parametrize("content, kind, important", [
    ("顶楼屋面漏水，天花板发霉", "repair", True),
    ("客厅外墙开裂", "repair", True),
    ("卫生间灯不亮", "repair", False),
    ("屋面漏水的宣传活动", "community_activity", False),   # only repairs need the follow-up
])
def test_important_repairs_are_recognised_from_the_content(content, kind, important):
    created, _ = order(content=content, kind=kind)
    assert created["important"] is important


def test_the_desk_can_say_important_itself():
    created, [event] = order(important=True)
    assert created["important"] is True
    assert event["type"] == "work_order_registered" and event["data"]["important"] is True


def test_completion_from_paper_records_in_the_past():
    created, _ = order(received_at=NOW - timedelta(days=10))
    done, [event] = work_orders.complete(
        created, {"staff_id": "eng-1", "completed_at": NOW - timedelta(days=9), "note": "换灯"},
        NOW)
    assert done["status"] == "completed" and done["completed_by"] == "eng-1"
    assert done["history"][-1]["action"] == "complete"
    # what revisit reads, validated as revisit will
    payload = parse_event(event)["data"]
    assert payload == {
        "work_order_id": "wo-1", "household_id": "h-1", "kind": "repair", "important": False,
        "completed_at": NOW - timedelta(days=9), "contract_start": None, "contract_end": None,
        "complaint_id": None}


def test_special_service_carries_its_contract_period():
    start, end = NOW - timedelta(days=60), NOW + timedelta(days=120)
    created, _ = order(kind="special_service", content="家政保洁包月", contract_start=start,
                       contract_end=end)
    _, [event] = work_orders.complete(created, {"staff_id": "s-1"}, NOW)
    assert (event["data"]["contract_start"], event["data"]["contract_end"]) == (
        start.isoformat(), end.isoformat())


@pytest.mark.parametrize("completed_at", [NOW + timedelta(hours=1), NOW - timedelta(days=30)])
def test_completion_not_in_the_future_nor_before_receipt(completed_at):
    created, _ = order(received_at=NOW - timedelta(days=10))
    with pytest.raises(InvalidInput, match="completed_at"):
        work_orders.complete(created, {"staff_id": "s-1", "completed_at": completed_at}, NOW)


def test_completed_once():
    created, _ = order()
    done, _ = work_orders.complete(created, {"staff_id": "s-1"}, NOW)
    with pytest.raises(InvalidTransition, match="it is completed"):
        work_orders.complete(done, {"staff_id": "s-1"}, NOW)


STATES = WORK_ORDER_STATUSES
STEPS = {"complete": lambda created: work_orders.complete(created, {"staff_id": "s-1"}, NOW),
         "cancel": lambda created: work_orders.cancel(
             created, {"staff_id": "s-1", "reason": "重复登记"}, NOW)}


def in_state(state):
    created, _ = order()
    reaching = [action for action, (_, target) in work_orders.TRANSITIONS.items()
                if target == state]
    return STEPS[reaching[0]](created)[0] if reaching else created


def test_the_status_filter_vocabulary_is_the_work_order_state_machine():
    targets = {target for _, target in work_orders.TRANSITIONS.values()}
    assert set(WORK_ORDER_STATUSES) == targets | {"registered"}


@pytest.mark.parametrize("state, action", list(product(STATES, work_orders.TRANSITIONS)))
def test_every_work_order_step_is_allowed_or_refused_by_the_table(state, action):
    allowed_from, target = work_orders.TRANSITIONS[action]
    current = in_state(state)
    if state in allowed_from:
        changed, _ = STEPS[action](current)
        assert changed["status"] == target
        assert (changed["history"][-1]["action"], changed["history"][-1]["to"]) == (action, target)
    else:
        with pytest.raises(InvalidTransition, match=f"it is {state}"):
            STEPS[action](current)


def test_a_cancelled_order_keeps_its_reason_and_is_not_announced():
    created, _ = order()
    cancelled, events = work_orders.cancel(
        created, {"staff_id": "desk-2", "reason": "业主已自行修好"}, NOW + timedelta(hours=2))
    assert events == [], "nothing was done: nothing for revisit to sample"
    assert (cancelled["status"], cancelled["cancelled_by"], cancelled["cancel_reason"],
            cancelled["cancelled_at"]) == ("cancelled", "desk-2", "业主已自行修好",
                                           NOW + timedelta(hours=2))
    assert cancelled["history"][-1] == {
        "at": NOW + timedelta(hours=2), "by": "desk-2", "action": "cancel",
        "from": "registered", "to": "cancelled", "note": "业主已自行修好"}
    assert created["status"] == "registered", "the order read is left as it was"


@pytest.mark.parametrize("category, severity, content, opens", [
    ("water_supply", "emergency", "楼上往下滴水", True),      # an emergency about a repair
    ("repair_service", "normal", "厨房水管破裂，跑水了", True),  # emergency content
    ("public_facilities", "normal", "电梯困人，有老人在里面", True),
    ("noise", "emergency", "楼上在打架", False),              # urgent, but not a repair
    ("cleaning", "normal", "垃圾未清理", False),
])
def test_emergency_repair_content_opens_a_repair_order_at_once(category, severity, content, opens):
    complaint, [event] = domain.register("cmp-7", {
        "estate_id": "e-1", "household_id": "h-1", "channel": "hotline", "category": category,
        "severity": severity, "content": content}, [], POLICY, NOW)
    assert (complaint["work_order_id"] == "wo-cmp-7") is opens
    assert event["data"]["work_order_id"] == complaint["work_order_id"]
    if opens:
        repair, [registered] = work_orders.for_emergency(complaint, POLICY, NOW)
        assert (repair["_id"], repair["kind"], repair["complaint_id"]) == (
            "wo-cmp-7", "repair", "cmp-7")
        assert registered["data"]["complaint_id"] == "cmp-7"
