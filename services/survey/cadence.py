"""Each estate's survey cadence, kept: a warning when a period ends without a closed
round. Pure Python.

「管理处每半年进行一次业主/用户意见调查」 is the default; 「每季度组织一次住户满意度调查」
and 「每年至少进行一次住户意见调查」 are the other texts' cadences, so each estate's is its
policy (``SurveyPolicy.cadence``: ``SURVEY_POLICY``, per estate
``SURVEY_ESTATE_POLICIES``). Once a period is over
in the estate's time zone, it is decided once (``verdict``): covered by a round of the
estate that ran in it and closed, still pending while such a round is open, else missed —
``survey_cadence_missed``, which tells the estate manager and headquarters.
"""
from datetime import datetime
from zoneinfo import ZoneInfo

from shared.envelope import Envelope, new_event
from shared.periods import period_bounds

SOURCE = "survey"
# cadence -> months a period lasts
CADENCES = {"half_yearly": 6, "quarterly": 3, "yearly": 12}
DEFAULT_CADENCE = "half_yearly"
COVERED, PENDING, MISSED = "covered", "pending", "missed"
# rounds that never ran (abandoned before they opened) cover nothing
NOT_RUN = ("abandoned",)


def period_name(year: int, month: int, cadence: str) -> str:
    """The period of ``cadence`` holding ``month`` of ``year``: 2026-H1, 2026-Q2, 2026."""
    if cadence == "yearly":
        return f"{year:04d}"
    if cadence == "half_yearly":
        return f"{year:04d}-H{(month - 1) // 6 + 1}"
    return f"{year:04d}-Q{(month - 1) // 3 + 1}"


def last_ended_period(now: datetime, cadence: str, timezone: str
                      ) -> tuple[str, datetime, datetime]:
    """The latest period of ``cadence`` over at ``now`` in ``timezone``: (name, start, end),
    the bounds in UTC."""
    local = now.astimezone(ZoneInfo(timezone))
    months = local.year * 12 + local.month - 1 - CADENCES[cadence]   # a month of it
    name = period_name(months // 12, months % 12 + 1, cadence)
    start, end = period_bounds(name, timezone)
    return name, start, end


def verdict(rounds: list[dict], start: datetime, end: datetime) -> str:
    """Whether the period [start, end) was surveyed, from the estate's rounds that may
    have run in it: ``covered`` by a round opened before its end and closed after its
    start, ``pending`` while such a round is still to close, else ``missed``."""
    ran = [round_ for round_ in rounds if round_["status"] not in NOT_RUN
           and round_["opens_at"] < end and round_["closes_at"] >= start]
    if any(round_["status"] == "closed" and round_.get("closed_at", round_["closes_at"]) >= start
           for round_ in ran):
        return COVERED
    if any(round_["status"] != "closed" for round_ in ran):
        return PENDING
    return MISSED


def missed_event(estate_id: str, period: str, cadence: str, start: datetime, end: datetime,
                 now: datetime) -> Envelope:
    """``survey_cadence_missed``: one per estate and period, whoever sends it."""
    return new_event("survey_cadence_missed", SOURCE, estate_id, {
        "period": period, "cadence": cadence, "period_start": start, "period_end": end},
        now, key=f"{estate_id}/{period}")


def check_id(estate_id: str, period: str) -> str:
    """The record of an estate's period decided (``verdict``), written once."""
    return f"{estate_id}:{period}"
