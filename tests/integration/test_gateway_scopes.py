"""Two scopes beside the estates', over real HTTP to the five services running as
processes: a department's staff (责任部门) see and act on their own department's work only,
and a person with some of a group round's estates gets the report, ranking and workbook of
their estates alone (headquarters: the whole round)."""
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import api, households, page, register_estate, signed_in

pytestmark = pytest.mark.broker

EAST, WEST, NORTH = "sc-east", "sc-west", "sc-north"
PASSWORD = "password-of-scopes"


def _account(gateway, username, roles, estates, **extra):
    return gateway.request("POST", "/api/v1/users", token=gateway.admin, json={
        "username": username, "password": PASSWORD, "roles": roles, "estates": estates,
        **extra})


def _person(gateway, username, roles, estates, **extra):
    response = _account(gateway, username, roles, estates, **extra)
    assert response.status_code == 201, response.text
    return gateway.login(username, PASSWORD)


@pytest.fixture(scope="module")
def people(gateway):
    for estate, count in ((EAST, 4), (WEST, 3), (NORTH, 2)):
        register_estate(gateway, estate, f"{estate}小区", households(estate, count))
    return {
        "hq": _person(gateway, "sc.hq", ["hq_analyst"], []),
        "clerk": _person(gateway, "sc.clerk", ["cs_staff"], [EAST]),
        "engineering": _person(gateway, "sc.eng", ["department"], [EAST], department="工程部"),
        "security": _person(gateway, "sc.sec", ["department"], [EAST], department="秩序部"),
        # two of the round's three estates, and one of them
        "two": _person(gateway, "sc.em.two", ["estate_manager"], [EAST, WEST]),
        "supervisor_two": _person(gateway, "sc.sup.two", ["supervisor"], [EAST, WEST]),
        "north": _person(gateway, "sc.sup.north", ["supervisor"], [NORTH]),
    }


@pytest.fixture(scope="module")
def round_id(gateway, people):
    now = datetime.now(UTC)
    made = api(gateway, "POST", "/survey/rounds", people["hq"], json={
        "title": "范围测试调查", "estate_ids": [EAST, WEST, NORTH],
        "opens_at": (now - timedelta(minutes=1)).isoformat(),
        "closes_at": (now + timedelta(days=10)).isoformat()})
    deadline = time.monotonic() + 30
    while api(gateway, "GET", f"/survey/rounds/{made['id']}", people["hq"])["status"] \
            in ("creating", "scheduled"):
        assert time.monotonic() < deadline, "the round never opened"
        time.sleep(0.3)
    return made["id"]


def _status(response, status):
    assert response.status_code == status, response.text
    return response.json()


# 责任部门 ------------------------------------------------------------------------------------

def test_a_department_account_names_a_department_its_estates_route_to(gateway, people):
    refused = _status(_account(gateway, "sc.dep.none", ["department"], [EAST]), 422)
    assert list(refused["errors"]) == ["department"]
    refused = _status(_account(gateway, "sc.dep.bad", ["department"], [EAST],
                               department="保洁部"), 422)
    assert "工程部" in refused["errors"]["department"][0]      # the known ones named
    assert _status(_account(gateway, "sc.dep.bad", ["cs_staff"], [EAST],
                            department="工程部"), 422)["errors"].keys() == {"department"}
    usernames = [user["username"] for user in api(gateway, "GET", "/users", gateway.admin,
                                                  params={"limit": 500})["items"]]
    assert not {"sc.dep.none", "sc.dep.bad"} & set(usernames)
    me = api(gateway, "GET", "/me", people["engineering"])
    assert (me["roles"], me["department"]) == (["department"], "工程部")


def _assigned(gateway, clerk, department, content):
    complaint = api(gateway, "POST", "/complaints", clerk, json={
        "estate_id": EAST, "household_id": f"{EAST}-0", "channel": "hotline",
        "category": "public_facilities", "content": content})
    api(gateway, "POST", f"/complaints/{complaint['id']}/acknowledge", clerk, json={})
    api(gateway, "POST", f"/complaints/{complaint['id']}/assign", clerk,
        json={"department": department})
    return complaint["id"]


def test_a_department_sees_and_acts_on_its_own_complaints_only(gateway, people):
    engineering, security = people["engineering"], people["security"]
    ours = _assigned(gateway, people["clerk"], "工程部", "电梯异响")
    theirs = _assigned(gateway, people["clerk"], "秩序部", "夜里有人乱停车")

    listed = api(gateway, "GET", "/complaints", engineering)["items"]
    assert ours in [item["id"] for item in listed]
    assert {item["department"] for item in listed} == {"工程部"}
    # naming another department changes nothing
    asked = api(gateway, "GET", "/complaints", engineering, params={"department": "秩序部"})
    assert theirs not in [item["id"] for item in asked["items"]]
    assert _status(gateway.request("GET", f"/api/v1/complaints/{theirs}",
                                   token=engineering), 404)
    assert _status(gateway.request("POST", f"/api/v1/complaints/{theirs}/resolve",
                                   token=engineering, json={"resolution": "不归我们管"}), 404)
    assert api(gateway, "GET", f"/complaints/{theirs}", security)["status"] == "assigned"
    resolved = api(gateway, "POST", f"/complaints/{ours}/resolve", engineering,
                   json={"resolution": "更换了电梯导轨"})
    assert resolved["status"] == "resolved"
    # the front desk still sees both
    desk = [item["id"] for item in api(gateway, "GET", "/complaints", people["clerk"])["items"]]
    assert {ours, theirs} <= set(desk)


def test_a_department_sees_and_moves_its_own_rectifications_only(gateway, people, round_id):
    due = (datetime.now(UTC) + timedelta(days=20)).isoformat()
    made = {department: api(gateway, "POST", f"/survey/rounds/{round_id}/rectifications",
                            people["hq"], json={
                                "estate_id": EAST, "category": "cleaning", "due_at": due,
                                "action": f"{department}整改", "department": department})["id"]
            for department in ("工程部", "秩序部")}
    engineering = people["engineering"]
    listed = api(gateway, "GET", "/survey/rectifications", engineering)["items"]
    assert [item["id"] for item in listed] == [made["工程部"]]
    assert _status(gateway.request("GET", f"/api/v1/survey/rectifications/{made['秩序部']}",
                                   token=engineering), 404)
    assert _status(gateway.request(
        "PATCH", f"/api/v1/survey/rectifications/{made['秩序部']}", token=engineering,
        json={"status": "in_progress"}), 404)
    moved = api(gateway, "PATCH", f"/survey/rectifications/{made['工程部']}", engineering,
                json={"status": "in_progress"})
    assert moved["status"] == "in_progress"
    security = api(gateway, "GET", "/survey/rectifications", people["security"])["items"]
    assert [(item["id"], item["status"]) for item in security] == [(made["秩序部"], "open")]


# a part of a group round -----------------------------------------------------------------------

def test_a_report_covers_the_readers_estates_of_the_round(gateway, people, round_id):
    base = f"/survey/rounds/{round_id}"
    api(gateway, "POST", f"{base}/rectifications", people["hq"], json={
        "estate_id": NORTH, "category": "cleaning", "action": "北区加派保洁",
        "department": "环境部", "due_at": (datetime.now(UTC) + timedelta(days=9)).isoformat()})

    whole = api(gateway, "GET", f"{base}/report", people["hq"])
    assert (whole["estate_ids"], whole["invited"]) == ([EAST, WEST, NORTH], 9)

    two = api(gateway, "GET", f"{base}/report", people["two"])
    assert (two["estate_ids"], two["invited"]) == ([EAST, WEST], 7)
    assert api(gateway, "GET", f"{base}/report", people["supervisor_two"]) == two
    assert [line["estate_id"] for line in two["estates"]] == [EAST, WEST]
    assert NORTH not in {item["estate_id"] for item in two["rectifications"]}
    one = api(gateway, "GET", f"{base}/report", people["two"], params={"estate_id": WEST})
    assert (one["estate_ids"], one["invited"]) == ([WEST], 3)
    assert _status(gateway.request("GET", f"/api/v1{base}/report", token=people["two"],
                                   params={"estate_id": NORTH}), 403)

    north = api(gateway, "GET", f"{base}/report", people["north"])
    assert (north["estate_ids"], north["invited"]) == ([NORTH], 2)
    assert [item["action"] for item in north["rectifications"]] == ["北区加派保洁"]

    def ranked(token):
        ranking = api(gateway, "GET", f"{base}/ranking", token)
        return sorted(entry["estate_id"] for entry in ranking["ranked"] + ranking["too_few"])
    assert ranked(people["two"]) == sorted([EAST, WEST])
    assert ranked(people["hq"]) == sorted([EAST, WEST, NORTH])

    workbook = gateway.request("GET", f"/api/v1{base}/export", token=people["two"])
    assert workbook.status_code == 200 and workbook.content[:2] == b"PK"


def test_the_console_shows_each_person_their_part(gateway, people, round_id):
    two = signed_in(gateway, "sc.sup.two", PASSWORD)
    text = page(two, gateway, f"/console/surveys/{round_id}").text
    assert 'id="report-part"' in text and f"{EAST}小区" in text
    assert 'id="invited" data-live="invited">7<' in text and f'id="estate-{NORTH}"' not in text
    hq = signed_in(gateway, "sc.hq", PASSWORD)
    text = page(hq, gateway, f"/console/surveys/{round_id}").text
    assert 'id="report-part"' not in text and 'id="invited" data-live="invited">9<' in text

    engineering = signed_in(gateway, "sc.eng", PASSWORD)
    text = page(engineering, gateway, "/console/?department=%E7%A7%A9%E5%BA%8F%E9%83%A8").text
    assert 'id="department-scope"' in text and 'id="f-department"' not in text
    assert "电梯异响" in text and "夜里有人乱停车" not in text   # 秩序部's: not listed


def test_work_orders_and_revisit_replies_are_no_departments_work(gateway, people):
    engineering = people["engineering"]
    order = api(gateway, "POST", "/work-orders", people["clerk"], json={
        "estate_id": EAST, "household_id": f"{EAST}-1", "kind": "repair",
        "content": "卫生间水龙头漏水"})
    for method, path, body in (
            ("GET", "/work-orders", None), ("GET", f"/work-orders/{order['id']}", None),
            ("POST", f"/work-orders/{order['id']}/complete", {}),
            ("POST", "/work-orders", {"estate_id": EAST, "kind": "repair", "content": "换灯"})):
        refused = _status(gateway.request(method, f"/api/v1{path}", token=engineering,
                                          json=body), 403)
        assert refused["detail"].startswith("work orders name no department")
    refused = _status(gateway.request("POST", "/api/v1/revisits/rv-any/reply", token=engineering,
                                      json={"reply": "下周答复"}), 403)
    assert "service centre" in refused["detail"]
    assert api(gateway, "GET", f"/work-orders/{order['id']}", people["clerk"])["status"] \
        == "registered"


def test_work_goes_only_to_a_department_the_estates_routing_names(gateway, people, round_id):
    """A department no account can carry (保洁部: no category routes to it) is refused
    where work is handed to it, naming the field, and nothing is written."""
    due = (datetime.now(UTC) + timedelta(days=20)).isoformat()
    refused = _status(gateway.request(
        "POST", f"/api/v1/survey/rounds/{round_id}/rectifications", token=people["hq"], json={
            "estate_id": EAST, "category": "cleaning", "due_at": due, "action": "无人认领的整改",
            "department": "保洁部"}), 422)
    assert list(refused["errors"]) == ["department"]
    assert "环境部" in refused["errors"]["department"][0]
    listed = api(gateway, "GET", "/survey/rectifications", people["hq"],
                 params={"round_id": round_id})["items"]
    assert "无人认领的整改" not in [item["action"] for item in listed]

    complaint = api(gateway, "POST", "/complaints", people["clerk"], json={
        "estate_id": EAST, "household_id": f"{EAST}-2", "channel": "hotline",
        "category": "cleaning", "content": "楼道垃圾没人清"})
    api(gateway, "POST", f"/complaints/{complaint['id']}/acknowledge", people["clerk"], json={})
    refused = _status(gateway.request(
        "POST", f"/api/v1/complaints/{complaint['id']}/assign", token=people["clerk"],
        json={"department": "保洁部"}), 422)
    assert list(refused["errors"]) == ["department"]
    after = api(gateway, "GET", f"/complaints/{complaint['id']}", people["clerk"])
    assert (after["status"], after.get("department")) == ("acknowledged", None)
    # a department the routing names goes through
    assigned = api(gateway, "POST", f"/complaints/{complaint['id']}/assign", people["clerk"],
                   json={"department": "秩序部"})
    assert (assigned["status"], assigned["department"]) == ("assigned", "秩序部")
