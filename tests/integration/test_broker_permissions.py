"""The five services as `make up` runs them: each logged in as its own RabbitMQ user with
the permissions of deploy/rabbitmq/definitions.json (made here, under unique names, in
this module's vhost). They must start, call each other, hand events on and dead-letter
what fails, and be refused whatever belongs to another service."""
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
from amqp.exceptions import AccessRefused
from kombu import Connection, Exchange, Producer
from nameko.amqp.publish import Publisher

from tests.helpers import ROOT, GatewayClient, ServiceProcesses, free_port, wait_until

pytestmark = pytest.mark.broker

DEFINITIONS = json.loads((ROOT / "deploy/rabbitmq/definitions.json").read_text())
KINDS = ("configure", "write", "read")


class Deployment:
    def __init__(self, gateway: GatewayClient, uris: dict, processes: list):
        self.gateway, self.uris, self.processes = gateway, uris, processes

    def logs(self) -> str:
        return "\n".join(process.log(name) for process in self.processes
                         for name in process.services)


@pytest.fixture(scope="module")
def deployment(module_service_config, rabbit_manager, tmp_path_factory):
    uri = urlparse(module_service_config["AMQP_URI"])
    vhost = uri.path.lstrip("/")
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    uris, made = {}, []
    for entry in DEFINITIONS["permissions"]:
        user, password = f"{prefix}-{entry['user']}", uuid.uuid4().hex
        rabbit_manager._put("users", user, json={"password": password, "tags": ""})
        made.append(user)
        rabbit_manager._put("permissions", vhost, user,
                            json={kind: entry[kind] for kind in KINDS})
        uris[entry["user"]] = f"{uri.scheme}://{user}:{password}@{uri.hostname}:{uri.port}/{vhost}"
    port, logs = free_port(), tmp_path_factory.mktemp("restricted")
    processes = [ServiceProcesses(
        module_service_config, logs, services=(name,), AMQP_URI=uris[name],
        GATEWAY_ADDRESS=f"127.0.0.1:{port}", HUIFANG_ENV="development",
        HUIFANG_ADMIN_PASSWORD=GatewayClient.ADMIN_PASSWORD, NOTIFY_QUIET_HOURS="",
        RPC_TIMEOUT_SECONDS="10") for name in uris]
    try:
        for process in processes:
            process.start()
        yield Deployment(GatewayClient(f"http://127.0.0.1:{port}", processes[-1]), uris,
                         processes)
    finally:
        for process in processes:
            process.stop()
        for user in made:
            rabbit_manager._delete("users", user)


def test_every_service_starts_and_answers_as_its_own_user(deployment):
    ready = deployment.gateway.request("GET", "/readyz")
    assert ready.status_code == 200, ready.text
    assert "ACCESS_REFUSED" not in deployment.logs()


def test_calls_and_events_pass_between_the_services(deployment):
    gateway = deployment.gateway
    households = gateway.request("POST", "/api/v1/estates/perm-1/households", token=gateway.admin,
                                 json={"rows": [{"household_id": "perm-h-1", "building": "1",
                                                 "unit": "1", "room": "101", "occupied": True,
                                                 "contacts": [{"name": "王芳",
                                                               "phone": "13912345678"}]}],
                                       "estate": {"name": "金色家园"}})
    assert households.status_code == 200, households.text
    complaint = gateway.request("POST", "/api/v1/complaints", token=gateway.admin, json={
        "estate_id": "perm-1", "household_id": "perm-h-1", "channel": "hotline",
        "category": "public_facilities", "content": "楼道灯坏了"}).json()
    cid = complaint["id"]

    def deliveries():   # intake's event, consumed by notify, who asks intake for the number
        return gateway.request("GET", "/api/v1/notify/deliveries", token=gateway.admin,
                               params={"ref": cid}).json()["items"]
    [apology] = wait_until(deliveries, timeout=30, message="the apology")
    assert apology["status"] == "sent"
    for action, body in (("acknowledge", {"note": "致歉"}), ("assign", {}),
                         ("resolve", {"resolution": "换了灯"}),
                         ("close", {"owner_signoff": "none"})):
        done = gateway.request("POST", f"/api/v1/complaints/{cid}/{action}",
                               token=gateway.admin, json=body)
        assert done.status_code == 200, done.text

    def revisits():     # intake's complaint_closed, consumed by revisit
        return gateway.request("GET", "/api/v1/revisits", token=gateway.admin,
                               params={"source_id": cid}).json()["items"]
    assert wait_until(revisits, timeout=30, message="the revisit")
    assert "ACCESS_REFUSED" not in deployment.logs()


def test_a_malformed_event_is_dead_lettered_by_its_consumers_user(deployment,
                                                                   module_service_config):
    with Connection(module_service_config["AMQP_URI"]) as connection:   # an outsider's mistake
        Producer(connection.channel()).publish(
            {"not": "an envelope"}, exchange=Exchange("revisit.events", type="topic",
                                                      durable=True),
            routing_key="revisit_unsatisfied", declare=[])

    def dead_letters():
        result = subprocess.run(
            [str(Path(sys.executable).parent / "huifang-dlq"), "list", "intake"], cwd=ROOT,
            env={**os.environ, "AMQP_URI": deployment.uris["intake"]}, check=False,
            capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return "1 dead letter(s) in intake.dead-letter" in result.stderr
    wait_until(dead_letters, timeout=30, message="the dead letter")


def test_a_user_may_not_forge_another_services_events_or_take_its_messages(deployment):
    with pytest.raises(AccessRefused):
        Publisher(deployment.uris["intake"], use_confirms=True, serializer="json").publish(
            {"forged": True}, exchange=Exchange("revisit.events", type="topic", durable=True),
            routing_key="revisit_unsatisfied")
    with Connection(deployment.uris["gateway"]) as connection, pytest.raises(AccessRefused):
        connection.channel().basic_get("notify.intake.complaint_registered")
    with Connection(deployment.uris["revisit"]) as connection, pytest.raises(AccessRefused):
        connection.channel().basic_get("intake.dead-letter")
    with Connection(deployment.uris["gateway"]) as connection, pytest.raises(AccessRefused):
        connection.channel().exchange_declare("intake.events", "topic", durable=True)


def test_huifang_users_runs_with_the_gateways_user(deployment):
    result = subprocess.run(
        [str(Path(sys.executable).parent / "huifang-users"), "list"], cwd=ROOT, check=False,
        env={**os.environ, "AMQP_URI": deployment.uris["gateway"]}, capture_output=True,
        text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "admin"
