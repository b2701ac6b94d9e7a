"""Chinese working days in an estate's time zone.

The official calendar (public holidays and the make-up working days on
weekends, 调休) comes from the ``holidays`` package's China calendar, which
covers future years. A group can load the announced table of a new year as
data (``overrides``: date -> working or not), which wins over the library.
"""
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays

DEFAULT_TIMEZONE = "Asia/Shanghai"


class WorkingCalendar:
    def __init__(self, timezone_name: str = DEFAULT_TIMEZONE,
                 overrides: Mapping[Any, object] | None = None) -> None:
        self.zone = ZoneInfo(timezone_name)
        self.overrides = {_as_date(day): bool(working) for day, working in (overrides or {}).items()}
        self._official = holidays.China()

    def is_working_day(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        return self._official.is_working_day(day)

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """The deadline ``days`` working days after ``start``, in UTC.

        From a working day: the same local time on the ``days``-th next working
        day. From a rest day, counting starts with the next working day, so a
        Saturday complaint with one working day is due at the end of Monday.
        """
        local = start.astimezone(self.zone)
        day = local.date()
        if not self.is_working_day(day):
            day = self._next_working_day(day)
            for _ in range(days - 1):
                day = self._next_working_day(day + timedelta(days=1))
            end_of_day = datetime.combine(day + timedelta(days=1), time(), self.zone)
            return end_of_day.astimezone(UTC)
        for _ in range(days):
            day = self._next_working_day(day + timedelta(days=1))
        return datetime.combine(day, local.time(), self.zone).astimezone(UTC)

    def add_days(self, start: datetime, days: int) -> datetime:
        """The same local time ``days`` calendar days after ``start``, in UTC (「3日内」)."""
        local = start.astimezone(self.zone)
        later = datetime.combine(local.date() + timedelta(days=days), local.time(), self.zone)
        return later.astimezone(UTC)

    def working_hours_before(self, moment: datetime, hours: float) -> datetime:
        """The moment ``hours`` of working time before ``moment``, in UTC.

        Working time is every hour of a working day (midnight to midnight in the zone):
        the calendar has no office hours, and its deadlines fall at any hour of a working
        day. Rest days do not count, so 2 working hours before Monday 01:00 is Friday
        23:00 (the weekend between). One working day is 24 working hours.
        """
        left = timedelta(hours=hours)
        end = moment.astimezone(UTC)
        day = end.astimezone(self.zone).date()
        while True:
            start = datetime.combine(day, time(), self.zone).astimezone(UTC)
            if self.is_working_day(day):
                if end - start >= left:
                    return end - left
                left -= end - start
            day, end = day - timedelta(days=1), start

    def _next_working_day(self, day: date) -> date:
        """``day`` itself if it is a working day, else the first one after it."""
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day


def _as_date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
