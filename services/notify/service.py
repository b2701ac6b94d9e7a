"""notify: tells owners and staff what happens, on plug-in channels. Entrypoints only."""
import logging

from nameko.dependency_providers import Config
from nameko.exceptions import RemoteError
from nameko.rpc import RpcProxy

from services.notify import domain
from services.notify.catalogue import load_catalogue
from services.notify.channels import ChannelError, load_channels
from services.notify.repository import NotifyRepository
from shared.dependencies import ClockProvider, Store
from shared.errors import InvalidInput
from shared.masking import mask_address
from shared.messaging import handles
from shared.rpc import rpc, to_json
from shared.schemas import notify as schemas
from shared.schemas.base import load, require_id

log = logging.getLogger(__name__)

# Read when the service is loaded: a template its event cannot fill stops the start.
CATALOGUE = load_catalogue()
DEFAULT_CHANNELS = ("console",)
DEFAULT_LOCALE = "zh"
DEFAULT_TIMEZONE = "Asia/Shanghai"


class NotifyService:
    name = "notify"

    store = Store(NotifyRepository)
    clock = ClockProvider()
    intake = RpcProxy("intake")
    config = Config()

    # events -------------------------------------------------------------------

    @handles("intake", "complaint_registered")
    def acknowledge_complaint(self, event):
        """「接到客户投诉后,应首先向业主表示歉意」: the owner hears at once, apology first."""
        complaint_id = event["data"]["complaint_id"]
        self._notify(event, ref=complaint_id, contact_ref=complaint_id)

    @handles("revisit", "revisit_scheduled")
    def announce_revisit(self, event):
        data = event["data"]
        if data["household_id"] is None:
            return  # a common-area job: no household to tell
        self._notify(event, ref=data["revisit_id"], contact_ref=data["household_id"])

    # rpc ------------------------------------------------------------------------

    @rpc
    def send(self, data):
        channels, templates = self._channels(), self._templates()
        data = load(schemas.SendNotification(
            known_channels=list(channels),
            templates={template_id: template.params for template_id, template in templates.items()},
        ), data)
        template, channel, to = templates[data["template"]], data["channel"], data["to"]
        text = domain.render(template, data["params"])
        if schemas.address_kind(to):
            contact, address, recipient = None, to, mask_address(to)
        else:
            contact = self._contact(to)
            if contact is None:
                raise InvalidInput({"to": ["unknown household or complaint"]})
            address = contact.get(channels[channel].address_field)
            if not address:
                raise InvalidInput({"to": [
                    f"has no {channels[channel].address_field} for channel {channel}"]})
            recipient = contact.get("household_id") or to
        estate_id = data["estate_id"] or contact["estate_id"]
        delivery = domain.new_delivery(
            domain.new_delivery_id(), estate_id=estate_id, template=template, text=text,
            ref=data["ref"], recipient=recipient, channel=channel, address=address,
            now=self.clock.now())
        delivery = self._dispatch(delivery, [(channel, address)], channels,
                                  self._preferences(contact))
        return to_json(domain.public_view(delivery))

    @rpc
    def list_deliveries(self, filters=None):
        filters = load(schemas.DeliveryFilters(), filters or {})
        return [to_json(domain.public_view(delivery))
                for delivery in self.store.list_deliveries(filters)]

    @rpc
    def set_preferences(self, household_id, data):
        require_id(household_id, "household_id")
        data = load(schemas.Preferences(known_channels=list(self._channels())), data)
        preferences = domain.merge_preferences(
            self.store.get_preferences(household_id), data, household_id, self.clock.now())
        return to_json(domain.preferences_view(self.store.save_preferences(preferences)))

    # helpers ------------------------------------------------------------------

    def _notify(self, event, ref, contact_ref):
        """Render the event's template for its contact and deliver it, once per event."""
        notification = domain.NOTIFICATIONS[event["type"]]
        delivery_id = domain.delivery_id_for(event["id"], notification.template)
        if self.store.find_delivery(delivery_id) is not None:
            return  # redelivered: this event's message was already handled
        channels = self._channels()
        template = self._templates()[notification.template]
        text = domain.render(
            template, notification.build(event["data"], self._zone(event["estate_id"])))
        contact = self._contact(contact_ref)     # looked up now: events carry no addresses
        preferences = self._preferences(contact)
        order = domain.channel_order(list(channels), preferences, contact)
        routes = domain.routes(
            order, {name: channel.address_field for name, channel in channels.items()}, contact)
        channel, address = routes[0] if routes else (order[0], None)
        delivery = domain.new_delivery(
            delivery_id, estate_id=event["estate_id"], template=template, text=text, ref=ref,
            recipient=(contact or {}).get("household_id") or contact_ref,
            channel=channel, address=address, now=self.clock.now(), source_event=event["id"])
        error = None
        if contact is None:
            error = f"intake knows no contact for {contact_ref}"
        elif not routes:
            error = f"the contact has no address for any of: {', '.join(order)}"
        self._dispatch(delivery, routes, channels, preferences, error)

    def _dispatch(self, delivery, routes, channels, preferences, error=None):
        """Log the delivery as queued, try each route in turn, record how it ended.

        The queued record goes in first under its unique id, so of two workers
        handed the same event only one sends.
        """
        now = self.clock.now()
        if domain.opted_out(preferences):
            return self.store.add_delivery(
                dict(delivery, **domain.suppressed("household opted out", now)))
        if error:
            changes, events = domain.failed(delivery, [], error, now)
            log.warning("delivery %s failed: %s", delivery["_id"], changes["error"])
            return self.store.add_delivery(dict(delivery, **changes), events)
        if self.store.add_delivery(delivery) is None:
            return None  # another worker has this event
        attempts = []
        for name, address in routes:
            try:
                channels[name].send(address, delivery["text"])
            except ChannelError as exc:
                attempts.append(domain.attempt(name, now, str(exc) or "delivery failed"))
                continue
            except Exception as exc:  # a plug-in bug must not leave the delivery queued
                log.exception("channel %s raised while sending delivery %s", name, delivery["_id"])
                attempts.append(domain.attempt(name, now, f"{type(exc).__name__}: {exc}"))
                continue
            attempts.append(domain.attempt(name, now))
            changes, events = domain.sent(delivery, name, address, attempts, now)
            return self.store.finish_delivery(delivery["_id"], changes, events)
        changes, events = domain.failed(delivery, attempts, attempts[-1]["error"], now)
        log.warning("delivery %s failed on %s: %s", delivery["_id"],
                    ", ".join(name for name, _ in routes), changes["error"])
        return self.store.finish_delivery(delivery["_id"], changes, events)

    def _contact(self, ref):
        try:
            return self.intake.get_contact(ref)
        except RemoteError as exc:
            if exc.exc_type == "NotFound":
                return None
            raise

    def _preferences(self, contact):
        household_id = (contact or {}).get("household_id")
        return self.store.get_preferences(household_id) if household_id else None

    def _channels(self):
        return load_channels(self.config.get("NOTIFY_CHANNELS") or DEFAULT_CHANNELS, self.config)

    def _templates(self):
        locale = self.config.get("NOTIFY_LOCALE") or DEFAULT_LOCALE
        if locale not in CATALOGUE:
            raise LookupError(f"NOTIFY_LOCALE {locale!r}: no templates/{locale}.yaml")
        return CATALOGUE[locale]

    def _zone(self, estate_id):
        """The estate's time zone, as intake's complaint policy sets it."""
        estate = (self.config.get("ESTATE_POLICIES") or {}).get(estate_id) or {}
        group = self.config.get("COMPLAINT_POLICY") or {}
        return estate.get("timezone") or group.get("timezone") or DEFAULT_TIMEZONE
