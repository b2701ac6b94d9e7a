"""The dispatcher: what waited — quiet hours, reminders, retries, a broadcast's notices —
and what a crash left queued, sent a claimed batch at a time. Each delivery is claimed
atomically, so instances never send one twice."""
import logging
import time
from collections.abc import Callable

from services.notify import domain
from services.notify.address_book import Target
from services.notify.delivery import Deliveries
from shared.envelope import similar_events

log = logging.getLogger(__name__)

# A timer tick sends batches until nothing is due or it has run this long; the next
# tick follows at once (nameko's timer never runs two ticks of one instance together).
DISPATCH_TICK_SECONDS = 10

LookUp = Callable[[list[str]], dict[str, Target]]   # contact refs -> their targets, now


def dispatch_due(deliveries: Deliveries, look_up: LookUp) -> None:
    """Claimed batches sent until nothing is due or the tick has run
    ``DISPATCH_TICK_SECONDS``."""
    store, clock, settings = deliveries.store, deliveries.clock, deliveries.settings
    lease, limit = settings.estate(None).claim, settings.dispatch_batch
    stop_at = time.monotonic() + DISPATCH_TICK_SECONDS
    while True:
        batch = store.claim_due(clock.now(), domain.new_claim(), lease, limit)
        dispatch(batch, deliveries, look_up)
        if len(batch) < limit or time.monotonic() >= stop_at:
            return


def dispatch(batch: list[dict], deliveries: Deliveries, look_up: LookUp) -> None:
    """One claimed batch: the contacts of those that waited looked up in one call, each
    sent and its outcome written as it goes, their events published together."""
    waited = [delivery for delivery in batch if domain.waited(delivery)]
    try:
        targets = look_up([delivery["contact_ref"] for delivery in waited])
    except Exception:   # intake down: these stay claimed, and are tried again once it lapses
        log.exception("%d waited deliveries: their contacts could not be looked up",
                      len(waited))
        batch, targets = [delivery for delivery in batch if not domain.waited(delivery)], {}
    held: dict[str, list] = {}   # delivery id -> the events its outcome wrote
    with similar_events():   # a batch's events differ in a few values: only those checked
        for delivery in batch:
            events = _send(delivery, deliveries, targets)
            if events:
                held[delivery["_id"]] = events
    deliveries.store.publish_held(held)


def _send(delivery: dict, deliveries: Deliveries, targets: dict[str, Target]) -> list:
    """One delivery of a claimed batch sent and its outcome written: the events written
    with it, to publish (none if it was not saved)."""
    if deliveries.clock.now() >= delivery["claimed_until"]:
        return []   # a slow batch outlived this claim: another worker may send it
    try:
        if domain.waited(delivery):
            current, ended = deliveries.as_it_is_now(delivery, targets[delivery["contact_ref"]])
            # (``current`` is None only with ``ended``)
            changes, events = ended or deliveries.attempt(current)  # type: ignore[arg-type]
        else:
            changes, events = deliveries.attempt(delivery)
    except Exception:   # its claim lapses and it is tried again; the others go on
        log.exception("delivery %s: dispatch failed", delivery["_id"])
        return []
    if not deliveries.store.save_outcome(delivery["_id"], delivery["claim"], changes, events):
        log.warning("delivery %s: claim lost before its outcome was saved", delivery["_id"])
        return []
    return events
