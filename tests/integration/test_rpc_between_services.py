"""RPC between services over the real broker: a caller never waits for ever, a
lost optimistic-lock race reaches it as an error to retry, not as a crash, and the
person acting travels with the calls."""
import logging

import eventlet
import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ClusterRpcProxy, ServiceRpcProxy

from services.intake.service import IntakeService
from services.notify.service import NotifyService
from shared.actor import ACTOR_CONTEXT_KEY, Actor
from shared.errors import InvalidInput
from shared.rpc import RpcProxy, rpc
from shared.store import ConcurrentUpdate

pytestmark = pytest.mark.broker


class Sleepy:
    name = "sleepy"

    @rpc
    def answer(self, seconds):
        eventlet.sleep(seconds)
        return "done"

    @rpc
    def contended(self):
        raise ConcurrentUpdate("complaint 'cmp-1' changed meanwhile")

    @rpc
    def refuse(self):
        raise InvalidInput({"seconds": ["Not a valid number."]})


class Caller:
    name = "caller"
    sleepy = RpcProxy("sleepy")

    @rpc
    def ask(self, seconds):
        return self.sleepy.answer(seconds)

    @rpc
    def waiting_for(self):
        return len(self.sleepy.reply_listener.waiting)


@pytest.fixture
def caller(service_config, container_factory):
    service_config["RPC_TIMEOUT_SECONDS"] = 0.5
    for service in (Sleepy, Caller):
        container_factory(service, service_config).start()
    with ServiceRpcProxy("caller", service_config, timeout=10) as proxy:
        yield proxy


def test_a_prompt_answer_comes_through(caller):
    assert caller.ask(0) == "done"


def test_a_service_that_does_not_answer_in_time_raises_rpc_timeout(caller):
    with pytest.raises(RemoteError) as raised:
        caller.ask(3)
    assert raised.value.exc_type == "RpcTimeout"
    assert "sleepy.answer did not answer within 0.5 s" in str(raised.value)
    # the late reply is not waited for any more, so nothing piles up
    assert caller.waiting_for() == 0


@pytest.mark.parametrize(("method", "exc_type"), [("contended", "ConcurrentUpdate"),
                                                   ("refuse", "InvalidInput")])
def test_errors_meant_for_the_caller_are_logged_as_warnings_not_crashes(
        caller, service_config, caplog, method, exc_type):
    with ServiceRpcProxy("sleepy", service_config, timeout=10) as sleepy, \
            pytest.raises(RemoteError) as raised:
        getattr(sleepy, method)()
    assert raised.value.exc_type == exc_type
    worker_logs = [r for r in caplog.records if r.name == "nameko.containers"]
    assert worker_logs and all(r.levelno == logging.WARNING for r in worker_logs)


def test_the_person_acting_travels_in_the_context_data_and_history_names_them(
        service_config, container_factory):
    for service in (IntakeService, NotifyService):
        container_factory(service, service_config).start()
    with ServiceRpcProxy("intake", service_config, timeout=15) as intake:
        intake.import_households("estate-1", [{
            "household_id": "h-1", "building": "1", "unit": "2", "room": "301",
            "occupied": True, "contacts": [{"name": "王芳", "phone": "13812345678"}]}], estate={"name": "测试小区"})
    person = Actor("u-cs", ("cs_staff",), ("estate-1",))
    with ClusterRpcProxy(service_config, timeout=15,
                         context_data={ACTOR_CONTEXT_KEY: person.to_context()}) as rpc:
        assert rpc.intake.ping() == {"service": "intake"}
        complaint = rpc.intake.register_complaint({
            "estate_id": "estate-1", "household_id": "h-1", "channel": "hotline",
            "category": "cleaning", "content": "楼道垃圾三天没人清理", "staff_id": "s-typed"})
        acknowledged = rpc.intake.acknowledge_complaint(
            complaint["id"], {"staff_id": "s-typed", "note": "已致歉"})
        assert [line["by"] for line in acknowledged["history"]] == ["u-cs", "u-cs"]
        with pytest.raises(RemoteError) as refused:   # a person never reads a full number
            rpc.intake.get_contact("h-1")
        assert refused.value.exc_type == "Forbidden"
        # notify asks intake in its own name, so a person's message still reaches the owner
        delivery = rpc.notify.send({
            "channel": "console", "to": "h-1", "template": "complaint_received",
            "params": {"complaint_id": complaint["id"], "reply_due": "2026-10-12 10:30"}})
        assert (delivery["status"], delivery["address"], delivery["requested_by"]) == (
            "sent", "138****5678", "u-cs")
