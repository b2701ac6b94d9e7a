"""nameko's queue consumer, made to outlive a broker connection that drops mid-ack.

nameko 2.14 settles messages guarded only against amqp's own ``ConnectionError``. A
socket that the broker reset (``ConnectionResetError``, ``BrokenPipeError``) escapes
from the worker thread and kills the whole service container — seen in CI when
RabbitMQ restarted under load. Ignoring it is right: an unacked message goes back to
its queue when the connection dies, comes again on the new connection, and every
handler here is idempotent.

A body kombu cannot decode (not JSON, a content type we do not accept) is handed to the
entrypoint that consumes its queue (``handle_undecodable``): an RPC answers the caller
``InvalidInput``, an event handler dead-letters it. nameko's default only logged and acked
it, so an RPC caller waited out its whole timeout for an answer that never came.

Every entrypoint and RPC proxy of ours shares this one consumer (nameko shares
extensions by class), so a service still holds a single consuming connection.
"""
import logging
from functools import partial
from typing import Any

from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.exceptions import OperationalError
from nameko.messaging import QueueConsumer

log = logging.getLogger(__name__)

CONNECTION_LOST = (OSError, AmqpConnectionError, OperationalError)


class BrokerSafeQueueConsumer(QueueConsumer):
    def ack_message(self, message: Any) -> None:
        try:
            super().ack_message(message)
        except CONNECTION_LOST as exc:
            log.warning("ack lost with the broker connection (%s); the broker redelivers", exc)

    def requeue_message(self, message: Any) -> None:
        try:
            super().requeue_message(message)
        except CONNECTION_LOST as exc:
            log.warning("requeue lost with the broker connection (%s); the broker redelivers", exc)

    def handle_message(self, provider: Any, body: Any, message: Any) -> None:
        # A provider that only hands its message on (an RPC reply to the caller waiting for
        # it) is run here: a thread of its own would cost more than its work, and a wait.
        if getattr(provider, "handles_inline", False):
            provider.handle_message(body, message)
            return
        super().handle_message(provider, body, message)

    def get_consumers(self, consumer_cls: Any, channel: Any) -> Any:
        consumers = super().get_consumers(consumer_cls, channel)
        for provider, consumer in self._consumers.items():
            consumer.on_decode_error = partial(self._undecodable, provider)
            prefetch = getattr(provider, "prefetch_count", None)
            if prefetch:   # an entrypoint that takes its messages several at once
                consumer.consume = partial(_consume_prefetching, consumer, consumer.consume,
                                           prefetch, self.prefetch_count)
        return consumers

    def _undecodable(self, provider: Any, message: Any, exc: Exception) -> None:
        """A message kombu could not decode: its entrypoint answers for it, if it can."""
        handle = getattr(provider, "handle_undecodable", None)
        if handle is None:
            self.on_decode_error(message, exc)    # kombu's default: logged and acked
            return
        self.container.spawn_managed_thread(partial(handle, message, exc),
                                            identifier=f"{type(provider).__name__}.undecodable")


def _consume_prefetching(consumer: Any, consume: Any, prefetch: int, usual: int,
                         *args: Any, **kwargs: Any) -> Any:
    """Start ``consumer`` with its own prefetch: the broker applies a channel's prefetch to
    the consumers started after it is set, so it is set just before, and back after."""
    consumer.qos(prefetch_count=prefetch)
    try:
        return consume(*args, **kwargs)
    finally:
        consumer.qos(prefetch_count=usual)
