"""The nameko dependency providers every service uses: its store and its clock.

``Store`` wires, once per container, parts each found and tested on its own: the
MongoDB client (``shared.database``: a server's, or the embedded store), the event
publisher (``shared.messaging``), the service's repository over them, the broker
topology declared before anything can publish (``declare_topology``), and the
background threads (``shared.background``: the outbox relay; on the embedded store the
purge of expired request records). It also tells each worker which RPC it runs
(``shared.idempotency``: the request's key is kept in this store).

>>> from nameko.containers import ServiceContainer
>>> from nameko.testing.utils import get_extension
>>> from shared.clock import FrozenClock
>>> from shared.store import Repository
>>> class Notes(Repository):
...     def add(self, text):
...         self.db.notes.insert_one({"_id": text})
...         return self.db.notes.count_documents({})
>>> class Noter:
...     name = "noter"
...     notes = Store(Notes, events=False)     # publishes nothing: no relay, no topology
...     clock = ClockProvider()
>>> container = ServiceContainer(Noter, {"AMQP_URI": "memory://", "MONGO_DB_PREFIX": "demo"})
>>> store = get_extension(container, Store)
>>> store.setup()          # no MONGO_URI: the embedded store (and a warning that says so)
>>> notes = store.get_dependency(worker_ctx=None)
>>> notes.db.name, notes.add("回访已约")
('demo_noter', 1)
>>> from datetime import UTC, datetime
>>> at = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
>>> ClockProvider(FrozenClock(at)).get_dependency(worker_ctx=None).now()   # a test's clock
datetime.datetime(2026, 11, 23, 2, 0, tzinfo=datetime.timezone.utc)
"""
import gc
import logging
import time
from functools import partial
from typing import Any

from kombu import Connection
from nameko.constants import AMQP_URI_CONFIG_KEY
from nameko.extensions import DependencyProvider

from shared import background, database, idempotency, topology
from shared.clock import Clock
from shared.messaging import EventPublisher
from shared.store import Repository

log = logging.getLogger(__name__)


class ClockProvider(DependencyProvider):
    """Gives workers the service's clock (the system clock unless a test swaps it)."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()

    def get_dependency(self, worker_ctx: Any) -> Clock:
        return self.clock


# A service keeps many objects all its life (on the embedded store, every document). With
# Python's default thresholds (700, 10, 10) a full collection walked them all about once a
# second under load — 100-250 ms each with a few thousand complaints, the process stalled
# meanwhile (the close -> notice p99) —; young collections every 20,000 allocations leave
# the full ones for when the heap has really grown.
GC_THRESHOLDS = (20_000, 20, 10)


class Store(DependencyProvider):
    """Gives workers the service's repository; builds it and its parts once per container."""

    def __init__(self, repository_class: type[Repository], events: bool = True) -> None:
        self.repository_class = repository_class
        # False for a service that publishes nothing: no topology to declare, no relay
        self.events = events
        self.relay: Any = None
        self.purger: Any = None

    def setup(self) -> None:
        gc.set_threshold(*GC_THRESHOLDS)
        config = self.container.config
        service = self.container.service_name
        self.client = database.open_client(config, service)
        self.repository = self.repository_class(
            self.client[database.database_name(config, service)], EventPublisher(config),
            outbox_grace_seconds=float(config.get("OUTBOX_GRACE_SECONDS") or 10),
        )
        self.repository.create_indexes()
        # Kept requests expire by a TTL index on MongoDB. mongomock would re-scan every
        # record on each access of a TTL-indexed collection (each RPC): there a thread
        # purges them instead (``start``).
        self.purge_requests = database.is_embedded(self.client)
        if not self.purge_requests:
            self.repository.db[idempotency.REQUESTS].create_indexes(idempotency.INDEXES)

    def worker_setup(self, worker_ctx: Any) -> None:
        # runs in the worker's own green thread, before its method (nameko's _run_worker)
        idempotency.CURRENT_CALL.set(idempotency.call_context(worker_ctx))

    def worker_teardown(self, worker_ctx: Any) -> None:
        idempotency.CURRENT_CALL.set(None)

    def start(self) -> None:
        if self.purge_requests:
            self.purger = self.container.spawn_managed_thread(partial(
                background.forever, partial(idempotency.purge_expired, self.repository.db),
                idempotency.PURGE_SECONDS, "purging expired requests"),
                identifier="request log purge")
        if not self.events:
            return
        config = self.container.config
        declare_topology(config)
        self.relay = self.container.spawn_managed_thread(partial(
            background.forever, partial(background.relay_outbox, self.repository),
            float(config.get("OUTBOX_RELAY_INTERVAL") or 5), "outbox relay"),
            identifier="outbox relay")

    def stop(self) -> None:
        # A pass cut short at most sends an event twice, which consumers absorb.
        for thread in (self.relay, self.purger):
            if thread is not None:
                thread.kill()
        database.close_client(self.client)

    def get_dependency(self, worker_ctx: Any) -> Repository:
        return self.repository


def declare_topology(config: dict[str, Any], attempts: int = 30) -> None:
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
