"""The staff console as a browser uses it, over real HTTP to the five services running as
processes: the login form, the worklist (only the user's estates' open complaints, the
next deadline first, with content and deadlines, paged), a complaint's page and its
action forms (the actor in history, CSRF, 404 outside one's estates, 409 and 422 shown
on the page), the front desk's registration with the apology, logging out."""
import html
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from services.gateway.accounts import SESSION_COOKIE
from services.gateway.console import PAGE_SIZE
from services.gateway.pages import local_time
from tests.helpers import (
    STAFF_PASSWORD,
    api,
    closed_complaint,
    console_login,
    csrf,
    hidden,
    page,
    post,
    register_complaint,
    register_estates,
    signed_in,
    staff_accounts,
)

pytestmark = pytest.mark.broker

EAST, WEST = "cs-east", "cs-west"
NAMES = {EAST: "东湖花园", WEST: "西山雅苑"}
ROW = re.compile(r'<tr id="row-([\w-]+)"')
NEXT_PAGE = re.compile(r'<a href="([^"]+)" id="next-page"')


def complaint(gateway, token, estate, content, household_id=None, **fields):
    """A hotline complaint about the estate's first household unless said."""
    return register_complaint(gateway, token, estate, household_id or f"{estate}-0", content,
                              **fields)


@pytest.fixture(scope="module")
def staff(gateway):
    """Two estates with households; a desk clerk and a supervisor of the east estate,
    a supervisor of the west one (usernames and ids)."""
    register_estates(gateway, NAMES, 3, building="3", room="02", phones="1381234")
    return staff_accounts(gateway, (("clerk.east", "cs_staff", [EAST], "王芳"),
                                    ("sup.east", "supervisor", [EAST], "李主管"),
                                    ("sup.west", "supervisor", [WEST], "赵主管")))


@pytest.fixture(scope="module")
def complaints(gateway, staff):
    """East: one received a fortnight ago (overdue, whatever the holidays), one
    acknowledged, one closed, and more than a page of fresh ones; west: one."""
    clerk = staff["clerk.east"]["token"]
    made = {"late": complaint(gateway, clerk, EAST, "两周前报修的路灯还没修",
                              received_at=(datetime.now(UTC) - timedelta(days=14)).isoformat())}
    made["acknowledged"] = complaint(gateway, clerk, EAST, "垃圾站气味很大",
                                     category="greening")
    api(gateway, "POST", f"/complaints/{made['acknowledged']['id']}/acknowledge", clerk,
        json={"note": "已致歉"})
    made["closed"] = closed_complaint(gateway, clerk, EAST, f"{EAST}-0", "已经办结的投诉",
                                      category="parking", department="秩序部")
    made["fresh"] = [complaint(gateway, clerk, EAST, f"第{n}件：楼道灯不亮",
                               category="public_facilities", household_id=f"{EAST}-{n % 3}")
                     for n in range(PAGE_SIZE)]
    made["west"] = complaint(gateway, staff["sup.west"]["token"], WEST, "西区的投诉")
    return made


def browser():
    return requests.Session()


# logging in -----------------------------------------------------------------------------------

def test_a_page_without_a_session_sends_to_the_login_page_and_back(gateway, staff, complaints):
    session = browser()
    bare = session.get(gateway.url("/console"), allow_redirects=False, timeout=30)
    assert bare.status_code in (301, 308) and bare.headers["Location"].endswith("/console/")
    target = f"/console/complaints/{complaints['late']['id']}"
    response = page(session, gateway, target, 303)
    location = response.headers["Location"]
    assert urlsplit(location).path == "/console/login"
    assert parse_qs(urlsplit(location).query)["next"] == [target]

    form = page(session, gateway, location).text
    assert '<label class="field" for="username">' in form and 'id="username" name="username"' in form
    assert '<label class="field" for="password">' in form
    assert 'type="password" id="password" name="password"' in form
    assert f'name="next" value="{target}"' in form
    assert "<script" not in form and "style=" not in form

    _, response = console_login(gateway, "clerk.east", next_url=target, session=session)
    assert response.status_code == 303 and response.headers["Location"] == target
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie and "Path=/" in cookie
    assert complaints["late"]["content"] in page(session, gateway, target).text


def test_a_failed_login_says_so_the_same_way_for_any_username(gateway, staff):
    answers = []
    for username, password in (("clerk.east", "not-the-password"), ("nobody.here", STAFF_PASSWORD)):
        _, response = console_login(gateway, username, password)
        assert response.status_code == 422 and SESSION_COOKIE not in response.headers.get(
            "Set-Cookie", "")
        assert "用户名或密码不正确" in response.text
        assert f'value="{username}"' in response.text and password not in response.text
        answers.append(response.text.replace(username, "?"))
    assert answers[0] == answers[1]
    _, empty = console_login(gateway, "clerk.east", "")
    assert empty.status_code == 422 and "请填写用户名和密码" in empty.text


@pytest.mark.parametrize("next_url", ["https://evil.example/console/", "//evil.example/",
                                      "/api/v1/users", "/console/logout", "/console/\\evil"])
def test_after_logging_in_only_a_console_page_of_this_site(gateway, staff, next_url):
    _, response = console_login(gateway, "clerk.east", next_url=next_url)
    assert response.status_code == 303 and response.headers["Location"] == "/console/"


def test_the_pages_speak_english_to_an_english_browser(gateway, staff):
    text = page(browser(), gateway, "/console/login",
                headers={"Accept-Language": "en-GB,en;q=0.9"}).text
    assert "Staff login" in text and 'lang="en"' in text
    assert "员工登录" in page(browser(), gateway, "/console/login").text


# the worklist ---------------------------------------------------------------------------------

def worklist(session, gateway, query=""):
    """Every row of the worklist, page by page, and the first page's text."""
    ids, first, path = [], None, f"/console/{query}"
    while path:
        text = page(session, gateway, path).text
        first = first or text
        ids += ROW.findall(text)
        found = NEXT_PAGE.search(text)
        path = html.unescape(found.group(1)) if found else None
    return ids, first


def test_the_worklist_shows_my_estates_open_complaints_by_deadline(gateway, staff, complaints):
    session = signed_in(gateway, "clerk.east")
    ids, text = worklist(session, gateway)
    east_open = [complaints["late"], complaints["acknowledged"], *complaints["fresh"]]
    assert sorted(ids) == sorted(item["id"] for item in east_open)          # each once
    assert complaints["closed"]["id"] not in ids and complaints["west"]["id"] not in ids
    assert len(ROW.findall(text)) == PAGE_SIZE                              # paged

    # the overdue one first, marked, with its content, category and deadline
    late = complaints["late"]
    assert ids[0] == late["id"]
    row = text[text.index(f'id="row-{late["id"]}"'):].split("</tr>")[0]
    assert "is-overdue" in row and "已超" in row and "逾期" in row
    assert late["content"] in row and "卫生" in row and "首次回复" in row
    assert local_time(late["first_response_due"]) in row
    # the estate by its name, on the row and in the estate filter (its id only as the value)
    assert f'<span class="estate">{NAMES[EAST]}</span>' in row
    assert f'<option value="{EAST}" >{NAMES[EAST]}</option>' in text
    # a fresh one: its first-reply deadline and the time left
    fresh = complaints["fresh"][0]
    assert fresh["id"] in ids
    _, fresh_text = worklist(session, gateway, "?status=registered")
    assert "还剩" in fresh_text


def test_the_worklist_filters_by_status_and_estate(gateway, staff, complaints):
    session = signed_in(gateway, "clerk.east")
    ids, _ = worklist(session, gateway, "?status=acknowledged")
    assert ids == [complaints["acknowledged"]["id"]]
    ids, _ = worklist(session, gateway, "?overdue=true")
    assert ids == [complaints["late"]["id"]]
    ids, text = worklist(session, gateway, f"?estate_id={WEST}")       # not mine: nothing
    assert ids == [] and 'id="empty"' in text
    ids, text = worklist(session, gateway, "?cursor=not-a-cursor")    # a mangled link
    assert ids == worklist(session, gateway)[0] and 'id="notice"' in text
    west = signed_in(gateway, "sup.west")
    assert worklist(west, gateway)[0] == [complaints["west"]["id"]]


# a complaint's page ---------------------------------------------------------------------------

def test_another_estates_complaint_is_not_found(gateway, staff, complaints):
    session = signed_in(gateway, "sup.east")
    mine = page(session, gateway, f"/console/complaints/{complaints['late']['id']}").text
    assert complaints["late"]["content"] in mine
    assert f'<dd id="estate">{NAMES[EAST]}</dd>' in mine
    other = page(session, gateway, f"/console/complaints/{complaints['west']['id']}", 404).text
    unknown = page(session, gateway, "/console/complaints/cmp-0000000000000000", 404).text
    assert complaints["west"]["content"] not in other
    assert other == unknown                                   # nothing tells them apart
    response = post(session, gateway, f"/console/complaints/{complaints['west']['id']}/acknowledge",
                    {"csrf_token": csrf(mine), "note": "越权"}, status=404)
    assert "越权" not in response.text
    west = api(gateway, "GET", f"/complaints/{complaints['west']['id']}",
               staff["sup.west"]["token"])
    assert west["status"] == "registered"


def test_acting_on_the_page_writes_the_logged_in_user_into_history(gateway, staff):
    token = staff["sup.east"]["token"]
    cid = complaint(gateway, staff["clerk.east"]["token"], EAST, "电梯异响", category="repair_service",
                    household_id=f"{EAST}-1")["id"]
    session = signed_in(gateway, "sup.east")
    path = f"/console/complaints/{cid}"
    text = page(session, gateway, path).text
    forms = set(re.findall(r'<form class="card action[^"]*" id="form-([\w-]+)"', text))
    assert forms == {"acknowledge", "escalate", "flag-malicious"}     # state × role
    assert "3栋 1单元 202" in text and "138****0001" in text and "13812340001" not in text

    form = {**hidden(text, "form-acknowledge"), "note": "已电话致歉"}
    assert form["expected_status"] == "registered" and len(form["request_key"]) == 32
    response = post(session, gateway, f"{path}/acknowledge", form)
    assert response.headers["Location"] == f"{path}?done=acknowledge"
    # the same form sent again (a double click): answered as the first time, done once
    assert post(session, gateway, f"{path}/acknowledge", form).headers["Location"] \
        == f"{path}?done=acknowledge"
    text = page(session, gateway, response.headers["Location"]).text
    assert 'id="done"' in text and "已电话致歉" in text
    assert '<span class="by">李主管</span>' in text                 # staff see who acted
    history = api(gateway, "GET", f"/complaints/{cid}", token)["history"]
    assert [(line["action"], line["by"]) for line in history[1:]] == [
        ("acknowledge", staff["sup.east"]["id"])]

    # a form the state no longer allows: 409, said on the page, nothing changed
    response = post(session, gateway, f"{path}/acknowledge",
                    {"csrf_token": csrf(text), "note": "再次"}, status=409)
    assert 'id="action-error"' in response.text and "已回复" in response.text
    # invalid input: 422, the field marked, what was typed kept
    response = post(session, gateway, f"{path}/assign", {
        "csrf_token": csrf(text), "department": "工程部", "external_unit": "电梯公司",
        "reply_promised_at": "2020-01-01T09:00"}, status=422)
    assert 'id="assign-reply_promised_at-error"' in response.text
    assert 'value="电梯公司"' in response.text and 'value="2020-01-01T09:00"' in response.text
    post(session, gateway, f"{path}/assign", {"csrf_token": csrf(text), "department": "工程部"})
    response = post(session, gateway, f"{path}/resolve",
                    {"csrf_token": csrf(text), "resolution": "  "}, status=422)
    assert "请填写此项" in response.text
    after = api(gateway, "GET", f"/complaints/{cid}", token)
    assert after["status"] == "assigned" and after["department"] == "工程部"
    assert [line["by"] for line in after["history"][1:]] == [staff["sup.east"]["id"]] * 2


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(gateway, staff):
    cid = complaint(gateway, staff["clerk.east"]["token"], EAST, "门禁坏了",
                    category="fire_security", household_id=f"{EAST}-2")["id"]
    session = signed_in(gateway, "clerk.east")
    path = f"/console/complaints/{cid}"
    text = page(session, gateway, path).text
    for data in ({"note": "无令牌"}, {"note": "错令牌", "csrf_token": "0" * 64}):
        response = post(session, gateway, f"{path}/acknowledge", data, status=403)
        assert response.headers["Content-Type"].startswith("text/html")
    response = post(session, gateway, "/console/complaints/new", {
        "estate_id": EAST, "household_id": f"{EAST}-2", "channel": "visit",
        "category": "noise", "content": "无令牌的登记"}, status=403)
    after = api(gateway, "GET", f"/complaints/{cid}", staff["clerk.east"]["token"])
    assert after["status"] == "registered" and len(after["history"]) == 1
    listed = api(gateway, "GET", "/complaints", staff["clerk.east"]["token"],
                 params={"household_id": f"{EAST}-2", "category": "noise"})
    assert listed["items"] == []
    post(session, gateway, "/console/logout", {}, status=403)       # still logged in
    assert page(session, gateway, path).status_code == 200
    assert csrf(text)


def test_logout_ends_the_session(gateway, staff):
    session = signed_in(gateway, "clerk.east")
    text = page(session, gateway, "/console/").text
    kept = session.cookies.get(SESSION_COOKIE)
    response = post(session, gateway, "/console/logout", {"csrf_token": csrf(text)})
    assert urlsplit(response.headers["Location"]).path == "/console/login"
    assert f'{SESSION_COOKIE}=""' in response.headers["Set-Cookie"] or \
        "Max-Age=0" in response.headers["Set-Cookie"]
    assert session.cookies.get(SESSION_COOKIE) is None
    assert "您已退出登录" in page(session, gateway, response.headers["Location"]).text
    # the token itself is revoked: the old cookie no longer opens a page
    again = browser()
    again.cookies.set(SESSION_COOKIE, kept)
    assert urlsplit(page(again, gateway, "/console/", 303).headers["Location"]).path \
        == "/console/login"


# the front desk ---------------------------------------------------------------------------------

def test_the_front_desk_registers_a_complaint_and_reads_the_apology(gateway, staff):
    session = signed_in(gateway, "clerk.east")
    text = page(session, gateway, "/console/complaints/new?building=3&room=302").text
    assert f'<option value="{EAST}-2" selected>' in text and "138****0002" in text

    form = {"csrf_token": csrf(text), "estate_id": EAST, "building": "3", "room": "302",
            "household_id": f"{EAST}-2", "channel": "visit", "category": "noise",
            "severity": "normal", "content": ""}
    response = post(session, gateway, "/console/complaints/new", form, status=422)
    assert 'id="content-error"' in response.text and f'<option value="{EAST}-2" selected>' \
        in response.text
    form.update(hidden(response.text, "register-form"), content="隔壁装修太吵")
    response = post(session, gateway, "/console/complaints/new", form)
    location = response.headers["Location"]
    # the same form sent twice registers once
    assert post(session, gateway, "/console/complaints/new", form).headers["Location"] \
        == location
    assert location.endswith("?done=register")
    cid = urlsplit(location).path.rsplit("/", 1)[1]
    text = page(session, gateway, location).text
    assert 'id="apology-script"' in text and f"您的投诉 {cid} 已登记" in text
    registered = api(gateway, "GET", f"/complaints/{cid}", staff["clerk.east"]["token"])
    assert local_time(registered["reply_due"]) in text
    assert registered["channel"] == "visit" and registered["household_id"] == f"{EAST}-2"
    assert registered["history"][0]["by"] == staff["clerk.east"]["id"]

    # a walk-in without a household: the reporter; another estate: refused
    response = post(session, gateway, "/console/complaints/new", dict(
        form, household_id="", building="", room="", content="路过时被狗咬",
        reporter_name="路人", reporter_phone="13900001111", request_key="walk-in-1"))
    walk_in = urlsplit(response.headers["Location"]).path.rsplit("/", 1)[1]
    assert api(gateway, "GET", f"/complaints/{walk_in}",
               staff["clerk.east"]["token"])["reporter"]["phone"] == "139****1111"
    response = post(session, gateway, "/console/complaints/new", dict(
        form, estate_id=WEST, household_id="", content="别的小区", request_key="west-1"),
        status=403)
    assert 'id="estate_id-error"' in response.text or "不在您负责的范围" in response.text
