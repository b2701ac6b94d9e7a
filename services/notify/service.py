"""notify: tells owners and staff what happens, on plug-in channels. Entrypoints only."""
import functools
import logging
import time
from dataclasses import dataclass

from nameko.exceptions import RemoteError

from services.notify import domain, pacing
from services.notify.channels import AddressError, ChannelError, Message
from services.notify.repository import NotifyRepository
from services.notify.settings import Settings
from shared import paging
from shared.actor import CallerProvider
from shared.dependencies import ClockProvider, Store
from shared.errors import InvalidInput
from shared.idempotency import derived_id, idempotent
from shared.masking import mask_address
from shared.messaging import handles
from shared.quiet_hours import quiet_until
from shared.rpc import RpcProxy, not_found_as, ping, rpc, to_json
from shared.schemas import notify as schemas
from shared.schemas.base import load, require_id
from shared.schemas.intake import MAX_CONTACT_REFS
from shared.timers import timer_from_config

log = logging.getLogger(__name__)

# A timer tick sends batches until nothing is due or it has run this long; the next
# tick follows at once (nameko's timer never runs two ticks of one instance together).
DISPATCH_TICK_SECONDS = 10
CONTACT_BATCH = MAX_CONTACT_REFS   # refs one intake.get_contacts call is asked


@dataclass
class Target:
    """One recipient, resolved: its id for the log, its contact, whether it is a household."""
    recipient: str
    contact: dict | None = None
    preferences: dict | None = None
    household: bool = True
    error: str | None = None
    contact_ref: str | None = None   # what intake.get_contact was asked


class NotifyService:
    name = "notify"
    ping = ping

    store = Store(NotifyRepository)
    clock = ClockProvider()
    settings = Settings()
    # in its own name: intake gives full contacts to notify, never to the person who asked
    # for a message (the number goes to the channel, not back to them)
    intake = RpcProxy("intake", in_own_name=True)
    caller = CallerProvider()

    # events -------------------------------------------------------------------

    @handles("intake", "complaint_registered")
    def acknowledge_complaint(self, event):
        """「接到客户投诉后,应首先向业主表示歉意」: the owner hears at once, apology first."""
        self._notify(event)

    @handles("intake", "complaint_assigned")
    def tell_assignee(self, event):
        self._notify(event)

    @handles("intake", "complaint_overdue")
    def alert_overdue_complaint(self, event):
        self._notify(event)

    @handles("intake", "complaint_escalated")
    def alert_escalated_complaint(self, event):
        self._notify(event)

    @handles("intake", "complaint_closed")
    def announce_closing(self, event):
        """「物业公司应将投诉处理结果及时公布」: the owner hears the outcome."""
        self._notify(event)

    @handles("revisit", "revisit_scheduled")
    def announce_revisit(self, event):
        self._notify(event)

    @handles("revisit", "revisit_booked")
    def confirm_appointment(self, event):
        """Confirms the appointment and schedules its reminder; a new booking replaces
        the reminder of the previous one."""
        reminder = domain.delivery_id_for(event["id"], "revisit_reminder")
        self.store.cancel_pending(event["data"]["revisit_id"], "revisit_reminder",
                                  "superseded by a new appointment", self.clock.now(),
                                  keep=reminder)
        self._notify(event)

    @handles("revisit", "revisit_completed")
    def cancel_reminders(self, event):
        """The visit took place: a reminder still waiting would only confuse the owner."""
        self.store.cancel_pending(event["data"]["revisit_id"], "revisit_reminder",
                                  "the follow-up visit took place", self.clock.now())

    @handles("survey", "survey_invitation_issued")
    def invite_to_survey(self, event):
        self._notify(event)

    @handles("survey", "survey_reminder_due")
    def remind_of_survey(self, event):
        self._notify(event)

    @handles("survey", "survey_report_published")
    def announce_survey_report(self, event):
        """「业主/用户意见调查结果及整改方案应向业主单位公布」: every occupied household hears."""
        self._notify(event)

    @handles("intake", "complaint_repeated")
    def alert_repeat_complaint(self, event):
        """「24小时内安排特殊措施」: the supervisors and managers hear at once."""
        self._notify(event)

    @handles("intake", "complaint_resolved")
    def announce_resolution(self, event):
        self._notify(event)

    @handles("intake", "complaint_review_requested")
    def ask_for_review_decision(self, event):
        self._notify(event)

    @handles("intake", "complaint_reviewed")
    def announce_review_outcome(self, event):
        self._notify(event)

    @handles("revisit", "revisit_overdue")
    def report_overdue_revisit(self, event):
        """「上报公司领导」: a late revisit, or a reply promised during one, goes up."""
        self._notify(event)

    @handles("survey", "survey_round_closed")
    def announce_round_closed(self, event):
        self._notify(event)

    @handles("survey", "rectification_created")
    def assign_rectification(self, event):
        self._notify(event)

    @handles("survey", "rectification_done")
    def announce_rectification_done(self, event):
        """「整改方案应向业主单位公布,接受监督」: every occupied household hears."""
        self._notify(event)

    @handles("survey", "rectification_overdue")
    def alert_overdue_rectification(self, event):
        self._notify(event)

    # timer ----------------------------------------------------------------------

    @timer_from_config("NOTIFY_DISPATCH_INTERVAL", 5)
    def dispatch_due(self):
        """Sends what waited — quiet hours, reminders, retries, a broadcast's notices — and
        what a crash left queued: a claimed batch at a time, until nothing is due or the
        tick has run ``DISPATCH_TICK_SECONDS``.

        Each delivery is claimed atomically, so instances never send one twice.
        """
        lease, limit = self.settings.estate(None).claim, self.settings.dispatch_batch
        stop_at = time.monotonic() + DISPATCH_TICK_SECONDS
        while True:
            batch = self.store.claim_due(self.clock.now(), domain.new_claim(), lease, limit)
            self._dispatch(batch)
            if len(batch) < limit or time.monotonic() >= stop_at:
                return

    def _dispatch(self, batch):
        """One claimed batch: the contacts of those that waited looked up in one call, each
        sent and its outcome written as it goes, their events published together."""
        waited = [delivery for delivery in batch if domain.waited(delivery)]
        try:
            targets = self._contact_targets([delivery["contact_ref"] for delivery in waited])
        except Exception:   # intake down: these stay claimed, and are tried again once it lapses
            log.exception("%d waited deliveries: their contacts could not be looked up",
                          len(waited))
            batch = [delivery for delivery in batch if not domain.waited(delivery)]
        held = {}   # delivery id -> the events its outcome wrote, published at the end
        for delivery in batch:
            if self.clock.now() >= delivery["claimed_until"]:
                continue   # a slow batch outlived this claim: another worker may send it
            try:
                if domain.waited(delivery):
                    current, ended = self._as_it_is_now(
                        delivery, targets[delivery["contact_ref"]])
                    changes, events = ended or self._attempt(current)
                else:
                    changes, events = self._attempt(delivery)
            except Exception:   # its claim lapses and it is tried again; the others go on
                log.exception("delivery %s: dispatch failed", delivery["_id"])
                continue
            if not self.store.save_outcome(delivery["_id"], delivery["claim"], changes, events):
                log.warning("delivery %s: claim lost before its outcome was saved",
                            delivery["_id"])
            elif events:
                held[delivery["_id"]] = events
        self.store.publish_held(held)

    # rpc ------------------------------------------------------------------------

    @rpc
    @idempotent
    def send(self, data):
        templates = self.settings.templates(None, self.settings.estate(None).locale)
        data = load(schemas.SendNotification(
            known_channels=self.settings.all_channel_names(),
            templates={template_id: template.params for template_id, template in templates.items()},
        ), data)
        delivery_id = derived_id("dlv") or domain.new_delivery_id()
        made = self.store.find_delivery(delivery_id)
        if made is not None:   # this request's first run logged it (the dispatcher sends it)
            return to_json(domain.public_view(made))
        channel_name, to = data["channel"], data["to"]
        if data["estate_id"] is not None:   # estates are intake's: an unknown one is refused
            with not_found_as("estate", data["estate_id"], field="estate_id"):
                self.intake.get_estate(data["estate_id"])
        target, estate_id = self._send_target(to, data["estate_id"])
        if estate_id is None:
            raise InvalidInput({"estate_id": ["required for staff of the group-wide directory"]})
        channel = self.settings.channel(estate_id, channel_name)
        if target.contact is None:   # an address: the channel says whether it can use it
            target.contact = {channel.address_field: to}
        address = target.contact.get(channel.address_field)
        if not address:
            raise InvalidInput({"to": [f"has no {channel.address_field} for channel {channel_name}"]})
        try:
            channel.check_address(address)
        except AddressError as exc:
            raise InvalidInput({"to": [str(exc)]}) from None
        estate = self.settings.estate(estate_id)
        locale = (target.preferences or {}).get("locale") or estate.locale
        template = self.settings.templates(estate_id, locale)[data["template"]]
        try:
            domain.render(template, data["params"], "")
        except domain.MissingParameters as exc:   # an estate's wording may need more
            raise InvalidInput({"params": {name: [f"required by template {template.id}"]
                                           for name in exc.missing}}) from None
        params = domain.with_contact_params(data["params"], target.contact, estate.context)
        target.contact = {channel.address_field: address}
        delivery = self._deliver(
            delivery_id, estate, data["template"], params, target,
            ref=data["ref"], channel=channel_name, requested_by=self.caller.actor_id)
        return to_json(domain.public_view(delivery))

    @rpc
    def list_deliveries(self, filters=None, paged=False):
        filters = paging.load_filters(schemas.DeliveryFilters(), filters, paged)
        deliveries, next_cursor = self.store.list_deliveries(filters)
        # a person other than an administrator reads owner links without their tokens
        actor = self.caller.actor
        show_links = actor is None or "admin" in actor.roles
        return paging.answer([to_json(domain.public_view(delivery, show_links))
                              for delivery in deliveries], next_cursor, paged)

    @rpc
    @idempotent
    def set_preferences(self, household_id, data):
        require_id(household_id, "household_id")
        data = load(schemas.Preferences(known_channels=self.settings.all_channel_names(),
                                        known_locales=self.settings.locales()), data)
        with not_found_as("household", household_id):   # households are intake's
            self.intake.get_household(household_id)
        preferences = domain.merge_preferences(
            self.store.get_preferences(household_id), data, household_id, self.clock.now(),
            updated_by=self.caller.actor_id)
        return to_json(domain.preferences_view(self.store.save_preferences(preferences)))

    # who hears it ----------------------------------------------------------------

    def _notify(self, event):
        """Every message ``event`` calls for, to each of its recipients, once per event."""
        estate = self.settings.estate(event["estate_id"])
        data = event["data"]
        for notification in domain.NOTIFICATIONS[event["type"]]:
            recipients = notification.recipients(data)
            if recipients is None:
                continue   # e.g. a common-area job: no household to tell
            params = notification.build(data, estate.context)
            send_at = notification.send_at(data, estate.context) if notification.send_at else None
            for key, resolve in self._recipients(event, recipients, estate):
                delivery_id = domain.delivery_id_for(event["id"], notification.template, key)
                if self.store.find_delivery(delivery_id) is not None:
                    continue   # redelivered: this message was already handled
                now = self.clock.now()
                if notification.skip_when_late and send_at is not None and send_at <= now:
                    continue   # the moment to remind has passed: the confirmation just went
                target = resolve()   # its contact may carry the owner's link (a complaint)
                self._deliver(delivery_id, estate, notification.template,
                              domain.with_contact_params(params, target.contact, estate.context),
                              target, ref=notification.ref(data), source_event=event["id"],
                              send_at=send_at, at_once=key is None or not recipients.owners)

    def _recipients(self, event, recipients, estate):
        """[(key, resolve)]: ``key`` tells apart an event's deliveries when it has several
        recipients (None when it has one); ``resolve()`` gives the Target."""
        kind, value = recipients.alternatives[0]
        if kind == "contact":
            return [(None, lambda: self._contact_target(value))]
        if kind == "households":
            return self._household_targets(self._occupied_households(event["estate_id"]))
        members = domain.staff_for(estate.staff, recipients)
        if members:
            return [(member["id"], lambda member=member: self._staff_target(member))
                    for member in members]
        wanted = " or ".join(f"{kind} {value}" for kind, value in recipients.alternatives)
        return [(None, lambda: Target(recipient=f"{recipients.alternatives[0][1]}",
                                      household=False,
                                      error=f"no {wanted} in the staff directory of estate "
                                            f"{event['estate_id']} (NOTIFY_STAFF)"))]

    def _household_targets(self, household_ids):
        """(household id, resolve) for each household of a broadcast; the contacts of a
        batch of them are looked up together, when the first of the batch is resolved
        (a redelivered broadcast, all logged already, looks up none)."""
        for start in range(0, len(household_ids), CONTACT_BATCH):
            batch, targets = household_ids[start:start + CONTACT_BATCH], {}

            def resolve(household_id, batch=batch, targets=targets):
                if not targets:
                    targets.update(self._contact_targets(batch))
                return targets[household_id]
            for household_id in batch:
                yield household_id, functools.partial(resolve, household_id)

    def _contact_target(self, ref):
        contact = self._contact(ref)     # looked up now: events carry no addresses
        household_id = contact and contact.get("household_id")
        preferences = self.store.get_preferences(household_id) if household_id else None
        return self._target(ref, contact, preferences)

    def _contact_targets(self, refs):
        """{ref: Target} for many refs: contacts from ``intake.get_contacts``, a batch a
        call, the households' preferences in one read."""
        refs, contacts = list(dict.fromkeys(refs)), {}
        if not refs:
            return {}
        for start in range(0, len(refs), CONTACT_BATCH):
            contacts.update(self.intake.get_contacts(refs[start:start + CONTACT_BATCH]))
        preferences = self.store.preferences_of(
            {contact["household_id"] for contact in contacts.values()
             if contact and contact.get("household_id")})
        return {ref: self._target(ref, contacts.get(ref), preferences.get(
            (contacts.get(ref) or {}).get("household_id"))) for ref in refs}

    @staticmethod
    def _target(ref, contact, preferences):
        if contact is None:
            return Target(recipient=ref, error=f"intake knows no contact for {ref}",
                          contact_ref=ref)
        return Target(recipient=contact.get("household_id") or ref, contact=contact,
                      preferences=preferences, contact_ref=ref)

    @staticmethod
    def _staff_target(member):
        return Target(recipient=member["id"], contact=member, household=False,
                      preferences={"channels": member.get("channels") or []})

    def _send_target(self, to, estate_id):
        """The recipient of ``send``: an address, a staff member or a household/complaint."""
        if schemas.address_kind(to):
            return Target(recipient=mask_address(to), household=False), estate_id
        staff_estate, member = self.settings.find_staff(to, estate_id)
        if member is not None:
            return self._staff_target(member), staff_estate
        target = self._contact_target(to)
        if target.error:
            raise InvalidInput({"to": ["unknown household, complaint or staff member"]})
        return target, estate_id or target.contact["estate_id"]

    def _contact(self, ref):
        try:
            return self.intake.get_contact(ref)
        except RemoteError as exc:
            if exc.exc_type == "NotFound":
                return None
            raise

    def _occupied_households(self, estate_id):
        try:
            households = self.intake.list_households(estate_id, {"occupied": True})
        except RemoteError as exc:
            if exc.exc_type != "NotFound":
                raise
            return []   # an estate intake does not know has nobody to tell
        return [household["id"] for household in households]

    # delivery ------------------------------------------------------------------------

    def _deliver(self, delivery_id, estate, template_id, params, target, ref, source_event=None,
                 send_at=None, channel=None, at_once=True, requested_by=None):
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
            error = self._no_address(estate, channel)
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
        return self._save(claimed, claimed["claim"], *self._attempt(claimed))

    def _routes(self, estate, target, channel=None):
        if channel:
            field = self.settings.channel(estate.estate_id, channel).address_field
            return domain.routes([channel], {channel: field}, target.contact)
        channels = self.settings.channels(estate.estate_id)
        order = domain.channel_order(list(channels), target.preferences,
                                     target.contact if target.household else None)
        fields = {name: channel.address_field for name, channel in channels.items()}
        return domain.routes(order, fields, target.contact)

    @staticmethod
    def _no_address(estate, channel=None):
        return "the recipient has no address for any of: " + ", ".join(
            [channel] if channel else estate.channels)

    def _as_it_is_now(self, delivery, target):
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
            error = target.error or self._no_address(estate, delivery["pinned_channel"])
            changes, events = domain.failed(delivery, [], error, now)
            log.warning("delivery %s failed: %s", delivery["_id"], changes["error"])
            return None, (changes, events)
        return domain.rerouted(delivery, routes), None

    def _attempt(self, delivery):
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

    def _try(self, delivery, estate, now):
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

    def _save(self, delivery, claim, changes, events=()):
        saved = self.store.save_claimed(delivery["_id"], claim, changes, events)
        if saved is None:   # the claim lapsed meanwhile and another worker took it
            log.warning("delivery %s: claim lost before its outcome was saved", delivery["_id"])
            return self.store.find_delivery(delivery["_id"])
        return saved
