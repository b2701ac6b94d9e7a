"""The embedded store's hash indexes (shared/embedded.py) answer exactly what mongomock's scan
would, stay right under every write, refuse duplicates like mongomock, and keep key lookups
and unique checks from scanning the collection."""
from datetime import UTC, datetime, timedelta

import mongomock
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from mongomock import helpers
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared import embedded
from shared.embedded import new_client

T1 = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
T2 = T1 + timedelta(microseconds=1500)         # stored to the millisecond
INDEXES = [
    IndexModel([("k", ASCENDING)]),
    IndexModel([("a", ASCENDING), ("b", DESCENDING)]),                  # compound
    IndexModel([("u", ASCENDING)], unique=True),                        # missing counts as None
    IndexModel([("s", ASCENDING)], unique=True, sparse=True),
    IndexModel([("tags", ASCENDING)]),                                  # multikey
    IndexModel([("sub.x", ASCENDING)], sparse=True),                    # dotted, sparse
    IndexModel([("c1", ASCENDING), ("c2", ASCENDING)], unique=True, sparse=True),
]
FIELDS = ["k", "a", "b", "u", "s", "tags", "sub.x", "c1", "c2", "n"]
SCALARS = [None, 0, 1, 1.0, True, False, "a", "b", "", T1, T2]
IDS = ["d0", "d1", "d2", "d3", "d4", 5, 6]

scalars = st.sampled_from(SCALARS)
values = st.one_of(scalars, scalars, st.lists(scalars, max_size=3),
                   st.fixed_dictionaries({"x": scalars}),
                   st.lists(st.fixed_dictionaries({"x": scalars}), max_size=2))
fields = st.sampled_from([field for field in FIELDS if "." not in field])
idents = st.sampled_from(IDS)
documents = st.builds(                  # an _id always: both collections must store the same
    lambda ident, body: {"_id": ident, **body}, idents,
    st.dictionaries(fields, values, max_size=5).flatmap(
        lambda body: st.one_of(st.just(body), st.builds(
            lambda x: dict(body, sub={"x": x}), values))))
conditions = st.one_of(values, st.fixed_dictionaries({"$in": st.lists(scalars, max_size=3)}),
                       st.fixed_dictionaries({"$ne": scalars}),
                       st.fixed_dictionaries({"$gte": scalars}))
filters = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), conditions, max_size=3),
    st.builds(lambda ident, rest: {"_id": ident, **rest}, idents, st.dictionaries(
        st.sampled_from(FIELDS), conditions, max_size=1)),
    st.builds(lambda some, rest: {"_id": {"$in": some}, **rest}, st.lists(idents, max_size=3),
              st.dictionaries(st.sampled_from(FIELDS), conditions, max_size=1)),
    st.builds(lambda parts: {"$and": parts}, st.lists(
        st.dictionaries(st.sampled_from(FIELDS), conditions, min_size=1, max_size=2),
        min_size=1, max_size=2)))
updates = st.one_of(
    st.builds(lambda field, value: {"$set": {field: value}}, st.sampled_from(FIELDS), values),
    st.builds(lambda field, value: {"$set": {field: value}, "$inc": {"n": 1}}, fields, values),
    st.builds(lambda field: {"$inc": {field: 1}}, st.sampled_from(FIELDS)),  # may fail halfway
    st.builds(lambda field, value: {"$set": {"k": value}, "$inc": {field: 1}}, fields, values),
    st.builds(lambda value: {"$push": {"tags": value}}, scalars),
    st.builds(lambda value: {"$pull": {"tags": value}}, scalars),
    st.builds(lambda field: {"$unset": {field: ""}}, st.sampled_from(FIELDS)),
    st.builds(lambda value: {"$setOnInsert": {"s": value}, "$set": {"n": 0}}, scalars),
)
replacements = st.dictionaries(fields, values, max_size=4)

# The queries compared after every step: each kind the indexes answer, and some they do not.
QUERIES = [{}, {"n": {"$gte": 0}}, {"k": {"$ne": "a"}}]
for _field in ["k", "a", "u", "s", "tags", "sub.x", "c1", "_id"]:
    QUERIES += [{_field: value} for value in ([None, 1.0, True, "a", "", T2] if _field != "_id"
                                              else IDS)]
    QUERIES += [{_field: {"$in": ["a", 1, None]}}, {_field: {"$in": []}},
                {_field: {"$in": [T1, "d1", 5]}}, {_field: ["a", "b"]}, {_field: {"x": "a"}}]
QUERIES += [{"a": "a", "b": "b"}, {"a": 1, "k": {"$ne": None}}, {"tags": "a", "k": "b"},
            {"$and": [{"k": "a"}, {"tags": {"$in": ["a", "b"]}}]},
            {"$and": [{"a": {"$gte": 0}}, {"$or": [{"u": "a"}, {"u": 1}]}]},
            {"c1": "a", "c2": None}, {"_id": {"$in": ["d1", "d2"]}, "k": "a"},
            {"sub.x": None, "s": None}, {"sub": {"x": "a"}}]
# ranges: on a field whose indexes are all sparse (s, sub.x, c1) taken from the index
QUERIES += [{field: condition} for field in ["s", "sub.x", "c1", "k"] for condition in [
    {"$lt": T2}, {"$gte": T1}, {"$gt": 0}, {"$lte": True}, {"$lt": False}, {"$gte": ""},
    {"$gt": 0, "$lt": 2}, {"$gte": None}, {"$lt": "b", "$ne": "a"}]]
QUERIES += [{"$and": [{"s": {"$gte": ""}}, {"k": {"$in": ["a", 1]}}]}, {"_id": {"$gt": "d1"}}]


def outcome(call):
    """What a call gave: its result, or the kind of error it raised (and a bulk's details)."""
    try:
        result = call()
    except Exception as error:  # noqa: BLE001 - whatever either raised is compared
        return ("error", type(error).__name__, getattr(error, "details", None))
    if hasattr(result, "raw_result"):        # less the client's own id
        result = {key: value for key, value in result.raw_result.items() if key != "connectionId"}
    return ("ok", result)


def upserting(filter, ident):
    """An upsert's filter names a plain _id, or mongomock makes an ObjectId (a different one
    in each collection)."""
    return filter if ident is None else {**filter, "_id": ident}


def ids(found):
    return [document["_id"] for document in found]


def declared(collection):
    collection.create_indexes(INDEXES)
    return collection


class SameAsTheScan(RuleBasedStateMachine):
    """Random writes on an indexed collection and on plain mongomock with the same indexes
    declared (its checks scan): the same outcomes, the same documents, the same answers to
    every query, and the indexes equal to ones built afresh."""

    def __init__(self):
        super().__init__()
        self.indexed = declared(new_client()["t"]["c"])
        self.plain = declared(mongomock.MongoClient(tz_aware=True)["t"]["c"])

    def both(self, call):
        assert outcome(lambda: call(self.indexed)) == outcome(lambda: call(self.plain))

    @rule(document=documents)
    def insert_one(self, document):
        self.both(lambda c: c.insert_one(dict(document)).inserted_id)

    @rule(many=st.lists(documents, min_size=1, max_size=4), ordered=st.booleans())
    def insert_many(self, many, ordered):
        self.both(lambda c: c.insert_many([dict(d) for d in many], ordered=ordered).inserted_ids)

    @rule(filter=filters, update=updates, upsert=st.none() | idents, many=st.booleans())
    def update(self, filter, update, upsert, many):
        filter = upserting(filter, upsert)
        self.both(lambda c: (c.update_many if many else c.update_one)(
            filter, update, upsert=upsert is not None))

    @rule(filter=filters, replacement=replacements, upsert=st.none() | idents)
    def replace_one(self, filter, replacement, upsert):
        filter = upserting(filter, upsert)
        self.both(lambda c: c.replace_one(filter, dict(replacement), upsert=upsert is not None))

    @rule(filter=filters, update=updates, upsert=st.none() | idents, after=st.booleans())
    def find_one_and_update(self, filter, update, upsert, after):
        filter = upserting(filter, upsert)
        self.both(lambda c: c.find_one_and_update(
            filter, update, upsert=upsert is not None,
            return_document=ReturnDocument.AFTER if after else ReturnDocument.BEFORE))

    @rule(filter=filters, replacement=replacements)
    def find_one_and_replace(self, filter, replacement):
        self.both(lambda c: c.find_one_and_replace(filter, dict(replacement)))

    @rule(filter=filters)
    def find_one_and_delete(self, filter):
        self.both(lambda c: c.find_one_and_delete(filter))

    @rule(filter=filters, many=st.booleans())
    def delete(self, filter, many):
        self.both(lambda c: (c.delete_many if many else c.delete_one)(filter).deleted_count)

    @rule(filter=filters)
    def query(self, filter):
        self.both(lambda c: list(c.find(filter)))
        self.both(lambda c: list(c.find(filter).sort([("k", DESCENDING)]).skip(1).limit(2)))
        self.both(lambda c: list(c.find(filter).skip(1).limit(2)))
        self.both(lambda c: c.find_one(filter))
        self.both(lambda c: c.count_documents(filter))

    @rule()
    def drop_and_declare_again(self):
        self.both(lambda c: declared(c.drop() or c).name)

    @invariant()
    def answers_like_the_scan(self):
        assert list(self.indexed.find()) == list(self.plain.find())
        for query in QUERIES:          # against mongomock's own scan, on the same documents
            assert outcome(lambda query=query: ids(self.indexed.find(query))) == outcome(
                lambda query=query: ids(embedded._scan(
                    self.indexed, helpers.patch_datetime_awareness_in_document(query)))), query

    @invariant()
    def indexes_as_if_built_afresh(self):
        store = self.indexed._store
        assert set(store.order) == set(store._documents)
        assert list(store._documents) == sorted(store._documents, key=store.order.__getitem__)
        for field, index in store.hashed.items():
            fresh = embedded._HashIndex(field, index.sparse)
            for key, document in store._documents.items():
                fresh.put(key, document)
            assert (index.keys, index.loose, index.held) == (fresh.keys, fresh.loose, fresh.held)


TestSameAsTheScan = SameAsTheScan.TestCase
TestSameAsTheScan.settings = settings(
    max_examples=50, stateful_step_count=25, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# uniqueness ------------------------------------------------------------------------------

@pytest.fixture(params=["indexed", "plain"])
def tokens(request):
    client = new_client() if request.param == "indexed" else mongomock.MongoClient(tz_aware=True)
    collection = client["t"]["invitations"]
    collection.create_indexes([IndexModel([("token", ASCENDING)], unique=True),
                               IndexModel([("request", ASCENDING)], unique=True, sparse=True)])
    collection.insert_many([{"_id": "i1", "token": "t1"}, {"_id": "i2", "token": "t2"}])
    return collection


def test_a_unique_index_refuses_a_duplicate_by_insert_update_upsert_and_replace(tokens):
    with pytest.raises(DuplicateKeyError):
        tokens.insert_one({"_id": "i3", "token": "t1"})
    with pytest.raises(DuplicateKeyError):
        tokens.update_one({"_id": "i2"}, {"$set": {"token": "t1"}})
    with pytest.raises(DuplicateKeyError):
        tokens.update_one({"_id": "i9"}, {"$set": {"token": "t2"}}, upsert=True)
    with pytest.raises(DuplicateKeyError):
        tokens.replace_one({"_id": "i1"}, {"token": "t2"})
    with pytest.raises(DuplicateKeyError):
        tokens.find_one_and_update({"token": "t2"}, {"$set": {"token": "t1"}})
    # every refused write left things as they were, indexes included
    assert list(tokens.find()) == [{"_id": "i1", "token": "t1"}, {"_id": "i2", "token": "t2"}]
    assert [d["_id"] for d in tokens.find({"token": {"$in": ["t1", "t2"]}})] == ["i1", "i2"]
    assert tokens.find_one({"token": "t1"})["_id"] == "i1"
    tokens.update_one({"_id": "i2"}, {"$set": {"token": "t3"}})      # its old token is free
    tokens.insert_one({"_id": "i3", "token": "t2"})
    assert [d["_id"] for d in tokens.find({"token": "t2"})] == ["i3"]
    assert [d["_id"] for d in tokens.find({"token": "t3"})] == ["i2"]


def test_missing_counts_once_in_a_unique_index_and_any_number_of_times_in_a_sparse_one(tokens):
    tokens.insert_one({"_id": "i3"})                                  # token None: the first
    with pytest.raises(DuplicateKeyError):
        tokens.insert_one({"_id": "i4", "token": None})
    tokens.insert_many([{"_id": f"n{n}", "token": f"x{n}"} for n in range(5)])  # no request
    tokens.insert_one({"_id": "r1", "token": "y1", "request": "q"})
    with pytest.raises(DuplicateKeyError):
        tokens.update_one({"_id": "n1"}, {"$set": {"request": "q"}})
    assert tokens.count_documents({"request": None}) == 8
    assert tokens.count_documents({"request": {"$exists": False}}) == 8


# what the indexes answer, without a scan ----------------------------------------------------

@pytest.fixture
def no_scan(monkeypatch):
    """Fails any query that falls back to the scan."""
    def scan(collection, filter):
        raise AssertionError(f"scanned for {filter}")
    monkeypatch.setattr(embedded, "_scan", scan)


@pytest.fixture
def rounds():
    collection = new_client()["t"]["rounds"]
    collection.create_indexes([
        IndexModel([("estate_ids", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("status", ASCENDING), ("closes_at", ASCENDING)]),
        IndexModel([("token", ASCENDING)], unique=True, sparse=True),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)])
    collection.insert_many([
        {"_id": f"r{n}", "estate_ids": [f"e{n % 3}", f"e{n % 5}"], "status": "open",
         "created_at": T1 + timedelta(minutes=n), **({"token": f"t{n}"} if n % 2 else {})}
        for n in range(30)])
    return collection


def test_keys_multikey_datetimes_and_none_are_looked_up(rounds, no_scan):
    assert ids(rounds.find({"token": "t7"})) == ["r7"]
    assert ids(rounds.find({"estate_ids": "e4"})) == ["r4", "r9", "r14", "r19", "r24", "r29"]
    assert ids(rounds.find({"estate_ids": {"$in": ["e4", "e2"]}, "status": "open"}
                           ).sort("created_at", DESCENDING).limit(3)) == ["r29", "r27", "r26"]
    assert rounds.count_documents({"status": "open", "closes_at": None}) == 30
    assert ids(rounds.find({"_id": {"$in": ["r3", "r1", "nope"]}})) == ["r1", "r3"]  # stored order
    assert ids(rounds.find({"$and": [{"estate_ids": "e0"}, {"created_at": {"$gt": T1}}]})) == [
        "r3", "r5", "r6", "r9", "r10", "r12", "r15", "r18", "r20", "r21", "r24", "r25", "r27"]
    rounds.update_many({"estate_ids": "e1"}, {"$set": {"status": "closed"}})
    closed = [n for n in range(30) if 1 in (n % 3, n % 5)]
    assert ids(rounds.find({"status": "closed"})) == [f"r{n}" for n in closed]
    assert rounds.delete_many({"status": "closed", "estate_ids": "e0"}).deleted_count == len(
        [n for n in closed if 0 in (n % 3, n % 5)])
    assert rounds.count_documents({"status": "closed"}) == len(
        [n for n in closed if 0 not in (n % 3, n % 5)])
    rounds.insert_one({"_id": "late", "token": "t1000", "created_at": T2})
    assert rounds.find_one({"token": "t1000"})["created_at"] == T2.replace(microsecond=1000)


def test_unique_inserts_and_updates_check_without_a_scan(rounds, no_scan):
    rounds.insert_many([{"_id": f"x{n}", "token": f"new{n}"} for n in range(100)])
    with pytest.raises(DuplicateKeyError):
        rounds.insert_one({"_id": "dup", "token": "new5"})
    rounds.update_one({"_id": "x5"}, {"$set": {"token": "moved"}})
    assert rounds.find_one_and_update({"token": "moved"}, {"$push": {"estate_ids": "e9"}},
                                      return_document=ReturnDocument.AFTER)["_id"] == "x5"
    assert ids(rounds.find({"estate_ids": "e9"})) == ["x5"]
    rounds.update_one({"_id": "x5"}, {"$pull": {"estate_ids": "e9"}})
    assert ids(rounds.find({"estate_ids": "e9"})) == []


def test_what_the_indexes_cannot_answer_is_scanned_and_still_right(rounds):
    rounds.insert_one({"_id": "odd", "estate_ids": [{"e": 1}, ["e0"]], "status": {"s": 1}})
    assert ids(rounds.find({"status": {"s": 1}})) == ["odd"]            # a dict: scanned
    assert ids(rounds.find({"estate_ids": ["e0"]})) == ["odd"]          # a list: scanned
    assert "odd" in ids(rounds.find({"estate_ids": {"$ne": "e1"}}))     # operators: scanned
    assert ids(rounds.find({"token": None}))[:2] == ["r0", "r2"]        # sparse: scanned
    assert "odd" not in ids(rounds.find({"estate_ids": "e0"}))          # loose, checked


def test_a_range_on_a_sparse_field_takes_only_the_documents_holding_it(no_scan):
    # the outbox's lease: held only while a document has events to send
    collection = new_client()["t"]["complaints"]
    collection.create_indexes([IndexModel([("lease", ASCENDING)], sparse=True)])
    collection.insert_many([{"_id": f"c{n}", "outbox": []} for n in range(100)])
    collection.insert_many([{"_id": "late", "lease": T2}, {"_id": "due", "lease": T1},
                            {"_id": "odd", "lease": [T1, "x"]}, {"_id": "null", "lease": None}])
    assert collection._store.hashed["lease"].size(embedded.HELD) == 3
    assert ids(collection.find({"lease": {"$lt": T2}})) == ["due", "odd"]
    assert ids(collection.find({"lease": {"$gte": T1, "$lte": T2}})) == ["late", "due", "odd"]
    assert collection.find_one_and_update({"lease": {"$lt": T2}},
                                          {"$unset": {"lease": ""}})["_id"] == "due"
    assert ids(collection.find({"lease": {"$lte": T2}})) == ["late", "odd"]
    collection.update_one({"_id": "c7"}, {"$set": {"lease": T1}})
    assert ids(collection.find({"lease": {"$lt": T2}})) == ["c7", "odd"]


def test_a_range_on_a_field_not_only_sparsely_indexed_is_scanned(rounds):
    with pytest.raises(AssertionError, match="scanned"):
        no_scan_of(rounds, {"created_at": {"$gt": T1}})         # no index starts with it
    rounds.create_index([("created_at", ASCENDING)])             # dense: holds the missing too
    with pytest.raises(AssertionError, match="scanned"):
        no_scan_of(rounds, {"created_at": {"$gt": T1}})
    with pytest.raises(AssertionError, match="scanned"):         # $exists: null is held too
        no_scan_of(rounds, {"token": {"$exists": True}})
    assert no_scan_of(rounds, {"token": {"$gte": "t29", "$lt": "t3"}}) == ["r29"]


def no_scan_of(collection, filter):
    original = embedded._scan

    def scan(collection, filter):
        raise AssertionError(f"scanned for {filter}")
    embedded._scan = scan
    try:
        return ids(collection.find(filter))
    finally:
        embedded._scan = original


def test_expired_documents_leave_the_indexes(rounds, no_scan):
    rounds.insert_one({"_id": "gone", "token": "tg", "expires_at": datetime(2020, 1, 1)})
    assert rounds.find_one({"token": "tg"}) is None
    rounds.insert_one({"_id": "again", "token": "tg"})
    assert ids(rounds.find({"token": "tg"})) == ["again"]


def test_an_index_declared_on_stored_documents_and_a_dropped_collection():
    collection = new_client()["t"]["c"]
    collection.insert_many([{"_id": n, "k": n % 3} for n in range(9)])
    collection.create_index("k")
    assert ids(collection.find({"k": 2})) == [2, 5, 8]
    collection.drop_index("k_1")
    assert collection._store.hashed == {}
    collection.create_index("k")
    collection.drop()
    assert collection._store.hashed == {} and collection.find_one({"k": 2}) is None
    collection.create_index("k", unique=True)
    collection.insert_one({"_id": 1, "k": 2})
    with pytest.raises(DuplicateKeyError):
        collection.insert_one({"_id": 2, "k": 2})


def test_plain_mongomock_clients_keep_their_scans():
    collection = mongomock.MongoClient()["t"]["c"]
    collection.create_index("k")
    assert not isinstance(collection._store, embedded._IndexedCollectionStore)
    collection.insert_many([{"_id": n, "k": n % 2} for n in range(4)])
    assert ids(collection.find({"k": 1})) == [1, 3]
    assert ids(collection.find({"_id": 2})) == [2]


# the cursor ---------------------------------------------------------------------------------

def test_a_cursor_hands_out_its_window_whatever_changes_between():
    collection = new_client()["t"]["c"]
    collection.insert_many([{"_id": n} for n in range(10)])
    cursor = collection.find().skip(2).limit(3)
    assert ids(cursor) == [2, 3, 4]
    cursor.rewind()
    assert ids(cursor.limit(2)) == [2, 3]
    assert cursor[0]["_id"] == 2
    assert ids(collection.find({"_id": {"$gte": 7}})) == [7, 8, 9]
    cursor = collection.find()
    assert next(cursor)["_id"] == 0
    assert ids(cursor.sort("_id", DESCENDING)) == [8, 7, 6, 5, 4, 3, 2, 1, 0]


# the repositories' own lookups --------------------------------------------------------------

def test_a_survey_round_s_invitations_are_stored_and_found_without_a_scan(no_scan):
    from services.survey.repository import SurveyRepository

    store = SurveyRepository(new_client()["survey"])
    store.create_indexes()
    invitations = [{"_id": f"rnd:h{n}", "round_id": "rnd", "estate_id": f"e{n % 4}",
                    "household_id": f"h{n}", "token": f"tok{n}", "status": "pending",
                    "issue_batch": f"rnd/{n // 100}"}
                   for n in range(500)]
    assert store.create_round({"_id": "rnd", "status": "creating"})
    store.write_invitations(invitations[:300])
    store.write_invitations(invitations[200:])          # a batch written again: no duplicate
    assert len(store.db.invitations._store._documents) == 500
    assert store.find_invitation("tok42")["_id"] == "rnd:h42"
    assert len(store.invitation_batch("rnd/3")) == 100
    page, _ = store.list_invitations("rnd", {"estate_id": "e1", "limit": 10})
    assert [i["household_id"] for i in page][:3] == ["h1", "h101", "h105"]
    with pytest.raises(DuplicateKeyError):
        store.db.invitations.insert_one(dict(invitations[0], _id="other"))


def test_an_update_failing_halfway_leaves_the_document_and_its_index_as_they_were(rounds,
                                                                               no_scan):
    with pytest.raises((TypeError, mongomock.WriteError)):    # mongomock: TypeError
        rounds.update_one({"_id": "r1"}, {"$set": {"status": "closed"}, "$inc": {"token": 1}})
    assert rounds.find_one({"_id": "r1"})["status"] == "open"
    assert rounds.count_documents({"status": "closed"}) == 0
    assert "r1" in ids(rounds.find({"status": "open"}))
