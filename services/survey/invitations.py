"""Invitations: written from intake's pages and issued a batch at a time in the background,
then reminders to households that have not answered. Pure Python.

A round's invitations are written from intake's pages, then issued, a batch at a time by
the instance holding the round's lease. ``progress`` says how far it got and where to go
on; each step is computed from it alone, so a batch done again after a crash gives the
same invitations (ids from the household), counts and events (ids from the invitation).
"""
import hashlib
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from services.survey.rounds import SOURCE, open_round
from services.survey.sampling import choose_households
from shared.envelope import Changed, Envelope, new_event, new_events
from shared.errors import InvalidTransition
from shared.links import new_token  # unguessable: the token alone lets its holder answer


def invitation_id(round_id: str, household_id: str) -> str:
    """One invitation per household and round, whoever issues it and however often."""
    digest = hashlib.sha256(f"{round_id}\x00{household_id}".encode()).hexdigest()
    return f"inv-{digest[:24]}"


def _invitation(round_: dict, estate_id: str, household: dict, token: str, batch: int) -> dict:
    return {
        "_id": invitation_id(round_["_id"], household["id"]),
        "round_id": round_["_id"],
        "issue_batch": batch_key(round_["_id"], batch),
        "estate_id": estate_id,
        "household_id": household["id"],
        # where the household lives, for staff
        "building": household.get("building"),
        "unit": household.get("unit"),
        "room": household.get("room"),
        "token": token,
        "status": "pending",
        "issued_at": None,
        "expires_at": round_["closes_at"],
        "answered_at": None,
        "reminders_sent": 0,
        "next_reminder_at": None,
    }


def new_progress(now: datetime) -> dict:
    return {
        "households_seen": 0, "invited": 0, "issued": 0,
        # where reading stands: the estate (its place in estate_ids) and intake's cursor in it
        "estate_index": 0, "cursor": None,
        # invitation batches written (numbered from 0), and how many of them are issued
        "batches": 0, "issued_batches": 0,
        "done": False,                       # every invitation written and issued
        "lease_until": now, "worker": None,  # who works on it, until when (the store's claim)
    }


def batch_key(round_id: str, number: int) -> str:
    """The batch an invitation is written and issued with (indexed: a batch is read without
    the round's other invitations)."""
    return f"{round_id}/{number}"


def reading(round_: dict) -> tuple[str, str | None] | None:
    """(estate, intake's cursor in it) to read next; None once every estate is read."""
    progress = round_["progress"]
    if progress["estate_index"] >= len(round_["estate_ids"]):
        return None
    return round_["estate_ids"][progress["estate_index"]], progress["cursor"]


def reads_whole_estates(round_: dict) -> bool:
    """A stratified sample draws from all of an estate's households at once, so its estates
    are read whole; when everyone is invited, a page at a time (the cursor is kept)."""
    return round_["sample"]["mode"] != "all"


def read_households(round_: dict, estate_id: str, households: list[dict],
                    next_cursor: str | None, batch_size: int,
                    token: Callable[[], str] = new_token) -> tuple[list[dict], dict]:
    """``households`` intake listed for ``estate_id`` (a page, or the whole estate for a
    sample) and its cursor after them (None: the estate is read): their invitations, in
    numbered batches, and the round with its counts and progress past them."""
    chosen = households if round_["sample"]["mode"] == "all" else \
        choose_households(households, round_["sample"])
    progress = dict(round_["progress"])
    invitations = []
    for start in range(0, len(chosen), batch_size):
        invitations += [_invitation(round_, estate_id, household, token(), progress["batches"])
                        for household in chosen[start:start + batch_size]]
        progress["batches"] += 1
    progress.update(households_seen=progress["households_seen"] + len(households),
                    invited=progress["invited"] + len(invitations), cursor=next_cursor,
                    estate_index=progress["estate_index"] + (next_cursor is None))
    return invitations, dict(
        round_, progress=progress,
        households={**round_["households"],
                    estate_id: round_["households"][estate_id] + len(households)},
        invited={**round_["invited"], estate_id: round_["invited"][estate_id] + len(invitations)})


def finish_writing(round_: dict, now: datetime) -> Changed:
    """Every invitation written: the round opens (announced per estate; its invitations are
    issued next) or waits for opens_at."""
    if round_["status"] != "creating":
        raise InvalidTransition("survey round", round_["_id"], round_["status"], "activate")
    progress = dict(round_["progress"],
                    done=round_["progress"]["issued_batches"] >= round_["progress"]["batches"])
    round_ = dict(round_, status="scheduled", progress=progress)
    if now < round_["opens_at"]:
        return round_, []
    return open_round(round_, now)


def issue_batch(round_: dict, invitations: Iterable[dict], now: datetime,
                ) -> tuple[dict, list[Envelope], dict]:
    """A written batch of the round's invitations (``batch_key``): the changes that send
    those still pending (the same for each: they all expire when the round closes), the
    ``survey_invitation_issued`` of every invitation the batch sends — now, or in a run
    that died before its events were kept (ids derived from the invitation: the same
    whoever builds them) — and the round with its progress past the batch."""
    changes = {"status": "issued", "issued_at": now, "next_reminder_at": _next_reminder(
        round_, {"expires_at": round_["closes_at"]}, now, 0)}
    sent = [invitation for invitation in invitations
            if invitation["status"] == "pending" or invitation["issued_at"] is not None]
    events: list[Envelope] = []
    for estate_id in dict.fromkeys(invitation["estate_id"] for invitation in sent):
        of_estate = [invitation for invitation in sent if invitation["estate_id"] == estate_id]
        events += new_events("survey_invitation_issued", SOURCE, estate_id,
                             [_issued(round_, invitation) for invitation in of_estate], now,
                             keys=[invitation["_id"] for invitation in of_estate])
    progress = dict(round_["progress"])
    progress.update(issued=progress["issued"] + len(sent),
                    issued_batches=progress["issued_batches"] + 1)
    progress["done"] = progress["issued_batches"] >= progress["batches"]
    return changes, events, dict(round_, progress=progress)


def issue(round_: dict, invitation: dict, now: datetime) -> tuple[dict, list[Envelope]]:
    """The changes that send a pending invitation, and its ``survey_invitation_issued``."""
    changes = {"status": "issued", "issued_at": now,
               "next_reminder_at": _next_reminder(round_, invitation, now, 0)}
    event = new_event("survey_invitation_issued", SOURCE, invitation["estate_id"],
                      _issued(round_, invitation), now,
                      key=invitation["_id"])   # an invitation is issued once
    return changes, [event]


def _issued(round_: dict, invitation: dict) -> dict:
    return {"invitation_id": invitation["_id"],
            **{key: invitation[key]
               for key in ("round_id", "household_id", "token", "expires_at")},
            "title": round_["title"]}


def remind(round_: dict, invitation: dict, now: datetime) -> tuple[dict, list[Envelope]]:
    """The changes of the next reminder to a household that has not answered, and its event."""
    number = invitation.get("reminders_sent", 0) + 1
    changes = {"reminders_sent": number, "last_reminded_at": now,
               "next_reminder_at": _next_reminder(round_, invitation, now, number)}
    event = new_event("survey_reminder_due", SOURCE, invitation["estate_id"], {
        "invitation_id": invitation["_id"],
        **{key: invitation[key] for key in ("round_id", "household_id", "token", "expires_at")},
        "reminder_no": number,
        "title": round_["title"],
    }, now, key=f"{invitation['_id']}/{number}")   # the n-th reminder, once
    return changes, [event]


def _next_reminder(round_: dict, invitation: dict, now: datetime, sent: int) -> datetime | None:
    settings = round_["reminders"]
    if sent >= settings["max"]:
        return None
    due = now + timedelta(days=settings["interval_days"])
    return due if due < invitation["expires_at"] else None
