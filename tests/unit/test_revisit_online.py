"""Revisits the owner answers online (「回访可以通过电话、邮件、短信、在线调查等方式进行」):
which get a link, what the link shows, and that an answer is recorded once, exactly as a
phone call is (the domain first, then the service with the embedded store)."""
from datetime import UTC, datetime, timedelta

import pytest

from services.revisit import domain
from services.revisit.policies import PolicyError, RevisitPolicy
from services.revisit.repository import RevisitRepository
from shared.actor import Actor, Caller
from shared.clock import FrozenClock
from shared.errors import Forbidden, InvalidInput
from shared.schemas import revisit as schemas
from shared.schemas.base import load
from tests.helpers import embedded, handle_one
from tests.unit.test_revisit_service import (  # one definition of the shared fixtures' data
    NOW,
    PHONE_VISIT,
    SHANGHAI,
    closed_event,
    completed_event,
    households,
    make_service,
    outbox,
    reopened_event,
)

POLICY = RevisitPolicy()
ANSWER = {"satisfaction": "unsatisfied", "resolved": False, "comments": "楼道灯还是不亮"}
SATISFIED = {"satisfaction": "satisfied", "resolved": True, "comments": ""}
# what an owner may see: nothing about staff
OWNER_VIEW_KEYS = {"kind", "due_at", "expires_at", "timezone", "state"}


def closed(severity="normal", household_id="h-1"):
    return {"complaint_id": "cmp-1", "household_id": household_id, "category": "cleaning",
            "severity": severity, "closed_at": NOW, "owner_signoff": "none", "closing_no": 1}


def complaint_revisit(severity="normal", policy=POLICY, **changes):
    revisit, events = domain.schedule_complaint_revisit(
        dict(closed(severity), **changes), "e-1", policy, NOW)
    return revisit, events


def answer(**changes):
    return load(schemas.OnlineAnswer(), dict(ANSWER, **changes))


# -- which revisits may be answered online ---------------------------------------------------

def test_a_normal_complaint_revisit_gets_a_link_and_its_announcement_carries_it():
    revisit, [event] = complaint_revisit()
    token = revisit["online_token"]
    assert len(token) >= 22 and event["data"]["token"] == token
    assert (revisit["method"], revisit["assigned_role"]) == ("phone", "staff")  # staff still call


@pytest.mark.parametrize("severity", ["major", "emergency"])
def test_a_major_or_emergency_complaint_gets_no_link(severity):
    revisit, [event] = complaint_revisit(severity)
    assert "online_token" not in revisit and "token" not in event["data"]


def test_an_estate_may_let_owners_answer_emergencies_online_but_never_an_on_site_visit():
    policy = RevisitPolicy(online_complaint_severities=["normal", "emergency", "major"])
    assert "online_token" in complaint_revisit("emergency", policy)[0]
    assert "online_token" not in complaint_revisit("major", policy)[0]     # on site


def test_an_estate_may_turn_online_answers_off_or_keep_them_to_some_kinds():
    assert "online_token" not in complaint_revisit(policy=RevisitPolicy(online_kinds=[]))[0]
    only_repairs = RevisitPolicy(online_kinds=["repair"])
    assert "online_token" not in complaint_revisit(policy=only_repairs)[0]
    [(repair, _)] = domain.schedule_work_order_revisits(
        {"work_order_id": "wo-1", "household_id": "h-1", "kind": "repair", "important": False,
         "completed_at": NOW}, "e-1", "sampled", only_repairs, NOW)
    assert "online_token" in repair


def test_sampled_work_orders_get_a_link_observations_of_important_repairs_do_not():
    order = {"work_order_id": "wo-1", "household_id": "h-1", "kind": "repair",
             "important": False, "completed_at": NOW}
    [(repair, [event])] = domain.schedule_work_order_revisits(order, "e-1", "sampled", POLICY,
                                                              NOW)
    assert event["data"]["token"] == repair["online_token"]
    [(observation, _)] = domain.schedule_work_order_revisits(
        dict(order, important=True), "e-1", "important", POLICY, NOW)
    assert observation["method"] == "onsite" and "online_token" not in observation


def test_no_household_no_link():
    revisit, [event] = complaint_revisit(household_id=None)
    assert "online_token" not in revisit and "token" not in event["data"]


def test_every_token_is_new():
    assert len({complaint_revisit()[0]["online_token"] for _ in range(200)}) == 200


@pytest.mark.parametrize("values, field", [
    ({"online_kinds": ["complaint", "parcel"]}, "online_kinds"),
    ({"online_complaint_severities": ["urgent"]}, "online_complaint_severities"),
    ({"online_grace_days": -1}, "online_grace_days"),
])
def test_the_online_policy_values_are_checked(values, field):
    with pytest.raises(PolicyError, match=field):
        RevisitPolicy(**values)


# -- the link's states ---------------------------------------------------------------------

def test_the_link_is_open_until_seven_days_after_the_due_date_then_expired():
    revisit, _ = complaint_revisit()
    until = revisit["due_at"] + timedelta(days=7)
    assert POLICY.online_until(revisit) == until
    assert domain.online_state(revisit, POLICY, until - timedelta(seconds=1)) == "open"
    assert domain.online_state(dict(revisit, status="overdue"), POLICY, NOW) == "open"
    assert domain.online_state(revisit, POLICY, until) == "expired"
    assert domain.online_state(revisit, RevisitPolicy(online_grace_days=0),
                               revisit["due_at"]) == "expired"


def test_a_revisit_made_by_staff_or_cancelled_closes_the_link():
    revisit, _ = complaint_revisit()
    called, _ = domain.record(revisit, dict(PHONE_VISIT, comments="", signed_by=None,
                                            promised_reply_at=None), POLICY, NOW)
    assert domain.online_state(called, POLICY, NOW) == "closed"
    cancelled = domain.cancel(revisit, "complaint reopened (owner)", NOW)
    assert domain.online_state(cancelled, POLICY, NOW) == "closed"
    with pytest.raises(InvalidInput) as refused:
        domain.record_online(cancelled, answer(), POLICY, NOW)
    assert "token" in refused.value.errors


def test_a_call_that_did_not_reach_the_owner_leaves_the_link_open():
    revisit, _ = complaint_revisit()
    missed = dict(PHONE_VISIT, reached=False, satisfaction=None, resolved=None, comments="",
                  signed_by=None, promised_reply_at=None)
    revisit, _ = domain.record(revisit, missed, POLICY, NOW)
    assert domain.online_state(revisit, POLICY, NOW) == "open"
    done, _ = domain.record_online(revisit, answer(), POLICY, NOW)
    assert done["status"] == "done" and len(done["attempts"]) == 2


def test_what_the_owner_sees_says_what_it_is_about_and_nothing_about_staff():
    revisit, _ = complaint_revisit()
    view = domain.online_view(revisit, POLICY, NOW)
    assert set(view) == OWNER_VIEW_KEYS | {"complaint_id", "category"}
    assert (view["kind"], view["complaint_id"], view["category"]) == (
        "complaint", "cmp-1", "cleaning")
    assert view["state"] == "open" and view["timezone"] == "Asia/Shanghai"
    [(repair, _)] = domain.schedule_work_order_revisits(
        {"work_order_id": "wo-1", "household_id": "h-1", "kind": "repair", "important": False,
         "completed_at": NOW}, "e-1", "sampled", POLICY, NOW)
    assert set(domain.online_view(repair, POLICY, NOW)) == OWNER_VIEW_KEYS
    done, _ = domain.record_online(revisit, answer(), POLICY, NOW)
    assert domain.online_view(done, POLICY, NOW)["answered_at"] == NOW


def test_staff_see_whether_a_revisit_is_online_not_its_token():
    revisit, _ = complaint_revisit()
    view = domain.staff_view(revisit)
    assert view["online"] is True and "online_token" not in view
    assert domain.staff_view(complaint_revisit("major")[0])["online"] is False


# -- the answer ------------------------------------------------------------------------------

def test_an_answer_is_the_record_a_phone_call_makes_with_method_online_by_the_owner():
    phone = load(schemas.RecordRevisit(), PHONE_VISIT)
    assert set(domain.online_outcome(answer())) == set(phone)
    revisit, _ = complaint_revisit()
    done, events = domain.record_online(revisit, answer(), POLICY, NOW)
    called, called_events = domain.record(revisit, dict(phone, **ANSWER), POLICY, NOW)
    assert done["outcome"] == dict(called["outcome"], method="online", visitor_id=None)
    assert (done["status"], done["completed_at"], done["outcome"]["reached"]) == (
        "done", NOW, True)
    # the same events, except they say who answered, and how
    by_the_owner = {"method": "online", "visitor_id": None}
    assert [(e["type"], e["data"]) for e in events] == [
        (e["type"], {**e["data"], **{k: v for k, v in by_the_owner.items() if k in e["data"]}})
        for e in called_events]
    assert (events[0]["data"]["method"], events[0]["data"]["visitor_id"]) == ("online", None)
    assert [e["type"] for e in events] == ["revisit_completed", "revisit_unsatisfied"]
    assert events[1]["data"]["comments"] == "楼道灯还是不亮"


@pytest.mark.parametrize("given, unsatisfied", [
    (SATISFIED, False),
    (dict(SATISFIED, resolved=False), True),
    (dict(SATISFIED, satisfaction="very_unsatisfied"), True),
    (dict(SATISFIED, satisfaction="neutral"), False),
])
def test_unsatisfied_or_unresolved_is_told_as_after_a_call(given, unsatisfied):
    revisit, _ = complaint_revisit()
    _, events = domain.record_online(revisit, answer(**given), POLICY, NOW)
    assert ("revisit_unsatisfied" in [e["type"] for e in events]) is unsatisfied


def test_an_answered_link_takes_nothing_more():
    revisit, _ = complaint_revisit()
    done, _ = domain.record_online(revisit, answer(), POLICY, NOW)
    assert domain.online_state(done, POLICY, NOW) == "answered"
    with pytest.raises(InvalidInput) as refused:
        domain.record_online(done, answer(**SATISFIED), POLICY, NOW)
    assert refused.value.errors == {"token": ["this revisit has already been answered"]}


# -- the service -----------------------------------------------------------------------------

@pytest.fixture
def service(repository, clock):
    return make_service(repository, clock)


@pytest.fixture
def repository():
    return embedded(RevisitRepository)


@pytest.fixture
def clock():
    return FrozenClock(NOW)


def token_of(service, revisit_id="rv-cmp-1-1"):
    return service.store.db.revisits.find_one({"_id": revisit_id})["online_token"]


def test_the_link_shows_the_revisit_and_staff_never_see_the_token(service):
    handle_one(service.schedule_complaint_revisits, closed_event())
    token = token_of(service)
    scheduled = service.store.db.revisits.find_one()["outbox"][0]
    assert scheduled["data"]["token"] == token
    assert service.online_revisit(token) == {
        "kind": "complaint", "complaint_id": "cmp-1", "category": "cleaning",
        "due_at": (NOW + timedelta(days=3)).isoformat(),
        "expires_at": (NOW + timedelta(days=10)).isoformat(),
        "timezone": "Asia/Shanghai", "state": "open"}
    for seen in (service.get_revisit("rv-cmp-1-1"), *service.list_revisits({})):
        assert seen["online"] is True and token not in str(seen)


def test_an_unsatisfied_answer_is_recorded_once_and_tells_intake(service):
    handle_one(service.schedule_complaint_revisits, closed_event())
    token = token_of(service)
    shown = service.record_online_revisit(token, ANSWER)
    assert shown["state"] == "answered" and shown["answered_at"] == NOW.isoformat()
    assert outbox(service, "rv-cmp-1-1") == [
        "revisit_scheduled", "revisit_completed", "revisit_unsatisfied"]
    stored = service.get_revisit("rv-cmp-1-1")
    assert stored["status"] == "done" and stored["outcome"]["method"] == "online"
    assert stored["outcome"]["visitor_id"] is None and stored["outcome"]["reached"] is True

    with pytest.raises(InvalidInput) as refused:      # a double submit counts once
        service.record_online_revisit(token, SATISFIED)
    assert "token" in refused.value.errors
    assert outbox(service, "rv-cmp-1-1").count("revisit_completed") == 1
    assert service.online_revisit(token)["state"] == "answered"


def test_the_online_record_has_the_shape_of_a_phone_record(service):
    handle_one(service.schedule_complaint_revisits, closed_event(complaint_id="cmp-1"))
    handle_one(service.schedule_complaint_revisits, closed_event(complaint_id="cmp-2"))
    online = service.record_online_revisit(token_of(service), SATISFIED)
    assert online["state"] == "answered"
    by_phone = service.record_revisit("rv-cmp-2-1", dict(PHONE_VISIT, comments=""))
    answered = service.get_revisit("rv-cmp-1-1")
    assert set(answered["outcome"]) == set(by_phone["outcome"])
    assert {k: v for k, v in answered["outcome"].items() if k not in ("method", "visitor_id")} \
        == {k: v for k, v in by_phone["outcome"].items() if k not in ("method", "visitor_id")}
    assert set(answered) == set(by_phone)


def test_two_answers_at_once_one_wins(service, repository, clock):
    handle_one(service.schedule_complaint_revisits, closed_event())
    token = token_of(service)
    other = make_service(repository, clock)
    save = service.store.save

    def the_other_answers_first(revisit, events):
        service.store.save = save
        other.record_online_revisit(token, SATISFIED)
        return save(revisit, events)

    service.store.save = the_other_answers_first
    with pytest.raises(InvalidInput) as refused:
        service.record_online_revisit(token, ANSWER)
    assert refused.value.errors == {"token": ["this revisit has already been answered"]}
    assert outbox(service, "rv-cmp-1-1") == ["revisit_scheduled", "revisit_completed"]
    assert service.get_revisit("rv-cmp-1-1")["outcome"]["satisfaction"] == "satisfied"


@pytest.mark.parametrize("token", ["x" * 22, "short", None, {"$ne": None}, "bad token here xx"])
def test_an_unknown_or_malformed_link_is_refused_on_token(service, token):
    handle_one(service.schedule_complaint_revisits, closed_event())
    for call in (lambda: service.online_revisit(token),
                 lambda: service.record_online_revisit(token, ANSWER)):
        with pytest.raises(InvalidInput) as refused:
            call()
        assert list(refused.value.errors) == ["token"]


def test_a_routine_link_works_once_its_month_announces_it(service, clock):
    service.intake.list_households.return_value = households(1)
    service.plan_routine_revisits("e-1", 2027)
    planned = service.store.db.revisits.find_one()
    token = planned["online_token"]
    assert not planned["announced"] and token
    with pytest.raises(InvalidInput, match="unknown link"):      # nobody can hold it yet
        service.online_revisit(token)
    clock.at = datetime(2027, planned["month"], 1, 0, 5, tzinfo=SHANGHAI).astimezone(UTC)
    service.watch_deadlines()
    [announced] = service.store.db.revisits.find_one({"_id": planned["_id"]})["outbox"]
    assert announced["type"] == "revisit_scheduled" and announced["data"]["token"] == token
    assert service.online_revisit(token)["state"] == "open"


@pytest.mark.parametrize("change, field", [
    ({"satisfaction": None}, "satisfaction"),
    ({"satisfaction": "ecstatic"}, "satisfaction"),
    ({"resolved": "yes"}, "resolved"),
    ({"comments": "长" * 2001}, "comments"),
    ({"visitor_id": "s-1"}, "visitor_id"),
])
def test_a_bad_answer_names_the_field_and_writes_nothing(service, change, field):
    handle_one(service.schedule_complaint_revisits, closed_event())
    data = {key: value for key, value in dict(ANSWER, **change).items() if value is not None}
    with pytest.raises(InvalidInput) as refused:
        service.record_online_revisit(token_of(service), data)
    assert field in refused.value.errors
    assert service.get_revisit("rv-cmp-1-1")["status"] == "scheduled"


def test_the_link_closes_when_staff_call_or_the_complaint_is_reopened_and_expires(
        service, clock):
    handle_one(service.schedule_complaint_revisits, closed_event(complaint_id="cmp-1"))
    service.record_revisit("rv-cmp-1-1", PHONE_VISIT)
    assert service.online_revisit(token_of(service))["state"] == "closed"

    handle_one(service.schedule_complaint_revisits, closed_event(complaint_id="cmp-2"))
    service.cancel_superseded_revisits(reopened_event(complaint_id="cmp-2"))
    assert service.online_revisit(token_of(service, "rv-cmp-2-1"))["state"] == "closed"

    service.follow_up_work_order(completed_event(kind="other_service"))
    [order] = service.list_revisits({"source_id": "wo-1"})
    token = token_of(service, order["id"])
    clock.advance(timedelta(days=14))
    assert service.online_revisit(token)["state"] == "expired"
    with pytest.raises(InvalidInput, match="expired"):
        service.record_online_revisit(token, SATISFIED)


def test_staff_cannot_answer_in_the_owners_name(repository, clock):
    service = make_service(repository, clock)
    handle_one(service.schedule_complaint_revisits, closed_event())
    service.caller = Caller(Actor("clerk-1", ("cs_staff",), ("e-1",)), "gateway")
    with pytest.raises(Forbidden):
        service.record_online_revisit(token_of(service), SATISFIED)
    assert service.get_revisit("rv-cmp-1-1")["status"] == "scheduled"
