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
"""
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import SimpleNamespace

import eventlet
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


def _refusal(errors):
    """``InvalidInput`` as the ``exc_info`` nameko's ``handle_result`` answers with."""
    error = InvalidInput(errors)
    return type(error), error, None


def request_problem(body):
    """What makes ``body`` no RPC request (field errors), or None."""
    if not isinstance(body, dict):
        return {"body": [REQUEST_SHAPE]}
    errors = {}
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

    def __init__(self, *args, accept=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.content_types = {serialization.registry.name_to_type[name] for name in accept
                              if name in serialization.registry.name_to_type}

    def send_response(self, result, exc_info):
        properties = self.message.properties
        if not properties.get("reply_to"):
            return result, exc_info
        if properties.get("content_type") not in self.content_types:
            self.message = SimpleNamespace(
                properties=dict(properties, content_type="application/json"))
        return super().send_response(result, exc_info)


class _RpcConsumer(nameko_rpc.RpcConsumer):
    queue_consumer = BrokerSafeQueueConsumer()

    def handle_undecodable(self, message, exc):
        """A body kombu could not decode (``BrokerSafeQueueConsumer``): answered, not dropped."""
        log.warning("unreadable RPC request to %s: %s",
                    message.delivery_info.get("routing_key"), exc)
        self.handle_result(message, None, _refusal({"body": [f"not a JSON RPC request: {exc}"[:300]]}))

    def handle_result(self, message, result, exc_info):
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

    def __init__(self, **kwargs):
        # set here: nameko drops decorator arguments when ``@rpc`` is used bare
        kwargs.setdefault("expected_exceptions", (*EXPECTED_ERRORS, ConcurrentUpdate))
        super().__init__(**kwargs)

    def handle_message(self, body, message):
        # nameko answered these with a KeyError or TypeError of its own, or not at all
        problem = request_problem(body)
        if problem:
            log.warning("malformed RPC request to %s: %s", self.method_name, problem)
            raise InvalidInput(problem)
        super().handle_message(body, message)

    def check_signature(self, args, kwargs):
        try:
            super().check_signature(args, kwargs)
        except IncorrectSignature as exc:
            raise InvalidInput({"args": [str(exc)]}) from None

    def unpack_message_headers(self, message):
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
def ping(self) -> dict:
    """Answers at once and touches nothing: the gateway's /readyz asks each service.

    Each service class says ``ping = ping``: a shared mixin class would be found by
    ``nameko run`` in the service's module and taken for a service of its own.
    """
    return {"service": self.name}


class _ReplyListener(nameko_rpc.ReplyListener):
    queue_consumer = BrokerSafeQueueConsumer()

    def get_reply_event(self, correlation_id):
        reply_event = super().get_reply_event(correlation_id)
        reply_event.correlation_id = correlation_id
        return reply_event

    def forget(self, reply_event):
        """Stop waiting for a reply that came too late to be used."""
        self._reply_events.pop(reply_event.correlation_id, None)


class _TimedReply(nameko_rpc.RpcReply):
    def __init__(self, reply_event, reply_listener, timeout, call):
        super().__init__(reply_event)
        self.reply_listener = reply_listener
        self.timeout = timeout
        self.call = call

    def result(self):
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
    def __init__(self, worker_ctx, service_name, method_name, reply_listener, timeout,
                 in_own_name=False, **options):
        super().__init__(worker_ctx, service_name, method_name, reply_listener, **options)
        self.timeout = timeout
        self.in_own_name = in_own_name

    def get_message_headers(self, worker_ctx):
        headers = super().get_message_headers(worker_ctx)
        headers.pop(self._get_header_name(CALL_CONTEXT_KEY), None)   # this call's, not ours
        if self.in_own_name:
            headers.pop(self._get_header_name(ACTOR_CONTEXT_KEY), None)
        return headers

    def _call(self, *args, **kwargs):
        reply = super()._call(*args, **kwargs)
        return _TimedReply(reply.reply_event, self.reply_listener, self.timeout,
                           f"{self.service_name}.{self.method_name}")


class _ServiceProxy(nameko_rpc.ServiceProxy):
    def __getattr__(self, name):
        return _MethodProxy(self.worker_ctx, self.service_name, name, self.reply_listener,
                            **self.options)


class RpcProxy(nameko_rpc.RpcProxy):
    """``RpcProxy("intake")``; ``in_own_name=True``: the acting person stays behind."""

    rpc_reply_listener = _ReplyListener()

    def get_dependency(self, worker_ctx):
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


def to_json(value):
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
