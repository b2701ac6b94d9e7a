"""Each estate's complaint policy: deadlines, routing, escalation, repeats, and its calendar.

Every value is a default the group can change for all estates
(``COMPLAINT_POLICY`` in config.yaml) or for one (``ESTATE_POLICIES.<estate_id>``).
Working days come from the official Chinese calendar; a group loads the
announced holiday table of a new year as data (``HOLIDAY_TABLES``), which wins
over the library's forecast for that year. Pure Python.
"""
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from types import MappingProxyType

from shared.errors import InvalidInput
from shared.schemas import intake as schemas
from shared.schemas.base import load
from shared.workdays import DEFAULT_TIMEZONE, WorkingCalendar

# 「物业员判断业主反映问题的责任部门」: the department each category goes to by default.
DEFAULT_ROUTING = MappingProxyType({
    "power_supply": "工程部",
    "water_supply": "工程部",
    "fire_security": "秩序部",
    "order": "秩序部",
    "cleaning": "环境部",
    "greening": "环境部",
    "public_facilities": "工程部",
    "repair_service": "工程部",
    "service_attitude": "客服中心",
    "parking": "秩序部",
    "noise": "秩序部",
    "neighbours": "客服中心",
    "fees": "财务部",
    "other": "客服中心",
})


@dataclass(frozen=True)
class EscalationLevel:
    level: int          # 1 for the first rung
    role: str
    after: timedelta    # after the complaint first became overdue


def _ladder(levels):
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
    # 「一般投诉应在3日内回复业主、住户」 (answered, or a firm reply date given)
    reply_working_days: int = 3
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
    timezone: str = DEFAULT_TIMEZONE
    escalation_levels: tuple = DEFAULT_ESCALATION
    # Major complaints go to the estate manager first, not the supervisor (the group's rule).
    major_escalation_from: str | None = "manager"
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
    calendar: WorkingCalendar = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        roles = [level.role for level in self.escalation_levels]
        if self.major_escalation_from and self.major_escalation_from not in roles:
            raise InvalidInput({"major_escalation_from": [
                f"not on the escalation ladder ({', '.join(roles)})"]})

    def department_for(self, category):
        return self.routing.get(category) or DEFAULT_ROUTING[category]

    def escalation_start(self, severity):
        """The first rung a complaint of this severity is escalated to."""
        if severity in ("major", "emergency") and self.major_escalation_from:
            for level in self.escalation_levels:
                if level.role == self.major_escalation_from:
                    return level.level
        return 1

    def level(self, number):
        return self.escalation_levels[number - 1]

    @property
    def special_measures_within(self):
        return timedelta(hours=self.special_measures_hours)

    @property
    def repeat_window(self):
        return timedelta(days=self.repeat_window_days)

    @property
    def owner_link_lifetime(self):
        return timedelta(days=self.owner_link_days)


class Policies:
    """The policy of every estate, built once from the configuration.

    Bad configuration fails here, at start-up, naming the key — not at the
    first complaint of the estate that has the typo.
    """

    def __init__(self, group=None, estates=None, holiday_tables=()):
        self.group = _load_policy(group or {}, "COMPLAINT_POLICY")
        self.estates = {
            estate_id: _load_policy(values or {}, f"ESTATE_POLICIES.{estate_id}")
            for estate_id, values in (estates or {}).items()
        }
        self.overrides = {}
        for index, table in enumerate(holiday_tables):
            self.overrides.update(holiday_overrides(table, f"HOLIDAY_TABLES.{index}"))
        self._calendars = {}
        self._policies = {}
        for estate_id in (None, *self.estates):   # every policy is checked now, not later
            self.for_estate(estate_id)

    @classmethod
    def from_config(cls, config, holiday_tables=()):
        return cls(config.get("COMPLAINT_POLICY"), config.get("ESTATE_POLICIES"), holiday_tables)

    def for_estate(self, estate_id):
        if estate_id not in self._policies:
            values = dict(self.group)
            estate = self.estates.get(estate_id, {})
            routing = {**values.get("routing", {}), **estate.get("routing", {})}
            values.update(estate, routing=MappingProxyType({**DEFAULT_ROUTING, **routing}))
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
            self._policies[estate_id] = replace(policy, calendar=self.calendar(policy.timezone))
        return self._policies[estate_id]

    def calendar(self, timezone_name):
        if timezone_name not in self._calendars:
            self._calendars[timezone_name] = WorkingCalendar(timezone_name, self.overrides)
        return self._calendars[timezone_name]


def _load_policy(values, where):
    try:
        return load(schemas.ComplaintPolicyConfig(), values)
    except InvalidInput as exc:
        raise InvalidInput({where: exc.errors}) from None


def holiday_overrides(table, where="holiday table"):
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
