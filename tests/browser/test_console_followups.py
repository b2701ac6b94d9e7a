"""A follow-up of an unsatisfied revisit in a real browser (phone size, then a desk's): a
supervisor goes from the revisit worklist to the follow-ups, opens the one a community
activity's revisit opened, and records the measures with the person responsible. Every
state is screenshotted and checked with axe-core."""
import time

import pytest

from tests.browser.test_console import api, desk_check
from tests.browser.test_console_revisits import PASSWORD, console_errors, log_in

pytestmark = [pytest.mark.broker, pytest.mark.browser]

ESTATE = "br-followup"


def eventually(read, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = read()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError("not within the time allowed")


@pytest.fixture(scope="module")
def followup(gateway):
    api(gateway, "POST", f"/estates/{ESTATE}/households", gateway.admin, json={
        "rows": [{"household_id": f"{ESTATE}-1", "building": "2", "unit": "1", "room": "601",
                  "occupied": True, "contacts": [{"name": "吴业主", "phone": "13655556666"}]}],
        "estate": {"name": "锦绣苑"}})
    api(gateway, "POST", "/users", gateway.admin, json={
        "username": "fu.head", "password": PASSWORD, "roles": ["supervisor"],
        "estates": [ESTATE], "display_name": "孙主管"})
    token = gateway.login("fu.head", PASSWORD)
    order = api(gateway, "POST", "/work-orders", token, json={
        "estate_id": ESTATE, "household_id": f"{ESTATE}-1", "kind": "community_activity",
        "content": "重阳节敬老活动"})
    api(gateway, "POST", f"/work-orders/{order['id']}/complete", token, json={})
    revisit = eventually(lambda: api(gateway, "GET", "/revisits", token,
                                     params={"source_id": order["id"]})["items"])[0]
    api(gateway, "POST", f"/revisits/{revisit['id']}/record", token, json={
        "method": "phone", "reached": True, "satisfaction": "very_unsatisfied",
        "resolved": False, "comments": "活动通知太晚，老人没赶上"})
    return eventually(lambda: api(gateway, "GET", "/followups", token,
                                  params={"revisit_id": revisit["id"]})["items"])[0]


def test_measures_are_recorded_on_the_follow_up_page(gateway, followup, browser):
    page = browser
    console_errors(page)
    log_in(page, gateway, "fu.head", "/console/revisits/")
    page.wait_for_heading("回访待办")
    page.click("#followups-link")
    page.wait_for_heading("回访不满意跟进")
    assert "活动通知太晚" in page.text(f"#followup-{followup['id']}")
    page.check("followups")
    desk_check(page, "followups")

    page.click(f"#followup-{followup['id']} a.number")
    page.wait_for_heading("社区活动回访不满意跟进")
    assert page.text("#owner-words") == "活动通知太晚，老人没赶上"
    page.check("followup")
    page.type("#measures-measures", "活动通知提前一周张贴并电话告知独居老人")
    page.type("#measures-responsible", "客服郑小红")
    page.click("#submit-measures")
    page.wait_for(lambda: page.find_all("#done"), "the measures recorded")
    assert "客服郑小红" in page.text("#measures")
    assert page.find_all("#form-answer")
    page.check("measures-recorded")
    desk_check(page, "measures-recorded")
    assert console_errors(page) == []
