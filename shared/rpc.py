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

RPC results are JSON-able dicts: ids are strings, times ISO 8601 with offset,
no BSON type and no store bookkeeping (outbox, versions) crosses the wire.
"""
import logging
from datetime import datetime

import eventlet
from nameko import rpc as nameko_rpc

from shared.actor import ACTOR_CONTEXT_KEY
from shared.consumer import CONNECTION_LOST, BrokerSafeQueueConsumer
from shared.errors import EXPECTED_ERRORS
from shared.store import ConcurrentUpdate

log = logging.getLogger(__name__)

RPC_TIMEOUT_CONFIG_KEY = "RPC_TIMEOUT_SECONDS"
DEFAULT_RPC_TIMEOUT_SECONDS = 30

INTERNAL_KEYS = frozenset({"outbox", "outbox_lease", "handled_events", "version"})


class RpcTimeout(Exception):
    """The called service did not answer in time (it may be down or overloaded)."""


class _RpcConsumer(nameko_rpc.RpcConsumer):
    queue_consumer = BrokerSafeQueueConsumer()

    def handle_result(self, message, result, exc_info):
        try:
            return super().handle_result(message, result, exc_info)
        except CONNECTION_LOST as exc:
            # the request was not acked, so the broker hands it out again
            log.warning("reply lost with the broker connection: %s", exc)
            return result, exc_info


class _Rpc(nameko_rpc.Rpc):
    rpc_consumer = _RpcConsumer()

    def __init__(self, **kwargs):
        # set here: nameko drops decorator arguments when ``@rpc`` is used bare
        kwargs.setdefault("expected_exceptions", (*EXPECTED_ERRORS, ConcurrentUpdate))
        super().__init__(**kwargs)


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
