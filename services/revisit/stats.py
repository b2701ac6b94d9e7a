"""Revisit statistics per estate and period, and across estates. Pure Python.

Each kind's revisit rate is measured against what it requires: complaints all
(「投诉时间的回访率要求达到100%」), sampled work orders the month's quota
(「维修服务,特约服务和求助服务的回访率要求分别为」 the volume table, or the estate's policy),
routine visits every occupied household a year (「以达到年回访率100%的目标」). A revisit belongs to the period its source fell in (the
closing, the completion, the planned month); cancelled ones (a complaint reopened
before its visit) are not owed.

The figures come from counters kept per estate × month (the repository's
``revisit_counters``): each revisit and decided work order adds its ``contribution``,
the repository applies the difference a change makes to it. What depends on the
moment of asking — a visit overdue now, a promised reply overdue now — is counted from
the due times the counters keep of the visits still open (``open_until``) and the
promised times of the replies still owed (``awaited_reply``): open work, not history. Follow-ups of unsatisfied revisits (``followups``) count in their revisit's month:
opened, answered, answered on time, and overdue now as promised replies are.
``recount`` gives the same counters from the raw documents
(the ``check`` command compares them); ``revisit_stats`` measures raw documents.

The group's total (``group_figures``) is one counter document a month summed over the
estates in the same write (``shared.counters.GROUP``). Its sampled kinds' ``required``
cannot be a sum of populations: an estate's quota is a step function of its own month's
volume, under its own policy. So the total's ``required`` is what each estate-month's
closing fixed (``closing_contribution``: ``close_sampling_month`` or the timer that closes
a month once it is over, with the policy in force then; a later closing replaces it),
and ``awaiting_closing`` says how many of the total's orders no closing has seen yet
(a month not over, or over and not closed yet): for a period of closed months the total
equals the estates' rows added up, for the current month it says what is not fixed yet.
An estate's own figures measure its months against the quota of their orders so far.
A group of estates by company or region (``figures_by_group``) is measured as a row is:
its estates' rows added up.
"""
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, TypeVar

from shared import rates
from shared.counts import difference, flat, nested  # noqa: F401 (the counters' arithmetic)
from shared.estate_groups import group_label, group_of
from shared.schemas.vocabulary import REVISIT_KINDS, UNSATISFIED_LEVELS, WORK_ORDER_KINDS

SATISFIED_LEVELS = ("very_satisfied", "satisfied")
OPEN = ("scheduled", "booked", "overdue")
# kinds measured against what they require, not against a sample: all are owed
OWED_IN_FULL = ("routine", "complaint")
# done visits per work order (each estate-month's counters): how ``revisited`` counts once
DONE_SOURCES = "done_sources"
# open visits by kind and due time (``open_until``): overdue once it has passed
DUE = "due"

Counts = dict[str, int]                     # counter path ("kinds.repair.done") -> count
Bucket = tuple[str, str | None, dict[str, Any]]   # (estate, month, its counters, nested)
QuotaFor = Callable[[str], Callable[[str, int], int]]

# the one rate (shared/rates.py), remembered: each estate's row asks it a dozen times, of
# the same small counts as the other 3,000 rows
rate = lru_cache(maxsize=65536)(rates.rate)

MaybeTime = TypeVar("MaybeTime", datetime, None)   # a time, or None given back as None
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND, MICROSECOND = timedelta(milliseconds=1), timedelta(microseconds=1)


# -- what one document adds to its estate-month ------------------------------------------

def contribution(revisit: dict) -> Counts:
    """What ``revisit`` adds to its estate-month's counters, {counter path: 1}.

    Times are compared as the store keeps them (to the millisecond), so the counters
    agree with a recount of the stored documents.
    """
    kind, status = revisit["kind"], revisit["status"]
    owed = status != "cancelled"
    done = status == "done"
    outcome = (revisit.get("outcome") or {}) if done else {}
    reached = bool(outcome.get("reached"))
    satisfaction = outcome.get("satisfaction") if reached else None
    promised, given = _ms(revisit.get("promised_reply_at")), _ms(revisit.get("reply_given_at"))
    flags = {
        f"kinds.{kind}.owed": owed,
        f"kinds.{kind}.cancelled": not owed,
        f"kinds.{kind}.done": done,
        f"kinds.{kind}.on_time": done and _on_time(revisit),
        f"kinds.{kind}.reached": reached,
        f"kinds.{kind}.rated": bool(satisfaction),
        f"kinds.{kind}.satisfied": satisfaction in SATISFIED_LEVELS,
        f"kinds.{kind}.unsatisfied": satisfaction in UNSATISFIED_LEVELS,
        "replies.promised": owed and bool(promised),
        "replies.given": owed and bool(promised) and bool(given),
        "replies.given_on_time": (owed and promised is not None and given is not None
                                  and given <= promised),
    }
    counts = {path: 1 for path, flag in flags.items() if flag}
    if status in OPEN:
        counts[open_until(revisit)] = 1
    if owed and promised and not given:
        counts[awaited_reply(revisit["_id"], promised)] = 1
    if done and kind in WORK_ORDER_KINDS:
        # a work order counts once however many of its visits were made
        counts[f"{DONE_SOURCES}.{kind}.{field_name(revisit['source_id'])}"] = 1
    return counts


def closing_contribution(closed_month: dict) -> Counts:
    """What a sampling month's last closing adds to its estate-month's counters: per
    work-order kind the ``required`` its quota fixed and the orders it saw."""
    counts: Counts = {}
    for kind, report in (closed_month.get("report") or {}).items():
        counts[f"orders.{kind}.required"] = report.get("required", 0)
        counts[f"orders.{kind}.at_closing"] = report.get("orders", 0)
    return {path: count for path, count in counts.items() if count}


def revisited_path(source_path: str) -> str:
    """``revisited.<kind>``, the work orders of the kind with a visit done, for the
    ``done_sources.<kind>.<work order>`` counter of one of them."""
    return "revisited." + source_path.split(".")[1]


def order_contribution(order: dict) -> Counts:
    """What a decided work order adds to its estate-month's counters."""
    kind = order["kind"]
    flags = {
        f"orders.{kind}.decided": True,     # the estate has figures for the period
        f"orders.{kind}.population": bool(order.get("in_population")),
        f"orders.{kind}.sampled": bool(order.get("selected") and order.get("in_population")),
        f"orders.{kind}.top_up": bool(order.get("selected") and order.get("reason") == "top_up"),
    }
    return {path: 1 for path, flag in flags.items() if flag}


def followup_contribution(followup: dict) -> Counts:
    """What a follow-up of an unsatisfied revisit adds to its estate-month's counters
    (its revisit's month): opened, answered, answered on time, and while unanswered a
    counter named by its due time, overdue once that has passed (as promised replies)."""
    due, answered = _ms(followup["answer_due_at"]), _ms(followup.get("answered_at"))
    flags = {
        "followups.opened": True,
        "followups.answered": followup["status"] == "answered",
        "followups.answered_on_time": followup["status"] == "answered" and answered <= due,
    }
    counts = {path: 1 for path, flag in flags.items() if flag}
    if followup["status"] != "answered":
        counts[awaited_followup(followup["_id"], due)] = 1
    return counts


def open_until(revisit: dict) -> str:
    """The counter of a visit still open, named by its due time: overdue once that has
    passed (as a promised reply), so what is overdue now is read from the counters."""
    due = (_ms(revisit["due_at"]) - EPOCH) // MILLISECOND
    return f"{DUE}.{revisit['kind']}.{due}_{field_name(revisit['_id'])}"


def awaited_followup(followup_id: str, due: datetime) -> str:
    """The counter of a follow-up not answered yet, named by when its answer is due."""
    return f"followups.awaiting.{(due - EPOCH) // MILLISECOND}_{field_name(followup_id)}"


def awaited_reply(revisit_id: str, promised: datetime) -> str:
    """The counter of a reply promised and not given yet, named by when it is due: it is
    overdue once that time has passed."""
    return f"awaiting.{(promised - EPOCH) // MILLISECOND}_{field_name(revisit_id)}"


def field_name(text: object) -> str:
    """``text`` as one part of a counter path (MongoDB field names take no ``.``, no
    leading ``$``)."""
    return str(text).replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def add(total: Counts, counts: Counts, sign: int = 1) -> Counts:
    for path, count in counts.items():
        total[path] = total.get(path, 0) + sign * count
    return total


# -- the recount -------------------------------------------------------------------------

def recount(revisits: Iterable[dict], orders: Iterable[dict],
            followups: Iterable[dict] = (), closings: Iterable[dict] = ()) -> dict[tuple, Counts]:
    """The counters of every estate-month from the raw documents: {(estate, month): counts}
    (revisits and follow-ups by ``stats_month``, orders and sampling months' closings by
    ``month``), zeros left out."""
    buckets: dict[tuple, Counts] = {}
    for revisit in revisits:
        add(buckets.setdefault((revisit["estate_id"], revisit.get("stats_month")), {}),
            contribution(revisit))
    for order in orders:
        add(buckets.setdefault((order["estate_id"], order["month"]), {}),
            order_contribution(order))
    for followup in followups:
        add(buckets.setdefault((followup["estate_id"], followup["stats_month"]), {}),
            followup_contribution(followup))
    for closed_month in closings:
        if closed_month.get("report"):
            add(buckets.setdefault((closed_month["estate_id"], closed_month["month"]), {}),
                closing_contribution(closed_month))
    for counts in buckets.values():
        sources = [path for path in counts if path.startswith(DONE_SOURCES + ".")]
        for path in sources:
            add(counts, {revisited_path(path): 1})
    return {key: {path: n for path, n in counts.items() if n} for key, counts in buckets.items()}


# -- figures -----------------------------------------------------------------------------
# Counters as the store keeps them: nested ({"kinds": {"repair": {"done": 3}}, ...}).

def revisit_stats(revisits: list[dict], work_orders: Iterable[dict], quota_for: QuotaFor,
                  now: datetime, followups: Iterable[dict] = ()) -> dict:
    """Statistics of raw ``revisits``, sampled ``work_orders`` and ``followups`` (already
    cut to the period): the recount, measured as the counters are."""
    buckets: list[Bucket] = [(estate, month, nested(counts)) for (estate, month), counts in
               recount(revisits, work_orders, followups).items()]
    return figures(buckets, quota_for, now)


def figures(buckets: Iterable[Bucket], quota_for: QuotaFor, now: datetime) -> dict:
    """The statistics from estate-month counters, as they stand at ``now``."""
    buckets = list(buckets)
    totals = buckets[0][2] if len(buckets) == 1 else merged(counts for _, _, counts in buckets)
    return _figures_of(totals, _required(buckets, quota_for), now)


def group_figures(months: Iterable[Bucket], now: datetime) -> dict:
    """The group's statistics from its total counters a month (``GROUP``): each sampled
    kind's ``required`` as the estate-months' closings fixed it, and its orders no
    closing has seen yet (``awaiting_closing``)."""
    totals = merged(counts for _, _, counts in months)
    orders = totals.get("orders", {})
    result = _figures_of(totals, {kind: orders.get(kind, {}).get("required", 0)
                                  for kind in WORK_ORDER_KINDS}, now)
    for kind in WORK_ORDER_KINDS:
        counts = orders.get(kind, {})
        result["kinds"][kind]["awaiting_closing"] = (counts.get("population", 0)
                                                     - counts.get("at_closing", 0))
    return result


def _figures_of(totals: dict, required: dict[str, int], now: datetime) -> dict:
    """The statistics from counters summed and each sampled kind's ``required``. It runs
    once an estate for the headquarters' rows, so in one pass: a kind with nothing
    counted, ordered or required (most rows have several) takes the figures of nothing,
    copied; the overall figures add up the kinds' as they are made."""
    counted, orders, due = totals.get("kinds", {}), totals.get("orders", {}), totals.get(DUE, {})
    revisited = totals.get("revisited", {})
    touched = {*counted, *orders, *due, *revisited}
    kinds = {}
    owed = done = on_time = overdue = reached = satisfied = rated = 0
    for kind in REVISIT_KINDS:
        if kind not in touched and not required.get(kind):
            kinds[kind] = dict(NOTHING_OF[kind])
            continue
        counts = counted.get(kind, {})
        kinds[kind] = figures_of_kind = _kind_figures(
            counts, replies_overdue(due[kind], now) if kind in due else 0)
        owed += figures_of_kind["owed"]
        done += figures_of_kind["done"]
        on_time += figures_of_kind["on_time"]
        overdue += figures_of_kind["overdue"]
        reached += counts.get("reached", 0)
        satisfied += counts.get("satisfied", 0)
        rated += counts.get("rated", 0)
        if kind in OWED_IN_FULL:
            figures_of_kind["required"] = figures_of_kind["owed"]
            figures_of_kind["revisit_rate"] = rate(figures_of_kind["done"],
                                                   figures_of_kind["owed"])
        else:
            _add_sampling_figures(figures_of_kind, orders.get(kind, {}), required[kind],
                                  revisited.get(kind, 0))
    return _overall(totals, kinds, {"owed": owed, "done": done, "on_time": on_time,
                                    "overdue": overdue, "reached": reached,
                                    "satisfied": satisfied, "rated": rated}, now)


def figures_by_estate(buckets: Iterable[Bucket], quota_for: QuotaFor,
                      now: datetime) -> dict[str, dict]:
    """{estate: its statistics}, for every estate with counters in ``buckets``."""
    by_estate: dict[str, list[Bucket]] = {}
    for bucket in buckets:
        if _any_count(bucket[2]):
            by_estate.setdefault(bucket[0], []).append(bucket)
    return {estate_id: figures(by_estate[estate_id], quota_for, now)
            for estate_id in sorted(by_estate)}


def figures_by_group(buckets: Iterable[Bucket], estates: Mapping[str, Mapping[str, Any]],
                     group_by: str, quota_for: QuotaFor, now: datetime) -> dict[str, dict]:
    """{group key: its names (``group_label``), ``estate_ids`` and statistics}, by company
    or region (shared/estate_groups.py, as complaint statistics group). A group is measured
    as one estate's row is, from its estates' counters together: counts summed, each
    rate from the summed counts (never an average of rates), each estate's months against
    its own quota; so a group is its estates' rows added up. ``estates``: {estate id: its
    names (company, region)}, every member, those with nothing counted too; an estate
    counted but not among them is in the ``UNGROUPED`` group."""
    groups: dict[str, tuple[dict, list[str], list[Bucket]]] = {}
    key_of: dict[str, str] = {}

    def join(estate_id: str, names: Mapping[str, Any]) -> str:
        key = group_of({"estate_id": estate_id, **names}, group_by)
        groups.setdefault(key, (group_label(names, group_by), [], []))[1].append(estate_id)
        key_of[estate_id] = key
        return key
    for estate_id, names in estates.items():
        join(estate_id, names)
    for bucket in buckets:
        key = key_of.get(bucket[0]) or join(bucket[0], {})
        groups[key][2].append(bucket)
    return {key: {**label, "estate_ids": members, **figures(counted, quota_for, now)}
            for key, (label, members, counted) in sorted(groups.items())}


def _required(buckets: Iterable[Bucket], quota_for: QuotaFor) -> dict[str, int]:
    """Per work-order kind: what the quota required of each estate's months (each
    estate's quota asked for once)."""
    required = dict.fromkeys(WORK_ORDER_KINDS, 0)
    quotas: dict[str, Callable[[str, int], int]] = {}
    for estate_id, _, counts in buckets:
        orders = counts.get("orders")
        if not orders:
            continue
        if estate_id not in quotas:
            quotas[estate_id] = quota_for(estate_id)
        quota = quotas[estate_id]
        for kind, figures_of_kind in orders.items():
            population = figures_of_kind.get("population", 0)
            if population and kind in required:
                required[kind] += min(quota(kind, population), population)
    return required


def _kind_figures(counts: dict, overdue_now: int) -> dict:
    count = counts.get
    done, on_time = count("done", 0), count("on_time", 0)
    return {
        "owed": count("owed", 0),
        "done": done,
        "on_time": on_time,
        "on_time_rate": rate(on_time, done),
        "reach_rate": rate(count("reached", 0), done),
        "satisfaction_rate": rate(count("satisfied", 0), count("rated", 0)),
        "unsatisfied": count("unsatisfied", 0),
        "overdue": overdue_now,
        "cancelled": count("cancelled", 0),
    }


def _add_sampling_figures(figures_of_kind: dict, counts: dict, required: int,
                          revisited: int) -> None:
    """Orders, what the quota required of each estate's months, what was selected, and how
    many selected orders had a visit done (the revisit rate against the requirement)."""
    figures_of_kind["orders"] = counts.get("population", 0)
    figures_of_kind["required"] = required
    figures_of_kind["sampled"] = counts.get("sampled", 0)
    figures_of_kind["top_up"] = counts.get("top_up", 0)
    figures_of_kind["revisited_orders"] = revisited
    figures_of_kind["revisit_rate"] = rate(revisited, required)


def _nothing_of(kind: str) -> dict:
    """A kind's figures when nothing of it is counted, ordered or required."""
    figures_of_kind = _kind_figures({}, 0)
    if kind in OWED_IN_FULL:
        figures_of_kind.update(required=0, revisit_rate=None)
    else:
        _add_sampling_figures(figures_of_kind, {}, 0, 0)
    return figures_of_kind


NOTHING_OF = {kind: _nothing_of(kind) for kind in REVISIT_KINDS}


def _overall(totals: dict, kinds: dict[str, dict], summed: Counts, now: datetime) -> dict:
    complaints, replies, done = kinds["complaint"], totals.get("replies", {}), summed["done"]
    return {
        "complaints_closed": complaints["owed"],
        "complaint_revisits_done": complaints["done"],
        "revisit_rate": complaints["revisit_rate"],
        "revisits": summed["owed"],
        "done": done,
        "on_time_rate": rate(summed["on_time"], done),
        "reach_rate": rate(summed["reached"], done),
        "satisfaction_rate": rate(summed["satisfied"], summed["rated"]),
        "overdue": summed["overdue"],
        "promised_replies": {
            "promised": replies.get("promised", 0),
            "given": replies.get("given", 0),
            "given_on_time": replies.get("given_on_time", 0),
            "overdue": replies_overdue(totals.get("awaiting", {}), now),
        },
        "followups": _followup_figures(totals.get("followups", {}), now),
        "kinds": kinds,
    }


def _followup_figures(counts: dict, now: datetime) -> dict:
    """「一个月内向业主反馈」: follow-ups opened, answered (on time), unanswered past due."""
    answered, on_time = counts.get("answered", 0), counts.get("answered_on_time", 0)
    return {
        "opened": counts.get("opened", 0),
        "answered": answered,
        "answered_on_time": on_time,
        "on_time_rate": rate(on_time, answered),
        "overdue": replies_overdue(counts.get("awaiting", {}), now),
    }


def replies_overdue(awaiting: dict[str, int], now: datetime) -> int:
    """Replies promised and not given (``awaiting`` {"<ms>_<revisit>": n}) whose promised
    time has passed at ``now`` (follow-ups not answered by their answer's due time, and
    visits still open by theirs, alike)."""
    if not awaiting:
        return 0
    now_us = (now - EPOCH) // MICROSECOND
    return sum(count for key, count in awaiting.items()
               if count and int(key.split("_", 1)[0]) * 1000 < now_us)


# -- counters as the store keeps them (``nested``, ``flat``: shared.counts) -------------

def merged(many: Iterable[dict]) -> dict:
    """Nested counters added up."""
    total: dict = {}
    for fields in many:
        _merge(total, fields)
    return total


def negated(fields: dict) -> dict:
    """Nested counters with every count's sign turned (``merged`` then takes them out)."""
    return {key: negated(value) if isinstance(value, dict) else -value
            for key, value in fields.items()}


def _merge(total: dict, fields: dict) -> None:
    for key, value in fields.items():
        if isinstance(value, dict):
            _merge(total.setdefault(key, {}), value)
        else:
            total[key] = total.get(key, 0) + value


def _any_count(fields: dict) -> bool:
    for value in fields.values():   # a loop, not any(): this runs once an estate
        if _any_count(value) if isinstance(value, dict) else value:
            return True
    return False


def _on_time(revisit: dict) -> bool:
    completed = _ms(revisit["completed_at"])
    return completed is not None and completed <= _ms(revisit["due_at"])


def _ms(moment: MaybeTime) -> MaybeTime:
    """``moment`` as the store keeps it: to the millisecond (None stays None)."""
    if moment is None:
        return None
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def differences(kept: dict[tuple, Counts], recounted: dict[tuple, Counts]) -> list[dict]:
    """Where the kept counters and a recount from the raw documents disagree, per
    estate-month and counter."""
    found = []
    for estate_id, month in sorted(kept.keys() | recounted.keys(), key=str):
        ours, theirs = kept.get((estate_id, month), {}), recounted.get((estate_id, month), {})
        for path in sorted(ours.keys() | theirs.keys()):
            if ours.get(path, 0) != theirs.get(path, 0):
                found.append({"estate_id": estate_id, "month": month, "counter": path,
                              "kept": ours.get(path, 0), "recomputed": theirs.get(path, 0)})
    return found
