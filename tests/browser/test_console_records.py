"""The paper records in a real browser: a supervisor prints a closed complaint's
《投诉意见处理表》 from its page and the month's 《回访记录本》 from the records' forms.
Each page is screenshotted at a phone's size and a desk's and checked with axe-core; the
print stylesheet hides the toolbar when printed."""
import pytest

from tests.browser.test_console import desk_check
from tests.helpers import (
    api,
    closed_complaint,
    households_by_room,
    register_estate,
    revisit_of,
    staff_accounts,
)

pytestmark = [pytest.mark.broker, pytest.mark.browser]

ESTATE = "br-records"
ESTATE_NAME = "锦绣华庭"
PASSWORD = "password-of-the-records"


@pytest.fixture
def supervisor(gateway):
    register_estate(gateway, ESTATE, ESTATE_NAME, households_by_room(
        ESTATE, "12", "2", (("1203", "吴业主", "13522223333"),)))
    user = staff_accounts(gateway, (("records.sup", "supervisor", [ESTATE], "刘主管"),),
                          PASSWORD)["records.sup"]
    made = closed_complaint(gateway, user["token"], ESTATE, f"{ESTATE}-1203",
                            "楼下商铺夜里十一点后仍在搬运货物，噪音很大", category="noise",
                            department="秩序部", resolution="已约谈商铺，搬运改在晚九点前",
                            channel="visit")
    api(gateway, "POST", f"/revisits/{revisit_of(gateway, made['id'])['id']}/record",
        user["token"], json={"visitor_id": user["id"], "method": "phone", "reached": True,
                             "satisfaction": "satisfied", "comments": "晚上安静多了"})
    return made


def test_a_supervisor_prints_the_complaint_form_and_the_revisit_book(gateway, supervisor,
                                                                      browser_nojs):
    page = browser_nojs
    page.log_in(gateway.url(f"/console/complaints/{supervisor['id']}"), "records.sup", PASSWORD)
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
