"""Inputs of revisit's RPCs (CONTRACT.md, revisit)."""
from marshmallow import ValidationError, fields, validate, validates_schema

from shared.schemas.base import Flag, Id, OneOf, Schema, UtcDateTime
from shared.schemas.vocabulary import (
    REVISIT_KINDS,
    REVISIT_METHODS,
    REVISIT_STATUSES,
    SATISFACTION_LEVELS,
)


class RevisitFilters(Schema):
    estate_id = Id()
    kind = OneOf(REVISIT_KINDS)
    status = OneOf(REVISIT_STATUSES)
    source_id = Id()
    due_before = UtcDateTime()


class BookAppointment(Schema):
    at = UtcDateTime(required=True)
    method = OneOf(["onsite"], load_default="onsite")
    owner_consent = Flag(required=True)

    @validates_schema
    def owner_agreed(self, data, **kwargs):
        if data.get("owner_consent") is not True:
            raise ValidationError("an on-site visit needs the owner's consent", "owner_consent")


class RecordRevisit(Schema):
    visitor_id = Id(required=True)
    method = OneOf(REVISIT_METHODS, required=True)
    reached = Flag(required=True)
    satisfaction = OneOf(SATISFACTION_LEVELS, allow_none=True, load_default=None)
    resolved = Flag(allow_none=True, load_default=None)
    comments = fields.String(validate=validate.Length(max=2000), load_default="")
    signed_by = fields.String(validate=validate.Length(min=1, max=50), allow_none=True,
                              load_default=None)
    promised_reply_at = UtcDateTime(allow_none=True, load_default=None)

    @validates_schema
    def outcome_is_complete(self, data, **kwargs):
        # 「回访后应由业户签字确认」: an on-site visit ends with the owner's signature.
        if data.get("method") == "onsite" and data.get("reached") and not data.get("signed_by"):
            raise ValidationError("an on-site visit must be signed by the owner", "signed_by")
        if data.get("reached") and data.get("satisfaction") is None:
            raise ValidationError("required when the owner was reached", "satisfaction")
