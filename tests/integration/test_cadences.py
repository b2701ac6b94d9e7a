"""Cadences kept on the real broker: a household moving in reaches revisit and gets its
routine visit once, its key-customer flag hands its visits to a supervisor, and a survey
period without a closed round reaches notify and is told to the estate manager and
headquarters exactly once — two instances of each consumer and timer running."""
from datetime import UTC, datetime

import eventlet
import pytest
from nameko.rpc import rpc as plain_rpc
from nameko.standalone.rpc import ServiceRpcProxy

from services.intake.service import IntakeService
from services.notify.service import NotifyService
from services.revisit.service import RevisitService
from services.survey.service import SurveyService
from shared.envelope import new_event
from shared.messaging import EventPublisher
from tests.helpers import wait_until

pytestmark = pytest.mark.broker

ESTATE = "estate-1"
STAFF = [
    {"id": "cs-1", "name": "张助理", "roles": ["staff"], "phone": "13900000002"},
    {"id": "sup-1", "name": "李主管", "roles": ["supervisor"], "phone": "13900000001"},
    {"id": "mgr-1", "name": "陈经理", "roles": ["manager"], "phone": "13900000009"},
    {"id": "hq-1", "name": "总部刘", "roles": ["hq_analyst"], "phone": "13900000030"},
]


def household(household_id, occupied=True, **extra):
    return {"household_id": household_id, "building": "1", "unit": "2", "room": "301",
            "occupied": occupied, "contacts": [{"name": "王芳", "phone": "13812345678"}],
            **extra}


def routine_visits(config):
    with ServiceRpcProxy("revisit", config) as revisit:
        return revisit.list_revisits({"estate_id": ESTATE, "kind": "routine"})


def test_moving_in_and_key_customers_reach_revisit_once_with_two_instances(
        service_config, container_factory, listener):
    container_factory(IntakeService, service_config).start()
    for _ in range(2):
        container_factory(RevisitService, service_config).start()
    with ServiceRpcProxy("intake", service_config) as intake:
        intake.import_households(ESTATE, [household("h-1"), household("h-2", occupied=False)],
                                 estate={"name": "测试小区"})
        moved = listener.wait_for("household_moved_in", household_id="h-1")
        assert moved["data"]["key_customer"] is False
        wait_until(lambda: len(routine_visits(service_config)) == 1, timeout=15,
                   message="h-1's routine visit")

        # h-2 moves in, as a key customer (the column of the owner list)
        intake.import_households(ESTATE, [household("h-1"),
                                          household("h-2", key_customer=True)])
        listener.wait_for("household_key_customer_set", household_id="h-2")
        wait_until(lambda: len(routine_visits(service_config)) == 2, timeout=15,
                   message="h-2's routine visit")
        intake.set_key_customer("h-1", True)
        wait_until(lambda: {visit["household_id"]: visit["assigned_role"] for visit in
                            routine_visits(service_config)} == {"h-1": "supervisor",
                                                                "h-2": "supervisor"},
                   timeout=15, message="the key customers' visits handed to a supervisor")
    eventlet.sleep(1)     # both instances had every copy by now
    visits = routine_visits(service_config)
    assert sorted(visit["id"] for visit in visits) == [
        f"rv-routine-{datetime.now(UTC).year}-h-1", f"rv-routine-{datetime.now(UTC).year}-h-2"]
    assert len(listener.of_type("household_moved_in")) == 2


class StubIntake:
    """intake as notify asks it: contacts (which estates there are, survey knows from its
    copies of intake's records: ``announce_estate``)."""

    name = "intake"

    @plain_rpc
    def get_contacts(self, refs):
        return {ref: None for ref in refs}


def announce_estate(config, estate_id=ESTATE):
    """``estate_registered`` as intake announces it: the other services keep a copy."""
    EventPublisher(config).publish(new_event(
        "estate_registered", "intake", estate_id,
        {"name": "测试小区", "company": None, "region": None, "timezone": "Asia/Shanghai",
         "revision": 0}, datetime.now(UTC), key=f"{estate_id}@0"))


def test_a_missed_survey_period_is_told_to_the_manager_and_headquarters_once(
        service_config, container_factory, listener):
    config = {**service_config, "SURVEY_CADENCE_SECONDS": 0.05, "NOTIFY_STAFF": STAFF,
              "NOTIFY_QUIET_HOURS": "", "NOTIFY_DISPATCH_INTERVAL": 0.2}
    container_factory(StubIntake, config).start()
    for service in (NotifyService, NotifyService, SurveyService, SurveyService):
        container_factory(service, config).start()
    announce_estate(config)

    missed = listener.wait_for("survey_cadence_missed", cadence="half_yearly")
    assert missed["estate_id"] == ESTATE
    wait_until(lambda: len(listener.of_type("notification_sent",
                                            template="survey_cadence_missed")) >= 2,
               timeout=20, message="the manager and headquarters told")
    eventlet.sleep(1)     # both timers ran many more passes, both dispatchers too
    assert len(listener.of_type("survey_cadence_missed")) == 1
    with ServiceRpcProxy("notify", config) as notify:
        told = notify.list_deliveries({"template": "survey_cadence_missed"})
    assert sorted(delivery["recipient"] for delivery in told) == ["hq-1", "mgr-1"]
    assert {delivery["status"] for delivery in told} == {"sent"}
    assert {delivery["source_event"] for delivery in told} == {missed["id"]}
    assert missed["data"]["period"] in told[0]["text"]
    assert "/console/surveys/new" in told[0]["text"]
    sent = listener.of_type("notification_sent", template="survey_cadence_missed")
    assert sorted(event["data"]["recipient"] for event in sent) == ["hq-1", "mgr-1"]


def test_survey_keeps_its_cadence_while_intake_is_not_running(
        service_config, container_factory, listener):
    """No intake at all: the cadence timer goes through survey's copies of the estates."""
    config = {**service_config, "SURVEY_CADENCE_SECONDS": 0.05}
    container_factory(SurveyService, config).start()
    announce_estate(config, "estate-alone")
    missed = listener.wait_for("survey_cadence_missed", cadence="half_yearly")
    assert missed["estate_id"] == "estate-alone"
