"""intake's data: estates, households with contacts, complaints, work orders, and the
complaint statistics' counters per estate × month of receipt (``complaint_counters``),
with each estate's year and the group's month and year totals beside them.

A complaint's change reaches the counters once as revisit's changes reach theirs
(``shared.counters.MonthCounters``: the change pending on the complaint, taken once by
the counter under its id, a relay settling what a crash left). ``recount`` checks the
counters against the raw complaints; ``replace_counters`` repairs them.
"""
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.client_session import ClientSession
from pymongo.errors import BulkWriteError, PyMongoError

from services.intake import households, stats
from services.intake.stats import Counts
from shared.counters import (  # noqa: F401 (what is never shown)
    BOOKKEEPING,
    GROUP,
    PENDING,
    UNSETTLED_INDEX,
    MonthCounters,
    counter_id,
    counts_of,
    with_group_totals,
)
from shared.embedded import read_only
from shared.envelope import Changed, Envelope, similar_events
from shared.errors import InvalidInput
from shared.once import insert_once
from shared.paging import Order, decode_cursor, encode_cursor, find_page
from shared.store import OUTBOX, VERSION, Document, estate_scope, request_marker

HOUSEHOLD_FIELDS = ("building", "unit", "room", "occupied", "contacts")
# what a complaint or work order gives its contact from (``get_contacts``): a record is
# large (history, outbox, bookkeeping) and none of the rest is read there
CONTACT_SOURCE_FIELDS = ("estate_id", "household_id", "reporter")
# Query filters that are plain equality on a stored field.
COMPLAINT_EQUALITY = ("estate_id", "status", "category", "channel", "severity", "household_id",
                      "department", "malicious")
WORK_ORDER_EQUALITY = ("estate_id", "kind", "status", "household_id", "complaint_id",
                       "important")
# The order of each list (paging adds ``_id`` last); an index below serves each.
HOUSEHOLD_ORDER = [("_id", ASCENDING)]
ESTATE_ORDER = [("_id", ASCENDING)]
# Sorts after every name starting with a given prefix (the highest code point).
NAME_PAST_PREFIX = chr(0x10FFFF)
# what headquarters' statistics read of each estate (a bare one: ``created_at`` for its view)
ESTATE_LABEL_FIELDS = ("name", "company", "region", "timezone", "created_at")
NEWEST_FIRST = [("received_at", DESCENDING), ("_id", DESCENDING)]   # complaints, work orders
DUE_FIRST = [("next_due_at", ASCENDING), ("_id", ASCENDING)]        # a worklist of complaints
# How many due complaints one pass of the deadline timer takes at a time.
ALERT_BATCH = 200
# Households an import writes at a time, all of them or none (and looks up at a time).
IMPORT_CHUNK = 1000

COUNTERS = "complaint_counters"
# the counters' bookkeeping on each complaint (never shown: shared.rpc.INTERNAL_KEYS)


def _why_not_stored(error: Exception) -> str:
    """Why a chunk of an import was not stored, without the documents (contacts) the
    store's error carries."""
    if isinstance(error, BulkWriteError):
        taken = [str(failed.get("op", {}).get("_id")) for failed in
                 error.details.get("writeErrors", []) if failed.get("code") == 11000]
        if taken:
            return f"DuplicateKeyError: stored meanwhile: {', '.join(taken)}"
    return type(error).__name__


class IntakeRepository(MonthCounters):
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
            UNSETTLED_INDEX,
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
        "estates": [IndexModel([("company", ASCENDING), ("region", ASCENDING),
                                *ESTATE_ORDER]),
                    IndexModel([("region", ASCENDING), *ESTATE_ORDER]),
                    IndexModel([("name", ASCENDING)], sparse=True)],
    }
    outbox_collections = ("complaints", "work_orders", "estates", "households")
    counters_collection = COUNTERS
    counted_collections = ("complaints",)
    keeps_group_totals = True     # headquarters' figures: one document a month
    keeps_year_totals = True      # a year's figures: one document an estate (and the group)

    # estates and households --------------------------------------------------

    def import_households(self, estate_id: str, rows: list[dict], existing: Collection[str],
                          now: datetime, new_estate: Changed | None = None) -> dict[str, Any]:
        """Store ``rows`` (``existing``: the ids among them already stored, which are
        updated) ``IMPORT_CHUNK`` at a time, each chunk all or nothing
        (``all_or_nothing``): new households in one ``insert_many``, then the others.
        The estate becomes known with the first chunk stored, after its households (an
        empty list: the estate alone): ``new_estate`` (its record and events) is written
        in that chunk's step and announced once it holds; if no chunk is, it stays
        unknown. The report:
        ``imported``, ``updated``, and ``failed`` chunks ({``rows``: [first, last] index,
        ``error``}) - sending those rows again imports them."""
        report: dict[str, Any] = {"imported": 0, "updated": 0, "failed": []}
        estate_known = False
        for start in range(0, len(rows), IMPORT_CHUNK) if rows else [0]:
            chunk = rows[start:start + IMPORT_CHUNK]
            ids = [row["household_id"] for row in chunk]
            estates = [] if estate_known else [estate_id]
            try:
                with self.all_or_nothing(households=ids, estates=estates) as session:
                    announced = self._write_households(estate_id, chunk, existing, now,
                                                       session)
                    if estates and new_estate:
                        record, events = new_estate
                        self.db.estates.insert_one(
                            {**record, **self._outbox_fields(events), OUTBOX: list(events)},
                            session=session)
                    elif estates:
                        self.db.estates.update_one(
                            {"_id": estate_id}, {"$setOnInsert": {"created_at": now}},
                            upsert=True, session=session)
            except PyMongoError as exc:
                report["failed"].append({"rows": [start, start + len(chunk) - 1],
                                         "error": _why_not_stored(exc)})
                continue
            if estates and new_estate:
                self.flush("estates", estate_id, new_estate[1])
            self.announce_households(announced)
            estate_known = True
            updated = sum(household_id in existing for household_id in ids)
            report["updated"] += updated
            report["imported"] += len(ids) - updated
        return report

    def _write_households(self, estate_id: str, rows: list[dict], existing: Collection[str],
                          now: datetime, session: ClientSession | None,
                          ) -> dict[str, list[Envelope]]:
        """Write the chunk, each household with what it announces (moved in, its
        key-customer flag: ``households.announcements``) in its own outbox, in the same
        write; {household id: events} to publish once the chunk holds."""
        before = {doc["_id"]: doc for doc in self.db.households.find(
            {"_id": {"$in": [row["household_id"] for row in rows
                             if row["household_id"] in existing]}},
            {"occupied": 1, "key_customer": 1}, session=session)}
        with similar_events():   # alike but for a few values: only those checked again
            announced = {row["household_id"]: households.announcements(
                estate_id, row, before.get(row["household_id"]), now) for row in rows}
        new = [{"_id": row["household_id"], "estate_id": estate_id, "updated_at": now,
                "imported_at": now, **_household_fields(row),
                **self._outbox_fields(announced[row["household_id"]]),
                OUTBOX: announced[row["household_id"]]}
               for row in rows if row["household_id"] not in existing]
        if new:   # (one stored meanwhile: DuplicateKeyError, the chunk is undone)
            self.db.households.insert_many(new, session=session)
        # One update per known household: mongomock 4.3 cannot take pymongo 4.15's bulk
        # UpdateOne. An upsert, should one have gone meanwhile.
        for row in rows:
            if row["household_id"] in existing:
                events = announced[row["household_id"]]
                update: dict[str, Any] = {"$set": {"estate_id": estate_id, "updated_at": now,
                                   **_household_fields(row), **self._outbox_fields(events)},
                          "$setOnInsert": {"imported_at": now}}
                if events:
                    update["$push"] = {OUTBOX: {"$each": events}}
                self.db.households.update_one({"_id": row["household_id"]}, update,
                                              upsert=True, session=session)
        return {household_id: events for household_id, events in announced.items() if events}

    def announce_households(self, announced: Mapping[str, list[Envelope]]) -> None:
        """Publish what ``_write_households`` left in the households' outboxes."""
        for household_id, events in announced.items():
            self.flush("households", household_id, events)

    def household_states(self, household_ids: Iterable[str]) -> dict[str, Document]:
        """{id: household} of those that exist: its estate, occupancy and flag."""
        return {doc["_id"]: doc for doc in self.db.households.find(
            {"_id": {"$in": list(household_ids)}},
            {"estate_id": 1, "occupied": 1, "key_customer": 1})}

    def set_key_customer(self, household_id: str, flag: bool,
                         events: list[Envelope]) -> Document | None:
        """Set the flag with its announcement in one write, if it is not set so already;
        the household after, or None when it already was."""
        return self.update_with_events(
            "households", {"_id": household_id, "key_customer": {"$ne": flag}},
            {"$set": {"key_customer": flag}, **request_marker()}, events)

    def household_estates(self, household_ids: Iterable[str]) -> dict[str, str]:
        """household id -> its estate, for those that exist (``IMPORT_CHUNK`` ids a query)."""
        ids = list(household_ids)
        found: dict[str, str] = {}
        for start in range(0, len(ids), IMPORT_CHUNK):
            for doc in self.db.households.find(
                    {"_id": {"$in": ids[start:start + IMPORT_CHUNK]}}, {"estate_id": 1}):
                found[doc["_id"]] = doc["estate_id"]
        return found

    def find_estate(self, estate_id: str) -> Document | None:
        return self.db.estates.find_one({"_id": estate_id})

    def estate_exists(self, estate_id: str) -> bool:
        return self.db.estates.count_documents({"_id": estate_id}, limit=1) > 0

    def estate_ids(self) -> list[str]:
        # the ids alone (no document copied); sorted as the store sorts strings
        return sorted(self.db.estates.distinct("_id"))

    def add_estate(self, estate: Document, events: list[Envelope]) -> Document:
        """Insert a new estate's record with its announcement; ``InvalidInput`` on
        ``estate_id`` if one with that id exists."""
        stored = insert_once(self.insert_with_events, "estates", estate, events)
        if stored is None:
            raise InvalidInput({"estate_id": ["an estate with this id exists"]})
        return stored

    def save_estate(self, estate: Document, events: list[Envelope]) -> Document:
        return self.save_versioned("estates", estate, events)

    def list_estates(self, filters: Mapping[str, Any]) -> tuple[list[Document], str | None]:
        """Estates by id, a page at a time: (estates, next cursor). ``name_prefix`` is a
        range on the ``name`` index (a chooser's search among the group's thousands)."""
        query = {key: filters[key] for key in ("company", "region", "name") if key in filters}
        prefix = filters.get("name_prefix")
        if prefix is not None and "name" in query:     # both: the name, if it starts so
            query["name"] = query["name"] if query["name"].startswith(prefix) else {"$in": []}
        elif prefix is not None:
            query["name"] = {"$gte": prefix, "$lt": prefix + NAME_PAST_PREFIX}
        query.update(estate_scope(filters, field="_id"))
        return find_page(self.db.estates, query, ESTATE_ORDER, filters.get("limit"),
                         filters.get("cursor"))

    def all_estates(self, estate_ids: Collection[str] | None = None) -> list[Mapping[str, Any]]:
        """Every estate's record (or those of ``estate_ids`` there are) by id, as stored:
        read only (headquarters' statistics name and group them, ``estates.label``)."""
        query = {} if estate_ids is None else {"_id": {"$in": list(estate_ids)}}
        return sorted(read_only(self.db.estates, query, dict.fromkeys(ESTATE_LABEL_FIELDS, 1)),
                      key=lambda estate: estate["_id"])

    def estates_to_migrate(self, limit: int) -> list[tuple[str, datetime | None]]:
        """Up to ``limit`` estates known before records existed: (id, created_at) of each
        bare estate document, then of estate ids only households name."""
        bare = [(doc["_id"], doc.get("created_at")) for doc in
                self.db.estates.find({"name": {"$exists": False}}, {"created_at": 1})
                .limit(limit)]
        if len(bare) < limit:
            known = set(self.db.estates.distinct("_id"))
            bare += [(estate_id, None) for estate_id in
                     sorted(set(self.db.households.distinct("estate_id")) - known)
                     ][:limit - len(bare)]
        return bare

    def migrate_estate(self, estate: Document, events: list[Envelope]) -> bool:
        """Write a legacy estate's record unless it has one now (migrated meanwhile, by
        another instance): True when this call wrote it."""
        update = {"$set": {key: value for key, value in estate.items() if key != "_id"}}
        written = self.update_with_events(
            "estates", {"_id": estate["_id"], "name": {"$exists": False}}, update, events)
        # none written: no bare document, none at all (households only) or migrated
        return written is not None or \
            insert_once(self.insert_with_events, "estates", estate, events) is not None

    def estates_with_households(self, estate_ids: list[str], filters: Mapping[str, Any],
                                ) -> tuple[set[str], set[str]]:
        """(the estates of ``estate_ids`` intake knows, those of them with a household
        matching ``filters`` (``occupied``)): one read of the estates, then one indexed
        lookup of a single household an estate."""
        known = {doc["_id"] for doc in self.db.estates.find({"_id": {"$in": estate_ids}},
                                                             {"_id": 1})}
        query = {key: filters[key] for key in ("occupied",) if key in filters}
        peopled = {estate_id for estate_id in known if self.db.households.find_one(
            {"estate_id": estate_id, **query}, {"_id": 1}) is not None}
        return known, peopled

    def list_households(self, estate_id: str, filters: Mapping[str, Any],
                        ) -> tuple[list[Document], str | None]:
        """An estate's households by id, a page at a time: (households, next cursor);
        ``household_ids``: those of them alone (by ``_id``, one indexed read)."""
        query = {"estate_id": estate_id,
                 **{key: filters[key] for key in ("occupied", "building") if key in filters}}
        if filters.get("household_ids"):
            query["_id"] = {"$in": sorted(set(filters["household_ids"]))}
        return find_page(self.db.households, query, HOUSEHOLD_ORDER, filters.get("limit"),
                         filters.get("cursor"))

    def find_household(self, household_id: str) -> Document | None:
        return self.db.households.find_one({"_id": household_id})

    def contact_sources(self, refs: Iterable[str]) -> tuple[dict[str, Document],
                                                            dict[str, Document],
                                                            dict[str, Document]]:
        """What ``get_contacts`` answers from, one query per collection for all ``refs``:
        ({id: complaint}, {id: work order}, {id: household}) — the households both
        named in ``refs`` and those the complaints and work orders belong to."""
        refs = list(refs)
        complaints = {c["_id"]: c for c in self.db.complaints.find({"_id": {"$in": refs}},
                                                                   CONTACT_SOURCE_FIELDS)}
        orders = {o["_id"]: o for o in self.db.work_orders.find(
            {"_id": {"$in": [ref for ref in refs if ref not in complaints]}},
            CONTACT_SOURCE_FIELDS)}
        household_ids = set(refs) | {source["household_id"] for source in
                                     [*complaints.values(), *orders.values()]
                                     if source.get("household_id")}
        households = {h["_id"]: h for h in self.db.households.find(
            {"_id": {"$in": sorted(household_ids)}})}
        return complaints, orders, households

    # complaints ----------------------------------------------------------------

    def add_complaint(self, complaint: Document, events: list[Envelope]) -> Document:
        """Insert a new complaint, then count it (``stats_pending``: steps 2-4)."""
        complaint, change = self._counted(complaint, stats.contribution(complaint),
                                          complaint.get(VERSION, 0))
        stored = self.insert_with_events("complaints", complaint, events)
        self._settle("complaints", stored["_id"], [change])
        return stored

    def get_complaint(self, complaint_id: str) -> Document:
        return self.fetch("complaints", complaint_id, "complaint")

    def find_complaint(self, complaint_id: str) -> Document | None:
        return self.db.complaints.find_one({"_id": complaint_id})

    def save_complaint(self, complaint: Document, events: list[Envelope],
                       handled_event: str | None = None) -> Document:
        """Save a changed complaint (optimistic lock) with what the change does to its
        counters, then apply that."""
        complaint, before = self._uncounted(complaint)
        complaint, change = self._counted(complaint, stats.contribution(complaint),
                                          complaint.get(VERSION, 0) + 1, before)
        return self._save_pending("complaints", complaint, change, events, handled_event)

    def find_by_owner_token(self, token: str) -> Document | None:
        return self.db.complaints.find_one({"owner_token": token})

    def ensure_owner_token(self, complaint_id: str, token: str) -> str | None:
        """The complaint's owner token, ``token`` set first if it has none: of two callers
        at once one sets it, both answer it. Not versioned: a save of a copy read before
        has no ``owner_token`` to overwrite it with."""
        self.db.complaints.update_one(
            {"_id": complaint_id, "owner_token": {"$exists": False}},
            {"$set": {"owner_token": token}})
        found = self.db.complaints.find_one({"_id": complaint_id}, {"owner_token": 1})
        return found.get("owner_token") if found else None

    def list_complaints(self, filters: Mapping[str, Any],
                        now: datetime) -> tuple[list[Document], str | None]:
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

    def _due_first(self, query: dict[str, Any], limit: int,
                   cursor: str | None) -> tuple[list[Document], str | None]:
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

    def earlier_complaints(self, estate_id: str, category: str, household_id: str | None,
                           reporter_key: str | None) -> list[Document]:
        """The same household's (or, without one, the same reporter's) complaints in a
        category: what a new complaint may repeat."""
        query: dict[str, Any]
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

    def complaints_due_for_alerts(self, now: datetime, limit: int = ALERT_BATCH) -> list[Document]:
        return list(self.db.complaints.find({"alert_due_at": {"$lte": now}})
                    .sort("alert_due_at", ASCENDING).limit(limit))

    def complaints_awaiting_work_order(self, registered_before: datetime) -> list[Document]:
        return list(self.db.complaints.find(
            {"work_order_pending": True, "registered_at": {"$lte": registered_before}}))

    def work_order_opened(self, complaint_id: str) -> None:
        # Not versioned: a stale save may set the flag again, and opening the same
        # order again is a no-op (its id derives from the complaint).
        self.db.complaints.update_one({"_id": complaint_id},
                                      {"$unset": {"work_order_pending": ""}})

    def complaints_received(self, estate_id: str, start: datetime, end: datetime,
                            fields: Iterable[str]) -> list[Document]:
        query = {"estate_id": estate_id, "received_at": {"$gte": start, "$lt": end}}
        return list(self.db.complaints.find(query, {key: 1 for key in fields}))

    # the statistics' counters ------------------------------------------------------

    def counted(self, months: Iterable[str], estate_id: str | None = None,
                estate_ids: Collection[str] | None = None) -> dict[str, Counter]:
        """The counters of ``months`` summed per estate (of one estate, of ``estate_ids``
        by their documents' ids, or all; ``GROUP``: the group's totals): {estate: counts}.
        A whole year reads its year documents."""
        months = self.period_keys(list(months))
        wanted = [estate_id] if estate_id is not None else estate_ids
        query = ({"_id": {"$in": [counter_id(estate, month)
                                  for estate in wanted for month in months]}}
                 if wanted is not None else {"month": {"$in": months}})
        summed: dict[str, Counter] = {}
        for document in read_only(self.db[COUNTERS], query):   # counts_of copies them
            if document["estate_id"] == GROUP and wanted is None:
                continue
            counts = counts_of(document)
            if document["estate_id"] in summed:
                stats.add(summed[document["estate_id"]], counts)
            else:
                summed[document["estate_id"]] = Counter(counts)
        return summed

    # -- the check and repair tool -----------------------------------------------------

    def recount(self) -> tuple[dict[tuple[str, str | None], Counts],
                               dict[tuple[str, str | None], Counts]]:
        """Every estate-month's counters again from the raw complaints, and the kept ones
        alike: ({(estate, month): counts}, {(estate, month): counts})."""
        fields = {key: 1 for key in (*stats.FIELDS, "stats_month")}
        return self.with_totals(stats.recount(self.db.complaints.find({}, fields))), \
            self.kept_counts()

    def unfiled_complaints(self) -> list[tuple[str, str, datetime]]:
        """Complaints stored before the counters, without their month of receipt:
        [(id, estate, received_at)]."""
        return [(found["_id"], found["estate_id"], found["received_at"])
                for found in self.db.complaints.find(
                    {"stats_month": {"$exists": False}}, {"estate_id": 1, "received_at": 1})]

    def file_complaints(self, months: Mapping[str, str]) -> None:
        """Repair: each complaint of ``months`` ({id: month}) gets its month of receipt."""
        for complaint_id, month in months.items():
            self.db.complaints.update_one({"_id": complaint_id}, {"$set": {"stats_month": month}})

    def replace_counters(self, recounted: dict[tuple[str, str | None], Counts]) -> None:
        """Repair: the counters become the recount, each complaint counted as it is now
        (nothing left pending). Run it while nothing writes complaints."""
        for complaint in self.db.complaints.find({}, {key: 1 for key in stats.FIELDS}):
            self._counted_as_is("complaints", complaint["_id"],
                                sorted(stats.contribution(complaint).items()))
        self.db[COUNTERS].delete_many({})
        self.store_counters(recounted)

    # work orders -----------------------------------------------------------------

    def add_work_order(self, order: Document, events: list[Envelope]) -> Document:
        return self.insert_with_events("work_orders", order, events)

    def add_work_order_once(self, order: Document, events: list[Envelope]) -> bool:
        """Insert an order whose id derives from its cause; False if it already exists."""
        return insert_once(self.insert_with_events, "work_orders", order, events) is not None

    def get_work_order(self, order_id: str) -> Document:
        return self.fetch("work_orders", order_id, "work order")

    def find_work_order(self, order_id: str) -> Document | None:
        return self.db.work_orders.find_one({"_id": order_id})

    def save_work_order(self, order: Document, events: list[Envelope]) -> Document:
        return self.save_versioned("work_orders", order, events)

    def list_work_orders(self, filters: Mapping[str, Any]) -> tuple[list[Document], str | None]:
        """Work orders newest first, a page at a time: (orders, next cursor)."""
        query = {key: filters[key] for key in WORK_ORDER_EQUALITY if key in filters}
        query.update(estate_scope(filters))
        query.update(_between("completed_at", filters.get("completed_since"),
                              filters.get("completed_until")))
        return find_page(self.db.work_orders, query, NEWEST_FIRST, filters["limit"],
                         filters.get("cursor"))


def _cursor_of(sort: Order, cursor: str) -> bool:
    """Was ``cursor`` made for a list in ``sort`` order?"""
    try:
        decode_cursor(sort, cursor)
    except InvalidInput:
        return False
    return True


def _between(field: str, since: datetime | None, until: datetime | None) -> dict[str, Any]:
    """A query on ``field`` from ``since`` (inclusive) to ``until`` (exclusive), either open."""
    bounds = {"$gte": since, "$lt": until}
    bounds = {operator: value for operator, value in bounds.items() if value is not None}
    return {field: bounds} if bounds else {}


def _household_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """What an import row sets; a row without the key-customer column keeps the flag."""
    fields = {key: row[key] for key in HOUSEHOLD_FIELDS}
    if row.get("key_customer") is not None:
        fields["key_customer"] = row["key_customer"]
    return fields


