"""「向相关部门反馈…一个月内向业主反馈」 end to end: intake, revisit and notify on the real
broker, driven only through their RPC, on one clock the test moves. A repair's revisit
finds the owner unsatisfied; the engineering department is told, records its measures
and who carries them out, answers; the owner hears the answer, and the statistics count
it answered on time."""
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

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
SHANGHAI = ZoneInfo("Asia/Shanghai")
OWNER_PHONE = "13812345678"
STAFF = [{"id": "eng-3", "name": "王工", "roles": ["staff"], "department": "工程部",
          "phone": "13900000003"},
         {"id": "mgr-1", "name": "陈经理", "roles": ["manager"], "phone": "13900000009"}]


@pytest.fixture
def clock():
    return FrozenClock(START)


@pytest.fixture
def services(service_config, runner_factory, clock):
    config = dict(service_config, NOTIFY_DISPATCH_INTERVAL=0.1, REVISIT_TIMER_INTERVAL=0.2,
                  NOTIFY_STAFF=STAFF)
    runner = runner_factory(config, IntakeService, RevisitService, NotifyService)
    for service in (IntakeService, RevisitService, NotifyService):
        replace_dependencies(get_container(runner, service), clock=clock)
    runner.start()
    return config


def delivered(rpc, template, status="sent"):
    return wait_until(lambda: rpc.notify.list_deliveries({"template": template, "status": status}),
                      timeout=10, message=f"{template} {status}")


def test_an_unsatisfied_repair_revisit_is_followed_up_to_the_owners_answer(
        services, clock, listener):
    with ClusterRpcProxy(services, timeout=15) as rpc:
        rpc.intake.import_households("estate-8", [
            {"household_id": "h-801", "building": "8", "unit": "1", "room": "1801",
             "occupied": True, "contacts": [{"name": "王芳", "phone": OWNER_PHONE}]}],
            estate={"name": "测试小区"})
        # an important repair (roof leak) is always revisited, on site
        order = rpc.intake.register_work_order({
            "estate_id": "estate-8", "household_id": "h-801", "kind": "repair",
            "important": True, "content": "顶楼屋面漏水"})
        rpc.intake.complete_work_order(order["id"], {"staff_id": "eng-3"})
        scheduled = listener.wait_for("revisit_scheduled", source_id=order["id"])
        revisit_id = scheduled["data"]["revisit_id"]

        clock.advance(timedelta(hours=1))
        visit_at = clock.now() + timedelta(days=1)                 # 11:30 local tomorrow
        rpc.revisit.book_appointment(revisit_id, {"at": visit_at.isoformat(),
                                                  "owner_consent": True})
        clock.advance(timedelta(days=1))
        rpc.revisit.record_revisit(revisit_id, {
            "visitor_id": "eng-3", "method": "onsite", "reached": True,
            "satisfaction": "unsatisfied", "resolved": False,
            "comments": f"下雨还是漏，有事打 {OWNER_PHONE}", "signed_by": "王芳"})
        opened_at = clock.now()

        # revisit opens the follow-up; the engineering department is told, with the date
        opened = listener.wait_for("revisit_followup_opened", source_id=order["id"])
        assert OWNER_PHONE not in str(opened)                     # masked in the event
        [told] = delivered(rpc, "revisit_followup_opened")
        due_date = (opened_at + timedelta(days=30)).astimezone(SHANGHAI).strftime("%Y-%m-%d")
        assert told["recipient"] == "eng-3"
        assert "工程部" in told["text"] and due_date in told["text"]
        followup_id = opened["data"]["followup_id"]
        assert f"/console/revisits/followups/{followup_id}" in told["text"]
        [followup] = rpc.revisit.list_followups({"estate_id": "estate-8"})
        assert followup["owner_words"].startswith("下雨还是漏")   # staff read the words whole
        assert (followup["status"], followup["department"]) == ("open", "工程部")

        clock.advance(timedelta(days=5))
        rpc.revisit.record_followup_measures(followup_id, {
            "staff_id": "eng-3", "measures": "重做屋面防水层，雨后复查", "responsible": "王工"},
            expected_status="open")
        clock.advance(timedelta(days=10))
        answered = rpc.revisit.answer_followup(followup_id, {
            "staff_id": "eng-3", "answer": "屋面防水层已重做，雨后复查无渗漏"},
            expected_status="measures_recorded")
        assert (answered["status"], answered["answered_on_time"]) == ("answered", True)

        # the owner hears what was done
        [owner] = delivered(rpc, "revisit_followup_answered")
        assert owner["recipient"] == "h-801"
        assert "屋面防水层已重做" in owner["text"]
        figures = rpc.revisit.revisit_stats("estate-8", "2026-10")["followups"]
        assert figures == {"opened": 1, "answered": 1, "answered_on_time": 1,
                           "on_time_rate": 1.0, "overdue": 0}
        assert rpc.revisit.check_statistics()["consistent"] is True
        # told once each, however the events travelled
        assert len(rpc.notify.list_deliveries({"ref": followup_id})) == 2
