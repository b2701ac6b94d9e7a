"""The permission table as a matrix: every role × every operation × own / other estate,
carried out by the gateway's real dispatcher against recording stand-in services."""
import base64
import json

import pytest
from nameko.exceptions import RemoteError
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway import api
from services.gateway.permissions import (
    NOT_A_DEPARTMENTS_WORK,
    PERMISSIONS,
    allowed,
    may_action,
)
from services.gateway.problems import Problem, from_exception
from shared.actor import Actor
from shared.schemas.vocabulary import DEPARTMENT_ROLE, GROUP_WIDE_ROLES, USER_ROLES

OWN, OTHER = "estate-own", "estate-other"
DEPT, OTHER_DEPT = "工程部", "秩序部"     # every recorded record is DEPT's work


class RecordingServices(api.Services):
    """Answers every RPC; records which were called. Records belong to ``estate``."""

    def __init__(self, estate, department=DEPT):
        super().__init__({})
        self.estate, self.department, self.calls, self.args = estate, department, [], []

    def call(self, target, *args, **kwargs):
        self.calls.append(target)
        self.args.append(args)
        if target.split(".")[1].startswith("get_"):
            return {"id": args[0], "estate_id": self.estate, "estate_ids": [self.estate],
                    "department": self.department}
        if kwargs.get("paged"):
            return {"items": [{"id": "x", "estate_id": self.estate,
                               "department": self.department}], "next_cursor": None}
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


def _run(operation, actor, estate, department=DEPT):
    services = RecordingServices(estate, department)
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
        yield pytest.param(Actor(f"u-{role}", (role,), (OWN,), DEPT if role == "department"
                                 else None), id=f"{role}-of-one-estate")
    for role in GROUP_WIDE_ROLES:
        yield pytest.param(Actor(f"u-{role}", (role,), ()), id=f"{role}-group-wide")


@pytest.mark.parametrize("actor", _actors())
@pytest.mark.parametrize("operation", api.OPERATIONS, ids=lambda op: op.name)
def test_every_role_every_operation_own_and_other_estate(operation, actor):
    # asked by action (``may_action``), as the console asks: the dispatcher must agree
    may = may_action(actor, operation.action)
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


def test_asking_by_an_action_the_table_does_not_name_is_an_error_not_a_no():
    with pytest.raises(KeyError, match="survey.rectification.update"):
        may_action(Actor("u", ("supervisor",), (OWN,)), "survey.rectification.update")


@pytest.mark.parametrize("method, path, action", [
    # what the console asks by action, where no one record's route is at hand
    ("PATCH", "/survey/rectifications/x-1", "survey.rectifications.update"),
    ("GET", "/survey/rounds/r-1/ranking", "survey.rounds.ranking"),
    ("GET", "/estates/e-1/households", "households.list")])
def test_the_actions_the_console_asks_by_are_those_of_their_routes(method, path, action):
    assert api.match(method, api.PREFIX + path)[0].action == action


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


@pytest.mark.parametrize("name, rpc, args", [
    ("stats.complaints", "intake.group_complaint_stats", ("2026-10",)),
    ("stats.revisits", "revisit.revisit_stats", (None, "2026-10"))])
def test_the_group_figures_alone_are_asked_with_per_estate_false(name, rpc, args):
    """``?per_estate=false``: the group's totals without every estate's row, as a boolean."""
    seen = []

    class Services(RecordingServices):
        def call(self, target, *args, **kwargs):
            seen.append((target, args, kwargs))
            return {}

    figures = next(op for op in api.OPERATIONS if op.name == name)
    for query, rows in (({"per_estate": "false"}, {"per_estate": False}), ({}, {})):
        seen.clear()
        request = EnvironBuilder(path=api.PREFIX + figures.path,
                                 query_string={"period": "2026-10", **query})
        api.execute(figures, Request(request.get_environ()), {}, Actor("u", ("hq_analyst",), ()),
                    Services(OWN), 2_000_000)
        assert seen == [(rpc, args, rows)]


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


# 责任部门: a department's staff see and act on their own department's work only ----------------

DEPARTMENT_WORK = [op for op in api.OPERATIONS if getattr(op.scope, "department", None)]


def test_the_department_work_is_complaints_followups_and_rectifications():
    records = {op.name for op in api.OPERATIONS
               if op.scope in (api._COMPLAINT, api._FOLLOWUP, api._RECTIFICATION)}
    assert {op.name for op in DEPARTMENT_WORK} == records | {
        "complaints.list", "followups.list", "survey.rectifications.list"}
    assert {op.name for op in DEPARTMENT_WORK} >= {
        "complaints.resolve", "complaints.escalate", "followups.measures",
        "followups.answer", "survey.rectifications.update"}


@pytest.mark.parametrize("operation", DEPARTMENT_WORK, ids=lambda op: op.name)
def test_a_department_sees_and_acts_on_its_own_departments_work_only(operation):
    """The matrix's third dimension for the department role: own / other department / an
    account naming none. A record of another department is unknown and never acted on; a
    list asks the service for the user's department alone, whatever the query named."""
    mine = Actor("u-dep", ("department",), (OWN,), DEPT)
    if not allowed(mine.roles, operation.action):
        assert _run(operation, mine, OWN)[0] == 403
        return
    status, _, calls = _run(operation, mine, OWN, DEPT)
    assert (status, calls[-1]) == (operation.status, operation.rpc)
    other_status, other_response, other_calls = _run(operation, mine, OWN, OTHER_DEPT)
    none_status, none_response, none_calls = _run(
        operation, Actor("u-dep-0", ("department",), (OWN,)), OWN, DEPT)
    if isinstance(operation.scope, api.Listing):
        # the service answered another department's item anyway: the second guard drops it
        assert json.loads(other_response.get_data())["items"] == []
        assert none_status == 200 and none_calls == []
        assert json.loads(none_response.get_data()) == {"items": [], "next_cursor": None}
    else:
        assert (other_status, other_calls) == (404, [operation.scope.getter])
        assert (none_status, none_calls) == (404, [operation.scope.getter])


@pytest.mark.parametrize("name", ["complaints.list", "followups.list",
                                  "survey.rectifications.list"])
def test_a_department_list_is_asked_for_its_department_whatever_the_query_says(name):
    listing = next(op for op in api.OPERATIONS if op.name == name)
    request = Request(EnvironBuilder(path=api.PREFIX + listing.path,
                                     query_string={"department": OTHER_DEPT}).get_environ())
    services = RecordingServices(OWN)
    api.execute(listing, request, {}, Actor("u", ("department",), (OWN,), DEPT), services,
                2_000_000)
    assert services.args[0][0]["department"] == DEPT
    # anyone else's typed filter stands
    services = RecordingServices(OWN)
    api.execute(listing, request, {}, Actor("u", ("supervisor",), (OWN,)), services, 2_000_000)
    assert services.args[0][0]["department"] == OTHER_DEPT


def test_a_department_user_with_another_role_too_is_not_confined():
    both = Actor("u", ("department", "cs_staff"), (OWN,), DEPT)
    get = next(op for op in api.OPERATIONS if op.name == "complaints.get")
    assert _run(get, both, OWN, OTHER_DEPT)[0] == 200



# what names no department: a department's staff have none of it ------------------------------

@pytest.mark.parametrize("operation", [op for op in api.OPERATIONS
                                       if op.action in NOT_A_DEPARTMENTS_WORK],
                         ids=lambda op: op.name)
def test_a_department_has_no_work_orders_nor_revisit_replies_and_is_told_why(operation):
    assert DEPARTMENT_ROLE not in PERMISSIONS[operation.action]
    request, services = _request(operation, OWN), RecordingServices(OWN)
    with pytest.raises(Problem) as refused:
        api.execute(operation, request, api.match(request.method, request.path)[1],
                    Actor("u-dep", (DEPARTMENT_ROLE,), (OWN,), DEPT), services, 2_000_000)
    assert (refused.value.status, services.calls) == (403, [])
    assert refused.value.detail == NOT_A_DEPARTMENTS_WORK[operation.action]
    # the desk's role beside it does what the desk does
    both = Actor("u-both", (DEPARTMENT_ROLE, "cs_staff"), (OWN,), DEPT)
    assert _run(operation, both, OWN)[0] == operation.status


def test_the_work_orders_and_revisit_replies_are_all_that_is_refused_so():
    assert {op.action for op in api.OPERATIONS if op.tag == "work orders"} | {
        "revisits.reply"} == set(NOT_A_DEPARTMENTS_WORK)
    refused = Actor("u-dep", (DEPARTMENT_ROLE,), (OWN,), DEPT)
    get = next(op for op in api.OPERATIONS if op.name == "revisits.get")
    with pytest.raises(Problem, match="your role may not do this"):
        api.execute(get, _request(get, OWN), {"revisit_id": "rec-1"}, refused,
                    RecordingServices(OWN), 2_000_000)


# a department named in a body: the service's rule (shared/departments.py), not the gateway's

NAMING_A_DEPARTMENT = [op for op in api.OPERATIONS
                       if op.body is not None and "department" in op.body().fields]


class RefusingServices(RecordingServices):
    """The services as they answer a department no routing names: ``InvalidInput`` on
    ``department`` from the RPC that hands the work over."""

    def __init__(self, estate, refused_by):
        super().__init__(estate)
        self.refused_by = refused_by

    def call(self, target, *args, **kwargs):
        if target == self.refused_by:
            self.calls.append(target)
            raise RemoteError("InvalidInput", json.dumps(
                {"department": ["not a department of this estate's complaint routing"]}))
        return super().call(target, *args, **kwargs)


def test_the_bodies_that_name_a_department():
    assert {op.name for op in NAMING_A_DEPARTMENT} == {
        "complaints.assign", "survey.rectifications.add"}


@pytest.mark.parametrize("operation", NAMING_A_DEPARTMENT, ids=lambda op: op.name)
def test_a_department_is_left_to_the_service_and_its_refusal_passed_on(operation):
    """One place per rule: the gateway asks no routing of its own; the service's refusal
    reaches the client as a 422 naming ``department``."""
    request = Request(EnvironBuilder(
        path=api.PREFIX + operation.path.replace("{complaint_id}", "c-1").replace(
            "{round_id}", "r-1"), method=operation.method,
        json={"estate_id": OWN, "department": "保洁部"}).get_environ())
    services = RefusingServices(OWN, operation.rpc)
    _, values = api.match(request.method, request.path)
    with pytest.raises(RemoteError) as refused:
        api.execute(operation, request, values, Actor("u-sup", ("supervisor",), (OWN,)),
                    services, 2_000_000)
    assert "intake.list_departments" not in services.calls
    assert services.calls[-1] == operation.rpc
    problem = from_exception(refused.value)
    assert (problem.status, list(problem.errors)) == (422, ["department"])
