"""intake's data: estates, households with contacts, complaints, work orders."""
from typing import ClassVar

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from shared.errors import InvalidInput
from shared.paging import decode_cursor, encode_cursor, find_page
from shared.store import Repository, estate_scope

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
    }
    outbox_collections = ("complaints", "work_orders")

    # estates and households --------------------------------------------------

    def import_households(self, estate_id, rows, now):
        """Every row and the estate, or nothing (``all_or_nothing``): the estate becomes
        known last, once its households are in."""
        ids = [row["household_id"] for row in rows]
        existing = {doc["_id"] for doc in self.db.households.find({"_id": {"$in": ids}}, {"_id": 1})}
        with self.all_or_nothing(households=ids, estates=[estate_id]) as session:
            # One upsert per row: mongomock 4.3 cannot take pymongo 4.15's bulk UpdateOne.
            for row in rows:
                self.db.households.update_one(
                    {"_id": row["household_id"]},
                    {"$set": {"estate_id": estate_id, "updated_at": now,
                              **{key: row[key] for key in HOUSEHOLD_FIELDS}},
                     "$setOnInsert": {"imported_at": now}},
                    upsert=True, session=session,
                )
            self.db.estates.update_one(
                {"_id": estate_id}, {"$setOnInsert": {"created_at": now}}, upsert=True,
                session=session)
        updated = len(existing)
        return {"imported": len(set(ids)) - updated, "updated": updated}

    def household_estates(self, household_ids):
        """household id -> its estate, for those that exist."""
        found = self.db.households.find({"_id": {"$in": list(household_ids)}}, {"estate_id": 1})
        return {doc["_id"]: doc["estate_id"] for doc in found}

    def find_estate(self, estate_id):
        return self.db.estates.find_one({"_id": estate_id})

    def estate_exists(self, estate_id):
        return self.db.estates.count_documents({"_id": estate_id}, limit=1) > 0

    def estate_ids(self):
        return [doc["_id"] for doc in self.db.estates.find({}, {"_id": 1}).sort("_id", ASCENDING)]

    def list_households(self, estate_id, filters):
        """An estate's households by id, a page at a time: (households, next cursor)."""
        query = {"estate_id": estate_id,
                 **{key: filters[key] for key in ("occupied", "building") if key in filters}}
        return find_page(self.db.households, query, HOUSEHOLD_ORDER, filters.get("limit"),
                         filters.get("cursor"))

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
