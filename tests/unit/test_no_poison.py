"""No input can poison a record: the mechanisms behind ``test_bad_input.py`` one by one —
a write is all or nothing (one document on the embedded store, several by ordering and
compensation), unknown estates and households are ``NotFound`` wherever an RPC is about
one, a request that is no request is refused naming what is wrong, and the person a call
names must be a plain id before it goes into a record."""
from datetime import timedelta
from unittest import mock

import pytest
from nameko.exceptions import RemoteError

from services.intake import domain as intake_domain
from services.revisit.repository import RevisitRepository
from shared.actor import ACTOR_CONTEXT_KEY, Actor, Caller
from shared.embedded import new_client
from shared.errors import InvalidInput, NotFound
from shared.rpc import not_found_as, request_problem
from shared.schemas.base import require_id
from shared.store import ConcurrentUpdate
from tests.helpers import embedded
from tests.unit.test_revisit_service import (
    ONSITE_VISIT,
    arrive,
    book_for_tomorrow,
    completed_event,
    make_service,
)
from tests.world import NOBODY, NOW, build


@pytest.fixture
def world():
    return build()


# one document: all or nothing, as on MongoDB ----------------------------------------------

def test_an_update_the_embedded_store_cannot_finish_changes_nothing():
    things = new_client()["t"]["things"]
    things.create_index("status")
    things.insert_one({"_id": 1, "status": "open", "history": ["opened"], "external": {"a": 1}})
    with pytest.raises(UnicodeEncodeError):
        things.update_one({"_id": 1}, {"$set": {"status": "closed", "external.a": 2,
                                                "note": "\ud800"},
                                       "$push": {"history": "closed"}})
    assert things.find_one({"_id": 1}) == {"_id": 1, "status": "open", "history": ["opened"],
                                            "external": {"a": 1}}
    assert things.find_one({"status": "open"}) and not things.find_one({"status": "closed"})


def test_a_complaint_whose_write_fails_keeps_its_status_and_history(world, monkeypatch):
    """The finding: ``update_external_status`` changed the status without its history line."""
    cid, intake = world.ids["referred"], world.intake
    before = intake.store.db.complaints.find_one({"_id": cid})
    change = intake_domain.update_external_status

    def poisoned(*args, **kwargs):    # a value the store cannot hold, past every check
        complaint, events = change(*args, **kwargs)
        complaint["history"][-1]["note"] += "\ud800"
        return complaint, events
    monkeypatch.setattr(intake_domain, "update_external_status", poisoned)
    with pytest.raises(UnicodeEncodeError):
        intake.update_external_status(cid, {"staff_id": "s-1", "status": "resolved",
                                            "note": "已修复"})
    assert intake.store.db.complaints.find_one({"_id": cid}) == before


# several documents: ordering and compensation ------------------------------------------------

def failing_on(collection, call_number):
    """``collection.update_one`` that fails on its ``call_number``-th call."""
    real, calls = collection.update_one, []

    def update_one(*args, **kwargs):
        calls.append(args)
        if len(calls) == call_number:
            raise OSError("the store went away")
        return real(*args, **kwargs)
    return update_one


def test_an_import_that_fails_halfway_leaves_nothing_behind(world):
    intake = world.intake
    households = intake.store.db.households
    before = list(households.find())
    rows = [{"household_id": f"h-new-{n}", "building": "8", "unit": "1", "room": f"10{n}",
             "occupied": True} for n in range(3)]
    changed = dict(rows[0], household_id="h-1", building="99")     # an existing one, changed
    # the new ones are stored (one insert_many), then the existing one's update fails
    with mock.patch.object(households, "update_one", failing_on(households, 1)), \
            pytest.raises(OSError):
        intake.import_households("e-1", [changed, *rows], estate={"name": "测试小区"})
    assert list(households.find()) == before
    # every household stored, then the estate's registration fails
    estates = intake.store.db.estates
    with mock.patch.object(estates, "insert_one", failing_on(estates, 1)), \
            pytest.raises(OSError):
        intake.import_households("e-new", rows, estate={"name": "测试小区"})
    assert list(households.find()) == before
    with pytest.raises(NotFound):                    # nor did the estate become known
        intake.get_estate("e-new")
    assert intake.import_households("e-new", rows, estate={"name": "测试小区"}) == {"imported": 3, "updated": 0, "failed": []}
    assert intake.get_estate("e-new")["id"] == "e-new"


@pytest.fixture
def repair_visit():
    """revisit with an important repair's first observation booked, publishing to a list."""
    from shared.clock import FrozenClock
    published = []
    store = embedded(RevisitRepository)
    store.publisher = mock.Mock(publish=published.append)
    service = make_service(store, FrozenClock(NOW))
    service.follow_up_work_order(completed_event(important=True))
    [first] = service.list_revisits({"source_id": "wo-1"})
    arrive(service, book_for_tomorrow(service, first["id"]))
    published.clear()
    return service, first["id"], published


def test_a_record_that_cannot_be_saved_takes_its_next_observation_back(repair_visit):
    service, revisit_id, published = repair_visit
    with mock.patch.object(service.store, "save", side_effect=ConcurrentUpdate("meanwhile")), \
            pytest.raises(ConcurrentUpdate):
        service.record_revisit(revisit_id, dict(ONSITE_VISIT, resolved=False))
    assert service.store.db.revisits.find_one({"_id": "rv-wo-1-observation-2"}) is None
    assert published == []                           # never announced
    service.record_revisit(revisit_id, dict(ONSITE_VISIT, resolved=False))    # the retry
    second = service.store.db.revisits.find_one({"_id": "rv-wo-1-observation-2"})
    assert second is not None and second["outbox"] == []                      # sent
    assert service.get_revisit(revisit_id)["status"] == "done"


# unknown estates and households are NotFound, the same way everywhere -------------------------

@pytest.mark.parametrize("call", [
    lambda w: w.intake.list_households("e-none"),
    lambda w: w.intake.list_categories("e-none"),
    lambda w: w.intake.complaint_stats("e-none", "2026-11"),
    lambda w: w.intake.get_estate("e-none"),
    lambda w: w.revisit.close_sampling_month("e-none", "2026-10"),
    lambda w: w.revisit.plan_routine_revisits("e-none", 2026),
    lambda w: w.revisit.revisit_stats("e-none", "2026-11"),
    lambda w: w.revisit.get_policy("e-none"),
], ids=["list_households", "list_categories", "complaint_stats", "get_estate",
        "close_sampling_month", "plan_routine_revisits", "revisit_stats", "get_policy"])
def test_an_unknown_estate_is_not_found(world, call):
    before = world.snapshot()
    with pytest.raises(NotFound, match="estate 'e-none' not found"):
        call(world)
    assert world.same(before, world.snapshot())


def test_preferences_of_an_unknown_household_are_not_found_and_not_kept(world):
    before = world.snapshot()
    with pytest.raises(NotFound, match="household 'no-such-household' not found"):
        world.notify.set_preferences("no-such-household", {"opt_out": True})
    assert world.same(before, world.snapshot())
    assert world.notify.set_preferences("h-2", {"opt_out": True})["opt_out"] is True


def test_a_round_for_an_unknown_estate_is_refused_before_anything_is_written(world):
    survey = world.survey
    survey.store.db.templates.delete_many({"template_id": "default"})   # not seeded yet
    before = world.snapshot()
    with pytest.raises(InvalidInput) as refused:
        survey.create_round({"title": "调查", "estate_ids": ["e-1", "e-none", "e-gone"],
                             "opens_at": NOW.isoformat(),
                             "closes_at": (NOW + timedelta(days=7)).isoformat()})
    assert refused.value.errors == {"estate_ids": ["unknown estate: e-none",   # each named
                                                   "unknown estate: e-gone"]}
    assert world.same(before, world.snapshot())


def test_a_report_for_an_estate_intake_does_not_know_tells_nobody(world):
    from shared.envelope import new_event, parse_event
    event = parse_event(new_event("survey_report_published", "survey", "e-none", {
        "round_id": "rnd-1", "satisfaction_rate": 0.9, "rectifications": 0}, NOW))
    world.notify.announce_survey_report(event)       # no error: nobody to tell
    assert world.notify.store.db.deliveries.count_documents({"ref": "rnd-1"}) == 0


def test_not_found_as_names_the_record_and_lets_other_errors_through():
    with pytest.raises(NotFound, match="estate 'e-9' not found"), not_found_as("estate", "e-9"):
        raise RemoteError("NotFound", "estate 'e-9' not found")
    with pytest.raises(RemoteError), not_found_as("estate", "e-9"):
        raise RemoteError("RpcTimeout", "intake did not answer")


# requests that are no requests, ids with something after them, people who are not ids --------

@pytest.mark.parametrize("body, errors", [
    (None, {"body": ['expected {"args": [...], "kwargs": {...}}']}),
    ([1, 2], {"body": ['expected {"args": [...], "kwargs": {...}}']}),
    ({}, {"args": ["missing"], "kwargs": ["missing"]}),
    ({"args": "abc", "kwargs": {}}, {"args": ["expected a list"]}),
    ({"args": [], "kwargs": []}, {"kwargs": ["expected an object"]}),
    ({"args": [], "kwargs": {}}, None),
])
def test_what_makes_a_body_no_rpc_request(body, errors):
    assert request_problem(body) == errors


@pytest.mark.parametrize("value", ["e-1\n", "e-1 ", "ｅ-1", "e-1\x00", "\ud800"])
def test_an_id_is_the_whole_value(value):
    with pytest.raises(InvalidInput):
        require_id(value)


@pytest.mark.parametrize("person", [
    {"id": "u-1\ud800", "roles": ["supervisor"]}, {"id": "u-1\x00"},
    {"id": "u-1", "roles": ["supervisor\x07"]}, {"id": "u-1", "estates": ["e-1\n"]},
    {"id": {"$ne": None}},
])
def test_a_person_who_is_no_plain_id_is_refused_not_recorded(world, person):
    assert Actor.from_context({ACTOR_CONTEXT_KEY: person}) is None
    caller = Caller(None, "gateway", unreadable_actor=True)
    world.revisit.caller = caller
    before = world.snapshot()
    try:
        with pytest.raises(InvalidInput, match=ACTOR_CONTEXT_KEY):
            world.revisit.book_appointment(world.ids["revisit"], {
                "at": (NOW + timedelta(days=1)).isoformat(), "owner_consent": True})
    finally:
        world.revisit.caller = NOBODY
    assert world.same(before, world.snapshot())
