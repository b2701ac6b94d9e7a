"""Over real HTTP to the five services running as processes: the console's follow-ups of
unsatisfied revisits (the worklist by department, a follow-up's page with the owner's
words, its revisit linked both ways, measures with the person responsible, the answer;
refusals said on the page, CSRF on every form, 404 outside one's estates), and the
manager's instruction on an escalated complaint (who may give it, in which estates), shown
on the complaint's page with the revisits the complaint keeps."""
import pytest

from tests.helpers import (
    api,
    closed_complaint,
    complaint_with_its_revisit,
    csrf,
    hidden,
    page,
    post,
    register_estates,
    revisit_of,
    signed_in,
    staff_accounts,
    unsatisfied_followup,
)

pytestmark = pytest.mark.broker

EAST, WEST = "fu-east", "fu-west"
NAMES = {EAST: "东岸花园", WEST: "西岸花园"}


@pytest.fixture(scope="module")
def staff(gateway):
    register_estates(gateway, NAMES, 2, building="9", phones="1361234", owner="住户")
    return staff_accounts(gateway, (("fu.sup.east", "supervisor", [EAST], "李主管"),
                                    ("fu.sup.west", "supervisor", [WEST], "赵主管"),
                                    ("fu.em.east", "estate_manager", [EAST], "陈经理"),
                                    ("fu.em.west", "estate_manager", [WEST], "周经理"),
                                    ("fu.dept.east", "department", [EAST], "客服中心",
                                     {"department": "客服中心"})))


@pytest.fixture(scope="module")
def followup(gateway, staff):
    """A community activity whose revisit left the owner unsatisfied: its follow-up."""
    return unsatisfied_followup(gateway, staff["fu.sup.east"]["token"], EAST, f"{EAST}-0",
                                "中秋游园会", "游园会音响太吵，一直到晚上十点")


# follow-ups ---------------------------------------------------------------------------------

def test_the_worklist_lists_my_estates_open_follow_ups_by_department(gateway, staff, followup):
    session = signed_in(gateway, "fu.sup.east")
    assert 'href="/console/revisits/followups/"' in page(session, gateway,
                                                         "/console/revisits/").text
    text = page(session, gateway, "/console/revisits/followups/").text
    part = text[text.index('id="part-open"'):text.index('id="part-measures_recorded"')]
    assert followup["followup"]["id"] in part and "客服中心" in part
    assert "游园会音响太吵" in part
    assert 'id="empty-overdue"' in text          # nothing is late yet
    west = signed_in(gateway, "fu.sup.west")
    assert followup["followup"]["id"] not in page(west, gateway,
                                                  "/console/revisits/followups/").text


def test_a_mangled_filter_goes_back_to_the_overview_said_so(gateway, staff, followup):
    session = signed_in(gateway, "fu.sup.east")
    response = page(session, gateway, "/console/revisits/followups/?department=" + "x" * 101,
                    status=303)
    assert response.headers["Location"].endswith("/console/revisits/followups/?notice=reset")


def test_the_follow_up_page_shows_the_owners_words_and_its_revisit_both_ways(
        gateway, staff, followup):
    session = signed_in(gateway, "fu.sup.east")
    path = f"/console/revisits/followups/{followup['followup']['id']}"
    text = page(session, gateway, path).text
    assert "游园会音响太吵，一直到晚上十点" in text and "客服中心" in text
    assert f'href="/console/revisits/{followup["revisit"]["id"]}"' in text
    assert 'id="form-measures"' in text and 'id="form-answer"' not in text
    revisit_page = page(session, gateway, f"/console/revisits/{followup['revisit']['id']}").text
    assert f'href="{path}"' in revisit_page
    assert "游园会" not in page(signed_in(gateway, "fu.sup.west"), gateway, path,
                               status=404).text


def test_measures_then_the_answer_through_the_page(gateway, staff, followup):
    session = signed_in(gateway, "fu.dept.east")
    path = f"/console/revisits/followups/{followup['followup']['id']}"
    form = hidden(page(session, gateway, path).text, "form-measures")
    # without the form's CSRF token: refused, nothing written
    post(session, gateway, f"{path}/measures",
         {**form, "csrf_token": "forged", "measures": "调低音量", "responsible": "张三"},
         status=403)
    # no responsible person: said on the page by the field
    refused = post(session, gateway, f"{path}/measures",
                   {**form, "measures": "调低音量"}, status=422).text
    assert 'id="measures-responsible-error"' in refused and "调低音量" in refused
    post(session, gateway, f"{path}/measures",
         {**form, "measures": "活动音响限定音量，九点前结束", "responsible": "张三"})
    text = page(session, gateway, f"{path}?done=measures").text
    assert 'id="done"' in text and "活动音响限定音量，九点前结束" in text and "张三" in text
    assert 'id="form-answer"' in text
    # the same form again (a resent page) acts once: it still holds one measure
    post(session, gateway, f"{path}/measures",
         {**form, "measures": "活动音响限定音量，九点前结束", "responsible": "张三"})
    answer = hidden(text, "form-answer")
    post(session, gateway, f"{path}/answer", {**answer, "answer": "已限定音量并提前结束活动"})
    done = page(session, gateway, path).text
    assert "已限定音量并提前结束活动" in done and 'id="form-answer"' not in done
    assert done.count('class="responsible"') == 1
    # a colleague's page that still showed "measures recorded": 409 said on the page
    colleague = signed_in(gateway, "fu.sup.east")
    stale = post(colleague, gateway, f"{path}/answer", {
        "csrf_token": csrf(page(colleague, gateway, path).text), "request_key": "answer-2",
        "expected_status": "measures_recorded", "answer": "再答复一次"}, status=409).text
    assert 'id="action-error"' in stale


# the manager's instruction ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def escalated(gateway, staff):
    token = staff["fu.sup.east"]["token"]
    made = api(gateway, "POST", "/complaints", token, json={
        "estate_id": EAST, "household_id": f"{EAST}-1", "channel": "visit",
        "category": "fees", "content": "物业费多收了两个月"})
    api(gateway, "POST", f"/complaints/{made['id']}/escalate", token,
        json={"reason": "涉及退费，超出权限", "role": "manager"})
    return made


def test_who_may_instruct_and_in_which_estates(gateway, staff, escalated):
    path = f"/api/v1/complaints/{escalated['id']}/instruct"
    body = {"instruction": "核实后三日内退还多收费用"}
    for username, status in (("fu.sup.east", 403), ("fu.dept.east", 403), ("fu.em.west", 404)):
        response = gateway.request("POST", path, token=staff[username]["token"], json=body)
        assert response.status_code == status, (username, response.text)
    assert gateway.request("POST", path, token=staff["fu.em.east"]["token"],
                           json={"instruction": " "}).status_code == 422
    instructed = gateway.request("POST", path, token=staff["fu.em.east"]["token"],
                                 json={**body, "staff_id": "someone", "role": "company_manager"})
    assert instructed.status_code == 200, instructed.text
    [line] = instructed.json()["instructions"]
    assert (line["by"], line["role"]) == (staff["fu.em.east"]["id"], "manager")


def test_the_complaint_page_offers_the_instruction_to_the_manager_and_shows_it(
        gateway, staff, escalated):
    path = f"/console/complaints/{escalated['id']}"
    assert 'id="form-instruct"' not in page(signed_in(gateway, "fu.sup.east"), gateway,
                                            path).text
    manager = signed_in(gateway, "fu.em.east")
    form = hidden(page(manager, gateway, path).text, "form-instruct")
    refused = post(manager, gateway, f"{path}/instruct", {**form, "instruction": ""},
                   status=422).text
    assert 'id="instruct-instruction-error"' in refused
    post(manager, gateway, f"{path}/instruct", {**form, "instruction": "先退一个月，其余核实"})
    text = page(manager, gateway, f"{path}?done=instruct").text
    assert 'id="instructions"' in text and "先退一个月，其余核实" in text and "陈经理" in text


def test_the_complaint_page_and_record_show_the_revisits_the_complaint_keeps(gateway, staff):
    token = staff["fu.sup.east"]["token"]
    # assigned to the department's account's own department: the one it may read
    made = closed_complaint(gateway, token, EAST, f"{EAST}-0", "垃圾房异味大",
                            department="客服中心", resolution="已消毒")
    revisit = revisit_of(gateway, made["id"])
    api(gateway, "POST", f"/revisits/{revisit['id']}/record", token, json={
        "method": "phone", "reached": True, "satisfaction": "very_satisfied", "resolved": True,
        "comments": "没有异味了"})
    complaint_with_its_revisit(gateway, made["id"])
    # the department cannot read revisits, yet sees them on the complaint and its record
    department = signed_in(gateway, "fu.dept.east")
    for path in (f"/console/complaints/{made['id']}", f"/console/records/complaints/{made['id']}"):
        text = page(department, gateway, path).text
        assert "没有异味了" in text and "李主管" in text, path
