"""Each estate's survey cadence (services/survey/cadence.py): the rules, then survey's
timer on the embedded store — a missed period told once, whatever the instances."""
from datetime import UTC, datetime, timedelta
from unittest.mock import Mock

import pytest
from nameko.testing.services import worker_factory

from services.survey import cadence, rounds, templates
from services.survey.repository import SurveyRepository
from services.survey.service import CADENCE_BATCH, SurveyService
from shared.actor import Caller
from shared.clock import FrozenClock
from shared.envelope import parse_event
from tests.helpers import embedded, estate_copies, estates_answered_by_households, prepared

SHANGHAI = "Asia/Shanghai"
JULY = datetime(2026, 7, 1, 1, 0, tzinfo=UTC)           # 1 July 09:00 in Shanghai


def at(text):
    return datetime.fromisoformat(text)


# the rules -------------------------------------------------------------------------

@pytest.mark.parametrize("now, kept, period", [
    (JULY, "half_yearly", "2026-H1"),
    (datetime(2026, 6, 30, 15, 0, tzinfo=UTC), "half_yearly", "2025-H2"),  # 23:00 30 June
    (datetime(2027, 1, 5, tzinfo=UTC), "half_yearly", "2026-H2"),
    (JULY, "quarterly", "2026-Q2"),
    (datetime(2026, 5, 20, tzinfo=UTC), "quarterly", "2026-Q1"),
    (JULY, "yearly", "2025"),
    (datetime(2027, 1, 1, 3, tzinfo=UTC), "yearly", "2026"),
])
def test_the_last_period_over_is_counted_in_the_estates_zone(now, kept, period):
    name, start, end = cadence.last_ended_period(now, kept, SHANGHAI)
    assert name == period and start < end <= now


def test_the_half_years_bounds_are_local_midnights():
    _, start, end = cadence.last_ended_period(JULY, "half_yearly", SHANGHAI)
    assert (start.isoformat(), end.isoformat()) == ("2025-12-31T16:00:00+00:00",
                                                    "2026-06-30T16:00:00+00:00")


def round_(status, opens, closes, closed=None):
    return {"status": status, "opens_at": at(opens), "closes_at": at(closes),
            **({"closed_at": at(closed)} if closed else {})}


H1 = (at("2025-12-31T16:00:00+00:00"), at("2026-06-30T16:00:00+00:00"))


@pytest.mark.parametrize("rounds, expected", [
    ([], cadence.MISSED),
    ([round_("closed", "2026-03-01T00:00+00:00", "2026-03-15T00:00+00:00")], cadence.COVERED),
    # run across the period's end and closed after it: the period was surveyed
    ([round_("closed", "2026-06-20T00:00+00:00", "2026-07-05T00:00+00:00")], cadence.COVERED),
    # still open: decided once it closes
    ([round_("open", "2026-06-20T00:00+00:00", "2026-07-05T00:00+00:00")], cadence.PENDING),
    # planned in the period but closed by hand before it began, or opened after it
    ([round_("closed", "2025-12-01T00:00+00:00", "2026-01-15T00:00+00:00",
             closed="2025-12-20T00:00+00:00")], cadence.MISSED),
    ([round_("closed", "2026-07-02T00:00+00:00", "2026-07-20T00:00+00:00")], cadence.MISSED),
    ([round_("abandoned", "2026-03-01T00:00+00:00", "2026-03-15T00:00+00:00")], cadence.MISSED),
])
def test_a_period_is_covered_by_a_round_that_ran_in_it_and_closed(rounds, expected):
    assert cadence.verdict(rounds, *H1) == expected


def test_the_estates_cadence_is_its_policy_and_a_wrong_one_stops_the_start():
    policies = rounds.SurveyPolicies.from_config(
        {"SURVEY_ESTATE_POLICIES": {"e-9": {"cadence": "quarterly"}}})
    assert (policies.for_estate("e-1").cadence, policies.for_estate("e-9").cadence) == (
        "half_yearly", "quarterly")
    with pytest.raises(rounds.SurveyPolicyError,
                       match=r"SURVEY_ESTATE_POLICIES\.e-9\.cadence: must be one of"):
        rounds.SurveyPolicies.from_config(
            {"SURVEY_ESTATE_POLICIES": {"e-9": {"cadence": "monthly"}}})
    with pytest.raises(rounds.SurveyPolicyError, match=r"SURVEY_POLICY\.reminders: no such"):
        rounds.SurveyPolicies.from_config({"SURVEY_POLICY": {"reminders": 3}})


# 「投诉处理:住户对物业投诉处理的满意度」: a known category beside the nine -----------------

def test_complaint_handling_is_a_known_category_a_round_may_add_by_key():
    [definition] = templates.resolve_categories(["complaint_handling"], None, "categories")
    assert definition == {"key": "complaint_handling", "label_zh": "投诉处理",
                          "label_en": "Complaint handling"}
    default = templates.default_template(JULY)
    assert "complaint_handling" not in [entry["key"] for entry in default["categories"]]
    # offered with the default questionnaire (the console's new-round form lists it)
    offered = templates.offered(default)
    assert offered["categories"] == default["categories"]
    assert definition in offered["additional_categories"]
    assert not {entry["key"] for entry in offered["additional_categories"]} & {
        entry["key"] for entry in default["categories"]}


# the timer ---------------------------------------------------------------------------

ESTATES = ["e1", "e2", "e3"]


def make_service(store, now, config=None):
    intake = estates_answered_by_households(Mock())
    # the timer goes through survey's copies of the estates, never asking intake for them
    intake.list_estate_ids.side_effect = AssertionError("a timer waited on intake")
    intake.list_households.side_effect = lambda estate_id, filters, paged=False: {
        "items": [{"id": f"{estate_id}-h1", "estate_id": estate_id, "building": "1",
                   "unit": "1", "room": "101", "occupied": True, "contacts": []}],
        "next_cursor": None} if paged else []
    config = {"SURVEY_ESTATE_POLICIES": {"e3": {"cadence": "yearly"}}, **(config or {})}
    return worker_factory(SurveyService, store=store, clock=FrozenClock(now), intake=intake,
                          config=config, policies=rounds.SurveyPolicies.from_config(config),
                          estates=estate_copies(store, ESTATES),
                          caller=Caller(None, None))


@pytest.fixture
def store():
    return embedded(SurveyRepository)


def missed(store):
    return sorted((event["estate_id"], event["data"]["period"])
                  for check in store.db.cadence_checks.find()
                  for event in map(parse_event, check.get("outbox", [])))


def test_a_period_without_a_closed_round_is_told_once_for_each_estate(store):
    early = make_service(store, datetime(2026, 3, 1, tzinfo=UTC))
    prepared(early, early.create_round({
        "title": "2026 上半年满意度调查", "estate_ids": ["e1"],
        "opens_at": "2026-03-02T08:00:00+08:00", "closes_at": "2026-03-20T18:00:00+08:00"}))
    later = make_service(store, datetime(2026, 3, 21, tzinfo=UTC))
    later.run_schedule()                                    # closes the round on time
    first, second = make_service(store, JULY), make_service(store, JULY)
    first.watch_survey_cadence()
    second.watch_survey_cadence()                           # another instance, same moment
    first.watch_survey_cadence()                            # and the next pass
    # e1 had its round; e2 none in 2026-H1; e3 keeps a yearly cadence: 2025 passed without
    assert missed(store) == [("e2", "2026-H1"), ("e3", "2025")]
    assert {check["_id"]: check["verdict"] for check in store.db.cadence_checks.find()} == {
        "e1:2026-H1": "covered", "e2:2026-H1": "missed", "e3:2025": "missed"}
    [event] = [parse_event(event) for check in store.db.cadence_checks.find({"_id": "e2:2026-H1"})
               for event in check["outbox"]]
    assert event["data"] == {"period": "2026-H1", "cadence": "half_yearly",
                             "period_start": datetime(2025, 12, 31, 16, 0, tzinfo=UTC),
                             "period_end": datetime(2026, 6, 30, 16, 0, tzinfo=UTC)}


def test_a_period_whose_round_is_still_open_waits_for_it(store):
    early = make_service(store, datetime(2026, 6, 20, tzinfo=UTC))
    round_ = prepared(early, early.create_round({
        "title": "跨期调查", "estate_ids": ESTATES,
        "opens_at": "2026-06-25T08:00:00+08:00", "closes_at": "2026-07-10T18:00:00+08:00"}))
    make_service(store, JULY).watch_survey_cadence()
    assert missed(store) == [("e3", "2025")]                 # H1 undecided while it runs
    make_service(store, JULY + timedelta(days=2)).close_round(round_["id"])
    make_service(store, JULY + timedelta(days=3)).watch_survey_cadence()
    assert missed(store) == [("e3", "2025")]
    assert store.db.cadence_checks.count_documents({"verdict": "covered"}) == 2


def test_the_timer_decides_a_batch_of_estates_a_pass(store):
    service = make_service(store, JULY)
    store.db.estate_copies.delete_many({})
    estate_copies(store, [f"e-{n:04d}" for n in range(CADENCE_BATCH + 5)])
    service.watch_survey_cadence()
    assert store.db.cadence_checks.count_documents({}) == CADENCE_BATCH
    service.watch_survey_cadence()
    assert store.db.cadence_checks.count_documents({}) == CADENCE_BATCH + 5
