"""The paper records printed from the console, over real HTTP to the five services
running as processes: a complaint's 《投诉意见处理表》 with its revisit and the signature
lines, the month's 《回访记录本》 (and the repair revisits alone), the survey's
notice-board result with its rectification plan, the owners' complaint statistics — each
as an A4 page and as a PDF whose text is the Chinese the page shows; only within the
person's estates; a wrong choice sent back to the form with the field said."""
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pypdf
import pytest

from tests.helpers import (
    api,
    closed_complaint,
    complaint_with_its_revisit,
    page,
    prepared_survey_round,
    register_estates,
    revisit_of,
    signed_in,
    staff_accounts,
)

pytestmark = pytest.mark.broker

EAST, WEST = "rec-east", "rec-west"
NAMES = {EAST: "东湖花园", WEST: "西山雅苑"}
ZONE = ZoneInfo("Asia/Shanghai")
THIS_MONTH = datetime.now(ZONE).strftime("%Y-%m")


@pytest.fixture(scope="module")
def staff(gateway):
    register_estates(gateway, NAMES, 2, building="7", room="03", phones="1371234",
                     owner="业户")
    return staff_accounts(gateway, (("rec.sup.east", "supervisor", [EAST], "rec.sup.east"),
                                    ("rec.sup.west", "supervisor", [WEST], "rec.sup.west"),
                                    ("rec.hq", "hq_analyst", [], "rec.hq")))


@pytest.fixture(scope="module")
def handled(gateway, staff):
    """An east complaint worked to its close and its revisit recorded by phone."""
    token = staff["rec.sup.east"]["token"]
    made = closed_complaint(gateway, token, EAST, f"{EAST}-0", "二号楼电梯厅垃圾堆放三天无人清理",
                            resolution="已安排保洁每日清运")
    revisit = revisit_of(gateway, made["id"])
    api(gateway, "POST", f"/revisits/{revisit['id']}/record", token, json={
        "visitor_id": staff["rec.sup.east"]["id"], "method": "phone", "reached": True,
        "satisfaction": "very_satisfied", "comments": "保洁很及时，谢谢"})
    complaint_with_its_revisit(gateway, made["id"])
    return {"complaint": made, "revisit": revisit}


def pdf_text(session, gateway, path) -> str:
    response = session.get(gateway.url(path + ("&" if "?" in path else "?") + "format=pdf"),
                           allow_redirects=False, timeout=60)
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["Content-Type"] == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    reader = pypdf.PdfReader(io.BytesIO(response.content))
    return "".join(sheet.extract_text() for sheet in reader.pages).replace(" ", "")


def test_the_complaint_form_prints_the_complaint_its_handling_and_its_revisit(
        gateway, staff, handled):
    session = signed_in(gateway, "rec.sup.east")
    complaint_id = handled["complaint"]["id"]
    assert f'href="/console/records/complaints/{complaint_id}"' in page(
        session, gateway, f"/console/complaints/{complaint_id}").text
    path = f"/console/records/complaints/{complaint_id}"
    text = page(session, gateway, path).text
    for expected in (NAMES[EAST], "投诉意见处理表", "二号楼电梯厅垃圾堆放三天无人清理", "环境部",
                     "已安排保洁每日清运", "非常满意", "保洁很及时，谢谢", "业主签字",
                     "项目经理签字", 'href="/static/records.css"'):
        assert expected in text
    assert "13712340000" not in text            # contacts arrive masked
    printed = pdf_text(session, gateway, path)
    for expected in ("投诉意见处理表", "二号楼电梯厅垃圾堆放三天无人清理", "非常满意",
                     "业主签字", "项目经理签字"):
        assert expected in printed


def test_another_estates_complaint_cannot_be_printed(gateway, staff, handled):
    west = signed_in(gateway, "rec.sup.west")
    path = f"/console/records/complaints/{handled['complaint']['id']}"
    assert "二号楼" not in page(west, gateway, path, status=404).text
    response = page(west, gateway, path + "?format=pdf", status=404)
    assert response.headers["Content-Type"].startswith("text/html")


def test_the_month_revisit_book_lists_the_revisits_recorded_that_month(gateway, staff, handled):
    session = signed_in(gateway, "rec.sup.east")
    path = f"/console/records/revisits?estate_id={EAST}&month={THIS_MONTH}"
    text = page(session, gateway, path).text
    assert "回访记录本" in text and "保洁很及时，谢谢" in text and NAMES[EAST] in text
    assert "7栋 1单元 103" in text               # the household, by its address
    assert "回访记录本" in pdf_text(session, gateway, path)
    # a record that is a table: also a workbook, the page's rows
    workbook = session.get(gateway.url(path + "&format=xlsx"), timeout=60)
    assert workbook.status_code == 200, workbook.text[:500]
    assert workbook.headers["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = openpyxl.load_workbook(io.BytesIO(workbook.content)).active
    cells = [str(cell.value) for row in sheet.iter_rows() for cell in row if cell.value]
    assert f"{NAMES[EAST]} 回访记录本" in cells and "保洁很及时，谢谢" in cells
    assert "非常满意" in cells and "电话" in cells
    # the repair revisits bound each month: a complaint's revisit is not among them
    repairs = page(session, gateway, path + "&kind=work_orders").text
    assert "维修回访记录" in repairs and "保洁很及时" not in repairs
    # last month's book does not hold this month's revisit
    last = (datetime.now(ZONE).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    assert "保洁很及时" not in page(
        session, gateway, f"/console/records/revisits?estate_id={EAST}&month={last}").text
    # nor does another estate's supervisor see it
    west = signed_in(gateway, "rec.sup.west")
    assert "保洁很及时" not in page(
        west, gateway, f"/console/records/revisits?estate_id={EAST}&month={THIS_MONTH}",
        status=404).text


@pytest.mark.parametrize("query, field", [
    (f"estate_id={EAST}&month=2026-13", "月份"),
    (f"estate_id={EAST}", "月份"),
    (f"month={THIS_MONTH}", "小区"),
    (f"estate_id={EAST}&month={THIS_MONTH}&kind=repairs", "类别"),
])
def test_a_wrong_choice_comes_back_to_the_form_with_the_field_said(gateway, staff, query,
                                                                    field):
    session = signed_in(gateway, "rec.sup.east")
    text = page(session, gateway, f"/console/records/revisits?{query}", status=422).text
    assert 'id="record-errors"' in text and f"{field}：" in text
    assert 'id="form-revisit-book"' in text


def test_the_owners_complaint_statistics_of_a_month(gateway, staff, handled):
    session = signed_in(gateway, "rec.sup.east")
    figures = api(gateway, "GET", "/stats/complaints", staff["rec.sup.east"]["token"],
                  params={"estate_id": EAST, "period": THIS_MONTH})
    path = f"/console/records/complaint-report?estate_id={EAST}&period={THIS_MONTH}"
    text = page(session, gateway, path).text
    assert "业主投诉统计报告" in text and NAMES[EAST] in text
    assert f'<td id="received">{figures["counted"]}</td>' in text and figures["counted"] >= 1
    printed = pdf_text(session, gateway, path)
    assert "业主投诉统计报告" in printed and "卫生" in printed


def test_the_survey_result_for_the_notice_board_with_its_rectification_plan(gateway, staff):
    hq = staff["rec.hq"]["token"]
    now = datetime.now(UTC)
    created = prepared_survey_round(gateway, hq, "2026年下半年满意度调查", [EAST])
    api(gateway, "POST", f"/survey/rounds/{created['id']}/rectifications", gateway.admin,
        json={"estate_id": EAST, "category": "cleaning", "action": "垃圾每日清运两次",
              "department": "环境部", "due_at": (now + timedelta(days=30)).isoformat()})
    session = signed_in(gateway, "rec.sup.east")
    assert created["id"] in page(session, gateway, "/console/records/").text
    path = f"/console/records/surveys?round_id={created['id']}&estate_id={EAST}"
    text = page(session, gateway, path).text
    for expected in (NAMES[EAST], "2026年下半年满意度调查", "整改方案", "垃圾每日清运两次", "环境部",
                     "公示于小区公示栏"):
        assert expected in text
    printed = pdf_text(session, gateway, path)
    assert "整改方案" in printed and "垃圾每日清运两次" in printed
