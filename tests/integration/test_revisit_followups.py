"""Follow-ups of unsatisfied revisits on the real broker: revisit's own
``revisit_unsatisfied`` opens one follow-up however many instances take copies of it, and
each follow-up event reaches notify, which logs and sends one delivery to the right
people — the department, the managers, the owner — with two notify instances too."""
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import eventlet
import pytest
from nameko.rpc import rpc as plain_rpc
from nameko.standalone.rpc import ServiceRpcProxy

from services.revisit.service import RevisitService
from shared.envelope import new_event
from shared.messaging import EventPublisher
from tests.integration.test_notify_duties import (
    ESTATE,
    STAFF,
    StubIntake,
    told_once_by_two_instances,
)

pytestmark = pytest.mark.broker
SHANGHAI = ZoneInfo("Asia/Shanghai")


class EstateIntake(StubIntake):
    """intake as revisit asks it too: the estate exists."""

    @plain_rpc
    def get_estate(self, estate_id):
        return {"id": estate_id, "name": estate_id, "timezone": "Asia/Shanghai", "revision": 1}


@pytest.fixture
def notify_config(service_config):
    return {**service_config, "NOTIFY_STAFF": STAFF, "NOTIFY_QUIET_HOURS": "",
            "NOTIFY_DISPATCH_INTERVAL": 0.2, "REVISIT_TIMER_INTERVAL": 0.2}


def followup_event(event_type, **data):
    at = datetime.now(UTC).replace(microsecond=0)
    payload = {"followup_id": "fu-rv-wo-9-after_repair", "revisit_id": "rv-wo-9-after_repair",
               "kind": "repair", "source_id": "wo-9", "household_id": "h-1",
               "department": "工程部", "answer_due_at": at + timedelta(days=30),
               "status": "open", **data}
    return new_event(event_type, "revisit", ESTATE, payload, at)


@pytest.mark.parametrize("event_type, data, template, told", [
    ("revisit_followup_opened", {"summary": "修完还是漏水"}, "revisit_followup_opened",
     ["eng-3"]),                                            # the department of 工程部
    ("revisit_followup_overdue", {"status": "measures_recorded"}, "revisit_followup_overdue",
     ["mgr-1", "mgr-2"]),                                   # the managers
    ("revisit_followup_answered", {"status": "answered", "answer": "已更换防水层",
                                   "on_time": True}, "revisit_followup_answered", ["h-1"]),
])
def test_two_notify_instances_tell_the_right_people_of_a_follow_up_once(
        notify_config, container_factory, listener, event_type, data, template, told):
    logged = told_once_by_two_instances(notify_config, container_factory, listener,
                                        followup_event(event_type, **data), template, told)
    if event_type != "revisit_followup_answered":
        assert "/console/revisits/followups/fu-rv-wo-9-after_repair" in logged[0]["text"]


def test_two_revisit_instances_open_one_follow_up_and_flag_it_overdue_once(
        notify_config, container_factory, listener):
    # answered "within 0 days": overdue as soon as it opens, for both instances' timers
    config = {**notify_config, "REVISIT_POLICY": {"policy": "default",
                                                  "followup_answer_days": 0}}
    container_factory(EstateIntake, config).start()
    for _ in range(2):
        container_factory(RevisitService, config).start()
    at = datetime.now(UTC).replace(microsecond=0)
    publisher = EventPublisher(config)
    publisher.publish(new_event("work_order_completed", "intake", ESTATE, {
        "work_order_id": "wo-9", "household_id": "h-1", "kind": "community_activity",
        "important": False, "completed_at": at}, at))     # every activity is revisited
    listener.wait_for("revisit_scheduled", source_id="wo-9")
    with ServiceRpcProxy("revisit", config) as revisit:
        revisit.record_revisit("rv-wo-9-after_service", {
            "visitor_id": "cs-1", "method": "phone", "reached": True,
            "satisfaction": "very_unsatisfied", "resolved": False, "comments": "还在漏"})
        unsatisfied = listener.wait_for("revisit_unsatisfied", source_id="wo-9")
        for _ in range(3):    # copies of the event, taken by both instances
            publisher.publish(unsatisfied)
        opened = listener.wait_for("revisit_followup_opened", source_id="wo-9")
        assert (opened["data"]["department"], opened["data"]["summary"]) == ("客服中心", "还在漏")
        listener.wait_for("revisit_followup_overdue", source_id="wo-9")
        eventlet.sleep(1)     # every copy handled, both timers ran many times meanwhile
        assert len(listener.of_type("revisit_followup_opened", source_id="wo-9")) == 1
        assert len(listener.of_type("revisit_followup_overdue", source_id="wo-9")) == 1
        [followup] = revisit.list_followups({"estate_id": ESTATE, "overdue": True})
        assert (followup["status"], followup["overdue"]) == ("open", True)
        figures = revisit.revisit_stats(ESTATE, at.astimezone(SHANGHAI).strftime("%Y-%m"))
        assert (figures["followups"]["opened"], figures["followups"]["overdue"]) == (1, 1)
