"""What a household's change announces: moving in, and the key-customer flag. Pure Python.

「例行回访应根据制订的回访计划进行实施,以达到年回访率100%的目标(按照已办理入住户数统计)」:
a household that becomes occupied (imported occupied, or marked occupied again) is told to
revisit (``household_moved_in``), which adds its routine visit to the year's plan.
「一般客户的回访由客服助理负责,重点客户的回访由客服负责人或项目经理负责」: the key-customer
flag (重点客户) is announced whenever it changes (``household_key_customer_set``), so
revisit hands that household's visits to a supervisor or the estate manager.
"""
from datetime import datetime

from shared.envelope import Envelope, new_event

SOURCE = "intake"


def announcements(estate_id: str, row: dict, before: dict | None,
                  now: datetime) -> list[Envelope]:
    """The events an import of ``row`` makes, given the household as it was (``before``,
    None for a new one): moved in when it becomes occupied; the flag when it changes (a
    row without the column leaves the flag as it was)."""
    events: list[Envelope] = []
    was_occupied = bool(before and before.get("occupied"))
    flag = row.get("key_customer")
    was_key = bool(before and before.get("key_customer"))
    key_customer = was_key if flag is None else flag
    if row["occupied"] and not was_occupied:
        events.append(new_event("household_moved_in", SOURCE, estate_id, {
            "household_id": row["household_id"], "building": row.get("building"),
            "unit": row.get("unit"), "room": row.get("room"),
            "key_customer": key_customer, "moved_in_at": now},
            now, key=f"{row['household_id']}/moved_in/{now.isoformat()}"))
    if flag is not None and flag != was_key:
        events.append(key_customer_event(estate_id, row["household_id"], flag, now))
    return events


def key_customer_event(estate_id: str, household_id: str, flag: bool,
                       now: datetime) -> Envelope:
    return new_event("household_key_customer_set", SOURCE, estate_id, {
        "household_id": household_id, "key_customer": flag, "changed_at": now},
        now, key=f"{household_id}/key_customer/{now.isoformat()}")
