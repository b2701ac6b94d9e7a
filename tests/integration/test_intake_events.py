"""intake's events on the real broker, as outside consumers and revisit receive them."""
import io
import json
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter
from openpyxl import Workbook

from services.intake import importer
from services.intake.service import IntakeService
from shared.dependencies import Store
from shared.envelope import new_event, parse_event
from shared.messaging import EventPublisher
from tests.helpers import wait_until

pytestmark = pytest.mark.broker

OWNER_PHONE = "13812345678"
HOUSEHOLDS = [{"household_id": "h-1", "building": "1", "unit": "2", "room": "301",
               "occupied": True, "contacts": [{"name": "王芳", "phone": OWNER_PHONE,
                                               "email": "wang.fang@example.com"}]}]


def complaint(**overrides):
    return {"estate_id": "estate-1", "household_id": "h-1", "channel": "hotline",
            "category": "cleaning", "content": "楼道垃圾三天没人清理", **overrides}


def repository_of(container):
    return next(ext for ext in container.dependencies if isinstance(ext, Store)).repository


@pytest.fixture
def intake(service_config, container_factory):
    container = container_factory(IntakeService, service_config)
    container.start()
    with ServiceRpcProxy("intake", service_config) as rpc:
        rpc.import_households("estate-1", HOUSEHOLDS, estate={"name": "测试小区"})
        yield rpc


def test_lifecycle_events_carry_what_consumers_need_and_no_contact(intake, listener):
    first = intake.register_complaint(complaint())
    for step, data in (("acknowledge_complaint", {"staff_id": "s-1", "note": "已致歉"}),
                       ("assign_complaint", {}),
                       ("resolve_complaint", {"staff_id": "s-2", "resolution": "已清理"}),
                       ("close_complaint", {"closed_by": "s-1", "owner_signoff": "satisfied"})):
        getattr(intake, step)(first["id"], data)
    repeat = intake.register_complaint(complaint(content="垃圾又堆满了"))
    emergency = intake.register_complaint(complaint(
        category="water_supply", severity="emergency", content="楼上爆管，水往下漏"))

    assigned = listener.wait_for("complaint_assigned", complaint_id=first["id"])
    assert assigned["data"]["department"] == "环境部"           # the routing table's
    closed = parse_event(listener.wait_for("complaint_closed", complaint_id=first["id"]))
    assert closed["data"]["closing_no"] == 1 and closed["data"]["malicious"] is False
    repeated = listener.wait_for("complaint_repeated", complaint_id=repeat["id"])
    assert repeated["data"]["repeat_of"] == first["id"]
    registered = listener.wait_for("work_order_registered", complaint_id=emergency["id"])
    assert registered["data"]["kind"] == "repair"

    intake.complete_work_order(emergency["work_order_id"], {"staff_id": "eng-1"})
    completed = parse_event(listener.wait_for(
        "work_order_completed", work_order_id=emergency["work_order_id"]))
    assert completed["estate_id"] == "estate-1"
    assert completed["data"]["household_id"] == "h-1"
    assert completed["data"]["complaint_id"] == emergency["id"]

    everything = json.dumps(listener.events, ensure_ascii=False)
    assert OWNER_PHONE not in everything and "wang.fang@example.com" not in everything


def test_unsatisfied_revisit_reopens_with_fresh_deadlines(
        service_config, container_factory, listener):
    container = container_factory(IntakeService, service_config)
    container.start()
    with ServiceRpcProxy("intake", service_config) as intake:
        intake.import_households("estate-1", HOUSEHOLDS, estate={"name": "测试小区"})
        cid = intake.register_complaint(complaint())["id"]
        for step, data in (("acknowledge_complaint", {"staff_id": "s-1"}),
                           ("assign_complaint", {}),
                           ("resolve_complaint", {"staff_id": "s-2", "resolution": "已清理"}),
                           ("close_complaint", {"closed_by": "s-1", "owner_signoff": "none"})):
            getattr(intake, step)(cid, data)
        unsatisfied = new_event("revisit_unsatisfied", "revisit", "estate-1", {
            "revisit_id": f"rv-{cid}-1", "kind": "complaint", "source_id": cid,
            "satisfaction": "unsatisfied", "resolved": False, "comments": "还是很脏"},
            datetime.now(UTC))
        with entrypoint_waiter(container, "reopen_after_unsatisfied_revisit"):
            EventPublisher(service_config).publish(unsatisfied)
        reopened = listener.wait_for("complaint_reopened", complaint_id=cid)
        assert (reopened["data"]["source"], reopened["data"]["reason"]) == ("revisit", "还是很脏")
        after = intake.get_complaint(cid)
        assert after["status"] == "reopened"
        assert datetime.fromisoformat(after["first_response_due"]) > datetime.now(UTC)


def test_two_instances_send_each_overdue_alert_and_escalation_once(
        service_config, container_factory, listener):
    service_config["OVERDUE_SCAN_SECONDS"] = 0.05
    instances = [container_factory(IntakeService, service_config) for _ in range(2)]
    for container in instances:
        container.start()
    # the precondition of the race: both instances work on the same data
    assert repository_of(instances[0]).db is repository_of(instances[1]).db

    ten_days_ago = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    with ServiceRpcProxy("intake", service_config) as intake:
        intake.import_households("estate-1", HOUSEHOLDS, estate={"name": "测试小区"})
        ids = [intake.register_complaint(complaint(category=category, received_at=ten_days_ago))
               ["id"] for category in ("cleaning", "noise", "parking", "greening")]
        major = intake.register_complaint(complaint(category="fees", severity="major",
                                                    received_at=ten_days_ago))["id"]

    # four normal complaints: 2 deadlines missed, 3 rungs; the major one starts at rung 2
    wait_until(lambda: len(listener.of_type("complaint_escalated")) >= 4 * 3 + 2, timeout=10,
               message="every escalation sent")
    # both timers keep running for a while: nothing more may come
    with entrypoint_waiter(instances[0], "send_deadline_alerts"), \
            entrypoint_waiter(instances[1], "send_deadline_alerts"):
        pass
    eventlet.sleep(0.5)
    overdue = [(e["data"]["complaint_id"], e["data"]["deadline"])
               for e in listener.of_type("complaint_overdue")]
    escalated = [(e["data"]["complaint_id"], e["data"]["level"])
                 for e in listener.of_type("complaint_escalated")]
    assert sorted(overdue) == sorted((cid, deadline) for cid in ids + [major]
                                     for deadline in ("first_response", "reply"))
    assert sorted(escalated) == sorted([(cid, level) for cid in ids for level in (1, 2, 3)]
                                       + [(major, 2), (major, 3)])


def test_owner_list_import_command_through_rpc(intake, service_config, tmp_path):
    path = tmp_path / "owners.xlsx"
    workbook = Workbook()
    workbook.active.append(["户号", "楼栋", "单元", "房号", "入住", "姓名", "电话"])
    workbook.active.append(["h-1", "1", "2", "301", "是", "王芳", 13812345678])
    workbook.active.append(["h-1", "1", "2", "301", "是", "李雷", 13900001111])
    workbook.active.append(["h-2", "1", "2", "302", "否", None, None])
    workbook.save(path)
    out = io.StringIO()
    assert importer.main(["estate-1", str(path)], out=out, config=service_config) == 0
    assert "1 households imported, 1 updated (2 contacts)" in out.getvalue()
    households = intake.list_households("estate-1")
    assert [len(h["contacts"]) for h in households] == [2, 0]

    # a new estate needs its name
    out = io.StringIO()
    assert importer.main(["estate-2", str(path)], out=out, config=service_config) == 2
    assert "file: estate.name: required for a new estate" in out.getvalue()

    # the service's own refusal is reported by line, and nothing is written
    out = io.StringIO()
    assert importer.main(["estate-2", str(path), "--name", "西溪花园", "--company", "华东物业"],
                         out=out, config=service_config) == 2
    assert "line 2: household_id: belongs to estate estate-1" in out.getvalue()
    with pytest.raises(RemoteError) as unknown:   # not even the estate became known
        intake.list_households("estate-2")
    assert unknown.value.exc_type == "NotFound"

    # a new estate's list, with its name: the estate is registered with it
    workbook = Workbook()
    workbook.active.append(["户号", "楼栋", "单元", "房号", "入住", "姓名", "电话"])
    workbook.active.append(["h-3", "2", "1", "101", "是", "赵敏", 13700002222])
    workbook.save(path)
    assert importer.main(["estate-3", str(path), "--name", "西溪花园", "--region", "杭州片区"],
                         out=io.StringIO(), config=service_config) == 0
    estate = intake.get_estate("estate-3")
    assert (estate["name"], estate["region"], estate["company"]) == ("西溪花园", "杭州片区", None)


def test_a_direct_caller_naming_an_unknown_department_is_refused_and_nothing_changes(
        intake, listener):
    """An outside system calls intake's RPC itself (no gateway in between): the department
    is intake's to check, against the estate's routing; the complaint stays as it was."""
    cid = intake.register_complaint(complaint())["id"]
    intake.acknowledge_complaint(cid, {"staff_id": "s-1", "note": "已致歉"})
    before = intake.get_complaint(cid)
    with pytest.raises(RemoteError) as refused:
        intake.assign_complaint(cid, {"department": "保洁部", "assignee_id": "s-7"},
                                request_id="outside-1")
    assert refused.value.exc_type == "InvalidInput"
    assert list(json.loads(refused.value.value)) == ["department"]
    assert intake.get_complaint(cid) == before
    # the same request with a routed department goes through, announced once
    assigned = intake.assign_complaint(cid, {"department": "客服中心"}, request_id="outside-2")
    assert assigned["department"] == "客服中心"
    event = listener.wait_for("complaint_assigned", complaint_id=cid)
    assert event["data"]["department"] == "客服中心"
    assert len(listener.of_type("complaint_assigned")) == 1
