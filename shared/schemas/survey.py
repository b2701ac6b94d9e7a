"""Inputs of survey's RPCs (docs/rpc.md, survey)."""
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from shared.paging import Limit, ListFilters
from shared.schemas import base
from shared.schemas.base import Flag, Id, IdList, OneOf, Schema, Text, UtcDateTime
from shared.schemas.vocabulary import ROUND_KINDS

GENERAL_COMMENT = "general"           # the free-text box not tied to a category
COMMENT_MAX_LENGTH = 2000
ANSWER_SCALE = range(1, 6)            # 5 very satisfied ... 1 very unsatisfied
# A category key becomes a field name in the tallies: lower-case words, nothing query-like.
CATEGORY_KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
SAMPLE_MODES = ("all", "stratified")
STRATA = ("building", "unit")         # stratify by building, or by building and unit
RECTIFICATION_STATUSES = ("open", "in_progress", "done")
RECTIFICATION_UPDATES = ("in_progress", "done")
ROUND_STATUSES = ("creating", "scheduled", "open", "closed", "abandoned")
MAX_REMINDERS = 10


def _unique(name: str) -> Callable[[list[Any]], None]:
    def check(values: list[Any]) -> None:
        if len(set(values)) != len(values):
            raise ValidationError(f"each {name} may appear only once")
    return check


class CategoryKey(fields.String):
    def _deserialize(self, value: Any, attr: str | None,
                     data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        key = super()._deserialize(value, attr, data, **kwargs)
        if not CATEGORY_KEY_PATTERN.fullmatch(key) or key == GENERAL_COMMENT:
            raise ValidationError(
                "a category key is 2-40 lower-case letters, digits or _ (not 'general')")
        return key


class CategoryDefinition(Schema):
    """A question of the questionnaire: its key and what owners and staff read."""

    key = CategoryKey(required=True)
    label_zh = Text(max_length=40, required=True)
    label_en = Text(max_length=80, required=True)


class CategoryItem(fields.Field):
    """A known category by its key (``"parking"``), or a new one defined in full."""

    def _deserialize(self, value: Any, attr: str | None,
                     data: Mapping[str, Any] | None, **kwargs: Any) -> Any:
        if isinstance(value, str):
            return CategoryKey()._deserialize(value, attr, data)
        if isinstance(value, dict):
            return CategoryDefinition().load(value)
        raise ValidationError("a category key, or {key, label_zh, label_en}")


def CategoryList(**kwargs: Any) -> fields.List:
    return fields.List(CategoryItem(), validate=validate.Length(
        min=1, max=40, error="between 1 and 40 categories"), **kwargs)


class SaveTemplate(Schema):
    """A new version of a questionnaire template; earlier versions stay as they were."""

    template_id = Id(required=True)
    title = Text(max_length=200, required=True)
    categories = CategoryList(required=True)


class Sample(Schema):
    """Everyone, or a stratified sample: 「可以根据楼层或单元进行划分,要求代表性和广泛性」."""

    mode = OneOf(SAMPLE_MODES, load_default="all")
    rate = fields.Float(validate=validate.Range(min=0, max=1, min_inclusive=False))
    by = OneOf(STRATA, load_default="building")
    seed = fields.Integer(strict=True, validate=validate.Range(min=0, max=2**63 - 1))

    @validates_schema
    def stratified_needs_a_rate(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("mode") == "stratified" and "rate" not in data:
            raise ValidationError("give the share of households to invite, e.g. 0.3", "rate")
        if data.get("mode", "all") == "all" and "rate" in data:
            raise ValidationError("a rate only applies to a stratified sample", "rate")


class Reminders(Schema):
    interval_days = fields.Float(validate=validate.Range(min=0.04, max=60))   # ≥ 1 hour
    max = fields.Integer(strict=True, validate=validate.Range(min=0, max=MAX_REMINDERS))


class CreateRound(Schema):
    title = Text(max_length=200, required=True)
    estate_ids = fields.List(
        Id(), required=True,
        validate=[validate.Length(min=1, error="name at least one estate"), _unique("estate")],
    )
    kind = OneOf(ROUND_KINDS, load_default="half_yearly")
    # what an event round is about: 「针对特定事件,例如小区装修工程、物业费调整等,进行调查」
    occasion = Text(max_length=200, load_default=None)
    opens_at = UtcDateTime(required=True)
    closes_at = UtcDateTime(required=True)
    template_id = Id(load_default="default")
    categories = CategoryList(load_default=None)          # default: the template's
    add_categories = CategoryList(load_default=list)      # asked in every estate of the round
    estate_categories = fields.Dict(keys=Id(), values=CategoryList(), load_default=dict)
    sample = fields.Nested(Sample, load_default=lambda: {"mode": "all", "by": "building"})
    anonymous = Flag(load_default=True)
    reminders = fields.Nested(Reminders, load_default=dict)
    # 「(RPC list_households, occupied only by default)」: false invites vacant ones too
    occupied_only = Flag(load_default=True)
    # The client's key for this request: a retry after a lost reply or a crash gets the
    # round the first call made instead of a second round.
    request_id = Id(load_default=None)

    @validates_schema
    def check_round(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["closes_at"] <= data["opens_at"]:
            raise ValidationError("must be after opens_at", "closes_at")
        if data["kind"] == "event" and not data.get("occasion"):
            raise ValidationError("say what the event is (fee change, renovation, ...)",
                                  "occasion")
        strangers = sorted(set(data["estate_categories"]) - set(data["estate_ids"]))
        if strangers:
            raise ValidationError(f"not estates of this round: {', '.join(strangers)}",
                                  "estate_categories")


class SubmitResponse(Schema):
    """One questionnaire, checked against the categories of its round's template.

    Errors name the answer or comment (``answers.cleaning``), so a form can mark it.
    """

    answers = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True),
                          required=True)
    comments = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict)

    def __init__(self, categories: Iterable[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.categories = tuple(categories)

    @validates_schema
    def fits_the_template(self, data: dict[str, Any], **kwargs: Any) -> None:
        errors = {}
        for category, answer in data["answers"].items():
            if category not in self.categories:
                errors[f"answers.{category}"] = ["not a question of this survey"]
            elif not _is_answer(answer):
                errors[f"answers.{category}"] = ["must be a whole number from 1 to 5, or null"]
        for topic, text in data["comments"].items():
            if topic != GENERAL_COMMENT and topic not in self.categories:
                errors[f"comments.{topic}"] = ["not a question of this survey"]
            elif not isinstance(text, str):
                errors[f"comments.{topic}"] = ["must be text"]
            elif len(text) > COMMENT_MAX_LENGTH:
                errors[f"comments.{topic}"] = [f"longer than {COMMENT_MAX_LENGTH} characters"]
        if errors:
            raise ValidationError(errors)

    @post_load
    def drop_blank_comments(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # Forms send every comment box, filled or not.
        data["comments"] = {
            topic: text.strip() for topic, text in data["comments"].items() if text.strip()
        }
        if not data["answers"] and not data["comments"]:
            raise ValidationError("answer at least one question or leave a comment", "answers")
        return data


class DraftResponse(SubmitResponse):
    """A questionnaire being filled in, kept so a reload loses nothing: any part of it."""

    answers = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True),
                          load_default=dict)

    @post_load
    def drop_blank_comments(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["comments"] = {topic: text for topic, text in data["comments"].items()
                            if text.strip()}
        return data


def _is_answer(value: object) -> bool:
    """1..5, or None for "not applicable"; True is not 1 and 4.0 is not 4."""
    return value is None or (
        isinstance(value, int) and not isinstance(value, bool) and value in ANSWER_SCALE
    )


def require_token(value: object) -> str:
    """A bare invitation token argument: a plain string that cannot be a query."""
    return base.require_token(value, "invitation")


class RoundFilters(ListFilters):
    estate_id = Id()
    estate_ids = IdList()          # rounds touching any of them
    status = OneOf(ROUND_STATUSES)
    kind = OneOf(ROUND_KINDS)
    limit = Limit(200, default=200)


class InvitationFilters(ListFilters):
    estate_id = Id()               # the same as list_invitations' second argument
    estate_ids = IdList()
    limit = Limit(1000)            # none: the whole round


class AddRectification(Schema):
    """「对存在的问题,服务中心主任提出整改意见,责成有关部门限期解决」."""

    estate_id = Id(required=True)
    category = fields.String(required=True)   # a category of the estate's questionnaire, or general
    action = Text(max_length=1000, required=True)
    department = Text(max_length=100, required=True)
    due_at = UtcDateTime(required=True)
    assignee_id = Id(load_default=None)


class UpdateRectification(Schema):
    status = OneOf(RECTIFICATION_UPDATES, required=True)
    note = Text(max_length=1000, load_default=None)
    staff_id = Id(load_default=None)


MAX_ROUND_PART = 10_000        # estates of a part of a round one call names


class RectificationFilters(ListFilters):
    round_id = Id()
    estate_id = Id()
    estate_ids = IdList()
    status = OneOf(RECTIFICATION_STATUSES)
    department = Text(max_length=100)       # the department charged with it
    overdue = Flag()
    limit = Limit(1000)            # none: all of them


class RoundPart(Schema):
    """A part of a round's estates (a person's of a group round): its report and ranking."""
    estate_ids = fields.List(Id(), required=True, validate=[
        validate.Length(min=1, max=MAX_ROUND_PART), _unique("estate")])


class PublishReport(Schema):
    """「业主/用户意见调查结果及整改方案应向业主单位公布,接受监督」."""

    estate_ids = fields.List(Id(), validate=[validate.Length(min=1), _unique("estate")],
                             load_default=None)   # default: every estate of the round
    note = Text(max_length=1000, load_default=None)


class CheckStatistics(Schema):
    repair = Flag(load_default=False)
