"""Idempotent commands (shared/idempotency.py): a state-changing RPC takes effect once per
request — a repeat, a redelivered message, duplicates at the same moment, a retry after a
crash between claim and completion. On intake's real entrypoints, embedded store."""
import inspect
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
from greenlet import GreenletExit
from nameko.testing.services import worker_factory

from services.intake.policy import Policies
from services.intake.repository import IntakeRepository
from services.intake.service import IntakeService
from shared import idempotency
from shared.actor import Caller
from shared.clock import FrozenClock
from shared.config import load_config
from shared.errors import InvalidInput, InvalidTransition
from shared.idempotency import (
    REQUESTS,
    CallContext,
    RequestLog,
    fingerprint,
    idempotent,
    purge_expired,
)
from shared.store import ConcurrentUpdate, Repository
from tests.helpers import embedded, estates_answered_by_households

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
HOUSEHOLD = {"household_id": "h-1", "building": "3", "unit": "1", "room": "502",
             "occupied": True, "contacts": [{"name": "王芳", "phone": "13812345678"}]}
COMPLAINT = {"estate_id": "e-1", "household_id": "h-1", "channel": "wechat",
             "category": "noise", "severity": "normal", "content": "楼上装修到晚上十点"}
STEPS = (("acknowledge_complaint", {"staff_id": "s-1", "note": "已致歉"}),
         ("assign_complaint", {"department": "秩序部", "assignee_id": "s-7"}),
         ("resolve_complaint", {"staff_id": "s-7", "resolution": "已劝导"}))
CLOSE = {"closed_by": "s-1", "owner_signoff": "satisfied"}


@pytest.fixture
def service():
    config = load_config()
    service = worker_factory(IntakeService, store=embedded(IntakeRepository),
                             clock=FrozenClock(NOW), config=config,
                             policies=Policies.from_config(config), caller=Caller(None, None),
                             contact_callers=("notify",))
    service.import_households("e-1", [HOUSEHOLD], estate={"name": "测试小区"})
    return service


@pytest.fixture
def call():
    """Run what follows as the RPC a message with this correlation id carries (as
    shared.dependencies.Store sets it for each worker)."""
    def running(correlation_id, scope="service:gateway"):
        idempotency.CURRENT_CALL.set(CallContext(correlation_id, scope))
    yield running
    idempotency.CURRENT_CALL.set(None)


def resolved(service):
    complaint = service.register_complaint(COMPLAINT)
    for step, data in STEPS:
        getattr(service, step)(complaint["id"], data)
    return complaint["id"]


def complaint_doc(service, complaint_id):
    return service.store.db.complaints.find_one({"_id": complaint_id})


def closings(service, complaint_id):
    document = complaint_doc(service, complaint_id)
    return ([line["action"] for line in document["history"]].count("close"),
            [event["type"] for event in document["outbox"]].count("complaint_closed"))


def requests(service):
    return list(service.store.db[REQUESTS].find())


# the same request again ---------------------------------------------------------------

def test_a_repeat_answers_the_first_result_and_writes_nothing(service):
    first = service.register_complaint(COMPLAINT, request_id="k-1")
    again = service.register_complaint(COMPLAINT, request_id="k-1")
    assert again == first
    assert service.store.db.complaints.count_documents({}) == 1
    [record] = requests(service)
    assert record["status"] == "done" and record["_id"].endswith("|k-1")

    complaint_id = resolved(service)
    closed = service.close_complaint(complaint_id, CLOSE, request_id="close-1")
    version = complaint_doc(service, complaint_id)["version"]
    assert service.close_complaint(complaint_id, CLOSE, request_id="close-1") == closed
    assert complaint_doc(service, complaint_id)["version"] == version
    assert closings(service, complaint_id) == (1, 1)


def test_the_same_request_id_with_other_input_is_refused_naming_it(service):
    service.register_complaint(COMPLAINT, request_id="k-1")
    with pytest.raises(InvalidInput) as error:
        service.register_complaint(dict(COMPLAINT, content="另一件事"), request_id="k-1")
    assert list(error.value.errors) == ["request_id"]
    complaint_id = resolved(service)
    with pytest.raises(InvalidInput) as error:      # another RPC under a used key
        service.close_complaint(complaint_id, CLOSE, request_id="k-1")
    assert list(error.value.errors) == ["request_id"]
    assert service.store.db.complaints.count_documents({}) == 2
    assert complaint_doc(service, complaint_id)["status"] == "resolved"


@pytest.mark.parametrize("bad", ["", "has space", {"$ne": 1}, "x" * 129, 17])
def test_a_malformed_request_id_is_refused_before_anything_runs(service, bad):
    with pytest.raises(InvalidInput) as error:
        service.register_complaint(COMPLAINT, request_id=bad)
    assert list(error.value.errors) == ["request_id"]
    assert service.store.db.complaints.count_documents({}) == 0


def test_a_failed_request_frees_its_id_for_a_corrected_one(service):
    with pytest.raises(InvalidInput):
        service.register_complaint(dict(COMPLAINT, category="weather"), request_id="k-9")
    assert requests(service) == []
    assert service.register_complaint(COMPLAINT, request_id="k-9")["status"] == "registered"


def test_a_request_id_used_again_after_its_record_expired_is_a_new_request(service):
    first = service.register_complaint(COMPLAINT, request_id="k-1")
    cid = first["id"]
    service.acknowledge_complaint(cid, {"staff_id": "s-1", "note": "已致歉"},
                                  request_id="k-2")
    service.store.db[REQUESTS].delete_many({})      # 24 hours later: expired (TTL index)
    second = service.register_complaint(dict(COMPLAINT, content="另一件事"), request_id="k-1")
    assert second["id"] != cid
    # the complaint still carries the first k-2's mark: the new k-2 is not taken for it
    service.assign_complaint(cid, {"department": "秩序部"}, request_id="k-2")
    assert complaint_doc(service, cid)["status"] == "assigned"


def test_expired_records_are_purged_and_the_rest_kept(service):
    service.register_complaint(COMPLAINT, request_id="k-old")
    service.register_complaint(dict(COMPLAINT, content="另一件事"), request_id="k-new")
    service.store.db[REQUESTS].update_one(
        {"_id": {"$regex": "k-old$"}},
        {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}})
    assert purge_expired(service.store.db) == 1
    assert [record["_id"].rsplit("|", 1)[1] for record in requests(service)] == ["k-new"]


def test_request_ids_are_each_persons_own(service, call):
    call(None, "person:u-1")
    mine = service.register_complaint(COMPLAINT, request_id="k-1")
    call(None, "person:u-2")
    theirs = service.register_complaint(dict(COMPLAINT, content="另一件事"), request_id="k-1")
    assert mine["id"] != theirs["id"]
    assert service.store.db.complaints.count_documents({}) == 2


# a redelivered message: no request_id, the correlation id ---------------------------------

def test_a_redelivered_message_does_not_run_twice(service, call):
    complaint_id = resolved(service)
    call("corr-1")
    closed = service.close_complaint(complaint_id, CLOSE)
    call("corr-1")                                   # the broker hands it out again
    assert service.close_complaint(complaint_id, CLOSE) == closed
    assert closings(service, complaint_id) == (1, 1)
    call("corr-2")                                   # a new message is a new request
    with pytest.raises(InvalidTransition, match="it is closed"):
        service.close_complaint(complaint_id, CLOSE)


def test_a_redelivered_registration_makes_one_complaint(service, call):
    call("corr-7")
    first = service.register_complaint(COMPLAINT)
    call("corr-7")
    assert service.register_complaint(COMPLAINT) == first
    assert service.store.db.complaints.count_documents({}) == 1


def test_without_key_or_message_nothing_is_kept(service):
    service.register_complaint(COMPLAINT)
    service.register_complaint(COMPLAINT)
    assert service.store.db.complaints.count_documents({}) == 2
    assert requests(service) == []


# at the same moment ----------------------------------------------------------------------

def test_duplicates_at_the_same_moment_apply_once(service, monkeypatch):
    complaint_id = resolved(service)
    save = type(service.store).save_versioned

    def slow_save(self, *args, **kwargs):    # the first one holds its claim a while
        eventlet.sleep(0.05)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(type(service.store), "save_versioned", slow_save)
    threads = [eventlet.spawn(service.close_complaint, complaint_id, CLOSE, request_id="c-1")
               for _ in range(5)]
    results = [thread.wait() for thread in threads]
    assert all(result == results[0] for result in results)
    assert results[0]["status"] == "closed"
    assert closings(service, complaint_id) == (1, 1)


def test_a_repeat_waits_only_so_long_for_a_running_request(service, monkeypatch):
    monkeypatch.setattr(idempotency, "WAIT", timedelta(milliseconds=50))
    log = RequestLog(service.store.db)
    asked = fingerprint("register_complaint", (COMPLAINT,), {})
    now = datetime.now(UTC)
    service.store.db[REQUESTS].insert_one({   # held by a worker that is still at it
        "_id": "nobody|k-1", "fingerprint": asked, "status": "running", "owner": "other",
        "lease_until": now + timedelta(minutes=1), "created_at": now,
        "expires_at": now + timedelta(hours=1)})
    with pytest.raises(ConcurrentUpdate, match="still being carried out"):
        log.run("nobody|k-1", asked, lambda: pytest.fail("ran twice"))


# a crash between claim and completion ------------------------------------------------------

class Crash(GreenletExit):
    """The process dies here (a BaseException: nothing catches it on the way)."""


def crash_once_after(monkeypatch, owner, name):
    original = getattr(owner, name)
    crashed = []

    def dying(*args, **kwargs):
        result = original(*args, **kwargs)
        if not crashed:
            crashed.append(True)
            raise Crash()
        return result

    monkeypatch.setattr(owner, name, dying)


def test_a_crash_after_the_change_is_finished_once_by_the_retry(service, monkeypatch):
    complaint_id = resolved(service)
    crash_once_after(monkeypatch, IntakeRepository, "save_complaint")   # written, no answer
    with pytest.raises(Crash):
        service.close_complaint(complaint_id, CLOSE, request_id="c-1")
    [record] = requests(service)
    assert record["status"] == "running"
    assert complaint_doc(service, complaint_id)["status"] == "closed"

    # the retry waits for the lease, then takes the request over (here: at once)
    monkeypatch.setattr(idempotency, "LEASE", timedelta(0))
    service.store.db[REQUESTS].update_one({}, {"$set": {"lease_until": datetime.now(UTC)}})
    closed = service.close_complaint(complaint_id, CLOSE, request_id="c-1")
    assert closed["status"] == "closed"
    assert closings(service, complaint_id) == (1, 1)
    [record] = requests(service)
    assert (record["status"], record["takeovers"]) == ("done", 1)
    assert service.close_complaint(complaint_id, CLOSE, request_id="c-1") == closed


def test_a_crash_after_a_registration_leaves_one_complaint(service, monkeypatch):
    crash_once_after(monkeypatch, IntakeRepository, "add_complaint")
    with pytest.raises(Crash):
        service.register_complaint(COMPLAINT, request_id="r-1")
    service.store.db[REQUESTS].update_one({}, {"$set": {"lease_until": datetime.now(UTC)}})
    again = service.register_complaint(COMPLAINT, request_id="r-1")
    [stored] = service.store.db.complaints.find()
    assert again["id"] == stored["_id"]
    assert [event["type"] for event in stored["outbox"]] == ["complaint_registered"]


def test_a_crash_while_creating_a_survey_round_leaves_one_round(monkeypatch):
    from unittest.mock import Mock

    from services.survey.repository import SurveyRepository
    from services.survey.rounds import SurveyPolicies
    from services.survey.service import SurveyService

    intake = estates_answered_by_households(Mock())
    intake.list_households.return_value = {"items": [{
        "id": "h1", "estate_id": "e1", "building": "3", "unit": "1", "room": "501",
        "occupied": True, "contacts": []}], "next_cursor": None}
    survey = worker_factory(SurveyService, store=embedded(SurveyRepository),
                            clock=FrozenClock(NOW), intake=intake, config={},
                            policies=SurveyPolicies.from_config({}), caller=Caller(None, None))
    asked = {"title": "2026 下半年", "estate_ids": ["e1"], "opens_at": NOW.isoformat(),
             "closes_at": "2026-12-15T18:00:00+08:00"}
    crash_once_after(monkeypatch, SurveyRepository, "create_round")
    with pytest.raises(Crash):
        survey.create_round(asked, request_id="round-1")
    survey.store.db[REQUESTS].update_one({}, {"$set": {"lease_until": datetime.now(UTC)}})
    again = survey.create_round(asked, request_id="round-1")
    [stored] = survey.store.db.rounds.find()
    assert again["id"] == stored["_id"]


def test_a_crash_before_the_change_is_applied_by_the_retry(service, monkeypatch):
    complaint_id = resolved(service)
    original = IntakeRepository.save_complaint

    def dies_first(self, *args, **kwargs):
        monkeypatch.setattr(IntakeRepository, "save_complaint", original)
        raise Crash()

    monkeypatch.setattr(IntakeRepository, "save_complaint", dies_first)
    with pytest.raises(Crash):
        service.close_complaint(complaint_id, CLOSE, request_id="c-1")
    assert complaint_doc(service, complaint_id)["status"] == "resolved"
    service.store.db[REQUESTS].update_one({}, {"$set": {"lease_until": datetime.now(UTC)}})
    assert service.close_complaint(complaint_id, CLOSE, request_id="c-1")["status"] == "closed"
    assert closings(service, complaint_id) == (1, 1)


def test_a_live_claim_is_not_taken_over(service, monkeypatch):
    """Until its lease lapses the first runner may still be at work: no second run."""
    monkeypatch.setattr(idempotency, "WAIT", timedelta(milliseconds=50))
    complaint_id = resolved(service)
    crash_once_after(monkeypatch, IntakeRepository, "save_complaint")
    with pytest.raises(Crash):
        service.close_complaint(complaint_id, CLOSE, request_id="c-1")
    with pytest.raises(ConcurrentUpdate):
        service.close_complaint(complaint_id, CLOSE, request_id="c-1")
    assert closings(service, complaint_id) == (1, 1)


def test_an_unexpected_error_lets_a_retry_take_over_at_once(service, monkeypatch):
    complaint_id = resolved(service)
    original = IntakeRepository.save_complaint

    def fails_once(self, *args, **kwargs):
        monkeypatch.setattr(IntakeRepository, "save_complaint", original)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(IntakeRepository, "save_complaint", fails_once)
    with pytest.raises(RuntimeError):
        service.close_complaint(complaint_id, CLOSE, request_id="c-1")
    with pytest.raises(InvalidInput):         # bound to its input: something may be half-done
        service.close_complaint(complaint_id, dict(CLOSE, owner_signoff="none"),
                                request_id="c-1")
    assert service.close_complaint(complaint_id, CLOSE, request_id="c-1")["status"] == "closed"
    assert closings(service, complaint_id) == (1, 1)


# the decorator itself --------------------------------------------------------------------

class Counter:
    name = "counter"

    def __init__(self):
        self.store = embedded(Repository)
        self.runs = []

    @idempotent
    def bump(self, amount, note=None):
        self.runs.append(amount)
        return {"total": sum(self.runs), "at": NOW}


def test_results_are_kept_as_they_went_over_the_wire():
    counter = Counter()
    first = counter.bump(2, request_id="b-1")
    assert counter.bump(2, request_id="b-1") == {"total": 2, "at": NOW.isoformat()}
    assert first["at"] == NOW and counter.runs == [2]


def test_the_signature_nameko_checks_takes_request_id_and_nothing_more():
    inspect.getcallargs(Counter.bump, None, 1, note="x", request_id="b-1")
    with pytest.raises(TypeError):
        inspect.getcallargs(Counter.bump, None, 1, bogus=True)


def test_passwords_never_enter_the_fingerprint():
    one = fingerprint("create_user", ({"username": "w", "password": "secret-1"},), {})
    two = fingerprint("create_user", ({"username": "w", "password": "secret-2"},), {})
    assert one == two
    assert one != fingerprint("create_user", ({"username": "x", "password": "secret-1"},), {})


# which RPCs ------------------------------------------------------------------------------

READS = {   # what changes nothing, so takes no request_id (docs/rpc.md)
    "intake": {"ping", "list_households", "get_household", "get_estate", "list_estates",
               "list_estate_ids", "estates_with_households",
               "get_contact",
               "get_contacts",
               "list_categories", "list_departments", "get_complaint", "list_complaints", "complaint_stats",
               "group_complaint_stats", "owner_view", "get_work_order", "list_work_orders"},
    "revisit": {"ping", "list_revisits", "get_revisit", "online_revisit", "revisit_stats",
                "get_policy", "list_followups", "get_followup", "monthly_revisit_plan",
                "export_monthly_plan"},
    "survey": {"ping", "get_template", "list_templates", "get_round", "list_rounds",
               "list_invitations", "get_questionnaire", "round_report", "estate_ranking",
               "export_report", "get_rectification", "list_rectifications"},
    "notify": {"ping", "list_deliveries"},
}


@pytest.mark.parametrize("service", READS)
def test_every_rpc_that_changes_state_is_idempotent(service):
    import importlib

    from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
    from nameko.rpc import Rpc

    name = {"intake": "IntakeService", "revisit": "RevisitService",
            "survey": "SurveyService", "notify": "NotifyService"}[service]
    cls = getattr(importlib.import_module(f"services.{service}.service"), name)
    rpcs = {attribute for attribute in dir(cls)
            if any(isinstance(extension, Rpc) for extension in
                   getattr(getattr(cls, attribute), ENTRYPOINT_EXTENSIONS_ATTR, ()))}
    taking = {attribute for attribute in rpcs
              if "request_id" in inspect.signature(getattr(cls, attribute)).parameters}
    assert rpcs - taking == READS[service] & rpcs
