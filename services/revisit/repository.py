"""revisit's data: the revisits, the work orders sampling decided on, closed months, the
follow-ups of unsatisfied revisits, and the statistics' counters per estate × month
(``revisit_counters``).

A revisit's (or work order's, or follow-up's) change reaches the counters once as a
complaint's reaches intake's (``shared.counters.MonthCounters``: the change pending on
the document, taken once by the counter under its id, a relay settling what a crash
left). Each month's group total (``shared.counters.GROUP``) is kept in the same step,
without the work orders' ``done_sources`` (an estate's own bookkeeping); a sampling
month's closing is counted too: the ``required`` its quota fixed then
(``stats.closing_contribution``). ``recount`` checks the counters against the raw
documents; ``replace_counters`` repairs them.
"""
import builtins
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.revisit import stats
from services.revisit.domain import OPEN
from services.revisit.followups import UNANSWERED
from services.revisit.stats import Bucket, Counts
from shared.counters import (
    COUNTED,
    GROUP,
    PENDING,
    SETTLE_AFTER,
    UNSETTLED,
    UNSETTLED_INDEX,
    MonthCounters,
    counter_id,
)
from shared.embedded import read_only
from shared.envelope import Changed, Envelope
from shared.estates import ZONE_INDEXES
from shared.leases import claim
from shared.once import insert_once
from shared.paging import find_page
from shared.store import ConcurrentUpdate, Document, estate_scope

# the order of list_revisits: by due time (paging adds ``_id`` last); indexes below serve it
# (The class below has a method ``list``, which hides the builtin in its annotations.)
Documents = list[Document]
Events = list[Envelope]

BY_DUE_TIME = [("due_at", ASCENDING), ("_id", ASCENDING)]
# filters that are not plain equality on a stored field
NOT_EQUALITY = ("due_before", "done_from", "done_before", "reply_due_before", "estate_id",
                "estate_ids", "limit", "cursor")
# what the statistics read of each revisit
STATS_FIELDS = ("estate_id", "kind", "status", "source_id", "source_at", "due_at",
                "completed_at", "outcome", "promised_reply_at", "reply_given_at",
                "reply_overdue_at", "overdue_at", "stats_month")

# what the statistics read of each follow-up
FOLLOWUP_STATS_FIELDS = {"estate_id": 1, "stats_month": 1, "status": 1, "answer_due_at": 1,
                         "answered_at": 1}

COUNTERS = "revisit_counters"
# what carries the counters' bookkeeping (shared.counters; never shown: shared.rpc)
COUNTED_COLLECTIONS = ("revisits", "work_orders", "followups", "sampling_months")
# what each counted collection's document adds to its estate-month
CONTRIBUTIONS = {"revisits": stats.contribution, "work_orders": stats.order_contribution,
                 "followups": stats.followup_contribution,
                 "sampling_months": stats.closing_contribution}
# the order of list_followups: the answer due soonest first (paging adds ``_id`` last)
BY_ANSWER_DUE = [("answer_due_at", ASCENDING), ("_id", ASCENDING)]
FOLLOWUP_NOT_EQUALITY = ("estate_id", "estate_ids", "overdue", "limit", "cursor")
# what the statistics read of them (not ``done_sources``, which only ``revisited`` needs)
COUNTED_FIGURES = ("kinds", "replies", "orders", "revisited", "awaiting", "followups", "due")
COUNTS_READ = {"_id": 0, "estate_id": 1, "month": 1, **dict.fromkeys(COUNTED_FIGURES, 1)}


class RevisitRepository(MonthCounters):
    indexes: ClassVar[dict] = {
        "revisits": [
            IndexModel([("estate_id", ASCENDING), ("kind", ASCENDING), ("due_at", ASCENDING)]),
            IndexModel([("estate_id", ASCENDING), ("source_at", ASCENDING)]),
            IndexModel([("source_id", ASCENDING)]),
            IndexModel([("status", ASCENDING), ("due_at", ASCENDING)]),
            IndexModel(BY_DUE_TIME),
            IndexModel([("estate_id", ASCENDING), *BY_DUE_TIME]),
            IndexModel([("estate_id", ASCENDING), ("completed_at", ASCENDING)]),
            IndexModel([("announced", ASCENDING), ("not_before", ASCENDING)]),
            IndexModel([("promised_reply_at", ASCENDING)], sparse=True),
            IndexModel([("estate_id", ASCENDING), ("kind", ASCENDING), ("year", ASCENDING)],
                       sparse=True),
            # the owner's link: one revisit per token; only revisits offered online have one
            IndexModel([("online_token", ASCENDING)], unique=True, sparse=True),
            # the month's plan (``plans.monthly_plan``); a household's open visits
            IndexModel([("estate_id", ASCENDING), ("plan_month", ASCENDING)], sparse=True),
            IndexModel([("household_id", ASCENDING), ("status", ASCENDING)]),
            UNSETTLED_INDEX,
        ],
        "work_orders": [
            IndexModel([("estate_id", ASCENDING), ("kind", ASCENDING), ("month", ASCENDING),
                        ("in_population", ASCENDING), ("selected", ASCENDING)]),
            IndexModel([("estate_id", ASCENDING), ("month", ASCENDING)]),
            IndexModel([("month", ASCENDING)]),
            UNSETTLED_INDEX,
        ],
        "followups": [
            IndexModel(BY_ANSWER_DUE),
            IndexModel([("estate_id", ASCENDING), *BY_ANSWER_DUE]),
            IndexModel([("estate_id", ASCENDING), ("department", ASCENDING), *BY_ANSWER_DUE]),
            IndexModel([("status", ASCENDING), ("answer_due_at", ASCENDING)]),
            IndexModel([("revisit_id", ASCENDING)]),
            IndexModel([("stats_month", ASCENDING), ("estate_id", ASCENDING)]),
            UNSETTLED_INDEX,
        ],
        "sampling_months": [IndexModel([("pending", ASCENDING)]), UNSETTLED_INDEX],
        # each estate's routine plan of a year (``_id`` estate:year), claimed by one timer
        "routine_plans": [],
        # the key-customer flag of each household, as intake last announced it
        "households": [],
        COUNTERS: [IndexModel([("month", ASCENDING), ("estate_id", ASCENDING)]),
                   IndexModel([("estate_id", ASCENDING), ("month", ASCENDING)])],
        # the statistics across estates recount those of another zone (``estates_elsewhere``)
        **ZONE_INDEXES,
    }
    outbox_collections = ("revisits", "followups")
    counters_collection = COUNTERS
    counted_collections = COUNTED_COLLECTIONS
    keeps_group_totals = True     # headquarters' figures: one document a month
    estate_only = (stats.DONE_SOURCES + ".",)

    # -- revisits -----------------------------------------------------------------------

    def schedule(self, revisit: Document, events: Events, publish: bool = True) -> bool:
        """Insert a revisit whose id derives from its source; False if it exists already.
        ``publish=False``: its events, and its counts, wait in it (``save_recorded``)."""
        if publish:
            return self.schedule_all([(revisit, events)]) == [True]
        return self._insert_scheduled(revisit, events) is not None

    def schedule_all(self, scheduled: list[tuple[Document, Events]]) -> list[bool]:
        """``schedule`` for a batch (a burst of closings): each inserted with its events
        held, then all published with one wait for the broker's confirms and counted.
        Whether each was new (a crash in between leaves the events to the relay and the
        counts to ``settle_counts``)."""
        changes = {}
        held: dict[str, Events] = {}
        for revisit, events in scheduled:
            change = self._insert_scheduled(revisit, events)
            if change is not None:
                changes[revisit["_id"]], held[revisit["_id"]] = change, events
        self.publish_outboxes("revisits", held)
        for revisit_id, change in changes.items():
            self._settle("revisits", revisit_id, [change])
        return [revisit["_id"] in changes for revisit, _ in scheduled]

    def _insert_scheduled(self, revisit: Document, events: Events) -> dict | None:
        """A new revisit inserted, its events and its counts held in it: its change to the
        counters, or None if it exists already."""
        revisit, change = self._counted(revisit, stats.contribution(revisit), "scheduled")
        if insert_once(self.insert_with_events, "revisits", revisit, events,
                       publish=False) is None:
            return None
        return change

    def save_recorded(self, revisit: Document, events: Events,
                      follow_up: Changed | None = None) -> Document:
        """Save a recorded revisit and the next observation it calls for (``follow_up``:
        revisit and events, or None), both or neither: the observation is inserted first,
        its events held; should the record not be saved (changed meanwhile) it is deleted
        unannounced, and a retry derives it again. One an earlier try left is kept. (A crash
        in between on a MongoDB server leaves it for the relay to announce.)"""
        held = follow_up is not None and self.schedule(*follow_up, publish=False)
        try:
            saved = self.save(revisit, events)
        except BaseException:
            if held and follow_up is not None:
                self.db.revisits.delete_one({"_id": follow_up[0]["_id"]})
            raise
        if held and follow_up is not None:
            self.flush("revisits", follow_up[0]["_id"], follow_up[1])
            self._settle("revisits", follow_up[0]["_id"],
                         self.db.revisits.find_one(  # type: ignore[index]  # just inserted
                             {"_id": follow_up[0]["_id"]})[PENDING])
        return saved

    def get(self, revisit_id: str) -> Document:
        return self.fetch("revisits", revisit_id, "revisit")

    def save(self, revisit: Document, events: Events) -> Document:
        """Save a changed revisit (optimistic lock) with what the change does to its
        counters, then apply that."""
        return self._save_counted("revisits", revisit, events)

    def _save_counted(self, collection: str, document: Document,
                      events: Events) -> Document:
        """Save a changed document of a counted collection (optimistic lock) with what the
        change does to its counters, then apply that."""
        document, before = self._uncounted(document)
        counted, change = self._counted(document, CONTRIBUTIONS[collection](document),
                                        document.get("version", 0) + 1, before)
        if not change["inc"]:   # a booking, an attempt not reached: no counter changes
            return self.save_versioned(
                collection, dict(document, **{COUNTED: counted[COUNTED]}), events)
        return self._save_pending(collection, counted, change, events)

    def list(self, filters: Mapping[str, Any]) -> tuple[Documents, str | None]:
        """Revisits by due time, a page at a time: (revisits, next cursor)."""
        query = {key: value for key, value in filters.items() if key not in NOT_EQUALITY}
        query.update(estate_scope(filters))
        if "due_before" in filters:
            query["due_at"] = {"$lt": filters["due_before"]}
        if "reply_due_before" in filters:
            query.update(promised_reply_at={"$ne": None, "$lt": filters["reply_due_before"]},
                         reply_given_at=None)
        done = {operator: filters[name] for name, operator in
                (("done_from", "$gte"), ("done_before", "$lt")) if name in filters}
        if done:
            query["completed_at"] = done
        return find_page(self.db.revisits, query, BY_DUE_TIME, filters["limit"],
                         filters.get("cursor"))

    def find_by_online_token(self, token: str) -> Document | None:
        return self.db.revisits.find_one({"online_token": token})

    def open_complaint_revisits(self, complaint_id: str) -> Documents:
        return list(self.db.revisits.find(
            {"source_id": complaint_id, "kind": "complaint", "status": {"$in": list(OPEN)}}))

    def cancel(self, revisit: Document, changes: Mapping[str, Any]) -> Document | None:
        """Cancel ``revisit`` if it is still open (whoever gets there first does it): None
        if it is not."""
        return self.change_while_open(revisit, changes)

    def change_while_open(self, revisit: Document,
                          changes: Mapping[str, Any]) -> Document | None:
        """Apply ``changes`` to ``revisit`` if it is still open: None if it is not. Read
        again on each try, for what the counters hold of it."""
        while True:
            current = self.db.revisits.find_one({"_id": revisit["_id"],
                                                 "status": {"$in": list(OPEN)}})
            if current is None:
                return None
            try:
                return self.save(dict(current, **changes), [])
            except ConcurrentUpdate:
                continue    # changed meanwhile: still open?

    def routine_revisits(self, estate_id: str, year: int) -> Documents:
        return list(self.db.revisits.find({"estate_id": estate_id, "kind": "routine",
                                           "year": year}))

    # -- follow-ups of unsatisfied revisits ---------------------------------------------

    def open_followup(self, followup: Document, events: Events) -> bool:
        """Insert a follow-up whose id derives from its revisit, with its event and its
        counts; False if it was opened already."""
        followup, change = self._counted(followup, stats.followup_contribution(followup),
                                         "opened")
        if insert_once(self.insert_with_events, "followups", followup, events) is None:
            return False
        self._settle("followups", followup["_id"], [change])
        return True

    def get_followup(self, followup_id: str) -> Document:
        return self.fetch("followups", followup_id, "follow-up")

    def save_followup(self, followup: Document, events: Events) -> Document:
        return self._save_counted("followups", followup, events)

    def list_followups(self, filters: Mapping[str, Any],
                       now: datetime) -> tuple[Documents, str | None]:
        """Follow-ups by their answer's due time, a page at a time: (follow-ups, cursor)."""
        query = {key: value for key, value in filters.items()
                 if key not in FOLLOWUP_NOT_EQUALITY}
        query.update(estate_scope(filters))
        late = {"status": {"$in": list(UNANSWERED)}, "answer_due_at": {"$lt": now}}
        if filters.get("overdue") is True:
            query = {"$and": [query, late]}
        elif filters.get("overdue") is False:
            query = {"$and": [query, {"$nor": [late]}]}
        return find_page(self.db.followups, query, BY_ANSWER_DUE, filters["limit"],
                         filters.get("cursor"))

    def followups_overdue(self, now: datetime, limit: int = 200) -> Documents:
        return list(self.db.followups.find(
            {"status": {"$in": list(UNANSWERED)}, "answer_due_at": {"$lt": now},
             "overdue_at": None}).limit(limit))

    def claim_followup_overdue(self, followup: Document, changes: Mapping[str, Any],
                               events: Events) -> Document | None:
        """Flag it overdue and queue its event, once: only while still unanswered and
        unflagged (of several instances one wins)."""
        return self.update_with_events(
            "followups", {"_id": followup["_id"], "status": {"$in": list(UNANSWERED)},
                          "overdue_at": None},
            {"$set": changes, "$inc": {"version": 1}}, events)

    # -- the timer: claims that only one instance can win ----------------------------

    def to_announce(self, now: datetime, limit: int = 200) -> Documents:
        return list(self.db.revisits.find(
            {"announced": False, "status": {"$in": list(OPEN)}, "not_before": {"$lte": now}}
        ).limit(limit))

    def claim_announcement(self, revisit: Document, changes: Mapping[str, Any],
                           events: Events) -> Document | None:
        return self._claim(revisit, {"announced": False, "status": {"$in": list(OPEN)}},
                           changes, events)

    def overdue(self, now: datetime, limit: int = 200) -> Documents:
        return list(self.db.revisits.find(
            {"status": {"$in": ["scheduled", "booked"]}, "due_at": {"$lt": now},
             "overdue_at": None}).limit(limit))

    def claim_overdue(self, revisit: Document, changes: Mapping[str, Any],
                      events: Events) -> Document | None:
        return self._claim(revisit, {"status": {"$in": ["scheduled", "booked"]},
                                     "overdue_at": None}, changes, events)

    def replies_overdue(self, now: datetime, limit: int = 200) -> Documents:
        return list(self.db.revisits.find(
            {"promised_reply_at": {"$ne": None, "$lt": now}, "reply_given_at": None,
             "reply_overdue_at": None}).limit(limit))

    def claim_reply_overdue(self, revisit: Document, changes: Mapping[str, Any],
                            events: Events) -> Document | None:
        return self._claim(revisit, {"reply_given_at": None, "reply_overdue_at": None},
                           changes, events)

    def _claim(self, revisit: Document, still: Mapping[str, Any], changes: Mapping[str, Any],
               events: Events) -> Document | None:
        """Apply ``changes`` and queue ``events`` in one write, only while ``still`` holds."""
        return self.update_with_events(
            "revisits", {"_id": revisit["_id"], **still},
            {"$set": changes, "$inc": {"version": 1}}, events)

    # -- work orders and their months ----------------------------------------------------

    def work_order(self, work_order_id: str) -> Document | None:
        return self.db.work_orders.find_one({"_id": work_order_id})

    def month_so_far(self, estate_id: str, kind: str, month: str,
                     history_months: Iterable[str]) -> tuple[int, int, tuple[int, ...]]:
        """(decided orders, selected, earlier months' populations) for the sampler."""
        query = {"estate_id": estate_id, "kind": kind, "month": month, "in_population": True}
        orders = self.db.work_orders.count_documents(query)
        selected = self.db.work_orders.count_documents(dict(query, selected=True))
        history = tuple(
            self.db.work_orders.count_documents(dict(query, month=earlier))
            for earlier in history_months)
        return orders, selected, history

    def add_work_order(self, order: Document) -> Document | None:
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
        if insert_once(self.db.work_orders.insert_one, order) is None:
            return self.work_order(order["_id"])
        self._settle("work_orders", order["_id"], [change])
        return order

    def month_orders(self, estate_id: str, month: str) -> Documents:
        return list(self.db.work_orders.find({"estate_id": estate_id, "month": month})
                    .sort("_id", ASCENDING))

    def select_for_top_up(self, work_order_id: str, now: datetime) -> Document | None:
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

    def record_month_closed(self, estate_id: str, month: str, report: dict, now: datetime,
                            claimed: Document | None = None) -> None:
        """Keep the closing's report. With the ``claimed`` month (``claim_month_closing``),
        the month stops being pending unless an order was decided since the claim."""
        month_id = _month_id(estate_id, month)
        while True:     # the closing's change to the counters, with the report, in one write
            kept = self.db.sampling_months.find_one({"_id": month_id}) or {}
            closings = kept.get("closings", 0)
            closed, change = self._counted(
                {"_id": month_id, "estate_id": estate_id, "month": month, "report": report},
                stats.closing_contribution({"report": report}), f"closing-{closings + 1}",
                dict(kept.get(COUNTED) or []))
            try:
                written = self.db.sampling_months.update_one(
                    {"_id": month_id, "closings": closings or {"$in": [None, 0]}},
                    {"$set": {"estate_id": estate_id, "month": month, "report": report,
                              "closed_at": now,
                              **{key: closed[key] for key in (COUNTED, UNSETTLED,
                                                              SETTLE_AFTER)}},
                     "$inc": {"closings": 1}, "$push": {PENDING: change}},
                    upsert=not kept)
            except DuplicateKeyError:     # made meanwhile by an order's news: read it again
                continue
            if written.matched_count or written.upserted_id is not None:
                break                     # (else another closing came between: again)
        self._settle("sampling_months", month_id, [change])
        if claimed is not None:
            self.db.sampling_months.update_one(
                {"_id": month_id, "decided": claimed["decided"]},
                {"$set": {"pending": False}, "$unset": {"closing_until": ""}})

    def pending_months(self) -> builtins.list[tuple[str, str]]:
        """(estate, month) of every month with orders its last closing has not seen."""
        return [(month["estate_id"], month["month"]) for month in self.db.sampling_months.find(
            {"pending": True}, {"estate_id": 1, "month": 1}).sort("_id", ASCENDING)]

    def claim_month_closing(self, estate_id: str, month: str, now: datetime,
                            lease: timedelta) -> Document | None:
        """The month, held for ``lease`` by this instance, or None if another holds it or
        it has no news; a crash mid-closing lets the lease lapse and the month comes again."""
        return claim(self.db.sampling_months, {"_id": _month_id(estate_id, month),
                                               "pending": True},
                     "closing_until", now, lease, free_when_missing=True,
                     return_document=ReturnDocument.AFTER)

    # -- statistics' counters ------------------------------------------------------------

    def counted_month(self, document: Mapping[str, Any]) -> str | None:
        """A revisit's or follow-up's ``stats_month``, a work order's ``month``."""
        return document.get("stats_month", document.get("month"))

    def _conditional_counts(self, inc: Counts) -> Iterator[tuple[dict, Counts]]:
        """A work order's first visit made adds one to ``revisited``, its last one undone
        takes it back (a condition on its ``done_sources`` count in the same write). A
        revisit visits one work order: at most one."""
        for path, step in inc.items():
            if path.startswith(stats.DONE_SOURCES + "."):
                first = {path: {"$in": [None, 0]}} if step > 0 else {path: 1}
                yield first, {stats.revisited_path(path): step}

    def counters(self, estate_id: str | None, months: Iterable[str]) -> builtins.list[Bucket]:
        """The counters of ``months`` (of one estate, or all): [(estate, month, counts)]."""
        query: dict[str, Any] = {"month": {"$in": list(months)}}
        if estate_id:
            query["estate_id"] = estate_id
        return [_bucket(document) for document in read_only(self.db[COUNTERS], query, COUNTS_READ)
                if document["estate_id"] != GROUP or estate_id == GROUP]

    def group_counters(self, months: Iterable[str]) -> builtins.list[Bucket]:
        """The group's total counters of ``months``, one document a month."""
        return self.estates_counters([GROUP], months)

    def estates_counters(self, estate_ids: Iterable[str],
                         months: Iterable[str]) -> builtins.list[Bucket]:
        """The counters of ``months`` of each of ``estate_ids``, read by their ids."""
        months = list(months)
        ids = [counter_id(estate_id, month) for estate_id in estate_ids for month in months]
        return [_bucket(document) for document in read_only(
            self.db[COUNTERS], {"_id": {"$in": ids}}, COUNTS_READ)]

    # -- the check and repair tool -----------------------------------------------------

    def recount(self, month_of: Callable[[Document], str],
                ) -> tuple[dict[tuple, Counts], dict[tuple[str, str | None], Counts]]:
        """Every estate-month's counters again from the raw revisits and work orders:
        {(estate, month): counts}, and the kept ones alike. A revisit stored before it had
        a ``stats_month`` is counted in ``month_of(revisit)``."""
        recounted = stats.recount(
            (dict(revisit, stats_month=revisit.get("stats_month") or month_of(revisit))
             for revisit in self.db.revisits.find({}, {field: 1 for field in STATS_FIELDS})),
            self.db.work_orders.find({}, {"estate_id": 1, "kind": 1, "month": 1,
                                          "in_population": 1, "selected": 1, "reason": 1}),
            self.db.followups.find({}, FOLLOWUP_STATS_FIELDS),
            self.db.sampling_months.find({}, {"estate_id": 1, "month": 1, "report": 1}))
        return self.with_totals(recounted), self.kept_counts()

    def replace_counters(self, recounted: dict[tuple[str, str | None], Counts],
                         month_of: Callable[[Document], str]) -> None:
        """Repair: the counters become the recount, each document counted as it is now
        (nothing left pending; a revisit without ``stats_month`` gets ``month_of``'s).
        Run it while nothing writes revisits."""
        for collection, contribution in CONTRIBUTIONS.items():
            for document in self.db[collection].find({}):
                counted = [list(pair) for pair in sorted(contribution(document).items())]
                month = {} if collection != "revisits" or document.get("stats_month") else {
                    "stats_month": month_of(document)}
                if document.get(COUNTED) != counted or document.get(PENDING) or month:
                    self._counted_as_is(collection, document["_id"], counted, month)
        self.db[COUNTERS].delete_many({})
        self.store_counters(recounted)

    # -- statistics (the raw documents) ------------------------------------------------

    def revisits_for_stats(self, estate_id: str | None, since: datetime,
                           until: datetime) -> Documents:
        query: dict[str, Any] = {"source_at": {"$gte": since, "$lt": until}}
        if estate_id:
            query["estate_id"] = estate_id
        return list(self.db.revisits.find(query, {field: 1 for field in STATS_FIELDS}))

    def followups_for_stats(self, estate_id: str | None, months: Iterable[str]) -> Documents:
        query: dict[str, Any] = {"stats_month": {"$in": list(months)}}
        if estate_id:
            query["estate_id"] = estate_id
        return list(self.db.followups.find(query, FOLLOWUP_STATS_FIELDS))

    def closings_for_stats(self, estate_id: str, months: Iterable[str]) -> Documents:
        """The estate's sampling months of ``months`` (their last closing's report)."""
        return list(self.db.sampling_months.find(
            {"_id": {"$in": [_month_id(estate_id, month) for month in months]}},
            {"estate_id": 1, "month": 1, "report": 1}))

    def work_orders_for_stats(self, estate_id: str | None, months: Iterable[str]) -> Documents:
        query: dict[str, Any] = {"month": {"$in": list(months)}}
        if estate_id:
            query["estate_id"] = estate_id
        return list(self.db.work_orders.find(
            query, {"estate_id": 1, "kind": 1, "month": 1, "in_population": 1, "selected": 1,
                    "reason": 1}))

    # -- routine plans, key customers, the month's plan (services/revisit/plans.py) ---

    def routine_plans_made(self, years: Mapping[str, int]) -> set[str]:
        """Of ``years`` ({estate: year}), the estates whose plan of that year is made."""
        ids = [_month_id(estate_id, year) for estate_id, year in years.items()]
        return {plan["estate_id"] for plan in self.db.routine_plans.find(
            {"_id": {"$in": ids}, "planned": True}, {"estate_id": 1})}

    def claim_routine_plan(self, estate_id: str, year: int, now: datetime,
                           lease: timedelta) -> Document | None:
        """The estate's plan of ``year``, held for ``lease`` by this instance; None if it
        is made or another instance holds it (a crash lets the lease lapse)."""
        plan_id = _month_id(estate_id, year)
        insert_once(self.db.routine_plans.insert_one,
                    {"_id": plan_id, "estate_id": estate_id, "year": year, "planned": False})
        return claim(self.db.routine_plans, {"_id": plan_id, "planned": False},
                     "planning_until", now, lease, free_when_missing=True)

    def record_routine_plan(self, estate_id: str, year: int, summary: dict,
                            now: datetime) -> None:
        """The plan of ``year`` is made (by the timer or ``plan_routine_revisits``)."""
        self.db.routine_plans.update_one(
            {"_id": _month_id(estate_id, year)},
            {"$set": {"estate_id": estate_id, "year": year, "planned": True,
                      "planned_at": now, "summary": summary},
             "$unset": {"planning_until": ""}}, upsert=True)

    def record_key_customer(self, household_id: str, estate_id: str, flag: bool,
                            changed_at: datetime) -> bool:
        """Keep the household's flag unless a later change is kept already (events of two
        changes may arrive in either order): False when that later one is."""
        fields = {"estate_id": estate_id, "key_customer": flag, "changed_at": changed_at}
        if self.db.households.find_one_and_update(
                {"_id": household_id, "changed_at": {"$lte": changed_at}},
                {"$set": fields}) is not None:
            return True
        return insert_once(self.db.households.insert_one,
                           {"_id": household_id, **fields}) is not None

    def is_key_customer(self, household_id: str | None) -> bool:
        if household_id is None:
            return False
        household = self.db.households.find_one({"_id": household_id}, {"key_customer": 1})
        return bool(household and household.get("key_customer"))

    def open_household_revisits(self, household_id: str) -> Documents:
        return list(self.db.revisits.find({"household_id": household_id,
                                           "status": {"$in": list(OPEN)}}))

    def plan_month_revisits(self, estate_id: str, month: str) -> Documents:
        """The revisits listed in an estate's plan of ``month`` (``domain.plan_month``)."""
        return list(self.db.revisits.find({"estate_id": estate_id, "plan_month": month}))


def _bucket(document: Mapping[str, Any]) -> Bucket:
    """A counter document as (estate, month, its counts): the counts ``COUNTS_READ``
    names, the stored document's own (read only)."""
    return (document["estate_id"], document["month"],
            {key: document[key] for key in COUNTED_FIGURES if key in document})


def _month_id(estate_id: str, month: str | int) -> str:
    return f"{estate_id}:{month}"
