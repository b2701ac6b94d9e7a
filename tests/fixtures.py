"""Fixtures shared by the suite: a service config on a throw-away vhost."""
import uuid

import pytest

from shared.config import load_config


@pytest.fixture
def service_config(rabbit_config):
    """config.yaml as the services read it, on this test's own vhost, with short back-off."""
    return load_config(
        AMQP_URI=rabbit_config["AMQP_URI"],
        MONGO_DB_PREFIX=f"test_{uuid.uuid4().hex[:8]}",
        EVENT_RETRY_DELAYS_MS=[100, 200],
        OUTBOX_RELAY_INTERVAL=0.2,
    )


@pytest.fixture
def listener(service_config):
    from tests.helpers import EventListener

    events = EventListener(service_config["AMQP_URI"])
    yield events
    events.close()
