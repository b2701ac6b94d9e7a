"""survey's RPCs on the embedded store: worker_factory, a frozen clock, intake mocked."""
import json
from datetime import UTC, datetime, timedelta
from unittest.mock import Mock

import pytest
from nameko.testing.services import worker_factory

from services.survey import domain
from services.survey.repository import SurveyRepository
from services.survey.service import SurveyService
from shared.clock import FrozenClock
from shared.envelope import parse_event
from shared.errors import InvalidInput, InvalidTransition, NotFound
from shared.schemas.vocabulary import SURVEY_CATEGORIES
from tests.helpers import embedded

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
HOUSEHOLDS = {"e1": ["h1", "h2", "h3", "h4"], "e2": ["h5", "h6"]}
TEMPLATE = ["cleaning", "order", "greening"]


def list_households(estate_id, filters):
    assert filters == {"occupied": True}
    return [{"id": household_id, "estate_id": estate_id, "building": "3", "unit": "1",
             "room": f"50{n}", "occupied": True, "contacts": []}
            for n, household_id in enumerate(HOUSEHOLDS.get(estate_id, []))]


@pytest.fixture
def store():
    return embedded(SurveyRepository)


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def service(store, clock):
    intake = Mock()
    intake.list_households.side_effect = list_households
    return worker_factory(SurveyService, store=store, clock=clock, intake=intake)


def new_round(service, **changes):
    return service.create_round(dict({
        "title": "2026 上半年满意度调查", "estate_ids": ["e1", "e2"],
        "opens_at": "2026-06-01T08:00:00+08:00", "closes_at": "2026-06-15T18:00:00+08:00",
        "categories": TEMPLATE,
    }, **changes))


def tokens(service, round_id):
    return {i["household_id"]: i["token"] for i in service.list_invitations(round_id)}


def outbox_events(store, collection):
    """Events still waiting in outboxes: with no publisher, everything written stays there."""
    return [parse_event(event) for document in store.db[collection].find()
            for event in document["outbox"]]


def counts(store):
    return {name: store.db[name].count_documents({})
            for name in ("rounds", "invitations", "responses", "tallies")}


# creating a round -----------------------------------------------------------------

def test_create_round_invites_every_occupied_household(service, store):
    round_ = new_round(service)

    assert round_["status"] == "open" and round_["invited"] == {"e1": 4, "e2": 2}
    assert round_["categories"] == TEMPLATE and round_["anonymous"] is True
    assert round_["closes_at"] == "2026-06-15T10:00:00+00:00"
    assert "outbox" not in round_
    json.dumps(round_)
    service.intake.list_households.assert_any_call("e2", {"occupied": True})

    invitations = service.list_invitations(round_["id"])
    assert [i["household_id"] for i in invitations] == ["h1", "h2", "h3", "h4", "h5", "h6"]
    assert {i["status"] for i in invitations} == {"issued"}
    assert len({i["token"] for i in invitations}) == 6
    assert all(i["id"] == domain.invitation_id(round_["id"], i["household_id"])
               for i in invitations)
    assert [i["household_id"] for i in service.list_invitations(round_["id"], "e2")] \
        == ["h5", "h6"]


def test_create_round_announces_the_round_per_estate_and_each_invitation(service, store):
    round_ = new_round(service)

    opened = outbox_events(store, "rounds")
    assert [(e["type"], e["estate_id"], e["data"]["invited"]) for e in opened] == [
        ("survey_round_opened", "e1", 4), ("survey_round_opened", "e2", 2)]
    issued = outbox_events(store, "invitations")
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
    ({"categories": ["cleaning", "parking_lot"]}, "categories"),
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


def test_unknown_round_is_not_found(service):
    for call in (service.list_invitations, service.close_round, service.round_report):
        with pytest.raises(NotFound):
            call("rnd-nope")


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

    assert error.value.errors == {"token": [domain.USED_TOKEN]}
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

    assert error.value.errors == {"token": [domain.USED_TOKEN]}
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
    assert store.db.tallies.count_documents({}) == 0
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


def test_a_round_not_yet_open_refuses_answers(service):
    round_ = new_round(service, opens_at="2026-06-02T00:00:00+00:00")
    token = tokens(service, round_["id"])["h1"]
    with pytest.raises(InvalidInput) as error:
        service.submit_response(token, {"answers": {"cleaning": 5}})
    assert error.value.errors["token"][0].startswith("this survey opens at")


def test_an_answer_after_closes_at_is_refused_even_before_the_round_is_closed(service, clock):
    round_ = new_round(service)
    token = tokens(service, round_["id"])["h1"]
    clock.advance(timedelta(days=15))
    with pytest.raises(InvalidInput) as error:
        service.submit_response(token, {"answers": {"cleaning": 5}})
    assert error.value.errors == {"token": [domain.CLOSED_ROUND]}


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
    assert error.value.errors == {"token": [domain.CLOSED_ROUND]}
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
               "comments": {"general": "Parking is tight"}},
        "h2": {"answers": {"cleaning": 3, "order": 2, "greening": 4},
               "comments": {"general": "Parking  is tight ", "cleaning": "Bins overflow"}},
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
    assert report["opinions"] == [
        {"category": "general", "text": "Parking is tight", "count": 2},
        {"category": "cleaning", "text": "Bins overflow", "count": 1},
    ]
    assert report["rectifications"] == []
    json.dumps(report)

    e1 = service.round_report(round_["id"], "e1")     # h1, h2, h3: 6 answers, 4 satisfied, sum 22
    assert (e1["invited"], e1["returned"], e1["response_rate"]) == (4, 3, 0.75)
    assert (e1["satisfaction_rate"], e1["score"]) == (0.6667, 73.3)
    assert len(e1["opinions"]) == 2
    e2 = service.round_report(round_["id"], "e2")     # h5: 1, 5, 4
    assert (e2["invited"], e2["returned"], e2["response_rate"]) == (2, 1, 0.5)
    assert (e2["satisfaction_rate"], e2["score"], e2["opinions"]) == (0.6667, 66.7, [])


def test_a_report_with_nothing_answered_has_no_rates(service):
    round_ = new_round(service)
    report = service.round_report(round_["id"])
    assert (report["returned"], report["response_rate"]) == (0, 0.0)
    assert report["satisfaction_rate"] is None and report["score"] is None
    assert report["categories"]["order"]["rate"] is None
