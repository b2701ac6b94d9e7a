"""notify's data: the delivery log and households' preferences."""
from typing import ClassVar

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from shared.store import Repository


class NotifyRepository(Repository):
    indexes: ClassVar[dict] = {
        "deliveries": [
            IndexModel([("ref", ASCENDING), ("created_at", DESCENDING)]),
            IndexModel([("status", ASCENDING), ("created_at", DESCENDING)]),
            IndexModel([("recipient", ASCENDING), ("created_at", DESCENDING)]),
        ],
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

    def finish_delivery(self, delivery_id, changes, events):
        """Apply the outcome of a queued delivery together with the event announcing it."""
        return self.update_with_events(
            "deliveries", {"_id": delivery_id, "status": "queued"}, {"$set": changes}, events)

    def list_deliveries(self, filters, limit=500):
        return list(self.db.deliveries.find(dict(filters)).sort("created_at", DESCENDING)
                    .limit(limit))

    # preferences -----------------------------------------------------------------

    def get_preferences(self, household_id):
        return self.db.preferences.find_one({"_id": household_id})

    def save_preferences(self, preferences):
        self.db.preferences.replace_one({"_id": preferences["_id"]}, preferences, upsert=True)
        return preferences
