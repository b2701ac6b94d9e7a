from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from shared.workdays import WorkingCalendar

SHANGHAI = ZoneInfo("Asia/Shanghai")
calendar = WorkingCalendar()


def local(text):
    return datetime.fromisoformat(text).replace(tzinfo=SHANGHAI)


def test_weekend_is_skipped():
    friday = local("2026-11-20T15:00")
    assert calendar.add_working_days(friday, 1) == local("2026-11-23T15:00")


def test_national_day_golden_week_and_its_make_up_saturday():
    # 2026: 1-7 October off; Saturday 10 October is a make-up working day.
    assert not calendar.is_working_day(date(2026, 10, 5))
    assert calendar.is_working_day(date(2026, 10, 10))
    assert calendar.add_working_days(local("2026-09-30T10:00"), 1) == local("2026-10-08T10:00")
    assert calendar.add_working_days(local("2026-10-09T10:00"), 1) == local("2026-10-10T10:00")


def test_spring_festival_2026_and_its_make_up_days():
    assert not calendar.is_working_day(date(2026, 2, 17))       # 初一
    assert calendar.is_working_day(date(2026, 2, 14))           # make-up Saturday
    assert calendar.is_working_day(date(2026, 2, 28))
    assert calendar.add_working_days(local("2026-02-13T09:00"), 1) == local("2026-02-14T09:00")


def test_rest_day_receipt_is_due_at_the_end_of_the_next_working_day():
    saturday = local("2026-11-21T11:00")
    assert calendar.add_working_days(saturday, 1) == local("2026-11-24T00:00")


def test_deadline_across_the_new_year_does_not_fail():
    due = calendar.add_working_days(local("2026-12-30T16:00"), 3)
    assert due == local("2027-01-05T16:00")     # 1 January 2027 is a holiday
    assert due.tzinfo == UTC


def test_a_groups_announced_table_overrides_the_library():
    announced = WorkingCalendar(overrides={"2027-01-04": False, "2027-01-09": True})
    assert not announced.is_working_day(date(2027, 1, 4))
    assert announced.is_working_day(date(2027, 1, 9))
    assert announced.add_working_days(local("2026-12-31T10:00"), 1) == local("2027-01-05T10:00")


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)),
       st.integers(min_value=1, max_value=5))
def test_deadline_lands_on_a_working_day_and_spans_exactly_n_of_them(naive, days):
    start = naive.replace(tzinfo=SHANGHAI)
    due = calendar.add_working_days(start, days).astimezone(SHANGHAI)
    assert due > start
    if calendar.is_working_day(start.date()):
        assert due.time() == start.time()           # same local time, n working days on
        due_day = due.date()
    else:
        assert due.time() == time(0)                # the end of the n-th working day
        due_day = due.date() - timedelta(days=1)
    assert calendar.is_working_day(due_day)
    counted = sum(
        calendar.is_working_day(start.date() + timedelta(days=offset))
        for offset in range((due_day - start.date()).days + 1)
    )
    # a working start day itself does not count; a rest day never counts anyway
    assert counted - calendar.is_working_day(start.date()) == days


def test_working_hours_before_a_deadline_skip_rest_days():
    # every hour of a working day is working time; weekends and holidays are not
    assert calendar.working_hours_before(local("2026-11-23T10:00"), 2) == local("2026-11-23T08:00")
    assert calendar.working_hours_before(local("2026-11-23T01:00"), 2) == local("2026-11-20T23:00")
    # the end of Monday (a deadline set on a rest day), half a working day before
    assert calendar.working_hours_before(local("2026-11-24T00:00"), 12) == local("2026-11-23T12:00")
    # back over the golden week (1-7 October off) to the eve of National Day
    assert calendar.working_hours_before(local("2026-10-08T10:00"), 12) == local("2026-09-30T22:00")


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)),
       st.floats(min_value=0.25, max_value=72))
def test_working_hours_before_count_exactly_that_much_working_time(naive, hours):
    due = naive.replace(tzinfo=SHANGHAI)
    warned = calendar.working_hours_before(due, hours)
    assert warned < due.astimezone(UTC)
    day, counted = warned.astimezone(SHANGHAI).date(), timedelta()
    while day <= due.date():   # the working days' share of [warned, due], day by day
        start = datetime.combine(day, time(), SHANGHAI)
        overlap = min(due, start + timedelta(days=1)) - max(warned, start)
        counted += overlap if calendar.is_working_day(day) else timedelta()
        day += timedelta(days=1)
    assert abs(counted - timedelta(hours=hours)) < timedelta(milliseconds=1)


def test_calendar_days_keep_the_local_time_through_holidays():
    assert calendar.add_days(local("2026-09-30T10:00"), 3) == local("2026-10-03T10:00")
