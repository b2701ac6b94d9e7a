"""Operators' view of the dead-letter queues: list what failed, replay it.

    huifang-dlq list revisit
    huifang-dlq replay revisit --id <event id>     (or --all)

Listing takes messages without acknowledging them and closes the channel, so
they all go back in order. Replay republishes (with confirms) each chosen
event to the queue it failed in, with its attempts reset, then acks it.
"""
import argparse
import json
import sys
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from kombu import Connection, Producer

from shared import topology
from shared.config import load_config
from shared.messaging import ATTEMPT_HEADER, ERROR_HEADER, FAILED_AT_HEADER, QUEUE_HEADER


def _take(channel: Any, service: str, limit: int, config: Mapping[str, Any]) -> list[Any]:
    queue = topology.dead_letter_queue(service, config)(channel)
    queue.declare()
    messages: list[Any] = []
    while len(messages) < limit:
        message = queue.get(no_ack=False)
        if message is None:
            break
        messages.append(message)
    return messages


def _describe(message: Any) -> dict[str, Any]:
    headers = message.headers or {}
    body = message.payload
    envelope = body if isinstance(body, dict) else {}   # a malformed one may be anything
    return {
        "event_id": message.properties.get("message_id") or envelope.get("id"),
        "type": envelope.get("type"),
        "queue": headers.get(QUEUE_HEADER),
        "attempts": headers.get(ATTEMPT_HEADER),
        "failed_at": headers.get(FAILED_AT_HEADER),
        "error": headers.get(ERROR_HEADER),
        "body": body,
    }


def list_dead_letters(config: Mapping[str, Any], service: str,
                      limit: int = 1000) -> list[dict[str, Any]]:
    with Connection(config["AMQP_URI"]) as connection:
        channel = connection.channel()
        try:
            return [_describe(message) for message in _take(channel, service, limit, config)]
        finally:
            channel.close()  # unacked: every message returns to the queue


def replay(config: Mapping[str, Any], service: str, event_ids: Collection[str] | None = None,
           limit: int = 1000) -> int:
    """Send dead letters back to their queues; all of them when ``event_ids`` is None."""
    replayed = 0
    with Connection(config["AMQP_URI"], transport_options={"confirm_publish": True}) as connection:
        channel = connection.channel()
        producer = Producer(connection.channel())
        try:
            for message in _take(channel, service, limit, config):
                described = _describe(message)
                if event_ids is not None and described["event_id"] not in event_ids:
                    continue
                if not described["queue"]:
                    continue  # not from a handler queue: leave it for a person
                headers = {key: value for key, value in (message.headers or {}).items()
                           if not key.startswith("x-huifang-") and key != "x-death"}
                producer.publish(
                    message.body, exchange="", routing_key=described["queue"],
                    headers=headers, content_type=message.content_type,
                    content_encoding=message.content_encoding, delivery_mode=2,
                    message_id=message.properties.get("message_id"),
                )
                message.ack()
                replayed += 1
        finally:
            channel.close()
    return replayed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="huifang-dlq", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="nameko config file (config.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("list", help="show the dead letters of a service")
    listing.add_argument("service", choices=sorted(topology.SUBSCRIPTIONS))
    again = sub.add_parser("replay", help="send dead letters back to their queues")
    again.add_argument("service", choices=sorted(topology.SUBSCRIPTIONS))
    chosen = again.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--id", action="append", dest="ids", help="event id (repeatable)")
    chosen.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.command == "list":
        letters = list_dead_letters(config, args.service)
        for letter in letters:
            print(json.dumps({key: value for key, value in letter.items() if key != "body"},
                             ensure_ascii=False))
        print(f"{len(letters)} dead letter(s) in {topology.dead_letter_queue_name(args.service)}",
              file=sys.stderr)
    else:
        count = replay(config, args.service, None if args.all else set(args.ids))
        print(f"replayed {count} event(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
