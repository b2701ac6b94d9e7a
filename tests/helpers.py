"""Test helpers: the services as real processes; the event listener lives in scripts/events.py."""
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pymongo

from scripts.events import EventListener, wait_until  # noqa: F401 (the tests use both)
from scripts.healthcheck import is_serving
from shared.embedded import new_client as new_embedded_client
from shared.schemas.vocabulary import SERVICES

ROOT = Path(__file__).resolve().parents[1]


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
