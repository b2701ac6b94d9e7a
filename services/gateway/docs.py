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
from werkzeug.wrappers import Response

from services.gateway import api
from services.gateway.problems import PROBLEM_JSON, Problem
from shared.actor import ACTOR_ID_FIELDS
from shared.schemas import gateway as account_schemas

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
    "422": "Invalid fields, named in errors", "503": "A service is not running",
    "504": "A service did not answer in time",
}


def _problem_responses(codes) -> dict:
    return {code: {"description": ERRORS[code],
                   "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
            for code in codes}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body_schema(schema_class):
    """The request body as a client writes it: who-acted fields are filled from the login."""
    actor_fields = [name for name in ACTOR_ID_FIELDS if name in schema_class().fields]
    return schema_class(exclude=actor_fields) if actor_fields else schema_class


def _operation_spec(operation: api.Operation) -> dict:
    spec: dict = {
        "operationId": operation.name.replace(".", "_"), "summary": operation.summary,
        "tags": [operation.tag or "other"], "security": [{"bearer": []}],
        "parameters": [{"in": "path", "name": name, "required": True,
                        "schema": {"type": "string"}} for name in _path_params(operation.path)],
    }
    if operation.query is not None:
        spec["parameters"].append({"in": "query", "schema": operation.query})
    if operation.paged and (operation.query is None or "cursor" not in operation.query().fields):
        spec["parameters"] += [
            {"in": "query", "name": "cursor", "schema": {"type": "string"},
             "description": "next_cursor of the page before"}]
    if operation.body is not None:
        spec["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _body_schema(operation.body)}}}
    if operation.result == "page":
        success = _json({"$ref": "#/components/schemas/Page"})
    elif operation.result == "file":
        success = {"description": "The file",
                   "content": {operation.download: {"schema": {"type": "string",
                                                               "format": "binary"}}}}
    else:
        success = _json({"type": "object"})
    codes = ["401", "403", "404", "422", "503", "504"]
    if operation.body is not None:
        codes += ["400", "413", "415"]
    if operation.method == "POST" and "{" in operation.path:
        codes.append("409")
    spec["responses"] = {str(operation.status): success, **_problem_responses(sorted(codes))}
    return spec


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _account_paths(spec: APISpec) -> None:
    def op(summary, tag, body=None, response=None, status="200", secured=True, codes=()):
        result = {"summary": summary, "tags": [tag],
                  "responses": {status: _json(response or {"type": "object"}),
                                **_problem_responses(sorted(set(codes) | {"422"}))}}
        if secured:
            result["security"] = [{"bearer": []}]
            result["responses"].update(_problem_responses(["401"]))
        else:
            result["security"] = []
        if body is not None:
            result["requestBody"] = {"required": True,
                                     "content": {"application/json": {"schema": body}}}
        return result

    user = {"$ref": "#/components/schemas/User"}
    spec.path(path="/api/v1/auth/token", operations={"post": dict(op(
        "Log in: a bearer token", "accounts", account_schemas.Login, {"$ref": "#/components/schemas/Token"},
        secured=False, codes=["400", "401", "413", "415"]), operationId="auth_token")})
    spec.path(path="/api/v1/auth/session", operations={"post": dict(op(
        "Log in from a browser: an HttpOnly session cookie and the CSRF token", "accounts",
        account_schemas.Login, secured=False, codes=["400", "401", "413", "415"]),
        operationId="auth_session")})
    spec.path(path="/api/v1/auth/logout", operations={"post": dict(op(
        "Log out: the token stops working", "accounts"), operationId="auth_logout")})
    spec.path(path="/api/v1/me", operations={"get": dict(op(
        "The logged-in user", "accounts", response=user), operationId="me")})
    spec.path(path="/api/v1/me/password", operations={"post": dict(op(
        "Change one's password (every token issued before stops working)", "accounts",
        account_schemas.PasswordChange, codes=["400", "413", "415"]),
        operationId="change_password")})
    spec.path(path="/api/v1/users", operations={
        "post": dict(op("Create a staff account (administrators)", "accounts",
                        account_schemas.NewUser, user, "201",
                        codes=["400", "403", "413", "415"]), operationId="users_create"),
        "get": dict(op("Staff accounts by username (administrators)", "accounts",
                       response={"$ref": "#/components/schemas/Page"}, codes=["403"]),
                    operationId="users_list",
                    parameters=[{"in": "query", "schema": account_schemas.UserFilters}]),
    })
    user_id = [{"in": "path", "name": "user_id", "required": True, "schema": {"type": "string"}}]
    spec.path(path="/api/v1/users/{user_id}", operations={
        "get": dict(op("A staff account", "accounts", response=user, codes=["403", "404"]),
                    operationId="users_get", parameters=user_id),
        "patch": dict(op("Change roles, estates, name; disable; reset the password",
                         "accounts", account_schemas.UserChanges, user,
                         codes=["400", "403", "404", "413", "415"]),
                      operationId="users_update", parameters=user_id),
    })


@functools.cache
def openapi_document() -> dict:
    spec = APISpec(title=TITLE, version=VERSION, openapi_version="3.0.3",
                   info={"description": DESCRIPTION}, plugins=[MarshmallowPlugin()])
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
