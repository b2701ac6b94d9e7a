"""Reporting periods — ``YYYY``, ``YYYY-MM``, ``YYYY-Qn``, ``YYYY-Hn`` — counted in an
estate's own time zone (a complaint at 23:30 on 31 March in Shanghai is March's)."""
import re
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

# ASCII digits (\d also takes "２０２６"), years 1900-2099: year 0 or 9999 has no month
# after it, nor a UTC start, in the calendar (date() refuses them).
YEAR = r"(?:19|20)[0-9]{2}"
PERIOD = re.compile(rf"^({YEAR})(?:-(?:(0[1-9]|1[0-2])|Q([1-4])|H([12])))?$")
PERIOD_HELP = 'expected "YYYY", "YYYY-MM", "YYYY-Qn" or "YYYY-Hn" (years 1900-2099)'


def period_months(period: str) -> list[str]:
    """The months of ``period`` as ``YYYY-MM``; ValueError if it is not a period."""
    match = PERIOD.fullmatch(period)
    if not match:
        raise ValueError(f"not a period: {period!r}")
    year, month, quarter, half = match.groups()
    if month:
        numbers = [int(month)]
    elif quarter:
        numbers = list(range(3 * int(quarter) - 2, 3 * int(quarter) + 1))
    elif half:
        numbers = list(range(6 * int(half) - 5, 6 * int(half) + 1))
    else:
        numbers = list(range(1, 13))
    return [f"{year}-{number:02d}" for number in numbers]


def period_bounds(period: str, timezone_name: str) -> tuple[datetime, ...]:
    """``period`` as [start, end) in UTC, its months counted in local time."""
    months = period_months(period)
    first_year, first_month = (int(part) for part in months[0].split("-"))
    last_year, last_month = (int(part) for part in months[-1].split("-"))
    following = date(last_year + last_month // 12, last_month % 12 + 1, 1)
    zone = ZoneInfo(timezone_name)
    return tuple(datetime.combine(day, time(), zone).astimezone(UTC)
                 for day in (date(first_year, first_month, 1), following))


def month_of(moment: datetime, timezone_name: str) -> str:
    """The ``YYYY-MM`` month ``moment`` falls in, in that time zone: the month whose
    ``period_bounds`` hold it (what counters kept per month are filed under)."""
    local = moment.astimezone(ZoneInfo(timezone_name))
    return f"{local.year:04d}-{local.month:02d}"
