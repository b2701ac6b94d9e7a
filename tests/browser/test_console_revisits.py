"""The console's revisit pages and the headquarters dashboard in a real browser (phone
size, then a desk's): a clerk finds a complaint's revisit in the revisit worklist,
records the owner unsatisfied with a signature drawn on the screen (the PNG kept with the
record), and the complaint comes back reopened; without JavaScript the typed name signs.
Headquarters opens the dashboard: ECharts (served by the gateway) draws every chart
under the page's CSP with nothing in the console, and the numbers behind a chart, one
click away, are the statistics RPC's. Every state is screenshotted and checked with
axe-core."""
import base64
import subprocess
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from tests.browser.test_console import desk_check
from tests.helpers import (
    ROOT,
    api,
    closed_complaint,
    households_by_room,
    register_estate,
    revisit_of,
    staff_accounts,
)

pytestmark = [pytest.mark.broker, pytest.mark.browser]

ESTATE, ESTATE_NAME = "br-revisit", "翠湖花园"
PASSWORD = "password-of-the-revisits"
ECHARTS = ROOT / "services" / "gateway" / "static" / "vendor" / "echarts" / "echarts.min.js"


@pytest.fixture(scope="module")
def echarts():
    """ECharts where the gateway serves it (``make assets``, a step of ``make install``)."""
    if not ECHARTS.is_file():
        subprocess.run(["make", "--no-print-directory", "assets"], check=True, cwd=ROOT)
    return ECHARTS


@pytest.fixture(scope="module")
def people(gateway):
    register_estate(gateway, ESTATE, ESTATE_NAME, households_by_room(
        ESTATE, "8", "1", (("301", "孙业主", "13611112222"), ("302", "钱业主", "13633334444"))))
    return staff_accounts(gateway, (("rv.desk", "cs_staff", [ESTATE], "王芳"),
                                    ("rv.head", "hq_analyst", [], "总部分析")), PASSWORD)


def closed_with_revisit(gateway, token, household, content):
    """A lamp complaint worked to its close, and its revisit once revisit has scheduled it."""
    made = closed_complaint(gateway, token, ESTATE, household, content,
                            category="public_facilities", department="工程部",
                            resolution="已更换灯管")
    return made, revisit_of(gateway, made["id"])


def log_in(page, gateway, username, path):
    page.log_in(gateway.url(path), username, PASSWORD)


def draw_signature(page):
    """A few strokes across the signature pad, as a finger would make them."""
    from selenium.webdriver.common.action_chains import ActionChains

    canvas = page.find("#signature-canvas")
    page.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
    width = canvas.size["width"]
    strokes = ActionChains(page.driver)
    strokes.move_to_element_with_offset(canvas, -width // 3, 10).click_and_hold()
    for step in range(8):
        strokes.move_by_offset(width // 12, -12 if step % 2 else 12)
    strokes.release()
    strokes.move_to_element_with_offset(canvas, -width // 4, -20).click_and_hold()
    strokes.move_by_offset(width // 2, 30).release()
    strokes.perform()


def console_errors(page):
    """What the page wrote to the browser's console at error level (a CSP refusal, an
    exception in a script) since the last call: each test calls it first, to forget what
    the pages of earlier tests in the same browser logged."""
    return [entry for entry in page.driver.get_log("browser") if entry["level"] == "SEVERE"
            and "/favicon.ico" not in entry["message"]]      # the browser's own guess


def test_a_revisit_recorded_unsatisfied_with_a_signature_reopens_the_complaint(
        gateway, people, browser):
    page = browser
    console_errors(page)
    token = people["rv.desk"]["token"]
    complaint, revisit = closed_with_revisit(gateway, token, f"{ESTATE}-301",
                                          "8 栋 3 楼楼道灯坏了一个星期")
    log_in(page, gateway, "rv.desk", "/console/")
    page.wait_for_heading("待办投诉")
    page.click("#nav-revisits")
    page.wait_for_heading("回访待办")
    row = page.find(f"#revisit-{revisit['id']}")
    assert "投诉回访" in row.text and complaint["id"] in row.text
    page.check("worklist")
    desk_check(page, "worklist")

    page.click(f"#revisit-{revisit['id']} a.number")
    page.wait_for_heading("投诉回访")
    assert page.find("#signature-pad").is_displayed()          # the script showed the pad
    page.click('label[for="record-reached-true"]')
    page.click('label[for="record-satisfaction-unsatisfied"]')
    page.click('label[for="record-resolved-false"]')
    page.type("#record-comments", "灯修好两天又坏了")
    page.type("#record-signed_by", "孙业主")
    draw_signature(page)
    drawn = page.find("#record-signature_png").get_attribute("value")
    assert drawn.startswith("data:image/png;base64,")
    page.check("record-form")
    desk_check(page, "record-form")
    page.click("#submit-record")
    page.wait_for(lambda: page.find_all("#done"), "the outcome recorded")
    assert page.text("#status") == "已完成"
    assert page.find_all("#outcome img.signature-image")
    page.check("recorded")

    recorded = api(gateway, "GET", f"/revisits/{revisit['id']}", token)
    image = base64.b64decode(recorded["outcome"]["signature_png"])
    assert image.startswith(b"\x89PNG\r\n\x1a\n") and len(image) > 1000
    assert recorded["outcome"]["signature_png"] == drawn.split(",", 1)[1]
    assert recorded["outcome"]["satisfaction"] == "unsatisfied"

    # the complaint, from the revisit's link: reopened by the unsatisfied revisit
    page.click("#source-link")
    page.wait_for_heading(complaint["id"])
    page.wait_for(lambda: page.reload().text("#status") == "已重开", "the complaint reopened")
    assert page.find_all("#revisits a")
    page.check("complaint-reopened")
    assert console_errors(page) == []


def test_without_javascript_the_typed_name_signs(gateway, people, browser_nojs):
    page = browser_nojs
    token = people["rv.desk"]["token"]
    _, revisit = closed_with_revisit(gateway, token, f"{ESTATE}-302", "小区门口路灯不亮")
    log_in(page, gateway, "rv.desk", f"/console/revisits/{revisit['id']}")
    page.wait_for_heading("投诉回访")
    assert not page.find("#signature-pad").is_displayed()
    page.click('label[for="record-reached-true"]')
    page.click('label[for="record-satisfaction-satisfied"]')
    page.click('label[for="record-resolved-true"]')
    page.type("#record-signed_by", "钱业主")
    page.check("record-form")
    page.click("#submit-record")
    page.wait_for(lambda: page.find_all("#done"), "the outcome recorded")
    outcome = api(gateway, "GET", f"/revisits/{revisit['id']}", token)["outcome"]
    assert outcome["signed_by"] == "钱业主" and outcome["signature_png"] is None
    page.check("recorded")


def test_headquarters_sees_the_charts_and_their_numbers(gateway, people, echarts, browser):
    page = browser
    console_errors(page)
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    closed_with_revisit(gateway, people["rv.desk"]["token"], f"{ESTATE}-301", "看板用的投诉")
    log_in(page, gateway, "rv.head", f"/console/dashboard?month={month}")
    page.wait_for_heading("总部看板")
    charts = page.wait_for(lambda: int(page.driver.execute_script(
        "return document.documentElement.getAttribute('data-charts') || 0")), "the charts")
    assert charts == len(page.find_all(".chart")) == 4
    assert page.driver.execute_script("return typeof echarts.init") == "function"
    for chart in page.find_all(".chart"):
        assert chart.is_displayed() and chart.size["height"] > 200
        # something is drawn: a blank canvas of that size encodes to very little
        assert page.driver.execute_script(
            "var c = arguments[0].querySelector('canvas'); return c && c.toDataURL().length",
            chart) > 5000
    assert console_errors(page) == []
    page.shot("charts")
    page.assert_accessible("charts")
    desk_check(page, "charts")

    # the numbers behind the estates' chart, one click away: the RPC's for the month
    table = page.find("#table-estates")
    assert not table.is_displayed()
    page.click("#chart-estates + details summary")
    assert table.is_displayed()
    figures = api(gateway, "GET", "/stats/complaints", people["rv.head"]["token"],
                  params={"period": month})["estates"][ESTATE]
    visits = api(gateway, "GET", "/stats/revisits", people["rv.head"]["token"],
                 params={"period": month})["estates"][ESTATE]
    row = page.find(f"#estate-{ESTATE}")

    def shown(column):
        return row.find_element("css selector", f'td[data-column="{column}"]').text

    def rate(value):
        return "—" if value is None else f"{value * 100:.2f}%"

    assert shown("counted") == str(figures["counted"])
    assert shown("first_reply_on_time_rate") == rate(figures["first_reply_on_time_rate"])
    assert shown("reply_on_time_rate") == rate(figures["reply_on_time_rate"])
    assert shown("revisit_rate") == rate(visits["revisit_rate"])
    assert shown("overdue_now") == str(figures["overdue_now"])
    page.check("numbers")


def test_without_javascript_the_dashboard_is_its_tables(gateway, people, echarts, browser_nojs):
    page = browser_nojs
    log_in(page, gateway, "rv.head", "/console/dashboard")
    page.wait_for_heading("总部看板")
    assert all(not chart.is_displayed() for chart in page.find_all(".chart"))
    assert page.find("#table-group").is_displayed() and page.find("#table-sampling").is_displayed()
    page.check("tables")
    # by company, without JavaScript: the table's form is a GET form
    from selenium.webdriver.support.ui import Select
    Select(page.find("#estates-group-by")).select_by_value("company")
    page.click("#estates-submit")
    page.wait_for(lambda: "group_by=company" in page.driver.current_url, "the grouped page")
    rows = page.wait_for(lambda: page.find_all("#table-estates tr.group-row"), "the groups")
    # this test's estate has no company: its figures under the named ungrouped group
    # (estates other tests of the session registered may bring their companies' rows)
    labels = [row.find_element("css selector", "th").text for row in rows]
    assert "(未分组)" in labels and len(labels) == len(set(labels))
    assert page.find("#table-estates").is_displayed()
