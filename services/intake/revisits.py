"""A complaint's revisits as its record keeps them. Pure Python.

「在《投诉意见处理表》中记录回访情况」: the complaint's record ends with its revisits and
their outcomes, so the complaint keeps each of its revisits (``revisits``) as revisit
announced it (``revisit_completed``: the owner's words masked, as every event carries
them). Keeping one changes nothing else: not the
complaint's status (``revisit_unsatisfied`` reopens), not its deadlines, not its counts.
"""
from shared.documents import deep_copy

# What the record keeps of a ``revisit_completed`` payload.
KEPT = ("revisit_id", "completed_at", "method", "reached", "satisfaction", "resolved",
        "comments", "visitor_id")


def keep_revisit(complaint: dict, completed: dict) -> dict | None:
    """``complaint`` with the revisit of ``completed`` (a ``revisit_completed`` payload) in
    ``revisits``, in the order they were made; None when it is there already (a revisit is
    completed once: a redelivered or repeated announcement adds nothing)."""
    kept = complaint.get("revisits") or []
    if any(line["revisit_id"] == completed["revisit_id"] for line in kept):
        return None
    complaint = deep_copy(complaint)
    line = {key: completed.get(key) for key in KEPT}
    complaint["revisits"] = sorted([*kept, line], key=lambda each: each["completed_at"])
    return complaint
