"""The staff console (``/console/``): the pages a service centre works from.

* ``/console/login``: username and password, logged in by ``Accounts.login`` (its
  throttle included) into the browser session (``session``). Every other page needs the
  session and sends a person without one to the login page, then back (``next``: a
  console path of this site, nothing else). Every form that changes something carries
  the session's CSRF token, which ``Accounts.authenticate`` checks; ``/console/logout``
  revokes the token.
* ``/console/``: the worklist — the open complaints of the user's estates, the next
  deadline first (intake's ``order`` "due"), a page at a time, filtered by estate and
  status. ``/console/complaints/{id}``: a complaint's facts and history, and a form for
  each action its state allows now (intake's ``allowed_actions``) that the user's role
  permits. ``/console/complaints/new``: the front desk registers a complaint, then reads
  the apology to the owner. Each form carries a key of its own (the API's
  ``Idempotency-Key``: sent twice, it acts once) and an action form the state its page
  showed (``expected_status``: a complaint moved on meanwhile is a 409, said on the page).
  A complaint's page links its revisits; the revisit pages are ``console_revisits.py``,
  the headquarters dashboard ``console_dashboard.py``.
* No rule lives here. Every read and every action is an operation of the REST API
  (``api.OPERATIONS``) carried out in process by ``api.execute``: the same permission
  table, estate scope and actor in history as over HTTP. The console adds wording, times
  in the service centre's zone, and the clock time left to the deadline intake set.
"""
import functools
import json
import logging
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit
from zoneinfo import ZoneInfo

from werkzeug.test import EnvironBuilder
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from services.gateway import api, pages, session
from services.gateway.identity import TokenClaims
from services.gateway.permissions import confined_department, may_action
from services.gateway.problems import Problem, from_exception
from shared.actor import Actor
from shared.errors import InvalidInput
from shared.schemas.base import BLANK_TEXT
from shared.schemas.intake import COMPLAINT_STATUSES, MAX_HOUSEHOLDS_LISTED
from shared.schemas.vocabulary import (
    CHANNELS,
    COMPLAINT_CATEGORIES,
    EXTERNAL_STATUSES,
    OWNER_SIGNOFFS,
    REOPEN_SOURCES,
    REVIEW_OUTCOMES,
    SEVERITIES,
)

log = logging.getLogger(__name__)

HOME = "/console/"
LOGIN = "/console/login"
PAGE_SIZE = 20
ZONE = ZoneInfo(pages.DISPLAY_ZONE)   # as pages.local_time shows times
OPEN_STATUSES = tuple(status for status in COMPLAINT_STATUSES if status != "closed")
WORKLIST_FLAGS = ("overdue", "repeat", "malicious")   # the worklist's tick boxes
SOON_HOURS = 24                    # a deadline closer than this is marked on the worklist
# What each page's error shows, by the problem's status (anything else: "failed").
ERROR_KINDS = {403: "forbidden", 404: "not_found", 503: "unavailable", 504: "unavailable"}
# Each form carries a key of its own, sent as the API's Idempotency-Key: the same form
# posted twice (a double click, a resent page) registers or acts once, answering as the first.
REQUEST_KEY = "request_key"
IDEMPOTENCY_KEY = "Idempotency-Key"
# An action form carries the state its page showed, the API's ?expected_status=: acting on
# a complaint a colleague has moved on meanwhile is 409, said on the page.
EXPECTED_STATUS = "expected_status"
# The estates one ``GET /estates`` names (intake's ``list_estates``: ``estate_ids`` and
# ``limit`` at most this many).
ESTATES_PER_CALL = 1000
# The households one ``GET /estates/{id}/households`` finds by id (intake's
# ``list_households``: ``household_ids`` and ``limit`` at most this many).
HOUSEHOLDS_PER_CALL = MAX_HOUSEHOLDS_LISTED


# the request's context -----------------------------------------------------------------

@dataclass
class ConsoleContext:
    """What a console page needs: the accounts, the services, the clock, the request —
    and, once ``signed_in`` let it through, the person and their token."""
    accounts: Any              # accounts.Accounts
    services: api.Services
    body_limit: int
    now: datetime
    request: Request
    actor: Actor | None = None
    claims: TokenClaims | None = None
    _user: dict | None = field(default=None, repr=False)
    _estate_names: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def locale(self) -> str:
        return pages.locale_of(self.request)

    @property
    def user(self) -> dict:
        if self._user is None:
            self._user = self.accounts.get_user(self.actor.id)
        return self._user

    def call(self, method: str, path: str, query: dict | None = None,
             body: dict | None = None, key: str | None = None) -> Any:
        """``method`` ``/api/v1<path>`` for this person, exactly as the REST API carries it
        out (``api.execute``), ``key`` as its Idempotency-Key; a ``Problem`` for every
        failure."""
        response = call_as(self.actor, self.services, self.body_limit, method, path, query,
                           body, key)
        return json.loads(response.get_data())

    def may(self, method: str, path: str) -> bool:
        """Does the permission table let this person call ``method`` ``/api/v1<path>``?"""
        operation, _ = api.match(method, api.PREFIX + path)
        return may_action(self.actor, operation.action)

    def may_action(self, action: str) -> bool:
        """Does the permission table let this person take ``action`` (its key, e.g.
        ``survey.rectifications.update``)? For a form offered on every record of a kind,
        where no one record's path is at hand."""
        return may_action(self.actor, action)

    @property
    def sees_group(self) -> bool:
        """May this person read the group's figures (the headquarters dashboard)?"""
        return may_action(self.actor, "stats.group") and self.actor.group_wide

    @property
    def manages_users(self) -> bool:
        """May this person manage staff accounts (as ``/api/v1/users`` lets them)?"""
        return may_action(self.actor, "users.manage")

    @property
    def reads_estates(self) -> bool:
        """The estates' records pages: who may change them, and the group's roles (read)."""
        return may_action(self.actor, "estates.register") or (
            self.actor.group_wide and may_action(self.actor, "estates.list"))

    def name_estates(self, estate_ids: Iterable[str | None]) -> None:
        """Learn the names of the estates a page shows (its rows' and its filter's), for
        ``estate_name``: one ``GET /estates`` for all of them, not one call per row. An
        estate intake does not know, or this person may not read, keeps its id; so does
        what is no id at all (typed into a form: the form says what is wrong with it)."""
        wanted = [estate for estate in dict.fromkeys(estate_ids)
                  if estate and estate not in self._estate_names]
        if wanted and self.may("GET", "/estates"):
            for start in range(0, len(wanted), ESTATES_PER_CALL):
                some = wanted[start:start + ESTATES_PER_CALL]
                try:
                    found = self.call("GET", "/estates",
                                      {"estate_ids": some, "limit": str(len(some))})["items"]
                except Problem as problem:
                    if problem.status != 422:
                        raise
                    continue
                self._estate_names.update({estate["id"]: estate["name"] for estate in found})
        self._estate_names.update({estate: estate for estate in wanted
                                   if estate not in self._estate_names})

    def know_estate_names(self, names: dict[str, str | None]) -> None:
        """Names a page's answers carry already (statistics, reports): no call for them."""
        self._estate_names.update({estate: name for estate, name in names.items() if name})

    def estate_name(self, estate_id: str | None) -> str:
        """An estate as its people name it (learnt by ``name_estates``), else its id."""
        return self._estate_names.get(estate_id, estate_id) if estate_id else ""

    def send(self, method: str, path: str, body: dict | None = None,
             expected: str | None = None) -> Any:
        """A posted form's action, as ``call``: the form's own key (``REQUEST_KEY``) as its
        Idempotency-Key and, with ``expected``, the state or revision its page showed (the
        form's field of that name) as the API's query parameter of the same name."""
        posted = self.request.form
        seen = posted.get(expected) if expected else None
        return self.call(method, path, query={expected: seen} if expected and seen else None,
                         body=body, key=posted.get(REQUEST_KEY))

    def act(self, send: Callable[[], Any], *, done: Callable[[Any], str | Response],
            again: Callable[["Refusal"], Response], form: str | None = None,
            values: dict | None = None, refused: Collection[int] = (409, 422)) -> Response:
        """Every console form's one way to act: ``send()`` (usually ``send``), then a 303 to
        the link ``done(answer)`` names (or the page it returns). A refusal the person can
        answer (``refused``: 409, the record moved on meanwhile; 422, a field) shows the
        page again — ``again(refusal)``, rendered with ``refusal=`` — with what was typed
        and each field's error; any other failure is the error page (``signed_in``)."""
        try:
            answer = send()
        except Problem as problem:
            if problem.status not in refused:
                raise
            return again(Refusal(form, values or {}, field_errors(problem.errors),
                                 problem.status))
        shown = done(answer)
        return redirect(shown, code=303) if isinstance(shown, str) else shown

    def render(self, template: str, status: int = 200, refusal: "Refusal | None" = None,
               **context) -> Response:
        """A console page: ``refusal`` (from ``act``) sets its status and the form state
        the templates' ``console/_forms.html`` macros read (``failed``, ``values``,
        ``errors``, ``conflict``); ``context`` may still set any of them itself."""
        words = pages.catalogue(self.locale)
        context = {**form_state(refusal), **context}
        return pages.render(
            template, self.locale, refusal.status if refusal else status, user=self.user,
            may=self.may,
            sees_group=self.sees_group, manages_users=self.manages_users,
            reads_estates=self.reads_estates, estate_name=self.estate_name,
            confined_to=confined_department(self.actor),
            csrf_token=self.accounts.csrf_token(self.claims), new_key=new_request_key,
            known=lambda key: key in words, **context)


@dataclass(frozen=True)
class Refusal:
    """A form's action the API refused in a way the person can answer: which form
    (``failed``), what was typed, each field's words (``field_errors``), the status."""
    failed: str | None
    values: dict
    errors: dict[str, tuple[str, dict]]
    status: int

    @property
    def conflict(self) -> bool:
        """409: the record moved on since its page was shown."""
        return self.status == 409


def form_state(refusal: Refusal | None) -> dict[str, Any]:
    """What a page's forms show: nothing failed, or the refusal's form, values, errors."""
    if refusal is None:
        return {"failed": None, "values": {}, "errors": {}, "conflict": False}
    return {"failed": refusal.failed, "values": refusal.values, "errors": refusal.errors,
            "conflict": refusal.conflict}


def call_as(actor: Actor, services: api.Services, body_limit: int, method: str, path: str,
            query: dict | None = None, body: dict | None = None,
            key: str | None = None) -> Response:
    """``method`` ``/api/v1<path>`` for ``actor``, exactly as the REST API carries it out
    (``api.execute``), ``key`` as its Idempotency-Key: the API's response (a workbook's
    bytes, or JSON), a ``Problem`` for every failure. The console's pages and its
    background jobs (``console_jobs``) act through it."""
    target = api.PREFIX + path
    operation, values = api.match(method, target)
    request = Request(EnvironBuilder(
        method=method, path=quote(target), query_string=query, json=body,
        headers={IDEMPOTENCY_KEY: key} if key else None).get_environ())
    try:
        return api.execute(operation, request, values, actor, services, body_limit)
    except Problem:
        raise
    except Exception as exc:  # noqa: BLE001 - a service's error, as the API would answer it
        raise from_exception(exc) from None


def new_request_key() -> str:
    """A form's own key (``REQUEST_KEY``): fresh each time a form is shown."""
    return uuid.uuid4().hex


def signed_in(page: Callable[..., Response]) -> Callable[..., Response]:
    """A page for a person with a session: without one, the login page (303, coming back
    here after); any failure, a page saying what happened — never problem+json."""
    @functools.wraps(page)
    def checked(ctx: ConsoleContext, *args) -> Response:
        try:
            ctx.actor, ctx.claims = ctx.accounts.authenticate(ctx.request)
        except Problem as problem:
            if problem.status == 401:
                return to_login(ctx.request)
            return _anonymous_error(ctx, problem)
        try:
            return page(ctx, *args)
        except Exception as exc:  # noqa: BLE001 - a page says what failed, never problem+json
            return error_page(ctx, from_exception(exc))
    return checked


def to_login(request: Request) -> Response:
    """303 to the login page, which sends the person back to this page (a GET's) after."""
    back = request.full_path.rstrip("?") if request.method == "GET" else HOME
    return redirect(f"{LOGIN}?{urlencode({'next': back})}", code=303)


def local_next(value: str | None) -> str:
    """Where to go after logging in: a console page of this site, never anywhere else."""
    if not value or any(ord(char) < 32 or char == "\\" for char in value):
        return HOME
    parts = urlsplit(value)
    if (parts.scheme or parts.netloc or not parts.path.startswith(HOME) or "//" in parts.path
            or parts.path in (LOGIN, "/console/logout")):
        return HOME
    return value


def error_page(ctx: ConsoleContext, problem: Problem) -> Response:
    kind = ERROR_KINDS.get(problem.status, "failed")
    status = problem.status if problem.status in ERROR_KINDS else 500
    return ctx.render("console/message.html", status, kind=kind)


def _anonymous_error(ctx: ConsoleContext, problem: Problem) -> Response:
    """An error before anyone is known (a wrong CSRF token): the page without the user."""
    kind = ERROR_KINDS.get(problem.status, "failed")
    return pages.render("console/message.html", ctx.locale, problem.status, user=None,
                        kind=kind, known=lambda key: False, csrf_token="",
                        may=lambda *args: False)


# logging in and out ----------------------------------------------------------------------

def login_page(ctx: ConsoleContext) -> Response:
    return _login_form(ctx, next_url=local_next(ctx.request.args.get("next")))


def login_submit(ctx: ConsoleContext) -> Response:
    form = ctx.request.form
    username, next_url = form.get("username", ""), local_next(form.get("next"))
    if not username.strip() or not form.get("password"):
        return _login_form(ctx, username, next_url, "console_login_missing", 422)
    try:
        answer, _ = ctx.accounts.login({"username": username, "password": form["password"]},
                                       ctx.request.remote_addr or "")
    except InvalidInput:      # too long, odd characters: said as a wrong login, nothing more
        return _login_form(ctx, username, next_url, "console_login_wrong", 422)
    except Problem as problem:
        if problem.status == 429:
            response = _login_form(ctx, username, next_url, "console_login_locked", 429)
            response.headers["Retry-After"] = problem.headers.get("Retry-After", "900")
            return response
        if problem.status != 401:
            raise
        # the same words whether or not the username exists
        return _login_form(ctx, username, next_url, "console_login_wrong", 422)
    return session.start(redirect(next_url, code=303), answer,
                         ctx.accounts.settings.secure_cookies)


def _login_form(ctx, username="", next_url=HOME, error=None, status=200) -> Response:
    return pages.render("console/login.html", ctx.locale, status, username=username,
                        next_url=next_url, error=error, user=None,
                        logged_out=ctx.request.args.get("logged_out") == "1")


def logout(ctx: ConsoleContext) -> Response:
    try:
        _, claims = ctx.accounts.authenticate(ctx.request)
    except Problem as problem:
        if problem.status == 401:     # no session left to end
            return session.end(redirect(LOGIN, code=303))
        return _anonymous_error(ctx, problem)
    ctx.accounts.logout(claims)
    return session.end(redirect(f"{LOGIN}?{urlencode({'logged_out': '1'})}", code=303))


# the worklist ------------------------------------------------------------------------------

@dataclass(frozen=True)
class TimeLeft:
    """The clock time from now to a deadline (or past it): intake's working days set the
    deadline; this only measures the distance, to say it in days, hours and minutes."""
    overdue: bool
    soon: bool
    key: str
    params: dict


def time_left(due: str | None, now: datetime, warn_from: str | None = None) -> TimeLeft | None:
    """``soon`` from ``warn_from`` on when given (the estate's warning time of the deadline,
    intake's ``next_warn_at``: 即将到期), else within ``SOON_HOURS``."""
    if not due:
        return None
    delta = datetime.fromisoformat(due) - now
    overdue = delta.total_seconds() <= 0          # intake: overdue once next_due_at <= now
    minutes = int(abs(delta).total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        unit, params = "days", {"days": days, "hours": hours}
    elif hours:
        unit, params = "hours", {"hours": hours, "minutes": minutes}
    else:
        unit, params = "minutes", {"minutes": minutes}
    soon = not overdue and (datetime.fromisoformat(warn_from) <= now if warn_from
                            else delta.total_seconds() < SOON_HOURS * 3600)
    return TimeLeft(overdue, soon, f"console_{'overdue' if overdue else 'left'}_{unit}", params)


class WorklistPart(Protocol):
    """A part of a worklist: its name is its ?part=, its wording's key and its ids'."""
    @property
    def name(self) -> str: ...


Rows = list[tuple[dict, TimeLeft | None]]     # an item and the time left to its deadline


def parted_worklist(ctx: ConsoleContext, template: str, *, home: str,
                    parts: Sequence[WorklistPart], filters: dict[str, str],
                    rows: Callable[[Any, str | None], tuple[Rows, str | None]],
                    reset_notice: str, **page: Any) -> Response:
    """A worklist in parts (``console/_worklist.html``'s ``worklist_parts``): every part's
    first page, an item shown in the first part it falls in only; or, with ``?part=``, that
    part a page at a time (``?cursor=``). ``rows(part, cursor)`` is the page's own read of
    the API: a part's rows and the next cursor. A filter or link the API refuses (422)
    sends the person back to the overview, said so; ``page`` is the rest of what the
    template shows."""
    args = ctx.request.args
    part = next((each for each in parts if each.name == args.get("part")), None)
    shown: list[tuple[Any, Rows]] = []
    next_url = None
    try:
        if part is None:
            seen: set[str] = set()
            for each in parts:
                found = [row for row in rows(each, None)[0] if row[0]["id"] not in seen]
                seen.update(item["id"] for item, _ in found)
                shown.append((each, found))
        else:
            found, cursor = rows(part, args.get("cursor"))
            shown.append((part, found))
            if cursor:
                next_url = f"{home}?{urlencode({**filters, 'part': part.name, 'cursor': cursor})}"
    except Problem as problem:
        if problem.status != 422:
            raise
        return redirect(f"{home}?notice=reset", code=303)
    ctx.name_estates([*(item["estate_id"] for _, found in shown for item, _ in found),
                      *ctx.actor.estates, filters.get("estate_id")])
    return ctx.render(
        template, parts=shown, part=part, filters=filters, estates=ctx.actor.estates,
        group_wide=ctx.actor.group_wide, next_url=next_url, page_size=PAGE_SIZE,
        notice=reset_notice if args.get("notice") == "reset" else None,
        link=lambda **more: f"{home}?{urlencode({**filters, **more})}", **page)


@signed_in
def worklist(ctx: ConsoleContext) -> Response:
    args = ctx.request.args
    # a department's staff see their department's alone (the API fixes it): no typed filter
    typed = ("estate_id", "status") + (("department",) if confined_department(ctx.actor) is None
                                       else ())
    filters = {name: args[name].strip() for name in typed if args.get(name, "").strip()}
    # what a supervisor or manager looks for: overdue, repeats needing special measures
    # within 24 hours, malicious flags to review
    filters.update({name: "true" for name in WORKLIST_FLAGS if args.get(name) == "true"})
    query = {**filters, "open": "true", "order": "due", "limit": str(PAGE_SIZE)}
    cursor, notice = args.get("cursor"), None
    try:
        page = ctx.call("GET", "/complaints", {**query, **({"cursor": cursor} if cursor else {})})
    except Problem as problem:
        if problem.status != 422:
            raise
        # a stale or mangled page link, or a filter intake refuses: the first page, said so
        filters = {key: value for key, value in filters.items()
                   if key not in (problem.errors or {})}
        page = ctx.call("GET", "/complaints", {**filters, "open": "true", "order": "due",
                                               "limit": str(PAGE_SIZE)})
        cursor, notice = None, "console_worklist_reset"
    rows = [(complaint, time_left(complaint.get("next_due_at"), ctx.now,
                                  complaint.get("next_warn_at")))
            for complaint in page["items"]]
    next_url = (f"{HOME}?{urlencode({**filters, 'cursor': page['next_cursor']})}"
                if page["next_cursor"] else None)
    ctx.name_estates([*(complaint["estate_id"] for complaint in page["items"]),
                      *ctx.actor.estates])
    return ctx.render(
        "console/worklist.html", rows=rows, filters=filters, statuses=OPEN_STATUSES,
        estates=ctx.actor.estates, group_wide=ctx.actor.group_wide, next_url=next_url,
        first_url=f"{HOME}?{urlencode(filters)}" if cursor else None, notice=notice)


# a complaint and its actions -----------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    name: str
    kind: str = "textarea"          # textarea, text, select, radio, datetime, flag
    required: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class ActionForm:
    """A form of the complaint page: the API's ``POST /complaints/{id}/<name>``, offered
    while intake's ``allowed_actions`` holds one of ``offered_by``. A step of the usual
    way to the close is the page's primary button; the others (escalating, flagging) not."""
    name: str
    offered_by: tuple[str, ...]
    fields: tuple[Field, ...]
    primary: bool = True


FORMS = (
    ActionForm("acknowledge", ("acknowledge",), (Field("note"),)),
    ActionForm("assign", ("assign",), (
        Field("department", "text"), Field("reply_promised_at", "datetime"),
        Field("external_unit", "text"))),
    ActionForm("resolve", ("resolve",), (Field("resolution", required=True),)),
    ActionForm("close", ("close",), (
        Field("owner_signoff", "radio", True, OWNER_SIGNOFFS),)),
    ActionForm("reopen", ("reopen",), (
        Field("reason", required=True), Field("source", "select", True, REOPEN_SOURCES))),
    ActionForm("review", ("request_review",), (
        Field("reason", required=True), Field("requested_by", "text"))),
    ActionForm("decide-review", ("uphold_review", "overturn_review"), (
        Field("outcome", "radio", True, REVIEW_OUTCOMES), Field("finding", required=True))),
    ActionForm("special-measures", ("special_measures",), (
        Field("measures", required=True),)),
    ActionForm("external-status", ("external_status",), (
        Field("status", "select", True, EXTERNAL_STATUSES), Field("note", required=True),
        Field("reference", "text"))),
    # 「待经理做出明确指示」: offered to the managers while intake says the complaint awaits it
    ActionForm("instruct", ("instruct",), (Field("instruction", required=True),)),
    ActionForm("escalate", ("escalate",), (Field("reason", required=True),), primary=False),
    ActionForm("flag-malicious", ("flag_malicious",), (
        Field("reason", required=True), Field("malicious", "flag")), primary=False),
)
# History lines whose note intake writes itself (in English, from fields the page shows
# in words): the page leaves those notes out.
MACHINE_NOTES = ("register", "assign", "close", "overdue")
FORMS_BY_NAME = {form.name: form for form in FORMS}


def complaint_path(complaint_id: str, action: str | None = None) -> str:
    path = f"/complaints/{complaint_id}"
    return f"{path}/{action}" if action else path


def console_url(complaint_id: str, **query) -> str:
    url = f"{HOME}complaints/{quote(complaint_id, safe='')}"
    return f"{url}?{urlencode(query)}" if query else url


@signed_in
def complaint_page(ctx: ConsoleContext, complaint_id: str) -> Response:
    complaint = _complaint(ctx, complaint_id)
    done = ctx.request.args.get("done")
    return _complaint_view(ctx, complaint, done=done if done in (*FORMS_BY_NAME, "register")
                           else None)


@signed_in
def act(ctx: ConsoleContext, complaint_id: str, action: str) -> Response:
    form = FORMS_BY_NAME.get(action)
    if form is None:
        raise Problem(404, "no such action")
    values = {item.name: ctx.request.form.get(item.name, "") for item in form.fields}
    return ctx.act(
        lambda: ctx.send("POST", complaint_path(complaint_id, action),
                         action_body(form, values), expected=EXPECTED_STATUS),
        form=action, values=values,
        again=lambda refusal: _complaint_view(ctx, _complaint(ctx, complaint_id),
                                              refusal=refusal),
        done=lambda _: console_url(complaint_id, done=action))


def action_body(form: ActionForm, values: dict) -> dict:
    """The API body of a posted action form: blank fields left out (the service's default,
    or its "required"), a local time as the moment it names, a flag as true or false."""
    body: dict = {}
    for item in form.fields:
        value = values.get(item.name, "")
        if item.kind == "flag":
            body[item.name] = value == "true"
        elif value.strip():
            body[item.name] = local_moment(value) if item.kind == "datetime" else value
    return body


def local_moment(value: str) -> str:
    """A ``datetime-local`` input (the service centre's wall clock) as an ISO moment; what
    does not read as one is passed on for intake to refuse."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return (moment if moment.tzinfo else moment.replace(tzinfo=ZONE)).isoformat()


def field_errors(errors: dict | None) -> dict[str, tuple[str, dict]]:
    """intake's field errors as the words to show: (catalogue key, its parameters)."""
    shown = {}
    for name, messages in (errors or {}).items():
        if isinstance(messages, dict):     # a nested field: reporter.phone
            for inner, text in field_errors(messages).items():
                shown[f"{name}.{inner}"] = text
            continue
        text = "; ".join(map(str, messages)) if isinstance(messages, list) else str(messages)
        missing = "Missing data" in text or BLANK_TEXT in text
        shown[name] = (("console_error_required", {}) if missing
                       else ("console_error_invalid", {"detail": text}))
    return shown


def _complaint(ctx: ConsoleContext, complaint_id: str) -> dict:
    try:
        return ctx.call("GET", complaint_path(complaint_id))
    except Problem as problem:
        if problem.status == 422:      # not even an id: unknown, like any other
            raise Problem(404, "no such complaint") from None
        raise


def _complaint_view(ctx: ConsoleContext, complaint: dict, done: str | None = None,
                    refusal: Refusal | None = None) -> Response:
    offered = set(complaint.get("allowed_actions", ()))
    forms = [form for form in FORMS if offered & set(form.offered_by)
             and ctx.may("POST", complaint_path(complaint["id"], form.name))]
    ctx.name_estates([complaint["estate_id"]])
    return ctx.render(
        "console/complaint.html", refusal=refusal, complaint=complaint, forms=forms, done=done,
        left=time_left(complaint.get("next_due_at"), ctx.now, complaint.get("next_warn_at")),
        names=staff_names(ctx, [*complaint.get("history", ()), *(
            {"by": line.get("visitor_id")} for line in complaint.get("revisits", ()))]),
        household=household_of(ctx, complaint.get("household_id")),
        revisits=_revisits(ctx, complaint["id"]), machine_notes=MACHINE_NOTES,
        action_url=lambda action: console_url(complaint["id"]) + f"/{action}")


def staff_names(ctx: ConsoleContext, history) -> dict[str, str]:
    """Who each history line's ``by`` is, as colleagues know them (staff see names here);
    ids that are no user (the system, the reporter) are left to the template's words.
    One read of the accounts for all of them."""
    return ctx.accounts.display_names(line.get("by") for line in history if line.get("by"))


def _revisits(ctx: ConsoleContext, complaint_id: str) -> list[dict] | None:
    """The complaint's revisits (one per closing), linked from its page; None for a role
    that may not read revisits."""
    if not ctx.may("GET", "/revisits"):
        return None
    return ctx.call("GET", "/revisits", {"source_id": complaint_id, "kind": "complaint",
                                         "limit": str(PAGE_SIZE)})["items"]


def household_of(ctx: ConsoleContext, household_id: str | None) -> dict | None:
    """The complaint's household (contacts masked), if this person may read households."""
    if not household_id or not ctx.may("GET", f"/households/{household_id}"):
        return None
    try:
        return ctx.call("GET", f"/households/{household_id}")
    except Problem as problem:
        if problem.status in (403, 404):
            return None
        raise


def households_of(ctx: ConsoleContext, estate_id: str,
                  household_ids: Iterable[str | None]) -> dict[str, dict]:
    """``{id: household}`` (contacts masked) of an estate's rows, if this person may read
    its households: one ``GET /estates/{id}/households`` per ``HOUSEHOLDS_PER_CALL``
    ids, not one call per row. An id the estate does not have is left out."""
    wanted = sorted({household for household in household_ids if household})
    path = f"/estates/{estate_id}/households"
    if not wanted or not ctx.may("GET", path):
        return {}
    found: dict[str, dict] = {}
    for start in range(0, len(wanted), HOUSEHOLDS_PER_CALL):
        some = wanted[start:start + HOUSEHOLDS_PER_CALL]
        try:
            page = ctx.call("GET", path, {"household_ids": some, "limit": str(len(some))})
        except Problem as problem:
            if problem.status in (403, 404):
                return {}
            raise
        found.update({household["id"]: household for household in page["items"]})
    return found


# registering at the front desk -------------------------------------------------------------

REGISTER_FIELDS = ("estate_id", "building", "room", "household_id", "reporter_name",
                   "reporter_phone", "channel", "category", "severity", "content")
# intake's field names -> the form's
REGISTER_ERRORS = {"reporter": "reporter_name", "reporter.name": "reporter_name",
                   "reporter.phone": "reporter_phone"}
HOUSEHOLD_SEARCH_LIMIT = "1000"    # one building of an estate, at most


@signed_in
def new_complaint(ctx: ConsoleContext) -> Response:
    """The front desk's form; with ``building`` (and ``room``) in the query, the
    households found there to choose from (the search is a GET form of its own)."""
    if not ctx.may("POST", "/complaints"):
        raise Problem(403, "your role may not register complaints")
    args = ctx.request.args
    values = dict.fromkeys(REGISTER_FIELDS, "")
    values.update(estate_id=ctx.actor.estates[0] if ctx.actor.estates else "",
                  channel="visit", severity="normal")
    values.update({name: args[name] for name in ("estate_id", "building", "room")
                   if args.get(name)})
    if not values["building"].strip():
        return _register_form(ctx, values)
    households, errors = find_households(ctx, values)
    if len(households) == 1:
        values["household_id"] = households[0]["id"]
    return _register_form(ctx, values, errors, None if errors else households)


@signed_in
def register(ctx: ConsoleContext) -> Response:
    values = {name: ctx.request.form.get(name, "") for name in REGISTER_FIELDS}
    return ctx.act(lambda: ctx.send("POST", "/complaints", register_body(values)),
                   values=values, refused=(403, 422),
                   again=lambda refusal: _register_again(ctx, refusal),
                   done=lambda complaint: console_url(complaint["id"], done="register"))


def _register_again(ctx: ConsoleContext, refusal: Refusal) -> Response:
    """The front desk's form refused: 403 is an estate not theirs, said on the estate."""
    errors = ({"estate_id": ("console_error_estate", {})} if refusal.status == 403 else
              {REGISTER_ERRORS.get(name, name): text for name, text in refusal.errors.items()})
    values = refusal.values
    households = find_households(ctx, values)[0] if values["building"].strip() else None
    return _register_form(ctx, values, errors, households, status=refusal.status)


def register_body(values: dict) -> dict:
    """The API body of the front desk's form: the household chosen, else the reporter."""
    body = {name: values[name] for name in ("estate_id", "channel", "category", "severity",
                                            "content")}
    if values["household_id"]:
        body["household_id"] = values["household_id"]
    elif values["reporter_name"].strip() or values["reporter_phone"].strip():
        body["reporter"] = {"name": values["reporter_name"], "phone": values["reporter_phone"]}
    return body


def find_households(ctx: ConsoleContext, values: dict) -> tuple[list[dict], dict]:
    """The households of the building typed (intake's ``building`` filter), narrowed to
    the room typed; and the errors of the search."""
    estate, building = values["estate_id"].strip(), values["building"].strip()
    if not estate or not building:
        return [], {"building": ("console_error_search", {})}
    try:
        page = ctx.call("GET", f"/estates/{estate}/households",
                        {"building": building, "limit": HOUSEHOLD_SEARCH_LIMIT})
    except Problem as problem:
        if problem.status not in (403, 404, 422):
            raise
        return [], {"estate_id": ("console_error_estate", {})}
    room = values["room"].strip()
    return [household for household in page["items"]
            if not room or room in household.get("room", "")], {}


def _register_form(ctx, values, errors=None, households=None, status=200) -> Response:
    ctx.name_estates([*ctx.actor.estates, values["estate_id"].strip()])
    return ctx.render(
        "console/new.html", status, values=values, errors=errors or {},
        households=households, estates=ctx.actor.estates,
        channels=CHANNELS, categories=COMPLAINT_CATEGORIES, severities=SEVERITIES,
        may_search=ctx.may_action("households.list"))
