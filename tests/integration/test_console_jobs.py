"""The console's imports and long exports over real HTTP to the five services running as
processes: a household list checked line by line (nothing written when any line is
wrong), then imported in the background 1,000 at a time while its progress is read; a
list over GATEWAY_MAX_BODY refused with the limit said; jobs seen only by who may do
their work in their estates; a month's revisit plan of each estate exported as a job and
downloaded; a survey round answered on the owners' page exported as each estate's
notice-board workbook, its figures the report's, an estate's workbook for its manager alone;
the owners' complaint statistics as a workbook. A group-wide person (3,000 estates and
more) chooses an estate by typing its id or name, helped by a search by the name's
beginning; what is typed is checked by the server, unknown and another's alike."""
import csv
import io
import re
import time
import zipfile

import openpyxl
import pytest

from tests.helpers import (
    STAFF_PASSWORD,
    api,
    csrf,
    hidden,
    households,
    page,
    post,
    prepared_survey_round,
    register_estate,
    register_estates,
    signed_in,
    staff_accounts,
    wait_until,
)

pytestmark = pytest.mark.broker

EAST, WEST = "job-east", "job-west"
NAMES = {EAST: "东湖花园", WEST: "西山雅苑"}
# for the group-wide chooser: an estate of its own, and two of one name
NORTH, TWINS = "job-north", {"job-twin-1": "同名雅居", "job-twin-2": "同名雅居"}
HEADER = ["户号", "楼栋", "单元", "房号", "入住", "姓名", "电话"]


@pytest.fixture(scope="module")
def staff(gateway):
    register_estates(gateway, NAMES, 1)
    register_estates(gateway, {NORTH: "北湖家园"}, 1)
    for estate, name in TWINS.items():
        register_estate(gateway, estate, name, households(estate, 1))
    return staff_accounts(gateway, [
        ("job.em.east", "estate_manager", [EAST], "李经理"),
        ("job.em.west", "estate_manager", [WEST], None),
        ("job.cs.east", "cs_staff", [EAST], None),
        ("job.hq", "hq_analyst", [], None),
        ("job.cm", "company_manager", [], None),
    ])


def owner_list(count, bad_line=None, estate=EAST):
    """A list as estates hand it over: one line a household, Chinese headers."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    for n in range(count):
        occupied = "也许" if n + 2 == bad_line else "是"
        writer.writerow([f"{estate}-L{n}", str(n // 100 + 1), "1", f"{n % 100 + 1:02d}01",
                         occupied, f"业主{n}", f"1390000{n:04d}"])
    return buffer.getvalue().encode("utf-8")


def upload(session, gateway, content, name="名单.csv", estate=EAST):
    form = page(session, gateway, "/console/jobs/").text
    return session.post(gateway.url("/console/jobs/import"), allow_redirects=False,
                        timeout=60, data={"csrf_token": csrf(form), "estate_id": estate},
                        files={"file": (name, content, "text/csv")})


def count_households(gateway, token, estate):
    total, cursor = 0, None
    while True:
        found = api(gateway, "GET", f"/estates/{estate}/households", token,
                    params={"limit": "1000", **({"cursor": cursor} if cursor else {})})
        total += len(found["items"])
        cursor = found.get("next_cursor")
        if not cursor:
            return total


def wait_done(session, gateway, job_url, timeout=120):
    readings = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reading = session.get(gateway.url(job_url + "/progress"), timeout=30).json()
        readings.append(reading)
        if reading["status"] in ("done", "failed"):
            return readings
        time.sleep(0.1)
    raise AssertionError(f"the job never finished: {readings[-1]}")


def test_a_list_with_a_wrong_line_is_refused_whole_with_the_line_said(gateway, staff):
    session = signed_in(gateway, "job.em.east")
    before = count_households(gateway, staff["job.em.east"]["token"], EAST)
    response = upload(session, gateway, owner_list(30, bad_line=17))
    assert response.status_code == 422, response.text[:2000]
    assert 'id="line-errors"' in response.text and "line 17: occupied" in response.text
    assert "未写入任何住户" in response.text
    assert count_households(gateway, staff["job.em.east"]["token"], EAST) == before
    missing = upload(session, gateway, "姓名,电话\n张三,139\n".encode(), name="x.csv")
    assert missing.status_code == 422 and "missing column" in missing.text


def test_a_list_is_checked_then_imported_in_the_background_with_its_progress(gateway, staff):
    session = signed_in(gateway, "job.em.east")
    response = upload(session, gateway, owner_list(2500))
    assert response.status_code == 303, response.text[:2000]
    job_url = response.headers["Location"]
    checked = page(session, gateway, job_url).text
    assert "名单检查无误：2500 户" in checked and 'id="start-import"' in checked
    # checked, nothing is written until started
    assert count_households(gateway, staff["job.em.east"]["token"], EAST) == 1
    post(session, gateway, job_url + "/start", hidden(checked, "start-form"))
    running = page(session, gateway, job_url).text
    assert 'id="refresh"' in running or 'id="all-done"' in running
    assert 'src="/static/live.js"' in running
    readings = wait_done(session, gateway, job_url)
    last = readings[-1]
    assert last["status"] == "done", last
    assert last["done"] == last["total"] == 2500 and last["written"] == 2500
    assert last["imported"] == 2500 and last["contacts"] == 2500 and not last["failed"]
    # the progress moved chunk by chunk: never back, never past the total
    done = [reading["done"] for reading in readings]
    assert done == sorted(done) and all(value % 1000 == 0 or value == 2500 for value in done)
    assert count_households(gateway, staff["job.em.east"]["token"], EAST) == 2501
    finished = page(session, gateway, job_url).text
    assert 'id="all-done"' in finished and 'id="refresh"' not in finished
    assert 'id="job-' in page(session, gateway, "/console/jobs/").text
    # the same list again updates, never doubles
    again = upload(session, gateway, owner_list(2500))
    post(session, gateway, again.headers["Location"] + "/start",
         hidden(page(session, gateway, again.headers["Location"]).text, "start-form"))
    last = wait_done(session, gateway, again.headers["Location"])[-1]
    assert last["updated"] == 2500 and last["imported"] == 0
    assert count_households(gateway, staff["job.em.east"]["token"], EAST) == 2501


def test_a_list_over_the_body_limit_is_refused_with_the_limit_said(gateway, staff):
    session = signed_in(gateway, "job.em.east")
    response = upload(session, gateway, b"x" * (2 * 1024 * 1024 + 10))
    assert response.status_code == 413
    assert response.headers["Content-Type"].startswith("text/html")
    assert "文件太大" in response.text and "2.0 MB" in response.text


def test_a_job_is_seen_only_by_who_may_do_its_work_in_its_estates(gateway, staff):
    east = signed_in(gateway, "job.em.east")
    response = upload(east, gateway, owner_list(3))
    job_url = response.headers["Location"]
    west = signed_in(gateway, "job.em.west")
    page(west, gateway, job_url, status=404)
    assert west.get(gateway.url(job_url + "/progress"), allow_redirects=False,
                    timeout=30).status_code == 404
    assert job_url.rsplit("/", 1)[1] not in page(west, gateway, "/console/jobs/").text
    clerk = signed_in(gateway, "job.cs.east")
    page(clerk, gateway, job_url, status=404)
    assert 'id="import-form"' not in page(clerk, gateway, "/console/jobs/").text
    # another estate's list cannot be uploaded either
    other = upload(east, gateway, owner_list(3), estate=WEST)
    assert other.status_code == 422 and 'id="estate_id-error"' in other.text


def test_each_estates_monthly_plan_is_exported_as_a_job_and_downloaded(gateway, staff):
    admin_session = signed_in(gateway, "job.em.east")
    form = page(admin_session, gateway, "/console/jobs/").text
    month = re.search(r'name="month" value="([\d-]+)"', form).group(1)
    response = post(admin_session, gateway, "/console/jobs/export", {
        **hidden(form, "plan-export-form"), "month": month, "estate_id": EAST})
    last = wait_done(admin_session, gateway, response.headers["Location"])[-1]
    assert last["status"] == "done" and last["done"] == last["total"] == 1 and last["has_file"]
    assert 'id="download"' in page(admin_session, gateway, response.headers["Location"]).text
    workbook = admin_session.get(gateway.url(response.headers["Location"] + "/file"),
                                 timeout=60)
    assert workbook.status_code == 200
    assert workbook.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(workbook.content)).active
    assert any(NAMES[EAST] in str(cell.value) for row in sheet.iter_rows() for cell in row
               if cell.value)
    # who may not export it cannot take it
    page(signed_in(gateway, "job.em.west"), gateway,
         response.headers["Location"] + "/file", status=404)


def test_a_group_wide_role_exports_the_plan_of_one_estate_it_picks(gateway, staff):
    hq = signed_in(gateway, "job.hq")
    form = page(hq, gateway, "/console/jobs/").text
    # any of the group's estates, typed or found by name; no "each" (the whole group)
    assert re.search(r'<input type="text" id="plan-export-estate" name="estate_id"', form)
    assert 'id="estate-search-form"' in form       # no list of the group's 3,000
    assert '<datalist id="estate-choices"></datalist>' in form
    found = page(hq, gateway, "/console/jobs/?estate_q=东湖").text
    assert f'<option value="{EAST}">{NAMES[EAST]}</option>' in found
    assert NAMES[WEST] not in found
    assert 'id="plan-export-form"' in form and "console_job_each_estate" not in form
    plan_form = form[form.index('id="plan-export-form"'):]
    assert "每个小区" not in plan_form[:plan_form.index("</form>")]
    refused = post(hq, gateway, "/console/jobs/export", {
        **hidden(form, "plan-export-form"), "month": "2026-03", "estate_id": ""}, status=422)
    assert 'id="plan_export-estate_id-error"' in refused.text and "请选择一个小区" in refused.text
    assert 'name="month" value="2026-03"' in refused.text     # what was sent, kept
    unknown = post(hq, gateway, "/console/jobs/export", {
        **hidden(form, "plan-export-form"), "month": "2026-03", "estate_id": "no-such-estate"},
        status=422)
    assert "找不到您可选的这个小区" in unknown.text and 'value="no-such-estate"' in unknown.text
    assert 'aria-invalid="true"' in unknown.text
    started = post(hq, gateway, "/console/jobs/export", {     # picked by its name
        **hidden(form, "plan-export-form"), "month": "2026-03", "estate_id": NAMES[WEST]})
    last = wait_done(hq, gateway, started.headers["Location"])[-1]
    assert last["status"] == "done" and last["done"] == last["total"] == 1, last
    workbook = hq.get(gateway.url(started.headers["Location"] + "/file"), timeout=60)
    assert workbook.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(workbook.content)).active
    assert any(NAMES[WEST] in str(cell.value) for row in sheet.iter_rows() for cell in row
               if cell.value)


def recent_jobs(session, gateway):
    return set(re.findall(r'<tr id="job-(\w+)"', page(session, gateway, "/console/jobs/").text))


def test_a_group_wide_person_imports_a_list_for_an_estate_found_by_name(gateway, staff):
    cm = signed_in(gateway, "job.cm")
    form = page(cm, gateway, "/console/jobs/").text
    assert re.search(r'<input type="text" id="import-estate" name="estate_id"', form)
    found = page(cm, gateway, "/console/jobs/?estate_q=北湖").text
    assert f'<option value="{NORTH}">北湖家园</option>' in found
    assert 'id="estate-choice-list"' in found and NORTH in found
    assert 'id="no-choices"' in page(cm, gateway, "/console/jobs/?estate_q=不存在").text
    by_id = page(cm, gateway, f"/console/jobs/?estate_q={NORTH}").text
    assert f'<option value="{NORTH}">北湖家园</option>' in by_id
    long = page(cm, gateway, "/console/jobs/?estate_q=" + "长" * 101).text
    assert 'id="estate_q-error"' in long
    response = upload(cm, gateway, owner_list(3, estate=NORTH), estate="北湖家园")
    assert response.status_code == 303, response.text[:2000]
    job_url = response.headers["Location"]
    checked = page(cm, gateway, job_url).text
    assert "北湖家园" in checked
    post(cm, gateway, job_url + "/start", hidden(checked, "start-form"))
    last = wait_done(cm, gateway, job_url)[-1]
    assert last["status"] == "done" and last["imported"] == 3, last
    assert count_households(gateway, staff["job.cm"]["token"], NORTH) == 4
    # a name two estates share is refused: its id is asked for
    twin = upload(cm, gateway, owner_list(3, estate=NORTH), estate="同名雅居")
    assert twin.status_code == 422 and 'id="estate_id-error"' in twin.text
    assert "有多个小区同名" in twin.text


def error_of(text, field):
    return re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', text).group(1)


def test_an_unknown_or_anothers_estate_is_refused_at_its_field_nothing_written(gateway, staff):
    before = {estate: count_households(gateway, gateway.admin, estate)
              for estate in (NORTH, WEST)}
    cm = signed_in(gateway, "job.cm")
    jobs_before = recent_jobs(cm, gateway)
    unknown = upload(cm, gateway, owner_list(3, estate=NORTH), estate="南湖不存在")
    assert unknown.status_code == 422 and 'value="南湖不存在"' in unknown.text
    said = error_of(unknown.text, "estate_id")
    assert "找不到您可选的这个小区" in said
    assert recent_jobs(cm, gateway) == jobs_before
    # a manager of one estate naming another's, by id or by name: the same words as an
    # estate that does not exist, and not its name
    east = signed_in(gateway, "job.em.east")
    east_jobs = recent_jobs(east, gateway)
    for typed in (WEST, NAMES[WEST], "no-such-estate"):
        refused = upload(east, gateway, owner_list(3, estate=WEST), estate=typed)
        assert refused.status_code == 422, typed
        assert error_of(refused.text, "estate_id") == said, typed
        if typed != NAMES[WEST]:
            assert NAMES[WEST] not in refused.text
    assert recent_jobs(east, gateway) == east_jobs
    form = page(east, gateway, "/console/jobs/").text
    other = post(east, gateway, "/console/jobs/export", {
        **hidden(form, "plan-export-form"), "month": "2026-03", "estate_id": WEST}, status=422)
    assert error_of(other.text, "plan_export-estate_id") == said
    assert NAMES[WEST] not in other.text
    assert {estate: count_households(gateway, gateway.admin, estate)
            for estate in (NORTH, WEST)} == before


def test_a_checked_list_not_started_is_listed_for_its_owner_with_its_start(gateway, staff):
    east = signed_in(gateway, "job.em.east")
    job_url = upload(east, gateway, owner_list(3)).headers["Location"]
    job_id = job_url.rsplit("/", 1)[1]
    listed = page(east, gateway, "/console/jobs/").text
    row = listed[listed.index(f'<tr id="job-{job_id}"'):].split("</tr>")[0]
    assert "已检查，待开始" in row and f'id="start-{job_id}"' in row
    # nobody else's to start, not even a manager of the same estate
    gateway.account("job.em.east2", ["estate_manager"], [EAST], STAFF_PASSWORD)
    assert job_id not in recent_jobs(signed_in(gateway, "job.em.east2"), gateway)
    post(east, gateway, job_url + "/start", hidden(listed, f"start-{job_id}"))
    assert wait_done(east, gateway, job_url)[-1]["status"] == "done"
    row = page(east, gateway, "/console/jobs/").text.split(f'<tr id="job-{job_id}"')[1]
    assert "已完成" in row.split("</tr>")[0] and f'id="start-{job_id}"' not in row


def test_a_refused_export_keeps_what_was_chosen(gateway, staff):
    session = signed_in(gateway, "job.em.east")
    form = page(session, gateway, "/console/jobs/").text
    refused = post(session, gateway, "/console/jobs/export", {
        **hidden(form, "plan-export-form"), "month": "2026-13", "estate_id": EAST},
        status=422)
    assert 'id="month-error"' in refused.text
    assert 'name="month" value="2026-13"' in refused.text
    assert f'<option value="{EAST}" selected>' in refused.text
    # a group-wide person's typed estate kept too
    hq = signed_in(gateway, "job.hq")
    form = page(hq, gateway, "/console/jobs/").text
    refused = post(hq, gateway, "/console/jobs/export", {
        **hidden(form, "plan-export-form"), "month": "2026-13", "estate_id": NAMES[WEST]},
        status=422)
    assert 'id="month-error"' in refused.text and 'name="month" value="2026-13"' in refused.text
    plan_form = refused.text[refused.text.index('id="plan-export-form"'):].split("</form>")[0]
    assert f'value="{NAMES[WEST]}"' in plan_form


def test_the_owners_complaint_statistics_as_a_workbook(gateway, staff):
    session = signed_in(gateway, "job.em.east")
    month = time.strftime("%Y-%m")
    response = session.get(gateway.url(
        f"/console/records/complaint-report?estate_id={EAST}&period={month}&format=xlsx"),
        timeout=60)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    cells = [str(cell.value) for row in sheet.iter_rows() for cell in row if cell.value]
    assert f"{NAMES[EAST]} 业主投诉统计报告" in cells and "受理投诉" in cells
    assert f"统计期间：{month}" in cells
    page_text = page(session, gateway,
                     f"/console/records/complaint-report?estate_id={EAST}&period={month}").text
    assert 'id="xlsx-link"' in page_text
    assert zipfile.is_zipfile(io.BytesIO(response.content))


SURVEYED = {"job-sv-a": "南湖花园", "job-sv-b": "北岸雅居"}
# what each estate's owners answer, household by household (every question the same)
ANSWERS = {"job-sv-a": ["5", "4", "2"], "job-sv-b": ["3", "na"]}
SUMMARY = {"发放问卷（份）": "invited", "回收问卷（份）": "returned", "回收率": "response_rate",
           "有效评价（项次）": "answered", "满意评价（4-5分，项次）": "satisfied",
           "总体满意率": "satisfaction_rate", "综合得分（百分制）": "score"}


def answer_on_the_owner_page(gateway, token, value):
    """An owner's questionnaire (``/s/{token}``) sent with ``value`` for every question."""
    form = gateway.request("GET", f"/s/{token}")
    assert form.status_code == 200, form.text[:2000]
    keys = sorted(set(re.findall(r'name="answer\.(\w+)"', form.text)))
    nonce = re.search(r'name="nonce" value="([^"]+)"', form.text).group(1)
    sent = gateway.request("POST", f"/s/{token}", allow_redirects=False, data={
        "nonce": nonce, "action": "submit", **{f"answer.{key}": value for key in keys}})
    assert sent.status_code == 303, sent.text[:2000]


@pytest.fixture(scope="module")
def answered_round(gateway, staff):
    """A round over two estates, each household's answers given on the owner page; a
    manager of both (and of an estate outside the round), a manager of one."""
    for estate, answers in ANSWERS.items():
        register_estate(gateway, estate, SURVEYED[estate], households(estate, len(answers)))
    staff_accounts(gateway, [("job.em.both", "estate_manager", [*SURVEYED, EAST], None),
                             ("job.em.a", "estate_manager", ["job-sv-a"], None)])
    created = prepared_survey_round(gateway, gateway.admin, "2026年南北满意度调查",
                                    list(SURVEYED))
    invitations = api(gateway, "GET", f"/survey/rounds/{created['id']}/invitations",
                      gateway.admin)["items"]
    for invitation in invitations:
        estate, n = invitation["household_id"].rsplit("-", 1)
        answer_on_the_owner_page(gateway, invitation["token"], ANSWERS[estate][int(n)])
    wait_until(lambda: api(gateway, "GET", f"/survey/rounds/{created['id']}/report",
                           gateway.admin)["returned"] == 5,
               timeout=30, interval=0.2, message="the five answers counted")
    return created


def start_survey_export(session, gateway, round_id, estate=""):
    form = page(session, gateway, "/console/jobs/").text
    assert f'<option value="{round_id}">' in form
    response = post(session, gateway, "/console/jobs/export", {
        **hidden(form, "survey-export-form"), "round_id": round_id, "estate_id": estate})
    return response.headers["Location"]


def summary_of(content):
    """The workbook's summary sheet as {report field: value}, and the sheet's text."""
    book = openpyxl.load_workbook(io.BytesIO(content))
    sheet = book["汇总"]
    rows = {row[0]: row[1] for row in sheet.iter_rows(values_only=True) if row[0] in SUMMARY}
    cells = " ".join(str(value) for row in sheet.iter_rows(values_only=True)
                     for value in row if value is not None)
    return {SUMMARY[label]: value for label, value in rows.items()}, cells, book


def test_a_rounds_notice_board_workbooks_are_exported_as_a_job(gateway, answered_round):
    round_id = answered_round["id"]
    both = signed_in(gateway, "job.em.both")
    job_url = start_survey_export(both, gateway, round_id)
    readings = wait_done(both, gateway, job_url)
    last = readings[-1]
    assert last["status"] == "done", last
    assert last["done"] == last["total"] == 2 and last["has_file"]
    assert [reading["done"] for reading in readings] == sorted(r["done"] for r in readings)
    assert 'id="download"' in page(both, gateway, job_url).text
    assert f'id="job-{job_url.rsplit("/", 1)[1]}"' in page(both, gateway, "/console/jobs/").text
    download = both.get(gateway.url(job_url + "/file"), timeout=60)
    assert download.status_code == 200 and download.headers["Content-Type"] == "application/zip"
    assert "2026" in download.headers["Content-Disposition"]
    bundle = zipfile.ZipFile(io.BytesIO(download.content))
    title = answered_round["title"]
    assert sorted(bundle.namelist()) == sorted(f"{name}-{title}.xlsx"
                                               for name in SURVEYED.values())
    returned = 0
    for estate, name in SURVEYED.items():
        report = api(gateway, "GET", f"/survey/rounds/{round_id}/report", gateway.admin,
                     params={"estate_id": estate})
        figures, cells, book = summary_of(bundle.read(f"{name}-{title}.xlsx"))
        assert figures == {field: report[field] for field in SUMMARY.values()}, estate
        assert f"范围：{name}" in cells and title in cells
        assert report["invited"] == report["returned"] == len(ANSWERS[estate])
        # each question's figures too, as the report gives them
        categories = {row[1]: row[2:7] for row in book["分项满意率"].iter_rows(values_only=True)
                      if row[1] and row[1] != "合计"}
        for view in report["categories"].values():
            assert categories[view["label_zh"]] == (
                view["answered"], view["satisfied"], view["not_applicable"], view["rate"],
                view["score"]), (estate, view["label_zh"])
        returned += report["returned"]
    assert returned == 5
    assert summary_of(bundle.read(f"南湖花园-{title}.xlsx"))[0]["satisfaction_rate"] \
        != summary_of(bundle.read(f"北岸雅居-{title}.xlsx"))[0]["satisfaction_rate"]


def test_a_manager_of_one_estate_exports_that_estates_workbook_only(gateway, answered_round):
    round_id = answered_round["id"]
    one = signed_in(gateway, "job.em.a")
    job_url = start_survey_export(one, gateway, round_id)
    last = wait_done(one, gateway, job_url)[-1]
    assert last["status"] == "done" and last["done"] == last["total"] == 1, last
    download = one.get(gateway.url(job_url + "/file"), timeout=60)
    assert download.status_code == 200
    assert download.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    report = api(gateway, "GET", f"/survey/rounds/{round_id}/report", gateway.admin,
                 params={"estate_id": "job-sv-a"})
    figures, cells, _ = summary_of(download.content)
    assert figures == {field: report[field] for field in SUMMARY.values()}
    assert f"范围：{SURVEYED['job-sv-a']}" in cells and SURVEYED["job-sv-b"] not in cells
    # the other estate's workbook, started by the manager of both: not theirs to see or take
    both = signed_in(gateway, "job.em.both")
    other = start_survey_export(both, gateway, round_id, estate="job-sv-b")
    assert wait_done(both, gateway, other)[-1]["status"] == "done"
    page(one, gateway, other, status=404)
    page(one, gateway, other + "/file", status=404)
    assert one.get(gateway.url(other + "/progress"), timeout=30).status_code == 404
    assert other.rsplit("/", 1)[1] not in page(one, gateway, "/console/jobs/").text
    # nor can they ask for it by naming it on the form: refused under the form sent
    form = page(one, gateway, "/console/jobs/").text
    refused = post(one, gateway, "/console/jobs/export", {
        **hidden(form, "survey-export-form"), "round_id": round_id, "estate_id": "job-sv-b"},
        status=422)
    assert 'id="survey_export-estate_id-error"' in refused.text
    assert 'id="estate_id-error"' not in refused.text       # not under the import form


def test_an_estate_outside_the_round_is_refused_on_the_form(gateway, answered_round):
    both = signed_in(gateway, "job.em.both")
    form = page(both, gateway, "/console/jobs/").text
    refused = post(both, gateway, "/console/jobs/export", {
        **hidden(form, "survey-export-form"), "round_id": answered_round["id"],
        "estate_id": EAST}, status=422)
    assert 'id="survey_export-estate_id-error"' in refused.text
    assert "不在本次调查范围内" in refused.text
    # the round and the estate sent stay chosen on the form shown again
    assert f'<option value="{answered_round["id"]}" selected>' in refused.text
    assert f'<option value="{EAST}" selected>' in refused.text


def test_the_survey_export_says_what_each_covers(gateway, answered_round):
    mine = page(signed_in(gateway, "job.em.both"), gateway, "/console/jobs/").text
    survey_form = mine[mine.index('id="survey-export-form"'):].split("</form>")[0]
    assert "本轮调查中我负责的各小区" in survey_form and "全部小区" not in survey_form
    hq = signed_in(gateway, "job.hq")
    whole = page(hq, gateway, "/console/jobs/").text
    survey_form = whole[whole.index('id="survey-export-form"'):].split("</form>")[0]
    assert "本轮调查的全部小区" in survey_form and "我负责" not in survey_form


def test_a_group_wide_persons_refused_survey_export_keeps_the_round_and_estate(
        gateway, answered_round):
    hq = signed_in(gateway, "job.hq")
    form = page(hq, gateway, "/console/jobs/").text
    round_id = answered_round["id"]
    refused = post(hq, gateway, "/console/jobs/export", {
        **hidden(form, "survey-export-form"), "round_id": round_id, "estate_id": NAMES[EAST]},
        status=422)
    assert "不在本次调查范围内" in error_of(refused.text, "survey_export-estate_id")
    survey_form = refused.text[refused.text.index('id="survey-export-form"'):]
    survey_form = survey_form.split("</form>")[0]
    assert f'<option value="{round_id}" selected>' in survey_form
    assert f'value="{NAMES[EAST]}"' in survey_form
    # a round that is none: said at the round, not an error page
    gone = post(hq, gateway, "/console/jobs/export", {
        **hidden(form, "survey-export-form"), "round_id": "no-such-round", "estate_id": ""},
        status=422)
    assert 'id="round_id-error"' in gone.text
    # one estate of the round, by name: that estate's workbook
    started = post(hq, gateway, "/console/jobs/export", {
        **hidden(form, "survey-export-form"), "round_id": round_id,
        "estate_id": SURVEYED["job-sv-b"]})
    last = wait_done(hq, gateway, started.headers["Location"])[-1]
    assert last["status"] == "done" and last["total"] == 1, last
