"""Follow-up visits (回访): scheduled from closed complaints, completed work orders and the
routine plan; booked, recorded, watched for lateness. Pure Python.

「所有投诉应100%进行回访」 — every closing of a complaint gets one revisit. When each visit
is due and who makes it is the estate's policy (``policies``); which work orders are
revisited is decided in ``sampling``.

A revisit is announced (``revisit_scheduled``) once its window opens: at once for most,
at the start of its month for a routine visit, at mid-contract for a special service.
Where the policy allows it the owner may answer it online (「回访可以通过电话、邮件、短信、
在线调查等方式进行」): the announcement carries a link (its token), and the owner's answer
is recorded as a call would be, with method ``online`` (``record_online``).
"""
import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from services.revisit.policies import RevisitPolicy, Visit, zone
from services.revisit.sampling import month_of
from shared.envelope import Changed, Envelope, record_event
from shared.errors import InvalidInput, InvalidTransition
from shared.expected_state import already_done
from shared.links import new_token
from shared.quiet_hours import contains as quiet_hours_contain
from shared.schemas.vocabulary import ONLINE_METHOD, REVISIT_STATUSES, UNSATISFIED_LEVELS

SOURCE = "revisit"
OPEN = ("scheduled", "booked", "overdue")
RECORDABLE = frozenset(OPEN)
BOOKABLE = frozenset(OPEN)       # a booked visit may be moved to another time


def new_revisit(revisit_id: str, estate_id: str, kind: str, source_id: str,
                household_id: str | None, visit: Visit, source_at: datetime, now: datetime,
                **details: Any) -> dict:
    """A scheduled revisit for ``visit`` (a ``policies.Visit``), not yet announced."""
    return {
        "_id": revisit_id,
        "estate_id": estate_id,
        "kind": kind,
        "source_id": source_id,
        "household_id": household_id,
        "stage": visit.stage,
        "source_at": source_at,        # the closing, completion or planned month it follows
        "not_before": visit.not_before,
        "due_at": visit.due_at,
        "status": "scheduled",
        "assigned_role": visit.assigned_role,
        "method": visit.method,
        "announced": False,
        "attempts": [],
        "tries": 0,
        "outcome": None,
        "appointment_at": None,
        "overdue_at": None,
        "promised_reply_at": None,
        "reply_given_at": None,
        "reply_overdue_at": None,
        "created_at": now,
        "completed_at": None,
        **details,
    }


def schedule(revisit: dict, policy: RevisitPolicy, now: datetime,
             token: Callable[[], str] = new_token) -> Changed:
    """The revisit and, if its window has opened, its ``revisit_scheduled`` event
    (otherwise the timer announces it when the window opens, see ``announce``).

    Where the policy lets the owner answer online, the revisit gets its link's token now:
    the announcement, whenever it goes, carries it.
    """
    # the month its statistics count it in, in the estate's time zone (``stats``), and
    # the month's plan it is listed in (``plans.monthly_plan``)
    revisit = dict(revisit, stats_month=month_of(revisit["source_at"], policy.timezone),
                   plan_month=plan_month(revisit, policy))
    if policy.answerable_online(revisit):
        # set only when minted: the unique index is sparse, and would count None as a value
        revisit = dict(revisit, online_token=token())
    if revisit["not_before"] > now:
        return revisit, []
    revisit = dict(revisit, announced=True)
    return revisit, [_scheduled_event(revisit, now)]


# -- complaints ------------------------------------------------------------------------

def complaint_revisit_id(complaint_id: str, closing_no: int) -> str:
    """One revisit per closing: redelivered events map to the same revisit."""
    return f"rv-{complaint_id}-{closing_no}"


def schedule_complaint_revisit(closed: dict, estate_id: str, policy: RevisitPolicy,
                               now: datetime, key_customer: bool = False) -> Changed:
    """The revisit owed for a ``complaint_closed`` payload, and its event.

    「客服组负责人或项目经理对重大投诉进行回访,一般采取上门回访方式」: major complaints
    go to a supervisor (or the manager, per policy), on site; the rest to staff by phone.
    """
    revisit = new_revisit(
        complaint_revisit_id(closed["complaint_id"], closed["closing_no"]), estate_id,
        "complaint", closed["complaint_id"], closed["household_id"],
        policy.for_household(policy.complaint_visit(closed), key_customer),
        closed["closed_at"], now, category=closed["category"], severity=closed["severity"],
        closing_no=closed["closing_no"], key_customer=key_customer)
    return schedule(revisit, policy, now)


def superseded_by_reopening(revisit: dict, reopened: dict) -> bool:
    """An open revisit of a closing the complaint was reopened after: nobody should ask the
    owner about an answer that is being reworked; the next closing brings its own."""
    return (revisit["kind"] == "complaint" and revisit["status"] in OPEN
            and revisit["source_id"] == reopened["complaint_id"]
            and revisit["closing_no"] <= reopened["reopen_no"])


def cancel(revisit: dict, reason: str, now: datetime) -> dict:
    if revisit["status"] not in OPEN:
        raise InvalidTransition("revisit", revisit["_id"], revisit["status"], "cancel")
    return dict(revisit, status="cancelled", cancelled_at=now, cancel_reason=reason)


# -- work orders -----------------------------------------------------------------------

def work_order_revisit_id(work_order_id: str, stage: str, number: int = 1) -> str:
    suffix = f"{stage}-{number}" if stage == "observation" else stage
    return f"rv-{work_order_id}-{suffix}"


def schedule_work_order_revisits(order: dict, estate_id: str, reason: str,
                                 policy: RevisitPolicy, now: datetime,
                                 decided_at: datetime | None = None,
                                 key_customer: bool = False) -> list[Changed]:
    """The revisits (with their events) of a work order selected for follow-up.

    ``order`` is a ``work_order_completed`` payload; ``reason`` why it was selected
    (``sampling.Decision.reason``, or ``top_up``).
    """
    scheduled: list[Changed] = []
    for visit in policy.work_order_visits(order, decided_at):
        scheduled.append(schedule(new_revisit(
            work_order_revisit_id(order["work_order_id"], visit.stage), estate_id,
            order["kind"], order["work_order_id"], order["household_id"],
            policy.for_household(visit, key_customer), order["completed_at"], now,
            reason=reason, important=bool(order.get("important")), key_customer=key_customer,
            observation_no=1 if visit.stage == "observation" else None), policy, now))
    return scheduled


def next_observation(revisit: dict, policy: RevisitPolicy, now: datetime) -> Changed | None:
    """「应随时观察效果,专人定期仔细检查」: an important repair is observed again until an
    observation confirms it holds (``resolved``); None once confirmed or at the limit."""
    if revisit.get("stage") != "observation" or revisit["status"] != "done":
        return None
    if (revisit["outcome"] or {}).get("resolved") is True:
        return None
    number = revisit["observation_no"] + 1
    visit = policy.observation(number, now)
    if visit is None:
        return None
    visit = policy.for_household(visit, revisit.get("key_customer", False))
    follow_up = new_revisit(
        work_order_revisit_id(revisit["source_id"], "observation", number), revisit["estate_id"],
        revisit["kind"], revisit["source_id"], revisit["household_id"], visit,
        revisit["source_at"], now, reason=revisit["reason"], important=True,
        observation_no=number, key_customer=revisit.get("key_customer", False))
    return schedule(follow_up, policy, now)


# -- routine visits ----------------------------------------------------------------------

def routine_revisit_id(year: int, household_id: str, number: int = 1) -> str:
    base = f"rv-routine-{year}-{household_id}"
    return base if number == 1 else f"{base}-{number}"


def plan_routine(estate_id: str, year: int, households: Iterable[dict], planned: list[dict],
                 policy: RevisitPolicy, now: datetime,
                 ) -> tuple[list[Changed], list[str], dict]:
    """Fit every occupied household into one month of ``year`` (「年回访率100%」).

    ``households`` are the occupied ones (intake's ``list_households``), ``planned`` the
    routine revisits of that year already made. Households keep their month; new ones go
    to the open months (this month on) with the fewest visits, neighbours together, so
    the months stay even and the year reaches every occupied household. Households no
    longer occupied lose their open visit. Returns (new revisits with their events, ids to
    cancel, summary).
    """
    today = now.astimezone(zone(policy.timezone)).date()
    if year < today.year:
        raise InvalidInput({"year": [f"{year} is over"]})
    first_open = today.month if year == today.year else 1
    open_months = list(range(first_open, 13))
    occupied = {household["id"]: household for household in households}
    active = {revisit["household_id"]: revisit for revisit in planned
              if revisit["status"] != "cancelled"}
    to_cancel = [revisit["_id"] for household_id, revisit in active.items()
                 if household_id not in occupied and revisit["status"] in OPEN]
    kept = {household_id: revisit for household_id, revisit in active.items()
            if household_id in occupied or revisit["status"] not in OPEN}
    newcomers = sorted((household for household_id, household in occupied.items()
                        if household_id not in kept), key=_address_order)

    added = _spread(len(newcomers), [revisit["month"] for revisit in kept.values()],
                    open_months)
    earlier = Counter(revisit["household_id"] for revisit in planned)
    scheduled: list[Changed] = []
    queue = iter(newcomers)
    for month in open_months:
        visit = policy.routine_visit(year, month)
        for _ in range(added[month]):
            household = next(queue)
            number = earlier.get(household["id"], 0) + 1
            key_customer = bool(household.get("key_customer"))
            scheduled.append(schedule(new_revisit(
                routine_revisit_id(year, household["id"], number), estate_id, "routine",
                household["id"], household["id"], policy.for_household(visit, key_customer),
                visit.not_before, now, year=year, month=month, key_customer=key_customer,
                building=household.get("building"), unit=household.get("unit"),
                room=household.get("room")), policy, now))

    by_month = _visits_by_month(year, [*kept.values(), *(revisit for revisit, _ in scheduled)],
                                occupied)
    summary = {
        "estate_id": estate_id, "year": year,
        "households": len(occupied),
        "planned": sum(by_month.values()),
        "added": len(scheduled),
        "cancelled": len(to_cancel),
        "by_month": by_month,
    }
    return scheduled, to_cancel, summary


def _spread(newcomers: int, kept_months: list[int], open_months: list[int]) -> dict[int, int]:
    """How many of ``newcomers`` each open month takes: each goes to the month with the
    fewest visits (the earliest of equals), so the months stay even."""
    load = {month: 0 for month in open_months}
    for month in kept_months:
        if month in load:
            load[month] += 1
    added = dict.fromkeys(open_months, 0)
    for _ in range(newcomers):
        month = min(open_months, key=lambda m: (load[m], m))
        load[month] += 1
        added[month] += 1
    return added


def _visits_by_month(year: int, revisits: list[dict], occupied: dict) -> dict[str, int]:
    """{"YYYY-MM": visits} of the year's twelve months, households still occupied only."""
    by_month = {f"{year:04d}-{month:02d}": 0 for month in range(1, 13)}
    for revisit in revisits:
        if revisit["household_id"] in occupied:
            by_month[f"{year:04d}-{revisit['month']:02d}"] += 1
    return by_month


def plan_month(revisit: dict, policy: RevisitPolicy) -> str:
    """The month's plan (「每月应制定回访计划」) a revisit is listed in: a routine visit's
    planned month, any other's due month, in the estate's time zone."""
    if revisit["kind"] == "routine":
        return f"{revisit['year']:04d}-{revisit['month']:02d}"
    return month_of(revisit["due_at"], policy.timezone)


def _address_order(household: dict) -> list[tuple[int, int, str]]:
    """Building, unit, room in natural order (2 before 10), so a month visits neighbours."""
    return [_natural(household.get(part) or "") for part in ("building", "unit", "room")] + [
        household["id"]]


def _natural(text: str) -> list[tuple[int, int, str]]:
    return [(0, int(piece), "") if piece.isdigit() else (1, 0, piece)
            for piece in re.findall(r"\d+|\D+", str(text))]


# -- appointments ------------------------------------------------------------------------

def book(revisit: dict, appointment: dict, policy: RevisitPolicy, now: datetime,
         booked_by: str | None = None, expected_status: str | None = None) -> Changed | None:
    """An on-site appointment the owner agreed to (consent checked by the input schema).

    「采取上门回访的应提前与业主进行预约,获得同意后方可上门,并不能影响业主的正常生活」:
    in the future and outside the owner's quiet hours (theirs if they gave them, else the
    estate's). ``booked_by``: the person who booked it (the gateway), else None. None when
    ``expected_status`` shows this very booking was made already (a retry).
    """
    last = (revisit.get("booked_by"), "book") if revisit["status"] == "booked" else None
    if already_done("revisit", revisit["_id"], "book", revisit["status"], expected_status,
                    REVISIT_STATUSES, leads_to="booked", last=last, this=(booked_by, "book")):
        return None
    if revisit["status"] not in BOOKABLE:
        raise InvalidTransition("revisit", revisit["_id"], revisit["status"], "book")
    if revisit["household_id"] is None:
        raise InvalidInput({"id": ["this revisit has no household to visit"]})
    at = appointment["at"]
    if at <= now:
        raise InvalidInput({"at": ["must be in the future"]})
    quiet_hours = appointment.get("quiet_hours") or policy.quiet_hours
    clash = quiet_hours_at(at, quiet_hours, policy.timezone)
    if clash:
        local = at.astimezone(zone(policy.timezone)).strftime("%H:%M")
        raise InvalidInput({"at": [
            f"{local} ({policy.timezone}) is in the owner's quiet hours {clash}"]})
    # booked_by always written: None says a service moved it, not whoever booked it before
    revisit = dict(revisit, status="booked", method="onsite", appointment_at=at,
                   owner_quiet_hours=list(appointment.get("quiet_hours") or []),
                   booked_by=booked_by)
    return revisit, [_event("revisit_booked", revisit, {
        "household_id": revisit["household_id"], "at": at, "method": "onsite",
    }, now)]


def quiet_hours_at(moment: datetime, quiet_hours: Iterable[str], zone_name: str) -> str | None:
    """The quiet-hours range ("22:00-08:00", local) ``moment`` falls in, or None."""
    clock = moment.astimezone(zone(zone_name)).time().replace(tzinfo=None)
    return next((hours for hours in quiet_hours if quiet_hours_contain(hours, clock)), None)


# -- outcomes ----------------------------------------------------------------------------

def record(revisit: dict, outcome: dict, policy: RevisitPolicy, now: datetime,
           expected_status: str | None = None) -> Changed | None:
    """Record one contact attempt; the changed revisit and its events, or None when
    ``expected_status`` shows this visitor's record already made it ``done`` (a retry).

    Not reached: the revisit stays open for another try, at another time or on another
    channel, until ``max_attempts`` tries. A question left open gets a promised reply
    time, kept and watched:
    「回访中对于业主的询问、建议如不能及时答复,应及时上报公司领导并应告知回复时间」
    Unsatisfied or unresolved: ``revisit_unsatisfied`` (for a complaint, intake reopens it).
    """
    last = (revisit["outcome"] or {}).get("visitor_id", "") if revisit["status"] == "done" else ""
    if already_done("revisit", revisit["_id"], "record", revisit["status"], expected_status,
                    REVISIT_STATUSES, leads_to="done", last=(last, "record"),
                    this=(outcome["visitor_id"], "record")):
        return None
    if revisit["status"] not in RECORDABLE:
        raise InvalidTransition("revisit", revisit["_id"], revisit["status"], "record")
    if outcome["method"] == "onsite" and revisit.get("appointment_at") is None:
        # 「采取上门回访的应提前与业主进行预约,获得同意后方可上门」
        raise InvalidInput({"method": [
            "an on-site visit needs an appointment the owner agreed to (book_appointment)"]})
    if outcome["method"] == "onsite" and now < visit_opens(revisit, policy):
        raise InvalidInput({"method": [(
            f"the on-site visit is booked for {revisit['appointment_at'].isoformat()}; it can "
            f"be recorded from {policy.onsite_early_minutes} minutes before, not earlier")]})
    promised = outcome.get("promised_reply_at")
    if promised is not None and promised <= now:
        raise InvalidInput({"promised_reply_at": ["must be in the future"]})
    attempt = dict(outcome, at=now)
    new_try = is_new_try(revisit["attempts"], attempt, policy.retry_gap())
    revisit = dict(revisit, attempts=revisit["attempts"] + [attempt],
                   tries=revisit.get("tries", 0) + (1 if new_try else 0))
    if promised is not None:
        revisit["promised_reply_at"] = promised
    if not outcome["reached"]:
        if revisit["tries"] < policy.max_attempts:
            revisit["next_try_after"] = now + policy.retry_gap()
            return revisit, []
        revisit.update(status="done", outcome=dict(attempt, unreachable=True), completed_at=now)
    else:
        revisit.update(status="done", outcome=attempt, completed_at=now)
    # a revisit is done once: its id names the change
    events = [_event("revisit_completed", revisit, {
        "kind": revisit["kind"], "source_id": revisit["source_id"],
        "reached": outcome["reached"], "satisfaction": outcome["satisfaction"],
        "resolved": outcome["resolved"], "completed_at": now, "method": outcome["method"],
        "visitor_id": outcome["visitor_id"], "comments": outcome["comments"],
    }, now, key=revisit["_id"])]
    if is_unsatisfied(outcome):
        events.append(_event("revisit_unsatisfied", revisit, {
            "kind": revisit["kind"], "source_id": revisit["source_id"],
            "satisfaction": outcome["satisfaction"], "resolved": outcome["resolved"],
            "comments": outcome["comments"],
        }, now, key=revisit["_id"]))
    return revisit, events


def visit_opens(revisit: dict, policy: RevisitPolicy) -> datetime:
    """The earliest an on-site visit booked for ``revisit`` can be recorded as made."""
    return revisit["appointment_at"] - timedelta(minutes=policy.onsite_early_minutes)


def is_new_try(attempts: list[dict], attempt: dict, gap: timedelta) -> bool:
    """An unanswered call right after another on the same channel is the same try: the
    owner is tried again at another time or on another channel."""
    return not any(
        not earlier["reached"] and earlier["method"] == attempt["method"]
        and attempt["at"] - earlier["at"] < gap
        for earlier in attempts)


def is_unsatisfied(outcome: dict) -> bool:
    return outcome["reached"] and (
        outcome["satisfaction"] in UNSATISFIED_LEVELS or outcome["resolved"] is False
    )


def record_reply(revisit: dict, reply: dict, now: datetime) -> dict:
    """The answer promised during a visit was given."""
    if revisit.get("promised_reply_at") is None:
        raise InvalidTransition("revisit", revisit["_id"], "not awaiting a reply", "record a reply")
    if revisit.get("reply_given_at") is not None:
        raise InvalidTransition("revisit", revisit["_id"], "already answered", "record a reply")
    return dict(revisit, reply_given_at=reply.get("replied_at") or now,
                reply={"staff_id": reply["staff_id"], "text": reply["reply"]})


# -- answered online by the owner -------------------------------------------------------
# The link's token is the owner's credential: what it shows says nothing about staff, and
# it takes one answer while the revisit is open, until ``policy.online_until``.

UNKNOWN_LINK = "unknown link"
LINK_REFUSALS = {
    "answered": "this revisit has already been answered",
    "closed": "this revisit was made or cancelled: the link takes no answer",
    "expired": "this link has expired",
}


def refuse_link(reason: str) -> InvalidInput:
    return InvalidInput({"token": [reason]})


def link_sent(revisit: dict) -> bool:
    """Whether the owner can hold the link: it went out with the announcement."""
    return bool(revisit.get("online_token")) and revisit.get("announced", False)


def online_state(revisit: dict, policy: RevisitPolicy, now: datetime) -> str:
    """Where the link stands: ``open`` to answer, ``answered`` (by the owner, online),
    ``closed`` (made by staff, or cancelled) or ``expired``."""
    if revisit["status"] == "done":
        answered = (revisit["outcome"] or {}).get("method") == ONLINE_METHOD
        return "answered" if answered else "closed"
    if revisit["status"] not in OPEN:
        return "closed"
    return "open" if now < policy.online_until(revisit) else "expired"


def online_view(revisit: dict, policy: RevisitPolicy, now: datetime) -> dict:
    """What the owner sees: what the revisit is about, until when, whether it still takes
    an answer; for a complaint its number and category. Nothing about staff."""
    view = {"kind": revisit["kind"], "due_at": revisit["due_at"],
            "expires_at": policy.online_until(revisit), "timezone": policy.timezone,
            "state": online_state(revisit, policy, now)}
    if revisit["kind"] == "complaint":
        view.update(complaint_id=revisit["source_id"], category=revisit.get("category"))
    if view["state"] == "answered":
        view["answered_at"] = revisit["completed_at"]
    return view


def online_outcome(answer: dict) -> dict:
    """The owner's answer as the record a call makes (``record_revisit``'s input): reached,
    by the owner themselves (no staff), method ``online``."""
    return {"visitor_id": None, "method": ONLINE_METHOD, "reached": True,
            "satisfaction": answer["satisfaction"], "resolved": answer["resolved"],
            "comments": answer["comments"], "signed_by": None, "signature_png": None,
            "promised_reply_at": None}


def record_online(revisit: dict, answer: dict, policy: RevisitPolicy,
                  now: datetime) -> Changed | None:
    """Record the owner's answer as ``record`` records a call: the same events, so an
    unsatisfied or unresolved answer reopens the complaint. Once only."""
    state = online_state(revisit, policy, now)
    if state != "open":
        raise refuse_link(LINK_REFUSALS[state])
    return record(revisit, online_outcome(answer), policy, now)


def staff_view(revisit: dict) -> dict:
    """A revisit as staff read it: whether the owner may answer it online, not the token
    (with it anyone could answer in the owner's name)."""
    view = {key: value for key, value in revisit.items() if key != "online_token"}
    view["online"] = bool(revisit.get("online_token"))
    return view


def listed_view(revisit: dict) -> dict:
    """A revisit as a list shows it: ``staff_view`` without the signatures' images (each
    attempt says ``signed`` instead); ``get_revisit`` gives them."""
    view = staff_view(revisit)
    view["attempts"] = [_unsigned(attempt) for attempt in view.get("attempts") or []]
    if view.get("outcome"):
        view["outcome"] = _unsigned(view["outcome"])
    return view


def _unsigned(attempt: dict) -> dict:
    unsigned = {key: value for key, value in attempt.items() if key != "signature_png"}
    unsigned["signed"] = bool(attempt.get("signature_png"))
    return unsigned


# -- the timer ---------------------------------------------------------------------------
# Each gives the change and its events; the repository applies them only while the
# revisit still needs them, so of several instances exactly one does it, once.

def announce(revisit: dict, now: datetime) -> Changed:
    """The window of a revisit planned ahead has opened: tell the owner and the staff."""
    return {"announced": True}, [_scheduled_event(revisit, now)]


def mark_overdue(revisit: dict, now: datetime) -> Changed:
    return {"status": "overdue", "overdue_at": now}, [_event("revisit_overdue", revisit, {
        "kind": revisit["kind"], "source_id": revisit["source_id"],
        "due_at": revisit["due_at"], "deadline": "revisit"}, now, key=f"{revisit['_id']}/revisit")]


def mark_reply_overdue(revisit: dict, now: datetime) -> Changed:
    """The reply promised during the visit was not given in time."""
    promised = revisit["promised_reply_at"]
    return {"reply_overdue_at": now}, [_event("revisit_overdue", revisit, {
        "kind": revisit["kind"], "source_id": revisit["source_id"],
        "due_at": promised, "deadline": "promised_reply"}, now,
        key=f"{revisit['_id']}/promised_reply/{promised.isoformat()}")]


# -- helpers -------------------------------------------------------------------------------

def _scheduled_event(revisit: dict, now: datetime) -> Envelope:
    payload = {key: revisit[key] for key in ("kind", "source_id", "household_id", "due_at",
                                             "assigned_role", "method")}
    if revisit.get("online_token"):
        payload["token"] = revisit["online_token"]   # notify links the message to /r/<token>
    # announced once per revisit (at once, or by the timer): the same id however often built
    return _event("revisit_scheduled", revisit, payload, now, key=revisit["_id"])


def _event(event_type: str, revisit: dict, data: dict, now: datetime,
           key: str | None = None) -> Envelope:
    """``key``: the change the event announces, when it happens once (its id derives)."""
    return record_event(event_type, SOURCE, revisit, "revisit_id", data, now, key=key)

