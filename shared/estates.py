"""An estate's name and time zone, in every service but intake, from one place.

intake owns the estates' records (services/intake/estates.py) and announces each change
(``estate_registered``, ``estate_updated``). Each other service keeps a copy of what it
needs (names, company, region, time zone) in its own database, from those events
(event-carried state): a copy takes an event once (its id is kept with the copy, in the
same write) and only if it is newer (``revision``), so a redelivered or late event changes
nothing. An estate the copy has not heard of yet (the service started after its events,
or they are still on their way) is asked of intake once (``intake.get_estate``) and kept
- by RPCs, which ask intake anyway; event handlers and timers never wait on intake
(``ask_intake=False``: until the events come, the service's config stands in); a timer
that goes through every estate goes through the copies (``ids``). Where there is no
record, the group's default zone (``GROUP_TIMEZONE``) and the estate's id stand in.

    estates = Estates()                        # in the service class, beside ``intake``
    @handles("intake", "estate_registered")
    @handles("intake", "estate_updated")
    def keep_estate_copy(self, event):
        self.estates.learn(event)
    ...
    zone = self.estates.zone(estate_id)
"""
import logging
from collections.abc import Callable, Iterable
from typing import Any

from nameko.exceptions import RemoteError
from nameko.extensions import DependencyProvider
from pymongo import ASCENDING, IndexModel
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from shared.dependencies import Store
from shared.embedded import read_only
from shared.store import Document
from shared.workdays import DEFAULT_TIMEZONE

log = logging.getLogger(__name__)

COPIES = "estate_copies"
# What a copy holds of an estate's record.
FIELDS = ("name", "company", "region", "timezone")
# What is read of a copy for several estates at once (``names``): not its events.
COPY_READ = ("_id", *FIELDS, "revision")
# The event ids a copy remembers (a redelivery comes long before this many changes).
EVENTS_KEPT = 20
GROUP_TIMEZONE_KEY = "GROUP_TIMEZONE"
# For a service that asks which estates are in another zone (``in_zones_other_than``): its
# repository declares this index with its own.
ZONE_INDEXES = {COPIES: [IndexModel([("timezone", ASCENDING)])]}
# The zones the copies are in (one document, ``IN_USE``), noted before each copy is
# written: which estates are elsewhere is then an index lookup of the other zones, not a
# scan of every copy (a ``$ne`` the embedded store cannot answer from an index).
ZONES, IN_USE = "estate_zones", "in_use"


class EstateCopies:
    """One worker's view of the service's copies of the estates' records."""

    def __init__(self, db: Database[Document], fetch: Callable[[str], dict | None] | None,
                 default_zone: str) -> None:
        self.collection = db[COPIES]
        self._zones = db[ZONES]
        self._fetch = fetch
        self.default_zone = default_zone
        self._read: dict[str, dict | None] = {}

    def learn(self, event: dict) -> bool:
        """Apply an ``estate_registered`` or ``estate_updated`` event to the copy: True if
        it changed the copy, False for one already applied or older than the copy."""
        data, estate_id = event["data"], event["estate_id"]
        copy = {**{key: data[key] for key in FIELDS}, "revision": data["revision"]}
        self._note_zones([copy["timezone"]])
        newer = {"_id": estate_id, "revision": {"$lt": data["revision"]},
                 "events": {"$ne": event["id"]}}
        update = {"$set": copy, "$push": {"events": {"$each": [event["id"]],
                                                     "$slice": -EVENTS_KEPT}}}
        if self.collection.update_one(newer, update).modified_count:
            self._read.pop(estate_id, None)
            return True
        try:
            self.collection.insert_one({"_id": estate_id, **copy, "events": [event["id"]]})
        except DuplicateKeyError:
            return False   # the copy has this event, or a newer one
        self._read.pop(estate_id, None)
        return True

    def get(self, estate_id: str, ask_intake: bool = True) -> dict | None:
        """The copy of an estate's record (fetched from intake the first time), or None
        when intake does not know the estate. ``ask_intake=False`` (timers, event
        handlers: they never wait on intake) reads the copy only."""
        if estate_id in self._read:
            return self._read[estate_id]
        copy = self.collection.find_one({"_id": estate_id})
        if copy is None and not ask_intake:
            return None     # not remembered: an RPC of this worker may still ask intake
        if copy is None and self._fetch is not None:
            copy = self._copy_from_intake(estate_id)
        self._read[estate_id] = copy
        return copy

    def zone(self, estate_id: str | None, ask_intake: bool = True) -> str:
        """The estate's time zone; the group's for no estate or one without a record."""
        copy = self.get(estate_id, ask_intake) if estate_id else None
        return copy["timezone"] if copy else self.default_zone

    def ids(self) -> list[str]:
        """Every estate the service has a copy of, by id: what its timers go through
        (never ``intake.list_estate_ids``: a timer does its pass while intake is away).
        An estate whose events have not come yet is gone through once they have."""
        return [copy["_id"] for copy in
                self.collection.find({}, {"_id": 1}).sort("_id", ASCENDING)]

    def in_zones_other_than(self, zone: str) -> list[str]:
        """The estates whose copy puts them in a time zone other than ``zone`` (few: most
        estates of a group share its zone): those of the other zones in use, read by
        ``ZONE_INDEXES``; none to read when every copy is in ``zone``."""
        others = [other for other in self.zones_in_use() if other != zone]
        if not others:
            return []
        return [copy["_id"] for copy in self.collection.find({"timezone": {"$in": others}},
                                                             {"_id": 1})]

    def zones_in_use(self) -> list[str | None]:
        """Every zone a copy has been in (one a zone has since left stays listed: it finds
        no copy). Copies written before the zones were noted are read once, to list theirs."""
        noted = self._zones.find_one({"_id": IN_USE}) or {}
        if noted.get("complete"):
            return list(noted["zones"])
        zones = self.collection.distinct("timezone")
        self._note_zones(zones, complete=True)
        return list(dict.fromkeys([*noted.get("zones", []), *zones]))

    def _note_zones(self, zones: list[str | None], complete: bool = False) -> None:
        """``zones`` among those in use, before a copy in one of them is written (a reader
        that sees the copy sees its zone); ``complete``: every copy's zone is now noted."""
        update: dict[str, Any] = {"$addToSet": {"zones": {"$each": zones}}}
        if complete:
            update["$set"] = {"complete": True}
        self._zones.update_one({"_id": IN_USE}, update, upsert=True)

    def name(self, estate_id: str) -> str:
        """The estate's name (its id where it has no record)."""
        copy = self.get(estate_id)
        return copy["name"] if copy else estate_id

    def names(self, estate_ids: Iterable[str]) -> dict[str, str]:
        """{estate id: name} for several estates: one query, then intake for the unknown."""
        ids = list(dict.fromkeys(estate_ids))
        unread = [estate_id for estate_id in ids if estate_id not in self._read]
        for copy in read_only(self.collection, {"_id": {"$in": unread}},
                              dict.fromkeys(COPY_READ, 1)):   # 3,000 copies: no deep copies
            self._read[copy["_id"]] = {key: copy[key] for key in COPY_READ if key in copy}
        return {estate_id: self.name(estate_id) for estate_id in ids}

    def describe(self, estate_id: str) -> dict:
        """What figures and reports show beside an estate's id: its names."""
        copy = self.get(estate_id) or {}
        return {"estate_name": copy.get("name", estate_id), "company": copy.get("company"),
                "region": copy.get("region")}

    def named(self, value: Any) -> Any:
        """``value`` (a report, a ranking: JSON-able) with ``estate_name`` beside each
        ``estate_id``, however deep."""
        found: list[str] = []
        _each_estate_id(value, found.append)
        names = self.names(found)

        def name(item: Any) -> Any:
            if isinstance(item, dict):
                named = {key: name(inner) for key, inner in item.items()}
                if isinstance(item.get("estate_id"), str):
                    named.setdefault("estate_name", names[item["estate_id"]])
                return named
            if isinstance(item, list):
                return [name(inner) for inner in item]
            return item
        return name(value)

    def _copy_from_intake(self, estate_id: str) -> dict | None:
        if self._fetch is None:     # no intake to ask: unknown
            return None
        record = self._fetch(estate_id)
        if record is None:
            return None
        copy = {**{key: record.get(key) for key in FIELDS}, "revision": record["revision"]}
        self._note_zones([copy["timezone"]])
        try:   # unless an event's copy (as new, or newer) came meanwhile
            self.collection.insert_one({"_id": estate_id, **copy, "events": []})
        except DuplicateKeyError:
            return self.collection.find_one({"_id": estate_id})
        return {"_id": estate_id, **copy}


def _each_estate_id(value: Any, found: Callable[[str], None]) -> None:
    if isinstance(value, dict):
        if isinstance(value.get("estate_id"), str):
            found(value["estate_id"])
        for inner in value.values():
            _each_estate_id(inner, found)
    elif isinstance(value, list):
        for inner in value:
            _each_estate_id(inner, found)


def group_zone(config: dict) -> str:
    """The group's default time zone (``GROUP_TIMEZONE``): an estate's until it has a record."""
    return config.get(GROUP_TIMEZONE_KEY) or DEFAULT_TIMEZONE


def copies_for(container: Any, worker_ctx: Any, intake: str | None = "intake") -> EstateCopies:
    """A worker's ``EstateCopies`` over its service's own database (its ``Store``); with
    ``intake`` (the service's RPC proxy attribute) an unknown estate is asked of intake.
    Copies are read by their ``_id``; by their zone only with ``ZONE_INDEXES``."""
    store = next(provider for provider in container.dependencies
                 if isinstance(provider, Store))

    def fetch(estate_id: str) -> dict | None:
        assert intake is not None   # handed over only with intake
        try:
            return getattr(worker_ctx.service, intake).get_estate(estate_id)
        except RemoteError as error:
            if error.exc_type == "NotFound":
                return None
            raise
    return EstateCopies(store.repository.db, fetch if intake else None,
                        group_zone(container.config))


class Estates(DependencyProvider):
    """Gives each worker ``EstateCopies``, asking intake (the service's proxy attribute
    ``intake``) for an estate it has no copy of."""

    def __init__(self, intake: str = "intake") -> None:
        self.intake = intake

    def get_dependency(self, worker_ctx: Any) -> EstateCopies:
        return copies_for(self.container, worker_ctx, self.intake)
