"""The OpenAPI 3 document of ``/api/v1``, generated from the route table and the shared
marshmallow schemas (apispec's marshmallow plugin), and the readable docs at ``/docs``:
Swagger UI from the ``swagger-ui-bundle`` package, served by the gateway itself because
estates often run without outside internet.
"""
import functools
import json
import mimetypes
from pathlib import Path

import swagger_ui_bundle
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from eventlet.wsgi import MAX_REQUEST_LINE
from marshmallow import Schema, fields, validate
from werkzeug.wrappers import Response

from services.gateway import api
from services.gateway.problems import PROBLEM_JSON, Problem
from shared.actor import ACTOR_ID_FIELDS
from shared.periods import PERIOD
from shared.schemas import gateway as account_schemas
from shared.schemas import revisit
from shared.schemas.base import ACTOR_FIELD, ID_PATTERN, Id, Period
from shared.schemas.base import Schema as BaseSchema

TITLE = "Huifang API"
VERSION = "1.0.0"
ASSETS = Path(swagger_ui_bundle.swagger_ui_path)
SHIPPED_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js",
                  "favicon-32x32.png", "favicon-16x16.png")

DESCRIPTION = """\
The REST API of Huifang: complaints, work orders, revisits (回访), satisfaction surveys
and notices of a property group's estates.

Log in with `POST /api/v1/auth/token` and send `Authorization: Bearer <access_token>`
with every other call. What you may do depends on your roles; what you see, on your
estates: a record of another estate answers 404 and never appears in a list. Who acted
is always the logged-in user, whatever a body says (`staff_id`, `closed_by`, … may be
left out). Errors are `application/problem+json` (RFC 9457); invalid input is 422 with
`errors` {field: [message]}. Lists take `limit` and `cursor` and answer
`{"items": [...], "next_cursor": ...}`; pass `next_cursor` back as `cursor` for the next page.

Every POST, PUT and PATCH takes an `Idempotency-Key` header (your own key, 1-128 letters,
digits, `_ . : -`): sent again with the same request, whose answer you did not get, it
changes nothing twice and answers as the first time; with another request it is 422 naming
the header, malformed also 422. Without one, each request is new. A state-machine step
(complaint actions, completing or cancelling a work order, booking or recording a revisit,
closing a round, moving a rectification on) takes `?expected_status=` the state you saw:
a step already done by you answers the record as it is; another state is 409.
"""

PROBLEM_SCHEMA = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "errors": {"type": "object", "additionalProperties": {}},
    },
}
PAGE_SCHEMA = {
    "type": "object", "required": ["items", "next_cursor"],
    "properties": {"items": {"type": "array", "items": {"type": "object"}},
                   "next_cursor": {"type": "string", "nullable": True}},
}
USER_SCHEMA = {
    "type": "object", "required": ["id", "username", "roles", "estates"],
    "properties": {"id": {"type": "string"}, "username": {"type": "string"},
                   "display_name": {"type": "string", "nullable": True},
                   "roles": {"type": "array", "items": {"type": "string"}},
                   "estates": {"type": "array", "items": {"type": "string"}},
                   "disabled": {"type": "boolean"}},
}
TOKEN_SCHEMA = {
    "type": "object", "required": ["access_token", "token_type", "expires_in", "user"],
    "properties": {"access_token": {"type": "string"}, "token_type": {"type": "string"},
                   "expires_in": {"type": "integer"}, "user": {"$ref": "#/components/schemas/User"}},
}

ERRORS = {
    "400": "Malformed JSON", "401": "Not logged in, or the token is invalid",
    "403": "Your role or estates do not allow it", "404": "No such resource (or not yours)",
    "409": "The state forbids it now, or the record changed meanwhile",
    "413": "Body too large", "415": "Not application/json",
    "422": "Invalid fields, named in errors",
    "429": "Too many failed logins: try again after Retry-After seconds",
    "503": "A service is not running", "504": "A service did not answer in time",
}
# Answered by the HTTP server itself, before the gateway sees the request: no body.
URL_TOO_LONG = {"414": {"description": f"The URL is longer than the server reads "
                                       f"({MAX_REQUEST_LINE} bytes with the request line)"}}
# Every call can meet these; a body adds the body's, a change the state's (409).
COMMON_ERRORS = ("401", "403", "404", "422", "503", "504")
BODY_ERRORS = ("400", "413", "415")
IDEMPOTENCY_HEADER = {
    "in": "header", "name": api.IDEMPOTENCY_KEY, "required": False,
    "description": "Your key for this request: repeated with the same request, it changes "
                   "nothing twice and answers as the first time (kept 24 hours).",
    "schema": {"type": "string", "pattern": ID_PATTERN.pattern, "maxLength": 128},
}
# Input fields whose value is a regular expression checked inside the field's own code.
FIELD_PATTERNS = {Period: PERIOD, revisit.Month: revisit.MONTH}
NOT_BLANK = r"\S"    # free text (``Text``) says something: not whitespace alone


def _problem_responses(codes) -> dict:
    """The problem+json answers for ``codes``, and the server's own 414."""
    return {**{code: {"description": ERRORS[code], "content": {
        PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
        for code in sorted(set(codes))}, **URL_TOO_LONG}


def _field_pattern(self, field: fields.Field, **kwargs) -> dict:
    """apispec attribute function: the pattern a custom field checks in its own code, and
    free text's (``Text``: something besides whitespace)."""
    if any(isinstance(rule, validate.Predicate) and rule.method == "strip"
           for rule in field.validators):
        return {"minLength": 1, "pattern": NOT_BLANK}
    pattern = next((regex for kind, regex in FIELD_PATTERNS.items()
                    if isinstance(field, kind)), None)
    return {"pattern": pattern.pattern} if pattern else {}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body_schema(schema_class):
    """The request body as a client writes it: who-acted fields (and a rung the actor
    stands on) are filled from the login, whatever a body says (shared/actor.py)."""
    actor_fields = [name for name, field in schema_class().fields.items()
                    if name in ACTOR_ID_FIELDS or field.metadata.get(ACTOR_FIELD)]
    return schema_class(exclude=actor_fields) if actor_fields else schema_class


def _path_schema(path: str, declared: type[Schema] | None = None) -> type[Schema]:
    """The path's parameters as a schema: as ``declared``, else each one an id."""
    names = _path_params(path)
    if declared is not None:
        assert set(declared().fields) == set(names), f"{path}: {declared.__name__} differs"
        return declared
    return BaseSchema.from_dict({name: Id(required=True) for name in names},
                                name="PathIds")


def _operation_spec(operation: api.Operation) -> dict:
    spec: dict = {
        "operationId": operation.name.replace(".", "_"), "summary": operation.summary,
        "tags": [operation.tag or "other"], "security": [{"bearer": []}],
        "parameters": [{"in": "path", "schema": _path_schema(operation.path, operation.params)}],
    }
    if operation.query is not None:
        spec["parameters"].append({"in": "query", "schema": operation.query})
    if operation.paged and (operation.query is None or "cursor" not in operation.query().fields):
        spec["parameters"] += [
            {"in": "query", "name": "cursor", "schema": {"type": "string"},
             "description": "next_cursor of the page before"}]
    if operation.method in api.CHANGES:
        spec["parameters"].append(dict(IDEMPOTENCY_HEADER))
    if operation.expects_status:
        spec["parameters"].append({
            "in": "query", "name": api.EXPECTED_STATUS, "required": False,
            "schema": {"type": "string"},
            "description": "The state you saw the record in: if it is in another, 409 (unless "
                           "it is the outcome of this very step by you: answered as it is)"})
    if operation.body is not None:
        spec["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _body_schema(operation.body)}}}
    if operation.result == "page":
        success = _json({"$ref": "#/components/schemas/Page"})
    elif operation.result == "list":
        success = _json({"type": "array", "items": {"type": "object"}})
    elif operation.result == "file":
        success = {"description": "The file",
                   "content": {operation.download: {"schema": {"type": "string",
                                                               "format": "binary"}}}}
    else:
        success = _json({"type": "object"})
    codes = list(COMMON_ERRORS)
    if operation.body is not None:
        codes += BODY_ERRORS
    if operation.method != "GET":
        codes.append("409")
    spec["responses"] = {str(operation.status): success, **_problem_responses(codes)}
    return spec


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _account_paths(spec: APISpec) -> None:
    def op(name, summary, body=None, response=None, status="200", secured=True, codes=()):
        codes = {*codes, "422", *(BODY_ERRORS if body is not None else ())}
        result = {"operationId": name, "summary": summary, "tags": ["accounts"],
                  "security": [{"bearer": []}] if secured else [],
                  "responses": {status: _json(response or {"type": "object"}),
                                **_problem_responses(codes | ({"401", "403"} if secured else set()))}}
        if body is not None:
            result["requestBody"] = {"required": True,
                                     "content": {"application/json": {"schema": body}}}
        return result

    user, login = {"$ref": "#/components/schemas/User"}, account_schemas.Login
    # a wrong password counts against the username and the address: 401, then 429
    spec.path(path="/api/v1/auth/token", operations={"post": op(
        "auth_token", "Log in: a bearer token", login, {"$ref": "#/components/schemas/Token"},
        secured=False, codes=["401", "429"])})
    spec.path(path="/api/v1/auth/session", operations={"post": op(
        "auth_session", "Log in from a browser: an HttpOnly session cookie and the CSRF token",
        login, secured=False, codes=["401", "429"])})
    spec.path(path="/api/v1/auth/logout", operations={"post": op(
        "auth_logout", "Log out: the token stops working")})
    spec.path(path="/api/v1/me", operations={"get": op(
        "me", "The logged-in user", response=user)})
    spec.path(path="/api/v1/me/password", operations={"post": op(
        "change_password", "Change one's password (every token issued before stops working)",
        account_schemas.PasswordChange)})
    spec.path(path="/api/v1/users", operations={
        "post": op("users_create", "Create a staff account (administrators)",
                   account_schemas.NewUser, user, "201"),
        "get": dict(op("users_list", "Staff accounts by username (administrators)",
                       response={"$ref": "#/components/schemas/Page"}),
                    parameters=[{"in": "query", "schema": account_schemas.UserFilters}]),
    })
    def user_id():   # a list of its own each time: apispec expands it in place
        return [{"in": "path", "schema": _path_schema("/users/{user_id}")}]

    spec.path(path="/api/v1/users/{user_id}", operations={
        "get": dict(op("users_get", "A staff account", response=user, codes=["404"]),
                    parameters=user_id()),
        "patch": dict(op("users_update", "Change roles, estates, name; disable; reset the "
                         "password", account_schemas.UserChanges, user, codes=["404"]),
                      parameters=user_id()),
    })


@functools.cache
def openapi_document() -> dict:
    plugin = MarshmallowPlugin()
    spec = APISpec(title=TITLE, version=VERSION, openapi_version="3.0.3",
                   info={"description": DESCRIPTION}, plugins=[plugin])
    plugin.converter.add_attribute_function(_field_pattern)
    spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer",
                                               "bearerFormat": "JWT"})
    spec.components.schema("Problem", PROBLEM_SCHEMA)
    spec.components.schema("Page", PAGE_SCHEMA)
    spec.components.schema("User", USER_SCHEMA)
    spec.components.schema("Token", TOKEN_SCHEMA)
    _account_paths(spec)
    paths: dict[str, dict] = {}
    for operation in api.OPERATIONS:
        paths.setdefault(api.PREFIX + operation.path, {})[operation.method.lower()] = \
            _operation_spec(operation)
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    # a round trip through JSON: exactly what /openapi.json serves
    return json.loads(json.dumps(spec.to_dict(), ensure_ascii=False))


DOCS_PAGE = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Huifang API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<noscript><p>The API documentation needs JavaScript; the document itself is
<a href="/openapi.json">/openapi.json</a>.</p></noscript>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
<script>
window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  validatorUrl: null, presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
  layout: "StandaloneLayout"});
</script>
</body>
</html>
"""


def docs_page() -> Response:
    return Response(DOCS_PAGE, mimetype="text/html")


def asset(name: str) -> Response:
    if name not in SHIPPED_ASSETS:
        raise Problem(404, "no such asset")
    mimetype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response((ASSETS / name).read_bytes(), mimetype=mimetype,
                    headers={"Cache-Control": "public, max-age=86400"})
