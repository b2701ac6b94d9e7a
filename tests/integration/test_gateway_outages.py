"""A service that is not running, or stops answering: the gateway says so with 503/504
and Retry-After, and /readyz tells the load balancer."""
import pytest

from tests.helpers import GatewayClient, ServiceProcesses, free_port, wait_until

pytestmark = pytest.mark.broker


@pytest.fixture
def half_running(service_config, tmp_path):
    """Only intake and the gateway run; survey never has; calls give up after 2 s."""
    port = free_port()
    processes = ServiceProcesses(
        service_config, tmp_path, services=("intake", "gateway"),
        GATEWAY_ADDRESS=f"127.0.0.1:{port}", HUIFANG_ENV="development",
        HUIFANG_ADMIN_PASSWORD=GatewayClient.ADMIN_PASSWORD, RPC_TIMEOUT_SECONDS="2")
    try:
        processes.start()
        yield GatewayClient(f"http://127.0.0.1:{port}", processes)
    finally:
        processes.stop()


def test_a_missing_service_is_503_and_a_silent_one_504(half_running):
    gateway = half_running
    token = gateway.admin
    ready = gateway.request("GET", "/readyz")
    assert ready.status_code == 503 and ready.headers["Retry-After"]
    assert ready.json()["services"]["intake"] == "ok"
    assert ready.json()["services"]["survey"] != "ok"

    never_ran = gateway.request("GET", "/api/v1/survey/templates", token=token)
    assert never_ran.status_code == 503 and int(never_ran.headers["Retry-After"]) > 0
    assert never_ran.headers["Content-Type"].startswith("application/problem+json")

    assert gateway.request("GET", "/api/v1/complaints", token=token).status_code == 200
    intake = gateway.processes.processes["intake"]
    intake.terminate()
    intake.wait(timeout=15)
    # intake's queue stays, nobody consumes it: the call waits out its 2 s, then 504
    silent = gateway.request("GET", "/api/v1/complaints", token=token)
    assert silent.status_code == 504 and int(silent.headers["Retry-After"]) > 0
    assert "Traceback" not in silent.text
    wait_until(lambda: gateway.request("GET", "/readyz").json()["services"]["intake"] != "ok",
               timeout=10, message="readyz notices intake is gone")
