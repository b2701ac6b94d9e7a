"""Inputs of the gateway's own operations: logins and staff accounts."""
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from shared.schemas.base import Flag, Id, Schema, Text
from shared.schemas.vocabulary import DEPARTMENT_ROLE, GROUP_WIDE_ROLES, USER_ROLES

USERNAME = validate.Regexp(r"^[a-z][a-z0-9_.\-]{1,31}$",
                           error="2-32 lower-case letters, digits, '_', '.' or '-'")
# long enough to resist guessing, short enough that hashing it costs nothing unusual
PASSWORD = validate.Length(min=10, max=200)


class Login(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=200))


def _roles(**kwargs: Any) -> fields.List:
    return fields.List(fields.String(validate=validate.OneOf(USER_ROLES)),
                       validate=validate.Length(min=1, max=len(USER_ROLES)), **kwargs)


def _estates(**kwargs: Any) -> fields.List:
    return fields.List(Id(), validate=validate.Length(max=1000), **kwargs)


def _department(**kwargs: Any) -> fields.String:
    """责任部门: a department intake's routing names (the gateway asks intake which)."""
    return Text(max_length=100, allow_none=True, **kwargs)


class NewUser(Schema):
    username = fields.String(required=True, validate=USERNAME)
    password = fields.String(required=True, validate=PASSWORD)
    display_name = Text(max_length=50, load_default=None)
    roles = _roles(required=True)
    estates = _estates(load_default=list)
    department = _department(load_default=None)

    @validates_schema
    def estates_or_group_wide(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_scope(data)
        check_department(data)


class UserChanges(Schema):
    display_name = Text(max_length=50)
    roles = _roles()
    estates = _estates()
    department = _department()     # null: none (a department user then sees nothing of it)
    disabled = Flag()
    password = fields.String(validate=PASSWORD)   # an administrator's reset


class PasswordChange(Schema):
    current_password = fields.String(required=True, validate=validate.Length(min=1, max=200))
    new_password = fields.String(required=True, validate=PASSWORD)


class UserFilters(Schema):
    limit = fields.Integer(validate=validate.Range(min=1, max=500), load_default=100)
    cursor = fields.String(validate=validate.Length(max=64), load_default=None)


def check_scope(user: dict) -> None:
    """Staff of an estate need their estates; only group-wide roles may have none (= all)."""
    if not user.get("estates") and not set(user.get("roles", ())) & set(GROUP_WIDE_ROLES):
        raise ValidationError("at least one estate, unless a role sees the whole group",
                              "estates")


def check_department(user: dict) -> None:
    """A department's staff (责任部门) need their department; nobody else has one."""
    has_role = DEPARTMENT_ROLE in user.get("roles", ())
    if has_role and not user.get("department"):
        raise ValidationError("required for the department role (责任部门)", "department")
    if user.get("department") and not has_role:
        raise ValidationError("only for the department role (责任部门)", "department")
