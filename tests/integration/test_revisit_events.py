"""revisit's event paths on the real broker: each event it consumes, each it publishes,
the loop back to intake, and its timer with two instances running."""
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
from nameko.rpc import rpc as plain_rpc
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from scripts.demo import visit_right_away
from services.revisit.service import RevisitService
from shared.envelope import new_event
from shared.messaging import EventPublisher
from tests.helpers import wait_until

pytestmark = pytest.mark.broker


def now():
    return datetime.now(UTC).replace(microsecond=0)


def closed_event(complaint_id, closed_at=None, closing_no=1, severity="normal"):
    closed_at = closed_at or now()
    return new_event("complaint_closed", "intake", "estate-1", {
        "complaint_id": complaint_id, "household_id": "h-1", "category": "cleaning",
        "severity": severity, "closed_at": closed_at, "owner_signoff": "none",
        "closing_no": closing_no}, closed_at)


def completed_event(work_order_id, kind="repair", household_id="h-1", **data):
    at = now()
    return new_event("work_order_completed", "intake", "estate-1", {
        "work_order_id": work_order_id, "household_id": household_id, "kind": kind,
        "important": False, "completed_at": at, **data}, at)


@pytest.fixture
def revisit(service_config, container_factory):
    container = container_factory(RevisitService, service_config)
    container.start()
    return container


def test_a_closed_complaint_is_scheduled_and_a_reopening_cancels_its_visit(
        revisit, service_config, listener):
    publisher = EventPublisher(service_config)
    with entrypoint_waiter(revisit, "schedule_complaint_revisits"):
        publisher.publish(closed_event("cmp-7"))
    scheduled = listener.wait_for("revisit_scheduled", source_id="cmp-7")
    assert (scheduled["source"], scheduled["estate_id"]) == ("revisit", "estate-1")
    assert scheduled["data"]["revisit_id"] == "rv-cmp-7-1"

    reopened_at = now()
    with entrypoint_waiter(revisit, "cancel_superseded_revisits"):
        publisher.publish(new_event("complaint_reopened", "intake", "estate-1", {
            "complaint_id": "cmp-7", "reason": "业主说还在漏", "source": "owner",
            "reopened_at": reopened_at, "reopen_no": 1}, reopened_at))
    with ServiceRpcProxy("revisit", service_config) as rpc:
        [cancelled] = rpc.list_revisits({"source_id": "cmp-7"})
    assert cancelled["status"] == "cancelled"


def test_completed_work_orders_are_followed_up_once_each(revisit, service_config, listener):
    publisher = EventPublisher(service_config)
    leak = completed_event("wo-roof", important=True)
    for event in (leak, leak, completed_event("wo-fete", "community_activity", None)):
        with entrypoint_waiter(revisit, "follow_up_work_order"):
            publisher.publish(event)
    roof = listener.wait_for("revisit_scheduled", source_id="wo-roof")
    assert (roof["data"]["kind"], roof["data"]["method"]) == ("repair", "onsite")
    fete = listener.wait_for("revisit_scheduled", source_id="wo-fete")
    assert fete["data"]["household_id"] is None
    eventlet.sleep(0.3)
    assert len(listener.of_type("revisit_scheduled", source_id="wo-roof")) == 1

    with ServiceRpcProxy("revisit", service_config) as rpc:
        [observation] = rpc.list_revisits({"source_id": "wo-roof"})
        appointment = visit_right_away()
        rpc.book_appointment(observation["id"], appointment)
        booked = listener.wait_for("revisit_booked", revisit_id=observation["id"])
        assert datetime.fromisoformat(booked["data"]["at"]) == \
            datetime.fromisoformat(appointment["at"])
        rpc.record_revisit(observation["id"], {
            "visitor_id": "eng-2", "method": "onsite", "reached": True,
            "satisfaction": "neutral", "resolved": False, "signed_by": "王芳",
            "comments": "雨后仍有渗水"})
        completed = listener.wait_for("revisit_completed", source_id="wo-roof")
        assert completed["data"]["resolved"] is False
        listener.wait_for("revisit_unsatisfied", source_id="wo-roof")
        # still leaking: a second observation a week on, told when its window opens
        second = rpc.get_revisit("rv-wo-roof-observation-2")
        assert (second["status"], second["announced"]) == ("scheduled", False)
        assert datetime.fromisoformat(second["not_before"]) > now() + timedelta(days=6)


def test_two_instances_tell_each_overdue_revisit_once(service_config, container_factory,
                                                      listener):
    service_config["REVISIT_TIMER_INTERVAL"] = 0.02
    first = container_factory(RevisitService, service_config)
    second = container_factory(RevisitService, service_config)
    first.start()
    second.start()
    publisher = EventPublisher(service_config)
    # all due in two seconds: by then both timers find the same forty late at once
    closed_at = datetime.now(UTC) - timedelta(days=3) + timedelta(seconds=2)
    ids = [f"cmp-late-{number}" for number in range(40)]
    for complaint_id in ids:
        publisher.publish(closed_event(complaint_id, closed_at=closed_at))
    for complaint_id in ids:
        listener.wait_for("revisit_overdue", source_id=complaint_id)
    eventlet.sleep(0.5)                           # both timers ran many more times meanwhile
    told = [event["data"]["revisit_id"] for event in listener.of_type("revisit_overdue")]
    assert sorted(told) == sorted(f"rv-{complaint_id}-1" for complaint_id in ids)
    with ServiceRpcProxy("revisit", service_config) as rpc:
        assert {r["status"] for r in rpc.list_revisits({"estate_id": "estate-1"})} == {"overdue"}


class StubIntake:
    """intake's ``list_households`` as revisit sees it over RPC."""

    name = "intake"

    @plain_rpc
    def list_households(self, estate_id, filters=None):
        assert filters == {"occupied": True}
        return [{"id": f"h-{number:02d}", "estate_id": estate_id, "building": "1",
                 "unit": str(number // 6 + 1), "room": str(101 + number % 6), "occupied": True,
                 "contacts": []} for number in range(24)]


def test_the_routine_plan_asks_intake_for_the_occupied_households(
        revisit, service_config, container_factory):
    container_factory(StubIntake, service_config).start()
    year = now().year + 1
    with ServiceRpcProxy("revisit", service_config) as rpc:
        summary = rpc.plan_routine_revisits("estate-1", year)
        assert (summary["households"], summary["planned"]) == (24, 24)
        assert list(summary["by_month"].values()) == [2] * 12
        assert len(rpc.list_revisits({"kind": "routine", "limit": 100})) == 24


def test_an_unsatisfied_owner_reopens_the_complaint_and_the_next_closing_is_revisited(
        revisit, service_config, container_factory, listener):
    from services.intake.service import IntakeService  # the real intake, not a stub

    intake = container_factory(IntakeService, service_config)
    intake.start()
    with ServiceRpcProxy("intake", service_config) as desk, \
            ServiceRpcProxy("revisit", service_config) as visits:
        desk.import_households("estate-1", [{
            "household_id": "h-1", "building": "1", "unit": "2", "room": "301",
            "occupied": True, "contacts": [{"name": "王芳", "phone": "13812345678"}]}], estate={"name": "测试小区"})
        complaint = desk.register_complaint({
            "estate_id": "estate-1", "household_id": "h-1", "channel": "hotline",
            "category": "cleaning", "content": "楼道垃圾三天没人清"})
        cid = complaint["id"]
        work_it(desk, cid)
        listener.wait_for("revisit_scheduled", source_id=cid)
        [revisit_1] = visits.list_revisits({"source_id": cid})
        visits.record_revisit(revisit_1["id"], {
            "visitor_id": "cs-1", "method": "phone", "reached": True,
            "satisfaction": "unsatisfied", "resolved": False, "comments": "还是没人清"})
        listener.wait_for("revisit_unsatisfied", source_id=cid)
        listener.wait_for("complaint_reopened", complaint_id=cid)
        wait_until(lambda: desk.get_complaint(cid)["status"] == "reopened",
                   message="complaint reopened by intake")
        with entrypoint_waiter(revisit, "schedule_complaint_revisits"):
            work_it(desk, cid, acknowledge=True)
        revisits = visits.list_revisits({"source_id": cid})
        assert [(r["id"], r["status"]) for r in revisits] == [
            (f"rv-{cid}-1", "done"), (f"rv-{cid}-2", "scheduled")]


def work_it(desk, cid, acknowledge=True):
    if acknowledge:
        desk.acknowledge_complaint(cid, {"staff_id": "cs-1", "note": "已致歉"})
    desk.assign_complaint(cid, {"department": "环境部"})
    desk.resolve_complaint(cid, {"staff_id": "cs-2", "resolution": "已清理"})
    desk.close_complaint(cid, {"closed_by": "cs-1", "owner_signoff": "none"})
