"""The console's administration (系统管理): staff accounts and the estates' records.

* ``/console/admin/users``: the accounts, a page at a time by username, and the form to
  open one (username, display name, roles as boxes from the role vocabulary, estates one
  per line, a department's department — the group's routing offered, the accounts check
  it against the estates' — a password typed or left blank to have one generated).
  ``/console/admin/users/{id}``: one account, with a form each to change its display name,
  roles and estates, to disable or enable it, and to reset its password (typed, or left
  blank to have one generated). A generated password is shown once, on the page that
  answers the form — never in a link, never again.
  Accounts are the gateway's own: the pages call the use cases behind ``/api/v1/users``
  (``accounts.Accounts``, its schemas and its check that estate staff have estates) for
  whoever that API lets in (``users.manage``); anyone else gets the 403 page, and no link.
* ``/console/admin/estates``: the estates' records a page at a time, filtered by company
  and region, and the form to register one; ``/console/admin/estates/{id}``: one record,
  and the form to change its names, time zone and complaint-policy overrides (JSON, which
  intake checks against the policy schema), carrying the revision it showed (a colleague's
  change meanwhile is a 409, said on the page). Each an operation of ``api.OPERATIONS``
  (``/estates``): the group's roles read them all, only administrators change them.
"""
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from werkzeug.wrappers import Response

from services.gateway import identity
from services.gateway.accounts import known_departments
from services.gateway.console import (
    PAGE_SIZE,
    ConsoleContext,
    Refusal,
    signed_in,
)
from services.gateway.problems import Problem, from_exception, invalid
from shared.schemas.vocabulary import USER_ROLES

USERS = "/console/admin/users"
ESTATES = "/console/admin/estates"
USER_FIELDS = ("username", "display_name", "roles", "estates", "department", "password")
USER_FORMS = {"profile": ("display_name", "roles", "estates", "department"),
              "status": ("disabled",),
              "password": ("password",)}
ESTATE_FIELDS = ("estate_id", "name", "company", "region", "timezone", "policy")
ESTATE_FILTERS = ("company", "region")
EXPECTED_REVISION = "expected_revision"
ZONE_SUGGESTIONS = ("Asia/Shanghai", "Asia/Hong_Kong", "Asia/Macau", "Asia/Taipei",
                    "Asia/Urumqi")


def user_url(user_id: str, **query) -> str:
    url = f"{USERS}/{quote(user_id, safe='')}"
    return f"{url}?{urlencode(query)}" if query else url


def estate_url(estate_id: str, **query) -> str:
    url = f"{ESTATES}/{quote(estate_id, safe='')}"
    return f"{url}?{urlencode(query)}" if query else url


def lines(text: str) -> list[str]:
    """Estates typed one per line (or comma-separated): each once, in order."""
    found: list[str] = []
    for entry in text.replace(",", "\n").replace("，", "\n").splitlines():
        if entry.strip() and entry.strip() not in found:
            found.append(entry.strip())
    return found


def _manager_only(ctx: ConsoleContext) -> None:
    if not ctx.manages_users:
        raise Problem(403, "only an administrator manages accounts")


def _accounts(use_case: Callable[..., Any], *args) -> Any:
    """An ``Accounts`` use case, its refusals as the REST API answers them (a ``Problem``)."""
    try:
        return use_case(*args)
    except Exception as exc:  # noqa: BLE001 - InvalidInput -> 422 naming fields, NotFound -> 404
        raise from_exception(exc) from None


# accounts -----------------------------------------------------------------------------------

@signed_in
def users_page(ctx: ConsoleContext) -> Response:
    _manager_only(ctx)
    return _users_view(ctx)


@signed_in
def create_user(ctx: ConsoleContext) -> Response:
    _manager_only(ctx)
    posted = ctx.request.form
    values = {name: posted.get(name, "") for name in USER_FIELDS}
    values["roles"] = posted.getlist("roles")
    password = values["password"] or identity.generate_password()
    body = {**user_body(values), "username": values["username"].strip(), "password": password}
    return ctx.act(
        lambda: _accounts(ctx.accounts.create_user, body, ctx.actor.id,
                          known_departments(ctx.services)),
        values={**values, "password": ""}, refused=(422,),
        again=lambda refusal: _users_view(ctx, refusal),
        # the generated password shown here, once: a redirect would carry it in the link
        done=lambda made: _user_view(ctx, made, done="create",
                                     generated=None if values["password"] else password))


def user_body(values: dict) -> dict:
    """The accounts' body of the profile fields posted: roles ticked, estates one per line,
    the department chosen (blank: none), a blank display name left out (the username stands
    for it)."""
    body: dict = {"roles": list(values.get("roles") or []),
                  "estates": lines(values.get("estates", "")),
                  "department": values.get("department", "").strip() or None}
    if values.get("display_name", "").strip():
        body["display_name"] = values["display_name"].strip()
    return body


def _users_view(ctx: ConsoleContext, refusal: Refusal | None = None) -> Response:
    cursor = ctx.request.args.get("cursor")
    try:
        page = _accounts(ctx.accounts.list_users,
                         {"limit": PAGE_SIZE, **({"cursor": cursor} if cursor else {})})
    except Problem as problem:
        if problem.status != 422:
            raise
        page = _accounts(ctx.accounts.list_users, {"limit": PAGE_SIZE})
    next_url = (f"{USERS}?{urlencode({'cursor': page['next_cursor']})}"
                if page["next_cursor"] else None)
    return ctx.render("console/admin_users.html", refusal=refusal, nav="users",
                      users=page["items"], next_url=next_url,
                      first_url=USERS if cursor else None, roles=USER_ROLES, user_url=user_url,
                      departments=_departments(ctx))


@signed_in
def user_page(ctx: ConsoleContext, user_id: str) -> Response:
    _manager_only(ctx)
    done = ctx.request.args.get("done")
    return _user_view(ctx, _accounts(ctx.accounts.get_user, user_id),
                      done=done if done in USER_FORMS else None)


@signed_in
def change_user(ctx: ConsoleContext, user_id: str, action: str) -> Response:
    _manager_only(ctx)
    if action not in USER_FORMS:
        raise Problem(404, "no such action")
    user = _accounts(ctx.accounts.get_user, user_id)
    posted = ctx.request.form
    values = {name: posted.get(name, "") for name in USER_FORMS[action]}
    generated = None
    if action == "profile":
        values["roles"] = posted.getlist("roles")
        body = user_body(values)
    elif action == "status":
        body = {"disabled": values["disabled"] == "true"}
    else:
        generated = None if values["password"] else identity.generate_password()
        body = {"password": values["password"] or generated}
    return ctx.act(
        lambda: _accounts(ctx.accounts.update_user, user_id, body, ctx.actor.id,
                          known_departments(ctx.services)),
        form=action, values={**values, "password": ""}, refused=(422,),
        again=lambda refusal: _user_view(ctx, user, refusal=refusal),
        # a generated password shown here, once: a redirect would carry it in the link
        done=lambda changed: _user_view(ctx, changed, done=action, generated=generated)
        if generated else user_url(user_id, done=action))


def _user_view(ctx: ConsoleContext, user: dict, done: str | None = None,
               generated: str | None = None, refusal: Refusal | None = None) -> Response:
    return ctx.render("console/admin_user.html", refusal=refusal, nav="users", account=user,
                      done=done, generated=generated, roles=USER_ROLES,
                      departments=_departments(ctx),
                      action_url=lambda action: f"{user_url(user['id'])}/{action}")


def _departments(ctx: ConsoleContext) -> list[str]:
    """The group's departments (intake's routing), offered for a department's account."""
    return known_departments(ctx.services)([])


# estates ------------------------------------------------------------------------------------

def _estate_reader(ctx: ConsoleContext) -> None:
    if not ctx.reads_estates:
        raise Problem(403, "the estates' records are for the group's roles")


@signed_in
def estates_page(ctx: ConsoleContext) -> Response:
    _estate_reader(ctx)
    return _estates_view(ctx)


@signed_in
def register_estate(ctx: ConsoleContext) -> Response:
    _estate_reader(ctx)
    values = {name: ctx.request.form.get(name, "") for name in ESTATE_FIELDS}
    return ctx.act(
        lambda: ctx.send("POST", "/estates",
                         {"estate_id": values["estate_id"].strip(), **estate_body(values)}),
        values=values, refused=(422,),
        again=lambda refusal: _estates_view(ctx, refusal),
        done=lambda made: estate_url(made["id"], done="register"))


def estate_body(values: dict) -> dict:
    """The API body of an estate's form: blank company, region or zone as none (the zone:
    the group's), the policy overrides as the JSON object typed (blank: none). JSON that
    does not read is refused here on the field, before anything is sent."""
    body: dict = {"name": values.get("name", "").strip()}
    for name in ("company", "region", "timezone"):
        body[name] = values.get(name, "").strip() or None
    text = values.get("policy", "").strip()
    try:
        body["policy"] = json.loads(text) if text else {}
    except ValueError as exc:
        raise invalid({"policy": [f"not JSON: {exc}"]}) from None
    return body


def _estates_view(ctx: ConsoleContext, refusal: Refusal | None = None) -> Response:
    args = ctx.request.args
    filters = {name: args[name].strip() for name in ESTATE_FILTERS if args.get(name, "").strip()}
    cursor, notice = args.get("cursor"), None
    query = {**filters, "limit": str(PAGE_SIZE)}
    try:
        page = ctx.call("GET", "/estates", {**query, **({"cursor": cursor} if cursor else {})})
    except Problem as problem:
        if problem.status != 422:
            raise
        # a stale page link or a filter intake refuses: the first page, said so
        filters = {}
        page = ctx.call("GET", "/estates", {"limit": str(PAGE_SIZE)})
        cursor, notice = None, "console_ad_list_reset"
    next_url = (f"{ESTATES}?{urlencode({**filters, 'cursor': page['next_cursor']})}"
                if page["next_cursor"] else None)
    return ctx.render(
        "console/admin_estates.html", refusal=refusal, nav="estates",
        estates_shown=page["items"],
        filters=filters, next_url=next_url, notice=notice,
        first_url=f"{ESTATES}?{urlencode(filters)}" if cursor else None,
        may_register=ctx.may("POST", "/estates"), zones=ZONE_SUGGESTIONS,
        estate_url=estate_url)


@signed_in
def estate_page(ctx: ConsoleContext, estate_id: str) -> Response:
    _estate_reader(ctx)
    done = ctx.request.args.get("done")
    return _estate_view(ctx, _estate(ctx, estate_id),
                        done=done if done in ("register", "update") else None)


@signed_in
def update_estate(ctx: ConsoleContext, estate_id: str) -> Response:
    _estate_reader(ctx)
    values = {name: ctx.request.form.get(name, "") for name in ESTATE_FIELDS
              if name != "estate_id"}
    return ctx.act(
        lambda: ctx.send("PATCH", f"/estates/{estate_id}", estate_body(values),
                         expected=EXPECTED_REVISION),
        form="estate", values=values,
        again=lambda refusal: _estate_view(ctx, _estate(ctx, estate_id), refusal=refusal),
        done=lambda _: estate_url(estate_id, done="update"))


def _estate(ctx: ConsoleContext, estate_id: str) -> dict:
    try:
        return ctx.call("GET", f"/estates/{estate_id}")
    except Problem as problem:
        if problem.status == 422:      # not even an id: unknown, like any other
            raise Problem(404, "no such estate") from None
        raise


def policy_text(policy: dict | None) -> str:
    """An estate's overrides as its page shows and its form holds them: indented JSON."""
    return json.dumps(policy, ensure_ascii=False, indent=2) if policy else ""


def estate_values(estate: dict) -> dict:
    """An estate's record as its form shows it."""
    return {"name": estate["name"], "company": estate.get("company") or "",
            "region": estate.get("region") or "", "timezone": estate.get("timezone") or "",
            "policy": policy_text(estate.get("policy"))}


def _estate_view(ctx: ConsoleContext, estate: dict, done: str | None = None,
                 refusal: Refusal | None = None) -> Response:
    # changed meanwhile (409): the form holds the record as it is now, not what was typed
    typed = refusal is not None and not refusal.conflict
    return ctx.render(
        "console/admin_estate.html", refusal=refusal, nav="estates", estate=estate, done=done,
        values=refusal.values if typed else estate_values(estate), zones=ZONE_SUGGESTIONS,
        policy=policy_text(estate.get("policy")),
        may_update=ctx.may("PATCH", f"/estates/{estate['id']}"))
