"""Complaint statistics per estate and period, and across estates for headquarters. Pure Python.

「定期向业主提供投诉受理和处理情况的统计报告」: received and handled, by category,
channel and severity, with how often the deadlines were kept.

The figures describe the complaints *received* in the period, as they stand
now: ``closed`` is how many of them are closed. Malicious complaints are
counted in ``received`` and ``malicious`` and left out of everything else
(「对业主的恶意投诉,做到坚持原则并耐心解释」: handled, but not held against the estate).
Deadline rates look at each complaint's first round (before any reopen), so a
reopen does not rewrite last month's on-time figures.

How they are kept (no request in proportion to the stored complaints):
each complaint adds its ``contribution`` — {counter path: n} — to a counter document of
its estate and month of receipt (``stats_month``, in the estate's time zone); the
repository applies the ``difference`` each change makes to it in the same way survey's
tallies are kept (services/intake/repository.py). ``figures`` answers from the counters
of the period's months summed, read in one query for one estate or for all.

What depends on the moment of asking is kept as the times it turns on, not as a
verdict: a first reply or answer not given yet counts under its deadline
(``first_reply_due.<ms>``), and a complaint with a deadline open under its earliest one
(``next_due.<ms>``, for ``overdue_now``); ``figures`` counts those at or before ``now``
as late (overdue) and the rest as pending. The repository drops a counter that falls
back to zero, so a month's document holds as many such times as it has open work, not
history; and no complaint is read to answer (rather than an index query over the open
ones: exact for any deadline, superseded ones too, and no range scan on the embedded
store). A complaint stays in the month it was filed under (``stats_month``): an estate
whose time zone changes in the config keeps its complaints' months.

The group's ``total`` reads its own counter document a month (``shared.counters.GROUP``,
added to in the same settle step as the estate's); per region or company the estates'
counters are added up (an estate may move between them: nothing to re-key). Each estate
and the group also keep a document a year (``keeps_year_totals``), added to in the same
step: a year's figures read one document an estate, not twelve; a quarter or half year
adds its months.
``complaint_figures`` is the scan of raw
complaints the counters replace, kept as the reference the tests hold them to;
``recount`` gives the counters again from the raw complaints (``check_statistics``).
"""
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime, timedelta

from services.intake.domain import STATES
from shared.counts import difference  # noqa: F401 (a change's effect on the counters)
from shared.rates import rate
from shared.schemas.vocabulary import CHANNELS, COMPLAINT_CATEGORIES, SEVERITIES

# What the figures read from each stored complaint.
FIELDS = ("estate_id", "status", "category", "channel", "severity", "malicious", "repeat_of",
          "reopen_no", "reviews", "external", "escalations", "deadlines", "next_due_at",
          "owner_signoff")
KEPT = ("on_time", "late", "pending")
# the first-round deadline each timeliness figure looks at
TIMELINESS = (("first_reply", "first_response"), ("reply", "reply"))
# counters of times (in milliseconds since the epoch) that turn late when ``now`` passes
DUE = {f"{name}_due": name for name, _ in TIMELINESS}
NEXT_DUE = "next_due"

Counts = dict[str, int]     # counter path ("by_status.closed") -> count

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


def complaint_figures(complaints: Collection[dict], now: datetime) -> dict:
    """The figures of one set of complaints (an estate's, or every estate's)."""
    counted = [complaint for complaint in complaints if not complaint.get("malicious")]
    total = len(counted)
    closed = sum(complaint["status"] == "closed" for complaint in counted)
    closed_unsatisfied = sum(_closed_unsatisfied(complaint) for complaint in counted)
    first_reply = Counter(_timeliness(complaint, "first_response", now) for complaint in counted)
    reply = Counter(_timeliness(complaint, "reply", now) for complaint in counted)
    repeats = sum(bool(complaint.get("repeat_of")) for complaint in counted)
    reopened = sum(complaint.get("reopen_no", 0) > 0 for complaint in counted)
    reviews = [review for complaint in counted for review in complaint.get("reviews", [])]
    return {
        "received": len(complaints),
        "malicious": len(complaints) - total,
        "counted": total,
        "closed": closed,
        "open": total - closed,
        "closed_rate": rate(closed, total),
        "closed_unsatisfied": closed_unsatisfied,
        "by_status": _counts(counted, "status", STATES),
        "by_category": _counts(counted, "category", COMPLAINT_CATEGORIES),
        "by_channel": _counts(counted, "channel", CHANNELS),
        "by_severity": _counts(counted, "severity", SEVERITIES),
        "first_reply": _kept(first_reply),
        "first_reply_on_time_rate": rate(first_reply["on_time"],
                                          first_reply["on_time"] + first_reply["late"]),
        "reply": _kept(reply),
        "reply_on_time_rate": rate(reply["on_time"], reply["on_time"] + reply["late"]),
        "repeats": repeats,
        "repeat_rate": rate(repeats, total),
        "reopened": reopened,
        "reopened_rate": rate(reopened, total),
        "reviews": len(reviews),
        "reviews_overturned": sum(review["outcome"] == "overturned" for review in reviews),
        "referred_to_outside_units": sum(bool(complaint.get("external")) for complaint in counted),
        "escalated": sum(bool(complaint.get("escalations")) for complaint in counted),
        "overdue_now": sum(complaint.get("next_due_at") is not None
                           and complaint["next_due_at"] <= now for complaint in counted),
    }


def _closed_unsatisfied(complaint: dict) -> bool:
    """Closed, the owner signing off unsatisfied (its revisit goes to a supervisor)."""
    return complaint["status"] == "closed" and complaint.get("owner_signoff") == "unsatisfied"


def _timeliness(complaint: dict, kind: str, now: datetime) -> str:
    """on_time, late or pending: the first round's deadline of that kind."""
    deadline = next((item for item in complaint.get("deadlines", [])
                     if item["kind"] == kind and item["round"] == 0), None)
    if deadline is None:
        return "pending"
    if deadline["met_at"] is not None:
        return "on_time" if deadline["met_at"] <= deadline["due_at"] else "late"
    return "late" if deadline["due_at"] <= now else "pending"


def _kept(counter: Mapping[str, int]) -> dict[str, int]:
    return {key: counter[key] for key in ("on_time", "late", "pending")}


def _counts(complaints: Iterable[dict], key: str, vocabulary: Iterable[str]) -> dict[str, int]:
    counts = Counter(complaint[key] for complaint in complaints)
    return {value: counts[value] for value in vocabulary}


# -- the figures from counters ---------------------------------------------------------

def contribution(complaint: dict) -> Counts:
    """What ``complaint`` adds to its estate-month's counters as it stands, zeros left out:
    ``complaint_figures`` of it alone, a deadline not met yet and the next one owed kept
    under their times (``figures`` tells late from pending).

    Times are compared as the store keeps them (to the millisecond), so the counters
    agree with a recount of the stored complaints."""
    if complaint.get("malicious"):
        return {"received": 1, "malicious": 1}
    reviews = complaint.get("reviews", [])
    counts = {
        "received": 1, "counted": 1,
        "closed": complaint["status"] == "closed",
        "closed_unsatisfied": _closed_unsatisfied(complaint),
        f"by_status.{complaint['status']}": 1,
        f"by_category.{complaint['category']}": 1,
        f"by_channel.{complaint['channel']}": 1,
        f"by_severity.{complaint['severity']}": 1,
        **{_kept_as(complaint, name, kind): 1 for name, kind in TIMELINESS},
        "repeats": bool(complaint.get("repeat_of")),
        "reopened": complaint.get("reopen_no", 0) > 0,
        "reviews": len(reviews),
        "reviews_overturned": sum(review["outcome"] == "overturned" for review in reviews),
        "referred_to_outside_units": bool(complaint.get("external")),
        "escalated": bool(complaint.get("escalations")),
    }
    if complaint.get("next_due_at") is not None:
        counts[f"{NEXT_DUE}.{_millis(complaint['next_due_at'])}"] = 1
    return {path: int(count) for path, count in counts.items() if count}


def add(total: Counter, counts: Counts) -> Counter:
    total.update(counts)
    return total


def recount(complaints: Iterable[dict]) -> dict[tuple[str, str | None], Counts]:
    """The counters again from raw complaints: {(estate, month of receipt): counts}, zeros
    left out. A complaint without ``stats_month`` (stored before the counters) is under
    month None: ``check_statistics --repair`` files it."""
    buckets: dict[tuple[str, str | None], Counter] = {}
    for complaint in complaints:
        key = (complaint["estate_id"], complaint.get("stats_month"))
        add(buckets.setdefault(key, Counter()), contribution(complaint))
    return {key: dict(+counts) for key, counts in buckets.items()}


def counter_differences(kept: Mapping[tuple[str, str | None], Counts],
                        recounted: Mapping[tuple[str, str | None], Counts]) -> list[dict]:
    """Where the kept counters and a recount from the raw complaints disagree, per estate
    and month ({(estate, month): counts} each)."""
    found = []
    for estate_id, month in sorted(kept.keys() | recounted.keys(), key=str):
        mine, counted = kept.get((estate_id, month), {}), recounted.get((estate_id, month), {})
        for path in sorted(mine.keys() | counted.keys()):
            if mine.get(path, 0) != counted.get(path, 0):
                found.append({"estate_id": estate_id, "month": month, "counter": path,
                              "kept": mine.get(path, 0), "recomputed": counted.get(path, 0)})
    return found


def figures(counts: Counts, now: datetime) -> dict:
    """``complaint_figures`` from the counters of the complaints (summed over estates and
    months), as they stand at ``now``."""
    kept = {name: {key: counts.get(path, 0) for key, path in paths}
            for name, paths in KEPT_PATHS.items()}
    overdue_now, now_ms = 0, _millis(now)
    for path, count in counts.items():
        kind, _, due = path.partition(".")
        if kind == NEXT_DUE:
            overdue_now += count if int(due) <= now_ms else 0
        elif kind in DUE:
            kept[DUE[kind]]["late" if int(due) <= now_ms else "pending"] += count
    total, closed = counts.get("counted", 0), counts.get("closed", 0)
    repeats, reopened = counts.get("repeats", 0), counts.get("reopened", 0)
    first_reply, reply = kept["first_reply"], kept["reply"]
    return {
        "received": counts.get("received", 0),
        "malicious": counts.get("malicious", 0),
        "counted": total,
        "closed": closed,
        "open": total - closed,
        "closed_rate": rate(closed, total),
        "closed_unsatisfied": counts.get("closed_unsatisfied", 0),
        "by_status": _vocabulary(counts, "by_status", STATES),
        "by_category": _vocabulary(counts, "by_category", COMPLAINT_CATEGORIES),
        "by_channel": _vocabulary(counts, "by_channel", CHANNELS),
        "by_severity": _vocabulary(counts, "by_severity", SEVERITIES),
        "first_reply": first_reply,
        "first_reply_on_time_rate": rate(first_reply["on_time"],
                                          first_reply["on_time"] + first_reply["late"]),
        "reply": reply,
        "reply_on_time_rate": rate(reply["on_time"], reply["on_time"] + reply["late"]),
        "repeats": repeats,
        "repeat_rate": rate(repeats, total),
        "reopened": reopened,
        "reopened_rate": rate(reopened, total),
        "reviews": counts.get("reviews", 0),
        "reviews_overturned": counts.get("reviews_overturned", 0),
        "referred_to_outside_units": counts.get("referred_to_outside_units", 0),
        "escalated": counts.get("escalated", 0),
        "overdue_now": overdue_now,
    }


def _kept_as(complaint: dict, name: str, kind: str) -> str:
    """The counter of the first round's deadline of ``kind``: ``<name>.on_time`` or
    ``.late`` once met, ``<name>_due.<its time>`` until then (late once that has passed),
    ``<name>.pending`` without one."""
    deadline = next((item for item in complaint.get("deadlines", [])
                     if item["kind"] == kind and item["round"] == 0), None)
    if deadline is None:
        return f"{name}.pending"
    if deadline["met_at"] is None:
        return f"{name}_due.{_millis(deadline['due_at'])}"
    return f"{name}.on_time" if _millis(deadline["met_at"]) <= _millis(deadline["due_at"]) \
        else f"{name}.late"


def _millis(moment: datetime) -> int:
    """``moment`` as the store keeps it, in whole milliseconds since the epoch."""
    return (moment - EPOCH) // MILLISECOND


def _vocabulary(counts: Counts, name: str, vocabulary: Iterable[str]) -> dict[str, int]:
    return {value: counts.get(path, 0) for value, path in VOCABULARY_PATHS[name]}


# the counter paths ``figures`` reads, worked out once (it runs once per estate)
KEPT_PATHS = {name: [(key, f"{name}.{key}") for key in KEPT] for name, _ in TIMELINESS}
VOCABULARY_PATHS = {name: [(value, f"{name}.{value}") for value in vocabulary]
                    for name, vocabulary in (("by_status", STATES),
                                             ("by_category", COMPLAINT_CATEGORIES),
                                             ("by_channel", CHANNELS),
                                             ("by_severity", SEVERITIES))}
