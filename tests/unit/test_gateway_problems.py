"""What a client reads when a call fails: every error class as problem+json."""
import json

import pytest
from kombu.exceptions import OperationalError
from nameko.exceptions import RemoteError, UnknownService
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.exceptions import NotFound as RouteNotFound

from services.gateway.problems import PROBLEM_JSON, Problem, from_exception
from shared.errors import InvalidInput, InvalidTransition, NotFound
from shared.rpc import RpcTimeout


def _answer(exc):
    response = from_exception(exc).response()
    body = json.loads(response.get_data())
    assert response.mimetype == PROBLEM_JSON
    assert body["status"] == response.status_code and body["title"] and body["detail"]
    return response, body


def test_invalid_input_from_a_service_is_422_with_its_field_errors():
    errors = {"channel": ["Must be one of: hotline, visit."], "rows": {"0": {"phone": ["bad"]}}}
    response, body = _answer(RemoteError("InvalidInput", json.dumps(errors)))
    assert response.status_code == 422 and body["errors"] == errors


def test_the_gateways_own_validation_reads_the_same():
    response, body = _answer(InvalidInput({"username": ["already taken"]}))
    assert response.status_code == 422 and body["errors"] == {"username": ["already taken"]}


@pytest.mark.parametrize("error, status", [
    (RemoteError("NotFound", "complaint 'c-1' not found"), 404),
    (NotFound("user", "u-1"), 404),
    (RemoteError("InvalidTransition", "cannot close complaint 'c-1': it is registered"), 409),
    (InvalidTransition("complaint", "c-1", "registered", "close"), 409),
    (RemoteError("ConcurrentUpdate", "complaints 'c-1' changed meanwhile"), 409),
    (RemoteError("Forbidden", "get_contact is for notify"), 403),
    (RouteNotFound(), 404),
    (MethodNotAllowed(valid_methods=["GET"]), 405),
    (Problem(413, "too large"), 413),
])
def test_each_error_class_has_its_status(error, status):
    assert _answer(error)[0].status_code == status


def test_a_forbidden_transition_names_the_current_state_and_nothing_internal():
    _, body = _answer(RemoteError("InvalidTransition",
                                  "cannot close complaint 'c-1': it is registered"))
    assert "registered" in body["detail"]


@pytest.mark.parametrize("error, status", [
    (RpcTimeout("intake.get_complaint did not answer within 10 s"), 504),
    (UnknownService("intake"), 503),
    (OperationalError("connection refused"), 503),
])
def test_a_service_that_does_not_answer_says_when_to_retry(error, status):
    response, body = _answer(error)
    assert response.status_code == status and int(response.headers["Retry-After"]) > 0
    assert "intake" not in body["detail"]     # which internal service failed stays inside


@pytest.mark.parametrize("error", [
    RemoteError("KeyError", "'estate_id'\nTraceback (most recent call last): ..."),
    RemoteError("InvalidInput", "not json"),
    ZeroDivisionError("division by zero"),
])
def test_anything_else_is_a_plain_500_without_internals(error):
    response, _ = _answer(error)
    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and "estate_id" not in text and "division" not in text
