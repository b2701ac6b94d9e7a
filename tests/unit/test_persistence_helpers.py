"""The shared persistence helpers, each alone: insert once, claim with a lease, counters
that take each change once, and the parts ``Store`` wires (client, background loop)."""
import doctest
import logging
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import ClassVar

import pymongo
import pytest

from shared import background, counters, counts, database, dependencies, leases, once
from shared.counters import IN_FLIGHT, PENDING, UNSETTLED, MonthCounters
from shared.embedded import new_client
from shared.leases import claim, claim_each, claim_many
from shared.messaging import EventPublisher
from shared.once import insert_once
from shared.store import Repository

NOW = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
LEASE = timedelta(minutes=5)


@pytest.fixture
def db():
    return new_client()["helpers"]


@pytest.mark.parametrize("module", [once, leases, counts, counters, database, background])
def test_the_usage_examples_run(module):
    assert doctest.testmod(module).failed == 0


# -- insert once --------------------------------------------------------------------------

def test_insert_once_answers_none_for_a_taken_key_and_stores_nothing(db):
    assert insert_once(db.orders.insert_one, {"_id": "wo-1", "n": 1}).inserted_id == "wo-1"
    assert insert_once(db.orders.insert_one, {"_id": "wo-1", "n": 2}) is None
    assert list(db.orders.find()) == [{"_id": "wo-1", "n": 1}]


def test_insert_once_takes_a_unique_index_other_than_the_id(db):
    db.users.create_index("username", unique=True)
    db.users.insert_one({"_id": "u-1", "username": "li"})
    assert insert_once(db.users.insert_one, {"_id": "u-2", "username": "li"}) is None


def test_insert_once_lets_other_errors_through(db):
    def broken(document):
        raise pymongo.errors.AutoReconnect("store away")
    with pytest.raises(pymongo.errors.AutoReconnect):
        insert_once(broken, {"_id": "x"})


# -- claim with a lease ---------------------------------------------------------------------

def test_a_claimed_document_is_held_until_its_lease_lapses(db):
    db.months.insert_one({"_id": "m", "pending": True, "until": NOW})
    assert claim(db.months, {"pending": True}, "until", NOW, LEASE)["_id"] == "m"
    assert db.months.find_one()["until"] == NOW + LEASE
    assert claim(db.months, {"pending": True}, "until", NOW + LEASE - timedelta(seconds=1),
                 LEASE) is None
    assert claim(db.months, {"pending": True}, "until", NOW + LEASE, LEASE) is not None


def test_a_document_without_the_field_is_free_only_when_asked(db):
    db.months.insert_one({"_id": "m", "pending": True})
    assert claim(db.months, {}, "until", NOW, LEASE) is None
    assert claim(db.months, {}, "until", NOW, LEASE, free_when_missing=True)["_id"] == "m"
    assert claim(db.months, {}, "until", NOW, LEASE, free_when_missing=True) is None


def test_a_claim_writes_more_in_the_same_write(db):
    db.requests.insert_one({"_id": "r", "lease_until": NOW, "takeovers": 0})
    taken = claim(db.requests, {}, "lease_until", NOW, LEASE,
                  {"$set": {"owner": "me"}, "$inc": {"takeovers": 1}},
                  return_document=pymongo.ReturnDocument.AFTER)
    assert (taken["owner"], taken["takeovers"], taken["lease_until"]) == ("me", 1, NOW + LEASE)


def test_claim_each_hands_out_each_free_document_once_up_to_its_limit(db):
    db.jobs.insert_many([{"_id": n, "until": NOW} for n in range(5)])
    assert len(list(claim_each(db.jobs, {}, "until", NOW, LEASE, 3))) == 3
    assert len(list(claim_each(db.jobs, {}, "until", NOW, LEASE))) == 2
    assert list(claim_each(db.jobs, {}, "until", NOW, LEASE)) == []


def test_claim_many_gives_each_document_to_one_holder_even_when_they_race(db):
    db.queue.insert_many([{"_id": n, "status": "queued", "due": NOW} for n in range(6)])
    db.queue.update_one({"_id": 5}, {"$set": {"status": "sent"}})
    first = claim_many(db.queue, {"status": "queued"}, "due", NOW, LEASE, 4, {"claim": "a"},
                       {"note": "taken"})
    second = claim_many(db.queue, {"status": "queued"}, "due", NOW, LEASE, 4, {"claim": "b"})
    assert sorted(d["_id"] for d in first) == [0, 1, 2, 3]
    assert [d["_id"] for d in second] == [4]          # 5 is not in the query
    assert {d["note"] for d in first} == {"taken"} and first[0]["due"] == NOW + LEASE


# -- counters that take each change once ----------------------------------------------------

def test_a_change_is_added_once_and_leaves_in_flight_when_done(db):
    db.tallies.insert_one({"_id": "t", "n": 0, IN_FLIGHT: []})
    assert counters.add_once(db.tallies, "t", "c-1", {"n": 2})
    assert counters.is_in_flight(db.tallies, "t", "c-1")
    assert not counters.add_once(db.tallies, "t", "c-1", {"n": 2})
    counters.done_adding(db.tallies, "t", "c-1")
    assert not counters.is_in_flight(db.tallies, "t", "c-1")
    assert db.tallies.find_one() == {"_id": "t", "n": 2, IN_FLIGHT: []}


class Visits(MonthCounters):
    """A repository whose counters count a condition too (as revisit's first visits)."""

    counters_collection = "visit_counters"
    counted_collections = ("visits",)

    def _conditional_counts(self, inc):
        for path, step in inc.items():
            if path.startswith("done."):
                yield ({path: {"$in": [None, 0]}} if step > 0 else {path: 1},
                       {"first": step})


@pytest.fixture
def visits(db):
    repository = Visits(db)
    repository.create_indexes()
    return repository


def record(visits, visit_id, contribution, change, before=None):
    document, change = visits._counted({"_id": visit_id, "estate_id": "e-1",
                                        "stats_month": "2026-11"}, contribution, change, before)
    visits.db.visits.replace_one({"_id": visit_id}, document, upsert=True)
    visits._settle("visits", visit_id, [change])


def test_month_counters_add_conditional_counts_once_and_drop_zeros(visits):
    record(visits, "v-1", {"done.wo-1": 1}, "made")
    record(visits, "v-2", {"done.wo-1": 1}, "made")
    assert visits.kept_counts() == {("e-1", "2026-11"): {"done.wo-1": 2, "first": 1}}
    record(visits, "v-1", {}, "undone", {"done.wo-1": 1})
    record(visits, "v-2", {}, "undone", {"done.wo-1": 1})
    counter = visits.db.visit_counters.find_one()
    assert visits.kept_counts() == {("e-1", "2026-11"): {}}
    assert "wo-1" not in counter["done"] and counter[IN_FLIGHT] == []


def test_the_relay_settles_what_a_writer_left_after_its_grace(visits):
    document, _ = visits._counted({"_id": "v-1", "estate_id": "e-1",
                                   "stats_month": "2026-11"}, {"kinds.done": 1}, "made")
    visits.db.visits.insert_one(document)               # the writer died here
    assert visits.settle_counts() == 0                  # within its grace
    later = datetime.now(UTC) + visits.outbox_grace
    assert visits.settle_counts(now=later) == 1
    assert visits.settle_counts(now=later + LEASE) == 0
    stored = visits.db.visits.find_one()
    assert stored[PENDING] == [] and UNSETTLED not in stored
    assert visits.kept_counts() == {("e-1", "2026-11"): {"kinds.done": 1}}


# -- the parts Store wires --------------------------------------------------------------------

def test_without_a_uri_every_service_shares_the_embedded_store_and_it_stays_open():
    client = database.open_client({}, "intake")
    assert database.open_client({"MONGO_URI": ""}, "survey") is client
    database.close_client(client)
    client["still_open"].probe.insert_one({"_id": 1})
    assert database.database_name({}, "notify") == "huifang_notify"


def test_a_uri_opens_a_client_of_its_own_that_gives_aware_times():
    client = database.open_client({"MONGO_URI": "mongodb://127.0.0.1:1"}, "intake")
    try:
        assert isinstance(client, pymongo.MongoClient) and not database.is_embedded(client)
        assert client.codec_options.tz_aware
    finally:
        database.close_client(client)


def test_the_background_loop_outlives_a_failed_round(caplog):
    done = []

    def sleep(seconds):
        if len(done) == 3:
            raise SystemExit
        done.append(seconds)

    def work():
        if len(done) == 2:
            raise ConnectionError("broker down")

    with caplog.at_level(logging.ERROR), pytest.raises(SystemExit):
        background.forever(work, 0.5, "outbox relay", sleep=sleep)
    assert done == [0.5, 0.5, 0.5]
    assert "outbox relay failed; will try again" in caplog.text


def test_a_relay_pass_says_how_many_events_it_sent_again(caplog):
    with caplog.at_level(logging.WARNING):
        assert background.relay_outbox(SimpleNamespace(relay_outbox=lambda: 0)) == 0
        assert caplog.text == ""
        assert background.relay_outbox(SimpleNamespace(relay_outbox=lambda: 3)) == 3
    assert "re-sent 3 event(s)" in caplog.text


class Notes(Repository):
    indexes: ClassVar[dict] = {"notes": [pymongo.IndexModel([("topic", pymongo.ASCENDING)])]}
    outbox_collections = ("notes",)


class Container:
    """What ``Store`` uses of a nameko container: config, name, managed threads."""

    def __init__(self, config):
        self.config, self.service_name, self.threads = config, "noter", []

    def spawn_managed_thread(self, run, identifier):
        self.threads.append(identifier)
        return SimpleNamespace(kill=lambda: self.threads.remove(identifier))


def test_store_wires_repository_publisher_topology_and_threads(monkeypatch):
    declared = []
    monkeypatch.setattr(dependencies, "declare_topology", declared.append)
    store = dependencies.Store(Notes)
    store.container = Container({"MONGO_DB_PREFIX": "wired", "OUTBOX_GRACE_SECONDS": "3",
                                 "AMQP_URI": "memory://"})
    store.setup()
    notes = store.get_dependency(worker_ctx=None)
    assert isinstance(notes, Notes) and notes.db.name == "wired_noter"
    assert type(notes.publisher) is EventPublisher and notes.outbox_grace.seconds == 3
    assert "topic_1" in notes.db.notes.index_information()      # indexes made at setup
    store.start()
    assert declared == [store.container.config]                 # before anything publishes
    assert store.container.threads == ["request log purge", "outbox relay"]
    store.stop()
    assert store.container.threads == []


def test_a_store_that_publishes_nothing_declares_no_topology_nor_relay(monkeypatch):
    monkeypatch.setattr(dependencies, "declare_topology", pytest.fail)
    store = dependencies.Store(Notes, events=False)
    store.container = Container({"AMQP_URI": "memory://"})
    store.setup()
    store.start()
    assert store.container.threads == ["request log purge"]
    store.stop()
