"""`huifang-users`, run as an operator runs it, against a running gateway: what it does
is checked over HTTP, the way the user it made will log in."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.broker

COMMAND = Path(sys.executable).parent / "huifang-users"
PASSWORD = "first-password-1"


def _run(amqp_uri, *args, password=None):
    """The command as a subprocess; ``password`` is typed into its standard input."""
    return subprocess.run([str(COMMAND), *args], check=False, cwd=ROOT, timeout=60,
                          env={**os.environ, "AMQP_URI": amqp_uri},
                          input=None if password is None else password + "\n",
                          stdin=subprocess.DEVNULL if password is None else None,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def users(gateway):
    """Runs the command against the test's gateway: ``users("list")``."""
    return lambda *args, **kwargs: _run(gateway.processes.config["AMQP_URI"], *args, **kwargs)


def _login(gateway, username, password):
    return gateway.request("POST", "/api/v1/auth/token",
                           json={"username": username, "password": password})


def test_add_log_in_disable_enable_and_reset_a_password(gateway, users):
    added = users("add", "desk.wang", "--role", "cs_staff", "--estate", "cli-east",
                  "--name", "王小明", "--password-stdin", password=PASSWORD)
    assert added.returncode == 0, added.stderr
    assert "desk.wang" in added.stdout and PASSWORD not in added.stdout + added.stderr

    login = _login(gateway, "desk.wang", PASSWORD)
    assert login.status_code == 200, login.text
    assert login.json()["user"]["roles"] == ["cs_staff"]
    assert login.json()["user"]["estates"] == ["cli-east"]
    token = login.json()["access_token"]
    assert gateway.request("GET", "/api/v1/me", token=token).json()["display_name"] == "王小明"

    listed = users("list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()}
    assert {"admin", "desk.wang"} <= set(rows)
    assert "enabled" in rows["desk.wang"] and "cli-east" in rows["desk.wang"]

    # disabled: the token issued before stops working, and so does the password
    assert users("disable", "desk.wang").returncode == 0
    assert gateway.request("GET", "/api/v1/me", token=token).status_code == 401
    assert _login(gateway, "desk.wang", PASSWORD).status_code == 401
    assert "DISABLED" in users("list").stdout

    # enabled again: the password works, the old token stays revoked
    assert users("enable", "desk.wang").returncode == 0
    assert gateway.request("GET", "/api/v1/me", token=token).status_code == 401
    token = _login(gateway, "desk.wang", PASSWORD).json()["access_token"]

    # a new password: the old one and every token issued before end
    reset = users("reset-password", "desk.wang", "--password-stdin",
                  password="second-password-2")
    assert reset.returncode == 0, reset.stderr
    assert gateway.request("GET", "/api/v1/me", token=token).status_code == 401
    assert _login(gateway, "desk.wang", PASSWORD).status_code == 401
    assert _login(gateway, "desk.wang", "second-password-2").status_code == 200


def test_roles_and_estates_are_replaced(gateway, users):
    assert users("add", "lead.li", "--role", "cs_staff", "--estate", "cli-east",
                 "--password-stdin", password=PASSWORD).returncode == 0
    assert users("set-roles", "lead.li", "supervisor").returncode == 0
    assert users("set-estates", "lead.li", "cli-east", "cli-west").returncode == 0
    user = _login(gateway, "lead.li", PASSWORD).json()["user"]
    assert user["roles"] == ["supervisor"] and user["estates"] == ["cli-east", "cli-west"]
    # a supervisor of an estate needs one: every estate is for group-wide roles
    refused = users("set-estates", "lead.li")
    assert refused.returncode == 1 and "estates" in refused.stderr


def test_refusals_name_the_field_or_the_unknown_user(users):
    bad = users("add", "X y", "--role", "cs_staff", "--estate", "cli-east",
                "--password-stdin", password="short")
    assert bad.returncode == 1
    assert "username" in bad.stderr and "password" in bad.stderr
    assert "Traceback" not in bad.stderr

    assert users("add", "twice", "--role", "hq_analyst", "--password-stdin",
                 password=PASSWORD).returncode == 0
    taken = users("add", "twice", "--role", "hq_analyst", "--password-stdin", password=PASSWORD)
    assert taken.returncode == 1 and "already taken" in taken.stderr

    unknown = users("disable", "nobody-at-all")
    assert unknown.returncode == 1 and "no user 'nobody-at-all'" in unknown.stderr


def test_a_password_is_never_taken_without_a_terminal_or_from_argv(users):
    # no --password-stdin and no terminal: refused before anything is sent
    asked = users("add", "no.tty", "--role", "hq_analyst")
    assert asked.returncode == 2 and "--password-stdin" in asked.stderr
    assert users("add", "no.tty", "--role", "hq_analyst", "--password",
                 PASSWORD).returncode == 2          # there is no such option
    assert "no.tty" not in users("list").stdout


def test_a_gateway_or_broker_out_of_reach_is_said_so(rabbit_config):
    no_gateway = _run(rabbit_config["AMQP_URI"], "list")          # a vhost where nothing runs
    assert no_gateway.returncode == 3 and "gateway is not running" in no_gateway.stderr
    no_broker = _run("pyamqp://guest:guest@127.0.0.1:1/", "list")
    assert no_broker.returncode == 3 and "cannot reach RabbitMQ" in no_broker.stderr
