"""The gateway's part in idempotent commands: every change carries a ``request_id`` (the
client's ``Idempotency-Key``, else a fresh one), a step the ``expected_status`` asked for;
both documented in the OpenAPI document."""
import json

import pytest
from nameko.exceptions import RemoteError
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway import api, docs
from services.gateway.problems import Problem
from shared.actor import Actor

ADMIN = Actor("u-admin", ("admin",), ())
COMPLAINT = {"estate_id": "e-1", "channel": "hotline", "category": "cleaning",
             "content": "楼道垃圾"}


class Services(api.Services):
    """Records each call's keyword arguments; ``refuse`` answers with a remote error."""

    def __init__(self, refuse=None):
        super().__init__({})
        self.calls, self.refuse = [], refuse

    def call(self, target, *args, **kwargs):
        self.calls.append((target, kwargs))
        if target.split(".")[1].startswith("get_"):
            return {"id": args[0], "estate_id": "e-1", "status": "resolved"}
        if self.refuse:
            raise RemoteError("InvalidInput", json.dumps(self.refuse))
        return {"id": "cmp-1"}


def run(method, path, body=None, headers=None, query=None, services=None):
    request = Request(EnvironBuilder(
        path=api.PREFIX + path, method=method, headers=headers or {}, query_string=query,
        data=json.dumps(body) if body is not None else None,
        content_type="application/json" if body is not None else None).get_environ())
    operation, values = api.match(request.method, request.path)
    services = services or Services()
    response = api.execute(operation, request, values, ADMIN, services, 2_000_000)
    return response, services.calls


def test_the_clients_key_goes_as_request_id():
    response, calls = run("POST", "/complaints", COMPLAINT, {"Idempotency-Key": "reg-0042"})
    assert response.status_code == 201
    assert calls == [("intake.register_complaint", {"request_id": "reg-0042"})]


def test_without_a_key_each_change_gets_a_fresh_one():
    _, first = run("POST", "/complaints", COMPLAINT)
    _, second = run("POST", "/complaints", COMPLAINT)
    keys = [calls[-1][1]["request_id"] for calls in (first, second)]
    assert all(len(key) == 32 for key in keys) and keys[0] != keys[1]


def test_reads_carry_no_key():
    _, calls = run("GET", "/complaints/cmp-1", headers={"Idempotency-Key": "k-1"})
    assert calls == [("intake.get_complaint", {})]


@pytest.mark.parametrize("key", ["", "has space", "x" * 129, "-starts-with-dash", "a/b"])
def test_a_malformed_key_is_422_naming_the_header_and_nothing_is_called(key):
    with pytest.raises(Problem) as problem:
        run("POST", "/complaints", COMPLAINT, {"Idempotency-Key": key})
    assert problem.value.status == 422
    assert list(problem.value.errors) == ["Idempotency-Key"]


def test_a_key_reused_for_another_request_is_422_naming_the_header():
    refused = Services(refuse={"request_id": ["already used for another request"]})
    with pytest.raises(Problem) as problem:
        run("POST", "/complaints", COMPLAINT, {"Idempotency-Key": "reg-1"}, services=refused)
    assert (problem.value.status, list(problem.value.errors)) == (422, ["Idempotency-Key"])


def test_other_invalid_input_is_passed_on_as_it_is():
    refused = Services(refuse={"content": ["must not be blank"]})
    with pytest.raises(RemoteError):       # the entrypoint makes it a 422 on content
        run("POST", "/complaints", COMPLAINT, {"Idempotency-Key": "reg-1"}, services=refused)


def test_a_step_passes_the_state_the_client_saw():
    _, calls = run("POST", "/complaints/cmp-1/close", {"owner_signoff": "satisfied"},
                   {"Idempotency-Key": "close-1"}, query={"expected_status": "resolved"})
    assert calls[-1] == ("intake.close_complaint",
                         {"request_id": "close-1", "expected_status": "resolved"})
    _, calls = run("POST", "/complaints", COMPLAINT, query={"expected_status": "x"})
    assert "expected_status" not in calls[-1][1]     # not a step: not passed on


def test_the_openapi_document_names_the_header_on_every_change():
    paths = docs.openapi_document()["paths"]
    for operation in api.OPERATIONS:
        spec = paths[api.PREFIX + operation.path][operation.method.lower()]
        names = {(parameter["in"], parameter["name"]) for parameter in spec["parameters"]}
        assert (("header", "Idempotency-Key") in names) == (operation.method in api.CHANGES)
        assert (("query", "expected_status") in names) == operation.expects_status


def test_every_change_the_gateway_makes_takes_what_it_sends():
    import importlib
    import inspect

    classes = {"intake": "IntakeService", "revisit": "RevisitService",
               "survey": "SurveyService", "notify": "NotifyService"}
    for operation in api.OPERATIONS:
        if operation.method not in api.CHANGES:
            continue
        service, method = operation.rpc.split(".")
        cls = getattr(importlib.import_module(f"services.{service}.service"), classes[service])
        parameters = inspect.signature(getattr(cls, method)).parameters
        assert "request_id" in parameters, operation.rpc
        assert ("expected_status" in parameters) == operation.expects_status, operation.rpc
