"""Delivering one message: logged under its unique id first, then sent on the recipient's
channels in turn (quiet hours, daily limits, the provider's pace, retries), its outcome
written with the events that announce it. The rules are ``domain``'s; this drives them
against the store, the settings and the channel plug-ins."""
import logging
from collections.abc import Sequence
from datetime import datetime

from services.notify import domain, pacing
from services.notify.address_book import AddressBook, Target
from services.notify.channels import ChannelError, Message
from services.notify.repository import NotifyRepository
from services.notify.settings import EstateSettings, NotifySettings, ZonedSettings
from shared.clock import Clock
from shared.envelope import Envelope
from shared.quiet_hours import quiet_until

log = logging.getLogger(__name__)


class Deliveries:
    """The delivery engine of one worker: its ``store``, ``settings`` and ``clock``."""

    def __init__(self, store: NotifyRepository, settings: NotifySettings | ZonedSettings,
                 clock: Clock) -> None:
        self.store, self.settings, self.clock = store, settings, clock

    def announce(self, event: dict, address_book: AddressBook) -> None:
        """Every message ``event`` calls for, to each of its recipients, once per event."""
        estate = self.settings.estate(event["estate_id"])
        data = event["data"]
        for notification in domain.NOTIFICATIONS[event["type"]]:
            recipients = notification.recipients(data)
            if recipients is None:
                continue   # e.g. a common-area job: no household to tell
            params = domain.message_params(notification, data, estate.context)
            send_at = notification.send_at(data, estate.context) if notification.send_at else None
            for key, resolve in address_book.for_event(event, recipients, estate):
                delivery_id = domain.delivery_id_for(event["id"], notification.template, key)
                if self.store.find_delivery(delivery_id) is not None:
                    continue   # redelivered: this message was already handled
                now = self.clock.now()
                if notification.skip_when_late and send_at is not None and send_at <= now:
                    continue   # the moment to remind has passed: the confirmation just went
                target = resolve()   # its contact may carry the owner's link (a complaint)
                self.deliver(delivery_id, estate, notification.template,
                             domain.with_contact_params(params, target.contact, estate.context),
                             target, ref=notification.ref(data), source_event=event["id"],
                             send_at=send_at, at_once=key is None or not recipients.owners)

    def deliver(self, delivery_id: str, estate: EstateSettings, template_id: str, params: dict,
                target: Target, ref: str | None, source_event: str | None = None,
                send_at: datetime | None = None, channel: str | None = None,
                at_once: bool = True, requested_by: str | None = None) -> dict | None:
        """Log the delivery, then send it now, or leave it queued for the dispatcher.

        It is logged first under its unique id, so of two workers handed the same
        event only one goes on; a crash after that leaves it queued, and the
        dispatcher sends it once the claim lapses.
        """
        now = self.clock.now()
        locale = (target.preferences or {}).get("locale") or estate.locale
        template = self.settings.templates(estate.estate_id, locale)[template_id]
        error, rendered = target.error, domain.Rendered(text="", subject="")
        if error is None:
            try:
                rendered = domain.render(template, params, estate.signature_for(template.locale))
            except domain.MissingParameters as exc:
                error = str(exc)
        routes = self._routes(estate, target, channel)
        if error is None and not routes:
            error = _no_address(estate, channel)
        quiet = None
        if target.household and not template.immediate:
            quiet = (target.preferences or {}).get("quiet_hours") or estate.quiet_hours
        delivery = domain.new_delivery(
            delivery_id, estate_id=estate.estate_id or "", template=template, rendered=rendered,
            ref=ref, recipient=target.recipient, routes=routes, now=now,
            channel=channel or estate.channels[0], source_event=source_event, send_at=send_at,
            quiet_hours=quiet, zone=estate.zone, contact_ref=target.contact_ref,
            pinned_channel=channel, requested_by=requested_by)
        if error:
            changes, events = domain.failed(delivery, [], error, now)
            log.warning("delivery %s failed: %s", delivery_id, changes["error"])
            return self.store.add_delivery(dict(delivery, **changes), events)
        if target.household and domain.opted_out(target.preferences, template):
            return self.store.add_delivery(
                dict(delivery, **domain.suppressed("household opted out", now)))
        until = quiet_until(max(now, delivery["next_attempt_at"]), quiet, estate.zone)
        if until:
            delivery.update(next_attempt_at=until, reason="quiet hours")
        if delivery["next_attempt_at"] > now or not at_once:
            return self.store.add_delivery(delivery)   # the dispatcher sends it when due
        claimed = domain.claimed(delivery, domain.new_claim(), now, estate.claim)
        if self.store.add_delivery(claimed) is None:
            return None   # another worker has this event
        return self.save(claimed, claimed["claim"], *self.attempt(claimed))

    def as_it_is_now(self, delivery: dict, target: Target,
                     ) -> tuple[dict, None] | tuple[None, tuple[dict, list]]:
        """A household's message that waited goes to its contact and preferences as they are
        now (a new number, an opt-out since): ``target``, looked up at send time. (the
        delivery to send, None) or (None, the outcome that ends it: failed or suppressed)."""
        estate = self.settings.estate(delivery["estate_id"] or None)
        now = self.clock.now()
        template = self.settings.templates(estate.estate_id, delivery["locale"])[
            delivery["template"]]
        if target.error is None and domain.opted_out(target.preferences, template):
            return None, (domain.suppressed("household opted out", now), [])
        routes = [] if target.error else self._routes(estate, target, delivery["pinned_channel"])
        if not routes:
            error = target.error or _no_address(estate, delivery["pinned_channel"])
            changes, events = domain.failed(delivery, [], error, now)
            log.warning("delivery %s failed: %s", delivery["_id"], changes["error"])
            return None, (changes, events)
        return domain.rerouted(delivery, routes), None

    def attempt(self, delivery: dict) -> tuple[dict, list]:
        """Try a claimed delivery's routes in turn until one takes it, it must wait, or none
        is left: the outcome to write, (changes, events)."""
        estate = self.settings.estate(delivery["estate_id"] or None)
        now = self.clock.now()
        until = quiet_until(now, delivery.get("quiet_hours"), delivery["zone"])
        if until:   # a retry or a reminder that fell into the night waits for the morning
            return domain.defer(delivery, until, "quiet hours", now), []
        while True:
            step, delivery = domain.after_try(
                delivery, self._try(delivery, estate, now), now, estate.retry_delays)
            if step == "sent":
                changes, events = domain.sent(
                    delivery, delivery["channel"], delivery["address"], delivery["attempts"], now)
                return dict(domain.progress(delivery), **changes), events
            if step == "retry":
                log.warning("delivery %s: %s failed, %s at %s: %s", delivery["_id"],
                            delivery["channel"], delivery["reason"],
                            delivery["next_attempt_at"].isoformat(),
                            delivery["attempts"][-1]["error"])
                return domain.progress(delivery), []
            if step == "exhausted":
                changes, events = domain.finished(delivery, now)
                if changes["status"] == "failed":
                    log.warning("delivery %s failed: %s", delivery["_id"], changes["error"])
                return dict(domain.progress(delivery), **changes), events

    def save(self, delivery: dict, claim: str, changes: dict,
             events: Sequence[Envelope] = ()) -> dict | None:
        """The outcome of a claimed delivery written; the delivery as stored."""
        saved = self.store.save_claimed(delivery["_id"], claim, changes, events)
        if saved is None:   # the claim lapsed meanwhile and another worker took it
            log.warning("delivery %s: claim lost before its outcome was saved", delivery["_id"])
            return self.store.find_delivery(delivery["_id"])
        return saved

    def _try(self, delivery: dict, estate: EstateSettings, now: datetime) -> domain.Outcome:
        """One try on the delivery's current route."""
        name, address = delivery["channel"], delivery["address"]
        try:
            channel = self.settings.channel(estate.estate_id, name)
        except KeyError:
            return domain.Outcome(error=f"channel {name} is not configured any more")
        quota = None
        limit = estate.daily_limits.get(name)
        if limit:
            quota = domain.quota_key(delivery["recipient"], name, now, estate.zone)
            if not self.store.take_quota(quota, limit):
                return domain.Outcome(skipped=f"daily limit of {limit} on {name} reached")
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
            outcome = domain.Outcome(error=str(exc) or "delivery failed", retryable=exc.retryable)
        # A plug-in bug: recorded, the next channel is tried. Not log.exception: the
        # traceback would carry the plug-in's message unredacted (it may quote the address).
        except Exception as exc:  # noqa: BLE001
            error = domain.redact(f"channel {name} raised {type(exc).__name__}: {exc}")
            log.error("delivery %s: %s", delivery["_id"], error)
            outcome = domain.Outcome(error=error)
        else:
            return domain.Outcome(reference=str(reference) if reference else None)
        if quota:
            self.store.give_back_quota(quota)
        return outcome

    def _routes(self, estate: EstateSettings, target: Target,
                channel: str | None = None) -> list[dict]:
        if channel:
            field = self.settings.channel(estate.estate_id, channel).address_field
            return domain.routes([channel], {channel: field}, target.contact)
        channels = self.settings.channels(estate.estate_id)
        order = domain.channel_order(list(channels), target.preferences,
                                     target.contact if target.household else None)
        fields = {name: channel.address_field for name, channel in channels.items()}
        return domain.routes(order, fields, target.contact)


def _no_address(estate: EstateSettings, channel: str | None = None) -> str:
    return "the recipient has no address for any of: " + ", ".join(
        [channel] if channel else estate.channels)
