"""notify's staff duties and owner notices on the real broker: the event reaches notify
through its queue, and a delivery to the right person is logged, and sent, exactly once —
with two notify instances taking copies of the same event at the same time too."""
from datetime import UTC, datetime

import eventlet
import pytest
from nameko.rpc import rpc as plain_rpc
from nameko.standalone.rpc import ServiceRpcProxy

from services.intake.service import IntakeService
from services.notify.service import NotifyService
from shared.envelope import new_event
from shared.messaging import EventPublisher
from tests.helpers import wait_until

pytestmark = pytest.mark.broker

ESTATE = "estate-1"
STAFF = [
    {"id": "eng-3", "name": "王工", "roles": ["staff"], "department": "工程部",
     "phone": "13900000003"},
    {"id": "sup-1", "name": "李主管", "roles": ["supervisor"], "phone": "13900000001"},
    {"id": "mgr-1", "name": "陈经理", "roles": ["manager"], "phone": "13900000009"},
    {"id": "mgr-2", "name": "赵经理", "roles": ["manager", "supervisor"], "phone": "13900000010"},
    {"id": "cm-1", "name": "周总", "roles": ["company_manager"], "phone": "13900000020"},
]
HOUSEHOLDS = [{"household_id": "h-1", "building": "1", "unit": "2", "room": "301",
               "occupied": True, "contacts": [{"name": "王芳", "phone": "13812345678"}]}]


@pytest.fixture
def notify_config(service_config):
    # staff of every estate; no quiet hours, so that owners' messages go whenever this runs
    return {**service_config, "NOTIFY_STAFF": STAFF, "NOTIFY_QUIET_HOURS": "",
            "NOTIFY_DISPATCH_INTERVAL": 0.2}


def deliveries(config, **filters):
    with ServiceRpcProxy("notify", config) as notify:
        return notify.list_deliveries(filters)


def told_once_by_two_instances(config, container_factory, listener, event, template, told):
    """``event`` published four times (redelivered copies) to two notify instances: each
    of ``told`` (recipient ids) gets one ``template`` message, sent; the deliveries."""
    container_factory(StubIntake, config).start()
    for _ in range(2):
        container_factory(NotifyService, config).start()
    publisher = EventPublisher(config)
    for _ in range(4):    # redelivered copies, taken by both instances at once
        publisher.publish(event)

    wait_until(lambda: len(listener.of_type("notification_sent", template=template))
               >= len(told), timeout=15, message="everyone told")
    eventlet.sleep(1)     # every copy handled, both dispatchers ran meanwhile
    logged = deliveries(config, template=template)
    assert sorted(d["recipient"] for d in logged) == told
    assert {d["status"] for d in logged} == {"sent"}
    assert {d["source_event"] for d in logged} == {event["id"]}
    assert len(listener.of_type("notification_sent", template=template)) == len(told)
    return logged


class StubIntake:
    """intake as notify asks it: contacts and the estate's occupied households."""

    name = "intake"

    @plain_rpc
    def get_contact(self, ref):
        household_id = ref if ref.startswith("h-") else "h-1"
        return {"household_id": household_id, "estate_id": ESTATE, "name": "王芳",
                "phone": f"138123456{int(household_id[2:]):02d}"}

    @plain_rpc
    def get_contacts(self, refs):
        return {ref: self.get_contact(ref) for ref in refs}

    @plain_rpc
    def list_households(self, estate_id, filters=None):
        return [{"id": f"h-{number}"} for number in range(1, self.households + 1)]

    households = 5


class CrowdedIntake(StubIntake):
    """An estate of more households than one dispatcher batch (see below)."""

    households = 450


def test_two_instances_tell_each_supervisor_and_manager_of_a_repeat_once(
        notify_config, container_factory, listener):
    container_factory(StubIntake, notify_config).start()
    first = container_factory(NotifyService, notify_config)
    second = container_factory(NotifyService, notify_config)
    first.start()
    second.start()
    now = datetime.now(UTC)
    repeated = new_event("complaint_repeated", "intake", ESTATE, {
        "complaint_id": "cmp-2", "repeat_of": "cmp-1", "household_id": "h-1",
        "category": "cleaning", "special_measures_due": now, "summary": "楼道垃圾还是没人清理"},
        now)
    publisher = EventPublisher(notify_config)
    for _ in range(6):   # redelivered copies, taken by both instances at once
        publisher.publish(repeated)

    # supervisors and managers together: mgr-2 is both, and hears once
    wait_until(lambda: len(listener.of_type("notification_sent", template="complaint_repeated"))
               >= 3, timeout=15, message="all three told")
    eventlet.sleep(1)    # every copy handled, the dispatchers of both ran meanwhile
    told = deliveries(notify_config, template="complaint_repeated")
    assert sorted(d["recipient"] for d in told) == ["mgr-1", "mgr-2", "sup-1"]
    assert {d["status"] for d in told} == {"sent"}
    assert {d["source_event"] for d in told} == {repeated["id"]}
    sent = listener.of_type("notification_sent", template="complaint_repeated")
    assert sorted(event["data"]["recipient"] for event in sent) == ["mgr-1", "mgr-2", "sup-1"]
    assert "/console/complaints/cmp-2" in told[0]["text"]


def test_two_instances_tell_every_household_of_a_done_rectification_once(
        notify_config, container_factory, listener):
    container_factory(StubIntake, notify_config).start()
    for _ in range(2):
        container_factory(NotifyService, notify_config).start()
    now = datetime.now(UTC)
    done = new_event("rectification_done", "survey", ESTATE, {
        "rectification_id": "rect-1", "round_id": "rnd-1", "category": "greening",
        "department": "绿化部", "due_at": now, "action": "补种中心花园草坪", "status": "done"},
        now)
    publisher = EventPublisher(notify_config)
    for _ in range(3):
        publisher.publish(done)

    wait_until(lambda: len(listener.of_type("notification_sent", template="rectification_done"))
               >= 5, timeout=20, message="every household told")
    eventlet.sleep(1)
    told = deliveries(notify_config, template="rectification_done")
    assert sorted(d["recipient"] for d in told) == [f"h-{n}" for n in range(1, 6)]
    assert {d["status"] for d in told} == {"sent"}
    assert len(listener.of_type("notification_sent", template="rectification_done")) == 5


def test_a_batch_of_events_is_published_with_one_confirm_wait(notify_config, listener):
    publisher = EventPublisher(notify_config)
    now = datetime.now(UTC)
    events = [new_event("notification_sent", "notify", ESTATE, {
        "delivery_id": f"d-{number}", "channel": "console", "template": "rectification_done",
        "recipient": f"h-{number}", "ref": "rect-9"}, now) for number in range(300)]
    publisher.publish_batch(events)
    publisher.publish_batch(events[:1])     # the pooled connection serves the next batch
    wait_until(lambda: len(listener.of_type("notification_sent", ref="rect-9")) >= 301,
               timeout=15, message="every event of the batch")
    received = listener.of_type("notification_sent", ref="rect-9")
    assert [event["id"] for event in received] == [event["id"] for event in events + events[:1]]


def test_two_instances_send_a_broadcast_larger_than_a_batch_once_each_confirmed_in_batches(
        notify_config, container_factory, listener, caplog):
    # the console at 100 messages a second, a 4 s claim: batches of 200 (half a claim's worth)
    notify_config = {**notify_config, "NOTIFY_CLAIM_SECONDS": 4, "NOTIFY_CHANNEL_SETTINGS": {
        "console": {"rate_per_second": 100}}}
    container_factory(CrowdedIntake, notify_config).start()
    for _ in range(2):
        container_factory(NotifyService, notify_config).start()
    now = datetime.now(UTC)
    done = new_event("rectification_done", "survey", ESTATE, {
        "rectification_id": "rect-2", "round_id": "rnd-1", "category": "greening",
        "department": "绿化部", "due_at": now, "action": "补种中心花园草坪", "status": "done"},
        now)
    EventPublisher(notify_config).publish(done)

    # each notification_sent reached the broker through a batch publish (one confirm a batch)
    wait_until(lambda: len(listener.of_type("notification_sent", ref="rect-2")) >= 450,
               timeout=120, message="every household told")
    eventlet.sleep(1)
    sent = listener.of_type("notification_sent", ref="rect-2")
    assert len({event["data"]["delivery_id"] for event in sent}) == len(sent) == 450
    told = deliveries(notify_config, ref="rect-2", status="sent", limit=1000)
    assert len(told) == 450 and not [d for d in told if d.get("outbox")]
    assert "stay in the outbox" not in caplog.text   # published by the batches, not the relay


def test_an_assignment_made_in_intake_reaches_the_department_and_the_owner(
        notify_config, container_factory, listener):
    container_factory(IntakeService, notify_config).start()   # the real publisher
    container_factory(NotifyService, notify_config).start()
    with ServiceRpcProxy("intake", notify_config) as intake:
        intake.import_households(ESTATE, HOUSEHOLDS, estate={"name": "测试小区"})
        complaint = intake.register_complaint({
            "estate_id": ESTATE, "household_id": "h-1", "channel": "hotline",
            "category": "cleaning", "content": "楼道垃圾三天没人清理，电话13812345678"})
        intake.acknowledge_complaint(complaint["id"], {"staff_id": "cs-1", "note": "已致歉"})
        intake.assign_complaint(complaint["id"], {"department": "工程部"})
    assigned = listener.wait_for("complaint_assigned", complaint_id=complaint["id"])
    assert assigned["data"]["summary"].startswith("楼道垃圾三天没人清理")
    assert "13812345678" not in str(assigned)

    wait_until(lambda: len(deliveries(notify_config, ref=complaint["id"], status="sent")) >= 3,
               timeout=15, message="the acknowledgement, the department and the owner told")
    eventlet.sleep(0.5)
    by_template = {}
    for delivery in deliveries(notify_config, ref=complaint["id"]):
        by_template.setdefault(delivery["template"], []).append(delivery)
    [staff] = by_template["complaint_assigned"]
    assert staff["recipient"] == "eng-3" and "楼道垃圾三天没人清理" in staff["text"]
    assert f"/console/complaints/{complaint['id']}" in staff["text"]
    [owner] = by_template["complaint_routed"]
    assert owner["recipient"] == "h-1" and "已交由工程部处理" in owner["text"]
    assert "/c/" in owner["text"]                 # the owner's own page


def test_two_instances_each_warn_of_an_approaching_deadline_once(
        notify_config, container_factory, listener):
    # the answer is due 3 days after receipt and warned 3 days before: at once
    config = {**notify_config, "OVERDUE_SCAN_SECONDS": 0.05, "COMPLAINT_POLICY": {
        **notify_config["COMPLAINT_POLICY"], "warn_before": {"reply": "3d"}}}
    for service in (IntakeService, IntakeService, NotifyService, NotifyService):
        container_factory(service, config).start()
    with ServiceRpcProxy("intake", config) as intake:
        intake.import_households(ESTATE, HOUSEHOLDS, estate={"name": "测试小区"})
        complaint = intake.register_complaint({
            "estate_id": ESTATE, "household_id": "h-1", "channel": "hotline",
            "category": "cleaning", "content": "楼道垃圾三天没人清理"})

    # no one of 环境部 in the directory: the supervisors (sup-1, and mgr-2 who is one too)
    wait_until(lambda: len(listener.of_type("notification_sent",
                                            template="complaint_deadline_approaching")) >= 2,
               timeout=15, message="the supervisors warned")
    eventlet.sleep(1)    # both timers and both dispatchers kept running meanwhile
    [warning] = listener.of_type("complaint_deadline_approaching")
    assert (warning["data"]["complaint_id"], warning["data"]["deadline"]) == (
        complaint["id"], "reply")
    told = deliveries(config, template="complaint_deadline_approaching")
    assert sorted(d["recipient"] for d in told) == ["mgr-2", "sup-1"]
    assert {d["status"] for d in told} == {"sent"}
    assert {d["source_event"] for d in told} == {warning["id"]}
    assert len(listener.of_type("notification_sent",
                                template="complaint_deadline_approaching")) == 2
    assert "楼道垃圾三天没人清理" in told[0]["text"] and "即将到期" in told[0]["text"]
    assert f"/console/complaints/{complaint['id']}" in told[0]["text"]
