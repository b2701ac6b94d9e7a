"""Idempotency-Key and expected_status over real HTTP, the five services running as
processes: a client repeating a request whose answer it lost changes nothing twice."""
import pytest

from tests.helpers import household, register_estate

pytestmark = pytest.mark.broker

ESTATE, HOUSEHOLD = "idem-east", "idem-e-1"
COMPLAINT = {"estate_id": ESTATE, "household_id": HOUSEHOLD, "channel": "hotline",
             "category": "cleaning", "content": "楼道垃圾三天没人清理"}


@pytest.fixture(scope="module")
def admin(gateway):
    register_estate(gateway, ESTATE, "香樟苑",
                    [household(HOUSEHOLD, "1", "1", "101", "王芳", "13912345678")])
    return gateway.admin


def post(gateway, token, path, body, key=None, **params):
    headers = {"Idempotency-Key": key} if key is not None else {}
    return gateway.request("POST", path, token=token, json=body, headers=headers,
                           params=params or None)


def complaints(gateway, token):
    return gateway.request("GET", f"/api/v1/complaints?estate_id={ESTATE}&limit=100",
                           token=token).json()["items"]


def test_a_repeated_request_answers_the_first_time_and_registers_one_complaint(
        gateway, admin):
    before = len(complaints(gateway, admin))
    first = post(gateway, admin, "/api/v1/complaints", COMPLAINT, key="http-reg-1")
    again = post(gateway, admin, "/api/v1/complaints", COMPLAINT, key="http-reg-1")
    assert (first.status_code, again.status_code) == (201, 201), again.text
    assert again.json() == first.json()
    assert len(complaints(gateway, admin)) == before + 1

    other = post(gateway, admin, "/api/v1/complaints", dict(COMPLAINT, content="另一件事"),
                 key="http-reg-1")
    assert other.status_code == 422
    assert list(other.json()["errors"]) == ["Idempotency-Key"]
    malformed = post(gateway, admin, "/api/v1/complaints", COMPLAINT, key="no spaces")
    assert malformed.status_code == 422
    assert list(malformed.json()["errors"]) == ["Idempotency-Key"]
    assert len(complaints(gateway, admin)) == before + 1


def test_a_retried_step_answers_the_record_and_another_state_is_409(gateway, admin):
    cid = post(gateway, admin, "/api/v1/complaints", COMPLAINT).json()["id"]
    path = f"/api/v1/complaints/{cid}"
    for action, body, seen in (("acknowledge", {}, "registered"),
                               ("assign", {}, "acknowledged"),
                               ("resolve", {"resolution": "已清理"}, "assigned")):
        assert post(gateway, admin, f"{path}/{action}", body,
                    expected_status=seen).status_code == 200
    close = {"owner_signoff": "satisfied"}
    first = post(gateway, admin, f"{path}/close", close, expected_status="resolved")
    retried = post(gateway, admin, f"{path}/close", close, expected_status="resolved")
    assert (first.status_code, retried.status_code) == (200, 200), retried.text
    assert retried.json()["status"] == "closed"
    history = gateway.request("GET", path, token=admin).json()["history"]
    assert [line["action"] for line in history].count("close") == 1
    conflict = post(gateway, admin, f"{path}/resolve", {"resolution": "x"},
                    expected_status="assigned")
    assert conflict.status_code == 409
    assert "it is closed" in conflict.json()["detail"]
