"""Every query the services make has an index declared at start-up, and the embedded store
answers it without a scan, or is listed here with the reason it does not.

The four services of ``tests/world.py`` run their flows (imports, complaints in every
state, work orders, revisits, survey rounds, deliveries), their lists and their timers
and relays, with ``shared.embedded.recording_scans`` collecting every query the hash
indexes could not answer."""
import re

import pytest

from shared import embedded
from tests.world import build

# Scans of a query with a declared index: on MongoDB the index serves it; the embedded
# store's hash indexes answer equality, $in and ranges on a sparse index only.
SCANNED_WITH_AN_INDEX = {
    ("complaints", "alert_due_at $lte"):
        "intake's deadline timer: a range on the dense alert_due_at index (to answer it "
        "here, alert_due_at would have to leave complaints with no alert due, sparse)",
    ("rectifications", "due_at $lte, overdue_at, status $ne"):
        "survey's overdue rectifications: status $ne, then a range on the (status, due_at) "
        "index's second key",
}
# Reads of the tests' own world, not of a service.
NOT_A_SERVICE = {
    "outbox.0 $exists": "tests/world.py's events(): every outbox, to hand events on",
    "(all)": "tests/world.py reads whole collections to name a record of each kind",
}


@pytest.fixture(scope="module")
def scans():
    with embedded.recording_scans() as found:
        world = build()
        run_the_rest(world)
        declared = {}
        for service in world.services.values():
            db = service.store.db
            for collection in db.list_collection_names():
                declared.setdefault(collection, set()).update(
                    next(iter(index["key"]))[0] for index in
                    db[collection].index_information().values())
    return [(collection, shape, declared.get(collection, set()))
            for collection, shape in found if shape not in NOT_A_SERVICE]


def run_the_rest(world):
    """What ``build`` does not: lists with their filters, each timer, each relay."""
    intake, revisit, survey, notify = (world.intake, world.revisit, world.survey,
                                       world.notify)
    intake.list_households("e-1", {"occupied": True, "building": "3"})
    intake.list_households("e-1", {"household_ids": ["h-1", "h-2"], "limit": 2},  # a page's rows
                           paged=True)
    intake.list_complaints({"estate_id": "e-1", "status": "assigned", "limit": 2}, paged=True)
    intake.list_complaints({"household_id": "h-1", "category": "noise"})
    intake.list_work_orders({"estate_id": "e-1", "kind": "repair"})
    intake.list_estates({"name_prefix": "测试"})           # the console's estate chooser
    intake.list_estates({"name": "测试小区", "limit": 2})
    revisit.list_revisits({"estate_id": "e-1"})
    revisit.list_revisits({"estate_id": "e-1", "status": "done",      # a month's 回访记录本
                           "done_from": "2026-11-01T00:00:00+08:00",
                           "done_before": "2026-12-01T00:00:00+08:00"})
    revisit.monthly_revisit_plan("e-1", "2026-11")
    intake.set_key_customer("h-1", True)
    world.hand_on()
    survey.list_rounds({"estate_id": "e-1"})
    survey.list_invitations(world.ids["round"], "e-1")
    survey.list_rectifications({"estate_id": "e-1"})
    notify.list_deliveries({})
    for timer in (intake.send_deadline_alerts, intake.settle_interrupted_counts,
                  revisit.watch_deadlines, revisit.close_finished_months,
                  survey.prepare_rounds, survey.run_schedule, survey.send_reminders,
                  survey.complete_interrupted_responses, survey.flag_overdue_rectifications,
                  revisit.plan_routine_years, survey.watch_survey_cadence,
                  notify.dispatch_due):
        timer()
    for service in world.services.values():
        service.store.relay_outbox()


def listing(found):
    return "\n".join(f"  {collection}: {shape}" for collection, shape in sorted(found))


def test_every_query_has_a_declared_index(scans):
    unindexed = {(collection, shape) for collection, shape, first_keys in scans
                 if not any(shape_names(shape, key) for key in first_keys)}
    assert not unindexed, "queries no declared index starts with:\n" + listing(unindexed)


def test_the_embedded_store_scans_only_the_queries_listed_with_their_reasons(scans):
    scanned = {(collection, shape) for collection, shape, _ in scans}
    assert scanned <= set(SCANNED_WITH_AN_INDEX), (
        "queries the embedded store answers by a scan (index them, or list them here "
        "with the reason):\n" + listing(scanned - set(SCANNED_WITH_AN_INDEX)))
    assert set(SCANNED_WITH_AN_INDEX) <= scanned, (
        "listed as scanned but no longer are (take them off the list):\n"
        + listing(set(SCANNED_WITH_AN_INDEX) - scanned))


def shape_names(shape, field):
    """Whether ``field`` is one of the fields ``shape`` (``embedded.query_shape``) queries:
    its words that are not operators."""
    return shape != "(all)" and field in re.split(r"[(),; ]+", shape)


def test_a_query_shape_leaves_the_values_out():
    assert embedded.query_shape({"b": {"$lt": 2, "$ne": None}, "a": "x"}) == "a, b $lt $ne"
    assert embedded.query_shape({"$or": [{"a": 1}, {"c": {"$gt": 0}}]}) == "$or(a; c $gt)"
    assert embedded.query_shape({}) == "(all)"
    assert shape_names("a, b $lt $ne", "b") and not shape_names("a, b $lt", "c")
    assert shape_names("$or(a; c $gt)", "c")
