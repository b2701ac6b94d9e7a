"""survey's pure rules: formulas against hand-computed figures, templates, tokens."""
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.survey import domain
from shared.envelope import parse_event
from shared.errors import InvalidInput, InvalidTransition
from shared.schemas.base import ID_PATTERN, load
from shared.schemas.survey import CreateRound, SubmitResponse
from shared.schemas.vocabulary import SURVEY_CATEGORIES

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
OPENS = NOW
CLOSES = NOW + timedelta(days=14)
TEMPLATE = ["cleaning", "order", "greening"]


def round_data(**changes):
    return dict({
        "title": "2026 H1", "estate_ids": ["e1", "e2"], "kind": "half_yearly",
        "opens_at": OPENS, "closes_at": CLOSES, "categories": TEMPLATE, "anonymous": True,
    }, **changes)


def households(*ids):
    return [{"id": household_id, "building": "3", "unit": "1", "room": "501"}
            for household_id in ids]


def opened(**changes):
    return domain.open_round("rnd-1", round_data(**changes),
                             {"e1": households("h1", "h2", "h3"), "e2": households("h4")}, NOW)


# formulas --------------------------------------------------------------------------

@pytest.mark.parametrize("satisfied, answered, rate", [
    (6, 9, 0.6667), (6, 7, 0.8571), (3, 3, 1.0), (0, 5, 0.0), (0, 0, None),
])
def test_satisfaction_rate_is_answers_of_4_or_5_over_answers_given(satisfied, answered, rate):
    assert domain.satisfaction_rate(satisfied, answered) == rate


@pytest.mark.parametrize("answers, expected", [
    ([5, 4, 3, 2], 70.0),        # mean 3.5
    ([5, 5, 4], 93.3),           # 14/3 = 4.667
    ([1], 20.0),
    ([5], 100.0),
    ([], None),
])
def test_score_is_mean_answer_times_twenty(answers, expected):
    assert domain.score(sum(answers), len(answers)) == expected


def test_response_rate_is_returned_over_invited():
    assert domain.response_rate(3, 4) == 0.75
    assert domain.response_rate(2, 3) == 0.6667
    assert domain.response_rate(0, 0) is None


def test_one_questionnaire_increments_its_tally_per_category():
    assert domain.tally_increment({"cleaning": 5, "order": 3, "greening": None}) == {
        "returned": 1,
        "categories.cleaning.answered": 1, "categories.cleaning.satisfied": 1,
        "categories.cleaning.score_sum": 5, "categories.cleaning.distribution.5": 1,
        "categories.order.answered": 1, "categories.order.satisfied": 0,
        "categories.order.score_sum": 3, "categories.order.distribution.3": 1,
        "categories.greening.not_applicable": 1,
    }


def apply(tally, increment):
    """What MongoDB's $inc does to a tally document, for tests without a store."""
    for path, amount in increment.items():
        *parents, leaf = path.split(".")
        node = tally
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = node.get(leaf, 0) + amount
    return tally


def test_report_pools_every_category_answer_and_leaves_na_out():
    # e1: (5, 4, N/A), (3, 2, 4), (4, -, -); e2: (1, 5, 4) for cleaning, order, greening
    e1 = {}
    for answers in ({"cleaning": 5, "order": 4, "greening": None},
                    {"cleaning": 3, "order": 2, "greening": 4},
                    {"cleaning": 4}):
        apply(e1, domain.tally_increment(answers))
    e2 = apply({}, domain.tally_increment({"cleaning": 1, "order": 5, "greening": 4}))
    round_, _, _ = opened()
    round_["invited"] = {"e1": 4, "e2": 2}

    report = domain.report(round_, [e1, e2], [])

    assert (report["invited"], report["returned"], report["response_rate"]) == (6, 4, 0.6667)
    # 9 answers given, 6 of them 4 or 5; sum 32 -> 32 / 9 * 20 = 71.1
    assert (report["answered"], report["satisfied"]) == (9, 6)
    assert report["satisfaction_rate"] == 0.6667
    assert report["score"] == 71.1
    cleaning = report["categories"]["cleaning"]
    assert (cleaning["answered"], cleaning["satisfied"], cleaning["rate"], cleaning["score"]) \
        == (4, 2, 0.5, 65.0)
    assert cleaning["distribution"] == {"1": 1, "2": 0, "3": 1, "4": 1, "5": 1}
    assert (cleaning["label_zh"], cleaning["label_en"]) == ("卫生", "Cleaning")
    order = report["categories"]["order"]
    assert (order["answered"], order["satisfied"], order["rate"], order["score"]) \
        == (3, 2, 0.6667, 73.3)
    greening = report["categories"]["greening"]
    assert (greening["answered"], greening["not_applicable"], greening["rate"], greening["score"]) \
        == (2, 1, 1.0, 80.0)
    assert report["rectifications"] == []


def test_report_of_one_estate_counts_its_invitations_only():
    round_, _, _ = opened()
    e2 = apply({}, domain.tally_increment({"cleaning": 1, "order": 5, "greening": 4}))
    report = domain.report(round_, [e2], [], estate_id="e2")
    assert (report["estate_id"], report["invited"], report["returned"]) == ("e2", 1, 1)
    assert (report["satisfaction_rate"], report["score"]) == (0.6667, 66.7)   # 10 / 3 * 20


def test_rates_are_none_when_nothing_was_answered():
    round_, _, _ = opened()
    report = domain.report(round_, [], [])
    assert report["returned"] == 0 and report["response_rate"] == 0.0
    assert report["satisfaction_rate"] is None and report["score"] is None
    assert all(view["rate"] is None and view["score"] is None
               for view in report["categories"].values())


@given(st.lists(st.dictionaries(st.sampled_from(TEMPLATE),
                                st.one_of(st.none(), st.integers(1, 5))), max_size=30))
def test_tallied_report_matches_counting_the_answers_directly(questionnaires):
    tally = {}
    for answers in questionnaires:
        apply(tally, domain.tally_increment(answers))
    round_, _, _ = opened()
    report = domain.report(round_, [tally], [])
    given_answers = [value for answers in questionnaires for value in answers.values()
                     if value is not None]
    happy = sum(1 for value in given_answers if value >= 4)
    assert report["returned"] == len(questionnaires)
    assert report["answered"] == len(given_answers)
    assert report["satisfaction_rate"] == (
        round(happy / len(given_answers), 4) if given_answers else None)
    assert report["score"] == (
        round(sum(given_answers) / len(given_answers) * 20, 1) if given_answers else None)


def test_common_opinions_count_the_same_remark_and_rank_by_count():
    comments = [
        {"general": "Parking is tight", "cleaning": "Bins overflow"},
        {"general": "Parking  is\ttight"},
        {"cleaning": "Stairs are dusty"},
    ]
    assert domain.common_opinions(comments) == [
        {"category": "general", "text": "Parking is tight", "count": 2},
        {"category": "cleaning", "text": "Bins overflow", "count": 1},
        {"category": "cleaning", "text": "Stairs are dusty", "count": 1},
    ]


# categories and templates ----------------------------------------------------------

def test_the_nine_default_categories_have_their_policy_labels():
    assert tuple(domain.CATEGORY_LABELS) == SURVEY_CATEGORIES
    assert [zh for zh, _ in domain.CATEGORY_LABELS.values()] == [
        "供电", "供水", "消防治安", "秩序", "卫生", "绿化", "公共设施", "维修服务", "服务态度"]


def test_a_round_defaults_to_the_nine_categories_half_yearly_and_anonymous():
    data = load(CreateRound(), {
        "title": "2026 H1", "estate_ids": ["e1"],
        "opens_at": "2026-06-01T08:00:00+08:00", "closes_at": "2026-06-15T08:00:00+08:00",
    })
    assert data["categories"] == list(SURVEY_CATEGORIES)
    assert (data["kind"], data["anonymous"]) == ("half_yearly", True)
    assert data["opens_at"] == datetime(2026, 6, 1, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("change, field", [
    ({"closes_at": "2026-06-01T08:00:00+08:00"}, "closes_at"),       # equal to opens_at
    ({"closes_at": "2026-05-20T00:00:00+00:00"}, "closes_at"),
    ({"closes_at": "2026-06-15T08:00:00"}, "closes_at"),             # no offset
    ({"estate_ids": []}, "estate_ids"),
    ({"estate_ids": ["e1", "e1"]}, "estate_ids"),
    ({"estate_ids": "e1"}, "estate_ids"),
    ({"categories": ["cleaning", "parking_lot"]}, "categories"),
    ({"categories": []}, "categories"),
    ({"categories": ["order", "order"]}, "categories"),
    ({"kind": "monthly"}, "kind"),
    ({"anonymous": 1}, "anonymous"),
    ({"title": ""}, "title"),
    ({"sample": {"mode": "all"}}, "sample"),
])
def test_a_bad_round_is_refused_naming_the_field(change, field):
    data = dict({
        "title": "2026 H1", "estate_ids": ["e1"],
        "opens_at": "2026-06-01T08:00:00+08:00", "closes_at": "2026-06-15T08:00:00+08:00",
    }, **change)
    with pytest.raises(InvalidInput) as error:
        load(CreateRound(), data)
    assert field in error.value.errors


@pytest.mark.parametrize("answers, field", [
    ({"cleaning": 6}, "answers.cleaning"),
    ({"cleaning": 0}, "answers.cleaning"),
    ({"cleaning": True}, "answers.cleaning"),
    ({"cleaning": 4.0}, "answers.cleaning"),
    ({"cleaning": "5"}, "answers.cleaning"),
    ({"power_supply": 5}, "answers.power_supply"),    # a default category, not in this template
    ({"parking": 5}, "answers.parking"),
])
def test_answers_must_be_1_to_5_or_null_for_a_category_of_the_template(answers, field):
    with pytest.raises(InvalidInput) as error:
        load(SubmitResponse(TEMPLATE), {"answers": dict({"order": 4}, **answers)})
    assert list(error.value.errors) == [field]


def test_a_valid_questionnaire_keeps_na_and_drops_blank_comments():
    data = load(SubmitResponse(TEMPLATE), {
        "answers": {"cleaning": 5, "greening": None},
        "comments": {"general": "  More benches please ", "order": "   "},
    })
    assert data == {"answers": {"cleaning": 5, "greening": None},
                    "comments": {"general": "More benches please"}}


@pytest.mark.parametrize("data, field", [
    ({"answers": {}, "comments": {"general": "x" * 2001}}, "comments.general"),
    ({"answers": {}, "comments": {"fees": "too high"}}, "comments.fees"),
    ({"answers": {}, "comments": {"general": 5}}, "comments.general"),
    ({"answers": {}, "comments": {"general": " "}}, "answers"),      # nothing said at all
    ({"comments": {"general": "hello"}}, "answers"),
    ({"answers": {"cleaning": 5}, "household_id": "h1"}, "household_id"),
])
def test_comments_are_checked_too(data, field):
    with pytest.raises(InvalidInput) as error:
        load(SubmitResponse(TEMPLATE), data)
    assert field in error.value.errors


# rounds, invitations and tokens -----------------------------------------------------

def test_opening_a_round_invites_every_household_once_with_its_own_token():
    round_, events, issued = opened()
    assert round_["status"] == "open" and round_["invited"] == {"e1": 3, "e2": 1}
    invitations = [invitation for invitation, _ in issued]
    assert [i["household_id"] for i in invitations] == ["h1", "h2", "h3", "h4"]
    assert len({i["token"] for i in invitations}) == 4
    assert all(i["expires_at"] == CLOSES and i["status"] == "issued" for i in invitations)
    assert [(e["type"], e["estate_id"], e["data"]["invited"]) for e in events] == [
        ("survey_round_opened", "e1", 3), ("survey_round_opened", "e2", 1)]
    for invitation, (event,) in issued:
        parsed = parse_event(event)
        assert parsed["type"] == "survey_invitation_issued"
        assert parsed["data"]["token"] == invitation["token"]
        assert parsed["data"]["invitation_id"] == invitation["_id"]


def test_an_estate_without_occupied_households_is_refused():
    with pytest.raises(InvalidInput) as error:
        domain.open_round("rnd-1", round_data(), {"e1": households("h1"), "e2": []}, NOW)
    assert error.value.errors == {"estate_ids": ["e2: no occupied households to invite"]}


def test_a_round_that_has_already_closed_cannot_be_created():
    with pytest.raises(InvalidInput) as error:
        domain.check_schedule(round_data(closes_at=NOW), NOW)
    assert "closes_at" in error.value.errors


def test_invitation_ids_are_derived_from_round_and_household():
    first = domain.invitation_id("rnd-1", "h1")
    assert first == domain.invitation_id("rnd-1", "h1")
    assert first != domain.invitation_id("rnd-1", "h2") != domain.invitation_id("rnd-2", "h1")
    assert ID_PATTERN.match(domain.invitation_id("rnd-1", "h" * 128))


def test_tokens_are_long_and_unguessable():
    tokens = {domain.new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(token) == 22 for token in tokens)     # 16 random bytes


def test_an_invitation_is_answerable_once_while_the_round_is_open():
    round_, _, issued = opened()
    invitation = issued[0][0]
    assert domain.why_not_answerable(round_, invitation, NOW) is None
    assert domain.why_not_answerable(round_, dict(invitation, status="answered"), NOW) \
        == domain.USED_TOKEN
    assert domain.why_not_answerable(dict(round_, status="closed"), invitation, NOW) \
        == domain.CLOSED_ROUND
    assert domain.why_not_answerable(round_, invitation, CLOSES) == domain.CLOSED_ROUND
    assert domain.why_not_answerable(round_, invitation, OPENS - timedelta(minutes=1)) \
        .startswith("this survey opens at")


def test_an_anonymous_response_cannot_be_traced_to_its_household():
    round_, _, issued = opened()
    invitation = issued[0][0]
    data = {"answers": {"cleaning": 4}, "comments": {}}
    anonymous = domain.response(round_, invitation, data, NOW)
    assert "household_id" not in anonymous and "invitation_id" not in anonymous
    assert anonymous["submitted_on"] == "2026-06-01" and anonymous["estate_id"] == "e1"
    named = domain.response(dict(round_, anonymous=False), invitation, data, NOW)
    assert named["household_id"] == "h1"


def test_closing_announces_each_estates_figures_and_happens_once():
    round_, _, _ = opened()
    closed, events = domain.close(round_, {"e1": 2}, NOW)
    assert closed["status"] == "closed" and closed["closed_at"] == NOW
    assert [(e["estate_id"], e["data"]["invited"], e["data"]["returned"]) for e in events] \
        == [("e1", 3, 2), ("e2", 1, 0)]
    with pytest.raises(InvalidTransition) as error:
        domain.close(closed, {}, NOW)
    assert error.value.current == "closed"
