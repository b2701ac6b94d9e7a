"""Reporting periods, counted in the estate's own time zone."""
from datetime import UTC, datetime

import pytest
from nameko.testing.services import worker_factory

from services.intake.policy import Policies
from services.intake.repository import IntakeRepository
from services.intake.service import IntakeService
from services.revisit.policies import PolicyBook
from services.revisit.repository import RevisitRepository
from services.revisit.sampling import month_bounds
from services.revisit.service import RevisitService
from shared.actor import Caller
from shared.clock import FrozenClock
from shared.config import load_config
from shared.errors import InvalidInput
from shared.periods import period_bounds, period_months
from shared.schemas.base import load
from shared.schemas.revisit import CloseSamplingMonth
from tests.helpers import embedded

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


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


@pytest.mark.parametrize("text", ["2026-13", "2026-Q5", "2026-H3", "26-01", "last month",
                                  # no calendar date before year 1 or after 9999
                                  "0000", "0000-01", "9999", "9999-12", "0001-Q1",
                                  "\uff12\uff10\uff12\uff16"])   # full-width digits
def test_what_is_not_a_period_is_refused(text):
    with pytest.raises(ValueError):
        period_months(text)


@pytest.mark.parametrize("period", ["1900-01", "1900", "2099-12", "2099-H2"])
def test_the_first_and_last_periods_have_bounds(period):
    start, end = period_bounds(period, "Asia/Shanghai")
    assert start < end


@pytest.mark.parametrize("month, valid", [
    ("0000-01", False), ("9999-12", False), ("1899-12", False), ("2100-01", False),
    ("1900-01", True), ("2099-12", True)])
def test_a_sampling_month_is_one_with_bounds(month, valid):
    data = {"estate_id": "e-1", "month": month}
    if not valid:
        with pytest.raises(InvalidInput) as refused:
            load(CloseSamplingMonth(), data)
        assert "month" in refused.value.errors
        return
    assert load(CloseSamplingMonth(), data)["month"] == month
    start, end = month_bounds(month, "Asia/Shanghai")
    assert start < end


# A period or month without calendar bounds once reached the services' date() as a 500.

def test_complaint_figures_of_year_zero_are_invalid_input_not_a_crash():
    service = worker_factory(IntakeService, store=embedded(IntakeRepository),
                             clock=FrozenClock(NOW), config={},
                             policies=Policies.from_config(load_config()))
    service.import_households("e-1", [], estate={"name": "测试小区"})
    for call in (lambda: service.complaint_stats("e-1", "0000"),
                 lambda: service.group_complaint_stats("9999-12")):
        with pytest.raises(InvalidInput) as refused:
            call()
        assert "period" in refused.value.errors


def test_revisit_figures_and_month_closing_of_year_zero_are_invalid_input_not_a_crash():
    service = worker_factory(RevisitService, store=embedded(RevisitRepository),
                             clock=FrozenClock(NOW), policies=PolicyBook(load_config()),
                             caller=Caller(None, None))
    for call, field in ((lambda: service.revisit_stats("e-1", "0000"), "period"),
                        (lambda: service.close_sampling_month("e-1", "0000-01"), "month")):
        with pytest.raises(InvalidInput) as refused:
            call()
        assert field in refused.value.errors
