"""The delivery log's records: a delivery as logged, each try on its routes, retries and
the fall-back to the next channel, how it ends (sent, failed, suppressed) with the events
that announce it, and how staff see it. Pure Python: ``delivery.py`` drives these rules
against the store and the channel plug-ins."""
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NotRequired, TypedDict

from services.notify.channel_choice import Route
from services.notify.message_templates import Rendered, Template
from services.notify.sms import sms_segments
from shared.envelope import Envelope, record_event
from shared.links import hide_tokens
from shared.masking import mask_address, mask_text

SOURCE = "notify"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# When a queued delivery is next for the dispatcher (its repository keeps it); only
# queued deliveries hold one.
DUE_AT = "due_at"
BOOKKEEPING = ("claim", "claimed_until", DUE_AT)   # never shown


class Attempt(TypedDict):
    """One try on one channel as the log keeps it (texts redacted)."""
    channel: str
    at: datetime
    error: str | None
    retryable: NotRequired[bool]
    reference: NotRequired[str]
    skipped: NotRequired[str]     # why it was not tried (the recipient's daily limit)


class Delivery(TypedDict):
    """A delivery as logged (``new_delivery``): the only record that keeps full addresses."""
    _id: str
    estate_id: str
    template: str
    locale: str
    text: str
    subject: str
    segments: int
    ref: str | None
    recipient: str                  # household / complaint / staff id, never an address
    contact_ref: str | None
    pinned_channel: str | None
    routes: list[Route]
    route: int                      # index of the route being tried
    tries: int                      # failed tries on that route
    channel: str | None
    address: str | None
    status: str                     # queued, sent, failed, suppressed
    reason: str | None
    quiet_hours: str | None
    zone: str
    next_attempt_at: datetime
    claimed_until: datetime
    claim: str | None
    source_event: str | None
    attempts: list[Attempt]
    error: str | None
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None
    failed_at: datetime | None
    requested_by: NotRequired[str]


Changes = dict[str, Any]   # fields of a Delivery to set
# What one try on the current route leads to: see ``after_try``.
Step = Literal["sent", "retry", "next", "exhausted"]


def delivery_id_for(event_id: str, template_id: str, recipient: str | None = None) -> str:
    """One delivery per event, template (and recipient, when an event tells several):
    a redelivered event finds it already there."""
    return f"{event_id}:{template_id}" + (f":{recipient}" if recipient else "")


def new_delivery_id() -> str:
    return f"dlv-{uuid.uuid4().hex[:16]}"


def new_claim() -> str:
    return uuid.uuid4().hex


def new_delivery(delivery_id: str, *, estate_id: str, template: Template, rendered: Rendered,
                 ref: str | None, recipient: str, routes: Sequence[Route], now: datetime,
                 channel: str | None = None, source_event: str | None = None,
                 send_at: datetime | None = None, quiet_hours: str | None = None,
                 zone: str = "Asia/Shanghai", contact_ref: str | None = None,
                 pinned_channel: str | None = None, requested_by: str | None = None) -> Delivery:
    """A 'queued' delivery; the delivery log is the only record that keeps full addresses.

    ``routes`` are the (channel, address) pairs to try in order; ``next_attempt_at``
    is when it may go (later for a reminder). ``quiet_hours`` (with ``zone``)
    is kept when they apply, so every attempt, retries too, respects them.
    ``channel`` names the channel meant when there is no route at all.
    ``contact_ref`` is what ``intake.get_contact`` was asked (a household's
    messages), so one that waits is sent to the contact as it is then;
    ``pinned_channel`` the one channel ``send`` was told to use; ``requested_by`` the
    person who asked for it through ``send`` (none for a service or an event's message).
    """
    first, address = (routes[0]["channel"], routes[0]["address"]) if routes else (channel, None)
    delivery: Delivery = {
        "_id": delivery_id,
        "estate_id": estate_id,
        "template": template.id,
        "locale": template.locale,
        "text": rendered.text,
        "subject": rendered.subject,
        "segments": sms_segments(rendered.text).count,
        "ref": ref,
        "recipient": recipient,
        "contact_ref": contact_ref,
        "pinned_channel": pinned_channel,
        "routes": list(routes),
        "route": 0,
        "tries": 0,
        "channel": first,
        "address": address,
        "status": "queued",
        "reason": None,
        "quiet_hours": quiet_hours,
        "zone": zone,
        "next_attempt_at": send_at or now,
        "claimed_until": EPOCH,
        "claim": None,
        "source_event": source_event,
        "attempts": [],
        "error": None,
        "created_at": now,
        "updated_at": now,
        "sent_at": None,
        "failed_at": None,
    }
    if requested_by is not None:
        delivery["requested_by"] = requested_by
    return delivery


def claimed(delivery: Delivery, claim: str, now: datetime, lease: timedelta) -> Delivery:
    """``delivery`` held by one worker until ``now + lease`` (a crash lets it go again)."""
    return {**delivery, "claim": claim, "claimed_until": now + lease}


def defer(delivery: Delivery, until: datetime, reason: str, now: datetime) -> Changes:
    """Changes that put a delivery back to wait until ``until``, unclaimed."""
    return {"next_attempt_at": until, "reason": reason, "claim": None, "claimed_until": EPOCH,
            "updated_at": now}


def attempt(channel: str, now: datetime, error: str | None = None,
            retryable: bool | None = None, reference: str | None = None,
            skipped: str | None = None) -> Attempt:
    """One try on one channel as the log keeps it (error texts redacted)."""
    record: Attempt = {"channel": channel, "at": now, "error": redact(error) if error else None}
    if error:
        record["retryable"] = bool(retryable)
    if reference:
        record["reference"] = redact(reference)
    if skipped:
        record["skipped"] = skipped
    return record


@dataclass(frozen=True)
class Outcome:
    """What one try on a route gave: sent, an error (retryable or not), or skipped."""
    error: str | None = None
    retryable: bool = False
    skipped: str | None = None      # why it was not tried (the recipient's daily limit)
    reference: str | None = None    # the gateway's message id


def after_try(delivery: Delivery, outcome: Outcome, now: datetime,
              retry_delays: Sequence[float]) -> tuple[Step, Delivery]:
    """The delivery's next step after one try on its current route, and its new state.

    ``sent``; ``retry`` (wait, then the same route again); ``next`` (fall back
    to the next route); ``exhausted`` (no route left: see ``finished``).
    Retries back off along ``retry_delays`` (seconds); a channel that keeps
    failing, or an error no retry can fix, moves on to the next route.
    """
    route = delivery["routes"][delivery["route"]]
    record = attempt(route["channel"], now, outcome.error, outcome.retryable,
                     outcome.reference, outcome.skipped)
    delivery = {**delivery, "attempts": delivery["attempts"] + [record], "updated_at": now}
    if outcome.error is None and outcome.skipped is None:
        return "sent", delivery
    if outcome.error and outcome.retryable and delivery["tries"] < len(retry_delays):
        tries = delivery["tries"] + 1
        wait = timedelta(seconds=retry_delays[tries - 1])
        return "retry", {**delivery, "tries": tries, "next_attempt_at": now + wait,
                         "reason": f"retry {tries} on {route['channel']}"}
    following = delivery["route"] + 1
    if following < len(delivery["routes"]):
        nxt = delivery["routes"][following]
        return "next", {**delivery, "route": following, "tries": 0,
                        "channel": nxt["channel"], "address": nxt["address"]}
    return "exhausted", delivery


def progress(delivery: Delivery) -> Changes:
    """The fields a try changes, to store while the delivery waits for its next try."""
    return {"routes": delivery["routes"], "attempts": delivery["attempts"],
            "route": delivery["route"], "tries": delivery["tries"],
            "channel": delivery["channel"], "address": delivery["address"],
            "next_attempt_at": delivery["next_attempt_at"], "reason": delivery["reason"],
            "updated_at": delivery["updated_at"]}


def waited(delivery: Delivery) -> str | None:
    """The contact ref of a household's delivery that was held (quiet hours, a reminder's
    moment) and has not been tried, whose contact is looked up again, as it is when the
    message goes; None for any other delivery."""
    ref = delivery.get("contact_ref")
    held = not delivery["attempts"] and delivery["next_attempt_at"] > delivery["created_at"]
    return ref if ref and held else None


def rerouted(delivery: Delivery, routes: Sequence[Route]) -> Delivery:
    """``delivery`` to go on ``routes`` (non-empty), from the first."""
    return {**delivery, "routes": list(routes), "route": 0, "tries": 0,
            "channel": routes[0]["channel"], "address": routes[0]["address"]}


def finished(delivery: Delivery, now: datetime) -> tuple[Changes, list[Envelope]]:
    """How a delivery whose routes are used up ends: its changes and events.

    Suppressed if every route was skipped for the daily limit (the excess is
    logged, nobody is told); otherwise failed, with the last error.
    """
    tried = [record for record in delivery["attempts"] if not record.get("skipped")]
    if delivery["attempts"] and not tried:
        channels = ", ".join(dict.fromkeys(record["channel"] for record in delivery["attempts"]))
        return suppressed(f"daily limit reached on {channels}", now, delivery["attempts"]), []
    error = tried[-1]["error"] if tried else "no channel to try"
    return failed(delivery, delivery["attempts"], error, now)


def sent(delivery: Delivery, channel: str | None, address: str | None,
         attempts: list[Attempt], now: datetime) -> tuple[Changes, list[Envelope]]:
    """The changes that mark ``delivery`` sent, and its ``notification_sent`` event."""
    changes: Changes = {"status": "sent", "channel": channel, "address": address, "attempts": attempts,
               "sent_at": now, "updated_at": now, "reason": None, "claim": None}
    return changes, [_event("notification_sent", dict(delivery, **changes), {}, now)]


def failed(delivery: Mapping[str, Any], attempts: list[Attempt], error: object,
           now: datetime) -> tuple[Changes, list[Envelope]]:
    """The changes that mark ``delivery`` failed, and its ``notification_failed`` event."""
    changes: Changes = {"status": "failed", "attempts": attempts, "error": redact(error),
               "failed_at": now, "updated_at": now, "reason": None, "claim": None}
    return changes, [_event("notification_failed", dict(delivery, **changes),
                            {"error": changes["error"]}, now)]


def suppressed(reason: str, now: datetime, attempts: list[Attempt] | None = None) -> Changes:
    """Not sent on purpose (opted out, daily limit, superseded): logged, no event."""
    changes: Changes = {"status": "suppressed", "reason": reason, "updated_at": now,
                        "claim": None}
    if attempts is not None:
        changes["attempts"] = attempts
    return changes


def public_view(delivery: Mapping[str, Any], show_links: bool = True) -> dict[str, Any]:
    """A delivery as staff see it: addresses masked, the bookkeeping left out, and the
    owner links' tokens cut short unless ``show_links``."""
    view = {key: value for key, value in delivery.items() if key not in BOOKKEEPING}
    if not show_links:
        view["text"] = hide_tokens(view.get("text"))
    view["address"] = mask_address(delivery.get("address"))
    view["routes"] = [dict(route, address=mask_address(route["address"]))
                      for route in delivery.get("routes", [])]
    return view


def redact(text: object) -> str:
    """An error text from a plug-in may quote the address: masked (``mask_text``), kept short."""
    return mask_text(str(text))[:1000]


def _event(event_type: str, delivery: dict[str, Any], data: dict[str, Any],
           now: datetime) -> Envelope:
    told = {key: delivery[key] for key in ("channel", "template", "recipient", "ref")}
    # a delivery ends sent or failed once: its id derives from the delivery's
    return record_event(event_type, SOURCE, delivery, "delivery_id", dict(told, **data), now,
                        key=delivery["_id"])
