"""RPC between services over the real broker: a caller never waits for ever, and a
lost optimistic-lock race reaches it as an error to retry, not as a crash."""
import logging

import eventlet
import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy

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
        return len(self.sleepy.reply_listener._reply_events)


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
