"""The console worklist's flag filters keep to the person's estates, over real HTTP to the
services running as processes: estate A has an overdue complaint, a repeat needing
special measures, a malicious flag and one assigned to a department; a supervisor of
estate B never sees one of them — through no filter, alone or together, nor by naming
estate A — while A's supervisor finds each through its filter (the filters work)."""
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from tests.helpers import (
    api,
    page,
    register_complaint,
    register_estates,
    signed_in,
    staff_accounts,
)

pytestmark = pytest.mark.broker

ESTATE_A, ESTATE_B = "wl-a", "wl-b"
DEPARTMENT = "工程部"
ROW = re.compile(r'<tr id="row-([\w-]+)"')
FLAGS = ({"overdue": "true"}, {"repeat": "true"}, {"malicious": "true"},
         {"department": DEPARTMENT})


@pytest.fixture(scope="module")
def flagged(gateway):
    """Estate A's complaints, one for each filter; estate B's one overdue complaint."""
    register_estates(gateway, {ESTATE_A: "甲区花园", ESTATE_B: "乙区雅苑"}, 3,
                     building="5", room="01", phones="1391234")
    people = staff_accounts(gateway, (("wl.sup.a", "supervisor", [ESTATE_A], "甲主管"),
                                      ("wl.sup.b", "supervisor", [ESTATE_B], "乙主管")))
    token = people["wl.sup.a"]["token"]
    fortnight_ago = (datetime.now(UTC) - timedelta(days=14)).isoformat()
    made = {"overdue": register_complaint(gateway, token, ESTATE_A, f"{ESTATE_A}-0",
                                          "两周前的投诉还没人回复", received_at=fortnight_ago)}
    first = register_complaint(gateway, token, ESTATE_A, f"{ESTATE_A}-1", "电梯又坏了",
                               category="public_facilities")
    made["repeat"] = register_complaint(gateway, token, ESTATE_A, f"{ESTATE_A}-1",
                                        "电梯还是坏的", category="public_facilities")
    assert made["repeat"]["repeat_of"] == first["id"]
    made["malicious"] = register_complaint(gateway, token, ESTATE_A, f"{ESTATE_A}-2",
                                           "同一内容第十次投诉", category="noise")
    api(gateway, "POST", f"/complaints/{made['malicious']['id']}/flag-malicious", token,
        json={"reason": "经核实为恶意投诉"})
    made["department"] = register_complaint(gateway, token, ESTATE_A, f"{ESTATE_A}-0",
                                            "水泵房漏水", category="water_supply")
    for action, body in (("acknowledge", {"note": "已致歉"}),
                         ("assign", {"department": DEPARTMENT})):
        api(gateway, "POST", f"/complaints/{made['department']['id']}/{action}", token,
            json=body)
    made["b"] = register_complaint(gateway, people["wl.sup.b"]["token"], ESTATE_B,
                                   f"{ESTATE_B}-0", "乙区的旧投诉", received_at=fortnight_ago)
    return {"people": people, "a": made, "a_ids": {first["id"]} | {
        complaint["id"] for key, complaint in made.items() if key != "b"}}


def rows(session, gateway, query):
    return ROW.findall(page(session, gateway, f"/console/?{urlencode(query)}").text)


def test_each_flag_finds_estate_a_complaints_for_estate_a(gateway, flagged):
    session = signed_in(gateway, "wl.sup.a")
    for flag in FLAGS:
        found = rows(session, gateway, flag)
        assert flagged["a"][next(iter(flag))]["id"] in found, flag


def test_a_user_of_estate_b_never_sees_estate_a_flagged_complaints(gateway, flagged):
    session = signed_in(gateway, "wl.sup.b")
    a_ids = flagged["a_ids"]
    queries = [*FLAGS, {k: v for flag in FLAGS for k, v in flag.items()},
               *({**flag, "estate_id": ESTATE_A} for flag in FLAGS), {"estate_id": ESTATE_A}]
    for query in queries:
        assert not a_ids & set(rows(session, gateway, query)), query
    assert rows(session, gateway, {"overdue": "true"}) == [flagged["a"]["b"]["id"]]
    # the API the worklist reads: the same filters, estate B's alone
    token = flagged["people"]["wl.sup.b"]["token"]
    for flag in FLAGS:
        listed = api(gateway, "GET", f"/complaints?{urlencode(flag)}", token)["items"]
        assert {item["estate_id"] for item in listed} <= {ESTATE_B}, flag
