"""Listen on the public event exchanges like an outside consumer would
(used by `make demo`, the benchmark and the tests)."""
import time
import uuid

import eventlet
from kombu import Connection, Consumer, Queue, binding
from nameko.standalone.events import get_event_exchange

from shared.schemas.vocabulary import SERVICES


class EventListener:
    """Binds a private queue to every ``<service>.events`` exchange and records what arrives."""

    def __init__(self, amqp_uri, sources=SERVICES):
        self.events = []
        self.connection = Connection(amqp_uri)
        channel = self.connection.channel()
        exchanges = [get_event_exchange(source, {})(channel) for source in sources]
        for exchange in exchanges:
            exchange.declare()
        queue = Queue(f"test-listener-{uuid.uuid4().hex[:8]}", exclusive=True, auto_delete=True,
                      bindings=[binding(exchange, routing_key="#") for exchange in exchanges])
        self.consumer = Consumer(channel, [queue], callbacks=[self._record], accept=["json"])
        self.consumer.consume()
        self.running = True
        self.thread = eventlet.spawn(self._drain)

    def _record(self, body, message):
        self.events.append(body)
        message.ack()

    def _drain(self):
        while self.running:
            try:
                self.connection.drain_events(timeout=0.1)
            except TimeoutError:
                pass

    def of_type(self, event_type, **data):
        return [event for event in self.events if event["type"] == event_type
                and all(event["data"].get(key) == value for key, value in data.items())]

    def wait_for(self, event_type, timeout=15, count=1, **data):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.of_type(event_type, **data)
            if len(found) >= count:
                return found[count - 1]
            eventlet.sleep(0.05)
        seen = [event["type"] for event in self.events]
        raise AssertionError(f"no {event_type} {data or ''} within {timeout}s; saw {seen}")

    def close(self):
        self.running = False
        self.thread.wait()
        self.connection.release()


def wait_until(condition, timeout=15, interval=0.05, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        eventlet.sleep(interval)
    raise AssertionError(f"{message} not met within {timeout}s")
