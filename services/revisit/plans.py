"""Cadences kept, not remembered: the year's routine plan, households moving in, key
customers, and the month's revisit plan. Pure Python.

* 「例行回访应根据制订的回访计划进行实施,以达到年回访率100%的目标(按照已办理入住户数统计)」:
  each estate's routine plan for the year is made by a timer once the year has begun in
  the estate's time zone (``year_to_plan``), and a household that moves in later gets
  its routine visit in that plan (``plan_move_in``).
* 「一般客户的回访由客服助理负责,重点客户的回访由客服负责人或项目经理负责」: a key
  customer's open visits go to ``policy.key_customer_role``, and back to staff when the
  flag is lifted (``key_customer_changes``).
* 「物业服务中心每月应制定回访计划」: the month's plan lists its routine, complaint and
  work-order visits (``monthly_plan``), for the console and as a workbook.
"""
from datetime import datetime
from typing import Any

from openpyxl import Workbook

from services.revisit import domain
from services.revisit.policies import RevisitPolicy, zone
from shared import sheets
from shared.envelope import Changed

# What the month's plan calls each kind and rung (its workbook is in Chinese).
KIND_LABELS = {
    "routine": "例行回访", "complaint": "投诉回访", "repair": "维修回访",
    "special_service": "特约服务回访", "assistance": "求助回访",
    "community_activity": "社区文化活动回访", "other_service": "其他服务回访",
}
ROLE_LABELS = {"staff": "客服助理", "supervisor": "客服主管", "manager": "项目经理"}
STATUS_LABELS = {"scheduled": "待回访", "booked": "已预约", "done": "已完成", "overdue": "已逾期"}
# What each line of the month's plan shows of a revisit.
PLAN_FIELDS = ("id", "kind", "source_id", "due_at", "status", "assigned_role", "method",
               "key_customer")


def year_to_plan(now: datetime, policy: RevisitPolicy) -> int:
    """The year whose routine plan is due: the estate's current year, in its time zone."""
    return now.astimezone(zone(policy.timezone)).year


def plan_move_in(estate_id: str, household: dict, planned: list[dict],
                 policy: RevisitPolicy, now: datetime) -> list[Changed]:
    """The routine visit (with its events) a household that moved in adds to this year's
    plan: the plan as it stands (``planned``, that year's routine revisits) with the
    newcomer fitted into the least busy open month; nothing if it has an open or made
    visit this year already (a redelivered event adds nothing)."""
    standing = [{"id": revisit["household_id"], "building": revisit.get("building"),
                 "unit": revisit.get("unit"), "room": revisit.get("room")}
                for revisit in planned if revisit["status"] != "cancelled"]
    scheduled, _, _ = domain.plan_routine(
        estate_id, year_to_plan(now, policy), [*standing, household], planned, policy, now)
    return scheduled


def moved_in_household(data: dict) -> dict:
    """A ``household_moved_in`` payload as ``plan_routine`` takes a household."""
    return {"id": data["household_id"], "building": data.get("building"),
            "unit": data.get("unit"), "room": data.get("room"),
            "key_customer": data.get("key_customer", False)}


def key_customer_changes(revisit: dict, key_customer: bool, policy: RevisitPolicy) -> dict | None:
    """How an open revisit changes when its household becomes a key customer (staff's
    visit goes to ``key_customer_role``) or stops being one (a visit raised for that
    reason goes back to staff); None when it does not."""
    if revisit["status"] not in domain.OPEN:
        return None
    if key_customer and revisit["assigned_role"] == "staff":
        return {"assigned_role": policy.key_customer_role, "key_customer": True}
    if not key_customer and revisit.get("key_customer"):
        return {"assigned_role": "staff", "key_customer": False}
    return None


def monthly_plan(estate_id: str, month: str, revisits: list[dict]) -> dict:
    """The month's revisit plan: each visit listed in ``month`` (``domain.plan_month``),
    not cancelled, by due time; the household by its reference only (contacts are
    intake's); counts by kind and rung."""
    lines = sorted((revisit for revisit in revisits if revisit["status"] != "cancelled"),
                   key=lambda revisit: (revisit["due_at"], revisit["_id"]))
    items: list[dict] = []
    by_kind: dict[str, int] = {}
    by_role: dict[str, int] = {}
    for revisit in lines:
        item = {field: revisit.get(field) for field in PLAN_FIELDS if field != "id"}
        item.update(id=revisit["_id"], household=household_ref(revisit),
                    key_customer=bool(revisit.get("key_customer")))
        items.append(item)
        by_kind[revisit["kind"]] = by_kind.get(revisit["kind"], 0) + 1
        by_role[revisit["assigned_role"]] = by_role.get(revisit["assigned_role"], 0) + 1
    return {"estate_id": estate_id, "month": month, "visits": len(items),
            "by_kind": by_kind, "by_role": by_role, "items": items}


def household_ref(revisit: dict) -> str | None:
    """Where the visit goes as the plan shows it: building-unit-room when the revisit
    knows them (a routine visit), else the household id; never a name or number."""
    parts = [revisit.get(part) for part in ("building", "unit", "room")]
    if all(parts):
        return "-".join(str(part) for part in parts)
    return revisit.get("household_id")


def plan_workbook(plan: dict, estate_name: str, timezone: str) -> bytes:
    """The month's plan as an .xlsx workbook to print and file (「上报…备案」)."""
    local = zone(timezone)
    book = Workbook()
    sheet = book.active
    sheet.title = "回访计划"
    sheets.title(sheet, f"{estate_name} {plan['month']} 回访计划", 8)
    sheets.line(sheet, "共 {} 项：{}".format(plan["visits"], "，".join(
        f"{KIND_LABELS.get(kind, kind)} {count}" for kind, count in plan["by_kind"].items())
        or "本月没有计划的回访"))
    start = sheet.max_row + 2
    rows: list[tuple[Any, ...]] = [
        (number, sheets.day(item["due_at"], local), KIND_LABELS.get(item["kind"], item["kind"]),
         item["household"] or "", item["source_id"],
         ROLE_LABELS.get(item["assigned_role"], item["assigned_role"])
         + ("（重点客户）" if item["key_customer"] else ""),
         item["method"], STATUS_LABELS.get(item["status"], item["status"]))
        for number, item in enumerate(plan["items"], start=1)]
    sheets.table(sheet, ["序号", "应回访时间", "类别", "户号", "来源单号", "回访人", "方式",
                         "状态"], rows or [("", "", "（本月没有计划的回访）", "", "", "", "", "")],
                 {2: sheets.MINUTE}, start)
    sheets.layout(sheet, [6, 18, 16, 14, 22, 18, 8, 10], heading_row=start)
    return sheets.workbook_bytes(book)
