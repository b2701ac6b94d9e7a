"""Reporting periods, counted in the estate's own time zone."""
import pytest

from shared.periods import period_bounds, period_months


@pytest.mark.parametrize("period, start, end", [
    ("2026-11", "2026-10-31T16:00:00+00:00", "2026-11-30T16:00:00+00:00"),
    ("2026-12", "2026-11-30T16:00:00+00:00", "2026-12-31T16:00:00+00:00"),
    ("2026-Q1", "2025-12-31T16:00:00+00:00", "2026-03-31T16:00:00+00:00"),
    ("2026-Q4", "2026-09-30T16:00:00+00:00", "2026-12-31T16:00:00+00:00"),
    ("2026-H1", "2025-12-31T16:00:00+00:00", "2026-06-30T16:00:00+00:00"),
    ("2026-H2", "2026-06-30T16:00:00+00:00", "2026-12-31T16:00:00+00:00"),
])
def test_periods_are_local_months_quarters_and_halves(period, start, end):
    assert [moment.isoformat() for moment in period_bounds(period, "Asia/Shanghai")] == [
        start, end]


def test_a_year_is_its_twelve_months():
    assert period_months("2026") == [f"2026-{month:02d}" for month in range(1, 13)]
    assert [moment.isoformat() for moment in period_bounds("2026", "Asia/Shanghai")] == [
        "2025-12-31T16:00:00+00:00", "2026-12-31T16:00:00+00:00"]


@pytest.mark.parametrize("text", ["2026-13", "2026-Q5", "2026-H3", "26-01", "last month"])
def test_what_is_not_a_period_is_refused(text):
    with pytest.raises(ValueError):
        period_months(text)
