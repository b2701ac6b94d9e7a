"""A satisfaction round for two estates from invitation to the notice-board workbook,
with intake and survey running on the real broker and driven only through their public
RPC, their events and the staff command line."""
import base64
import io
from datetime import UTC, datetime, timedelta

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from openpyxl import load_workbook

from services.intake.service import IntakeService
from services.survey import cli
from services.survey.service import SurveyService
from tests.helpers import wait_until_prepared

pytestmark = pytest.mark.broker

# estate-east: 36 households in two buildings; estate-west: 12 (too few to be ranked)
ESTATES = {"estate-east": 36, "estate-west": 12}
NAMES = {"estate-east": "东苑", "estate-west": "西苑"}     # what the workbook shows


def households(estate_id, count):
    return [{"household_id": f"{estate_id}-{n:02d}", "building": str(n % 2 + 1), "unit": "1",
             "room": f"{n:02d}01", "occupied": True,
             "contacts": [{"name": "业主", "phone": f"139{n:08d}"}]}
            for n in range(count)] + [
        {"household_id": f"{estate_id}-empty", "building": "1", "unit": "1", "room": "9901",
         "occupied": False, "contacts": []}]


def answers_of(estate_id, n):
    """East: cleaning mostly 5, order 4 or 2; west: all 5 (a perfect small sample)."""
    if estate_id == "estate-west":
        return {"answers": {"cleaning": 5, "order": 5, "greening": None}, "comments": {}}
    return {
        "answers": {"cleaning": 5 if n % 4 else 3, "order": 4 if n % 3 else 2, "greening": 4},
        "comments": {"cleaning": "楼道垃圾桶经常满，清运不及时"} if n % 5 == 0 else
                    {"general": "停车位太少，晚上没地方停车"} if n % 7 == 0 else {},
    }


def test_a_round_from_invitation_to_exported_report(
        service_config, runner_factory, listener, tmp_path, monkeypatch):
    runner = runner_factory(service_config, IntakeService, SurveyService)
    runner.start()
    now = datetime.now(UTC)
    with ClusterRpcProxy(service_config, timeout=30) as rpc:
        for estate_id, count in ESTATES.items():
            rpc.intake.import_households(estate_id, households(estate_id, count),
                                         estate={"name": NAMES[estate_id]})

        round_ = rpc.survey.create_round({
            "title": "2026年上半年业主满意度调查", "estate_ids": list(ESTATES),
            "opens_at": now.isoformat(), "closes_at": (now + timedelta(days=14)).isoformat(),
            "categories": ["cleaning", "order", "greening"],
        })
        assert round_["status"] == "creating"             # answered at once
        round_ = wait_until_prepared(rpc, round_)
        rid = round_["id"]
        assert round_["invited"] == ESTATES                       # occupied households only
        listener.wait_for("survey_invitation_issued", round_id=rid, count=48)
        invitations = {e["data"]["household_id"]: e["data"]["token"]
                       for e in listener.of_type("survey_invitation_issued", round_id=rid)}

        # 32 of 36 east households answer, 10 of 12 west ones
        for estate_id, answering in (("estate-east", 32), ("estate-west", 10)):
            for n in range(answering):
                token = invitations[f"{estate_id}-{n:02d}"]
                assert rpc.survey.submit_response(token, answers_of(estate_id, n)) \
                    == {"accepted": True}

        rpc.survey.close_round(rid)
        listener.wait_for("survey_round_closed", round_id=rid, count=2)

        report = rpc.survey.round_report(rid)
        east = rpc.survey.round_report(rid, "estate-east")
        # east cleaning: n % 4 == 0 -> 3 (8 of 32), else 5 -> 24 satisfied of 32
        assert east["categories"]["cleaning"]["rate"] == 0.75
        # east order: n % 3 == 0 -> 2 (11 of 32) -> 21 of 32
        assert east["categories"]["order"]["rate"] == round(21 / 32, 4)
        assert (east["invited"], east["returned"], east["response_rate"]) == (36, 32, 0.8889)
        assert (report["invited"], report["returned"]) == (48, 42)
        # pooled: east 24 + 21 + 32 = 77 of 96, west 20 of 20 -> 97 of 116
        assert report["satisfaction_rate"] == round(97 / 116, 4)
        opinion = {o["category"]: o for o in report["opinions"]}
        cleaning_terms = {t["term"]: t["count"] for t in opinion["cleaning"]["terms"]}
        assert {"垃圾桶", "楼道", "清运"} <= set(cleaning_terms)     # n % 5 == 0: 7 comments
        assert set(cleaning_terms.values()) == {7}
        general = {t["term"]: t for t in opinion["general"]["terms"]}   # n = 7, 14, 21, 28
        assert general["停车位"] == {"term": "停车位", "count": 4,
                                    "quotes": ["停车位太少，晚上没地方停车"]}

        ranking = rpc.survey.estate_ranking(rid)
        assert [e["estate_id"] for e in ranking["ranked"]] == ["estate-east"]
        assert [(e["estate_id"], e["rate"]) for e in ranking["too_few"]] == [("estate-west", 1.0)]

        action = rpc.survey.add_rectification(rid, {
            "estate_id": "estate-east", "category": "cleaning", "action": "垃圾清运改为每日两次",
            "department": "环境部", "due_at": (now + timedelta(days=30)).isoformat()})
        rpc.survey.update_rectification(action["id"], {"status": "in_progress",
                                                       "note": "已与清运公司签约"})
        rpc.survey.publish_report(rid, {"note": "整改进度每月公示"})
        listener.wait_for("survey_report_published", round_id=rid, count=2)
        assert listener.wait_for("rectification_created", rectification_id=action["id"])

        book = load_workbook(io.BytesIO(base64.b64decode(rpc.survey.export_report(rid))))

    assert book.sheetnames == ["汇总", "分项满意率", "排名", "共性意见", "整改计划"]
    summary = {row[0]: row[1] for row in book["汇总"].iter_rows(values_only=True) if row[0]}
    assert (summary["发放问卷（份）"], summary["回收问卷（份）"]) == (48, 42)
    assert summary["总体满意率"] == round(97 / 116, 4)
    per_category = {row[1]: row for row in book["分项满意率"].iter_rows(values_only=True)}
    assert per_category["卫生"][2:6] == (42, 34, 0, round(34 / 42, 4))
    ranked = [row for row in book["排名"].iter_rows(values_only=True)
              if row[1] in NAMES.values()]
    assert (ranked[0][0], ranked[0][1]) == (1, "东苑")
    assert ("样本不足", "西苑") in [(row[0], row[1]) for row in ranked]
    plan = [row for row in book["整改计划"].iter_rows(values_only=True) if row[0] == 1]
    assert plan[0][3:7] == ("垃圾清运改为每日两次", "环境部", plan[0][5], "整改中")
    assert plan[0][7] == "已与清运公司签约"

    # the staff command writes the same workbook to a file
    monkeypatch.setenv("AMQP_URI", service_config["AMQP_URI"])
    target = tmp_path / "notice-board.xlsx"
    assert cli.main(["export", rid, "--estate", "estate-east", "-o", str(target)]) == 0
    east_book = load_workbook(target)
    assert east_book["汇总"]["A2"].value.startswith("范围：东苑")
    assert cli.main(["check", rid]) == 0
