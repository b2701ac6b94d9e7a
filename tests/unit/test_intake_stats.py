"""Complaint statistics: periods and figures."""
from collections import Counter
from datetime import UTC, datetime, timedelta

from services.intake import domain, stats
from services.intake.policy import Policies

POLICY = Policies().for_estate("e-1")
NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)    # Monday 10:00 in Shanghai


def complaint(received_at=NOW, **overrides):
    data = {"estate_id": "e-1", "household_id": "h-1", "reporter": None, "channel": "hotline",
            "category": "cleaning", "severity": "normal", "content": "垃圾未清理",
            "received_at": received_at, **overrides}
    done, _ = domain.register("cmp-x", data, [], POLICY, max(received_at, NOW))
    return done


def through(document, *steps, at):
    details = {"acknowledge": {}, "assign": {}, "resolve": {"resolution": "ok"},
               "close": {"owner_signoff": "satisfied"},
               "reopen": {"reason": "again", "source": "owner"},
               "request_review": {"reason": "不服"}, "overturn_review": {"finding": "改判"}}
    for step in steps:
        document, _ = domain.apply(document, step, "s-1", at, POLICY, **details[step])
    return document


def test_figures():
    late = NOW + timedelta(days=5)
    complaints = [
        # on time all the way and closed
        through(complaint(), "acknowledge", "assign", "resolve", "close", at=NOW),
        # first reply on time, answer late, reopened
        through(through(complaint(channel="wechat"), "acknowledge", at=NOW),
                "assign", "resolve", "close", "reopen", at=late),
        # nothing done yet, deadlines past
        complaint(category="noise", severity="major"),
        # still within its deadlines (received just now, looked at "now")
        complaint(received_at=NOW + timedelta(days=9), category="parking"),
        # a repeat, with a review that was overturned
        through(dict(complaint(), repeat_of="cmp-0"),
                "acknowledge", "assign", "resolve", "close", "request_review", "overturn_review",
                at=NOW),
        # malicious: counted as received, left out of everything else
        dict(complaint(category="fees"), malicious=True),
    ]
    figures = stats.complaint_figures(complaints, NOW + timedelta(days=9))
    assert (figures["received"], figures["malicious"], figures["counted"]) == (6, 1, 5)
    assert (figures["closed"], figures["open"], figures["closed_rate"]) == (1, 4, 0.2)
    assert figures["by_category"]["cleaning"] == 3 and figures["by_category"]["fees"] == 0
    assert figures["by_channel"] == {"hotline": 4, "visit": 0, "online": 0, "wechat": 1,
                                     "mailbox": 0, "letter": 0}
    assert figures["by_severity"] == {"normal": 4, "major": 1, "emergency": 0}
    assert figures["by_status"]["reopened"] == 2 and figures["by_status"]["registered"] == 2
    assert figures["first_reply"] == {"on_time": 3, "late": 1, "pending": 1}
    assert figures["first_reply_on_time_rate"] == 0.75
    assert figures["reply"] == {"on_time": 2, "late": 2, "pending": 1}
    assert figures["reply_on_time_rate"] == 0.5
    assert (figures["repeats"], figures["repeat_rate"]) == (1, 0.2)
    assert (figures["reopened"], figures["reopened_rate"]) == (2, 0.4)
    assert (figures["reviews"], figures["reviews_overturned"]) == (1, 1)


def test_no_complaints_no_rates():
    figures = stats.complaint_figures([], NOW)
    assert figures["received"] == 0
    assert figures["first_reply_on_time_rate"] is None and figures["repeat_rate"] is None


def test_figures_from_counters_equal_the_scan_at_any_moment():
    """The counters of the same complaints give the same figures as the scan, whenever one
    asks: deadlines kept under their times turn late as ``now`` passes them."""
    late = NOW + timedelta(days=5)
    complaints = [
        through(complaint(), "acknowledge", "assign", "resolve", "close", at=NOW),
        through(complaint(channel="wechat"), "acknowledge", at=late),
        complaint(category="noise", severity="major"),
        complaint(received_at=NOW + timedelta(days=9), category="parking"),
        through(dict(complaint(), repeat_of="cmp-0"), "acknowledge", "assign", "resolve",
                "close", "request_review", "overturn_review", at=NOW),
        dict(complaint(category="fees"), malicious=True),
    ]
    counts = Counter()
    for each in complaints:
        stats.add(counts, stats.contribution(each))
    moments = sorted({NOW + timedelta(days=days) for days in (0, 1, 2, 5, 9, 12, 30)}
                     | {deadline["due_at"] for each in complaints for deadline in each["deadlines"]})
    for moment in moments:
        assert stats.figures(counts, moment) == stats.complaint_figures(complaints, moment)


def test_a_changes_difference_leaves_out_what_it_does_not_change():
    before = stats.contribution(complaint())
    after = stats.contribution(through(complaint(), "acknowledge", at=NOW))
    assert stats.difference(before, after) == {
        "by_status.registered": -1, "by_status.acknowledged": 1,
        f"first_reply_due.{stats._millis(complaint()['first_response_due'])}": -1,
        "first_reply.on_time": 1,
        f"next_due.{stats._millis(complaint()['first_response_due'])}": -1,
        f"next_due.{stats._millis(complaint()['reply_due'])}": 1}
    assert stats.difference(after, after) == {}


def test_closings_the_owner_signed_off_unsatisfied_are_counted_apart():
    now = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    base = {"estate_id": "e-1", "category": "cleaning", "channel": "hotline",
            "severity": "normal", "deadlines": [], "status": "closed"}
    complaints = [dict(base, owner_signoff="unsatisfied"), dict(base, owner_signoff="satisfied"),
                  dict(base, status="reopened", owner_signoff="unsatisfied")]
    assert stats.complaint_figures(complaints, now)["closed_unsatisfied"] == 1
    counts = Counter()
    for complaint in complaints:
        stats.add(counts, stats.contribution(complaint))
    assert stats.figures(dict(counts), now)["closed_unsatisfied"] == 1
