"""The OpenAPI document of /api/v1 is generated, valid, checked in fresh, and says what
the route table and the shared schemas say."""
import warnings
from pathlib import Path

import pytest
from openapi_spec_validator import validate

from scripts import openapi
from services.gateway import api, docs
from shared.actor import ACTOR_ID_FIELDS
from shared.schemas.base import ID_PATTERN

ROOT = Path(__file__).resolve().parents[2]
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture(scope="module")
def document():
    return docs.openapi_document()


def _operation(document, operation: api.Operation) -> dict:
    return document["paths"][api.PREFIX + operation.path][operation.method.lower()]


def _body_schema(document, spec: dict) -> dict:
    schema = spec["requestBody"]["content"]["application/json"]["schema"]
    name = schema["$ref"].rsplit("/", 1)[1]
    return document["components"]["schemas"][name]


def test_openapi_document_is_checked_in_fresh():
    committed = (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert committed == openapi.render(), "docs/openapi.json is stale: run `make contract`"


def test_the_document_is_valid_openapi(document):
    validate(document)


def test_apispec_builds_it_without_a_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        docs.openapi_document.__wrapped__()      # built afresh, not the cached one
    assert [str(warning.message) for warning in caught
            if "apispec" in warning.filename or "Multiple schemas" in str(warning.message)
            ] == []


@pytest.mark.parametrize("operation", api.OPERATIONS, ids=lambda op: op.name)
def test_every_operation_is_documented_with_its_method_and_status(document, operation):
    spec = _operation(document, operation)
    assert spec["operationId"] == operation.name.replace(".", "_")
    assert str(operation.status) in spec["responses"]
    assert spec["security"] == [{"bearer": []}]


@pytest.mark.parametrize("operation", api.OPERATIONS, ids=lambda op: op.name)
def test_every_operation_documents_its_errors_as_problem_json(document, operation):
    responses = _operation(document, operation)["responses"]
    errors = {code: response for code, response in responses.items() if code >= "400"}
    for code in ("401", "403", "404", "422", "503", "504"):
        assert code in errors, code
    for code, response in errors.items():
        if code == "414":        # the HTTP server's own answer, before the gateway: no body
            assert "content" not in response
        else:
            assert response["content"] == {"application/problem+json": {"schema": PROBLEM_REF}}
    if operation.body is not None:
        assert {"400", "413", "415"} <= set(errors)
    if operation.method != "GET":
        assert "409" in errors


@pytest.mark.parametrize("operation", [op for op in api.OPERATIONS if op.body is not None],
                         ids=lambda op: op.name)
def test_request_bodies_are_the_shared_schemas_without_who_acted(document, operation):
    body = _body_schema(document, _operation(document, operation))
    declared = operation.body().fields
    stamped = {name for name, field in declared.items()
               if name in ACTOR_ID_FIELDS or field.metadata.get("from_actor")}
    assert set(body["properties"]) == set(declared) - stamped
    assert set(body.get("required", ())) == {
        name for name, field in declared.items() if field.required} - stamped
    assert body["additionalProperties"] is False      # unknown fields are refused


def test_registering_a_complaint_needs_no_staff_id(document):
    operation = next(op for op in api.OPERATIONS if op.name == "complaints.register")
    body = _body_schema(document, _operation(document, operation))
    assert {"estate_id", "channel", "category", "content"} <= set(body["properties"])
    assert {"estate_id", "channel", "category", "content"} <= set(body["required"])
    assert "staff_id" not in body["properties"] and "staff_id" not in body["required"]
    assert body["properties"]["channel"]["enum"]            # the shared vocabulary's choices


@pytest.mark.parametrize("operation", api.OPERATIONS, ids=lambda op: op.name)
def test_path_parameters_are_ids_unless_declared(document, operation):
    parameters = {parameter["name"]: parameter for parameter in
                  _operation(document, operation)["parameters"] if parameter["in"] == "path"}
    assert set(parameters) == set(docs._path_params(operation.path))
    for parameter in parameters.values():
        assert parameter["required"] is True
        if operation.params is None:
            assert parameter["schema"] == {"type": "string", "pattern": ID_PATTERN.pattern}


def test_a_month_and_a_period_say_their_pattern(document):
    close = document["paths"]["/api/v1/estates/{estate_id}/sampling/{month}/close"]["post"]
    month = next(p for p in close["parameters"] if p["name"] == "month")
    assert month["schema"]["pattern"].startswith("^")
    stats = document["paths"]["/api/v1/stats/complaints"]["get"]
    period = next(p for p in stats["parameters"] if p["name"] == "period")
    assert period["required"] is True and period["schema"]["pattern"]


def test_lists_pages_and_files_answer_what_the_table_says(document):
    for operation in api.OPERATIONS:
        success = _operation(document, operation)["responses"][str(operation.status)]
        content = success["content"]
        if operation.result == "page":
            assert content["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Page"}
        elif operation.result == "list":
            assert content["application/json"]["schema"]["type"] == "array"
        elif operation.result == "file":
            assert list(content) == [operation.download]
        else:
            assert content["application/json"]["schema"]["type"] == "object"


def test_logins_document_the_throttle():
    document = docs.openapi_document()
    for path in ("/api/v1/auth/token", "/api/v1/auth/session"):
        login = document["paths"][path]["post"]
        assert login["security"] == [] and {"401", "429"} <= set(login["responses"])
