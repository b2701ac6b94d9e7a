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
moment of asking — a visit overdue now — is counted apart, from the open revisits
(``overdue``); a promised reply overdue now from the promised times the counters keep
of replies still owed. ``recount`` gives the same counters from the raw documents
(the ``check`` command compares them); ``revisit_stats`` measures raw documents.
"""
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from shared.schemas.vocabulary import REVISIT_KINDS, UNSATISFIED_LEVELS, WORK_ORDER_KINDS

SATISFIED_LEVELS = ("very_satisfied", "satisfied")
OPEN = ("scheduled", "booked", "overdue")
# kinds measured against what they require, not against a sample: all are owed
OWED_IN_FULL = ("routine", "complaint")
# done visits per work order (each estate-month's counters): how ``revisited`` counts once
DONE_SOURCES = "done_sources"

Counts = dict[str, int]                     # counter path ("kinds.repair.done") -> count
Bucket = tuple[str, str | None, Counts]     # (estate, month, its counts)
QuotaFor = Callable[[str], Callable[[str, int], int]]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND, MICROSECOND = timedelta(milliseconds=1), timedelta(microseconds=1)


def rate(part, whole):
    return round(part / whole, 4) if whole else None


# -- what one document adds to its estate-month ------------------------------------------

def contribution(revisit) -> Counts:
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
        "replies.given_on_time": owed and bool(promised) and bool(given) and given <= promised,
    }
    counts = {path: 1 for path, flag in flags.items() if flag}
    if owed and promised and not given:
        counts[awaited_reply(revisit["_id"], promised)] = 1
    if done and kind in WORK_ORDER_KINDS:
        # a work order counts once however many of its visits were made
        counts[f"{DONE_SOURCES}.{kind}.{field_name(revisit['source_id'])}"] = 1
    return counts


def revisited_path(source_path: str) -> str:
    """``revisited.<kind>``, the work orders of the kind with a visit done, for the
    ``done_sources.<kind>.<work order>`` counter of one of them."""
    return "revisited." + source_path.split(".")[1]


def order_contribution(order) -> Counts:
    """What a decided work order adds to its estate-month's counters."""
    kind = order["kind"]
    flags = {
        f"orders.{kind}.decided": True,     # the estate has figures for the period
        f"orders.{kind}.population": bool(order.get("in_population")),
        f"orders.{kind}.sampled": bool(order.get("selected") and order.get("in_population")),
        f"orders.{kind}.top_up": bool(order.get("selected") and order.get("reason") == "top_up"),
    }
    return {path: 1 for path, flag in flags.items() if flag}


def difference(old: Counts, new: Counts) -> Counts:
    """``new - old``, without the counters it leaves as they are."""
    changed = {path: new.get(path, 0) - old.get(path, 0) for path in old.keys() | new.keys()}
    return {path: change for path, change in changed.items() if change}


def awaited_reply(revisit_id, promised) -> str:
    """The counter of a reply promised and not given yet, named by when it is due: it is
    overdue once that time has passed."""
    return f"awaiting.{(promised - EPOCH) // MILLISECOND}_{field_name(revisit_id)}"


def field_name(text) -> str:
    """``text`` as one part of a counter path (MongoDB field names take no ``.``, no
    leading ``$``)."""
    return str(text).replace("%", "%25").replace(".", "%2E").replace("$", "%24")


def add(total: Counts, counts: Counts, sign=1) -> Counts:
    for path, count in counts.items():
        total[path] = total.get(path, 0) + sign * count
    return total


# -- the recount -------------------------------------------------------------------------

def recount(revisits: Iterable[dict], orders: Iterable[dict]) -> dict[tuple, Counts]:
    """The counters of every estate-month from the raw documents: {(estate, month): counts}
    (revisits by ``stats_month``, orders by ``month``), zeros left out."""
    buckets = {}
    for revisit in revisits:
        add(buckets.setdefault((revisit["estate_id"], revisit.get("stats_month")), {}),
            contribution(revisit))
    for order in orders:
        add(buckets.setdefault((order["estate_id"], order["month"]), {}),
            order_contribution(order))
    for counts in buckets.values():
        sources = [path for path in counts if path.startswith(DONE_SOURCES + ".")]
        for path in sources:
            add(counts, {revisited_path(path): 1})
    return {key: {path: n for path, n in counts.items() if n} for key, counts in buckets.items()}


# -- figures -----------------------------------------------------------------------------
# Counters as the store keeps them: nested ({"kinds": {"repair": {"done": 3}}, ...}).

def revisit_stats(revisits, work_orders, quota_for: QuotaFor, now):
    """Statistics of raw ``revisits`` and sampled ``work_orders`` (already cut to the
    period): the recount, measured as the counters are."""
    buckets = [(estate, month, nested(counts)) for (estate, month), counts in
               recount(revisits, work_orders).items()]
    return figures(buckets, overdue(revisits, now), quota_for, now)


def overdue(revisits, now) -> dict[tuple, int]:
    """{(estate, kind): revisits still open past their due time} at ``now``."""
    late = {}
    for revisit in revisits:
        if revisit["status"] in OPEN and revisit["due_at"] < now:
            key = (revisit["estate_id"], revisit["kind"])
            late[key] = late.get(key, 0) + 1
    return late


def figures(buckets: Iterable[Bucket], late: dict[tuple, int], quota_for: QuotaFor, now):
    """The statistics from estate-month counters and {(estate, kind): overdue now}."""
    buckets = list(buckets)
    totals = buckets[0][2] if len(buckets) == 1 else merged(counts for _, _, counts in buckets)
    required = _required(buckets, quota_for)
    overdue_by_kind = dict.fromkeys(REVISIT_KINDS, 0)
    for (_, kind), count in late.items():
        overdue_by_kind[kind] += count
    counted, orders = totals.get("kinds", {}), totals.get("orders", {})
    kinds = {kind: _kind_figures(counted.get(kind, {}), overdue_by_kind[kind])
             for kind in REVISIT_KINDS}
    for kind in WORK_ORDER_KINDS:
        kinds[kind].update(_sampling_figures(orders.get(kind, {}), required[kind],
                                             totals.get("revisited", {}).get(kind, 0)))
    for kind in OWED_IN_FULL:
        kinds[kind].update(required=kinds[kind]["owed"],
                           revisit_rate=rate(kinds[kind]["done"], kinds[kind]["owed"]))
    return _overall(totals, kinds, now)


def figures_by_estate(buckets: Iterable[Bucket], late: dict[tuple, int], quota_for: QuotaFor,
                      now):
    """{estate: its statistics}, for every estate with counters in ``buckets``."""
    by_estate, late_by_estate = {}, {}
    for bucket in buckets:
        if _any_count(bucket[2]):
            by_estate.setdefault(bucket[0], []).append(bucket)
    for (estate_id, kind), count in late.items():
        late_by_estate.setdefault(estate_id, {})[(estate_id, kind)] = count
    return {estate_id: figures(by_estate[estate_id], late_by_estate.get(estate_id, {}),
                               quota_for, now)
            for estate_id in sorted(by_estate)}


def _required(buckets, quota_for):
    """Per work-order kind: what the quota required of each estate's months."""
    required = dict.fromkeys(WORK_ORDER_KINDS, 0)
    for estate_id, _, counts in buckets:
        for kind, figures_of_kind in counts.get("orders", {}).items():
            population = figures_of_kind.get("population", 0)
            if population and kind in required:
                required[kind] += min(quota_for(estate_id)(kind, population), population)
    return required


def _kind_figures(counts, overdue_now):
    done, on_time = counts.get("done", 0), counts.get("on_time", 0)
    return {
        "owed": counts.get("owed", 0),
        "done": done,
        "on_time": on_time,
        "on_time_rate": rate(on_time, done),
        "reach_rate": rate(counts.get("reached", 0), done),
        "satisfaction_rate": rate(counts.get("satisfied", 0), counts.get("rated", 0)),
        "unsatisfied": counts.get("unsatisfied", 0),
        "overdue": overdue_now,
        "cancelled": counts.get("cancelled", 0),
    }


def _sampling_figures(counts, required, revisited):
    """Orders, what the quota required of each estate's months, what was selected, and how
    many selected orders had a visit done (the revisit rate against the requirement)."""
    return {
        "orders": counts.get("population", 0),
        "required": required,
        "sampled": counts.get("sampled", 0),
        "top_up": counts.get("top_up", 0),
        "revisited_orders": revisited,
        "revisit_rate": rate(revisited, required),
    }


def _overall(totals, kinds, now):
    def total(name):
        return sum(figures_of_kind[name] for figures_of_kind in kinds.values())

    def summed(name):
        return sum(counts.get(name, 0) for counts in totals.get("kinds", {}).values())

    complaints, replies = kinds["complaint"], totals.get("replies", {})
    done = total("done")
    return {
        "complaints_closed": complaints["owed"],
        "complaint_revisits_done": complaints["done"],
        "revisit_rate": complaints["revisit_rate"],
        "revisits": total("owed"),
        "done": done,
        "on_time_rate": rate(total("on_time"), done),
        "reach_rate": rate(summed("reached"), done),
        "satisfaction_rate": rate(summed("satisfied"), summed("rated")),
        "overdue": total("overdue"),
        "promised_replies": {
            "promised": replies.get("promised", 0),
            "given": replies.get("given", 0),
            "given_on_time": replies.get("given_on_time", 0),
            "overdue": replies_overdue(totals.get("awaiting", {}), now),
        },
        "kinds": kinds,
    }


def replies_overdue(awaiting: dict[str, int], now) -> int:
    """Replies promised and not given (``awaiting`` {"<ms>_<revisit>": n}) whose promised
    time has passed at ``now``."""
    now_us = (now - EPOCH) // MICROSECOND
    return sum(count for key, count in awaiting.items()
               if count and int(key.split("_", 1)[0]) * 1000 < now_us)


# -- counters as the store keeps them ---------------------------------------------------

def nested(counts: Counts) -> dict:
    """{path: n} as the nested fields ``$inc`` with those paths makes."""
    fields = {}
    for path, count in counts.items():
        *parents, name = path.split(".")
        level = fields
        for parent in parents:
            level = level.setdefault(parent, {})
        level[name] = count
    return fields


def flat(fields: dict, prefix="") -> Counts:
    """Nested counters as {path: n}, zeros left out."""
    counts = {}
    for key, value in fields.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            counts.update(flat(value, path))
        elif value:
            counts[path] = value
    return counts


def merged(many: Iterable[dict]) -> dict:
    """Nested counters added up."""
    total = {}
    for fields in many:
        _merge(total, fields)
    return total


def _merge(total, fields):
    for key, value in fields.items():
        if isinstance(value, dict):
            _merge(total.setdefault(key, {}), value)
        else:
            total[key] = total.get(key, 0) + value


def _any_count(fields):
    return any(_any_count(value) if isinstance(value, dict) else value
               for value in fields.values())


def _on_time(revisit):
    completed = _ms(revisit["completed_at"])
    return completed is not None and completed <= _ms(revisit["due_at"])


def _ms(moment):
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
