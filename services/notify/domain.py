"""Notifications: templates, channel choice and the delivery log. Pure Python.

Policy texts (../shared/seed): 「接到客户投诉后,应首先向业主表示歉意」 — the
acknowledgement apologises first — and 「回访可以通过电话、邮件、短信等方式进行」 —
channels are interchangeable plug-ins.
"""
import re
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from shared.envelope import new_event
from shared.masking import mask_address, mask_email, mask_phone

SOURCE = "notify"
AUDIENCES = ("owner", "staff")
TEMPLATE_KEYS = {"audience", "text", "labels"}


class TemplateError(ValueError):
    """A template file or entry that cannot be used."""


class MissingParameters(TemplateError):
    def __init__(self, template_id, missing):
        self.template_id, self.missing = template_id, list(missing)
        super().__init__(f"template {template_id} needs {', '.join(self.missing)}")


# templates -------------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    id: str
    locale: str
    audience: str
    text: str
    labels: dict = field(default_factory=dict)   # param -> {value: display text}

    @property
    def params(self):
        return placeholders(self.text)


def placeholders(text):
    """The parameter names ``text`` uses; only plain names (no attribute or index access)."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"malformed template text: {exc}") from None
    names = set()
    for _, name, spec, _ in parsed:
        if name is None:
            continue
        if not name.isidentifier() or "{" in (spec or ""):
            raise TemplateError(f"placeholder {{{name}}} must be a plain name")
        names.add(name)
    return frozenset(names)


def parse_templates(locale, document):
    """One locale's template file (already parsed YAML) as {template id: Template}."""
    if not isinstance(document, dict):
        raise TemplateError(f"{locale}: expected a mapping of template ids")
    templates = {}
    for template_id, entry in document.items():
        where = f"{locale}/{template_id}"
        if not isinstance(entry, dict) or set(entry) - TEMPLATE_KEYS:
            raise TemplateError(f"{where}: expected only {', '.join(sorted(TEMPLATE_KEYS))}")
        if entry.get("audience") not in AUDIENCES:
            raise TemplateError(f"{where}: audience must be one of {', '.join(AUDIENCES)}")
        if not isinstance(entry.get("text"), str) or not entry["text"].strip():
            raise TemplateError(f"{where}: text is missing")
        labels = entry.get("labels") or {}
        if not all(isinstance(values, dict) for values in labels.values()):
            raise TemplateError(f"{where}: labels map a parameter to {{value: text}}")
        try:
            placeholders(entry["text"])
        except TemplateError as exc:
            raise TemplateError(f"{where}: {exc}") from None
        templates[str(template_id)] = Template(
            id=str(template_id), locale=locale, audience=entry["audience"], text=entry["text"],
            labels={name: {str(k): str(v) for k, v in values.items()}
                    for name, values in labels.items()},
        )
    return templates


def render(template, params):
    """The message text. A missing or blank parameter raises: an SMS never shows a gap."""
    missing = sorted(name for name in template.params if _blank(params.get(name)))
    if missing:
        raise MissingParameters(template.id, missing)
    values = {
        name: template.labels.get(name, {}).get(str(params[name]), params[name])
        for name in template.params
    }
    return template.text.format_map(values)


def _blank(value):
    return value is None or (isinstance(value, str) and not value.strip())


def local_time(moment, zone):
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def local_date(moment, zone):
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d")


# which event tells whom what ---------------------------------------------------

@dataclass(frozen=True)
class Notification:
    template: str
    supplies: tuple                      # parameter names ``build`` fills
    build: Callable                      # (event data, time zone) -> params


def complaint_received_params(data, zone):
    return {
        "complaint_id": data["complaint_id"],
        "received_at": local_time(data["received_at"], zone),
        "first_response_due": local_time(data["first_response_due"], zone),
        "reply_due": local_time(data["reply_due"], zone),
    }


def revisit_scheduled_params(data, zone):
    return {
        "revisit_id": data["revisit_id"],
        "due_date": local_date(data["due_at"], zone),
        "method": data["method"],
    }


# event type -> the notification it triggers
NOTIFICATIONS = {
    "complaint_registered": Notification(
        "complaint_received", ("complaint_id", "received_at", "first_response_due", "reply_due"),
        complaint_received_params),
    "revisit_scheduled": Notification(
        "revisit_scheduled", ("revisit_id", "due_date", "method"), revisit_scheduled_params),
}


def check_templates(catalogue, notifications=NOTIFICATIONS):
    """Problems with a catalogue ({locale: {id: Template}}); empty when all is well.

    Every event's template must exist in every locale and use only the
    parameters that event supplies; every locale must hold the same templates.
    """
    problems = []
    all_ids = set().union(*(set(templates) for templates in catalogue.values())) if catalogue else set()
    for locale, templates in sorted(catalogue.items()):
        for template_id in sorted(all_ids - set(templates)):
            problems.append(f"{locale}/{template_id}: missing (other locales have it)")
        for event_type, notification in notifications.items():
            template = templates.get(notification.template)
            if template is None:
                problems.append(f"{locale}/{notification.template}: missing ({event_type} uses it)")
                continue
            unknown = sorted(template.params - set(notification.supplies))
            if unknown:
                problems.append(f"{locale}/{template.id}: uses {', '.join(unknown)}, "
                                f"which {event_type} does not supply")
    return problems


# channel choice --------------------------------------------------------------------

def channel_order(configured, preferences=None, contact=None):
    """Channels to try, best first: the household's own order, then the contact's
    preferred channel, then the configured order. Only configured channels."""
    wanted = list((preferences or {}).get("channels") or [])
    if contact and contact.get("preferred_channel"):
        wanted.append(contact["preferred_channel"])
    return [name for name in dict.fromkeys(wanted + list(configured)) if name in configured]


def routes(order, address_fields, contact):
    """(channel, address) pairs from ``order`` for which the contact has an address."""
    contact = contact or {}
    return [(name, contact[address_fields[name]]) for name in order
            if contact.get(address_fields[name])]


def opted_out(preferences):
    return bool(preferences and preferences.get("opt_out"))


# delivery records ------------------------------------------------------------------

def delivery_id_for(event_id, template_id):
    """One delivery per event and template: a redelivered event finds it already there."""
    return f"{event_id}:{template_id}"


def new_delivery_id():
    return f"dlv-{uuid.uuid4().hex[:16]}"


def new_delivery(delivery_id, *, estate_id, template, text, ref, recipient, channel, address,
                 now, source_event=None):
    """A 'queued' delivery; the only record that keeps the full address."""
    return {
        "_id": delivery_id,
        "estate_id": estate_id,
        "template": template.id,
        "locale": template.locale,
        "text": text,
        "ref": ref,
        "recipient": recipient,          # household / complaint / staff id, never an address
        "channel": channel,
        "address": address,
        "status": "queued",
        "source_event": source_event,
        "attempts": [],
        "error": None,
        "created_at": now,
        "updated_at": now,
        "sent_at": None,
        "failed_at": None,
    }


def attempt(channel, now, error=None):
    return {"channel": channel, "at": now, "error": redact(error) if error else None}


def sent(delivery, channel, address, attempts, now):
    """The changes that mark ``delivery`` sent, and its ``notification_sent`` event."""
    changes = {"status": "sent", "channel": channel, "address": address, "attempts": attempts,
               "sent_at": now, "updated_at": now}
    return changes, [_event(dict(delivery, **changes), "notification_sent", now)]


def failed(delivery, attempts, error, now):
    """The changes that mark ``delivery`` failed, and its ``notification_failed`` event."""
    changes = {"status": "failed", "attempts": attempts, "error": redact(error),
               "failed_at": now, "updated_at": now}
    return changes, [_event(dict(delivery, **changes), "notification_failed", now,
                            error=changes["error"])]


def suppressed(reason, now):
    """Not sent on purpose (the household opted out): logged, no event."""
    return {"status": "suppressed", "reason": reason, "updated_at": now}


def public_view(delivery):
    """A delivery as staff see it: the address masked."""
    return dict(delivery, address=mask_address(delivery.get("address")))


# An error text from a plug-in may quote the address: mask any number or e-mail in it.
_MOBILE_IN_TEXT = re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d{9}(?!\d)")
_EMAIL_IN_TEXT = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def redact(text):
    text = _MOBILE_IN_TEXT.sub(lambda match: mask_phone(match.group()), str(text))
    return _EMAIL_IN_TEXT.sub(lambda match: mask_email(match.group()), text)[:1000]


def _event(delivery, event_type, now, **extra):
    payload = {key: delivery[key] for key in ("channel", "template", "recipient", "ref")}
    return new_event(event_type, SOURCE, delivery["estate_id"],
                     dict(payload, delivery_id=delivery["_id"], **extra), now)


# preferences --------------------------------------------------------------------------

def default_preferences(household_id):
    return {"_id": household_id, "channels": [], "quiet_hours": None, "opt_out": False}


def merge_preferences(current, changes, household_id, now):
    """``current`` (or the defaults) with the given fields changed."""
    return dict(current or default_preferences(household_id), **changes, updated_at=now)


def preferences_view(preferences):
    view = dict(preferences, household_id=preferences["_id"])
    view.pop("_id")
    return view
