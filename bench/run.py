"""`make bench`: event-hop and complaint-pipeline throughput, from one run on one broker.

1. bare nameko hop: a trivial ``@event_handler`` consuming events published
   with confirms — the baseline;
2. the same hop through Huifang's reliable handler (envelope validation,
   retry/dead-letter wiring);
3. the complaint pipeline with the four services as separate processes:
   close_complaint -> complaint_closed -> revisit scheduled -> notify logs
   the owner's notice (notification_sent), with p50/p99 latency.

Each run gets its own RabbitMQ vhost (made through the management API).
"""
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet

eventlet.monkey_patch()

import argparse
import logging
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import urlsplit

from nameko.events import event_handler
from nameko.runners import ServiceRunner
from nameko.standalone.events import event_dispatcher
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.rabbit import Client

from shared import topology
from shared.config import load_config
from shared.envelope import new_event
from shared.messaging import EventPublisher, handles
from tests.helpers import EventListener, ServiceProcesses, wait_until

received = []


class BareHop:
    name = "bench_bare"

    @event_handler("benchsrc", "ping")
    def on_ping(self, payload):
        received.append(time.perf_counter())


class ReliableHop:
    name = "bench_reliable"

    @handles("intake", "complaint_closed")
    def on_closed(self, event):
        received.append(time.perf_counter())


def measure_hop(config, service, publish, count):
    received.clear()
    runner = ServiceRunner(config)
    runner.add_service(service)
    runner.start()
    try:
        started = time.perf_counter()
        for index in range(count):
            publish(index)
        wait_until(lambda: len(received) >= count, timeout=300, message="all events handled")
        elapsed = received[-1] - started
    finally:
        runner.stop()
    return count / elapsed


def bare_hop(config, count):
    dispatch = event_dispatcher(config)   # confirms on, like every publisher here
    return measure_hop(config, BareHop, lambda i: dispatch("benchsrc", "ping", {"n": i}), count)


def reliable_hop(config, count):
    topology.SUBSCRIPTIONS["bench_reliable"] = [("intake", "complaint_closed")]
    publisher = EventPublisher(config)
    at = datetime.now(UTC)
    event = new_event("complaint_closed", "intake", "estate-b", {
        "complaint_id": "cmp-b", "household_id": "h-b", "category": "cleaning",
        "severity": "normal", "closed_at": at, "owner_signoff": "none", "closing_no": 1}, at)
    return measure_hop(config, ReliableHop, lambda i: publisher.publish(event), count)


def complaint_pipeline(config, count):
    with tempfile.TemporaryDirectory() as logs:
        processes = ServiceProcesses(config, logs, LOG_LEVEL="WARNING")
        processes.start()
        listener = EventListener(config["AMQP_URI"], sources=("notify",))
        try:
            with ClusterRpcProxy(config, timeout=120) as rpc:
                ids = prepare_complaints(rpc, count)
                closed_at = {}
                started = time.perf_counter()
                pending = []
                for cid in ids:
                    closed_at[cid] = time.perf_counter()
                    pending.append(rpc.intake.close_complaint.call_async(
                        cid, {"closed_by": "cs-1", "owner_signoff": "none"}))
                for reply in pending:
                    reply.result()
                seen = {}
                def all_logged():
                    for event in listener.events:
                        ref = event["data"].get("ref") or ""
                        if event["type"] == "notification_sent" and ref.startswith("rv-"):
                            seen.setdefault(ref[3:].rsplit("-", 1)[0], time.perf_counter())
                    return all(cid in seen for cid in ids)
                wait_until(all_logged, timeout=600, interval=0.01, message="every notice logged")
                finished = max(seen[cid] for cid in ids)
        finally:
            listener.close()
            processes.stop()
    latencies = sorted((seen[cid] - closed_at[cid]) * 1000 for cid in ids)
    return {
        "throughput": count / (finished - started),
        "p50_ms": statistics.median(latencies),
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
    }


def prepare_complaints(rpc, count):
    rpc.intake.import_households("estate-b", [
        {"household_id": f"hb-{n}", "building": str(n % 20), "unit": "1", "room": str(n),
         "occupied": True, "contacts": [{"name": "业主", "phone": "13800000000"}]}
        for n in range(count)])
    ids = [rpc.intake.register_complaint.call_async({
        "estate_id": "estate-b", "household_id": f"hb-{n}", "channel": "hotline",
        "category": "cleaning", "content": "楼道卫生"}) for n in range(count)]
    ids = [reply.result()["id"] for reply in ids]
    for step, data in [("acknowledge_complaint", {"staff_id": "cs-1", "note": ""}),
                       ("assign_complaint", {"department": "环境部"}),
                       ("resolve_complaint", {"staff_id": "cs-2", "resolution": "已清理"})]:
        for reply in [getattr(rpc.intake, step).call_async(cid, data) for cid in ids]:
            reply.result()
    return ids


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--complaints", type=int, default=300)
    parser.add_argument("--api", default="http://guest:guest@127.0.0.1:15672")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    base = load_config()
    vhost = f"huifang_bench_{uuid.uuid4().hex[:8]}"
    api = Client(args.api)
    api.create_vhost(vhost)
    api.set_vhost_permissions(vhost, "guest", ".*", ".*", ".*")
    amqp = urlsplit(base["AMQP_URI"])._replace(path=f"/{vhost}").geturl()
    config = dict(base, AMQP_URI=amqp, MONGO_DB_PREFIX="bench")
    try:
        bare = bare_hop(config, args.events)
        reliable = reliable_hop(config, args.events)
        pipeline = complaint_pipeline(config, args.complaints)
    finally:
        api.delete_vhost(vhost)

    print(f"broker {amqp}, one run")
    print(f"bare nameko event hop       {bare:8.0f} events/s   ({args.events} events)")
    print(f"reliable handler hop        {reliable:8.0f} events/s   "
          f"({reliable / bare:.2f} x bare)")
    print(f"complaint pipeline          {pipeline['throughput']:8.0f} complaints/s "
          f"({args.complaints} complaints: close -> revisit -> notice logged)")
    print(f"  latency p50 {pipeline['p50_ms']:.0f} ms, p99 {pipeline['p99_ms']:.0f} ms")
    print(f"  pipeline / bare hop ratio {pipeline['throughput'] / bare:.3f}")


if __name__ == "__main__":
    main()
