"""intake's data: estates, households with contacts, complaints."""
from typing import ClassVar

from pymongo import ASCENDING, DESCENDING, IndexModel

from shared.store import Repository

HOUSEHOLD_FIELDS = ("building", "unit", "room", "occupied", "contacts")


class IntakeRepository(Repository):
    indexes: ClassVar[dict] = {
        "households": [IndexModel([("estate_id", ASCENDING), ("building", ASCENDING)])],
        "complaints": [
            IndexModel([("estate_id", ASCENDING), ("status", ASCENDING)]),
            IndexModel([("household_id", ASCENDING), ("category", ASCENDING)]),
            IndexModel([("received_at", DESCENDING)]),
        ],
    }
    outbox_collections = ("complaints",)

    # estates and households --------------------------------------------------

    def import_households(self, estate_id, rows, now):
        ids = [row["household_id"] for row in rows]
        existing = {doc["_id"] for doc in self.db.households.find({"_id": {"$in": ids}}, {"_id": 1})}
        self.db.estates.update_one(
            {"_id": estate_id}, {"$setOnInsert": {"created_at": now}}, upsert=True)
        # One upsert per row: mongomock 4.3 cannot take pymongo 4.15's bulk UpdateOne.
        for row in rows:
            self.db.households.update_one(
                {"_id": row["household_id"]},
                {"$set": {"estate_id": estate_id, "updated_at": now,
                          **{key: row[key] for key in HOUSEHOLD_FIELDS}}},
                upsert=True,
            )
        updated = len(existing)
        return {"imported": len(set(ids)) - updated, "updated": updated}

    def estate_exists(self, estate_id):
        return self.db.estates.count_documents({"_id": estate_id}, limit=1) > 0

    def list_households(self, estate_id, filters):
        query = {"estate_id": estate_id, **filters}
        return list(self.db.households.find(query).sort("_id", ASCENDING))

    def find_household(self, household_id):
        return self.db.households.find_one({"_id": household_id})

    # complaints ----------------------------------------------------------------

    def add_complaint(self, complaint, events):
        return self.insert_with_events("complaints", complaint, events)

    def get_complaint(self, complaint_id):
        return self.fetch("complaints", complaint_id, "complaint")

    def find_complaint(self, complaint_id):
        return self.db.complaints.find_one({"_id": complaint_id})

    def save_complaint(self, complaint, events, handled_event=None):
        return self.save_versioned("complaints", complaint, events, handled_event)

    def list_complaints(self, filters, limit=500):
        query = {key: value for key, value in filters.items() if key not in ("since", "until")}
        received = {}
        if "since" in filters:
            received["$gte"] = filters["since"]
        if "until" in filters:
            received["$lt"] = filters["until"]
        if received:
            query["received_at"] = received
        return list(self.db.complaints.find(query).sort("received_at", DESCENDING).limit(limit))
