"""The embedded store: mongomock, with the indexes the repositories declare.

What it is for: mongomock is a test double of MongoDB. It runs the test suite, the
benchmarks and ``make run``/``make demo`` on a machine without a MongoDB server — one
process, data gone at exit (the service says so when it starts). Anything that keeps data
runs on MongoDB (``MONGO_URI``), and the suite passes against a real server too.

>>> from pymongo import ASCENDING
>>> deliveries = new_client()["notify"]["deliveries"]
>>> deliveries.create_index([("status", ASCENDING)])
'status_1'
>>> deliveries.insert_many([{"_id": "d-1", "status": "queued"},
...                         {"_id": "d-2", "status": "sent"}]).inserted_ids
['d-1', 'd-2']
>>> [found["_id"] for found in deliveries.find({"status": "queued"})]   # from the index
['d-1']

This module is also where mongomock's private parts are patched (none of it has a public
hook; ``shared/patches.py`` lists the patches, ``tests/unit/test_patches.py`` fails when
mongomock changes under them). mongomock keeps a collection's documents in a dict keyed by ``_id`` and answers
every query, every unique-index check included, by a scan of all of them: each
insert into a collection with a unique index cost as much as the collection was
large (``survey.create_round``: n² in its invitations), and every lookup by
token, estate or round grew with the data. Here a client from
``new_client`` keeps, beside each collection, a hash index per field that
starts a declared index (``create_index``/``create_indexes``), and answers from
them:

* **Which queries.** A filter with plain equality, or ``$in`` of plain values
  (str, int, float, bool, datetime, None), on ``_id`` or on the first key of a
  declared index — at its top or inside ``$and`` (the paged lists' keyset
  query) — takes its candidates from the smallest such index. Each candidate
  is still checked against the whole filter by mongomock's ``filter_applies``
  and they come in the scan's order (the order documents were stored in), so
  mongomock's own sort, skip and limit see what the scan would have given.
  A range (``$lt``, ``$lte``, ``$gt``, ``$gte`` of a plain value other than None,
  with any other operators) on the first key of indexes that are all sparse takes
  every document the
  index holds: a range never matches a missing or null field, and a field that
  exists only while there is work (the outbox's lease) is then found without
  looking at the documents that have none (``Repository.relay_outbox``).
  Everything else is the ordinary scan; results are identical either way.
* **What an index holds.** Every value mongomock's matching sees at the
  field's (dotted) path: each element of a list (multikey, as MongoDB does;
  rounds' ``estate_ids``), None for a missing field — unless every index
  starting with the field is sparse, when documents lacking it are left out
  and a query for None scans. A value that cannot be hashed exactly as
  mongomock compares it (a dict, a nested list, NaN, types other than those
  above) puts its document among the candidates of every lookup on that field.
* **Uniqueness.** mongomock's own check (``_ensure_uniques``) runs unchanged;
  it queries by equality on the index's keys, so it is answered from the index
  too, with mongomock's rules (sparse, its DuplicateKeyError).
* **Keeping them right.** Inserts, upserts, replacements, rollbacks, deletes,
  TTL expiry and drop all write through the collection's ``CollectionStore``
  (``__setitem__``/``__delitem__``/``drop``), which keeps the indexes here.
  ``$set``/``$inc``/``$push``/``$pull``/… change the stored dict *in place*
  with no store write, so every in-place update is followed by a re-index of
  its document (one that failed halfway is undone first: ``_reindexing``).
  Each index remembers what it holds for each document, so the old entries of
  a changed document come out.

Which queries still scan can be listed: ``recording_scans`` collects each (collection
and the filter's shape, values left out), for the test that every query the services
make has an index (``tests/unit/test_query_indexes.py``).

Plain ``mongomock.MongoClient``s are left as they were, with only their one-id
lookups answered without a scan (``_by_id``). For every client, mongomock's
cursor no longer copies all its results for each document it hands out, nor
computes every match of an unsorted query with a limit (``find_one`` included):
``_compute_window``.
"""
import copy
import enum
import functools
import itertools
import math
import types
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Final, Literal

import mongomock
import mongomock.collection as mongomock_collection
from mongomock import ObjectId, helpers
from mongomock.collection import Collection, Cursor
from mongomock.filtering import NOTHING, filter_applies, iter_key_candidates
from mongomock.store import CollectionStore, DatabaseStore, ServerStore
from pymongo.collection import Collection as PymongoCollection

from shared.documents import deep_copy

# What mongomock compares with == and Python hashes consistently with it.
_PLAIN = frozenset({str, int, float, bool, datetime, type(None)})


def _plain(value: object) -> bool:
    return type(value) in _PLAIN and not (type(value) is float and math.isnan(value))


Key = Hashable   # a document's key in its collection's store (its ``_id``, made hashable)
Entry = tuple[frozenset[Hashable], bool]   # what an index holds for a document: (values, loose)


class _Held(enum.Enum):
    HELD = "held"


# The values of a condition any held value may meet: a range, never met by null or missing.
HELD: Final = _Held.HELD
Values = list[Any] | Literal[_Held.HELD]   # a condition's: plain values, or HELD


class _HashIndex:
    """One field: each value it holds -> the store keys of the documents holding it."""

    def __init__(self, field: str, sparse: bool) -> None:
        self.field, self.sparse = field, sparse
        self.keys: dict[Hashable, set[Key]] = {}   # value -> {store key, ...}
        # documents holding a value not hashed: candidates of every lookup
        self.loose: set[Key] = set()
        # store key -> (values, loose): what to take out when it changes
        self.held: dict[Key, Entry] = {}

    def entry(self, document: Mapping[str, Any]) -> Entry:
        values: set[Hashable] = set()
        loose = False
        for found in iter_key_candidates(self.field, document):
            for value in found if isinstance(found, (list, tuple)) else (found,):
                value = None if value is NOTHING else value
                if _plain(value):
                    values.add(value)
                else:
                    loose = True
        if self.sparse:
            values.discard(None)
        return frozenset(values), loose

    def put(self, key: Key, document: Mapping[str, Any]) -> None:
        entry = self.entry(document)
        if self.held.get(key) == entry:
            return
        self.remove(key)
        values, loose = entry
        for value in values:
            self.keys.setdefault(value, set()).add(key)
        if loose:
            self.loose.add(key)
        if values or loose:
            self.held[key] = entry

    def remove(self, key: Key) -> None:
        values, _ = self.held.pop(key, (frozenset(), False))
        for value in values:
            bucket = self.keys[value]
            bucket.discard(key)
            if not bucket:
                del self.keys[value]
        self.loose.discard(key)

    def answers(self, values: Values) -> bool:
        if values is HELD:     # only a sparse index leaves out the documents lacking it
            return self.sparse
        return not (self.sparse and None in values)

    def size(self, values: Values) -> int:
        if values is HELD:
            return len(self.held)
        return len(self.loose) + sum(len(self.keys.get(value, ())) for value in set(values))

    def lookup(self, values: Values) -> set[Key]:
        if values is HELD:
            return set(self.held)
        found = set(self.loose)
        for value in set(values):
            found.update(self.keys.get(value, ()))
        return found


class _IndexedCollectionStore(CollectionStore):
    """A collection's documents, with a hash index per first key of its declared indexes."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.hashed: dict[str, _HashIndex] = {}
        self.order: dict[Key, int] = {}      # store key -> when it was stored: the scan's order
        self._counter = itertools.count()

    def __setitem__(self, key: Key, document: dict[str, Any]) -> None:
        if key not in self._documents:   # a new key goes last, like in the OrderedDict
            self.order[key] = next(self._counter)
        super().__setitem__(key, document)
        self.reindex(key, document)

    def __delitem__(self, key: Key) -> None:
        super().__delitem__(key)
        del self.order[key]
        for index in self.hashed.values():
            index.remove(key)

    def reindex(self, key: Key, document: Mapping[str, Any],
                touched: set[str] | None = None) -> None:
        """Index ``document`` again: every index, or those on the ``touched`` top-level
        fields only (an update changes nothing else)."""
        for field, index in self.hashed.items():
            if touched is None or field.split(".", 1)[0] in touched:
                index.put(key, document)

    def drop(self) -> None:
        super().drop()
        self.hashed, self.order = {}, {}

    def create_index(self, index_name: str, index_dict: dict[str, Any]) -> None:
        # Called by Collection.create_index(es) once mongomock has checked the index.
        super().create_index(index_name, index_dict)
        self._follow_declared()

    def drop_index(self, index_name: str) -> None:
        super().drop_index(index_name)
        self._follow_declared()
        # (Collection.drop_indexes empties ``indexes`` directly: the hash indexes then
        # stay, still kept right, answering what the scan would.)

    def _follow_declared(self) -> None:
        """One hash index per field starting a declared index; sparse if all those are."""
        sparse: dict[str, bool] = {}
        for index in self.indexes.values():
            field = next(iter(index["key"]))[0]
            if field != "_id" and "$" not in field:   # _id: the store's own key
                sparse[field] = sparse.get(field, True) and bool(index.get("sparse"))
        self.hashed = {field: index for field, index in self.hashed.items() if field in sparse}
        for field, is_sparse in sparse.items():
            if field in self.hashed and self.hashed[field].sparse <= is_sparse:
                continue     # (an index holding the missing too answers a sparse one's queries)
            self.hashed[field] = index = _HashIndex(field, is_sparse)
            for key, document in self._documents.items():
                index.put(key, document)

    def candidates(self, filter: Mapping[str, Any]) -> list[Key] | None:
        """The store keys of the documents ``filter`` may match, in the scan's order; None
        when no index can tell (the filter needs the scan)."""
        best: tuple[int, str, Values] | None = None
        for field, values in _narrowing(filter):
            if field == "_id":
                if values is HELD:
                    continue
                size = len(values)
            elif field in self.hashed and self.hashed[field].answers(values):
                size = self.hashed[field].size(values)
            else:
                continue
            if best is None or size < best[0]:
                best = size, field, values
        if best is None:
            return None
        _, field, values = best
        if field == "_id" and values is not HELD:   # (always: HELD is skipped for _id above)
            keys = {value for value in values if value in self._documents}
        else:
            keys = self.hashed[field].lookup(values)
        return sorted(keys, key=self.order.__getitem__)


_RANGE = frozenset({"$gt", "$gte", "$lt", "$lte"})


def _narrowing(filter: Mapping[str, Any]) -> Iterator[tuple[str, Values]]:
    """(field, values) for each condition of ``filter`` that only a document holding one
    of ``values`` at ``field`` can meet: plain equality or ``$in`` of plain values, at the
    top or inside ``$and``; ``HELD`` for a range, met only where the field holds a value."""
    for field, condition in filter.items():
        if field == "$and" and isinstance(condition, list):
            for part in condition:
                if isinstance(part, dict):
                    yield from _narrowing(part)
        elif not isinstance(field, str) or field.startswith("$"):
            continue
        elif _plain(condition):
            yield field, [condition]
        elif (isinstance(condition, dict) and list(condition) == ["$in"]
              and isinstance(condition["$in"], (list, tuple))
              and all(_plain(value) for value in condition["$in"])):
            yield field, list(condition["$in"])
        elif isinstance(condition, dict) and any(      # (its other operators: checked after)
                operator in _RANGE and _plain(value) and value is not None
                for operator, value in condition.items()):
            yield field, HELD


class _IndexedDatabaseStore(DatabaseStore):
    def __getitem__(self, col_name: str) -> _IndexedCollectionStore:
        if col_name not in self._collections:
            self._collections[col_name] = _IndexedCollectionStore(col_name)
        return self._collections[col_name]


class _IndexedServerStore(ServerStore):
    def __getitem__(self, db_name: str) -> _IndexedDatabaseStore:
        if db_name not in self._databases:
            self._databases[db_name] = _IndexedDatabaseStore()
        return self._databases[db_name]


# mongomock's Collection, answering from the indexes -------------------------------------
# (The assignments to mongomock's methods below are the patches: ``type: ignore`` says so.)

_scan = Collection._iter_documents
# (collection, query shape) of each scan while ``recording_scans`` runs; None otherwise.
_scans: list[tuple[str, str]] | None = None


@contextmanager
def recording_scans() -> Iterator[list[tuple[str, str]]]:
    """The queries the indexes could not answer, on the clients of ``new_client``, while
    this runs: a list of (collection name, ``query_shape``)."""
    global _scans
    outer, _scans = _scans, []
    try:
        yield _scans
    finally:
        _scans = outer


def query_shape(filter: object) -> str:
    """A filter without its values: ``{"a": 1, "b": {"$lt": 2}}`` -> ``"a, b $lt"``."""
    if not isinstance(filter, Mapping):
        return "(not a filter)"
    parts = []
    for field, condition in filter.items():
        if field in ("$and", "$or", "$nor") and isinstance(condition, list):
            parts.append(f"{field}({'; '.join(map(query_shape, condition))})")
        elif isinstance(condition, Mapping) and any(str(key).startswith("$") for key in condition):
            parts.append(" ".join([field, *sorted(condition)]))
        else:
            parts.append(field)
    return ", ".join(sorted(parts)) or "(all)"


def _by_id(filter: Mapping[str, Any]) -> list[Key] | None:
    """A plain client's store: only a filter naming one plain ``_id`` is looked up."""
    ident = filter.get("_id")
    return [ident] if _plain(ident) and ident is not None else None


def _iter_documents(self: Collection, filter: object) -> Iterator[dict[str, Any]]:
    store = self._store
    if not isinstance(filter, dict):
        return _scan(self, filter)
    if store.is_empty:        # as the scan does: expires TTL documents, validates the filter
        filter_applies(filter, {})
    if isinstance(store, _IndexedCollectionStore):
        keys = store.candidates(filter)
    else:
        keys = _by_id(filter)
    if keys is None:
        if _scans is not None and isinstance(store, _IndexedCollectionStore):
            _scans.append((self.name, query_shape(filter)))
        return _scan(self, filter)
    stored = store._documents
    # a snapshot, checked lazily, like the scan (an update_many changes them one by one)
    found = [stored[key] for key in keys if key in stored]
    if _met_by_its_index(filter, store):
        return iter(found)
    filter = _without_met_ids(filter, keys)
    return (document for document in found if filter_applies(filter, document))


def _met_by_its_index(filter: dict[str, Any], store: object) -> bool:
    """Whether every candidate meets ``filter`` already: one field's equality or ``$in``
    of strings, answered by that field's hash index holding no value it could not hash
    (the statistics read a month's counters across estates this way: mongomock's check
    of each document cost as much as the rest of the read)."""
    if len(filter) != 1 or not isinstance(store, _IndexedCollectionStore):
        return False
    (field, condition), = filter.items()
    values = condition["$in"] if isinstance(condition, dict) and list(condition) == ["$in"] \
        else [condition]
    index = store.hashed.get(field)
    return (field != "_id" and index is not None and not index.loose
            and isinstance(values, (list, tuple))
            and all(type(value) is str for value in values))


def _without_met_ids(filter: dict[str, Any], keys: Iterable[Key]) -> dict[str, Any]:
    """``filter`` less its ``_id: {"$in": [...]}`` (of strings) when every candidate is one
    of those ids: the condition holds for each, and mongomock checks ``$in`` against the
    whole list for every document (a batch of n by id: n² steps)."""
    condition = filter.get("_id")
    if not (isinstance(condition, dict) and list(condition) == ["$in"]
            and isinstance(condition["$in"], (list, tuple))):
        return filter
    ids = condition["$in"]
    if not all(type(ident) is str for ident in ids):
        return filter
    named = set(ids)
    if not all(key in named for key in keys):
        return filter
    return {field: value for field, value in filter.items() if field != "_id"}


def _store_key(ident: object) -> Key | None:
    if isinstance(ident, dict):
        return helpers.hashdict(ident)
    try:
        hash(ident)
    except TypeError:
        return None
    return ident


# Update operators that put a new value at their path (the old value is left as it was)
# and those that change the value at their path in place (a list: its items are kept).
_REPLACING = frozenset({"$set", "$unset", "$setOnInsert", "$inc", "$mul", "$min", "$max",
                        "$currentDate", "$rename"})
_IN_PLACE = frozenset({"$push", "$pull", "$pullAll", "$addToSet", "$pop"})


def _before(document: dict[str, Any], update: object) -> dict[str, Any]:
    """What puts ``document`` back as it was should ``update`` fail halfway (and tells
    whether it changed anything): the document with copies only along the paths the
    update writes — each dict on a path copied shallowly, a list an in-place operator
    changes copied shallowly, anything else on a path (a list indexed into, a positional
    ``$``) or under an operator not known here deep-copied whole. A counter document's
    ``$inc`` of one path copies the few dicts above it, not all its counters."""
    if not isinstance(update, dict):          # an aggregation pipeline
        return deep_copy(document)
    before = dict(document)
    copies = {id(before)}   # containers of ``before`` that are copies already
    for operator, changes in update.items():
        if not isinstance(changes, dict):
            continue
        paths = [*changes, *changes.values()] if operator == "$rename" else list(changes)
        for path in paths:
            parts = str(path).split(".")
            if operator in _REPLACING or operator in _IN_PLACE:
                _copy_along(before, parts, operator in _IN_PLACE, copies)
            elif parts[0] in before:
                before[parts[0]] = deep_copy(before[parts[0]])
    return before


def _copy_along(container: dict[str, Any], parts: list[str], in_place: bool,
                copies: set[int]) -> None:
    """``_before``'s copies along one path below ``container`` (a copy)."""
    key, rest = parts[0], parts[1:]
    if key not in container:
        return   # a new field: nothing of the old document to keep
    value = container[key]
    if id(value) in copies:
        if rest and type(value) in (dict, OrderedDict):
            _copy_along(value, rest, in_place, copies)
        return
    if rest and type(value) in (dict, OrderedDict):
        value = container[key] = type(value)(value)
        copies.add(id(value))
        _copy_along(value, rest, in_place, copies)
    elif rest or (in_place and type(value) is not list):
        container[key] = deep_copy(value)
        copies.add(id(container[key]))
    elif in_place:
        container[key] = list(value)
        copies.add(id(container[key]))


def _reindexing(apply: Callable[..., Any]) -> Callable[..., Any]:
    """An in-place update of a stored document, all or nothing as on MongoDB (mongomock
    applies it field by field, and a value it cannot store halfway left the fields before
    it changed: a status without its history line), then the re-index of that document."""
    @functools.wraps(apply)
    def applied(self: Collection, document: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        store, key = self._store, _store_key(document.get("_id"))
        update = args[1] if len(args) > 1 else args[0] if args else None
        before, touched = _before(document, update), _touched(update)
        try:
            return apply(self, document, *args, **kwargs)
        except BaseException:
            touched = None
            document.clear()
            document.update(before)
            raise
        finally:
            # an upsert's new document is not stored yet: its insert indexes it
            if isinstance(store, _IndexedCollectionStore) and store._documents.get(key) is document:
                store.reindex(key, document, touched)
    return applied


def _touched(update: object) -> set[str] | None:
    """The top-level fields an update's operators change; None when it cannot tell (a
    pipeline, a replacement)."""
    if not isinstance(update, dict) or not update or \
            not all(str(key).startswith("$") for key in update):
        return None   # ({} replaces the document with an empty one)
    touched: set[str] = set()
    for operator, changes in update.items():
        if not isinstance(changes, dict):
            return None
        paths = [*changes, *changes.values()] if operator == "$rename" else list(changes)
        touched.update(str(path).split(".", 1)[0] for path in paths)
    return touched


Collection._iter_documents = _iter_documents  # type: ignore[method-assign]
Collection._apply_update_document = _reindexing(  # type: ignore[method-assign]
    Collection._apply_update_document)
Collection._apply_update_pipeline = _reindexing(  # type: ignore[method-assign]
    Collection._apply_update_pipeline)


# mongomock's Cursor: n results in O(n), a limit without computing the rest -------------

_compute_results = Cursor._compute_results


def _compute_window(self: Cursor, with_limit_and_skip: bool = False) -> list[Any]:
    """What ``next`` hands out from. mongomock sliced its results afresh for every
    document (n² to read n), and computed (copied) every match before applying a limit
    (survey's batches of 1000 pending invitations copied all of them, batch after batch).
    The window is kept while the query, skip and limit stay; unsorted, it is only the
    first skip + limit documents of the same ordered stream."""
    if not with_limit_and_skip:
        return _compute_results(self)
    key = (self._factory, self._skip, self._limit)
    window = self.__dict__.get("_window")
    if window is None or window[0] != key:
        if self._limit and not self._sort:
            found: Iterator[Any] = itertools.islice(self._factory(),
                                                    self._skip + abs(self._limit))
            if self.collection.codec_options.tz_aware:
                found = map(helpers.make_datetime_timezone_aware_in_document, found)
            window = key, list(found)[self._skip:]
        else:
            window = key, _compute_results(self, with_limit_and_skip=True)
        if not window[1]:     # mongomock computes an empty answer again each time
            return window[1]
        self._window = window   # type: ignore[attr-defined]  # (ours, on mongomock's Cursor)
    return window[1]


def _find_one(self: Collection, filter: object = None, *args: Any,
              **kwargs: Any) -> dict[str, Any] | None:
    """The first match, found without computing the others (pymongo asks for one too)."""
    if filter is None:
        filter = {}
    if not isinstance(filter, Mapping):
        filter = {"_id": filter}
    return next(self.find(filter, *args, **kwargs).limit(1), None)


Cursor._compute_results = _compute_window  # type: ignore[method-assign]
Collection.find_one = _find_one  # type: ignore[method-assign]


# mongomock's copies: every insert, update (a snapshot of the whole document first) and
# read copies documents with ``copy.deepcopy``, whose memo and ``__reduce_ex__`` per
# datetime cost more than the rest of a write (notify's deliveries: ~30 fields, 5 dates).

# The update being applied, while mongomock's ``_update`` runs: (collection, update).
_UPDATING: ContextVar[tuple[Collection, object] | None] = ContextVar("embedded_updating",
                                                                     default=None)


def _copy_or_snapshot(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """mongomock's ``copy.deepcopy``. Within an update, a stored document is snapshot
    first — to tell whether the update changed it and to put it back when it breaks a
    unique index — and a whole copy of a large record for that was most of a write's
    cost: the snapshot is ``_before`` (values the update replaces whole shared, the
    ones it changes in place copied), as faithful for both uses."""
    updating = _UPDATING.get()
    if updating is not None and memo is None and type(value) in (dict, OrderedDict):
        collection, update = updating
        store = collection._store
        stored: dict[str, Any] = value
        if isinstance(store, _IndexedCollectionStore) and \
                store._documents.get(_store_key(stored.get("_id"))) is stored:
            return _before(stored, update)
    return deep_copy(value, memo)


def _snapshotting(update: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(update)
    def updated(self: Collection, spec: Any, document: Any, *args: Any, **kwargs: Any) -> Any:
        token = _UPDATING.set((self, document))
        try:
            return update(self, spec, document, *args, **kwargs)
        finally:
            _UPDATING.reset(token)
    return updated


Collection._update = _snapshotting(Collection._update)  # type: ignore[method-assign]
mongomock_collection.copy = types.SimpleNamespace(  # type: ignore[assignment]
    copy=copy.copy, deepcopy=_copy_or_snapshot)
# ... and every write parses the same version strings again (``packaging``), for each field.
mongomock_collection.version = types.SimpleNamespace(  # type: ignore[assignment]
    parse=functools.cache(mongomock_collection.version.parse))

_naive_utc_any = helpers.patch_datetime_awareness_in_document
# Values with no date inside: handed back as they are.
_DATELESS = frozenset({str, int, float, bool, bytes, type(None), ObjectId})


def _naive_utc(value: Any) -> Any:
    """mongomock's ``patch_datetime_awareness_in_document`` (every filter, update and new
    document, walked to store dates as naive UTC milliseconds), without its five type
    checks for each string and number."""
    kind = type(value)
    if kind in _DATELESS:
        return value
    if kind is dict:
        return {key: _naive_utc(item) for key, item in value.items()}
    if kind is list:
        return [_naive_utc(item) for item in value]
    return _naive_utc_any(value)


helpers.patch_datetime_awareness_in_document = _naive_utc


def new_client() -> mongomock.MongoClient:
    """An embedded store whose collections keep the indexes declared on them."""
    return mongomock.MongoClient(tz_aware=True, _store=_IndexedServerStore())


def read_only(collection: PymongoCollection[Any], query: dict[str, Any],
              projection: dict[str, Any] | None = None) -> Iterator[Mapping[str, Any]]:
    """What ``collection.find(query)`` finds, for a caller that only reads numbers and
    strings from it (the statistics' counters): on the embedded store the stored documents
    themselves — mongomock deep-copies each document it hands out, and turns its times to
    aware ones (not done here: the store keeps them naive) —, elsewhere the cursor's, with
    ``projection`` (the embedded store hands out whole documents: the caller reads only
    the fields it names). The caller must not change what it gets."""
    if isinstance(collection, Collection) and isinstance(collection._store,
                                                          _IndexedCollectionStore):
        return _iter_documents(collection, query)
    return iter(collection.find(query, projection))
