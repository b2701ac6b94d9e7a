"""Reliable messaging over nameko (README: "Nothing lost, nothing done twice").

* ``EventPublisher`` publishes envelopes on ``<service>.events`` with
  publisher confirms, persistent, routing key = event type.
* ``handles(source, event_type)`` is nameko's event handler made safe: the
  envelope is validated, a failing handler's message goes to a retry queue
  with back-off (``EVENT_RETRY_DELAYS_MS``), after the last retry to the
  service's dead-letter queue, and only then is the original acked. Nothing
  is lost (nameko acks on error) and nothing loops hot (``requeue_on_error``).
  Malformed envelopes (bodies that are not even JSON too) and errors that no retry
  can fix (``EXPECTED_ERRORS``) go to the dead-letter queue at once.

A subscription (listed in ``shared/topology.py``) and where its failures go; the handler
gets the envelope checked, ``data`` loaded (here called as a unit test calls it):

>>> from datetime import UTC, datetime
>>> from nameko.containers import ServiceContainer
>>> from nameko.testing.services import worker_factory
>>> from nameko.testing.utils import get_extension
>>> from shared.envelope import new_event, parse_event
>>> class Notify:
...     name = "notify"
...
...     @handles("intake", "complaint_resolved")
...     def tell_owner(self, event):
...         return event["data"]["complaint_id"], event["data"]["resolved_at"].year
>>> config = {"AMQP_URI": "amqp://guest:guest@127.0.0.1:5672/",
...           "EVENT_RETRY_DELAYS_MS": [1000, 60000]}
>>> container = ServiceContainer(Notify, config)
>>> handler = get_extension(container, ReliableEventHandler)
>>> handler.setup()                 # declares nothing yet: no broker needed
>>> handler.queue.name, handler.retry_delays
('notify.intake.complaint_resolved', (1000, 60000))
>>> at = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
>>> resolved = new_event("complaint_resolved", "intake", "estate-1", {
...     "complaint_id": "cmp-1", "staff_id": "s-7", "resolved_at": at}, at, key="cmp-1/4")
>>> worker_factory(Notify).tell_owner(parse_event(resolved))
('cmp-1', 2026)
>>> EventPublisher(config).publish(resolved)      # doctest: +SKIP
"""
import logging
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from kombu import Exchange, Queue
from nameko.amqp.publish import Publisher
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.messaging import Consumer
from nameko.standalone.events import get_event_exchange

from shared import topology
from shared.clock import Clock
from shared.consumer import BrokerSafeQueueConsumer
from shared.envelope import Envelope, parse_event
from shared.errors import EXPECTED_ERRORS, InvalidInput

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-huifang-attempt"
QUEUE_HEADER = "x-huifang-queue"
ERROR_HEADER = "x-huifang-error"
FAILED_AT_HEADER = "x-huifang-failed-at"


class EventPublisher:
    """Publishes envelopes with confirms; raises if the broker did not take them."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.publisher = Publisher(config[AMQP_URI_CONFIG_KEY], use_confirms=True, serializer="json")

    def publish(self, envelope: Envelope) -> None:
        self.publisher.publish(
            envelope,
            exchange=get_event_exchange(envelope["source"], self.config),
            routing_key=envelope["type"],
            message_id=envelope["id"],
        )


def send_to_queue(publisher: Publisher, queue: str, body: Any, headers: Mapping[str, Any],
                  exchange: str = "") -> None:
    """Publish straight to a queue (through the default exchange unless told)."""
    publisher.publish(body, exchange=exchange, routing_key=queue, headers=headers)


class ReliableEventHandler(Consumer):
    queue_consumer = BrokerSafeQueueConsumer()

    def __init__(self, source_service: str, event_type: str, **kwargs: Any) -> None:
        self.source_service = source_service
        self.event_type = event_type
        kwargs.setdefault("expected_exceptions", EXPECTED_ERRORS)
        super().__init__(queue=None, requeue_on_error=False, **kwargs)

    def setup(self) -> None:
        service = self.container.service_name
        subscription = (self.source_service, self.event_type)
        if subscription not in topology.SUBSCRIPTIONS.get(service, ()):
            raise RuntimeError(
                f"{service} handles {subscription} but shared/topology.py does not list it"
            )
        config = self.container.config
        self.queue = topology.event_queue(service, *subscription, config)
        self.retry_delays = topology.retry_delays(config)
        # Where failed events go is declared with every hand-over, so it exists
        # even if this service started before anything declared the topology.
        declare: list[Exchange | Queue] = [topology.dead_letter_queue(service, config)]
        for delay in self.retry_delays:
            declare += [topology.retry_exchange(service, delay),
                        topology.retry_queue(service, delay, config)]
        self.publisher = Publisher(config[AMQP_URI_CONFIG_KEY], use_confirms=True,
                                   serializer="json", declare=declare)
        super().setup()

    def handle_message(self, body: Any, message: Any) -> None:
        try:
            envelope = parse_event(body)
        except InvalidInput as exc:
            self._give_up(message, body, f"malformed event: {exc}")
            return
        if envelope["type"] != self.event_type:
            self._give_up(message, body, f"unexpected event type {envelope['type']!r}")
            return
        super().handle_message(envelope, message)

    def handle_undecodable(self, message: Any, exc: Exception) -> None:
        """A body kombu could not decode (``BrokerSafeQueueConsumer``): dead-lettered at once,
        as text, like any malformed event (nameko's default dropped it)."""
        body = message.body
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        self._give_up(message, body, f"undecodable event: {exc}")

    def handle_message_processed(
            self, message: Any, result: Any = None,
            exc_info: tuple[type[BaseException], BaseException, TracebackType] | None = None,
    ) -> None:
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            return
        error = "".join(traceback.format_exception_only(exc_info[0], exc_info[1])).strip()
        attempt = int(message.headers.get(ATTEMPT_HEADER, 0)) + 1
        if issubclass(exc_info[0], EXPECTED_ERRORS) or attempt > len(self.retry_delays):
            self._give_up(message, message.payload, error, attempt)
        else:
            self._retry_later(message, error, attempt)

    def _retry_later(self, message: Any, error: str, attempt: int) -> None:
        delay = self.retry_delays[attempt - 1]
        log.warning("%s failed (attempt %d), retrying in %d ms: %s",
                    self.queue.name, attempt, delay, error)
        headers = dict(message.headers, **{ATTEMPT_HEADER: attempt, ERROR_HEADER: error[:1000]})
        self._forward(message, message.payload, headers,
                      exchange=topology.retry_exchange_name(self.container.service_name, delay))

    def _give_up(self, message: Any, body: Any, error: str, attempt: int = 1) -> None:
        service = self.container.service_name
        log.error("%s: event moved to %s after %d attempt(s): %s",
                  self.queue.name, topology.dead_letter_queue_name(service), attempt, error)
        headers = dict(message.headers, **{
            ATTEMPT_HEADER: attempt,
            ERROR_HEADER: error[:1000],
            QUEUE_HEADER: self.queue.name,
            FAILED_AT_HEADER: Clock().now().isoformat(),
        })
        self._forward(message, body, headers, queue=topology.dead_letter_queue_name(service))

    def _forward(self, message: Any, body: Any, headers: Mapping[str, Any], exchange: str = "",
                 queue: str | None = None) -> None:
        """Hand the message on (confirmed) before acking it; if that fails, keep it queued."""
        try:
            send_to_queue(self.publisher, queue or self.queue.name, body, headers, exchange)
        except Exception:
            log.exception("could not forward a failed event; it stays in %s", self.queue.name)
            self.queue_consumer.requeue_message(message)
            return
        self.queue_consumer.ack_message(message)


handles = ReliableEventHandler.decorator
