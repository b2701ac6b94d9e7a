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
