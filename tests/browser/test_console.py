"""The front desk's journey through the staff console in a real browser, with JavaScript
off (the console has none to need): log in, register a walk-in's complaint for a
household found by building and room, read the apology, then acknowledge, assign,
resolve and close it from its page — each step written into its history as the clerk.
The worklist and the complaint page are screenshotted at a phone's size and a desk's,
and checked with axe-core."""
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from tests.browser.conftest import PHONE
from tests.helpers import (
    api,
    households_by_room,
    register_complaint,
    register_estate,
    staff_accounts,
)

pytestmark = [pytest.mark.broker, pytest.mark.browser]

ESTATE, ESTATE_NAME = "br-desk", "阳光花园"
PASSWORD = "password-of-the-desk"
DESK = {"width": 1366, "height": 900}


@pytest.fixture
def clerk(gateway):
    """An estate with households, a desk clerk, and what the worklist already holds: a
    complaint a fortnight old (overdue) and one acknowledged."""
    register_estate(gateway, ESTATE, ESTATE_NAME, households_by_room(
        ESTATE, "3", "1", (("502", "陈业主", "13812345678"), ("602", "周业主", "13987654321"))))
    clerk = staff_accounts(gateway, (("desk.clerk", "cs_staff", [ESTATE], "王芳"),),
                           PASSWORD)["desk.clerk"]
    token = clerk["token"]
    register_complaint(gateway, token, ESTATE, f"{ESTATE}-602",
                       "6 楼水压一直很低，洗澡时几乎没有热水", category="water_supply",
                       received_at=(datetime.now(UTC) - timedelta(days=14)).isoformat())
    acknowledged = api(gateway, "POST", "/complaints", token, json={
        "estate_id": ESTATE, "reporter": {"name": "过路人", "phone": "13700001111"},
        "channel": "wechat", "category": "greening", "severity": "major",
        "content": "小区东门的树枝快压到电线了，刮风时很危险"})
    api(gateway, "POST", f"/complaints/{acknowledged['id']}/acknowledge", token,
        json={"note": "已致歉，安排园林组查看"})
    return clerk


@contextmanager
def at_a_desk(page):
    """The same browser with a desk's screen (not a phone's) until the block ends."""
    metrics = page.driver.execute_cdp_cmd
    metrics("Emulation.setDeviceMetricsOverride", {**DESK, "deviceScaleFactor": 1,
                                                    "mobile": False})
    try:
        yield
    finally:
        metrics("Emulation.setDeviceMetricsOverride", {
            "width": PHONE["width"], "height": PHONE["height"],
            "deviceScaleFactor": PHONE["pixelRatio"], "mobile": True})


def desk_check(page, state):
    """Screenshot the whole page at a desk's width, then axe-core at that size."""
    with at_a_desk(page):
        page.wait_for(lambda: page.driver.execute_script("return innerWidth") == DESK["width"],
                      "the desk's width")
        path = page.shot(f"{state}-desk", DESK)
        page.assert_accessible(f"{state}-desk")
    return path


def broken_nav_labels(page):
    """The top bar's items whose label the browser broke over more than one line (回 above
    访): the text's line boxes, told apart by their tops."""
    return page.driver.execute_script("""
        return Array.from(document.querySelectorAll('.nav a')).filter(function (item) {
            var range = document.createRange();
            range.selectNodeContents(item);
            var tops = Array.from(range.getClientRects()).map(function (box) {
                return Math.round(box.top); });
            return new Set(tops).size > 1;
        }).map(function (item) { return item.textContent.trim(); });""")


def choose(page, css, value):
    from selenium.webdriver.support.ui import Select

    Select(page.find(css)).select_by_value(value)


def act(page, action, fields=()):
    """Fill in an action's form on the complaint page, send it, wait for the page to say so."""
    for css, text in fields:
        page.type(css, text)
    page.click(f"#submit-{action}")
    # the page of the step before says "done" too: wait for this step's own answer
    page.wait_for(lambda: page.url.endswith(f"?done={action}") and page.find_all("#done"),
                  f"{action} done")


def test_the_front_desk_registers_and_works_a_complaint_to_its_close(gateway, clerk,
                                                                   browser_nojs):
    page = browser_nojs
    page.open(gateway.url("/console/"))
    page.wait_for_heading("员工登录")                      # no session: the login page
    page.check("login")
    page.type("#username", "desk.clerk")
    page.type("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_heading("待办投诉")
    assert page.text("#current-user").startswith("王芳")
    rows = page.find_all("#worklist tbody tr")
    assert len(rows) == 2 and "is-overdue" in rows[0].get_attribute("class")
    assert "水压" in rows[0].text and "已超" in rows[0].text

    # register: the household found by building and room, then the complaint
    page.click("#new-complaint")
    page.wait_for_heading("登记投诉")
    page.type("#building", "3")
    page.type("#room", "502")
    page.click("#find-households")
    page.wait_for(lambda: page.find_all("#household_id"), "the households found")
    assert "陈业主 138****5678" in page.text("#household_id option:checked")
    choose(page, "#category", "noise")
    page.type("#content", "楼上每天晚上十点以后还在装修，电钻声很大")
    page.check("register-form")
    page.click("#register-submit")
    page.wait_for(lambda: page.find_all("#apology-script"), "the apology to read")
    number = page.url.split("/console/complaints/")[1].split("?")[0]
    assert f"您的投诉 {number} 已登记" in page.text("#apology-script")
    assert page.text("#status") == "待首次回复"
    page.check("registered")
    desk_check(page, "registered")

    # work it through to the close, as the state machine offers each step
    act(page, "acknowledge", [("#acknowledge-note", "已向业主致歉，说明会联系楼上住户")])
    assert page.text("#status") == "已回复"
    act(page, "assign", [("#assign-department", "秩序部")])
    assert page.text("#status") == "处理中"
    page.check("assigned")
    desk_check(page, "assigned")
    act(page, "resolve", [("#resolve-resolution", "秩序部已上门劝导，装修改在白天进行")])
    page.click('label[for="close-owner_signoff-satisfied"]')
    act(page, "close")
    assert page.text("#status") == "已办结"
    assert not page.find_all("#form-close") and page.find_all("#form-reopen")
    steps = [item.text for item in page.find_all("#history li strong")]
    assert steps[:1] == ["登记"] and steps[-4:] == ["首次回复", "派单", "处理完成", "办结"]
    assert all("王芳" in item.text for item in page.find_all("#history li")[-4:])
    page.check("closed")

    history = api(gateway, "GET", f"/complaints/{number}", clerk["token"])["history"]
    assert [(line["action"], line["by"]) for line in history] == [
        ("register", clerk["id"]), ("acknowledge", clerk["id"]), ("assign", clerk["id"]),
        ("resolve", clerk["id"]), ("close", clerk["id"])]

    # the worklist: the two still open, the closed one gone
    page.click('.nav a[href="/console/"]')
    page.wait_for_heading("待办投诉")
    assert number not in page.text("#worklist") and len(page.find_all("#worklist tbody tr")) == 2
    assert broken_nav_labels(page) == []
    page.check("worklist")
    desk_check(page, "worklist")
