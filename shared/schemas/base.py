"""Building blocks of every input and payload schema.

Marshmallow 4 raises on unknown fields by default, so a misspelt or injected
field is refused, never ignored.
"""
import re
from datetime import UTC

from marshmallow import Schema as _Schema
from marshmallow import ValidationError, fields, validate

from shared import quiet_hours
from shared.clock import to_millis
from shared.errors import InvalidInput
from shared.periods import PERIOD, PERIOD_HELP

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
# Mainland mobile (1[3-9]xxxxxxxxx, optional +86) or landline with area code.
MOBILE_PATTERN = re.compile(r"^(?:\+?86[- ]?)?1[3-9]\d{9}$")
LANDLINE_PATTERN = re.compile(r"^0\d{2,3}-?\d{7,8}(?:-\d{1,6})?$")


class Schema(_Schema):
    class Meta:
        ordered = True


class Id(fields.String):
    """An identifier: a plain string, never an object or an operator."""

    def __init__(self, **kwargs):
        super().__init__(validate=validate.Regexp(ID_PATTERN, error="not a valid id"), **kwargs)


class Phone(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not (MOBILE_PATTERN.match(text) or LANDLINE_PATTERN.match(text)):
            raise ValidationError("not a valid mainland mobile or landline number")
        return text


class Flag(fields.Boolean):
    """true or false, nothing that merely looks like one ("yes", 1)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class Period(fields.String):
    """A reporting period: ``YYYY``, ``YYYY-MM``, ``YYYY-Qn`` or ``YYYY-Hn``."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if not PERIOD.match(text):
            raise ValidationError(PERIOD_HELP)
        return text


class QuietHours(fields.String):
    """Local hours like "22:00-08:00" (may wrap midnight), stored as "HH:MM-HH:MM"."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return quiet_hours.normalize(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class UtcDateTime(fields.AwareDateTime):
    """ISO 8601 with an explicit offset; stored and compared in UTC."""

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs).astimezone(UTC)
        return to_millis(moment)


def Text(max_length=2000, **kwargs):
    """Free text that must say something."""
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


def OneOf(choices, **kwargs):
    return fields.String(validate=validate.OneOf(choices), **kwargs)


def _operator_keys(value, path=""):
    """Paths of dict keys starting with '$' (or holding '.'): they must never reach a query."""
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if not isinstance(key, str) or key.startswith("$") or "\x00" in key:
                yield where
            yield from _operator_keys(item, where)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _operator_keys(item, f"{path}.{index}" if path else str(index))


def load(schema, data, field=None, **kwargs):
    """Validate outside input: the loaded data, or ``InvalidInput`` naming each bad field.

    ``field`` names the argument when it is not the whole input (``rows.1.occupied``).
    """
    if data is None:
        data = {}
    if not isinstance(data, dict) and not kwargs.get("many"):
        raise InvalidInput({"_schema": ["expected an object"]})
    bad_keys = list(_operator_keys(data))
    if bad_keys:
        raise InvalidInput({
            f"{field}.{key}" if field else key: ["keys starting with '$' are not allowed"]
            for key in bad_keys
        })
    try:
        return schema.load(data, **kwargs)
    except ValidationError as exc:
        raise InvalidInput({field: exc.messages} if field else exc.messages) from None


def require_id(value, field="id"):
    """Check a bare id argument of an RPC (not wrapped in a schema)."""
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise InvalidInput({field: ["not a valid id"]})
    return value
