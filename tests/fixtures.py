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


@pytest.fixture(scope="module")
def module_service_config(request, vhost_pipeline):
    """``service_config`` for a whole test module: its own vhost, shared by its tests."""
    from urllib.parse import urlparse

    uri = urlparse(request.config.getoption("RABBIT_AMQP_URI"))
    with vhost_pipeline.get() as vhost:
        yield load_config(
            AMQP_URI=f"{uri.scheme}://{uri.netloc}/{vhost}",
            MONGO_DB_PREFIX=f"test_{uuid.uuid4().hex[:8]}",
            EVENT_RETRY_DELAYS_MS=[100, 200],
            OUTBOX_RELAY_INTERVAL=0.2,
        )


@pytest.fixture(scope="module")
def gateway(module_service_config, tmp_path_factory):
    """The five services as ``make run`` starts them, the gateway on a free local port;
    shared by a module's tests (each makes its own estates and users)."""
    from tests.helpers import GatewayClient, ServiceProcesses, free_port

    port = free_port()
    processes = ServiceProcesses(
        module_service_config, tmp_path_factory.mktemp("services"),
        services=("intake", "revisit", "survey", "notify", "gateway"),
        GATEWAY_ADDRESS=f"127.0.0.1:{port}", HUIFANG_ENV="development",
        HUIFANG_ADMIN_PASSWORD=GatewayClient.ADMIN_PASSWORD, NOTIFY_QUIET_HOURS="",
        RPC_TIMEOUT_SECONDS="10", GATEWAY_LOGIN_DELAY_MS="20", GATEWAY_LOGIN_LOCK_AFTER="5")
    try:
        processes.start()
        yield GatewayClient(f"http://127.0.0.1:{port}", processes)
    finally:
        processes.stop()
