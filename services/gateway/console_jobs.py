"""The console's long work (``/console/jobs/``): an estate's household list imported, and
the exports that grow long at group scale, each run as a job (``jobs``) that the page
only watches — closing it loses nothing, and a gateway restart does nothing twice.

* ``/console/jobs/``: the forms, and the recent jobs this person may watch (asked of the
  store as such: ``JobStore.recent``). The import form takes the estate and its list
  (.csv, .xlsx: read by the ``huifang-import-households`` command's own parser,
  ``shared.household_lists``), no larger than ``GATEWAY_MAX_BODY``
  (a larger one: 413, said on the page). The whole list is checked first: errors by line,
  nothing written; a right one becomes a checked job, whose page says what it holds and
  starts it.
* ``/console/jobs/{id}``: a job's status, rows (or workbooks) done of the total, what
  was written, the lines refused and the ranges not stored; a refresh link, and
  ``static/live.js`` reading ``/console/jobs/{id}/progress`` (JSON) meanwhile. A
  finished export's file: ``/console/jobs/{id}/file``, while it is kept.
* The exports: a survey round's notice-board workbook and a month's revisit plan, of one
  estate or of each of this person's (a zip of the workbooks). A group-wide person has no
  estates of their own ("each" would be the whole group): they choose one for the plan; a
  round's "each" is the person's part of it — for them the whole round. A refused form is
  shown again as it was sent, its error at its field.
* Choosing an estate: one of a person's own from a list; a group-wide person (3,000 and
  more) types it — its id or its full name — helped by a search by the name's beginning
  (``?estate_q=``: intake's ``name_prefix``, on its name index) that fills the fields'
  ``<datalist>`` and a short list, with no JavaScript. Whatever is typed is resolved
  server-side (``choose_estate``). A checked import not yet started is listed for its
  owner, with its start button.

Each step is an operation of the REST API carried out for the person who started the job,
with their roles and estates as they are when it runs (``Accounts.act_as``): a chunk of
1,000 households is ``POST /estates/{id}/households`` with the step's own
Idempotency-Key, so a chunk sent again after a restart is answered as the first time.
Who may watch a job and take its file: whoever may do what it does in all its estates.
"""
import io
import json
import tempfile
import zipfile
from pathlib import Path
from urllib.parse import quote

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from services.gateway import jobs, pages
from services.gateway.console import (
    ZONE,
    ConsoleContext,
    call_as,
    signed_in,
)
from services.gateway.http import json_response
from services.gateway.permissions import may_action
from services.gateway.problems import Problem
from shared import household_lists
from shared.actor import Actor
from shared.schemas.revisit import MONTH

HOME = "/console/jobs/"
IMPORT, SURVEY_EXPORT, PLAN_EXPORT = "households_import", "survey_export", "plan_export"
PERMISSIONS = {IMPORT: "households.import", SURVEY_EXPORT: "survey.rounds.export",
               PLAN_EXPORT: "revisits.monthly_plan"}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZIP = "application/zip"
LIVE_SECONDS = 1
# A chunk in process is no upload: the list as a whole was held to GATEWAY_MAX_BODY.
STEP_BODY_LIMIT = 64 * 1024 * 1024
ERRORS_SHOWN = 200         # lines of errors a page lists; the count says the rest
# The estates a search offers a group-wide person (a longer beginning narrows them).
ESTATE_CHOICES = 50
# An estate typed that none of this person's is: unknown or another's, one answer.
NO_SUCH_ESTATE = "console_job_error_unknown_estate"


def job_store(ctx: ConsoleContext) -> jobs.JobStore:
    return jobs.JobStore(ctx.accounts.repository.db)


# the forms and the list ----------------------------------------------------------------

@signed_in
def jobs_page(ctx: ConsoleContext) -> Response:
    return _jobs_view(ctx)


def _jobs_view(ctx: ConsoleContext, status: int = 200, **context) -> Response:
    store, kinds = job_store(ctx), [kind for kind in PERMISSIONS if _may_kind(ctx, kind)]
    permissions = [PERMISSIONS[kind] for kind in kinds]
    visible = [*store.checked_of(ctx.actor, permissions, ctx.now),   # to start: first
               *store.recent(ctx.actor, permissions)]
    ctx.name_estates([*ctx.actor.estates, *(e for job in visible for e in job["estate_ids"])])
    rounds = (ctx.call("GET", "/survey/rounds", {"limit": "50"})["items"]
              if SURVEY_EXPORT in kinds else [])
    context.setdefault("errors", {})
    context.setdefault("lines", [])
    values = context.setdefault("values", {})
    chooser = ctx.actor.group_wide and bool(kinds) and ctx.may("GET", "/estates")
    searched = ctx.request.args.get("estate_q", "").strip() if ctx.request.method == "GET" \
        else values.get("estate_id", "")      # a refused form: the estate it named, sought
    choices, more = _estate_choices(ctx, searched, context["errors"]) if chooser else ([], False)
    return ctx.render("console/jobs.html", status, nav="jobs", recent=visible,
                      estates=ctx.actor.estates, rounds=rounds, group_wide=ctx.actor.group_wide,
                      chooser=chooser, estate_q=searched, choices=choices, more_choices=more,
                      may_kind=lambda kind: kind in kinds,
                      this_month=ctx.now.astimezone(ZONE).strftime("%Y-%m"),
                      limit_mb=f"{ctx.body_limit / 1024 / 1024:.1f}", **context)


def _may_kind(ctx: ConsoleContext, kind: str) -> bool:
    return may_action(ctx.actor, PERMISSIONS[kind])


# choosing an estate --------------------------------------------------------------------

def _estate_choices(ctx: ConsoleContext, typed: str,
                    errors: dict) -> tuple[list[dict], bool]:
    """The estates whose name starts with ``typed``, or whose id it is: at most
    ``ESTATE_CHOICES`` (and whether there are more). A search intake refuses (too long)
    is said at the search's field."""
    if not typed:
        return [], False
    try:
        found = ctx.call("GET", "/estates", {"name_prefix": typed,
                                             "limit": str(ESTATE_CHOICES)})
    except Problem as problem:
        if problem.status != 422:
            raise
        errors.setdefault("estate_q", "console_job_error_search")
        return [], False
    choices = found["items"]
    by_id = _own_estate(ctx, typed)
    if by_id is not None and typed not in {estate["id"] for estate in choices}:
        choices = [by_id, *choices]
    ctx.know_estate_names({estate["id"]: estate["name"] for estate in choices})
    return choices, found.get("next_cursor") is not None


def choose_estate(ctx: ConsoleContext, typed: str) -> tuple[str | None, str | None]:
    """The estate ``typed`` names for this person — its id, or the full name of exactly
    one of their estates — else why not (a message key). Intake not knowing it and its
    being outside their estates are one answer: a form never tells whether another's
    estate exists, nor its name."""
    typed = typed.strip()
    if not typed:
        return None, "console_job_error_estate"
    if _own_estate(ctx, typed) is not None:
        return typed, None
    try:     # (``GET /estates`` answers a person's own estates alone)
        named = ctx.call("GET", "/estates", {"name": typed, "limit": "2"})["items"]
    except Problem as problem:
        if problem.status != 422:      # longer than any name
            raise
        named = []
    if len(named) > 1:
        return None, "console_job_error_same_name"
    return (named[0]["id"], None) if named else (None, NO_SUCH_ESTATE)


def _own_estate(ctx: ConsoleContext, estate_id: str) -> dict | None:
    """The record of ``estate_id`` if it is an estate of this person's that intake knows."""
    if not ctx.actor.covers(estate_id):
        return None
    return _found(ctx, f"/estates/{quote(estate_id, safe='')}")


def _found(ctx: ConsoleContext, path: str) -> dict | None:
    """The record at ``path``, None if this person may see none there (or the id is bad)."""
    try:
        return ctx.call("GET", path)
    except Problem as problem:
        if problem.status not in (404, 422):
            raise
        return None


# importing households ----------------------------------------------------------------------

@signed_in
def upload(ctx: ConsoleContext) -> Response:
    """The list checked, line by line: its errors on the form (nothing written), or a
    checked job to start."""
    if not may_action(ctx.actor, PERMISSIONS[IMPORT]):
        raise Problem(403, "your role may not import households")
    form, files = ctx.request.form, ctx.request.files
    typed = form.get("estate_id", "").strip()
    sent = files.get("file")
    again = {"failed": IMPORT, "values": {"estate_id": typed, "sheet": form.get("sheet", "")}}
    estate_id, wrong = choose_estate(ctx, typed)
    if estate_id is None:
        return _jobs_view(ctx, 422, errors={"estate_id": wrong}, **again)
    if sent is None or not sent.filename:
        return _jobs_view(ctx, 422, errors={"file": "console_job_error_no_file"}, **again)
    suffix = Path(sent.filename).suffix.lower()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"list{suffix}"
        sent.save(path)
        try:
            rows, origins, errors = household_lists.prepare(path, form.get("sheet") or None)
        except (household_lists.SheetError, OSError, ValueError, KeyError) as exc:
            why = str(exc).replace(path.name, sent.filename)
            return _jobs_view(ctx, 422, errors={"file": "console_job_error_unreadable"},
                              unreadable=why, **again)
    if errors:
        lines = household_lists.describe(errors)
        return _jobs_view(ctx, 422, errors={"file": "console_job_error_lines"},
                          lines=lines[:ERRORS_SHOWN], more=max(0, len(lines) - ERRORS_SHOWN),
                          file_name=sent.filename, **again)
    steps, units = [], []
    for start in range(0, len(rows), household_lists.SEND_CHUNK):
        part = rows[start:start + household_lists.SEND_CHUNK]
        lines_of = origins[start:start + household_lists.SEND_CHUNK]
        numbers = [number for found in lines_of for number in found]
        steps.append({"estate_id": estate_id, "rows": part, "lines": lines_of,
                      "span": [min(numbers), max(numbers)]})
        units.append(len(part))
    job = job_store(ctx).create(
        IMPORT, ctx.actor, [estate_id], steps, units, ctx.now,
        permission=PERMISSIONS[IMPORT],
        about={"file": sent.filename,
               "contacts": sum(len(row["contacts"]) for row in rows)})
    return redirect(_job_url(job["_id"]), code=303)


def too_large(ctx: ConsoleContext) -> Response:
    """A list over ``GATEWAY_MAX_BODY``: refused before it is read (its CSRF token with
    it), said on a page of its own with the limit and the way back."""
    return pages.render("console/job_too_large.html", ctx.locale, 413, user=None,
                        known=lambda key: False, csrf_token="", may=lambda *args: False,
                        limit_mb=f"{ctx.body_limit / 1024 / 1024:.1f}")


def upload_or_refuse(ctx: ConsoleContext) -> Response:
    length = ctx.request.content_length
    if length is not None and length > ctx.body_limit:
        return too_large(ctx)
    try:
        return upload(ctx)
    except RequestEntityTooLarge:     # a body without its length, read past the limit
        return too_large(ctx)


def import_step(actor: Actor, services, job: dict, step: dict) -> jobs.Outcome:
    """One chunk sent (``household_lists.add_answer`` reads intake's answer, as the command's)."""
    given = step["input"]
    report: dict = {"imported": 0, "updated": 0, "contacts": 0, "refused": {}, "failed": []}
    try:
        response = call_as(actor, services, STEP_BODY_LIMIT, "POST",
                           f"/estates/{quote(given['estate_id'], safe='')}/households",
                           body={"rows": given["rows"]}, key=jobs.step_key(job, step))
        answer = json.loads(response.get_data())
    except Problem as problem:
        if problem.status != 422:
            raise
        answer = {"errors": problem.errors or {"rows": [problem.detail]}}
    household_lists.add_answer(report, answer, given["rows"], given["lines"])
    return jobs.Outcome(
        done=len(given["rows"]),
        counts={name: report[name] for name in ("imported", "updated", "contacts")},
        failed=[{"from": first, "to": last, "why": why}
                for first, last, why in report["failed"]],
        refused=[{"line": line, "column": column,
                  "messages": "; ".join(map(str, messages)) if isinstance(messages, list)
                  else str(messages)}
                 for line, found in sorted(report["refused"].items())
                 for column, messages in found.items()])


# exporting -----------------------------------------------------------------------------------

@signed_in
def export(ctx: ConsoleContext) -> Response:
    """A survey round's notice-board workbook or a month's revisit plan, of one estate or
    of each of this person's, as a job. A group-wide person's plan is of the one estate
    they chose: theirs are the whole group's. The estate chosen is checked as this
    person's (``choose_estate``) before it is checked against the round."""
    form = ctx.request.form
    kind = form.get("kind", "")
    if kind not in (SURVEY_EXPORT, PLAN_EXPORT):
        raise Problem(404, "no such export")
    if not may_action(ctx.actor, PERMISSIONS[kind]):
        raise Problem(403, "your role may not export this")
    values = {name: form.get(name, "").strip() for name in ("round_id", "estate_id", "month")}

    def refuse(field: str, key: str) -> Response:
        """The form shown again as it was sent, ``key``'s words under ``field``."""
        return _jobs_view(ctx, 422, errors={field: key}, failed=kind, values=values)

    if kind == SURVEY_EXPORT:
        round_id = values["round_id"]
        round_ = _round(ctx, round_id) if round_id else None
        if round_ is None:
            return refuse("round_id", "console_job_error_round")
        candidates = round_["estate_ids"]
        about = {"round_id": round_id, "title": round_["title"]}
    else:
        month = values["month"]
        if not MONTH.fullmatch(month):     # the plan's own rule: a month it can export
            return refuse("month", "console_job_error_month")
        candidates = list(ctx.actor.estates)
        about = {"month": month, "title": month}
    field = f"{kind}-estate_id"     # said under the form sent: each has its estate field
    chosen = None
    if values["estate_id"]:
        chosen, wrong = choose_estate(ctx, values["estate_id"])
        if chosen is None:
            return refuse(field, wrong or NO_SUCH_ESTATE)
    elif kind == PLAN_EXPORT and ctx.actor.group_wide:
        return refuse(field, "console_job_error_one_estate")
    if kind == SURVEY_EXPORT and chosen and chosen not in candidates:
        return refuse(field, "console_job_error_round_estate")
    estates = [estate for estate in ([chosen] if chosen else candidates)
               if ctx.actor.covers(estate)]
    if not estates:
        return refuse(field, "console_job_error_estate")
    ctx.name_estates(estates)
    about["names"] = [ctx.estate_name(estate) for estate in estates]
    steps = [{**{key: about[key] for key in ("round_id", "month") if key in about},
              "estate_id": estate, "name": ctx.estate_name(estate),
              "span": [ctx.estate_name(estate)] * 2} for estate in estates]
    job = job_store(ctx).create(kind, ctx.actor, estates, steps, [1] * len(steps), ctx.now,
                                queued=True, permission=PERMISSIONS[kind], about=about)
    return redirect(_job_url(job["_id"]), code=303)


def _round(ctx: ConsoleContext, round_id: str) -> dict | None:
    """The survey round chosen, None if this person may see no such round."""
    return _found(ctx, f"/survey/rounds/{quote(round_id, safe='')}")


def export_step(actor: Actor, services, job: dict, step: dict) -> jobs.Outcome:
    given = step["input"]
    estate = quote(given["estate_id"], safe="")
    if job["kind"] == SURVEY_EXPORT:
        path, query = f"/survey/rounds/{quote(given['round_id'], safe='')}/export", {
            "estate_id": given["estate_id"]}
    else:
        path, query = f"/revisits/plans/{estate}/{given['month']}/export", None
    response = call_as(actor, services, STEP_BODY_LIMIT, "GET", path, query)
    return jobs.Outcome(done=1, file=response.get_data())


def assemble(job: dict, files: list[bytes]) -> tuple[bytes, str, str] | None:
    """An import keeps no file; an export of one estate is its workbook, of several a zip
    of them, each named by its estate."""
    if job["kind"] == IMPORT or not files:
        return None
    title = job["about"].get("title") or job["kind"]
    if len(files) == 1:
        return files[0], f"{title}.xlsx", XLSX
    buffer = io.BytesIO()
    names = job["about"].get("names") or job["estate_ids"]   # as the steps ran: in order
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, content in zip(names, files, strict=False):
            bundle.writestr(f"{name}-{title}.xlsx", content)
    return buffer.getvalue(), f"{title}.zip", ZIP


# running (every gateway instance, on a timer) -------------------------------------------------

def run_jobs(accounts, services) -> dict | None:
    """One job claimed and worked on as its starter (``jobs.run_next``)."""
    store = jobs.JobStore(accounts.repository.db)

    def run_step(job: dict, step: dict) -> jobs.Outcome:
        actor = accounts.act_as(job["started_by"])
        if actor is None:
            raise PermissionError("the person who started this job may no longer act")
        runner = import_step if job["kind"] == IMPORT else export_step
        return runner(actor, services, job, step)

    return jobs.run_next(store, run_step, accounts.clock.now, assemble)


# watching ------------------------------------------------------------------------------------

def _job_url(job_id: str) -> str:
    return f"{HOME}{quote(job_id, safe='')}"


def _visible_job(ctx: ConsoleContext, job_id: str) -> dict:
    job = job_store(ctx).get(job_id)
    if job is None or not jobs.may_see(job, ctx.actor, may_action):
        raise Problem(404, "no such job")
    return job


def progress_of(job: dict) -> dict:
    """What the page shows of a job, as its poller reads it."""
    counts = job.get("counts") or {}
    return {"id": job["_id"], "kind": job["kind"], "status": job["status"],
            "done": job["done"], "total": job["total"],
            "percent": round(100 * job["done"] / job["total"]) if job["total"] else 100,
            "written": counts.get("imported", 0) + counts.get("updated", 0),
            "imported": counts.get("imported", 0), "updated": counts.get("updated", 0),
            "contacts": counts.get("contacts", 0), "failed": job.get("failed") or [],
            "refused": len(job.get("refused") or []), "runs": job.get("runs", 0),
            "error": job.get("error"), "has_file": bool(job.get("has_file"))}


@signed_in
def job_page(ctx: ConsoleContext, job_id: str) -> Response:
    job = _visible_job(ctx, job_id)
    ctx.name_estates(job["estate_ids"])
    return ctx.render("console/job.html", nav="jobs", job=job, progress=progress_of(job),
                      live_seconds=LIVE_SECONDS, finished=job["status"] in jobs.FINISHED,
                      refused=(job.get("refused") or [])[:ERRORS_SHOWN])


@signed_in
def progress(ctx: ConsoleContext, job_id: str) -> Response:
    return json_response(progress_of(_visible_job(ctx, job_id)),
                         headers={"Cache-Control": "no-store"})


@signed_in
def start(ctx: ConsoleContext, job_id: str) -> Response:
    job = _visible_job(ctx, job_id)
    if job["status"] == jobs.CHECKED:
        job_store(ctx).start(job_id, ctx.now)
    return redirect(_job_url(job_id), code=303)


@signed_in
def download(ctx: ConsoleContext, job_id: str) -> Response:
    _visible_job(ctx, job_id)
    kept = job_store(ctx).file(job_id, ctx.now)
    if kept is None:
        raise Problem(404, "no file: the job is not done, or its file has expired")
    return Response(kept["content"], mimetype=kept["mimetype"], headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(kept['name'])}",
        "Cache-Control": "no-store"})

