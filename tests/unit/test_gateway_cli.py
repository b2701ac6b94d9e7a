"""`huifang-users` without a broker: how it takes a password and how refusals read (the
command against a running gateway: tests/integration/test_gateway_users_cli.py)."""
import io
import json
from types import SimpleNamespace

import pytest
from nameko.exceptions import RemoteError

from services.gateway import cli


class Terminal(io.StringIO):
    def isatty(self):
        return True


def _typed(*answers):
    answers = iter(answers)
    return lambda prompt: next(answers)


def test_a_password_is_typed_twice_on_a_terminal(monkeypatch):
    monkeypatch.setattr("sys.stdin", Terminal())
    args = SimpleNamespace(password_stdin=False)
    assert cli._password(args, ask=_typed("long-password-1", "long-password-1")) \
        == "long-password-1"
    with pytest.raises(cli.Refused, match="differ") as refusal:
        cli._password(args, ask=_typed("long-password-1", "long-password-2"))
    assert refusal.value.status == cli.EXIT_USAGE
    with pytest.raises(cli.Refused, match="empty"):
        cli._password(args, ask=_typed("", ""))


def test_with_password_stdin_one_line_is_the_password_spaces_and_all(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(" spaced password \nnext line\n"))
    assert cli._password(SimpleNamespace(password_stdin=True)) == " spaced password "


def test_without_a_terminal_nothing_is_read_unasked(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("piped-password-1\n"))
    with pytest.raises(cli.Refused, match="--password-stdin"):
        cli._password(SimpleNamespace(password_stdin=False), ask=_typed("x", "x"))


def test_refusals_name_each_field_even_nested_ones():
    error = RemoteError("InvalidInput", json.dumps(
        {"roles": {"0": ["Must be one of: cs_staff, supervisor."]}, "password": ["too short"]}))
    told = cli._explain(error, "wang")
    assert "  roles.0: Must be one of: cs_staff, supervisor." in told
    assert "  password: too short" in told


def test_an_unknown_user_is_named():
    assert cli._explain(RemoteError("NotFound", "user 'wang' not found"), "wang") \
        == "no user 'wang'"


def test_a_user_is_shown_on_one_line():
    line = cli._describe({"username": "hq.li", "roles": ["hq_analyst"], "estates": [],
                          "disabled": True, "display_name": "李"})
    assert line.split() == ["hq.li", "DISABLED", "hq_analyst", "every", "estate", "李"]


def test_a_departments_account_is_given_and_shown_its_department(monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("long-password-1\n"))
    parser = cli._parser()
    added = parser.parse_args(["add", "eng.li", "--role", "department", "--estate", "e-1",
                               "--department", "工程部", "--password-stdin"])
    assert added.prepare(added)["department"] == "工程部"
    moved = parser.parse_args(["set-department", "eng.li", "秩序部"])
    assert moved.prepare(moved) == {"department": "秩序部"}
    cleared = parser.parse_args(["set-department", "eng.li"])
    assert cleared.prepare(cleared) == {"department": None}
    roles = parser.parse_args(["set-roles", "eng.li", "department", "--department", "工程部"])
    assert roles.prepare(roles) == {"roles": ["department"], "department": "工程部"}
    line = cli._describe({"username": "eng.li", "roles": ["department"], "estates": ["e-1"],
                          "department": "工程部"})
    assert "department (工程部)" in line
