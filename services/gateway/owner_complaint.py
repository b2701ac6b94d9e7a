"""The owner's complaint page (``/c/{token}``) and an estate's online complaint form
(``/e/{estate_id}/complain``, what the QR code on the notice board opens). No login.

* ``/c/{token}``: the link that ends the owner's messages about a complaint. It shows what
  ``intake.owner_view`` lets the owner see — number, category, status, the steps so far,
  the answer given — and, on a closed complaint without an open review, a form to ask for
  a review (复核), posted to ``/c/{token}/review`` (form nonce, rate limits) and answered
  with a 303 back to the page, which then shows the review requested. A token intake does
  not know, or no longer honours, gets the page that reveals nothing (404).
* ``/e/{estate_id}/complain``: category (the estate's, with their Chinese names), content,
  name and phone, where it is (optional, joined to the content by intake: a household is
  never matched from what a stranger types). Posted, it becomes a complaint with channel
  ``online`` (``intake.register_online_complaint``, which answers the owner's link to the
  gateway alone) and a 303 to the complaint's page, which confirms it; the apology goes
  out as for any complaint. Against abuse: a limit per address and per phone number (a
  keyed hash: no number is stored here), the form nonce bound to the estate, and a field
  people never see (a bot that fills it is told "received" and nothing is registered).
  A form with errors comes back with what was typed and the fields marked (422).
"""
import hashlib
import hmac
import logging
import re

from nameko.exceptions import RemoteError
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from services.gateway import limits, pages
from services.gateway.owner import OwnerContext, refused_token
from services.gateway.problems import from_exception

log = logging.getLogger(__name__)

REASON_MAX = 2000                 # intake's limit, said on the page before it refuses
FORM_FIELDS = ("category", "content", "name", "phone", "location")
REQUIRED_FIELDS = ("category", "content", "name", "phone")
HONEYPOT = "website"              # hidden from people; only a bot fills it in
# intake's field errors -> the form's fields (the reporter is the name and the phone)
INTAKE_FIELDS = {"category": "category", "content": "content", "location": "location",
                 "reporter.name": "name", "reporter.phone": "phone", "reporter": "phone"}


# the owner's complaint page ------------------------------------------------------------

def complaint_page(ctx: OwnerContext, token: str, received: bool = False) -> Response:
    if ctx.over_limit(token):
        return ctx.message("too_many", 429)
    complaint = _owner_view(ctx, token)
    if complaint is None:
        return ctx.message("unknown", 404)
    # the confirmation is for a complaint just filed, not for any link with ?received=1
    received = received and complaint["status"] == "registered"
    return _complaint(ctx, token, complaint, received=received)


def review_submit(ctx: OwnerContext, token: str) -> Response:
    """「可以向物业公司申请复核」: the owner's request, then back to the page (303)."""
    refusal = ctx.refuse_post(token)
    if refusal is not None:
        return refusal
    reason = ctx.request.form.get("reason", "")
    try:
        ctx.services.call("intake.owner_request_review", token, {"reason": reason})
    except RemoteError as error:
        if refused_token(error):
            return ctx.message("unknown", 404)
        if error.exc_type == "InvalidTransition":   # asked already, or not closed now:
            return redirect(f"/c/{token}", code=303)   # the page says where it stands
        if error.exc_type != "InvalidInput":
            raise
        complaint = _owner_view(ctx, token)
        if complaint is None:
            return ctx.message("unknown", 404)
        problem = "review_error_long" if len(reason) > REASON_MAX else "review_error_empty"
        return _complaint(ctx, token, complaint, reason=reason, errors={"reason": problem},
                          status=422)
    return redirect(f"/c/{token}", code=303)


def _owner_view(ctx: OwnerContext, token: str) -> dict | None:
    """What intake lets the owner see, or None for a link it does not honour."""
    return ctx.read("intake.owner_view", token)


def _complaint(ctx, token, complaint, reason="", errors=None, received=False,
               status=200) -> Response:
    return pages.render(
        "owner/complaint.html", ctx.locale, status, complaint=complaint, token=token,
        nonce=pages.form_nonce(ctx.secret, token, ctx.now), reason=reason,
        errors=errors or {}, received=received, reason_max=REASON_MAX,
        page_url=ctx.request.host_url.rstrip("/") + f"/c/{token}")


# the estate's online complaint form -----------------------------------------------------

def complaint_form(ctx: OwnerContext, estate_id: str) -> Response:
    if not _within(ctx, "addr", ctx.request.remote_addr or "?", limits.PER_ADDRESS):
        return ctx.message("too_many", 429)
    categories = _categories(ctx, estate_id)
    if categories is None:
        return ctx.message("unknown", 404)
    return _form(ctx, estate_id, categories)


def complaint_submit(ctx: OwnerContext, estate_id: str) -> Response:
    address = ctx.request.remote_addr or "?"
    if not _within(ctx, "complaint-addr", address, limits.COMPLAINTS_PER_ADDRESS):
        return ctx.message("too_many", 429)
    categories = _categories(ctx, estate_id)
    if categories is None:
        return ctx.message("unknown", 404)
    form = ctx.request.form
    values = {name: form.get(name, "") for name in FORM_FIELDS}
    if not pages.nonce_is_fresh(ctx.secret, _estate_key(estate_id), form.get("nonce"), ctx.now):
        # typed text is kept: the page was only open too long (or the post came from elsewhere)
        return _form(ctx, estate_id, categories, values, notice="expired", status=403)
    if form.get(HONEYPOT):
        log.warning("online complaint form of %s: hidden field filled in, nothing registered",
                    estate_id)
        return ctx.message("complaint_sent", 200)
    errors = _missing(values, categories)
    if errors:
        return _form(ctx, estate_id, categories, values, errors, status=422)
    if not _within(ctx, "complaint-phone", _phone_key(ctx.secret, values["phone"]),
                   limits.COMPLAINTS_PER_PHONE):
        return ctx.message("too_many_complaints", 429)
    data = {"estate_id": estate_id, "category": values["category"], "content": values["content"],
            "reporter": {"name": values["name"], "phone": values["phone"]},
            "location": values["location"] if values["location"].strip() else None}
    try:
        answer = ctx.services.call("intake.register_online_complaint", data)
    except RemoteError as error:
        if error.exc_type != "InvalidInput":
            raise
        errors = _form_errors(from_exception(error).errors or {})
        if errors is None:
            return ctx.message("unknown", 404)
        return _form(ctx, estate_id, categories, values, errors, status=422)
    except Exception as exc:   # a service down: what was typed must not be lost
        problem = from_exception(exc)
        if problem.status not in (503, 504):
            raise
        return _form(ctx, estate_id, categories, values, notice="unavailable", status=503)
    return redirect(f"/c/{answer['owner_token']}?received=1", code=303)


def _form(ctx, estate_id, categories, values=None, errors=None, notice=None,
          status=200) -> Response:
    response = pages.render(
        "owner/complain.html", ctx.locale, status, estate_id=estate_id, categories=categories,
        values=values or dict.fromkeys(FORM_FIELDS, ""), errors=errors or {}, notice=notice,
        nonce=pages.form_nonce(ctx.secret, _estate_key(estate_id), ctx.now),
        honeypot=HONEYPOT)
    if status == 503:
        response.headers["Retry-After"] = "30"
    return response


def _categories(ctx: OwnerContext, estate_id: str) -> list[str] | None:
    """The estate's complaint categories, or None for an estate intake does not know."""
    try:
        return [entry["category"]
                for entry in ctx.services.call("intake.list_categories", estate_id)]
    except RemoteError as error:
        if error.exc_type == "NotFound":
            return None
        raise


def _missing(values: dict, categories: list[str]) -> dict:
    """What a person must fill in before the complaint is worth sending (intake checks
    the rest: the phone number's form, the lengths)."""
    errors = {name: "form_error_required" for name in REQUIRED_FIELDS
              if not values[name].strip()}
    if values["category"] and values["category"] not in categories:
        errors["category"] = "form_error_required"
    return errors


def _form_errors(fields: dict) -> dict | None:
    """intake's field errors as the form's fields; None when the estate itself was refused."""
    if "estate_id" in fields:
        return None
    errors = {}
    for field, messages in fields.items():
        names = [f"{field}.{inner}" for inner in messages] if isinstance(messages, dict) \
            else [field]
        for name in names:
            errors[INTAKE_FIELDS.get(name, "content")] = "form_error_invalid"
    return errors


def _within(ctx: OwnerContext, kind: str, key: str, limit: limits.RateLimit) -> bool:
    allowed = limits.allow(ctx.repository, kind, key, limit, ctx.now)
    if not allowed:
        log.warning("online complaint rate limit hit (%s)", kind)
    return allowed


def _estate_key(estate_id: str) -> str:
    """What the form nonce is bound to: the estate (a token has no ':', so never one)."""
    return f"estate:{estate_id}"


def _phone_key(secret: str, phone: str) -> str:
    """A phone number as the rate counters know it: the same however typed (+86, spaces),
    and keyed-hashed, so the gateway's store holds no number."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 13 and digits.startswith("86"):
        digits = digits[2:]
    return hmac.new(secret.encode(), f"phone:{digits}".encode(), hashlib.sha256).hexdigest()[:32]
