"""notify's dispatcher at group scale: batches claimed exactly once, a dead worker's batch
taken over after its claim, contacts looked up a batch at a time, a batch's events
published with one confirm, and each channel's provider rate honoured."""
from datetime import timedelta

import pytest
from mongomock.collection import Collection

from services.notify import pacing
from services.notify.delivery_log import DUE_AT
from services.notify.pacing import TokenBucket
from services.notify.settings import NotifySettings, SettingsError
from shared.clock import FrozenClock
from tests.unit import test_notify_service as base
from tests.unit.test_notify_service import CONTACT, console_messages, event, handle, shanghai

# the service tests' fixtures, shared
plugins, repository, intake, make_service, console_log = (
    base.plugins, base.repository, base.intake, base.make_service, base.console_log)

LEASE = timedelta(seconds=120)   # the default claim


@pytest.fixture
def clock():
    return FrozenClock(shanghai(21, 0))


@pytest.fixture
def queued(make_service, repository, intake, clock):
    """A report published in the evening to 30 households: 30 deliveries wait for the morning."""
    def make(households=30, **config):
        service = make_service(**config)
        intake.list_households.return_value = [{"id": f"h-{n}"} for n in range(households)]
        intake.get_contact.side_effect = lambda ref: dict(CONTACT, household_id=ref)
        clock.at = shanghai(23, 0)
        handle(service, event("survey_report_published", when=clock.at))
        clock.at = shanghai(8, 0, day=10)
        intake.reset_mock()
        return service
    return make


def statuses(repository):
    return sorted(d["status"] for d in repository.db.deliveries.find())


# claimed in batches, exactly once -------------------------------------------------------

def test_two_dispatchers_racing_for_the_same_batch_each_take_a_different_part(
        queued, repository, clock, monkeypatch):
    queued()
    taken_by_the_other, raced_once = [], []
    claim = Collection.update_many

    def raced(collection, *args, **kwargs):
        # the other instance claims right after this one found its candidates
        if not raced_once:
            raced_once.append(True)
            taken_by_the_other.extend(repository.claim_due(clock.at, "other", LEASE, 10))
        return claim(collection, *args, **kwargs)
    monkeypatch.setattr(Collection, "update_many", raced)
    mine = repository.claim_due(clock.at, "mine", LEASE, 25)
    monkeypatch.undo()

    assert len(taken_by_the_other) == 10 and len(mine) == 15
    ids = [d["_id"] for d in mine + taken_by_the_other]
    assert len(set(ids)) == 25
    assert {d["claim"] for d in mine} == {"mine"}
    rest = repository.claim_due(clock.at, "third", LEASE, 100)
    assert len(rest) == 5 and not {d["_id"] for d in rest} & set(ids)


def test_two_dispatchers_sending_batches_together_send_each_notice_once(
        queued, make_service, repository, console_log, monkeypatch):
    first = queued(households=450)
    second = make_service()
    first.settings.dispatch_batch = second.settings.dispatch_batch = 100   # five batches
    interleaved = []
    attempt = first.deliveries.attempt

    def attempt_then_let_the_other_run(delivery):
        if not interleaved:           # the other instance runs a whole tick meanwhile
            interleaved.append(True)
            second.dispatch_due()
        return attempt(delivery)
    monkeypatch.setattr(first.deliveries, "attempt", attempt_then_let_the_other_run)
    first.dispatch_due()

    assert interleaved and statuses(repository) == ["sent"] * 450
    messages = console_messages(console_log)
    assert len(messages) == 450
    # no publisher here: the events stay in the outboxes, one per delivery
    sent = [event for d in repository.db.deliveries.find() for event in d["outbox"]]
    assert len({event["data"]["delivery_id"] for event in sent}) == len(sent) == 450


def test_a_dead_workers_batch_is_taken_over_once_its_claim_lapses(
        queued, repository, clock, console_log):
    service = queued(households=5)
    dead = repository.claim_due(clock.at, "dead-worker", LEASE, 100)   # then it died
    assert len(dead) == 5
    service.dispatch_due()
    assert console_messages(console_log) == [] and statuses(repository) == ["queued"] * 5

    clock.advance(LEASE)
    service.dispatch_due()
    assert statuses(repository) == ["sent"] * 5 and len(console_messages(console_log)) == 5
    # the dead worker, back, cannot record anything for deliveries it no longer holds
    assert not repository.save_outcome(dead[0]["_id"], "dead-worker", {"status": "failed"})


def test_a_batch_that_outlives_its_claim_leaves_the_rest_to_the_next_claim(
        queued, repository, clock):
    service = queued(households=5, NOTIFY_CHANNELS=["recording"])
    channel = service.channel("recording")
    send = channel.send

    def slow_send(address, message):   # the gateway hangs past the claim
        clock.advance(LEASE)
        return send(address, message)
    channel.send = slow_send
    service.dispatch_due()
    assert statuses(repository) == ["queued"] * 4 + ["sent"]
    channel.send = send
    service.dispatch_due()
    assert statuses(repository) == ["sent"] * 5 and len(channel.sent) == 5


def test_only_queued_deliveries_hold_a_due_time_and_the_oldest_due_come_first(
        queued, repository, clock):
    service = queued(households=3)
    assert repository.db.deliveries.count_documents({DUE_AT: {"$exists": True}}) == 3
    ids = sorted(d["_id"] for d in repository.db.deliveries.find())
    for minutes, delivery_id in enumerate(reversed(ids)):   # the last stored is due first
        due = clock.at - timedelta(minutes=10 - minutes)
        repository.db.deliveries.update_one(
            {"_id": delivery_id}, {"$set": {DUE_AT: due, "next_attempt_at": due}})
    assert [d["_id"] for d in repository.claim_due(clock.at, "a", LEASE, 10)] == \
        list(reversed(ids))
    clock.advance(LEASE)
    service.dispatch_due()
    assert statuses(repository) == ["sent"] * 3
    assert repository.db.deliveries.count_documents({DUE_AT: {"$exists": True}}) == 0


def test_a_retry_is_due_at_its_next_attempt(make_service, repository, intake, clock):
    from services.notify.channels import ChannelError
    service = make_service(NOTIFY_CHANNELS=["recording"])
    service.channel("recording").failures = [ChannelError("busy", retryable=True)]
    clock.at = shanghai(10, 0)
    handle(service, event("survey_reminder_due", when=clock.at))
    [delivery] = repository.db.deliveries.find()
    assert delivery["status"] == "queued"
    assert delivery[DUE_AT] == delivery["next_attempt_at"] == clock.at + timedelta(seconds=30)


def test_deliveries_queued_before_due_times_existed_get_theirs(repository, clock):
    repository.db.deliveries.insert_one({
        "_id": "old", "status": "queued", "next_attempt_at": clock.at,
        "claimed_until": clock.at - timedelta(hours=1)})
    repository.create_indexes()
    assert repository.find_delivery("old")[DUE_AT] == clock.at
    assert [d["_id"] for d in repository.claim_due(clock.at, "a", LEASE, 10)] == ["old"]


# contacts in batches --------------------------------------------------------------------

def test_a_batch_that_waited_looks_its_contacts_up_in_one_call(queued, intake, repository):
    service = queued(households=30)
    service.set_preferences("h-3", {"opt_out": True})
    service.dispatch_due()
    [call] = intake.get_contacts.call_args_list
    assert sorted(call.args[0]) == sorted(f"h-{n}" for n in range(30))
    assert statuses(repository) == ["sent"] * 29 + ["suppressed"]


def test_a_broadcast_looks_its_households_contacts_up_in_batches(
        make_service, intake, repository):
    service = make_service()
    intake.list_households.return_value = [{"id": f"h-{n}"} for n in range(1200)]
    intake.get_contact.side_effect = lambda ref: dict(CONTACT, household_id=ref)
    envelope = handle(service, event("survey_report_published"))
    assert [len(call.args[0]) for call in intake.get_contacts.call_args_list] == [500, 500, 200]
    handle(service, envelope)   # redelivered: nothing looked up again
    assert intake.get_contacts.call_count == 3
    assert repository.db.deliveries.count_documents({}) == 1200


def test_intake_down_keeps_a_batch_that_waited_and_sends_the_rest(
        queued, make_service, repository, intake, clock):
    service = queued(households=3)
    from nameko.exceptions import RemoteError
    intake.get_contacts.side_effect = RemoteError("ConnectionError", "intake unavailable")
    service.dispatch_due()
    assert statuses(repository) == ["queued"] * 3


# a batch's events with one confirm ------------------------------------------------------

class BatchPublisher:
    def __init__(self, fail=False):
        self.batches, self.fail = [], fail

    def publish_batch(self, envelopes):
        if self.fail:
            raise ConnectionError("broker gone")
        self.batches.append(list(envelopes))

    def publish(self, envelope):   # the relay's way
        self.batches.append([envelope])


def test_a_batch_s_events_go_with_one_confirm_and_leave_the_outbox(queued, repository):
    service = queued(households=30)
    repository.publisher = publisher = BatchPublisher()
    service.dispatch_due()
    [batch] = publisher.batches
    assert len(batch) == 30 and {e["type"] for e in batch} == {"notification_sent"}
    assert all(not d["outbox"] and "outbox_lease" not in d
               for d in repository.db.deliveries.find())


def test_events_the_broker_did_not_confirm_stay_for_the_relay(queued, repository):
    service = queued(households=4)
    repository.publisher = BatchPublisher(fail=True)
    repository.outbox_grace = timedelta(0)
    service.dispatch_due()
    assert statuses(repository) == ["sent"] * 4
    assert sum(len(d["outbox"]) for d in repository.db.deliveries.find()) == 4
    repository.publisher = relay = BatchPublisher()
    assert repository.relay_outbox() == 4 and len(relay.batches) == 4


# the provider's rate ----------------------------------------------------------------------

def test_a_token_bucket_allows_its_rate_with_a_burst_of_one_second():
    now = [0.0]
    bucket = TokenBucket(2, clock=lambda: now[0])
    assert [bucket.reserve() for _ in range(4)] == [0, 0, 0.5, 1.0]
    now[0] = 10.0
    assert bucket.reserve() == 0


def test_the_dispatcher_honours_a_channel_s_rate(queued, repository, monkeypatch):
    now, waits = [0.0], []
    monkeypatch.setattr(pacing, "monotonic", lambda: now[0])

    def pause(seconds):
        waits.append(seconds)
        now[0] += seconds
    monkeypatch.setattr(pacing, "pause", pause)
    service = queued(households=10, NOTIFY_CHANNELS=["recording"],
                     NOTIFY_CHANNEL_SETTINGS={"recording": {"rate_per_second": 2}})
    service.dispatch_due()
    assert len(service.channel("recording").sent) == 10
    assert now[0] == pytest.approx(4.0)    # 2 at once, then one each half second
    assert len(waits) == 8


def test_without_a_rate_nothing_waits(queued, monkeypatch):
    monkeypatch.setattr(pacing, "pause", lambda seconds: pytest.fail("paused"))
    queued(households=5).dispatch_due()


def test_a_slow_channel_claims_no_more_than_it_can_send_within_half_a_claim():
    settings = NotifySettings({"NOTIFY_CHANNELS": ["console"], "NOTIFY_CHANNEL_SETTINGS": {
        "console": {"rate_per_second": 0.5}}, "NOTIFY_CLAIM_SECONDS": 120})
    assert settings.dispatch_batch == 30
    assert NotifySettings({"NOTIFY_CHANNELS": ["console"]}).dispatch_batch == 500


@pytest.mark.parametrize("rate", [0, -1, "fast", True])
def test_a_rate_that_is_not_a_positive_number_stops_the_start(rate):
    with pytest.raises(SettingsError, match="rate_per_second"):
        NotifySettings({"NOTIFY_CHANNELS": ["console"],
                        "NOTIFY_CHANNEL_SETTINGS": {"console": {"rate_per_second": rate}}})
