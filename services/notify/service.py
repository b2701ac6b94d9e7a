"""notify: tells owners and staff what happens, on plug-in channels. Entrypoints only."""
from functools import cached_property

from services.notify import delivery_log, event_params, message_templates
from services.notify.address_book import AddressBook
from services.notify.channels import AddressError
from services.notify.delivery import Deliveries
from services.notify.dispatch import dispatch_due
from services.notify.preferences import merge_preferences, preferences_view
from services.notify.repository import NotifyRepository
from services.notify.settings import notify_settings, zoned_by_estate_copies
from shared import paging
from shared.actor import CallerProvider
from shared.dependencies import ClockProvider, Store
from shared.errors import InvalidInput
from shared.idempotency import derived_id, idempotent
from shared.messaging import AS_THEY_COME, handles, handles_batch
from shared.policies import EstatePolicies
from shared.rpc import RpcProxy, not_found_as, ping, rpc, to_json
from shared.schemas import notify as schemas
from shared.schemas.base import load, require_id
from shared.timers import timer_from_config

# a round's invitations (and reminders) handled together (contacts: one intake.get_contacts)
INVITATION_BATCH = 250


class NotifyService:
    name = "notify"
    ping = ping

    store = Store(NotifyRepository)
    clock = ClockProvider()
    settings = EstatePolicies(notify_settings, view=zoned_by_estate_copies)
    # in its own name: intake gives full contacts to notify, never to the person who asked
    # for a message (the number goes to the channel, not back to them)
    intake = RpcProxy("intake", in_own_name=True)
    caller = CallerProvider()

    # one of each a worker, built from its dependencies on first use
    @cached_property
    def deliveries(self) -> Deliveries:
        return Deliveries(self.store, self.settings, self.clock)

    @cached_property
    def address_book(self) -> AddressBook:
        return AddressBook(self.intake, self.store, self.settings)

    # events -------------------------------------------------------------------

    @handles("intake", "estate_registered")
    def keep_estate_copy(self, event):
        """The copy of intake's estates the settings take each estate's zone from."""
        self.settings.estates.learn(event)

    @handles("intake", "estate_updated")
    def keep_estate_copy_updated(self, event):
        self.settings.estates.learn(event)

    @handles_batch("intake", "complaint_registered", **AS_THEY_COME)
    def acknowledge_complaint(self, events):
        """「接到客户投诉后,应首先向业主表示歉意」: the owner hears at once, apology first."""
        return self.deliveries.announce_all(events, self.address_book)

    @handles_batch("intake", "complaint_assigned", **AS_THEY_COME)
    def tell_assignee(self, events):
        return self.deliveries.announce_all(events, self.address_book)

    @handles("intake", "complaint_overdue")
    def alert_overdue_complaint(self, event):
        self._notify(event)

    @handles("intake", "complaint_deadline_approaching")
    def warn_of_approaching_deadline(self, event):
        self._notify(event)

    @handles("intake", "complaint_escalated")
    def alert_escalated_complaint(self, event):
        self._notify(event)

    @handles("intake", "complaint_instruction_recorded")
    def pass_on_instruction(self, event):
        """「待经理做出明确指示后,妥善处理」: whoever has the complaint hears the instruction."""
        self._notify(event)

    @handles_batch("intake", "complaint_closed", **AS_THEY_COME)
    def announce_closing(self, events):
        """「物业公司应将投诉处理结果及时公布」: the owner hears the outcome."""
        return self.deliveries.announce_all(events, self.address_book)

    @handles_batch("revisit", "revisit_scheduled", **AS_THEY_COME)
    def announce_revisit(self, events):
        return self.deliveries.announce_all(events, self.address_book)

    @handles("revisit", "revisit_booked")
    def confirm_appointment(self, event):
        """Confirms the appointment and schedules its reminder; a new booking replaces
        the reminder of the previous one."""
        reminder = delivery_log.delivery_id_for(event["id"], "revisit_reminder")
        self.store.cancel_pending(event["data"]["revisit_id"], "revisit_reminder",
                                  "superseded by a new appointment", self.clock.now(),
                                  keep=reminder)
        self._notify(event)

    @handles("revisit", "revisit_completed")
    def cancel_reminders(self, event):
        """The visit took place: a reminder still waiting would only confuse the owner."""
        self.store.cancel_pending(event["data"]["revisit_id"], "revisit_reminder",
                                  "the follow-up visit took place", self.clock.now())

    @handles_batch("survey", "survey_invitation_issued", size=INVITATION_BATCH)
    def invite_to_survey(self, events):
        """A round's invitations come by the thousand: a batch at a time, their households'
        contacts in one call, the notices' events confirmed together. {event id: error} of
        those that failed (each retried alone)."""
        return self.deliveries.announce_all(events, self.address_book)

    @handles("survey", "survey_cadence_missed")
    def warn_of_missed_survey(self, event):
        """「每半年进行一次业主/用户意见调查」 was not kept: the estate manager and
        headquarters hear."""
        self._notify(event)

    @handles_batch("survey", "survey_reminder_due", size=INVITATION_BATCH)
    def remind_of_survey(self, events):
        """Reminders come by the thousand too: as invitations are handled."""
        return self.deliveries.announce_all(events, self.address_book)

    @handles("survey", "survey_report_published")
    def announce_survey_report(self, event):
        """「业主/用户意见调查结果及整改方案应向业主单位公布」: every occupied household hears."""
        self._notify(event)

    @handles("intake", "complaint_repeated")
    def alert_repeat_complaint(self, event):
        """「24小时内安排特殊措施」: the supervisors and managers hear at once."""
        self._notify(event)

    @handles_batch("intake", "complaint_resolved", **AS_THEY_COME)
    def announce_resolution(self, events):
        return self.deliveries.announce_all(events, self.address_book)

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

    @handles("revisit", "revisit_followup_opened")
    def assign_revisit_followup(self, event):
        """「向相关部门反馈」: the department hears what the owner said, and by when."""
        self._notify(event)

    @handles("revisit", "revisit_followup_overdue")
    def alert_overdue_revisit_followup(self, event):
        self._notify(event)

    @handles("revisit", "revisit_followup_answered")
    def tell_owner_of_followup_answer(self, event):
        """「一个月内向业主反馈」: the owner hears what was done."""
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
        dispatch_due(self.deliveries, self.address_book.contacts)

    # rpc ------------------------------------------------------------------------

    @rpc
    @idempotent
    def send(self, data):
        templates = self.settings.templates(None, self.settings.estate(None).locale)
        data = load(schemas.SendNotification(
            known_channels=self.settings.all_channel_names(),
            templates={template_id: template.params - set(event_params.ESTATE_PARAMS)
                       for template_id, template in templates.items()},
        ), data)
        delivery_id = derived_id("dlv") or delivery_log.new_delivery_id()
        made = self.store.find_delivery(delivery_id)
        if made is not None:   # this request's first run logged it (the dispatcher sends it)
            return to_json(delivery_log.public_view(made))
        channel_name, to = data["channel"], data["to"]
        if data["estate_id"] is not None:   # estates are intake's: an unknown one is refused
            with not_found_as("estate", data["estate_id"], field="estate_id"):
                self.intake.get_estate(data["estate_id"])
        target, estate_id = self.address_book.for_send(to, data["estate_id"])
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
        params = {**data["params"], **event_params.estate_params(estate.context)}
        try:
            message_templates.render(template, params, "")
        except message_templates.MissingParameters as exc:   # an estate's wording may need more
            raise InvalidInput({"params": {name: [f"required by template {template.id}"]
                                           for name in exc.missing}}) from None
        params = event_params.with_contact_params(params, target.contact, estate.context)
        target.contact = {channel.address_field: address}
        delivery = self.deliveries.deliver(
            delivery_id, estate, data["template"], params, target,
            ref=data["ref"], channel=channel_name, requested_by=self.caller.actor_id)
        return to_json(delivery_log.public_view(delivery))

    @rpc
    def list_deliveries(self, filters=None, paged=False):
        filters = paging.load_filters(schemas.DeliveryFilters(), filters, paged)
        deliveries, next_cursor = self.store.list_deliveries(filters)
        # a person other than an administrator reads owner links without their tokens
        actor = self.caller.actor
        show_links = actor is None or "admin" in actor.roles
        return paging.answer([to_json(delivery_log.public_view(delivery, show_links))
                              for delivery in deliveries], next_cursor, paged)

    @rpc
    @idempotent
    def set_preferences(self, household_id, data):
        require_id(household_id, "household_id")
        data = load(schemas.Preferences(known_channels=self.settings.all_channel_names(),
                                        known_locales=self.settings.locales()), data)
        with not_found_as("household", household_id):   # households are intake's
            self.intake.get_household(household_id)
        preferences = merge_preferences(
            self.store.get_preferences(household_id), data, household_id, self.clock.now(),
            updated_by=self.caller.actor_id)
        return to_json(preferences_view(self.store.save_preferences(preferences)))

    # helpers ------------------------------------------------------------------------

    def _notify(self, event):
        """Every message ``event`` calls for, to each of its recipients, once per event."""
        self.deliveries.announce(event, self.address_book)
