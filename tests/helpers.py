"""Test helpers: the services as real processes, an outside consumer of their events, a
caller that retries what the broker cut off (the benchmarks use them too); records made
through the gateway's API and the console's pages as staff meet them."""
import itertools
import logging
import os
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest.mock import Mock
from zoneinfo import ZoneInfo

import eventlet
import pymongo
from kombu import Connection, Consumer, Queue, binding
from nameko.exceptions import RemoteError
from nameko.standalone.events import get_event_exchange
from nameko.standalone.rpc import ClusterRpcProxy

from scripts.healthcheck import is_serving
from shared.departments import DEFAULT_ROUTING
from shared.embedded import new_client as new_embedded_client
from shared.envelope import new_event, parse_event
from shared.estates import EstateCopies
from shared.messaging import BatchEventHandler
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
    is unknown, one with no household on the first page has none. Its ``list_departments``
    names the default routing's departments."""
    intake.list_departments.return_value = sorted(set(DEFAULT_ROUTING.values()))
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


def estate_copies(store, estate_ids, zone="Asia/Shanghai"):
    """A service's copies of intake's estates (shared/estates.py) on its ``store``, each
    learnt from an ``estate_registered`` as intake announces it; no intake to ask."""
    copies = EstateCopies(store.db, None, zone)
    for estate_id in estate_ids:
        copies.learn(parse_event(new_event(
            "estate_registered", "intake", estate_id,
            {"name": estate_id, "company": None, "region": None, "timezone": zone,
             "revision": 0}, datetime.now(UTC), key=f"{estate_id}@0")))
    return copies


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

    def account(self, username, roles, estates=(), password="password-of-" + "tests",
                **fields):
        """A new staff account (``fields``: more of it, e.g. its ``display_name``), opened
        by the administrator: its id and a token ({"id", "token"})."""
        response = self.request("POST", "/api/v1/users", token=self.admin, json={
            "username": username, "password": password, "roles": list(roles),
            "estates": list(estates), **fields})
        assert response.status_code == 201, response.text
        return {"id": response.json()["id"], "token": self.login(username, password)}

    def user(self, username, roles, estates=(), password="password-of-" + "tests"):
        """A new staff account's token."""
        return self.account(username, roles, estates, password)["token"]


# -- the gateway as staff meet it: records made through the API, the console's pages ------

STAFF_PASSWORD = "password-of-console-tests"
SERVICE_ZONE = ZoneInfo("Asia/Shanghai")     # the console's times, as the staff read them
CSRF_FIELD = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


def api(gateway, method, path, token, **kwargs):
    """``/api/v1{path}`` answered 200 or 201: its JSON."""
    response = gateway.request(method, f"/api/v1{path}", token=token, **kwargs)
    assert response.status_code in (200, 201), response.text
    return response.json()


def household(household_id, building, unit, room, name, phone):
    """One occupied household as the import takes it: its address and one contact."""
    return {"household_id": household_id, "building": building, "unit": unit, "room": room,
            "occupied": True, "contacts": [{"name": name, "phone": phone}]}


def households(estate, count, building="1", unit="1", room="01", phones="1381234",
               owner="业主"):
    """``count`` households of ``estate``, ids ``{estate}-0`` upward: household n in room
    ``{n + 1}{room}``, its contact ``{owner}{n}`` on ``{phones}{n:04d}``."""
    return [household(f"{estate}-{n}", building, unit, f"{n + 1}{room}", f"{owner}{n}",
                      f"{phones}{n:04d}") for n in range(count)]


def households_by_room(estate, building, unit, owners):
    """Households of ``estate`` in one stairway, ids ``{estate}-{room}``: ``owners`` rows
    of (room, name, phone), one household each."""
    return [household(f"{estate}-{room}", building, unit, room, name, phone)
            for room, name, phone in owners]


def register_estate(gateway, estate, name, rows, **record):
    """The administrator imports ``rows`` into ``estate``, registering it as ``name``
    (``record``: more of its record, e.g. ``company``)."""
    response = gateway.request("POST", f"/api/v1/estates/{estate}/households",
                               token=gateway.admin,
                               json={"rows": rows, "estate": {"name": name, **record}})
    assert response.status_code == 200, response.text
    return response.json()


def register_estates(gateway, names, count, **layout):
    """Each estate of ``names`` ({estate: name}) with ``count`` households (``layout``:
    ``households``' keywords)."""
    for estate, name in names.items():
        register_estate(gateway, estate, name, households(estate, count, **layout))


def staff_accounts(gateway, accounts, password=STAFF_PASSWORD):
    """Accounts the administrator opens, each logged in through the API: ``accounts`` rows
    of (username, role, estates, display name or None[, more of the account, e.g. its
    ``department``]); {username: {"id", "token"}}."""
    people = {}
    for username, role, estates, display_name, *more in accounts:
        named = {"display_name": display_name} if display_name else {}
        people[username] = gateway.account(username, [role], estates, password, **named,
                                           **(more[0] if more else {}))
    return people


def register_complaint(gateway, token, estate, household, content, category="cleaning",
                       **fields):
    """A complaint a clerk registers by the hotline (``fields``: more of the request)."""
    response = gateway.request("POST", "/api/v1/complaints", token=token, json={
        "estate_id": estate, "household_id": household, "channel": "hotline",
        "category": category, "content": content, **fields})
    assert response.status_code == 201, response.text
    return response.json()


def close_complaint(gateway, token, complaint_id, note=None, department="环境部",
                    resolution="已处理", signoff="satisfied"):
    """Work a complaint to its close through the API: acknowledged (with ``note``),
    assigned (to ``department``, if any), resolved, closed with the owner's ``signoff``."""
    for action, body in (("acknowledge", {} if note is None else {"note": note}),
                         ("assign", {} if department is None else {"department": department}),
                         ("resolve", {"resolution": resolution}),
                         ("close", {"owner_signoff": signoff})):
        response = gateway.request("POST", f"/api/v1/complaints/{complaint_id}/{action}",
                                   token=token, json=body)
        assert response.status_code == 200, (action, response.text)
    return response.json()


def closed_complaint(gateway, token, estate, household, content, category="cleaning",
                     note=None, department="环境部", resolution="已处理", signoff="satisfied",
                     **fields):
    """A complaint registered and worked to its close (``register_complaint`` and
    ``close_complaint``): the complaint as registered."""
    made = register_complaint(gateway, token, estate, household, content, category, **fields)
    close_complaint(gateway, token, made["id"], note, department, resolution, signoff)
    return made


def revisit_of(gateway, source_id, timeout=30):
    """The revisit of a closed complaint or a finished work order, once revisit has
    scheduled it (it learns of the closing by an event)."""
    return wait_until(lambda: api(gateway, "GET", "/revisits", gateway.admin,
                                  params={"source_id": source_id})["items"],
                      timeout=timeout, interval=0.2, message=f"a revisit of {source_id}")[0]


def complaint_with_its_revisit(gateway, complaint_id, timeout=20):
    """The complaint once intake keeps its revisit on it (from ``revisit_completed``)."""
    def kept():
        found = api(gateway, "GET", f"/complaints/{complaint_id}", gateway.admin)
        return found if found.get("revisits") else None
    return wait_until(kept, timeout=timeout, interval=0.2,
                      message=f"complaint {complaint_id} keeps its revisit")


def unsatisfied_followup(gateway, token, estate, household, activity, comments,
                         satisfaction="unsatisfied"):
    """A community activity held (every one is revisited), its revisit answered
    ``satisfaction`` and unresolved with the owner's ``comments``: the follow-up that
    opened, with its work order and revisit ({"order", "revisit", "followup"})."""
    order = api(gateway, "POST", "/work-orders", token, json={
        "estate_id": estate, "household_id": household, "kind": "community_activity",
        "content": activity})
    api(gateway, "POST", f"/work-orders/{order['id']}/complete", token, json={})
    revisit = revisit_of(gateway, order["id"])
    api(gateway, "POST", f"/revisits/{revisit['id']}/record", token, json={
        "method": "phone", "reached": True, "satisfaction": satisfaction, "resolved": False,
        "comments": comments})
    followup = wait_until(lambda: api(gateway, "GET", "/followups", token,
                                      params={"revisit_id": revisit["id"]})["items"],
                          timeout=30, interval=0.2, message=f"a follow-up of {revisit['id']}")
    return {"order": order, "revisit": revisit, "followup": followup[0]}


def prepared_survey_round(gateway, token, title, estate_ids, days=7):
    """A survey round open from a minute ago for ``days``, once prepared in the
    background (no longer ``creating``): the round as created."""
    now = datetime.now(UTC)
    created = api(gateway, "POST", "/survey/rounds", token, json={
        "title": title, "estate_ids": list(estate_ids),
        "opens_at": (now - timedelta(minutes=1)).isoformat(),
        "closes_at": (now + timedelta(days=days)).isoformat()})
    wait_until(lambda: api(gateway, "GET", f"/survey/rounds/{created['id']}",
                           token)["status"] != "creating",
               timeout=30, interval=0.2, message=f"round {created['id']} prepared")
    return created


def console_login(gateway, username, password=STAFF_PASSWORD, next_url=None, session=None):
    """The console's login form sent (by a new HTTP session, or ``session``): the session
    and the answer."""
    import requests

    session = session or requests.Session()
    form = {"username": username, "password": password,
            **({"next": next_url} if next_url else {})}
    response = session.post(gateway.url("/console/login"), data=form, allow_redirects=False,
                            timeout=30)
    return session, response


def signed_in(gateway, username, password=STAFF_PASSWORD):
    """An HTTP session logged in to the console as ``username``."""
    session, response = console_login(gateway, username, password)
    assert response.status_code == 303, response.text
    return session


def page(session, gateway, path, status=200, **kwargs):
    """A console page answered ``status``; any page but a redirect is HTML under the
    console's CSP (scripts and styles from this site only)."""
    response = session.get(gateway.url(path), allow_redirects=False, timeout=30, **kwargs)
    assert response.status_code == status, response.text[:2000]
    if status != 303:
        assert response.headers["Content-Type"].startswith("text/html")
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "unsafe-inline" not in policy
    return response


def post(session, gateway, path, data, status=303):
    """A console form sent, answered ``status`` (a redirect unless said)."""
    response = session.post(gateway.url(path), data=data, allow_redirects=False, timeout=30)
    assert response.status_code == status, response.text[:2000]
    return response


def csrf(text):
    """The CSRF token of a console page."""
    return CSRF_FIELD.search(text).group(1)


def hidden(text, form_id):
    """The hidden fields of one form on the page (its CSRF token, its own request key, the
    state the page showed)."""
    form = text[text.index(f'id="{form_id}"'):].split("</form>")[0]
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))


def local_input(moment):
    """A moment as a ``datetime-local`` input holds it: the service centre's wall clock."""
    return moment.astimezone(SERVICE_ZONE).strftime("%Y-%m-%dT%H:%M")


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


def one_event_a_batch(container):
    """``container``'s batch handlers (``handles_batch``) take one event at a time: a test
    that cuts a stream of events (a kill, a broker restart) lands mid-stream that way —
    in batches of a hundred the backlog was done before the test could look."""
    for entrypoint in container.entrypoints:
        if isinstance(entrypoint, BatchEventHandler):
            entrypoint.size = entrypoint.prefetch_count = 1
    return container


def handle_one(handler, envelope):
    """``handler`` given one event as the broker would hand it: a batch handler
    (``handles_batch``) a batch of one, raising what it answers failed."""
    if not any(isinstance(entrypoint, BatchEventHandler)
               for entrypoint in getattr(handler, "nameko_entrypoints", ())):
        return handler(envelope)
    failed = handler([envelope])
    if failed:
        raise failed[envelope["id"]]
    return None


def intake_with_contact(contact):
    """A stand-in for intake as notify asks it: ``get_contact`` answers ``contact`` (a test
    may change its return value or side effect) and ``get_contacts`` answers each ref as
    ``get_contact`` would (NotFound: None, any other error: the whole call fails)."""
    intake = Mock(**{"get_contact.return_value": dict(contact)})

    def get_contacts(refs):
        answer = {}
        for ref in refs:
            try:
                answer[ref] = intake.get_contact(ref)
            except RemoteError as exc:
                if exc.exc_type != "NotFound":
                    raise
                answer[ref] = None
        return answer
    intake.get_contacts.side_effect = get_contacts
    return intake
