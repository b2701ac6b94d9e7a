"""RPC between the services: the entrypoint, the proxy, and results as JSON.

* ``rpc`` is nameko's entrypoint that knows our expected errors (logged as warnings,
  not crashes) and settles requests through the broker-safe consumer. A write that
  lost its optimistic-lock race every time (``ConcurrentUpdate``) is expected too: the
  caller retries it. (Event handlers retry it themselves through the retry queues.)
* ``RpcProxy`` is nameko's proxy with a deadline: nameko 2.14 waits for a reply for
  ever, so a handler calling a service that is down would hold its worker until the
  service came back. After ``RPC_TIMEOUT_SECONDS`` the call raises ``RpcTimeout``; an
  event handler's message then goes the usual way of failures (retry queue with
  back-off, then the dead-letter queue), so nothing is lost. ``in_own_name=True``
  calls without the acting person (``shared.actor``): the service asks for itself.
* ``ping`` is every service's ``ping()``, the gateway's readiness probe.
* ``not_found_as`` turns another service's ``NotFound`` into this call's own: intake owns
  estates and households, and revisit, survey and notify ask it before acting on one
  (``NotFound`` for what the call is about, ``InvalidInput`` on the field naming it).
* A request nothing can be made of — a body that is not JSON, not ``{"args": [...],
  "kwargs": {...}}``, or arguments that do not fit the method — is answered at once with
  ``InvalidInput`` naming what is wrong (``body``, ``args``, ``kwargs``), never left
  without an answer for its caller to wait out.

RPC results are JSON-able dicts: ids are strings, times ISO 8601 with offset,
no BSON type and no store bookkeeping (outbox, versions) crosses the wire.

A service that asks intake (run by ``nameko run``; here through nameko's
``worker_factory``, intake's answers made up as a unit test would):

>>> from nameko.exceptions import RemoteError
>>> from nameko.testing.services import worker_factory
>>> class Desk:
...     name = "desk"
...     intake = RpcProxy("intake")    # RPC_TIMEOUT_SECONDS, then RpcTimeout
...     ping = ping
...
...     @rpc
...     def household(self, household_id):
...         with not_found_as("household", household_id, field="household_id"):
...             return to_json(self.intake.get_household(household_id))
>>> desk = worker_factory(Desk)
>>> desk.intake.get_household.return_value = {"_id": "h-1", "room": "1201", "version": 3}
>>> desk.household("h-1")
{'id': 'h-1', 'room': '1201'}
>>> desk.intake.get_household.side_effect = RemoteError("NotFound", "household 'h-9'")
>>> desk.household("h-9")
Traceback (most recent call last):
shared.errors.InvalidInput: {"household_id": ["unknown household: h-9"]}
>>> request_problem({"args": []})       # what a request nothing can be made of is told
{'kwargs': ['missing']}
"""
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import SimpleNamespace, TracebackType
from typing import Any

# What nameko passes for a failed call: (type, error, traceback), or None.
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | None

import eventlet
from eventlet.event import Event
from kombu import serialization
from nameko import rpc as nameko_rpc
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import IncorrectSignature, RemoteError

from shared.actor import ACTOR_CONTEXT_KEY
from shared.consumer import CONNECTION_LOST, BrokerSafeQueueConsumer
from shared.errors import EXPECTED_ERRORS, InvalidInput, NotFound
from shared.idempotency import CALL_CONTEXT_KEY
from shared.store import ConcurrentUpdate

log = logging.getLogger(__name__)

RPC_TIMEOUT_CONFIG_KEY = "RPC_TIMEOUT_SECONDS"
DEFAULT_RPC_TIMEOUT_SECONDS = 30

INTERNAL_KEYS = frozenset({"outbox", "outbox_lease", "handled_events", "version",
                           "applied_requests",
                           # revisit's statistics counters (services/revisit/repository.py)
                           "stats_counted", "stats_pending", "stats_unsettled",
                           "stats_settle_after"})


class RpcTimeout(Exception):
    """The called service did not answer in time (it may be down or overloaded)."""


REQUEST_SHAPE = 'expected {"args": [...], "kwargs": {...}}'


def _refusal(errors: dict[str, list[str]]) -> ExcInfo:
    """``InvalidInput`` as the ``exc_info`` nameko's ``handle_result`` answers with."""
    error = InvalidInput(errors)
    return type(error), error, None


def request_problem(body: object) -> dict[str, list[str]] | None:
    """What makes ``body`` no RPC request (field errors), or None."""
    if not isinstance(body, dict):
        return {"body": [REQUEST_SHAPE]}
    errors: dict[str, list[str]] = {}
    if not isinstance(body.get("args"), list):
        errors["args"] = ["missing" if "args" not in body else "expected a list"]
    if not isinstance(body.get("kwargs"), dict):
        errors["kwargs"] = ["missing" if "kwargs" not in body else "expected an object"]
    return errors or None


class _Responder(nameko_rpc.Responder):
    """nameko's responder, for requests nothing could be read from too: answered in JSON
    unless they came in a serialization the service accepts (nameko answered in whatever
    the request named — pickle — and raised on a type with no serializer, which killed the
    service), and not at all when they name nowhere to answer (``reply_to``)."""

    message: Any     # nameko's, the request answered

    def __init__(self, *args: Any, accept: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.content_types = {serialization.registry.name_to_type[name] for name in accept
                              if name in serialization.registry.name_to_type}

    def send_response(self, result: Any, exc_info: ExcInfo) -> tuple[Any, ExcInfo]:
        properties = self.message.properties
        if not properties.get("reply_to"):
            return result, exc_info
        if properties.get("content_type") not in self.content_types:
            self.message = SimpleNamespace(
                properties=dict(properties, content_type="application/json"))
        return super().send_response(result, exc_info)


class _RpcConsumer(nameko_rpc.RpcConsumer):
    queue_consumer = BrokerSafeQueueConsumer()

    def handle_undecodable(self, message: Any, exc: Exception) -> None:
        """A body kombu could not decode (``BrokerSafeQueueConsumer``): answered, not dropped."""
        log.warning("unreadable RPC request to %s: %s",
                    message.delivery_info.get("routing_key"), exc)
        self.handle_result(message, None, _refusal({"body": [f"not a JSON RPC request: {exc}"[:300]]}))

    def handle_result(self, message: Any, result: Any, exc_info: ExcInfo) -> tuple[Any, ExcInfo]:
        config = self.container.config
        responder = _Responder(
            config[AMQP_URI_CONFIG_KEY], nameko_rpc.get_rpc_exchange(config),
            config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER), message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY), login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
            accept=self.container.accept)
        try:
            result, exc_info = responder.send_response(result, exc_info)
        except CONNECTION_LOST as exc:
            # the request was not acked, so the broker hands it out again
            log.warning("reply lost with the broker connection: %s", exc)
            return result, exc_info
        self.queue_consumer.ack_message(message)
        return result, exc_info


class _Rpc(nameko_rpc.Rpc):
    rpc_consumer = _RpcConsumer()

    def __init__(self, **kwargs: Any) -> None:
        # set here: nameko drops decorator arguments when ``@rpc`` is used bare
        kwargs.setdefault("expected_exceptions", (*EXPECTED_ERRORS, ConcurrentUpdate))
        super().__init__(**kwargs)

    def handle_message(self, body: Any, message: Any) -> None:
        # nameko answered these with a KeyError or TypeError of its own, or not at all
        problem = request_problem(body)
        if problem:
            log.warning("malformed RPC request to %s: %s", self.method_name, problem)
            raise InvalidInput(problem)
        super().handle_message(body, message)

    def check_signature(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            super().check_signature(args, kwargs)
        except IncorrectSignature as exc:
            raise InvalidInput({"args": [str(exc)]}) from None

    def unpack_message_headers(self, message: Any) -> dict[str, Any]:
        # the worker learns its message's correlation id: a redelivered request carries the
        # same one (shared.idempotency), whatever a header claims
        data = super().unpack_message_headers(message)
        data.pop(CALL_CONTEXT_KEY, None)
        correlation_id = message.properties.get("correlation_id")
        if isinstance(correlation_id, str):
            data[CALL_CONTEXT_KEY] = correlation_id
        return data


rpc = _Rpc.decorator


@rpc
def ping(self: Any) -> dict:
    """Answers at once and touches nothing: the gateway's /readyz asks each service.

    Each service class says ``ping = ping``: a shared mixin class would be found by
    ``nameko run`` in the service's module and taken for a service of its own.
    """
    return {"service": self.name}


class _ReplyListener(nameko_rpc.ReplyListener):
    """nameko's reply listener with a table of its own (``waiting``) of the calls that wait
    for a reply, so that a call that gave up (``RpcTimeout``) can be taken out of it through
    the extension's public methods rather than nameko's private one."""

    queue_consumer = BrokerSafeQueueConsumer()
    # a reply is acked and handed to its waiting caller, never blocking: in the consumer
    handles_inline = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.waiting: dict[str, Event] = {}   # correlation id -> the event its caller waits on

    def get_reply_event(self, correlation_id: str) -> Event:
        reply_event = Event()
        reply_event.correlation_id = correlation_id
        self.waiting[correlation_id] = reply_event
        return reply_event

    def handle_message(self, body: Any, message: Any) -> None:
        self.queue_consumer.ack_message(message)
        reply_event = self.waiting.pop(message.properties.get("correlation_id"), None)
        if reply_event is not None:
            reply_event.send(body)
        else:   # a reply to a call that gave up waiting
            log.debug("reply to no waiting call: %s", message.properties.get("correlation_id"))

    def forget(self, reply_event: Event) -> None:
        """Stop waiting for a reply that came too late to be used."""
        self.waiting.pop(reply_event.correlation_id, None)


class _TimedReply(nameko_rpc.RpcReply):
    resp_body: Any   # nameko's: the reply, once it came
    def __init__(self, reply_event: Event, reply_listener: _ReplyListener, timeout: float,
                 call: str) -> None:
        super().__init__(reply_event)
        self.reply_listener = reply_listener
        self.timeout = timeout
        self.call = call

    def result(self) -> Any:
        if self.resp_body is None:
            try:
                with eventlet.Timeout(self.timeout, RpcTimeout(
                        f"{self.call} did not answer within {self.timeout} s")):
                    self.resp_body = self.reply_event.wait()
            except RpcTimeout:
                self.reply_listener.forget(self.reply_event)
                raise
        return super().result()


class _MethodProxy(nameko_rpc.MethodProxy):
    def __init__(self, worker_ctx: Any, service_name: str, method_name: str,
                 reply_listener: _ReplyListener, timeout: float, in_own_name: bool = False,
                 **options: Any) -> None:
        super().__init__(worker_ctx, service_name, method_name, reply_listener, **options)
        self.timeout = timeout
        self.in_own_name = in_own_name

    def get_message_headers(self, worker_ctx: Any) -> dict[str, Any]:
        headers = super().get_message_headers(worker_ctx)
        headers.pop(self._get_header_name(CALL_CONTEXT_KEY), None)   # this call's, not ours
        if self.in_own_name:
            headers.pop(self._get_header_name(ACTOR_CONTEXT_KEY), None)
        return headers

    def _call(self, *args: Any, **kwargs: Any) -> _TimedReply:
        reply = super()._call(*args, **kwargs)
        return _TimedReply(reply.reply_event, self.reply_listener, self.timeout,
                           f"{self.service_name}.{self.method_name}")


class _ServiceProxy(nameko_rpc.ServiceProxy):
    def __getattr__(self, name: str) -> _MethodProxy:
        return _MethodProxy(self.worker_ctx, self.service_name, name, self.reply_listener,
                            **self.options)


class RpcProxy(nameko_rpc.RpcProxy):
    """``RpcProxy("intake")``; ``in_own_name=True``: the acting person stays behind."""

    rpc_reply_listener = _ReplyListener()

    def get_dependency(self, worker_ctx: Any) -> _ServiceProxy:
        timeout = self.options.get("timeout") or self.container.config.get(
            RPC_TIMEOUT_CONFIG_KEY, DEFAULT_RPC_TIMEOUT_SECONDS)
        options = dict(self.options, timeout=float(timeout))
        return _ServiceProxy(worker_ctx, self.target_service, self.rpc_reply_listener,
                             **options)


@contextmanager
def not_found_as(kind: str, ident: str, field: str | None = None) -> Iterator[None]:
    """A ``NotFound`` from the service called inside as this service's own: ``NotFound``
    (``kind`` ``ident``), or with ``field`` (an input's field named it) ``InvalidInput`` on
    that field. Every other remote error goes on as it came."""
    try:
        yield
    except RemoteError as error:
        if error.exc_type != "NotFound":
            raise
        if field is not None:
            raise InvalidInput({field: [f"unknown {kind}: {ident}"]}) from None
        raise NotFound(kind, ident) from None


def to_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            ("id" if key == "_id" else key): to_json(item)
            for key, item in value.items() if key not in INTERNAL_KEYS
        }
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value
