"""Delivering one message: logged under its unique id first, then sent on the recipient's
channels in turn (quiet hours, daily limits, the provider's pace, retries), its outcome
written with the events that announce it. The rules are ``delivery_log``'s (and
``channel_choice``'s, ``message_templates``'); this drives them against the store, the
settings and the channel plug-ins."""
import logging
from collections.abc import Sequence
from datetime import datetime

from services.notify import (
    channel_choice,
    delivery_log,
    event_params,
    message_templates,
    notifications,
    pacing,
)
from services.notify.address_book import AddressBook, Target
from services.notify.channel_choice import Route
from services.notify.channels import ChannelError, Message
from services.notify.delivery_log import Changes, Delivery, Outcome
from services.notify.repository import NotifyRepository
from services.notify.settings import EstateSettings, NotifySettings, ZonedSettings
from shared.clock import Clock
from shared.envelope import Envelope, similar_events
from shared.errors import EXPECTED_ERRORS
from shared.quiet_hours import quiet_until

log = logging.getLogger(__name__)


class Deliveries:
    """The delivery engine of one worker: its ``store``, ``settings`` and ``clock``."""

    def __init__(self, store: NotifyRepository, settings: NotifySettings | ZonedSettings,
                 clock: Clock) -> None:
        self.store, self.settings, self.clock = store, settings, clock

    def announce_all(self, events: list[dict], address_book: AddressBook,
                     ) -> dict[str, Exception]:
        """``announce`` for a batch of events (``handles_batch``): the contacts of all their
        households looked up in one ``intake.get_contacts``, and the events of the messages
        sent published with one wait for the broker's confirms. {event id: error} of those
        that failed alone (the others are done); intake not answering fails them all."""
        failed: dict[str, Exception] = {}
        held: dict[str, list] = {}   # delivery id -> the events its outcome wrote
        wanted = contact_refs(events)   # {delivery id: ref}
        logged = self.store.logged_deliveries(list(wanted))   # a redelivered event's
        with address_book.preloaded([ref for delivery_id, ref in wanted.items()
                                     if delivery_id not in logged]), similar_events():
            for event in events:
                try:
                    self.announce(event, address_book, held)
                except Exception as exc:
                    if not isinstance(exc, EXPECTED_ERRORS):
                        log.exception("event %s: its messages failed", event["id"])
                    failed[event["id"]] = exc
        self.store.publish_held(held)
        return failed

    def announce(self, event: dict, address_book: AddressBook,
                 held: dict[str, list] | None = None) -> None:
        """Every message ``event`` calls for, to each of its recipients, once per event.
        With ``held``, the events of those sent are kept there, not published (the caller
        publishes a batch's together)."""
        estate = self.settings.estate(event["estate_id"])
        data = event["data"]
        for notification in notifications.NOTIFICATIONS[event["type"]]:
            recipients = notification.recipients(data)
            if recipients is None:
                continue   # e.g. a common-area job: no household to tell
            params = notifications.message_params(notification, data, estate.context)
            send_at = notification.send_at(data, estate.context) if notification.send_at else None
            for key, resolve in address_book.for_event(event, recipients, estate):
                delivery_id = delivery_log.delivery_id_for(event["id"], notification.template, key)
                if self.store.find_delivery(delivery_id) is not None:
                    continue   # redelivered: this message was already handled
                now = self.clock.now()
                if notification.skip_when_late and send_at is not None and send_at <= now:
                    continue   # the moment to remind has passed: the confirmation just went
                target = resolve()   # its contact may carry the owner's link (a complaint)
                self.deliver(delivery_id, estate, notification.template,
                             event_params.with_contact_params(params, target.contact, estate.context),
                             target, ref=notification.ref(data), source_event=event["id"],
                             send_at=send_at, at_once=key is None or not recipients.owners,
                             held=held)

    def deliver(self, delivery_id: str, estate: EstateSettings, template_id: str, params: dict,
                target: Target, ref: str | None, source_event: str | None = None,
                send_at: datetime | None = None, channel: str | None = None,
                at_once: bool = True, requested_by: str | None = None,
                held: dict[str, list] | None = None) -> dict | None:
        """Log the delivery, then send it now, or leave it queued for the dispatcher (with
        ``held``: the events of one sent now kept there, not published; None returned).

        It is logged first under its unique id, so of two workers handed the same
        event only one goes on; a crash after that leaves it queued, and the
        dispatcher sends it once the claim lapses.
        """
        now = self.clock.now()
        locale = (target.preferences or {}).get("locale") or estate.locale
        template = self.settings.templates(estate.estate_id, locale)[template_id]
        error, rendered = target.error, message_templates.Rendered(text="", subject="")
        if error is None:
            try:
                rendered = message_templates.render(template, params, estate.signature_for(template.locale))
            except message_templates.MissingParameters as exc:
                error = str(exc)
        routes = self._routes(estate, target, channel)
        if error is None and not routes:
            error = _no_address(estate, channel)
        quiet = None
        if target.household and not template.immediate:
            quiet = (target.preferences or {}).get("quiet_hours") or estate.quiet_hours
        delivery = delivery_log.new_delivery(
            delivery_id, estate_id=estate.estate_id or "", template=template, rendered=rendered,
            ref=ref, recipient=target.recipient, routes=routes, now=now,
            channel=channel or estate.channels[0], source_event=source_event, send_at=send_at,
            quiet_hours=quiet, zone=estate.zone, contact_ref=target.contact_ref,
            pinned_channel=channel, requested_by=requested_by)
        if error:
            changes, events = delivery_log.failed(delivery, [], error, now)
            log.warning("delivery %s failed: %s", delivery_id, changes["error"])
            return self.store.add_delivery(dict(delivery, **changes), events)
        if target.household and channel_choice.opted_out(target.preferences, template):
            return self.store.add_delivery(
                dict(delivery, **delivery_log.suppressed("household opted out", now)))
        until = quiet_until(max(now, delivery["next_attempt_at"]), quiet, estate.zone)
        if until:
            delivery.update({"next_attempt_at": until, "reason": "quiet hours"})
        if delivery["next_attempt_at"] > now or not at_once:
            return self.store.add_delivery(delivery)   # the dispatcher sends it when due
        claim = delivery_log.new_claim()
        claimed = delivery_log.claimed(delivery, claim, now, estate.claim)
        if self.store.add_delivery(claimed) is None:
            return None   # another worker has this event
        changes, events = self.attempt(claimed)
        if held is None:
            return self.save(claimed, claim, changes, events)
        if not self.store.save_outcome(delivery_id, claim, changes, events):
            log.warning("delivery %s: claim lost before its outcome was saved", delivery_id)
        elif events:
            held[delivery_id] = events
        return None

    def as_it_is_now(self, delivery: Delivery, target: Target,
                     ) -> tuple[Delivery, None] | tuple[None, tuple[Changes, list[Envelope]]]:
        """A household's message that waited goes to its contact and preferences as they are
        now (a new number, an opt-out since): ``target``, looked up at send time. (the
        delivery to send, None) or (None, the outcome that ends it: failed or suppressed)."""
        estate = self.settings.estate(delivery["estate_id"] or None)
        now = self.clock.now()
        template = self.settings.templates(estate.estate_id, delivery["locale"])[
            delivery["template"]]
        if target.error is None and channel_choice.opted_out(target.preferences, template):
            return None, (delivery_log.suppressed("household opted out", now), [])
        routes = [] if target.error else self._routes(estate, target, delivery["pinned_channel"])
        if not routes:
            error = target.error or _no_address(estate, delivery["pinned_channel"])
            changes, events = delivery_log.failed(delivery, [], error, now)
            log.warning("delivery %s failed: %s", delivery["_id"], changes["error"])
            return None, (changes, events)
        return delivery_log.rerouted(delivery, routes), None

    def attempt(self, delivery: Delivery) -> tuple[Changes, list[Envelope]]:
        """Try a claimed delivery's routes in turn until one takes it, it must wait, or none
        is left: the outcome to write, (changes, events)."""
        estate = self.settings.estate(delivery["estate_id"] or None)
        now = self.clock.now()
        until = quiet_until(now, delivery.get("quiet_hours"), delivery["zone"])
        if until:   # a retry or a reminder that fell into the night waits for the morning
            return delivery_log.defer(delivery, until, "quiet hours", now), []
        while True:
            step, delivery = delivery_log.after_try(
                delivery, self._try(delivery, estate, now), now, estate.retry_delays)
            if step == "sent":
                changes, events = delivery_log.sent(
                    delivery, delivery["channel"], delivery["address"], delivery["attempts"], now)
                return dict(delivery_log.progress(delivery), **changes), events
            if step == "retry":
                log.warning("delivery %s: %s failed, %s at %s: %s", delivery["_id"],
                            delivery["channel"], delivery["reason"],
                            delivery["next_attempt_at"].isoformat(),
                            delivery["attempts"][-1]["error"])
                return delivery_log.progress(delivery), []
            if step == "exhausted":
                changes, events = delivery_log.finished(delivery, now)
                if changes["status"] == "failed":
                    log.warning("delivery %s failed: %s", delivery["_id"], changes["error"])
                return dict(delivery_log.progress(delivery), **changes), events

    def save(self, delivery: Delivery, claim: str, changes: Changes,
             events: Sequence[Envelope] = ()) -> dict | None:
        """The outcome of a claimed delivery written; the delivery as stored."""
        saved = self.store.save_claimed(delivery["_id"], claim, changes, events)
        if saved is None:   # the claim lapsed meanwhile and another worker took it
            log.warning("delivery %s: claim lost before its outcome was saved", delivery["_id"])
            return self.store.find_delivery(delivery["_id"])
        return saved

    def _try(self, delivery: Delivery, estate: EstateSettings, now: datetime) -> Outcome:
        """One try on the delivery's current route."""
        route = delivery["routes"][delivery["route"]]
        name, address = route["channel"], route["address"]
        try:
            channel = self.settings.channel(estate.estate_id, name)
        except KeyError:
            return Outcome(error=f"channel {name} is not configured any more")
        quota = None
        limit = estate.daily_limits.get(name)
        if limit:
            quota = pacing.quota_key(delivery["recipient"], name, now, estate.zone)
            if not self.store.take_quota(quota, limit):
                return Outcome(skipped=f"daily limit of {limit} on {name} reached")
        message = Message(text=delivery["text"], subject=delivery.get("subject") or "",
                          sender_name=estate.signature_for(delivery["locale"]),
                          delivery_id=delivery["_id"])
        wait = self.settings.pace(estate.estate_id, name)   # the provider's rate limit
        if wait:
            pacing.pause(wait)
        try:
            channel.check_address(address)
            reference = channel.send(address, message)
        except ChannelError as exc:
            outcome = Outcome(error=str(exc) or "delivery failed", retryable=exc.retryable)
        # A plug-in bug: recorded, the next channel is tried. Not log.exception: the
        # traceback would carry the plug-in's message unredacted (it may quote the address).
        except Exception as exc:  # noqa: BLE001
            error = delivery_log.redact(f"channel {name} raised {type(exc).__name__}: {exc}")
            log.error("delivery %s: %s", delivery["_id"], error)
            outcome = Outcome(error=error)
        else:
            return Outcome(reference=str(reference) if reference else None)
        if quota:
            self.store.give_back_quota(quota)
        return outcome

    def _routes(self, estate: EstateSettings, target: Target,
                channel: str | None = None) -> list[Route]:
        if channel:
            field = self.settings.channel(estate.estate_id, channel).address_field
            return channel_choice.routes([channel], {channel: field}, target.contact)
        channels = self.settings.channels(estate.estate_id)
        order = channel_choice.channel_order(list(channels), target.preferences,
                                     target.contact if target.household else None)
        fields = {name: channel.address_field for name, channel in channels.items()}
        return channel_choice.routes(order, fields, target.contact)


def _no_address(estate: EstateSettings, channel: str | None = None) -> str:
    return "the recipient has no address for any of: " + ", ".join(
        [channel] if channel else estate.channels)


def contact_refs(events: list[dict]) -> dict[str, str]:
    """What ``intake.get_contact`` is asked for the recipients of ``events``' messages:
    {the delivery id of the message: ref}."""
    refs = {}
    for event in events:
        for notification in notifications.NOTIFICATIONS[event["type"]]:
            recipients = notification.recipients(event["data"])
            if recipients is not None and recipients.alternatives[0][0] == "contact":
                delivery_id = delivery_log.delivery_id_for(event["id"], notification.template)
                refs[delivery_id] = recipients.alternatives[0][1]
    return refs
