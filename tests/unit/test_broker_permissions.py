"""deploy/rabbitmq/definitions.json: each service's RabbitMQ user may touch what its code
touches (shared/topology.py and nameko's RPC names), and not the others' queues or events.

A change of topology, of a queue's arguments or of who publishes must keep these true,
or `make up` would start services that the broker refuses. What each AMQP operation
needs is RabbitMQ's access table: declaring configures (a queue with a dead-letter
exchange also writes that exchange and reads the queue), binding writes the queue and
reads the exchange, publishing writes the exchange, consuming reads the queue.
"""
import json
import re
import uuid
from pathlib import Path

import pytest
from kombu import Queue
from nameko.rpc import RPC_QUEUE_TEMPLATE, RPC_REPLY_QUEUE_TEMPLATE, get_rpc_exchange
from nameko.standalone.rpc import StandaloneProxyBase

from services.gateway.dependencies import AccountStore
from shared import topology
from shared.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = json.loads((ROOT / "deploy/rabbitmq/definitions.json").read_text())
SERVICES = tuple(topology.SUBSCRIPTIONS)
USERS = (*SERVICES, "gateway")
DEFAULT_EXCHANGE = "amq.default"      # the nameless exchange, as permissions name it
# the command-line tools (huifang-users, huifang-survey, ...) call as this
TOOL = StandaloneProxyBase.ServiceContainer.service_name
CONFIGS = {"config.yaml": load_config(),
           "the suite's": load_config(EVENT_RETRY_DELAYS_MS=[100, 200])}


def permissions(user: str) -> dict:
    [entry] = [entry for entry in DEFINITIONS["permissions"] if entry["user"] == user]
    return entry


def allowed(user: str, kind: str, name: str) -> bool:
    """RabbitMQ's check: the regex searched (it anchors nothing itself) in the name."""
    return re.search(permissions(user)[kind], name) is not None


def needs(user: str, config) -> dict[str, set[str]]:
    """The names each permission of ``user`` must cover for its service to run."""
    rpc_exchange = get_rpc_exchange(config).name
    rpc_queues = {RPC_QUEUE_TEMPLATE.format(user),
                  RPC_REPLY_QUEUE_TEMPLATE.format(user, uuid.uuid4()),
                  RPC_REPLY_QUEUE_TEMPLATE.format(TOOL, uuid.uuid4())}
    # declared, bound to nameko's exchange, consumed; calls and replies published on it
    need = {kind: {rpc_exchange, *rpc_queues} for kind in ("configure", "write", "read")}
    if user not in topology.SUBSCRIPTIONS:
        return need
    # the whole topology, declared before anything is published
    for entity in topology.declarations(config):
        need["configure"].add(entity.name)
        if not isinstance(entity, Queue):
            continue
        if entity.exchange.name:                                  # bound
            need["write"].add(entity.name)
            need["read"].add(entity.exchange.name)
        if "x-dead-letter-exchange" in (entity.queue_arguments or {}):
            need["write"].add(entity.queue_arguments["x-dead-letter-exchange"] or DEFAULT_EXCHANGE)
            need["read"].add(entity.name)
    need["write"] |= {
        topology.get_event_exchange(user, config).name,           # its events
        *(topology.retry_exchange_name(user, delay) for delay in topology.retry_delays(config)),
        DEFAULT_EXCHANGE,                                          # to its dead-letter queue
    }
    need["read"] |= {topology.queue_name(user, *subscription)     # the events it handles
                     for subscription in topology.SUBSCRIPTIONS[user]}
    need["read"].add(topology.dead_letter_queue_name(user))        # huifang-dlq
    return need


def test_one_user_per_service_and_the_gateway_in_the_huifang_vhost():
    assert DEFINITIONS["vhosts"] == [{"name": "huifang"}]
    assert sorted(user["name"] for user in DEFINITIONS["users"]) == sorted(USERS)
    assert sorted(entry["user"] for entry in DEFINITIONS["permissions"]) == sorted(USERS)
    assert {entry["vhost"] for entry in DEFINITIONS["permissions"]} == {"huifang"}
    for user in DEFINITIONS["users"]:
        assert user["tags"] == []                 # no management UI, no administrator
        assert user["password_hash"] == ""        # passwords come from the environment
    assert "guest" not in json.dumps(DEFINITIONS)


@pytest.mark.parametrize("config_name", CONFIGS)
@pytest.mark.parametrize("user", USERS)
def test_each_user_may_touch_every_name_its_service_touches(user, config_name):
    for kind, names in needs(user, CONFIGS[config_name]).items():
        refused = sorted(name for name in names if not allowed(user, kind, name))
        assert not refused, f"{user} may not {kind} {refused}"


@pytest.mark.parametrize("user", USERS)
def test_no_user_may_publish_another_services_events_or_take_its_messages(user):
    config = CONFIGS["config.yaml"]
    for other in (service for service in SERVICES if service != user):
        events = topology.get_event_exchange(other, config).name
        assert not allowed(user, "write", events), f"{user} could forge {other}'s events"
        theirs = {topology.queue_name(other, *subscription)
                  for subscription in topology.SUBSCRIPTIONS[other]}
        theirs |= {topology.dead_letter_queue_name(other), RPC_QUEUE_TEMPLATE.format(other),
                   RPC_REPLY_QUEUE_TEMPLATE.format(other, uuid.uuid4())}
        taken = sorted(name for name in theirs if allowed(user, "read", name))
        assert not taken, f"{user} could consume {other}'s {taken}"
    assert not allowed(user, "configure", DEFAULT_EXCHANGE)
    assert not allowed(user, "configure", "amq.topic")


def test_the_gateway_publishes_nothing_so_touches_no_part_of_the_topology():
    assert AccountStore().events is False         # it declares no topology at start
    for entity in topology.declarations(CONFIGS["config.yaml"]):
        for kind in ("configure", "write", "read"):
            assert not allowed("gateway", kind, entity.name), (kind, entity.name)
    assert not allowed("gateway", "write", DEFAULT_EXCHANGE)


def test_the_patterns_are_anchored():
    """Unanchored, `intake\\.events` would also allow `evil-intake.events-x`."""
    for entry in DEFINITIONS["permissions"]:
        for kind in ("configure", "write", "read"):
            assert entry[kind].startswith("^(") and entry[kind].endswith(")$"), entry
    assert not allowed("intake", "write", "x-intake.events")
    assert not allowed("intake", "write", "intake.events.x")
