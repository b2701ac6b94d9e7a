"""survey's RPCs on the embedded store: worker_factory, a frozen clock, intake mocked."""
import base64
import json
from datetime import UTC, datetime, timedelta
from unittest.mock import Mock

import pytest
from nameko.testing.services import worker_factory

from services.survey import answering, invitations, reports, round_work, tallies
from services.survey.repository import SurveyRepository
from services.survey.rounds import SurveyPolicies
from services.survey.service import SurveyService
from shared.actor import Actor, Caller
from shared.clock import FrozenClock
from shared.envelope import event_id, parse_event
from shared.errors import InvalidInput, InvalidTransition, NotFound
from shared.estates import EstateCopies
from shared.schemas.vocabulary import SURVEY_CATEGORIES
from tests.helpers import embedded, estates_answered_by_households, prepared

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
ZONE = "Asia/Shanghai"
HOUSEHOLDS = {"e1": ["h1", "h2", "h3", "h4"], "e2": ["h5", "h6"]}
VACANT = {"e2": ["h7"]}
TEMPLATE = ["cleaning", "order", "greening"]


def list_households(estate_id, filters, paged=False):
    """intake's list_households: filters {} or {"occupied": true/false}, paged or not."""
    rows = [{"id": household_id, "estate_id": estate_id, "building": "3", "unit": "1",
             "room": f"50{n}", "occupied": household_id not in VACANT.get(estate_id, []),
             "contacts": []}
            for n, household_id in enumerate(
                HOUSEHOLDS.get(estate_id, []) + VACANT.get(estate_id, []))]
    return pages([row for row in rows if filters.get("occupied", row["occupied"]) == row[
        "occupied"]], filters, paged)


def pages(rows, filters, paged):
    """``rows`` as intake lists them: a page after ``cursor`` (here the place to start)."""
    assert set(filters) <= {"occupied", "limit", "cursor"}
    if not paged:
        return rows
    start, limit = int(filters.get("cursor") or 0), filters.get("limit") or 100
    after = start + limit
    return {"items": rows[start:after], "next_cursor": str(after) if after < len(rows) else None}


@pytest.fixture
def store():
    return embedded(SurveyRepository)


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def service(store, clock):
    intake = estates_answered_by_households(Mock())
    intake.list_households.side_effect = list_households
    return worker_factory(SurveyService, store=store, clock=clock, intake=intake,
                          config={"SURVEY_POLICY": {"min_ranked_returns": 2}},
                          policies=SurveyPolicies.from_config(
                              {"SURVEY_POLICY": {"min_ranked_returns": 2}}),
                          caller=Caller(None, None), estates=EstateCopies(store.db, None, ZONE))


def create(service, **changes):
    """create_round's answer: the round being created."""
    return service.create_round(dict({
        "title": "2026 上半年满意度调查", "estate_ids": ["e1", "e2"],
        "opens_at": "2026-06-01T08:00:00+08:00", "closes_at": "2026-06-15T18:00:00+08:00",
        "categories": TEMPLATE,
    }, **changes))


def new_round(service, **changes):
    """A round once the background work create_round started has run to the end."""
    return prepared(service, create(service, **changes))


def tokens(service, round_id):
    return {i["household_id"]: i["token"] for i in service.list_invitations(round_id)}


def outbox_events(store, collection):
    """Events still waiting in outboxes: with no publisher, everything written stays there."""
    return [parse_event(event) for document in store.db[collection].find()
            for event in document.get("outbox", [])]


def counts(store):
    return {name: store.db[name].count_documents({})
            for name in ("rounds", "invitations", "responses", "tallies")}


# creating a round -----------------------------------------------------------------

def test_create_round_answers_at_once_and_the_background_work_invites_every_household(
        service, store):
    answer = create(service)
    assert answer["status"] == "creating" and answer["invited"] == {"e1": 0, "e2": 0}
    assert answer["progress"]["done"] is False
    assert store.db.invitations.count_documents({}) == 0

    round_ = prepared(service, answer)

    assert round_["status"] == "open" and round_["invited"] == {"e1": 4, "e2": 2}
    assert {key: round_["progress"][key] for key in (
        "households_seen", "invited", "issued", "done")} == {
        "households_seen": 6, "invited": 6, "issued": 6, "done": True}
    assert round_["categories"] == TEMPLATE and round_["anonymous"] is True
    assert round_["closes_at"] == "2026-06-15T10:00:00+00:00"
    assert "outbox" not in round_
    json.dumps(round_)
    service.intake.list_households.assert_any_call(
        "e2", {"occupied": True, "limit": 1000, "cursor": None}, paged=True)

    invites = service.list_invitations(round_["id"])
    assert [i["household_id"] for i in invites] == ["h1", "h2", "h3", "h4", "h5", "h6"]
    assert {i["status"] for i in invites} == {"issued"}
    assert len({i["token"] for i in invites}) == 6
    assert all(i["id"] == invitations.invitation_id(round_["id"], i["household_id"])
               for i in invites)
    assert [i["household_id"] for i in service.list_invitations(round_["id"], "e2")] \
        == ["h5", "h6"]


def test_create_round_announces_the_round_per_estate_and_each_invitation(service, store):
    round_ = new_round(service)

    opened = outbox_events(store, "rounds")
    assert [(e["type"], e["estate_id"], e["data"]["invited"]) for e in opened] == [
        ("survey_round_opened", "e1", 4), ("survey_round_opened", "e2", 2)]
    issued = outbox_events(store, "invitation_batches")
    assert {e["type"] for e in issued} == {"survey_invitation_issued"}
    assert sorted((e["estate_id"], e["data"]["household_id"], e["data"]["token"])
                  for e in issued) == sorted(
        (i["estate_id"], i["household_id"], i["token"])
        for i in service.list_invitations(round_["id"]))


def test_a_round_defaults_to_the_nine_categories(service):
    round_ = service.create_round({
        "title": "2026 H1", "estate_ids": ["e2"],
        "opens_at": "2026-06-01T00:00:00+00:00", "closes_at": "2026-06-15T00:00:00+00:00",
    })
    assert round_["categories"] == list(SURVEY_CATEGORIES)
    assert round_["kind"] == "half_yearly"


@pytest.mark.parametrize("change, field", [
    ({"closes_at": "2026-05-31T00:00:00+00:00"}, "closes_at"),     # before opens_at
    ({"opens_at": "2026-05-01T00:00:00+00:00",
      "closes_at": "2026-05-31T00:00:00+00:00"}, "closes_at"),     # already past
    ({"categories": ["cleaning", "parking_lot"]}, "categories.1"),
    ({"template_id": "villa"}, "template_id"),
    ({"estate_ids": []}, "estate_ids"),
    ({"estate_ids": ["e1", "empty-estate"]}, "estate_ids"),         # nobody to invite there
    ({"estate_ids": [{"$gt": ""}]}, "estate_ids.0.$gt"),
])
def test_a_bad_round_is_refused_naming_the_field_and_nothing_is_written(
        service, store, change, field):
    with pytest.raises(InvalidInput) as error:
        new_round(service, **change)
    assert field in error.value.errors
    assert counts(store) == {"rounds": 0, "invitations": 0, "responses": 0, "tallies": 0}


def test_vacant_households_are_invited_only_when_asked(service):
    usual = new_round(service, estate_ids=["e2"])
    everyone = new_round(service, estate_ids=["e2"], occupied_only=False)

    assert usual["invited"] == {"e2": 2} and usual["occupied_only"] is True
    assert everyone["invited"] == {"e2": 3} and everyone["occupied_only"] is False
    service.intake.list_households.assert_any_call("e2", {"limit": 1000, "cursor": None},
                                                   paged=True)
    assert [i["household_id"] for i in service.list_invitations(everyone["id"])] \
        == ["h5", "h6", "h7"]
    with pytest.raises(InvalidInput) as error:
        new_round(service, occupied_only="no")
    assert list(error.value.errors) == ["occupied_only"]


# a client retrying create_round gets the round its first call made --------------------

def test_a_retried_create_round_returns_the_same_round_and_announces_it_once(service, store):
    first = new_round(service, request_id="hq-2026-h1")
    calls = service.intake.list_households.call_count

    again = new_round(service, request_id="hq-2026-h1")

    assert again == first and again["request_id"] == "hq-2026-h1"
    assert counts(store) == {"rounds": 1, "invitations": 6, "responses": 0, "tallies": 2}
    assert service.intake.list_households.call_count == calls     # nothing asked again
    assert [e["type"] for e in outbox_events(store, "rounds")] == ["survey_round_opened"] * 2
    assert len(outbox_events(store, "invitation_batches")) == 6
    # without a request id every call is a new round
    assert new_round(service)["id"] != new_round(service)["id"] != first["id"]


def test_a_retry_still_returns_its_round_after_the_round_moved_on(service, clock):
    first = new_round(service, request_id="hq-2026-h1")
    service.close_round(first["id"])
    clock.advance(timedelta(days=30))             # closes_at past: a new round would be refused

    again = new_round(service, request_id="hq-2026-h1")

    assert (again["id"], again["status"]) == (first["id"], "closed")


def test_a_request_id_used_for_a_different_round_is_refused(service, store):
    first = new_round(service, request_id="hq-2026-h1")
    before = counts(store)

    with pytest.raises(InvalidInput) as error:
        new_round(service, request_id="hq-2026-h1", estate_ids=["e2"])

    assert list(error.value.errors) == ["request_id"]
    assert first["id"] in error.value.errors["request_id"][0]
    assert counts(store) == before
    # the same request however its times are written is the same request
    assert new_round(service, request_id="hq-2026-h1",
                     opens_at="2026-06-01T00:00:00+00:00")["id"] == first["id"]


def test_a_retry_running_alongside_the_first_call_gets_the_first_calls_round(
        service, store, monkeypatch):
    first = new_round(service, request_id="hq-2026-h1")
    # The retry looked for the request before the first call had stored its round.
    lookups = iter([None])
    monkeypatch.setattr(store, "round_for_request", lambda request_id: next(
        lookups, None) or SurveyRepository.round_for_request(store, request_id))

    again = new_round(service, request_id="hq-2026-h1")

    assert again["id"] == first["id"]
    assert counts(store) == {"rounds": 1, "invitations": 6, "responses": 0, "tallies": 2}
    assert len(outbox_events(store, "invitation_batches")) == 6


def test_a_retry_while_the_round_is_prepared_gets_that_round(service, store):
    first = create(service, request_id="hq-2026-h1")

    # the background work has not run yet: a retry reports the round being created
    again = create(service, request_id="hq-2026-h1")
    assert (again["id"], again["status"]) == (first["id"], "creating")

    service.prepare_rounds()
    assert create(service, request_id="hq-2026-h1")["status"] == "open"
    assert counts(store) == {"rounds": 1, "invitations": 6, "responses": 0, "tallies": 2}
    assert len(outbox_events(store, "invitation_batches")) == 6


def test_a_round_abandoned_before_its_request_id_was_released_does_not_block_a_retry(
        service, store):
    stuck = create(service, request_id="hq-2026-h1")
    # a crash between abandoning a round and discarding what it left
    store.db.rounds.update_one({"_id": stuck["id"]}, {"$set": {"status": "abandoned"}})

    retried = new_round(service, request_id="hq-2026-h1")

    assert retried["id"] != stuck["id"] and retried["status"] == "open"
    assert store.db.rounds.find_one({"_id": stuck["id"]})["abandoned_request_id"] == "hq-2026-h1"


def test_unknown_round_is_not_found(service):
    for call in (service.list_invitations, service.close_round, service.round_report):
        with pytest.raises(NotFound):
            call("rnd-nope")


def test_a_round_asks_intake_about_its_estates_a_thousand_at_a_time(service, store):
    estate_ids = [f"e-{n:04d}" for n in range(1500)]
    service.intake.estates_with_households.side_effect = lambda ids, filters=None: {
        "unknown": [], "without_households": []}

    create(service, estate_ids=estate_ids)

    asked = service.intake.estates_with_households.call_args_list
    assert [(list(call.args[0]), call.args[1]) for call in asked] == [
        (estate_ids[:1000], {"occupied": True}), (estate_ids[1000:], {"occupied": True})]
    service.intake.list_households.assert_not_called()   # households: the background's


def test_a_round_naming_unknown_or_empty_estates_is_refused_naming_each(service, store):
    service.intake.estates_with_households.side_effect = lambda ids, filters=None: {
        "unknown": ["e-x", "e-y"], "without_households": ["e2"]}
    with pytest.raises(InvalidInput) as refused:
        create(service, estate_ids=["e1", "e-x", "e2", "e-y"])
    assert refused.value.errors == {"estate_ids": ["unknown estate: e-x", "unknown estate: e-y"]}

    service.intake.estates_with_households.side_effect = lambda ids, filters=None: {
        "unknown": [], "without_households": ["e2"]}
    with pytest.raises(InvalidInput) as refused:
        create(service, occupied_only=False)
    assert refused.value.errors == {"estate_ids": ["e2: no households to invite"]}
    assert service.intake.estates_with_households.call_args.args[1] == {}
    assert store.db.rounds.count_documents({}) == 0


def test_an_estate_outside_the_round_is_refused(service):
    round_ = new_round(service, estate_ids=["e1"])
    with pytest.raises(InvalidInput) as error:
        service.round_report(round_["id"], "e2")
    assert "estate_id" in error.value.errors


# answering --------------------------------------------------------------------------

def test_submit_response_is_accepted_and_uses_the_invitation(service, store):
    round_ = new_round(service)
    token = tokens(service, round_["id"])["h1"]

    result = service.submit_response(token, {"answers": {"cleaning": 5, "order": None}})

    assert result == {"accepted": True}
    (invitation,) = [i for i in service.list_invitations(round_["id"]) if i["token"] == token]
    assert invitation["status"] == "answered"
    assert invitation["answered_at"] == "2026-06-01T02:00:00+00:00"
    (response,) = store.db.responses.find()
    assert response["answers"] == {"cleaning": 5, "order": None}
    assert response["estate_id"] == "e1"


def test_a_used_token_is_refused_and_counted_once(service, store):
    round_ = new_round(service)
    token = tokens(service, round_["id"])["h1"]
    service.submit_response(token, {"answers": {"cleaning": 5}})

    with pytest.raises(InvalidInput) as error:
        service.submit_response(token, {"answers": {"cleaning": 1}})

    assert error.value.errors == {"token": [answering.USED_TOKEN]}
    assert store.db.responses.count_documents({}) == 1
    assert service.round_report(round_["id"])["categories"]["cleaning"]["answered"] == 1


def test_a_concurrent_double_submission_counts_once(service, store, monkeypatch):
    round_ = new_round(service)
    token = tokens(service, round_["id"])["h1"]
    before = store.find_invitation(token)
    service.submit_response(token, {"answers": {"cleaning": 5}})
    # The second submission read the invitation before the first claimed it.
    reads = iter([before])
    monkeypatch.setattr(store, "find_invitation",
                        lambda t: next(reads, None) or SurveyRepository.find_invitation(store, t))

    with pytest.raises(InvalidInput) as error:
        service.submit_response(token, {"answers": {"cleaning": 1}})

    assert error.value.errors == {"token": [answering.USED_TOKEN]}
    report = service.round_report(round_["id"])
    assert (report["returned"], report["categories"]["cleaning"]["score"]) == (1, 100.0)


@pytest.mark.parametrize("token", ["AAAAAAAAAAAAAAAAAAAAAA", {"$ne": ""}, None, "short"])
def test_an_unknown_or_malformed_token_is_refused(service, store, token):
    new_round(service)
    with pytest.raises(InvalidInput) as error:
        service.submit_response(token, {"answers": {"cleaning": 5}})
    assert list(error.value.errors) == ["token"]
    assert store.db.responses.count_documents({}) == 0


@pytest.mark.parametrize("answers, field", [
    ({"cleaning": 6}, "answers.cleaning"),
    ({"order": 0}, "answers.order"),
    ({"order": True}, "answers.order"),
    ({"greening": 3.5}, "answers.greening"),
    ({"water_supply": 4}, "answers.water_supply"),          # not in this round's template
])
def test_an_out_of_range_answer_is_refused_and_nothing_is_written(service, store, answers, field):
    round_ = new_round(service)
    token = tokens(service, round_["id"])["h1"]

    with pytest.raises(InvalidInput) as error:
        service.submit_response(token, {"answers": dict({"cleaning": 4}, **answers)})

    assert list(error.value.errors) == [field]
    assert store.db.responses.count_documents({}) == 0
    assert service.round_report(round_["id"])["returned"] == 0
    assert store.find_invitation(token)["status"] == "issued"
    # the owner can correct the form and send it again
    assert service.submit_response(token, {"answers": {"cleaning": 4}}) == {"accepted": True}


def test_an_anonymous_response_has_no_household_id(service, store):
    anonymous = new_round(service)
    named = new_round(service, anonymous=False, estate_ids=["e2"])
    service.submit_response(tokens(service, anonymous["id"])["h1"], {"answers": {"order": 4}})
    service.submit_response(tokens(service, named["id"])["h5"], {"answers": {"order": 4}})

    anonymous_response = store.db.responses.find_one({"round_id": anonymous["id"]})
    assert "household_id" not in anonymous_response
    assert "invitation_id" not in anonymous_response
    assert store.db.responses.find_one({"round_id": named["id"]})["household_id"] == "h5"


def test_a_round_opens_at_its_time_and_only_then_sends_invitations(service, store, clock):
    round_ = new_round(service, opens_at="2026-06-02T00:00:00+00:00")
    assert round_["status"] == "scheduled" and round_["invited"] == {"e1": 4, "e2": 2}
    assert round_["progress"]["issued"] == 0
    token = tokens(service, round_["id"])["h1"]
    assert {i["status"] for i in service.list_invitations(round_["id"])} == {"pending"}
    assert outbox_events(store, "rounds") == outbox_events(store, "invitation_batches") == []
    with pytest.raises(InvalidInput) as error:
        service.submit_response(token, {"answers": {"cleaning": 5}})
    assert error.value.errors == {"token": [answering.UNKNOWN_TOKEN]}   # never sent to anyone

    clock.advance(timedelta(hours=21, minutes=59))
    service.run_schedule()
    service.prepare_rounds()
    assert service.get_round(round_["id"])["status"] == "scheduled"
    clock.advance(timedelta(minutes=1))
    service.run_schedule()
    assert service.get_round(round_["id"])["status"] == "open"
    assert [e["type"] for e in outbox_events(store, "rounds")] == ["survey_round_opened"] * 2
    service.prepare_rounds()                        # the background work issues them

    assert len(outbox_events(store, "invitation_batches")) == 6
    assert service.get_round(round_["id"])["progress"]["issued"] == 6
    assert service.submit_response(token, {"answers": {"cleaning": 5}}) == {"accepted": True}


def test_an_answer_after_closes_at_is_refused_even_before_the_round_is_closed(service, clock):
    round_ = new_round(service)
    token = tokens(service, round_["id"])["h1"]
    clock.advance(timedelta(days=15))
    with pytest.raises(InvalidInput) as error:
        service.submit_response(token, {"answers": {"cleaning": 5}})
    assert error.value.errors == {"token": [answering.EXPIRED_TOKEN]}


# closing ----------------------------------------------------------------------------

def test_close_round_then_submit_is_refused(service, store):
    round_ = new_round(service)
    by_household = tokens(service, round_["id"])
    service.submit_response(by_household["h5"], {"answers": {"cleaning": 5}})

    closed = service.close_round(round_["id"])

    assert closed["status"] == "closed" and closed["closed_at"] == "2026-06-01T02:00:00+00:00"
    closing = [e for e in outbox_events(store, "rounds") if e["type"] == "survey_round_closed"]
    assert [(e["estate_id"], e["data"]["invited"], e["data"]["returned"]) for e in closing] \
        == [("e1", 4, 0), ("e2", 2, 1)]
    with pytest.raises(InvalidInput) as error:
        service.submit_response(by_household["h1"], {"answers": {"cleaning": 5}})
    assert error.value.errors == {"token": [answering.EXPIRED_TOKEN]}
    statuses = {i["household_id"]: i["status"] for i in service.list_invitations(round_["id"])}
    assert statuses == {"h1": "expired", "h2": "expired", "h3": "expired", "h4": "expired",
                        "h5": "answered", "h6": "expired"}
    with pytest.raises(InvalidTransition):
        service.close_round(round_["id"])


# the report ---------------------------------------------------------------------

def test_round_report_figures_match_a_hand_count(service):
    round_ = new_round(service)
    by_household = tokens(service, round_["id"])
    submissions = {
        "h1": {"answers": {"cleaning": 5, "order": 4, "greening": None},
               "comments": {"general": "停车位太少，晚上没地方停车"}},
        "h2": {"answers": {"cleaning": 3, "order": 2, "greening": 4},
               "comments": {"general": "停车位不够用 ", "cleaning": "垃圾桶经常满"}},
        "h3": {"answers": {"cleaning": 4}},
        "h5": {"answers": {"cleaning": 1, "order": 5, "greening": 4}},
    }
    for household_id, data in submissions.items():
        service.submit_response(by_household[household_id], data)

    report = service.round_report(round_["id"])

    # 6 invited, 4 returned; 9 answers given, 6 of them 4 or 5; sum 32 -> 32 / 9 * 20
    assert (report["invited"], report["returned"], report["response_rate"]) == (6, 4, 0.6667)
    assert (report["satisfaction_rate"], report["score"]) == (0.6667, 71.1)
    cleaning = report["categories"]["cleaning"]       # 5, 3, 4, 1
    assert {key: cleaning[key] for key in ("answered", "satisfied", "rate", "score")} \
        == {"answered": 4, "satisfied": 2, "rate": 0.5, "score": 65.0}
    assert cleaning["distribution"] == {"1": 1, "2": 0, "3": 1, "4": 1, "5": 1}
    assert (cleaning["label_zh"], cleaning["label_en"]) == ("卫生", "Cleaning")
    order = report["categories"]["order"]             # 4, 2, 5
    assert (order["answered"], order["satisfied"], order["rate"], order["score"]) \
        == (3, 2, 0.6667, 73.3)
    greening = report["categories"]["greening"]       # N/A, 4, 4
    assert (greening["answered"], greening["not_applicable"], greening["rate"]) == (2, 1, 1.0)
    cleaning_opinion, general_opinion = report["opinions"]
    assert (cleaning_opinion["category"], cleaning_opinion["comments"]) == ("cleaning", 1)
    assert cleaning_opinion["terms"][0] == {"term": "垃圾桶", "count": 1,
                                            "quotes": ["垃圾桶经常满"]}
    assert (general_opinion["category"], general_opinion["comments"]) == ("general", 2)
    assert general_opinion["terms"][0] == {"term": "停车位", "count": 2, "quotes": [
        "停车位不够用", "停车位太少，晚上没地方停车"]}                # shortest first
    assert report["rectifications"] == []
    json.dumps(report)

    e1 = service.round_report(round_["id"], "e1")     # h1, h2, h3: 6 answers, 4 satisfied, sum 22
    assert (e1["invited"], e1["returned"], e1["response_rate"]) == (4, 3, 0.75)
    assert (e1["satisfaction_rate"], e1["score"]) == (0.6667, 73.3)
    assert len(e1["opinions"]) == 2
    e2 = service.round_report(round_["id"], "e2")     # h5: 1, 5, 4
    assert (e2["invited"], e2["returned"], e2["response_rate"]) == (2, 1, 0.5)
    assert (e2["satisfaction_rate"], e2["score"], e2["opinions"]) == (0.6667, 66.7, [])


def test_a_part_of_a_round_is_reported_and_ranked_over_its_estates_alone(service):
    """A supervisor of e1 and e2 of a round over e1, e2 and e3: the figures, opinions,
    rectifications and ranking of their two estates, nothing of e3's."""
    HOUSEHOLDS["e3"] = ["h8", "h9"]
    try:
        round_ = new_round(service, estate_ids=["e1", "e2", "e3"])
    finally:
        del HOUSEHOLDS["e3"]
    by_household = tokens(service, round_["id"])
    for household_id, score, remark in (("h1", 5, "保安很负责"), ("h2", 4, None),
                                        ("h5", 2, None), ("h8", 1, "电梯坏了没人修"),
                                        ("h9", 1, "电梯太旧")):
        service.submit_response(by_household[household_id], {
            "answers": {"cleaning": score},
            **({"comments": {"general": remark}} if remark else {})})
    for estate in ("e2", "e3"):
        service.add_rectification(round_["id"], {
            "estate_id": estate, "category": "cleaning", "action": f"{estate} 加派保洁",
            "department": "环境部", "due_at": "2026-07-01T00:00:00+00:00"})

    part = service.round_report(round_["id"], estate_ids=["e1", "e2"])

    # e1 + e2: 6 invited, 3 returned; answers 5, 4, 2 -> 2 of 3 satisfied
    assert (part["estate_ids"], part["invited"], part["returned"]) == (["e1", "e2"], 6, 3)
    assert (part["satisfaction_rate"], part["categories"]["cleaning"]["answered"]) == (0.6667, 3)
    assert [line["estate_id"] for line in part["estates"]] == ["e1", "e2"]
    words = [term["term"] for opinion in part["opinions"] for term in opinion["terms"]]
    assert "保安" in words and "电梯" not in words
    assert [item["action"] for item in part["rectifications"]] == ["e2 加派保洁"]
    whole = service.round_report(round_["id"])
    assert (whole["invited"], whole["returned"], len(whole["rectifications"])) == (8, 5, 2)

    ranking = service.estate_ranking(round_["id"], ["e1", "e2"])
    ranked = [entry["estate_id"] for entry in ranking["ranked"] + ranking["too_few"]]
    assert sorted(ranked) == ["e1", "e2"]
    assert "e3" in [entry["estate_id"] for entry in service.estate_ranking(round_["id"])[
        "too_few"] + service.estate_ranking(round_["id"])["ranked"]]
    assert base64.b64decode(service.export_report(round_["id"], None, ["e1", "e2"]))[:2] == b"PK"

    for asked in (["e1", "e9"], [], ["e1", "e1"], "e1"):
        with pytest.raises(InvalidInput) as refused:
            service.round_report(round_["id"], estate_ids=asked)
        assert "estate_ids" in refused.value.errors


def test_quotes_are_the_shortest_distinct_comments_and_their_number_stays_bounded(
        service, store):
    HOUSEHOLDS["e3"] = [f"h3-{n}" for n in range(12)]
    try:
        round_ = new_round(service, estate_ids=["e3"])
    finally:
        del HOUSEHOLDS["e3"]
    remarks = ["电梯已经坏了三天了，老人上下楼很不方便", "电梯", "电梯老是坏", "电梯老是坏",
               "电梯老是坏", "电梯老是坏", "电梯太旧了经常停", "电梯按钮失灵", "电梯老是坏",
               "电梯门关得太快", "电梯里有异味", "电梯老是坏"]
    for token, remark in zip(tokens(service, round_["id"]).values(), remarks, strict=True):
        service.submit_response(token, {"answers": {"order": 4},
                                         "comments": {"general": remark}})

    (general,) = service.round_report(round_["id"])["opinions"]
    lift = next(term for term in general["terms"] if term["term"] == "电梯")
    # 11: jieba reads "电梯门" as a word of its own
    assert lift == {"term": "电梯", "count": 11, "quotes": ["电梯老是坏", "电梯按钮失灵"]}
    # the tally keeps two quotes per word, however many comments used it
    (tally,) = store.db.tallies.find({"round_id": round_["id"]})
    assert {word: len(kept) for word, kept in tally["examples"]["general"].items()
            if len(kept) > 2} == {}


def test_a_report_with_nothing_answered_has_no_rates(service):
    round_ = new_round(service)
    report = service.round_report(round_["id"])
    assert (report["returned"], report["response_rate"]) == (0, 0.0)
    assert report["satisfaction_rate"] is None and report["score"] is None
    assert report["categories"]["order"]["rate"] is None


# templates ------------------------------------------------------------------------

def test_an_old_round_keeps_reporting_with_its_template_version(service):
    old = new_round(service, categories=None, estate_ids=["e2"])
    assert old["template"] == {"template_id": "default", "template_version": 1}
    second = service.save_template({
        "template_id": "default", "title": "标准九项（2026版）",
        "categories": [{"key": "cleaning", "label_zh": "环境卫生", "label_en": "Cleanliness"},
                       "order", "parking"]})
    assert second["template_version"] == 2
    assert service.get_template("default", 1)["categories"][4]["label_zh"] == "卫生"
    assert [t["template_version"] for t in service.list_templates()] == [2]

    new = new_round(service, categories=None, estate_ids=["e2"])

    assert new["template"] == {"template_id": "default", "template_version": 2}
    assert list(service.round_report(new["id"])["categories"]) == ["cleaning", "order", "parking"]
    assert service.round_report(new["id"])["categories"]["cleaning"]["label_zh"] == "环境卫生"
    old_report = service.round_report(old["id"])
    assert list(old_report["categories"]) == list(SURVEY_CATEGORIES)
    assert old_report["categories"]["cleaning"]["label_zh"] == "卫生"
    with pytest.raises(NotFound):
        service.get_template("default", 3)


def test_an_estate_adds_its_own_category_and_its_owners_answer_it(service):
    round_ = new_round(service, add_categories=["fees"], estate_categories={
        "e2": [{"key": "lifts", "label_zh": "电梯", "label_en": "Lifts"}]})
    by_household = tokens(service, round_["id"])
    form = service.get_questionnaire(by_household["h5"])
    assert [c["key"] for c in form["categories"]] == TEMPLATE + ["fees", "lifts"]
    assert form["answerable"] is True and "household_id" not in form
    service.submit_response(by_household["h5"], {"answers": {"lifts": 2, "fees": 4}})
    with pytest.raises(InvalidInput) as error:            # e1 was not asked about lifts
        service.submit_response(by_household["h1"], {"answers": {"lifts": 5}})
    assert list(error.value.errors) == ["answers.lifts"]
    assert service.round_report(round_["id"], "e2")["categories"]["lifts"]["rate"] == 0.0
    assert "lifts" not in service.round_report(round_["id"], "e1")["categories"]


# creating and answering survive a crash ------------------------------------------------

def test_a_round_with_an_estate_intake_no_longer_knows_is_abandoned_and_never_announced(
        service, store):
    from nameko.exceptions import RemoteError

    answer = create(service, request_id="hq-2026-h1")
    known = service.intake.list_households.side_effect

    def e2_removed(estate_id, filters, paged=False):
        if estate_id == "e2":
            raise RemoteError("NotFound", "estate not found: e2")
        return known(estate_id, filters, paged)
    service.intake.list_households.side_effect = e2_removed

    service.prepare_rounds()

    assert store.get_round(answer["id"])["status"] == "abandoned"
    assert counts(store) == {"rounds": 1, "invitations": 0, "responses": 0, "tallies": 0}
    assert outbox_events(store, "rounds") == outbox_events(store, "invitation_batches") == []
    assert service.list_rounds() == []
    service.intake.list_households.side_effect = known
    retried = new_round(service, request_id="hq-2026-h1")      # the request id is free again
    assert retried["id"] != answer["id"] and retried["status"] == "open"


def instance(store, clock, **policy):
    """A survey worker on ``store``, as another process would be (``policy``: SURVEY_POLICY)."""
    intake = estates_answered_by_households(Mock())
    intake.list_households.side_effect = list_households
    return worker_factory(SurveyService, store=store, clock=clock, intake=intake,
                          config={"SURVEY_POLICY": policy}, caller=Caller(None, None),
                          policies=SurveyPolicies.from_config({"SURVEY_POLICY": policy}),
                          estates=EstateCopies(store.db, None, ZONE))


def crash_at(monkeypatch, target, name, call, before=False):
    """At its ``call``-th call ``target.name`` does its work (``before``: not), then its
    process dies."""
    original, calls = getattr(target, name), []

    def dying(*args, **kwargs):
        calls.append(1)
        if before and len(calls) == call:
            raise ConnectionError("process killed")
        result = original(*args, **kwargs)
        if len(calls) == call:
            raise ConnectionError("process killed")
        return result
    monkeypatch.setattr(target, name, dying)


@pytest.mark.parametrize("step, call, before", [
    ("write_invitations", 2, False),     # the second batch written, its progress not saved
    ("save_work", 4, False),             # every batch written and the round opened, then died
    ("insert_with_events", 2, True),     # the second batch sent, its events not kept yet
    ("issue_invitations", 2, False),     # the second batch sent and announced, progress not
])
def test_a_worker_killed_midway_is_taken_over_after_its_lease_and_nothing_is_lost_or_sent_twice(
        store, clock, monkeypatch, step, call, before):
    first = instance(store, clock, round_batch_size=2)   # e1: 2 batches of 2, e2: 1 batch
    second = instance(store, clock, round_batch_size=2)
    answer = create(first)
    crash_at(monkeypatch, store, step, call, before)
    with pytest.raises(ConnectionError):
        first.prepare_rounds()
    monkeypatch.undo()
    before = store.get_round(answer["id"])
    assert before["progress"]["done"] is False
    sent_before = {event["id"] for event in outbox_events(store, "invitation_batches")}

    second.prepare_rounds()                      # the lease still holds: left alone
    assert store.get_round(answer["id"])["progress"] == before["progress"]
    clock.advance(timedelta(seconds=61))
    second.prepare_rounds()                      # lapsed: taken over where it stood

    round_ = second.get_round(answer["id"])
    assert round_["status"] == "open" and round_["invited"] == {"e1": 4, "e2": 2}
    assert {key: round_["progress"][key] for key in (
        "households_seen", "invited", "issued", "batches", "issued_batches", "done")} == {
        "households_seen": 6, "invited": 6, "issued": 6, "batches": 3, "issued_batches": 3,
        "done": True}
    invites = second.list_invitations(answer["id"])
    assert sorted(i["household_id"] for i in invites) == ["h1", "h2", "h3", "h4", "h5", "h6"]
    assert {i["status"] for i in invites} == {"issued"}
    issued = outbox_events(store, "invitation_batches")
    # one event per invitation, its id derived from the invitation: the same after a crash
    assert sorted(e["id"] for e in issued) == sorted(
        event_id("survey", "survey_invitation_issued", i["id"]) for i in invites)
    assert sent_before <= {e["id"] for e in issued}
    assert {e["data"]["token"] for e in issued} == {i["token"] for i in invites}
    assert [e["type"] for e in outbox_events(store, "rounds")] == ["survey_round_opened"] * 2


class BatchPublisher:
    """A broker taking each batch with one confirm (``refuse``: it refuses the next batch of
    invitations)."""

    def __init__(self):
        self.confirms, self.events, self.refuse = [], [], False

    def publish(self, event):
        self.publish_batch([event])

    def publish_batch(self, events):
        if self.refuse and events[0]["type"] == "survey_invitation_issued":
            self.refuse = False
            raise RuntimeError("the broker refused 1 of the batch's events")
        self.confirms.append(len(events))
        self.events += events


def test_a_batch_of_invitations_is_announced_with_one_confirm_or_left_whole_to_the_relay(
        store, clock):
    store.publisher, store.outbox_grace = BatchPublisher(), timedelta(0)
    store.publisher.refuse = True       # the first batch (2 invitations of e1): refused
    answer = create(instance(store, clock, round_batch_size=2))
    instance(store, clock, round_batch_size=2).prepare_rounds()

    assert store.get_round(answer["id"])["progress"]["issued"] == 6
    announced = [e["type"] for e in store.publisher.events]
    assert announced.count("survey_invitation_issued") == 4
    # one confirm a batch of 2 (e1's second, e2's), one each for the rounds' openings
    assert sorted(store.publisher.confirms) == [1, 1, 2, 2]
    [left] = [batch for batch in store.db.invitation_batches.find() if batch["outbox"]]
    assert len(left["outbox"]) == 2 and "outbox_lease" in str(left)   # for the relay
    assert all("outbox_lease" not in str(batch)
               for batch in store.db.invitation_batches.find() if not batch["outbox"])

    assert store.relay_outbox() == 2
    invites = {i["id"] for i in instance(store, clock).list_invitations(answer["id"])}
    assert sorted(e["id"] for e in store.publisher.events
                  if e["type"] == "survey_invitation_issued") == sorted(
        event_id("survey", "survey_invitation_issued", i) for i in invites)


def test_a_worker_whose_lease_was_taken_over_stops(store, clock, monkeypatch):
    first = instance(store, clock, round_batch_size=2)
    second = instance(store, clock, round_batch_size=2)
    answer = create(first)
    original = store.write_invitations

    def stalled(invites):
        """The first worker stalls past its lease while the second takes the round."""
        original(invites)
        if not stalled.done:
            stalled.done = True
            clock.advance(timedelta(seconds=61))
            second.prepare_rounds()
    stalled.done = False
    monkeypatch.setattr(store, "write_invitations", stalled)

    first.prepare_rounds()

    round_ = store.get_round(answer["id"])
    assert round_["status"] == "open" and round_["progress"]["invited"] == 6
    assert len(outbox_events(store, "invitation_batches")) == 6
    assert [e["type"] for e in outbox_events(store, "rounds")] == ["survey_round_opened"] * 2


def crash_once(monkeypatch, target, name):
    original = getattr(target, name)
    calls = []

    def failing(*args, **kwargs):
        if not calls:
            calls.append(1)
            raise ConnectionError("process killed")
        return original(*args, **kwargs)
    monkeypatch.setattr(target, name, failing)


@pytest.mark.parametrize("step", ["store the response", "keep its quotes", "mark it counted"])
def test_a_response_interrupted_by_a_crash_is_counted_once_by_the_relay(
        service, store, clock, monkeypatch, step):
    round_ = new_round(service)
    token = tokens(service, round_["id"])["h1"]
    if step == "store the response":           # after the claim, before the insert
        crash_once(monkeypatch, store.db.responses, "insert_one")
    elif step == "keep its quotes":            # after the tally's $inc, before its quotes
        crash_once(monkeypatch, store, "keep_quotes")
    else:                                      # after its quotes, before marking it counted
        crash_once(monkeypatch, store.db.responses, "update_one")
    with pytest.raises(ConnectionError):
        service.submit_response(token, {"answers": {"cleaning": 5, "order": 2},
                                        "comments": {"general": "电梯经常坏"}})
    with pytest.raises(InvalidInput) as error:      # the answers are kept: the token is used
        service.submit_response(token, {"answers": {"cleaning": 1}})
    assert error.value.errors == {"token": [answering.USED_TOKEN]}

    service.complete_interrupted_responses()        # within the grace: left to its writer
    clock.advance(timedelta(seconds=61))
    service.complete_interrupted_responses()
    service.complete_interrupted_responses()

    report = service.round_report(round_["id"])
    assert (report["returned"], report["answered"], report["satisfied"]) == (1, 2, 1)
    assert report["opinions"][0]["terms"][0] == {"term": "电梯", "count": 1,
                                                 "quotes": ["电梯经常坏"]}
    assert service.check_statistics(round_["id"])["consistent"] is True
    invitation = store.find_invitation(token)
    assert "pending_response" not in invitation and invitation["status"] == "answered"
    (response,) = store.db.responses.find()
    assert response["counted"] is True and "count_after" not in response
    assert store.db.tallies.find_one({"in_flight.0": {"$exists": True}}) is None


# the schedule: closing, reminders, overdue actions -------------------------------------

def two_instances(store, clock):
    """Two workers of survey on the same database, as two processes would be."""
    def instance():
        intake = estates_answered_by_households(Mock())
        intake.list_households.side_effect = list_households
        return worker_factory(SurveyService, store=store, clock=clock, intake=intake,
                              config={"SURVEY_POLICY": {}}, caller=Caller(None, None),
                              policies=SurveyPolicies.from_config({}),
                              estates=EstateCopies(store.db, None, ZONE))
    return instance(), instance()


def test_the_schedule_closes_a_round_at_closes_at_once(service, store, clock):
    round_ = new_round(service)
    service.submit_response(tokens(service, round_["id"])["h1"], {"answers": {"order": 4}})
    first, second = two_instances(store, clock)
    first.run_schedule()
    assert service.get_round(round_["id"])["status"] == "open"

    clock.advance(timedelta(days=14, hours=8))
    first.run_schedule()
    second.run_schedule()

    closed = service.get_round(round_["id"])
    assert closed["status"] == "closed" and closed["closed_at"] == "2026-06-15T10:00:00+00:00"
    closing = [e for e in outbox_events(store, "rounds") if e["type"] == "survey_round_closed"]
    assert [(e["estate_id"], e["data"]["returned"]) for e in closing] == [("e1", 1), ("e2", 0)]
    assert {i["status"] for i in service.list_invitations(round_["id"])} \
        == {"expired", "answered"}


def reminders(store):
    return sorted((e["data"]["household_id"], e["data"]["reminder_no"])
                  for e in outbox_events(store, "invitations")
                  if e["type"] == "survey_reminder_due")


def test_reminders_go_to_non_respondents_at_the_interval_at_most_twice_once_each(
        service, store, clock):
    round_ = new_round(service, estate_ids=["e2"], reminders={"interval_days": 3})
    service.submit_response(tokens(service, round_["id"])["h5"], {"answers": {"order": 4}})
    first, second = two_instances(store, clock)

    clock.advance(timedelta(days=2, hours=23))
    first.send_reminders()
    assert reminders(store) == []
    clock.advance(timedelta(hours=1))
    first.send_reminders()
    second.send_reminders()
    assert reminders(store) == [("h6", 1)]                 # h5 answered
    clock.advance(timedelta(days=3))
    second.send_reminders()
    first.send_reminders()
    clock.advance(timedelta(days=3))
    first.send_reminders()
    assert reminders(store) == [("h6", 1), ("h6", 2)]      # at most two
    (event,) = [e for e in outbox_events(store, "invitations")
                if e["type"] == "survey_reminder_due" and e["data"]["reminder_no"] == 2]
    assert event["data"]["token"] == tokens(service, round_["id"])["h6"]


def test_a_pass_sends_every_due_reminder_a_page_at_a_time_each_page_with_one_confirm(
        service, store, clock, monkeypatch):
    monkeypatch.setattr(round_work, "REMINDER_PAGE", 2)
    round_ = new_round(service, estate_ids=["e1"], reminders={"interval_days": 3})
    store.publisher = BatchPublisher()
    clock.advance(timedelta(days=3))
    service.send_reminders()
    assert sorted(e["data"]["household_id"] for e in store.publisher.events) == [
        "h1", "h2", "h3", "h4"]
    assert store.publisher.confirms == [2, 2]        # one a page, all in one pass
    assert all(not i.get("outbox") for i in store.db.invitations.find(
        {"round_id": round_["id"]}))
    service.send_reminders()                         # the next only at the next interval
    assert len(store.publisher.events) == 4


def test_no_reminder_after_the_round_closed(service, store, clock):
    round_ = new_round(service, estate_ids=["e2"])
    service.close_round(round_["id"])
    clock.advance(timedelta(days=4))
    service.send_reminders()
    assert reminders(store) == []


def test_an_overdue_rectification_is_announced_once(service, store, clock):
    round_ = new_round(service)
    item = service.add_rectification(round_["id"], {
        "estate_id": "e1", "category": "cleaning", "action": "增加垃圾清运频次",
        "department": "环境部", "due_at": "2026-06-10T18:00:00+08:00"})
    done = service.add_rectification(round_["id"], {
        "estate_id": "e1", "category": "general", "action": "公示整改进度",
        "department": "客服中心", "due_at": "2026-06-10T18:00:00+08:00"})
    service.update_rectification(done["id"], {"status": "done", "note": "已公示"})
    first, second = two_instances(store, clock)

    clock.advance(timedelta(days=9, hours=7, minutes=59))
    first.flag_overdue_rectifications()
    assert service.list_rectifications({"overdue": True}) == []
    clock.advance(timedelta(minutes=1))
    first.flag_overdue_rectifications()
    second.flag_overdue_rectifications()
    first.flag_overdue_rectifications()

    overdue = [e for e in outbox_events(store, "rectifications")
               if e["type"] == "rectification_overdue"]
    assert [e["data"]["rectification_id"] for e in overdue] == [item["id"]]
    assert [r["id"] for r in service.list_rectifications({"overdue": True})] == [item["id"]]
    overdue_flags = {r["id"]: r["overdue"]
                     for r in service.list_rectifications({"round_id": round_["id"]})}
    assert overdue_flags == {item["id"]: True, done["id"]: False}


# statistics: incremental and recomputed agree -----------------------------------------

def test_incremental_statistics_equal_the_aggregation_recount(service, store):
    import random
    draw = random.Random(5)
    HOUSEHOLDS["e3"] = [f"h3-{n}" for n in range(60)]
    try:
        round_ = new_round(service, estate_ids=["e1", "e2", "e3"], categories=None)
    finally:
        del HOUSEHOLDS["e3"]
    remarks = ["电梯经常坏", "停车位不够", "垃圾桶满了没人清", "保安很负责", "绿化带很漂亮"]
    for token in list(tokens(service, round_["id"]).values())[:55]:
        answers = {key: draw.choice([None, 1, 2, 3, 4, 5, 5, 4])
                   for key in SURVEY_CATEGORIES if draw.random() < 0.8}
        comments = {key: draw.choice(remarks) for key in ("general", "cleaning")
                    if draw.random() < 0.4}
        service.submit_response(token, {"answers": answers, "comments": comments})

    check = service.check_statistics(round_["id"])

    assert check == {"round_id": round_["id"], "consistent": True, "differences": [],
                     "repaired": False}
    recounted = store.recount(round_["id"])
    kept = {tally["estate_id"]: tally for tally in store.tallies(round_["id"])}
    assert sum(figures["returned"] for figures in recounted.values()) == 55
    for estate_id, tally in kept.items():
        assert tallies.counters(tally) == tallies.counters(recounted.get(estate_id, {}))
    # the report from either source is the same, figure for figure
    from_recount = reports.report(store.get_round(round_["id"]), [
        dict(recounted.get(estate_id, {}), estate_id=estate_id)
        for estate_id in ("e1", "e2", "e3")])
    from_tallies = reports.report(store.get_round(round_["id"]), store.tallies(round_["id"]))
    quoted = {quote for opinion in from_tallies["opinions"] for term in opinion["terms"]
              for quote in term["quotes"]}
    assert quoted and quoted <= set(remarks)     # quotes are kept with the counters only
    assert without_quotes(from_recount) == without_quotes(from_tallies)


def test_a_damaged_tally_is_found_and_repaired_once_the_round_is_closed(service, store):
    round_ = new_round(service)
    by_household = tokens(service, round_["id"])
    for household_id, answer in (("h1", 5), ("h2", 2), ("h5", 4)):
        service.submit_response(by_household[household_id], {"answers": {"cleaning": answer}})
    before = service.round_report(round_["id"])
    store.db.tallies.update_one({"_id": f"{round_['id']}:e1"},
                                {"$inc": {"returned": 1, "categories.cleaning.satisfied": 1}})

    check = service.check_statistics(round_["id"])
    assert check["consistent"] is False
    assert {(d["counter"], d["kept"], d["recomputed"]) for d in check["differences"]} == {
        ("returned", 3, 2), ("categories.cleaning.satisfied", 2, 1)}
    with pytest.raises(InvalidInput) as error:
        service.check_statistics(round_["id"], {"repair": True})
    assert list(error.value.errors) == ["repair"]

    service.close_round(round_["id"])
    assert service.check_statistics(round_["id"], {"repair": True})["repaired"] is True
    assert service.check_statistics(round_["id"])["consistent"] is True
    after = service.round_report(round_["id"])
    assert {k: after[k] for k in ("returned", "satisfaction_rate", "categories")} \
        == {k: before[k] for k in ("returned", "satisfaction_rate", "categories")}


# sampling, ranking, rectification, publishing, export --------------------------------

def test_a_stratified_round_invites_a_reproducible_sample(service, monkeypatch):
    rows = [{"id": f"h-{b}-{n}", "estate_id": "e9", "building": b, "unit": "1", "room": str(n),
             "occupied": True, "contacts": []}
            for b, count in (("1", 30), ("2", 10)) for n in range(count)]
    service.intake.list_households.side_effect = \
        lambda estate_id, filters, paged=False: pages(rows, filters, paged)
    sample = {"mode": "stratified", "rate": 0.25, "seed": 11}
    first = new_round(service, estate_ids=["e9"], sample=sample)
    again = new_round(service, estate_ids=["e9"], sample=sample)

    assert first["invited"] == {"e9": 10} and first["households"] == {"e9": 40}
    chosen = [i["household_id"] for i in service.list_invitations(first["id"])]
    assert sum(1 for h in chosen if h.startswith("h-1-")) == 8     # 30 × 0.25 = 7.5 -> 8
    assert sum(1 for h in chosen if h.startswith("h-2-")) == 2     # 10 × 0.25 = 2.5 -> 2
    assert chosen == [i["household_id"] for i in service.list_invitations(again["id"])]


def test_estate_ranking_lists_small_estates_apart(service):
    round_ = new_round(service)
    by_household = tokens(service, round_["id"])
    for household_id in ("h1", "h2", "h3"):
        service.submit_response(by_household[household_id], {"answers": {"cleaning": 5}})
    service.submit_response(by_household["h5"], {"answers": {"cleaning": 5}})

    ranking = service.estate_ranking(round_["id"])       # minimum 2 in this fixture

    assert ranking["min_returned"] == 2
    assert [(e["rank"], e["estate_id"], e["returned"], e["lower_bound"])
            for e in ranking["ranked"]] == [(1, "e1", 3, 0.4385)]
    assert [(e["estate_id"], e["returned"], e["rate"]) for e in ranking["too_few"]] \
        == [("e2", 1, 1.0)]
    assert [e["estate_id"] for e in ranking["categories"]["cleaning"]["ranked"]] == ["e1"]


@pytest.mark.parametrize("change, field", [
    ({"estate_id": "e9"}, "estate_id"),
    ({"category": "parking"}, "category"),
    ({"due_at": "2026-05-01T00:00:00+00:00"}, "due_at"),
    ({"department": ""}, "department"),
    ({"department": "保洁部"}, "department"),       # not one intake's routing names
    ({"due_at": "next week"}, "due_at"),
    ({"extra": 1}, "extra"),
])
def test_a_bad_rectification_is_refused_and_nothing_written(service, store, change, field):
    round_ = new_round(service)
    with pytest.raises(InvalidInput) as error:
        service.add_rectification(round_["id"], dict({
            "estate_id": "e1", "category": "cleaning", "action": "增加清运",
            "department": "环境部", "due_at": "2026-07-01T00:00:00+00:00"}, **change))
    assert field in error.value.errors
    assert store.db.rectifications.count_documents({}) == 0


def test_a_rectifications_department_is_one_intake_routes_the_estate_to(service, store):
    """Asked of intake for the rectification's estate (its record's routing included)."""
    round_ = new_round(service)
    service.intake.list_departments.return_value = ["保洁外包组", "客服中心"]
    added = service.add_rectification(round_["id"], {
        "estate_id": "e2", "category": "cleaning", "action": "增加清运",
        "department": "保洁外包组", "due_at": "2026-07-01T00:00:00+00:00"})
    assert added["department"] == "保洁外包组"
    service.intake.list_departments.assert_called_with(["e2"])
    with pytest.raises(InvalidInput) as refused:
        service.add_rectification(round_["id"], {
            "estate_id": "e2", "category": "cleaning", "action": "增加清运",
            "department": "环境部", "due_at": "2026-07-01T00:00:00+00:00"})
    assert "保洁外包组" in refused.value.errors["department"][0]
    assert store.db.rectifications.count_documents({}) == 1


def test_publishing_the_report_with_its_plan_after_closing(service, store):
    round_ = new_round(service)
    service.add_rectification(round_["id"], {
        "estate_id": "e2", "category": "order", "action": "加强夜间巡逻",
        "department": "秩序部", "due_at": "2026-07-01T00:00:00+00:00"})
    with pytest.raises(InvalidTransition) as error:
        service.publish_report(round_["id"])
    assert error.value.current == "open"
    service.close_round(round_["id"])

    published = service.publish_report(round_["id"], {"note": "欢迎业主监督"})

    assert published["published"]["e2"]["edition"] == 1
    events = [e for e in outbox_events(store, "rounds") if e["type"] == "survey_report_published"]
    assert [(e["estate_id"], e["data"]["rectifications"], e["data"]["note"]) for e in events] \
        == [("e1", 0, "欢迎业主监督"), ("e2", 1, "欢迎业主监督")]
    report = service.round_report(round_["id"], "e2")
    assert report["published"]["e2"]["edition"] == 1
    assert report["rectifications"][0]["action"] == "加强夜间巡逻"


def test_export_report_is_a_workbook_in_base64(service):
    import base64
    import io

    from openpyxl import load_workbook
    round_ = new_round(service)
    service.submit_response(tokens(service, round_["id"])["h1"], {
        "answers": {"cleaning": 4}, "comments": {"cleaning": "垃圾桶太少"}})

    book = load_workbook(io.BytesIO(base64.b64decode(service.export_report(round_["id"]))))

    assert book.sheetnames == ["汇总", "分项满意率", "排名", "共性意见", "整改计划"]
    terms = [row[2] for row in book["共性意见"].iter_rows(values_only=True)]
    assert "垃圾桶" in terms
    with pytest.raises(InvalidInput):
        service.export_report(round_["id"], "e9")


def without_quotes(report):
    return dict(report, opinions=[
        dict(opinion, terms=[dict(term, quotes=None) for term in opinion["terms"]])
        for opinion in report["opinions"]])


# who acted: the person the gateway passes along (shared/actor.py) ------------------------

RECTIFICATION = {"estate_id": "e1", "category": "cleaning", "action": "增加清运",
                 "department": "环境部", "due_at": "2026-07-01T00:00:00+00:00"}


def test_with_an_actor_the_template_round_plan_and_publication_name_the_person(service):
    service.caller = Caller(Actor("u-mgr", ("estate_manager",), ("e1", "e2")), "gateway")
    template = service.save_template({"template_id": "t-1", "title": "物业", "categories": TEMPLATE})
    assert template["created_by"] == "u-mgr"
    round_ = new_round(service)
    assert round_["created_by"] == "u-mgr"
    item = service.add_rectification(round_["id"], RECTIFICATION)
    assert item["history"][0]["by"] == "u-mgr"
    done = service.update_rectification(item["id"], {"status": "done", "staff_id": "s-typed"})
    assert done["history"][-1]["by"] == "u-mgr"
    assert service.close_round(round_["id"])["closed_by"] == "u-mgr"
    published = service.publish_report(round_["id"])
    assert {estate: entry["by"] for estate, entry in published["published"].items()} == {
        "e1": "u-mgr", "e2": "u-mgr"}


def test_without_an_actor_the_typed_staff_stands_and_nobody_else_is_named(service):
    round_ = new_round(service)
    item = service.add_rectification(round_["id"], RECTIFICATION)
    done = service.update_rectification(item["id"], {"status": "done", "staff_id": "s-typed"})
    assert [line["by"] for line in done["history"]] == [None, "s-typed"]
    closed = service.close_round(round_["id"])
    published = service.publish_report(round_["id"])
    assert "created_by" not in round_ and "closed_by" not in closed
    assert "by" not in published["published"]["e1"]


def test_ping_answers_with_the_service_name(service):
    assert service.ping() == {"service": "survey"}
