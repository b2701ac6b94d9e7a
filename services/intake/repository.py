"""intake's data: estates, households with contacts, complaints, work orders, and the
complaint statistics' counters per estate × month of receipt (``complaint_counters``).

How a complaint's change reaches the counters once (no multi-document transactions on
the embedded store), as survey's tallies and revisit's counters are kept:

1. the complaint is written with what its change does to its counters
   (``stats.difference`` of its contribution before and after) in ``stats_pending``,
   and its new contribution in ``stats_counted``, in the same write;
2. the counter document gets the ``$inc`` and the change's id in ``in_flight`` in one
   write, matching only if the id is not there yet;
3. the change leaves the complaint's ``stats_pending``;
4. its id leaves ``in_flight``.

A crash leaves a complaint with ``stats_unsettled``: after its writer's grace the relay
(``settle_counts``) redoes 2-4 for each change left, skipping 2 if the id is still in
``in_flight`` (it leaves only after step 3). A complaint stored before the counters has
no ``stats_counted`` (it is not counted yet): its next change counts it whole.
``recount`` checks the counters against the raw complaints; ``replace_counters``
repairs them.
"""
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from services.intake import stats
from shared.errors import InvalidInput
from shared.paging import decode_cursor, encode_cursor, find_page
from shared.store import VERSION, Repository, estate_scope

HOUSEHOLD_FIELDS = ("building", "unit", "room", "occupied", "contacts")
# Query filters that are plain equality on a stored field.
COMPLAINT_EQUALITY = ("estate_id", "status", "category", "channel", "severity", "household_id",
                      "department", "malicious")
WORK_ORDER_EQUALITY = ("estate_id", "kind", "status", "household_id", "complaint_id",
                       "important")
# The order of each list (paging adds ``_id`` last); an index below serves each.
HOUSEHOLD_ORDER = [("_id", ASCENDING)]
NEWEST_FIRST = [("received_at", DESCENDING), ("_id", DESCENDING)]   # complaints, work orders
DUE_FIRST = [("next_due_at", ASCENDING), ("_id", ASCENDING)]        # a worklist of complaints
# How many due complaints one pass of the deadline timer takes at a time.
ALERT_BATCH = 200
# Households an import writes at a time, all of them or none (and looks up at a time).
IMPORT_CHUNK = 1000

COUNTERS = "complaint_counters"
# the counters' bookkeeping on each complaint (never shown: shared.rpc.INTERNAL_KEYS)
COUNTED = "stats_counted"          # its contribution as the counters hold it: [[path, n]]
PENDING = "stats_pending"          # changes it still owes the counters, each applied once
UNSETTLED = "stats_unsettled"      # True while it owes any: what the relay looks for
SETTLE_AFTER = "stats_settle_after"   # left to its writer until then, then to the relay
BOOKKEEPING = (COUNTED, PENDING, UNSETTLED, SETTLE_AFTER)
# counter document fields that are not counts
COUNTER_INFO = ("_id", "estate_id", "month", "in_flight")


def _why_not_stored(error):
    """Why a chunk of an import was not stored, without the documents (contacts) the
    store's error carries."""
    if isinstance(error, BulkWriteError):
        taken = [str(failed.get("op", {}).get("_id")) for failed in
                 error.details.get("writeErrors", []) if failed.get("code") == 11000]
        if taken:
            return f"DuplicateKeyError: stored meanwhile: {', '.join(taken)}"
    return type(error).__name__


class IntakeRepository(Repository):
    indexes: ClassVar[dict] = {
        "households": [IndexModel([("estate_id", ASCENDING), ("building", ASCENDING)]),
                       IndexModel([("estate_id", ASCENDING), *HOUSEHOLD_ORDER])],
        "complaints": [
            IndexModel([("estate_id", ASCENDING), ("status", ASCENDING)]),
            IndexModel([("estate_id", ASCENDING), ("received_at", ASCENDING)]),
            IndexModel([("household_id", ASCENDING), ("category", ASCENDING)]),
            IndexModel([("reporter_key", ASCENDING), ("category", ASCENDING)], sparse=True),
            IndexModel(NEWEST_FIRST),
            IndexModel([("estate_id", ASCENDING), *NEWEST_FIRST]),
            IndexModel([("alert_due_at", ASCENDING)]),
            IndexModel([("next_due_at", ASCENDING)]),
            IndexModel([("estate_id", ASCENDING), *DUE_FIRST]),
            IndexModel([(UNSETTLED, ASCENDING), (SETTLE_AFTER, ASCENDING)], sparse=True),
            IndexModel([("work_order_pending", ASCENDING)], sparse=True),
            # the owner's link; complaints from before links have none (minted when needed)
            IndexModel([("owner_token", ASCENDING)], unique=True, sparse=True),
        ],
        "work_orders": [
            IndexModel([("estate_id", ASCENDING), ("kind", ASCENDING),
                        ("completed_at", ASCENDING)]),
            IndexModel([("household_id", ASCENDING)]),
            IndexModel([("complaint_id", ASCENDING)], sparse=True),
            IndexModel(NEWEST_FIRST),
            IndexModel([("estate_id", ASCENDING), *NEWEST_FIRST]),
        ],
        COUNTERS: [IndexModel([("month", ASCENDING), ("estate_id", ASCENDING)])],
    }
    outbox_collections = ("complaints", "work_orders")

    # estates and households --------------------------------------------------

    def import_households(self, estate_id, rows, existing, now):
        """Store ``rows`` (``existing``: the ids among them already stored, which are
        updated) ``IMPORT_CHUNK`` at a time, each chunk all or nothing
        (``all_or_nothing``): new households in one ``insert_many``, then the others.
        The estate becomes known with the first chunk stored, after its households (an
        empty list: the estate alone); if none is, it stays unknown. The report:
        ``imported``, ``updated``, and ``failed`` chunks ({``rows``: [first, last] index,
        ``error``}) - sending those rows again imports them."""
        report = {"imported": 0, "updated": 0, "failed": []}
        estate_known = False
        for start in range(0, len(rows), IMPORT_CHUNK) if rows else [0]:
            chunk = rows[start:start + IMPORT_CHUNK]
            ids = [row["household_id"] for row in chunk]
            estates = [] if estate_known else [estate_id]
            try:
                with self.all_or_nothing(households=ids, estates=estates) as session:
                    self._write_households(estate_id, chunk, existing, now, session)
                    if estates:
                        self.db.estates.update_one(
                            {"_id": estate_id}, {"$setOnInsert": {"created_at": now}},
                            upsert=True, session=session)
            except PyMongoError as exc:
                report["failed"].append({"rows": [start, start + len(chunk) - 1],
                                         "error": _why_not_stored(exc)})
                continue
            estate_known = True
            updated = sum(household_id in existing for household_id in ids)
            report["updated"] += updated
            report["imported"] += len(ids) - updated
        return report

    def _write_households(self, estate_id, rows, existing, now, session):
        new = [{"_id": row["household_id"], "estate_id": estate_id, "updated_at": now,
                "imported_at": now, **{key: row[key] for key in HOUSEHOLD_FIELDS}}
               for row in rows if row["household_id"] not in existing]
        if new:   # (one stored meanwhile: DuplicateKeyError, the chunk is undone)
            self.db.households.insert_many(new, session=session)
        # One update per known household: mongomock 4.3 cannot take pymongo 4.15's bulk
        # UpdateOne. An upsert, should one have gone meanwhile.
        for row in rows:
            if row["household_id"] in existing:
                self.db.households.update_one(
                    {"_id": row["household_id"]},
                    {"$set": {"estate_id": estate_id, "updated_at": now,
                              **{key: row[key] for key in HOUSEHOLD_FIELDS}},
                     "$setOnInsert": {"imported_at": now}},
                    upsert=True, session=session)

    def household_estates(self, household_ids):
        """household id -> its estate, for those that exist (``IMPORT_CHUNK`` ids a query)."""
        ids = list(household_ids)
        found = {}
        for start in range(0, len(ids), IMPORT_CHUNK):
            for doc in self.db.households.find(
                    {"_id": {"$in": ids[start:start + IMPORT_CHUNK]}}, {"estate_id": 1}):
                found[doc["_id"]] = doc["estate_id"]
        return found

    def find_estate(self, estate_id):
        return self.db.estates.find_one({"_id": estate_id})

    def estate_exists(self, estate_id):
        return self.db.estates.count_documents({"_id": estate_id}, limit=1) > 0

    def estate_ids(self):
        # the ids alone (no document copied); sorted as the store sorts strings
        return sorted(self.db.estates.distinct("_id"))

    def list_households(self, estate_id, filters):
        """An estate's households by id, a page at a time: (households, next cursor)."""
        query = {"estate_id": estate_id,
                 **{key: filters[key] for key in ("occupied", "building") if key in filters}}
        return find_page(self.db.households, query, HOUSEHOLD_ORDER, filters.get("limit"),
                         filters.get("cursor"))

    def find_household(self, household_id):
        return self.db.households.find_one({"_id": household_id})

    def contact_sources(self, refs):
        """What ``get_contacts`` answers from, one query per collection for all ``refs``:
        ({id: complaint}, {id: work order}, {id: household}) — the households both
        named in ``refs`` and those the complaints and work orders belong to."""
        refs = list(refs)
        complaints = {c["_id"]: c for c in self.db.complaints.find({"_id": {"$in": refs}})}
        orders = {o["_id"]: o for o in self.db.work_orders.find(
            {"_id": {"$in": [ref for ref in refs if ref not in complaints]}})}
        household_ids = set(refs) | {source["household_id"] for source in
                                     [*complaints.values(), *orders.values()]
                                     if source.get("household_id")}
        households = {h["_id"]: h for h in self.db.households.find(
            {"_id": {"$in": sorted(household_ids)}})}
        return complaints, orders, households

    # complaints ----------------------------------------------------------------

    def add_complaint(self, complaint, events):
        """Insert a new complaint, then count it (``stats_pending``: steps 2-4)."""
        complaint, change = self._counted(complaint, {}, complaint.get(VERSION, 0))
        stored = self.insert_with_events("complaints", complaint, events)
        self._settle(stored["_id"], [change])
        return stored

    def get_complaint(self, complaint_id):
        return self.fetch("complaints", complaint_id, "complaint")

    def find_complaint(self, complaint_id):
        return self.db.complaints.find_one({"_id": complaint_id})

    def save_complaint(self, complaint, events, handled_event=None):
        """Save a changed complaint (optimistic lock) with what the change does to its
        counters, then apply that."""
        complaint = {key: value for key, value in complaint.items()
                     if key not in (PENDING, UNSETTLED, SETTLE_AFTER)}
        # none: stored before the counters, not counted yet (counted whole now)
        before = dict(complaint.pop(COUNTED, None) or [])
        complaint, change = self._counted(complaint, before, complaint.get(VERSION, 0) + 1)
        del complaint[PENDING]
        saved = self.save_versioned("complaints", complaint, events, handled_event,
                                    push={PENDING: change})
        self._settle(saved["_id"], [change])
        return saved

    def find_by_owner_token(self, token):
        return self.db.complaints.find_one({"owner_token": token})

    def ensure_owner_token(self, complaint_id, token):
        """The complaint's owner token, ``token`` set first if it has none: of two callers
        at once one sets it, both answer it. Not versioned: a save of a copy read before
        has no ``owner_token`` to overwrite it with."""
        self.db.complaints.update_one(
            {"_id": complaint_id, "owner_token": {"$exists": False}},
            {"$set": {"owner_token": token}})
        found = self.db.complaints.find_one({"_id": complaint_id}, {"owner_token": 1})
        return found and found.get("owner_token")

    def list_complaints(self, filters, now):
        """Complaints newest first, or by their next deadline (``order`` "due"), a page at
        a time: (complaints, next cursor)."""
        query = {key: filters[key] for key in COMPLAINT_EQUALITY if key in filters}
        query.update(estate_scope(filters))
        query.update(_between("received_at", filters.get("since"), filters.get("until")))
        if "external_status" in filters:
            query["external.status"] = filters["external_status"]
        if "repeat" in filters:
            query["repeat_of"] = {"$ne": None} if filters["repeat"] else None
        if filters.get("overdue") is True:
            query["next_due_at"] = {"$lte": now}
        elif filters.get("overdue") is False:
            query["$or"] = [{"next_due_at": None}, {"next_due_at": {"$gt": now}}]
        if "open" in filters:
            query = {"$and": [query, {"status": {"$ne": "closed"} if filters["open"]
                                      else "closed"}]}
        if filters.get("order") == "due":
            return self._due_first(query, filters["limit"], filters.get("cursor"))
        return find_page(self.db.complaints, query, NEWEST_FIRST, filters["limit"],
                         filters.get("cursor"))

    def _due_first(self, query, limit, cursor):
        """The complaints of ``query`` by their next deadline, the most overdue first; then
        those with nothing due (resolved, awaiting the owner's sign-off), newest first. One
        cursor runs through both parts: a cursor of the part the page stopped in."""
        dated = {"$and": [query, {"next_due_at": {"$ne": None}}]}
        undated = {"$and": [query, {"next_due_at": None}]}
        if cursor is not None and not _cursor_of(DUE_FIRST, cursor):
            return find_page(self.db.complaints, undated, NEWEST_FIRST, limit, cursor)
        page, after = find_page(self.db.complaints, dated, DUE_FIRST, limit, cursor)
        if after is not None:
            return page, after
        room = limit - len(page)
        if room == 0:   # the dated part filled the page exactly: go on after its last one
            if self.db.complaints.count_documents(undated, limit=1) == 0:
                return page, None
            return page, encode_cursor(DUE_FIRST, [page[-1]["next_due_at"], page[-1]["_id"]])
        rest, after = find_page(self.db.complaints, undated, NEWEST_FIRST, room)
        return page + rest, after

    def earlier_complaints(self, estate_id, category, household_id, reporter_key):
        """The same household's (or, without one, the same reporter's) complaints in a
        category: what a new complaint may repeat."""
        if household_id:
            query = {"household_id": household_id}
        elif reporter_key:
            query = {"reporter_key": reporter_key}
        else:
            return []
        query.update(estate_id=estate_id, category=category)
        fields = ("estate_id", "household_id", "reporter", "category", "status", "received_at",
                  "closed_at")
        return list(self.db.complaints.find(query, {key: 1 for key in fields})
                    .sort("received_at", DESCENDING).limit(50))

    def complaints_due_for_alerts(self, now, limit=ALERT_BATCH):
        return list(self.db.complaints.find({"alert_due_at": {"$lte": now}})
                    .sort("alert_due_at", ASCENDING).limit(limit))

    def complaints_awaiting_work_order(self, registered_before):
        return list(self.db.complaints.find(
            {"work_order_pending": True, "registered_at": {"$lte": registered_before}}))

    def work_order_opened(self, complaint_id):
        # Not versioned: a stale save may set the flag again, and opening the same
        # order again is a no-op (its id derives from the complaint).
        self.db.complaints.update_one({"_id": complaint_id},
                                      {"$unset": {"work_order_pending": ""}})

    def complaints_received(self, estate_id, start, end, fields):
        query = {"estate_id": estate_id, "received_at": {"$gte": start, "$lt": end}}
        return list(self.db.complaints.find(query, {key: 1 for key in fields}))

    # the statistics' counters ------------------------------------------------------

    def _counted(self, complaint, before, version):
        """``complaint`` to write with its new contribution and the change to its counters
        pending (a change that changes no counter is still recorded: it is settled as one)."""
        contribution = stats.contribution(complaint)
        month = complaint.get("stats_month")
        change = {"id": f"{complaint['_id']}@{version}",
                  "counter": _month_id(complaint["estate_id"], month),
                  "estate_id": complaint["estate_id"], "month": month,
                  "inc": sorted(stats.difference(before, contribution).items())}
        return dict(complaint, **{COUNTED: sorted(contribution.items()), PENDING: [change],
                                  UNSETTLED: True,
                                  SETTLE_AFTER: datetime.now(UTC) + self.outbox_grace}), change

    def _settle(self, complaint_id, changes):
        """Steps 2-4 for the ``changes`` a write left pending on its complaint."""
        for change in changes:
            self._apply(change)
            self._forget(complaint_id, change)

    def _apply(self, change):
        """Step 2: the change's ``$inc``, once: its id joins ``in_flight`` in the same write."""
        counters = self.db[COUNTERS]
        try:
            counters.update_one({"_id": change["counter"]}, {"$setOnInsert": {
                "estate_id": change["estate_id"], "month": change["month"], "in_flight": []}},
                upsert=True)
        except DuplicateKeyError:
            pass   # MongoDB: another writer's upsert made it a moment before
        update = {"$push": {"in_flight": change["id"]}}
        if change["inc"]:
            update["$inc"] = dict(change["inc"])
        if counters.update_one({"_id": change["counter"], "in_flight": {"$ne": change["id"]}},
                               update).modified_count:
            for path, step in change["inc"]:
                if step < 0:   # back to zero: dropped (the condition is in the same write)
                    counters.update_one({"_id": change["counter"], path: 0},
                                        {"$unset": {path: ""}})

    def _forget(self, complaint_id, change):
        """Steps 3 and 4; the flag goes once nothing is pending (checked in its write)."""
        self.db.complaints.update_one({"_id": complaint_id},
                                      {"$pull": {PENDING: {"id": change["id"]}}})
        self.db.complaints.update_one({"_id": complaint_id, PENDING: {"$size": 0}},
                                      {"$unset": {UNSETTLED: "", SETTLE_AFTER: ""}})
        self.db[COUNTERS].update_one({"_id": change["counter"]},
                                     {"$pull": {"in_flight": change["id"]}})

    def settle_counts(self, lease=timedelta(seconds=30), limit=500):
        """The relay: what crashed writers left pending, once their grace has passed, each
        complaint claimed for ``lease`` so two instances do not both settle it."""
        settled = 0
        while settled < limit:
            now = datetime.now(UTC)
            complaint = self.db.complaints.find_one_and_update(
                {UNSETTLED: True, SETTLE_AFTER: {"$lte": now}},
                {"$set": {SETTLE_AFTER: now + lease}}, projection={PENDING: 1})
            if complaint is None:
                break
            for change in complaint.get(PENDING, []):
                if self.db[COUNTERS].find_one({"_id": change["counter"],
                                               "in_flight": change["id"]}) is None:
                    self._apply(change)
                self._forget(complaint["_id"], change)
            self.db.complaints.update_one({"_id": complaint["_id"], PENDING: {"$size": 0}},
                                          {"$unset": {UNSETTLED: "", SETTLE_AFTER: ""}})
            settled += 1
        return settled

    def counted(self, months, estate_id=None):
        """The counters of ``months`` summed per estate (of one estate, or all):
        {estate: counts}."""
        months = list(months)
        query = ({"_id": {"$in": [_month_id(estate_id, month) for month in months]}}
                 if estate_id is not None else {"month": {"$in": months}})
        summed = {}
        # no projection: mongomock copies a projected document field by field, far slower
        for document in self.db[COUNTERS].find(query):
            counts = _counts(document)
            if document["estate_id"] in summed:
                stats.add(summed[document["estate_id"]], counts)
            else:
                summed[document["estate_id"]] = Counter(counts)
        return summed

    # -- the check and repair tool -----------------------------------------------------

    def recount(self):
        """Every estate-month's counters again from the raw complaints, and the kept ones
        alike: ({(estate, month): counts}, {(estate, month): counts})."""
        fields = {key: 1 for key in (*stats.FIELDS, "stats_month")}
        recounted = stats.recount(self.db.complaints.find({}, fields))
        kept = {(document["estate_id"], document["month"]): _counts(document)
                for document in self.db[COUNTERS].find({}, {"in_flight": 0})}
        return recounted, kept

    def unfiled_complaints(self):
        """Complaints stored before the counters, without their month of receipt:
        [(id, estate, received_at)]."""
        return [(found["_id"], found["estate_id"], found["received_at"])
                for found in self.db.complaints.find(
                    {"stats_month": {"$exists": False}}, {"estate_id": 1, "received_at": 1})]

    def file_complaints(self, months):
        """Repair: each complaint of ``months`` ({id: month}) gets its month of receipt."""
        for complaint_id, month in months.items():
            self.db.complaints.update_one({"_id": complaint_id}, {"$set": {"stats_month": month}})

    def replace_counters(self, recounted):
        """Repair: the counters become the recount, each complaint counted as it is now
        (nothing left pending). Run it while nothing writes complaints."""
        for complaint in self.db.complaints.find({}, {key: 1 for key in stats.FIELDS}):
            self.db.complaints.update_one({"_id": complaint["_id"]}, {
                "$set": {COUNTED: sorted(stats.contribution(complaint).items()), PENDING: []},
                "$unset": {UNSETTLED: "", SETTLE_AFTER: ""}})
        self.db[COUNTERS].delete_many({})
        self.store_counters(recounted)

    def store_counters(self, counted):
        """Counter documents for ``counted`` ({(estate, month): counts}), none there yet."""
        documents = [{"_id": _month_id(estate_id, month), "estate_id": estate_id,
                      "month": month, "in_flight": [], **_nested(counts)}
                     for (estate_id, month), counts in counted.items()]
        if documents:
            self.db[COUNTERS].insert_many(documents)

    # work orders -----------------------------------------------------------------

    def add_work_order(self, order, events):
        return self.insert_with_events("work_orders", order, events)

    def add_work_order_once(self, order, events):
        """Insert an order whose id derives from its cause; False if it already exists."""
        try:
            self.insert_with_events("work_orders", order, events)
        except DuplicateKeyError:
            return False
        return True

    def get_work_order(self, order_id):
        return self.fetch("work_orders", order_id, "work order")

    def find_work_order(self, order_id):
        return self.db.work_orders.find_one({"_id": order_id})

    def save_work_order(self, order, events):
        return self.save_versioned("work_orders", order, events)

    def list_work_orders(self, filters):
        """Work orders newest first, a page at a time: (orders, next cursor)."""
        query = {key: filters[key] for key in WORK_ORDER_EQUALITY if key in filters}
        query.update(estate_scope(filters))
        query.update(_between("completed_at", filters.get("completed_since"),
                              filters.get("completed_until")))
        return find_page(self.db.work_orders, query, NEWEST_FIRST, filters["limit"],
                         filters.get("cursor"))


def _cursor_of(sort, cursor):
    """Was ``cursor`` made for a list in ``sort`` order?"""
    try:
        decode_cursor(sort, cursor)
    except InvalidInput:
        return False
    return True


def _between(field, since, until):
    """A query on ``field`` from ``since`` (inclusive) to ``until`` (exclusive), either open."""
    bounds = {"$gte": since, "$lt": until}
    bounds = {operator: value for operator, value in bounds.items() if value is not None}
    return {field: bounds} if bounds else {}


def _month_id(estate_id, month):
    return f"{estate_id}:{month}"


def _counts(document):
    """A counter document's counts as {path: n}, zeros left out (paths have one or two
    parts: ``stats.contribution``)."""
    counts = {}
    for key, value in document.items():
        if type(value) is dict:
            for name, count in value.items():
                if count:
                    counts[key + "." + name] = count
        elif value and key not in COUNTER_INFO:
            counts[key] = value
    return counts


def _nested(counts):
    """{path: n} as the nested fields ``$inc`` with those paths makes."""
    nested = {}
    for path, count in counts.items():
        *parents, name = path.split(".")
        level = nested
        for parent in parents:
            level = level.setdefault(parent, {})
        level[name] = count
    return nested
