"""Free text has one rule (``shared.schemas.base.Text``): text that must say something
refuses empty and whitespace-only text (full-width spaces too) with "must not be empty",
naming the field; an optional one may still be left out (or null where allowed). Every
schema's text field with a lower length bound is such a field, but for the few listed."""
import inspect

import pytest
from marshmallow import Schema, ValidationError, fields, validate

from shared.errors import InvalidInput
from shared.schemas import base, gateway, intake, notify, revisit, survey
from shared.schemas.base import load

MODULES = (gateway, intake, notify, revisit, survey)
BLANKS = ("", " ", "   ", "\t\n", "\u3000\u3000")   # \u3000: the ideographic (full-width) space
# Length-checked strings that are not free text: a password's spaces are characters; a
# user name and a recipient (an id, phone number or address) are checked by their pattern.
NOT_FREE_TEXT = {"gateway.Login.username", "gateway.Login.password",
                 "gateway.PasswordChange.current_password", "gateway.PasswordChange.new_password",
                 "gateway.NewUser.password", "gateway.UserChanges.password",
                 "notify.SendNotification.to"}


def _each_string(field, where):
    if isinstance(field, fields.List):
        yield from _each_string(field.inner, f"{where}[]")
    elif isinstance(field, fields.Dict):
        for part, inner in (("keys", field.key_field), ("values", field.value_field)):
            if inner is not None:
                yield from _each_string(inner, f"{where}.{part}")
    elif isinstance(field, fields.String):
        yield where, field


def strings():
    """(module.Schema.field, field) of every string field of the input schemas."""
    for module in MODULES:
        for name, schema in inspect.getmembers(module, inspect.isclass):
            if issubclass(schema, Schema) and schema.__module__ == module.__name__:
                for field_name, field in schema._declared_fields.items():
                    yield from _each_string(
                        field, f"{module.__name__.rsplit('.', 1)[1]}.{name}.{field_name}")


def is_text(field):
    return any(isinstance(rule, validate.Predicate) and rule.method == "strip"
               for rule in field.validators)


TEXT = [(where, field) for where, field in strings() if is_text(field)]


def test_the_schemas_have_text_fields_to_check():
    names = {where for where, _ in TEXT}
    assert {"revisit.RecordReply.reply", "revisit.RecordFollowupMeasures.responsible",
            "revisit.RecordRevisit.signed_by", "intake.RegisterComplaint.content",
            "survey.AddRectification.action", "gateway.NewUser.display_name"} <= names


@pytest.mark.parametrize("where, field", TEXT, ids=[where for where, _ in TEXT])
def test_every_text_field_refuses_text_that_says_nothing(where, field):
    for blank in BLANKS:
        with pytest.raises(ValidationError) as refused:
            field.deserialize(blank)
        assert refused.value.messages == [base.BLANK_TEXT], (where, blank)
    assert field.deserialize(" 好 ") == " 好 "


def test_a_length_checked_string_is_free_text_or_listed_why_not():
    bounded = {where for where, field in strings() if not is_text(field) and any(
        isinstance(rule, validate.Length) and rule.min for rule in field.validators)}
    assert bounded == NOT_FREE_TEXT


def test_blank_text_is_refused_naming_the_field_and_optional_text_stays_optional():
    with pytest.raises(InvalidInput) as refused:
        load(revisit.RecordReply(), {"staff_id": "s-1", "reply": " \u3000 "})
    assert refused.value.errors == {"reply": [base.BLANK_TEXT]}
    with pytest.raises(InvalidInput) as refused:
        load(revisit.RecordFollowupMeasures(), {"staff_id": "s-1", "measures": "更换水泵",
                                                "responsible": "  "})
    assert refused.value.errors == {"responsible": [base.BLANK_TEXT]}
    # optional: left out or null says nothing; blank text given is refused the same
    assert load(survey.UpdateRectification(), {"status": "done"})["note"] is None
    assert load(revisit.RecordRevisit(), {"visitor_id": "s-1", "method": "phone",
                                          "reached": False, "signed_by": None})["signed_by"] is None
    with pytest.raises(InvalidInput) as refused:
        load(survey.UpdateRectification(), {"status": "done", "note": "   "})
    assert refused.value.errors == {"note": [base.BLANK_TEXT]}
