"""Errors as ``application/problem+json`` (RFC 9457): what a client reads when a call fails.

A ``Problem`` raised anywhere in the gateway becomes its response. An error of the
services' vocabulary (``shared.errors``), raised by a service over RPC or by the gateway's
own validation, is translated by ``from_error`` — by its type, never by its text, except
``InvalidInput`` whose message *is* the field errors. Anything else is a 500 whose body
says only that: no stack trace and no internal message ever leaves the gateway.
"""
import json
import logging

from kombu.exceptions import OperationalError
from nameko.exceptions import RemoteError, UnknownService
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from shared.errors import HuifangError
from shared.rpc import RpcTimeout

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_SECONDS = 5

TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 413: "Content Too Large",
    415: "Unsupported Media Type", 422: "Unprocessable Content", 429: "Too Many Requests",
    500: "Internal Server Error", 503: "Service Unavailable", 504: "Gateway Timeout",
}


class Problem(Exception):
    def __init__(self, status: int, detail: str, errors: dict | None = None,
                 headers: dict | None = None):
        super().__init__(detail)
        self.status, self.detail, self.errors = status, detail, errors
        self.headers = headers or {}

    def body(self) -> dict:
        body = {"type": "about:blank", "title": TITLES.get(self.status, "Error"),
                "status": self.status, "detail": self.detail}
        if self.errors is not None:
            body["errors"] = self.errors
        return body

    def response(self) -> Response:
        return Response(json.dumps(self.body(), ensure_ascii=False), status=self.status,
                        headers=self.headers, mimetype=PROBLEM_JSON)


def invalid(errors: dict) -> Problem:
    return Problem(422, "the request has invalid fields", errors)


def not_found(what: str = "no such resource") -> Problem:
    return Problem(404, what)


def unavailable(status: int, detail: str) -> Problem:
    return Problem(status, detail, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


# What a service's error type means over HTTP.
REMOTE_STATUS = {
    "NotFound": (404, "no such resource"),
    "InvalidTransition": (409, None),          # the message names the current state
    "ConcurrentUpdate": (409, "the record changed meanwhile; read it again and retry"),
    "Forbidden": (403, "not allowed"),
}


def from_error(exc_type: str, message: str) -> Problem:
    """The problem for an error of the services' vocabulary (shared.errors), raised here
    or in a service: known by its type's name; ``InvalidInput``'s message is its fields."""
    if exc_type == "InvalidInput":
        try:
            errors = json.loads(message)
        except (TypeError, ValueError):
            errors = None
        if isinstance(errors, dict):
            return invalid(errors)
    if exc_type in REMOTE_STATUS:
        status, detail = REMOTE_STATUS[exc_type]
        return Problem(status, detail or _transition_detail(message))
    log.error("a service failed: %s", exc_type)
    return Problem(500, "the request could not be completed")


def _transition_detail(message: str) -> str:
    # "cannot close complaint 'c-1': it is registered" names only the action and the state
    return message if isinstance(message, str) and len(message) < 300 else "not allowed now"


def from_exception(exc: Exception) -> Problem:
    """The problem to answer for any exception an entrypoint raised."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, RemoteError):
        return from_error(exc.exc_type, exc.value)
    if isinstance(exc, HuifangError):
        return from_error(type(exc).__name__, str(exc))
    if isinstance(exc, RpcTimeout):
        return unavailable(504, "a service did not answer in time")
    if isinstance(exc, (UnknownService, OperationalError, ConnectionError)):
        return unavailable(503, "a service is not running")
    if isinstance(exc, HTTPException):
        return Problem(exc.code or 500, exc.description or TITLES.get(exc.code, "Error"))
    log.exception("gateway failed: %s", type(exc).__name__)
    return Problem(500, "the request could not be completed")
