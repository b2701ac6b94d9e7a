"""Inputs of intake's RPCs (docs/rpc.md, intake) and of its configuration."""
import re
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from shared.errors import InvalidInput
from shared.estate_groups import GROUPINGS
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
    Text,
    UtcDateTime,
)
from shared.schemas.vocabulary import (
    CHANNELS,
    COMPLAINT_CATEGORIES,
    COMPLAINT_DEADLINES,
    COMPLAINT_LEVELS,
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
# Whose instruction a complaint escalated to them waits for (「待经理做出明确指示」): the
# manager rungs of the ladder, lowest first.
INSTRUCTING_ROLES = ("manager", "company_manager")
MAX_INSTRUCTION = 1000
WORK_ORDER_STATUSES = ("registered", "completed", "cancelled")
MAX_CONTENT = 2000


# Free text that says something (blank or whitespace-only refused): base.Text, the one rule.
Content = Text


# households ------------------------------------------------------------------

class Contact(Schema):
    name = Content(max_length=50, required=True)
    phone = Phone(required=True)
    email = fields.Email(allow_none=True, load_default=None)
    preferred_channel = OneOf(CONTACT_CHANNELS, load_default="sms")
    # The contact messages go to; without one marked, the first listed.
    primary = Flag(load_default=False)

    @validates_schema
    def reachable_on_preferred_channel(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("preferred_channel") == "email" and not data.get("email"):
            raise ValidationError("required when the preferred channel is email", "email")


MAX_CONTACT_REFS = 500   # intake.get_contacts: refs one call answers at most


class ContactRefs(Schema):
    """``get_contacts``: household, complaint or work-order ids, a bounded batch."""
    refs = IdList(max_length=MAX_CONTACT_REFS, required=True)


MAX_ESTATES_CHECKED = 1000   # intake.estates_with_households: estates one call answers


class EstatesToCheck(Schema):
    """``estates_with_households``: a bounded batch of estates."""
    estate_ids = IdList(max_length=MAX_ESTATES_CHECKED, required=True)


class DepartmentsOf(Schema):
    """``list_departments``: the estates whose routing names them (none: the group's)."""
    estate_ids = IdList(max_length=MAX_ESTATES_CHECKED, allow_none=True, load_default=None)


class HouseholdsThatCount(Schema):
    """``estates_with_households``' filters: which households count."""
    occupied = Flag()              # none: any household


class HouseholdRow(Schema):
    household_id = Id(required=True)
    building = Content(max_length=50, required=True)
    unit = Content(max_length=50, required=True)
    room = Content(max_length=50, required=True)
    occupied = Flag(required=True)
    contacts = fields.List(fields.Nested(Contact), load_default=list)
    # 重点客户: revisited by a supervisor or the estate manager; none: left as it was
    key_customer = Flag(allow_none=True, load_default=None)

    @validates_schema
    def one_primary_contact(self, data: dict[str, Any], **kwargs: Any) -> None:
        if sum(contact["primary"] for contact in data.get("contacts", [])) > 1:
            raise ValidationError("at most one contact can be primary", "contacts")


class KeyCustomer(Schema):
    """``set_key_customer``: 「重点客户的回访由客服负责人或项目经理负责」."""
    key_customer = Flag(required=True)


MAX_HOUSEHOLDS_LISTED = 1000   # list_households: a page, and the ids one call asks for


class HouseholdFilters(ListFilters):
    occupied = Flag()
    building = fields.String(validate=validate.Length(max=50))
    # these households of the estate alone (a page's rows): one call, not one per row
    household_ids = IdList(max_length=MAX_HOUSEHOLDS_LISTED)
    limit = Limit(MAX_HOUSEHOLDS_LISTED)   # none: the whole estate


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
    # 「直接向公司或公司经理投诉」: made to the company, estate_id naming the company's own
    # estate record (its routing: the company's departments); the reporter, no household
    level = OneOf(COMPLAINT_LEVELS, load_default="estate")

    @validates_schema
    def someone_to_answer(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.get("household_id") and not data.get("reporter"):
            raise ValidationError("required when no household_id is given", "reporter")

    @validates_schema
    def a_company_has_no_households(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("level") == "company" and data.get("household_id"):
            raise ValidationError("a complaint made to the company names the reporter, not "
                                  "a household", "household_id")


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


class RecordInstruction(Schema):
    staff_id = Id(required=True)   # who gave it; through the gateway the person logged in
    # their rung; through the gateway the person's own (shared/actor.py), never typed
    role = fields.String(required=True, metadata={ACTOR_FIELD: "rung"}, validate=validate.OneOf(
        INSTRUCTING_ROLES, error="only the estate manager or the company manager instructs"))
    instruction = Content(max_length=MAX_INSTRUCTION, required=True)


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

def require_owner_token(value: object) -> str:
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
    def contract_period(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get("contract_start"), data.get("contract_end")
        if data.get("kind") == "special_service":
            errors = {name: ["required for a special service"]
                      for name in ("contract_start", "contract_end") if not data.get(name)}
            if errors:
                raise ValidationError(errors)
            assert start is not None and end is not None   # both required just above
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


# How a deadline's days are counted: every day, or the official calendar's working days.
DAY_KINDS = ("calendar", "working")
LEAD_TIME = re.compile(r"^(\d+(?:\.\d+)?)([hd])$")


def lead_time_hours(lead: str) -> float:
    """The hours of a lead time: "2h" is 2, "0.5d" is 12 (a day is 24 hours)."""
    found = LEAD_TIME.match(lead) if isinstance(lead, str) else None
    if found is None:
        raise ValidationError('a lead time such as "2h" or "0.5d"')
    return float(found[1]) * (24 if found[2] == "d" else 1)


class LeadTime(fields.String):
    """How long before a deadline its warning goes: "2h" (hours) or "0.5d" (days of 24
    hours), at most 30 days; "0h" sends none. Kept as written (a stored estate policy
    loads again unchanged); ``lead_time_hours`` reads it."""

    def _deserialize(self, value: Any, attr: str | None,
                     data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if lead_time_hours(value) > 30 * 24:
            raise ValidationError("at most 30 days")
        return value


class ComplaintPolicyConfig(Schema):
    """COMPLAINT_POLICY and each ESTATE_POLICIES entry; unknown keys are refused (typos)."""

    first_response_working_days = fields.Integer(strict=True, validate=validate.Range(1, 30))
    reply_days = fields.Integer(strict=True, validate=validate.Range(1, 60))
    reply_day_kind = OneOf(DAY_KINDS)
    # the older spelling: reply_days counted in working days
    reply_working_days = fields.Integer(strict=True, validate=validate.Range(1, 60))
    warn_before = fields.Dict(keys=OneOf(COMPLAINT_DEADLINES), values=LeadTime())
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
    def known_time_zone(self, data: dict[str, Any], **kwargs: Any) -> None:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
        if "timezone" in data:
            try:
                ZoneInfo(data["timezone"])
            except (ZoneInfoNotFoundError, ValueError):
                raise ValidationError("unknown time zone", "timezone") from None

    @validates_schema
    def a_ladder_that_climbs(self, data: dict[str, Any], **kwargs: Any) -> None:
        levels = data.get("escalation_levels") or []
        roles = [level["role"] for level in levels]
        if len(set(roles)) != len(roles):
            raise ValidationError("each role once", "escalation_levels")
        hours = [level["after_hours"] for level in levels]
        if hours != sorted(hours):
            raise ValidationError("after_hours must not decrease up the ladder",
                                  "escalation_levels")

    @validates_schema
    def one_spelling_of_the_reply_deadline(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "reply_working_days" in data and {"reply_days", "reply_day_kind"} & set(data):
            raise ValidationError("give reply_days and reply_day_kind, or reply_working_days "
                                  "alone", "reply_working_days")

    @post_load
    def reply_working_days_are_working_reply_days(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if "reply_working_days" in data:
            data.update(reply_days=data.pop("reply_working_days"), reply_day_kind="working")
        return data


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
    def days_of_that_year(self, data: dict[str, Any], **kwargs: Any) -> None:
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



# estates (services/intake/estates.py) ------------------------------------------------

MAX_ESTATE_NAME = 100


def TimeZone(**kwargs: Any) -> fields.String:
    """An IANA time zone name (``zoneinfo``), e.g. Asia/Shanghai."""
    return fields.String(validate=_known_time_zone, **kwargs)


def _known_time_zone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("unknown time zone") from None


class EstatePolicy(ComplaintPolicyConfig):
    """An estate record's overrides of the complaint policy: the keys of ESTATE_POLICIES,
    checked by the same schema; the zone is the record's own ``timezone``."""

    @validates_schema
    def zone_on_the_record(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "timezone" in data:
            raise ValidationError("set the estate's own timezone field", "timezone")


class EstateFields(Schema):
    """What a member of staff says about an estate: the company → region → estate names."""
    name = Content(max_length=MAX_ESTATE_NAME)          # Chinese, e.g. 阳光花园
    company = Content(max_length=MAX_ESTATE_NAME, allow_none=True)   # e.g. 华东物业公司
    region = Content(max_length=MAX_ESTATE_NAME, allow_none=True)    # e.g. 杭州片区
    timezone = TimeZone(allow_none=True)                # none: the group's
    policy = fields.Nested(EstatePolicy)


class RegisterEstate(EstateFields):
    estate_id = Id(required=True)
    name = Content(max_length=MAX_ESTATE_NAME, required=True)
    company = Content(max_length=MAX_ESTATE_NAME, allow_none=True, load_default=None)
    region = Content(max_length=MAX_ESTATE_NAME, allow_none=True, load_default=None)
    timezone = TimeZone(allow_none=True, load_default=None)
    policy = fields.Nested(EstatePolicy, load_default=dict)


class NewEstate(RegisterEstate):
    """``import_households``' ``estate``: the record of an estate the import makes known
    (its id is the import's)."""
    estate_id = Id(load_default=None)


class UpdateEstate(EstateFields):
    """Only the fields given change; ``policy`` replaces the estate's overrides whole."""

    @validates_schema
    def something_to_change(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ValidationError("give at least one of name, company, region, timezone, "
                                  "policy", "_schema")


class EstateFilters(ListFilters):
    company = Content(max_length=MAX_ESTATE_NAME)
    region = Content(max_length=MAX_ESTATE_NAME)
    name = Content(max_length=MAX_ESTATE_NAME)           # exactly this name
    name_prefix = Content(max_length=MAX_ESTATE_NAME)    # a name starting so (a chooser's search)
    estate_ids = IdList()
    limit = Limit(1000, default=500)


ESTATE_GROUPINGS = GROUPINGS     # by estate, region or company (shared/estate_groups.py)


class GroupStatsQuery(StatsQuery):
    group_by = OneOf(ESTATE_GROUPINGS, load_default="estate")
    per_estate = Flag(load_default=True)     # false: the group's figures alone (fast)
    # these estates alone (a regional user's): rows, groups and total summed from theirs
    estate_ids = IdList(max_length=MAX_ESTATES_CHECKED, allow_none=True, load_default=None)
