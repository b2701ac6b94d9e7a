"""An estate manager imports the estate's household list in a real browser: a list with a
wrong line is refused with the line said, a right one is checked, started, and its
progress watched to the end (the page's poller with JavaScript, the refresh link without).
A company manager, whose estates are the whole group's, finds an estate by the beginning
of its name, imports its list by typing the name, starts it from the jobs list, and has a
refused export shown again as sent. Each state screenshotted and checked with axe-core."""
import pytest

from tests.browser.test_console import api, desk_check

pytestmark = [pytest.mark.broker, pytest.mark.browser]

ESTATE = "br-jobs"
ESTATE_NAME = "翠湖天地"
PASSWORD = "password-of-the-imports"
ROWS = 2200      # three chunks of intake's 1,000
GROUP_ESTATE, GROUP_ESTATE_NAME = "br-jobs-group", "金桂园"


def estate_with_person(gateway, estate, estate_name, username, roles, estates, display_name):
    """``estate`` registered with one household, and a person who may see it."""
    api(gateway, "POST", f"/estates/{estate}/households", gateway.admin, json={
        "rows": [{"household_id": f"{estate}-0", "building": "1", "unit": "1",
                  "room": "101", "occupied": True, "contacts": []}],
        "estate": {"name": estate_name}})
    api(gateway, "POST", "/users", gateway.admin, json={
        "username": username, "password": PASSWORD, "roles": roles, "estates": estates,
        "display_name": display_name})
    return username


@pytest.fixture(scope="module")
def manager(gateway):
    return estate_with_person(gateway, ESTATE, ESTATE_NAME, "jobs.em", ["estate_manager"],
                              [ESTATE], "周经理")


@pytest.fixture(scope="module")
def company_manager(gateway):
    return estate_with_person(gateway, GROUP_ESTATE, GROUP_ESTATE_NAME, "jobs.cm",
                              ["company_manager"], [], "吴总")


def owner_list(folder, name, count, bad_line=None, estate=ESTATE):
    lines = ["户号,楼栋,单元,房号,入住,姓名,电话"]
    for n in range(count):
        occupied = "不清楚" if n + 2 == bad_line else "是"
        lines.append(f"{estate}-{n + 1},{n // 100 + 1},1,{n % 100 + 1:02d}01,{occupied},"
                     f"业主{n},1380000{n:04d}")
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def choose_and_check(page, path):
    page.wait_for(lambda: page.find_all("#import-form"), "the import form")
    page.find("#import-file").send_keys(path)
    page.click("#check-list")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_a_manager_imports_the_household_list_and_watches_it_to_the_end(
        gateway, manager, browser, browser_nojs, tmp_path, javascript):
    page = browser if javascript else browser_nojs
    page.log_in(gateway.url("/console/jobs/"), manager, PASSWORD)
    page.wait_for_heading("导入与导出")
    page.check("jobs")

    choose_and_check(page, owner_list(tmp_path, "坏名单.csv", 40, bad_line=9))
    page.wait_for(lambda: page.find_all("#line-errors"), "the list's errors")
    assert "line 9: occupied" in page.text("#line-errors")
    assert "未写入任何住户" in page.text("#import-errors")
    page.check("bad-list")

    choose_and_check(page, owner_list(tmp_path, "业主名单.csv", ROWS))
    page.wait_for(lambda: page.find_all("#start-import"), "the checked list")
    assert f"{ROWS} 户" in page.text("#checked")
    page.check("checked")
    desk_check(page, "checked")
    page.click("#start-import")
    page.wait_for(lambda: page.find_all("#progress-bar") or page.find_all("#all-done"),
                  "the progress")
    page.check("running")
    if javascript:      # the poller moves the numbers, then loads the result
        page.wait_for(lambda: page.find_all("#all-done"), "the end of the import", 120)
    else:               # the refresh link, until the job says it is done
        def refreshed():
            if page.find_all("#all-done"):
                return True
            page.click("#refresh")
            return False
        page.wait_for(refreshed, "the end of the import", 120)
    assert page.text("#done") == str(ROWS) and page.text("#written") == str(ROWS)
    assert page.find("#progress-bar").get_attribute("value") == str(ROWS)
    page.check("done")
    desk_check(page, "done")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_a_company_manager_finds_an_estate_by_name_and_imports_its_list(
        gateway, company_manager, browser, browser_nojs, tmp_path, javascript):
    page = browser if javascript else browser_nojs
    page.log_in(gateway.url("/console/jobs/"), company_manager, PASSWORD)
    page.wait_for_heading("导入与导出")
    assert not page.find_all("#estate-choice-list")     # no list of the group's thousands
    page.type("#estate-q", GROUP_ESTATE_NAME[:2])
    page.click("#find-estate")
    page.wait_for(lambda: page.find_all("#estate-choice-list"), "the estates found")
    assert GROUP_ESTATE_NAME in page.text("#estate-choice-list")
    assert page.find("#import-estate").get_attribute("list") == "estate-choices"
    page.check("group-found")

    # an export refused is shown again as it was sent, its error at its field
    page.type("#plan-export-estate", "无此小区")
    page.click("#start-plan-export")
    page.wait_for(lambda: page.find_all("#plan_export-estate_id-error"), "the refusal")
    assert page.find("#plan-export-estate").get_attribute("value") == "无此小区"
    assert page.find("#plan-export-estate").get_attribute("aria-invalid") == "true"
    page.check("group-refused")

    page.type("#import-estate", GROUP_ESTATE_NAME)
    page.find("#import-file").send_keys(
        owner_list(tmp_path, "名单.csv", 5, estate=GROUP_ESTATE))
    page.click("#check-list")
    page.wait_for(lambda: page.find_all("#start-import"), "the checked list")
    assert GROUP_ESTATE_NAME in page.text("main")
    job_id = page.url.rstrip("/").rsplit("/", 1)[1]
    # not started: listed on the jobs page, with its start button
    page.open(gateway.url("/console/jobs/"))
    page.wait_for(lambda: page.find_all(f"#start-{job_id}"), "the checked job listed")
    assert "已检查，待开始" in page.text(f"#job-{job_id}")
    page.check("group-checked-listed")
    page.click(f"#start-{job_id} button")
    page.wait_for(lambda: page.find_all("#progress-bar") or page.find_all("#all-done"),
                  "the started job")
