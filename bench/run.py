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
        # No quiet hours: the notices measured must go at once, whatever the hour.
        processes = ServiceProcesses(config, logs, LOG_LEVEL="WARNING", NOTIFY_QUIET_HOURS="")
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


def counted(report):
    """A report's figures: the quotes kept beside the counters are not recounted."""
    return dict(report, opinions=[dict(opinion, terms=[
        {"term": term["term"], "count": term["count"]} for term in opinion["terms"]])
        for opinion in report["opinions"]])


def survey_report_times(sizes, pipeline_limit=10_000):
    """survey's round_report at each number of responses: from the kept counters
    (incremental) against a recount of the raw responses, on the embedded store.

    The responses are bulk-inserted straight into the store (answering 10⁶ through
    the RPC would take hours). mongomock runs aggregation pipelines in pure Python at
    ~1 ms per response, so the pipeline itself is timed only up to ``pipeline_limit``;
    the recount in Python (the same grouping over the raw response documents in memory)
    is timed at every size. The incremental report reads the tallies only (counters and
    the quotes kept beside them), timed through the ``round_report`` entrypoint and,
    alone, the ``domain.report`` that builds it.
    """
    import random
    from collections import Counter
    from datetime import timedelta

    import mongomock
    from nameko.testing.services import worker_factory

    from services.survey import domain, opinions
    from services.survey.repository import SurveyRepository
    from services.survey.service import SurveyService
    from shared.clock import FrozenClock

    remarks = ["电梯经常坏，希望尽快修好", "停车位不够，晚上没地方停车", "垃圾桶满了没人清",
               "保安很负责", "绿化带杂草多", "快递柜太少"]
    words = {text: opinions.terms_of(text) for text in remarks}
    categories = list(domain.CATEGORY_LABELS)
    results = []
    for size in sizes:
        repository = SurveyRepository(mongomock.MongoClient(tz_aware=True)["bench_survey"])
        repository.create_indexes()
        now = datetime.now(UTC)
        estates = ["estate-1", "estate-2", "estate-3", "estate-4"]
        round_, _, tallies = domain.plan_round("rnd-bench", {
            "title": "bench", "estate_ids": estates, "kind": "half_yearly", "occasion": None,
            "opens_at": now, "closes_at": now + timedelta(days=14), "template_id": "default",
            "categories": None, "add_categories": [], "estate_categories": {},
            "sample": {"mode": "all", "by": "building"}, "anonymous": True, "reminders": {},
            "occupied_only": True, "request_id": None,
        }, domain.default_template(now), {e: [{"id": f"{e}-h"}] for e in estates},
            domain.SurveyPolicy(), now)
        round_.update(status="closed", invited={e: size // len(estates) + 1 for e in estates})
        repository.db.rounds.insert_one(dict(round_, version=0))
        repository.db.tallies.insert_many(tallies)
        draw, kept, batch, raw = random.Random(size), {e: Counter() for e in estates}, [], []
        examples = {e: {} for e in estates}
        for number in range(size):
            comments = {"general": draw.choice(remarks)} if draw.random() < 0.1 else {}
            response = {"_id": f"r{number}", "round_id": "rnd-bench",
                        "estate_id": estates[number % len(estates)],
                        "answers": {key: draw.choice((None, 1, 2, 3, 4, 4, 5, 5))
                                    for key in categories},
                        "comments": comments,
                        "terms": {key: words[text] for key, text in comments.items()},
                        "submitted_on": now.date().isoformat(), "counted": True}
            kept[response["estate_id"]].update(domain.tally_increment(response))
            # what the store's guarded $push ... $sort ... $slice keeps
            for topic, word, entry in opinions.quote_candidates(comments, response["terms"]):
                by_word = examples[response["estate_id"]].setdefault(topic, {})
                by_word[word] = opinions.keep_quote(by_word.get(word, []), entry)
            batch.append(response)
            raw.append(response)
            if len(batch) == 20_000:
                repository.db.responses.insert_many(batch)
                batch = []
        if batch:
            repository.db.responses.insert_many(batch)
        for estate_id, increment in kept.items():   # what the submissions would have written
            repository.db.tallies.update_one({"_id": f"rnd-bench:{estate_id}"}, {
                "$inc": dict(increment), "$set": {"examples": examples[estate_id]}})
        service = worker_factory(SurveyService, store=repository, clock=FrozenClock(now),
                                 config={})

        started = time.perf_counter()
        full = service.round_report("rnd-bench")
        incremental = time.perf_counter() - started
        started = time.perf_counter()
        figures = domain.report(round_, repository.tallies("rnd-bench"))
        figures_only = time.perf_counter() - started

        started = time.perf_counter()
        recounted = {e: Counter() for e in estates}
        for response in raw:    # mongomock's find alone is slower than this whole grouping
            recounted[response["estate_id"]].update(domain.tally_increment(response))
        python_recount = time.perf_counter() - started
        assert all(+recounted[e] == +kept[e] for e in estates), "recount disagrees"

        pipeline = None
        if size <= pipeline_limit:
            started = time.perf_counter()
            from_pipeline = repository.recount("rnd-bench")
            again = domain.report(round_, [dict(from_pipeline[e], estate_id=e) for e in estates])
            pipeline = time.perf_counter() - started
            assert counted(again) == counted(figures), "pipeline recount disagrees"
        results.append({"size": size, "incremental": incremental, "figures": figures_only,
                        "python_recount": python_recount, "pipeline": pipeline,
                        "rate": full["satisfaction_rate"]})
    return results


def print_survey_report_times(results):
    print("survey round_report (embedded store; same data, same run):")
    for row in results:
        pipeline = (f"{row['pipeline'] * 1000:9.1f} ms" if row["pipeline"] is not None
                    else "  not run (mongomock pipelines: ~1 ms per response)")
        print(f"  {row['size']:>9,} responses: incremental {row['incremental'] * 1000:8.1f} ms "
              f"(the round_report entrypoint; {row['figures'] * 1000:.2f} ms of domain.report) | "
              f"recount in Python {row['python_recount'] * 1000:9.1f} ms | "
              f"aggregation pipeline {pipeline}")


def revisit_sampling(estates, orders_per_estate):
    """revisit's online sampling and scheduling, pure domain code (no broker, no store):
    ``estates`` × ``orders_per_estate`` repairs completing through one month, each
    decided as it completes and, if selected, scheduled (revisit and event built); then
    every month closed with its top-ups. Returns the time and what was decided."""
    import random
    from datetime import timedelta

    from services.revisit import domain as revisit_domain
    from services.revisit import sampling
    from services.revisit.policies import RevisitPolicy, end_of_local_day

    policy, month = RevisitPolicy(), "2026-11"
    start, end = sampling.month_bounds(month, policy.timezone)
    draw = random.Random(4)
    arrivals = [sorted(draw.random() for _ in range(orders_per_estate)) for _ in range(estates)]
    histories = [tuple(draw.randint(80, 120) for _ in range(3)) for _ in range(estates)]
    sampled = on_time = 0
    started = time.perf_counter()
    for estate_number in range(estates):
        estate_id, decided, selected = f"estate-{estate_number}", [], 0
        for number, share in enumerate(arrivals[estate_number]):
            at = start + (end - start) * share
            order = {"work_order_id": f"wo-{estate_number}-{number}", "kind": "repair",
                     "household_id": f"h-{number}", "important": False, "completed_at": at,
                     "contract_start": None, "contract_end": None}
            decision = sampling.decide(order, estate_id, sampling.MonthSoFar(
                number, selected, histories[estate_number]), policy)
            decided.append(sampling.decided_work_order(order, estate_id, month, decision, at))
            if decision.selected:
                selected += 1
                for revisit, _ in revisit_domain.schedule_work_order_revisits(
                        order, estate_id, decision.reason, policy, at):
                    on_time += revisit["due_at"] <= end_of_local_day(at, policy.timezone, 1)
        closing = end + timedelta(hours=9)
        chosen, report = sampling.close_month(decided, estate_id, month, policy)
        for record in decided:
            if record["_id"] in chosen:
                revisit_domain.schedule_work_order_revisits(
                    sampling.order_payload(record), estate_id, "top_up", policy, closing,
                    decided_at=closing)
        sampled += report["repair"]["sampled"]
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "orders": estates * orders_per_estate, "estates": estates,
            "per_estate": orders_per_estate, "sampled": sampled,
            "on_time": on_time / sampled if sampled else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--complaints", type=int, default=300)
    parser.add_argument("--api", default="http://guest:guest@127.0.0.1:15672")
    parser.add_argument("--survey-responses", default="1000,100000,1000000",
                        help="survey report benchmark sizes, comma-separated")
    parser.add_argument("--sampling-estates", type=int, default=10_000,
                        help="revisit sampling benchmark: estates of 100 repairs a month")
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
    print_survey_report_times(survey_report_times(
        [int(size) for size in args.survey_responses.split(",") if size]))
    sampled = revisit_sampling(args.sampling_estates, 100)
    print(f"revisit sampling+scheduling {sampled['orders'] / sampled['seconds']:8.0f} orders/s  "
          f"({sampled['estates']:,} estates x {sampled['per_estate']} repairs in a month: "
          f"{sampled['seconds']:.1f} s; {sampled['sampled']:,} revisits, "
          f"{sampled['on_time']:.1%} due within a day of completion)")


if __name__ == "__main__":
    main()
