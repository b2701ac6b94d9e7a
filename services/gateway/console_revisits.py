"""The console's revisits (回访): the worklist, a revisit's page and its two forms.

* ``/console/revisits/``: the open revisits of the user's estates due today or overdue,
  those booked on site, and those due within the week — each part the revisit API's list
  (``status``, ``due_before``) — for the revisits assigned to the user's rung (staff call,
  supervisors and managers go on site: the ``assigned_role`` the policy set), another
  rung or all of them on request. With ``part``: one part, a page at a time. Beside it the
  month's sampling of work orders per kind (required vs revisited), the revisit
  statistics of each of the user's estates, for whoever may read them.
* ``/console/revisits/{id}``: what the revisit follows (the complaint, the work order),
  its attempts and outcome (the owner's signature drawn on the screen shown as the image
  kept with it), and while it is open the forms to book an on-site visit (the owner's
  consent, a time outside the quiet hours — the revisit service refuses the rest, said on
  the page by the field) and to record the outcome. On site the owner signs on the screen
  (``static/signature.js`` fills ``signature_png``); without JavaScript the typed name
  ``signed_by`` is the signature. A visit that could not answer the owner at once
  promised a reply by a time (「不能当即答复，应告知预约时间答复」): until it is given, the
  page has a form to record it (``POST /revisits/{id}/reply``), marked overdue once the
  time is past. The revisit list cannot be asked for the replies due (it has no such
  filter), so the worklist has no part of them.
* As for complaints (``console.py``): every read and action is an operation of
  ``api.OPERATIONS``, each form with its own request key and the state its page showed.
"""
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from urllib.parse import quote, urlencode

from werkzeug.wrappers import Response

from services.gateway import console, console_followups
from services.gateway.console import (
    EXPECTED_STATUS,
    PAGE_SIZE,
    ZONE,
    ConsoleContext,
    Refusal,
    local_moment,
    parted_worklist,
    signed_in,
    time_left,
)
from services.gateway.problems import Problem
from shared.schemas.vocabulary import (
    REVISIT_METHODS,
    ROLES,
    SATISFACTION_LEVELS,
    USER_ROLE_RUNGS,
    WORK_ORDER_KINDS,
)

HOME = "/console/revisits/"
OPEN = ("scheduled", "booked", "overdue")
UPCOMING_DAYS = 7                 # the worklist's last part: due within the week
SAMPLING_ESTATES = 10             # sampling figures shown for at most this many estates
ALL_ROLES = "all"
SIGNATURE_PREFIX = "data:image/png;base64,"


@dataclass(frozen=True)
class Part:
    """A part of the worklist: the revisit list's filters, and how many days after today
    (local) its revisits fall due at the latest (None: whenever) — by their visit's due
    time, or (``replies``) by the reply promised to the owner and not yet given."""
    name: str
    status: str | None
    days: int | None = None
    replies: bool = False


PARTS = (Part("overdue", "overdue"), Part("today", "scheduled", 0), Part("booked", "booked"),
         Part("upcoming", "scheduled", UPCOMING_DAYS),
         Part("replies", None, UPCOMING_DAYS, replies=True))


def end_of_local_day(now: datetime, days_after: int = 0) -> datetime:
    """Midnight (the service centre's) ending the day ``days_after`` days after today."""
    day = now.astimezone(ZONE).date() + timedelta(days=days_after + 1)
    return datetime.combine(day, time(), ZONE)


def rung_of(roles) -> str | None:
    """The revisit rung (``assigned_role``) of the user's first role that has one."""
    return next((USER_ROLE_RUNGS[role] for role in roles if USER_ROLE_RUNGS.get(role) in ROLES),
                None)


def revisit_url(revisit_id: str, **query) -> str:
    url = f"{HOME}{quote(revisit_id, safe='')}"
    return f"{url}?{urlencode(query)}" if query else url


# the worklist ------------------------------------------------------------------------------

@signed_in
def worklist(ctx: ConsoleContext) -> Response:
    args = ctx.request.args
    role = args.get("role") or rung_of(ctx.actor.roles) or ALL_ROLES
    filters = {"role": role}
    if args.get("estate_id"):
        filters["estate_id"] = args["estate_id"]
    query = {key: value for key, value in (("estate_id", filters.get("estate_id")),
                                            ("assigned_role", role)) if value and value != ALL_ROLES}
    return parted_worklist(
        ctx, "console/revisits.html", home=HOME, parts=PARTS, filters=filters,
        rows=lambda part, cursor: _rows(ctx, part, query, cursor),
        reset_notice="console_rv_reset", roles=ROLES, all_roles=ALL_ROLES,
        sampling=sampling_status(ctx, filters), revisit_url=revisit_url)


def _rows(ctx: ConsoleContext, part: Part, query: dict, cursor: str | None = None):
    """A part's revisits (with the time left to each one's due time) and the next cursor."""
    asked = {**query, "limit": str(PAGE_SIZE), **({"status": part.status} if part.status else {})}
    if part.days is not None:
        until = end_of_local_day(ctx.now, part.days).isoformat()
        asked["reply_due_before" if part.replies else "due_before"] = until
    if cursor:
        asked["cursor"] = cursor
    page = ctx.call("GET", "/revisits", asked)
    due = "promised_reply_at" if part.replies else "due_at"
    return ([(revisit, time_left(revisit.get(due), ctx.now)) for revisit in page["items"]],
            page["next_cursor"])


def sampling_status(ctx: ConsoleContext, filters: dict) -> list[tuple[str, dict]]:
    """This month's work-order sampling of each of the user's estates (or the one chosen):
    per kind the orders, what the quota requires and how many were revisited — the rows
    of ``revisit_stats`` for those estates, in one call (``?estate_ids=``) — for those who
    may read an estate's statistics."""
    if not ctx.may("GET", "/stats/revisits"):
        return []
    chosen = filters.get("estate_id")
    estates = [chosen] if chosen else ([] if ctx.actor.group_wide else
                                       list(ctx.actor.estates[:SAMPLING_ESTATES]))
    if not estates:
        return []
    month = ctx.now.astimezone(ZONE).strftime("%Y-%m")
    try:
        rows = ctx.call("GET", "/stats/revisits", {"estate_ids": estates, "period": month})
    except Problem as problem:
        if problem.status not in (403, 404, 422):
            raise
        return []                  # an estate chosen that is not theirs
    found = []
    for estate in estates:     # in the user's order; one intake does not know has no row
        figures = rows["estates"].get(estate)
        if figures is not None:
            found.append((estate, {"month": month, "kinds": {
                kind: figures["kinds"][kind] for kind in WORK_ORDER_KINDS
                if "required" in figures["kinds"].get(kind, {})}}))
    return found


# a revisit's page ----------------------------------------------------------------------------

BOOK_FIELDS = ("at", "owner_consent")
RECORD_FIELDS = ("method", "reached", "satisfaction", "resolved", "comments", "signed_by",
                 "signature_png", "promised_reply_at")
REPLY_FIELDS = ("reply", "replied_at")
FORMS = {"book": BOOK_FIELDS, "record": RECORD_FIELDS, "reply": REPLY_FIELDS}
DONE = ("book", "record", "reply")


@signed_in
def revisit_page(ctx: ConsoleContext, revisit_id: str) -> Response:
    revisit = _revisit(ctx, revisit_id)
    done = ctx.request.args.get("done")
    return _view(ctx, revisit, done=done if done in DONE else None)


@signed_in
def act(ctx: ConsoleContext, revisit_id: str, action: str) -> Response:
    if action not in FORMS:
        raise Problem(404, "no such action")
    values = {name: ctx.request.form.get(name, "") for name in FORMS[action]}
    body = {"book": book_body, "record": record_body, "reply": reply_body}[action](values)
    return ctx.act(
        lambda: ctx.send("POST", f"/revisits/{revisit_id}/{action}", body,
                         expected=EXPECTED_STATUS),
        form=action, values=values,
        again=lambda refusal: _view(ctx, _revisit(ctx, revisit_id), refusal=refusal),
        done=lambda _: revisit_url(revisit_id, done=action))


def book_body(values: dict) -> dict:
    """The API body of the booking form: the time as the moment it names locally, the
    consent box as true or false (the service refuses a visit without it)."""
    body = {"owner_consent": values.get("owner_consent") == "true"}
    if values.get("at", "").strip():
        body["at"] = local_moment(values["at"])
    return body


def record_body(values: dict) -> dict:
    """The API body of the outcome form: yes/no as true/false ("don't know" left out),
    blank fields left out, the signature's data URL as its base64 PNG."""
    body: dict = {"comments": values.get("comments", "")}
    for name in ("method", "satisfaction", "signed_by"):
        if values.get(name, "").strip():
            body[name] = values[name].strip()
    for name in ("reached", "resolved"):
        if values.get(name) in ("true", "false"):
            body[name] = values[name] == "true"
    if values.get("promised_reply_at", "").strip():
        body["promised_reply_at"] = local_moment(values["promised_reply_at"])
    signature = values.get("signature_png", "").strip()
    if signature:
        body["signature_png"] = signature.removeprefix(SIGNATURE_PREFIX)
    if body.get("reached") is False:
        body.pop("satisfaction", None)   # nobody answered: nobody was satisfied or not
    return body


def reply_body(values: dict) -> dict:
    """The API body of the promised reply's form: when it was given, if not now."""
    body = {"reply": values.get("reply", "")}
    if values.get("replied_at", "").strip():
        body["replied_at"] = local_moment(values["replied_at"])
    return body


def awaits_reply(revisit: dict) -> bool:
    """Did the visit promise the owner a reply not given yet?"""
    return bool(revisit.get("promised_reply_at")) and not revisit.get("reply_given_at")


def _revisit(ctx: ConsoleContext, revisit_id: str) -> dict:
    try:
        return ctx.call("GET", f"/revisits/{revisit_id}")
    except Problem as problem:
        if problem.status == 422:      # not even an id: unknown, like any other
            raise Problem(404, "no such revisit") from None
        raise


def _view(ctx: ConsoleContext, revisit: dict, done: str | None = None,
          refusal: Refusal | None = None) -> Response:
    path = f"/revisits/{revisit['id']}"
    is_open = revisit["status"] in OPEN
    # an on-site visit is booked before it is made; any other, recorded first
    order = ("book", "record") if revisit.get("method") == "onsite" and \
        revisit["status"] != "booked" else ("record", "book")
    forms = [name for name in order if is_open and ctx.may("POST", f"{path}/{name}")
             and (name != "book" or revisit.get("household_id"))]
    if awaits_reply(revisit) and ctx.may("POST", f"{path}/reply"):
        forms.append("reply")
    ctx.name_estates([revisit["estate_id"]])
    return ctx.render(
        "console/revisit.html", refusal=refusal, revisit=revisit, forms=forms, done=done,
        left=time_left(revisit.get("due_at"), ctx.now) if is_open else None,
        reply_left=time_left(revisit["promised_reply_at"], ctx.now)
        if awaits_reply(revisit) else None,
        household=console.household_of(ctx, revisit.get("household_id")),
        work_order=_work_order(ctx, revisit), followup=console_followups.followup_of(ctx, revisit),
        names=console.staff_names(ctx, [
            {"by": attempt.get("visitor_id")} for attempt in revisit.get("attempts", ())]),
        methods=REVISIT_METHODS, levels=SATISFACTION_LEVELS, signature_prefix=SIGNATURE_PREFIX,
        action_url=lambda action: f"{revisit_url(revisit['id'])}/{action}")


def _work_order(ctx: ConsoleContext, revisit: dict) -> dict | None:
    """The work order a work-order revisit follows, if this person may read it."""
    if revisit["kind"] not in WORK_ORDER_KINDS:
        return None
    path = f"/work-orders/{revisit['source_id']}"
    if not ctx.may("GET", path):
        return None
    try:
        return ctx.call("GET", path)
    except Problem as problem:
        if problem.status in (403, 404, 422):
            return None
        raise

