"""Payload schemas of every public event, keyed by event type.

Publisher and consumers validate with the same schema (``shared.envelope``).
Events never carry a phone number or e-mail address: ``notify`` asks
``intake.get_contact`` at send time, and text people typed travels as ``FreeText``,
masked whenever an event is built or read.
"""
from collections.abc import Mapping
from typing import Any

from marshmallow import fields

from shared.masking import mask_text
from shared.schemas.base import EventTime, Id, OneOf, Schema
from shared.schemas.vocabulary import (
    CHANNELS,
    COMPLAINT_DEADLINES,
    COMPLAINT_LEVELS,
    EXTERNAL_STATUSES,
    FOLLOWUP_STATUSES,
    ONLINE_METHOD,
    OWNER_SIGNOFFS,
    REOPEN_SOURCES,
    REVIEW_OUTCOMES,
    REVISIT_KINDS,
    REVISIT_METHODS,
    ROLES,
    SATISFACTION_LEVELS,
    SEVERITIES,
    WORK_ORDER_KINDS,
)


class FreeText(fields.String):
    """Text staff or owners typed (a reason, comments, a note): its phone numbers and
    e-mail addresses masked (``shared.masking.mask_text``) when the event is built
    (``new_event`` dumps the payload) and again when it is read. The record keeps the text."""

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        text = super()._serialize(value, attr, obj, **kwargs)
        return None if text is None else mask_text(text)

    def _deserialize(self, value: Any, attr: str | None,
                     data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        return mask_text(super()._deserialize(value, attr, data, **kwargs))


# intake ---------------------------------------------------------------------

class ComplaintRegistered(Schema):
    complaint_id = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    category = fields.String(required=True)
    severity = OneOf(SEVERITIES, required=True)
    channel = OneOf(CHANNELS, required=True)
    received_at = EventTime(required=True)
    first_response_due = EventTime(required=True)
    reply_due = EventTime(required=True)
    repeat_of = Id(allow_none=True, load_default=None)
    routed_department = fields.String(allow_none=True, load_default=None)
    special_measures_due = EventTime(allow_none=True, load_default=None)  # repeats only
    work_order_id = Id(allow_none=True, load_default=None)   # emergency repair opened at once
    level = OneOf(COMPLAINT_LEVELS, load_default="estate")   # company: made to the company


class ComplaintAcknowledged(Schema):
    complaint_id = Id(required=True)
    staff_id = Id(required=True)
    acknowledged_at = EventTime(required=True)


class ComplaintAssigned(Schema):
    complaint_id = Id(required=True)
    department = FreeText(required=True)
    assignee_id = Id(allow_none=True, load_default=None)
    external_unit = FreeText(allow_none=True, load_default=None)
    reply_promised_at = EventTime(allow_none=True, load_default=None)
    assigned_at = EventTime(required=True)
    # what the department needs to act: the answer owed by (the promised reply time, else
    # the reply deadline) and the start of the owner's words (masked)
    reply_due = EventTime(allow_none=True, load_default=None)
    summary = FreeText(allow_none=True, load_default=None)


class ComplaintResolved(Schema):
    complaint_id = Id(required=True)
    staff_id = Id(required=True)
    resolved_at = EventTime(required=True)
    resolution = FreeText(allow_none=True, load_default=None)   # what was done: the owner hears it


class ComplaintClosed(Schema):
    complaint_id = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    category = fields.String(required=True)
    severity = OneOf(SEVERITIES, required=True)
    closed_at = EventTime(required=True)
    owner_signoff = OneOf(OWNER_SIGNOFFS, required=True)
    closing_no = fields.Integer(required=True, strict=True)
    malicious = fields.Boolean(load_default=False)   # left out of satisfaction statistics


class ComplaintReopened(Schema):
    complaint_id = Id(required=True)
    reason = FreeText(required=True)
    source = OneOf(REOPEN_SOURCES, required=True)
    reopened_at = EventTime(required=True)
    reopen_no = fields.Integer(required=True, strict=True)


class ComplaintOverdue(Schema):
    complaint_id = Id(required=True)
    deadline = OneOf(COMPLAINT_DEADLINES, required=True)
    due_at = EventTime(required=True)
    reopen_no = fields.Integer(strict=True, load_default=0)
    department = FreeText(allow_none=True, load_default=None)
    assignee_id = Id(allow_none=True, load_default=None)
    summary = FreeText(allow_none=True, load_default=None)   # the owner's words, masked


class ComplaintDeadlineApproaching(Schema):
    """A deadline's warning time came (the estate's ``warn_before``) and it is still open:
    sent once per deadline, a deadline a reopen sets anew warned anew."""

    complaint_id = Id(required=True)
    deadline = OneOf(COMPLAINT_DEADLINES, required=True)
    due_at = EventTime(required=True)
    minutes_left = fields.Integer(required=True, strict=True)
    reopen_no = fields.Integer(strict=True, load_default=0)
    summary = FreeText(allow_none=True, load_default=None)   # the owner's words, masked
    department = FreeText(allow_none=True, load_default=None)
    assignee_id = Id(allow_none=True, load_default=None)


class ComplaintEscalated(Schema):
    complaint_id = Id(required=True)
    level = fields.Integer(required=True, strict=True)
    role = fields.String(required=True)
    reason = FreeText(load_default="")
    manual = fields.Boolean(load_default=False)   # by a member of staff, not the timer
    deadline = OneOf(COMPLAINT_DEADLINES, allow_none=True, load_default=None)
    due_at = EventTime(allow_none=True, load_default=None)
    reopen_no = fields.Integer(strict=True, load_default=0)
    department = FreeText(allow_none=True, load_default=None)
    assignee_id = Id(allow_none=True, load_default=None)
    summary = FreeText(allow_none=True, load_default=None)   # the owner's words, masked


class ComplaintRepeated(Schema):
    complaint_id = Id(required=True)
    repeat_of = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    category = fields.String(required=True)
    special_measures_due = EventTime(required=True)
    summary = FreeText(allow_none=True, load_default=None)   # the new complaint's words, masked


class ComplaintSpecialMeasuresTaken(Schema):
    """The special measures owed for a repeat complaint were taken."""

    complaint_id = Id(required=True)
    repeat_of = Id(required=True)
    staff_id = Id(required=True)
    taken_at = EventTime(required=True)
    on_time = fields.Boolean(required=True)


class ComplaintReviewRequested(Schema):
    """The owner asked for a review (复核) of a closed complaint."""

    complaint_id = Id(required=True)
    review_no = fields.Integer(required=True, strict=True)
    requested_at = EventTime(required=True)
    due_at = EventTime(required=True)
    reason = FreeText(allow_none=True, load_default=None)   # why the owner asks: who decides reads it


class ComplaintReviewed(Schema):
    """A review ended: upheld (closed again) or overturned (reopened)."""

    complaint_id = Id(required=True)
    review_no = fields.Integer(required=True, strict=True)
    outcome = OneOf(REVIEW_OUTCOMES, required=True)
    reviewer_id = Id(required=True)
    decided_at = EventTime(required=True)
    finding = FreeText(allow_none=True, load_default=None)   # why: the owner hears it


class ComplaintReferralUpdated(Schema):
    """Where the outside unit (utility company, government office) stands with a matter."""

    complaint_id = Id(required=True)
    external_unit = FreeText(required=True)
    status = OneOf(EXTERNAL_STATUSES, required=True)
    updated_at = EventTime(required=True)


class ComplaintFlaggedMalicious(Schema):
    """A supervisor flagged a complaint as malicious (or lifted the flag)."""

    complaint_id = Id(required=True)
    malicious = fields.Boolean(required=True)
    flagged_by = Id(required=True)
    role = fields.String(required=True)
    flagged_at = EventTime(required=True)


class ComplaintInstructionRecorded(Schema):
    """The manager a complaint was escalated to said what is to be done: whoever has it acts."""

    complaint_id = Id(required=True)
    instruction = FreeText(required=True)
    instructed_by = Id(required=True)
    role = fields.String(required=True)           # the instructing manager's rung
    escalated_to = fields.String(required=True)   # the rung the complaint was taken up to
    instructed_at = EventTime(required=True)
    summary = FreeText(allow_none=True, load_default=None)   # the owner's words, masked
    department = FreeText(allow_none=True, load_default=None)
    assignee_id = Id(allow_none=True, load_default=None)


class WorkOrderRegistered(Schema):
    """A work order was opened (by the desk, or at once for an emergency complaint)."""

    work_order_id = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    complaint_id = Id(allow_none=True, load_default=None)
    kind = OneOf(WORK_ORDER_KINDS, required=True)
    important = fields.Boolean(load_default=False)
    received_at = EventTime(required=True)
    contract_start = EventTime(allow_none=True, load_default=None)
    contract_end = EventTime(allow_none=True, load_default=None)


class WorkOrderCompleted(Schema):
    work_order_id = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    kind = OneOf(WORK_ORDER_KINDS, required=True)
    important = fields.Boolean(load_default=False)
    completed_at = EventTime(required=True)
    contract_start = EventTime(allow_none=True, load_default=None)
    contract_end = EventTime(allow_none=True, load_default=None)
    complaint_id = Id(allow_none=True, load_default=None)   # the complaint that opened it


class EstateRegistered(Schema):
    """An estate's record (services/intake/estates.py): what the other services keep a copy
    of (shared/estates.py). ``revision`` counts its changes: a copy takes only a newer one."""

    name = FreeText(required=True)         # typed by staff: nothing to call or mail in it
    company = FreeText(allow_none=True, load_default=None)
    region = FreeText(allow_none=True, load_default=None)
    timezone = fields.String(required=True)
    revision = fields.Integer(required=True, strict=True)


class EstateUpdated(EstateRegistered):
    changed = fields.List(fields.String(), load_default=list)   # the fields that changed


class HouseholdMovedIn(Schema):
    """A household became occupied (imported occupied, or marked occupied again):
    「以达到年回访率100%的目标(按照已办理入住户数统计)」 — its routine visit is planned."""

    household_id = Id(required=True)
    # Kept: revisit needs them (its year plan visits neighbours together and shows each
    # visit as building-unit-room, plans.py), and headquarters is documented to read every
    # event. They are where the household lives, not a contact; typed by staff into the
    # owner list, so they travel through the one masking rule (FreeText) like other text.
    building = FreeText(allow_none=True, load_default=None)
    unit = FreeText(allow_none=True, load_default=None)
    room = FreeText(allow_none=True, load_default=None)
    key_customer = fields.Boolean(load_default=False)
    moved_in_at = EventTime(required=True)


class HouseholdKeyCustomerSet(Schema):
    """A household was flagged as a key customer (重点客户), or the flag was lifted."""

    household_id = Id(required=True)
    key_customer = fields.Boolean(required=True)
    changed_at = EventTime(required=True)


# revisit --------------------------------------------------------------------

class RevisitScheduled(Schema):
    revisit_id = Id(required=True)
    kind = OneOf(REVISIT_KINDS, required=True)
    source_id = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    due_at = EventTime(required=True)
    assigned_role = OneOf(ROLES, required=True)
    method = OneOf(REVISIT_METHODS, required=True)
    # The owner may answer online: the token of the link <PUBLIC_BASE_URL>/r/<token>.
    token = fields.String(load_default=None)


class RevisitBooked(Schema):
    revisit_id = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    at = EventTime(required=True)
    method = OneOf(REVISIT_METHODS, required=True)


class RevisitCompleted(Schema):
    revisit_id = Id(required=True)
    kind = OneOf(REVISIT_KINDS, required=True)
    source_id = Id(required=True)
    reached = fields.Boolean(required=True)
    satisfaction = OneOf(SATISFACTION_LEVELS, allow_none=True, load_default=None)
    resolved = fields.Boolean(allow_none=True, load_default=None)
    completed_at = EventTime(required=True)
    # how and by whom, and the owner's words: the complaint's record keeps them (intake);
    # absent from events published before they were added
    method = OneOf(REVISIT_METHODS + (ONLINE_METHOD,), allow_none=True, load_default=None)
    visitor_id = Id(allow_none=True, load_default=None)     # None: the owner answered online
    comments = FreeText(allow_none=True, load_default=None)


class RevisitUnsatisfied(Schema):
    revisit_id = Id(required=True)
    kind = OneOf(REVISIT_KINDS, required=True)
    source_id = Id(required=True)
    satisfaction = OneOf(SATISFACTION_LEVELS, allow_none=True, load_default=None)
    resolved = fields.Boolean(allow_none=True, load_default=None)
    comments = FreeText(load_default="")


class RevisitOverdue(Schema):
    revisit_id = Id(required=True)
    kind = OneOf(REVISIT_KINDS, required=True)
    source_id = Id(required=True)
    due_at = EventTime(required=True)
    # what is late: the visit itself, or the reply promised to the owner during it
    deadline = OneOf(["revisit", "promised_reply"], load_default="revisit")


class RevisitFollowupEvent(Schema):
    """A follow-up of an unsatisfied or unresolved work-order or routine revisit: opened
    for the responsible department, answered to the owner, or overdue."""

    followup_id = Id(required=True)
    revisit_id = Id(required=True)
    kind = OneOf(REVISIT_KINDS, required=True)
    source_id = Id(required=True)
    household_id = Id(allow_none=True, load_default=None)
    department = FreeText(required=True)
    answer_due_at = EventTime(required=True)
    status = OneOf(FOLLOWUP_STATUSES, required=True)
    summary = FreeText(allow_none=True, load_default=None)   # the owner's words (opened)
    answer = FreeText(allow_none=True, load_default=None)    # what the owner is told (answered)
    answered_at = EventTime(allow_none=True, load_default=None)
    on_time = fields.Boolean(allow_none=True, load_default=None)


# survey ---------------------------------------------------------------------

class SurveyRoundOpened(Schema):
    round_id = Id(required=True)
    title = FreeText(required=True)
    kind = fields.String(required=True)
    opens_at = EventTime(required=True)
    closes_at = EventTime(required=True)
    invited = fields.Integer(required=True, strict=True)
    categories = fields.List(fields.String(), load_default=list)   # asked in this estate
    anonymous = fields.Boolean(load_default=True)


class SurveyInvitationIssued(Schema):
    round_id = Id(required=True)
    invitation_id = Id(required=True)
    household_id = Id(required=True)
    token = fields.String(required=True)
    expires_at = EventTime(required=True)
    title = FreeText(load_default=None)


class SurveyReminderDue(Schema):
    round_id = Id(required=True)
    invitation_id = Id(required=True)
    household_id = Id(required=True)
    token = fields.String(required=True)
    reminder_no = fields.Integer(required=True, strict=True)
    expires_at = EventTime(load_default=None)
    title = FreeText(load_default=None)


class SurveyRoundClosed(Schema):
    round_id = Id(required=True)
    invited = fields.Integer(required=True, strict=True)
    returned = fields.Integer(required=True, strict=True)
    response_rate = fields.Float(allow_none=True, load_default=None)


class SurveyReportPublished(Schema):
    round_id = Id(required=True)
    satisfaction_rate = fields.Float(allow_none=True, required=True)
    rectifications = fields.Integer(required=True, strict=True)
    title = FreeText(load_default=None)
    invited = fields.Integer(strict=True, load_default=None)
    returned = fields.Integer(strict=True, load_default=None)
    response_rate = fields.Float(allow_none=True, load_default=None)
    score = fields.Float(allow_none=True, load_default=None)
    edition = fields.Integer(strict=True, load_default=1)   # published again: 2, 3, ...
    note = FreeText(allow_none=True, load_default=None)


class RectificationEvent(Schema):
    rectification_id = Id(required=True)
    round_id = Id(required=True)
    category = fields.String(required=True)
    department = FreeText(required=True)
    due_at = EventTime(required=True)
    action = FreeText(load_default=None)
    status = fields.String(load_default=None)


class SurveyCadenceMissed(Schema):
    """An estate's survey period ended without a closed round covering it
    (「管理处每半年进行一次业主/用户意见调查」; the cadence is the estate's policy)."""

    period = fields.String(required=True)      # YYYY, YYYY-Hn or YYYY-Qn
    cadence = fields.String(required=True)     # half_yearly, quarterly or yearly
    period_start = EventTime(required=True)
    period_end = EventTime(required=True)


# notify ---------------------------------------------------------------------

class NotificationSent(Schema):
    delivery_id = Id(required=True)
    channel = fields.String(required=True)
    template = fields.String(required=True)
    recipient = fields.String(required=True)   # household or staff id, never an address
    ref = fields.String(allow_none=True, load_default=None)


class NotificationFailed(NotificationSent):
    error = FreeText(required=True)


# Event type -> (publishing service, payload schema). One place for both.
EVENTS = {
    "complaint_registered": ("intake", ComplaintRegistered),
    "complaint_acknowledged": ("intake", ComplaintAcknowledged),
    "complaint_assigned": ("intake", ComplaintAssigned),
    "complaint_resolved": ("intake", ComplaintResolved),
    "complaint_closed": ("intake", ComplaintClosed),
    "complaint_reopened": ("intake", ComplaintReopened),
    "complaint_overdue": ("intake", ComplaintOverdue),
    "complaint_deadline_approaching": ("intake", ComplaintDeadlineApproaching),
    "complaint_escalated": ("intake", ComplaintEscalated),
    "complaint_repeated": ("intake", ComplaintRepeated),
    "complaint_special_measures_taken": ("intake", ComplaintSpecialMeasuresTaken),
    "complaint_review_requested": ("intake", ComplaintReviewRequested),
    "complaint_reviewed": ("intake", ComplaintReviewed),
    "complaint_referral_updated": ("intake", ComplaintReferralUpdated),
    "complaint_flagged_malicious": ("intake", ComplaintFlaggedMalicious),
    "complaint_instruction_recorded": ("intake", ComplaintInstructionRecorded),
    "work_order_registered": ("intake", WorkOrderRegistered),
    "work_order_completed": ("intake", WorkOrderCompleted),
    "estate_registered": ("intake", EstateRegistered),
    "estate_updated": ("intake", EstateUpdated),
    "household_moved_in": ("intake", HouseholdMovedIn),
    "household_key_customer_set": ("intake", HouseholdKeyCustomerSet),
    "revisit_scheduled": ("revisit", RevisitScheduled),
    "revisit_booked": ("revisit", RevisitBooked),
    "revisit_completed": ("revisit", RevisitCompleted),
    "revisit_unsatisfied": ("revisit", RevisitUnsatisfied),
    "revisit_overdue": ("revisit", RevisitOverdue),
    "revisit_followup_opened": ("revisit", RevisitFollowupEvent),
    "revisit_followup_answered": ("revisit", RevisitFollowupEvent),
    "revisit_followup_overdue": ("revisit", RevisitFollowupEvent),
    "survey_round_opened": ("survey", SurveyRoundOpened),
    "survey_invitation_issued": ("survey", SurveyInvitationIssued),
    "survey_reminder_due": ("survey", SurveyReminderDue),
    "survey_round_closed": ("survey", SurveyRoundClosed),
    "survey_report_published": ("survey", SurveyReportPublished),
    "rectification_created": ("survey", RectificationEvent),
    "rectification_overdue": ("survey", RectificationEvent),
    "rectification_done": ("survey", RectificationEvent),
    "survey_cadence_missed": ("survey", SurveyCadenceMissed),
    "notification_sent": ("notify", NotificationSent),
    "notification_failed": ("notify", NotificationFailed),
}
