"""Inputs of survey's RPCs (CONTRACT.md, survey)."""
import re

from marshmallow import ValidationError, fields, post_load, validate, validates_schema

from shared.errors import InvalidInput
from shared.schemas.base import Flag, Id, OneOf, Schema, Text, UtcDateTime
from shared.schemas.vocabulary import ROUND_KINDS, SURVEY_CATEGORIES

GENERAL_COMMENT = "general"           # the free-text box not tied to a category
COMMENT_MAX_LENGTH = 2000
ANSWER_SCALE = range(1, 6)            # 5 very satisfied ... 1 very unsatisfied
# secrets.token_urlsafe(16) gives 22 characters; allow some room, nothing query-like.
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{16,64}$")


def _unique(name):
    def check(values):
        if len(set(values)) != len(values):
            raise ValidationError(f"each {name} may appear only once")
    return check


class CreateRound(Schema):
    title = Text(max_length=200, required=True)
    estate_ids = fields.List(
        Id(), required=True,
        validate=[validate.Length(min=1, error="name at least one estate"), _unique("estate")],
    )
    kind = OneOf(ROUND_KINDS, load_default="half_yearly")
    opens_at = UtcDateTime(required=True)
    closes_at = UtcDateTime(required=True)
    categories = fields.List(
        OneOf(SURVEY_CATEGORIES),
        validate=[validate.Length(min=1, error="ask about at least one category"),
                  _unique("category")],
        load_default=lambda: list(SURVEY_CATEGORIES),
    )
    anonymous = Flag(load_default=True)

    @validates_schema
    def closes_after_it_opens(self, data, **kwargs):
        if data["closes_at"] <= data["opens_at"]:
            raise ValidationError("must be after opens_at", "closes_at")


class SubmitResponse(Schema):
    """One questionnaire, checked against the categories of its round's template.

    Errors name the answer or comment (``answers.cleaning``), so a form can mark it.
    """

    answers = fields.Dict(keys=fields.String(), values=fields.Raw(allow_none=True),
                          required=True)
    comments = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict)

    def __init__(self, categories, **kwargs):
        super().__init__(**kwargs)
        self.categories = tuple(categories)

    @validates_schema
    def fits_the_template(self, data, **kwargs):
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
    def drop_blank_comments(self, data, **kwargs):
        # Forms send every comment box, filled or not.
        data["comments"] = {
            topic: text.strip() for topic, text in data["comments"].items() if text.strip()
        }
        if not data["answers"] and not data["comments"]:
            raise ValidationError("answer at least one question or leave a comment", "answers")
        return data


def _is_answer(value):
    """1..5, or None for "not applicable"; True is not 1 and 4.0 is not 4."""
    return value is None or (
        isinstance(value, int) and not isinstance(value, bool) and value in ANSWER_SCALE
    )


def require_token(value):
    """A bare invitation token argument: a plain string that cannot be a query."""
    if not isinstance(value, str) or not TOKEN_PATTERN.match(value):
        raise InvalidInput({"token": ["not a valid invitation token"]})
    return value
