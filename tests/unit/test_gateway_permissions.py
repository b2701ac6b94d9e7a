"""The permission table as a matrix: every role × every operation × own / other estate,
carried out by the gateway's real dispatcher against recording stand-in services."""
import base64
import json

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway import api
from services.gateway.permissions import PERMISSIONS, allowed
from services.gateway.problems import Problem
from shared.actor import Actor
from shared.schemas.vocabulary import GROUP_WIDE_ROLES, USER_ROLES

OWN, OTHER = "estate-own", "estate-other"


class RecordingServices(api.Services):
    """Answers every RPC; records which were called. Records belong to ``estate``."""

    def __init__(self, estate):
        super().__init__({})
        self.estate, self.calls = estate, []

    def call(self, target, *args, **kwargs):
        self.calls.append(target)
        if target.split(".")[1].startswith("get_"):
            return {"id": args[0], "estate_id": self.estate, "estate_ids": [self.estate]}
        if kwargs.get("paged"):
            return {"items": [{"id": "x", "estate_id": self.estate}], "next_cursor": None}
        if target in ("survey.export_report", "revisit.export_monthly_plan"):
            return base64.b64encode(b"PK workbook").decode()
        return {"done": target}


def _request(operation, estate):
    path = api.PREFIX + operation.path
    for name in operation.path.split("/"):
        if name.startswith("{"):
            value = {"{estate_id}": estate, "{month}": "2026-10", "{year}": "2026"}.get(
                name, "rec-1")
            path = path.replace(name, value)
    query = {}
    if isinstance(operation.scope, api.Figures):
        query = {"estate_id": estate, "period": "2026-10"}
    elif isinstance(operation.scope, api.Listing) or (
            isinstance(operation.scope, api.OfRecord) and operation.scope.by_part):
        query = {"estate_id": estate}
    body = None
    if operation.method in ("POST", "PUT", "PATCH"):
        body = {"estate_ids": [estate]} if isinstance(operation.scope, api.InBody) and \
            operation.scope.field == "estate_ids" else {"estate_id": estate}
    builder = EnvironBuilder(path=path, method=operation.method, query_string=query,
                             data=json.dumps(body) if body is not None else None,
                             content_type="application/json" if body is not None else None)
    return Request(builder.get_environ())


def _run(operation, actor, estate):
    services = RecordingServices(estate)
    request = _request(operation, estate)
    matched, values = api.match(request.method, request.path)
    assert matched is operation
    try:
        response = api.execute(operation, request, values, actor, services, 2_000_000)
    except Problem as problem:
        return problem.status, None, services.calls
    return response.status_code, response, services.calls


def _actors():
    for role in USER_ROLES:
        yield pytest.param(Actor(f"u-{role}", (role,), (OWN,)), id=f"{role}-of-one-estate")
    for role in GROUP_WIDE_ROLES:
        yield pytest.param(Actor(f"u-{role}", (role,), ()), id=f"{role}-group-wide")


@pytest.mark.parametrize("actor", _actors())
@pytest.mark.parametrize("operation", api.OPERATIONS, ids=lambda op: op.name)
def test_every_role_every_operation_own_and_other_estate(operation, actor):
    may = allowed(actor.roles, operation.action)
    own_status, own_response, own_calls = _run(operation, actor, OWN)
    other_status, other_response, other_calls = _run(operation, actor, OTHER)
    if not may:
        assert (own_status, other_status) == (403, 403)
        assert own_calls == other_calls == [], "refused, yet a service was called"
        return
    assert own_status == operation.status, own_response and own_response.get_data()
    assert own_calls[-1] == operation.rpc
    if actor.group_wide or isinstance(operation.scope, api.Unscoped):
        assert other_status == operation.status
        return
    # another estate's record: unknown, refused, or an empty list - and never acted on
    getter = getattr(operation.scope, "getter", None)
    assert [call for call in other_calls if call != getter] == []
    if other_status == 200:
        assert isinstance(operation.scope, api.Listing)
        assert json.loads(other_response.get_data()) == {"items": [], "next_cursor": None}
    else:
        assert other_status in (403, 404)


def test_every_operation_has_a_permission_and_every_permission_a_use():
    actions = {operation.action for operation in api.OPERATIONS}
    assert actions - set(PERMISSIONS) == set()
    own_endpoints = {"users.manage", "stats.group"}
    assert set(PERMISSIONS) - actions - own_endpoints == set()


@pytest.mark.parametrize("role, may", [
    ("cs_staff", False), ("department", False), ("hq_analyst", False),
    ("supervisor", True), ("estate_manager", True), ("company_manager", True)])
def test_only_a_supervisor_or_above_flags_a_complaint_malicious(role, may):
    assert allowed([role], "complaints.flag_malicious") is may


@pytest.mark.parametrize("role, may", [
    ("cs_staff", False), ("supervisor", False), ("department", False),
    ("estate_manager", True), ("company_manager", True)])
def test_a_review_is_decided_by_the_estate_manager_or_above(role, may):
    assert allowed([role], "complaints.decide_review") is may


def test_group_figures_need_a_headquarters_role_and_a_group_wide_scope():
    figures = next(op for op in api.OPERATIONS if op.name == "stats.complaints")
    group = EnvironBuilder(path="/api/v1/stats/complaints", query_string={"period": "2026-10"})
    for actor, status in [(Actor("u", ("hq_analyst",), ()), 200),
                          (Actor("u", ("estate_manager",), (OWN,)), 403),
                          (Actor("u", ("hq_analyst",), (OWN,)), 403)]:   # HQ of one estate
        services = RecordingServices(OWN)
        try:
            response = api.execute(figures, Request(group.get_environ()), {}, actor, services,
                                   2_000_000)
            assert (response.status_code, services.calls) == (
                status, ["intake.group_complaint_stats"])
        except Problem as problem:
            assert problem.status == status and services.calls == []


def test_no_role_may_read_full_contacts():
    assert not any("contact" in action for action in PERMISSIONS)
    assert not any(op.rpc == "intake.get_contact" for op in api.OPERATIONS)


def test_lists_ask_the_service_only_for_the_users_estates():
    listing = next(op for op in api.OPERATIONS if op.name == "complaints.list")
    seen = {}

    class Services(RecordingServices):
        def call(self, target, *args, **kwargs):
            seen.update(args[0])
            return {"items": [{"estate_id": OWN}, {"estate_id": OTHER}], "next_cursor": None}

    request = Request(EnvironBuilder(path="/api/v1/complaints",
                                     query_string={"estate_ids": [OWN, OTHER]}).get_environ())
    response = api.execute(listing, request, {}, Actor("u", ("cs_staff",), (OWN, "e-3")),
                           Services(OWN), 2_000_000)
    assert seen["estate_ids"] == [OWN]
    # and whatever a service answers, another estate's item never leaves
    assert json.loads(response.get_data())["items"] == [{"estate_id": OWN}]
