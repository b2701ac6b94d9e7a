"""revisit's data: the revisits, the work orders sampling decided on, closed months, and
the statistics' counters per estate × month (``revisit_counters``).

How a change reaches the counters once (no multi-document transactions on the embedded
store), as survey's tallies are kept:

1. the revisit (or work order) is written with what its change does to its counters
   (``stats.difference`` of its contribution before and after) in ``stats_pending``,
   and its new contribution in ``stats_counted``, in the same write;
2. the counter document gets the ``$inc`` and the change's id in ``in_flight`` in one
   write, matching only if the id is not there yet;
3. the change leaves the document's ``stats_pending``;
4. its id leaves ``in_flight``.

A crash leaves a document with ``stats_unsettled``: after its writer's grace the relay
(``settle_counts``) redoes 2-4 for each change left, skipping 2 if the id is still in
``in_flight`` (it leaves only after step 3). ``recount`` checks the counters against
the raw documents; ``replace_counters`` repairs them.
"""
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.revisit import stats
from services.revisit.domain import OPEN
from shared.paging import find_page
from shared.store import ConcurrentUpdate, Repository, estate_scope

# the order of list_revisits: by due time (paging adds ``_id`` last); indexes below serve it
BY_DUE_TIME = [("due_at", ASCENDING), ("_id", ASCENDING)]
# filters that are not plain equality on a stored field
NOT_EQUALITY = ("due_before", "estate_id", "estate_ids", "limit", "cursor")
# what the statistics read of each revisit
STATS_FIELDS = ("estate_id", "kind", "status", "source_id", "source_at", "due_at",
                "completed_at", "outcome", "promised_reply_at", "reply_given_at",
                "reply_overdue_at", "overdue_at", "stats_month")

COUNTERS = "revisit_counters"
# the counters' bookkeeping on each revisit and work order (never shown: shared.rpc)
COUNTED = "stats_counted"          # its contribution as the counters hold it: [[path, n]]
PENDING = "stats_pending"          # changes it still owes the counters, each applied once
UNSETTLED = "stats_unsettled"      # True while it owes any: what the relay looks for
SETTLE_AFTER = "stats_settle_after"   # left to its writer until then, then to the relay
COUNTED_COLLECTIONS = ("revisits", "work_orders")
# counter document fields that are not counts
COUNTER_INFO = ("_id", "estate_id", "month", "in_flight")
# what the statistics read of them (not ``done_sources``, which only ``revisited`` needs)
COUNTS_READ = {"_id": 0, "estate_id": 1, "month": 1, "kinds": 1, "replies": 1, "orders": 1,
               "revisited": 1, "awaiting": 1}


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
            IndexModel([(UNSETTLED, ASCENDING), (SETTLE_AFTER, ASCENDING)], sparse=True),
        ],
        "work_orders": [
            IndexModel([("estate_id", ASCENDING), ("kind", ASCENDING), ("month", ASCENDING),
                        ("in_population", ASCENDING), ("selected", ASCENDING)]),
            IndexModel([("estate_id", ASCENDING), ("month", ASCENDING)]),
            IndexModel([("month", ASCENDING)]),
            IndexModel([(UNSETTLED, ASCENDING), (SETTLE_AFTER, ASCENDING)], sparse=True),
        ],
        "sampling_months": [IndexModel([("pending", ASCENDING)])],
        COUNTERS: [IndexModel([("month", ASCENDING), ("estate_id", ASCENDING)]),
                   IndexModel([("estate_id", ASCENDING), ("month", ASCENDING)])],
    }
    outbox_collections = ("revisits",)

    # -- revisits -----------------------------------------------------------------------

    def schedule(self, revisit, events, publish=True):
        """Insert a revisit whose id derives from its source; False if it exists already.
        ``publish=False``: its events, and its counts, wait in it (``save_recorded``)."""
        revisit, change = self._counted(revisit, stats.contribution(revisit), "scheduled")
        try:
            self.insert_with_events("revisits", revisit, events, publish=publish)
        except DuplicateKeyError:
            return False
        if publish:
            self._settle("revisits", revisit["_id"], [change])
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
            self._settle("revisits", follow_up[0]["_id"],
                         self.db.revisits.find_one({"_id": follow_up[0]["_id"]})[PENDING])
        return saved

    def get(self, revisit_id):
        return self.fetch("revisits", revisit_id, "revisit")

    def save(self, revisit, events):
        """Save a changed revisit (optimistic lock) with what the change does to its
        counters, then apply that."""
        revisit = {key: value for key, value in revisit.items()
                   if key not in (PENDING, UNSETTLED, SETTLE_AFTER)}
        before = dict(revisit.pop(COUNTED, None) or [])
        counted, change = self._counted(revisit, stats.contribution(revisit),
                                        revisit.get("version", 0) + 1, before)
        if not change["inc"]:   # a booking, an attempt not reached: no counter changes
            return self.save_versioned("revisits", dict(revisit, **{COUNTED: counted[COUNTED]}),
                                       events)
        del counted[PENDING]
        saved = self.save_versioned("revisits", counted, events, push={PENDING: change})
        self._settle("revisits", saved["_id"], [change])
        return saved

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
        """Cancel ``revisit`` if it is still open (whoever gets there first does it): None
        if it is not. Read again on each try, for what the counters hold of it."""
        while True:
            current = self.db.revisits.find_one({"_id": revisit["_id"],
                                                 "status": {"$in": list(OPEN)}})
            if current is None:
                return None
            try:
                return self.save(dict(current, **changes), [])
            except ConcurrentUpdate:
                continue    # changed meanwhile: still open?

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
        order, change = self._counted(order, stats.order_contribution(order), "decided")
        try:
            self.db.work_orders.insert_one(order)
        except DuplicateKeyError:
            return self.work_order(order["_id"])
        self._settle("work_orders", order["_id"], [change])
        return order

    def month_orders(self, estate_id, month):
        return list(self.db.work_orders.find({"estate_id": estate_id, "month": month})
                    .sort("_id", ASCENDING))

    def select_for_top_up(self, work_order_id, now):
        """Select an order not selected yet (once), with what that does to its counters."""
        order = self.work_order(work_order_id)
        if order is None or order["selected"]:
            return None
        changes = {"selected": True, "reason": "top_up", "topped_up_at": now}
        counted, change = self._counted(
            dict(order, **changes), stats.order_contribution(dict(order, **changes)),
            "top_up", dict(order.get(COUNTED) or []))
        selected = self.db.work_orders.find_one_and_update(
            {"_id": work_order_id, "selected": False},
            {"$set": {key: counted[key] for key in (*changes, COUNTED, UNSETTLED, SETTLE_AFTER)},
             "$push": {PENDING: change}})
        if selected is not None:
            self._settle("work_orders", work_order_id, [change])
        return selected

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

    # -- statistics' counters ------------------------------------------------------------

    def _counted(self, document, contribution, change_name, before=None):
        """``document`` to write with its new ``contribution`` and the change to its counters
        pending (a change that changes no counter is still recorded: it is settled as one)."""
        change = {
            "id": f"{document['_id']}@{change_name}",
            "counter": _month_id(document["estate_id"], _counted_month(document)),
            "estate_id": document["estate_id"], "month": _counted_month(document),
            "inc": sorted(stats.difference(before or {}, contribution).items()),
        }
        return dict(document, **{COUNTED: sorted(contribution.items()), PENDING: [change],
                                 UNSETTLED: True,
                                 SETTLE_AFTER: datetime.now(UTC) + self.outbox_grace}), change

    def _settle(self, collection, document_id, changes):
        """Steps 2-4 for the ``changes`` a write left pending on its document."""
        for change in changes:
            self._apply(change)
            self._forget(collection, document_id, change)

    def _apply(self, change):
        """Step 2: the change's ``$inc``, once: its id joins ``in_flight`` in the same write.
        A work order's first visit made adds one to ``revisited`` (a condition on its
        ``done_sources`` count in that write)."""
        counters = self.db[COUNTERS]
        try:
            counters.update_one({"_id": change["counter"]}, {"$setOnInsert": {
                "estate_id": change["estate_id"], "month": change["month"], "in_flight": []}},
                upsert=True)
        except DuplicateKeyError:
            pass    # another writer made it at the same moment
        inc = dict(change["inc"])
        once = {"_id": change["counter"], "in_flight": {"$ne": change["id"]}}
        push = {"$push": {"in_flight": change["id"]}}
        for path, step in inc.items():   # a revisit visits one work order: at most one
            if path.startswith(stats.DONE_SOURCES + "."):
                # its first visit made, or its last one undone
                first = {path: {"$in": [None, 0]}} if step > 0 else {path: 1}
                revisited = {**inc, stats.revisited_path(path): step}
                if counters.update_one({**once, **first}, {"$inc": revisited, **push}) \
                        .matched_count:
                    return
        if inc:
            counters.update_one(once, {"$inc": inc, **push})
        else:
            counters.update_one(once, push)

    def _forget(self, collection, document_id, change):
        """Steps 3 and 4; the flag goes once nothing is pending (checked in its write)."""
        self.db[collection].update_one({"_id": document_id},
                                       {"$pull": {PENDING: {"id": change["id"]}}})
        self.db[collection].update_one({"_id": document_id, PENDING: {"$size": 0}},
                                       {"$unset": {UNSETTLED: "", SETTLE_AFTER: ""}})
        self.db[COUNTERS].update_one({"_id": change["counter"]},
                                     {"$pull": {"in_flight": change["id"]}})

    def settle_counts(self, lease=timedelta(seconds=30), limit=500, now=None):
        """The relay: what crashed writers (or relays) left pending, once their grace (or
        lease) has passed, each document claimed for ``lease`` so two instances do not
        both settle it. ``now``: the clock of the pass (tests move it on)."""
        settled, now = 0, now or datetime.now(UTC)
        for collection in COUNTED_COLLECTIONS:
            while settled < limit:
                document = self.db[collection].find_one_and_update(
                    {UNSETTLED: True, SETTLE_AFTER: {"$lte": now}},
                    {"$set": {SETTLE_AFTER: now + lease}}, projection={PENDING: 1})
                if document is None:
                    break
                for change in document.get(PENDING, []):
                    if self.db[COUNTERS].find_one({"_id": change["counter"],
                                                   "in_flight": change["id"]}) is None:
                        self._apply(change)
                    self._forget(collection, document["_id"], change)
                self.db[collection].update_one({"_id": document["_id"], PENDING: {"$size": 0}},
                                               {"$unset": {UNSETTLED: "", SETTLE_AFTER: ""}})
                settled += 1
        return settled

    def counters(self, estate_id, months):
        """The counters of ``months`` (of one estate, or all): [(estate, month, counts)]."""
        query = {"month": {"$in": list(months)}}
        if estate_id:
            query["estate_id"] = estate_id
        return [(document.pop("estate_id"), document.pop("month"), document)
                for document in self.db[COUNTERS].find(query, COUNTS_READ)]

    def overdue_now(self, estate_id, since, until, now):
        """{(estate, kind): open revisits past their due time} of the revisits that follow
        a source in [since, until): what depends on the moment of asking, not kept."""
        query = {"status": {"$in": list(OPEN)}, "due_at": {"$lt": now},
                 "source_at": {"$gte": since, "$lt": until}}
        if estate_id:
            query["estate_id"] = estate_id
        late = {}
        for revisit in self.db.revisits.find(query, {"estate_id": 1, "kind": 1}):
            key = (revisit["estate_id"], revisit["kind"])
            late[key] = late.get(key, 0) + 1
        return late

    # -- the check and repair tool -----------------------------------------------------

    def recount(self, month_of):
        """Every estate-month's counters again from the raw revisits and work orders:
        {(estate, month): counts}, and the kept ones alike. A revisit stored before it had
        a ``stats_month`` is counted in ``month_of(revisit)``."""
        recounted = stats.recount(
            (dict(revisit, stats_month=revisit.get("stats_month") or month_of(revisit))
             for revisit in self.db.revisits.find({}, {field: 1 for field in STATS_FIELDS})),
            self.db.work_orders.find({}, {"estate_id": 1, "kind": 1, "month": 1,
                                          "in_population": 1, "selected": 1, "reason": 1}))
        kept = {(document["estate_id"], document["month"]): stats.flat(
                    {key: value for key, value in document.items() if key not in COUNTER_INFO})
                for document in self.db[COUNTERS].find({}, {"in_flight": 0})}
        return recounted, kept

    def replace_counters(self, recounted, month_of):
        """Repair: the counters become the recount, each document counted as it is now
        (nothing left pending; a revisit without ``stats_month`` gets ``month_of``'s).
        Run it while nothing writes revisits."""
        for collection, contribution in (("revisits", stats.contribution),
                                         ("work_orders", stats.order_contribution)):
            for document in self.db[collection].find({}):
                counted = [list(pair) for pair in sorted(contribution(document).items())]
                month = {} if collection != "revisits" or document.get("stats_month") else {
                    "stats_month": month_of(document)}
                if document.get(COUNTED) != counted or document.get(PENDING) or month:
                    self.db[collection].update_one({"_id": document["_id"]}, {
                        "$set": {COUNTED: counted, PENDING: [], **month},
                        "$unset": {UNSETTLED: "", SETTLE_AFTER: ""}})
        self.db[COUNTERS].delete_many({})
        for (estate_id, month), counts in recounted.items():
            self.db[COUNTERS].insert_one({"_id": _month_id(estate_id, month),
                                          "estate_id": estate_id, "month": month,
                                          "in_flight": [], **stats.nested(counts)})

    # -- statistics (the raw documents) ------------------------------------------------

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


def _counted_month(document):
    """The month a revisit (``stats_month``) or a work order (``month``) is counted in."""
    return document.get("stats_month", document.get("month"))
