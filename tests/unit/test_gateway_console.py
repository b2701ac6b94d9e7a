"""The staff console's pages without a broker: intake stands behind a fake, the accounts
behind another, and every read and action still goes through ``api.execute`` (the REST
API's permission table and estate scope). Plus the console's own helpers: where a login
may send back to, the time left to a deadline, the body of an action form."""
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from nameko.exceptions import RemoteError
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway import api, console, console_revisits, pages
from services.gateway.identity import TokenClaims
from services.gateway.problems import Problem
from services.intake import domain
from shared.actor import Actor
from shared.errors import NotFound

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)     # Tuesday 10:00 in Shanghai
CLAIMS = TokenClaims("u-clerk", "jti-1", 0, NOW + timedelta(hours=1))
USERS = {"u-clerk": {"id": "u-clerk", "username": "clerk", "display_name": "王芳",
                     "roles": ["cs_staff"], "estates": ["e-1"]}}
ESTATES = {"e-1": "阳光花园", "e-2": "碧水湾"}     # intake's records: id -> name


def complaint(**fields):
    """A complaint as intake's view has it, just registered (the fields every one has)."""
    return {"id": "cmp-1", "estate_id": "e-1", "household_id": None,
            "reporter": {"name": "路人", "phone": "139****1111"}, "channel": "visit",
            "category": "noise", "severity": "normal", "content": "楼上装修太吵",
            "status": "registered", "received_at": "2026-11-24T01:00:00+00:00",
            "routed_department": "秩序部", "department": None, "external": None,
            "reply_promised_at": None, "repeat_of": None, "escalations": [],
            "work_order_id": None, "malicious": False,
            "first_response_due": "2026-11-25T01:00:00+00:00",
            "reply_due": "2026-11-27T01:00:00+00:00",
            "next_due_at": "2026-11-25T01:00:00+00:00", "next_due": "first_response",
            "history": [{"at": "2026-11-24T01:00:00+00:00", "by": "u-clerk",
                         "action": "register", "from": None, "to": "registered",
                         "note": "visit"}],
            "allowed_actions": ["acknowledge", "escalate", "flag_malicious"], **fields}


class FakeIntake:
    """The intake RPCs the console's API operations call."""

    def __init__(self, *complaints):
        self.complaints = {item["id"]: item for item in complaints}
        self.calls, self.changes, self.error = [], [], None
        self.estate_lists = []

    def get_complaint(self, complaint_id):
        if complaint_id not in self.complaints:
            raise RemoteError("NotFound", f"no complaint {complaint_id}")
        return self.complaints[complaint_id]

    def list_estates(self, filters, paged=False):
        self.estate_lists.append(filters)
        return {"items": [{"id": estate, "estate_id": estate, "name": ESTATES[estate]}
                          for estate in filters["estate_ids"] if estate in ESTATES],
                "next_cursor": None}

    def list_complaints(self, filters, paged=False):
        self.calls.append(("list_complaints", filters))
        items = [item for item in self.complaints.values()
                 if item["estate_id"] in filters.get("estate_ids", [item["estate_id"]])]
        return {"items": items, "next_cursor": "next-one" if len(items) > 1 else None}

    def __getattr__(self, name):          # the actions: recorded, or the error set
        def action(*args, **change):      # request_id, expected_status
            self.calls.append((name, *args))
            self.changes.append(change)
            if self.error:
                raise self.error
            return complaint()
        return action


class FakeRevisit:
    """revisit's list, which a complaint's page asks for its revisits: none here."""

    def list_revisits(self, filters, paged=False):
        return {"items": [], "next_cursor": None}


class FakeAccounts:
    # the department only counts for a department's staff (责任部门)
    def __init__(self, roles=("cs_staff",), signed_in=True, department="工程部"):
        self.actor = Actor("u-clerk", tuple(roles), ("e-1",), department)
        self.signed_in = signed_in

    def authenticate(self, request):
        if not self.signed_in:
            raise Problem(401, "log in first")
        return self.actor, CLAIMS

    def csrf_token(self, claims):
        return "csrf-of-" + claims.token_id

    def get_user(self, user_id):
        if user_id not in USERS:
            raise NotFound("user", user_id)
        return USERS[user_id]

    def display_names(self, user_ids):
        return {user: USERS[user]["display_name"] for user in user_ids if user in USERS}


def context(intake, method="GET", path="/console/", roles=("cs_staff",), signed_in=True,
            language="zh-CN", **request):
    environ = EnvironBuilder(method=method, path=path, headers={"Accept-Language": language},
                             **request).get_environ()
    return console.ConsoleContext(FakeAccounts(roles, signed_in),
                                  api.Services({"intake": intake, "revisit": FakeRevisit()}),
                                  100_000, NOW,
                                  Request(environ))


def forms_of(html):
    return re.findall(r'<form class="card action[^"]*" id="form-([\w-]+)"', html)


# helpers --------------------------------------------------------------------------------------

@pytest.mark.parametrize("offered, expected", [
    (None, "/console/"), ("", "/console/"), ("/console/", "/console/"),
    ("/console/complaints/cmp-1?done=x", "/console/complaints/cmp-1?done=x"),
    ("https://evil.example/console/", "/console/"), ("//evil.example/console/", "/console/"),
    ("/console//evil.example", "/console/"), ("/console/\\evil", "/console/"),
    ("/api/v1/users", "/console/"), ("/console/login", "/console/"),
    ("/console/logout", "/console/"), ("/console/\nSet-Cookie: x", "/console/"),
    ("javascript:alert(1)", "/console/"),
])
def test_after_logging_in_only_a_console_page_of_this_site(offered, expected):
    assert console.local_next(offered) == expected


@pytest.mark.parametrize("due, overdue, soon, key, params", [
    (NOW + timedelta(days=2, hours=3, minutes=5), False, False, "console_left_days",
     {"days": 2, "hours": 3}),
    (NOW + timedelta(hours=5, minutes=30), False, True, "console_left_hours",
     {"hours": 5, "minutes": 30}),
    (NOW + timedelta(minutes=7, seconds=59), False, True, "console_left_minutes",
     {"minutes": 7}),
    (NOW, True, False, "console_overdue_minutes", {"minutes": 0}),   # intake: due <= now
    (NOW - timedelta(days=13, hours=1), True, False, "console_overdue_days",
     {"days": 13, "hours": 1}),
])
def test_the_time_left_is_plain_clock_time_to_intakes_deadline(due, overdue, soon, key,
                                                                params):
    left = console.time_left(due.isoformat(), NOW)
    assert (left.overdue, left.soon, left.key, left.params) == (overdue, soon, key, params)
    assert console.time_left(None, NOW) is None


def test_a_deadline_is_approaching_from_the_estates_warning_time():
    due = (NOW + timedelta(days=2)).isoformat()
    assert console.time_left(due, NOW, (NOW - timedelta(minutes=1)).isoformat()).soon
    assert not console.time_left(due, NOW, (NOW + timedelta(minutes=1)).isoformat()).soon
    # an hour left but warned of only 30 minutes before: not yet
    soon_due = (NOW + timedelta(hours=1)).isoformat()
    assert not console.time_left(soon_due, NOW, (NOW + timedelta(minutes=30)).isoformat()).soon
    assert not console.time_left(NOW.isoformat(), NOW, NOW.isoformat()).soon   # overdue


def test_an_action_forms_body_leaves_blanks_to_the_service():
    assign = console.FORMS_BY_NAME["assign"]
    assert console.action_body(assign, {"department": " ", "external_unit": "电梯公司",
                                        "reply_promised_at": "2026-11-25T14:30"}) == {
        "external_unit": "电梯公司", "reply_promised_at": "2026-11-25T14:30:00+08:00"}
    assert console.action_body(assign, {"reply_promised_at": "明天"}) == {
        "reply_promised_at": "明天"}                       # intake says what is wrong
    flag = console.FORMS_BY_NAME["flag-malicious"]
    assert console.action_body(flag, {"reason": "同一事项十次", "malicious": "false"}) == {
        "reason": "同一事项十次", "malicious": False}


def test_every_form_is_an_api_operation_offered_by_an_action_intake_knows():
    complaint_actions = set(domain.TRANSITIONS) | {"escalate", "special_measures",
                                                   "external_status", "instruct",
                                                   "flag_malicious"}
    for form in console.FORMS:
        operation, _ = api.match("POST", f"{api.PREFIX}/complaints/cmp-1/{form.name}")
        assert operation.method == "POST" and operation.name.startswith("complaints.")
        assert set(form.offered_by) <= complaint_actions
        assert {field.name for field in form.fields} <= set(operation.body().fields)
    offered = {action for form in console.FORMS for action in form.offered_by}
    assert offered == complaint_actions          # every action intake may offer has a form


def test_both_languages_have_every_word():
    words = [yaml.safe_load((pages.HERE / "messages" / f"console.{locale}.yaml").read_text(
        encoding="utf-8")) for locale in pages.LOCALES]
    assert set(words[0]) == set(words[1])
    assert all(key.startswith("console_") for key in words[0])


# a worklist in parts (the revisits', the follow-ups') -----------------------------------------

def revisit(revisit_id, due):
    return {"id": revisit_id, "estate_id": "e-1", "kind": "complaint", "source_id": "cmp-1",
            "method": "phone", "assigned_role": "staff", "status": "scheduled",
            "due_at": due.isoformat(), "online": False}


def parted(query_string, rows):
    """The revisit worklist's page over ``rows(part, cursor)``, as ``parted_worklist``
    draws it (no broker, no revisit service: the rows are the test's)."""
    ctx = context(FakeIntake(), path=console_revisits.HOME, query_string=query_string)
    ctx.actor, ctx.claims = FakeAccounts().actor, CLAIMS
    return console.parted_worklist(
        ctx, "console/revisits.html", home=console_revisits.HOME,
        parts=console_revisits.PARTS, filters={"role": "all"}, rows=rows,
        reset_notice="console_rv_reset", roles=(), all_roles="all", sampling=[],
        revisit_url=console_revisits.revisit_url)


def test_a_worklist_in_parts_shows_an_item_in_its_first_part_alone():
    today, later = revisit("rv-today", NOW + timedelta(hours=3)), revisit(
        "rv-later", NOW + timedelta(days=3))
    asked = []

    def rows(part, cursor):
        asked.append((part.name, cursor))
        found = {"today": [today], "upcoming": [today, later]}.get(part.name, [])
        return [(item, console.time_left(item["due_at"], NOW)) for item in found], "more"

    html = parted("", rows).get_data(as_text=True)
    assert asked == [(part.name, None) for part in console_revisits.PARTS]
    upcoming = html[html.index('id="part-upcoming"'):html.index('id="part-replies"')]
    assert 'id="revisit-rv-later"' in upcoming and 'id="revisit-rv-today"' not in upcoming
    assert html.count('id="revisit-rv-today"') == 1 and 'id="empty-overdue"' in html
    assert 'class="item is-soon"' in html and 'id="next-page"' not in html


def test_one_part_a_page_at_a_time_and_a_refused_link_back_to_the_overview():
    def rows(part, cursor):
        assert (part.name, cursor) == ("upcoming", "c-1")
        return [(revisit("rv-1", NOW - timedelta(hours=1)), console.time_left(
            (NOW - timedelta(hours=1)).isoformat(), NOW))], "c-2"

    html = parted("part=upcoming&cursor=c-1", rows).get_data(as_text=True)
    assert 'id="part-overdue"' not in html and 'id="all-parts"' in html
    assert 'class="item is-overdue"' in html
    assert 'href="/console/revisits/?role=all&amp;part=upcoming&amp;cursor=c-2"' in html

    def refused(part, cursor):
        raise Problem(422, "the request has invalid fields")

    response = parted("part=upcoming&cursor=mangled", refused)
    assert response.status_code == 303
    assert response.headers["Location"] == "/console/revisits/?notice=reset"
    assert 'id="notice"' in parted("notice=reset", lambda part, cursor: ([], None)).get_data(
        as_text=True)


# pages ------------------------------------------------------------------------------------------

def test_without_a_session_every_page_sends_to_the_login_page():
    ctx = context(FakeIntake(complaint()), path="/console/complaints/cmp-1",
                  query_string="x=1", signed_in=False)
    response = console.complaint_page(ctx, "cmp-1")
    assert response.status_code == 303
    assert response.headers["Location"] == "/console/login?next=%2Fconsole%2Fcomplaints%2Fcmp-1%3Fx%3D1"


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_the_worklist_asks_intake_for_the_open_complaints_by_deadline(language):
    late = complaint(id="cmp-late", next_due_at=(NOW - timedelta(hours=30)).isoformat())
    resolved = complaint(id="cmp-done", status="resolved", next_due_at=None, next_due=None)
    intake = FakeIntake(late, resolved, complaint(id="cmp-west", estate_id="e-2"))
    response = console.worklist(context(intake, query_string="status=resolved&estate_id=e-1",
                                        language=language))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    [(_, filters)] = intake.calls
    assert filters == {"status": "resolved", "estate_id": "e-1", "open": True,
                       "order": "due", "limit": console.PAGE_SIZE, "estate_ids": ["e-1"]}
    assert 'id="row-cmp-late" class="item is-overdue"' in html and "cmp-west" not in html
    assert ("已超 1 天 6 小时" if language == "zh-CN" else "1 d 6 h late") in html
    assert 'id="next-page"' in html and "cursor=next-one" in html


def test_the_worklist_finds_what_a_supervisor_or_a_department_looks_for():
    intake = FakeIntake(complaint())
    html = console.worklist(context(intake, query_string=(
        "department=%E7%A7%A9%E5%BA%8F%E9%83%A8&repeat=true&malicious=true&overdue=x"))
    ).get_data(as_text=True)
    [(_, filters)] = intake.calls
    # a repeat's special measures, malicious flags, a department's complaints; a tick box
    # sent with anything but "true" is no filter
    assert (filters["department"], filters["repeat"], filters["malicious"]) == (
        "秩序部", True, True) and "overdue" not in filters
    assert 'id="f-repeat" name="repeat" value="true" checked' in html
    assert 'value="秩序部"' in html


def test_a_departments_worklist_is_fixed_to_its_department_and_one_without_is_told():
    intake = FakeIntake(complaint())
    ctx = context(intake, query_string="department=%E7%A7%A9%E5%BA%8F%E9%83%A8",
                  roles=("department",))
    html = console.worklist(ctx).get_data(as_text=True)
    [(_, filters)] = intake.calls
    assert filters["department"] == "工程部"            # theirs, whatever the link said
    assert 'id="f-department"' not in html and 'id="department-scope"' in html
    assert "工程部" in html
    # an account from before departments: nothing asked, and the page says why
    intake = FakeIntake(complaint())
    ctx = context(intake, roles=("department",))
    ctx.accounts = FakeAccounts(("department",), department=None)
    html = console.worklist(ctx).get_data(as_text=True)
    assert intake.calls == []
    assert 'id="department-scope"' in html and "系统管理员" in html


def test_pages_name_their_estates_with_one_question_to_intake():
    rows = [complaint(id=f"cmp-{n}") for n in range(3)]
    intake = FakeIntake(*rows, complaint(id="cmp-gone", estate_id="e-unknown"))
    ctx = context(intake)
    ctx.accounts.actor = Actor("u-clerk", ("cs_staff",), ("e-1", "e-unknown"))
    html = console.worklist(ctx).get_data(as_text=True)
    # the rows and the estate filter: names, one list_estates for all of them
    assert intake.estate_lists == [{"estate_ids": ["e-1", "e-unknown"], "limit": 2}]
    assert html.count('<span class="estate">阳光花园</span>') == 3
    assert '<option value="e-1" >阳光花园</option>' in html
    # an estate intake has no record of keeps its id
    assert '<span class="estate">e-unknown</span>' in html
    assert '<option value="e-unknown" >e-unknown</option>' in html

    page = console.complaint_page(context(FakeIntake(complaint())), "cmp-1")
    assert '<dd id="estate">阳光花园</dd>' in page.get_data(as_text=True)


def test_the_complaint_page_offers_what_the_state_allows_and_the_role_permits():
    registered = complaint()
    assert forms_of(console.complaint_page(context(FakeIntake(registered)), "cmp-1")
                    .get_data(as_text=True)) == ["acknowledge", "escalate"]
    as_supervisor = context(FakeIntake(registered), roles=("supervisor",))
    assert forms_of(console.complaint_page(as_supervisor, "cmp-1").get_data(as_text=True)) \
        == ["acknowledge", "escalate", "flag-malicious"]
    assigned = complaint(status="assigned", department="工程部",
                         external={"unit": "电梯公司", "status": "referred"},
                         allowed_actions=["assign", "resolve", "escalate", "external_status",
                                          "flag_malicious"])
    as_department = context(FakeIntake(assigned), roles=("department",))
    html = console.complaint_page(as_department, "cmp-1").get_data(as_text=True)
    assert forms_of(html) == ["resolve", "external-status", "escalate"]     # no assign
    assert "电梯公司" in html


def test_an_action_goes_through_the_api_as_the_user():
    intake = FakeIntake(complaint())
    page = console.complaint_page(context(intake), "cmp-1").get_data(as_text=True)
    form = page[page.index('id="form-acknowledge"'):].split("</form>")[0]
    key = re.search(r'name="request_key" value="([0-9a-f]{32})"', form).group(1)
    assert 'name="expected_status" value="registered"' in form
    assert key not in page[page.index("</form>", page.index('id="form-acknowledge"')):]
    ctx = context(intake, method="POST", path="/console/complaints/cmp-1/acknowledge",
                  data={"note": "已致歉", "csrf_token": "csrf-of-jti-1", "request_key": key,
                        "expected_status": "registered"})
    response = console.act(ctx, "cmp-1", "acknowledge")
    assert response.status_code == 303
    assert response.headers["Location"] == "/console/complaints/cmp-1?done=acknowledge"
    assert intake.calls == [("acknowledge_complaint", "cmp-1", {"note": "已致歉"})]
    # the form's key is the API's Idempotency-Key, the state it showed ?expected_status=
    assert intake.changes == [{"request_id": key, "expected_status": "registered"}]


def test_an_action_the_role_may_not_take_is_refused_without_reaching_intake():
    intake = FakeIntake(complaint())
    ctx = context(intake, method="POST", path="/console/complaints/cmp-1/flag-malicious",
                  data={"reason": "x", "malicious": "true"})
    response = console.act(ctx, "cmp-1", "flag-malicious")
    assert response.status_code == 403 and intake.calls == []
    assert 'id="message-forbidden"' in response.get_data(as_text=True)


def test_refused_input_comes_back_marked_with_what_was_typed():
    intake = FakeIntake(complaint())
    intake.error = RemoteError("InvalidInput", json.dumps(
        {"reason": ["Missing data for required field."], "role": ["not on the ladder"]}))
    ctx = context(intake, method="POST", path="/console/complaints/cmp-1/escalate",
                  data={"reason": "", "csrf_token": "c"})
    response = console.act(ctx, "cmp-1", "escalate")
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="escalate-reason-error"' in html and "请填写此项" in html
    assert "not on the ladder" in html               # a field the form has not: said above it
    assert 'form class="card action has-error" id="form-escalate"' in html


def test_another_estates_complaint_is_not_found():
    west = complaint(estate_id="e-2")
    response = console.complaint_page(context(FakeIntake(west)), "cmp-1")
    assert response.status_code == 404
    unknown = console.complaint_page(context(FakeIntake()), "cmp-nothing")
    assert unknown.status_code == 404
    assert unknown.get_data() == response.get_data()


def test_a_complaint_with_every_detail_renders_in_both_languages():
    full = complaint(
        status="closed", department="秩序部", resolution="已劝导", owner_signoff="satisfied",
        reply_promised_at="2026-11-26T02:00:00+00:00", repeat_of="cmp-0",
        escalations=[{"level": 2, "role": "manager"}], work_order_id="wo-1", malicious=True,
        next_due_at=None, next_due=None, allowed_actions=["reopen", "request_review",
                                                          "flag_malicious"],
        history=[*complaint()["history"],
                 {"at": "2026-11-24T03:00:00+00:00", "by": "system", "action": "overdue",
                  "from": "registered", "to": "registered", "note": "first_response was due"},
                 {"at": "2026-11-24T04:00:00+00:00", "by": "u-gone", "action": "assign",
                  "from": "acknowledged", "to": "assigned", "note": "to 秩序部",
                  "department": "秩序部", "reply_promised_at": "2026-11-26T02:00:00+00:00"},
                 {"at": "2026-11-24T05:00:00+00:00", "by": "revisit", "action": "reopen",
                  "from": "closed", "to": "reopened", "note": "回访不满意",
                  "source": "revisit"},
                 {"at": "2026-11-24T06:00:00+00:00", "by": "u-clerk", "action": "new_kind",
                  "from": "reopened", "to": "reopened", "note": "以后才有的步骤"}])
    for language, words in (("zh-CN", ("王芳", "系统", "回访发现", "交由秩序部处理",
                                       "撤销恶意投诉标记")),
                            ("en", ("王芳", "System", "Found at a follow-up visit",
                                    "Passed to 秩序部", "Lift the malicious flag"))):
        ctx = context(FakeIntake(full), roles=("supervisor",), language=language,
                      query_string="done=register")
        html = console.complaint_page(ctx, "cmp-1").get_data(as_text=True)
        assert all(word in html for word in words), language
        assert '"note">to 秩序部' not in html and "first_response was due" not in html
        assert "u-gone" in html and "new_kind" in html and "以后才有的步骤" in html
        assert 'id="apology-script"' in html


def test_the_front_desk_form_and_its_refusals():
    intake = FakeIntake()
    intake.error = RemoteError("InvalidInput", json.dumps(
        {"reporter": {"phone": ["Not a valid phone number."]}, "category": ["Must be one of"]}))
    ctx = context(intake, method="POST", path="/console/complaints/new", data={
        "estate_id": "e-1", "reporter_name": "路人", "reporter_phone": "123",
        "channel": "visit", "severity": "normal", "content": "狗叫", "csrf_token": "c"})
    response = console.register(ctx)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'id="reporter_phone-error"' in html and 'id="category-error"' in html
    assert 'value="123"' in html and "狗叫" in html
    assert intake.calls == [("register_complaint", {
        "estate_id": "e-1", "channel": "visit", "category": "", "severity": "normal",
        "content": "狗叫", "reporter": {"name": "路人", "phone": "123"}})]
    other = context(FakeIntake(), method="POST", path="/console/complaints/new", data={
        "estate_id": "e-2", "channel": "visit", "category": "noise", "content": "x"})
    response = console.register(other)
    assert response.status_code == 403 and 'id="estate_id-error"' in response.get_data(
        as_text=True)


def test_a_typed_estate_that_is_no_id_keeps_the_form_and_is_shown_as_typed():
    """The front desk's estate typed by a group-wide user: naming it never fails the page."""
    intake = FakeIntake()

    def refused(filters, paged=False):       # intake: 东湖 花园 is no estate id
        raise RemoteError("InvalidInput", json.dumps({"estate_ids": {"1": ["not a valid id"]}}))
    intake.list_estates = refused
    ctx = context(intake, path="/console/complaints/new",
                  query_string="estate_id=东湖 花园&building=")
    response = console.new_complaint(ctx)
    assert response.status_code == 200
    assert "东湖 花园" in response.get_data(as_text=True)
