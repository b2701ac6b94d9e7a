"""Test helpers: the services as real processes, an outside consumer of their events, a
caller that retries what the broker cut off (the benchmarks use them too)."""
import itertools
import logging
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import eventlet
import pymongo
from kombu import Connection, Consumer, Queue, binding
from nameko.exceptions import RemoteError
from nameko.standalone.events import get_event_exchange
from nameko.standalone.rpc import ClusterRpcProxy

from scripts.healthcheck import is_serving
from shared.embedded import new_client as new_embedded_client
from shared.schemas.vocabulary import SERVICES

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger(__name__)


def embedded(repository_class):
    """A service's repository on a fresh store, indexes made, publishing nothing.

    The embedded store (mongomock) unless MONGO_URI names a real server, so the
    same suite runs against MongoDB too (a throw-away database per test).
    """
    uri = os.environ.get("MONGO_URI")
    if uri:
        client = pymongo.MongoClient(uri, tz_aware=True)
        database = client[f"test_{uuid.uuid4().hex[:12]}"]
    else:
        database = new_embedded_client()["test"]
    repository = repository_class(database)
    repository.create_indexes()
    return repository


def estates_answered_by_households(intake):
    """A stand-in intake (a ``Mock``) whose ``estates_with_households`` answers from its
    own ``list_households``, as it stands when asked: an estate it raises ``NotFound`` for
    is unknown, one with no household on the first page has none."""
    def estates_with_households(estate_ids, filters=None):
        unknown, empty = [], []
        for estate_id in estate_ids:
            try:
                page = intake.list_households(estate_id, dict(filters or {}, limit=1),
                                              paged=True)
            except RemoteError as error:
                if error.exc_type != "NotFound":
                    raise
                unknown.append(estate_id)
                continue
            if not page["items"]:
                empty.append(estate_id)
        return {"unknown": unknown, "without_households": empty}
    intake.estates_with_households.side_effect = estates_with_households
    return intake


def prepared(survey, round_):
    """A survey round create_round answered (``creating``) once its invitations are written
    and issued: ``survey`` a worker_factory service, whose background work runs here as its
    timer would run it."""
    survey.prepare_rounds()
    return survey.get_round(round_["id"])


def wait_until_prepared(rpc, round_, timeout=30):
    """The same for running services: the round once their timer has prepared it (written,
    and issued if it is open; a scheduled round waits for its opening)."""
    def ready():
        found = rpc.survey.get_round(round_["id"])
        done = found["status"] == "scheduled" or found["progress"]["done"]
        return found if found["status"] != "creating" and done else None
    return wait_until(ready, timeout=timeout, interval=0.1, message=f"round {round_['id']} ready")


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
            with open(self.log_dir / f"{service}.log", "wb") as log:
                self.processes[service] = subprocess.Popen(
                    [str(nameko), "run", "--config", "config.yaml", f"services.{service}.service"],
                    cwd=ROOT, env=self.environment, stdout=log, stderr=subprocess.STDOUT)
        for service in self.services:
            wait_until(lambda name=service: is_serving(self.config, name) or self._died(name),
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


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the broker as an outside consumer and a retrying caller see it ----------------------

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


def close_connections_of(rabbit_manager, vhost):
    """Close every client connection of ``vhost`` (services, proxies, this test's own):
    what a broker does to them when it restarts or a network drops. Through the management
    API, only this vhost's (``rabbitmqctl close_all_connections`` would cut every other user
    of the shared broker too)."""
    closed = 0
    for connection in rabbit_manager.get_connections():
        if connection.get("vhost") == vhost:
            try:
                rabbit_manager.delete_connection(connection["name"])
            except Exception as error:   # noqa: BLE001 - gone meanwhile
                log.info("connection %s: %s", connection["name"], error)
                continue
            closed += 1
    return closed


class RetryingIntakeClient:
    """A caller of intake that retries what the broker cut off, with the same request_id: a
    standalone proxy of its own, made again after each failure."""

    def __init__(self, config):
        self.config, self.runner, self.retries = config, None, 0

    def call(self, method, *args, **kwargs):
        for attempt in itertools.count(1):
            try:
                if self.runner is None:
                    self.runner = ClusterRpcProxy(self.config, timeout=3)
                    self.proxy = self.runner.start()
                return getattr(self.proxy.intake, method)(*args, **kwargs)
            except RemoteError as error:
                if error.exc_type != "ConcurrentUpdate":   # the first try still runs
                    raise
            except Exception as error:   # noqa: BLE001 - a timeout, a dropped connection
                log.info("%s failed (%s); retrying", method, type(error).__name__)
                self.stop()
            assert attempt < 40, f"{method} never got through"
            self.retries += 1
            eventlet.sleep(0.2)

    def stop(self):
        if self.runner is not None:
            try:
                self.runner.stop()
            except Exception as error:   # noqa: BLE001 - its connection is gone already
                log.info("proxy stopped with %s", type(error).__name__)
            self.runner = None


class GatewayClient:
    """Real HTTP to a running gateway, as an API client would use it."""

    ADMIN_PASSWORD = "admin-password-for-tests"

    def __init__(self, base_url, processes):
        import requests

        self.base_url, self.processes = base_url, processes
        self.http = requests.Session()
        self._admin = None

    def url(self, path):
        return self.base_url + path

    def request(self, method, path, token=None, **kwargs):
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return self.http.request(method, self.url(path), headers=headers, timeout=30, **kwargs)

    def login(self, username, password):
        response = self.request("POST", "/api/v1/auth/token",
                                json={"username": username, "password": password})
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    @property
    def admin(self):
        """The first administrator's token (made at the gateway's first start)."""
        if self._admin is None:
            self._admin = self.login("admin", self.ADMIN_PASSWORD)
        return self._admin

    def user(self, username, roles, estates=(), password="password-of-" + "tests"):
        """A new staff account and its token."""
        response = self.request("POST", "/api/v1/users", token=self.admin, json={
            "username": username, "password": password, "roles": list(roles),
            "estates": list(estates)})
        assert response.status_code == 201, response.text
        return self.login(username, password)


class PrivateRabbit:
    """A RabbitMQ node of the test session's own, for tests that stop and start a broker.

    Never the machine's shared broker: its own node name, AMQP and distribution ports,
    Erlang cookie (a private ``HOME``), config, data and log directories under
    ``directory``, no plugins, and none of /etc/rabbitmq's settings. It runs as a child of
    this process, in a session of its own, as whoever runs the tests (the Debian package's
    wrapper, which switches to the ``rabbitmq`` user and shares its cookie, is bypassed).
    """

    START_TIMEOUT = 120

    def __init__(self, directory, scripts):
        self.directory = Path(directory)
        self.scripts = Path(scripts)
        self.node = f"huifang-test-{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.process = None

    @staticmethod
    def scripts_dir():
        """Where rabbitmq-server and rabbitmqctl really live, or None when not installed."""
        import shutil

        found = shutil.which("rabbitmq-server") or shutil.which("rabbitmq-server", path="/usr/sbin")
        if not found:
            return None
        scripts = Path(os.path.realpath(found)).parent   # Debian: the wrapper's /usr/lib/rabbitmq/bin
        if not (scripts / "rabbitmq-server").exists() or not (scripts / "rabbitmqctl").exists():
            return None
        return scripts

    @property
    def amqp_uri(self):
        return self.uri("/")

    def uri(self, vhost):
        from urllib.parse import quote

        return f"pyamqp://guest:guest@127.0.0.1:{self.port}/{quote(vhost, safe='')}"

    def _environment(self):
        base = self.directory
        environment = {key: value for key, value in os.environ.items()
                       if not key.startswith(("RABBITMQ_", "ERL_"))}
        environment.update({
            "HOME": str(base),                        # the Erlang cookie: ours alone
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_CONFIG_FILES": str(base / "conf.d" / "*.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_CRASH_DUMP": str(base / "erl_crash.dump"),
        })
        return environment

    def start(self):
        import shutil

        base = self.directory
        for folder in ("mnesia", "log", "conf.d"):
            (base / folder).mkdir(parents=True, exist_ok=True)
        (base / "rabbitmq-env.conf").write_text("# nothing from /etc/rabbitmq\n")
        # only this listener: RABBITMQ_NODE_PORT would add a second one on the same port
        (base / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
                                            "loopback_users.guest = true\n")
        (base / "enabled_plugins").write_text("[].\n")
        cookie = base / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(uuid.uuid4().hex.upper())
            cookie.chmod(0o400)
        command = [str(self.scripts / "rabbitmq-server")]
        if shutil.which("setpriv"):   # Linux: should this process die without its teardown
            # (a CI timeout), the node gets SIGTERM, rabbitmq-server's own graceful stop
            command = ["setpriv", "--pdeathsig", "TERM", "--", *command]
        with open(base / "server.log", "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=base, env=self._environment(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)           # no terminal signal reaches it
        self._wait_for_port(self.START_TIMEOUT)

    def _port_open(self):
        import socket

        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def _wait_for_port(self, timeout):
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._port_open():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"private RabbitMQ {self.node} exited "
                                   f"({self.process.returncode}):\n{self.log_tail()}")
            time.sleep(0.5)
        raise RuntimeError(f"private RabbitMQ {self.node} did not open port {self.port} "
                           f"within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines=40):
        text = ""
        for log in [self.directory / "server.log", *sorted((self.directory / "log").glob("*.log"))]:
            if log.exists():
                text += f"--- {log.name}\n" + "\n".join(
                    log.read_text(errors="replace").splitlines()[-lines:]) + "\n"
        return text

    def ctl(self, *command, timeout=120):
        """``rabbitmqctl -n <this node> ...``: never the shared node (nor its cookie)."""
        return subprocess.run(
            [str(self.scripts / "rabbitmqctl"), "-q", "-n", self.node, *command],
            cwd=self.directory, env=self._environment(), check=True, timeout=timeout,
            capture_output=True, text=True).stdout

    def running(self):
        return self.process is not None and self.process.poll() is None

    def stop_app(self):
        """The broker goes away (every connection dropped); the Erlang node stays up."""
        self.ctl("stop_app")
        assert not self._port_open(), f"port {self.port} still open after stop_app"

    def start_app(self):
        """The broker comes back; returns once its AMQP port answers."""
        self.ctl("start_app")
        self._wait_for_port(self.START_TIMEOUT)

    def restart(self):
        self.stop_app()
        self.start_app()

    def ensure_started(self):
        if not self._port_open():
            self.start_app()

    def new_vhost(self):
        """A fresh vhost for one test (guest may use it); its AMQP URI."""
        vhost = f"test_{uuid.uuid4().hex[:8]}"
        self.ctl("add_vhost", vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        return self.uri(vhost)

    def stop(self):
        """Stop the node (also after a failed start); kill what is left of it."""
        import signal

        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.ctl("stop", timeout=60)
        except (subprocess.SubprocessError, OSError):
            self.process.terminate()            # rabbitmq-server's own graceful stop
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # its own session: the process group holds only this node's processes
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
