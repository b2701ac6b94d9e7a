"""revisit's data: the revisits themselves."""
from typing import ClassVar

from pymongo import ASCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from shared.store import Repository


class RevisitRepository(Repository):
    indexes: ClassVar[dict] = {
        "revisits": [
            IndexModel([("estate_id", ASCENDING), ("kind", ASCENDING), ("due_at", ASCENDING)]),
            IndexModel([("source_id", ASCENDING)]),
            IndexModel([("status", ASCENDING), ("due_at", ASCENDING)]),
        ],
    }
    outbox_collections = ("revisits",)

    def schedule(self, revisit, events):
        """Insert a revisit whose id derives from its source event; False if it exists."""
        try:
            self.insert_with_events("revisits", revisit, events)
        except DuplicateKeyError:
            return False
        return True

    def get(self, revisit_id):
        return self.fetch("revisits", revisit_id, "revisit")

    def save(self, revisit, events):
        return self.save_versioned("revisits", revisit, events)

    def list(self, filters, limit=500):
        query = {key: value for key, value in filters.items() if key != "due_before"}
        if "due_before" in filters:
            query["due_at"] = {"$lt": filters["due_before"]}
        return list(self.db.revisits.find(query).sort("due_at", ASCENDING).limit(limit))
