"""survey's data: rounds, invitations, responses and the per-estate tallies."""
from typing import ClassVar

from pymongo import ASCENDING, IndexModel, ReturnDocument

from shared.store import OUTBOX, Repository


class SurveyRepository(Repository):
    indexes: ClassVar[dict] = {
        "rounds": [IndexModel([("status", ASCENDING), ("closes_at", ASCENDING)])],
        "invitations": [
            IndexModel([("token", ASCENDING)], unique=True),
            IndexModel([("round_id", ASCENDING), ("estate_id", ASCENDING),
                        ("household_id", ASCENDING)]),
        ],
        "responses": [IndexModel([("round_id", ASCENDING), ("estate_id", ASCENDING)])],
        "tallies": [IndexModel([("round_id", ASCENDING), ("estate_id", ASCENDING)])],
    }
    outbox_collections = ("rounds", "invitations")

    # rounds --------------------------------------------------------------------

    def add_round(self, round_, events, issued):
        """The round, then its invitations: ``issued`` is [(invitation, events), ...]."""
        saved = self.insert_with_events("rounds", round_, events)
        self._insert_invitations(issued)
        return saved

    def get_round(self, round_id):
        return self.fetch("rounds", round_id, "survey round")

    def save_round(self, round_, events):
        return self.save_versioned("rounds", round_, events)

    # invitations ---------------------------------------------------------------

    def _insert_invitations(self, issued):
        # One write for the whole estate list, each invitation carrying its own event.
        documents = [
            dict(invitation, **self._outbox_fields(events), **{OUTBOX: list(events)})
            for invitation, events in issued
        ]
        if documents:
            self.db.invitations.insert_many(documents)
        for document in documents:
            self.flush("invitations", document["_id"], document[OUTBOX])

    def find_invitation(self, token):
        return self.db.invitations.find_one({"token": token})

    def list_invitations(self, round_id, estate_id=None):
        return list(self.db.invitations.find(self._round_query(round_id, estate_id)).sort(
            [("estate_id", ASCENDING), ("household_id", ASCENDING)]))

    def claim_invitation(self, invitation_id, now):
        """Mark the invitation answered if it still is unanswered: only one caller wins."""
        return self.db.invitations.find_one_and_update(
            {"_id": invitation_id, "status": "issued"},
            {"$set": {"status": "answered", "answered_at": now}},
            return_document=ReturnDocument.AFTER,
        )

    def expire_invitations(self, round_id, now):
        self.db.invitations.update_many(
            {"round_id": round_id, "status": "issued"},
            {"$set": {"status": "expired", "expired_at": now}},
        )

    # responses and tallies -----------------------------------------------------

    def add_response(self, response, increment):
        self.db.responses.insert_one(response)
        round_id, estate_id = response["round_id"], response["estate_id"]
        self.db.tallies.update_one(
            {"_id": f"{round_id}:{estate_id}"},
            {"$inc": increment, "$setOnInsert": {"round_id": round_id, "estate_id": estate_id}},
            upsert=True,
        )

    def tallies(self, round_id, estate_id=None):
        return list(self.db.tallies.find(self._round_query(round_id, estate_id)))

    def returned_by_estate(self, round_id):
        return {tally["estate_id"]: tally.get("returned", 0) for tally in self.tallies(round_id)}

    def comments(self, round_id, estate_id=None):
        query = dict(self._round_query(round_id, estate_id), comments={"$ne": {}})
        return [response["comments"]
                for response in self.db.responses.find(query, {"comments": 1})]

    @staticmethod
    def _round_query(round_id, estate_id):
        query = {"round_id": round_id}
        if estate_id is not None:
            query["estate_id"] = estate_id
        return query
