"""Inputs of revisit's RPCs (docs/rpc.md, revisit)."""
import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from shared.estate_groups import GROUPINGS
from shared.paging import Limit, ListFilters
from shared.periods import YEAR
from shared.schemas.base import (
    Flag,
    Id,
    IdList,
    OneOf,
    Period,
    QuietHours,
    Schema,
    Text,
    UtcDateTime,
)
from shared.schemas.vocabulary import (
    FOLLOWUP_STATUSES,
    REVISIT_KINDS,
    REVISIT_METHODS,
    REVISIT_STATUSES,
    ROLES,
    SATISFACTION_LEVELS,
)

MONTH = re.compile(rf"^{YEAR}-(0[1-9]|1[0-2])$")   # the years of shared.periods
# The owner's signature drawn on the screen (「回访后应由业户签字确认」): a PNG, base64, kept
# with the record. A signature pad's strokes are a few kilobytes; this bounds the document.
SIGNATURE_MAX_BYTES = 100_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class SignaturePng(fields.String):
    """A PNG image as base64 (no ``data:`` prefix): checked by its magic bytes and size."""

    def _deserialize(self, value: Any, attr: str | None,
                     data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if len(text) > (SIGNATURE_MAX_BYTES + 2) // 3 * 4:
            raise ValidationError(f"at most {SIGNATURE_MAX_BYTES} bytes")
        try:
            image = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise ValidationError("expected a PNG image as base64") from None
        if not image.startswith(PNG_MAGIC):
            raise ValidationError("expected a PNG image")
        return text


class RevisitFilters(ListFilters):
    estate_id = Id()
    estate_ids = IdList()
    kind = OneOf(REVISIT_KINDS)
    status = OneOf(REVISIT_STATUSES)
    source_id = Id()
    household_id = Id()
    assigned_role = OneOf(ROLES)
    due_before = UtcDateTime()
    # done from / before: the visits recorded in a span (a month's 回访记录本)
    done_from = UtcDateTime()
    done_before = UtcDateTime()
    # a reply promised to the owner, not yet given, due before then (「应告知预约时间答复」)
    reply_due_before = UtcDateTime()
    limit = Limit(2000, default=500)


class BookAppointment(Schema):
    at = UtcDateTime(required=True)
    method = OneOf(["onsite"], load_default="onsite")
    owner_consent = Flag(required=True)
    # The owner's own quiet hours, if they gave them (else the estate's apply).
    quiet_hours = fields.List(QuietHours(), validate=validate.Length(max=4), load_default=None)

    @validates_schema
    def owner_agreed(self, data: dict[str, Any], **kwargs: Any) -> None:
        # 「采取上门回访的应提前与业主进行预约,获得同意后方可上门」
        if data.get("owner_consent") is not True:
            raise ValidationError("an on-site visit needs the owner's consent", "owner_consent")


class RecordRevisit(Schema):
    visitor_id = Id(required=True)
    method = OneOf(REVISIT_METHODS, required=True)
    reached = Flag(required=True)
    satisfaction = OneOf(SATISFACTION_LEVELS, allow_none=True, load_default=None)
    resolved = Flag(allow_none=True, load_default=None)
    comments = fields.String(validate=validate.Length(max=2000), load_default="")
    signed_by = Text(max_length=50, allow_none=True, load_default=None)   # the owner's name
    signature_png = SignaturePng(allow_none=True, load_default=None)
    # 「回访中对业主/用户询问、意见,不能当即答复,应告知预约时间答复」
    promised_reply_at = UtcDateTime(allow_none=True, load_default=None)

    @validates_schema
    def outcome_is_complete(self, data: dict[str, Any], **kwargs: Any) -> None:
        # 「回访后应由业户签字确认」: an on-site visit ends with the owner's signature.
        if data.get("method") == "onsite" and data.get("reached") and not data.get("signed_by"):
            raise ValidationError("an on-site visit must be signed by the owner", "signed_by")
        if data.get("reached") and data.get("satisfaction") is None:
            raise ValidationError("required when the owner was reached", "satisfaction")
        if not data.get("reached") and data.get("satisfaction") is not None:
            raise ValidationError("the owner was not reached: nobody gave a satisfaction",
                                  "satisfaction")
        if data.get("promised_reply_at") is not None and not data.get("reached"):
            raise ValidationError("a reply can only be promised to an owner who was reached",
                                  "promised_reply_at")


class OnlineAnswer(Schema):
    """The owner's own answer through the link (``record_online_revisit``)."""
    satisfaction = OneOf(SATISFACTION_LEVELS, required=True)
    resolved = Flag(required=True)
    comments = fields.String(validate=validate.Length(max=2000), load_default="")


class RecordReply(Schema):
    staff_id = Id(required=True)
    reply = Text(required=True)
    replied_at = UtcDateTime(allow_none=True, load_default=None)


class FollowupFilters(ListFilters):
    estate_id = Id()
    estate_ids = IdList()
    status = OneOf(FOLLOWUP_STATUSES)
    department = Text(max_length=100)
    kind = OneOf(REVISIT_KINDS)
    revisit_id = Id()
    overdue = Flag()               # still unanswered past the answer's due time
    limit = Limit(1000, default=500)


class RecordFollowupMeasures(Schema):
    """「改进措施的制定和实施」, each 「落实到人」: what will be done and who carries it out."""
    staff_id = Id(required=True)
    measures = Text(required=True)
    responsible = Text(max_length=50, required=True)


class AnswerFollowup(Schema):
    """「于一个月内向业主反馈」: what the owner was told."""
    staff_id = Id(required=True)
    answer = Text(required=True)


class Month(fields.String):
    def _deserialize(self, value: Any, attr: str | None,
                     data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not MONTH.fullmatch(text):
            raise ValidationError('expected a month "YYYY-MM"')
        return text


class CloseSamplingMonth(Schema):
    estate_id = Id(required=True)
    month = Month(required=True)


class MonthlyRevisitPlan(Schema):
    """``monthly_revisit_plan``: 「物业服务中心每月应制定回访计划」."""
    estate_id = Id(required=True)
    month = Month(required=True)


class PlanRoutineRevisits(Schema):
    estate_id = Id(required=True)
    year = fields.Integer(strict=True, required=True, validate=validate.Range(min=2000, max=2099))


# revisit_stats: the estates whose rows one call answers with ``estate_ids`` (the most a
# user's account holds: shared/schemas/gateway.py)
MAX_ESTATES_ASKED = 1000


class RevisitStatsQuery(Schema):
    estate_id = Id(allow_none=True, load_default=None)   # none: across all estates
    period = Period(required=True)
    per_estate = Flag(load_default=True)   # across estates, false: the group's figures alone
    # these estates' rows alone, each as asked by its ``estate_id`` (no group figures)
    estate_ids = IdList(max_length=MAX_ESTATES_ASKED, allow_none=True, load_default=None)
    # across estates (or ``estate_ids``), region or company: each group's figures too
    group_by = OneOf(GROUPINGS, load_default="estate")

    @validates_schema
    def one_estate_or_several(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("estate_ids") is not None and data.get("estate_id") is not None:
            raise ValidationError("not with estate_id: name one estate or several",
                                  "estate_ids")
        if data.get("estate_id") is not None and data.get("group_by", "estate") != "estate":
            raise ValidationError("not with estate_id: one estate is in one group",
                                  "group_by")


class CheckStatistics(Schema):
    repair = Flag(load_default=False)   # replace the kept counters by the recount
