"""The owner's view of a complaint (/c/<token>) and the online form's complaints: the
rules without a broker (services/intake/owner.py), then intake's RPCs on the embedded store."""
import json
from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import worker_factory

from services.intake import domain, owner
from services.intake.policy import Policies
from services.intake.repository import IntakeRepository
from services.intake.service import IntakeService
from shared.actor import Actor, Caller
from shared.clock import FrozenClock
from shared.config import load_config
from shared.errors import Forbidden, InvalidInput, InvalidTransition
from shared.rpc import to_json
from tests.helpers import embedded

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)   # Monday 10:00 in Shanghai
POLICY = Policies().for_estate("e-1")
STAFF_IDS = ("s-desk", "s-eng-7", "s-sup-2", "s-rev-9")
PROMISED = NOW + timedelta(days=2)


def step(complaint, action, by, minutes, **details):
    complaint, _ = domain.apply(complaint, action, by, NOW + timedelta(minutes=minutes), POLICY,
                                **details)
    return complaint


def registered(**overrides):
    data = {"estate_id": "e-1", "household_id": "h-1", "reporter": None, "channel": "wechat",
            "category": "noise", "severity": "normal", "content": "楼上装修到晚上十点",
            "received_at": NOW - timedelta(hours=1), "staff_id": "s-desk", **overrides}
    complaint, _ = domain.register("cmp-1", data, [], POLICY, NOW)
    return complaint


def closed():
    """A complaint worked through by named staff, with staff-only steps between."""
    complaint = registered()
    complaint = step(complaint, "acknowledge", "s-desk", 10, note="内部：业主情绪激动，s-sup-2 跟进")
    complaint = step(complaint, "assign", "s-sup-2", 20, department="秩序部",
                     assignee_id="s-eng-7", external_unit="城管执法队",
                     reply_promised_at=PROMISED)
    complaint, _ = domain.escalate(complaint, "s-sup-2", "业主投诉多次", NOW, POLICY)
    complaint = step(complaint, "resolve", "s-eng-7", 30, resolution="已约谈装修单位，晚八点后停工")
    return step(complaint, "close", "s-desk", 40, owner_signoff="satisfied")


# the timeline --------------------------------------------------------------------

def test_the_timeline_shows_each_step_with_the_department_promise_and_resolution():
    steps = owner.timeline(closed())
    assert [entry["step"] for entry in steps] == [
        "received", "acknowledged", "assigned", "resolved", "closed"]
    received, _, assigned, resolved, _ = steps
    assert received["at"] == NOW - timedelta(hours=1)        # when the owner complained
    assert (assigned["department"], assigned["reply_promised_at"]) == ("秩序部", PROMISED)
    assert resolved["resolution"] == "已约谈装修单位，晚八点后停工"


def test_the_owner_sees_no_staff_name_no_note_for_staff_and_nothing_internal():
    view = json.dumps(to_json(owner.owner_view(closed(), POLICY)), ensure_ascii=False)
    for hidden in (*STAFF_IDS, "内部", "业主情绪激动", "业主投诉多次", "城管执法队", "escalat",
                   "h-1", "楼上装修", "owner_token", '"by"', "satisfied"):
        assert hidden not in view, hidden


def test_reassigning_shows_each_department_as_it_was():
    complaint = step(step(step(registered(), "acknowledge", "s-desk", 1), "assign", "s-desk", 2,
                          department="客服中心"), "assign", "s-desk", 3, department="工程部")
    assert [entry["department"] for entry in owner.timeline(complaint)
            if entry["step"] == "assigned"] == ["客服中心", "工程部"]


def test_lines_written_before_departments_were_kept_show_the_current_one():
    complaint = step(step(registered(), "acknowledge", "s-desk", 1), "assign", "s-desk", 2,
                     department="工程部")
    for line in complaint["history"]:
        line.pop("department", None)
        line.pop("reply_promised_at", None)
    assert owner.timeline(complaint)[-1]["department"] == "工程部"


def test_a_reopening_says_why_and_a_review_shows_its_due_time_and_finding():
    complaint = step(closed(), "reopen", "s-rev-9", 50, reason="回访：仍有噪音", source="revisit")
    complaint = step(step(step(step(complaint, "acknowledge", "s-desk", 60), "assign", "s-desk", 70),
                          "resolve", "s-eng-7", 80, resolution="更换施工时间"),
                     "close", "s-desk", 90, owner_signoff="none")
    complaint, _ = owner.request_review(complaint, "还是很吵", NOW + timedelta(minutes=100), POLICY)
    complaint = step(complaint, "uphold_review", "s-rev-9", 110, finding="经核查施工已按时停止")
    steps = owner.timeline(complaint)
    reopened = next(entry for entry in steps if entry["step"] == "reopened")
    assert reopened["source"] == "revisit"
    requested, upheld = steps[-2:]
    assert requested["step"] == "review_requested"
    assert requested["due_at"] == complaint["reviews"][0]["due_at"]
    assert (upheld["step"], upheld["finding"]) == ("review_upheld", "经核查施工已按时停止")
    assert "还是很吵" not in json.dumps(to_json(steps), ensure_ascii=False)


def test_an_overturned_review_is_one_step_and_the_answer_is_owed_again():
    complaint = step(closed(), "request_review", "owner", 50, reason="不满意", requested_by="owner")
    complaint = step(complaint, "overturn_review", "s-rev-9", 60, finding="处理不到位，重新处理")
    assert owner.timeline(complaint)[-1]["step"] == "review_overturned"
    assert owner.answer_due(complaint) == complaint["reply_due"]


@pytest.mark.parametrize("status, due", [
    ("registered", "reply_due"), ("assigned", "reply_promised_at"), ("resolved", None),
    ("closed", None), ("under_review", "review")])
def test_the_answer_owed_is_the_promise_else_the_deadline_else_the_review(status, due):
    complaint = registered()
    path = {"registered": [], "assigned": ["acknowledge", "assign"],
            "resolved": ["acknowledge", "assign", "resolve"],
            "closed": ["acknowledge", "assign", "resolve", "close"],
            "under_review": ["acknowledge", "assign", "resolve", "close", "request_review"]}[status]
    details = {"assign": {"reply_promised_at": PROMISED}, "resolve": {"resolution": "好了"},
               "close": {"owner_signoff": "none"}, "request_review": {"reason": "不满意"}}
    for minutes, action in enumerate(path):
        complaint = step(complaint, action, "s-desk", minutes, **details.get(action, {}))
    expected = {None: None, "reply_due": complaint["reply_due"], "reply_promised_at": PROMISED,
                "review": complaint["reviews"][-1]["due_at"] if complaint["reviews"] else None}
    assert owner.answer_due(complaint) == expected[due]


# reviews -------------------------------------------------------------------------

@pytest.mark.parametrize("status", ["registered", "acknowledged", "assigned", "resolved",
                                    "reopened", "under_review"])
def test_a_review_is_asked_only_of_a_closed_complaint(status):
    complaint = dict(closed(), status=status)
    assert not owner.can_request_review(complaint)
    with pytest.raises(InvalidTransition, match=status):
        owner.request_review(complaint, "不满意", NOW, POLICY)


def test_a_closed_complaint_takes_a_review_as_the_owners_and_not_while_one_is_open():
    complaint = closed()
    assert owner.owner_view(complaint, POLICY)["review"] == {"can_request": True, "open": None}
    complaint, events = owner.request_review(complaint, "仍不满意", NOW + timedelta(hours=1),
                                             POLICY)
    assert complaint["history"][-1]["by"] == "owner"
    assert complaint["reviews"][-1]["requested_by"] == "owner"
    assert [event["type"] for event in events] == ["complaint_review_requested"]
    review = owner.owner_view(complaint, POLICY)["review"]
    assert review["can_request"] is False
    assert review["open"]["due_at"] == complaint["reviews"][-1]["due_at"]
    # a closed complaint whose last review was somehow left undecided takes no other
    stuck = dict(complaint, status="closed")
    assert not owner.can_request_review(stuck)


def test_after_a_review_upheld_the_owner_may_ask_again():
    complaint, _ = owner.request_review(closed(), "仍不满意", NOW, POLICY)
    complaint = step(complaint, "uphold_review", "s-rev-9", 60, finding="维持")
    assert owner.can_request_review(complaint)


# the link's lifetime ---------------------------------------------------------------

def test_the_link_works_while_handled_and_for_the_policys_days_after_the_last_closing():
    handled = step(registered(), "acknowledge", "s-desk", 1)
    assert owner.link_expires_at(handled, POLICY) is None
    assert owner.link_works(handled, NOW + timedelta(days=3650), POLICY)
    complaint = closed()
    closing = complaint["history"][-1]["at"]
    assert owner.link_expires_at(complaint, POLICY) == closing + timedelta(days=90)
    assert owner.link_works(complaint, closing + timedelta(days=89, hours=23), POLICY)
    assert not owner.link_works(complaint, closing + timedelta(days=90), POLICY)


def test_a_review_upheld_counts_as_the_last_closing_and_a_reopening_revives_the_link():
    complaint, _ = owner.request_review(closed(), "仍不满意", NOW + timedelta(days=30), POLICY)
    upheld_at = NOW + timedelta(days=33)
    complaint, _ = domain.apply(complaint, "uphold_review", "s-rev-9", upheld_at, POLICY,
                                finding="维持")
    assert owner.link_expires_at(complaint, POLICY) == upheld_at + timedelta(days=90)
    late = upheld_at + timedelta(days=200)
    reopened, _ = domain.apply(complaint, "reopen", "s-desk", late, POLICY, reason="again",
                               source="owner")
    assert owner.link_works(reopened, late + timedelta(days=1), POLICY)


def test_each_estate_sets_how_long_links_last():
    policies = Policies(estates={"e-short": {"owner_link_days": 7}})
    complaint = dict(closed(), estate_id="e-short")
    closing = complaint["history"][-1]["at"]
    assert owner.link_expires_at(complaint, policies.for_estate("e-short")) == \
        closing + timedelta(days=7)
    with pytest.raises(InvalidInput):
        Policies({"owner_link_days": 0})


# tokens and the online form ---------------------------------------------------------

def test_every_complaint_gets_an_unguessable_token_staff_never_see():
    tokens = {registered()["owner_token"] for _ in range(200)}
    assert len(tokens) == 200
    assert all(len(token) >= 22 for token in tokens)          # 128 random bits
    assert "owner_token" not in domain.public_view(registered())


def test_an_online_complaint_is_the_reporters_with_where_they_said_it_is_in_the_content():
    data = owner.online_complaint({
        "estate_id": "e-1", "category": "cleaning", "content": "楼道垃圾三天没清",
        "reporter": {"name": "李雷", "phone": "13900001111"}, "location": " 3栋502 "})
    assert (data["channel"], data["household_id"], data["staff_id"]) == ("online", None, None)
    assert data["content"] == "楼道垃圾三天没清\n（业主自报位置：3栋502）"
    assert owner.online_complaint(dict(data, location=None))["content"] == data["content"]


# the RPCs, on the embedded store -------------------------------------------------------

HOUSEHOLD = {"household_id": "h-1", "building": "3", "unit": "1", "room": "502",
             "occupied": True,
             "contacts": [{"name": "王芳", "phone": "13812345678", "email": "wf@example.com"}]}
COMPLAINT = {"estate_id": "e-1", "household_id": "h-1", "channel": "wechat",
             "category": "noise", "content": "楼上装修到晚上十点"}
ONLINE = {"estate_id": "e-1", "category": "cleaning", "content": "楼道垃圾三天没清",
          "reporter": {"name": "李雷", "phone": "13900001111"}, "location": "3栋502"}
FROM_GATEWAY, FROM_NOTIFY = Caller(None, "gateway"), Caller(None, "notify")


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def service(clock):
    config = load_config()
    service = worker_factory(IntakeService, store=embedded(IntakeRepository), clock=clock,
                             config=config, policies=Policies.from_config(config),
                             caller=Caller(None, None),
                             contact_callers=tuple(config["CONTACT_CALLERS"]))
    service.import_households("e-1", [HOUSEHOLD], estate={"name": "测试小区"})
    return service


def owner_link(service, complaint_id):
    """The token as notify gets it: with the contact."""
    service.caller, before = FROM_NOTIFY, service.caller
    try:
        return service.get_contact(complaint_id)["owner_url_token"]
    finally:
        service.caller = before


def work_through(service, complaint_id):
    service.acknowledge_complaint(complaint_id, {"staff_id": "s-1", "note": "已致歉"})
    service.assign_complaint(complaint_id, {"department": "秩序部", "assignee_id": "s-7"})
    service.resolve_complaint(complaint_id, {"staff_id": "s-7", "resolution": "已劝导"})
    return service.close_complaint(complaint_id, {"closed_by": "s-1", "owner_signoff": "none"})


def test_notify_gets_the_owners_token_with_the_contact_and_staff_never_do(service):
    complaint = service.register_complaint(COMPLAINT)
    token = owner_link(service, complaint["id"])
    stored = service.store.find_complaint(complaint["id"])
    assert token == stored["owner_token"]
    assert token not in json.dumps([complaint, service.get_complaint(complaint["id"]),
                                    service.list_complaints({"estate_id": "e-1"})])
    service.caller = FROM_NOTIFY
    assert "owner_url_token" not in service.get_contact("h-1")    # a household: no link


def test_a_complaint_from_before_links_gets_one_when_notify_first_asks(service):
    complaint = service.register_complaint(COMPLAINT)
    service.store.db.complaints.update_one({"_id": complaint["id"]},
                                           {"$unset": {"owner_token": ""}})
    token = owner_link(service, complaint["id"])
    assert token and owner_link(service, complaint["id"]) == token    # minted once
    service.caller = FROM_GATEWAY
    assert service.owner_view(token)["number"] == complaint["id"]
    # a save of a copy read before the token was minted keeps it
    service.caller = Caller(None, None)
    service.acknowledge_complaint(complaint["id"], {"staff_id": "s-1", "note": ""})
    assert service.store.find_complaint(complaint["id"])["owner_token"] == token


def test_the_owner_follows_the_complaint_and_asks_for_a_review(service, clock):
    complaint = service.register_complaint(COMPLAINT)
    token = owner_link(service, complaint["id"])
    service.caller = FROM_GATEWAY
    view = service.owner_view(token)
    assert (view["number"], view["status"], view["category"]) == (
        complaint["id"], "registered", "noise")
    assert view["answer_due"] == complaint["reply_due"]
    assert view["review"] == {"can_request": False, "open": None}
    with pytest.raises(InvalidTransition):
        service.owner_request_review(token, {"reason": "太慢了"})
    service.caller = Caller(None, None)
    work_through(service, complaint["id"])
    service.caller = FROM_GATEWAY
    view = service.owner_view(token)
    assert [entry["step"] for entry in view["timeline"]] == [
        "received", "acknowledged", "assigned", "resolved", "closed"]
    assert view["review"]["can_request"] is True
    view = service.owner_request_review(token, {"reason": "噪音仍然存在"})
    assert view["status"] == "under_review" and view["review"]["open"]
    assert "s-1" not in json.dumps(view) and "s-7" not in json.dumps(view)
    stored = service.store.find_complaint(complaint["id"])
    assert (stored["history"][-1]["by"], stored["reviews"][-1]["requested_by"]) == (
        "owner", "owner")
    assert [event["type"] for event in stored["outbox"]][-1] == "complaint_review_requested"
    with pytest.raises(InvalidTransition):
        service.owner_request_review(token, {"reason": "再来一次"})


@pytest.mark.parametrize("reason", ["", "   ", "x" * 2001, None])
def test_a_review_needs_a_reason_of_up_to_2000_characters(service, reason):
    complaint = service.register_complaint(COMPLAINT)
    token = owner_link(service, complaint["id"])
    work_through(service, complaint["id"])
    service.caller = FROM_GATEWAY
    with pytest.raises(InvalidInput) as refused:
        service.owner_request_review(token, {"reason": reason})
    assert "reason" in refused.value.errors
    assert service.owner_view(token)["status"] == "closed"


def test_the_link_stops_working_90_days_after_the_closing(service, clock):
    complaint = service.register_complaint(COMPLAINT)
    token = owner_link(service, complaint["id"])
    work_through(service, complaint["id"])
    service.caller = FROM_GATEWAY
    clock.advance(timedelta(days=89))
    assert service.owner_view(token)["link_expires_at"] == (NOW + timedelta(days=90)).isoformat()
    clock.advance(timedelta(days=1))
    for call in (lambda: service.owner_view(token),
                 lambda: service.owner_request_review(token, {"reason": "晚了"})):
        with pytest.raises(InvalidInput) as refused:
            call()
        assert refused.value.errors == {"token": [owner.UNKNOWN_LINK]}


@pytest.mark.parametrize("token", ["x" * 22, "short", "a" * 65, {"$ne": None}, None,
                                   "abc def ghi jkl mno pqr"])
def test_an_unknown_or_malformed_token_is_refused_on_token(service, token):
    service.register_complaint(COMPLAINT)
    service.caller = FROM_GATEWAY
    with pytest.raises(InvalidInput) as refused:
        service.owner_view(token)
    assert list(refused.value.errors) == ["token"]


@pytest.mark.parametrize("caller", [
    Caller(None, None), Caller(None, "notify"), Caller(None, "standalone_rpc_proxy"),
    Caller(Actor("u-1", ("admin",)), "gateway"), Caller(None, "gateway", unreadable_actor=True)])
def test_only_the_gateway_on_no_ones_behalf_serves_owners(service, caller):
    complaint = service.register_complaint(COMPLAINT)
    token = owner_link(service, complaint["id"])
    service.caller = caller
    for call in (lambda: service.owner_view(token),
                 lambda: service.owner_request_review(token, {"reason": "x"}),
                 lambda: service.register_online_complaint(ONLINE)):
        with pytest.raises(Forbidden):
            call()


def test_an_online_complaint_answers_its_link_to_the_gateway_alone(service):
    service.caller = FROM_GATEWAY
    answer = service.register_online_complaint(ONLINE)
    stored = service.store.find_complaint(answer["number"])
    assert answer["owner_token"] == stored["owner_token"]
    assert (stored["channel"], stored["household_id"], stored["reporter"]) == (
        "online", None, {"name": "李雷", "phone": "13900001111"})
    assert stored["content"].endswith("（业主自报位置：3栋502）")
    assert stored["history"][0]["by"] == "reporter"
    assert [event["type"] for event in stored["outbox"]] == ["complaint_registered"]
    assert service.owner_view(answer["owner_token"])["number"] == answer["number"]
    service.caller = FROM_NOTIFY      # the apology goes to the reporter's phone
    contact = service.get_contact(answer["number"])
    assert (contact["phone"], contact["owner_url_token"]) == ("13900001111", answer["owner_token"])


@pytest.mark.parametrize("change, field", [
    ({"estate_id": "e-404"}, "estate_id"), ({"category": "ufo"}, "category"),
    ({"content": " "}, "content"), ({"reporter": {"name": "李雷", "phone": "123"}}, "reporter"),
    ({"reporter": None}, "reporter"), ({"household_id": "h-1"}, "household_id"),
    ({"channel": "hotline"}, "channel"), ({"location": "x" * 51}, "location")])
def test_the_online_form_takes_only_what_a_stranger_may_say(service, change, field):
    service.caller = FROM_GATEWAY
    with pytest.raises(InvalidInput) as refused:
        service.register_online_complaint(dict(ONLINE, **change))
    assert field in refused.value.errors
    assert service.store.db.complaints.count_documents({}) == 0
