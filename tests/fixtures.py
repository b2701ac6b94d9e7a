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
    yield from vhost_service_config(request, vhost_pipeline)


def vhost_service_config(request, vhost_pipeline):
    """(A generator for fixtures of any scope.) ``service_config`` on a vhost of its own."""
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
    yield from running_gateway(module_service_config, tmp_path_factory)


def running_gateway(config, tmp_path_factory):
    """(A generator for fixtures of any scope.) The five services and the gateway's client."""
    from tests.helpers import GatewayClient, ServiceProcesses, free_port

    port = free_port()
    processes = ServiceProcesses(
        config, tmp_path_factory.mktemp("services"),
        services=("intake", "revisit", "survey", "notify", "gateway"),
        GATEWAY_ADDRESS=f"127.0.0.1:{port}", HUIFANG_ENV="development",
        HUIFANG_ADMIN_PASSWORD=GatewayClient.ADMIN_PASSWORD, NOTIFY_QUIET_HOURS="",
        RPC_TIMEOUT_SECONDS="10", GATEWAY_LOGIN_DELAY_MS="20", GATEWAY_LOGIN_LOCK_AFTER="5",
        # the links in owners' messages open this gateway (tests/browser follows them)
        NOTIFY_SURVEY_BASE_URL=f"http://127.0.0.1:{port}/s/",
        PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
    try:
        processes.start()
        yield GatewayClient(f"http://127.0.0.1:{port}", processes)
    finally:
        processes.stop()


@pytest.fixture(scope="session")
def private_rabbit(tmp_path_factory):
    """A RabbitMQ node of this test session's own (``tests.helpers.PrivateRabbit``), for
    tests that stop and start a broker: ``stop_app()``, ``start_app()``, ``restart()``,
    ``amqp_uri``, ``new_vhost()``. The machine's shared broker is never touched. Started
    on first use, stopped at the end of the session, whatever happened."""
    from tests.helpers import PrivateRabbit

    scripts = PrivateRabbit.scripts_dir()
    if scripts is None:
        pytest.skip("rabbitmq-server is not installed: outage tests start a RabbitMQ node "
                    "of their own (Debian/Ubuntu: apt-get install rabbitmq-server)")
    node = PrivateRabbit(tmp_path_factory.mktemp("private-rabbit"), scripts)
    try:
        node.start()
        yield node
    finally:
        node.stop()


@pytest.fixture
def private_service_config(private_rabbit):
    """``service_config`` on a fresh vhost of the private node, running again if an
    earlier test left it stopped."""
    private_rabbit.ensure_started()
    return load_config(
        AMQP_URI=private_rabbit.new_vhost(),
        MONGO_DB_PREFIX=f"test_{uuid.uuid4().hex[:8]}",
        EVENT_RETRY_DELAYS_MS=[100, 200],
        OUTBOX_RELAY_INTERVAL=0.2,
    )
