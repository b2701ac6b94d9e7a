"""The gateway as an API client meets it: real HTTP to the five services running as
processes, as `make run` starts them."""
import json
import re

import pytest

from tests.helpers import register_estate

pytestmark = pytest.mark.broker

PHONE = "13912345678"
EMAIL = "wang.fang@example.com"
PROBLEM = "application/problem+json"
NAMES = {"gw-east": "东湖花园", "gw-west": "西溪诚园", "gw-page": "南山公寓"}


def _households(*ids):
    return [{"household_id": household, "building": "1", "unit": "2", "room": f"{100 + n}",
             "occupied": True,
             "contacts": [{"name": "王芳", "phone": PHONE, "email": EMAIL}]}
            for n, household in enumerate(ids)]


def _complaint(estate, household, content="楼道灯坏了一周"):
    return {"estate_id": estate, "household_id": household, "channel": "hotline",
            "category": "public_facilities", "content": content}


@pytest.fixture(scope="module")
def estates(gateway):
    """Two estates with a household each, and a front-desk clerk of each."""
    for estate, household in (("gw-east", "gw-e-1"), ("gw-west", "gw-w-1")):
        register_estate(gateway, estate, NAMES[estate], _households(household))
    return {"east": gateway.user("clerk.east", ["cs_staff"], ["gw-east"]),
            "west": gateway.user("clerk.west", ["cs_staff"], ["gw-west"])}


def _problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    assert "Traceback" not in response.text and "File \"" not in response.text
    return body


def test_health_and_readiness(gateway):
    assert gateway.request("GET", "/healthz").json() == {"status": "ok"}
    ready = gateway.request("GET", "/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["services"] == dict.fromkeys(
        ("intake", "revisit", "survey", "notify"), "ok")


def test_login_gives_a_bearer_token_and_wrong_credentials_401(gateway):
    response = gateway.request("POST", "/api/v1/auth/token",
                               json={"username": "admin", "password": gateway.ADMIN_PASSWORD})
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    assert body["user"]["username"] == "admin" and body["user"]["roles"] == ["admin"]
    _problem(gateway.request("POST", "/api/v1/auth/token",
                             json={"username": "admin", "password": "wrong-password"}), 401)
    _problem(gateway.request("POST", "/api/v1/auth/token",
                             json={"username": "nobody-here", "password": "whatever-1"}), 401)


def test_every_api_call_needs_a_valid_token(gateway):
    _problem(gateway.request("GET", "/api/v1/complaints"), 401)
    _problem(gateway.request("GET", "/api/v1/complaints", token="not-a-token"), 401)
    response = gateway.request("GET", "/api/v1/complaints",
                               headers={"Authorization": "Basic YWRtaW46YWRtaW4="})
    assert _problem(response, 401) and response.headers["WWW-Authenticate"].startswith("Bearer")


def test_estate_scope_a_clerk_sees_and_acts_only_in_their_estate(gateway, estates):
    east, west = estates["east"], estates["west"]
    created = gateway.request("POST", "/api/v1/complaints", token=east,
                              json=_complaint("gw-east", "gw-e-1"))
    assert created.status_code == 201, created.text
    complaint = created.json()
    assert complaint["status"] == "registered"

    # the other estate's clerk: unknown record, refused action, absent from every list
    _problem(gateway.request("GET", f"/api/v1/complaints/{complaint['id']}", token=west), 404)
    _problem(gateway.request("POST", f"/api/v1/complaints/{complaint['id']}/acknowledge",
                             token=west, json={"note": "抱歉"}), 404)
    listed = gateway.request("GET", "/api/v1/complaints", token=west).json()
    assert complaint["id"] not in [item["id"] for item in listed["items"]]
    asked = gateway.request("GET", "/api/v1/complaints", token=west,
                            params={"estate_id": "gw-east"}).json()
    assert asked == {"items": [], "next_cursor": None}
    # creating in another estate is refused, and writes nothing
    _problem(gateway.request("POST", "/api/v1/complaints", token=west,
                             json=_complaint("gw-east", "gw-e-1", "不该登记")), 403)
    mine = gateway.request("GET", "/api/v1/complaints", token=east).json()["items"]
    assert [item["content"] for item in mine].count("不该登记") == 0
    assert complaint["id"] in [item["id"] for item in mine]
    # the headquarters analyst sees every estate, and may not act
    hq = gateway.user("analyst", ["hq_analyst"])
    assert gateway.request("GET", f"/api/v1/complaints/{complaint['id']}",
                           token=hq).status_code == 200
    _problem(gateway.request("POST", f"/api/v1/complaints/{complaint['id']}/acknowledge",
                             token=hq, json={"note": "x"}), 403)


def test_the_history_names_the_logged_in_user_whatever_the_body_says(gateway, estates):
    east = estates["east"]
    me = gateway.request("GET", "/api/v1/me", token=east).json()
    complaint = gateway.request("POST", "/api/v1/complaints", token=east,
                                json=_complaint("gw-east", "gw-e-1", "电梯异响")).json()
    acknowledged = gateway.request(
        "POST", f"/api/v1/complaints/{complaint['id']}/acknowledge", token=east,
        json={"note": "已致歉", "staff_id": "someone-else"})
    assert acknowledged.status_code == 200, acknowledged.text
    history = gateway.request("GET", f"/api/v1/complaints/{complaint['id']}",
                              token=east).json()["history"]
    assert history[-1]["action"] == "acknowledge"
    assert history[-1]["by"] == me["id"] != "someone-else"


def test_errors_are_problem_json(gateway, estates):
    east = estates["east"]
    # invalid input: 422 naming each field, as the service's InvalidInput
    body = _problem(gateway.request("POST", "/api/v1/complaints", token=east, json={
        "estate_id": "gw-east", "household_id": "gw-e-1", "channel": "pigeon",
        "category": "public_facilities", "content": "x", "surprise": 1}), 422)
    assert set(body["errors"]) == {"channel", "surprise"}
    # malformed JSON 400, wrong media type 415, not an object 422
    _problem(gateway.request("POST", "/api/v1/complaints", token=east, data="{nope",
                             headers={"Content-Type": "application/json"}), 400)
    _problem(gateway.request("POST", "/api/v1/complaints", token=east, data="a=1",
                             headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
    _problem(gateway.request("POST", "/api/v1/complaints", token=east, json=[1, 2]), 422)
    # unknown id 404, unknown path 404, wrong method 405
    _problem(gateway.request("GET", "/api/v1/complaints/c-does-not-exist", token=east), 404)
    _problem(gateway.request("GET", "/api/v1/no-such-thing", token=east), 404)
    _problem(gateway.request("GET", "/no-such-page"), 404)
    _problem(gateway.request("DELETE", "/api/v1/complaints", token=east), 405)
    # a transition the state machine forbids: 409 naming the current state
    complaint = gateway.request("POST", "/api/v1/complaints", token=east,
                                json=_complaint("gw-east", "gw-e-1", "噪音")).json()
    conflict = _problem(gateway.request(
        "POST", f"/api/v1/complaints/{complaint['id']}/close", token=east,
        json={"owner_signoff": "none"}), 409)
    assert "registered" in conflict["detail"]


def test_a_body_over_the_limit_is_refused_unread(gateway, estates):
    big = json.dumps(_complaint("gw-east", "gw-e-1", "长" * 10)).replace(
        "}", ', "padding": "' + "x" * (2 * 1024 * 1024) + '"}')
    _problem(gateway.request("POST", "/api/v1/complaints", token=estates["east"], data=big,
                             headers={"Content-Type": "application/json"}), 413)


def test_lists_page_with_an_opaque_cursor_in_a_stable_order(gateway, estates):
    east = estates["east"]
    gateway.request("POST", "/api/v1/estates/gw-page/households", token=gateway.admin,
                    json={"rows": _households("gw-p-1"), "estate": {"name": NAMES["gw-page"]}})
    token = gateway.user("clerk.page", ["cs_staff"], ["gw-page"])
    made = {gateway.request("POST", "/api/v1/complaints", token=token,
                            json=_complaint("gw-page", "gw-p-1", f"第{n}件")).json()["id"]
            for n in range(7)}
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = gateway.request("GET", "/api/v1/complaints", token=token, params=params).json()
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == len(set(seen)) == 7 and set(seen) == made
    _problem(gateway.request("GET", "/api/v1/complaints", token=token,
                             params={"cursor": "garbage!"}), 422)
    assert east  # the other estate's clerk took no part


def test_logout_revokes_the_token(gateway, estates):
    token = gateway.user("short.lived", ["cs_staff"], ["gw-east"])
    assert gateway.request("GET", "/api/v1/me", token=token).status_code == 200
    assert gateway.request("POST", "/api/v1/auth/logout", token=token).status_code == 200
    _problem(gateway.request("GET", "/api/v1/me", token=token), 401)


def test_disabling_a_user_revokes_their_tokens(gateway):
    token = gateway.user("leaver", ["supervisor"], ["gw-east"])
    me = gateway.request("GET", "/api/v1/me", token=token).json()
    changed = gateway.request("PATCH", f"/api/v1/users/{me['id']}", token=gateway.admin,
                              json={"disabled": True})
    assert changed.status_code == 200 and changed.json()["disabled"] is True
    _problem(gateway.request("GET", "/api/v1/complaints", token=token), 401)
    _problem(gateway.request("POST", "/api/v1/auth/token",
                             json={"username": "leaver", "password": "password-of-tests"}), 401)


def test_only_an_administrator_manages_users(gateway, estates):
    _problem(gateway.request("GET", "/api/v1/users", token=estates["east"]), 403)
    _problem(gateway.request("POST", "/api/v1/users", token=estates["east"], json={
        "username": "sneaky", "password": "password-123", "roles": ["admin"]}), 403)
    bad = _problem(gateway.request("POST", "/api/v1/users", token=gateway.admin, json={
        "username": "Bad Name", "password": "short", "roles": ["cs_staff", "king"]}), 422)
    assert {"username", "password", "roles"} <= set(bad["errors"])
    listed = gateway.request("GET", "/api/v1/users", token=gateway.admin).json()
    assert "admin" in [user["username"] for user in listed["items"]]
    assert all("password_hash" not in user for user in listed["items"])


def test_repeated_failed_logins_are_locked(gateway):
    gateway.user("target", ["cs_staff"], ["gw-east"])
    statuses = [gateway.request("POST", "/api/v1/auth/token", json={
        "username": "target", "password": f"guess-{n}"}).status_code for n in range(6)]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429
    # locked: even the right password waits, and says when to come back
    locked = gateway.request("POST", "/api/v1/auth/token", json={
        "username": "target", "password": "password-of-tests"})
    assert _problem(locked, 429) and int(locked.headers["Retry-After"]) > 0


def test_a_browser_session_needs_its_csrf_token_to_change_anything(gateway, estates):
    import requests

    browser = requests.Session()
    login = browser.post(gateway.url("/api/v1/auth/session"), json={
        "username": "clerk.east", "password": "password-of-tests"}, timeout=30)
    assert login.status_code == 200, login.text
    cookie = next(c for c in browser.cookies if c.name == "huifang_session")
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert "samesite=strict" in login.headers["Set-Cookie"].lower()
    assert browser.get(gateway.url("/api/v1/me"), timeout=30).status_code == 200
    forged = browser.post(gateway.url("/api/v1/complaints"),
                          json=_complaint("gw-east", "gw-e-1", "跨站请求"), timeout=30)
    _problem(forged, 403)
    real = browser.post(gateway.url("/api/v1/complaints"),
                        json=_complaint("gw-east", "gw-e-1", "本人提交"), timeout=30,
                        headers={"X-CSRF-Token": login.json()["csrf_token"]})
    assert real.status_code == 201, real.text


def test_docs_are_served_without_any_outside_network(gateway):
    page = gateway.request("GET", "/docs")
    assert page.status_code == 200
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(asset.startswith("/") for asset in assets)
    for asset in assets:
        assert gateway.request("GET", asset).status_code == 200, asset
    spec = gateway.request("GET", "/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/api/v1/complaints" in spec["paths"]


def test_no_full_phone_number_or_email_leaves_the_gateway(gateway, estates):
    east = estates["east"]
    responses = [
        gateway.request("GET", "/api/v1/estates/gw-east/households", token=east),
        gateway.request("GET", "/api/v1/households/gw-e-1", token=east),
        gateway.request("GET", "/api/v1/complaints", token=east),
        gateway.request("POST", "/api/v1/complaints", token=east, json={
            "estate_id": "gw-east", "channel": "visit", "category": "noise",
            "content": "路人投诉", "reporter": {"name": "李雷", "phone": "13700001111"}}),
    ]
    for response in responses:
        assert response.status_code in (200, 201), response.text
        assert PHONE not in response.text and EMAIL not in response.text
        assert "13700001111" not in response.text
    households = responses[0].json()["items"]
    assert households[0]["contacts"][0]["phone"] == "139****5678"
    assert PHONE not in gateway.processes.log("gateway")
    assert EMAIL not in gateway.processes.log("gateway")
