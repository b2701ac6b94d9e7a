"""Inputs of notify's RPCs (docs/rpc.md, notify).

Which channels and templates exist is known only at run time (installed
plug-ins, template files), so the schemas that check them are given those
when built: ``SendNotification(known_channels=..., templates=...)``.
"""
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any

from marshmallow import ValidationError, fields, validate, validates, validates_schema
from marshmallow.validate import Range

from shared.paging import Limit, ListFilters
from shared.schemas.base import (
    ID_PATTERN,
    LANDLINE_PATTERN,
    MOBILE_PATTERN,
    Flag,
    FullMatch,
    Id,
    IdList,
    OneOf,
    Phone,
    QuietHours,
    Schema,
    Text,
)
from shared.schemas.vocabulary import DELIVERY_STATUSES

PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# "22:00-08:00"; the en dash and "~" people type are accepted and normalised.
_EMAIL = validate.Email(error="not a valid e-mail address")
# What a delivery channel accepts as an e-mail address (plain ASCII addr-spec).
EMAIL_PATTERN = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+$")


def address_kind(value: str | None) -> str | None:
    """'phone' or 'email' when ``value`` is an address, None when it is an id."""
    text = (value or "").strip()
    if MOBILE_PATTERN.match(text) or LANDLINE_PATTERN.match(text):
        return "phone"
    if "@" in text:
        return "email"
    return None


class Recipient(fields.String):
    """A household, complaint or staff id, or a phone number / e-mail address."""

    def _deserialize(self, value: Any, attr: str | None,
                     data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        kind = address_kind(text)
        if kind == "email":
            _EMAIL(text)
        elif kind is None and not ID_PATTERN.match(text):
            raise ValidationError("neither an id nor a phone number or e-mail address")
        return text


class ParamValue(fields.Field):
    """A template parameter: text or a number, never blank (an SMS never shows a gap)."""

    def _deserialize(self, value: Any, attr: str | None,
                     data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValidationError("must be text or a number")
        if isinstance(value, str):
            value = value.strip()
            if not value:
                raise ValidationError("must not be blank")
            if len(value) > 500:
                raise ValidationError("longer than 500 characters")
        return value


def _known(value: object, known: Collection[str], what: str) -> None:
    if value not in known:
        raise ValidationError(f"unknown {what}; known: {', '.join(known) or 'none'}")


class SendNotification(Schema):
    channel = Text(max_length=50, required=True)
    to = Recipient(validate=validate.Length(min=1, max=254), required=True)
    template = Id(required=True)
    params = fields.Dict(
        keys=fields.String(validate=FullMatch(PARAM_NAME, error="not a parameter name")),
        values=ParamValue(), load_default=dict,
    )
    ref = Id(allow_none=True, load_default=None)
    # Needed only when ``to`` is an address: an id tells intake's contact the estate.
    estate_id = Id(allow_none=True, load_default=None)

    def __init__(self, known_channels: Iterable[str] = (),
                 templates: Mapping[str, Collection[str]] | None = None,
                 **kwargs: Any) -> None:
        """``templates``: template id -> the parameter names its text uses."""
        super().__init__(**kwargs)
        self.known_channels = tuple(known_channels)
        self.templates = dict(templates or {})

    @validates("channel")
    def known_channel(self, value: Any, **kwargs: Any) -> None:
        _known(value, self.known_channels, "channel")

    @validates("template")
    def known_template(self, value: Any, **kwargs: Any) -> None:
        _known(value, sorted(self.templates), "template")

    @validates_schema(skip_on_field_errors=True)
    def complete(self, data: dict[str, Any], **kwargs: Any) -> None:
        missing = sorted(set(self.templates[data["template"]]) - set(data["params"]))
        if missing:
            raise ValidationError(
                {name: [f"required by template {data['template']}"] for name in missing}, "params")
        if address_kind(data["to"]) and not data["estate_id"]:
            raise ValidationError("required when 'to' is an address", "estate_id")


class DeliveryFilters(ListFilters):
    estate_id = Id()
    estate_ids = IdList()
    ref = Id()
    channel = Text(max_length=50)
    status = OneOf(DELIVERY_STATUSES)
    recipient = Text(max_length=254)
    template = Id()
    limit = Limit(1000, default=500)


class Preferences(Schema):
    """Only the fields given change; the others keep their stored (or default) value."""

    channels = fields.List(Text(max_length=50))   # ordered: the first is tried first
    quiet_hours = QuietHours(allow_none=True)     # null: the estate's quiet hours
    opt_out = Flag()                              # mandatory notices still go
    locale = Text(max_length=10, allow_none=True)  # null: the estate's language

    def __init__(self, known_channels: Iterable[str] = (), known_locales: Iterable[str] = (),
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.known_channels = tuple(known_channels)
        self.known_locales = tuple(known_locales)

    @validates("locale")
    def known_locale(self, value: Any, **kwargs: Any) -> None:
        if value is not None:
            _known(value, self.known_locales, "locale")

    @validates("channels")
    def known_and_distinct(self, value: Any, **kwargs: Any) -> None:
        for name in value:
            _known(name, self.known_channels, "channel")
        if len(set(value)) != len(value):
            raise ValidationError("a channel is listed twice")


# Settings (config.yaml NOTIFY_*), checked when the service starts ----------------------

class EmailAddress(fields.String):
    def _deserialize(self, value: Any, attr: str | None,
                     data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not EMAIL_PATTERN.match(text):
            raise ValidationError("not a valid e-mail address")
        return text


class Signature(fields.Field):
    """The sender's name in 【】: one for every language, or {locale: name}."""

    def _deserialize(self, value: Any, attr: str | None,
                     data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, str) and value.strip():
            return {"*": value.strip()}
        if isinstance(value, dict) and value and all(
                isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in value.items()):
            return {k: v.strip() for k, v in value.items()}
        raise ValidationError("a name, or {locale: name}")


class StaffMember(Schema):
    """One entry of an estate's staff directory: who gets staff notices."""

    id = Id(required=True)
    name = Text(max_length=100, load_default=None)
    roles = fields.List(Text(max_length=50), load_default=list)   # supervisor, manager, ...
    department = Text(max_length=100, allow_none=True, load_default=None)
    phone = Phone(allow_none=True, load_default=None)
    email = EmailAddress(allow_none=True, load_default=None)
    channels = fields.List(Text(max_length=50), load_default=list)  # own order, best first


class EstateNotifySettings(Schema):
    """What an estate may set for itself; a key left out keeps the group's value."""

    channels = fields.List(Text(max_length=50), validate=validate.Length(min=1))
    locale = Text(max_length=10)
    signature = Signature()
    quiet_hours = QuietHours(allow_none=True)        # null: no quiet hours
    daily_limits = fields.Dict(keys=Text(max_length=50),
                               values=fields.Integer(strict=True, validate=Range(min=1)))
    survey_base_url = fields.Url(require_tld=False)
    reminder_lead_hours = fields.Float(validate=Range(min=0, max=24 * 14))
    staff = fields.List(fields.Nested(StaffMember))
    template_dir = Text(max_length=500)
    templates = fields.Dict(keys=Text(max_length=10), values=fields.Dict())
    channel_settings = fields.Dict(keys=Text(max_length=50), values=fields.Dict())

    @validates("staff")
    def distinct_staff(self, value: Any, **kwargs: Any) -> None:
        ids = [member["id"] for member in value]
        if len(set(ids)) != len(ids):
            raise ValidationError("a staff id is listed twice")


class NotifySettings(EstateNotifySettings):
    """The group's settings, and each estate's own under ``estates``."""

    retry_delays_s = fields.List(fields.Float(validate=Range(min=0)))
    claim_seconds = fields.Float(validate=Range(min=1))
    estates = fields.Dict(keys=Id(), values=fields.Nested(EstateNotifySettings))
