"""Every survey event on the real broker: survey and intake running, a frozen clock that
the test moves, timers firing every 0.1 s, an outside listener on survey.events."""
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from services.intake.service import IntakeService
from services.survey.service import SurveyService
from shared.clock import FrozenClock
from shared.dependencies import ClockProvider
from tests.helpers import wait_until, wait_until_prepared

pytestmark = pytest.mark.broker

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def running(service_config, container_factory, clock):
    service_config["SURVEY_SCHEDULE_SECONDS"] = 0.1
    service_config["SURVEY_ROUND_WORK_SECONDS"] = 0.1
    intake = container_factory(IntakeService, service_config)
    survey = container_factory(SurveyService, service_config)
    for extension in survey.dependencies:
        if isinstance(extension, ClockProvider):
            extension.clock = clock
    intake.start()
    survey.start()
    with ClusterRpcProxy(service_config, timeout=20) as rpc:
        for estate_id, rooms in (("estate-a", 3), ("estate-b", 2)):
            rpc.intake.import_households(estate_id, [
                {"household_id": f"{estate_id}-h{n}", "building": "1", "unit": "1",
                 "room": f"10{n}", "occupied": True,
                 "contacts": [{"name": "业主", "phone": "13800000000"}]}
                for n in range(rooms)] + [
                {"household_id": f"{estate_id}-vacant", "building": "2", "unit": "1",
                 "room": "901", "occupied": False,
                 "contacts": [{"name": "业主", "phone": "13800000001"}]}], estate={"name": "测试小区"})
        yield rpc


def open_round(rpc, **changes):
    """create_round, then the round once the background work has written and issued it."""
    return wait_until_prepared(rpc, rpc.survey.create_round(dict({
        "title": "2026 上半年满意度调查", "estate_ids": ["estate-a", "estate-b"],
        "opens_at": NOW.isoformat(), "closes_at": (NOW + timedelta(days=14)).isoformat(),
        "categories": ["cleaning", "order"], "reminders": {"interval_days": 3, "max": 2},
    }, **changes)))


def tokens(rpc, round_id):
    return {i["household_id"]: i["token"] for i in rpc.survey.list_invitations(round_id)}


def test_a_round_announces_itself_from_opening_to_publication(running, listener, clock):
    rpc = running
    round_ = open_round(rpc)
    rid = round_["id"]

    opened = [listener.wait_for("survey_round_opened", round_id=rid, count=n) for n in (1, 2)]
    assert sorted((e["estate_id"], e["data"]["invited"]) for e in opened) == [
        ("estate-a", 3), ("estate-b", 2)]
    listener.wait_for("survey_invitation_issued", round_id=rid, count=5)
    issued = listener.of_type("survey_invitation_issued", round_id=rid)
    by_household = tokens(rpc, rid)
    assert {e["data"]["household_id"]: e["data"]["token"] for e in issued} == by_household
    assert all("phone" not in str(e["data"]) for e in issued)

    rpc.survey.submit_response(by_household["estate-a-h0"], {"answers": {"cleaning": 5}})
    clock.advance(timedelta(days=3))
    listener.wait_for("survey_reminder_due", round_id=rid, count=4)
    eventlet.sleep(0.5)                                  # several timer passes: still once each
    reminded = listener.of_type("survey_reminder_due", round_id=rid)
    assert sorted(e["data"]["household_id"] for e in reminded) == [
        "estate-a-h1", "estate-a-h2", "estate-b-h0", "estate-b-h1"]
    assert {e["data"]["reminder_no"] for e in reminded} == {1}

    clock.advance(timedelta(days=11))                    # closes_at: the timer closes it
    closed = [listener.wait_for("survey_round_closed", round_id=rid, count=n) for n in (1, 2)]
    assert sorted((e["estate_id"], e["data"]["returned"]) for e in closed) == [
        ("estate-a", 1), ("estate-b", 0)]
    eventlet.sleep(0.3)
    assert len(listener.of_type("survey_round_closed", round_id=rid)) == 2
    assert rpc.survey.get_round(rid)["status"] == "closed"

    rpc.survey.publish_report(rid, {"estate_ids": ["estate-a"], "note": "欢迎监督"})
    published = listener.wait_for("survey_report_published", round_id=rid)
    assert published["estate_id"] == "estate-a"
    assert (published["data"]["satisfaction_rate"], published["data"]["returned"]) == (1.0, 1)


def test_rectifications_announce_creation_completion_and_one_overdue(running, listener, clock):
    rpc = running
    rid = open_round(rpc)["id"]
    late = rpc.survey.add_rectification(rid, {
        "estate_id": "estate-b", "category": "order", "action": "加强夜间巡逻",
        "department": "秩序部", "due_at": (NOW + timedelta(days=20)).isoformat()})
    quick = rpc.survey.add_rectification(rid, {
        "estate_id": "estate-a", "category": "cleaning", "action": "增加垃圾清运",
        "department": "环境部", "due_at": (NOW + timedelta(days=20)).isoformat()})

    created = listener.wait_for("rectification_created", rectification_id=late["id"])
    assert (created["estate_id"], created["data"]["department"]) == ("estate-b", "秩序部")
    rpc.survey.update_rectification(quick["id"], {"status": "done", "note": "每日两次"})
    done = listener.wait_for("rectification_done", rectification_id=quick["id"])
    assert done["data"]["status"] == "done"

    clock.advance(timedelta(days=21))
    overdue = listener.wait_for("rectification_overdue", rectification_id=late["id"])
    assert overdue["estate_id"] == "estate-b"
    eventlet.sleep(0.5)
    assert len(listener.of_type("rectification_overdue")) == 1      # once, not per pass


def test_a_double_submission_at_the_same_moment_counts_once(running):
    rpc = running
    rid = open_round(rpc)["id"]
    token = tokens(rpc, rid)["estate-a-h1"]

    replies = [rpc.survey.submit_response.call_async(token, {"answers": {"cleaning": answer}})
               for answer in (5, 1, 4)]
    outcomes = []
    for reply in replies:
        try:
            outcomes.append(reply.result())
        except Exception as error:                    # noqa: BLE001 - the refusal is the point
            outcomes.append(getattr(error, "exc_type", type(error).__name__))

    assert sorted(map(str, outcomes)) == sorted(map(str, [
        {"accepted": True}, "InvalidInput", "InvalidInput"]))
    report = wait_until(lambda: rpc.survey.round_report(rid, "estate-a"), message="report")
    assert (report["returned"], report["categories"]["cleaning"]["answered"]) == (1, 1)
    assert rpc.survey.check_statistics(rid)["consistent"] is True


def test_a_retried_create_round_announces_one_round(running, listener):
    rpc = running
    first = open_round(rpc, request_id="hq-2026-h1-retry")
    again = open_round(rpc, request_id="hq-2026-h1-retry")     # the reply was lost: retried

    assert again["id"] == first["id"]
    listener.wait_for("survey_invitation_issued", round_id=first["id"], count=5)
    eventlet.sleep(0.5)
    assert len(listener.of_type("survey_round_opened", round_id=first["id"])) == 2
    assert len(listener.of_type("survey_invitation_issued", round_id=first["id"])) == 5
    assert [r["id"] for r in rpc.survey.list_rounds()] == [first["id"]]


def test_vacant_households_are_invited_when_asked(running, listener):
    rpc = running
    round_ = open_round(rpc, estate_ids=["estate-b"], occupied_only=False)

    assert round_["invited"] == {"estate-b": 3}
    listener.wait_for("survey_invitation_issued", round_id=round_["id"], count=3)
    assert "estate-b-vacant" in tokens(rpc, round_["id"])
    assert open_round(rpc, estate_ids=["estate-b"])["invited"] == {"estate-b": 2}
