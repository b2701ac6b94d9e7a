"""The outbox relay (shared/store.py) on the embedded store: what a crash left behind is
sent, once the broker has it nothing of it stays, and a pass with nothing pending looks at
no document, however many carried events before."""
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest
from pymongo import ASCENDING, IndexModel

from shared import embedded
from shared.store import OUTBOX, OUTBOX_LEASE, Repository


class Broker:
    """A publisher that can be down; what it took, in order."""

    def __init__(self):
        self.taken, self.down = [], False

    def publish(self, event):
        if self.down:
            raise ConnectionError("broker down")
        self.taken.append(event["id"])


class Complaints(Repository):
    indexes: ClassVar[dict] = {"complaints": [IndexModel([("status", ASCENDING)])]}
    outbox_collections = ("complaints",)


@pytest.fixture
def broker():
    return Broker()


@pytest.fixture
def store(broker):
    # no grace: what a write left unsent is the relay's at once (the store keeps times to
    # the millisecond: a lease of now could still be now for the relay)
    repository = Complaints(embedded.new_client()["t"], broker, outbox_grace_seconds=-1)
    repository.create_indexes()
    return repository


@pytest.fixture
def no_scan(monkeypatch):
    def scan(collection, filter):
        raise AssertionError(f"scanned for {filter}")
    monkeypatch.setattr(embedded, "_scan", scan)


def event(name):
    return {"id": name, "type": "complaint_registered"}


def stored(store, document_id):
    return store.db.complaints.find_one({"_id": document_id})


def test_sent_events_leave_neither_outbox_nor_lease(store, broker):
    store.insert_with_events("complaints", {"_id": "c1", "status": "new"}, [event("e1")])
    store.update_with_events("complaints", {"_id": "c1"}, {"$set": {"status": "done"}},
                             [event("e2"), event("e3")])
    assert broker.taken == ["e1", "e2", "e3"]
    assert stored(store, "c1") == {"_id": "c1", "status": "done", OUTBOX: [], "version": 0}


def test_the_relay_sends_what_a_crash_left_behind_and_then_nothing(store, broker):
    broker.down = True          # the process "dies" between the write and the publish
    store.insert_with_events("complaints", {"_id": "c1", "status": "new"}, [event("e1")])
    store.update_with_events("complaints", {"_id": "c1"}, {"$set": {"status": "done"}},
                             [event("e2")])
    store.insert_with_events("complaints", {"_id": "c2", "status": "new"}, [event("e3")])
    store.insert_with_events("complaints", {"_id": "c3", "status": "new"}, [])
    assert broker.taken == [] and stored(store, "c1")[OUTBOX_LEASE]

    store.relay_outbox()                                  # the broker still down: kept
    assert [e["id"] for e in stored(store, "c1")[OUTBOX]] == ["e1", "e2"]
    assert OUTBOX_LEASE in stored(store, "c1") and broker.taken == []
    store.db.complaints.update_many(                      # that pass's leases lapse
        {OUTBOX_LEASE: {"$exists": True}},
        {"$set": {OUTBOX_LEASE: datetime.now(UTC) - timedelta(seconds=1)}})

    broker.down = False
    assert store.relay_outbox() == 3
    assert sorted(broker.taken) == ["e1", "e2", "e3"]
    for document_id in ("c1", "c2", "c3"):
        assert OUTBOX_LEASE not in stored(store, document_id)
        assert stored(store, document_id)[OUTBOX] == []
    assert store.relay_outbox() == 0
    assert sorted(broker.taken) == ["e1", "e2", "e3"]


def test_a_document_claimed_by_one_relay_is_left_to_it_by_another(store, broker):
    broker.down = True
    store.insert_with_events("complaints", {"_id": "c1"}, [event("e1")])
    broker.down = False
    claimed = store.db.complaints.find_one_and_update(   # another instance's pass, under way
        {OUTBOX_LEASE: {"$exists": True}},
        {"$set": {OUTBOX_LEASE: datetime.now(UTC) + timedelta(hours=1)}})
    assert claimed is not None
    assert store.relay_outbox() == 0 and broker.taken == []


def test_an_event_queued_while_the_last_one_is_sent_keeps_the_lease(store, broker):
    # Another writer queues e2 (and dies before publishing it) while e1 is being sent: the
    # outbox is not empty when e1 comes out, so the lease, the relay's only way to it, stays.
    def publish_while_another_writes(event):
        Broker.publish(broker, event)
        if event["id"] == "e1":
            store.db.complaints.update_one({"_id": "c1"}, {
                "$push": {OUTBOX: {"id": "e2", "type": "complaint_closed"}},
                "$set": {OUTBOX_LEASE: datetime.now(UTC) - timedelta(seconds=1)}})
    broker.publish = publish_while_another_writes
    store.insert_with_events("complaints", {"_id": "c1"}, [event("e1")])
    assert OUTBOX_LEASE in stored(store, "c1")
    assert store.relay_outbox() == 1
    assert broker.taken == ["e1", "e2"]
    assert OUTBOX_LEASE not in stored(store, "c1")


def test_a_lease_left_on_an_empty_outbox_is_dropped_by_the_relay(store, broker):
    # a crash between the last event's removal and the lease's, or data from before leases
    # went with the events: claimed once, nothing sent, then out of the relay's way
    store.db.complaints.insert_one({"_id": "old", OUTBOX: [],
                                    OUTBOX_LEASE: datetime(2020, 1, 1, tzinfo=UTC)})
    assert store.relay_outbox() == 0
    assert OUTBOX_LEASE not in stored(store, "old") and broker.taken == []


def test_a_pass_with_nothing_pending_looks_at_no_document(store, broker, no_scan):
    for number in range(200):
        store.insert_with_events("complaints", {"_id": f"c{number}", "status": "new"},
                                 [event(f"e{number}")])
    assert store.db.complaints._store.hashed[OUTBOX_LEASE].held == {}
    assert store.relay_outbox() == 0
    broker.down = True
    store.insert_with_events("complaints", {"_id": "late"}, [event("late")])
    broker.down = False
    assert len(store.db.complaints._store.hashed[OUTBOX_LEASE].held) == 1
    assert store.relay_outbox() == 1 and broker.taken[-1] == "late"


class BatchBroker(Broker):
    """A broker that takes a batch with one confirm; ``batches``: the size of each."""

    def __init__(self):
        super().__init__()
        self.batches = []

    def publish_batch(self, events):
        if self.down:
            raise ConnectionError("broker down")
        self.batches.append(len(events))
        self.taken += [event["id"] for event in events]


def test_events_held_by_many_writes_go_with_one_confirm_and_leave_only_what_else_waits():
    broker = BatchBroker()
    store = Complaints(embedded.new_client()["t"], broker, outbox_grace_seconds=-1)
    store.create_indexes()
    for number in range(3):
        store.insert_with_events("complaints", {"_id": f"c{number}", "status": "new"}, [])
        store.update_with_events("complaints", {"_id": f"c{number}"},
                                 {"$set": {"status": "done"}}, [event(f"e{number}")],
                                 publish=False)
    assert broker.taken == []                       # held: nothing published yet
    broker.down = True                              # c2 also holds an event of another write
    store.update_with_events("complaints", {"_id": "c2"}, {"$set": {"note": "x"}},
                             [event("other")])
    broker.down = False

    store.publish_outboxes("complaints", {f"c{n}": [event(f"e{n}")] for n in range(3)})

    assert broker.batches == [3] and broker.taken == ["e0", "e1", "e2"]
    assert [stored(store, "c0")[OUTBOX], OUTBOX_LEASE in stored(store, "c0")] == [[], False]
    assert stored(store, "c2")[OUTBOX] == [event("other")] and OUTBOX_LEASE in stored(store, "c2")
    assert store.relay_outbox() == 1 and broker.taken[-1] == "other"


def test_held_events_the_broker_did_not_confirm_all_stay_for_the_relay():
    broker = BatchBroker()
    store = Complaints(embedded.new_client()["t"], broker, outbox_grace_seconds=-1)
    store.create_indexes()
    store.insert_with_events("complaints", {"_id": "c1", "status": "new"}, [event("e1")],
                             publish=False)
    broker.down = True
    store.publish_outboxes("complaints", {"c1": [event("e1")]})
    assert stored(store, "c1")[OUTBOX] == [event("e1")]
    broker.down = False
    assert store.relay_outbox() == 1 and broker.taken == ["e1"]


def test_whole_outboxes_held_are_emptied_in_one_write(monkeypatch):
    broker = BatchBroker()
    store = Complaints(embedded.new_client()["t"], broker, outbox_grace_seconds=-1)
    store.create_indexes()
    batch = [event(f"e{number}") for number in range(500)]
    store.insert_with_events("complaints", {"_id": "b1", "status": "new"}, batch, publish=False)
    writes = []
    update_many = store.db.complaints.update_many
    monkeypatch.setattr(store.db.complaints, "update_many",
                        lambda *args, **kwargs: writes.append(args) or update_many(*args, **kwargs))
    store.publish_outboxes("complaints", {"b1": batch}, whole=True)
    assert broker.batches == [500] and len(writes) == 1
    assert stored(store, "b1")[OUTBOX] == [] and OUTBOX_LEASE not in stored(store, "b1")
    assert store.relay_outbox() == 0
