"""Estates as records: id, Chinese name, company → region → estate, time zone, and the
estate's own complaint-policy overrides. Pure Python.

intake owns them; every change is announced (``estate_registered``, ``estate_updated``)
so the other services keep a copy (shared/estates.py) instead of reading intake's config.
An estate known before records existed (only its households imported) reads as one named
by its id until renamed; ``legacy_record`` writes that record (the migration).
"""
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from shared.envelope import Changed, Envelope, new_event
from shared.errors import InvalidInput, InvalidTransition
from shared.store import VERSION

# What a member of staff may change; the id never changes.
EDITABLE = ("name", "company", "region", "timezone", "policy")
# What the other services' copies hold (the events carry these).
SHARED_FIELDS = ("name", "company", "region", "timezone")


def register(estate_id: str, data: dict, default_zone: str, now: datetime
             ) -> Changed:
    """A new estate's record (``timezone`` none: the group's) and its announcement."""
    estate = {"_id": estate_id, "name": data["name"], "company": data.get("company"),
              "region": data.get("region"), "timezone": data.get("timezone") or default_zone,
              "policy": dict(data.get("policy") or {}), "named": True,
              "created_at": now, "updated_at": now, VERSION: 0}
    return estate, [_event("estate_registered", estate, now)]


def legacy_record(estate_id: str, default_zone: str, created_at: datetime | None,
                  now: datetime) -> Changed:
    """The record of an estate known only by its id (households imported before estates
    were records): named by its id until renamed (``named`` false)."""
    estate = _legacy(estate_id, default_zone, created_at, now)
    return estate, [_event("estate_registered", estate, now)]


def _legacy(estate_id: str, default_zone: str, created_at: datetime | None,
            now: datetime | None) -> dict:
    return {"_id": estate_id, "name": estate_id, "company": None, "region": None,
            "timezone": default_zone, "policy": {}, "named": False,
            "created_at": created_at or now, "updated_at": now, VERSION: 0}


def update(estate: dict, changes: dict, now: datetime, default_zone: str,
           expected_revision: int | None = None) -> Changed | None:
    """The record with ``changes`` (``timezone`` none: back to the group's), or None when
    nothing changes. ``expected_revision``: the revision the caller read; another one is
    ``InvalidTransition`` (409), so two editors do not overwrite each other unseen."""
    revision = estate.get(VERSION, 0)
    if expected_revision is not None and expected_revision != revision:
        raise InvalidTransition("estate", estate["_id"], f"at revision {revision}", "update",
                                expected=f"at revision {expected_revision}")
    changes = dict(changes)
    if "timezone" in changes:
        changes["timezone"] = changes["timezone"] or default_zone
    changed = [name for name in EDITABLE if name in changes and changes[name] != estate.get(name)]
    if not changed:
        return None
    updated = {**estate, **{name: changes[name] for name in changed}, "updated_at": now}
    if "name" in changed:
        updated["named"] = True
    announced = dict(updated, **{VERSION: revision + 1})   # the revision this write makes
    return updated, [_event("estate_updated", announced, now, changed=changed)]


def reroutes(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> bool:
    """Does the record ``after`` route complaints otherwise than ``before`` (None: a new
    record) does? Only such a change is checked against ``check_routing``."""
    def routing(record: Mapping[str, Any] | None) -> Mapping[str, str]:
        return ((record or {}).get("policy") or {}).get("routing") or {}
    return routing(after) != routing(before)


def check_routing(departments: Collection[str], required: Mapping[str, str],
                  field: str = "policy.routing") -> None:
    """An estate's routing (``departments``: the ones it names) must keep every department
    another service hands work to there by config (``required``: revisit kind -> the
    department its follow-ups go to, ``shared.departments.followup_departments``), else
    ``InvalidInput`` on ``field``, nothing written.

    Why refuse here rather than have revisit fall back: revisit opens a follow-up in an event
    handler, which never waits on intake and knows only the config's routing, so it cannot
    see a record's routing; a follow-up it opened for a department no longer routed could
    never be given to a department account. The config is the group's one file every
    service reads, so intake reading revisit's ``followup_departments`` from it couples
    nothing new (revisit reads intake's routing from it already, at start-up). To drop a
    department, change ``followup_departments`` first."""
    missing = {kind: name for kind, name in required.items() if name not in departments}
    if missing:
        raise InvalidInput({field: [
            "leaves out " + ", ".join(sorted(set(missing.values()))) + ", which revisit's "
            "follow-ups of " + ", ".join(sorted(missing)) + " go to (followup_departments of "
            "REVISIT_POLICY / REVISIT_ESTATE_POLICIES): route a category to it"]})


def view(estate: dict, default_zone: str) -> dict:
    """An estate as RPCs answer it; a bare estate document (households imported before
    records existed, not migrated yet) as its legacy record."""
    if "name" not in estate:
        # (its record alone: an announcement made here would only be thrown away)
        estate = _legacy(estate["_id"], default_zone, estate.get("created_at"),
                         estate.get("created_at"))
    return {"id": estate["_id"], "estate_id": estate["_id"], "name": estate["name"], "company": estate["company"],
            "region": estate["region"], "timezone": estate["timezone"],
            "policy": estate.get("policy") or {}, "named": estate.get("named", True),
            "created_at": estate["created_at"], "updated_at": estate["updated_at"],
            "revision": estate.get(VERSION, 0)}


# what headquarters' rows show of each estate
LABEL = ("estate_id", "name", "company", "region", "timezone")


def label(estate: Mapping[str, Any], default_zone: str) -> dict:
    """What headquarters' rows show of an estate (its names, the zone its periods are
    counted in), read from its record without copying the rest (``view`` for a bare one)."""
    if "name" not in estate:
        return {key: value for key, value in view(dict(estate), default_zone).items()
                if key in LABEL}
    return {"estate_id": estate["_id"], **{key: estate[key] for key in LABEL[1:]}}


def _event(event_type: str, estate: dict, now: datetime, **extra: Any) -> Envelope:
    data = {**{key: estate[key] for key in SHARED_FIELDS}, "revision": estate[VERSION], **extra}
    return new_event(event_type, "intake", estate["_id"], data, now,
                     key=f"{estate['_id']}@{estate[VERSION]}")
