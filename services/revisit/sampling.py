"""Which completed work orders are revisited, decided online. Pure Python.

「零修回访工作应及时进行,一般为维修工作结束的当日或次日进行,不得将零修回访集中在月底进行」:
a repair is revisited the day it is finished or the next, so whether an order is
sampled is decided when it completes, not at month end. The month's quota
(``policy.quota``) depends on the month's volume, which is not known yet: it is
forecast from recent months and this month's pace, and each order is drawn with
probability (quota still to meet) / (orders still expected) — sequential sampling
(Knuth's algorithm S), which meets the quota exactly when the forecast is right and
gives every order the same chance. Draws are hashed from the estate, month, kind
and order id with the policy's seed: fair, and the same on every replay.
``top_up`` at month end covers what a wrong forecast left short.
"""
import hashlib
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache

from services.revisit.policies import SAMPLED_KINDS, RevisitPolicy, local_midnight, zone
from shared.schemas.vocabulary import WORK_ORDER_KINDS

ORDER_FIELDS = ("work_order_id", "kind", "household_id", "important", "completed_at",
                "contract_start", "contract_end")


@dataclass(frozen=True)
class MonthSoFar:
    """What was decided earlier in the order's month, for its estate and kind."""

    orders: int            # orders in the sampling population already decided
    selected: int          # of those, selected for a revisit
    history: tuple = ()    # population of each earlier month, oldest first


@dataclass(frozen=True)
class Decision:
    selected: bool
    reason: str            # important, all, sampled, not_sampled, no_household
    in_population: bool
    probability: float = 1.0
    forecast: float | None = None   # the month's expected volume
    target: float | None = None     # the revisits it aims at (``sample_goal``)


def month_of(moment: datetime, zone_name: str) -> str:
    return moment.astimezone(zone(zone_name)).strftime("%Y-%m")


def month_bounds(month: str, zone_name: str) -> tuple[datetime, datetime]:
    """Start and end (UTC) of a ``YYYY-MM`` month in local time."""
    year, number = (int(part) for part in month.split("-"))
    following = date(year + number // 12, number % 12 + 1, 1)
    return local_midnight(date(year, number, 1), zone_name), local_midnight(following, zone_name)


def previous_months(month: str, count: int) -> list[str]:
    """The ``count`` months before ``month``, oldest first."""
    year, number = (int(part) for part in month.split("-"))
    months = []
    for _ in range(count):
        year, number = (year, number - 1) if number > 1 else (year - 1, 12)
        months.append(f"{year:04d}-{number:02d}")
    return months[::-1]


def elapsed_share(moment: datetime, month: str, zone_name: str) -> float:
    """How much of the month has passed at ``moment`` (at least one day's worth)."""
    start, end = month_bounds(month, zone_name)
    length = end - start
    return min(max(moment - start, timedelta(days=1)) / length, 1.0)


def forecast_volume(seen: int, history: Iterable[int], elapsed: float) -> float:
    """The month's expected population (not rounded): this month's orders so far plus
    what recent months (else this month's pace) bring in the rest of the month.

    ``seen`` counts the orders so far, this one included; ``history`` leading months
    without orders (before the estate used Huifang) are ignored.
    """
    history = list(history)
    while history and history[0] == 0:
        history.pop(0)
    pace = seen / elapsed
    expected = pace
    if history:
        expected = sum(history) / len(history) * (1 - elapsed) + pace * elapsed
    return max(float(seen), expected)


def sample_goal(policy: RevisitPolicy, kind: str, seen: int, forecast: float) -> float:
    """How many of the month's orders to aim at while its volume is still a forecast.

    The table has steps (50 orders need 15 revisits, 51 only 8; 100 need 15, 101 need 20).
    A month that ends short of the forecast brings no more orders to catch up with, so
    the goal covers the largest quota from the forecast's low end up to it. A month that
    runs over it brings the orders to catch up with, so a larger quota there counts only
    as much as it is likely: sized for it outright, a steady month of 100 took 20 for 15.
    """
    spread = policy.forecast_spread * math.sqrt(forecast - seen)
    likely = max(seen, math.floor(forecast))
    low = max(seen, math.floor(forecast - spread))
    return max(most_required(policy, kind, low, likely),
               expected_required(policy, kind, seen, round(forecast, 1)))


@lru_cache(maxsize=65536)
def quota(policy: RevisitPolicy, kind: str, volume: int) -> int:
    """``policy.quota``, remembered: the goal asks it for many volumes, again and again."""
    return policy.quota(kind, volume)


@lru_cache(maxsize=256)
def quota_of(policy: RevisitPolicy) -> Callable[[str, int], int]:
    """``quota`` bound to ``policy``, remembered per kind and volume where it is bound: the
    statistics ask it of 3,000 estates' months at once (each ask of ``quota`` hashes the
    whole policy; here it is hashed once an estate)."""
    remembered: dict[tuple[str, int], int] = {}

    def of_volume(kind: str, volume: int) -> int:
        if (kind, volume) not in remembered:
            remembered[kind, volume] = quota(policy, kind, volume)
        return remembered[kind, volume]
    return of_volume


def most_required(policy: RevisitPolicy, kind: str, low: int, high: int) -> int:
    """The largest quota for any volume from ``low`` to ``high``."""
    return max(quota(policy, kind, volume) for volume in range(low, high + 1))


@lru_cache(maxsize=65536)
def expected_required(policy: RevisitPolicy, kind: str, seen: int, forecast: float) -> float:
    """The quota averaged over the volumes the month may end at: from ``seen`` on, about
    ``forecast``, uncertain by ``forecast_spread`` × √(orders still expected)."""
    spread = policy.forecast_spread * math.sqrt(forecast - seen)
    if spread == 0:
        return float(quota(policy, kind, max(seen, math.floor(forecast))))

    def below(volume: int) -> float:      # the chance the month ends under ``volume`` (normal, binned)
        return 0.5 * (1 + math.erf((volume - 0.5 - forecast) / (spread * math.sqrt(2))))

    # Beyond 4 spreads the chance is below 1 in 30,000: the end bins take those tails.
    first = max(seen, math.floor(forecast - 4 * spread))
    last = math.ceil(forecast + 4 * spread)
    bounds = [0.0, *(below(volume) for volume in range(first + 1, last + 1)), 1.0]
    return sum(quota(policy, kind, volume) * (bounds[i + 1] - bounds[i])
               for i, volume in enumerate(range(first, last + 1)))


def draw(policy: RevisitPolicy, estate_id: str, kind: str, month: str, order_id: str) -> float:
    """A uniform number in [0, 1) fixed by the seed, estate, month, kind and order."""
    key = f"{policy.sampling_seed}|{estate_id}|{month}|{kind}|{order_id}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2.0**64


def decide(order: dict, estate_id: str, so_far: MonthSoFar, policy: RevisitPolicy) -> Decision:
    """Whether a just-completed work order (``WorkOrderCompleted`` payload) is revisited."""
    kind = order["kind"]
    in_population = policy.in_population(order)
    if kind not in SAMPLED_KINDS:
        return Decision(True, "all", True)   # every one is revisited: all are the population
    if order.get("important"):
        # 「对重要服务做针对性回访」: always, whatever the sample.
        return Decision(True, "important", in_population)
    if not in_population:
        return Decision(False, "no_household", False, 0.0)
    month = month_of(order["completed_at"], policy.timezone)
    seen = so_far.orders + 1
    forecast = forecast_volume(
        seen, so_far.history, elapsed_share(order["completed_at"], month, policy.timezone))
    goal = sample_goal(policy, kind, seen, forecast)
    expected_left = max(forecast - so_far.orders, 1)      # this order and those to come
    probability = min(max((goal - so_far.selected) / expected_left, 0.0), 1.0)
    selected = draw(policy, estate_id, kind, month, order["work_order_id"]) < probability
    return Decision(selected, "sampled" if selected else "not_sampled", True,
                    round(probability, 6), round(forecast, 1), round(goal, 2))


def top_up(candidates: Iterable[str], shortfall: int, policy: RevisitPolicy, estate_id: str,
           kind: str, month: str) -> list[str]:
    """The ``shortfall`` orders (ids) of ``candidates`` to add at month end: ranked by
    their seeded draw, so the choice is fair and the same on every run."""
    if shortfall <= 0:
        return []
    ranked = sorted(candidates, key=lambda order_id: draw(policy, estate_id, kind, month, order_id))
    return ranked[:shortfall]


def close_month(orders: Iterable[dict], estate_id: str, month: str, policy: RevisitPolicy,
                ) -> tuple[list[str], dict[str, dict]]:
    """The month's top-ups and its report per work-order kind, from its decided orders.

    Returns (ids of the orders to add, {kind: {orders, required, sampled, ...}}).
    """
    chosen, report = [], {}
    for kind in WORK_ORDER_KINDS:
        of_kind = [order for order in orders if order["kind"] == kind]
        population = [order for order in of_kind if order["in_population"]]
        selected = sum(1 for order in population if order["selected"])
        required = min(policy.quota(kind, len(population)), len(population))
        added = top_up([order["_id"] for order in population if not order["selected"]],
                       required - selected, policy, estate_id, kind, month)
        chosen += added
        top_ups = sum(1 for order in population if order.get("reason") == "top_up") + len(added)
        report[kind] = {
            "orders": len(population),
            "required": required,
            "sampled": selected + len(added),
            "online": selected + len(added) - top_ups,
            "top_up": top_ups,
            "important": sum(1 for order in of_kind if order.get("reason") == "important"),
            "without_household": len(of_kind) - len(population),
        }
    return chosen, report


def decided_work_order(order: dict, estate_id: str, month: str, decision: Decision,
                       now: datetime) -> dict:
    """What is kept of a completed work order: enough to count its month and revisit it."""
    return {
        "_id": order["work_order_id"],
        "estate_id": estate_id,
        "month": month,
        **{key: order.get(key) for key in ORDER_FIELDS if key != "work_order_id"},
        "in_population": decision.in_population,
        "selected": decision.selected,
        "reason": decision.reason,
        "probability": decision.probability,
        "forecast": decision.forecast,
        "target": decision.target,
        "decided_at": now,
    }


def order_payload(record: dict) -> dict:
    """The ``work_order_completed`` payload back from a stored decision."""
    return {key: record["_id"] if key == "work_order_id" else record.get(key)
            for key in ORDER_FIELDS}


def is_month_over(month: str, now: datetime, zone_name: str) -> bool:
    return month_bounds(month, zone_name)[1] <= now
