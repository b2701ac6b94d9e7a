"""Planning a round from create_round's request: its schedule, estates, categories, sample
and reminders, and the replay of a retried request. Pure Python."""
import hashlib
import json
from collections.abc import Collection
from datetime import datetime

from services.survey.invitations import new_progress
from services.survey.rounds import SurveyPolicy, by_person
from services.survey.sampling import seed_from
from services.survey.templates import resolve_categories
from shared.errors import InvalidInput


def check_schedule(data: dict, now: datetime) -> None:
    if data["closes_at"] <= now:
        raise InvalidInput({"closes_at": ["is already past: nobody could answer"]})


def household_filters(data: dict) -> dict:
    """What create_round asks intake for: occupied households unless told otherwise."""
    return {"occupied": True} if data["occupied_only"] else {}


def request_fingerprint(data: dict) -> str:
    """A digest of what a create_round call asked for (its ``request_id`` aside)."""
    asked = {key: value for key, value in data.items() if key != "request_id"}
    return hashlib.sha256(json.dumps(asked, sort_keys=True, ensure_ascii=False,
                                     default=str).encode()).hexdigest()


def replay(round_: dict, data: dict) -> dict:
    """The round a retried create_round gets back: the one the first call with that
    ``request_id`` made (still ``creating`` while that call is storing it), provided
    the retry asks for the same round."""
    if round_.get("request_fingerprint") != request_fingerprint(data):
        raise InvalidInput({"request_id": [
            f"already used for another round ({round_['_id']}); send a new request_id"]})
    return round_


def check_estates(data: dict, unknown: Collection[str], empty: Collection[str]) -> None:
    """Refuse a round naming estates intake does not know (``unknown``), each named."""
    if unknown:
        raise InvalidInput({"estate_ids": [f"unknown estate: {estate_id}"
                                           for estate_id in unknown]})
    check_households(data, empty)


def check_households(data: dict, empty: Collection[str]) -> None:
    """Refuse a round with estates where intake lists nobody to invite (``empty``)."""
    if empty:
        which = "occupied households" if data["occupied_only"] else "households"
        raise InvalidInput({"estate_ids": [
            f"{estate_id}: no {which} to invite" for estate_id in empty]})


def plan_round(round_id: str, data: dict, template: dict, policy: SurveyPolicy, now: datetime,
               created_by: str | None = None) -> dict:
    """The round (status ``creating``) as create_round stores it; ``created_by`` the
    person who asked for it, when a person did (the gateway).

    Its invitations are written, then issued, in the background a batch at a time
    (``invitations.read_households``, ``finish_writing``, ``issue_batch``), recorded in
    ``progress``.
    Nothing is announced until all of them are written. A round made for a client's
    ``request_id`` keeps it with a fingerprint of the request, so a retry finds it
    (``replay``).
    """
    common, per_estate = _asked(data, template)
    sample = dict(data["sample"])
    if sample["mode"] == "stratified":
        sample.setdefault("seed", seed_from(round_id))
    reminders = {
        "interval_days": data["reminders"].get("interval_days", policy.reminder_interval_days),
        "max": data["reminders"].get("max", policy.max_reminders),
    }
    round_ = {
        "_id": round_id,
        "title": data["title"],
        "kind": data["kind"],
        "occasion": data["occasion"],
        "estate_ids": list(data["estate_ids"]),
        "opens_at": data["opens_at"],
        "closes_at": data["closes_at"],
        "template": {"template_id": template["template_id"],
                     "template_version": template["template_version"]},
        "categories": [entry["key"] for entry in common],
        "estate_categories": {estate_id: [entry["key"] for entry in extra]
                              for estate_id, extra in per_estate.items() if extra},
        # labels kept with the round: it reports the same whatever the template becomes
        "labels": {entry["key"]: [entry["label_zh"], entry["label_en"]]
                   for entry in common + [e for extra in per_estate.values() for e in extra]},
        "anonymous": data["anonymous"],
        "occupied_only": data["occupied_only"],
        "sample": sample,
        "reminders": reminders,
        "status": "creating",
        # per estate, counted as its households are read
        "households": {estate_id: 0 for estate_id in data["estate_ids"]},
        "invited": {estate_id: 0 for estate_id in data["estate_ids"]},
        "progress": new_progress(now),
        "created_at": now,
        "closed_at": None,
        "published": {},
    }
    by_person(round_, "created_by", created_by)
    if data["request_id"]:
        # only then: the store's unique index on request_id skips rounds without one
        round_.update(request_id=data["request_id"],
                      request_fingerprint=request_fingerprint(data))
    return round_


def _asked(data: dict, template: dict) -> tuple[list[dict], dict[str, list[dict]]]:
    """(the categories every estate is asked, {estate: the categories it adds}) as
    definitions: the request's own, else the template's, each refused on the field that
    named it when unknown or asked twice."""
    base = resolve_categories(
        data["categories"] if data["categories"] is not None else template["categories"],
        template, "categories")
    added = resolve_categories(data["add_categories"], template, "add_categories")
    common = _merge(base, added, "add_categories")
    per_estate = {
        estate_id: _merge(common, resolve_categories(
            items, template, f"estate_categories.{estate_id}"),
            f"estate_categories.{estate_id}")[len(common):]
        for estate_id, items in data["estate_categories"].items()
    }
    return common, per_estate


def _merge(first: list[dict], second: list[dict], field: str) -> list[dict]:
    keys = {entry["key"] for entry in first}
    twice = [entry["key"] for entry in second if entry["key"] in keys]
    if twice:
        raise InvalidInput({field: [f"already asked: {', '.join(twice)}"]})
    return first + second
