"""An RPC request the service cannot read still gets an answer, at once: ``InvalidInput``
naming what is wrong, instead of a caller waiting out its whole timeout (and, for a body
kombu cannot decode, instead of a dead consumer). Raw messages, sent with kombu as any AMQP
client would: ``reply_to`` and ``correlation_id``, a queue bound to the RPC exchange."""
import json
import time
import uuid
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from kombu import Connection, Exchange, Queue
from nameko.standalone.rpc import ServiceRpcProxy

from services.intake.service import IntakeService
from shared import topology
from shared.dlq import list_dead_letters
from shared.envelope import new_event
from shared.messaging import EventPublisher, handles
from shared.rpc import rpc
from tests.helpers import wait_until

pytestmark = pytest.mark.broker

CLOSED_AT = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

RPC_EXCHANGE = Exchange("nameko-rpc", type="topic", durable=True)


class Echo:
    name = "echo"

    @rpc
    def echo(self, text, times=1):
        return text * times


@pytest.fixture
def echo(service_config, container_factory):
    container = container_factory(Echo, service_config)
    container.start()
    return container


class RawClient:
    """Publishes raw request bodies and reads the reply with the same correlation id."""

    def __init__(self, uri):
        self.connection = Connection(uri)
        self.reply_key = f"raw-{uuid.uuid4().hex}"
        self.replies = Queue(self.reply_key, exchange=RPC_EXCHANGE, routing_key=self.reply_key,
                             auto_delete=True)
        self.received = []
        self.consumer = self.connection.Consumer(
            self.replies, callbacks=[lambda body, message: (self.received.append(
                (message.properties.get("correlation_id"), body)), message.ack())],
            accept=["json"])
        self.consumer.consume()

    def call(self, method, body, content_type="application/json", timeout=1.0, **properties):
        """The reply to ``body`` (bytes or str, sent as is), and how long it took."""
        correlation_id = uuid.uuid4().hex
        started = time.monotonic()
        with self.connection.Producer() as producer:
            producer.publish(body, exchange=RPC_EXCHANGE, routing_key=method,
                             content_type=content_type, content_encoding="utf-8",
                             reply_to=self.reply_key, correlation_id=correlation_id,
                             **properties)
        deadline = started + timeout
        while time.monotonic() < deadline:
            for received_id, reply in self.received:
                if received_id == correlation_id:
                    return reply, time.monotonic() - started
            try:
                self.connection.drain_events(timeout=max(deadline - time.monotonic(), 0.01))
            except TimeoutError:
                break
        raise AssertionError(f"no reply to {body!r} within {timeout} s")

    def close(self):
        self.consumer.cancel()
        self.connection.release()


@pytest.fixture
def raw(service_config):
    client = RawClient(service_config["AMQP_URI"])
    yield client
    client.close()


def refused(reply):
    assert reply["result"] is None
    error = reply["error"]
    assert error["exc_type"] == "InvalidInput", error
    return json.loads(error["value"])


@pytest.mark.parametrize(("body", "content_type", "field"), [
    (b"this is not json", "application/json", "body"),
    (b'{"args": [1, 2', "application/json", "body"),
    (b"\xff\xfe not utf-8", "application/json", "body"),
    (b"[1, 2, 3]", "application/json", "body"),
    (b'"args"', "application/json", "body"),
    (b"null", "application/json", "body"),
    (b'{"kwargs": {}}', "application/json", "args"),
    (b'{"args": []}', "application/json", "kwargs"),
    (b'{"args": "abc", "kwargs": {}}', "application/json", "args"),
    (b'{"args": [], "kwargs": [1]}', "application/json", "kwargs"),
    (b'{"args": [], "kwargs": {}}', "application/json", "args"),              # text missing
    (b'{"args": ["a", 2, 3], "kwargs": {}}', "application/json", "args"),     # one too many
    (b'{"args": ["a"], "kwargs": {"nope": 1}}', "application/json", "args"),  # no such keyword
    (b'{"args": ["a"], "kwargs": {}}', "application/x-python-serialize", "body"),  # not allowed
    (b'{"args": ["a"], "kwargs": {}}', "text/plain", "body"),
    (b"\x00\x01binary", "application/data", "body"),
])
def test_an_unreadable_request_is_answered_invalid_input_at_once(
        echo, raw, body, content_type, field):
    reply, took = raw.call("echo.echo", body, content_type=content_type)
    errors = refused(reply)
    assert field in errors, errors
    assert took < 1.0


def test_the_service_still_answers_after_unreadable_requests(echo, raw, service_config):
    for body in (b"not json", b"[1]", b'{"args": []}'):
        refused(raw.call("echo.echo", body)[0])
    reply, _ = raw.call("echo.echo", json.dumps({"args": ["ab"], "kwargs": {"times": 2}}))
    assert reply == {"result": "abab", "error": None}
    with ServiceRpcProxy("echo", service_config, timeout=5) as proxy:
        assert proxy.echo("x", times=3) == "xxx"


def test_a_request_without_reply_to_is_dropped_not_fatal(echo, raw, service_config):
    with raw.connection.Producer() as producer:
        producer.publish(b"not json", exchange=RPC_EXCHANGE, routing_key="echo.echo",
                         content_type="application/json", content_encoding="utf-8")
    with ServiceRpcProxy("echo", service_config, timeout=5) as proxy:
        assert proxy.echo("still here") == "still here"


def test_a_real_service_answers_unreadable_requests_too(service_config, container_factory, raw):
    container_factory(IntakeService, service_config).start()
    errors = refused(raw.call("intake.get_household", b"{not json")[0])
    assert "body" in errors
    errors = refused(raw.call("intake.import_households",
                              json.dumps({"args": ["e-1"], "kwargs": {}}))[0])
    assert "rows" in errors["args"][0]
    reply, _ = raw.call("intake.get_household", json.dumps({"args": ["h-none"], "kwargs": {}}))
    assert reply["error"]["exc_type"] == "NotFound"


# the same consumer carries events: an undecodable one is dead-lettered, nothing dies ------

class Listener:
    name = "listener"
    seen: ClassVar[list] = []

    @handles("intake", "complaint_closed")
    def on_closed(self, event):
        Listener.seen.append(event["id"])


def test_an_undecodable_event_is_dead_lettered_and_the_handler_goes_on(
        monkeypatch, service_config, container_factory):
    monkeypatch.setitem(topology.SUBSCRIPTIONS, "listener", [("intake", "complaint_closed")])
    Listener.seen = []
    container_factory(Listener, service_config).start()
    with Connection(service_config["AMQP_URI"]) as connection, \
            connection.Producer() as producer:
        producer.publish(b"{not json", exchange=Exchange("intake.events", type="topic",
                                                         durable=True),
                         routing_key="complaint_closed", content_type="application/json",
                         content_encoding="utf-8", message_id="garbage-1")
    wait_until(lambda: list_dead_letters(service_config, "listener"), timeout=5)
    [letter] = list_dead_letters(service_config, "listener")
    assert letter["body"] == "{not json" and "undecodable event" in letter["error"]
    event = new_event("complaint_closed", "intake", "e-1", {
        "complaint_id": "cmp-1", "household_id": "h-1", "category": "cleaning",
        "severity": "normal", "closed_at": CLOSED_AT, "owner_signoff": "satisfied",
        "closing_no": 1}, CLOSED_AT)
    EventPublisher(service_config).publish(event)
    wait_until(lambda: Listener.seen == [event["id"]], timeout=5)
