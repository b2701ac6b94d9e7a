"""The console's revisit pages and the headquarters dashboard, over real HTTP to the five
services running as processes: the revisit worklist (the user's estates, by rung), a
revisit's page (404 outside one's estates, its complaint linked both ways), booking an
on-site visit (consent, quiet hours refused on the field), recording the outcome with the
owner's signature drawn on the screen (kept as a PNG, shown on the page, left out of
lists), CSRF on every form; the dashboard only for the group's roles, its numbers those
of the statistics RPCs for the same month, its league table the survey's ranking."""
import base64
import html
import re
import struct
import time
import zlib
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.gateway.console_dashboard import last_month
from shared.schemas.revisit import SIGNATURE_MAX_BYTES
from tests.helpers import (
    api,
    closed_complaint,
    csrf,
    hidden,
    local_input,
    page,
    post,
    prepared_survey_round,
    register_estates,
    revisit_of,
    signed_in,
    staff_accounts,
)

pytestmark = pytest.mark.broker

EAST, WEST = "rv-east", "rv-west"
NAMES = {EAST: "东城名苑", WEST: "西湖春晓"}
ZONE = ZoneInfo("Asia/Shanghai")
CELL = re.compile(r'<td data-column="(\w+)" data-value="([^"]*)">')


def png(width=4, height=2) -> bytes:
    """A small real PNG (white), as a signature pad's canvas would give."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + b"\xff\xff\xff" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2,
                                                             0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


SIGNATURE = base64.b64encode(png()).decode()


@pytest.fixture(scope="module")
def staff(gateway):
    register_estates(gateway, NAMES, 4, building="5", unit="2", phones="1391234",
                     owner="住户")
    return staff_accounts(gateway, (("rv.clerk", "cs_staff", [EAST], "王芳"),
                                    ("rv.sup.east", "supervisor", [EAST], "李主管"),
                                    ("rv.sup.west", "supervisor", [WEST], "赵主管"),
                                    ("rv.hq", "hq_analyst", [], "总部")))


@pytest.fixture(scope="module")
def revisits(gateway, staff):
    """Three complaints closed (a major one on site, one of the west estate) and the
    revisit of each."""
    clerk, west = staff["rv.clerk"]["token"], staff["rv.sup.west"]["token"]
    made = {}
    for name, token, estate, household, content, severity in (
            ("phone", clerk, EAST, f"{EAST}-0", "楼道垃圾没人清", "normal"),
            ("onsite", clerk, EAST, f"{EAST}-1", "地下车库漏水严重", "major"),
            ("west", west, WEST, f"{WEST}-0", "西区的投诉", "normal")):
        made[f"{name}_complaint"] = closed_complaint(gateway, token, estate, household, content,
                                                     resolution="已清理", severity=severity)
        made[name] = revisit_of(gateway, made[f"{name}_complaint"]["id"])
    return made


def tomorrow_at(hour: int) -> datetime:
    day = datetime.now(ZONE).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=ZONE)


# the worklist -----------------------------------------------------------------------------

def test_the_revisit_worklist_shows_my_estates_revisits_for_my_rung(gateway, staff, revisits):
    clerk = signed_in(gateway, "rv.clerk")
    text = page(clerk, gateway, "/console/revisits/").text
    assert 'id="nav-revisits" aria-current="page"' in text
    # a complaint revisit is due three days after the close: within the week
    assert f'id="revisit-{revisits["phone"]["id"]}"' in text
    part = text[text.index('id="part-upcoming"'):]
    assert f'id="revisit-{revisits["phone"]["id"]}"' in part
    assert f'href="/console/revisits/{revisits["phone"]["id"]}"' in text
    # the estate by its name, on the row and in the estate filter
    row = text[text.index(f'id="revisit-{revisits["phone"]["id"]}"'):].split("</tr>")[0]
    assert f'<span class="estate">{NAMES[EAST]}</span>' in row
    assert f'<option value="{EAST}" >{NAMES[EAST]}</option>' in text
    # a major complaint is visited on site by a supervisor: not on the clerk's list...
    assert revisits["onsite"]["assigned_role"] in ("supervisor", "manager")
    assert f'id="revisit-{revisits["onsite"]["id"]}"' not in text
    assert f'id="revisit-{revisits["west"]["id"]}"' not in text
    # ...but on the supervisor's, and everyone's on request
    supervisor = signed_in(gateway, "rv.sup.east")
    text = page(supervisor, gateway, "/console/revisits/").text
    if revisits["onsite"]["assigned_role"] == "supervisor":
        assert f'id="revisit-{revisits["onsite"]["id"]}"' in text
    assert f'id="revisit-{revisits["phone"]["id"]}"' not in text
    text = page(supervisor, gateway, "/console/revisits/?role=all").text
    assert all(f'id="revisit-{revisits[name]["id"]}"' in text for name in ("phone", "onsite"))
    assert f'id="revisit-{revisits["west"]["id"]}"' not in text
    # a part alone, and a filter the API refuses: back to the overview, said so
    text = page(supervisor, gateway, "/console/revisits/?role=all&part=upcoming").text
    assert 'id="part-overdue"' not in text and 'id="all-parts"' in text
    response = page(supervisor, gateway, "/console/revisits/?role=boss", 303)
    text = page(supervisor, gateway, response.headers["Location"]).text
    assert 'id="notice"' in text


def test_the_sampling_status_is_the_revisit_statistics_of_the_month(gateway, staff, revisits):
    supervisor = signed_in(gateway, "rv.sup.east")
    text = page(supervisor, gateway, "/console/revisits/").text
    month = datetime.now(ZONE).strftime("%Y-%m")
    figures = api(gateway, "GET", "/stats/revisits", staff["rv.sup.east"]["token"],
                  params={"estate_id": EAST, "period": month})
    table = text[text.index(f'id="sampling-{EAST}"'):].split("</table>")[0]
    assert f"<caption>{NAMES[EAST]}</caption>" in table
    row = table[table.index("维修回访"):].split("</tr>")[0]
    repair = figures["kinds"]["repair"]
    assert re.findall(r"<td>([^<]*)</td>", row)[:3] == [
        str(repair["orders"]), str(repair["required"]), str(repair["revisited_orders"])]
    # the page asks for the rows of the supervisor's estates in one call, each as asked alone
    rows = api(gateway, "GET", "/stats/revisits", staff["rv.sup.east"]["token"],
               params={"estate_ids": [EAST], "period": month})["estates"]
    assert set(rows) == {EAST} and rows[EAST]["kinds"] == figures["kinds"]
    assert rows[EAST]["estate_name"] == NAMES[EAST]
    refused = gateway.request("GET", "/api/v1/stats/revisits", token=staff["rv.sup.east"][
        "token"], params={"estate_ids": [EAST, WEST], "period": month})
    assert refused.status_code == 404      # another estate's row is never theirs to read
    # a desk clerk may not read an estate's statistics: no sampling table
    assert 'id="sampling"' not in page(signed_in(gateway, "rv.clerk"), gateway,
                                       "/console/revisits/").text


# a revisit's page ---------------------------------------------------------------------------

def test_another_estates_revisit_is_not_found(gateway, staff, revisits):
    session = signed_in(gateway, "rv.sup.east")
    mine = page(session, gateway, f"/console/revisits/{revisits['onsite']['id']}").text
    assert revisits["onsite_complaint"]["id"] in mine
    other = page(session, gateway, f"/console/revisits/{revisits['west']['id']}", 404).text
    unknown = page(session, gateway, "/console/revisits/rv-0000000000000000", 404).text
    assert revisits["west_complaint"]["id"] not in other and other == unknown
    post(session, gateway, f"/console/revisits/{revisits['west']['id']}/record", {
        "csrf_token": csrf(mine), "method": "phone", "reached": "false"}, status=404)
    west = api(gateway, "GET", f"/revisits/{revisits['west']['id']}", staff["rv.sup.west"]["token"])
    assert west["status"] == "scheduled" and west["attempts"] == []


def test_the_revisit_and_its_complaint_link_to_each_other(gateway, staff, revisits):
    session = signed_in(gateway, "rv.clerk")
    revisit_path = f"/console/revisits/{revisits['phone']['id']}"
    text = page(session, gateway, revisit_path).text
    complaint_id = revisits["phone_complaint"]["id"]
    assert f'href="/console/complaints/{complaint_id}" id="source-link"' in text
    assert f'<dd id="estate">{NAMES[EAST]}</dd>' in text
    assert "5栋 2单元 101" in text and "139****0000" in text
    assert 'id="form-record"' in text and 'id="form-book"' in text
    assert '<script src="/static/signature.js" defer></script>' in text
    text = page(session, gateway, f"/console/complaints/{complaint_id}").text
    assert f'href="{revisit_path}"' in text and 'id="revisits"' in text


def test_booking_refuses_quiet_hours_and_a_visit_without_consent(gateway, staff, revisits):
    session = signed_in(gateway, "rv.sup.east")
    path = f"/console/revisits/{revisits['onsite']['id']}"
    text = page(session, gateway, path).text
    form = hidden(text, "form-book")
    assert form["expected_status"] == "scheduled"
    # 22:30 is in the estate's quiet hours: refused, said on the field, the time kept
    late = local_input(tomorrow_at(22) + timedelta(minutes=30))
    response = post(session, gateway, f"{path}/book",
                    {**form, "at": late, "owner_consent": "true"}, status=422)
    assert 'id="book-at-error"' in response.text and "quiet hours" in response.text
    assert f'value="{late}"' in response.text and 'aria-invalid="true"' in response.text
    # without the owner's consent: refused on the consent box
    response = post(session, gateway, f"{path}/book", {
        **hidden(response.text, "form-book"), "at": local_input(tomorrow_at(10))}, status=422)
    assert 'id="book-owner_consent-error"' in response.text
    assert api(gateway, "GET", f"/revisits/{revisits['onsite']['id']}",
               staff["rv.sup.east"]["token"])["status"] == "scheduled"
    # at 10:00 with consent: booked, shown
    response = post(session, gateway, f"{path}/book", {
        **hidden(response.text, "form-book"), "at": local_input(tomorrow_at(10)),
        "owner_consent": "true"})
    assert response.headers["Location"] == f"{path}?done=book"
    booked = api(gateway, "GET", f"/revisits/{revisits['onsite']['id']}",
                 staff["rv.sup.east"]["token"])
    assert booked["status"] == "booked" and booked["method"] == "onsite"
    assert datetime.fromisoformat(booked["appointment_at"]) == tomorrow_at(10)
    assert booked["booked_by"] == staff["rv.sup.east"]["id"]
    text = page(session, gateway, response.headers["Location"]).text
    assert 'id="done"' in text and 'id="appointment"' in text


def test_the_outcome_is_recorded_with_the_owners_signature(gateway, staff):
    token = staff["rv.clerk"]["token"]
    complaint = closed_complaint(gateway, token, EAST, f"{EAST}-2", "电梯按钮失灵",
                                 resolution="已清理", severity="normal")
    revisit = revisit_of(gateway, complaint["id"])
    session = signed_in(gateway, "rv.clerk")
    path = f"/console/revisits/{revisit['id']}"
    text = page(session, gateway, path).text
    form = {**hidden(text, "form-record"), "method": "phone", "reached": "true",
            "satisfaction": "unsatisfied", "resolved": "false", "comments": "按钮还是不灵",
            "signed_by": "住户2", "signature_png": f"data:image/png;base64,{SIGNATURE}"}
    # what is not a PNG is refused on the field, nothing recorded
    response = post(session, gateway, f"{path}/record", {
        **form, "signature_png": "data:image/png;base64,"
        + base64.b64encode(b"GIF89a not a png").decode()}, status=422)
    assert 'id="record-signature_png-error"' in response.text
    too_big = base64.b64encode(png() + b"\x00" * SIGNATURE_MAX_BYTES).decode()
    response = post(session, gateway, f"{path}/record",
                    {**form, "signature_png": too_big}, status=422)
    assert 'id="record-signature_png-error"' in response.text
    assert api(gateway, "GET", f"/revisits/{revisit['id']}", token)["attempts"] == []

    response = post(session, gateway, f"{path}/record", form)
    assert response.headers["Location"] == f"{path}?done=record"
    recorded = api(gateway, "GET", f"/revisits/{revisit['id']}", token)
    assert recorded["status"] == "done"
    assert recorded["outcome"]["signature_png"] == SIGNATURE
    assert base64.b64decode(recorded["outcome"]["signature_png"]).startswith(b"\x89PNG")
    assert recorded["outcome"]["visitor_id"] == staff["rv.clerk"]["id"]
    text = page(session, gateway, response.headers["Location"]).text
    assert f'src="data:image/png;base64,{SIGNATURE}"' in text and "住户2" in text
    assert "王芳" in text and "按钮还是不灵" in text and 'id="form-record"' not in text
    # a list leaves the images out (one would weigh a page down), saying it was signed
    listed = api(gateway, "GET", "/revisits", token, params={"source_id": complaint["id"]})
    assert "signature_png" not in listed["items"][0]["outcome"]
    assert listed["items"][0]["outcome"]["signed"] is True
    # unsatisfied and unresolved: intake reopens the complaint
    deadline = time.monotonic() + 20
    while api(gateway, "GET", f"/complaints/{complaint['id']}", token)["status"] != "reopened":
        assert time.monotonic() < deadline, "the complaint was not reopened"
        time.sleep(0.2)


def test_every_revisit_form_needs_the_csrf_token(gateway, staff, revisits):
    session = signed_in(gateway, "rv.sup.east")
    path = f"/console/revisits/{revisits['phone']['id']}"
    page(session, gateway, path)
    for action, data in (("book", {"at": local_input(tomorrow_at(10)), "owner_consent": "true"}),
                         ("record", {"method": "phone", "reached": "false"})):
        for token in (None, "0" * 64):
            body = {**data, **({"csrf_token": token} if token else {})}
            response = post(session, gateway, f"{path}/{action}", body, status=403)
            assert response.headers["Content-Type"].startswith("text/html")
    after = api(gateway, "GET", f"/revisits/{revisits['phone']['id']}", gateway.admin)
    assert after["status"] == "scheduled" and after["attempts"] == []


# the headquarters dashboard ----------------------------------------------------------------

def cells(text, table_id, row_id=None):
    """{row header (with ``row_id``, the row's id after that prefix): {column: data-value}}
    of one table of the dashboard."""
    table = text[text.index(f'id="{table_id}"'):].split("</table>")[0]
    rows = {}
    for row in table.split("<tr")[2:]:
        header = re.search(f' id="{row_id}([^"]*)"' if row_id else r'<th scope="row">([^<]*)</th>',
                           row)
        rows[html.unescape(header.group(1)) if header else row] = dict(CELL.findall(row))
    return rows


def same(shown: str, value) -> bool:
    return value is None if shown == "" else float(shown) == value


def test_the_dashboard_is_only_for_the_groups_roles(gateway, staff):
    for username in ("rv.clerk", "rv.sup.east"):
        session = signed_in(gateway, username)
        text = page(session, gateway, "/console/dashboard", 403).text
        assert 'id="message-forbidden"' in text
        assert 'id="nav-dashboard"' not in page(session, gateway, "/console/").text
    hq = signed_in(gateway, "rv.hq")
    text = page(hq, gateway, "/console/dashboard").text
    assert 'id="nav-dashboard" aria-current="page"' in text
    # last month by default; a month that is not one is said and replaced
    assert f'name="month" value="{last_month(datetime.now(UTC))}"' in text
    text = page(hq, gateway, "/console/dashboard?month=2026-13").text
    assert 'id="notice"' in text


def test_the_dashboards_numbers_are_the_statistics_rpcs(gateway, staff, revisits):
    month = datetime.now(ZONE).strftime("%Y-%m")
    hq = signed_in(gateway, "rv.hq")
    text = page(hq, gateway, f"/console/dashboard?month={month}").text
    token = staff["rv.hq"]["token"]
    complaints = api(gateway, "GET", "/stats/complaints", token, params={"period": month})
    visits = api(gateway, "GET", "/stats/revisits", token, params={"period": month})
    assert complaints["total"]["counted"] >= 3 and visits["complaints_closed"] >= 3

    group = cells(text, "table-group")
    expected = {"首次回复及时率": complaints["total"]["first_reply_on_time_rate"],
                "答复及时率": complaints["total"]["reply_on_time_rate"],
                "投诉回访率": visits["revisit_rate"], "回访满意率": visits["satisfaction_rate"],
                "重复投诉率": complaints["total"]["repeat_rate"],
                "重新处理率": complaints["total"]["reopened_rate"]}
    assert set(group) == set(expected)
    assert all(same(group[name]["value"], value) for name, value in expected.items())

    estates = cells(text, "table-estates", row_id="estate-")
    assert {EAST, WEST} <= set(estates)
    # each row under the estate's name, as the figures carry it
    for estate in (EAST, WEST):
        assert complaints["estates"][estate]["name"] == NAMES[estate]
        assert f'<tr id="estate-{estate}"><th scope="row">{NAMES[estate]}</th>' in text
    assert set(estates) == set(complaints["estates"]) | set(visits["estates"])
    for estate, shown in estates.items():
        its = complaints["estates"].get(estate, {})
        theirs = visits["estates"].get(estate, {})
        for column in ("counted", "first_reply_on_time_rate", "reply_on_time_rate",
                       "repeat_rate", "reopened_rate", "overdue_now"):
            assert same(shown[column], its.get(column)), (estate, column)
        for column in ("revisit_rate", "satisfaction_rate", "overdue"):
            assert same(shown[column], theirs.get(column)), (estate, column)
    assert same(estates[EAST]["counted"], complaints["estates"][EAST]["counted"])

    sampling = cells(text, "table-sampling")
    for kind_label, kind in (("维修回访", "repair"), ("求助回访", "assistance")):
        for column in ("orders", "required", "sampled", "revisited_orders", "revisit_rate"):
            assert same(sampling[kind_label][column], visits["kinds"][kind][column])
    # the figures shown as people read them: a rate as a percentage of the RPC's rate
    rate = complaints["total"]["first_reply_on_time_rate"]
    if rate is not None:
        assert f'data-value="{rate}">{rate * 100:.2f}%</td>' in text
    # the charts' script and ECharts come from this site, and are there
    assert '<script src="/static/vendor/echarts/echarts.min.js" defer></script>' in text
    script = gateway.request("GET", "/static/vendor/echarts/echarts.min.js")
    assert script.status_code == 200 and "echarts" in script.text[:2000]
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert gateway.request("GET", "/static/vendor/../../console.py").status_code == 404
    assert gateway.request("GET", "/static/vendor/echarts/LICENSE").status_code == 404


GROUP_ROW = re.compile(r'<tr class="group-row" data-group="([^"]*)">(.*?)</tr>', re.DOTALL)


def test_the_dashboard_groups_its_tables_by_company_and_region(gateway, staff, revisits):
    """Both statistics by region (and company): each line of the table a group's figures
    as the RPCs answer them, each group its estates' rows added up; over the API a
    headquarters role of some estates gets the groups of those estates alone."""
    month = datetime.now(ZONE).strftime("%Y-%m")
    for estate, region in ((EAST, "城东片区"), (WEST, "城西片区")):
        api(gateway, "PATCH", f"/estates/{estate}", gateway.admin,
            json={"company": "华东物业", "region": region})
    token, regions = staff["rv.hq"]["token"], {"华东物业/城东片区", "华东物业/城西片区"}
    grouped = {"period": month, "group_by": "region", "per_estate": "false"}
    deadline = time.monotonic() + 30
    while True:   # revisit's copies of the records follow intake's events
        visits = api(gateway, "GET", "/stats/revisits", token, params=grouped)
        if set(visits["groups"]) == regions:
            break
        assert time.monotonic() < deadline, visits["groups"]
        time.sleep(0.2)
    complaints = api(gateway, "GET", "/stats/complaints", token, params=grouped)
    assert set(complaints["groups"]) == regions and "estates" not in visits

    hq = signed_in(gateway, "rv.hq")
    text = page(hq, gateway, f"/console/dashboard?month={month}&group_by=region").text
    assert '<option value="region" selected>' in text
    shown = {html.unescape(key): dict(CELL.findall(row)) for key, row in GROUP_ROW.findall(
        text[text.index('id="table-estates"'):].split("</table>")[0])}
    assert set(shown) == regions and 'id="estate-' not in text
    for key, cells_shown in shown.items():
        for column in ("counted", "reply_on_time_rate", "overdue_now"):
            assert same(cells_shown[column], complaints["groups"][key][column]), (key, column)
        for column in ("revisit_rate", "satisfaction_rate", "overdue"):
            assert same(cells_shown[column], visits["groups"][key][column]), (key, column)
    assert "<th scope=\"row\">华东物业 · 城东片区</th>" in text.split('id="table-overdue"')[1]

    # by company: the two estates together, the rate from their summed counts
    rows = api(gateway, "GET", "/stats/revisits", token, params={"period": month})["estates"]
    company = api(gateway, "GET", "/stats/revisits", token,
                  params={**grouped, "group_by": "company"})["groups"]["华东物业"]
    closed = sum(rows[estate]["complaints_closed"] for estate in (EAST, WEST))
    done = sum(rows[estate]["complaint_revisits_done"] for estate in (EAST, WEST))
    assert (company["complaints_closed"], company["complaint_revisits_done"]) == (closed, done)
    assert company["revisit_rate"] == (round(done / closed, 4) if closed else None)
    text = page(hq, gateway, f"/console/dashboard?month={month}&group_by=company").text
    assert '<tr class="group-row" data-group="华东物业"><th scope="row">华东物业</th>' in text

    # a headquarters role over the east alone: the east's groups, nothing of the west
    regional = staff_accounts(gateway, (("rv.region", "company_manager", [EAST], "东区经理"),))
    regional_token = regional["rv.region"]["token"]
    mine = api(gateway, "GET", "/stats/revisits", regional_token,
               params={"period": month, "group_by": "region"})
    assert set(mine["groups"]) == {"华东物业/城东片区"} and set(mine["estates"]) == {EAST}
    assert mine["groups"]["华东物业/城东片区"]["estate_ids"] == [EAST]
    theirs = api(gateway, "GET", "/stats/revisits", regional_token,
                 params={"period": month, "group_by": "company"})["groups"]
    assert theirs["华东物业"]["estate_ids"] == [EAST]
    assert theirs["华东物业"]["complaints_closed"] == rows[EAST]["complaints_closed"]
    for params in ({"period": month}, {"period": month, "group_by": "region",
                                       "estate_ids": [EAST, WEST]}):
        refused = gateway.request("GET", "/api/v1/stats/revisits", token=regional_token,
                                  params=params)
        assert refused.status_code in (403, 404), refused.text


def test_the_league_table_is_the_surveys_ranking(gateway, staff):
    hq_token = staff["rv.hq"]["token"]
    created = prepared_survey_round(gateway, hq_token, "回访看板测试调查", [EAST, WEST])
    api(gateway, "POST", f"/survey/rounds/{created['id']}/close", hq_token)
    ranking = api(gateway, "GET", f"/survey/rounds/{created['id']}/ranking", hq_token)
    hq = signed_in(gateway, "rv.hq")
    text = page(hq, gateway, f"/console/dashboard?round_id={created['id']}").text
    assert f'<option value="{created["id"]}" selected>' in text
    # no estate returned the minimum: none is ranked, each is listed apart
    assert ranking["ranked"] == [] and 'id="table-league"' not in text
    assert {entry["estate_id"] for entry in ranking["too_few"]} >= {EAST, WEST}
    assert all(f'id="too-few-{entry["estate_id"]}"' in text for entry in ranking["too_few"])
    assert f"少于 {ranking['min_returned']} 份" in text
