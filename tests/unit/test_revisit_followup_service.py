"""revisit's follow-ups of unsatisfied revisits through its entrypoints (embedded store)."""
from datetime import timedelta

import pytest

from services.revisit.repository import UNSETTLED, RevisitRepository
from shared.actor import Actor, Caller
from shared.clock import FrozenClock
from shared.envelope import parse_event
from shared.errors import InvalidInput, InvalidTransition, NotFound
from tests.helpers import embedded, handle_one
from tests.unit.test_revisit_service import (
    NOW,
    PHONE_VISIT,
    closed_event,
    completed_event,
    make_service,
)


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def service(clock):
    return make_service(embedded(RevisitRepository), clock)


UNSATISFIED = dict(PHONE_VISIT, satisfaction="unsatisfied", comments="修完还是漏水")
MEASURES = {"staff_id": "eng-3", "measures": "更换屋面防水卷材", "responsible": "王工"}
ANSWER = {"staff_id": "eng-3", "answer": "已更换防水层，雨后复查无渗漏"}


def queued(service, revisit_id, event_type):
    return [parse_event(event) for event in
            service.store.db.revisits.find_one({"_id": revisit_id})["outbox"]
            if event["type"] == event_type]


def repair_revisit(service, work_order_id="wo-1", estate="e-1"):
    service.follow_up_work_order(completed_event(work_order_id, estate=estate))
    [revisit] = service.list_revisits({"source_id": work_order_id})
    return revisit["id"]


def unsatisfied_repair(service, work_order_id="wo-1", estate="e-1", visit=UNSATISFIED):
    """A repair revisit recorded unsatisfied, and revisit's handler of its event run twice
    (a redelivery): the follow-up it opened."""
    revisit_id = repair_revisit(service, work_order_id, estate)
    service.record_revisit(revisit_id, visit)
    [event] = queued(service, revisit_id, "revisit_unsatisfied")
    service.open_followup(event)
    service.open_followup(event)
    [followup] = service.list_followups({"revisit_id": revisit_id})
    return followup


def test_an_unsatisfied_repair_revisit_opens_one_follow_up_for_the_engineering_department(
        service):
    followup = unsatisfied_repair(service)
    assert followup["id"] == "fu-rv-wo-1-after_repair"
    assert (followup["status"], followup["department"]) == ("open", "工程部")
    assert followup["owner_words"] == "修完还是漏水"
    assert followup["answer_due_at"] == (NOW + timedelta(days=30)).isoformat()
    assert followup["overdue"] is False
    stored = service.store.db.followups.find_one({"_id": followup["id"]})
    assert [event["type"] for event in stored["outbox"]] == ["revisit_followup_opened"]
    assert service.store.db.followups.count_documents({}) == 1


def test_satisfied_and_complaint_revisits_open_none(service):
    revisit_id = repair_revisit(service)
    service.record_revisit(revisit_id, PHONE_VISIT)
    assert queued(service, revisit_id, "revisit_unsatisfied") == []
    handle_one(service.schedule_complaint_revisits, closed_event())
    service.record_revisit("rv-cmp-1-1", UNSATISFIED)
    [event] = queued(service, "rv-cmp-1-1", "revisit_unsatisfied")
    service.open_followup(event)          # intake reopens the complaint; nothing here
    assert service.list_followups({}) == []


def test_the_owners_own_unresolved_answer_online_opens_one_too(service):
    revisit_id = repair_revisit(service)
    token = service.store.get(revisit_id)["online_token"]
    service.record_online_revisit(token, {"satisfaction": "neutral", "resolved": False,
                                          "comments": "还在滴水"})
    [event] = queued(service, revisit_id, "revisit_unsatisfied")
    service.open_followup(event)
    [followup] = service.list_followups({})
    assert (followup["owner_words"], followup["resolved"]) == ("还在滴水", False)


def test_measures_then_the_answer_with_retries_and_conflicts(service, clock):
    followup = unsatisfied_repair(service)
    with pytest.raises(InvalidTransition, match="it is open"):
        service.answer_followup(followup["id"], ANSWER)
    clock.advance(timedelta(days=2))
    moved = service.record_followup_measures(followup["id"], MEASURES, expected_status="open")
    assert moved["status"] == "measures_recorded"
    assert moved["measures"][0]["responsible"] == "王工"
    # the same step again, its answer lost: answered as it is, not recorded twice
    again = service.record_followup_measures(followup["id"], MEASURES, expected_status="open")
    assert len(again["measures"]) == 1
    clock.advance(timedelta(days=5))
    answered = service.answer_followup(followup["id"], ANSWER,
                                       expected_status="measures_recorded")
    assert (answered["status"], answered["answered_on_time"]) == ("answered", True)
    stored = service.store.db.followups.find_one({"_id": followup["id"]})
    assert [event["type"] for event in stored["outbox"]] == [
        "revisit_followup_opened", "revisit_followup_answered"]
    with pytest.raises(InvalidTransition, match="it is answered"):
        service.record_followup_measures(followup["id"], MEASURES)


@pytest.mark.parametrize("rpc, data, field", [
    ("record_followup_measures", dict(MEASURES, responsible=""), "responsible"),
    ("record_followup_measures", {"staff_id": "eng-3", "measures": "x"}, "responsible"),
    ("record_followup_measures", dict(MEASURES, measures=""), "measures"),
    ("answer_followup", {"staff_id": "eng-3"}, "answer"),
    ("answer_followup", dict(ANSWER, staff_id={"$ne": ""}), "staff_id.$ne"),
])
def test_bad_input_names_the_field_and_changes_nothing(service, rpc, data, field):
    followup = unsatisfied_repair(service)
    with pytest.raises(InvalidInput) as error:
        getattr(service, rpc)(followup["id"], data)
    assert field in error.value.errors
    assert service.get_followup(followup["id"])["history"] == followup["history"]


def test_unknown_follow_up_is_not_found(service):
    with pytest.raises(NotFound):
        service.get_followup("fu-nothing")


def test_the_person_who_acted_is_the_actor_not_the_typed_name(service):
    followup = unsatisfied_repair(service)
    service.caller = Caller(Actor("u-eng", ("department",), ("e-1",)), "gateway")
    moved = service.record_followup_measures(followup["id"], dict(MEASURES, staff_id="boss"))
    assert moved["measures"][0]["recorded_by"] == "u-eng"
    assert moved["history"][-1]["by"] == "u-eng"


def test_the_answer_gives_the_reply_promised_during_the_visit(service, clock):
    promised = (NOW + timedelta(days=7)).isoformat()
    followup = unsatisfied_repair(service, visit=dict(UNSATISFIED, promised_reply_at=promised))
    service.record_followup_measures(followup["id"], MEASURES)
    clock.advance(timedelta(days=3))
    service.answer_followup(followup["id"], ANSWER)
    revisit = service.get_revisit(followup["revisit_id"])
    assert revisit["reply_given_at"] == clock.now().isoformat()
    assert revisit["reply"] == {"staff_id": "eng-3", "text": ANSWER["answer"]}


def test_overdue_is_flagged_once_listed_and_counted(service, clock):
    late = unsatisfied_repair(service, "wo-1")
    answered = unsatisfied_repair(service, "wo-2")
    other_estate = unsatisfied_repair(service, "wo-3", estate="e-2")
    service.record_followup_measures(answered["id"], MEASURES)
    service.answer_followup(answered["id"], ANSWER)
    clock.advance(timedelta(days=31))
    service.watch_deadlines()
    service.watch_deadlines()            # the second pass (or instance) finds nothing to do
    stored = service.store.db.followups.find_one({"_id": late["id"]})
    assert [event["type"] for event in stored["outbox"]].count("revisit_followup_overdue") == 1
    assert stored["overdue_at"] is not None
    overdue = service.list_followups({"overdue": True, "estate_ids": ["e-1"]})
    assert [item["id"] for item in overdue] == [late["id"]]
    assert overdue[0]["overdue"] is True
    page = service.list_followups({"limit": 2}, paged=True)
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = service.list_followups({"limit": 2, "cursor": page["next_cursor"]}, paged=True)
    assert [item["id"] for item in page["items"] + rest["items"]] == [
        late["id"], answered["id"], other_estate["id"]]

    figures = service.revisit_stats("e-1", "2026-11")["followups"]
    assert figures == {"opened": 2, "answered": 1, "answered_on_time": 1, "on_time_rate": 1.0,
                       "overdue": 1}
    assert service.revisit_stats(None, "2026-11")["followups"]["opened"] == 3
    assert service.store.db.followups.count_documents({UNSETTLED: True}) == 0
    assert service.check_statistics()["consistent"] is True


def test_the_recount_repairs_lost_follow_up_counters(service):
    unsatisfied_repair(service)
    service.store.db.revisit_counters.update_many({}, {"$unset": {"followups": ""}})
    checked = service.check_statistics()
    assert not checked["consistent"]
    assert {difference["counter"] for difference in checked["differences"]} >= {
        "followups.opened"}
    service.check_statistics({"repair": True})
    assert service.check_statistics()["consistent"] is True
    assert service.revisit_stats("e-1", "2026-11")["followups"]["opened"] == 1
