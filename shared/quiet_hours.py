"""Quiet hours: local times like "22:00-08:00" when owners are not to be disturbed
(a range may wrap midnight). One reading of them for every service: notify holds
messages until they end, revisit books no visit inside them."""
import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

PATTERN = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)\s*[-–~]\s*([01]\d|2[0-3]):([0-5]\d)$")


def normalize(text: object) -> str:
    """``text`` as "HH:MM-HH:MM"; ValueError if it is not a range of two different times."""
    match = PATTERN.match(str(text).strip())
    if not match:
        raise ValueError('expected "HH:MM-HH:MM", e.g. "22:00-08:00"')
    start, end = f"{match[1]}:{match[2]}", f"{match[3]}:{match[4]}"
    if start == end:
        raise ValueError("start and end must differ")
    return f"{start}-{end}"


def bounds(text: str) -> tuple[time, time]:
    start, end = normalize(text).split("-")
    return time.fromisoformat(start), time.fromisoformat(end)


def contains(text: str, clock: time) -> bool:
    """Whether the local time of day ``clock`` falls within ``text``."""
    start, end = bounds(text)
    return start <= clock < end if start < end else (clock >= start or clock < end)


def quiet_until(now: datetime, text: str | None, zone_name: str) -> datetime | None:
    """When the quiet period ``now`` falls in ends (UTC), or None if ``now`` is not quiet:
    with 22:00-08:00, both 23:30 and 06:00 wait for 08:00."""
    if not text:
        return None
    local = now.astimezone(ZoneInfo(zone_name))
    clock = local.time().replace(tzinfo=None)
    if not contains(text, clock):
        return None
    start, end = bounds(text)
    end_day = local.date() + timedelta(days=1) if start > end and clock >= start else local.date()
    return datetime.combine(end_day, end, ZoneInfo(zone_name)).astimezone(UTC)
