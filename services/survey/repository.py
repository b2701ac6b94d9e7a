"""survey's data: templates, rounds, invitations, responses, tallies and rectifications.

How a response is kept and counted without losing it or counting it twice (no
multi-document transactions on the embedded store):

1. the invitation is claimed (``issued`` → ``answered``) with the answers in the
   same write (``pending_response``): from here the answers cannot be lost, and a
   second submission finds the token used;
2. the response is inserted under an id fixed in step 1 (a repeat is a duplicate);
3. the invitation forgets the answers (the household → answers link lasted
   only between 1 and 3);
4. the tally gets the response's counts (one ``$inc``) and its id in ``in_flight``
   in one write, matching only if the id is not there yet (``shared.counters.add_once``);
5. its comments join the quotes kept for their words where they are among the
   best (``opinions.keep_quote``), each write matching only if the text is not
   kept yet, so doing it again changes nothing;
6. the response is marked counted;
7. its id leaves ``in_flight``.

A crash leaves either an invitation with ``pending_response`` (the relay redoes
2-7) or a response not counted (the relay redoes 4-7, skipping 4 if the id is
still in ``in_flight``: an id leaves it only after its response is marked
counted). ``recount`` checks the tallies against the raw responses with a
MongoDB aggregation pipeline and can repair them.
"""
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from services.survey import opinions
from shared.counters import add_once, done_adding, is_in_flight
from shared.envelope import Envelope
from shared.leases import claim, claim_each
from shared.once import insert_once
from shared.paging import find_page
from shared.store import (
    VERSION,
    Document,
    Repository,
    estate_scope,
    request_marker,
    with_request,
)

PENDING_RESPONSE = "pending_response"
# A questionnaire being filled in (never shown to staff: it would undo anonymity).
DRAFT = "draft"
# The order of each list (paging adds ``_id`` last); an index below serves each.
ROUNDS_NEWEST_FIRST = [("created_at", DESCENDING), ("_id", DESCENDING)]
INVITATION_ORDER = [("estate_id", ASCENDING), ("household_id", ASCENDING), ("_id", ASCENDING)]
RECTIFICATION_ORDER = [("estate_id", ASCENDING), ("due_at", ASCENDING), ("_id", ASCENDING)]
# list filters that are not plain equality on a stored field
NOT_EQUALITY = ("estate_id", "estate_ids", "limit", "cursor", "overdue")

# What a round's background work changes on it (``save_work``).
WORK_FIELDS = ("status", "households", "invited", "opened_at", "abandoned_at")


class SurveyRepository(Repository):
    indexes: ClassVar[dict] = {
        "templates": [IndexModel([("template_id", ASCENDING), ("template_version", DESCENDING)],
                                 unique=True)],
        "rounds": [IndexModel([("status", ASCENDING), ("closes_at", ASCENDING)]),
                   IndexModel([("status", ASCENDING), ("opens_at", ASCENDING)]),
                   IndexModel(ROUNDS_NEWEST_FIRST),
                   IndexModel([("estate_ids", ASCENDING), *ROUNDS_NEWEST_FIRST]),
                   IndexModel([("estate_ids", ASCENDING), ("closes_at", ASCENDING)]),
                   # one round per client request; rounds made without one are not indexed
                   IndexModel([("request_id", ASCENDING)], unique=True, sparse=True),
                   # rounds with invitations still to write or issue (claim_round_work)
                   IndexModel([("progress.done", ASCENDING), ("progress.lease_until", ASCENDING)],
                              sparse=True)],
        "invitations": [
            IndexModel([("token", ASCENDING)], unique=True),
            IndexModel([("round_id", ASCENDING), *INVITATION_ORDER]),
            IndexModel([("round_id", ASCENDING), ("status", ASCENDING),
                        ("next_reminder_at", ASCENDING)]),
            IndexModel([(f"{PENDING_RESPONSE}.claimed_at", ASCENDING)], sparse=True),
            # a batch of a round's invitations, written and issued together (one string:
            # the embedded store looks up by the first key of an index)
            IndexModel([("issue_batch", ASCENDING)], sparse=True),
        ],
        "responses": [IndexModel([("round_id", ASCENDING), ("estate_id", ASCENDING)]),
                      IndexModel([("count_after", ASCENDING)], sparse=True)],
        "tallies": [IndexModel([("round_id", ASCENDING), ("estate_id", ASCENDING)])],
        # the estate's periods whose survey cadence is decided (services/survey/cadence.py)
        "cadence_checks": [],
        "rectifications": [
            IndexModel([("round_id", ASCENDING), *RECTIFICATION_ORDER]),
            IndexModel(RECTIFICATION_ORDER),
            IndexModel([("department", ASCENDING), *RECTIFICATION_ORDER]),   # a department's
            IndexModel([("status", ASCENDING), ("due_at", ASCENDING)]),
        ],
    }
    # invitation_batches: the events of a batch of invitations issued together
    outbox_collections = ("rounds", "invitations", "invitation_batches", "rectifications",
                          "cadence_checks")

    # templates -----------------------------------------------------------------

    def seed_template(self, template: Document) -> None:
        """Store a built-in template version unless it is there (every start, any instance)."""
        self.db.templates.update_one({"_id": template["_id"]}, {"$setOnInsert": template},
                                     upsert=True)

    def latest_template(self, template_id: str) -> Document | None:
        return self.db.templates.find_one({"template_id": template_id},
                                          sort=[("template_version", DESCENDING)])

    def template_version(self, template_id: str, version: int) -> Document | None:
        return self.db.templates.find_one({"template_id": template_id,
                                          "template_version": version})

    def add_template(self, template: Document) -> bool:
        """False if that version was written meanwhile (the caller builds the next one)."""
        return insert_once(self.db.templates.insert_one, with_request(template)) is not None

    def list_templates(self) -> list[Document]:
        """The latest version of every template."""
        latest: dict[str, Document] = {}
        for template in self.db.templates.find().sort([("template_id", ASCENDING),
                                                       ("template_version", ASCENDING)]):
            latest[template["template_id"]] = template
        return list(latest.values())

    # rounds --------------------------------------------------------------------

    def create_round(self, round_: Document) -> bool:
        """Store a round being created (announcing nothing; ``claim_round_work`` writes and
        issues its invitations). False (nothing written) if another call stored a round for
        the same ``request_id`` first."""
        if round_.get("request_id") is None:   # its id taken would be a fault: raised
            self.insert_with_events("rounds", round_, [])
            return True
        return insert_once(self.insert_with_events, "rounds", round_, []) is not None

    def round_for_request(self, request_id: str) -> Document | None:
        """The round a client's ``request_id`` made, if any. An abandoned one gives the
        request id up (a crash may have kept it from ``discard_round_data``): the retry
        makes a new round."""
        round_ = self.db.rounds.find_one({"request_id": request_id})
        if round_ is not None and round_["status"] == "abandoned":
            self._release_request(round_["_id"])
            return None
        return round_

    def get_round(self, round_id: str) -> Document:
        return self.fetch("rounds", round_id, "survey round")

    def find_round(self, round_id: str) -> Document | None:
        return self.db.rounds.find_one({"_id": round_id})

    def save_round(self, round_: Document, events: Sequence[Envelope]) -> Document:
        """Optimistic: of two instances saving the same version, one gets ConcurrentUpdate."""
        return self.save_versioned("rounds", round_, events)

    def list_rounds(self, filters: Mapping[str, Any]) -> tuple[list[Document], str | None]:
        """Rounds newest first, a page at a time: (rounds, next cursor)."""
        query = {key: value for key, value in filters.items() if key not in NOT_EQUALITY}
        query.update(estate_scope(filters, "estate_ids"))
        if "status" not in filters:
            query["status"] = {"$ne": "abandoned"}
        return find_page(self.db.rounds, query, ROUNDS_NEWEST_FIRST, filters["limit"],
                         filters.get("cursor"))

    def rounds_in(self, status: str, before: datetime | None = None,
                  field: str | None = None) -> list[Document]:
        query: dict[str, Any] = {"status": status}
        if before is not None:
            assert field is not None    # ``before`` comes with the field it bounds
            query[field] = {"$lte": before}
        return list(self.db.rounds.find(query))

    # a round's invitations written and issued in the background ------------------------

    def claim_round_work(self, now: datetime, lease: timedelta) -> Document | None:
        """A round with invitations to write (``creating``) or issue (``open``) that nobody
        holds (its lease lapsed: never taken, or its worker died), held for ``lease`` by a
        new worker id; None if there is none."""
        return claim(self.db.rounds, {"progress.done": False,
                                      "status": {"$in": ["creating", "open"]}},
                     "progress.lease_until", now, lease,
                     {"$set": {"progress.worker": uuid.uuid4().hex}},
                     return_document=ReturnDocument.AFTER)

    def save_work(self, round_: Document, events: Sequence[Envelope], status: str,
                  lease_until: datetime) -> Document | None:
        """A batch's progress (and a new status, with ``events``) on a round still in
        ``status`` and held by this worker, holding it until ``lease_until``; None if another
        worker took it over or the round moved on (closed)."""
        progress = round_["progress"]
        changes = {key: round_[key] for key in WORK_FIELDS if key in round_}
        changes["progress"] = dict(progress, lease_until=lease_until)
        update: dict[str, Any] = {"$set": changes}
        if round_["status"] != status:   # a change of state: read-then-save writers notice
            update["$inc"] = {VERSION: 1}
        return self.update_with_events(
            "rounds", {"_id": round_["_id"], "status": status,
                       "progress.worker": progress["worker"]}, update, events)

    def add_tallies(self, tallies: Iterable[Document]) -> None:
        """The round's empty tallies, unless there (a worker taking a round over)."""
        for tally in tallies:
            self.db.tallies.update_one({"_id": tally["_id"]}, {"$setOnInsert": tally},
                                       upsert=True)

    def write_invitations(self, invitations: list[Document]) -> None:
        """Insert what is not there yet: one lookup a batch finds what a worker that died
        wrote already (an invitation's id comes from its household)."""
        if not invitations:
            return
        written = {document["_id"] for document in self.db.invitations.find(
            {"_id": {"$in": [invitation["_id"] for invitation in invitations]}}, {"_id": 1})}
        fresh = [invitation for invitation in invitations if invitation["_id"] not in written]
        if fresh:
            self.db.invitations.insert_many(fresh)

    def invitation_batch(self, batch_key: str) -> list[Document]:
        return list(self.db.invitations.find({"issue_batch": batch_key}))

    def issue_invitations(self, batch_key: str, changes: Mapping[str, Any],
                          events: Sequence[Envelope]) -> None:
        """Send a batch: its pending invitations get ``changes`` in one write, then the
        batch's events are kept in one document (``invitation_batches``: its outbox) and
        published. The two writes are not one: a worker that dies between them has not
        saved its progress past the batch, and the one that takes the round over does the
        batch again — sending none twice (only pending invitations change) and keeping the
        events once (the batch's document is inserted once)."""
        self.db.invitations.update_many({"issue_batch": batch_key, "status": "pending"},
                                        {"$set": changes})
        if insert_once(self.insert_with_events, "invitation_batches", {"_id": batch_key},
                       events, publish=False) is None:
            return   # kept by a run that died before its progress: the relay sends them
        # one confirm; the batch's document holds these events alone
        self.publish_outboxes("invitation_batches", {batch_key: events}, whole=True)

    def discard_round_data(self, round_id: str) -> None:
        """What an abandoned round left while being created: its invitations, its tallies
        and its hold on the client's request id (a retry makes a new round)."""
        self.db.invitations.delete_many({"round_id": round_id})
        self.db.tallies.delete_many({"round_id": round_id})
        self._release_request(round_id)

    def _release_request(self, round_id: str) -> None:
        self.db.rounds.update_one({"_id": round_id, "status": "abandoned"}, {
            "$rename": {"request_id": "abandoned_request_id"}})

    # invitations ---------------------------------------------------------------

    def find_invitation(self, token: str) -> Document | None:
        return self.db.invitations.find_one({"token": token})

    def list_invitations(self, round_id: str, filters: Mapping[str, Any],
                         ) -> tuple[list[Document], str | None]:
        """A round's invitations by estate and household, a page at a time:
        (invitations, next cursor)."""
        return find_page(self.db.invitations, {"round_id": round_id, **estate_scope(filters)},
                         INVITATION_ORDER, filters.get("limit"), filters.get("cursor"),
                         projection={PENDING_RESPONSE: 0, DRAFT: 0})

    def reminders_due(self, round_id: str, now: datetime, limit: int = 1000) -> list[Document]:
        return list(self.db.invitations.find({
            "round_id": round_id, "status": "issued", "next_reminder_at": {"$lte": now},
        }).limit(limit))

    def claim_reminder(self, invitation: Document, changes: Mapping[str, Any],
                       events: Sequence[Envelope], publish: bool = True) -> Document | None:
        """Record the next reminder with its event, if nobody sent it meanwhile
        (``publish=False``: its event held, for ``publish_outboxes``)."""
        return self.update_with_events("invitations", {
            "_id": invitation["_id"], "status": "issued",
            "reminders_sent": invitation.get("reminders_sent", 0),
        }, {"$set": changes}, events, publish=publish)

    def expire_invitations(self, round_id: str, now: datetime) -> None:
        self.db.invitations.update_many(
            {"round_id": round_id, "status": {"$in": ["issued", "pending"]}},
            {"$set": {"status": "expired", "expired_at": now, "next_reminder_at": None}},
        )

    def save_draft(self, invitation_id: str, draft: Mapping[str, Any]) -> int:
        """Keep a questionnaire being filled in, while its invitation is unanswered."""
        return self.db.invitations.update_one(
            {"_id": invitation_id, "status": "issued"}, {"$set": {DRAFT: draft}}).matched_count

    def claim_invitation(self, invitation_id: str, now: datetime,
                         response: Document) -> Document | None:
        """Step 1: mark the invitation answered, with the answers, if it still is unanswered.

        Only one caller wins; a concurrent second submission matches nothing. The
        submitting request is recorded with it (``shared.store.already_applied``).
        """
        return self.db.invitations.find_one_and_update(
            {"_id": invitation_id, "status": "issued"},
            {"$set": {"status": "answered", "answered_at": now, "next_reminder_at": None,
                      PENDING_RESPONSE: {"response": response, "claimed_at": now}},
             "$unset": {DRAFT: ""}, **request_marker()},
            return_document=ReturnDocument.AFTER,
        )

    # responses and tallies -----------------------------------------------------

    def store_response(self, invitation_id: str, response: Document,
                       update: Mapping[str, Any]) -> None:
        """Steps 2-6 for a claimed invitation."""
        # none if stored before a crash; the steps below are idempotent
        insert_once(self.db.responses.insert_one, response)
        self.db.invitations.update_one({"_id": invitation_id}, {"$unset": {PENDING_RESPONSE: ""}})
        self.count_response(response, update)

    def count_response(self, response: Document, update: Mapping[str, Any]) -> None:
        """Steps 4-7: add the response to its tally once (``update``: the ``counts`` it
        adds and the ``quotes`` it offers, ``tallies.tally_update``)."""
        add_once(self.db.tallies, _tally_id(response), response["_id"],
                 increments(update["counts"]))
        self._finish_counting(response, update)

    def _finish_counting(self, response: Document, update: Mapping[str, Any]) -> None:
        """Steps 5-7, each harmless to repeat."""
        self.keep_quotes(_tally_id(response), update["quotes"])
        self.db.responses.update_one({"_id": response["_id"]},
                                     {"$set": {"counted": True}, "$unset": {"count_after": ""}})
        done_adding(self.db.tallies, _tally_id(response), response["_id"])

    def keep_quotes(self, tally_id: str,
                    candidates: Sequence[tuple[str, str, dict[str, str]]]) -> None:
        """Step 5: each (topic, word, entry) joins its word's kept quotes if it is among the
        best distinct ones: one read, then a write only where it changes something."""
        if not candidates:
            return
        kept = self.db.tallies.find_one(
            {"_id": tally_id}, {f"examples.{topic}": 1 for topic, _, _ in candidates}) or {}
        for topic, word, entry in candidates:
            current = kept.get("examples", {}).get(topic, {}).get(word, [])
            if not opinions.improves([item for item in current if isinstance(item, dict)],
                                     entry):
                continue
            path = f"examples.{topic}.{word}"
            # kept quotes only get better, so a stale read never skips a needed write;
            # the text guard keeps them distinct whoever writes at the same moment
            self.db.tallies.update_one(
                {"_id": tally_id, f"{path}.text": {"$ne": entry["text"]}},
                {"$push": {path: {"$each": [entry], "$sort": opinions.QUOTE_ORDER,
                                  "$slice": opinions.QUOTES_PER_TERM}}})

    def interrupted_claims(self, now: datetime, grace: timedelta,
                           limit: int = 500) -> list[Document]:
        """Invitations claimed over ``grace`` ago whose response was never stored, each
        claimed again (its clock reset) so two instances do not both finish it."""
        claimed: list[dict] = []
        while len(claimed) < limit:
            invitation = self.db.invitations.find_one_and_update(
                {f"{PENDING_RESPONSE}.claimed_at": {"$lte": now - grace}},
                {"$set": {f"{PENDING_RESPONSE}.claimed_at": now}},
                return_document=ReturnDocument.AFTER,
            )
            if invitation is None:
                break
            claimed.append(invitation)
        return claimed

    def uncounted_responses(self, now: datetime, lease: timedelta,
                            limit: int = 500) -> list[Document]:
        """Responses stored but not counted whose grace has passed, each claimed for ``lease``
        so two instances do not both count it."""
        return list(claim_each(self.db.responses, {"counted": False}, "count_after", now,
                               lease, limit, return_document=ReturnDocument.AFTER))

    def finish_counting(self, response: Document, update: Mapping[str, Any]) -> None:
        """Steps 4-6 for a response the relay found uncounted."""
        if is_in_flight(self.db.tallies, _tally_id(response), response["_id"]):
            self._finish_counting(response, update)   # step 4 happened before the crash
        else:
            self.count_response(response, update)

    def tallies(self, round_id: str, estate_id: str | None = None,
                estate_ids: Sequence[str] | None = None) -> list[Document]:
        """The round's tallies: of ``estate_id``, of ``estate_ids`` (a part), or all."""
        query = {"round_id": round_id,
                 **estate_scope({"estate_id": estate_id, "estate_ids": estate_ids})}
        return list(self.db.tallies.find(query, {"in_flight": 0}).sort("estate_id", ASCENDING))

    def returned_by_estate(self, round_id: str) -> dict[str, int]:
        return {tally["estate_id"]: tally.get("returned", 0) for tally in self.tallies(round_id)}

    # the check and repair tool ------------------------------------------------

    def recount(self, round_id: str) -> dict[str, dict]:
        """The round's tallies recomputed from the raw responses by aggregation pipelines:
        {estate_id: {returned, categories, comments, terms}}."""
        recounted: dict[str, dict] = {}

        def estate(estate_id: str) -> dict:
            return recounted.setdefault(estate_id, {
                "returned": 0, "categories": {}, "comments": {}, "terms": {}})

        match = {"$match": {"round_id": round_id}}
        for row in self.db.responses.aggregate([
                match, {"$group": {"_id": "$estate_id", "returned": {"$sum": 1}}}]):
            estate(row["_id"])["returned"] = row["returned"]
        for row in self.db.responses.aggregate(recount_answers_pipeline(match)):
            counts = dict(row)
            key = counts.pop("_id")
            distribution = {str(answer): counts.pop(f"d{answer}") for answer in range(1, 6)}
            estate(key["estate_id"])["categories"][key["category"]] = dict(
                counts, distribution=distribution)
        for row in self.db.responses.aggregate([
                match, {"$project": {"estate_id": 1, "comments": {"$objectToArray": "$comments"}}},
                {"$unwind": "$comments"},
                {"$group": {"_id": {"estate_id": "$estate_id", "topic": "$comments.k"},
                            "count": {"$sum": 1}}}]):
            estate(row["_id"]["estate_id"])["comments"][row["_id"]["topic"]] = row["count"]
        for row in self.db.responses.aggregate([
                match, {"$project": {"estate_id": 1, "terms": {"$objectToArray": "$terms"}}},
                {"$unwind": "$terms"}, {"$unwind": "$terms.v"},
                {"$group": {"_id": {"estate_id": "$estate_id", "topic": "$terms.k",
                                    "word": "$terms.v"}, "count": {"$sum": 1}}}]):
            key = row["_id"]
            estate(key["estate_id"])["terms"].setdefault(key["topic"], {})[key["word"]] = \
                row["count"]
        return recounted

    def replace_counters(self, round_id: str, recounted: Mapping[str, dict],
                         estate_ids: Iterable[str]) -> None:
        """Repair: the tallies become the recount; every response of the round is counted."""
        for estate_id in estate_ids:
            figures = recounted.get(estate_id, {})
            self.db.tallies.update_one({"_id": f"{round_id}:{estate_id}"}, {"$set": {
                "returned": figures.get("returned", 0),
                "categories": figures.get("categories", {}),
                "comments": figures.get("comments", {}),
                "terms": figures.get("terms", {}),
                "in_flight": [],
            }})
        self.db.responses.update_many({"round_id": round_id, "counted": False},
                                      {"$set": {"counted": True}, "$unset": {"count_after": ""}})

    # rectifications --------------------------------------------------------------

    def add_rectification(self, rectification: Document,
                          events: Sequence[Envelope]) -> Document:
        return self.insert_with_events("rectifications", rectification, events)

    def get_rectification(self, rectification_id: str) -> Document:
        return self.fetch("rectifications", rectification_id, "rectification")

    def find_rectification(self, rectification_id: str) -> Document | None:
        return self.db.rectifications.find_one({"_id": rectification_id})

    def save_rectification(self, rectification: Document,
                           events: Sequence[Envelope]) -> Document:
        return self.save_versioned("rectifications", rectification, events)

    def list_rectifications(self, filters: Mapping[str, Any], now: datetime | None = None,
                            ) -> tuple[list[Document], str | None]:
        """Rectifications by estate and due time, a page at a time: (rectifications,
        next cursor)."""
        query = {key: value for key, value in filters.items() if key not in NOT_EQUALITY}
        query.update(estate_scope(filters))
        if filters.get("overdue") is True:
            query.update(status={"$ne": "done"}, due_at={"$lte": now})
        elif filters.get("overdue") is False:
            query["$or"] = [{"status": "done"}, {"due_at": {"$gt": now}}]
        return find_page(self.db.rectifications, query, RECTIFICATION_ORDER,
                         filters.get("limit"), filters.get("cursor"))

    def overdue_rectifications(self, now: datetime, limit: int = 500) -> list[Document]:
        return list(self.db.rectifications.find({
            "status": {"$ne": "done"}, "due_at": {"$lte": now}, "overdue_at": None,
        }).limit(limit))

    def claim_overdue(self, rectification: Document, changes: Mapping[str, Any],
                      events: Sequence[Envelope]) -> Document | None:
        """Mark it overdue with its event, once: None if another instance did already."""
        return self.update_with_events("rectifications", {
            "_id": rectification["_id"], "overdue_at": None, "status": {"$ne": "done"},
        }, {"$set": changes}, events)

    # survey cadence (services/survey/cadence.py) ---------------------------------------

    def cadence_decided(self, check_ids: Iterable[str]) -> set[str]:
        """Of ``check_ids`` (estate:period), those decided already."""
        return {check["_id"] for check in self.db.cadence_checks.find(
            {"_id": {"$in": list(check_ids)}}, {"_id": 1})}

    def rounds_closing_since(self, estate_id: str, since: datetime) -> list[Document]:
        """The estate's rounds (of one or many estates) that close at ``since`` or later."""
        return list(self.db.rounds.find(
            {"estate_ids": estate_id, "closes_at": {"$gte": since}},
            {"status": 1, "opens_at": 1, "closes_at": 1, "closed_at": 1}))

    def record_cadence(self, check: Document, events: Sequence[Envelope]) -> Document | None:
        """Keep a period's verdict with its event (a missed one's warning) in one write,
        once: False when another instance decided it first."""
        return insert_once(self.insert_with_events, "cadence_checks", check, events)


def increments(counts: Mapping[tuple[str, ...], int]) -> dict[str, int]:
    """The ``$inc`` of a tally's counters: each counter's path (``("terms", topic, word)``)
    as MongoDB's dotted field path."""
    return {".".join(path): amount for path, amount in counts.items()}


def _tally_id(response: Mapping[str, Any]) -> str:
    """The tally a response counts in: its round's, of its estate."""
    return f"{response['round_id']}:{response['estate_id']}"


def recount_answers_pipeline(match: dict) -> list[dict]:
    """Per estate and category: answers given, satisfied (4 or 5), not applicable, score
    sum and the distribution, from each response's ``answers`` {category: 1-5 or null}."""
    value = "$answers.v"

    def count_if(condition: dict) -> dict:
        return {"$sum": {"$cond": [condition, 1, 0]}}

    return [
        match,
        {"$project": {"estate_id": 1, "answers": {"$objectToArray": "$answers"}}},
        {"$unwind": "$answers"},
        {"$group": {
            "_id": {"estate_id": "$estate_id", "category": "$answers.k"},
            "answered": count_if({"$ne": [value, None]}),
            "satisfied": count_if({"$gte": [value, 4]}),
            "not_applicable": count_if({"$eq": [value, None]}),
            "score_sum": {"$sum": {"$ifNull": [value, 0]}},
            **{f"d{answer}": count_if({"$eq": [value, answer]}) for answer in range(1, 6)},
        }},
    ]

