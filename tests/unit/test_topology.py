"""The durable queues' type, as QUEUE_TYPE chooses it (the broker tests declare both)."""
import pytest

from shared import topology


@pytest.mark.parametrize("config, arguments", [
    ({}, {}), ({"QUEUE_TYPE": "classic"}, {}), ({"QUEUE_TYPE": "quorum"}, {"x-queue-type": "quorum"})])
def test_every_durable_queue_has_the_configured_type(config, arguments):
    queues = [entity for entity in topology.declarations(config) if hasattr(entity, "queue_arguments")]
    assert queues and all(
        {key: value for key, value in (queue.queue_arguments or {}).items()
         if key == "x-queue-type"} == arguments for queue in queues)


def test_an_unknown_queue_type_stops_the_declaration():
    with pytest.raises(ValueError, match="QUEUE_TYPE must be one of classic, quorum"):
        topology.declarations({"QUEUE_TYPE": "stream"})
