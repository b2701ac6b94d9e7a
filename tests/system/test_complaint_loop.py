"""The whole first flow with the four services running as separate processes,
driven only through their public RPC and by listening on the event exchanges."""
from datetime import UTC, datetime, timedelta

import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy

from scripts.demo import visit_right_away
from tests.helpers import ServiceProcesses, wait_until, wait_until_prepared

pytestmark = pytest.mark.broker

OWNER_PHONE = "13812345678"


@pytest.fixture
def running(service_config, tmp_path):
    # No quiet hours: the owner's notices must go out whatever time the suite runs.
    processes = ServiceProcesses(service_config, tmp_path, NOTIFY_QUIET_HOURS="")
    try:
        processes.start()
        yield processes
    finally:
        processes.stop()
    for service in processes.services:
        assert OWNER_PHONE not in processes.log(service), f"{service} logged a full number"


def test_a_complaint_goes_round_the_whole_loop(running, service_config, listener):
    with ClusterRpcProxy(service_config, timeout=30) as rpc:
        assert rpc.intake.import_households("estate-7", [
            {"household_id": "h-701", "building": "7", "unit": "1", "room": "1201",
             "occupied": True, "contacts": [{"name": "王芳", "phone": OWNER_PHONE}]},
            {"household_id": "h-702", "building": "7", "unit": "2", "room": "302",
             "occupied": True, "contacts": [{"name": "李雷", "phone": "13900001111"}]},
        ], estate={"name": "测试小区"}) == {"imported": 2, "updated": 0, "failed": []}

        complaint = rpc.intake.register_complaint({
            "estate_id": "estate-7", "household_id": "h-701", "channel": "hotline",
            "category": "water_supply", "severity": "major",
            "content": "7栋1单元连续三天晚上停水，没有任何通知",
        })
        cid = complaint["id"]
        registered = listener.wait_for("complaint_registered", complaint_id=cid)
        assert registered["estate_id"] == "estate-7"

        # notify apologises to the owner on the console channel and logs it
        [ack] = wait_until(lambda: rpc.notify.list_deliveries({"ref": cid}),
                           message="acknowledgement delivered")
        assert ack["channel"] == "console" and ack["status"] == "sent"
        assert ack["text"].startswith("【物业服务中心】非常抱歉") and cid in ack["text"]

        rpc.intake.acknowledge_complaint(cid, {"staff_id": "cs-01", "note": "已致歉并登记"})
        rpc.intake.assign_complaint(cid, {"department": "工程部", "assignee_id": "eng-3"})
        rpc.intake.resolve_complaint(cid, {"staff_id": "eng-3", "resolution": "更换了减压阀"})
        rpc.intake.close_complaint(cid, {"closed_by": "cs-01", "owner_signoff": "none"})
        closed = listener.wait_for("complaint_closed", complaint_id=cid)
        assert closed["data"]["closing_no"] == 1

        # revisit schedules the follow-up: major complaint -> supervisor, on site, 3 days
        scheduled = listener.wait_for("revisit_scheduled", source_id=cid)
        [revisit] = rpc.revisit.list_revisits({"source_id": cid})
        assert (revisit["assigned_role"], revisit["method"]) == ("supervisor", "onsite")
        closed_at = datetime.fromisoformat(closed["data"]["closed_at"])
        assert datetime.fromisoformat(revisit["due_at"]) - closed_at == timedelta(days=3)

        # ... and notify tells the owner about the visit
        [notice] = wait_until(lambda: rpc.notify.list_deliveries(
            {"ref": revisit["id"], "template": "revisit_scheduled"}),
            message="revisit notice delivered")
        assert notice["status"] == "sent" and "上门" in notice["text"]
        assert scheduled["data"]["household_id"] == "h-701"

        # the supervisor visits; the owner is not satisfied -> the complaint reopens
        rpc.revisit.book_appointment(revisit["id"], visit_right_away())
        done = rpc.revisit.record_revisit(revisit["id"], {
            "visitor_id": "sup-1", "method": "onsite", "reached": True,
            "satisfaction": "unsatisfied", "resolved": False,
            "comments": "晚上还是停水", "signed_by": "王芳"})
        assert done["status"] == "done"
        listener.wait_for("revisit_unsatisfied", source_id=cid)
        reopened = listener.wait_for("complaint_reopened", complaint_id=cid)
        assert reopened["data"]["source"] == "revisit"
        complaint = rpc.intake.get_complaint(cid)
        assert complaint["status"] == "reopened"
        assert complaint["history"][-1]["note"] == "晚上还是停水"

        # a second closing gets its own follow-up visit
        for step, data in [("acknowledge_complaint", {"staff_id": "cs-01", "note": "再次致歉"}),
                           ("assign_complaint", {"department": "工程部"}),
                           ("resolve_complaint", {"staff_id": "eng-3", "resolution": "更换水泵"}),
                           ("close_complaint", {"closed_by": "cs-01", "owner_signoff": "satisfied"})]:
            getattr(rpc.intake, step)(cid, data)
        listener.wait_for("revisit_scheduled", source_id=cid, count=2)
        assert len(rpc.revisit.list_revisits({"source_id": cid})) == 2

        # survey answers for the same estate
        now = datetime.now(UTC)
        round_ = rpc.survey.create_round({
            "title": "2026年下半年满意度调查", "estate_ids": ["estate-7"],
            "opens_at": (now - timedelta(minutes=1)).isoformat(),
            "closes_at": (now + timedelta(days=14)).isoformat()})
        round_ = wait_until_prepared(rpc, round_)
        assert round_["status"] == "open" and round_["invited"] == {"estate-7": 2}
        invitations = rpc.survey.list_invitations(round_["id"])
        token = invitations[0]["token"]
        answers = {category: 5 for category in round_["categories"]}
        answers["water_supply"] = 2
        assert rpc.survey.submit_response(token, {"answers": answers,
                                                  "comments": {"water_supply": "晚上停水"}}) \
            == {"accepted": True}
        with pytest.raises(RemoteError) as refused:
            rpc.survey.submit_response(token, {"answers": answers})
        assert refused.value.exc_type == "InvalidInput"
        report = rpc.survey.round_report(round_["id"], "estate-7")
        assert (report["invited"], report["returned"], report["response_rate"]) == (2, 1, 0.5)
        assert report["satisfaction_rate"] == round(8 / 9, 4)
        assert report["categories"]["water_supply"]["rate"] == 0.0

    # no event carried the owner's number
    assert all(OWNER_PHONE not in str(event) for event in listener.events)


def test_bad_input_over_rpc_names_the_field_and_writes_nothing(running, service_config):
    with ClusterRpcProxy(service_config, timeout=30) as rpc:
        rpc.intake.import_households("estate-8", [], estate={"name": "测试小区"})
        with pytest.raises(RemoteError) as error:
            rpc.intake.register_complaint({
                "estate_id": "estate-8", "channel": "carrier pigeon", "category": "noise",
                "content": "x", "reporter": {"name": "张三", "phone": "13800000000"},
                "$where": "1"})
        assert error.value.exc_type == "InvalidInput"
        assert "$where" in error.value.value
        with pytest.raises(RemoteError) as error:
            rpc.intake.register_complaint({
                "estate_id": "estate-8", "channel": "carrier pigeon", "category": "noise",
                "content": "x", "reporter": {"name": "张三", "phone": "13800000000"}})
        assert error.value.exc_type == "InvalidInput" and "channel" in error.value.value
        assert rpc.intake.list_complaints({"estate_id": "estate-8"}) == []
        with pytest.raises(RemoteError) as error:
            rpc.intake.get_complaint("cmp-nothing")
        assert error.value.exc_type == "NotFound"
