"""The dispatcher: what waited — quiet hours, reminders, retries, a broadcast's notices —
and what a crash left queued, sent a claimed batch at a time. Each delivery is claimed
atomically, so instances never send one twice."""
import logging
import time
from collections.abc import Callable

from services.notify import delivery_log
from services.notify.address_book import Target
from services.notify.delivery import Deliveries
from services.notify.delivery_log import Delivery
from shared.envelope import Envelope, similar_events

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
        claim = delivery_log.new_claim()
        batch = store.claim_due(clock.now(), claim, lease, limit)
        dispatch(batch, claim, deliveries, look_up)
        if len(batch) < limit or time.monotonic() >= stop_at:
            return


def dispatch(batch: list[Delivery], claim: str, deliveries: Deliveries,
             look_up: LookUp) -> None:
    """One batch claimed under ``claim``: the contacts of those that waited looked up in one
    call, each sent and its outcome written as it goes, their events published together."""
    waited_refs = [ref for ref in map(delivery_log.waited, batch) if ref]
    try:
        targets = look_up(waited_refs)
    except Exception:   # intake down: these stay claimed, and are tried again once it lapses
        log.exception("%d waited deliveries: their contacts could not be looked up",
                      len(waited_refs))
        batch, targets = [delivery for delivery in batch if not delivery_log.waited(delivery)], {}
    held: dict[str, list] = {}   # delivery id -> the events its outcome wrote
    with similar_events():   # a batch's events differ in a few values: only those checked
        for delivery in batch:
            events = _send(delivery, claim, deliveries, targets)
            if events:
                held[delivery["_id"]] = events
    deliveries.store.publish_held(held)


def _send(delivery: Delivery, claim: str, deliveries: Deliveries,
          targets: dict[str, Target]) -> list[Envelope]:
    """One delivery of a claimed batch sent and its outcome written: the events written
    with it, to publish (none if it was not saved)."""
    if deliveries.clock.now() >= delivery["claimed_until"]:
        return []   # a slow batch outlived this claim: another worker may send it
    try:
        contact_ref = delivery_log.waited(delivery)
        if contact_ref:
            current, ended = deliveries.as_it_is_now(delivery, targets[contact_ref])
            # (``current`` is None only with ``ended``)
            changes, events = ended or deliveries.attempt(current)  # type: ignore[arg-type]
        else:
            changes, events = deliveries.attempt(delivery)
    except Exception:   # its claim lapses and it is tried again; the others go on
        log.exception("delivery %s: dispatch failed", delivery["_id"])
        return []
    if not deliveries.store.save_outcome(delivery["_id"], claim, changes, events):
        log.warning("delivery %s: claim lost before its outcome was saved", delivery["_id"])
        return []
    return events
