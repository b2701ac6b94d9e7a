"""intake's entrypoints with the embedded store (no broker)."""
from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import worker_factory

from services.intake.dependencies import contact_callers
from services.intake.policy import Policies
from services.intake.repository import IntakeRepository
from services.intake.service import IntakeService
from shared.actor import Actor, Caller
from shared.clock import FrozenClock
from shared.config import load_config
from shared.errors import Forbidden, InvalidInput, InvalidTransition, NotFound
from shared.store import ConcurrentUpdate
from tests.helpers import embedded

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)    # Monday 10:00 in Shanghai
HOUSEHOLD = {"household_id": "h-1", "building": "3", "unit": "1", "room": "502",
             "occupied": True,
             "contacts": [{"name": "王芳", "phone": "13812345678", "email": "wf@example.com"}]}
COMPLAINT = {"estate_id": "e-1", "household_id": "h-1", "channel": "wechat",
             "category": "noise", "severity": "normal", "content": "楼上装修到晚上十点"}
ORDER = {"estate_id": "e-1", "household_id": "h-1", "kind": "repair", "content": "卫生间灯不亮"}


# A call no person made, and one from notify (the service full contacts are for).
NOBODY, FROM_NOTIFY = Caller(None, None), Caller(None, "notify")


def make_service(repository, clock, **config):
    config = load_config(**config)
    return worker_factory(IntakeService, store=repository, clock=clock, config=config,
                          policies=Policies.from_config(config), caller=NOBODY,
                          contact_callers=tuple(config["CONTACT_CALLERS"]))


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def service(clock):
    service = make_service(embedded(IntakeRepository), clock)
    service.import_households("e-1", [HOUSEHOLD], estate={"name": "测试小区"})
    return service


def stored_complaints(service):
    return list(service.store.db.complaints.find())


def events_of(document, event_type=None):
    return [event for event in document.get("outbox", [])
            if event_type is None or event["type"] == event_type]


def work_through(service, cid, *steps):
    data = {"acknowledge_complaint": {"staff_id": "s-1", "note": "已致歉"},
            "assign_complaint": {"department": "秩序部", "assignee_id": "s-7"},
            "resolve_complaint": {"staff_id": "s-7", "resolution": "已劝导"},
            "close_complaint": {"closed_by": "s-1", "owner_signoff": "satisfied"}}
    result = None
    for step in steps:
        result = getattr(service, step)(cid, data[step])
    return result


ALL_STEPS = ("acknowledge_complaint", "assign_complaint", "resolve_complaint", "close_complaint")


# households ---------------------------------------------------------------------

def test_import_then_reimport_updates(service):
    moved = dict(HOUSEHOLD, occupied=False, contacts=[])
    assert service.import_households("e-1", [moved, dict(HOUSEHOLD, household_id="h-2")], estate={"name": "测试小区"}) \
        == {"imported": 1, "updated": 1, "failed": []}
    assert service.list_households("e-1", {"occupied": False})[0]["id"] == "h-1"
    [household] = service.list_households("e-1", {"building": "3", "occupied": True})
    assert household["contacts"][0]["phone"] == "138****5678"


def test_several_contacts_the_primary_one_is_used(service):
    service.import_households("e-1", [dict(HOUSEHOLD, contacts=[
        {"name": "王芳", "phone": "13812345678"},
        {"name": "李雷", "phone": "021-64301234", "email": "li@example.com",
         "preferred_channel": "email", "primary": True},
    ])], estate={"name": "测试小区"})
    [household] = service.list_households("e-1")
    assert [c["phone"] for c in household["contacts"]] == ["138****5678", "021****1234"]
    service.caller = FROM_NOTIFY
    contact = service.get_contact("h-1")
    assert (contact["name"], contact["email"], contact["preferred_channel"]) == (
        "李雷", "li@example.com", "email")


def test_get_contact_is_the_only_place_with_the_full_number(service):
    complaint = service.register_complaint(COMPLAINT)
    assert "13812345678" not in str(complaint)
    service.caller = FROM_NOTIFY
    assert service.get_contact(complaint["id"])["phone"] == "13812345678"
    assert service.get_contact("h-1")["email"] == "wf@example.com"
    order = service.register_work_order(ORDER)
    assert service.get_contact(order["id"])["household_id"] == "h-1"
    with pytest.raises(NotFound):
        service.get_contact("nobody")


@pytest.mark.parametrize("rows, field", [
    ([dict(HOUSEHOLD, household_id="h-9"), dict(HOUSEHOLD, household_id="h-10", occupied="yes")],
     "rows"),
    ([dict(HOUSEHOLD, household_id="h-9"), dict(HOUSEHOLD, household_id="h-9")],
     "rows.1.household_id"),
    ([dict(HOUSEHOLD, household_id="h-9", contacts=[{"name": "x", "phone": "123"}])], "rows"),
    ([dict(HOUSEHOLD, household_id="h-9", contacts=[
        {"name": "x", "phone": "13812345678", "preferred_channel": "email"}])], "rows"),
    ([dict(HOUSEHOLD, household_id="h-9", contacts=[
        {"name": "x", "phone": "13812345678", "primary": True},
        {"name": "y", "phone": "13812345679", "primary": True}])], "rows"),
    ({"h-9": HOUSEHOLD}, "rows"),
])
def test_bad_household_rows_import_nothing(service, rows, field):
    with pytest.raises(InvalidInput) as error:
        service.import_households("e-1", rows, estate={"name": "测试小区"})
    assert field in error.value.errors
    assert service.store.find_household("h-9") is None


def test_an_estate_can_be_made_known_before_its_owner_list_arrives(service):
    assert service.import_households("e-2", [], estate={"name": "测试小区"}) == {"imported": 0, "updated": 0, "failed": []}
    assert service.register_complaint(dict(
        COMPLAINT, estate_id="e-2", household_id=None,
        reporter={"name": "路人", "phone": "13900001111"}))["status"] == "registered"


def test_a_household_of_another_estate_is_not_taken_over(service):
    with pytest.raises(InvalidInput) as error:
        service.import_households("e-2", [dict(HOUSEHOLD, building="9")], estate={"name": "测试小区"})
    assert error.value.errors == {"rows.0.household_id": ["belongs to estate e-1"]}
    assert service.store.find_household("h-1")["building"] == "3"
    assert not service.store.estate_exists("e-2")


# complaints ---------------------------------------------------------------------------

def test_complaint_lifecycle_records_who_did_what(service):
    complaint = service.register_complaint(COMPLAINT)
    cid = complaint["id"]
    assert complaint["status"] == "registered"
    assert complaint["first_response_due"] == "2026-11-24T02:00:00+00:00"
    closed = work_through(service, cid, *ALL_STEPS)
    assert closed["status"] == "closed" and closed["closing_no"] == 1
    history = service.get_complaint(cid)["history"]
    assert [(h["by"], h["action"]) for h in history] == [
        ("reporter", "register"), ("s-1", "acknowledge"), ("s-7", "assign"),
        ("s-7", "resolve"), ("s-1", "close")]
    assert all(h["at"] == NOW.isoformat() for h in history)
    with pytest.raises(InvalidTransition, match="it is closed"):
        service.resolve_complaint(cid, {"staff_id": "s-7", "resolution": "again"})
    reopened = service.reopen_complaint(cid, {"reason": "又开始了", "source": "owner"})
    assert reopened["status"] == "reopened"


def test_assign_without_department_follows_the_estates_routing(clock):
    service = make_service(embedded(IntakeRepository), clock,
                           ESTATE_POLICIES={"e-1": {"routing": {"noise": "安保部"}}})
    service.import_households("e-1", [HOUSEHOLD], estate={"name": "测试小区"})
    categories = {c["category"]: c["department"] for c in service.list_categories("e-1")}
    assert categories["noise"] == "安保部" and categories["fees"] == "财务部"
    complaint = service.register_complaint(COMPLAINT)
    assert complaint["routed_department"] == "安保部"
    service.acknowledge_complaint(complaint["id"], {"staff_id": "s-1"})
    assert service.assign_complaint(complaint["id"], {})["department"] == "安保部"


def test_an_assignment_to_a_department_the_routing_does_not_name_writes_nothing(clock):
    """Whoever calls the RPC: the estate's routing (its overrides too) decides."""
    service = make_service(embedded(IntakeRepository), clock,
                           ESTATE_POLICIES={"e-1": {"routing": {"noise": "安保部"}}})
    service.import_households("e-1", [HOUSEHOLD], estate={"name": "测试小区"})
    cid = service.register_complaint(COMPLAINT)["id"]
    service.acknowledge_complaint(cid, {"staff_id": "s-1"})
    before = service.store.db.complaints.find_one({"_id": cid})
    for department in ("保洁部", "维修部"):
        with pytest.raises(InvalidInput) as refused:
            service.assign_complaint(cid, {"department": department, "assignee_id": "s-7"})
        assert list(refused.value.errors) == ["department"]
    assert service.store.db.complaints.find_one({"_id": cid}) == before
    assert service.assign_complaint(cid, {"department": "安保部"})["department"] == "安保部"
    with pytest.raises(InvalidInput):    # reassigning is checked the same way
        service.assign_complaint(cid, {"department": "保洁部"})
    assert service.get_complaint(cid)["department"] == "安保部"


def test_the_departments_are_those_the_estates_routing_names(clock):
    """What a department's staff account may name (the gateway asks): the group's routing,
    or that of the estates given, each estate's own overrides included."""
    service = make_service(embedded(IntakeRepository), clock,
                           ESTATE_POLICIES={"e-1": {"routing": {"noise": "安保部"}}})
    service.import_households("e-1", [HOUSEHOLD], estate={"name": "测试小区"})
    group = service.list_departments()
    assert group == sorted(group) and {"工程部", "秩序部", "客服中心"} <= set(group)
    assert "安保部" not in group
    assert "安保部" in service.list_departments(["e-1"])
    assert service.list_departments(["e-unknown"]) == group      # routed as the config says
    with pytest.raises(InvalidInput) as refused:
        service.list_departments("e-1")
    assert "estate_ids" in refused.value.errors


def test_outside_unit_matter_is_followed_not_dropped(service):
    cid = service.register_complaint(dict(COMPLAINT, category="water_supply"))["id"]
    service.acknowledge_complaint(cid, {"staff_id": "s-1"})
    service.assign_complaint(cid, {"department": "客服中心", "external_unit": "自来水公司"})
    updated = service.update_external_status(cid, {
        "staff_id": "s-1", "status": "in_progress", "note": "已报修", "reference": "ZLS-1"})
    assert updated["external"]["status"] == "in_progress"
    assert [c["id"] for c in service.list_complaints({"external_status": "in_progress"})] == [cid]
    assert service.list_complaints({"external_status": "resolved"}) == []


def test_reporter_without_household_is_masked_in_results(service):
    complaint = service.register_complaint(dict(
        COMPLAINT, household_id=None, reporter={"name": "路人", "phone": "021-64301234"}))
    assert complaint["reporter"]["phone"] == "021****1234"
    assert "64301234" not in str(complaint) + str(service.list_complaints())


def test_a_walk_in_reporter_repeats_by_phone_however_typed(service):
    first = service.register_complaint(dict(
        COMPLAINT, household_id=None, reporter={"name": "路人", "phone": "+86 13900001111"}))
    again = service.register_complaint(dict(
        COMPLAINT, household_id=None, reporter={"name": "路人", "phone": "13900001111"}))
    assert again["repeat_of"] == first["id"]


@pytest.mark.parametrize("change, field", [
    ({"estate_id": None}, "estate_id"),
    ({"channel": "fax"}, "channel"),
    ({"category": "weather"}, "category"),
    ({"severity": "catastrophic"}, "severity"),
    ({"content": ""}, "content"),
    ({"content": "   "}, "content"),
    ({"content": "长" * 2001}, "content"),
    ({"received_at": "2026-11-23T10:00:00"}, "received_at"),
    ({"received_at": "2026-11-30T10:00:00+08:00"}, "received_at"),
    ({"estate_id": "e-unknown"}, "estate_id"),
    ({"household_id": "h-elsewhere"}, "household_id"),
    ({"household_id": None}, "reporter"),
    ({"household_id": None, "reporter": {"name": "x", "phone": "12345"}}, "reporter"),
    ({"household_id": None, "reporter": {"name": "x", "phone": "+1 415 555 0100"}}, "reporter"),
    ({"$where": "sleep(1000)"}, "$where"),
    ({"household_id": {"$ne": None}}, "household_id.$ne"),
    ({"colour": "red"}, "colour"),
])
def test_bad_complaint_input_names_the_field_and_writes_nothing(service, change, field):
    with pytest.raises(InvalidInput) as error:
        service.register_complaint({**COMPLAINT, **change})
    assert field in error.value.errors
    assert stored_complaints(service) == []


def test_content_of_2000_characters_is_fine(service):
    assert service.register_complaint(dict(COMPLAINT, content="长" * 2000))["status"] == "registered"


def test_bad_transition_input_changes_nothing(service):
    cid = service.register_complaint(COMPLAINT)["id"]
    before = service.get_complaint(cid)
    with pytest.raises(InvalidInput) as error:
        service.acknowledge_complaint(cid, {"staff_id": {"$gt": ""}})
    assert "staff_id.$gt" in error.value.errors
    with pytest.raises(InvalidInput, match="id"):
        service.acknowledge_complaint({"$ne": 1}, {"staff_id": "s-1"})
    service.acknowledge_complaint(cid, {"staff_id": "s-1"})
    with pytest.raises(InvalidInput, match="reply_promised_at"):
        service.assign_complaint(cid, {"reply_promised_at": "2026-11-20T10:00:00+08:00"})
    with pytest.raises(InvalidInput, match="reply_promised_at"):
        service.assign_complaint(cid, {"reply_promised_at": "2026-11-30T10:00:00"})
    assert service.get_complaint(cid)["status"] == "acknowledged"
    assert len(service.get_complaint(cid)["history"]) == len(before["history"]) + 1


def test_promised_reply_time_moves_the_deadline(service):
    cid = service.register_complaint(COMPLAINT)["id"]
    service.acknowledge_complaint(cid, {"staff_id": "s-1"})
    assigned = service.assign_complaint(cid, {"department": "工程部",
                                              "reply_promised_at": "2026-12-04T17:00:00+08:00"})
    assert assigned["reply_promised_at"] == "2026-12-04T09:00:00+00:00"
    assert (assigned["next_due"], assigned["next_due_at"]) == (
        "promised_reply", "2026-12-04T09:00:00+00:00")


# emergency repairs, repeats, reviews, flags ----------------------------------------------------

def test_emergency_repair_opens_a_repair_work_order_at_once(service):
    complaint = service.register_complaint(dict(
        COMPLAINT, category="water_supply", severity="emergency", content="家里水管爆了，爆管跑水"))
    [order] = service.list_work_orders({"complaint_id": complaint["id"]})
    assert order["id"] == complaint["work_order_id"]
    assert (order["kind"], order["status"], order["household_id"]) == ("repair", "registered",
                                                                      "h-1")
    assert "work_order_pending" not in service.store.find_complaint(complaint["id"])


def test_an_emergency_order_lost_in_a_crash_is_opened_by_the_timer(service, clock):
    complaint = service.register_complaint(dict(COMPLAINT, category="water_supply",
                                                content="爆管"))
    # the process died between the complaint and its order
    service.store.db.work_orders.delete_many({})
    service.store.db.complaints.update_one({"_id": complaint["id"]},
                                           {"$set": {"work_order_pending": True}})
    service.send_deadline_alerts()
    assert service.list_work_orders({}) == []          # too fresh: its writer may still be on it
    clock.advance(timedelta(seconds=30))
    service.send_deadline_alerts()
    assert [o["id"] for o in service.list_work_orders({})] == [complaint["work_order_id"]]
    # a stale write set the flag again: the order is not opened twice, nothing fails
    service.store.db.complaints.update_one({"_id": complaint["id"]},
                                           {"$set": {"work_order_pending": True}})
    service.send_deadline_alerts()
    [order] = service.store.db.work_orders.find()
    assert len(events_of(order, "work_order_registered")) == 1
    assert "work_order_pending" not in service.store.find_complaint(complaint["id"])


def test_repeat_complaint_and_its_special_measures(service, clock):
    first = service.register_complaint(COMPLAINT)
    work_through(service, first["id"], *ALL_STEPS)
    clock.advance(timedelta(days=5))
    again = service.register_complaint(dict(COMPLAINT, content="又在装修，还是很吵"))
    assert again["repeat_of"] == first["id"]
    assert again["special_measures_due"] == (NOW + timedelta(days=5, hours=24)).isoformat()
    stored = service.store.find_complaint(again["id"])
    assert [e["type"] for e in events_of(stored)] == ["complaint_registered",
                                                      "complaint_repeated"]
    assert [c["id"] for c in service.list_complaints({"repeat": True})] == [again["id"]]
    done = service.record_special_measures(again["id"], {"staff_id": "sup-1",
                                                         "measures": "主管上门协调施工时间"})
    assert done["special_measures"][0]["by"] == "sup-1"
    with pytest.raises(InvalidTransition, match="not a repeat"):
        service.record_special_measures(first["id"], {"staff_id": "sup-1", "measures": "x"})


def test_review_of_a_closed_complaint(service):
    cid = service.register_complaint(COMPLAINT)["id"]
    with pytest.raises(InvalidTransition, match="it is registered"):
        service.request_review(cid, {"reason": "不服"})
    work_through(service, cid, *ALL_STEPS)
    review = service.request_review(cid, {"reason": "处理结果不合理", "requested_by": "王芳"})
    assert review["status"] == "under_review"
    assert review["reviews"][0]["outcome"] is None
    with pytest.raises(InvalidTransition, match="it is under_review"):
        service.request_review(cid, {"reason": "再次"})
    upheld = service.decide_review(cid, {"reviewer_id": "mgr-1", "outcome": "upheld",
                                         "finding": "处理符合管理规约"})
    assert upheld["status"] == "closed" and upheld["reviews"][0]["outcome"] == "upheld"
    service.request_review(cid, {"reason": "仍不服"})
    overturned = service.decide_review(cid, {"reviewer_id": "mgr-1", "outcome": "overturned",
                                             "finding": "应督促施工方整改"})
    assert overturned["status"] == "reopened" and overturned["reopen_source"] == "review"
    assert [r["outcome"] for r in overturned["reviews"]] == ["upheld", "overturned"]


def test_malicious_flag_by_a_supervisor_with_a_reason(service):
    cid = service.register_complaint(COMPLAINT)["id"]
    with pytest.raises(InvalidInput) as error:
        service.flag_malicious(cid, {"flagged_by": "s-1", "role": "staff", "reason": "无理取闹"})
    assert error.value.errors == {
        "role": ["only a supervisor or a manager may flag a complaint as malicious"]}
    with pytest.raises(InvalidInput, match="reason"):
        service.flag_malicious(cid, {"flagged_by": "sup-1", "role": "supervisor"})
    flagged = service.flag_malicious(cid, {"flagged_by": "sup-1", "role": "supervisor",
                                           "reason": "同一事项已答复十次"})
    assert flagged["malicious"] is True
    # never deleted: still listed and retrievable, only left out of the figures
    assert [c["id"] for c in service.list_complaints({"malicious": True})] == [cid]
    assert service.complaint_stats("e-1", "2026-11")["counted"] == 0
    assert service.complaint_stats("e-1", "2026-11")["received"] == 1


# overdue and escalation -------------------------------------------------------------------

def test_overdue_filter_and_the_alert_timer(service, clock):
    late = service.register_complaint(COMPLAINT)["id"]
    clock.advance(timedelta(days=1, minutes=1))
    fresh = service.register_complaint(dict(COMPLAINT, category="parking"))["id"]
    assert [c["id"] for c in service.list_complaints({"overdue": True})] == [late]
    assert [c["id"] for c in service.list_complaints({"overdue": False})] == [fresh]
    service.send_deadline_alerts()
    service.send_deadline_alerts()          # a second pass sends nothing more
    stored = service.store.find_complaint(late)
    assert [(e["type"], e["data"]["deadline"]) for e in events_of(stored)[1:]] == [
        ("complaint_overdue", "first_response"), ("complaint_escalated", "first_response")]
    assert events_of(stored, "complaint_escalated")[0]["data"]["role"] == "supervisor"
    assert events_of(service.store.find_complaint(fresh))[1:] == []


def test_timer_skips_a_complaint_changed_meanwhile(service, clock, monkeypatch):
    cid = service.register_complaint(COMPLAINT)["id"]
    clock.advance(timedelta(days=2))
    real_save = service.store.save_complaint

    def someone_else_wrote_first(complaint, events, handled_event=None):
        raise ConcurrentUpdate("changed meanwhile")

    monkeypatch.setattr(service.store, "save_complaint", someone_else_wrote_first)
    service.send_deadline_alerts()          # no error, nothing sent
    monkeypatch.setattr(service.store, "save_complaint", real_save)
    assert events_of(service.store.find_complaint(cid), "complaint_overdue") == []
    service.send_deadline_alerts()
    assert len(events_of(service.store.find_complaint(cid), "complaint_overdue")) == 1


def test_two_timers_reading_the_same_complaint_alert_once(service, clock):
    cid = service.register_complaint(COMPLAINT)["id"]
    clock.advance(timedelta(days=2))
    from services.intake import domain
    stale = service.store.find_complaint(cid)
    policy = service.policies.for_estate("e-1")
    service.send_deadline_alerts()                      # instance A
    changed, events = domain.check_deadlines(stale, clock.now(), policy)   # instance B, stale
    assert events
    with pytest.raises(ConcurrentUpdate):
        service.store.save_complaint(changed, events)
    assert len(events_of(service.store.find_complaint(cid), "complaint_overdue")) == 1


def test_the_timer_warns_before_a_deadline_once_and_two_instances_once(service, clock):
    cid = service.register_complaint(COMPLAINT)["id"]      # first reply due Tuesday 10:00
    clock.advance(timedelta(hours=22, minutes=30))          # Tuesday 08:30: 90 minutes left
    stale = service.store.find_complaint(cid)
    service.send_deadline_alerts()
    service.send_deadline_alerts()                          # a second pass sends nothing more
    [warning] = events_of(service.store.find_complaint(cid), "complaint_deadline_approaching")
    assert (warning["data"]["deadline"], warning["data"]["minutes_left"]) == (
        "first_response", 90)
    # an instance that read the complaint before the first one wrote
    from services.intake import domain
    changed, events = domain.check_deadlines(stale, clock.now(),
                                             service.policies.for_estate("e-1"))
    assert [event["type"] for event in events] == ["complaint_deadline_approaching"]
    with pytest.raises(ConcurrentUpdate):
        service.store.save_complaint(changed, events)
    assert service.get_complaint(cid)["next_warn_at"] == "2026-11-24T00:00:00+00:00"


# company-level complaints -------------------------------------------------------------------

def test_a_complaint_made_to_the_company_is_registered_at_its_own_estate(service):
    service.import_households("hq-east", [], estate={
        "name": "华东物业公司本部", "company": "华东物业公司"})
    made = service.register_complaint({
        "estate_id": "hq-east", "level": "company", "channel": "visit", "category": "fees",
        "content": "物业费多收", "reporter": {"name": "王先生", "phone": "13800138000"}})
    assert (made["level"], made["estate_id"], made["household_id"]) == (
        "company", "hq-east", None)
    assert made["reporter"]["phone"] != "13800138000"        # masked, as any complaint's
    [registered] = events_of(service.store.find_complaint(made["id"]), "complaint_registered")
    assert registered["data"]["level"] == "company"
    work_through(service, made["id"], *ALL_STEPS)             # handled as any complaint
    with pytest.raises(InvalidInput) as refused:
        service.register_complaint(dict(COMPLAINT, estate_id="hq-east", level="company"))
    assert "household_id" in refused.value.errors
    with pytest.raises(InvalidInput) as refused:
        service.register_complaint(dict(COMPLAINT, level="region"))
    assert "level" in refused.value.errors
    assert service.register_complaint(COMPLAINT)["level"] == "estate"


def test_manual_escalation(service):
    cid = service.register_complaint(COMPLAINT)["id"]
    escalated = service.escalate_complaint(cid, {"staff_id": "s-1", "reason": "超出权限"})
    assert escalated["escalations"][0]["role"] == "supervisor"
    to_company = service.escalate_complaint(cid, {"staff_id": "s-1", "reason": "涉及赔偿",
                                                  "role": "company_manager"})
    assert [(e["level"], e["role"], e["by"]) for e in to_company["escalations"]] == [
        (1, "supervisor", "s-1"), (3, "company_manager", "s-1")]
    stored = service.store.find_complaint(cid)
    assert [e["data"]["role"] for e in events_of(stored, "complaint_escalated")] == [
        "supervisor", "company_manager"]


@pytest.mark.parametrize("data, field", [
    ({"staff_id": "s-1", "reason": "x", "role": "mayor"}, "role"),
    ({"staff_id": "s-1", "reason": "x", "role": ""}, "role"),
    ({"staff_id": "s-1", "reason": ""}, "reason"),
])
def test_bad_escalation_names_the_field_and_changes_nothing(service, data, field):
    cid = service.register_complaint(COMPLAINT)["id"]
    before = service.store.find_complaint(cid)
    with pytest.raises(InvalidInput) as error:
        service.escalate_complaint(cid, data)
    assert field in error.value.errors
    assert service.store.find_complaint(cid) == before


def test_the_desk_that_records_a_reopen_is_in_the_history(service):
    cid = service.register_complaint(COMPLAINT)["id"]
    work_through(service, cid, *ALL_STEPS)
    reopened = service.reopen_complaint(cid, {"reason": "业主来电说又吵了", "source": "owner",
                                              "staff_id": "desk-3"})
    assert (reopened["history"][-1]["by"], reopened["history"][-1]["action"]) == (
        "desk-3", "reopen")
    assert reopened["reopen_source"] == "owner"


def test_reopened_complaint_gets_fresh_deadlines_and_no_stale_alerts(service, clock):
    cid = service.register_complaint(COMPLAINT)["id"]
    clock.advance(timedelta(days=5))
    service.send_deadline_alerts()
    work_through(service, cid, *ALL_STEPS)
    clock.advance(timedelta(days=3))
    reopened = service.reopen_complaint(cid, {"reason": "回访不满意", "source": "revisit"})
    assert reopened["first_response_due"] == "2026-12-02T02:00:00+00:00"
    before = len(events_of(service.store.find_complaint(cid)))
    service.send_deadline_alerts()
    assert len(events_of(service.store.find_complaint(cid))) == before
    assert service.list_complaints({"overdue": True}) == []


def test_reopen_after_unsatisfied_revisit_is_idempotent(service):
    cid = service.register_complaint(COMPLAINT)["id"]
    work_through(service, cid, *ALL_STEPS)
    event = {"id": "evt-1", "data": {"kind": "complaint", "source_id": cid,
                                     "revisit_id": "rv-1", "comments": ""}}
    service.reopen_after_unsatisfied_revisit(event)
    service.reopen_after_unsatisfied_revisit(event)
    complaint = service.get_complaint(cid)
    assert complaint["status"] == "reopened" and complaint["reopen_no"] == 1


def test_a_late_redelivery_does_not_reopen_the_next_closing(service):
    cid = service.register_complaint(COMPLAINT)["id"]
    work_through(service, cid, *ALL_STEPS)
    event = {"id": "evt-1", "data": {"kind": "complaint", "source_id": cid,
                                     "revisit_id": "rv-1", "comments": "还是很吵"}}
    service.reopen_after_unsatisfied_revisit(event)
    work_through(service, cid, *ALL_STEPS)            # worked again and closed a 2nd time
    service.reopen_after_unsatisfied_revisit(event)   # the first visit's event, once more
    complaint = service.get_complaint(cid)
    assert (complaint["status"], complaint["closing_no"], complaint["reopen_no"]) == (
        "closed", 2, 1)


# statistics ------------------------------------------------------------------------------

def test_complaint_stats_per_estate_and_for_headquarters(service, clock):
    service.import_households("e-2", [dict(HOUSEHOLD, household_id="h-21")], estate={"name": "测试小区"})
    cid = service.register_complaint(COMPLAINT)["id"]
    work_through(service, cid, *ALL_STEPS)
    service.register_complaint(dict(COMPLAINT, channel="hotline", category="parking"))
    service.register_complaint(dict(COMPLAINT, estate_id="e-2", household_id="h-21"))
    figures = service.complaint_stats("e-1", "2026-11")
    assert (figures["received"], figures["closed"]) == (2, 1)
    assert figures["first_reply_on_time_rate"] == 1.0
    assert figures["by_channel"]["hotline"] == 1
    assert service.complaint_stats("e-1", "2026-Q3")["received"] == 0
    assert service.complaint_stats("e-1", "2026-H2")["received"] == 2
    group = service.group_complaint_stats("2026-Q4")
    assert {estate: f["received"] for estate, f in group["estates"].items()} == {"e-1": 2,
                                                                                 "e-2": 1}
    assert group["total"]["received"] == 3 and group["total"]["by_category"]["noise"] == 2


@pytest.mark.parametrize("estate_id, period, field", [
    ("e-1", "2026-13", "period"), ("e-1", "2026-Q5", "period"), ("e-1", "26-H1", "period"),
    ({"$ne": 1}, "2026-11", "estate_id"), ("e-1\n", "2026-11", "estate_id"),
    ("e-1", "2026\n", "period"),
])
def test_stats_refuse_bad_input(service, estate_id, period, field):
    with pytest.raises(InvalidInput) as error:
        service.complaint_stats(estate_id, period)
    assert field in error.value.errors


@pytest.mark.parametrize("call", [
    lambda service: service.complaint_stats("e-unknown", "2026-11"),
    lambda service: service.list_households("e-unknown"),
    lambda service: service.list_categories("e-unknown"),
    lambda service: service.get_estate("e-unknown"),
])
def test_an_unknown_estate_is_not_found(service, call):
    with pytest.raises(NotFound, match="estate 'e-unknown'"):
        call(service)


def test_an_estate_is_known_once_its_owner_list_was_imported(service, clock):
    estate = service.get_estate("e-1")
    assert (estate["id"], estate["name"], estate["created_at"]) == (
        "e-1", "测试小区", clock.now().isoformat())
    service.import_households("e-empty", [], estate={"name": "测试小区"})
    assert service.list_households("e-empty") == []
    assert service.get_estate("e-empty")["id"] == "e-empty"


# work orders ------------------------------------------------------------------------------

def test_work_order_register_and_complete_from_paper(service):
    order = service.register_work_order(dict(ORDER, content="顶楼屋面漏水",
                                             received_at="2026-11-10T09:00:00+08:00"))
    assert order["important"] is True and order["status"] == "registered"
    done = service.complete_work_order(order["id"], {"staff_id": "eng-1",
                                                     "completed_at": "2026-11-11T16:00:00+08:00"})
    assert (done["status"], done["completed_at"]) == ("completed", "2026-11-11T08:00:00+00:00")
    [event] = events_of(service.store.find_work_order(order["id"]), "work_order_completed")
    assert event["data"]["important"] is True and event["estate_id"] == "e-1"
    with pytest.raises(InvalidTransition, match="it is completed"):
        service.complete_work_order(order["id"], {"staff_id": "eng-1"})
    assert [o["id"] for o in service.list_work_orders({"important": True,
                                                       "status": "completed"})] == [order["id"]]


@pytest.mark.parametrize("change, field", [
    ({"kind": "gardening"}, "kind"),
    ({"estate_id": "e-unknown"}, "estate_id"),
    ({"household_id": "h-elsewhere"}, "household_id"),
    ({"content": ""}, "content"),
    ({"kind": "special_service"}, "contract_start"),
    ({"kind": "special_service", "contract_start": "2026-12-01T00:00:00+08:00",
      "contract_end": "2026-11-01T00:00:00+08:00"}, "contract_end"),
    ({"contract_start": "2026-12-01T00:00:00+08:00"}, "contract_start"),
    ({"complaint_id": "cmp-nothing"}, "complaint_id"),
    ({"received_at": "2026-11-10T09:00:00"}, "received_at"),
])
def test_bad_work_orders_are_refused(service, change, field):
    with pytest.raises(InvalidInput) as error:
        service.register_work_order({**ORDER, **change})
    assert field in error.value.errors
    assert service.list_work_orders({}) == []


def test_completion_time_is_checked(service):
    order = service.register_work_order(ORDER)
    for when in ("2026-11-24T10:00:00+08:00", "2026-11-01T10:00:00+08:00", "2026-11-23T10:00"):
        with pytest.raises(InvalidInput, match="completed_at"):
            service.complete_work_order(order["id"], {"staff_id": "eng-1", "completed_at": when})
    assert service.get_work_order(order["id"])["status"] == "registered"
    with pytest.raises(NotFound):
        service.complete_work_order("wo-nothing", {"staff_id": "eng-1"})


def test_a_work_order_registered_by_mistake_is_cancelled_not_deleted(service):
    order = service.register_work_order(ORDER)
    refused = (({"staff_id": "desk-1"}, "reason"), ({"staff_id": "desk-1", "reason": " "}, "reason"),
               ({"reason": "重复登记"}, "staff_id"))
    for data, field in refused:
        with pytest.raises(InvalidInput) as error:
            service.cancel_work_order(order["id"], data)
        assert field in error.value.errors
    assert service.get_work_order(order["id"])["status"] == "registered"
    cancelled = service.cancel_work_order(order["id"], {"staff_id": "desk-1",
                                                        "reason": "与 wo-7 重复登记"})
    assert (cancelled["status"], cancelled["cancel_reason"], cancelled["cancelled_at"]) == (
        "cancelled", "与 wo-7 重复登记", NOW.isoformat())
    assert [h["action"] for h in service.get_work_order(order["id"])["history"]] == [
        "register", "cancel"]
    assert [o["id"] for o in service.list_work_orders({"status": "cancelled"})] == [order["id"]]
    assert [e["type"] for e in events_of(service.store.find_work_order(order["id"]))] == [
        "work_order_registered"], "no public event for a cancellation"
    with pytest.raises(InvalidTransition, match="it is cancelled"):
        service.complete_work_order(order["id"], {"staff_id": "eng-1"})
    with pytest.raises(InvalidTransition, match="it is cancelled"):
        service.cancel_work_order(order["id"], {"staff_id": "desk-1", "reason": "again"})
    with pytest.raises(NotFound):
        service.cancel_work_order("wo-nothing", {"staff_id": "desk-1", "reason": "x"})


# who acted: the person the gateway passes along (shared/actor.py) --------------------------

AGENT = Actor("u-cs", ("cs_staff",), ("e-1",))
MANAGER = Actor("u-mgr", ("estate_manager",), ("e-1",))
FLAG = {"flagged_by": "sup-typed", "role": "supervisor", "reason": "同一事项已答复十次"}


def test_with_an_actor_every_step_names_the_person_whatever_the_body_says(service):
    service.caller = Caller(AGENT, "gateway")
    cid = service.register_complaint(dict(COMPLAINT, category="water_supply",
                                          staff_id="s-typed"))["id"]
    service.acknowledge_complaint(cid, {"staff_id": "s-1"})
    service.assign_complaint(cid, {"department": "客服中心", "external_unit": "自来水公司",
                                   "assignee_id": "s-7", "staff_id": "s-1"})
    service.update_external_status(cid, {"staff_id": "s-1", "status": "in_progress",
                                         "note": "已报修"})
    service.escalate_complaint(cid, {"staff_id": "s-1", "reason": "业主要求经理处理"})
    service.resolve_complaint(cid, {"staff_id": "s-7", "resolution": "已恢复供水"})
    service.close_complaint(cid, {"closed_by": "s-1", "owner_signoff": "satisfied"})
    service.request_review(cid, {"reason": "不服", "staff_id": "s-1"})
    service.decide_review(cid, {"reviewer_id": "mgr-1", "outcome": "overturned",
                                "finding": "应再协调"})
    service.acknowledge_complaint(cid, {"staff_id": "s-1"})
    service.assign_complaint(cid, {})                      # no staff_id typed at all
    service.resolve_complaint(cid, {"resolution": "已协调"})   # nor here (required without one)
    service.close_complaint(cid, {"owner_signoff": "none"})
    complaint = service.reopen_complaint(cid, {"reason": "又停水", "source": "owner",
                                               "staff_id": "s-1"})
    assert len(complaint["history"]) == 14
    assert {line["by"] for line in complaint["history"]} == {"u-cs"}
    assert [e["by"] for e in complaint["escalations"]] == ["u-cs"]
    assert complaint["reviews"][0]["decided_by"] == "u-cs"


def test_with_an_actor_special_measures_and_work_orders_name_the_person(service):
    first = service.register_complaint(COMPLAINT)
    again = service.register_complaint(dict(COMPLAINT, content="又在装修"))
    assert again["repeat_of"] == first["id"]
    service.caller = Caller(AGENT, "gateway")
    done = service.record_special_measures(again["id"], {"staff_id": "sup-1",
                                                         "measures": "主管上门协调"})
    assert done["special_measures"][0]["by"] == "u-cs"
    order = service.register_work_order(dict(ORDER, staff_id="s-typed"))
    completed = service.complete_work_order(order["id"], {"staff_id": "s-9"})
    cancelled = service.cancel_work_order(service.register_work_order(ORDER)["id"],
                                          {"staff_id": "s-9", "reason": "重复登记"})
    assert completed["completed_by"] == cancelled["cancelled_by"] == "u-cs"
    assert {line["by"] for line in completed["history"] + cancelled["history"]} == {"u-cs"}


def test_without_an_actor_the_typed_names_stand(service):
    cid = service.register_complaint(dict(COMPLAINT, staff_id="s-desk"))["id"]
    complaint = work_through(service, cid, *ALL_STEPS)
    assert [line["by"] for line in complaint["history"]] == ["s-desk", "s-1", "s-7", "s-7", "s-1"]
    order = service.register_work_order(ORDER)
    assert service.complete_work_order(order["id"], {"staff_id": "s-9"})["completed_by"] == "s-9"


def test_with_an_actor_the_role_is_the_persons_rung_not_the_bodys(service):
    cid = service.register_complaint(COMPLAINT)["id"]
    for person in (AGENT, Actor("u-dept", ("department",), ("e-1",))):
        service.caller = Caller(person, "gateway")
        with pytest.raises(InvalidInput) as error:      # the body claims a supervisor
            service.flag_malicious(cid, FLAG)
        assert error.value.errors == {
            "role": ["only a supervisor or a manager may flag a complaint as malicious"]}
    assert service.get_complaint(cid)["malicious"] is False
    service.caller = Caller(MANAGER, "gateway")
    flagged = service.flag_malicious(cid, dict(FLAG, role="staff"))   # typed too low: no matter
    assert flagged["malicious"] is True
    assert (flagged["malicious_flag"]["by"], flagged["malicious_flag"]["role"]) == (
        "u-mgr", "manager")
    assert flagged["history"][-1]["by"] == "u-mgr"


def test_an_actor_that_cannot_be_read_is_refused_not_ignored(service):
    service.caller = Caller(None, "gateway", unreadable_actor=True)
    with pytest.raises(InvalidInput) as error:
        service.register_complaint(dict(COMPLAINT, staff_id="s-typed"))
    assert list(error.value.errors) == ["huifang.actor"]
    assert stored_complaints(service) == []


def test_full_contacts_go_only_to_the_listed_services_and_never_to_a_person(service):
    service.caller = FROM_NOTIFY
    assert service.get_contact("h-1")["phone"] == "13812345678"
    for caller in (Caller(None, "revisit"), Caller(None, "standalone_rpc_proxy"),
                   Caller(None, None), Caller(AGENT, "notify"),
                   Caller(None, "notify", unreadable_actor=True)):
        service.caller = caller
        with pytest.raises(Forbidden, match="full contacts"):
            service.get_contact("h-1")


def test_contact_callers_come_from_config_checked_at_start_up(clock):
    service = make_service(embedded(IntakeRepository), clock,
                           CONTACT_CALLERS=["notify", "standalone_rpc_proxy"])
    service.import_households("e-1", [HOUSEHOLD], estate={"name": "测试小区"})
    service.caller = Caller(None, "standalone_rpc_proxy")
    assert service.get_contact("h-1")["phone"] == "13812345678"
    assert contact_callers({}) == ("notify",)
    with pytest.raises(ValueError, match="CONTACT_CALLERS"):
        contact_callers({"CONTACT_CALLERS": "notify"})   # "no" would pass as a substring


def test_ping_answers_with_the_service_name(service):
    assert service.ping() == {"service": "intake"}
