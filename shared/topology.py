"""Who listens to what: every queue, binding, retry and dead-letter queue.

Every service declares the whole topology when it starts, before it can
publish, so an event sent before its consumer has ever run waits in the
consumer's durable queue instead of being dropped by an exchange with no
queue bound. A handler may only consume a subscription listed here.
"""
from collections.abc import Mapping
from typing import Any

from kombu import Exchange, Queue
from nameko.standalone.events import get_event_exchange

# consumer service -> the (publishing service, event type) pairs it handles
SUBSCRIPTIONS = {
    "intake": [
        ("revisit", "revisit_unsatisfied"),
        ("revisit", "revisit_completed"),       # the complaint's record keeps its revisits
    ],
    "revisit": [
        ("intake", "complaint_closed"),
        ("intake", "complaint_reopened"),
        ("intake", "work_order_completed"),
        ("revisit", "revisit_unsatisfied"),     # a work order's or routine's: a follow-up
        ("intake", "household_moved_in"),
        ("intake", "household_key_customer_set"),
        ("intake", "estate_registered"),        # the copy of estates' names and zones
        ("intake", "estate_updated"),
    ],
    "notify": [
        ("intake", "complaint_registered"),
        ("revisit", "revisit_scheduled"),
        ("intake", "complaint_assigned"),
        ("intake", "complaint_overdue"),
        ("intake", "complaint_deadline_approaching"),
        ("intake", "complaint_escalated"),
        ("intake", "complaint_instruction_recorded"),
        ("intake", "complaint_closed"),
        ("revisit", "revisit_booked"),
        ("revisit", "revisit_completed"),
        ("survey", "survey_invitation_issued"),
        ("survey", "survey_reminder_due"),
        ("survey", "survey_report_published"),
        ("survey", "rectification_overdue"),
        ("intake", "complaint_repeated"),
        ("intake", "complaint_resolved"),
        ("intake", "complaint_review_requested"),
        ("intake", "complaint_reviewed"),
        ("revisit", "revisit_overdue"),
        ("survey", "survey_round_closed"),
        ("survey", "rectification_created"),
        ("survey", "rectification_done"),
        ("revisit", "revisit_followup_opened"),
        ("revisit", "revisit_followup_answered"),
        ("revisit", "revisit_followup_overdue"),
        ("survey", "survey_cadence_missed"),
        ("intake", "estate_registered"),
        ("intake", "estate_updated"),
    ],
    "survey": [
        ("intake", "estate_registered"),
        ("intake", "estate_updated"),
    ],
}

DEFAULT_RETRY_DELAYS_MS = (1_000, 10_000, 60_000)
# The durable queues' type (QUEUE_TYPE): classic on one node; quorum on a RabbitMQ
# cluster, where each queue is replicated and survives the loss of a node. The topology,
# retries and dead letters are the same for both. A queue keeps the type it was first
# declared with: changing it on a running broker means new queues (drain the old first).
QUEUE_TYPES = ("classic", "quorum")


def queue_name(consumer: str, source: str, event_type: str) -> str:
    return f"{consumer}.{source}.{event_type}"


def dead_letter_queue_name(service: str) -> str:
    return f"{service}.dead-letter"


def retry_exchange_name(service: str, delay_ms: int) -> str:
    return f"{service}.retry.{delay_ms}ms"


def queue_type_arguments(config: Mapping[str, Any] | None) -> dict[str, str]:
    """The arguments that give a durable queue the configured ``QUEUE_TYPE``."""
    kind = (config or {}).get("QUEUE_TYPE") or "classic"
    if kind not in QUEUE_TYPES:
        raise ValueError(f"QUEUE_TYPE must be one of {', '.join(QUEUE_TYPES)}, not {kind!r}")
    return {} if kind == "classic" else {"x-queue-type": kind}


def event_queue(consumer: str, source: str, event_type: str, config: Mapping[str, Any],
                ) -> Queue:
    return Queue(
        queue_name(consumer, source, event_type),
        exchange=get_event_exchange(source, config),
        routing_key=event_type,
        durable=True,
        queue_arguments=queue_type_arguments(config),
    )


def dead_letter_queue(service: str, config: Mapping[str, Any]) -> Queue:
    return Queue(dead_letter_queue_name(service), durable=True,
                 queue_arguments=queue_type_arguments(config))


def retry_exchange(service: str, delay_ms: int) -> Exchange:
    return Exchange(retry_exchange_name(service, delay_ms), type="fanout", durable=True)


def retry_queue(service: str, delay_ms: int, config: Mapping[str, Any]) -> Queue:
    """Holds a failed message for ``delay_ms``, then dead-letters it through the
    default exchange with its routing key — the name of the queue it came from."""
    return Queue(
        retry_exchange_name(service, delay_ms),
        exchange=retry_exchange(service, delay_ms),
        durable=True,
        queue_arguments={"x-message-ttl": int(delay_ms), "x-dead-letter-exchange": "",
                         **queue_type_arguments(config)},
    )


def retry_delays(config: Mapping[str, Any]) -> tuple[int, ...]:
    return tuple(int(ms) for ms in config.get("EVENT_RETRY_DELAYS_MS") or DEFAULT_RETRY_DELAYS_MS)


def declarations(config: Mapping[str, Any]) -> list[Exchange | Queue]:
    """Everything to declare, for every service (exchanges first)."""
    entities = [get_event_exchange(service, config) for service in SUBSCRIPTIONS]
    for consumer, subscriptions in SUBSCRIPTIONS.items():
        entities.extend(event_queue(consumer, *pair, config) for pair in subscriptions)
        entities.append(dead_letter_queue(consumer, config))
        for delay in retry_delays(config):
            entities.extend([retry_exchange(consumer, delay),
                             retry_queue(consumer, delay, config)])
    return entities


def declare_all(connection: Any, config: Mapping[str, Any]) -> None:
    channel = connection.default_channel
    for entity in declarations(config):
        entity.maybe_bind(channel)
        entity.declare()
