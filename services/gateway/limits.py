"""Rate limits of the pages anyone can reach without a login (owner links, the online
complaint form): fixed windows counted in the gateway's store, so every instance of the
gateway counts together."""
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.gateway.repository import GatewayRepository


@dataclass(frozen=True)
class RateLimit:
    hits: int
    per: timedelta

    def window(self, now: datetime) -> tuple[int, datetime]:
        """The window ``now`` falls in (its number) and when it ends."""
        seconds = self.per.total_seconds()
        number = int(now.timestamp() // seconds)
        return number, datetime.fromtimestamp((number + 1) * seconds, now.tzinfo)


# A link is used by one household: a few pages and answers an hour are plenty.
PER_TOKEN = RateLimit(60, timedelta(hours=1))
# An address may be a whole estate's shared Wi-Fi or a carrier's gateway.
PER_ADDRESS = RateLimit(300, timedelta(hours=1))
# The online complaint form: a phone number files a few complaints a day at most.
COMPLAINTS_PER_PHONE = RateLimit(5, timedelta(days=1))
COMPLAINTS_PER_ADDRESS = RateLimit(30, timedelta(hours=1))


def allow(repository: "GatewayRepository", kind: str, key: str, limit: RateLimit,
          now: datetime) -> bool:
    """Count one use of ``key``; False once it is over ``limit`` in the current window."""
    number, ends = limit.window(now)
    return repository.count_hit(f"{kind}:{key}:{number}", ends) <= limit.hits
