"""Several instances of every service as competing consumers on the real broker.

Three instances each of intake, revisit, survey and notify run in one process (one
embedded store, as instances share one MongoDB), every timer ticking fast, and each piece
of timed work is done exactly once: intake's deadline alerts, revisit's overdue visits,
survey's missed-period check and notify's dispatcher (a broadcast to every household,
which the dispatcher sends in batches). And two instances of every service take complaints
round the whole loop (register -> close -> revisit -> the owner's notice), each RPC and
event handed to either: nothing lost, nothing twice.

In one process, not as OS processes: on the embedded store each process has a store of its
own, so two intake processes would be two databases; instances of a service share one
MongoDB, as these share the process's one store (the deployment's ``--scale``:
tests/unit/test_deployment.py)."""
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
from nameko.standalone.rpc import ServiceRpcProxy

from services.intake.service import IntakeService
from services.notify.service import NotifyService
from services.revisit.service import RevisitService
from services.survey.service import SurveyService
from shared.envelope import new_event
from shared.messaging import EventPublisher
from tests.helpers import wait_until

pytestmark = pytest.mark.broker

INSTANCES = 3
ESTATE = "estate-1"
HOUSEHOLDS = 30
STAFF = [{"id": "mgr-1", "name": "陈经理", "roles": ["manager", "supervisor"],
          "phone": "13900000009"},
         {"id": "hq-1", "name": "总部刘", "roles": ["hq_analyst"], "phone": "13900000030"}]


def households():
    return [{"household_id": f"h-{n}", "building": "1", "unit": "1", "room": str(100 + n),
             "occupied": True, "contacts": [{"name": "王芳", "phone": f"138000000{n:02d}"}]}
            for n in range(HOUSEHOLDS)]


def closed_long_ago(complaint_id):
    """A complaint closed almost three days ago: its revisit falls due in two seconds."""
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3) + timedelta(seconds=2)
    return new_event("complaint_closed", "intake", ESTATE, {
        "complaint_id": complaint_id, "household_id": "h-1", "category": "cleaning",
        "severity": "normal", "closed_at": at, "owner_signoff": "none", "closing_no": 1}, at)


def rectification_done():
    at = datetime.now(UTC).replace(microsecond=0)
    return new_event("rectification_done", "survey", ESTATE, {
        "rectification_id": "rect-1", "round_id": "rnd-1", "category": "cleaning",
        "department": "环境部", "due_at": at, "action": "楼道每日清扫两次",
        "status": "done"}, at)


def test_three_instances_of_every_timer_do_each_piece_of_work_once(
        service_config, container_factory, listener):
    config = {**service_config, "OVERDUE_SCAN_SECONDS": 0.05, "REVISIT_TIMER_INTERVAL": 0.05,
              "SURVEY_CADENCE_SECONDS": 0.05, "SURVEY_ROUND_WORK_SECONDS": 0.05,
              "NOTIFY_DISPATCH_INTERVAL": 0.05, "NOTIFY_QUIET_HOURS": "",
              "NOTIFY_STAFF": STAFF}
    for service in (IntakeService, RevisitService, SurveyService, NotifyService):
        for _ in range(INSTANCES):
            container_factory(service, config).start()

    ten_days_ago = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    with ServiceRpcProxy("intake", config) as intake:
        intake.import_households(ESTATE, households(), estate={"name": "测试小区"})
        complaints = [intake.register_complaint({
            "estate_id": ESTATE, "household_id": f"h-{n}", "channel": "hotline",
            "category": category, "content": "楼道垃圾三天没人清理",
            "received_at": ten_days_ago})["id"]
            for n, category in enumerate(("cleaning", "noise", "parking"))]
    publisher = EventPublisher(config)
    late_closed = [f"cmp-late-{n}" for n in range(20)]
    for complaint_id in late_closed:
        publisher.publish(closed_long_ago(complaint_id))
    publisher.publish(rectification_done())

    # each piece of work is seen done ...
    wait_until(lambda: len(listener.of_type("complaint_overdue")) >= 2 * len(complaints),
               timeout=30, message="intake's deadline alerts")
    for complaint_id in late_closed:
        listener.wait_for("revisit_overdue", timeout=30, source_id=complaint_id)
    missed = listener.wait_for("survey_cadence_missed", timeout=30)
    wait_until(lambda: len(listener.of_type("notification_sent",
                                            template="rectification_done")) >= HOUSEHOLDS,
               timeout=60, message="the broadcast sent to every household")
    # ... and every timer of the twelve instances runs many more times: none does it again
    eventlet.sleep(2)
    overdue = [(event["data"]["complaint_id"], event["data"]["deadline"])
               for event in listener.of_type("complaint_overdue")]
    assert sorted(overdue) == sorted((cid, deadline) for cid in complaints
                                     for deadline in ("first_response", "reply"))
    told_late = [event["data"]["source_id"] for event in listener.of_type("revisit_overdue")]
    assert sorted(told_late) == sorted(late_closed)
    assert [event["id"] for event in listener.of_type("survey_cadence_missed")] == [missed["id"]]
    broadcast = [event["data"]["recipient"] for event in
                 listener.of_type("notification_sent", template="rectification_done")]
    assert sorted(broadcast) == sorted(f"h-{n}" for n in range(HOUSEHOLDS))
    with ServiceRpcProxy("notify", config) as notify:
        sent = notify.list_deliveries({"template": "rectification_done", "limit": 500})
    assert len(sent) == HOUSEHOLDS and {d["status"] for d in sent} == {"sent"}


LOOP = (("acknowledge_complaint", {"staff_id": "cs-1", "note": "已致歉"}),
        ("assign_complaint", {"department": "环境部"}),
        ("resolve_complaint", {"staff_id": "cs-2", "resolution": "已清理"}),
        ("close_complaint", {"closed_by": "cs-1", "owner_signoff": "none"}))


def test_two_instances_of_every_service_take_the_complaint_loop_once(
        service_config, container_factory, listener):
    config = {**service_config, "NOTIFY_QUIET_HOURS": "", "NOTIFY_DISPATCH_INTERVAL": 0.2,
              "NOTIFY_STAFF": STAFF}
    for service in (IntakeService, RevisitService, SurveyService, NotifyService):
        for _ in range(2):
            container_factory(service, config).start()
    with ServiceRpcProxy("intake", config) as intake:
        intake.import_households(ESTATE, households(), estate={"name": "测试小区"})
        ids = [reply.result()["id"] for reply in [
            intake.register_complaint.call_async({
                "estate_id": ESTATE, "household_id": f"h-{n}", "channel": "wechat",
                "category": "cleaning", "content": "楼道垃圾三天没人清理"})
            for n in range(HOUSEHOLDS)]]
        for step, data in LOOP:     # each step of all of them at once: both instances serve
            for reply in [getattr(intake, step).call_async(cid, data) for cid in ids]:
                reply.result()

    def noticed():
        return [event["data"]["ref"] for event in listener.of_type("notification_sent")
                if (event["data"].get("ref") or "").startswith("rv-cmp-")]   # not routine
    wait_until(lambda: len(noticed()) >= len(ids), timeout=60,
               message="every owner told of the revisit")
    eventlet.sleep(2)      # both instances of each had every copy by now
    closed = [event["data"]["complaint_id"] for event in listener.of_type("complaint_closed")]
    assert sorted(closed) == sorted(ids)
    scheduled = [event["data"]["source_id"]     # (the households' routine visits aside)
                 for event in listener.of_type("revisit_scheduled", kind="complaint")]
    assert sorted(scheduled) == sorted(ids)
    assert sorted(noticed()) == sorted(f"rv-{cid}-1" for cid in ids)
    with ServiceRpcProxy("revisit", config) as revisit:
        visits = revisit.list_revisits({"estate_id": ESTATE, "kind": "complaint"})
    assert sorted(visit["source_id"] for visit in visits) == sorted(ids)
