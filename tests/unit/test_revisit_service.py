"""revisit's entrypoints with the embedded store (no broker)."""
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from nameko.testing.services import worker_factory

from services.revisit.dependencies import ZonedPolicies
from services.revisit.policies import PolicyBook
from services.revisit.repository import RevisitRepository
from services.revisit.service import RevisitService
from shared.actor import Actor, Caller
from shared.clock import FrozenClock
from shared.config import load_config
from shared.envelope import new_event, parse_event
from shared.errors import InvalidInput, InvalidTransition, NotFound
from shared.estates import EstateCopies
from tests.helpers import embedded, handle_one

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)          # Monday 10:00 in Shanghai
SHANGHAI = ZoneInfo("Asia/Shanghai")
CONFIG = load_config(REVISIT_ESTATE_POLICIES={"e-30": {"policy": "in_home_repairs_30"}})


def make_service(repository, clock):
    """The service with the embedded store; its policies zoned by its estate copies (none
    yet: the configured zones) as ``EstatePolicies`` gives them."""
    copies = EstateCopies(repository.db, None, "Asia/Shanghai")
    return worker_factory(RevisitService, store=repository, clock=clock,
                          policies=ZonedPolicies(PolicyBook(CONFIG), copies),
                          caller=Caller(None, None))


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def repository():
    return embedded(RevisitRepository)


@pytest.fixture
def service(repository, clock):
    return make_service(repository, clock)


def closed_event(severity="normal", complaint_id="cmp-1", closing_no=1, closed_at=NOW,
                 estate="e-1"):
    return parse_event(new_event("complaint_closed", "intake", estate, {
        "complaint_id": complaint_id, "household_id": "h-1", "category": "cleaning",
        "severity": severity, "closed_at": closed_at, "owner_signoff": "none",
        "closing_no": closing_no,
    }, closed_at))


def completed_event(work_order_id="wo-1", kind="repair", at=NOW, estate="e-1", **data):
    payload = {"work_order_id": work_order_id, "household_id": "h-1", "kind": kind,
               "important": False, "completed_at": at, **data}
    return parse_event(new_event("work_order_completed", "intake", estate, payload, at))


def reopened_event(complaint_id="cmp-1", reopen_no=1):
    return parse_event(new_event("complaint_reopened", "intake", "e-1", {
        "complaint_id": complaint_id, "reason": "还是有问题", "source": "owner",
        "reopened_at": NOW, "reopen_no": reopen_no}, NOW))


def outbox(service, revisit_id):
    return [event["type"] for event in
            service.store.db.revisits.find_one({"_id": revisit_id})["outbox"]]


PHONE_VISIT = {"visitor_id": "s-1", "method": "phone", "reached": True,
               "satisfaction": "satisfied", "resolved": True}
ONSITE_VISIT = dict(PHONE_VISIT, method="onsite", signed_by="王芳")


def tomorrow_at(hour):
    return datetime(2026, 11, 24, hour, tzinfo=SHANGHAI).isoformat()


def book_for_tomorrow(service, revisit_id):
    """The owner agrees to a visit tomorrow at 10:00 (Shanghai), counted from the clock."""
    day = service.clock.now().astimezone(SHANGHAI).date() + timedelta(days=1)
    at = datetime(day.year, day.month, day.day, 10, tzinfo=SHANGHAI).isoformat()
    return service.book_appointment(revisit_id, {"at": at, "owner_consent": True})


def arrive(service, booked):
    """The clock at the booked visit's time: the visitor is at the door."""
    service.clock.at = datetime.fromisoformat(booked["appointment_at"])


# -- complaints ---------------------------------------------------------------------------

def test_the_same_closing_delivered_twice_schedules_one_revisit(service):
    event = closed_event()
    handle_one(service.schedule_complaint_revisits, event)
    handle_one(service.schedule_complaint_revisits, event)
    [revisit] = service.list_revisits({"source_id": "cmp-1"})
    assert revisit["due_at"] == (NOW + timedelta(days=3)).isoformat()
    assert revisit["status"] == "scheduled"
    assert outbox(service, revisit["id"]) == ["revisit_scheduled"]


def test_reopening_cancels_the_open_revisit_and_the_next_closing_gets_its_own(service):
    handle_one(service.schedule_complaint_revisits, closed_event())
    event = reopened_event()
    service.cancel_superseded_revisits(event)
    service.cancel_superseded_revisits(event)          # redelivered: nothing more
    [first] = service.list_revisits({"source_id": "cmp-1"})
    assert (first["status"], first["cancel_reason"]) == ("cancelled", "complaint reopened (owner)")
    handle_one(service.schedule_complaint_revisits, closed_event(closing_no=2))
    assert [r["status"] for r in service.list_revisits({"source_id": "cmp-1"})] == [
        "cancelled", "scheduled"]
    with pytest.raises(InvalidTransition, match="it is cancelled"):
        service.record_revisit(first["id"], PHONE_VISIT)


# -- recording and bad input -----------------------------------------------------------------

def test_on_site_record_needs_a_booking_and_the_owners_signature(service):
    handle_one(service.schedule_complaint_revisits, closed_event("major"))
    [revisit] = service.list_revisits({})
    with pytest.raises(InvalidInput) as error:          # nobody agreed to a visit yet
        service.record_revisit(revisit["id"], ONSITE_VISIT)
    assert "method" in error.value.errors
    stored = service.get_revisit(revisit["id"])
    assert (stored["attempts"], stored["status"]) == ([], "scheduled")
    booked = book_for_tomorrow(service, revisit["id"])
    visit = dict(ONSITE_VISIT, signed_by=None)
    with pytest.raises(InvalidInput) as error:
        service.record_revisit(revisit["id"], visit)
    assert "signed_by" in error.value.errors
    with pytest.raises(InvalidInput, match="booked for") as error:   # a day before the visit
        service.record_revisit(revisit["id"], ONSITE_VISIT)
    assert service.get_revisit(revisit["id"])["attempts"] == []
    arrive(service, booked)
    done = service.record_revisit(revisit["id"], ONSITE_VISIT)
    assert done["status"] == "done"
    with pytest.raises(InvalidTransition):
        service.record_revisit(revisit["id"], ONSITE_VISIT)
    assert len(service.get_revisit(revisit["id"])["attempts"]) == 1


@pytest.mark.parametrize("change, field", [
    ({"satisfaction": "ecstatic"}, "satisfaction"),
    ({"satisfaction": 6}, "satisfaction"),
    ({"reached": "yes"}, "reached"),
    ({"method": "pigeon"}, "method"),
    ({"satisfaction": None}, "satisfaction"),
    ({"visitor_id": {"$gt": ""}}, "visitor_id.$gt"),
    ({"promised_reply_at": "2026-11-20T10:00:00+08:00"}, "promised_reply_at"),   # in the past
    ({"promised_reply_at": "2026-11-30T10:00:00"}, "promised_reply_at"),         # no offset
    ({"reached": False}, "satisfaction"),                  # nobody reached gave a satisfaction
    ({"mood": "good"}, "mood"),
])
def test_bad_outcome_names_the_field_and_writes_nothing(service, change, field):
    handle_one(service.schedule_complaint_revisits, closed_event())
    [revisit] = service.list_revisits({})
    with pytest.raises(InvalidInput) as error:
        service.record_revisit(revisit["id"], dict(PHONE_VISIT, **change))
    assert field in error.value.errors
    stored = service.get_revisit(revisit["id"])
    assert (stored["attempts"], stored["status"]) == ([], "scheduled")


def test_appointment_needs_consent_and_a_time_outside_quiet_hours(service):
    handle_one(service.schedule_complaint_revisits, closed_event("major"))
    [revisit] = service.list_revisits({})
    for data, field in [({"at": tomorrow_at(10), "owner_consent": False}, "owner_consent"),
                        ({"at": tomorrow_at(10)}, "owner_consent"),
                        ({"at": tomorrow_at(22), "owner_consent": True}, "at"),
                        ({"at": tomorrow_at(10), "owner_consent": True,
                          "quiet_hours": ["25:00-07:00"]}, "quiet_hours"),
                        ({"at": "tomorrow", "owner_consent": True}, "at")]:
        with pytest.raises(InvalidInput) as error:
            service.book_appointment(revisit["id"], data)
        assert field in error.value.errors
        assert service.get_revisit(revisit["id"])["status"] == "scheduled"
    booked = service.book_appointment(revisit["id"], {"at": tomorrow_at(10),
                                                      "owner_consent": True})
    assert booked["status"] == "booked"
    assert outbox(service, revisit["id"])[-1] == "revisit_booked"


def test_a_promised_reply_is_recorded_and_answered(service, clock):
    handle_one(service.schedule_complaint_revisits, closed_event())
    [revisit] = service.list_revisits({})
    promised = (NOW + timedelta(days=2)).isoformat()
    done = service.record_revisit(revisit["id"], dict(
        PHONE_VISIT, comments="问物业费何时调整", promised_reply_at=promised))
    assert done["promised_reply_at"] == promised
    with pytest.raises(InvalidInput) as error:
        service.record_reply(revisit["id"], {"staff_id": "s-2"})
    assert "reply" in error.value.errors
    for blank in ("", "   ", "\n\t", "\u3000\u3000"):      # says nothing: not a reply given
        with pytest.raises(InvalidInput) as error:
            service.record_reply(revisit["id"], {"staff_id": "s-2", "reply": blank})
        assert error.value.errors == {"reply": ["must not be empty"]}
    assert service.get_revisit(revisit["id"]).get("reply_given_at") is None
    clock.advance(timedelta(days=1))
    answered = service.record_reply(revisit["id"], {"staff_id": "s-2", "reply": "明年一月"})
    assert answered["reply_given_at"] == clock.now().isoformat()


def test_unknown_revisit_is_not_found(service):
    with pytest.raises(NotFound):
        service.get_revisit("rv-nothing")
    with pytest.raises(InvalidInput):
        service.get_revisit({"$ne": None})


# -- work orders ---------------------------------------------------------------------------

def test_a_completed_work_order_is_decided_once(service):
    event = completed_event(important=True)
    service.follow_up_work_order(event)
    service.follow_up_work_order(event)
    [revisit] = service.list_revisits({"source_id": "wo-1"})
    assert (revisit["stage"], revisit["reason"], revisit["method"]) == (
        "observation", "important", "onsite")
    assert service.store.db.work_orders.count_documents({}) == 1


def test_every_community_activity_and_other_service_is_revisited(service):
    service.follow_up_work_order(completed_event("wo-a", "community_activity", household_id=None))
    service.follow_up_work_order(completed_event("wo-b", "other_service"))
    revisits = {r["source_id"]: r for r in service.list_revisits({})}
    assert revisits["wo-a"]["due_at"] == (NOW + timedelta(days=30)).isoformat()
    assert revisits["wo-b"]["due_at"] == (NOW + timedelta(days=7)).isoformat()


def test_important_repair_observations_continue_until_confirmed(service, clock):
    service.follow_up_work_order(completed_event(important=True))
    [first] = service.list_revisits({"source_id": "wo-1"})
    arrive(service, book_for_tomorrow(service, first["id"]))
    service.record_revisit(first["id"], dict(ONSITE_VISIT, resolved=False,
                                             comments="雨后仍有渗水"))
    second = service.get_revisit("rv-wo-1-observation-2")
    assert second["due_at"] > (NOW + timedelta(days=7)).isoformat()
    clock.advance(timedelta(days=7))
    arrive(service, book_for_tomorrow(service, second["id"]))
    service.record_revisit(second["id"], ONSITE_VISIT)
    assert [r["observation_no"] for r in service.list_revisits({"source_id": "wo-1"})] == [1, 2]


def complete_repairs(service, clock, count, month_start, estate="e-1", prefix="wo", days=30):
    """``count`` repairs spread over ``days`` from ``month_start``, each handled as it
    completes."""
    span = timedelta(days=days) / count
    for number in range(count):
        at = month_start + span * number + timedelta(hours=1)
        clock.at = at
        service.follow_up_work_order(completed_event(f"{prefix}-{number:03d}", at=at,
                                                     estate=estate, household_id=f"h-{number}"))


def test_closing_a_month_tops_up_the_shortfall_and_reports_it(service, clock):
    # October was busy; November brings 12 repairs in its first week and then none: the
    # sampler expected many more and took few, closing the month adds the rest.
    october = datetime(2026, 10, 1, tzinfo=SHANGHAI).astimezone(UTC)
    complete_repairs(service, clock, 100, october, prefix="oct")
    november = datetime(2026, 11, 1, tzinfo=SHANGHAI).astimezone(UTC)
    complete_repairs(service, clock, 12, november, prefix="nov", days=6)
    online = service.store.db.work_orders.count_documents({"month": "2026-11", "selected": True})
    assert online < 5
    clock.at = datetime(2026, 12, 1, 9, tzinfo=SHANGHAI).astimezone(UTC)
    report = service.close_sampling_month("e-1", "2026-11")
    repair = report["repair"]
    assert (repair["orders"], repair["required"], repair["sampled"]) == (12, 5, 5)
    assert (repair["online"], repair["top_up"]) == (online, 5 - online)
    top_ups = [r for r in service.list_revisits({"kind": "repair", "limit": 1000})
               if r["reason"] == "top_up"]
    assert len(top_ups) == 5 - online
    # due the day after the closing, since they could not be the day after the repair
    assert {r["due_at"] for r in top_ups} == {"2026-12-02T16:00:00+00:00"}
    assert report["community_activity"] == {"orders": 0, "required": 0, "sampled": 0,
                                            "online": 0, "top_up": 0, "important": 0,
                                            "without_household": 0}
    # closing again changes nothing
    assert service.close_sampling_month("e-1", "2026-11") == report
    assert service.store.db.revisits.count_documents(
        {"kind": "repair", "source_id": {"$regex": "^nov"}}) == 5


def month_record(repository, month, estate="e-1"):
    return repository.db.sampling_months.find_one({"_id": f"{estate}:{month}"}) or {}


def test_the_timer_closes_a_month_once_it_is_over_and_again_after_late_paper_records(
        repository, clock):
    one, two = make_service(repository, clock), make_service(repository, clock)
    november = datetime(2026, 11, 1, tzinfo=SHANGHAI).astimezone(UTC)
    complete_repairs(one, clock, 12, november, prefix="nov", days=6)
    online = repository.db.work_orders.count_documents({"month": "2026-11", "selected": True})

    clock.at = datetime(2026, 11, 30, 23, 30, tzinfo=SHANGHAI).astimezone(UTC)
    one.close_finished_months()
    assert "report" not in month_record(repository, "2026-11"), "closed before the month ended"

    clock.at = datetime(2026, 12, 1, 0, 30, tzinfo=SHANGHAI).astimezone(UTC)
    one.close_finished_months()
    two.close_finished_months()
    closed = month_record(repository, "2026-11")
    assert closed["closings"] == 1
    assert (closed["report"]["repair"]["orders"], closed["report"]["repair"]["sampled"]) == (12, 5)
    assert repository.db.revisits.count_documents({"reason": "top_up"}) == 5 - online

    # a repair done on 28 November, entered from the paper log on 3 December
    clock.at = datetime(2026, 12, 3, 10, tzinfo=SHANGHAI).astimezone(UTC)
    two.follow_up_work_order(completed_event(
        "nov-late", at=datetime(2026, 11, 28, 15, tzinfo=SHANGHAI).astimezone(UTC),
        household_id="h-late"))
    one.close_finished_months()
    one.close_finished_months()
    closed = month_record(repository, "2026-11")
    assert closed["closings"] == 2 and closed["report"]["repair"]["orders"] == 13


def test_a_month_another_instance_is_closing_is_left_to_it_until_its_claim_lapses(
        repository, clock):
    service = make_service(repository, clock)
    november = datetime(2026, 11, 1, tzinfo=SHANGHAI).astimezone(UTC)
    complete_repairs(service, clock, 12, november, prefix="nov", days=6)
    clock.at = datetime(2026, 12, 1, 9, tzinfo=SHANGHAI).astimezone(UTC)
    # another instance took the month and died before it finished
    assert repository.claim_month_closing("e-1", "2026-11", clock.at, timedelta(minutes=10))

    service.close_finished_months()
    assert "report" not in month_record(repository, "2026-11")
    clock.advance(timedelta(minutes=11))
    service.close_finished_months()
    assert month_record(repository, "2026-11")["closings"] == 1
    assert month_record(repository, "2026-11")["pending"] is False


def test_an_order_decided_while_its_month_is_being_closed_gets_the_month_closed_again(
        service, repository, clock):
    november = datetime(2026, 11, 1, tzinfo=SHANGHAI).astimezone(UTC)
    complete_repairs(service, clock, 3, november, prefix="nov", days=6)
    clock.at = datetime(2026, 12, 1, 9, tzinfo=SHANGHAI).astimezone(UTC)
    claimed = repository.claim_month_closing("e-1", "2026-11", clock.at, timedelta(minutes=10))
    service.follow_up_work_order(completed_event(       # arrives mid-closing
        "nov-late", at=datetime(2026, 11, 28, 15, tzinfo=SHANGHAI).astimezone(UTC),
        household_id="h-late"))
    repository.record_month_closed("e-1", "2026-11", {"repair": {}}, clock.at, claimed)
    assert month_record(repository, "2026-11")["pending"] is True


def test_the_thirty_percent_estate_revisits_thirty_percent_of_its_repairs(service, clock):
    november = datetime(2026, 11, 1, tzinfo=SHANGHAI).astimezone(UTC)
    complete_repairs(service, clock, 200, november, estate="e-30")
    clock.at = datetime(2026, 12, 2, tzinfo=SHANGHAI).astimezone(UTC)
    report = service.close_sampling_month("e-30", "2026-11")["repair"]
    assert (report["orders"], report["required"]) == (200, 60)   # not the table's 20
    assert report["sampled"] >= 60
    assert service.get_policy("e-30")["policy"] == "in_home_repairs_30"
    assert service.get_policy("e-1")["policy"] == "default"


@pytest.mark.parametrize("estate, month, field", [
    ("e-1", "2026-11", "month"),            # not over yet
    ("e-1", "2026-13", "month"),
    ("e-1", "November", "month"),
    ({"$ne": 1}, "2026-10", "estate_id.$ne"),
])
def test_closing_a_month_refuses_bad_input(service, estate, month, field):
    with pytest.raises(InvalidInput) as error:
        service.close_sampling_month(estate, month)
    assert field in error.value.errors
    assert service.store.db.sampling_months.count_documents({}) == 0


# -- routine visits ---------------------------------------------------------------------------

def households(count):
    return [{"id": f"h-{n:03d}", "estate_id": "e-1", "building": str(n // 10 + 1), "unit": "1",
             "room": str(101 + n % 10), "occupied": True, "contacts": []} for n in range(count)]


def test_routine_plan_covers_every_occupied_household_from_intake(service):
    service.intake.list_households.return_value = households(30)
    summary = service.plan_routine_revisits("e-1", 2027)
    service.intake.list_households.assert_called_with("e-1", {"occupied": True})
    assert (summary["households"], summary["planned"], summary["added"]) == (30, 30, 30)
    assert set(summary["by_month"].values()) == {2, 3}
    service.intake.list_households.return_value = households(33)
    again = service.plan_routine_revisits("e-1", 2027)
    assert (again["planned"], again["added"]) == (33, 3)
    assert service.store.db.revisits.count_documents({"kind": "routine"}) == 33


def test_routine_plan_refuses_bad_input(service):
    for estate, year, field in [("e-1", "2027", "year"), ("e-1", 1999, "year"),
                                ("e-1", 2025, "year"), ("e 1", 2027, "estate_id")]:
        with pytest.raises(InvalidInput) as error:
            service.plan_routine_revisits(estate, year)
        assert field in error.value.errors
    assert service.store.db.revisits.count_documents({}) == 0


# -- the timer ------------------------------------------------------------------------------

def test_overdue_revisits_are_marked_and_told_once_even_by_two_instances(repository, clock):
    one, two = make_service(repository, clock), make_service(repository, clock)
    for number in range(3):
        handle_one(one.schedule_complaint_revisits, closed_event(complaint_id=f"cmp-{number}"))
    clock.advance(timedelta(days=3, minutes=1))
    one.watch_deadlines()
    two.watch_deadlines()
    one.watch_deadlines()
    for revisit in one.list_revisits({}):
        assert revisit["status"] == "overdue"
        assert outbox(one, revisit["id"]) == ["revisit_scheduled", "revisit_overdue"]
    done = one.record_revisit("rv-cmp-0-1", PHONE_VISIT)
    assert done["status"] == "done"


def test_planned_visits_are_announced_when_their_month_comes(service, clock):
    service.intake.list_households.return_value = households(24)
    service.plan_routine_revisits("e-1", 2027)
    service.watch_deadlines()
    assert service.store.db.revisits.count_documents({"outbox.0": {"$exists": True}}) == 0
    clock.at = datetime(2027, 1, 1, 0, 5, tzinfo=SHANGHAI).astimezone(UTC)
    service.watch_deadlines()
    service.watch_deadlines()
    january = service.store.db.revisits.find({"month": 1})
    assert [outbox(service, r["_id"]) for r in january] == [["revisit_scheduled"]] * 2


def test_a_promised_reply_not_given_in_time_is_told_once(service, clock):
    handle_one(service.schedule_complaint_revisits, closed_event())
    service.record_revisit("rv-cmp-1-1", dict(
        PHONE_VISIT, promised_reply_at=(NOW + timedelta(days=1)).isoformat()))
    clock.advance(timedelta(days=1, minutes=1))
    service.watch_deadlines()
    service.watch_deadlines()
    assert outbox(service, "rv-cmp-1-1").count("revisit_overdue") == 1
    revisit = service.store.db.revisits.find_one({"_id": "rv-cmp-1-1"})
    assert revisit["outbox"][-1]["data"]["deadline"] == "promised_reply"


# -- statistics ------------------------------------------------------------------------------

def test_revisit_stats_per_estate_and_across_estates(service, clock):
    closed_at = datetime(2026, 11, 10, 10, tzinfo=SHANGHAI).astimezone(UTC)
    for number in range(4):
        handle_one(service.schedule_complaint_revisits, closed_event(
            complaint_id=f"cmp-{number}", closed_at=closed_at))
    handle_one(service.schedule_complaint_revisits, closed_event(complaint_id="cmp-x", closed_at=closed_at,
                                                    estate="e-2"))
    clock.at = closed_at + timedelta(days=1)
    service.record_revisit("rv-cmp-0-1", PHONE_VISIT)                                  # on time
    service.record_revisit("rv-cmp-1-1", dict(PHONE_VISIT, satisfaction="unsatisfied"))
    clock.at = closed_at + timedelta(days=5)
    service.record_revisit("rv-cmp-2-1", PHONE_VISIT)                                  # late
    service.record_revisit("rv-cmp-x-1", PHONE_VISIT)
    clock.at = datetime(2026, 12, 5, tzinfo=SHANGHAI).astimezone(UTC)

    stats = service.revisit_stats("e-1", "2026-11")
    assert (stats["complaints_closed"], stats["complaint_revisits_done"]) == (4, 3)
    assert stats["revisit_rate"] == 0.75
    assert stats["on_time_rate"] == round(2 / 3, 4)
    assert stats["reach_rate"] == 1.0
    assert stats["satisfaction_rate"] == round(2 / 3, 4)
    assert stats["overdue"] == 1
    assert stats["kinds"]["complaint"]["required"] == 4
    assert service.revisit_stats("e-1", "2026-Q4")["complaints_closed"] == 4
    assert service.revisit_stats("e-1", "2026-10")["complaints_closed"] == 0

    group = service.revisit_stats(None, "2026-H2")
    assert (group["complaints_closed"], group["complaint_revisits_done"]) == (5, 4)
    assert set(group["estates"]) == {"e-1", "e-2"}
    assert group["estates"]["e-2"]["revisit_rate"] == 1.0


def test_revisit_stats_measure_work_orders_against_the_quota(service, clock):
    november = datetime(2026, 11, 1, tzinfo=SHANGHAI).astimezone(UTC)
    complete_repairs(service, clock, 30, november)
    clock.at = datetime(2026, 12, 1, 9, tzinfo=SHANGHAI).astimezone(UTC)
    service.close_sampling_month("e-1", "2026-11")
    for revisit in service.list_revisits({"kind": "repair", "limit": 1000})[:5]:
        service.record_revisit(revisit["id"], PHONE_VISIT)
    repair = service.revisit_stats("e-1", "2026-11")["kinds"]["repair"]
    assert (repair["orders"], repair["required"]) == (30, 9)
    assert repair["sampled"] >= 9 and repair["revisited_orders"] == 5
    assert repair["revisit_rate"] == round(5 / 9, 4)


@pytest.mark.parametrize("estate, period, field", [
    ("e-1", "2026-13", "period"), ("e-1", "2026-Q5", "period"), ("e-1", "last month", "period"),
    ("$where", "2026-11", "estate_id"),
])
def test_revisit_stats_refuse_bad_input(service, estate, period, field):
    with pytest.raises(InvalidInput) as error:
        service.revisit_stats(estate, period)
    assert field in error.value.errors


# -- who acted: the person the gateway passes along (shared/actor.py) ---------------------

def test_with_an_actor_the_visit_booking_and_reply_name_the_person(service):
    handle_one(service.schedule_complaint_revisits, closed_event("major"))
    [revisit] = service.list_revisits({})
    service.caller = Caller(Actor("u-sup", ("supervisor",), ("e-1",)), "gateway")
    booked = book_for_tomorrow(service, revisit["id"])
    assert booked["booked_by"] == "u-sup"
    arrive(service, booked)
    done = service.record_revisit(revisit["id"], dict(
        ONSITE_VISIT, visitor_id="s-typed", promised_reply_at=(NOW + timedelta(days=2)).isoformat()))
    assert done["outcome"]["visitor_id"] == done["attempts"][0]["visitor_id"] == "u-sup"
    answered = service.record_reply(revisit["id"], {"staff_id": "s-typed", "reply": "明年一月"})
    assert answered["reply"]["staff_id"] == "u-sup"


def test_without_an_actor_the_typed_visitor_stands_and_nobody_is_said_to_have_booked(service):
    handle_one(service.schedule_complaint_revisits, closed_event("major"))
    [revisit] = service.list_revisits({})
    service.caller = Caller(Actor("u-sup", ("supervisor",)), "gateway")
    book_for_tomorrow(service, revisit["id"])
    service.caller = Caller(None, None)
    moved = book_for_tomorrow(service, revisit["id"])      # moved by a service: no person
    assert moved["booked_by"] is None
    arrive(service, moved)
    assert service.record_revisit(revisit["id"], ONSITE_VISIT)["outcome"]["visitor_id"] == "s-1"


def test_ping_answers_with_the_service_name(service):
    assert service.ping() == {"service": "revisit"}
