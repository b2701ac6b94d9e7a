"""A channel's sending rate: the provider's own limit (messages a second), honoured by
every send through that channel in this instance (``rate_per_second`` in the channel's
``NOTIFY_CHANNEL_SETTINGS``; none: unlimited, as the console is); and the counter a
recipient's daily limit on a channel is kept under (``NOTIFY_DAILY_LIMITS``)."""
import time
from collections.abc import Callable
from datetime import datetime

from services.notify.event_params import local_date


class TokenBucket:
    """At most ``rate`` messages a second on average and ``burst`` at once.

    ``reserve`` takes the next message's place and says how long to wait for it:
    workers sending at once each get their own moment, one after another.
    """

    def __init__(self, rate: float, burst: float | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.rate = float(rate)
        self.capacity = float(burst or max(1.0, self.rate))
        self.tokens = self.capacity
        self.clock = clock or monotonic
        self.at = self.clock()

    def reserve(self) -> float:
        """Seconds to wait before sending one message (0: at once); its place is taken."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate) - 1
        self.at = now
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


def monotonic() -> float:
    return time.monotonic()


def pause(seconds: float) -> None:
    """Wait (a green thread yields to the others under nameko)."""
    time.sleep(seconds)


def quota_key(recipient: str, channel: str, now: datetime, zone: str) -> str:
    """One counter per recipient, channel and local day."""
    return f"{recipient}|{channel}|{local_date(now, zone)}"
