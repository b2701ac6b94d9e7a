"""Complaint statistics per estate and period, and across estates for headquarters. Pure Python.

「定期向业主提供投诉受理和处理情况的统计报告」: received and handled, by category,
channel and severity, with how often the deadlines were kept.

The figures describe the complaints *received* in the period, as they stand
now: ``closed`` is how many of them are closed. Malicious complaints are
counted in ``received`` and ``malicious`` and left out of everything else
(「对业主的恶意投诉,做到坚持原则并耐心解释」: handled, but not held against the estate).
Deadline rates look at each complaint's first round (before any reopen), so a
reopen does not rewrite last month's on-time figures.
"""
from collections import Counter

from services.intake.domain import STATES
from shared.schemas.vocabulary import CHANNELS, COMPLAINT_CATEGORIES, SEVERITIES

# What the figures read from each stored complaint.
FIELDS = ("estate_id", "status", "category", "channel", "severity", "malicious", "repeat_of",
          "reopen_no", "reviews", "external", "escalations", "deadlines", "next_due_at")


def complaint_figures(complaints, now):
    """The figures of one set of complaints (an estate's, or every estate's)."""
    counted = [complaint for complaint in complaints if not complaint.get("malicious")]
    total = len(counted)
    closed = sum(complaint["status"] == "closed" for complaint in counted)
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
        "closed_rate": _rate(closed, total),
        "by_status": _counts(counted, "status", STATES),
        "by_category": _counts(counted, "category", COMPLAINT_CATEGORIES),
        "by_channel": _counts(counted, "channel", CHANNELS),
        "by_severity": _counts(counted, "severity", SEVERITIES),
        "first_reply": _kept(first_reply),
        "first_reply_on_time_rate": _rate(first_reply["on_time"],
                                          first_reply["on_time"] + first_reply["late"]),
        "reply": _kept(reply),
        "reply_on_time_rate": _rate(reply["on_time"], reply["on_time"] + reply["late"]),
        "repeats": repeats,
        "repeat_rate": _rate(repeats, total),
        "reopened": reopened,
        "reopened_rate": _rate(reopened, total),
        "reviews": len(reviews),
        "reviews_overturned": sum(review["outcome"] == "overturned" for review in reviews),
        "referred_to_outside_units": sum(bool(complaint.get("external")) for complaint in counted),
        "escalated": sum(bool(complaint.get("escalations")) for complaint in counted),
        "overdue_now": sum(complaint.get("next_due_at") is not None
                           and complaint["next_due_at"] <= now for complaint in counted),
    }


def _timeliness(complaint, kind, now):
    """on_time, late or pending: the first round's deadline of that kind."""
    deadline = next((item for item in complaint.get("deadlines", [])
                     if item["kind"] == kind and item["round"] == 0), None)
    if deadline is None:
        return "pending"
    if deadline["met_at"] is not None:
        return "on_time" if deadline["met_at"] <= deadline["due_at"] else "late"
    return "late" if deadline["due_at"] <= now else "pending"


def _kept(counter):
    return {key: counter[key] for key in ("on_time", "late", "pending")}


def _counts(complaints, key, vocabulary):
    counts = Counter(complaint[key] for complaint in complaints)
    return {value: counts[value] for value in vocabulary}


def _rate(part, whole):
    return round(part / whole, 4) if whole else None
