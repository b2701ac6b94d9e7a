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
from collections.abc import Mapping, Sequence
from functools import partial
from types import TracebackType
from typing import Any

import eventlet
from kombu import Connection, Exchange, Producer, Queue
from kombu.pools import connections
from nameko.amqp.publish import Publisher
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.exceptions import ContainerBeingKilled
from nameko.messaging import Consumer
from nameko.standalone.events import get_event_exchange

from shared import topology
from shared.clock import Clock
from shared.consumer import BrokerSafeQueueConsumer
from shared.envelope import Envelope, Event, parse_event
from shared.errors import EXPECTED_ERRORS, InvalidInput

log = logging.getLogger(__name__)

ATTEMPT_HEADER = "x-huifang-attempt"
QUEUE_HEADER = "x-huifang-queue"
ERROR_HEADER = "x-huifang-error"
FAILED_AT_HEADER = "x-huifang-failed-at"


class EventPublisher:
    """Publishes envelopes with confirms; raises if the broker did not take them. Many at
    once with one wait for the broker's confirms: ``publish_batch``."""

    CONFIRM_TIMEOUT = 30   # seconds the broker has to confirm a batch

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

    def publish_batch(self, envelopes: Sequence[Envelope]) -> None:
        """Publish ``envelopes`` (persistent) on a channel in confirm mode: every event sent,
        then the acks collected, instead of a round trip per event; raises unless the broker
        confirmed all."""
        if len(envelopes) <= 1:   # (a channel of its own would cost three round trips more)
            for envelope in envelopes:
                self.publish(envelope)
            return
        with connections[Connection(self.config[AMQP_URI_CONFIG_KEY])].acquire(
                block=True, timeout=self.CONFIRM_TIMEOUT) as connection:
            channel = connection.channel()
            try:
                self._publish_confirmed(connection, channel, envelopes)
            finally:
                channel.close()

    def _publish_confirmed(self, connection: Any, channel: Any,
                           envelopes: Sequence[Envelope]) -> None:
        pending = set(range(1, len(envelopes) + 1))
        refused: list[int] = []

        def acked(delivery_tag: int, multiple: bool) -> None:
            pending.difference_update(
                [tag for tag in pending if tag <= delivery_tag] if multiple else [delivery_tag])

        def nacked(delivery_tag: int, multiple: bool) -> None:
            refused.append(delivery_tag)
            acked(delivery_tag, multiple)

        channel.events["basic_ack"].add(acked)
        channel.events["basic_nack"].add(nacked)
        channel.confirm_select()   # delivery tags count from 1 on this channel
        producer = Producer(channel, serializer="json")
        for envelope in envelopes:
            exchange = get_event_exchange(envelope["source"], self.config)
            producer.publish(envelope, exchange=exchange, routing_key=envelope["type"],
                             message_id=envelope["id"], delivery_mode=2,
                             declare=[exchange], retry=False)
        while pending and not refused:
            connection.drain_events(timeout=self.CONFIRM_TIMEOUT)
        if refused:
            raise RuntimeError(f"the broker refused {len(refused)} of {len(envelopes)} events")


def publish_all(publisher: Any, envelopes: Sequence[Envelope]) -> None:
    """``envelopes`` published with one wait for the broker's confirms when ``publisher``
    can (``publish_batch``), else one at a time (tests' stand-ins); raises unless all went."""
    publish_batch = getattr(publisher, "publish_batch", None)
    if publish_batch is not None:
        publish_batch(envelopes)
        return
    for envelope in envelopes:
        publisher.publish(envelope)


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
        self.hand_over(envelope, message)

    def hand_over(self, envelope: Event, message: Any) -> None:
        """A checked envelope to a worker of its own."""
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
            exc_info: tuple[type[BaseException], BaseException, TracebackType | None] | None
            = None,
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


class BatchEventHandler(ReliableEventHandler):
    """``handles`` for events that are cheaper together (each needs a look-up or a confirm a
    batch can share): the method gets a list of envelopes — those that arrived within
    ``wait`` seconds of the first, at most ``size`` — and returns {event id: exception} of
    those it could not handle. Each of these alone takes the retry → dead-letter path and
    the others are acked; a method that raises sends the whole batch that path (a handler
    is idempotent: a retried event already handled does nothing). The queue's prefetch is
    two batches, so the next one arrives while a worker handles this one.

    With ``batches_at_once``, no more batches than that run together: what arrives
    meanwhile waits and goes as the next batch when one ends. With ``wait=0`` too, an
    event that finds the handler idle goes at once, alone, and under load the batches
    grow by themselves (group commit): no delay when calm, one look-up and one confirm
    a batch in a burst."""

    def __init__(self, source_service: str, event_type: str, size: int = 100,
                 wait: float = 0.05, batches_at_once: int | None = None,
                 **kwargs: Any) -> None:
        self.size, self.wait, self.batches_at_once = size, wait, batches_at_once
        self.prefetch_count = 2 * size   # (``BrokerSafeQueueConsumer`` applies it)
        self._waiting: list[tuple[Event, Any]] = []
        self._running = 0
        super().__init__(source_service, event_type, **kwargs)

    def hand_over(self, envelope: Event, message: Any) -> None:
        self._waiting.append((envelope, message))
        if not self._may_start():
            return   # a running batch's end starts the next
        if len(self._waiting) >= self.size:
            self._start_batch()
        elif len(self._waiting) == 1:   # the first of a batch: it goes after ``wait`` at most
            self.container.spawn_managed_thread(
                partial(self._start_batch_after_wait, self._waiting),
                identifier=f"{self.queue.name}.batch")

    def _may_start(self) -> bool:
        return self.batches_at_once is None or self._running < self.batches_at_once

    def _start_batch_after_wait(self, waiting: list[tuple[Event, Any]]) -> None:
        eventlet.sleep(self.wait)
        # (not started meanwhile for being full, or by the end of a running batch)
        if self._waiting is waiting and self._may_start():
            self._start_batch()

    def _start_batch(self) -> None:
        batch, self._waiting = self._waiting[:self.size], self._waiting[self.size:]
        try:
            self.container.spawn_worker(
                self, ([envelope for envelope, _ in batch],), {},
                context_data=self.unpack_message_headers(batch[0][1]),
                handle_result=partial(self.handle_batch_result, batch))
        except ContainerBeingKilled:
            for _, message in batch:
                self.queue_consumer.requeue_message(message)
            return
        self._running += 1

    def handle_batch_result(
            self, batch: list[tuple[Event, Any]], worker_ctx: Any,
            result: Mapping[str, BaseException] | None = None,
            exc_info: tuple[type[BaseException], BaseException, TracebackType] | None = None,
    ) -> tuple[Any, Any]:
        self._running -= 1
        failed = result or {}
        for envelope, message in batch:
            error = failed.get(envelope["id"])
            self.handle_message_processed(message, None, exc_info or (
                None if error is None else (type(error), error, error.__traceback__)))
        if self._waiting:   # what arrived while this one ran: started beside this worker,
            # not inside it (a full pool would run the next batch within this one, and so on)
            self.container.spawn_managed_thread(self._start_waiting,
                                                identifier=f"{self.queue.name}.batch")
        return result, exc_info

    def _start_waiting(self) -> None:
        while self._waiting and self._may_start():
            self._start_batch()


handles_batch = BatchEventHandler.decorator
# For events that come one per record (a complaint's steps, its revisit): each alone and at
# once while the handler keeps up; in a burst, what arrives while a batch is handled goes
# as the next one, its look-ups and its confirms shared (``handles_batch(..., **AS_THEY_COME)``).
AS_THEY_COME: dict[str, Any] = {"size": 100, "wait": 0, "batches_at_once": 1}
