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
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from functools import cache
from importlib.metadata import entry_points
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.clock import to_millis
from shared.departments import FOLLOWUP_DEPARTMENTS, configured_departments
from shared.quiet_hours import normalize as normalize_quiet_hours
from shared.schemas.vocabulary import REVISIT_KINDS, ROLES, SEVERITIES

GROUP = "huifang.revisit_policies"
DEFAULT = "default"
# Work-order kinds revisited by sample; community activities and other services are all revisited.
SAMPLED_KINDS = ("repair", "special_service", "assistance")
# Who may visit a key customer (重点客户): 客服负责人 (supervisor) or 项目经理 (manager).
KEY_CUSTOMER_ROLES = ("supervisor", "manager")
# FOLLOWUP_DEPARTMENTS (shared/departments.py, where intake reads them too): the department
# an unsatisfied revisit of each kind is followed up by (complaints are intake's: reopened,
# not followed up here). Names as intake's routing names them (checked at start-up:
# ``PolicyBook``; an estate record routing one away is refused by intake); a policy lists
# only the kinds it changes.


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
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def end_of_local_day(moment: datetime, zone_name: str, days_after: int = 0) -> datetime:
    """Midnight (UTC) ending the local day ``days_after`` days after ``moment``'s."""
    day = moment.astimezone(zone(zone_name)).date() + timedelta(days=days_after + 1)
    return local_midnight(day, zone_name)


def local_midnight(day: date, zone_name: str) -> datetime:
    return datetime.combine(day, time(), zone(zone_name)).astimezone(UTC)


def volume_table_quota(orders: int) -> int:
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


def share_of(orders: int, share: Fraction | float | str) -> int:
    """``share`` of ``orders``, rounded up, without float error (30 % of 10 is 3, not 4)."""
    return math.ceil(orders * Fraction(share))


@dataclass(frozen=True)
class RevisitPolicy:
    """The default policy: the group's rules, each beside the text it comes from."""

    # The zone visits are due and booked in until the estate's record gives its own.
    timezone: str = "Asia/Shanghai"
    # 「投诉事件应在处理完毕后三天内进行回访」 (another text: 「三至五日内」)
    complaint_revisit_days: int = 3
    # 「客服组负责人或项目经理对重大投诉进行回访,一般采取上门回访方式」
    major_complaint_role: str = "supervisor"
    # 「一般客户的回访由客服助理负责,重点客户的回访由客服负责人或项目经理负责」: every visit
    # of a key customer (重点客户) goes to this rung (supervisor or manager), never to staff.
    key_customer_role: str = "supervisor"
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
    # 「物业服务中心应将业主的意见和建议进行分类整理,并于一个月内向业主反馈」: an unsatisfied
    # or unresolved revisit's follow-up is answered to the owner within this many days.
    followup_answer_days: int = 30
    # kind -> department, over ``FOLLOWUP_DEPARTMENTS``, each one the estate's complaint
    # routing names (checked at start-up); kept as sorted (kind, department) pairs, so the
    # policy stays hashable (sampling remembers quotas per policy)
    followup_departments: tuple = ()

    def __post_init__(self) -> None:
        given: Any = self.followup_departments   # a tuple of pairs, or a dict from config
        given = dict(given.items() if isinstance(given, dict) else given or ())
        unknown_kinds = sorted(set(given) - set(FOLLOWUP_DEPARTMENTS))
        object.__setattr__(self, "followup_departments",
                           tuple(sorted({**FOLLOWUP_DEPARTMENTS, **given}.items())))
        for name in ("quiet_hours", "online_kinds", "online_complaint_severities"):
            value = getattr(self, name) or ()
            # config may give one value bare: "complaint", not a list of its letters
            object.__setattr__(self, name, (value,) if isinstance(value, str) else tuple(value))
        problems: dict[str, str] = {}
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
        if self.key_customer_role not in KEY_CUSTOMER_ROLES:
            problems["key_customer_role"] = f"must be one of {', '.join(KEY_CUSTOMER_ROLES)}"
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
        if unknown_kinds:
            problems["followup_departments"] = (
                f"unknown {', '.join(map(str, unknown_kinds))}; "
                f"known: {', '.join(FOLLOWUP_DEPARTMENTS)}")
        elif not all(isinstance(name, str) and name.strip()
                     for _, name in self.followup_departments):
            problems["followup_departments"] = "each department must be a name"
        if problems:
            raise PolicyError("; ".join(f"{key}: {why}" for key, why in problems.items()))

    # -- sampling ---------------------------------------------------------------------

    def quota(self, kind: str, orders: int) -> int:
        """How many of a month's ``orders`` of ``kind`` must be revisited."""
        if kind in SAMPLED_KINDS:
            return volume_table_quota(orders)
        return orders

    def in_population(self, order: dict) -> bool:
        """Whether an order counts toward its month's volume: a revisit asks an owner, so
        orders without a household (common areas) are not sampled."""
        return order.get("household_id") is not None

    # -- timing -----------------------------------------------------------------------

    def complaint_visit(self, closed: dict) -> Visit:
        """A major complaint's visit goes to ``major_complaint_role``, on site; so does the
        call after a closing the owner signed off ``unsatisfied``: the staff member who
        closed it does not ask again how it went, a supervisor does."""
        major = closed["severity"] == "major"
        unsatisfied = closed.get("owner_signoff") == "unsatisfied"
        return Visit(
            "complaint", closed["closed_at"],
            closed["closed_at"] + timedelta(days=self.complaint_revisit_days),
            self.major_complaint_role if major or unsatisfied else "staff",
            "onsite" if major else "phone",
        )

    def work_order_visits(self, order: dict, decided_at: datetime | None = None,
                          ) -> list[Visit]:
        """The visits a selected work order gets (a ``WorkOrderCompleted`` payload).

        Counted from completion; a visit decided later (a month-end top-up) from
        ``decided_at``.
        """
        done = order["completed_at"]
        start = max(done, decided_at or done)
        kind = order["kind"]
        if kind == "repair" and order.get("important"):
            first = self.observation(1, start)
            assert first is not None    # the first observation is always due
            return [first]
        if kind == "repair":
            due = end_of_local_day(start, self.timezone, self.repair_revisit_days)
            return [Visit("after_repair", start, due, "staff", "phone")]
        if kind == "special_service" and (contract := _contract(order)):
            contract_start, contract_end = contract
            middle = to_millis(contract_start + (contract_end - contract_start) / 2)
            window = timedelta(days=self.special_service_window_days)
            visits: list[Visit] = []
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

    def observation(self, number: int, after: datetime) -> Visit | None:
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

    def routine_visit(self, year: int, month: int) -> Visit:
        """「例行回访应根据制订的回访计划进行实施,以达到年回访率100%的目标」: one a year
        per occupied household, in its planned month, by phone (or on site when booked)."""
        first = local_midnight(date(year, month, 1), self.timezone)
        following = date(year + month // 12, month % 12 + 1, 1)
        return Visit("routine", first, local_midnight(following, self.timezone), "staff", "phone")

    def for_household(self, visit: Visit, key_customer: bool) -> Visit:
        """``visit`` as a key customer gets it: a visit meant for staff goes to
        ``key_customer_role`` (one meant for a supervisor or manager stays theirs)."""
        if key_customer and visit.assigned_role == "staff":
            return visit._replace(assigned_role=self.key_customer_role)
        return visit

    def retry_gap(self) -> timedelta:
        return timedelta(hours=self.retry_after_hours)

    # -- answered online ----------------------------------------------------------------

    def answerable_online(self, revisit: dict) -> bool:
        """May the owner answer ``revisit`` through a link? Only someone at home can, and
        never a visit made on site."""
        if revisit.get("household_id") is None or revisit["method"] == "onsite":
            return False
        if revisit["kind"] not in self.online_kinds:
            return False
        return (revisit["kind"] != "complaint"
                or revisit.get("severity") in self.online_complaint_severities)

    def online_until(self, revisit: dict) -> datetime:
        """When the link of ``revisit`` stops taking answers."""
        return revisit["due_at"] + timedelta(days=self.online_grace_days)

    # -- follow-ups of unsatisfied revisits ----------------------------------------------

    def followup_department(self, kind: str) -> str:
        """The department that follows up an unsatisfied revisit of ``kind``."""
        return dict(self.followup_departments)[kind]

    def followup_answer_due(self, opened_at: datetime) -> datetime:
        return opened_at + timedelta(days=self.followup_answer_days)


@dataclass(frozen=True)
class InHomeRepairShare(RevisitPolicy):
    """「每月零修回访率应达到入户零维修量的30%以上」: at least this share of the month's
    in-home repairs (with a household) instead of the volume table; other kinds as default."""

    repair_share: float = 0.3

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0 < Fraction(str(self.repair_share)) <= 1:
            raise PolicyError("repair_share: must be more than 0 and at most 1")

    def quota(self, kind: str, orders: int) -> int:
        if kind == "repair":
            return share_of(orders, Fraction(str(self.repair_share)))
        return super().quota(kind, orders)


def _contract(order: dict) -> tuple[datetime, datetime] | None:
    start, end = order.get("contract_start"), order.get("contract_end")
    if start is None or end is None or end <= start:
        return None
    return start, end


# -- choosing policies ---------------------------------------------------------------

_classes: dict[str, type[RevisitPolicy]] = {}


def policy_class(name: str) -> type[RevisitPolicy]:
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


def build_policy(name: str, values: Mapping[str, Any], inherited: Mapping[str, Any] | None = None,
                 where: str = "REVISIT_POLICY") -> RevisitPolicy:
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

    def __init__(self, config: Mapping[str, Any]) -> None:
        base = dict(config.get("REVISIT_POLICY") or {})
        self.default_name: str = base.pop("policy", DEFAULT)
        self.default = build_policy(self.default_name, base)
        self.names: dict[str, str] = {}
        self.estates: dict[str, RevisitPolicy] = {}
        for estate_id, values in (config.get("REVISIT_ESTATE_POLICIES") or {}).items():
            values = dict(values or {})
            name = values.pop("policy", self.default_name)
            self.names[estate_id] = name
            self.estates[estate_id] = build_policy(
                name, values, inherited=base, where=f"REVISIT_ESTATE_POLICIES.{estate_id}")
        self._check_followup_departments(config)

    def _check_followup_departments(self, config: Mapping[str, Any]) -> None:
        """Each follow-up goes to a department intake's complaint routing names for its
        estate (shared/departments.py), or no department account could be given it.
        Checked here, from the config every service reads, when the service starts: an
        event handler opening a follow-up must not wait on intake, nor refuse an owner's
        answer. Every estate with a policy of its own (either kind) is checked, the rest
        are the group's."""
        estates = sorted(set(self.estates) | set(config.get("ESTATE_POLICIES") or {}))
        for estate_id in (None, *estates):
            policy = self.default if estate_id is None else self.for_estate(estate_id)
            known = configured_departments(config, estate_id)
            wrong = {kind: name for kind, name in policy.followup_departments
                     if name not in known}
            if wrong:
                where = f"REVISIT_ESTATE_POLICIES.{estate_id}" if estate_id in self.estates \
                    else "REVISIT_POLICY"
                routed = "the group's" if estate_id is None else f"estate {estate_id}'s"
                raise PolicyError(
                    f"{where}: followup_departments: "
                    f"{', '.join(f'{kind}: {name}' for kind, name in wrong.items())} - not a "
                    f"department {routed} complaint routing names (COMPLAINT_POLICY / "
                    f"ESTATE_POLICIES routing); one of {', '.join(known)}")

    def for_estate(self, estate_id: str) -> RevisitPolicy:
        return self.estates.get(estate_id, self.default)

    def configured_policy(self, estate_id: str) -> RevisitPolicy:
        """The estate's policy as configured, its record's zone not applied (the workers'
        ``ZonedPolicies`` hands this on as it is): for what no zone changes, the sampling
        quota, without reading the estate's copy."""
        return self.for_estate(estate_id)

    def name_for(self, estate_id: str) -> str:
        return self.names.get(estate_id, self.default_name)

    def describe(self, estate_id: str) -> dict:
        policy = self.for_estate(estate_id)
        return {"estate_id": estate_id, "policy": self.name_for(estate_id),
                "class": f"{type(policy).__module__}:{type(policy).__qualname__}",
                "values": {item.name: getattr(policy, item.name) for item in fields(policy)}}
