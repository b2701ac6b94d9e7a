"""The console's satisfaction surveys (满意度调查): rounds, their live response, reports,
rankings and rectifications.

* ``/console/surveys/``: the rounds of the user's estates, newest first, by status.
* ``/console/surveys/new``: a round — title, kind (an event round says what it is
  about), estates, when it opens and closes, the template's categories asked, everyone
  or a sample stratified by building or unit, anonymous or not, reminders.
* ``/console/surveys/{id}``: while invitations are written, how far that is; once open,
  the response rate of each estate, refreshed in place every few seconds
  (``static/live.js`` reads ``…/live``; without JavaScript, the page's own
  refresh link); the report — satisfaction per category drawn as ECharts charts from the
  tables beside them (``static/dashboard.js``), the owners' common opinions with their
  quotes — the ranking across estates (an estate under the minimum of questionnaires is
  listed apart, never ranked), the rectifications with a form to add one and to move
  each on, and the forms to close the round and publish its result on the notice board
  (the printed sheet: ``console_records.survey_notice``). A rectification's department is
  offered from the ones the round's estates' complaint routing names
  (``intake.list_departments``, the list survey checks it against), its errors under
  each field.
* As for complaints and revisits (``console.py``): every read and action is an operation
  of ``api.OPERATIONS`` for this person, each form with its own request key.
"""
import json
from urllib.parse import quote, urlencode

from werkzeug.wrappers import Response

from services.gateway.accounts import known_departments
from services.gateway.console import (
    PAGE_SIZE,
    ConsoleContext,
    Refusal,
    local_moment,
    signed_in,
    time_left,
)
from services.gateway.problems import Problem
from shared.schemas.survey import (
    RECTIFICATION_STATUSES,
    RECTIFICATION_UPDATES,
    ROUND_STATUSES,
    SAMPLE_MODES,
    STRATA,
)
from shared.schemas.vocabulary import ROUND_KINDS

HOME = "/console/surveys/"
RECTIFICATIONS = f"{HOME}rectifications"
LIVE_SECONDS = 10              # how often an open round's page reads its response again
ROUND_FIELDS = ("title", "kind", "occasion", "estate_ids", "opens_at", "closes_at",
                "template_id", "categories", "sample_mode", "sample_rate", "sample_by",
                "anonymous", "reminder_interval_days", "reminder_max")
RECTIFICATION_FIELDS = ("estate_id", "category", "action", "department", "due_at")
ACTIONS = ("close", "publish", "rectifications")


def round_url(round_id: str, **query) -> str:
    url = f"{HOME}{quote(round_id, safe='')}"
    return f"{url}?{urlencode(query)}" if query else url


# the rounds ----------------------------------------------------------------------------------

@signed_in
def rounds_page(ctx: ConsoleContext) -> Response:
    args = ctx.request.args
    filters = {name: args[name] for name in ("estate_id", "status") if args.get(name)}
    cursor = args.get("cursor")
    page = ctx.call("GET", "/survey/rounds", {**filters, "limit": str(PAGE_SIZE),
                                              **({"cursor": cursor} if cursor else {})})
    next_url = (f"{HOME}?{urlencode({**filters, 'cursor': page['next_cursor']})}"
                if page["next_cursor"] else None)
    ctx.name_estates(ctx.actor.estates)
    return ctx.render("console/surveys.html", nav="surveys", rounds=page["items"],
                      filters=filters, statuses=ROUND_STATUSES, estates=ctx.actor.estates,
                      group_wide=ctx.actor.group_wide, next_url=next_url,
                      may_create=ctx.may("POST", "/survey/rounds"))


# rectifications ------------------------------------------------------------------------------

@signed_in
def rectifications_page(ctx: ConsoleContext) -> Response:
    """The rectifications of the user's estates — an estate manager's to chase, a
    department's to carry out — by estate and due time, overdue marked, filtered by estate,
    status or overdue. Each links its round, where it is moved on."""
    args = ctx.request.args
    filters = {name: args[name] for name in ("estate_id", "status") if args.get(name)}
    if args.get("overdue") == "true":
        filters["overdue"] = "true"
    cursor = args.get("cursor")
    page = ctx.call("GET", "/survey/rectifications", {
        **filters, "limit": str(PAGE_SIZE), **({"cursor": cursor} if cursor else {})})
    rows = [(item, time_left(item.get("due_at"), ctx.now) if item["status"] != "done" else None)
            for item in page["items"]]
    next_url = (f"{RECTIFICATIONS}?{urlencode({**filters, 'cursor': page['next_cursor']})}"
                if page["next_cursor"] else None)
    ctx.name_estates([*(item["estate_id"] for item in page["items"]), *ctx.actor.estates])
    return ctx.render("console/rectifications.html", nav="surveys", rows=rows,
                      filters=filters, statuses=RECTIFICATION_STATUSES,
                      estates=ctx.actor.estates, group_wide=ctx.actor.group_wide,
                      next_url=next_url)


# a new round ---------------------------------------------------------------------------------

@signed_in
def new_round(ctx: ConsoleContext) -> Response:
    return _round_form(ctx)


@signed_in
def create_round(ctx: ConsoleContext) -> Response:
    posted = ctx.request.form
    values = {name: posted.get(name, "") for name in ROUND_FIELDS}
    values["estate_ids"] = posted.getlist("estate_ids")
    values["categories"] = posted.getlist("categories")
    return ctx.act(lambda: ctx.send("POST", "/survey/rounds", round_body(values)),
                   values=values, refused=(422,),
                   again=lambda refusal: _round_form(ctx, refusal),
                   done=lambda made: round_url(made["id"], done="create"))


def round_body(values: dict) -> dict:
    """The API body of the new-round form: blank fields left out (the service's default,
    or its "required"), local times as the moments they name, the sample and reminders
    as the service's nested objects, the share of households in percent as a fraction."""
    body: dict = {name: values[name].strip() for name in ("title", "kind", "occasion",
                                                          "template_id")
                  if values.get(name, "").strip()}
    body["estate_ids"] = _estate_list(values.get("estate_ids") or [])
    for name in ("opens_at", "closes_at"):
        if values.get(name, "").strip():
            body[name] = local_moment(values[name])
    if values.get("categories"):
        body["categories"] = list(values["categories"])
    sample = {"mode": values.get("sample_mode") or "all",
              "by": values.get("sample_by") or "building"}
    if sample["mode"] != "all":
        sample["rate"] = _number(values.get("sample_rate"), scale=0.01)
    body["sample"] = sample
    body["anonymous"] = values.get("anonymous", "true") != "false"
    reminders = {key: _number(values.get(f"reminder_{key}"), whole=key == "max")
                 for key in ("interval_days", "max") if values.get(f"reminder_{key}", "").strip()}
    if reminders:
        body["reminders"] = reminders
    return body


def _estate_list(entries: list[str]) -> list[str]:
    """Checked estates, or one typed per line (a group-wide user's): each once, in order."""
    found: list[str] = []
    for entry in entries:
        for estate in entry.replace(",", "\n").splitlines():
            if estate.strip() and estate.strip() not in found:
                found.append(estate.strip())
    return found


def _number(text: str | None, scale: float = 1, whole: bool = False):
    """A typed number as the API takes it; what is no number passed on for it to refuse."""
    try:
        value = float((text or "").strip())
    except ValueError:
        return text
    return int(value) if whole and value.is_integer() else value * scale


def _round_form(ctx: ConsoleContext, refusal: Refusal | None = None) -> Response:
    questionnaire = ctx.call("GET", "/survey/templates/default")
    templates = ctx.call("GET", "/survey/templates")
    ctx.name_estates(ctx.actor.estates)
    return ctx.render("console/survey_new.html", refusal=refusal, nav="surveys",
                      kinds=ROUND_KINDS, modes=SAMPLE_MODES, strata=STRATA,
                      questionnaire=questionnaire, templates=templates, estates=ctx.actor.estates,
                      group_wide=ctx.actor.group_wide)


# a round's page ------------------------------------------------------------------------------

@signed_in
def round_page(ctx: ConsoleContext, round_id: str) -> Response:
    done = ctx.request.args.get("done")
    return _round_view(ctx, _round(ctx, round_id),
                       done=done if done in (*ACTIONS, "create", "update") else None)


@signed_in
def live(ctx: ConsoleContext, round_id: str) -> Response:
    """An open round's response as it stands: what ``static/live.js`` writes into the page."""
    round_ = _round(ctx, round_id)
    report = _report(ctx, round_)
    body = {"status": round_["status"], "progress": _progress(round_)}
    if report:
        body.update(returned=report["returned"], invited=report["invited"],
                    response_rate=report["response_rate"],
                    estates={line["estate_id"]: {key: line.get(key) for key in (
                        "returned", "invited", "response_rate")}
                        for line in report["estates"]})
    return Response(json.dumps(body, ensure_ascii=False), mimetype="application/json",
                    headers={"Cache-Control": "no-store"})


@signed_in
def act(ctx: ConsoleContext, round_id: str, action: str) -> Response:
    """Close the round, publish its result, or add a rectification."""
    if action not in ACTIONS:
        raise Problem(404, "no such action")
    posted = ctx.request.form
    values = {name: posted.get(name, "") for name in (*RECTIFICATION_FIELDS, "note")}
    if action == "close":
        body = None
    elif action == "publish":
        body = {"estate_ids": posted.getlist("estate_ids") or None,
                **({"note": values["note"].strip()} if values["note"].strip() else {})}
    else:
        body = {name: values[name].strip() for name in RECTIFICATION_FIELDS
                if values[name].strip()}
        if "due_at" in body:
            body["due_at"] = local_moment(body["due_at"])
    return ctx.act(
        lambda: ctx.send("POST", f"/survey/rounds/{quote(round_id, safe='')}/{action}", body),
        form=action, values=values,
        again=lambda refusal: _round_view(ctx, _round(ctx, round_id), refusal=refusal),
        done=lambda _: round_url(round_id, done=action))


@signed_in
def update_rectification(ctx: ConsoleContext, round_id: str, rectification_id: str) -> Response:
    posted = ctx.request.form
    body = {"status": posted.get("status", "")}
    if posted.get("note", "").strip():
        body["note"] = posted["note"].strip()
    return ctx.act(
        lambda: ctx.send("PATCH", f"/survey/rectifications/{quote(rectification_id, safe='')}",
                         body),
        form=f"update-{rectification_id}",
        again=lambda refusal: _round_view(ctx, _round(ctx, round_id), refusal=refusal),
        done=lambda _: round_url(round_id, done="update"))


def _round_view(ctx: ConsoleContext, round_: dict, done: str | None = None,
                refusal: Refusal | None = None) -> Response:
    report = _report(ctx, round_)
    ranking = (ctx.call("GET", f"/survey/rounds/{quote(round_['id'], safe='')}/ranking")
               if report and ctx.may("GET", f"/survey/rounds/{round_['id']}/ranking") else None)
    rectifications = ctx.call("GET", "/survey/rectifications",
                              {"round_id": round_["id"]})["items"]
    path = f"/survey/rounds/{round_['id']}"
    estates = [estate for estate in round_["estate_ids"] if ctx.actor.covers(estate)]
    ctx.name_estates([*estates, *(item["estate_id"] for item in rectifications)])
    may_rectify = (round_["status"] in ("open", "closed")
                   and ctx.may("POST", f"{path}/rectifications"))
    return ctx.render(
        "console/survey_round.html", refusal=refusal, nav="surveys", round=round_,
        report=report, ranking=ranking, rectifications=rectifications,
        progress=_progress(round_), done=done, live_seconds=LIVE_SECONDS,
        updates=RECTIFICATION_UPDATES,
        may_close=round_["status"] == "open" and ctx.may("POST", f"{path}/close"),
        may_publish=round_["status"] == "closed" and ctx.may("POST", f"{path}/publish"),
        may_rectify=may_rectify,
        # the ones survey accepts (``intake.list_departments``), for the form's list
        departments=known_departments(ctx.services)(estates) if may_rectify and estates
        else [],
        # offered on every rectification of the round: asked by action, not by one's route
        may_update=ctx.may_action("survey.rectifications.update"),
        estates=estates, categories=_categories(round_))


def _round(ctx: ConsoleContext, round_id: str) -> dict:
    try:
        return ctx.call("GET", f"/survey/rounds/{quote(round_id, safe='')}")
    except Problem as problem:
        if problem.status == 422:      # not even an id: unknown, like any other
            raise Problem(404, "no such round") from None
        raise


def _report(ctx: ConsoleContext, round_: dict) -> dict | None:
    """The round's report once it is open (over the user's estates when not all of the
    round's are theirs); None before."""
    if round_["status"] not in ("open", "closed"):
        return None
    mine = [estate for estate in round_["estate_ids"] if ctx.actor.covers(estate)]
    query = {"estate_id": mine[0]} if len(mine) == 1 and len(round_["estate_ids"]) > 1 else None
    return ctx.call("GET", f"/survey/rounds/{quote(round_['id'], safe='')}/report", query)


def _progress(round_: dict) -> dict:
    progress = round_.get("progress") or {}
    return {"invited": progress.get("invited", 0), "issued": progress.get("issued", 0),
            "households_seen": progress.get("households_seen", 0),
            "done": bool(progress.get("done"))}


def _categories(round_: dict) -> list[tuple[str, str]]:
    """(key, label) of every category the round asks, for the rectification form."""
    labels = round_.get("labels") or {}
    return [(key, labels.get(key, [key])[0]) for key in round_.get("categories") or []]
