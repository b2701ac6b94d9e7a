"""Time from an injectable clock: always aware UTC; tests move it."""
from datetime import UTC, datetime, timedelta


def to_millis(moment: datetime) -> datetime:
    """MongoDB keeps milliseconds; cutting here keeps stored and computed times equal."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class Clock:
    def now(self) -> datetime:
        return to_millis(datetime.now(UTC))


class FrozenClock(Clock):
    """A clock that stands still until a test moves it."""

    def __init__(self, at: datetime) -> None:
        self.at = to_millis(at.astimezone(UTC))

    def now(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta
