"""The patches of other libraries' private parts (shared/patches.py lists them) still fit
the libraries installed: each test here fails when a library changes under its patch."""
import copy
import inspect
import logging
import subprocess
import sys

import mongomock
import pytest
from mongomock import filtering, helpers
from mongomock.collection import Collection, Cursor
from mongomock.store import CollectionStore, DatabaseStore, ServerStore
from pymongo.errors import DuplicateKeyError

from shared import embedded
from shared.documents import deep_copy
from tests.helpers import ROOT

# A process as every service and test run is one: eventlet, and jieba's own log handler.
EXIT_PROBE = """
import eventlet
eventlet.monkey_patch()
import sys
if sys.argv[1] == "patched":
    import shared  # noqa: F401 - registers the patch at exit
import jieba  # noqa: F401 - its module-level stderr handler
"""


def exit_stderr(variant: str) -> str:
    return subprocess.run([sys.executable, "-c", EXIT_PROBE, variant], cwd=ROOT, check=True,
                          capture_output=True, text=True, timeout=120).stderr


def test_logging_still_keeps_the_private_list_the_exit_patch_empties():
    assert isinstance(logging._handlerList, list)
    assert "_handlerList" in inspect.getsource(logging._removeHandlerRef)


def test_the_exit_patch_is_still_needed_and_still_works():
    # without it, the handler's clean-up fails at exit; if this stops failing, Python or
    # eventlet fixed it: drop close_logging_before_greenlets_end
    assert "greenlet is being finalized" in exit_stderr("plain")
    assert "greenlet is being finalized" not in exit_stderr("patched")


def test_mongomock_is_the_version_the_embedded_store_was_written_against():
    # another version: read shared/embedded.py's patches against its code, then pin it here
    assert mongomock.__version__ == "4.3.0"


@pytest.mark.parametrize("function, parameters", [
    (embedded._scan, ["self", "filter"]),                      # Collection._iter_documents
    (embedded._compute_results, ["self", "with_limit_and_skip"]),   # Cursor._compute_results
    (Collection._apply_update_document.__wrapped__,
     ["self", "existing_document", "spec", "document", "was_insert"]),
    (Collection._apply_update_pipeline.__wrapped__,
     ["self", "existing_document", "pipeline", "session"]),
    (Collection._update.__wrapped__,                          # snapshots only what changes
     ["self", "spec", "document", "upsert", "manipulate", "multi", "check_keys", "hint",
      "session", "collation", "let", "array_filters", "**kwargs"]),
    (Collection._ensure_uniques, ["self", "new_data"]),       # answered from the indexes
    (CollectionStore.__init__, ["self", "name"]),
    (CollectionStore.create_index, ["self", "index_name", "index_dict"]),
    (CollectionStore.drop_index, ["self", "index_name"]),
    (filtering.iter_key_candidates, ["key", "doc"]),
    (embedded._naive_utc_any, ["value"]),      # helpers.patch_datetime_awareness_in_document
])
def test_the_private_functions_the_embedded_store_replaces_or_wraps_keep_their_signature(
        function, parameters):
    found = [("*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else "")
             + name for name, p in inspect.signature(function).parameters.items()]
    assert found == parameters


def test_the_private_state_the_embedded_store_reads_is_still_there():
    client = mongomock.MongoClient(_store=ServerStore())
    collection = client["db"]["things"]
    collection.insert_one({"_id": "a"})
    store = collection._store
    assert isinstance(store, CollectionStore) and list(store._documents) == ["a"]
    assert store.is_empty is False and isinstance(store.indexes, dict)
    assert isinstance(DatabaseStore()._collections, dict)
    assert isinstance(ServerStore()._databases, dict)
    cursor = collection.find({}).sort("_id").skip(0).limit(1)
    assert callable(cursor._factory)
    assert (cursor._skip, cursor._limit, cursor._sort) == (0, 1, [("_id", 1)])
    assert hash(helpers.hashdict({"_id": "a"})) is not None      # a dict id's store key
    assert callable(helpers.make_datetime_timezone_aware_in_document)
    assert isinstance(Cursor._compute_results, type(embedded._compute_window))
    # the snapshot an update takes of a stored document (its copy is ours then)
    assert "original_document_snapshot = copy.deepcopy(existing_document)" in \
        inspect.getsource(Collection._update.__wrapped__)


def stored_document():
    from datetime import UTC, datetime, timedelta, timezone

    from bson import ObjectId

    at = datetime(2026, 6, 1, 8, 0, 0, 123456, tzinfo=timezone(timedelta(hours=8)))
    return {"_id": "d-1", "at": at, "naive": at.replace(tzinfo=None), "n": 1, "x": 1.5,
            "ok": True, "none": None, "oid": ObjectId(), "raw": b"\x00",
            "attempts": [{"at": at.astimezone(UTC), "error": None}, "text", 2],
            "pair": (1, [at]), "nested": {"deeper": {"list": [[1, 2], {"a": at}]}}}


def test_the_store_copies_documents_as_deepcopy_did_sharing_nothing_that_changes():
    import copy

    document = stored_document()
    copied = deep_copy(document)
    assert copied == copy.deepcopy(document)
    copied["attempts"][0]["error"] = "changed"
    copied["nested"]["deeper"]["list"][0].append(3)
    copied["pair"][1].append(None)
    assert document == stored_document() | {"oid": document["oid"]}
    assert mongomock.collection.copy.deepcopy is embedded._copy_or_snapshot   # the patch is on


def test_an_update_snapshots_only_what_it_changes_in_place_and_still_undoes_whole(monkeypatch):
    # mongomock snapshots the whole stored document before each update (to tell whether it
    # changed, and to put it back when it breaks a unique index): only the paths the update
    # writes are copied for it now, the dicts above a dotted path shallowly
    records = embedded.new_client()["example"]["records"]
    records.create_index("token", unique=True)
    history = [{"at": 1, "what": "registered"}] * 50
    counts = {"cleaning": 1, "repairs": {"open": 2}, "due": {f"t-{n}": n for n in range(50)}}
    records.insert_many([{"_id": "r-1", "token": "a", "history": history, "notes": ["n"],
                          "status": "open", "counts": counts}, {"_id": "r-2", "token": "b"}])
    stored_history = records._store._documents["r-1"]["history"]
    deep_copied = []
    monkeypatch.setattr(embedded, "deep_copy", lambda value, memo=None:
                        deep_copied.append(value) or copy.deepcopy(value))

    result = records.update_one({"_id": "r-1"}, {"$set": {"status": "closed"},
                                                 "$push": {"notes": "m"},
                                                 "$inc": {"counts.repairs.open": 1}})
    assert result.modified_count == 1 and deep_copied == []
    assert records.update_one({"_id": "r-1"}, {"$set": {"status": "closed"}}).modified_count == 0

    with pytest.raises(DuplicateKeyError):   # undone whole: the snapshot is faithful
        records.update_one({"_id": "r-1"}, {"$set": {"token": "b", "status": "x"},
                                             "$push": {"notes": "o"},
                                             "$inc": {"counts.repairs.open": 5, "counts.new": 1},
                                             "$unset": {"counts.due.t-3": ""}})
    assert deep_copied == []
    assert records.find_one({"_id": "r-1"}, {"history": 0}) == {
        "_id": "r-1", "token": "a", "notes": ["n", "m"], "status": "closed",
        "counts": {"cleaning": 1, "repairs": {"open": 3}, "due": counts["due"]}}
    assert records._store._documents["r-1"]["history"] is stored_history   # never copied
    assert records.find_one({"token": "a"})["_id"] == "r-1"


def test_an_upserted_document_is_updated_without_copy_deepcopy(monkeypatch):
    # mongomock stores an upsert's new document as an OrderedDict (the counters' are
    # upserted): its every later update copied it with copy.deepcopy, all its counters
    counters = embedded.new_client()["example"]["counters"]
    counters.update_one({"_id": "e-1:2026-11"}, {"$inc": {"open.cleaning": 1}}, upsert=True)
    stored = counters._store._documents["e-1:2026-11"]
    assert type(stored).__name__ == "OrderedDict"

    def refused(value, memo=None):
        raise AssertionError(f"copy.deepcopy of a {type(value).__name__}")

    monkeypatch.setattr(embedded, "copy", type("NoDeepcopy", (), {"deepcopy": refused}))
    counters.update_one({"_id": "e-1:2026-11"},
                        {"$inc": {"open.cleaning": 1}, "$push": {"in_flight": "c-1"}})
    assert counters.find_one() == {"_id": "e-1:2026-11", "open": {"cleaning": 2},
                                   "in_flight": ["c-1"]}
    copied = deep_copy(stored)
    assert copied == stored and type(copied) is type(stored)
    copied["open"]["cleaning"] = 9
    assert stored["open"]["cleaning"] == 2


def test_the_store_makes_dates_naive_utc_as_mongomock_did(monkeypatch):
    document = stored_document()
    fast = embedded._naive_utc(document)
    # mongomock's own function, recursing into itself, as it was
    monkeypatch.setattr(helpers, "patch_datetime_awareness_in_document", embedded._naive_utc_any)
    assert fast == embedded._naive_utc_any(document)
    assert fast["at"] == datetime_naive_utc_ms()


def datetime_naive_utc_ms():
    from datetime import datetime
    return datetime(2026, 6, 1, 0, 0, 0, 123000)
