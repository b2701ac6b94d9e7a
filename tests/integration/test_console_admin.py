"""The console's administration pages and the promised reply of a revisit, over real HTTP
to the five services running as processes: accounts (only for administrators: anyone
else gets the 403 page and no link), a password generated and shown once, refused input
said on the field with nothing changed, a disabled account that can no longer log in;
estates' records (the group's roles read, only administrators change; the revision shown
guards a colleague's change; the policy overrides checked by intake); and the form that
records the reply a revisit promised the owner, marked overdue once its time is past."""
import re
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import (
    GatewayClient,
    api,
    closed_complaint,
    console_login,
    csrf,
    hidden,
    households,
    local_input,
    page,
    post,
    register_estate,
    revisit_of,
    signed_in,
    staff_accounts,
)

pytestmark = pytest.mark.broker

ESTATE = "ad-east"
GENERATED = re.compile(r'<code id="generated-password">([^<]+)</code>')


@pytest.fixture(scope="module")
def people(gateway):
    register_estate(gateway, ESTATE, "东苑", households(ESTATE, 3), company="华东物业")
    return staff_accounts(gateway, (("ad.clerk", "cs_staff", [ESTATE], None),
                                    ("ad.hq", "hq_analyst", [], None)))


def as_admin(gateway):
    return signed_in(gateway, "admin", GatewayClient.ADMIN_PASSWORD)


def usernames(gateway):
    return {user["username"] for user in api(gateway, "GET", "/users", gateway.admin,
                                             params={"limit": "500"})["items"]}


# who sees what ----------------------------------------------------------------------------

def test_only_an_administrator_manages_accounts_and_changes_estates(gateway, people):
    clerk = signed_in(gateway, "ad.clerk")
    for path in ("/console/admin/users", "/console/admin/estates",
                 f"/console/admin/users/{people['ad.clerk']['id']}"):
        assert 'id="message-forbidden"' in page(clerk, gateway, path, 403).text
    text = page(clerk, gateway, "/console/").text
    assert 'id="nav-users"' not in text and 'id="nav-estates"' not in text
    # nothing changes for a POST either, even with the page's CSRF token
    post(clerk, gateway, "/console/admin/users", {
        "csrf_token": csrf(text), "username": "ad.sneaky", "roles": "admin",
        "password": "a-long-enough-password"}, status=403)
    assert "ad.sneaky" not in usernames(gateway)

    hq = signed_in(gateway, "ad.hq")           # the group's roles read the estates' records
    page(hq, gateway, "/console/admin/users", 403)
    text = page(hq, gateway, "/console/admin/estates").text
    assert 'id="nav-estates" aria-current="page"' in text and 'id="nav-users"' not in text
    assert f'id="estate-{ESTATE}"' in text and 'id="form-new-estate"' not in text
    text = page(hq, gateway, f"/console/admin/estates/{ESTATE}").text
    assert 'id="form-estate"' not in text

    text = page(as_admin(gateway), gateway, "/console/admin/users").text
    assert 'id="nav-users" aria-current="page"' in text and 'id="nav-estates"' in text
    assert 'id="user-ad.clerk"' in text and 'id="form-new-user"' in text


# accounts -----------------------------------------------------------------------------------

def test_refused_account_input_is_said_on_the_field_and_creates_nothing(gateway, people):
    admin = as_admin(gateway)
    text = page(admin, gateway, "/console/admin/users").text
    form = hidden(text, "form-new-user")
    # no role; a clerk without an estate; a name that is no username; a short password
    response = post(admin, gateway, "/console/admin/users", {
        **form, "username": "Ad Bad", "display_name": "坏", "password": "short"}, status=422)
    text = response.text
    for field in ("username", "roles", "password"):
        assert f'id="new-{field}-error"' in text, field
        assert f'aria-describedby="new-{field}-error"' in text, field
    assert 'value="Ad Bad"' in text and 'value="short"' not in text   # the password not echoed
    response = post(admin, gateway, "/console/admin/users", {
        **form, "username": "ad.nobody", "roles": "cs_staff"}, status=422)
    assert 'id="new-estates-error"' in response.text
    assert 'id="new-role-cs_staff" name="roles" value="cs_staff" checked' in response.text
    assert not {"ad bad", "ad.nobody"} & usernames(gateway)


def test_an_administrator_opens_changes_disables_and_resets_an_account(gateway, people):
    admin = as_admin(gateway)
    form = hidden(page(admin, gateway, "/console/admin/users").text, "form-new-user")
    # no password typed: one is generated, shown on this page once, never in a link
    response = post(admin, gateway, "/console/admin/users", {
        **form, "username": "ad.new", "display_name": "新同事", "roles": "cs_staff",
        "estates": f"{ESTATE}\n{ESTATE}"}, status=200)
    password = GENERATED.search(response.text).group(1)
    assert "Location" not in response.headers and response.headers["Cache-Control"] == "no-store"
    made = next(user for user in api(gateway, "GET", "/users", gateway.admin,
                                     params={"limit": "500"})["items"]
                if user["username"] == "ad.new")
    assert made["roles"] == ["cs_staff"] and made["estates"] == [ESTATE]
    assert made["display_name"] == "新同事" and made["created_by"]
    token = gateway.login("ad.new", password)
    path = f"/console/admin/users/{made['id']}"
    assert password not in page(admin, gateway, path).text

    # roles and estates: a supervisor now; a clerk with no estate is refused, nothing changed
    text = page(admin, gateway, path).text
    refused = post(admin, gateway, f"{path}/profile", {
        **hidden(text, "form-profile"), "display_name": "新同事", "roles": "cs_staff",
        "estates": ""}, status=422)
    assert 'id="profile-estates-error"' in refused.text
    assert api(gateway, "GET", f"/users/{made['id']}", gateway.admin)["estates"] == [ESTATE]
    response = post(admin, gateway, f"{path}/profile", {
        **hidden(text, "form-profile"), "display_name": "李新", "roles": "supervisor",
        "estates": ESTATE})
    assert response.headers["Location"] == f"{path}?done=profile"
    changed = api(gateway, "GET", f"/users/{made['id']}", gateway.admin)
    assert changed["roles"] == ["supervisor"] and changed["display_name"] == "李新"
    # fewer or other rights: the tokens issued before stop working
    assert gateway.request("GET", "/api/v1/me", token=token).status_code == 401

    # disabled: no login; enabled again: the same password logs in
    text = page(admin, gateway, path).text
    post(admin, gateway, f"{path}/status", hidden(text, "form-status"))
    assert api(gateway, "GET", f"/users/{made['id']}", gateway.admin)["disabled"] is True
    assert console_login(gateway, "ad.new", password)[1].status_code == 422
    text = page(admin, gateway, f"{path}?done=status").text
    assert 'id="status">已停用' in text
    post(admin, gateway, f"{path}/status", hidden(text, "form-status"))
    assert console_login(gateway, "ad.new", password)[1].status_code == 303

    # a password set by the administrator; a weak one refused on the field
    text = page(admin, gateway, path).text
    refused = post(admin, gateway, f"{path}/password",
                   {**hidden(text, "form-password"), "password": "short"}, status=422)
    assert 'id="password-password-error"' in refused.text
    assert console_login(gateway, "ad.new", password)[1].status_code == 303
    post(admin, gateway, f"{path}/password",
         {**hidden(text, "form-password"), "password": "a-new-password-typed"})
    assert console_login(gateway, "ad.new", password)[1].status_code == 422
    assert console_login(gateway, "ad.new", "a-new-password-typed")[1].status_code == 303
    # or one generated, shown once
    response = post(admin, gateway, f"{path}/password",
                    {**hidden(text, "form-password"), "password": ""}, status=200)
    generated = GENERATED.search(response.text).group(1)
    assert console_login(gateway, "ad.new", generated)[1].status_code == 303


def test_every_admin_form_needs_the_csrf_token(gateway, people):
    admin = as_admin(gateway)
    user_id = people["ad.clerk"]["id"]
    for path, data in (("/console/admin/users", {"username": "ad.csrf", "roles": "admin",
                                                 "password": "a-long-enough-password"}),
                       (f"/console/admin/users/{user_id}/status", {"disabled": "true"}),
                       ("/console/admin/estates", {"estate_id": "ad-csrf", "name": "无"}),
                       (f"/console/admin/estates/{ESTATE}", {"name": "改名"})):
        response = post(admin, gateway, path, data, status=403)
        assert response.headers["Content-Type"].startswith("text/html")
    assert "ad.csrf" not in usernames(gateway)
    assert api(gateway, "GET", f"/users/{user_id}", gateway.admin)["disabled"] is False
    assert gateway.request("GET", "/api/v1/estates/ad-csrf",
                           token=gateway.admin).status_code == 404


# estates ------------------------------------------------------------------------------------

def test_an_administrator_registers_and_changes_an_estate(gateway, people):
    admin = as_admin(gateway)
    form = hidden(page(admin, gateway, "/console/admin/estates").text, "form-new-estate")
    fields = {"estate_id": "ad-north", "name": "北苑", "company": "华北物业", "region": "朝阳片区",
              "timezone": "", "policy": ""}
    # JSON that does not read, a zone that is none, an override intake refuses: said on
    # their fields, nothing registered
    for name, value in (("policy", "{reply_days: 5"), ("timezone", "Mars/Olympus"),
                        ("policy", '{"reply_days": "five"}')):
        response = post(admin, gateway, "/console/admin/estates",
                        {**form, **fields, name: value}, status=422)
        assert 'id="estate-errors"' in response.text
        assert (f'id="new-{name}-error"' in response.text
                or 'class="field-error">reply_days：' in response.text), (name, value)
        assert 'value="北苑"' in response.text
    assert gateway.request("GET", "/api/v1/estates/ad-north",
                           token=gateway.admin).status_code == 404

    response = post(admin, gateway, "/console/admin/estates",
                    {**form, **fields, "policy": '{"reply_days": 5}'})
    assert response.headers["Location"] == "/console/admin/estates/ad-north?done=register"
    estate = api(gateway, "GET", "/estates/ad-north", gateway.admin)
    assert (estate["name"], estate["company"], estate["policy"]) == ("北苑", "华北物业",
                                                                     {"reply_days": 5})
    # the list: filtered by company, a page at a time
    text = page(admin, gateway, "/console/admin/estates?company=华北物业").text
    assert 'id="estate-ad-north"' in text and f'id="estate-{ESTATE}"' not in text

    path = "/console/admin/estates/ad-north"
    text = page(admin, gateway, path).text
    edit = hidden(text, "form-estate")
    assert edit["expected_revision"] == str(estate["revision"])
    changed = {"name": "北苑（新）", "company": "华北物业", "region": "海淀片区",
               "timezone": "Asia/Shanghai", "policy": '{"reply_days": 7}'}
    refused = post(admin, gateway, path, {**edit, **changed, "policy": '{"no_such_rule": 1}'},
                   status=422)
    assert 'id="action-error"' in refused.text and "no_such_rule" in refused.text
    assert api(gateway, "GET", "/estates/ad-north", gateway.admin)["name"] == "北苑"
    response = post(admin, gateway, path, {**edit, **changed})
    assert response.headers["Location"] == f"{path}?done=update"
    after = api(gateway, "GET", "/estates/ad-north", gateway.admin)
    assert (after["name"], after["region"], after["policy"]) == ("北苑（新）", "海淀片区",
                                                                 {"reply_days": 7})
    # a page (its own key) that showed the old revision: a colleague's change is kept
    stale = post(admin, gateway, path, {**edit, **changed, "name": "旧页面",
                                        "request_key": uuid.uuid4().hex}, status=409)
    assert 'id="action-error"' in stale.text and 'value="北苑（新）"' in stale.text
    assert api(gateway, "GET", "/estates/ad-north", gateway.admin)["name"] == "北苑（新）"


# the promised reply -------------------------------------------------------------------------

def test_the_reply_a_revisit_promised_is_recorded_on_its_page(gateway, people):
    token = people["ad.clerk"]["token"]
    made = closed_complaint(gateway, token, ESTATE, f"{ESTATE}-1", "电梯异响，要等厂家答复",
                            resolution="已清理", severity="normal")
    revisit = revisit_of(gateway, made["id"])
    promised = datetime.now(UTC) + timedelta(seconds=4)
    api(gateway, "POST", f"/revisits/{revisit['id']}/record", token, json={
        "method": "phone", "reached": True, "satisfaction": "satisfied", "resolved": True,
        "comments": "业主问维保合同何时续签", "promised_reply_at": promised.isoformat()})
    clerk = signed_in(gateway, "ad.clerk")
    # the revisit worklist's part of replies promised and not yet given lists it
    worklist = page(clerk, gateway, "/console/revisits/?role=all&part=replies").text
    assert f'id="revisit-{revisit["id"]}"' in worklist
    path = f"/console/revisits/{revisit['id']}"
    text = page(clerk, gateway, path).text
    assert 'id="form-reply"' in text and 'id="reply-overdue"' not in text
    time.sleep(max(0.0, (promised - datetime.now(UTC)).total_seconds()) + 0.5)
    text = page(clerk, gateway, path).text
    assert 'id="reply-overdue"' in text and 'id="promised-reply" class="is-overdue"' in text

    form = hidden(text, "form-reply")
    refused = post(clerk, gateway, f"{path}/reply", {**form, "reply": ""}, status=422)
    assert 'id="reply-reply-error"' in refused.text
    assert api(gateway, "GET", f"/revisits/{revisit['id']}", token)["reply_given_at"] is None
    replied_at = datetime.now(UTC) - timedelta(minutes=5)
    response = post(clerk, gateway, f"{path}/reply", {
        **form, "reply": "维保合同下月续签，已电话告知业主", "replied_at": local_input(replied_at)})
    assert response.headers["Location"] == f"{path}?done=reply"
    after = api(gateway, "GET", f"/revisits/{revisit['id']}", token)
    assert after["reply"] == {"staff_id": people["ad.clerk"]["id"],
                              "text": "维保合同下月续签，已电话告知业主"}
    assert after["reply_given_at"].startswith(replied_at.strftime("%Y-%m-%dT%H:%M"))
    text = page(clerk, gateway, response.headers["Location"]).text
    assert 'id="form-reply"' not in text and "维保合同下月续签" in text
    worklist = page(clerk, gateway, "/console/revisits/?role=all&part=replies").text
    assert f'id="revisit-{revisit["id"]}"' not in worklist     # given: off the list
    # sent again (a double click): acted on once, nothing refused
    post(clerk, gateway, f"{path}/reply", {**form, "reply": "维保合同下月续签，已电话告知业主",
                                           "replied_at": local_input(replied_at)})
