"""Revisit policies are plug-ins: when each follow-up is due, who goes, and how many
work orders of a month must be revisited. Pure Python.

A policy is a class deriving from ``RevisitPolicy``, named in the entry-point group
``huifang.revisit_policies``. Config chooses one per estate::

    REVISIT_POLICY: {policy: default, complaint_revisit_days: 3}      # every estate
    REVISIT_ESTATE_POLICIES: {estate-9: {policy: in_home_repairs_30}}   # per estate

A group installs its own policy with pip (its package declares the class under that
group) and names it in config; no core file changes. Two ship here: ``default``
(the group's rules) and ``in_home_repairs_30`` (the "30 % of in-home repairs" text).
"""
import math
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from functools import cache
from importlib.metadata import entry_points
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.clock import to_millis
from shared.quiet_hours import normalize as normalize_quiet_hours
from shared.schemas.vocabulary import REVISIT_KINDS, ROLES, SEVERITIES

GROUP = "huifang.revisit_policies"
DEFAULT = "default"
# Work-order kinds revisited by sample; community activities and other services are all revisited.
SAMPLED_KINDS = ("repair", "special_service", "assistance")


class PolicyError(Exception):
    """A policy that is not installed, or values it does not accept (a configuration error)."""


class Visit(NamedTuple):
    """One follow-up a policy asks for: when, by whom, how."""

    stage: str            # complaint, after_repair, observation, mid_contract, contract_end, ...
    not_before: datetime  # when the visit may be made (and announced)
    due_at: datetime
    assigned_role: str
    method: str


@cache
def zone(name):
    return ZoneInfo(name)


def end_of_local_day(moment, zone_name, days_after=0):
    """Midnight (UTC) ending the local day ``days_after`` days after ``moment``'s."""
    day = moment.astimezone(zone(zone_name)).date() + timedelta(days=days_after + 1)
    return local_midnight(day, zone_name)


def local_midnight(day, zone_name):
    return datetime.combine(day, time(), zone(zone_name)).astimezone(UTC)


def volume_table_quota(orders):
    """Work orders of a kind to revisit in a month of ``orders``; fractions round up.

    「派工单在20张以上的,按固定值5张回访」 (sic: read as under 20, or all if fewer)
    「派工单在20-50张之间的,抽取派工单总量的30%进行回访」
    「派工单在50-100张之间的,抽取派工单总量的15%进行回访」
    「派工单在100张以上的,均按固定值20张回访」
    """
    if orders < 20:
        return min(orders, 5)
    if orders <= 50:
        return share_of(orders, Fraction(30, 100))
    if orders <= 100:
        return share_of(orders, Fraction(15, 100))
    return 20


def share_of(orders, share):
    """``share`` of ``orders``, rounded up, without float error (30 % of 10 is 3, not 4)."""
    return math.ceil(orders * Fraction(share))


@dataclass(frozen=True)
class RevisitPolicy:
    """The default policy: the group's rules, each beside the text it comes from."""

    timezone: str = "Asia/Shanghai"
    # 「投诉事件应在处理完毕后三天内进行回访」 (another text: 「三至五日内」)
    complaint_revisit_days: int = 3
    # 「客服组负责人或项目经理对重大投诉进行回访,一般采取上门回访方式」
    major_complaint_role: str = "supervisor"
    # Not reached: tried again at other times or on other channels before counting as
    # unreachable; a try within ``retry_after_hours`` of the last on the same channel is
    # not a new try.
    max_attempts: int = 3
    retry_after_hours: float = 2
    # 「一般为维修工作结束的当日或次日进行,不得将零修回访集中在月底进行」: by the end of the next day.
    repair_revisit_days: int = 1
    # 「特约服务应在合同中期阶段及结束后各进行一次回访」: each within this many days.
    special_service_window_days: int = 7
    # 「社区文化应在组织完后一个月内进行回访」
    community_activity_revisit_days: int = 30
    # 「其他服务工作在完成一周内进行回访」 (assistance is such a service)
    other_service_revisit_days: int = 7
    assistance_revisit_days: int = 7
    # 「如屋面漏水、墙外开裂等维修后,应随时观察效果,专人定期仔细检查,并作专项记录」
    important_observation_days: int = 7
    important_max_observations: int = 6
    # Online sampling: the month's volume is forecast from this many past months, uncertain
    # by ``forecast_spread`` × √(orders still expected) (``sampling.sample_goal``).
    # The seed makes the draws reproducible.
    forecast_months: int = 3
    forecast_spread: float = 0.5
    sampling_seed: str = "huifang"
    # 「采取上门回访的应提前与业主进行预约,获得同意后方可上门,并不能影响业主的正常生活」:
    # local hours no visit is booked in, unless the owner gives their own. Wider than
    # notify's 22:00-08:00 on purpose: a knock at the door, unlike a text that waits to be
    # read, also disturbs the midday rest (午休) and the late evening.
    quiet_hours: tuple = ("12:00-14:00", "21:00-08:00")
    # An on-site visit is recorded when it is made: from this many minutes before the
    # booked time (the visitor may arrive a little early), never a day ahead.
    onsite_early_minutes: int = 30
    # 「回访可以通过电话、邮件、短信、在线调查等方式进行」: the owner may answer a revisit of
    # these kinds online, through a link in its message (empty: never), while staff still
    # call if no answer comes. Never an on-site visit: 「客服组负责人或项目经理对重大投诉进行
    # 回访,一般采取上门回访方式」 (nor the observation of an important repair); complaints
    # only of these severities (an emergency gets a call).
    online_kinds: tuple = REVISIT_KINDS
    online_complaint_severities: tuple = ("normal",)
    # The link takes an answer until this many days after the visit was due (a late answer
    # still counts), unless staff made the visit or it was cancelled first.
    online_grace_days: int = 7

    def __post_init__(self):
        for name in ("quiet_hours", "online_kinds", "online_complaint_severities"):
            value = getattr(self, name) or ()
            # config may give one value bare: "complaint", not a list of its letters
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        problems = {}
        try:
            zone(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems["timezone"] = f"unknown time zone {self.timezone!r}"
        for item in fields(self):
            value = getattr(self, item.name)
            counted = item.name.endswith(("_days", "_attempts", "_observations", "_months",
                                           "_minutes"))
            if counted and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
                problems[item.name] = "must be a whole number >= 0"
        if not 0 <= self.forecast_spread <= 10:
            problems["forecast_spread"] = "must be between 0 and 10"
        if self.max_attempts < 1:
            problems["max_attempts"] = "must be at least 1"
        if self.major_complaint_role not in ROLES:
            problems["major_complaint_role"] = f"must be one of {', '.join(ROLES)}"
        for name, known in (("online_kinds", REVISIT_KINDS),
                            ("online_complaint_severities", SEVERITIES)):
            unknown = [value for value in getattr(self, name) if value not in known]
            if unknown:
                problems[name] = f"unknown {', '.join(map(str, unknown))}; known: {', '.join(known)}"
        for hours in self.quiet_hours:
            try:
                normalize_quiet_hours(hours)
            except ValueError as exc:
                problems["quiet_hours"] = f"{hours!r}: {exc}"
        if problems:
            raise PolicyError("; ".join(f"{key}: {why}" for key, why in problems.items()))

    # -- sampling ---------------------------------------------------------------------

    def quota(self, kind, orders):
        """How many of a month's ``orders`` of ``kind`` must be revisited."""
        if kind in SAMPLED_KINDS:
            return volume_table_quota(orders)
        return orders

    def in_population(self, order):
        """Whether an order counts toward its month's volume: a revisit asks an owner, so
        orders without a household (common areas) are not sampled."""
        return order.get("household_id") is not None

    # -- timing -----------------------------------------------------------------------

    def complaint_visit(self, closed):
        major = closed["severity"] == "major"
        return Visit(
            "complaint", closed["closed_at"],
            closed["closed_at"] + timedelta(days=self.complaint_revisit_days),
            self.major_complaint_role if major else "staff",
            "onsite" if major else "phone",
        )

    def work_order_visits(self, order, decided_at=None):
        """The visits a selected work order gets (a ``WorkOrderCompleted`` payload).

        Counted from completion; a visit decided later (a month-end top-up) from
        ``decided_at``.
        """
        done = order["completed_at"]
        start = max(done, decided_at or done)
        kind = order["kind"]
        if kind == "repair" and order.get("important"):
            return [self.observation(1, start)]
        if kind == "repair":
            due = end_of_local_day(start, self.timezone, self.repair_revisit_days)
            return [Visit("after_repair", start, due, "staff", "phone")]
        if kind == "special_service" and _contract(order):
            contract_start, contract_end = _contract(order)
            middle = to_millis(contract_start + (contract_end - contract_start) / 2)
            window = timedelta(days=self.special_service_window_days)
            visits = []
            if middle >= start:   # completed after mid-contract: that moment has passed
                visits.append(Visit("mid_contract", middle, middle + window, "staff", "phone"))
            end = max(contract_end, start)
            return visits + [Visit("contract_end", end, end + window, "staff", "phone")]
        days = {
            "special_service": self.special_service_window_days,
            "assistance": self.assistance_revisit_days,
            "community_activity": self.community_activity_revisit_days,
            "other_service": self.other_service_revisit_days,
        }[kind]
        return [Visit("after_service", start, start + timedelta(days=days), "staff", "phone")]

    def observation(self, number, after):
        """Observation ``number`` of an important repair, on site, from ``after``."""
        if number > self.important_max_observations:
            return None
        if number == 1:
            return Visit("observation", after,
                         end_of_local_day(after, self.timezone, self.repair_revisit_days),
                         "staff", "onsite")
        not_before = after + timedelta(days=self.important_observation_days)
        return Visit("observation", not_before,
                     end_of_local_day(not_before, self.timezone, self.repair_revisit_days),
                     "staff", "onsite")

    def routine_visit(self, year, month):
        """「例行回访应根据制订的回访计划进行实施,以达到年回访率100%的目标」: one a year
        per occupied household, in its planned month, by phone (or on site when booked)."""
        first = local_midnight(date(year, month, 1), self.timezone)
        following = date(year + month // 12, month % 12 + 1, 1)
        return Visit("routine", first, local_midnight(following, self.timezone), "staff", "phone")

    def retry_gap(self):
        return timedelta(hours=self.retry_after_hours)

    # -- answered online ----------------------------------------------------------------

    def answerable_online(self, revisit):
        """May the owner answer ``revisit`` through a link? Only someone at home can, and
        never a visit made on site."""
        if revisit.get("household_id") is None or revisit["method"] == "onsite":
            return False
        if revisit["kind"] not in self.online_kinds:
            return False
        return (revisit["kind"] != "complaint"
                or revisit.get("severity") in self.online_complaint_severities)

    def online_until(self, revisit):
        """When the link of ``revisit`` stops taking answers."""
        return revisit["due_at"] + timedelta(days=self.online_grace_days)


@dataclass(frozen=True)
class InHomeRepairShare(RevisitPolicy):
    """「每月零修回访率应达到入户零维修量的30%以上」: at least this share of the month's
    in-home repairs (with a household) instead of the volume table; other kinds as default."""

    repair_share: float = 0.3

    def __post_init__(self):
        super().__post_init__()
        if not 0 < Fraction(str(self.repair_share)) <= 1:
            raise PolicyError("repair_share: must be more than 0 and at most 1")

    def quota(self, kind, orders):
        if kind == "repair":
            return share_of(orders, Fraction(str(self.repair_share)))
        return super().quota(kind, orders)


def _contract(order):
    start, end = order.get("contract_start"), order.get("contract_end")
    if start is None or end is None or end <= start:
        return None
    return start, end


# -- choosing policies ---------------------------------------------------------------

_classes = {}


def policy_class(name):
    """The installed policy class ``name``; entry points are scanned again for a new name,
    so a plug-in installed while the process runs is found too."""
    if name not in _classes:
        installed = {entry.name: entry for entry in entry_points(group=GROUP)}
        if name not in installed:
            raise PolicyError(
                f"unknown revisit policy {name!r}; installed in entry-point group {GROUP}: "
                f"{', '.join(sorted(installed)) or 'none'}")
        found = installed[name].load()
        if not (isinstance(found, type) and issubclass(found, RevisitPolicy)):
            raise PolicyError(f"revisit policy {name!r} is not a {RevisitPolicy.__qualname__}")
        _classes[name] = found
    return _classes[name]


def build_policy(name, values, inherited=None, where="REVISIT_POLICY"):
    """Policy ``name`` with ``values``; ``inherited`` values apply where the class has them."""
    policy_cls = policy_class(name)
    accepted = {item.name for item in fields(policy_cls)}
    unknown = sorted(set(values) - accepted)
    if unknown:
        raise PolicyError(f"{where}: policy {name!r} has no setting {', '.join(unknown)}")
    merged = {key: value for key, value in (inherited or {}).items() if key in accepted}
    merged.update(values)
    try:
        return policy_cls(**merged)
    except PolicyError as exc:
        raise PolicyError(f"{where}: {exc}") from None


class PolicyBook:
    """Which policy each estate follows, built once from config (errors stop the start)."""

    def __init__(self, config):
        base = dict(config.get("REVISIT_POLICY") or {})
        self.default_name = base.pop("policy", DEFAULT)
        self.default = build_policy(self.default_name, base)
        self.names, self.estates = {}, {}
        for estate_id, values in (config.get("REVISIT_ESTATE_POLICIES") or {}).items():
            values = dict(values or {})
            name = values.pop("policy", self.default_name)
            self.names[estate_id] = name
            self.estates[estate_id] = build_policy(
                name, values, inherited=base, where=f"REVISIT_ESTATE_POLICIES.{estate_id}")

    def for_estate(self, estate_id):
        return self.estates.get(estate_id, self.default)

    def name_for(self, estate_id):
        return self.names.get(estate_id, self.default_name)

    def describe(self, estate_id):
        policy = self.for_estate(estate_id)
        return {"estate_id": estate_id, "policy": self.name_for(estate_id),
                "class": f"{type(policy).__module__}:{type(policy).__qualname__}",
                "values": {item.name: getattr(policy, item.name) for item in fields(policy)}}
