"""`make bench --only revisit-stats`: revisit's ``revisit_stats`` from the counters kept per
estate × month, at sizes a factor of 10 apart, measured through the entrypoint in process
(worker_factory, intake mocked, the estates' copies and the embedded store with its
indexes).

The revisits and work orders are stored straight through the repository's collections
(scheduling 10⁶ visits through the RPCs would take hours), each with what the counters hold
of it, and the counters are what the repository's repair writes: the recount of those
documents (``stats.recount``, with the group's total a month). Then every estate's month
is closed through the RPC (``close_sampling_month``: top-ups, and the ``required`` the
group's total counts). The history grows, open work does not: at every size ``OPEN``
visits are open and late (the overdue-now query counts them), the rest done. Three calls:
the group's figures alone (``per_estate=False``: its total counters), with every estate's
row, and one estate. Each call is made as a new worker makes it (nameko gives each worker
its own views of the estates' copies: nothing read yet), the stored data frozen out of the
garbage collector's way, as in a store. Times are CPU per call (the machine is shared),
wall time beside it, the load average with them.
"""
import gc
import os
import random
import time
from datetime import UTC, datetime, timedelta

ESTATES = 3000
PERIOD, MONTH = "2026-11", "2026-11"
SCAN_LIMIT = 100_000      # the scan of the raw documents, timed up to this size
OPEN = 2_000


def revisit_stats_times(sizes, calls=5):
    """ms per call of ``revisit_stats`` across all estates and for one, at each size; the
    scan of the raw documents (what it did before the counters) where affordable."""
    results = []
    for size in sizes:
        service, estate = _filled(size)
        gc.collect()
        gc.freeze()    # the stored data, long-lived: out of the collector's way, as in a store
        group = _per_call(service, lambda s=service: s.revisit_stats(None, PERIOD,
                                                                     per_estate=False), calls)
        across = _per_call(service, lambda s=service: s.revisit_stats(None, PERIOD), calls)
        one = _per_call(service, lambda s=service, e=estate: s.revisit_stats(e, PERIOD), calls)
        scan = _scan(service, size) if size <= SCAN_LIMIT else None
        check = service.revisit_stats(None, PERIOD)
        if size == sizes[0]:     # every month closed: the total is the rows added up
            assert check == service.revisit_stats(None, PERIOD, per_estate=False) | {
                "estates": check["estates"]}
            assert all(check["kinds"][kind]["awaiting_closing"] == 0
                       for kind in ("repair", "assistance", "special_service"))
            assert service.check_statistics()["consistent"], "counters disagree"
        results.append({"size": size, "group": group, "across": across, "one": one,
                        "scan": scan, "revisits": check["revisits"],
                        "estates": len(check["estates"]), "load": os.getloadavg()[0]})
        service = check = None
        gc.unfreeze()
        gc.collect()
    return results


def _per_call(service, call, calls):
    """(CPU, wall) seconds per call, each made by a new worker (``_new_worker``)."""
    call()   # warm: the process's caches (policies' quotas, imports)
    cpu = wall = 0.0
    for _ in range(calls):
        _new_worker(service)
        cpu_at, wall_at = time.process_time(), time.perf_counter()
        call()
        cpu, wall = cpu + time.process_time() - cpu_at, wall + time.perf_counter() - wall_at
    return cpu / calls, wall / calls


def _new_worker(service):
    """What nameko gives each worker anew: its views of the estates' copies, nothing read."""
    from services.revisit.dependencies import ZonedPolicies
    from shared.estates import EstateCopies

    service.estates = EstateCopies(service.store.db, None, "Asia/Shanghai")
    service.policies = ZonedPolicies(service.policies.book,
                                     EstateCopies(service.store.db, None, "Asia/Shanghai"))


def _scan(service, size):
    """The raw documents read and measured as revisit_stats did before (one estate's
    figures by filtering the whole list again, as it did)."""
    from services.revisit import stats
    from shared.periods import period_bounds, period_months

    started = time.process_time()
    since, until = period_bounds(PERIOD, service.policies.default.timezone)
    revisits = service.store.revisits_for_stats(None, since, until)
    orders = service.store.work_orders_for_stats(None, period_months(PERIOD))
    scanned = stats.revisit_stats(revisits, orders, service._quota_for, service.clock.now())
    spent = time.process_time() - started
    total = service.revisit_stats(None, PERIOD, per_estate=False)
    for kind in ("repair", "assistance", "special_service"):   # the closings' required
        assert total["kinds"][kind]["required"] == scanned["kinds"][kind]["required"]
    return spent


def _filled(size):
    from nameko.testing.services import worker_factory

    from services.revisit import stats
    from services.revisit.dependencies import ZonedPolicies
    from services.revisit.policies import PolicyBook
    from services.revisit.repository import COUNTED, RevisitRepository
    from services.revisit.service import RevisitService
    from shared.actor import Caller
    from shared.clock import FrozenClock
    from shared.config import load_config
    from shared.counters import with_group_totals
    from shared.embedded import new_client
    from shared.estates import COPIES, EstateCopies

    repository = RevisitRepository(new_client()["bench_revisit"])
    repository.create_indexes()
    start = datetime(2026, 10, 31, 16, tzinfo=UTC)      # 1 November in Shanghai
    now = datetime(2026, 12, 3, 2, tzinfo=UTC)
    draw = random.Random(size)
    kinds = ("complaint", "repair", "repair", "assistance", "special_service", "routine")
    revisits, orders, batch = [], [], []
    for number in range(size):
        estate = f"e-{number % ESTATES:04d}"
        kind = draw.choice(kinds)
        source_at = start + timedelta(minutes=draw.randrange(29 * 24 * 60))
        due = source_at + timedelta(days=3)
        late = number < OPEN
        revisit = {
            "_id": f"rv-{number}", "estate_id": estate, "kind": kind,
            "source_id": f"src-{number}", "source_at": source_at, "due_at": due,
            "status": "scheduled" if late else "done", "stats_month": MONTH,
            "completed_at": None if late else due - timedelta(hours=draw.randrange(-20, 70)),
            "outcome": None if late else {
                "reached": draw.random() < 0.9,
                "satisfaction": draw.choice(("very_satisfied", "satisfied", "neutral",
                                             "unsatisfied"))},
            "promised_reply_at": None, "reply_given_at": None, "version": 1,
        }
        if revisit["outcome"] and not revisit["outcome"]["reached"]:
            revisit["outcome"]["satisfaction"] = None
        revisit[COUNTED] = sorted(stats.contribution(revisit).items())
        batch.append(revisit)
        if kind not in ("complaint", "routine"):
            orders.append({"_id": f"src-{number}", "estate_id": estate, "kind": kind,
                           "month": MONTH, "in_population": True, "selected": True,
                           "reason": "sampled"})
        if len(batch) == 20_000:
            repository.db.revisits.insert_many(batch)
            revisits += batch
            batch = []
    if batch:
        repository.db.revisits.insert_many(batch)
        revisits += batch
    for order in orders:
        order[COUNTED] = sorted(stats.order_contribution(order).items())
    for first in range(0, len(orders), 20_000):
        repository.db.work_orders.insert_many(orders[first:first + 20_000])
    repository.store_counters(with_group_totals(stats.recount(revisits, orders),
                                                repository.estate_only))
    estates = sorted({revisit["estate_id"] for revisit in revisits})
    repository.db[COPIES].insert_many([   # the copies of intake's records (names, zones)
        {"_id": estate, "name": f"小区 {estate}", "company": "华南公司", "region": "城东",
         "timezone": "Asia/Shanghai", "revision": 0, "events": []} for estate in estates])
    # the policies as EstatePolicies gives a worker them: zoned by the estate copies
    copies = EstateCopies(repository.db, None, "Asia/Shanghai")
    policies = ZonedPolicies(PolicyBook(load_config()), copies)
    service = worker_factory(RevisitService, store=repository, clock=FrozenClock(now),
                             policies=policies, estates=copies, caller=Caller(None, None))
    for estate in estates:      # the month is over: each estate's closing fixes its required
        service.close_sampling_month(estate, MONTH)
    return service, "e-0001"


def print_revisit_stats_times(results, limit=1.15):
    from bench.run import exponent_note, growth_exponent

    sizes = [row["size"] for row in results]
    print(f"revisit revisit_stats({PERIOD}) from the counters (embedded store, in process, "
          f"{ESTATES:,} estates; exponent: log-log growth of n calls at n revisits, "
          "1 = a call costs the same whatever is stored):")
    for row in results:
        scan = (f"{row['scan'] * 1000:10.1f} ms" if row["scan"] is not None
                else f"   not run (over {SCAN_LIMIT:,})")
        print(f"  {row['size']:>9,} revisits ({row['estates']:,} estates): group "
              f"{row['group'][0] * 1000:6.2f} ms CPU ({row['group'][1] * 1000:.1f} wall) | "
              f"with every estate's row "
              f"{row['across'][0] * 1000:8.1f} ms CPU ({row['across'][1] * 1000:.0f} wall) | "
              f"one estate {row['one'][0] * 1000:7.2f} ms CPU ({row['one'][1] * 1000:.1f} wall)"
              f" | scan of the raw revisits (CPU) {scan} | load {row['load']:.2f}")
    for name, label in (("group", "group"), ("across", "+ estates"), ("one", "one estate")):
        exponent = growth_exponent(sizes, [row[name][0] for row in results])
        print(f"  {label:12}" + exponent_note(exponent, limit))
