"""notify's data: the delivery log, households' preferences and daily quotas."""
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.notify.domain import EPOCH
from shared.paging import find_page
from shared.store import Repository, estate_scope

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
            # what the dispatcher looks for: queued, due, not held by a worker
            IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING),
                        ("claimed_until", ASCENDING)]),
        ],
        "quotas": [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
    }
    outbox_collections = ("deliveries",)

    # deliveries ------------------------------------------------------------------

    def find_delivery(self, delivery_id):
        return self.db.deliveries.find_one({"_id": delivery_id})

    def add_delivery(self, delivery, events=()):
        """Insert a new delivery; None if one with this id exists (a redelivered event)."""
        try:
            return self.insert_with_events("deliveries", delivery, events)
        except DuplicateKeyError:
            return None

    def claim_due(self, now, claim, lease):
        """Take the queued delivery due longest ago that no worker holds, for ``lease``.

        One atomic find-and-update: of two instances' dispatchers, only one
        gets each delivery. A worker that dies while sending lets its claim
        lapse, and the delivery is taken again (a crash between logging a
        delivery and sending it loses nothing).
        """
        return self.db.deliveries.find_one_and_update(
            {"status": "queued", "next_attempt_at": {"$lte": now}, "claimed_until": {"$lte": now}},
            {"$set": {"claim": claim, "claimed_until": now + lease}},
            sort=[("next_attempt_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    def save_claimed(self, delivery_id, claim, changes, events=(), release=True):
        """Write the outcome of a claimed delivery (and its events) if this worker still holds it."""
        changes = dict(changes)
        if release:
            changes.update(claim=None, claimed_until=EPOCH)
        return self.update_with_events(
            "deliveries", {"_id": delivery_id, "claim": claim, "status": "queued"},
            {"$set": changes}, events)

    def cancel_pending(self, ref, template, reason, now, keep=None):
        """Suppress the queued, unclaimed deliveries of ``template`` for ``ref`` (but ``keep``)."""
        query = {"ref": ref, "template": template, "status": "queued",
                 "claimed_until": {"$lte": now}}
        if keep:
            query["_id"] = {"$ne": keep}
        return self.db.deliveries.update_many(
            query, {"$set": {"status": "suppressed", "reason": reason, "updated_at": now}}
        ).modified_count

    def list_deliveries(self, filters):
        """Deliveries newest first, a page at a time: (deliveries, next cursor)."""
        query = {key: value for key, value in filters.items() if key not in NOT_EQUALITY}
        query.update(estate_scope(filters))
        return find_page(self.db.deliveries, query, NEWEST_FIRST, filters["limit"],
                         filters.get("cursor"))

    # daily quotas ------------------------------------------------------------------

    def take_quota(self, key, limit):
        """Count one message against ``key`` (one recipient, channel and day); False
        once ``limit`` is reached.

        Atomic: the counter only moves while it is below the limit, so two
        workers cannot both take the last message of the day. Counters are
        garbage a few days later (the key names its day): the store drops them.
        """
        try:
            self.db.quotas.insert_one({"_id": key, "used": 0,
                                       "expires_at": datetime.now(UTC) + QUOTA_KEPT})
        except DuplicateKeyError:
            pass   # today's counter exists already
        taken = self.db.quotas.find_one_and_update(
            {"_id": key, "used": {"$lt": limit}}, {"$inc": {"used": 1}})
        return taken is not None

    def give_back_quota(self, key):
        """The message counted did not go: it does not use up the day's quota."""
        self.db.quotas.update_one({"_id": key, "used": {"$gt": 0}}, {"$inc": {"used": -1}})

    # preferences -----------------------------------------------------------------

    def get_preferences(self, household_id):
        return self.db.preferences.find_one({"_id": household_id})

    def save_preferences(self, preferences):
        self.db.preferences.replace_one({"_id": preferences["_id"]}, preferences, upsert=True)
        return preferences
