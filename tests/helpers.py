"""Test helpers: listen on the public event exchanges like an outside consumer."""
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import eventlet
from kombu import Connection, Consumer, Queue, binding
from nameko.standalone.events import get_event_exchange

from scripts.healthcheck import is_serving
from shared.schemas.vocabulary import SERVICES

ROOT = Path(__file__).resolve().parents[1]


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
            except socket.timeout:
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


class ServiceProcesses:
    """The four services as separate ``nameko run`` processes, as ``make run`` starts them."""

    def __init__(self, config, log_dir, services=SERVICES, **environment):
        self.config = config
        self.log_dir = Path(log_dir)
        self.services = services
        self.environment = {
            **os.environ,
            "AMQP_URI": config["AMQP_URI"],
            "MONGO_DB_PREFIX": config.get("MONGO_DB_PREFIX", "huifang"),
            "OUTBOX_RELAY_INTERVAL": "1",
            "LOG_LEVEL": "INFO",
            **environment,
        }
        self.processes = {}

    def start(self, timeout=60):
        nameko = Path(sys.executable).parent / "nameko"
        for service in self.services:
            log = open(self.log_dir / f"{service}.log", "wb")
            self.processes[service] = subprocess.Popen(
                [str(nameko), "run", "--config", "config.yaml", f"services.{service}.service"],
                cwd=ROOT, env=self.environment, stdout=log, stderr=subprocess.STDOUT)
        for service in self.services:
            wait_until(lambda: is_serving(self.config, service) or self._died(service),
                       timeout=timeout, interval=0.2, message=f"{service} serving")
            assert not self._died(service), f"{service} died:\n{self.log(service)}"

    def _died(self, service):
        return self.processes[service].poll() is not None

    def log(self, service):
        return (self.log_dir / f"{service}.log").read_text(encoding="utf-8", errors="replace")

    def stop(self):
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
