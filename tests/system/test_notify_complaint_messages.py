"""A complaint's whole life, told to the owner and staff: intake, revisit and notify
running on the real broker, driven only through their RPC, on one clock the test
moves. Exactly the expected messages go out, in order — and no event body and no
log line carries a full phone number or e-mail address (only the delivery log does)."""
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import replace_dependencies
from nameko.testing.utils import get_container

from services.intake.service import IntakeService
from services.notify.service import NotifyService
from services.revisit.service import RevisitService
from shared.clock import FrozenClock
from tests.helpers import wait_until

pytestmark = pytest.mark.broker

START = datetime(2026, 10, 13, 2, 30, tzinfo=UTC)        # a Tuesday, 10:30 in Shanghai
OWNER_PHONE, OWNER_EMAIL = "13812345678", "wang.fang@example.com"
STAFF_PHONE = "13900000003"
FULL_CONTACTS = (OWNER_PHONE, OWNER_EMAIL, STAFF_PHONE)
ANY_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
def services(service_config, runner_factory, clock, caplog):
    caplog.set_level(logging.INFO)   # what the services log in production
    config = dict(service_config, NOTIFY_DISPATCH_INTERVAL=0.1, REVISIT_TIMER_INTERVAL=0.2,
                  NOTIFY_STAFF=[{"id": "eng-3", "name": "王工", "roles": ["staff"],
                                 "department": "工程部", "phone": STAFF_PHONE}])
    runner = runner_factory(config, IntakeService, RevisitService, NotifyService)
    for service in (IntakeService, RevisitService, NotifyService):
        replace_dependencies(get_container(runner, service), clock=clock)
    runner.start()
    return config


def sent_in_order(rpc):
    deliveries = rpc.notify.list_deliveries()
    return [(d["template"], d["recipient"], d["status"])
            for d in sorted(deliveries, key=lambda d: (d["sent_at"] or "~", d["template"]))]


def delivered(rpc, template, status="sent"):
    return wait_until(lambda: rpc.notify.list_deliveries({"template": template, "status": status}),
                      timeout=10, message=f"{template} {status}")


def test_a_complaints_whole_life_sends_exactly_the_expected_messages(
        services, clock, listener, caplog):
    with ClusterRpcProxy(services, timeout=15) as rpc:
        rpc.intake.import_households("estate-9", [
            {"household_id": "h-901", "building": "9", "unit": "1", "room": "501",
             "occupied": True, "contacts": [{"name": "王芳", "phone": OWNER_PHONE,
                                             "email": OWNER_EMAIL}]}], estate={"name": "翠苑小区"})
        cid = rpc.intake.register_complaint({
            "estate_id": "estate-9", "household_id": "h-901", "channel": "hotline",
            "category": "water_supply", "content": "9栋1单元晚上停水"})["id"]
        [ack] = delivered(rpc, "complaint_received")
        assert ack["text"].startswith("【物业服务中心】非常抱歉") and cid in ack["text"]

        clock.advance(timedelta(minutes=20))
        rpc.intake.acknowledge_complaint(cid, {"staff_id": "cs-01", "note": "已致歉"})
        rpc.intake.assign_complaint(cid, {"department": "工程部", "assignee_id": "eng-3"})
        [assigned] = delivered(rpc, "complaint_assigned")
        assert assigned["recipient"] == "eng-3" and assigned["address"] == "139****0003"
        assert f"/console/complaints/{cid}" in assigned["text"]
        # staff may answer for several estates: the estate's name, from notify's copy of
        # intake's record (its announcement came with the import)
        assert f"翠苑小区：投诉 {cid}" in assigned["text"]
        [routed] = delivered(rpc, "complaint_routed")    # the owner: who has it, until when
        assert "已交由工程部处理" in routed["text"] and "/c/" in routed["text"]

        clock.advance(timedelta(hours=3))
        rpc.intake.resolve_complaint(cid, {"staff_id": "eng-3", "resolution": "更换了减压阀"})
        rpc.intake.close_complaint(cid, {"closed_by": "cs-01", "owner_signoff": "satisfied"})
        [resolved] = delivered(rpc, "complaint_resolved")
        assert "已处理：更换了减压阀" in resolved["text"]
        delivered(rpc, "complaint_closed")
        [complaint_revisit] = wait_until(lambda: rpc.revisit.list_revisits({"source_id": cid}),
                                         message="the complaint's revisit")
        revisit_id = complaint_revisit["id"]
        # a normal complaint: may answer online (the move-in's routine visit has its own link)
        [notice] = wait_until(lambda: rpc.notify.list_deliveries(
            {"template": "revisit_online", "ref": revisit_id, "status": "sent"}),
            timeout=10, message="the complaint's revisit_online sent")
        assert "http://127.0.0.1:8000/r/" in notice["text"]

        clock.advance(timedelta(hours=1))
        visit_at = clock.now() + timedelta(days=2)                 # 14:30 local
        rpc.revisit.book_appointment(revisit_id, {
            "at": visit_at.isoformat(), "method": "onsite", "owner_consent": True})
        [booked] = delivered(rpc, "revisit_booked")
        assert booked["text"].count("上门") == 1
        [waiting] = delivered(rpc, "revisit_reminder", status="queued")
        assert waiting["next_attempt_at"] == (visit_at - timedelta(days=1)).isoformat()

        clock.advance(timedelta(days=1))                            # the day before: remind
        [reminder] = delivered(rpc, "revisit_reminder")
        assert reminder["sent_at"] == (visit_at - timedelta(days=1)).isoformat()

        clock.advance(timedelta(days=1))
        rpc.revisit.record_revisit(revisit_id, {
            "visitor_id": "sup-1", "method": "onsite", "reached": True,
            "satisfaction": "satisfied", "resolved": True, "comments": "已恢复供水",
            "signed_by": "王芳"})
        listener.wait_for("revisit_completed", revisit_id=revisit_id)
        clock.advance(timedelta(days=2))                            # nothing else is due
        listener.wait_for("notification_sent", count=9)

        expected = [
            ("complaint_received", "h-901", "sent"),
            ("revisit_online", "h-901", "sent"),     # moving in: this year's routine visit
            ("complaint_assigned", "eng-3", "sent"),
            ("complaint_routed", "h-901", "sent"),
            ("complaint_closed", "h-901", "sent"),
            ("complaint_resolved", "h-901", "sent"),
            ("revisit_online", "h-901", "sent"),
            ("revisit_booked", "h-901", "sent"),
            ("revisit_reminder", "h-901", "sent"),
        ]
        wait_until(lambda: len(listener.of_type("notification_sent")) >= 9, timeout=5)
        assert sent_in_order(rpc) == expected
        announced = [e["data"]["template"] for e in listener.of_type("notification_sent")]
        assert sorted(announced) == sorted(template for template, _, _ in expected)
        assert listener.of_type("notification_failed") == []

        listed = str(rpc.notify.list_deliveries())
        assert not any(contact in listed for contact in FULL_CONTACTS)   # masked for staff

    # No event body and no log line names a full number or address.
    for event in listener.events:
        body = str(event)
        assert not any(contact in body for contact in FULL_CONTACTS), event["type"]
        assert not ANY_EMAIL.search(body), event["type"]
    lines = [record.getMessage() + (record.exc_text or "") for record in caplog.records]
    assert any("console message to 138****5678" in line for line in lines)   # the scan sees logs
    for line in lines:
        assert not any(contact in line for contact in FULL_CONTACTS), line
        assert not ANY_EMAIL.search(line), line
