"""nameko's ``http`` entrypoint, made to answer every failure as problem+json.

* A route that matches nothing, or a method a route does not take, is answered by
  the server before any worker runs: 404 / 405, as problem+json.
* An exception an entrypoint raises becomes its problem (``problems.from_exception``).
  A refusal (a problem, the services' errors, a bad route) is routine: nameko logs it as
  one warning line; anything else keeps its traceback, as an error.
* Request bodies are read through ``json_body``: over ``GATEWAY_MAX_BODY`` bytes is 413
  (read no further than the limit), not JSON is 415, malformed is 400, not an object 422.
"""
import json
import logging

from nameko.exceptions import RemoteError
from nameko.web import server as webserver
from nameko.web.handlers import HttpRequestHandler
from nameko.web.server import WebServer, WsgiApp
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import RequestRedirect
from werkzeug.wrappers import Request, Response

from services.gateway.problems import Problem, from_exception
from shared.errors import HuifangError

DEFAULT_MAX_BODY = 2 * 1024 * 1024


class _ProblemWsgiApp(WsgiApp):
    def __call__(self, environ, start_response):
        request = Request(environ, shallow=True)
        adapter = self.url_map.bind_to_environ(environ)
        try:
            provider, values = adapter.match()
        except RequestRedirect as exc:   # a missing trailing slash: let the client follow
            response = exc.get_response(environ)
        except HTTPException as exc:
            response = from_exception(exc).response()
            if exc.code == 405 and exc.valid_methods:
                response.headers["Allow"] = ", ".join(exc.valid_methods)
        else:
            request.path_values = values
            response = provider.handle_request(request)
        return response(environ, start_response)


class GatewayServer(WebServer):
    def get_wsgi_app(self):
        return _ProblemWsgiApp(self)

    def get_wsgi_server(self, sock, wsgi_app, **kwargs):
        server = super().get_wsgi_server(sock, wsgi_app, **kwargs)
        # eventlet formats an access line for every request before its logger may drop it:
        # only when nameko's logger would write it (it is at WARNING in config.yaml)
        server.log_output = logging.getLogger(webserver.__name__).isEnabledFor(logging.INFO)
        return server


class HttpEntrypoint(HttpRequestHandler):
    server = GatewayServer()

    def check_signature(self, args, kwargs):
        # A route always brings the same parameters (the request and its URL's parts), so
        # the method's signature is checked once for each set of them, not on every request.
        checked = self.__dict__.setdefault("_signatures_checked", set())
        names = (len(args), frozenset(kwargs))
        if names not in checked:
            super().check_signature(args, kwargs)
            checked.add(names)

    def response_from_exception(self, exc):
        return from_exception(exc).response()


# A service's own failure arrives as a RemoteError too: the service logged its traceback.
REFUSALS = (Problem, HuifangError, RemoteError, HTTPException)


def http(method: str, url: str, **kwargs):
    """``@http(method, url)``: the gateway's entrypoint, its refusals logged as expected."""
    return HttpEntrypoint.decorator(method, url, expected_exceptions=REFUSALS, **kwargs)


def max_body(config) -> int:
    return int(config.get("GATEWAY_MAX_BODY") or DEFAULT_MAX_BODY)


def json_body(request: Request, limit: int, required: bool = True) -> dict:
    """The request's JSON object; a problem for anything else."""
    if request.content_length is not None and request.content_length > limit:
        raise Problem(413, f"the body is larger than {limit} bytes")
    raw = _read(request, limit)
    if not raw:
        if required:
            raise Problem(422, "the request has invalid fields",
                          {"_schema": ["a JSON object is required"]})
        return {}
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise Problem(415, "send the body as application/json")
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise Problem(400, "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Problem(422, "the request has invalid fields", {"_schema": ["expected an object"]})
    return data


def _read(request: Request, limit: int) -> bytes:
    request.max_content_length = limit
    try:
        data = request.stream.read(limit + 1)
    except RequestEntityTooLarge:
        raise Problem(413, f"the body is larger than {limit} bytes") from None
    if len(data) > limit:
        raise Problem(413, f"the body is larger than {limit} bytes")
    return data


def json_response(data, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(data, ensure_ascii=False), status=status, headers=headers,
                    mimetype="application/json")
