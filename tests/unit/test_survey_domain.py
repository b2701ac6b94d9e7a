"""survey's pure rules: formulas against hand-computed figures, templates, sampling, the
Wilson ranking, reminders, rectification, opinions and the workbook."""
import io
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import load_workbook

from services.survey import (
    answering,
    formulas,
    invitations,
    opinions,
    planning,
    ranking,
    rectifications,
    reports,
    rounds,
    sampling,
    tallies,
    templates,
    workbook,
)
from services.survey.repository import increments
from shared.envelope import event_id, parse_event
from shared.errors import InvalidInput, InvalidTransition
from shared.schemas.base import ID_PATTERN, load
from shared.schemas.survey import CreateRound, SaveTemplate, SubmitResponse
from shared.schemas.vocabulary import SURVEY_CATEGORIES

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
OPENS = NOW
CLOSES = NOW + timedelta(days=14)
TEMPLATE = ["cleaning", "order", "greening"]
POLICY = rounds.SurveyPolicy()


def round_data(**changes):
    return dict({
        "title": "2026 H1", "estate_ids": ["e1", "e2"], "kind": "half_yearly", "occasion": None,
        "opens_at": OPENS, "closes_at": CLOSES, "template_id": "default",
        "categories": TEMPLATE, "add_categories": [], "estate_categories": {},
        "sample": {"mode": "all", "by": "building"}, "anonymous": True, "reminders": {},
        "occupied_only": True, "request_id": None,
    }, **changes)


def households(*ids, building="3"):
    return [{"id": household_id, "building": building, "unit": "1", "room": "501"}
            for household_id in ids]


def plan(data, occupied, round_id="rnd-1", batch_size=1000):
    """plan_round, then each estate's households read whole as the background work reads
    them: (the round with its invitations written, the invitations, its tallies)."""
    round_ = planning.plan_round(round_id, data, templates.default_template(NOW), POLICY, NOW)
    invites = []
    for estate_id in data["estate_ids"]:
        written, round_ = invitations.read_households(round_, estate_id, occupied[estate_id], None,
                                                 batch_size)
        invites += written
    return round_, invites, [tallies.empty_tally(round_, estate_id)
                                 for estate_id in round_["estate_ids"]]


def planned(**changes):
    data = round_data(**changes)
    occupied = {"e1": households("h1", "h2", "h3"), "e2": households("h4")}
    for estate_id in data["estate_ids"]:
        occupied.setdefault(estate_id, households(f"{estate_id}-h1"))
    return plan(data, occupied)


def opened(**changes):
    round_, invites, _ = planned(**changes)
    round_, events = invitations.finish_writing(round_, NOW)
    issued = [invitations.issue(round_, invitation, NOW) for invitation in invites]
    invites = [dict(invitation, **changes) for invitation, (changes, _) in
                   zip(invites, issued, strict=True)]
    return round_, events, invites, [events for _, events in issued]


def tally_of(*questionnaires):
    tally = {}
    for answers in questionnaires:
        apply(tally, tallies.tally_counts({"answers": answers}))
    return tally

# formulas --------------------------------------------------------------------------

@pytest.mark.parametrize("satisfied, answered, rate", [
    (6, 9, 0.6667), (6, 7, 0.8571), (3, 3, 1.0), (0, 5, 0.0), (0, 0, None),
])
def test_satisfaction_rate_is_answers_of_4_or_5_over_answers_given(satisfied, answered, rate):
    assert formulas.satisfaction_rate(satisfied, answered) == rate


@pytest.mark.parametrize("answers, expected", [
    ([5, 4, 3, 2], 70.0),        # mean 3.5
    ([5, 5, 4], 93.3),           # 14/3 = 4.667
    ([1], 20.0),
    ([5], 100.0),
    ([], None),
])
def test_score_is_mean_answer_times_twenty(answers, expected):
    assert formulas.score(sum(answers), len(answers)) == expected


def test_response_rate_is_returned_over_invited():
    assert formulas.response_rate(3, 4) == 0.75
    assert formulas.response_rate(2, 3) == 0.6667
    assert formulas.response_rate(0, 0) is None


def test_one_questionnaire_increments_its_tally_per_category_and_word():
    response = {"answers": {"cleaning": 5, "order": 3, "greening": None},
                "comments": {"cleaning": "垃圾桶满了", "general": "停车位太少"},
                "terms": {"cleaning": ["垃圾桶"], "general": ["停车位"]}}
    assert tallies.tally_counts(response) == {
        ("returned",): 1,
        ("categories", "cleaning", "answered"): 1, ("categories", "cleaning", "satisfied"): 1,
        ("categories", "cleaning", "score_sum"): 5,
        ("categories", "cleaning", "distribution", "5"): 1,
        ("categories", "order", "answered"): 1, ("categories", "order", "satisfied"): 0,
        ("categories", "order", "score_sum"): 3, ("categories", "order", "distribution", "3"): 1,
        ("categories", "greening", "not_applicable"): 1,
        ("comments", "cleaning"): 1, ("comments", "general"): 1,
        ("terms", "cleaning", "垃圾桶"): 1, ("terms", "general", "停车位"): 1,
    }
    # the store writes them as one $inc on the tally's dotted field paths
    assert increments(tallies.tally_counts(response)) == {
        "returned": 1,
        "categories.cleaning.answered": 1, "categories.cleaning.satisfied": 1,
        "categories.cleaning.score_sum": 5, "categories.cleaning.distribution.5": 1,
        "categories.order.answered": 1, "categories.order.satisfied": 0,
        "categories.order.score_sum": 3, "categories.order.distribution.3": 1,
        "categories.greening.not_applicable": 1,
        "comments.cleaning": 1, "comments.general": 1,
        "terms.cleaning.垃圾桶": 1, "terms.general.停车位": 1,
    }


def apply(tally, counts):
    """What MongoDB's $inc does to a tally document, for tests without a store."""
    for path, amount in counts.items():
        node, leaf = _node(tally, path)
        node[leaf] = node.get(leaf, 0) + amount
    return tally


def apply_update(tally, update):
    """What the store does with a tally_update: the $inc, then each offered quote kept if
    it is among its word's best distinct ones (the store's test checks MongoDB agrees)."""
    apply(tally, update["counts"])
    for topic, word, entry in update["quotes"]:
        node = tally.setdefault("examples", {}).setdefault(topic, {})
        node[word] = opinions.keep_quote(node.get(word, []), entry)
    return tally


def _node(tally, path):
    *parents, leaf = path
    node = tally
    for key in parents:
        node = node.setdefault(key, {})
    return node, leaf


def with_estate(tally, estate_id):
    return dict(tally, estate_id=estate_id)


def test_report_pools_every_category_answer_and_leaves_na_out():
    # e1: (5, 4, N/A), (3, 2, 4), (4, -, -); e2: (1, 5, 4) for cleaning, order, greening
    e1 = tally_of({"cleaning": 5, "order": 4, "greening": None},
                  {"cleaning": 3, "order": 2, "greening": 4}, {"cleaning": 4})
    e2 = tally_of({"cleaning": 1, "order": 5, "greening": 4})
    round_, _, _, _ = opened()
    round_["invited"] = {"e1": 4, "e2": 2}

    report = reports.report(round_, [with_estate(e1, "e1"), with_estate(e2, "e2")])

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
    # e1: 6 answers, 4 satisfied, sum 22 -> 73.3; e2: 2 of 3, sum 10 -> 66.7
    assert [(e["estate_id"], e["returned"], e["response_rate"], e["satisfaction_rate"],
             e["score"]) for e in report["estates"]] == [
        ("e1", 3, 0.75, 0.6667, 73.3), ("e2", 1, 0.5, 0.6667, 66.7)]
    assert report["rectifications"] == [] and report["opinions"] == []


def test_report_of_one_estate_counts_its_invitations_only():
    round_, _, _, _ = opened()
    e2 = with_estate(tally_of({"cleaning": 1, "order": 5, "greening": 4}), "e2")
    report = reports.report(round_, [e2], estate_id="e2")
    assert (report["estate_id"], report["invited"], report["returned"]) == ("e2", 1, 1)
    assert (report["satisfaction_rate"], report["score"]) == (0.6667, 66.7)   # 10 / 3 * 20


def test_rates_are_none_when_nothing_was_answered():
    round_, _, _, _ = opened()
    report = reports.report(round_, [])
    assert report["returned"] == 0 and report["response_rate"] == 0.0
    assert report["satisfaction_rate"] is None and report["score"] is None
    assert all(view["rate"] is None and view["score"] is None
               for view in report["categories"].values())


@given(st.lists(st.dictionaries(st.sampled_from(TEMPLATE),
                                st.one_of(st.none(), st.integers(1, 5))), max_size=30))
def test_tallied_report_matches_counting_the_answers_directly(questionnaires):
    round_, _, _, _ = opened()
    report = reports.report(round_, [with_estate(tally_of(*questionnaires), "e1")])
    given_answers = [value for answers in questionnaires for value in answers.values()
                     if value is not None]
    happy = sum(1 for value in given_answers if value >= 4)
    assert report["returned"] == len(questionnaires)
    assert report["answered"] == len(given_answers)
    assert report["satisfaction_rate"] == (
        round(happy / len(given_answers), 4) if given_answers else None)
    assert report["score"] == (
        round(sum(given_answers) / len(given_answers) * 20, 1) if given_answers else None)


# opinions -----------------------------------------------------------------------------

def test_comments_are_cut_into_words_without_stop_words_or_single_characters():
    words = opinions.terms_of("希望物业尽快修理一下电梯，电梯经常坏，太吵了！")
    assert "电梯" in words and words.count("电梯") == 1
    assert not {"希望", "物业", "一下", "经常"} & set(words)
    assert all(len(word) >= 2 for word in words)
    assert opinions.terms_of("  ，。！！ 的了 ") == []
    # trade words stay whole
    assert "垃圾桶" in opinions.terms_of("楼下的垃圾桶总是满的") 
    assert "停车位" in opinions.terms_of("停车位不够用")


def test_common_opinions_give_top_words_per_category_with_counts_and_quotes():
    round_, _, _, _ = opened()
    comments = [
        {"cleaning": "楼道垃圾没人清理", "general": "停车位太少，晚上回来没地方停"},
        {"cleaning": "楼道有异味，垃圾没人收"},
        {"general": "停车位不够，请规划停车场 13812345678"},
        {"general": "快递柜太少"},
    ]
    tally = {"estate_id": "e1"}
    for text in comments:
        apply_update(tally, tallies.tally_update({
            "answers": {}, "comments": text, "terms": opinions.terms_by_topic(text)}))

    report = reports.report(round_, [tally])

    by_topic = {entry["category"]: entry for entry in report["opinions"]}
    assert list(by_topic) == ["cleaning", "general"]          # template order, general last
    cleaning = by_topic["cleaning"]
    assert (cleaning["label_zh"], cleaning["comments"]) == ("卫生", 2)
    assert cleaning["terms"][:2] == [
        {"term": "垃圾", "count": 2, "quotes": ["楼道垃圾没人清理", "楼道有异味，垃圾没人收"]},
        {"term": "楼道", "count": 2, "quotes": ["楼道垃圾没人清理", "楼道有异味，垃圾没人收"]}]
    general = by_topic["general"]
    assert general["label_zh"] == "总体意见" and general["comments"] == 3
    assert general["terms"][0] == {"term": "停车位", "count": 2, "quotes": [
        "停车位太少，晚上回来没地方停", "停车位不够，请规划停车场 138****5678"]}
    assert len(general["terms"]) <= reports.TOP_TERMS


def kept_quotes(texts, word):
    kept = []
    for text in texts:
        kept = opinions.keep_quote(kept, opinions.quote_entry(text, word))
    return [entry["text"] for entry in kept]


def test_the_quotes_kept_are_the_shortest_distinct_comments_not_the_first():
    texts = ["电梯已经坏了三天了，老人上下楼很不方便，希望尽快修好",   # first, but long
             "电梯！", "电梯老是坏", "电梯老是坏", "电梯老是坏",        # bare word; repeats
             "电梯太旧了经常停", "电梯按钮失灵"]
    assert kept_quotes(texts, "电梯") == ["电梯老是坏", "电梯按钮失灵"]
    # a comment that is the word alone is quoted only when nothing says more
    assert kept_quotes(["电梯！", "电梯。"], "电梯") == ["电梯。", "电梯！"]
    assert kept_quotes(["电梯！", "电梯坏了"], "电梯") == ["电梯坏了", "电梯！"]
    assert not opinions.improves(
        [opinions.quote_entry("电梯老是坏", "电梯")], opinions.quote_entry("电梯老是坏", "电梯"))


@given(st.permutations(["停车位太少", "停车位不够用", "停车位太少", "没有停车位，晚上停路边",
                        "停车位", "停车位收费太贵了", "停车位被外来车占了"]))
def test_the_kept_quotes_do_not_depend_on_the_order_comments_arrive(texts):
    assert kept_quotes(texts, "停车位") == ["停车位太少", "停车位不够用"]


def test_a_report_of_all_estates_quotes_the_best_of_what_each_estate_kept():
    round_, _, _, _ = opened()
    estate_tallies = []
    for estate_id, texts in (("e1", ["楼道垃圾没人清理，味道很大", "垃圾太多"]),
                             ("e2", ["垃圾桶旁边的垃圾没人收", "垃圾没人清"])):
        tally = {"estate_id": estate_id}
        for text in texts:
            comments = {"cleaning": text}
            apply_update(tally, tallies.tally_update({
                "answers": {}, "comments": comments,
                "terms": opinions.terms_by_topic(comments)}))
        assert len(tally["examples"]["cleaning"]["垃圾"]) <= opinions.QUOTES_PER_TERM
        estate_tallies.append(tally)

    (cleaning,) = reports.report(round_, estate_tallies)["opinions"]
    rubbish = next(term for term in cleaning["terms"] if term["term"] == "垃圾")
    assert rubbish == {"term": "垃圾", "count": 4, "quotes": ["垃圾太多", "垃圾没人清"]}
    # tallies written before quotes were ranked hold plain texts: still quoted, best first
    (old,) = reports.report(round_, [dict(estate_tallies[0], examples={"cleaning": {
        "垃圾": ["楼道垃圾没人清理，味道很大", "垃圾太多"]}})], estate_id="e1")["opinions"]
    assert next(t for t in old["terms"] if t["term"] == "垃圾")["quotes"] == [
        "垃圾太多", "楼道垃圾没人清理，味道很大"]


def test_a_long_quote_is_shortened_and_phone_numbers_masked():
    text = "电话 021-12345678 或 +86 13912345678 " + "很长的意见" * 40
    quoted = opinions.quote(text)
    assert "12345678" not in quoted and "139****5678" in quoted
    assert len(quoted) == opinions.QUOTE_LENGTH and quoted.endswith("…")


# categories and templates ----------------------------------------------------------

def test_the_nine_default_categories_have_their_policy_labels():
    assert tuple(templates.CATEGORY_LABELS) == SURVEY_CATEGORIES
    assert [zh for zh, _ in templates.CATEGORY_LABELS.values()] == [
        "供电", "供水", "消防治安", "秩序", "卫生", "绿化", "公共设施", "维修服务", "服务态度"]
    template = templates.default_template(NOW)
    assert (template["_id"], template["template_version"]) == ("default:v1", 1)
    assert [entry["key"] for entry in template["categories"]] == list(SURVEY_CATEGORIES)


def test_a_new_template_version_keeps_the_old_one_and_resolves_known_keys():
    data = load(SaveTemplate(), {"template_id": "default", "title": "九项加停车", "categories": [
        *SURVEY_CATEGORIES, "parking",
        {"key": "elevator", "label_zh": "电梯运行", "label_en": "Lifts"}]})
    second = templates.new_template_version(data, templates.default_template(NOW), NOW)
    assert (second["_id"], second["template_version"]) == ("default:v2", 2)
    assert second["categories"][-2:] == [
        {"key": "parking", "label_zh": "停车管理", "label_en": "Parking"},
        {"key": "elevator", "label_zh": "电梯运行", "label_en": "Lifts"}]
    fresh = templates.new_template_version(dict(data, template_id="villa"), None, NOW)
    assert fresh["_id"] == "villa:v1"


@pytest.mark.parametrize("categories, field", [
    (["cleaning", "lifts"], "categories.1"),                  # unknown key, no labels
    (["cleaning", "cleaning"], "categories.1"),
])
def test_a_template_with_an_unknown_or_repeated_category_is_refused(categories, field):
    data = load(SaveTemplate(), {"template_id": "t", "title": "t", "categories": categories})
    with pytest.raises(InvalidInput) as error:
        templates.new_template_version(data, None, NOW)
    assert list(error.value.errors) == [field]


def test_a_round_defaults_to_the_template_half_yearly_and_anonymous():
    data = load(CreateRound(), {
        "title": "2026 H1", "estate_ids": ["e1"],
        "opens_at": "2026-06-01T08:00:00+08:00", "closes_at": "2026-06-15T08:00:00+08:00",
    })
    assert (data["categories"], data["template_id"]) == (None, "default")
    assert (data["kind"], data["anonymous"]) == ("half_yearly", True)
    assert data["sample"] == {"mode": "all", "by": "building"}
    assert data["opens_at"] == datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
    round_, _, _ = plan(data, {"e1": households("h1")})
    assert round_["categories"] == list(SURVEY_CATEGORIES)
    assert round_["template"] == {"template_id": "default", "template_version": 1}
    assert round_["reminders"] == {"interval_days": 3, "max": 2}


def test_rounds_and_estates_may_add_categories():
    round_, _, estate_tallies = planned(
        add_categories=["parking"],
        estate_categories={"e2": [{"key": "lifts", "label_zh": "电梯", "label_en": "Lifts"},
                                  "fees"]})
    assert round_["categories"] == ["cleaning", "order", "greening", "parking"]
    assert rounds.questionnaire(round_, "e1") == ["cleaning", "order", "greening", "parking"]
    assert rounds.questionnaire(round_, "e2")[-2:] == ["lifts", "fees"]
    assert templates.label(round_, "lifts") == ("电梯", "Lifts")
    assert templates.label(round_, "parking") == ("停车管理", "Parking")
    assert set(estate_tallies[1]["categories"]) == {"cleaning", "order", "greening", "parking",
                                             "lifts", "fees"}
    report = reports.report(round_, [])
    assert list(report["categories"])[-3:] == ["parking", "lifts", "fees"]
    assert list(reports.report(round_, [], estate_id="e1")["categories"]) == [
        "cleaning", "order", "greening", "parking"]


@pytest.mark.parametrize("change, field", [
    ({"categories": ["cleaning", "parking_lot"]}, "categories.1"),
    ({"add_categories": ["order"]}, "add_categories"),
    ({"estate_categories": {"e1": ["cleaning"]}}, "estate_categories.e1"),
])
def test_categories_outside_the_template_or_asked_twice_are_refused(change, field):
    with pytest.raises(InvalidInput) as error:
        planned(**change)
    assert list(error.value.errors) == [field]


@pytest.mark.parametrize("change, field", [
    ({"closes_at": "2026-06-01T08:00:00+08:00"}, "closes_at"),       # equal to opens_at
    ({"closes_at": "2026-05-20T00:00:00+00:00"}, "closes_at"),
    ({"closes_at": "2026-06-15T08:00:00"}, "closes_at"),             # no offset
    ({"estate_ids": []}, "estate_ids"),
    ({"estate_ids": ["e1", "e1"]}, "estate_ids"),
    ({"estate_ids": "e1"}, "estate_ids"),
    ({"categories": ["cleaning", "Parking Lot"]}, "categories"),
    ({"categories": []}, "categories"),
    ({"categories": [{"key": "lifts"}]}, "categories"),             # labels missing
    ({"kind": "monthly"}, "kind"),
    ({"kind": "event"}, "occasion"),                                 # what event?
    ({"anonymous": 1}, "anonymous"),
    ({"title": ""}, "title"),
    ({"sample": {"mode": "stratified"}}, "sample"),                  # no rate
    ({"sample": {"mode": "stratified", "rate": 1.5}}, "sample"),
    ({"sample": {"mode": "stratified", "rate": 0}}, "sample"),
    ({"sample": {"mode": "everyone"}}, "sample"),
    ({"reminders": {"max": 11}}, "reminders"),
    ({"reminders": {"interval_days": 0}}, "reminders"),
    ({"estate_categories": {"e9": ["parking"]}}, "estate_categories"),
])
def test_a_bad_round_is_refused_naming_the_field(change, field):
    data = dict({
        "title": "2026 H1", "estate_ids": ["e1"],
        "opens_at": "2026-06-01T08:00:00+08:00", "closes_at": "2026-06-15T08:00:00+08:00",
    }, **change)
    with pytest.raises(InvalidInput) as error:
        load(CreateRound(), data)
    assert field in error.value.errors


def test_an_event_round_says_what_it_is_about():
    data = load(CreateRound(), {
        "title": "物业费调整意见征询", "estate_ids": ["e1"], "kind": "event",
        "occasion": "物业费调整", "opens_at": "2026-06-01T08:00:00+08:00",
        "closes_at": "2026-06-08T08:00:00+08:00", "categories": ["fees"]})
    round_, _, _ = plan(data, {"e1": households("h1")})
    assert (round_["kind"], round_["occasion"], round_["categories"]) == (
        "event", "物业费调整", ["fees"])


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


# sampling ----------------------------------------------------------------------------

def test_allocation_is_proportional_by_largest_remainder():
    # 30 % of 10, 10 and 3: exact 3, 3, 0.9; total ⌈6.9⌉ = 7; the 0.9 gets the spare one
    assert sampling.allocate({"1": 10, "2": 10, "3": 3}, 0.3) == {"1": 3, "2": 3, "3": 1}
    # 20 % of 12, 8, 5 = 2.4, 1.6, 1.0 -> total 5: 2, 2, 1
    assert sampling.allocate({"A": 12, "B": 8, "C": 5}, 0.2) == {"A": 2, "B": 2, "C": 1}


def test_every_building_is_represented_even_a_small_one():
    # 10 % of 1 and 99: exact 0.1 and 9.9 -> 0 and 10, but building A still gets one
    assert sampling.allocate({"A": 1, "B": 99}, 0.1) == {"A": 1, "B": 10}


@given(st.dictionaries(st.text("ABCDEFG", min_size=1, max_size=2), st.integers(1, 400),
                       min_size=1, max_size=12),
       st.floats(0.01, 1.0))
def test_each_stratum_gets_its_exact_share_rounded_down_or_up(sizes, rate):
    quota = sampling.allocate(sizes, rate)
    for name, size in sizes.items():
        exact = rate * size
        assert 1 <= quota[name] <= size
        assert int(exact) <= quota[name] <= int(exact) + 1 or quota[name] == 1
    wanted = -(-round(rate * sum(sizes.values()), 9) // 1)
    bumped = sum(1 for name, size in sizes.items() if rate * size < 1)
    assert wanted <= sum(quota.values()) <= wanted + bumped


def estate_households():
    """Building 1: 40 households (units 1 and 2), building 2: 20, building 3: 5."""
    rows = []
    for building, count in (("1", 40), ("2", 20), ("3", 5)):
        for n in range(count):
            rows.append({"id": f"h-{building}-{n:02d}", "building": building,
                         "unit": str(n % 2 + 1), "room": str(n)})
    return rows


def test_a_stratified_sample_invites_each_building_proportionally():
    sample = {"mode": "stratified", "rate": 0.2, "by": "building", "seed": 7}
    chosen = sampling.choose_households(estate_households(), sample)
    per_building = {b: sum(1 for h in chosen if h["building"] == b) for b in "123"}
    assert per_building == {"1": 8, "2": 4, "3": 1}
    by_unit = sampling.choose_households(estate_households(), dict(sample, by="unit"))
    per_unit = {}
    for household in by_unit:
        key = (household["building"], household["unit"])
        per_unit[key] = per_unit.get(key, 0) + 1
    assert per_unit == {("1", "1"): 4, ("1", "2"): 4, ("2", "1"): 2, ("2", "2"): 2,
                        ("3", "1"): 1, ("3", "2"): 1}


def test_the_same_seed_draws_the_same_sample_whatever_the_order():
    sample = {"mode": "stratified", "rate": 0.3, "by": "building", "seed": 2026}
    rows = estate_households()
    first = [h["id"] for h in sampling.choose_households(rows, sample)]
    again = [h["id"] for h in sampling.choose_households(list(reversed(rows)), sample)]
    other = [h["id"] for h in sampling.choose_households(rows, dict(sample, seed=2027))]
    assert first == again and first != other
    assert len(first) == len(other) == 20        # 12 + 6 + 1.5 -> 12, 6, 2


def test_a_stratified_round_records_its_seed_and_invites_the_sample():
    rows = estate_households()
    round_, invites, _ = plan(round_data(estate_ids=["e1"], sample={
        "mode": "stratified", "rate": 0.2, "by": "building"}), {"e1": rows}, "rnd-s")
    assert round_["sample"]["seed"] == sampling.seed_from("rnd-s")
    assert (round_["households"], round_["invited"]) == ({"e1": 65}, {"e1": 13})
    assert len(invites) == 13


# rounds, invitations and tokens -----------------------------------------------------

def test_planning_stores_everything_but_announces_nothing():
    round_, invites, estate_tallies = planned()
    assert round_["status"] == "creating" and round_["invited"] == {"e1": 3, "e2": 1}
    assert [i["household_id"] for i in invites] == ["h1", "h2", "h3", "h4"]
    assert {i["status"] for i in invites} == {"pending"}
    assert len({i["token"] for i in invites}) == 4
    assert [t["_id"] for t in estate_tallies] == ["rnd-1:e1", "rnd-1:e2"]
    assert estate_tallies[0]["categories"]["cleaning"] == tallies.empty_counts()


def test_activating_opens_the_round_per_estate_or_waits_for_opens_at():
    round_, _, _ = planned()
    opened_round, events = invitations.finish_writing(round_, NOW)
    assert opened_round["status"] == "open"
    assert [(e["type"], e["estate_id"], e["data"]["invited"]) for e in events] == [
        ("survey_round_opened", "e1", 3), ("survey_round_opened", "e2", 1)]
    assert parse_event(events[0])["data"]["categories"] == TEMPLATE
    later, _, _ = planned(opens_at=NOW + timedelta(days=1))
    waiting, events = invitations.finish_writing(later, NOW)
    assert (waiting["status"], events) == ("scheduled", [])
    now_open, events = rounds.open_round(waiting, NOW + timedelta(days=1))
    assert now_open["status"] == "open" and len(events) == 2
    with pytest.raises(InvalidTransition):
        invitations.finish_writing(now_open, NOW)


def test_issuing_sends_each_invitation_with_its_token_and_first_reminder_time():
    _, _, invites, events = opened()
    assert {i["status"] for i in invites} == {"issued"}
    assert all(i["next_reminder_at"] == NOW + timedelta(days=3) for i in invites)
    for invitation, (event,) in zip(invites, events, strict=True):
        parsed = parse_event(event)
        assert parsed["type"] == "survey_invitation_issued"
        assert parsed["data"]["token"] == invitation["token"]
        assert parsed["data"]["expires_at"] == CLOSES
        assert parsed["data"]["title"] == "2026 H1"


def test_a_round_is_written_a_page_at_a_time_in_numbered_batches_from_its_progress():
    round_ = planning.plan_round("rnd-1", round_data(), templates.default_template(NOW), POLICY, NOW)
    assert round_["status"] == "creating" and round_["invited"] == {"e1": 0, "e2": 0}
    assert invitations.reading(round_) == ("e1", None)

    page, round_ = invitations.read_households(round_, "e1", households("h1", "h2"), "c1", 2)
    assert [(i["household_id"], i["issue_batch"]) for i in page] == [
        ("h1", "rnd-1/0"), ("h2", "rnd-1/0")]
    assert invitations.reading(round_) == ("e1", "c1")
    # the same page read again (a worker died before saving its progress): the same
    # invitations, batch and counts
    again, same = invitations.read_households(dict(round_, progress=invitations.new_progress(NOW)),
                                         "e1", households("h1", "h2"), "c1", 2)
    assert [i["_id"] for i in again] == [i["_id"] for i in page]
    assert same["progress"]["invited"] == round_["progress"]["invited"] == 2
    page, round_ = invitations.read_households(round_, "e1", households("h3"), None, 2)
    assert [i["issue_batch"] for i in page] == ["rnd-1/1"]
    assert invitations.reading(round_) == ("e2", None)
    _, round_ = invitations.read_households(round_, "e2", households("h4", "h5", "h6"), None, 2)
    assert invitations.reading(round_) is None
    assert (round_["households"], round_["invited"]) == ({"e1": 3, "e2": 3}, {"e1": 3, "e2": 3})
    assert {key: round_["progress"][key] for key in (
        "households_seen", "invited", "batches", "issued", "done")} == {
        "households_seen": 6, "invited": 6, "batches": 4, "issued": 0, "done": False}

    opened_round, events = invitations.finish_writing(round_, NOW)
    assert opened_round["status"] == "open" and len(events) == 2
    assert opened_round["progress"]["done"] is False          # its invitations: issued next


def test_a_batch_issued_again_announces_what_it_sent_with_the_same_event_ids():
    round_, invites, _ = planned(estate_ids=["e1"])       # one batch of three
    round_, _ = invitations.finish_writing(round_, NOW)
    changes, events, after = invitations.issue_batch(round_, invites, NOW)
    assert changes == {"status": "issued", "issued_at": NOW,
                       "next_reminder_at": NOW + timedelta(days=3)}
    assert [e["id"] for e in events] == [
        event_id("survey", "survey_invitation_issued", i["_id"]) for i in invites]
    assert [parse_event(e)["data"]["token"] for e in events] == [i["token"] for i in invites]
    assert after["progress"]["issued"] == 3 and after["progress"]["done"] is True

    # done again after a crash: h1 was sent, h3 expired unsent (the round closed meanwhile)
    sent = dict(invites[0], status="issued", issued_at=NOW)
    expired = dict(invites[2], status="expired")
    _, again, _ = invitations.issue_batch(round_, [sent, invites[1], expired],
                                     NOW + timedelta(minutes=5))
    assert [e["id"] for e in again] == [e["id"] for e in events[:2]]
    assert [e["data"]["household_id"] for e in again] == ["h1", "h2"]


def test_each_event_of_a_batch_is_checked():
    round_, invites, _ = planned(estate_ids=["e1"])
    bad = [invites[0], dict(invites[1], household_id={"$gt": ""})]
    with pytest.raises(InvalidInput) as error:
        invitations.issue_batch(round_, bad, NOW)
    assert list(error.value.errors) == ["data.household_id"]


def test_reminders_come_at_the_interval_at_most_max_times_and_not_after_expiry():
    round_, _, invites, _ = opened(reminders={"interval_days": 5, "max": 2})
    invitation = invites[0]
    assert invitation["next_reminder_at"] == NOW + timedelta(days=5)
    at = NOW + timedelta(days=5)
    changes, (event,) = invitations.remind(round_, invitation, at)
    assert changes["reminders_sent"] == 1 and changes["next_reminder_at"] == at + timedelta(days=5)
    assert parse_event(event)["data"]["reminder_no"] == 1
    second, (event,) = invitations.remind(round_, dict(invitation, **changes), at + timedelta(days=5))
    assert second["reminders_sent"] == 2 and second["next_reminder_at"] is None   # max 2
    assert parse_event(event)["data"]["reminder_no"] == 2
    # a reminder that would fall after the round closes is not planned
    late, _ = invitations.remind(dict(round_, reminders={"interval_days": 10, "max": 5}),
                            invitation, at)
    assert late["next_reminder_at"] is None
    _, _, silent, _ = opened(reminders={"max": 0})
    assert silent[0]["next_reminder_at"] is None


def test_an_estate_without_occupied_households_is_refused():
    planning.check_households(round_data(), [])
    with pytest.raises(InvalidInput) as error:
        planning.check_households(round_data(), ["e2"])
    assert error.value.errors == {"estate_ids": ["e2: no occupied households to invite"]}


def test_a_round_that_has_already_closed_cannot_be_created():
    with pytest.raises(InvalidInput) as error:
        planning.check_schedule(round_data(closes_at=NOW), NOW)
    assert "closes_at" in error.value.errors


def test_invitation_ids_are_derived_from_round_and_household():
    first = invitations.invitation_id("rnd-1", "h1")
    assert first == invitations.invitation_id("rnd-1", "h1")
    assert first != invitations.invitation_id("rnd-1", "h2") != invitations.invitation_id("rnd-2", "h1")
    assert ID_PATTERN.match(invitations.invitation_id("rnd-1", "h" * 128))


def test_tokens_are_long_and_unguessable():
    tokens = {invitations.new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    assert all(len(token) == 22 for token in tokens)     # 16 random bytes


def test_an_invitation_is_answerable_once_while_the_round_is_open():
    round_, _, invites, _ = opened()
    invitation = invites[0]
    assert answering.why_not_answerable(round_, invitation, NOW) is None
    assert answering.why_not_answerable(round_, dict(invitation, status="answered"), NOW) \
        == answering.USED_TOKEN
    assert answering.why_not_answerable(round_, dict(invitation, status="expired"), NOW) \
        == answering.EXPIRED_TOKEN
    assert answering.why_not_answerable(round_, invitation, CLOSES) == answering.EXPIRED_TOKEN
    assert answering.why_not_answerable(dict(round_, status="closed"), invitation, NOW) \
        == answering.CLOSED_ROUND
    assert answering.why_not_answerable(round_, dict(invitation, status="pending"), NOW) \
        == answering.UNKNOWN_TOKEN
    assert answering.why_not_answerable(round_, invitation, OPENS - timedelta(minutes=1)) \
        .startswith("this survey opens at")


def test_an_anonymous_response_cannot_be_traced_to_its_household():
    round_, _, invites, _ = opened()
    data = {"answers": {"cleaning": 4}, "comments": {"general": "电梯经常坏"}}
    anonymous = answering.response(round_, invites[0], data, NOW, timedelta(seconds=60))
    assert "household_id" not in anonymous and "invitation_id" not in anonymous
    assert anonymous["submitted_on"] == "2026-06-01" and anonymous["estate_id"] == "e1"
    assert anonymous["terms"] == {"general": ["电梯"]}
    assert anonymous["counted"] is False
    named = answering.response(dict(round_, anonymous=False), invites[0], data, NOW,
                            timedelta(seconds=60))
    assert named["household_id"] == "h1"


def test_closing_announces_each_estates_figures_and_happens_once():
    round_, _, _, _ = opened()
    closed, events = rounds.close(round_, {"e1": 2}, NOW)
    assert closed["status"] == "closed" and closed["closed_at"] == NOW
    assert [(e["estate_id"], e["data"]["invited"], e["data"]["returned"],
             e["data"]["response_rate"]) for e in events] \
        == [("e1", 3, 2, 0.6667), ("e2", 1, 0, 0.0)]
    with pytest.raises(InvalidTransition) as error:
        rounds.close(closed, {}, NOW)
    assert error.value.current == "closed"


def test_a_round_that_cannot_be_written_is_abandoned_never_opened():
    round_, _, _ = planned()
    assert rounds.abandon(round_, NOW)["status"] == "abandoned"
    with pytest.raises(InvalidTransition):
        rounds.abandon(invitations.finish_writing(round_, NOW)[0], NOW)


# the Wilson ranking -------------------------------------------------------------------

@pytest.mark.parametrize("rate, n, expected", [
    (1.0, 3, (0.4385, 1.0)),        # 3 / (3 + 1.96²)
    (1.0, 10, (0.7225, 1.0)),       # 10 / 13.8415
    (1.0, 300, (0.9874, 1.0)),      # 300 / 303.8415
    (0.5, 100, (0.4038, 0.5962)),
    (0.0, 10, (0.0, 0.2775)),
])
def test_wilson_interval_against_hand_computed_bounds(rate, n, expected):
    assert formulas.wilson_interval(rate, n) == expected


def test_wilson_interval_without_a_sample_is_none():
    assert formulas.wilson_interval(0.0, 0) == (None, None)


def one_category_tally(estate_id, satisfied, returned, key="cleaning"):
    """``returned`` questionnaires answering one category, ``satisfied`` of them with 5."""
    return dict(tally_of(*([{key: 5}] * satisfied + [{key: 2}] * (returned - satisfied))),
                estate_id=estate_id)


def test_a_small_perfect_estate_does_not_win_by_luck():
    round_, _, _, _ = opened(estate_ids=["tiny", "big", "mid", "full"])
    estate_tallies = [one_category_tally("tiny", 3, 3),       # 100 % of 3: too few
               one_category_tally("big", 184, 200),    # 92 % of 200: lower bound 0.8740
               one_category_tally("mid", 36, 40),      # 90 % of 40: 0.7695
               one_category_tally("full", 35, 35)]     # 100 % of 35: 35 / 38.84 = 0.9011
    standings = ranking.estate_ranking(round_, estate_tallies, min_returned=30)

    assert [(e["rank"], e["estate_id"], e["rate"], e["lower_bound"]) for e in standings["ranked"]] \
        == [(1, "full", 1.0, 0.9011), (2, "big", 0.92, 0.874), (3, "mid", 0.9, 0.7695)]
    assert [(e["estate_id"], e["returned"], e["rate"]) for e in standings["too_few"]] \
        == [("tiny", 3, 1.0)]
    cleaning = standings["categories"]["cleaning"]
    assert [e["estate_id"] for e in cleaning["ranked"]] == ["full", "big", "mid"]
    assert cleaning["label_zh"] == "卫生"
    order = standings["categories"]["order"]           # nobody was asked about order here
    assert order["ranked"] == []
    assert {(e["estate_id"], e["answered"], e["rate"]) for e in order["too_few"]} == {
        ("tiny", 0, None), ("big", 0, None), ("mid", 0, None), ("full", 0, None)}


def test_with_large_samples_the_bound_follows_the_rate_and_ties_share_a_rank():
    round_, _, _, _ = opened(estate_ids=["a", "b", "c"])
    estate_tallies = [one_category_tally("a", 900, 1000), one_category_tally("b", 850, 1000),
               one_category_tally("c", 900, 1000)]
    standings = ranking.estate_ranking(round_, estate_tallies, min_returned=30)
    assert [(e["rank"], e["estate_id"]) for e in standings["ranked"]] == [
        (1, "a"), (1, "c"), (3, "b")]
    assert standings["ranked"][0]["lower_bound"] == 0.8798
    assert standings["too_few"] == []


def test_the_minimum_sample_is_configurable():
    round_, _, _, _ = opened(estate_ids=["tiny", "mid"])
    estate_tallies = [one_category_tally("tiny", 3, 3), one_category_tally("mid", 36, 40)]
    standings = ranking.estate_ranking(round_, estate_tallies, min_returned=3)
    assert [e["estate_id"] for e in standings["ranked"]] == ["mid", "tiny"]   # 0.7695 > 0.4385


def test_overall_ranking_counts_households_not_answers():
    round_, _, _, _ = opened(estate_ids=["e1"])
    # 30 households each answering three categories, all satisfied: n is 30, not 90
    tally = dict(tally_of(*[{"cleaning": 5, "order": 4, "greening": 5}] * 30), estate_id="e1")
    (entry,) = ranking.estate_ranking(round_, [tally], 30)["ranked"]
    assert (entry["returned"], entry["answered"], entry["lower_bound"]) == (30, 90, 0.8865)


# statistics check -----------------------------------------------------------------

def test_differences_name_each_counter_that_disagrees():
    kept = {"e1": dict(tally_of({"cleaning": 5}, {"cleaning": 4}), estate_id="e1")}
    recounted = {"e1": tally_of({"cleaning": 5}, {"cleaning": 4}, {"cleaning": 1})}
    assert tallies.differences(kept, kept) == []
    assert tallies.differences(kept, recounted) == [
        {"estate_id": "e1", "counter": "categories.cleaning.answered", "kept": 2, "recomputed": 3},
        {"estate_id": "e1", "counter": "categories.cleaning.distribution.1", "kept": 0,
         "recomputed": 1},
        {"estate_id": "e1", "counter": "categories.cleaning.score_sum", "kept": 9,
         "recomputed": 10},
        {"estate_id": "e1", "counter": "returned", "kept": 2, "recomputed": 3},
    ]


# rectification ------------------------------------------------------------------------

# the departments intake's routing names for the estate (``intake.list_departments``)
ROUTED = ["客服中心", "工程部", "环境部", "秩序部", "财务部"]


def rectification_data(**changes):
    return dict({"estate_id": "e1", "category": "cleaning", "action": "增加垃圾清运频次",
                 "department": "环境部", "due_at": NOW + timedelta(days=30),
                 "assignee_id": None}, **changes)


def test_a_rectification_is_created_open_and_done_once():
    round_, _, _, _ = opened()
    item, (created,) = rectifications.new_rectification(
        "rect-1", round_, rectification_data(), NOW, ROUTED)
    assert item["status"] == "open" and parse_event(created)["type"] == "rectification_created"
    assert parse_event(created)["data"]["department"] == "环境部"
    started, events = rectifications.update_rectification(
        item, {"status": "in_progress", "note": "已排班", "staff_id": "s1"}, NOW)
    assert started["status"] == "in_progress" and events == []
    done, (event,) = rectifications.update_rectification(
        started, {"status": "done", "note": "每日两次清运", "staff_id": "s1"}, NOW)
    assert done["status"] == "done" and done["done_at"] == NOW
    assert parse_event(event)["type"] == "rectification_done"
    assert [h["status"] for h in done["history"]] == ["open", "in_progress", "done"]
    with pytest.raises(InvalidTransition) as error:
        rectifications.update_rectification(done, {"status": "in_progress", "note": None,
                                           "staff_id": None}, NOW)
    assert error.value.current == "done"


@pytest.mark.parametrize("change, field", [
    ({"estate_id": "e9"}, "estate_id"),
    ({"category": "parking"}, "category"),                 # not asked in this round
    ({"due_at": NOW}, "due_at"),
    ({"department": "保洁部"}, "department"),               # no category routes to it
])
def test_a_bad_rectification_is_refused(change, field):
    round_, _, _, _ = opened()
    with pytest.raises(InvalidInput) as error:
        rectifications.new_rectification("rect-1", round_, rectification_data(**change),
                                         NOW, ROUTED)
    assert list(error.value.errors) == [field]


def test_overdue_means_past_the_deadline_and_not_done():
    round_, _, _, _ = opened()
    item, _ = rectifications.new_rectification(
        "rect-1", round_, rectification_data(), NOW, ROUTED)
    due = item["due_at"]
    assert not rectifications.is_overdue(item, due - timedelta(seconds=1))
    assert rectifications.is_overdue(item, due)
    assert not rectifications.is_overdue(dict(item, status="done"), due)
    changes, (event,) = rectifications.rectification_overdue(item, due)
    assert changes == {"overdue_at": due}
    assert parse_event(event)["type"] == "rectification_overdue"


def test_publishing_needs_a_closed_round_and_counts_editions():
    round_, _, _, _ = opened()
    estate_reports = {estate_id: reports.report(round_, [], ["x"] if estate_id == "e1" else [],
                                        estate_id) for estate_id in ("e1", "e2")}
    with pytest.raises(InvalidTransition):
        reports.publish(round_, estate_reports, {"estate_ids": None, "note": None}, NOW)
    closed, _ = rounds.close(round_, {}, NOW)
    published, events = reports.publish(closed, estate_reports, {"estate_ids": None, "note": "欢迎监督"},
                                       NOW)
    assert [(e["estate_id"], e["data"]["rectifications"], e["data"]["edition"])
            for e in map(parse_event, events)] == [("e1", 1, 1), ("e2", 0, 1)]
    again, (event,) = reports.publish(published, estate_reports, {"estate_ids": ["e2"], "note": None},
                                     NOW)
    assert parse_event(event)["data"]["edition"] == 2
    assert again["published"]["e1"]["edition"] == 1


# the workbook -----------------------------------------------------------------------

def test_the_workbook_has_every_sheet_with_chinese_headings_and_percentages():
    round_, _, _, _ = opened()
    e1 = dict(tally_of({"cleaning": 5, "order": 4}, {"cleaning": 2, "order": 5}), estate_id="e1")
    item, _ = rectifications.new_rectification(
        "rect-1", round_, rectification_data(), NOW, ROUTED)
    report = reports.report(round_, [e1], [rectifications.rectification_view(item, round_, NOW)])
    standings = ranking.estate_ranking(round_, [e1], 1)

    book = load_workbook(io.BytesIO(workbook.build(report, standings)))

    assert book.sheetnames == ["汇总", "分项满意率", "排名", "共性意见", "整改计划"]
    summary = {row[0]: row[1] for row in book["汇总"].iter_rows(values_only=True) if row[0]}
    assert summary["发放问卷（份）"] == 4 and summary["回收问卷（份）"] == 2
    assert summary["总体满意率"] == 0.75
    rate_cell = next(row[1] for row in book["汇总"].iter_rows() if row[0].value == "总体满意率")
    assert rate_cell.number_format == "0.0%"
    categories = [row for row in book["分项满意率"].iter_rows(values_only=True)
                  if row[1] == "卫生"]
    assert categories[0][2:7] == (2, 1, 0, 0.5, 70.0)
    plan = [row for row in book["整改计划"].iter_rows(values_only=True) if row[0] == 1]
    assert plan[0][3:5] == ("增加垃圾清运频次", "环境部")
    assert plan[0][5] == datetime(2026, 7, 1, 10, 0)          # shown in Asia/Shanghai
    for sheet in book.worksheets:
        assert str(sheet.page_setup.paperSize) == sheet.PAPERSIZE_A4
        assert sheet.sheet_properties.pageSetUpPr.fitToPage
        assert sheet.print_title_rows
