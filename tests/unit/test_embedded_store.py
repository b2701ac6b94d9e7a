"""The embedded store's id lookups answer exactly what a scan would."""
import pytest

from shared.embedded import new_client


@pytest.fixture
def collection():
    collection = new_client()["t"]["things"]
    collection.insert_many([{"_id": "a", "version": 1, "tags": ["x"]},
                            {"_id": "b", "version": 2, "tags": []}])
    return collection


@pytest.mark.parametrize("query, found", [
    ({"_id": "a"}, ["a"]),
    ({"_id": "a", "version": 1}, ["a"]),
    ({"_id": "a", "version": 2}, []),                       # the rest of the filter still counts
    ({"_id": "a", "tags": {"$ne": "x"}}, []),
    ({"_id": "missing"}, []),
    ({"_id": {"$in": ["a", "b"]}}, ["a", "b"]),              # operators: the ordinary scan
    ({"version": 2}, ["b"]),
])
def test_lookup_by_id_matches_the_scan(collection, query, found):
    assert [doc["_id"] for doc in collection.find(query)] == found


def test_updates_by_id_change_the_stored_document(collection):
    assert collection.update_one({"_id": "b", "version": 2}, {"$inc": {"version": 1}}
                                 ).modified_count == 1
    assert collection.update_one({"_id": "b", "version": 2}, {"$inc": {"version": 1}}
                                 ).modified_count == 0
    assert collection.find_one({"_id": "b"})["version"] == 3
    collection.delete_one({"_id": "b"})
    assert collection.find_one({"_id": "b"}) is None


def test_a_read_only_read_finds_what_find_finds_without_copying():
    from pymongo import ASCENDING

    from shared.embedded import read_only

    counters = new_client()["example"]["counters"]
    counters.create_index([("month", ASCENDING)])
    counters.insert_many([{"_id": f"e-{n}:2026-{n % 2 + 10}", "month": f"2026-{n % 2 + 10}",
                          "by_status": {"closed": n}} for n in range(6)])
    for query in ({"month": "2026-11"}, {"month": {"$in": ["2026-10"]}}, {}):
        assert list(read_only(counters, query)) == list(counters.find(query))
    # the stored document itself: what the statistics read 3,000 of (no deep copy each)
    [stored] = read_only(counters, {"_id": "e-1:2026-11"})
    assert stored is next(read_only(counters, {"_id": "e-1:2026-11"}))
    assert stored is not counters.find_one({"_id": "e-1:2026-11"})
