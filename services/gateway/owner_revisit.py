"""The owner's online revisit (``/r/{token}``): the link in a revisit's message lets the
owner answer the follow-up themselves — how satisfied, whether the problem is solved, in
their own words — instead of waiting for the call.

revisit decides everything (``online_revisit``, ``record_online_revisit``); this page shows
the state it answers — the form while open, thanks once answered, closed or expired — and
hands the answer over as the form gave it. The model is the survey page (``owner``): same
context, rate limits, form nonce and refusal of unknown links.
"""
from nameko.exceptions import RemoteError
from werkzeug.datastructures import MultiDict
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from services.gateway import pages
from services.gateway.owner import OwnerContext
from services.gateway.problems import from_exception
from shared.schemas.vocabulary import SATISFACTION_LEVELS

# What a link's state shows, and with which HTTP status (``open`` shows the form).
REVISIT_STATES = {"answered": ("revisit_thanks", 200), "closed": ("revisit_closed", 410),
                  "expired": ("revisit_expired", 410)}
RESOLVED_VALUES = {"yes": True, "no": False}
COMMENTS_MAX_LENGTH = 2000


def revisit_page(ctx: OwnerContext, token: str) -> Response:
    if ctx.over_limit(token):
        return ctx.message("too_many", 429)
    revisit = _online_revisit(ctx, token)
    if revisit is None:
        return ctx.message("unknown", 404)
    return _revisit_for_state(ctx, token, revisit)


def revisit_submit(ctx: OwnerContext, token: str) -> Response:
    refusal = ctx.refuse_post(token)
    if refusal is not None:
        return refusal
    form = ctx.request.form
    revisit = _online_revisit(ctx, token)
    if revisit is None:
        return ctx.message("unknown", 404)
    if revisit["state"] == "answered":    # a second submit: the first counted, say thanks
        return redirect(f"/r/{token}", code=303)
    if revisit["state"] != "open":
        return _revisit_for_state(ctx, token, revisit)
    answer, errors = _read_answer(form)
    if errors:
        return _revisit_form(ctx, token, revisit, answer, errors, status=422)
    try:
        ctx.services.call("revisit.record_online_revisit", token, {
            "satisfaction": answer["satisfaction"],
            "resolved": RESOLVED_VALUES[answer["resolved"]], "comments": answer["comments"]})
    except RemoteError as error:
        if error.exc_type != "InvalidInput":
            raise
        fields = from_exception(error).errors or {}
        if "token" in fields:     # answered (the other of two submits), closed or expired
            return redirect(f"/r/{token}", code=303)
        errors = {field: "revisit_error_invalid" for field in fields}
        return _revisit_form(ctx, token, revisit, answer, errors, status=422)
    return redirect(f"/r/{token}", code=303)


def _online_revisit(ctx: OwnerContext, token: str) -> dict | None:
    """What revisit shows for the link; None for a link it does not know."""
    return ctx.read("revisit.online_revisit", token)


def _revisit_for_state(ctx: OwnerContext, token: str, revisit: dict) -> Response:
    if revisit["state"] == "open":
        return _revisit_form(ctx, token, revisit)
    kind, status = REVISIT_STATES.get(revisit["state"], ("unknown", 404))
    return ctx.message(kind, status)


def _revisit_form(ctx: OwnerContext, token: str, revisit: dict, answer: dict | None = None,
                  errors: dict | None = None, status: int = 200) -> Response:
    return pages.render(
        "owner/revisit.html", ctx.locale, status, revisit=revisit, token=token,
        nonce=pages.form_nonce(ctx.secret, token, ctx.now), levels=SATISFACTION_LEVELS,
        answer=answer or {}, errors=errors or {})


def _read_answer(form: MultiDict) -> tuple[dict, dict]:
    """The form's answer (choices as the radio values, so a re-shown form keeps them) and
    what is missing or wrong, by field: both choices are needed, comments are optional."""
    answer, errors = {"comments": form.get("comments", "")}, {}
    for field, allowed in (("satisfaction", SATISFACTION_LEVELS),
                           ("resolved", RESOLVED_VALUES)):
        value = form.get(field)
        if value in allowed:
            answer[field] = value
        else:
            errors[field] = "revisit_error_choose" if not value else "revisit_error_invalid"
    if len(answer["comments"]) > COMMENTS_MAX_LENGTH:
        errors["comments"] = "revisit_error_too_long"
    return answer, errors
