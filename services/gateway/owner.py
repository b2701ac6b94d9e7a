"""The owners' pages: no login — the link's token is the credential, so each page
reveals nothing without a valid one, limits how often a token or an address may call,
and never writes a token to the log in full.

The survey questionnaire (``/s/{token}``) asks ``survey`` what the invitation allows
(``get_questionnaire``) and records answers with ``submit_response``; a page of its own
for each state: not yet open, open, answered (thank you), closed or expired, unknown.
"""
import logging
from dataclasses import dataclass
from datetime import datetime

from nameko.exceptions import RemoteError
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from services.gateway import limits, pages
from services.gateway.problems import from_exception

log = logging.getLogger(__name__)

# What a survey link's state shows, and with which HTTP status.
SURVEY_STATES = {"answered": ("thanks", 200), "not_open": ("not_open", 200),
                 "closed": ("closed", 410), "expired": ("closed", 410)}
ANSWER_VALUES = {"5": 5, "4": 4, "3": 3, "2": 2, "1": 1, "na": None}
ANSWER_NAMES = {value: key for key, value in ANSWER_VALUES.items()}


@dataclass
class OwnerContext:
    """What an owner page needs: the services, the store for rate limits, the signing key."""
    services: object          # api.Services
    repository: object        # the gateway's repository (rate counters)
    secret: str
    now: datetime
    request: Request

    @property
    def locale(self) -> str:
        return pages.locale_of(self.request)

    def message(self, kind: str, status: int, **params) -> Response:
        response = pages.render("owner/message.html", self.locale, status, kind=kind,
                                params=params)
        if status == 429:
            response.headers["Retry-After"] = "600"
        return response

    def read(self, target: str, token: str) -> dict | None:
        """What the service owning the link shows for it; None for a link it does not honour."""
        try:
            return self.services.call(target, token)
        except RemoteError as error:
            if refused_token(error):
                return None
            raise

    def refuse_post(self, token: str) -> Response | None:
        """The answer to a form post that goes no further: over a rate limit, or its
        nonce missing or stale (the CSRF guard of pages without a login)."""
        if self.over_limit(token):
            return self.message("too_many", 429)
        if not pages.nonce_is_fresh(self.secret, token, self.request.form.get("nonce"), self.now):
            return self.message("expired_form", 403)
        return None

    def over_limit(self, token: str) -> bool:
        address = self.request.remote_addr or "?"
        allowed = (limits.allow(self.repository, "token", token, limits.PER_TOKEN, self.now)
                   and limits.allow(self.repository, "addr", address, limits.PER_ADDRESS,
                                    self.now))
        if not allowed:
            log.warning("owner page rate limit hit (token %s)", pages.short(token))
        return not allowed


def refused_token(error: RemoteError) -> bool:
    """The service's answer to a token it does not know (or that is malformed)."""
    return error.exc_type in ("NotFound", "InvalidInput") and '"token"' in (error.value or "")


# the survey questionnaire ----------------------------------------------------------

def survey_page(ctx: OwnerContext, token: str, saved: bool = False) -> Response:
    if ctx.over_limit(token):
        return ctx.message("too_many", 429)
    survey = ctx.read("survey.get_questionnaire", token)
    if survey is None:
        return ctx.message("unknown", 404)
    return _survey_for_state(ctx, token, survey, saved=saved)


def _survey_for_state(ctx, token, survey, **form) -> Response:
    state = survey["state"]
    if state == "open":
        draft = survey.get("draft") or {}
        form.setdefault("answers", {key: ANSWER_NAMES[value]
                                    for key, value in draft.get("answers", {}).items()})
        form.setdefault("comments", draft.get("comments", {}))
        return _survey_form(ctx, token, survey, **form)
    if state in SURVEY_STATES:
        kind, status = SURVEY_STATES[state]
        return ctx.message(kind, status, at=pages.local_time(survey.get("opens_at")))
    return ctx.message("unknown", 404)


def _survey_form(ctx, token, survey, answers=None, comments=None, errors=None,
                 saved=False, status=200) -> Response:
    return pages.render(
        "owner/survey.html", ctx.locale, status, survey=survey, token=token,
        nonce=pages.form_nonce(ctx.secret, token, ctx.now), answers=answers or {},
        comments=comments or {}, errors=errors or {}, saved=saved)


def survey_submit(ctx: OwnerContext, token: str) -> Response:
    refusal = ctx.refuse_post(token)
    if refusal is not None:
        return refusal
    form = ctx.request.form
    survey = ctx.read("survey.get_questionnaire", token)
    if survey is None:
        return ctx.message("unknown", 404)
    if survey["state"] != "open":
        return _survey_for_state(ctx, token, survey)
    keys = [category["key"] for category in survey["categories"]]
    answers, comments, errors = _read_questionnaire(form, keys)
    data = {"answers": {key: ANSWER_VALUES[value] for key, value in answers.items()},
            "comments": comments}
    background = ctx.request.headers.get("X-Requested-With") == "fetch"
    try:
        if form.get("action") == "save":
            ctx.services.call("survey.save_draft", token, data)
            if background:
                return Response(status=204)
            return _survey_form(ctx, token, survey, answers, comments, saved=True)
        if errors:
            return _survey_form(ctx, token, survey, answers, comments, errors, status=422)
        ctx.services.call("survey.submit_response", token, data)
    except RemoteError as error:
        if error.exc_type != "InvalidInput":
            raise
        fields = from_exception(error).errors or {}
        if "token" in fields:      # answered or closed meanwhile: show where it stands
            return survey_page(ctx, token)
        errors = {field: "error_invalid" for field in fields}
        return _survey_form(ctx, token, survey, answers, comments, errors, status=422)
    return redirect(f"/s/{token}", code=303)


def _read_questionnaire(form, keys) -> tuple[dict, dict, dict]:
    """The form's answers (as the radio values), comments, and the questions left
    unanswered: every question needs a choice, 不了解 being one."""
    answers, comments, errors = {}, {}, {}
    for key in keys:
        value = form.get(f"answer.{key}")
        if value in ANSWER_VALUES:
            answers[key] = value
        else:
            errors[f"answers.{key}"] = "error_choose" if not value else "error_invalid"
    for key in (*keys, "general"):
        text = form.get(f"comment.{key}", "")
        if text.strip():
            comments[key] = text
    return answers, comments, errors
