"""Payload schemas of every public event, keyed by event type.

Publisher and consumers validate with the same schema (``shared.envelope``).
Events never carry a phone number or e-mail address: ``notify`` asks
``intake.get_contact`` at send time.
"""
from marshmallow import fields

from shared.schemas.base import Id, OneOf, Schema, UtcDateTime
from shared.schemas.vocabulary import (
    CHANNELS,
    OWNER_SIGNOFFS,
    REOPEN_SOURCES,
    REVISIT_KINDS,
    REVISIT_METHODS,
    ROLES,
    SATISFACTION_LEVELS,
    SEVERITIES,
    WORK_ORDER_KINDS,
)

# intake ---------------------------------------------------------------------

class ComplaintRegistered(Schema):
    complaint_id = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    category = fields.String(required=True)
    severity = OneOf(SEVERITIES, required=True)
    channel = OneOf(CHANNELS, required=True)
    received_at = UtcDateTime(required=True)
    first_response_due = UtcDateTime(required=True)
    reply_due = UtcDateTime(required=True)
    repeat_of = Id(allow_none=True, load_default=None)


class ComplaintAcknowledged(Schema):
    complaint_id = Id(required=True)
    staff_id = Id(required=True)
    acknowledged_at = UtcDateTime(required=True)


class ComplaintAssigned(Schema):
    complaint_id = Id(required=True)
    department = fields.String(required=True)
    assignee_id = Id(allow_none=True, load_default=None)
    external_unit = fields.String(allow_none=True, load_default=None)
    reply_promised_at = UtcDateTime(allow_none=True, load_default=None)
    assigned_at = UtcDateTime(required=True)


class ComplaintResolved(Schema):
    complaint_id = Id(required=True)
    staff_id = Id(required=True)
    resolved_at = UtcDateTime(required=True)


class ComplaintClosed(Schema):
    complaint_id = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    category = fields.String(required=True)
    severity = OneOf(SEVERITIES, required=True)
    closed_at = UtcDateTime(required=True)
    owner_signoff = OneOf(OWNER_SIGNOFFS, required=True)
    closing_no = fields.Integer(required=True, strict=True)


class ComplaintReopened(Schema):
    complaint_id = Id(required=True)
    reason = fields.String(required=True)
    source = OneOf(REOPEN_SOURCES, required=True)
    reopened_at = UtcDateTime(required=True)
    reopen_no = fields.Integer(required=True, strict=True)


class ComplaintOverdue(Schema):
    complaint_id = Id(required=True)
    deadline = OneOf(["first_response", "reply"], required=True)
    due_at = UtcDateTime(required=True)


class ComplaintEscalated(Schema):
    complaint_id = Id(required=True)
    level = fields.Integer(required=True, strict=True)
    role = fields.String(required=True)


class ComplaintRepeated(Schema):
    complaint_id = Id(required=True)
    repeat_of = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    category = fields.String(required=True)
    special_measures_due = UtcDateTime(required=True)


class WorkOrderCompleted(Schema):
    work_order_id = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    kind = OneOf(WORK_ORDER_KINDS, required=True)
    important = fields.Boolean(load_default=False)
    completed_at = UtcDateTime(required=True)
    contract_start = UtcDateTime(allow_none=True, load_default=None)
    contract_end = UtcDateTime(allow_none=True, load_default=None)


# revisit --------------------------------------------------------------------

class RevisitScheduled(Schema):
    revisit_id = Id(required=True)
    kind = OneOf(REVISIT_KINDS, required=True)
    source_id = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    due_at = UtcDateTime(required=True)
    assigned_role = OneOf(ROLES, required=True)
    method = OneOf(REVISIT_METHODS, required=True)


class RevisitBooked(Schema):
    revisit_id = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    at = UtcDateTime(required=True)
    method = OneOf(REVISIT_METHODS, required=True)


class RevisitCompleted(Schema):
    revisit_id = Id(required=True)
    kind = OneOf(REVISIT_KINDS, required=True)
    source_id = Id(required=True)
    reached = fields.Boolean(required=True)
    satisfaction = OneOf(SATISFACTION_LEVELS, allow_none=True, load_default=None)
    resolved = fields.Boolean(allow_none=True, load_default=None)
    completed_at = UtcDateTime(required=True)


class RevisitUnsatisfied(Schema):
    revisit_id = Id(required=True)
    kind = OneOf(REVISIT_KINDS, required=True)
    source_id = Id(required=True)
    satisfaction = OneOf(SATISFACTION_LEVELS, allow_none=True, load_default=None)
    resolved = fields.Boolean(allow_none=True, load_default=None)
    comments = fields.String(load_default="")


class RevisitOverdue(Schema):
    revisit_id = Id(required=True)
    kind = OneOf(REVISIT_KINDS, required=True)
    source_id = Id(required=True)
    due_at = UtcDateTime(required=True)


# survey ---------------------------------------------------------------------

class SurveyRoundOpened(Schema):
    round_id = Id(required=True)
    title = fields.String(required=True)
    kind = fields.String(required=True)
    opens_at = UtcDateTime(required=True)
    closes_at = UtcDateTime(required=True)
    invited = fields.Integer(required=True, strict=True)


class SurveyInvitationIssued(Schema):
    round_id = Id(required=True)
    invitation_id = Id(required=True)
    household_id = Id(required=True)
    token = fields.String(required=True)
    expires_at = UtcDateTime(required=True)


class SurveyReminderDue(Schema):
    round_id = Id(required=True)
    invitation_id = Id(required=True)
    household_id = Id(required=True)
    token = fields.String(required=True)
    reminder_no = fields.Integer(required=True, strict=True)


class SurveyRoundClosed(Schema):
    round_id = Id(required=True)
    invited = fields.Integer(required=True, strict=True)
    returned = fields.Integer(required=True, strict=True)


class SurveyReportPublished(Schema):
    round_id = Id(required=True)
    satisfaction_rate = fields.Float(allow_none=True, required=True)
    rectifications = fields.Integer(required=True, strict=True)


class RectificationEvent(Schema):
    rectification_id = Id(required=True)
    round_id = Id(required=True)
    category = fields.String(required=True)
    department = fields.String(required=True)
    due_at = UtcDateTime(required=True)


# notify ---------------------------------------------------------------------

class NotificationSent(Schema):
    delivery_id = Id(required=True)
    channel = fields.String(required=True)
    template = fields.String(required=True)
    recipient = fields.String(required=True)   # household or staff id, never an address
    ref = fields.String(allow_none=True, load_default=None)


class NotificationFailed(NotificationSent):
    error = fields.String(required=True)


# Event type -> (publishing service, payload schema). One place for both.
EVENTS = {
    "complaint_registered": ("intake", ComplaintRegistered),
    "complaint_acknowledged": ("intake", ComplaintAcknowledged),
    "complaint_assigned": ("intake", ComplaintAssigned),
    "complaint_resolved": ("intake", ComplaintResolved),
    "complaint_closed": ("intake", ComplaintClosed),
    "complaint_reopened": ("intake", ComplaintReopened),
    "complaint_overdue": ("intake", ComplaintOverdue),
    "complaint_escalated": ("intake", ComplaintEscalated),
    "complaint_repeated": ("intake", ComplaintRepeated),
    "work_order_completed": ("intake", WorkOrderCompleted),
    "revisit_scheduled": ("revisit", RevisitScheduled),
    "revisit_booked": ("revisit", RevisitBooked),
    "revisit_completed": ("revisit", RevisitCompleted),
    "revisit_unsatisfied": ("revisit", RevisitUnsatisfied),
    "revisit_overdue": ("revisit", RevisitOverdue),
    "survey_round_opened": ("survey", SurveyRoundOpened),
    "survey_invitation_issued": ("survey", SurveyInvitationIssued),
    "survey_reminder_due": ("survey", SurveyReminderDue),
    "survey_round_closed": ("survey", SurveyRoundClosed),
    "survey_report_published": ("survey", SurveyReportPublished),
    "rectification_created": ("survey", RectificationEvent),
    "rectification_overdue": ("survey", RectificationEvent),
    "rectification_done": ("survey", RectificationEvent),
    "notification_sent": ("notify", NotificationSent),
    "notification_failed": ("notify", NotificationFailed),
}
