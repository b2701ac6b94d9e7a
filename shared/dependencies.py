"""The nameko dependency providers every service uses: its store and its clock.

``Store`` builds the MongoDB client, the event publisher and the service's
repository once per container (``MONGO_URI`` selects a server; without it the
embedded mongomock store is used and the service says, once, that data will
not survive a restart), declares the broker topology before anything can
publish, and runs the outbox relay. It also tells each worker which RPC it runs
(``shared.idempotency``: the request's key is kept in this store).
"""
import logging
import time

import eventlet
import pymongo
from kombu import Connection
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider

from shared import embedded, idempotency, topology
from shared.clock import Clock
from shared.messaging import EventPublisher

log = logging.getLogger(__name__)
_embedded_client = None


def embedded_client(service):
    """The process's one embedded store, shared like a server would be: two
    instances of a service in one process see the same data."""
    global _embedded_client
    if _embedded_client is None:
        _embedded_client = embedded.new_client()
        log.warning(
            "%s: MONGO_URI is not set - using the embedded in-memory store, for trying "
            "the system and for tests (one process; lookups by a declared index's first "
            "key, shared/embedded.py); data will NOT survive a restart", service,
        )
    return _embedded_client


class ClockProvider(DependencyProvider):
    """Gives workers the service's clock (the system clock unless a test swaps it)."""

    def __init__(self, clock=None):
        self.clock = clock or Clock()

    def get_dependency(self, worker_ctx):
        return self.clock


class Store(DependencyProvider):
    """Builds the client, the publisher and the repository once per service."""

    def __init__(self, repository_class, events=True):
        self.repository_class = repository_class
        # False for a service that publishes nothing: no topology to declare, no relay
        self.events = events
        self.relay = self.purger = None

    def setup(self):
        config = self.container.config
        service = self.container.service_name
        uri = config.get("MONGO_URI") or ""
        self.client = pymongo.MongoClient(uri, tz_aware=True) if uri else embedded_client(service)
        database = f"{config.get('MONGO_DB_PREFIX') or 'huifang'}_{service}"
        self.repository = self.repository_class(
            self.client[database], EventPublisher(config),
            outbox_grace_seconds=float(config.get("OUTBOX_GRACE_SECONDS") or 10),
        )
        self.repository.create_indexes()
        # Kept requests expire by a TTL index on MongoDB. mongomock would re-scan every
        # record on each access of a TTL-indexed collection (each RPC): there a thread
        # purges them instead (``start``).
        self.purge_requests = not uri
        if uri:
            self.repository.db[idempotency.REQUESTS].create_indexes(idempotency.INDEXES)

    def worker_setup(self, worker_ctx):
        # runs in the worker's own green thread, before its method (nameko's _run_worker)
        idempotency.CURRENT_CALL.set(idempotency.call_context(worker_ctx))

    def worker_teardown(self, worker_ctx):
        idempotency.CURRENT_CALL.set(None)

    def start(self):
        if self.purge_requests:
            self.purger = self.container.spawn_managed_thread(
                self._purge_forever, identifier="request log purge")
        if not self.events:
            return
        config = self.container.config
        declare_topology(config)
        interval = float(config.get("OUTBOX_RELAY_INTERVAL") or 5)
        self.relay = self.container.spawn_managed_thread(
            lambda: self._relay_forever(interval), identifier="outbox relay")

    def _relay_forever(self, interval):
        while True:
            eventlet.sleep(interval)
            try:
                sent = self.repository.relay_outbox()
                if sent:
                    log.warning("outbox relay re-sent %d event(s)", sent)
            except Exception:
                log.exception("outbox relay failed; will try again")

    def _purge_forever(self):
        while True:
            eventlet.sleep(idempotency.PURGE_SECONDS)
            try:
                idempotency.purge_expired(self.repository.db)
            except Exception:
                log.exception("purging expired requests failed; will try again")

    def stop(self):
        # A pass cut short at most sends an event twice, which consumers absorb.
        for thread in (self.relay, self.purger):
            if thread is not None:
                thread.kill()
        if self.client is not _embedded_client:
            self.client.close()

    def get_dependency(self, worker_ctx):
        return self.repository


def declare_topology(config, attempts=30):
    """Declare every exchange and queue; wait for the broker rather than start without them."""
    for attempt in range(1, attempts + 1):
        try:
            with Connection(config[AMQP_URI_CONFIG_KEY]) as connection:
                topology.declare_all(connection, config)
            return
        except OSError as exc:
            if attempt == attempts:
                raise
            log.warning("RabbitMQ not reachable (%s); retrying", exc)
            time.sleep(1)
