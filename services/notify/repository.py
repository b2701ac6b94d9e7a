"""notify's data: the delivery log, households' preferences and daily quotas.

The dispatcher finds its work by ``due_at``, a field a delivery holds only while it is
queued: when a worker may take it next (its next attempt; while a worker holds it, the
end of that claim, so a dead worker's deliveries come back). Under a sparse index, the
query for what is due never looks at the history (sent, failed, suppressed).
"""
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, cast

from pymongo import ASCENDING, DESCENDING, IndexModel

from services.notify.delivery_log import DUE_AT, EPOCH, Delivery
from shared.envelope import Envelope
from shared.leases import claim_many
from shared.once import insert_once
from shared.paging import find_page
from shared.store import OUTBOX, Document, Repository, estate_scope

QUOTA_KEPT = timedelta(days=3)
# the order of list_deliveries (paging adds ``_id`` last); the indexes below serve it
NEWEST_FIRST = [("created_at", DESCENDING), ("_id", DESCENDING)]
# list filters that are not plain equality on a stored field
NOT_EQUALITY = ("estate_id", "estate_ids", "limit", "cursor")


class NotifyRepository(Repository):
    indexes: ClassVar[dict] = {
        "deliveries": [
            IndexModel([("ref", ASCENDING), *NEWEST_FIRST]),
            IndexModel([("status", ASCENDING), *NEWEST_FIRST]),
            IndexModel([("recipient", ASCENDING), *NEWEST_FIRST]),
            IndexModel([("estate_id", ASCENDING), *NEWEST_FIRST]),
            IndexModel(NEWEST_FIRST),
            # what the dispatcher looks for: only queued deliveries hold one
            IndexModel([(DUE_AT, ASCENDING)], sparse=True),
        ],
        "quotas": [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
    }
    outbox_collections = ("deliveries",)

    def create_indexes(self) -> None:
        super().create_indexes()
        # deliveries queued before ``due_at`` existed get theirs (once: then none lacks it)
        for delivery in self.db.deliveries.find(
                {"status": "queued", DUE_AT: {"$exists": False}},
                {"next_attempt_at": 1, "claimed_until": 1}):
            self.db.deliveries.update_one(
                {"_id": delivery["_id"], "status": "queued"},
                {"$set": {DUE_AT: _due(delivery)}})

    # deliveries ------------------------------------------------------------------

    def find_delivery(self, delivery_id: str) -> Document | None:
        return self.db.deliveries.find_one({"_id": delivery_id})

    def logged_deliveries(self, delivery_ids: list[str]) -> set[str]:
        """Which of ``delivery_ids`` are logged already (one read)."""
        if not delivery_ids:
            return set()
        return {delivery["_id"] for delivery in self.db.deliveries.find(
            {"_id": {"$in": delivery_ids}}, {"_id": 1})}

    def add_delivery(self, delivery: Mapping[str, Any],
                     events: Sequence[Envelope] = ()) -> Document | None:
        """Insert a new delivery; None if one with this id exists (a redelivered event)."""
        delivery = {key: value for key, value in delivery.items() if key != DUE_AT}
        if delivery["status"] == "queued":
            delivery[DUE_AT] = _due(delivery)
        return insert_once(self.insert_with_events, "deliveries", delivery, events)

    def claim_due(self, now: datetime, claim: str, lease: timedelta, limit: int) -> list[Delivery]:
        """Take up to ``limit`` queued deliveries that are due and that no worker holds,
        for ``lease``: the list, those due longest ago first.

        ``shared.leases.claim_many``, by ``due_at`` (candidates unsorted: a sort would make
        the embedded store match and copy every queued delivery; MongoDB walks the
        ``due_at`` index, in its order; the embedded store gives them in the order they
        were stored, oldest logged first), ``claim`` (unique) marking those taken.
        Taking one moves its ``due_at`` to the end of the lease, so a worker that dies
        while sending lets it go again then.
        """
        taken = claim_many(self.db.deliveries, {"status": "queued"}, DUE_AT, now, lease, limit,
                           {"claim": claim}, {"claimed_until": now + lease})
        # (what ``new_delivery`` logged: the one place that writes a whole delivery)
        return cast(list[Delivery], sorted(taken, key=lambda delivery: delivery["next_attempt_at"]))

    def save_claimed(self, delivery_id: str, claim: str, changes: Mapping[str, Any],
                     events: Sequence[Envelope] = (), release: bool = True) -> Document | None:
        """Write the outcome of a claimed delivery (and its events) if this worker still holds it."""
        return self.update_with_events(
            "deliveries", {"_id": delivery_id, "claim": claim, "status": "queued"},
            _outcome_update(changes, release), events)

    def save_outcome(self, delivery_id: str, claim: str, changes: Mapping[str, Any],
                     events: Sequence[Envelope] = ()) -> bool:
        """Write a claimed delivery's outcome with its events held in its outbox, not yet
        published (``publish_held`` sends a batch's together); False if the claim was
        lost (another worker has the delivery). A crash before the publish leaves the
        events to the relay."""
        update = _outcome_update(changes, release=True)
        if events:
            update.setdefault("$push", {})[OUTBOX] = {"$each": list(events)}
            update["$set"].update(self._outbox_fields(events))
        return bool(self.db.deliveries.update_one(
            {"_id": delivery_id, "claim": claim, "status": "queued"}, update).matched_count)

    def publish_held(self, held: Mapping[str, Sequence[Envelope]]) -> None:
        """{delivery id: events held in its outbox (``save_outcome``)}: published together,
        with one wait for the broker's confirms (``publish_outboxes``). A delivery's events
        are written only with the outcome that ends it, so its outbox holds just these."""
        self.publish_outboxes("deliveries", held, whole=True)

    def cancel_pending(self, ref: str, template: str, reason: str, now: datetime,
                       keep: str | None = None) -> int:
        """Suppress the queued, unclaimed deliveries of ``template`` for ``ref`` (but ``keep``)."""
        query: dict[str, Any] = {"ref": ref, "template": template, "status": "queued",
                 "claimed_until": {"$lte": now}}
        if keep:
            query["_id"] = {"$ne": keep}
        return self.db.deliveries.update_many(
            query, {"$set": {"status": "suppressed", "reason": reason, "updated_at": now},
                    "$unset": {DUE_AT: ""}}
        ).modified_count

    def list_deliveries(self, filters: Mapping[str, Any]) -> tuple[list[Document], str | None]:
        """Deliveries newest first, a page at a time: (deliveries, next cursor)."""
        query = {key: value for key, value in filters.items() if key not in NOT_EQUALITY}
        query.update(estate_scope(filters))
        return find_page(self.db.deliveries, query, NEWEST_FIRST, filters["limit"],
                         filters.get("cursor"))

    # daily quotas ------------------------------------------------------------------

    def take_quota(self, key: str, limit: int) -> bool:
        """Count one message against ``key`` (one recipient, channel and day); False
        once ``limit`` is reached.

        Atomic: the counter only moves while it is below the limit, so two
        workers cannot both take the last message of the day. Counters are
        garbage a few days later (the key names its day): the store drops them.
        """
        insert_once(self.db.quotas.insert_one,   # (none if today's counter exists already)
                    {"_id": key, "used": 0, "expires_at": datetime.now(UTC) + QUOTA_KEPT})
        taken = self.db.quotas.find_one_and_update(
            {"_id": key, "used": {"$lt": limit}}, {"$inc": {"used": 1}})
        return taken is not None

    def give_back_quota(self, key: str) -> None:
        """The message counted did not go: it does not use up the day's quota."""
        self.db.quotas.update_one({"_id": key, "used": {"$gt": 0}}, {"$inc": {"used": -1}})

    # preferences -----------------------------------------------------------------

    def get_preferences(self, household_id: str) -> Document | None:
        return self.db.preferences.find_one({"_id": household_id})

    def preferences_of(self, household_ids: Iterable[str]) -> dict:
        """{household id: preferences} of those that set any, in one query."""
        return {preferences["_id"]: preferences for preferences in
                self.db.preferences.find({"_id": {"$in": list(household_ids)}})}

    def save_preferences(self, preferences: Document) -> Document:
        self.db.preferences.replace_one({"_id": preferences["_id"]}, preferences, upsert=True)
        return preferences


def _due(delivery: Mapping[str, Any]) -> datetime:
    """When a queued delivery is next for a worker: its next attempt, or the end of the
    claim a worker holds on it, whichever is later."""
    return max(delivery["next_attempt_at"], delivery.get("claimed_until") or EPOCH)


def _outcome_update(changes: Mapping[str, Any], release: bool) -> dict[str, Any]:
    """The update that writes a claimed delivery's outcome, ``due_at`` kept right: gone
    once it left the queue; released, its next attempt (a queued outcome carries one;
    without, it stays due at the end of the claim)."""
    changes = dict(changes)
    if release:
        changes.update(claim=None, claimed_until=EPOCH)
    update: dict[str, Any] = {"$set": changes}
    if changes.get("status", "queued") != "queued":
        update["$unset"] = {DUE_AT: ""}
    elif release and "next_attempt_at" in changes:
        changes[DUE_AT] = changes["next_attempt_at"]
    return update

