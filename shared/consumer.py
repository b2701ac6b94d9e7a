"""nameko's queue consumer, made to outlive a broker connection that drops mid-ack.

nameko 2.14 settles messages guarded only against amqp's own ``ConnectionError``. A
socket that the broker reset (``ConnectionResetError``, ``BrokenPipeError``) escapes
from the worker thread and kills the whole service container — seen in CI when
RabbitMQ restarted under load. Ignoring it is right: an unacked message goes back to
its queue when the connection dies, comes again on the new connection, and every
handler here is idempotent.

Every entrypoint and RPC proxy of ours shares this one consumer (nameko shares
extensions by class), so a service still holds a single consuming connection.
"""
import logging

from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.exceptions import OperationalError
from nameko.messaging import QueueConsumer

log = logging.getLogger(__name__)

CONNECTION_LOST = (OSError, AmqpConnectionError, OperationalError)


class BrokerSafeQueueConsumer(QueueConsumer):
    def ack_message(self, message):
        try:
            super().ack_message(message)
        except CONNECTION_LOST as exc:
            log.warning("ack lost with the broker connection (%s); the broker redelivers", exc)

    def requeue_message(self, message):
        try:
            super().requeue_message(message)
        except CONNECTION_LOST as exc:
            log.warning("requeue lost with the broker connection (%s); the broker redelivers", exc)
