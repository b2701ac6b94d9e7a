"""Inputs of intake's RPCs (docs/rpc.md, intake) and of its configuration."""
import re

from marshmallow import ValidationError, fields, validate, validates_schema

from shared.errors import InvalidInput
from shared.paging import Limit, ListFilters
from shared.schemas.base import (
    ACTOR_FIELD,
    Flag,
    Id,
    IdList,
    OneOf,
    Period,
    Phone,
    Schema,
    UtcDateTime,
)
from shared.schemas.vocabulary import (
    CHANNELS,
    COMPLAINT_CATEGORIES,
    EXTERNAL_STATUSES,
    OWNER_SIGNOFFS,
    REOPEN_SOURCES,
    REVIEW_OUTCOMES,
    SEVERITIES,
    WORK_ORDER_KINDS,
)

CONTACT_CHANNELS = ("sms", "email", "phone", "wechat")
COMPLAINT_STATUSES = (
    "registered", "acknowledged", "assigned", "resolved", "closed", "reopened", "under_review",
)
# How a list of complaints is ordered: newest received first, or by the next deadline
# (the worklist: the most overdue first, then those with nothing due).
COMPLAINT_ORDERS = ("newest", "due")
# The owner's link token (secrets.token_urlsafe(16): 22 characters); nothing query-like.
OWNER_TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{16,64}$")
# Who may flag a complaint as malicious: a supervisor or above, never front-line staff.
FLAGGING_ROLES = ("supervisor", "manager", "company_manager")
WORK_ORDER_STATUSES = ("registered", "completed", "cancelled")
MAX_CONTENT = 2000


def Content(max_length=MAX_CONTENT, **kwargs):
    """Free text that says something: blank or whitespace-only text is refused."""
    return fields.String(validate=[
        validate.Length(max=max_length),
        validate.Predicate("strip", error="must not be empty"),
    ], **kwargs)


# households ------------------------------------------------------------------

class Contact(Schema):
    name = Content(max_length=50, required=True)
    phone = Phone(required=True)
    email = fields.Email(allow_none=True, load_default=None)
    preferred_channel = OneOf(CONTACT_CHANNELS, load_default="sms")
    # The contact messages go to; without one marked, the first listed.
    primary = Flag(load_default=False)

    @validates_schema
    def reachable_on_preferred_channel(self, data, **kwargs):
        if data.get("preferred_channel") == "email" and not data.get("email"):
            raise ValidationError("required when the preferred channel is email", "email")


MAX_CONTACT_REFS = 500   # intake.get_contacts: refs one call answers at most


class ContactRefs(Schema):
    """``get_contacts``: household, complaint or work-order ids, a bounded batch."""
    refs = IdList(max_length=MAX_CONTACT_REFS, required=True)


class HouseholdRow(Schema):
    household_id = Id(required=True)
    building = Content(max_length=50, required=True)
    unit = Content(max_length=50, required=True)
    room = Content(max_length=50, required=True)
    occupied = Flag(required=True)
    contacts = fields.List(fields.Nested(Contact), load_default=list)

    @validates_schema
    def one_primary_contact(self, data, **kwargs):
        if sum(contact["primary"] for contact in data.get("contacts", [])) > 1:
            raise ValidationError("at most one contact can be primary", "contacts")


class HouseholdFilters(ListFilters):
    occupied = Flag()
    building = fields.String(validate=validate.Length(max=50))
    limit = Limit(1000)            # none: the whole estate


# complaints ------------------------------------------------------------------

class Reporter(Schema):
    name = Content(max_length=50, required=True)
    phone = Phone(required=True)


class RegisterComplaint(Schema):
    estate_id = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    reporter = fields.Nested(Reporter, allow_none=True, load_default=None)
    channel = OneOf(CHANNELS, required=True)
    category = OneOf(COMPLAINT_CATEGORIES, required=True)
    severity = OneOf(SEVERITIES, load_default="normal")
    content = Content(required=True)
    received_at = UtcDateTime(allow_none=True, load_default=None)
    staff_id = Id(allow_none=True, load_default=None)   # who took it at the desk or on the phone

    @validates_schema
    def someone_to_answer(self, data, **kwargs):
        if not data.get("household_id") and not data.get("reporter"):
            raise ValidationError("required when no household_id is given", "reporter")


class AcknowledgeComplaint(Schema):
    staff_id = Id(required=True)
    note = fields.String(validate=validate.Length(max=MAX_CONTENT), load_default="")


class AssignComplaint(Schema):
    # Without a department the estate's routing table for the category decides.
    department = Content(max_length=100, allow_none=True, load_default=None)
    assignee_id = Id(allow_none=True, load_default=None)
    external_unit = Content(max_length=100, allow_none=True, load_default=None)
    reply_promised_at = UtcDateTime(allow_none=True, load_default=None)
    staff_id = Id(allow_none=True, load_default=None)


class ResolveComplaint(Schema):
    staff_id = Id(required=True)
    resolution = Content(required=True)


class CloseComplaint(Schema):
    closed_by = Id(required=True)
    owner_signoff = OneOf(OWNER_SIGNOFFS, required=True)
    closed_at = UtcDateTime(allow_none=True, load_default=None)


class ReopenComplaint(Schema):
    reason = Content(required=True)
    source = OneOf(REOPEN_SOURCES, required=True)
    staff_id = Id(allow_none=True, load_default=None)   # who recorded it (else the source)


class RequestReview(Schema):
    reason = Content(required=True)
    requested_by = Content(max_length=50, allow_none=True, load_default=None)  # the owner's name
    staff_id = Id(allow_none=True, load_default=None)                         # who recorded it


class DecideReview(Schema):
    reviewer_id = Id(required=True)
    outcome = OneOf(REVIEW_OUTCOMES, required=True)
    finding = Content(required=True)


class EscalateComplaint(Schema):
    staff_id = Id(required=True)
    reason = Content(required=True)
    # A rung of the estate's ladder to go straight to (beyond one's authority: the
    # company manager); without one, the next rung.
    role = Content(max_length=50, allow_none=True, load_default=None)


class RecordSpecialMeasures(Schema):
    staff_id = Id(required=True)
    measures = Content(required=True)


class UpdateExternalStatus(Schema):
    staff_id = Id(required=True)
    status = OneOf(EXTERNAL_STATUSES, required=True)
    note = Content(required=True)
    reference = fields.String(validate=validate.Length(max=100), allow_none=True,
                              load_default=None)   # the outside unit's own ticket number


class FlagMalicious(Schema):
    flagged_by = Id(required=True)
    # The flagger's rung; through the gateway the person's own (shared/actor.py), never typed.
    role = fields.String(required=True, metadata={ACTOR_FIELD: "rung"}, validate=validate.OneOf(
        FLAGGING_ROLES, error="only a supervisor or a manager may flag a complaint as malicious"))
    reason = Content(required=True)
    malicious = Flag(load_default=True)   # false lifts a flag set by mistake


class ComplaintFilters(ListFilters):
    estate_id = Id()
    estate_ids = IdList()
    status = OneOf(COMPLAINT_STATUSES)
    category = OneOf(COMPLAINT_CATEGORIES)
    channel = OneOf(CHANNELS)
    severity = OneOf(SEVERITIES)
    household_id = Id()
    department = fields.String(validate=validate.Length(max=100))
    external_status = OneOf(EXTERNAL_STATUSES)
    overdue = Flag()
    malicious = Flag()
    repeat = Flag()
    since = UtcDateTime()
    until = UtcDateTime()
    open = Flag()          # true: every complaint not closed (a worklist); false: closed
    order = OneOf(COMPLAINT_ORDERS, load_default="newest")
    limit = Limit(1000, default=500)


class StatsQuery(Schema):
    period = Period(required=True)


class CheckStatistics(Schema):
    repair = Flag(load_default=False)


# the owner's page and the estate's online form (through the gateway) --------------

def require_owner_token(value):
    """The owner's link token as an argument: a plain string that cannot be a query."""
    if not isinstance(value, str) or not OWNER_TOKEN_PATTERN.fullmatch(value):
        raise InvalidInput({"token": ["not a valid link"]})
    return value


class OwnerReviewRequest(Schema):
    """「如果业主对投诉处理结果不满意,可以向物业公司申请复核」, asked on the owner's page."""
    reason = Content(required=True)


class RegisterOnlineComplaint(Schema):
    """The estate's online form (the QR code on the notice board): whoever fills it in is
    the reporter; a household is never taken from what a stranger types."""
    estate_id = Id(required=True)
    category = OneOf(COMPLAINT_CATEGORIES, required=True)
    content = Content(required=True)
    reporter = fields.Nested(Reporter, required=True)
    location = Content(max_length=50, allow_none=True, load_default=None)   # building, room


# work orders -------------------------------------------------------------------

class RegisterWorkOrder(Schema):
    estate_id = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    kind = OneOf(WORK_ORDER_KINDS, required=True)
    content = Content(required=True)
    complaint_id = Id(allow_none=True, load_default=None)   # the complaint that led to it
    location = Content(max_length=200, allow_none=True, load_default=None)  # common areas
    # Roof leaks, wall cracks: repeated follow-up. Unset: judged from the content.
    important = Flag(allow_none=True, load_default=None)
    contract_start = UtcDateTime(allow_none=True, load_default=None)
    contract_end = UtcDateTime(allow_none=True, load_default=None)
    received_at = UtcDateTime(allow_none=True, load_default=None)
    staff_id = Id(allow_none=True, load_default=None)

    @validates_schema
    def contract_period(self, data, **kwargs):
        start, end = data.get("contract_start"), data.get("contract_end")
        if data.get("kind") == "special_service":
            errors = {name: ["required for a special service"]
                      for name in ("contract_start", "contract_end") if not data.get(name)}
            if errors:
                raise ValidationError(errors)
            if end <= start:
                raise ValidationError("must be after contract_start", "contract_end")
        elif start or end:
            raise ValidationError("only a special service has a contract period",
                                  "contract_start" if start else "contract_end")


class CompleteWorkOrder(Schema):
    staff_id = Id(required=True)
    completed_at = UtcDateTime(allow_none=True, load_default=None)   # paper records: the past
    note = fields.String(validate=validate.Length(max=MAX_CONTENT), load_default="")


class CancelWorkOrder(Schema):
    staff_id = Id(required=True)
    reason = Content(required=True)   # registered twice, withdrawn by the owner, …


class WorkOrderFilters(ListFilters):
    estate_id = Id()
    estate_ids = IdList()
    kind = OneOf(WORK_ORDER_KINDS)
    status = OneOf(WORK_ORDER_STATUSES)
    household_id = Id()
    complaint_id = Id()
    important = Flag()
    completed_since = UtcDateTime()
    completed_until = UtcDateTime()
    limit = Limit(1000, default=500)


# configuration (config.yaml) ------------------------------------------------------

class EscalationLevelConfig(Schema):
    role = Content(max_length=50, required=True)
    after_hours = fields.Float(required=True, validate=validate.Range(min=0))


class ComplaintPolicyConfig(Schema):
    """COMPLAINT_POLICY and each ESTATE_POLICIES entry; unknown keys are refused (typos)."""

    first_response_working_days = fields.Integer(strict=True, validate=validate.Range(1, 30))
    reply_working_days = fields.Integer(strict=True, validate=validate.Range(1, 60))
    review_working_days = fields.Integer(strict=True, validate=validate.Range(1, 60))
    special_measures_hours = fields.Float(validate=validate.Range(min=1))
    repeat_window_days = fields.Integer(strict=True, validate=validate.Range(0, 3650))
    owner_link_days = fields.Integer(strict=True, validate=validate.Range(1, 3650))
    timezone = fields.String()
    escalation_levels = fields.List(fields.Nested(EscalationLevelConfig),
                                    validate=validate.Length(min=1))
    major_escalation_from = fields.String(allow_none=True)
    routing = fields.Dict(keys=OneOf(COMPLAINT_CATEGORIES), values=Content(max_length=100))
    emergency_repair_keywords = fields.List(Content(max_length=50))
    repair_categories = fields.List(OneOf(COMPLAINT_CATEGORIES))
    important_repair_keywords = fields.List(Content(max_length=50))

    @validates_schema
    def known_time_zone(self, data, **kwargs):
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
        if "timezone" in data:
            try:
                ZoneInfo(data["timezone"])
            except (ZoneInfoNotFoundError, ValueError):
                raise ValidationError("unknown time zone", "timezone") from None

    @validates_schema
    def a_ladder_that_climbs(self, data, **kwargs):
        levels = data.get("escalation_levels") or []
        roles = [level["role"] for level in levels]
        if len(set(roles)) != len(roles):
            raise ValidationError("each role once", "escalation_levels")
        hours = [level["after_hours"] for level in levels]
        if hours != sorted(hours):
            raise ValidationError("after_hours must not decrease up the ladder",
                                  "escalation_levels")


class HolidayPeriod(Schema):
    name = Content(max_length=50, required=True)
    start = fields.Date(required=True, data_key="from")
    end = fields.Date(required=True, data_key="to")


class HolidayTable(Schema):
    """A year's officially announced holiday table (国务院办公厅 notice), as data."""

    year = fields.Integer(strict=True, required=True, validate=validate.Range(2000, 2200))
    source = fields.String(load_default="")
    holidays = fields.List(fields.Nested(HolidayPeriod), required=True)
    make_up_workdays = fields.List(fields.Date(), load_default=list)

    @validates_schema
    def days_of_that_year(self, data, **kwargs):
        year = data.get("year")
        errors = {}
        for index, period in enumerate(data.get("holidays", [])):
            if period["start"] > period["end"]:
                errors[f"holidays.{index}.to"] = ["must not be before from"]
            elif not (period["start"].year == period["end"].year == year):
                errors[f"holidays.{index}"] = [f"not in {year}"]
        for index, day in enumerate(data.get("make_up_workdays", [])):
            if day.year != year:
                errors[f"make_up_workdays.{index}"] = [f"not in {year}"]
            elif day.weekday() < 5:
                errors[f"make_up_workdays.{index}"] = [
                    f"{day.isoformat()} is a weekday: make-up working days fall on weekends"]
        if errors:
            raise ValidationError(errors)

