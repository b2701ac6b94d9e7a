"""Work a service repeats in the background of every instance, in a nameko managed
thread: the outbox relay, the purge of expired request records. Every instance runs
it, so the work itself must be claimed (``shared.leases``) or harmless to do twice.

``forever`` is the loop: wait, work, and on a failure log it and go on (the next round
may find the store or the broker back).

    >>> rounds = []
    >>> def sleep(seconds):
    ...     if len(rounds) == 3:
    ...         raise SystemExit        # the container kills the thread on stop
    ...     rounds.append(seconds)
    >>> def work():
    ...     if len(rounds) == 1:
    ...         raise ConnectionError("broker down")
    >>> try:
    ...     forever(work, 5, "example work", sleep=sleep)
    ... except SystemExit:
    ...     pass
    >>> rounds                          # the failed round did not end the loop
    [5, 5, 5]
"""
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

import eventlet

if TYPE_CHECKING:
    from shared.store import Repository

log = logging.getLogger(__name__)


def forever(work: Callable[[], object], interval: float, what: str,
            sleep: Callable[[float], object] = eventlet.sleep) -> NoReturn:
    """Every ``interval`` seconds, ``work()``; a failure is logged (``what`` failed) and
    the loop goes on."""
    while True:
        sleep(interval)
        try:
            work()
        except Exception:
            log.exception("%s failed; will try again", what)


def relay_outbox(repository: "Repository") -> int:
    """One pass of the outbox relay over ``repository`` (``Repository.relay_outbox``),
    saying how many events it sent again (a writer died, or the broker was away)."""
    sent = repository.relay_outbox()
    if sent:
        log.warning("outbox relay re-sent %d event(s)", sent)
    return sent
