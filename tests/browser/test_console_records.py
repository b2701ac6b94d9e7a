"""The paper records in a real browser: a supervisor prints a closed complaint's
《投诉意见处理表》 from its page and the month's 《回访记录本》 from the records' forms.
Each page is screenshotted at a phone's size and a desk's and checked with axe-core; the
print stylesheet hides the toolbar when printed."""
import time

import pytest

from tests.browser.test_console import api, desk_check

pytestmark = [pytest.mark.broker, pytest.mark.browser]

ESTATE = "br-records"
ESTATE_NAME = "锦绣华庭"
PASSWORD = "password-of-the-records"


@pytest.fixture
def supervisor(gateway):
    rows = [{"household_id": f"{ESTATE}-1203", "building": "12", "unit": "2", "room": "1203",
             "occupied": True, "contacts": [{"name": "吴业主", "phone": "13522223333"}]}]
    api(gateway, "POST", f"/estates/{ESTATE}/households", gateway.admin,
        json={"rows": rows, "estate": {"name": ESTATE_NAME}})
    user = api(gateway, "POST", "/users", gateway.admin, json={
        "username": "records.sup", "password": PASSWORD, "roles": ["supervisor"],
        "estates": [ESTATE], "display_name": "刘主管"})
    token = gateway.login("records.sup", PASSWORD)
    made = api(gateway, "POST", "/complaints", token, json={
        "estate_id": ESTATE, "household_id": f"{ESTATE}-1203", "channel": "visit",
        "category": "noise", "content": "楼下商铺夜里十一点后仍在搬运货物，噪音很大"})
    for action, body in (("acknowledge", {}), ("assign", {"department": "秩序部"}),
                         ("resolve", {"resolution": "已约谈商铺，搬运改在晚九点前"}),
                         ("close", {"owner_signoff": "satisfied"})):
        api(gateway, "POST", f"/complaints/{made['id']}/{action}", token, json=body)
    deadline = time.monotonic() + 20
    while not (revisits := api(gateway, "GET", "/revisits", token,
                               params={"source_id": made["id"]})["items"]):
        assert time.monotonic() < deadline, "no revisit was scheduled"
        time.sleep(0.2)
    api(gateway, "POST", f"/revisits/{revisits[0]['id']}/record", token, json={
        "visitor_id": user["id"], "method": "phone", "reached": True,
        "satisfaction": "satisfied", "comments": "晚上安静多了"})
    return made


def test_a_supervisor_prints_the_complaint_form_and_the_revisit_book(gateway, supervisor,
                                                                      browser_nojs):
    page = browser_nojs
    page.open(gateway.url(f"/console/complaints/{supervisor['id']}"))
    page.wait_for_heading("员工登录")
    page.type("#username", "records.sup")
    page.type("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for(lambda: page.find_all("#print-record"), "the complaint's page")
    page.click("#print-record")
    page.wait_for_heading("投诉意见处理表")
    assert page.text("#estate-name") == ESTATE_NAME
    assert "夜里十一点" in page.text("#content")
    assert "晚上安静多了" in page.text("#revisits")
    assert page.find_all("#pdf-link")
    page.check("complaint-form")
    desk_check(page, "complaint-form")
    # printed, the page is the sheet alone
    page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    try:
        assert not page.find("nav.toolbar").is_displayed()
    finally:
        page.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})

    page.open(gateway.url("/console/records/"))
    page.wait_for_heading("记录打印")
    page.check("records")
    page.click("#form-revisit-book button")
    page.wait_for_heading("回访记录本")
    rows = page.find_all("#book tbody tr")
    assert len(rows) == 1 and "晚上安静多了" in rows[0].text
    page.check("revisit-book")
    desk_check(page, "revisit-book")
