"""A broker connection reset while a message is settled must not kill the service:
the broker takes an unacked message back and delivers it again."""
from unittest import mock

import pytest

from shared.consumer import BrokerSafeQueueConsumer
from shared.rpc import _ReplyListener, _RpcConsumer


def message_whose_socket_is_gone(error):
    message = mock.Mock()
    message.ack.side_effect = error
    message.requeue.side_effect = error
    return message


@pytest.mark.parametrize("error", [ConnectionResetError(104, "Connection reset by peer"),
                                   BrokenPipeError(32, "Broken pipe")])
def test_settling_over_a_reset_connection_is_left_to_the_broker(error, caplog):
    consumer = BrokerSafeQueueConsumer()
    message = message_whose_socket_is_gone(error)

    consumer.ack_message(message)
    consumer.requeue_message(message)

    assert message.ack.called and message.requeue.called
    assert caplog.text.count("the broker redelivers") == 2


def test_other_errors_still_surface():
    consumer = BrokerSafeQueueConsumer()
    with pytest.raises(ValueError):
        consumer.ack_message(message_whose_socket_is_gone(ValueError("a bug")))


def test_a_reply_lost_with_the_connection_leaves_the_request_to_be_redelivered(caplog):
    consumer = _RpcConsumer()
    consumer.container = mock.Mock(config={"AMQP_URI": "pyamqp://guest:guest@localhost//"},
                                   accept=["json"])
    message = mock.Mock()
    with mock.patch("shared.rpc._Responder") as responder:
        responder.return_value.send_response.side_effect = BrokenPipeError(32, "Broken pipe")
        assert consumer.handle_result(message, "the result", None) == ("the result", None)
    assert not message.ack.called               # unacked: the broker hands it out again
    assert "reply lost with the broker connection" in caplog.text


def test_a_reply_goes_to_its_caller_from_the_consumer_and_requests_get_a_worker():
    """An RPC reply is only acked and handed on: run in the consumer itself, with no thread
    (and no wait for one) of its own; anything else keeps nameko's thread per message."""
    consumer = BrokerSafeQueueConsumer()
    consumer.container = mock.Mock()
    listener = _ReplyListener()
    listener.queue_consumer = consumer
    waiting = listener.get_reply_event("corr-1")
    reply = mock.Mock(properties={"correlation_id": "corr-1"})

    consumer.handle_message(listener, {"result": 1, "error": None}, reply)

    assert waiting.ready() and waiting.wait() == {"result": 1, "error": None}
    assert reply.ack.called
    assert not consumer.container.spawn_managed_thread.called

    request = mock.Mock(delivery_info={"routing_key": "intake.get_complaint"})
    consumer.handle_message(_RpcConsumer(), {"args": [], "kwargs": {}}, request)
    assert consumer.container.spawn_managed_thread.called
