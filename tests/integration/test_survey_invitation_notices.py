"""A round's invitations reach every household once through notify on the real broker:
intake, survey and notify running; notify takes the invitations a batch at a time (their
contacts in one intake.get_contacts), and a redelivered invitation sends nothing twice."""
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from services.intake.service import IntakeService
from services.notify.service import NotifyService
from services.survey.service import SurveyService
from shared.messaging import EventPublisher
from tests.helpers import wait_until, wait_until_prepared

pytestmark = pytest.mark.broker

HOUSEHOLDS = 120
NOW = datetime.now(UTC).replace(microsecond=0)


def sent_invitations(listener, round_id):
    return [event for event in listener.of_type("notification_sent", ref=round_id)
            if event["data"]["template"] == "survey_invitation"]


def test_every_household_hears_of_a_round_once_its_contacts_looked_up_by_the_batch(
        service_config, container_factory, listener, monkeypatch):
    config = {**service_config, "SURVEY_ROUND_WORK_SECONDS": 0.1, "NOTIFY_QUIET_HOURS": "",
              "SURVEY_POLICY": {"round_batch_size": 50}}   # issued in 3 batches
    intake = container_factory(IntakeService, config)
    asked = {"get_contact": 0, "get_contacts": 0}

    def counting(name):
        original = getattr(IntakeService, name)

        def counted(self, *args, **kwargs):
            asked[name] += 1
            return original(self, *args, **kwargs)
        return counted
    for name in asked:   # (the entrypoints are bound already: the worker calls these)
        monkeypatch.setattr(IntakeService, name, counting(name))
    intake.start()
    container_factory(SurveyService, config).start()
    container_factory(NotifyService, config).start()
    with ClusterRpcProxy(config, timeout=30) as rpc:
        rpc.intake.import_households("estate-a", [
            {"household_id": f"h-{n:03d}", "building": "1", "unit": "1", "room": f"{n:03d}",
             "occupied": True, "contacts": [{"name": "业主", "phone": f"138{n:08d}"}]}
            for n in range(HOUSEHOLDS)], estate={"name": "测试小区"})
        round_ = wait_until_prepared(rpc, rpc.survey.create_round({
            "title": "2026 上半年满意度调查", "estate_ids": ["estate-a"],
            "opens_at": NOW.isoformat(), "closes_at": (NOW + timedelta(days=14)).isoformat(),
            "categories": ["cleaning", "order"]}))
    rid = round_["id"]

    wait_until(lambda: len(sent_invitations(listener, rid)) >= HOUSEHOLDS, timeout=60,
               message="every household invited")
    told = sorted(event["data"]["recipient"] for event in sent_invitations(listener, rid))
    assert told == [f"h-{n:03d}" for n in range(HOUSEHOLDS)]
    assert asked["get_contact"] == 0
    assert 1 <= asked["get_contacts"] <= HOUSEHOLDS // 10   # a batch a call, not one each

    # the broker hands every invitation out again (acks lost): nothing is sent twice
    issued = listener.of_type("survey_invitation_issued", round_id=rid)
    assert len(issued) == HOUSEHOLDS
    EventPublisher(config).publish_batch(issued)
    eventlet.sleep(2)
    assert len(sent_invitations(listener, rid)) == HOUSEHOLDS
