"""The console's survey pages, over real HTTP to the five services running as processes:
headquarters starts a round from the form (a wrong field said on it, nothing made), the
round's page follows its invitations and then its response (the live reading equal to
the report RPC), a supervisor adds a rectification (its department one the routing
offers, another refused at the field) and moves it on, the round is closed
and published from its page; another estate's supervisor cannot open it; the desk clerk
has no survey pages."""
import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.helpers import (
    api,
    hidden,
    household,
    local_input,
    page,
    post,
    register_estate,
    signed_in,
    staff_accounts,
)

pytestmark = pytest.mark.broker

EAST, WEST, NORTH = "sv-east", "sv-west", "sv-north"
ZONE = ZoneInfo("Asia/Shanghai")
ROUND = re.compile(r"/console/surveys/([^?/]+)\?done=create")


def households_in_two_buildings(estate, count):
    return [household(f"{estate}-{n}", str(1 + n % 2), "1", f"{n + 1}01", f"业主{n}",
                      f"1361234{n:04d}") for n in range(count)]


@pytest.fixture(scope="module")
def staff(gateway):
    for estate, count in ((EAST, 4), (WEST, 3), (NORTH, 2)):
        register_estate(gateway, estate, f"{estate}小区",
                        households_in_two_buildings(estate, count))
    return staff_accounts(gateway, (("sv.hq", "hq_analyst", [], "sv.hq"),
                                    ("sv.sup.east", "supervisor", [EAST], "sv.sup.east"),
                                    ("sv.sup.north", "supervisor", [NORTH], "sv.sup.north"),
                                    ("sv.clerk", "cs_staff", [EAST], "sv.clerk")))


def round_form(hq, gateway, **fields):
    text = page(hq, gateway, "/console/surveys/new").text
    now = datetime.now(ZONE)
    return {**hidden(text, "form-round"), "title": "2026年第四季度满意度调查",
            "kind": "quarterly", "estate_ids": f"{EAST}\n{WEST}",
            "opens_at": local_input(now - timedelta(minutes=2)),
            "closes_at": local_input(now + timedelta(days=10)),
            "categories": ["cleaning", "greening", "order"], "sample_mode": "all",
            "anonymous": "true", "reminder_interval_days": "2", "reminder_max": "1",
            **fields}


@pytest.fixture(scope="module")
def round_id(gateway, staff):
    hq = signed_in(gateway, "sv.hq")
    response = post(hq, gateway, "/console/surveys/new", round_form(hq, gateway))
    found = ROUND.search(response.headers["Location"])
    assert found, response.headers["Location"]
    made = found.group(1)
    deadline = time.monotonic() + 30
    while api(gateway, "GET", f"/survey/rounds/{made}", staff["sv.hq"]["token"])["status"] \
            in ("creating", "scheduled"):
        assert time.monotonic() < deadline, "the round never opened"
        time.sleep(0.3)
    return made


def test_the_form_offers_complaint_handling_beside_the_nine(gateway, staff):
    """「投诉处理」: a known category the texts list beside the nine — offered, not asked
    unless chosen."""
    hq = signed_in(gateway, "sv.hq")
    text = page(hq, gateway, "/console/surveys/new").text
    offered = re.search(r'<input type="checkbox" id="round-category-complaint_handling"[^>]*>',
                        text)
    assert offered and "checked" not in offered.group(0) and "投诉处理" in text
    form = round_form(hq, gateway, title="投诉处理满意度", estate_ids=NORTH,
                      categories=["cleaning", "complaint_handling"])
    made = ROUND.search(post(hq, gateway, "/console/surveys/new", form).headers["Location"])
    assert made
    round_ = api(gateway, "GET", f"/survey/rounds/{made.group(1)}", staff["sv.hq"]["token"])
    assert round_["categories"] == ["cleaning", "complaint_handling"]


def test_a_wrong_field_is_said_on_the_form_and_nothing_is_made(gateway, staff):
    hq = signed_in(gateway, "sv.hq")
    def round_ids():   # (a round an earlier test made may still be preparing: ids only)
        return [found["id"] for found in
                api(gateway, "GET", "/survey/rounds", staff["sv.hq"]["token"])["items"]]
    before = round_ids()
    now = datetime.now(ZONE)
    form = round_form(hq, gateway, title="开始晚于结束的调查",
                      closes_at=local_input(now - timedelta(days=1)))
    text = post(hq, gateway, "/console/surveys/new", form, status=422).text
    assert 'id="round-closes_at-error"' in text and 'aria-invalid="true"' in text
    assert 'value="开始晚于结束的调查"' in text          # what was typed stays
    form = round_form(hq, gateway, title="抽样比例不对", sample_mode="stratified",
                      sample_rate="250")
    assert 'id="round-sample-rate-error"' in post(hq, gateway, "/console/surveys/new", form,
                                                  status=422).text
    assert round_ids() == before


def test_the_round_page_shows_its_response_as_the_report_says(gateway, staff, round_id):
    hq = signed_in(gateway, "sv.hq")
    assert round_id in page(hq, gateway, "/console/surveys/").text
    text = page(hq, gateway, f"/console/surveys/{round_id}").text
    report = api(gateway, "GET", f"/survey/rounds/{round_id}/report", staff["sv.hq"]["token"])
    assert report["invited"] == 7
    assert f'id="invited" data-live="invited">{report["invited"]}<' in text
    assert 'id="table-estates"' in text and 'id="table-categories"' in text
    # each estate's line under its name (the report carries it beside the id)
    assert [line["estate_name"] for line in report["estates"] if line["estate_id"] == EAST] \
        == [f"{EAST}小区"]
    assert f'<tr id="estate-{EAST}"><th scope="row">{EAST}小区</th>' in text
    assert 'data-live-seconds="10"' in text and "/static/live.js" in text
    live = hq.get(gateway.url(f"/console/surveys/{round_id}/live"), timeout=30).json()
    assert live["status"] == "open"
    assert (live["invited"], live["returned"]) == (report["invited"], report["returned"])
    assert live["estates"][EAST]["invited"] == 4


def test_a_supervisor_adds_a_rectification_and_moves_it_on(gateway, staff, round_id):
    east = signed_in(gateway, "sv.sup.east")
    path = f"/console/surveys/{round_id}"
    text = page(east, gateway, path).text
    due = local_input(datetime.now(ZONE) + timedelta(days=20))
    form = {**hidden(text, "form-rectifications"), "estate_id": EAST, "category": "cleaning",
            "action": "", "department": "环境部", "due_at": due}
    refused = post(east, gateway, f"{path}/rectifications", form, status=422).text
    assert 'id="rectifications-error"' in refused
    # the departments the routing knows are offered; one it does not is refused at the field
    offered = re.search(r'<datalist id="rect-departments">(.*?)</datalist>', text).group(1)
    routed = api(gateway, "GET", f"/estates/{EAST}/categories", staff["sv.sup.east"]["token"])
    assert set(re.findall(r'<option value="([^"]+)">', offered)) == {
        category["department"] for category in routed}
    unknown = post(east, gateway, f"{path}/rectifications",
                   {**form, "action": "楼道每日清扫两次", "department": "不存在的部门"},
                   status=422).text
    assert 'id="rect-department-error"' in unknown and 'id="rect-action-error"' not in unknown
    assert re.search(r'id="rect-department"[^>]*aria-invalid="true"', unknown)
    assert 'value="不存在的部门"' in unknown and "楼道每日清扫两次" in unknown
    post(east, gateway, f"{path}/rectifications", {**form, "action": "楼道每日清扫两次"})
    items = api(gateway, "GET", "/survey/rectifications", staff["sv.sup.east"]["token"],
                params={"round_id": round_id})["items"]
    assert [item["action"] for item in items] == ["楼道每日清扫两次"]
    text = page(east, gateway, path + "?done=rectifications").text
    assert "楼道每日清扫两次" in text and 'id="done"' in text
    assert f'<tr id="rectification-{items[0]["id"]}"><td>{EAST}小区</td>' in text
    item = items[0]["id"]
    post(east, gateway, f"{path}/rectifications/{item}",
         {**hidden(text, f"form-update-{item}"), "status": "in_progress", "note": "已排班"})
    assert api(gateway, "GET", f"/survey/rectifications/{item}",
               staff["sv.sup.east"]["token"])["status"] == "in_progress"
    # the estates' rectifications across rounds, to chase or to carry out
    listed = page(east, gateway, "/console/surveys/rectifications").text
    assert f'id="rectification-{item}"' in listed and "楼道每日清扫两次" in listed
    assert f'id="rectification-{item}"' not in page(
        east, gateway, "/console/surveys/rectifications?status=done").text
    north = signed_in(gateway, "sv.sup.north")
    assert "楼道每日清扫两次" not in page(north, gateway, "/console/surveys/rectifications").text


def test_another_estates_supervisor_cannot_open_the_round(gateway, staff, round_id):
    north = signed_in(gateway, "sv.sup.north")
    assert "2026年第四季度" not in page(north, gateway, "/console/surveys/").text
    page(north, gateway, f"/console/surveys/{round_id}", status=404)
    clerk = signed_in(gateway, "sv.clerk")
    assert 'id="nav-surveys"' not in page(clerk, gateway, "/console/").text
    page(clerk, gateway, "/console/surveys/", status=403)


def test_headquarters_closes_and_publishes_the_round(gateway, staff, round_id):
    hq = signed_in(gateway, "sv.hq")
    path = f"/console/surveys/{round_id}"
    text = page(hq, gateway, path).text
    post(hq, gateway, f"{path}/close", hidden(text, "form-close"))
    assert api(gateway, "GET", path.replace("/console/surveys", "/survey/rounds"),
               staff["sv.hq"]["token"])["status"] == "closed"
    text = page(hq, gateway, path + "?done=close").text
    assert 'id="form-close"' not in text and 'id="form-publish"' in text
    post(hq, gateway, f"{path}/publish", {**hidden(text, "form-publish"),
                                          "estate_ids": [EAST], "note": "公示两周"})
    published = api(gateway, "GET", f"/survey/rounds/{round_id}", staff["sv.hq"]["token"])
    assert EAST in published["published"] and WEST not in published["published"]
    # closing again is a conflict said on the page, nothing more
    assert 'id="form-close"' not in page(hq, gateway, path).text
