"""The console's survey pages in a real browser: headquarters starts a round from the
form; the round's page loads itself again once the invitations are out, draws its charts
(ECharts under the CSP) and, while an owner answers in another tab, shows the new
response without being reloaded. Screenshotted and checked with axe-core."""
import re
from datetime import datetime, timedelta

import pytest

from tests.browser.test_console import desk_check
from tests.browser.test_console_revisits import console_errors, echarts  # noqa: F401 - fixture
from tests.browser.test_survey_page import THANKS, fill_all, questions, submit
from tests.helpers import (
    SERVICE_ZONE,
    api,
    households,
    local_input,
    register_estate,
    staff_accounts,
    wait_until,
)

pytestmark = [pytest.mark.broker, pytest.mark.browser]

ESTATE = "br-surveys"
PASSWORD = "password-of-the-surveys"


@pytest.fixture
def head(gateway):
    register_estate(gateway, ESTATE, "碧水湾", households(ESTATE, 3, building="2",
                                                        phones="1355555"))
    return staff_accounts(gateway, (("sv.head", "hq_analyst", [], "总部分析"),),
                          PASSWORD)["sv.head"]["token"]


def survey_link(gateway, round_id):
    def delivered():
        items = api(gateway, "GET", "/notify/deliveries", gateway.admin,
                    params={"template": "survey_invitation", "ref": round_id})["items"]
        return items[0]["text"] if items else None
    text = wait_until(delivered, timeout=30, interval=0.3, message="an invitation sent")
    return re.search(r"https?://\S+/s/[\w-]+", text).group()


def test_headquarters_starts_a_round_and_watches_it_answered(gateway, head, echarts,  # noqa: F811
                                                            browser):
    page = browser
    console_errors(page)
    page.log_in(gateway.url("/console/surveys/new"), "sv.head", PASSWORD)
    page.wait_for_heading("发起调查")
    page.check("new-round")
    now = datetime.now(SERVICE_ZONE)
    page.type("#round-title", "碧水湾专项调查：物业费调整")
    page.driver.execute_script(
        "document.getElementById('round-kind').value = 'event';"
        "document.getElementById('round-opens_at').value = arguments[0];"
        "document.getElementById('round-closes_at').value = arguments[1];",
        local_input(now - timedelta(minutes=1)), local_input(now + timedelta(days=7)))
    page.type("#round-occasion", "2027年物业费调整方案")
    page.type("#round-estate-list", ESTATE)
    page.click("#create-round")
    page.wait_for_heading("碧水湾专项调查：物业费调整")
    round_id = page.url.split("/console/surveys/")[1].split("?")[0]
    # the page loads itself again once the invitations are out and the round is open
    page.wait_for(lambda: page.find_all("#kpis"), "the round open, its response shown",
                  timeout=40)
    assert page.text("#invited") == "3" and page.text("#returned") == "0"
    page.wait_for(lambda: int(page.driver.execute_script(
        "return document.documentElement.getAttribute('data-charts') || 0")), "the charts")
    page.check("round-open")
    desk_check(page, "round-open")

    # an owner answers in another tab; this page shows it within its next reading
    link = survey_link(gateway, round_id)
    console_tab = page.driver.current_window_handle
    page.driver.switch_to.new_window("tab")
    page.open(link)
    fill_all(page, questions(page))
    submit(page)
    page.wait_for_heading(THANKS)
    page.driver.close()
    page.driver.switch_to.window(console_tab)
    page.wait_for(lambda: page.text("#returned") == "1", "the answer counted on the page",
                  timeout=30)
    assert page.text("#response-rate") == "33.33%"
    assert console_errors(page) == []
    page.check("round-answered")
