"""Inputs of intake's RPCs (CONTRACT.md, intake)."""
from marshmallow import ValidationError, fields, validate, validates_schema

from shared.schemas.base import Flag, Id, OneOf, Phone, Schema, Text, UtcDateTime
from shared.schemas.vocabulary import (
    CHANNELS,
    COMPLAINT_CATEGORIES,
    OWNER_SIGNOFFS,
    REOPEN_SOURCES,
    SEVERITIES,
)

CONTACT_CHANNELS = ("sms", "email", "phone", "wechat")
COMPLAINT_STATUSES = ("registered", "acknowledged", "assigned", "resolved", "closed", "reopened")


class Contact(Schema):
    name = Text(max_length=50, required=True)
    phone = Phone(required=True)
    email = fields.Email(allow_none=True, load_default=None)
    preferred_channel = OneOf(CONTACT_CHANNELS, load_default="sms")


class HouseholdRow(Schema):
    household_id = Id(required=True)
    building = Text(max_length=50, required=True)
    unit = Text(max_length=50, required=True)
    room = Text(max_length=50, required=True)
    occupied = Flag(required=True)
    contacts = fields.List(fields.Nested(Contact), load_default=list)


class HouseholdFilters(Schema):
    occupied = Flag()
    building = fields.String()


class Reporter(Schema):
    name = Text(max_length=50, required=True)
    phone = Phone(required=True)


class RegisterComplaint(Schema):
    estate_id = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    reporter = fields.Nested(Reporter, allow_none=True, load_default=None)
    channel = OneOf(CHANNELS, required=True)
    category = OneOf(COMPLAINT_CATEGORIES, required=True)
    severity = OneOf(SEVERITIES, load_default="normal")
    content = Text(required=True)
    received_at = UtcDateTime(allow_none=True, load_default=None)

    @validates_schema
    def someone_to_answer(self, data, **kwargs):
        if not data.get("household_id") and not data.get("reporter"):
            raise ValidationError("required when no household_id is given", "reporter")


class AcknowledgeComplaint(Schema):
    staff_id = Id(required=True)
    note = fields.String(validate=validate.Length(max=2000), load_default="")


class AssignComplaint(Schema):
    department = Text(max_length=100, required=True)
    assignee_id = Id(allow_none=True, load_default=None)
    external_unit = fields.String(validate=validate.Length(max=100), allow_none=True,
                                  load_default=None)
    reply_promised_at = UtcDateTime(allow_none=True, load_default=None)


class ResolveComplaint(Schema):
    staff_id = Id(required=True)
    resolution = Text(required=True)


class CloseComplaint(Schema):
    closed_by = Id(required=True)
    owner_signoff = OneOf(OWNER_SIGNOFFS, required=True)
    closed_at = UtcDateTime(allow_none=True, load_default=None)


class ReopenComplaint(Schema):
    reason = Text(required=True)
    source = OneOf(REOPEN_SOURCES, required=True)


class ComplaintFilters(Schema):
    estate_id = Id()
    status = OneOf(COMPLAINT_STATUSES)
    category = OneOf(COMPLAINT_CATEGORIES)
    household_id = Id()
    since = UtcDateTime()
    until = UtcDateTime()
