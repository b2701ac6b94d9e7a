"""Cadences kept, not remembered (services/revisit/plans.py): the year's routine plan by
timer, households moving in, key customers' rung, the month's plan and its workbook —
the rules, then revisit's entrypoints on the embedded store (no broker)."""
import base64
import io
from datetime import UTC, datetime, timedelta

import pytest
from nameko.exceptions import UnknownService
from nameko.testing.services import worker_factory
from openpyxl import load_workbook

from services.revisit import domain, plans
from services.revisit.policies import PolicyBook, PolicyError, RevisitPolicy
from services.revisit.repository import RevisitRepository
from services.revisit.service import ROUTINE_PLAN_BATCH, ROUTINE_PLAN_LEASE, RevisitService
from shared.actor import Caller
from shared.clock import FrozenClock
from shared.config import load_config
from shared.envelope import new_event, parse_event
from shared.errors import InvalidInput
from tests.helpers import embedded, estate_copies, handle_one

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)          # Monday 10:00 in Shanghai
POLICY = RevisitPolicy()
MANAGERS = RevisitPolicy(key_customer_role="manager")


def household(number, **extra):
    return {"id": f"h-{number:02d}", "building": "1", "unit": str(number // 6 + 1),
            "room": str(101 + number % 6), **extra}


def closed(household_id="h-1", severity="normal"):
    return {"complaint_id": "cmp-1", "household_id": household_id, "category": "cleaning",
            "severity": severity, "closed_at": NOW, "owner_signoff": "none", "closing_no": 1}


def completed(kind="repair", **changes):
    return {"work_order_id": "wo-1", "household_id": "h-1", "kind": kind, "important": False,
            "completed_at": NOW, "contract_start": None, "contract_end": None, **changes}


# -- key customers: 「重点客户的回访由客服负责人或项目经理负责」 -------------------------------

@pytest.mark.parametrize("policy, role", [(POLICY, "supervisor"), (MANAGERS, "manager")])
def test_a_key_customers_complaint_work_order_and_routine_visits_never_go_to_staff(policy,
                                                                                  role):
    complaint, [event] = domain.schedule_complaint_revisit(closed(), "e-1", policy, NOW,
                                                           key_customer=True)
    assert (complaint["assigned_role"], complaint["key_customer"]) == (role, True)
    assert event["data"]["assigned_role"] == role
    [(repair, _)] = domain.schedule_work_order_revisits(completed(), "e-1", "online", policy,
                                                        NOW, key_customer=True)
    assert repair["assigned_role"] == role
    scheduled, _, _ = domain.plan_routine(
        "e-1", 2027, [household(1, key_customer=True), household(2)], [], policy, NOW)
    assert {revisit["household_id"]: revisit["assigned_role"] for revisit, _ in scheduled} == {
        "h-01": role, "h-02": "staff"}


def test_an_ordinary_households_visits_stay_with_staff_and_a_major_complaint_keeps_its_rung():
    revisit, _ = domain.schedule_complaint_revisit(closed(), "e-1", MANAGERS, NOW)
    assert (revisit["assigned_role"], revisit["key_customer"]) == ("staff", False)
    major, _ = domain.schedule_complaint_revisit(closed(severity="major"), "e-1", MANAGERS,
                                                 NOW, key_customer=True)
    assert major["assigned_role"] == "supervisor"      # the major-complaint rung, on site


def test_an_important_repairs_next_observation_of_a_key_customer_stays_with_the_rung():
    [(first, _)] = domain.schedule_work_order_revisits(
        completed(important=True), "e-1", "important", POLICY, NOW, key_customer=True)
    done = dict(first, status="done", outcome={"resolved": False})
    follow_up, _ = domain.next_observation(done, POLICY, NOW)
    assert (follow_up["assigned_role"], follow_up["key_customer"]) == ("supervisor", True)


def test_the_key_customer_rung_is_a_supervisor_or_a_manager():
    with pytest.raises(PolicyError, match="key_customer_role"):
        RevisitPolicy(key_customer_role="staff")


def test_flagging_hands_open_staff_visits_over_and_lifting_gives_back_only_those():
    staff_visit = {"status": "scheduled", "assigned_role": "staff"}
    assert plans.key_customer_changes(staff_visit, True, MANAGERS) == {
        "assigned_role": "manager", "key_customer": True}
    raised = {"status": "overdue", "assigned_role": "manager", "key_customer": True}
    assert plans.key_customer_changes(raised, False, MANAGERS) == {
        "assigned_role": "staff", "key_customer": False}
    major = {"status": "scheduled", "assigned_role": "supervisor"}   # its own rung
    assert plans.key_customer_changes(major, True, MANAGERS) is None
    assert plans.key_customer_changes(major, False, MANAGERS) is None
    done = {"status": "done", "assigned_role": "staff"}
    assert plans.key_customer_changes(done, True, MANAGERS) is None


# -- the year's plan and households moving in ------------------------------------------

def test_the_year_to_plan_is_the_estates_own():
    new_years_eve = datetime(2026, 12, 31, 17, 0, tzinfo=UTC)   # 1 January 01:00 in Shanghai
    assert plans.year_to_plan(new_years_eve, POLICY) == 2027
    assert plans.year_to_plan(new_years_eve, RevisitPolicy(timezone="Europe/London")) == 2026


def test_a_household_moving_in_gets_one_visit_in_the_least_busy_open_month():
    planned = [revisit for revisit, _ in domain.plan_routine(
        "e-1", 2026, [household(n) for n in range(3)], [], POLICY, NOW)[0]]
    assert {revisit["month"] for revisit in planned} == {11, 12}   # November on
    [(added, events)] = plans.plan_move_in(
        "e-1", household(9, key_customer=True), planned, POLICY, NOW)
    assert (added["_id"], added["household_id"]) == ("rv-routine-2026-h-09", "h-09")
    busier = max((11, 12), key=lambda m: sum(r["month"] == m for r in planned))
    assert added["month"] != busier and added["assigned_role"] == "supervisor"
    assert [event["type"] for event in events] == (
        ["revisit_scheduled"] if added["month"] == 11 else [])
    # told twice (a redelivered event): nothing more; the others' visits untouched
    assert plans.plan_move_in("e-1", household(9), [*planned, added], POLICY, NOW) == []


def test_moving_in_again_after_moving_out_gets_a_new_visit():
    [(first, _)] = plans.plan_move_in("e-1", household(4), [], POLICY, NOW)
    cancelled = dict(first, status="cancelled")
    [(again, _)] = plans.plan_move_in("e-1", household(4), [cancelled], POLICY, NOW)
    assert again["_id"] == "rv-routine-2026-h-04-2"


# -- the month's plan: 「物业服务中心每月应制定回访计划」 -----------------------------------

def test_a_routine_visit_is_in_its_planned_month_the_others_in_their_due_month():
    [(routine, _)] = plans.plan_move_in("e-1", household(4), [], POLICY, NOW)
    assert routine["plan_month"] == f"2026-{routine['month']:02d}"
    late_night = datetime(2026, 11, 30, 17, 0, tzinfo=UTC) - timedelta(days=3)  # 28 Nov 01:00
    complaint, _ = domain.schedule_complaint_revisit(
        dict(closed(), closed_at=late_night), "e-1", POLICY, NOW)
    assert complaint["due_at"].isoformat() == "2026-11-30T17:00:00+00:00"   # 1 Dec local
    assert complaint["plan_month"] == "2026-12"


def test_the_months_plan_lists_its_visits_by_due_time_without_cancelled_ones():
    [(routine, _)] = plans.plan_move_in("e-1", household(4, key_customer=True), [], POLICY,
                                        NOW)
    complaint, _ = domain.schedule_complaint_revisit(closed(), "e-1", POLICY, NOW)
    [(repair, _)] = domain.schedule_work_order_revisits(completed(), "e-1", "online", POLICY,
                                                        NOW)
    cancelled = dict(repair, _id="rv-gone", status="cancelled")
    plan = plans.monthly_plan("e-1", "2026-11", [routine, complaint, repair, cancelled])
    assert [item["id"] for item in plan["items"]] == ["rv-wo-1-after_repair", "rv-cmp-1-1",
                                                      "rv-routine-2026-h-04"]
    assert plan["visits"] == 3
    assert plan["by_kind"] == {"repair": 1, "complaint": 1, "routine": 1}
    assert plan["by_role"] == {"staff": 2, "supervisor": 1}
    lines = {item["kind"]: item for item in plan["items"]}
    assert lines["routine"]["household"] == "1-1-105" and lines["routine"]["key_customer"]
    assert lines["complaint"]["household"] == "h-1"
    # a reference to the household, nothing of its people (contacts are intake's)
    assert set(plan["items"][0]) == {"id", "kind", "source_id", "due_at", "status",
                                     "assigned_role", "method", "key_customer", "household"}


def test_the_months_plan_prints_as_a_workbook():
    [(routine, _)] = plans.plan_move_in("e-1", household(4, key_customer=True), [], POLICY,
                                        NOW)
    plan = plans.monthly_plan("e-1", "2026-11", [routine])
    book = load_workbook(io.BytesIO(plans.plan_workbook(plan, "阳光花园", "Asia/Shanghai")))
    sheet = book["回访计划"]
    assert sheet["A1"].value == "阳光花园 2026-11 回访计划"
    rows = [[cell.value for cell in row] for row in sheet.iter_rows(min_row=4)]
    assert rows[0] == ["序号", "应回访时间", "类别", "户号", "来源单号", "回访人", "方式", "状态"]
    assert rows[1][2:] == ["例行回访", "1-1-105", "h-04", "客服主管（重点客户）", "phone",
                           "待回访"]
    assert rows[1][1] == datetime(2026, 12, 1, 0, 0)          # due by local midnight


# -- the entrypoints ------------------------------------------------------------------

class Intake:
    """intake as revisit calls it: its estates' occupied households. Which estates there
    are revisit knows from its copies (``estate_copies``), never asking intake."""

    def __init__(self, estates):
        self.estates, self.asked = estates, []

    def list_households(self, estate_id, filters=None):
        self.asked.append(estate_id)
        return self.estates[estate_id]

    def get_estate(self, estate_id):
        return {"id": estate_id, "name": "阳光花园"}


def make_service(repository, clock, intake, config=None):
    return worker_factory(RevisitService, store=repository, clock=clock, intake=intake,
                          policies=PolicyBook(config or load_config()),
                          estates=estate_copies(repository, intake.estates),
                          caller=Caller(None, None))


@pytest.fixture
def repository():
    return embedded(RevisitRepository)


def moved_in(household_id, estate="e-1", key_customer=False, at=NOW):
    return parse_event(new_event("household_moved_in", "intake", estate, {
        "household_id": household_id, "building": "2", "unit": "1", "room": "301",
        "key_customer": key_customer, "moved_in_at": at}, at))


def flagged(household_id, flag, at=NOW, estate="e-1"):
    return parse_event(new_event("household_key_customer_set", "intake", estate, {
        "household_id": household_id, "key_customer": flag, "changed_at": at}, at))


def test_the_timer_plans_each_estate_once_a_year_and_a_plan_by_hand_counts(repository):
    intake = Intake({"e-1": [household(n) for n in range(3)], "e-2": [household(7)],
                     "e-3": [household(8)]})
    first = make_service(repository, FrozenClock(NOW), intake)
    first.plan_routine_revisits("e-3", 2026)                # by hand, before the timer
    intake.asked.clear()
    second = make_service(repository, FrozenClock(NOW), intake)
    first.plan_routine_years()
    second.plan_routine_years()                              # another instance: nothing left
    assert intake.asked == ["e-1", "e-2"]
    routine = list(repository.db.revisits.find({"kind": "routine"}))
    assert len(routine) == 5 and {r["year"] for r in routine} == {2026}
    # the new year in Shanghai: planned again, for 2027
    new_year = make_service(repository, FrozenClock(datetime(2026, 12, 31, 16, 30,
                                                              tzinfo=UTC)), intake)
    new_year.plan_routine_years()
    assert repository.db.revisits.count_documents({"kind": "routine", "year": 2027}) == 5


def test_an_estate_another_instance_holds_is_left_to_it_until_its_lease_lapses(repository):
    intake = Intake({"e-1": [household(1)]})
    assert repository.claim_routine_plan("e-1", 2026, NOW, timedelta(minutes=10))
    make_service(repository, FrozenClock(NOW), intake).plan_routine_years()
    assert intake.asked == []
    later = NOW + timedelta(minutes=11)                      # its holder died
    make_service(repository, FrozenClock(later), intake).plan_routine_years()
    assert intake.asked == ["e-1"]


class IntakeAway(Intake):
    """intake not running: every call fails, as nameko's proxy fails with no intake."""

    def list_households(self, estate_id, filters=None):
        raise UnknownService("intake")

    def get_estate(self, estate_id):
        raise UnknownService("intake")


def test_the_timer_goes_through_its_estate_copies_while_intake_is_away(repository):
    estates = {"e-1": [household(1)], "e-2": [household(2)]}
    make_service(repository, FrozenClock(NOW), Intake(estates)).plan_routine_years()
    later = FrozenClock(NOW + timedelta(days=1))
    make_service(repository, later, IntakeAway(estates)).plan_routine_years()  # all planned
    estates["e-3"] = [household(3)]        # a new estate's copy: its plan needs intake
    with pytest.raises(UnknownService):
        make_service(repository, later, IntakeAway(estates)).plan_routine_years()
    back = FrozenClock(later.now() + ROUTINE_PLAN_LEASE + timedelta(minutes=1))  # lapsed
    make_service(repository, back, Intake(estates)).plan_routine_years()
    assert repository.db.revisits.count_documents({"kind": "routine"}) == 3


def test_the_timer_plans_a_batch_of_estates_a_pass(repository):
    estates = {f"e-{n:03d}": [household(n % 30)] for n in range(ROUTINE_PLAN_BATCH + 3)}
    intake = Intake(estates)
    service = make_service(repository, FrozenClock(NOW), intake)
    service.plan_routine_years()
    assert len(intake.asked) == ROUTINE_PLAN_BATCH
    service.plan_routine_years()
    assert len(intake.asked) == ROUTINE_PLAN_BATCH + 3


def test_a_household_moving_in_is_added_to_this_years_plan_once(repository):
    service = make_service(repository, FrozenClock(NOW), Intake({}))
    service.plan_moved_in_household(moved_in("h-9"))
    service.plan_moved_in_household(moved_in("h-9"))        # redelivered
    [revisit] = repository.db.revisits.find({"kind": "routine"})
    assert (revisit["_id"], revisit["year"], revisit["assigned_role"]) == (
        "rv-routine-2026-h-9", 2026, "staff")
    assert (revisit["building"], revisit["unit"], revisit["room"]) == ("2", "1", "301")


def test_key_customers_visits_go_up_when_flagged_and_back_when_the_flag_is_lifted(repository):
    service = make_service(repository, FrozenClock(NOW), Intake({}))
    service.plan_moved_in_household(moved_in("h-1"))
    handle_one(service.schedule_complaint_revisits, parse_event(new_event(
        "complaint_closed", "intake", "e-1", closed(), NOW)))

    def roles():
        return {r["kind"]: r["assigned_role"] for r in repository.db.revisits.find()}

    assert roles() == {"routine": "staff", "complaint": "staff"}
    service.reassign_key_customer_visits(flagged("h-1", True, NOW))
    assert roles() == {"routine": "supervisor", "complaint": "supervisor"}
    # an older change arriving late changes nothing
    service.reassign_key_customer_visits(flagged("h-1", False, NOW - timedelta(hours=1)))
    assert roles() == {"routine": "supervisor", "complaint": "supervisor"}
    # a work order completed now goes up at once: revisit keeps the flag
    service.follow_up_work_order(parse_event(new_event(
        "work_order_completed", "intake", "e-1", completed(important=True), NOW)))
    assert repository.db.revisits.find_one({"kind": "repair"})["assigned_role"] == "supervisor"
    service.reassign_key_customer_visits(flagged("h-1", False, NOW + timedelta(hours=1)))
    assert set(roles().values()) == {"staff"}


def test_the_months_plan_and_its_workbook_through_the_rpc(repository):
    service = make_service(repository, FrozenClock(NOW), Intake({"e-1": []}))
    service.plan_moved_in_household(moved_in("h-9", key_customer=True))
    month = repository.db.revisits.find_one()["plan_month"]
    plan = service.monthly_revisit_plan("e-1", month)
    assert [(item["kind"], item["assigned_role"]) for item in plan["items"]] == [
        ("routine", "supervisor")]
    assert isinstance(plan["items"][0]["due_at"], str)
    book = load_workbook(io.BytesIO(base64.b64decode(service.export_monthly_plan("e-1", month))))
    assert book["回访计划"]["A1"].value == f"阳光花园 {month} 回访计划"
    with pytest.raises(InvalidInput, match="month"):
        service.monthly_revisit_plan("e-1", "2026-13")
