"""Each estate's complaint policy: deadlines, routing, escalation, repeats, and its calendar.

Every value is a default the group can change for all estates
(``COMPLAINT_POLICY`` in config.yaml) or for one (``ESTATE_POLICIES.<estate_id>``).
Working days come from the official Chinese calendar; a group loads the
announced holiday table of a new year as data (``HOLIDAY_TABLES``), which wins
over the library's forecast for that year. Pure Python.
"""
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any

from shared.departments import DEFAULT_ROUTING, merged_routing
from shared.errors import InvalidInput
from shared.schemas import intake as schemas
from shared.schemas.base import load
from shared.schemas.vocabulary import COMPLAINT_CATEGORIES
from shared.workdays import DEFAULT_TIMEZONE, WorkingCalendar

# 「所有投诉…一个工作日内做出第一次回复」 warned 2 working hours before; the answer half a day.
DEFAULT_WARNINGS = MappingProxyType({"first_response": "2h", "reply": "0.5d"})


@dataclass(frozen=True)
class EscalationLevel:
    level: int          # 1 for the first rung
    role: str
    after: timedelta    # after the complaint first became overdue


def _ladder(levels: Iterable[Mapping[str, Any]]) -> tuple[EscalationLevel, ...]:
    return tuple(EscalationLevel(number, level["role"], timedelta(hours=level["after_hours"]))
                 for number, level in enumerate(levels, start=1))


# 「特殊情况向经理汇报」 and 「对于超越自己权限的投诉事件应及时向公司经理汇报」:
# overdue complaints climb from the supervisor to the estate manager to the company.
DEFAULT_ESCALATION = _ladder([
    {"role": "supervisor", "after_hours": 0},
    {"role": "manager", "after_hours": 24},     # the estate manager (项目经理)
    {"role": "company_manager", "after_hours": 72},
])


@dataclass(frozen=True)
class ComplaintPolicy:
    # 「所有投诉无论解决与否均须在一个工作日内做出第一次回复」
    first_response_working_days: int = 1
    # 「一般投诉应在3日内回复业主、住户」 (answered, or a firm reply date given): 3日, calendar
    # days, where the first reply says 一个工作日; an estate may count working days instead
    reply_days: int = 3
    reply_day_kind: str = "calendar"
    # 「如果业主对投诉处理结果不满意,可以向物业公司申请复核」: a review is answered like a complaint
    review_working_days: int = 3
    # 「收到客户对服务仍存在缺陷的再次投诉时,服务中心应在24小时内安排特殊措施」
    special_measures_hours: float = 24
    # How long after closing a new complaint on the same matter counts as a repeat.
    repeat_window_days: int = 30
    # 「投诉处理小组应及时向业主反馈处理进展情况」: the owner's page; its link works while the
    # complaint is handled and this long after its last closing (long enough to ask for a
    # review and see it answered), then stops.
    owner_link_days: int = 90
    # The zone working days and deadlines are counted in; an estate's record has its own.
    timezone: str = DEFAULT_TIMEZONE
    # 「特殊情况向经理汇报」, 「对于超越自己权限的投诉事件应及时向公司经理汇报」: the rungs an
    # overdue complaint climbs, each hours after it first became overdue
    escalation_levels: tuple = DEFAULT_ESCALATION
    # Major complaints go to the estate manager first, not the supervisor (the group's rule).
    major_escalation_from: str | None = "manager"
    # 「物业员判断业主反映问题的责任部门」: category -> department, where it differs from the
    # default table
    routing: MappingProxyType = field(default_factory=lambda: DEFAULT_ROUTING)
    # 「对业主投诉的紧急维修内容转报处理」: content that goes to repair at once
    emergency_repair_keywords: tuple = (
        "爆管", "跑水", "漏水", "水管破裂", "漏电", "电梯困人", "困电梯", "燃气泄漏", "煤气泄漏",
    )
    # an emergency complaint in these categories is a repair
    repair_categories: tuple = (
        "power_supply", "water_supply", "public_facilities", "repair_service",
    )
    # 「对重要服务做针对性回访,如屋面漏水、墙外开裂等维修后,应随时观察效果」
    important_repair_keywords: tuple = (
        "屋面漏水", "屋顶漏水", "墙外开裂", "外墙开裂", "墙体开裂", "外墙渗水",
    )
    # How long before each kind of deadline its handlers are warned ("2h", "0.5d"): in
    # working hours where the deadline counts working days (``counts_working_days``).
    # Kinds left out get no warning.
    warn_before: MappingProxyType = field(default_factory=lambda: DEFAULT_WARNINGS)
    # None only until ``Policies`` gives the policy its zone's calendar (``replace``)
    calendar: WorkingCalendar = field(default=None, compare=False,  # type: ignore[assignment]
                                      repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "warn_before", MappingProxyType(dict(self.warn_before)))
        roles = [level.role for level in self.escalation_levels]
        if self.major_escalation_from and self.major_escalation_from not in roles:
            raise InvalidInput({"major_escalation_from": [
                f"not on the escalation ladder ({', '.join(roles)})"]})

    def department_for(self, category: str) -> str:
        return self.routing.get(category) or DEFAULT_ROUTING[category]

    def departments(self) -> list[str]:
        """The departments this routing sends some category to: the only ones work is
        handed to (shared/departments.py)."""
        return sorted({self.department_for(category) for category in COMPLAINT_CATEGORIES})

    def escalation_start(self, severity: str) -> int:
        """The first rung a complaint of this severity is escalated to."""
        if severity in ("major", "emergency") and self.major_escalation_from:
            for level in self.escalation_levels:
                if level.role == self.major_escalation_from:
                    return level.level
        return 1

    def level(self, number: int) -> EscalationLevel:
        return self.escalation_levels[number - 1]

    def counts_working_days(self, kind: str) -> bool:
        """Is a deadline of ``kind`` counted on working days? The first reply and a review
        are; the answer as the estate chooses; a promised time or 24 hours are clock time."""
        return kind in ("first_response", "review") or (
            kind == "reply" and self.reply_day_kind == "working")

    def reply_due(self, start: datetime) -> datetime:
        """The answer owed ``reply_days`` after ``start``, in the estate's kind of days."""
        if self.reply_day_kind == "working":
            return self.calendar.add_working_days(start, self.reply_days)
        return self.calendar.add_days(start, self.reply_days)

    def warning_at(self, kind: str, due_at: datetime) -> datetime | None:
        """When a deadline of ``kind`` due at ``due_at`` is announced as approaching; None
        when the estate warns of no such deadline."""
        hours = schemas.lead_time_hours(self.warn_before.get(kind) or "0h")
        if not hours:
            return None
        if self.counts_working_days(kind):
            return self.calendar.working_hours_before(due_at, hours)
        return due_at - timedelta(hours=hours)

    @property
    def special_measures_within(self) -> timedelta:
        return timedelta(hours=self.special_measures_hours)

    @property
    def repeat_window(self) -> timedelta:
        return timedelta(days=self.repeat_window_days)

    @property
    def owner_link_lifetime(self) -> timedelta:
        return timedelta(days=self.owner_link_days)


class Policies:
    """The policy of every estate, built once from the configuration.

    Bad configuration fails here, at start-up, naming the key — not at the
    first complaint of the estate that has the typo.
    """

    def __init__(self, group: Mapping[str, Any] | None = None,
                 estates: Mapping[str, Mapping[str, Any] | None] | None = None,
                 holiday_tables: Iterable[Any] = ()) -> None:
        self.group = _load_policy(group or {}, "COMPLAINT_POLICY")
        self.estates: dict[str | None, dict[str, Any]] = {
            estate_id: _load_policy(values or {}, f"ESTATE_POLICIES.{estate_id}")
            for estate_id, values in (estates or {}).items()
        }
        self.overrides: dict[date, bool] = {}
        for index, table in enumerate(holiday_tables):
            self.overrides.update(holiday_overrides(table, f"HOLIDAY_TABLES.{index}"))
        self._calendars: dict[str, WorkingCalendar] = {}
        # by estate id (None: the group's), or by (estate id, its record's overrides)
        self._policies: dict[str | None | tuple[str, str], ComplaintPolicy] = {}
        for estate_id in (None, *self.estates):   # every policy is checked now, not later
            self.for_estate(estate_id)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], holiday_tables: Iterable[Any] = (),
                    ) -> "Policies":
        return cls(config.get("COMPLAINT_POLICY"), config.get("ESTATE_POLICIES"), holiday_tables)

    def for_estate(self, estate_id: str | None) -> ComplaintPolicy:
        if estate_id not in self._policies:
            self._policies[estate_id] = self._build(estate_id, self.estates.get(estate_id, {}))
        return self._policies[estate_id]

    def for_record(self, estate: Mapping[str, Any]) -> ComplaintPolicy:
        """The policy of an estate's record (services/intake/estates.py): the config's,
        then the record's ``policy`` overrides and its ``timezone``; ``InvalidInput`` on
        ``policy`` when they make no valid policy (checked as ESTATE_POLICIES are)."""
        overrides = {**(estate.get("policy") or {}), "timezone": estate["timezone"]}
        key = (estate["_id"], repr(sorted(overrides.items())))
        if key not in self._policies:
            config = self.estates.get(estate["_id"], {})
            merged = {**config, **overrides,
                      "routing": {**config.get("routing", {}), **overrides.get("routing", {})}}
            try:
                self._policies[key] = self._build(estate["_id"], merged)
            except InvalidInput as exc:
                raise InvalidInput({"policy": next(iter(exc.errors.values()))}) from None
        return self._policies[key]

    def _build(self, estate_id: str | None, estate: Mapping[str, Any]) -> ComplaintPolicy:
        """The policy of the group's values with ``estate``'s overrides."""
        values = dict(self.group)
        values.update(estate, routing=MappingProxyType(
            merged_routing(values.get("routing"), estate.get("routing"))))
        if "escalation_levels" in values:
            values["escalation_levels"] = _ladder(values["escalation_levels"])
        for name in ("emergency_repair_keywords", "repair_categories",
                     "important_repair_keywords"):
            if name in values:
                values[name] = tuple(values[name])
        try:
            policy = ComplaintPolicy(**values)
        except InvalidInput as exc:
            where = "COMPLAINT_POLICY" if estate_id not in self.estates else \
                f"ESTATE_POLICIES.{estate_id}"
            raise InvalidInput({where: exc.errors}) from None
        return replace(policy, calendar=self.calendar(policy.timezone))

    def calendar(self, timezone_name: str) -> WorkingCalendar:
        if timezone_name not in self._calendars:
            self._calendars[timezone_name] = WorkingCalendar(timezone_name, self.overrides)
        return self._calendars[timezone_name]


def _load_policy(values: Any, where: str) -> dict[str, Any]:
    try:
        return load(schemas.ComplaintPolicyConfig(), values)
    except InvalidInput as exc:
        raise InvalidInput({where: exc.errors}) from None


def holiday_overrides(table: Any, where: str = "holiday table") -> dict[date, bool]:
    """Every day of the table's year: working or not, as the announced table says.

    The table replaces the library's view of that year entirely: weekends are
    rest days unless listed as make-up working days (调休上班), weekdays are
    working days unless inside a listed holiday.
    """
    try:
        table = load(schemas.HolidayTable(), table)
    except InvalidInput as exc:
        raise InvalidInput({where: exc.errors}) from None
    days_off = set()
    for period in table["holidays"]:
        day = period["start"]
        while day <= period["end"]:
            days_off.add(day)
            day += timedelta(days=1)
    make_up = set(table["make_up_workdays"])
    clash = sorted(days_off & make_up)
    if clash:
        raise InvalidInput({where: {"make_up_workdays": [
            f"{clash[0].isoformat()} is also listed as a holiday"]}})
    day, overrides = date(table["year"], 1, 1), {}
    while day.year == table["year"]:
        overrides[day] = day in make_up or (day.weekday() < 5 and day not in days_off)
        day += timedelta(days=1)
    return overrides
