"""`make bench --only complaint-stats`: intake's ``complaint_stats`` and
``group_complaint_stats`` from the counters kept per estate × month of receipt, at sizes
a factor of 10 apart, measured through the entrypoints in process (worker_factory, the
embedded store with its indexes).

The complaints are copies of ones the domain made (their history trimmed), stored
straight through the repository's collection (registering 10⁶ complaints through the RPC
would take hours), and the counters are what the repository's repair writes: the recount
of those complaints (``stats.recount``, ``store_counters``). The history grows, open work
does not: at every size one complaint an estate is open (a third of them past their
deadlines), the rest received over 2026 and closed. Times are CPU per call of this
process (the machine is shared).
"""
import time
from datetime import UTC, datetime

from bench.run import exponent_note, growth_exponent


def complaint_stats_times(sizes, estates=3000, open_per_estate=1):
    """intake's complaint_stats and group_complaint_stats through their entrypoints in
    process (worker_factory, embedded store) with ``sizes`` complaints stored over
    ``estates`` estates: the history received over 2026 up to November and closed, and
    the open work of late November (``open_per_estate`` each, a third of them past their
    deadlines) the same at every size. The complaints are copies of ones the domain made
    (their history trimmed) bulk-inserted, and the counters the recount of them
    (``replace_counters``, the repair path), instead of 10⁶ registrations through the RPC.
    Checked once at the smallest size against the scan the counters replace
    (``stats.complaint_figures``). CPU ms per call (this process: other load on the machine does not count), the fastest of five."""
    import copy
    import gc
    import random
    from collections import Counter
    from datetime import timedelta

    from nameko.testing.services import worker_factory

    from services.intake import domain, stats
    from services.intake.policy import Policies
    from services.intake.repository import IntakeRepository
    from services.intake.service import IntakeService
    from shared import embedded
    from shared.actor import Caller
    from shared.clock import FrozenClock
    from shared.periods import month_of, period_bounds

    now = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)          # 10:00 on 1 December in Shanghai
    policies = Policies()
    policy = policies.for_estate("bench")
    first = datetime(2026, 1, 1, tzinfo=UTC)

    def made(received_at, *steps, severity="normal", gap=timedelta(hours=20)):
        complaint, _ = domain.register("cmp-t", {
            "estate_id": "t", "household_id": "h", "reporter": None, "channel": "hotline",
            "category": "cleaning", "severity": severity, "content": "垃圾未清理",
            "received_at": received_at}, [], policy, received_at + timedelta(minutes=5))
        details = {"acknowledge": {}, "assign": {}, "resolve": {"resolution": "ok"},
                   "close": {"owner_signoff": "satisfied"}}
        at = received_at
        for step in steps:
            at += gap
            complaint, _ = domain.apply(complaint, step, "s", at, policy, **details[step])
        for key in ("history", "owner_token"):    # the owner's link: unique, minted when asked
            complaint.pop(key)
        return complaint

    closed = [made(first, "acknowledge", "assign", "resolve", "close"),
              made(first, "acknowledge", "assign", "resolve", "close", severity="major")]
    late_open = made(now - timedelta(days=10))            # nothing done, deadlines past
    fresh_open = made(now - timedelta(hours=3), "acknowledge", gap=timedelta(hours=1))
    categories, channels = ["cleaning", "noise", "parking", "fees"], ["hotline", "wechat"]

    def shifted(template, complaint_id, estate_id, received_at, draw):
        complaint = copy.deepcopy(template)
        offset = received_at - template["received_at"]
        for deadline in complaint["deadlines"]:
            for key in ("due_at", "met_at", "superseded_at", "alerted_at"):
                if deadline[key] is not None:
                    deadline[key] += offset
        for key, value in complaint.items():
            if key.endswith(("_at", "_due")) and isinstance(value, datetime):
                complaint[key] = value + offset
        complaint.update(_id=complaint_id, estate_id=estate_id, received_at=received_at,
                         stats_month=month_of(received_at, policy.timezone),
                         category=draw.choice(categories), channel=draw.choice(channels),
                         malicious=draw.random() < 0.01)
        return complaint

    results = []
    for size in sizes:
        draw = random.Random(size)
        store = IntakeRepository(embedded.new_client()["bench_intake"])
        store.create_indexes()
        estate_ids = [f"estate-{n:04d}" for n in range(estates)]
        store.db.estates.insert_many([{"_id": e, "created_at": first} for e in estate_ids])
        span = (now - timedelta(days=10) - first).total_seconds()
        batch, recounted, kept = [], {}, []
        opened = estates * open_per_estate
        for number in range(size):
            estate_id = estate_ids[number % estates]
            if number < opened:
                template = late_open if number % 3 == 0 else fresh_open
                received_at = template["received_at"]
            else:
                template = closed[number % 2]
                received_at = first + timedelta(seconds=draw.random() * span)
            complaint = shifted(template, f"cmp-{number:07d}", estate_id, received_at, draw)
            stats.add(recounted.setdefault((estate_id, complaint["stats_month"]), Counter()),
                      stats.contribution(complaint))
            batch.append(complaint)
            if size <= sizes[0]:
                kept.append(complaint)
            if len(batch) == 20_000:
                store.db.complaints.insert_many(batch)
                batch = []
        if batch:
            store.db.complaints.insert_many(batch)
        store.store_counters(store.with_totals(     # the estates' months, years, the group's
            {key: dict(+counts) for key, counts in recounted.items()}))
        gc.collect()
        gc.freeze()    # the stored data, long-lived: out of the collector's way, as in a store
        service = worker_factory(IntakeService, store=store, clock=FrozenClock(now),
                                 config={}, policies=policies, caller=Caller(None, None))
        row = {"size": size, "open": opened, "counters": len(recounted)}
        calls = {"estate month": (service.complaint_stats, (estate_ids[7], "2026-11")),
                 "estate year": (service.complaint_stats, (estate_ids[7], "2026")),
                 "group month": (service.group_complaint_stats, ("2026-11", None, False)),
                 "group year": (service.group_complaint_stats, ("2026", None, False)),
                 "+ estates month": (service.group_complaint_stats, ("2026-11",)),
                 "+ estates year": (service.group_complaint_stats, ("2026",))}
        for name, (call, arguments) in calls.items():
            timings = []
            for _ in range(5):
                started = time.process_time()
                answer = call(*arguments)
                timings.append(time.process_time() - started)
            row[name] = min(timings)
            if size <= sizes[0] and name in ("group year", "+ estates year"):   # the scan replaced
                start, end = period_bounds("2026", policy.timezone)
                inside = [c for c in kept if start <= c["received_at"] < end]
                assert answer["total"] == stats.complaint_figures(inside, now), "counters disagree"
        results.append(row)
        store = service = calls = batch = None
        gc.unfreeze()
        gc.collect()
    return results


def print_complaint_stats_times(results, limit=1.15):
    sizes = [row["size"] for row in results]
    print("intake complaint statistics from counters (in process, embedded store; CPU ms per "
          f"call, best of 5; 3,000 estates, {results[0]['open']:,} open complaints at every "
          "size; group: group_complaint_stats(per_estate=False), + estates: with every "
          "estate's figures; exponent: log-log growth of n calls at n complaints stored, "
          "1 when a call costs the same whatever is stored, 2 for a scan per call):")
    for name in ("estate month", "estate year", "group month", "group year",
                 "+ estates month", "+ estates year"):
        costs = [row[name] for row in results]
        print(f"  {name:15}" + "".join(f"  {size:>9,}: {cost * 1000:8.1f} ms"
                                       for size, cost in zip(sizes, costs))
              + exponent_note(growth_exponent(sizes, costs), limit))
    print("  counter documents: " + ", ".join(
        f"{row['size']:,} complaints: {row['counters']:,}" for row in results)
        + " estate-months (and a year document an estate, the group's total a month and a "
        "year: the group's figures read 1 a month or 1 a year, every estate's row 1 an "
        "estate a month or 1 an estate a year)")
