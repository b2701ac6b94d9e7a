"""The console's follow-ups of unsatisfied revisits (回访结果处理).

「向相关部门反馈问题和建议,并进行改进措施的制定和实施」 and 「于一个月内向业主反馈」: a
work-order or routine revisit that left the owner unsatisfied, or the problem unresolved,
opened a follow-up for the responsible department (the revisit service's
``followups``). Its pages, beside the revisits' (``console_revisits.py``):

* ``/console/revisits/followups/``: the unanswered follow-ups of the user's estates —
  those past the answer's due time first, then those still open and those with measures
  recorded — each part the follow-up API's list (``overdue``, ``status``, by the answer's
  due time), its rows grouped by department. With ``part``: one part, a page at a time.
* ``/console/revisits/followups/{id}``: the owner's words, the revisit it follows, the
  measures recorded with the person who carries each out, the answer given, the answer's
  due time (marked overdue once past); while it is unanswered the forms to record measures
  and, once measures are recorded, to record the answer given to the owner.
* As for complaints and revisits: every read and action is an operation of
  ``api.OPERATIONS`` (permissions, estate scope, the actor in history), each form with its
  own request key and the state its page showed; a refusal is said on the page (409, 422).
"""
from dataclasses import dataclass
from itertools import groupby
from urllib.parse import quote, urlencode

from werkzeug.wrappers import Response

from services.gateway.console import (
    EXPECTED_STATUS,
    PAGE_SIZE,
    ConsoleContext,
    Refusal,
    parted_worklist,
    signed_in,
    staff_names,
    time_left,
)
from services.gateway.permissions import confined_department
from services.gateway.problems import Problem

HOME = "/console/revisits/followups/"
UNANSWERED = ("open", "measures_recorded")
# form -> (the API's action, the form's fields); offered from the states listed
FORMS = {"measures": ("measures", "responsible"), "answer": ("answer",)}
OFFERED_FROM = {"measures": UNANSWERED, "answer": ("measures_recorded",)}


@dataclass(frozen=True)
class Part:
    """A part of the worklist: the follow-up list's filters."""
    name: str
    query: tuple[tuple[str, str], ...]


PARTS = (Part("overdue", (("overdue", "true"),)),
         Part("open", (("status", "open"), ("overdue", "false"))),
         Part("measures_recorded", (("status", "measures_recorded"), ("overdue", "false"))))


def followup_url(followup_id: str, **query) -> str:
    url = f"{HOME}{quote(followup_id, safe='')}"
    return f"{url}?{urlencode(query)}" if query else url


# the worklist ------------------------------------------------------------------------------

@signed_in
def worklist(ctx: ConsoleContext) -> Response:
    args = ctx.request.args
    # a department's staff see their department's alone (the API fixes it): no typed filter
    typed = ("estate_id",) + (("department",) if confined_department(ctx.actor) is None else ())
    filters = {name: args[name].strip() for name in typed if args.get(name, "").strip()}
    return parted_worklist(
        ctx, "console/followups.html", home=HOME, parts=PARTS, filters=filters,
        rows=lambda part, cursor: _rows(ctx, part, filters, cursor),
        reset_notice="console_fu_reset", followup_url=followup_url,
        by_department=by_department)


def _rows(ctx: ConsoleContext, part: Part, filters: dict, cursor: str | None = None):
    """A part's follow-ups (each with the time left to its answer's due time) and the next
    cursor."""
    asked = {**filters, **dict(part.query), "limit": str(PAGE_SIZE)}
    if cursor:
        asked["cursor"] = cursor
    page = ctx.call("GET", "/followups", asked)
    return ([(followup, time_left(followup["answer_due_at"], ctx.now))
             for followup in page["items"]], page["next_cursor"])


def by_department(rows: list) -> list[tuple[str, list]]:
    """The rows grouped by department (departments by name), each group in the order the
    list gave it (the answer due soonest first)."""
    ordered = sorted(rows, key=lambda row: row[0]["department"])   # stable: keeps due order
    return [(department, list(group))
            for department, group in groupby(ordered, key=lambda row: row[0]["department"])]


# a follow-up's page ------------------------------------------------------------------------

DONE = tuple(FORMS)


@signed_in
def followup_page(ctx: ConsoleContext, followup_id: str) -> Response:
    followup = _followup(ctx, followup_id)
    done = ctx.request.args.get("done")
    return _view(ctx, followup, done=done if done in DONE else None)


@signed_in
def act(ctx: ConsoleContext, followup_id: str, action: str) -> Response:
    if action not in FORMS:
        raise Problem(404, "no such action")
    values = {name: ctx.request.form.get(name, "") for name in FORMS[action]}
    body = {name: value for name, value in values.items() if value.strip()}
    return ctx.act(
        lambda: ctx.send("POST", f"/followups/{followup_id}/{action}", body,
                         expected=EXPECTED_STATUS),
        form=action, values=values,
        again=lambda refusal: _view(ctx, _followup(ctx, followup_id), refusal=refusal),
        done=lambda _: followup_url(followup_id, done=action))


def _followup(ctx: ConsoleContext, followup_id: str) -> dict:
    try:
        return ctx.call("GET", f"/followups/{quote(followup_id, safe='')}")
    except Problem as problem:
        if problem.status == 422:      # not even an id: unknown, like any other
            raise Problem(404, "no such follow-up") from None
        raise


def _view(ctx: ConsoleContext, followup: dict, done: str | None = None,
          refusal: Refusal | None = None) -> Response:
    path = f"/followups/{followup['id']}"
    forms = [name for name in FORMS if followup["status"] in OFFERED_FROM[name]
             and ctx.may("POST", f"{path}/{name}")]
    people = [{"by": measure.get("recorded_by")} for measure in followup.get("measures", ())]
    people.append({"by": (followup.get("answer") or {}).get("by")})
    ctx.name_estates([followup["estate_id"]])
    return ctx.render(
        "console/followup.html", refusal=refusal, followup=followup, forms=forms, done=done,
        left=time_left(followup["answer_due_at"], ctx.now)
        if followup["status"] in UNANSWERED else None,
        names=staff_names(ctx, people),
        action_url=lambda action: f"{followup_url(followup['id'])}/{action}")


def followup_of(ctx: ConsoleContext, revisit: dict) -> dict | None:
    """The follow-up a done revisit opened (the revisit page links it), if there is one
    and this person may read follow-ups."""
    if revisit["status"] != "done" or revisit["kind"] == "complaint" \
            or not ctx.may("GET", "/followups"):
        return None
    found = ctx.call("GET", "/followups", {"revisit_id": revisit["id"], "limit": "1"})["items"]
    return found[0] if found else None
