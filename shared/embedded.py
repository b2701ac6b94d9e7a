"""The embedded store: mongomock, with id lookups answered without a scan.

mongomock keeps a collection's documents in a dict keyed by ``_id`` but runs
every query, even ``{"_id": ...}``, as a scan of all of them, so each write of
a service grew slower with its data (most of notify's time in a profile of
the complaint pipeline). A filter naming one plain ``_id`` now looks the
document up and still checks the rest of the filter on it.
"""
from collections.abc import Mapping

import mongomock
from mongomock.collection import Collection
from mongomock.filtering import filter_applies

_scan = Collection._iter_documents


def _iter_documents(self, filter):
    ident = filter.get("_id") if isinstance(filter, Mapping) else None
    if not isinstance(ident, (str, int)) or isinstance(ident, bool):
        return _scan(self, filter)
    try:
        document = self._store[ident]
    except KeyError:
        return iter(())
    return iter([document] if filter_applies(filter, document) else [])


Collection._iter_documents = _iter_documents


def new_client():
    return mongomock.MongoClient(tz_aware=True)
