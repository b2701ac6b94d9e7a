"""Building blocks of every input and payload schema.

Marshmallow 4 raises on unknown fields by default, so a misspelt or injected
field is refused, never ignored.
"""
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from marshmallow import Schema as _Schema
from marshmallow import ValidationError, fields, validate

from shared import quiet_hours
from shared.clock import to_millis
from shared.errors import InvalidInput
from shared.periods import PERIOD, PERIOD_HELP

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$")
# An owner link's token: secrets.token_urlsafe(16) gives 22 characters; some room, nothing
# query-like.
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{16,64}$")
# Mainland mobile (1[3-9]xxxxxxxxx, optional +86) or landline with area code.
MOBILE_PATTERN = re.compile(r"^(?:\+?86[- ]?)?1[3-9][0-9]{9}$")
LANDLINE_PATTERN = re.compile(r"^0[0-9]{2,3}-?[0-9]{7,8}(?:-[0-9]{1,6})?$")
# Field metadata key: what of the acting person fills the field ("rung"; shared/actor.py).
ACTOR_FIELD = "from_actor"


class Schema(_Schema):
    class Meta:
        ordered = True


class FullMatch(validate.Regexp):
    """``validate.Regexp`` over the whole value: with ``match`` a pattern's ``$`` also lets
    a trailing newline through ("e-1\\n" would be another estate)."""

    def __call__(self, value: Any) -> Any:
        # our patterns are text (marshmallow's ``regex`` may be bytes too)
        regex = cast(re.Pattern[str], self.regex)
        if not isinstance(value, str) or regex.fullmatch(value) is None:
            raise ValidationError(self._format_error(value))
        return value


class Id(fields.String):
    """An identifier: a plain string, never an object or an operator."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(validate=FullMatch(ID_PATTERN, error="not a valid id"), **kwargs)


def IdList(max_length: int = 1000, **kwargs: Any) -> fields.List:
    """One to ``max_length`` ids (``estate_ids`` of a list filter: any of these)."""
    return fields.List(Id(), validate=validate.Length(min=1, max=max_length), **kwargs)


class Phone(fields.String):
    def _deserialize(self, value: Any, attr: str | None,
                     data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not (MOBILE_PATTERN.fullmatch(text) or LANDLINE_PATTERN.fullmatch(text)):
            raise ValidationError("not a valid mainland mobile or landline number")
        return text


class Flag(fields.Boolean):
    """true or false, nothing that merely looks like one ("yes", 1)."""

    def _deserialize(self, value: Any, attr: str | None,
                     data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class Period(fields.String):
    """A reporting period: ``YYYY``, ``YYYY-MM``, ``YYYY-Qn`` or ``YYYY-Hn``."""

    def _deserialize(self, value: Any, attr: str | None,
                     data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not PERIOD.fullmatch(text):
            raise ValidationError(PERIOD_HELP)
        return text


class QuietHours(fields.String):
    """Local hours like "22:00-08:00" (may wrap midnight), stored as "HH:MM-HH:MM"."""

    def _deserialize(self, value: Any, attr: str | None,
                     data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        try:
            return quiet_hours.normalize(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class UtcDateTime(fields.AwareDateTime):
    """ISO 8601 with an explicit offset, from 2000 to 2099; stored and compared in UTC.

    Anything outside is a typing error, and would break whatever computes with it later
    (working days, a spreadsheet's date range)."""

    window = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))

    def _deserialize(self, value: Any, attr: str | None,
                     data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        moment = super()._deserialize(value, attr, data, **kwargs).astimezone(UTC)
        earliest, latest = self.window
        if not earliest <= moment < latest:
            raise ValidationError(f"must be between {earliest.date()} and "
                                  f"{(latest - timedelta(days=1)).date()}")
        return to_millis(moment)


class EventTime(UtcDateTime):
    """A time in an event: an input's, or one computed from it (a deadline a few working
    days after a complaint received on 30 December 2099)."""

    window = (UtcDateTime.window[0], datetime(2110, 1, 1, tzinfo=UTC))


BLANK_TEXT = "must not be empty"   # the console shows a field refused so as "required"


def Text(max_length: int = 2000, **kwargs: Any) -> fields.String:
    """Free text that must say something: empty or whitespace-only text is refused, also
    where the field is optional (leave it out, or null where allowed, to say nothing)."""
    return fields.String(validate=[validate.Length(max=max_length),
                                   validate.Predicate("strip", error=BLANK_TEXT)], **kwargs)


def OneOf(choices: Iterable[str], **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.OneOf(choices), **kwargs)


def _operator_keys(value: object, path: str = "") -> Iterator[str]:
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


# C0 control characters other than tab, newline and carriage return (forms send CRLF).
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _text_problem(text: str) -> str | None:
    if CONTROL_CHARACTERS.search(text):
        return "must not contain control characters"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:    # a lone surrogate: not text any store or sheet can hold
        return "is not valid text"
    return None


def _bad_text(value: object, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, problem) of every string in ``value``, keys included, that is not clean text."""
    if isinstance(value, str):
        problem = _text_problem(value)
        if problem:
            yield path or "_schema", problem
    elif isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _text_problem(key):
                yield where.encode("utf-8", "backslashreplace").decode(), "is not valid text"
                continue
            yield from _bad_text(item, where)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _bad_text(item, f"{path}.{index}" if path else str(index))


def load(schema: _Schema, data: Any, field: str | None = None, **kwargs: Any) -> Any:
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
    bad_text = dict(_bad_text(data))
    if bad_text:
        raise InvalidInput({f"{field}.{path}" if field else path: [problem]
                            for path, problem in bad_text.items()})
    try:
        return schema.load(data, **kwargs)
    except ValidationError as exc:
        raise InvalidInput({field: exc.messages} if field else exc.messages) from None


def require_id(value: object, field: str = "id") -> str:
    """Check a bare id argument of an RPC (not wrapped in a schema)."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise InvalidInput({field: ["not a valid id"]})
    return value


def require_token(value: object, what: str = "link") -> str:
    """Check a bare token argument (an owner link's, ``shared.links.new_token``): a plain
    string that cannot be a query."""
    if not isinstance(value, str) or not TOKEN_PATTERN.fullmatch(value):
        raise InvalidInput({"token": [f"not a valid {what} token"]})
    return value
