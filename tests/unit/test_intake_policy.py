"""Per-estate complaint policy from the configuration, and announced holiday tables."""
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import holidays
import pytest
import yaml

from services.intake import domain
from services.intake.dependencies import complaint_policies, read_holiday_table
from services.intake.policy import DEFAULT_ROUTING, ComplaintPolicy, Policies, holiday_overrides
from shared.config import load_config
from shared.errors import InvalidInput
from shared.policies import EstatePolicies
from shared.schemas.base import load
from shared.schemas.intake import ComplaintPolicyConfig
from shared.schemas.vocabulary import COMPLAINT_CATEGORIES, COMPLAINT_DEADLINES

ROOT = Path(__file__).resolve().parents[2]
TABLE_2026 = ROOT / "services" / "intake" / "holiday_tables" / "cn-2026.yaml"
SHANGHAI = ZoneInfo("Asia/Shanghai")
# A made-up announcement for 2027 (the real one is not out yet): the test only needs a
# table that differs from the library's forecast.
TABLE_2027 = {
    "year": 2027,
    "holidays": [{"name": "元旦", "from": "2027-01-01", "to": "2027-01-03"},
                 {"name": "春节", "from": "2027-02-05", "to": "2027-02-13"}],
    "make_up_workdays": ["2027-01-31", "2027-02-20"],
}


def test_the_shipped_config_is_a_valid_policy_and_matches_the_defaults():
    config = load_config()
    policy = Policies.from_config(config).for_estate("any")
    assert (policy.first_response_working_days, policy.reply_days, policy.reply_day_kind) == (
        1, 3, "calendar")
    assert dict(policy.warn_before) == {"first_response": "2h", "reply": "0.5d"}
    assert policy == ComplaintPolicy(calendar=policy.calendar)   # the defaults, written out
    assert [level.role for level in policy.escalation_levels] == [
        "supervisor", "manager", "company_manager"]
    assert policy.escalation_levels[1].after == timedelta(hours=24)
    assert policy.special_measures_within == timedelta(hours=24)


def test_the_older_reply_working_days_mean_working_reply_days_at_any_level():
    policies = Policies(group={"reply_working_days": 4},
                        estates={"e-9": {"reply_day_kind": "calendar"},
                                 "e-8": {"reply_working_days": 2}})
    assert (policies.for_estate("e-1").reply_days,
            policies.for_estate("e-1").reply_day_kind) == (4, "working")
    assert (policies.for_estate("e-9").reply_days,
            policies.for_estate("e-9").reply_day_kind) == (4, "calendar")
    assert (policies.for_estate("e-8").reply_days,
            policies.for_estate("e-8").reply_day_kind) == (2, "working")


def test_a_loaded_policy_loads_again_unchanged():
    # an estate record keeps its policy as loaded; the console sends it back on an edit
    loaded = load(ComplaintPolicyConfig(), {"reply_working_days": 2,
                                            "warn_before": {"reply": "0.5d"}})
    assert loaded == {"reply_days": 2, "reply_day_kind": "working",
                      "warn_before": {"reply": "0.5d"}}
    assert load(ComplaintPolicyConfig(), loaded) == loaded


def test_which_deadlines_count_working_days():
    calendar_reply = Policies().for_estate("e-1")
    working_reply = Policies(group={"reply_day_kind": "working"}).for_estate("e-1")
    assert [kind for kind in COMPLAINT_DEADLINES if calendar_reply.counts_working_days(kind)] \
        == ["first_response", "review"]
    assert working_reply.counts_working_days("reply")


def test_every_category_is_routed():
    assert set(DEFAULT_ROUTING) == set(COMPLAINT_CATEGORIES)


def test_an_estate_overrides_the_group_key_by_key_and_routing_category_by_category():
    policies = Policies(
        group={"reply_days": 4, "routing": {"parking": "车管部"}},
        estates={"e-9": {"first_response_working_days": 2, "routing": {"noise": "安保部"}}})
    estate, other = policies.for_estate("e-9"), policies.for_estate("e-1")
    assert (estate.first_response_working_days, estate.reply_days) == (2, 4)
    assert (other.first_response_working_days, other.reply_days) == (1, 4)
    assert estate.department_for("noise") == "安保部"
    assert estate.department_for("parking") == "车管部"      # the group's
    assert estate.department_for("fees") == "财务部"         # the default table
    assert other.department_for("noise") == "秩序部"


@pytest.mark.parametrize("group, field", [
    ({"reply_working_day": 3}, "reply_working_day"),                      # a typo
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"routing": {"weather": "气象部"}}, "routing"),
    ({"escalation_levels": []}, "escalation_levels"),
    ({"escalation_levels": [{"role": "a", "after_hours": 5},
                            {"role": "b", "after_hours": 1}]}, "escalation_levels"),
    ({"major_escalation_from": "ceo"}, "major_escalation_from"),
    ({"reply_working_days": "3"}, "reply_working_days"),
    ({"reply_day_kind": "lunar"}, "reply_day_kind"),
    ({"reply_working_days": 3, "reply_days": 3}, "reply_working_days"),   # two spellings
    ({"warn_before": {"reply": "2 hours"}}, "warn_before"),
    ({"warn_before": {"reply": 2}}, "warn_before"),
    ({"warn_before": {"visit": "2h"}}, "warn_before"),
    ({"warn_before": {"reply": "31d"}}, "warn_before"),
])
def test_bad_configuration_fails_at_start_naming_the_key(group, field):
    with pytest.raises(InvalidInput) as error:
        Policies(group=group)
    assert field in error.value.errors["COMPLAINT_POLICY"]


def test_bad_estate_configuration_names_the_estate():
    with pytest.raises(InvalidInput) as error:
        Policies(estates={"e-3": {"repeat_window_days": -1}})
    assert "repeat_window_days" in error.value.errors["ESTATE_POLICIES.e-3"]


# announced holiday tables ------------------------------------------------------------------

def test_the_shipped_2026_table_is_the_official_calendar():
    overrides = holiday_overrides(read_holiday_table(str(TABLE_2026)))
    official = holidays.China()
    assert len(overrides) == 365
    assert all(overrides[day] == official.is_working_day(day) for day in overrides)
    assert overrides[date(2026, 2, 14)] and overrides[date(2026, 9, 20)]   # make-up days
    assert not overrides[date(2026, 10, 6)]


def test_a_new_years_table_overrides_the_library_for_that_year():
    library = Policies().for_estate("e-1").calendar
    announced = Policies(holiday_tables=[TABLE_2027]).for_estate("e-1").calendar
    # the library guesses differently; the announcement wins
    assert library.is_working_day(date(2027, 2, 11)) != announced.is_working_day(date(2027, 2, 11))
    assert not announced.is_working_day(date(2027, 2, 11))
    assert announced.is_working_day(date(2027, 1, 31))        # a Sunday make-up day
    assert announced.is_working_day(date(2027, 2, 20))
    assert not announced.is_working_day(date(2027, 2, 21))    # an ordinary Sunday
    assert announced.is_working_day(date(2027, 3, 1))
    # other years are untouched
    assert announced.is_working_day(date(2026, 2, 14)) and not announced.is_working_day(
        date(2026, 2, 17))


def test_a_complaint_before_the_new_year_counts_on_the_announced_table():
    policy = Policies(holiday_tables=[TABLE_2027]).for_estate("e-1")
    received = datetime(2027, 2, 4, 10, 0, tzinfo=SHANGHAI)     # the last day before the break
    complaint, _ = domain.register("cmp-1", {
        "estate_id": "e-1", "household_id": "h-1", "channel": "hotline", "category": "noise",
        "severity": "normal", "content": "装修噪音"}, [], policy, received.astimezone(UTC))
    # 5-13 February off, Sunday 14 February a rest day: due Monday 15 February
    assert complaint["first_response_due"] == datetime(2027, 2, 15, 10, 0, tzinfo=SHANGHAI)


def test_tables_load_from_yaml_files(tmp_path):
    path = tmp_path / "cn-2027.yaml"
    path.write_text(yaml.safe_dump(TABLE_2027, allow_unicode=True), encoding="utf-8")
    policies = Policies(holiday_tables=[read_holiday_table(str(path))])
    assert policies.for_estate("e-1").calendar.is_working_day(date(2027, 1, 31))


@pytest.mark.parametrize("change, field", [
    ({"year": "2027"}, "year"),
    ({"holidays": [{"name": "春节", "from": "2027-02-13", "to": "2027-02-05"}]}, "holidays.0.to"),
    ({"holidays": [{"name": "元旦", "from": "2026-12-31", "to": "2027-01-01"}]}, "holidays.0"),
    ({"make_up_workdays": ["2027-02-22"]}, "make_up_workdays.0"),        # a Monday
    ({"make_up_workdays": ["2027-02-06"]}, "make_up_workdays"),          # also a holiday
    ({"holidays": [{"name": "春节", "from": "2027-02-05"}]}, "holidays"),
])
def test_a_bad_table_is_refused_naming_the_entry(change, field):
    with pytest.raises(InvalidInput) as error:
        Policies(holiday_tables=[dict(TABLE_2027, **change)])
    assert field in str(error.value.errors["HOLIDAY_TABLES.0"])


def test_the_service_builds_policies_from_its_config_once_with_tables_from_files(tmp_path):
    path = tmp_path / "cn-2027.yaml"
    path.write_text(yaml.safe_dump(TABLE_2027, allow_unicode=True), encoding="utf-8")
    provider = EstatePolicies(complaint_policies)
    provider.container = SimpleNamespace(config=load_config(
        HOLIDAY_TABLES=[str(TABLE_2026), str(path)],
        ESTATE_POLICIES={"e-7": {"timezone": "Asia/Urumqi"}}))
    provider.setup()
    policies = provider.get_dependency(None)
    assert policies.for_estate("e-7").calendar.is_working_day(date(2027, 1, 31))
    assert policies.for_estate("e-7").timezone == "Asia/Urumqi"
    provider.container = SimpleNamespace(config=load_config(
        ESTATE_POLICIES={"e-7": {"reply_working_days": 0}}))
    with pytest.raises(InvalidInput, match="reply_working_days"):
        provider.setup()     # the service does not start with a bad policy
