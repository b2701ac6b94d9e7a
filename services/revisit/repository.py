"""revisit's data: the revisits, the work orders sampling decided on, closed months."""
from typing import ClassVar

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.revisit.domain import OPEN
from shared.paging import find_page
from shared.store import Repository, estate_scope

# the order of list_revisits: by due time (paging adds ``_id`` last); indexes below serve it
BY_DUE_TIME = [("due_at", ASCENDING), ("_id", ASCENDING)]
# filters that are not plain equality on a stored field
NOT_EQUALITY = ("due_before", "estate_id", "estate_ids", "limit", "cursor")
# what the statistics read of each revisit
STATS_FIELDS = ("estate_id", "kind", "status", "source_id", "source_at", "due_at",
                "completed_at", "outcome", "promised_reply_at", "reply_given_at",
                "reply_overdue_at", "overdue_at")


class RevisitRepository(Repository):
    indexes: ClassVar[dict] = {
        "revisits": [
            IndexModel([("estate_id", ASCENDING), ("kind", ASCENDING), ("due_at", ASCENDING)]),
            IndexModel([("estate_id", ASCENDING), ("source_at", ASCENDING)]),
            IndexModel([("source_id", ASCENDING)]),
            IndexModel([("status", ASCENDING), ("due_at", ASCENDING)]),
            IndexModel(BY_DUE_TIME),
            IndexModel([("estate_id", ASCENDING), *BY_DUE_TIME]),
            IndexModel([("announced", ASCENDING), ("not_before", ASCENDING)]),
            IndexModel([("promised_reply_at", ASCENDING)], sparse=True),
            IndexModel([("estate_id", ASCENDING), ("kind", ASCENDING), ("year", ASCENDING)],
                       sparse=True),
            # the owner's link: one revisit per token; only revisits offered online have one
            IndexModel([("online_token", ASCENDING)], unique=True, sparse=True),
        ],
        "work_orders": [
            IndexModel([("estate_id", ASCENDING), ("kind", ASCENDING), ("month", ASCENDING),
                        ("in_population", ASCENDING), ("selected", ASCENDING)]),
            IndexModel([("estate_id", ASCENDING), ("month", ASCENDING)]),
            IndexModel([("month", ASCENDING)]),
        ],
        "sampling_months": [IndexModel([("pending", ASCENDING)])],
    }
    outbox_collections = ("revisits",)

    # -- revisits -----------------------------------------------------------------------

    def schedule(self, revisit, events, publish=True):
        """Insert a revisit whose id derives from its source; False if it exists already.
        ``publish=False``: its events wait in its outbox (``save_recorded``)."""
        try:
            self.insert_with_events("revisits", revisit, events, publish=publish)
        except DuplicateKeyError:
            return False
        return True

    def save_recorded(self, revisit, events, follow_up=None):
        """Save a recorded revisit and the next observation it calls for (``follow_up``:
        revisit and events, or None), both or neither: the observation is inserted first,
        its events held; should the record not be saved (changed meanwhile) it is deleted
        unannounced, and a retry derives it again. One an earlier try left is kept. (A crash
        in between on a MongoDB server leaves it for the relay to announce.)"""
        held = follow_up is not None and self.schedule(*follow_up, publish=False)
        try:
            saved = self.save(revisit, events)
        except BaseException:
            if held:
                self.db.revisits.delete_one({"_id": follow_up[0]["_id"]})
            raise
        if held:
            self.flush("revisits", follow_up[0]["_id"], follow_up[1])
        return saved

    def get(self, revisit_id):
        return self.fetch("revisits", revisit_id, "revisit")

    def save(self, revisit, events):
        return self.save_versioned("revisits", revisit, events)

    def list(self, filters):
        """Revisits by due time, a page at a time: (revisits, next cursor)."""
        query = {key: value for key, value in filters.items() if key not in NOT_EQUALITY}
        query.update(estate_scope(filters))
        if "due_before" in filters:
            query["due_at"] = {"$lt": filters["due_before"]}
        return find_page(self.db.revisits, query, BY_DUE_TIME, filters["limit"],
                         filters.get("cursor"))

    def find_by_online_token(self, token):
        return self.db.revisits.find_one({"online_token": token})

    def open_complaint_revisits(self, complaint_id):
        return list(self.db.revisits.find(
            {"source_id": complaint_id, "kind": "complaint", "status": {"$in": list(OPEN)}}))

    def cancel(self, revisit, changes):
        """Cancel ``revisit`` if it is still open (whoever gets there first does it)."""
        return self.update_with_events(
            "revisits", {"_id": revisit["_id"], "status": {"$in": list(OPEN)}},
            {"$set": changes, "$inc": {"version": 1}}, [])

    def routine_revisits(self, estate_id, year):
        return list(self.db.revisits.find({"estate_id": estate_id, "kind": "routine",
                                           "year": year}))

    # -- the timer: claims that only one instance can win ----------------------------

    def to_announce(self, now, limit=200):
        return list(self.db.revisits.find(
            {"announced": False, "status": {"$in": list(OPEN)}, "not_before": {"$lte": now}}
        ).limit(limit))

    def claim_announcement(self, revisit, changes, events):
        return self._claim(revisit, {"announced": False, "status": {"$in": list(OPEN)}},
                           changes, events)

    def overdue(self, now, limit=200):
        return list(self.db.revisits.find(
            {"status": {"$in": ["scheduled", "booked"]}, "due_at": {"$lt": now},
             "overdue_at": None}).limit(limit))

    def claim_overdue(self, revisit, changes, events):
        return self._claim(revisit, {"status": {"$in": ["scheduled", "booked"]},
                                     "overdue_at": None}, changes, events)

    def replies_overdue(self, now, limit=200):
        return list(self.db.revisits.find(
            {"promised_reply_at": {"$ne": None, "$lt": now}, "reply_given_at": None,
             "reply_overdue_at": None}).limit(limit))

    def claim_reply_overdue(self, revisit, changes, events):
        return self._claim(revisit, {"reply_given_at": None, "reply_overdue_at": None},
                           changes, events)

    def _claim(self, revisit, still, changes, events):
        """Apply ``changes`` and queue ``events`` in one write, only while ``still`` holds."""
        return self.update_with_events(
            "revisits", {"_id": revisit["_id"], **still},
            {"$set": changes, "$inc": {"version": 1}}, events)

    # -- work orders and their months ----------------------------------------------------

    def work_order(self, work_order_id):
        return self.db.work_orders.find_one({"_id": work_order_id})

    def month_so_far(self, estate_id, kind, month, history_months):
        """(decided orders, selected, earlier months' populations) for the sampler."""
        query = {"estate_id": estate_id, "kind": kind, "month": month, "in_population": True}
        orders = self.db.work_orders.count_documents(query)
        selected = self.db.work_orders.count_documents(dict(query, selected=True))
        history = tuple(
            self.db.work_orders.count_documents(dict(query, month=earlier))
            for earlier in history_months)
        return orders, selected, history

    def add_work_order(self, order):
        """Record a decided order; the decision already stored if it was decided before.

        Its month is marked as having news first: a crash in between leaves at worst a
        month closed once more for nothing, never an order its month's closing missed.
        """
        self.db.sampling_months.update_one(
            {"_id": _month_id(order["estate_id"], order["month"])},
            {"$set": {"estate_id": order["estate_id"], "month": order["month"], "pending": True},
             "$inc": {"decided": 1}},
            upsert=True)
        try:
            self.db.work_orders.insert_one(order)
        except DuplicateKeyError:
            return self.work_order(order["_id"])
        return order

    def month_orders(self, estate_id, month):
        return list(self.db.work_orders.find({"estate_id": estate_id, "month": month})
                    .sort("_id", ASCENDING))

    def select_for_top_up(self, work_order_id, now):
        return self.db.work_orders.find_one_and_update(
            {"_id": work_order_id, "selected": False},
            {"$set": {"selected": True, "reason": "top_up", "topped_up_at": now}})

    def record_month_closed(self, estate_id, month, report, now, claimed=None):
        """Keep the closing's report. With the ``claimed`` month (``claim_month_closing``),
        the month stops being pending unless an order was decided since the claim."""
        month_id = _month_id(estate_id, month)
        self.db.sampling_months.update_one(
            {"_id": month_id},
            {"$set": {"estate_id": estate_id, "month": month, "report": report,
                      "closed_at": now}, "$inc": {"closings": 1}},
            upsert=True)
        if claimed is not None:
            self.db.sampling_months.update_one(
                {"_id": month_id, "decided": claimed["decided"]},
                {"$set": {"pending": False}, "$unset": {"closing_until": ""}})

    def pending_months(self):
        """(estate, month) of every month with orders its last closing has not seen."""
        return [(month["estate_id"], month["month"]) for month in self.db.sampling_months.find(
            {"pending": True}, {"estate_id": 1, "month": 1}).sort("_id", ASCENDING)]

    def claim_month_closing(self, estate_id, month, now, lease):
        """The month, held for ``lease`` by this instance, or None if another holds it or
        it has no news; a crash mid-closing lets the lease lapse and the month comes again."""
        return self.db.sampling_months.find_one_and_update(
            {"_id": _month_id(estate_id, month), "pending": True,
             "$or": [{"closing_until": None}, {"closing_until": {"$lte": now}}]},
            {"$set": {"closing_until": now + lease}},
            return_document=ReturnDocument.AFTER)

    # -- statistics ------------------------------------------------------------------

    def revisits_for_stats(self, estate_id, since, until):
        query = {"source_at": {"$gte": since, "$lt": until}}
        if estate_id:
            query["estate_id"] = estate_id
        return list(self.db.revisits.find(query, {field: 1 for field in STATS_FIELDS}))

    def work_orders_for_stats(self, estate_id, months):
        query = {"month": {"$in": list(months)}}
        if estate_id:
            query["estate_id"] = estate_id
        return list(self.db.work_orders.find(
            query, {"estate_id": 1, "kind": 1, "month": 1, "in_population": 1, "selected": 1,
                    "reason": 1}))


def _month_id(estate_id, month):
    return f"{estate_id}:{month}"
