"""Follow-ups of unsatisfied revisits (services/revisit/followups.py): pure rules."""
from datetime import UTC, datetime, timedelta

import pytest

from services.revisit import followups, stats
from services.revisit.policies import (
    FOLLOWUP_DEPARTMENTS,
    PolicyBook,
    PolicyError,
    RevisitPolicy,
    build_policy,
)
from shared.departments import DEFAULT_ROUTING, followup_departments
from shared.errors import InvalidInput, InvalidTransition

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
POLICY = RevisitPolicy()


def done_revisit(kind="repair", satisfaction="unsatisfied", resolved=True, reached=True,
                 comments="师傅修完还是漏水"):
    return {"_id": f"rv-wo-1-{kind}", "estate_id": "e-1", "kind": kind, "source_id": "wo-1",
            "household_id": "h-1", "status": "done", "source_at": NOW, "stats_month": "2026-11",
            "outcome": {"reached": reached, "satisfaction": satisfaction, "resolved": resolved,
                        "comments": comments}}


def opened(revisit=None, policy=POLICY, now=NOW):
    return followups.open_followup(revisit or done_revisit(), policy, now)


MEASURES = {"staff_id": "eng-3", "measures": "更换屋面防水卷材", "responsible": "王工"}
ANSWER = {"staff_id": "eng-3", "answer": "已更换防水层，雨后复查无渗漏"}


@pytest.mark.parametrize("revisit, needed", [
    (done_revisit(), True),
    (done_revisit(satisfaction="very_unsatisfied"), True),
    (done_revisit(satisfaction="satisfied", resolved=False), True),     # unresolved
    (done_revisit(kind="routine", satisfaction="unsatisfied"), True),
    (done_revisit(satisfaction="satisfied"), False),
    (done_revisit(satisfaction="neutral"), False),
    (done_revisit(kind="complaint"), False),          # intake reopens the complaint instead
    (done_revisit(reached=False, satisfaction=None, resolved=None), False),
    (dict(done_revisit(), status="scheduled", outcome=None), False),
])
def test_which_revisits_are_followed_up(revisit, needed):
    assert followups.needs_followup(revisit) is needed


def test_opening_records_the_owners_words_the_department_and_a_month_to_answer():
    followup, [event] = opened()
    assert followup["_id"] == "fu-rv-wo-1-repair"
    assert (followup["status"], followup["department"]) == ("open", "工程部")
    assert followup["owner_words"] == "师傅修完还是漏水"
    assert followup["answer_due_at"] == NOW + timedelta(days=30)
    assert event["type"] == "revisit_followup_opened"
    assert event["data"]["summary"] == "师傅修完还是漏水"
    assert event["data"]["department"] == "工程部"
    # the same revisit opens the same follow-up: the event id is the same however built
    assert opened()[1][0]["id"] == event["id"]


def test_the_department_and_the_answer_time_are_each_estates_policy():
    policy = build_policy("default", {"followup_answer_days": 14,
                                      "followup_departments": {"repair": "维修部"}})
    followup, _ = opened(policy=policy)
    assert followup["department"] == "维修部"
    assert followup["answer_due_at"] == NOW + timedelta(days=14)
    assert policy.followup_department("routine") == "客服中心"   # unlisted kinds: the default
    hash(policy)    # still usable as a cache key by sampling


@pytest.mark.parametrize("values, field", [
    ({"followup_answer_days": -1}, "followup_answer_days"),
    ({"followup_departments": {"complaint": "客服中心"}}, "followup_departments"),
    ({"followup_departments": {"repair": ""}}, "followup_departments"),
])
def test_bad_follow_up_settings_stop_the_start(values, field):
    with pytest.raises(PolicyError, match=field):
        build_policy("default", values)


def test_measures_then_the_answer_close_it_on_time():
    followup, _ = opened()
    later = NOW + timedelta(days=3)
    followup, events = followups.record_measures(followup, MEASURES, later)
    assert events == []
    assert followup["status"] == "measures_recorded"
    assert followup["measures"] == [{"measures": "更换屋面防水卷材", "responsible": "王工",
                                     "recorded_by": "eng-3", "recorded_at": later}]
    followup, _ = followups.record_measures(followup, dict(MEASURES, responsible="李工",
                                                           measures="雨后复查"), later)
    assert [m["responsible"] for m in followup["measures"]] == ["王工", "李工"]
    answered_at = NOW + timedelta(days=20)
    followup, [event] = followups.answer(followup, ANSWER, answered_at)
    assert (followup["status"], followup["answered_on_time"]) == ("answered", True)
    assert followup["answer"] == {"text": ANSWER["answer"], "by": "eng-3", "at": answered_at}
    assert event["type"] == "revisit_followup_answered"
    assert (event["data"]["household_id"], event["data"]["on_time"]) == ("h-1", True)
    assert [entry["action"] for entry in followup["history"]] == [
        "open", "record measures", "record measures", "answer"]


def test_an_answer_needs_measures_first_and_closes_it_for_good():
    followup, _ = opened()
    with pytest.raises(InvalidTransition, match="it is open"):
        followups.answer(followup, ANSWER, NOW)
    followup, _ = followups.record_measures(followup, MEASURES, NOW)
    followup, _ = followups.answer(followup, ANSWER, NOW + timedelta(days=31))
    assert followup["answered_on_time"] is False
    with pytest.raises(InvalidTransition, match="it is answered"):
        followups.record_measures(followup, MEASURES, NOW)
    with pytest.raises(InvalidTransition, match="it is answered"):
        followups.answer(followup, ANSWER, NOW)


def test_expected_status_tells_a_retry_from_a_conflict():
    followup, _ = opened()
    moved, _ = followups.record_measures(followup, MEASURES, NOW, expected_status="open")
    # the same person's same step, its answer lost: a retry, answered as it is
    assert followups.record_measures(moved, MEASURES, NOW, expected_status="open") is None
    # someone else saw it open: the follow-up moved on meanwhile
    with pytest.raises(InvalidTransition, match="not open as expected"):
        followups.record_measures(moved, dict(MEASURES, staff_id="eng-4"), NOW,
                                  expected_status="open")
    with pytest.raises(InvalidInput):
        followups.record_measures(moved, MEASURES, NOW, expected_status="closed")


def test_overdue_once_past_the_answer_time_until_answered():
    followup, _ = opened()
    due = followup["answer_due_at"]
    assert not followups.is_overdue(followup, due)
    assert followups.is_overdue(followup, due + timedelta(seconds=1))
    changes, [event] = followups.mark_overdue(followup, due + timedelta(seconds=1))
    assert changes == {"overdue_at": due + timedelta(seconds=1)}
    assert event["type"] == "revisit_followup_overdue"
    assert event["id"] == followups.mark_overdue(followup, due + timedelta(days=1))[1][0]["id"]
    followup, _ = followups.record_measures(followup, MEASURES, NOW)
    followup, _ = followups.answer(followup, ANSWER, due + timedelta(days=2))
    assert not followups.is_overdue(followup, due + timedelta(days=3))


def test_statistics_count_opened_answered_on_time_and_overdue_now():
    on_time, _ = opened(done_revisit(kind="repair"))
    on_time, _ = followups.record_measures(on_time, MEASURES, NOW)
    on_time, _ = followups.answer(on_time, ANSWER, NOW + timedelta(days=5))
    late, _ = opened(done_revisit(kind="routine"))
    waiting, _ = opened(dict(done_revisit(kind="assistance")), now=NOW + timedelta(days=10))
    recounted = stats.recount([], [], [on_time, late, waiting])
    [(key, counts)] = recounted.items()
    assert key == ("e-1", "2026-11")
    figures = stats.figures([("e-1", "2026-11", stats.nested(counts))], lambda e: None,
                            NOW + timedelta(days=35))["followups"]
    assert figures == {"opened": 3, "answered": 1, "answered_on_time": 1, "on_time_rate": 1.0,
                       "overdue": 1}
    # answering the late one moves it out of "overdue now" and into answered, not on time
    late, _ = followups.record_measures(late, MEASURES, NOW)
    late, _ = followups.answer(late, ANSWER, NOW + timedelta(days=36))
    change = stats.difference(stats.followup_contribution(opened(done_revisit("routine"))[0]),
                              stats.followup_contribution(late))
    assert change["followups.answered"] == 1 and "followups.answered_on_time" not in change


@pytest.mark.parametrize("signoff, severity, role, method", [
    ("unsatisfied", "normal", "supervisor", "phone"),
    ("satisfied", "normal", "staff", "phone"),
    ("none", "normal", "staff", "phone"),
    ("unsatisfied", "major", "supervisor", "onsite"),
])
def test_a_closing_the_owner_signed_off_unsatisfied_is_revisited_by_a_supervisor(
        signoff, severity, role, method):
    visit = POLICY.complaint_visit({"closed_at": NOW, "severity": severity,
                                    "owner_signoff": signoff})
    assert (visit.assigned_role, visit.method) == (role, method)


# the follow-up departments are the complaint routing's (shared/departments.py) ---------------

def _book(revisit=None, estates=None, routing=None, estate_routing=None):
    return PolicyBook({
        "REVISIT_POLICY": revisit or {}, "REVISIT_ESTATE_POLICIES": estates or {},
        "COMPLAINT_POLICY": {"routing": routing or {}},
        "ESTATE_POLICIES": {"e-9": {"routing": estate_routing}} if estate_routing else {}})


def test_the_default_follow_up_departments_are_routed_ones():
    book = _book()
    assert {book.default.followup_department(kind) for kind in FOLLOWUP_DEPARTMENTS} <= set(
        DEFAULT_ROUTING.values())


@pytest.mark.parametrize("config, where", [
    # a name the routing never uses: no department account could ever be given it
    ({"revisit": {"followup_departments": {"repair": "维修部"}}},
     "REVISIT_POLICY: followup_departments: repair: 维修部"),
    ({"estates": {"e-9": {"followup_departments": {"assistance": "客服部"}}}},
     "REVISIT_ESTATE_POLICIES.e-9: followup_departments: assistance: 客服部"),
    # the estate routes all of 工程部's categories elsewhere: the group's policy, there, no more
    ({"estate_routing": {category: "维修部" for category, department in
                         DEFAULT_ROUTING.items() if department == "工程部"}},
     ("REVISIT_POLICY: followup_departments: repair: 工程部, special_service: 工程部 - not a "
      "department estate e-9's complaint routing names")),
])
def test_a_follow_up_department_outside_the_routing_stops_the_start(config, where):
    with pytest.raises(PolicyError) as stopped:
        _book(config.get("revisit"), config.get("estates"),
              estate_routing=config.get("estate_routing"))
    assert str(stopped.value).startswith(where)
    assert "one of " in str(stopped.value) and "客服中心" in str(stopped.value)


def test_a_department_the_group_or_the_estate_routes_to_may_follow_up():
    group = _book({"followup_departments": {"repair": "维修部"}},
                  routing={"repair_service": "维修部"})
    assert group.for_estate("e-1").followup_department("repair") == "维修部"
    estate = _book(estates={"e-9": {"followup_departments": {"repair": "维修部"}}},
                   estate_routing={"repair_service": "维修部"})
    assert estate.for_estate("e-9").followup_department("repair") == "维修部"
    assert estate.for_estate("e-1").followup_department("repair") == "工程部"


@pytest.mark.parametrize("revisit, estates", [
    (None, None),
    ({"followup_departments": {"repair": "维修部"}}, None),
    ({"followup_departments": {"repair": "维修部"}},
     {"e-9": {"followup_departments": {"assistance": "维修部"}}}),    # replaces the group's
    (None, {"e-9": {"policy": "in_home_repairs_30", "repair_share": 0.5}}),
])
def test_intake_reads_the_follow_up_departments_as_revisit_builds_them(revisit, estates):
    """What intake keeps every estate record routing (``followup_departments`` read from
    the config, shared/departments.py) is what revisit's policies send follow-ups to."""
    config = {"REVISIT_POLICY": revisit or {}, "REVISIT_ESTATE_POLICIES": estates or {},
              "COMPLAINT_POLICY": {"routing": {"repair_service": "维修部"}}}
    book = PolicyBook(config)
    for estate_id in ("e-1", "e-9"):
        assert followup_departments(config, estate_id) == dict(
            book.for_estate(estate_id).followup_departments)
