"""A complaint keeps its revisits, on the real broker: revisit records the visit, intake
hears ``revisit_completed`` and keeps it on the complaint — once, however often the
event comes (a redelivery, an instance that took a copy too)."""
import json
from datetime import datetime

import eventlet
import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from services.intake.service import IntakeService
from services.revisit.service import RevisitService
from shared.messaging import EventPublisher
from tests.integration.test_revisit_events import work_it

pytestmark = pytest.mark.broker

HOUSEHOLD = {"household_id": "h-1", "building": "1", "unit": "2", "room": "301",
             "occupied": True, "contacts": [{"name": "王芳", "phone": "13812345678"}]}


def test_a_recorded_revisit_shows_on_its_complaint_exactly_once(
        service_config, container_factory, listener):
    intake = container_factory(IntakeService, service_config)
    revisit = container_factory(RevisitService, service_config)
    intake.start()
    revisit.start()
    with ServiceRpcProxy("intake", service_config) as desk, \
            ServiceRpcProxy("revisit", service_config) as visits:
        desk.import_households("estate-1", [HOUSEHOLD], estate={"name": "测试小区"})
        cid = desk.register_complaint({
            "estate_id": "estate-1", "household_id": "h-1", "channel": "hotline",
            "category": "cleaning", "content": "楼道垃圾三天没人清"})["id"]
        work_it(desk, cid)                                   # to its close
        listener.wait_for("revisit_scheduled", source_id=cid)
        [scheduled] = visits.list_revisits({"source_id": cid})
        with entrypoint_waiter(intake, "keep_revisit"):
            visits.record_revisit(scheduled["id"], {
                "visitor_id": "cs-1", "method": "phone", "reached": True,
                "satisfaction": "satisfied", "resolved": True,
                "comments": "处理得很好，有事打13812345678"})
        completed = listener.wait_for("revisit_completed", source_id=cid)
        kept = desk.get_complaint(cid)
        [line] = [dict(each) for each in kept["revisits"]]
        assert datetime.fromisoformat(line.pop("completed_at")) == \
            datetime.fromisoformat(completed["data"]["completed_at"])
        assert line == {
            "revisit_id": scheduled["id"], "method": "phone", "reached": True, "satisfaction": "satisfied", "resolved": True,
            "comments": "处理得很好，有事打138****5678", "visitor_id": "cs-1"}
        assert kept["status"] == "closed"

        # the broker hands the same event out again (a lost ack): nothing more is kept
        again = json.loads(json.dumps(completed))
        with entrypoint_waiter(intake, "keep_revisit"):
            EventPublisher(service_config).publish(again)
        eventlet.sleep(0.2)
        after = desk.get_complaint(cid)
        assert after["revisits"] == kept["revisits"]
        assert after["history"] == kept["history"] and after["status"] == "closed"
        assert not listener.of_type("complaint_reopened")
