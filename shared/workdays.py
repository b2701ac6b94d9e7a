"""Chinese working days in an estate's time zone.

The official calendar (public holidays and the make-up working days on
weekends, 调休) comes from the ``holidays`` package's China calendar, which
covers future years. A group can load the announced table of a new year as
data (``overrides``: date -> working or not), which wins over the library.
"""
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

DEFAULT_TIMEZONE = "Asia/Shanghai"


class WorkingCalendar:
    def __init__(self, timezone_name=DEFAULT_TIMEZONE, overrides=None):
        self.zone = ZoneInfo(timezone_name)
        self.overrides = {_as_date(day): bool(working) for day, working in (overrides or {}).items()}
        self._official = holidays.China()

    def is_working_day(self, day):
        if day in self.overrides:
            return self.overrides[day]
        return self._official.is_working_day(day)

    def add_working_days(self, start, days):
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

    def _next_working_day(self, day):
        """``day`` itself if it is a working day, else the first one after it."""
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day


def _as_date(value):
    return value if isinstance(value, date) else date.fromisoformat(str(value))
