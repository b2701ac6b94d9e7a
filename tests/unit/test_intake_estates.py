"""Estates as records in intake (services/intake/estates.py): registered, renamed, listed,
made by the household import, migrated from bare ids, and grouped in headquarters'
statistics (the embedded store, no broker)."""
from datetime import UTC, datetime

import pytest

from services.intake import estates
from services.intake.dependencies import EstatePolicyBook
from services.intake.policy import Policies
from services.intake.repository import IntakeRepository
from shared.clock import FrozenClock
from shared.config import load_config
from shared.errors import InvalidInput, InvalidTransition, NotFound
from shared.estate_groups import UNGROUPED
from shared.schemas.base import load
from shared.schemas.intake import MAX_ESTATES_CHECKED, EstatePolicy
from tests.helpers import embedded
from tests.unit.test_intake_service import COMPLAINT, HOUSEHOLD, make_service

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)    # Monday 10:00 in Shanghai
SUNNY = {"estate_id": "e-1", "name": "阳光花园", "company": "华东物业", "region": "杭州片区"}


def new_service(**config):
    repository = embedded(IntakeRepository)
    service = make_service(repository, FrozenClock(NOW), **config)
    # as the EstatePolicies provider gives each worker: policies read through the records
    service.policies = EstatePolicyBook(service.policies, repository.find_estate)
    return service


@pytest.fixture
def service():
    return new_service()


def outbox(service, estate_id, event_type=None):
    document = service.store.db.estates.find_one({"_id": estate_id})
    return [event for event in document.get("outbox", [])
            if event_type in (None, event["type"])]


def test_a_registered_estate_is_a_record_and_announced(service):
    estate = service.register_estate(SUNNY)
    assert estate == {"id": "e-1", **SUNNY, "timezone": "Asia/Shanghai", "policy": {}, "named": True,
                      "created_at": NOW.isoformat(), "updated_at": NOW.isoformat(),
                      "revision": 0}
    assert service.get_estate("e-1") == estate
    [event] = outbox(service, "e-1")   # no publisher here: it waits in the outbox
    assert (event["type"], event["estate_id"]) == ("estate_registered", "e-1")
    assert event["data"] == {"name": "阳光花园", "company": "华东物业", "region": "杭州片区",
                             "timezone": "Asia/Shanghai", "revision": 0}


@pytest.mark.parametrize(("data", "field"), [
    ({"estate_id": "e-1"}, "name"),
    ({"estate_id": "e-1", "name": "  "}, "name"),
    ({"estate_id": "e-1", "name": "名" * 101}, "name"),
    ({"estate_id": "e-1", "name": "阳光花园", "timezone": "Asia/Nowhere"}, "timezone"),
    ({"estate_id": "e-1", "name": "阳光花园", "policy": {"reply_working_days": 0}}, "policy"),
    ({"estate_id": "e-1", "name": "阳光花园", "policy": {"no_such_key": 1}}, "policy"),
    ({"estate_id": "e-1", "name": "阳光花园", "policy": {"timezone": "UTC"}}, "policy"),
    # valid keys that make no valid policy together: checked as ESTATE_POLICIES are
    ({"estate_id": "e-1", "name": "阳光花园",
      "policy": {"major_escalation_from": "president"}}, "policy"),
    ({"estate_id": "$where", "name": "阳光花园"}, "estate_id"),
])
def test_bad_estates_are_refused_naming_the_field(service, data, field):
    with pytest.raises(InvalidInput) as refused:
        service.register_estate(data)
    assert field in refused.value.errors
    assert service.store.db.estates.count_documents({}) == 0


def test_an_estate_id_is_registered_once(service):
    service.register_estate(SUNNY)
    with pytest.raises(InvalidInput) as refused:
        service.register_estate(dict(SUNNY, name="另一个"))
    assert "estate_id" in refused.value.errors
    assert service.get_estate("e-1")["name"] == "阳光花园"


def test_an_update_changes_what_it_names_and_says_what_changed(service):
    service.register_estate(SUNNY)
    estate = service.update_estate("e-1", {"name": "阳光花园二期", "timezone": "Asia/Urumqi"},
                                   expected_revision=0)
    assert (estate["name"], estate["timezone"], estate["company"], estate["revision"]) == \
        ("阳光花园二期", "Asia/Urumqi", "华东物业", 1)
    [event] = outbox(service, "e-1", "estate_updated")
    assert event["data"]["changed"] == ["name", "timezone"]
    assert event["data"]["revision"] == 1
    # the same again changes nothing and announces nothing
    assert service.update_estate("e-1", {"name": "阳光花园二期"})["revision"] == 1
    assert len(outbox(service, "e-1", "estate_updated")) == 1


def test_an_update_from_a_stale_read_is_refused(service):
    service.register_estate(SUNNY)
    service.update_estate("e-1", {"region": "宁波片区"}, expected_revision=0)
    with pytest.raises(InvalidTransition, match="revision 1"):
        service.update_estate("e-1", {"region": "温州片区"}, expected_revision=0)
    assert service.get_estate("e-1")["region"] == "宁波片区"


def test_an_update_is_checked_like_a_registration(service):
    service.register_estate(SUNNY)
    for data, field in [({}, "_schema"), ({"timezone": "Nowhere"}, "timezone"),
                        ({"policy": {"escalation_levels": []}}, "policy")]:
        with pytest.raises(InvalidInput) as refused:
            service.update_estate("e-1", data)
        assert field in refused.value.errors
    with pytest.raises(NotFound):
        service.update_estate("e-404", {"name": "无"})


# 工程部 routed away from all four of its categories: revisit's repair follow-ups go there
WITHOUT_ENGINEERING = {"routing": {category: "维修外包组" for category in (
    "power_supply", "water_supply", "public_facilities", "repair_service")}}


def test_a_routing_that_drops_a_follow_up_department_is_refused_nothing_written(service):
    """Revisit opens follow-ups (its config's ``followup_departments``) in event handlers
    that never ask intake: the record may not route their department away."""
    service.register_estate(SUNNY)
    before = service.store.db.estates.find_one({"_id": "e-1"})
    with pytest.raises(InvalidInput) as refused:
        service.update_estate("e-1", {"policy": WITHOUT_ENGINEERING})
    assert list(refused.value.errors) == ["policy.routing"]
    assert "工程部" in refused.value.errors["policy.routing"][0]
    assert "repair" in refused.value.errors["policy.routing"][0]
    assert service.store.db.estates.find_one({"_id": "e-1"}) == before
    # keeping one category on 工程部 is fine; so is any routing the follow-ups survive
    kept = {"routing": {**WITHOUT_ENGINEERING["routing"], "repair_service": "工程部"}}
    assert service.update_estate("e-1", {"policy": kept})["policy"]["routing"] == kept["routing"]
    # an update that leaves the routing alone is not checked again
    assert service.update_estate("e-1", {"name": "阳光花园二期"})["name"] == "阳光花园二期"


@pytest.mark.parametrize("register", [
    lambda service: service.register_estate(dict(SUNNY, policy=WITHOUT_ENGINEERING)),
    lambda service: service.import_households("e-1", [HOUSEHOLD], estate={
        "name": "阳光花园", "policy": WITHOUT_ENGINEERING}),
])
def test_a_new_estate_routing_a_follow_up_department_away_is_refused(service, register):
    with pytest.raises(InvalidInput) as refused:
        register(service)
    assert [name.rsplit(".", 2)[-2:] for name in refused.value.errors] == [["policy", "routing"]]
    with pytest.raises(NotFound):
        service.get_estate("e-1")


def test_the_follow_up_departments_are_revisits_config():
    """Where revisit's config sends repair follow-ups elsewhere, 工程部 may go; the new
    department must then stay routed."""
    service = new_service(REVISIT_POLICY={"policy": "default", "followup_departments": {
        "repair": "维修外包组", "special_service": "维修外包组"}})
    service.register_estate(dict(SUNNY, policy=WITHOUT_ENGINEERING))
    with pytest.raises(InvalidInput) as refused:
        service.update_estate("e-1", {"policy": {}})
    assert "维修外包组" in refused.value.errors["policy.routing"][0]


def test_the_records_policy_sets_the_estates_deadlines_and_zone(service):
    service.register_estate(dict(SUNNY, policy={"reply_working_days": 1}))
    service.register_estate({"estate_id": "e-2", "name": "明月小区"})
    for estate_id in ("e-1", "e-2"):
        service.import_households(estate_id, [dict(HOUSEHOLD, household_id=f"h-{estate_id}")])
    quick = service.register_complaint(dict(COMPLAINT, household_id="h-e-1"))
    usual = service.register_complaint(dict(COMPLAINT, estate_id="e-2", household_id="h-e-2"))
    assert quick["reply_due"] < usual["reply_due"]
    assert quick["reply_due"] == quick["first_response_due"]   # 1 working day, as the first reply


def test_listing_filters_by_company_region_and_ids_a_page_at_a_time(service):
    service.register_estate(SUNNY)
    service.register_estate(dict(SUNNY, estate_id="e-2", name="明月小区"))
    service.register_estate(dict(SUNNY, estate_id="e-3", name="滨江花园", region="宁波片区"))
    service.register_estate({"estate_id": "e-4", "name": "北苑", "company": "华北物业"})
    names = lambda found: [estate["name"] for estate in found]
    assert names(service.list_estates({"company": "华东物业"})) == ["阳光花园", "明月小区",
                                                                  "滨江花园"]
    assert names(service.list_estates({"company": "华东物业", "region": "杭州片区"})) == \
        ["阳光花园", "明月小区"]
    assert names(service.list_estates({"estate_ids": ["e-4", "e-1"]})) == ["阳光花园", "北苑"]
    first = service.list_estates({"limit": 3}, paged=True)
    rest = service.list_estates({"limit": 3, "cursor": first["next_cursor"]}, paged=True)
    assert names(first["items"] + rest["items"]) == ["阳光花园", "明月小区", "滨江花园", "北苑"]
    assert rest["next_cursor"] is None
    with pytest.raises(InvalidInput) as refused:
        service.list_estates({"company": {"$ne": None}})
    assert "company.$ne" in refused.value.errors


def test_listing_finds_estates_by_name_or_its_beginning(service):
    for n, name in enumerate(["阳光花园", "阳光小区", "明月小区", "阳", "阳光花园"], 1):
        service.register_estate({"estate_id": f"e-{n}", "name": name})
    ids = lambda filters: [estate["id"] for estate in service.list_estates(filters)]
    assert ids({"name_prefix": "阳光"}) == ["e-1", "e-2", "e-5"]
    assert ids({"name_prefix": "阳"}) == ["e-1", "e-2", "e-4", "e-5"]
    assert ids({"name_prefix": "阳光花园小"}) == [] and ids({"name_prefix": "月"}) == []
    assert ids({"name": "阳光花园"}) == ["e-1", "e-5"] and ids({"name": "阳光"}) == []
    assert ids({"name": "阳光小区", "name_prefix": "阳"}) == ["e-2"]
    assert ids({"name": "阳光小区", "name_prefix": "明"}) == []
    assert ids({"name_prefix": "阳", "estate_ids": ["e-2", "e-3"]}) == ["e-2"]
    with pytest.raises(InvalidInput) as refused:
        service.list_estates({"name_prefix": " "})
    assert "name_prefix" in refused.value.errors


# the household import ------------------------------------------------------------------

def test_importing_into_a_new_estate_needs_its_name(service):
    with pytest.raises(InvalidInput) as refused:
        service.import_households("e-new", [HOUSEHOLD])
    assert list(refused.value.errors) == ["estate.name"]
    with pytest.raises(InvalidInput) as refused:
        service.import_households("e-new", [HOUSEHOLD], estate={"company": "华东物业"})
    assert "estate" in refused.value.errors
    with pytest.raises(NotFound):
        service.get_estate("e-new")
    assert service.store.db.households.count_documents({}) == 0


def test_the_import_registers_a_new_estate_in_the_same_step(service):
    service.import_households("e-new", [HOUSEHOLD], estate={
        "name": "新城花园", "company": "华东物业", "region": "杭州片区",
        "policy": {"reply_working_days": 2}})
    estate = service.get_estate("e-new")
    assert (estate["name"], estate["region"], estate["policy"]) == \
        ("新城花园", "杭州片区", load(EstatePolicy(), {"reply_working_days": 2}))
    assert [event["type"] for event in outbox(service, "e-new")] == ["estate_registered"]
    # a known estate imports without a name; one given is not a rename
    service.import_households("e-new", [dict(HOUSEHOLD, building="9")],
                              estate={"name": "别的名字"})
    assert service.get_estate("e-new")["name"] == "新城花园"


def test_which_estates_have_households_is_answered_for_many_estates_in_one_call(service):
    service.import_households("e-full", [HOUSEHOLD], estate={"name": "满园"})
    service.import_households("e-vacant", [dict(HOUSEHOLD, household_id="h-2",
                                                 occupied=False)], estate={"name": "空园"})
    service.register_estate({"estate_id": "e-bare", "name": "新园"})
    asked = ["e-none", "e-bare", "e-vacant", "e-full", "e-gone", "e-none"]

    assert service.estates_with_households(asked) == {
        "unknown": ["e-none", "e-gone"], "without_households": ["e-bare"]}
    assert service.estates_with_households(asked, {"occupied": True}) == {
        "unknown": ["e-none", "e-gone"], "without_households": ["e-bare", "e-vacant"]}


@pytest.mark.parametrize(("estate_ids", "filters", "field"), [
    ([], None, "estate_ids"),
    ("e-1", None, "estate_ids"),
    ([f"e-{n}" for n in range(MAX_ESTATES_CHECKED + 1)], None, "estate_ids"),
    (["e-1", 12], None, "estate_ids.1"),
    (["e-1"], {"occupied": "yes"}, "filters.occupied"),
    (["e-1"], {"building": "3"}, "filters.building"),
    (["e-1"], ["occupied"], "filters"),
])
def test_a_bad_estates_question_is_refused_naming_the_field(service, estate_ids, filters,
                                                              field):
    with pytest.raises(InvalidInput) as refused:
        service.estates_with_households(estate_ids, filters)
    top, _, inner = field.partition(".")     # (errors nest: {"filters": {"occupied": [...]}})
    assert list(refused.value.errors) == [top] and inner in str(refused.value.errors[top])


def test_an_import_that_fails_leaves_no_estate(service, monkeypatch):
    from pymongo.errors import PyMongoError

    def broken(*args, **kwargs):
        raise PyMongoError("the store went away")

    monkeypatch.setattr(service.store, "_write_households", broken)
    report = service.import_households("e-new", [HOUSEHOLD], estate={"name": "新城花园"})
    assert report["failed"]
    with pytest.raises(NotFound):
        service.get_estate("e-new")


# the migration ---------------------------------------------------------------------------

def test_estates_known_only_by_id_are_migrated_once_named_by_their_id():
    service = new_service(ESTATE_POLICIES={"e-old": {"timezone": "Asia/Urumqi"}})
    db = service.store.db
    # as a store filled before estates were records: bare estate documents, and an estate
    # only its households name
    db.estates.insert_one({"_id": "e-old", "created_at": NOW})
    db.households.insert_one({"_id": "h-x", "estate_id": "e-older", "building": "1",
                              "unit": "1", "room": "1", "occupied": True, "contacts": []})
    # read before the migration: already the legacy record (the estate keeps working)
    assert service.get_estate("e-old")["name"] == "e-old"
    assert service.migrate_estates() == {"migrated": 2, "left": 0}
    assert service.migrate_estates() == {"migrated": 0, "left": 0}
    old, older = service.get_estate("e-old"), service.get_estate("e-older")
    assert (old["name"], old["timezone"], old["named"]) == ("e-old", "Asia/Urumqi", False)
    assert (older["name"], older["timezone"]) == ("e-older", "Asia/Shanghai")
    assert [len(outbox(service, estate)) for estate in ("e-old", "e-older")] == [1, 1]
    renamed = service.update_estate("e-old", {"name": "老城小区"})
    assert (renamed["name"], renamed["named"], renamed["revision"]) == ("老城小区", True, 1)


def test_renaming_an_estate_not_migrated_yet_migrates_it_first(service):
    service.store.db.estates.insert_one({"_id": "e-old", "created_at": NOW})
    assert service.update_estate("e-old", {"name": "老城小区"})["name"] == "老城小区"
    assert [event["type"] for event in outbox(service, "e-old")] == [
        "estate_registered", "estate_updated"]


# headquarters' statistics by company and region -------------------------------------------

def test_group_statistics_by_company_and_region_add_up_their_estates(service):
    service.register_estate(SUNNY)
    service.register_estate(dict(SUNNY, estate_id="e-2", name="明月小区"))
    service.register_estate(dict(SUNNY, estate_id="e-3", name="滨江花园", region="宁波片区"))
    service.register_estate({"estate_id": "e-4", "name": "北苑"})
    for number, estate_id in enumerate(("e-1", "e-2", "e-3", "e-4", "e-2")):
        household = f"h-{number}"
        service.import_households(estate_id, [dict(HOUSEHOLD, household_id=household)])
        service.register_complaint(dict(COMPLAINT, estate_id=estate_id, household_id=household))
    by_estate = service.group_complaint_stats("2026-11")
    assert by_estate["estates"]["e-2"]["name"] == "明月小区"
    assert by_estate["estates"]["e-2"]["received"] == 2
    assert "groups" not in by_estate
    for group_by in ("company", "region"):
        grouped = service.group_complaint_stats("2026-11", group_by=group_by)
        assert grouped["estates"] == by_estate["estates"]
        for group in grouped["groups"].values():
            assert group["received"] == sum(by_estate["estates"][estate]["received"]
                                            for estate in group["estate_ids"])
        assert sum(group["received"] for group in grouped["groups"].values()) == \
            grouped["total"]["received"] == 5
    regions = service.group_complaint_stats("2026-11", group_by="region")["groups"]
    assert {key: (group["company"], group["region"], group["estate_ids"], group["received"])
            for key, group in regions.items()} == {
        "华东物业/杭州片区": ("华东物业", "杭州片区", ["e-1", "e-2"], 3),
        "华东物业/宁波片区": ("华东物业", "宁波片区", ["e-3"], 1),
        f"{UNGROUPED}/{UNGROUPED}": (UNGROUPED, UNGROUPED,
                                                     ["e-4"], 1)}
    with pytest.raises(InvalidInput) as refused:
        service.group_complaint_stats("2026-11", group_by="building")
    assert "group_by" in refused.value.errors
    # the groups without the estates' rows: the same groups and total
    lean = service.group_complaint_stats("2026-11", group_by="region", per_estate=False)
    assert "estates" not in lean and lean["groups"] == grouped["groups"]
    assert lean["total"] == grouped["total"]
    with pytest.raises(InvalidInput) as refused:
        service.group_complaint_stats("2026-11", per_estate="no")
    assert "per_estate" in refused.value.errors


def test_group_statistics_of_some_estates_are_made_of_those_alone(service):
    """A regional user's groups: of the estates asked (e-2 is not), from their counters."""
    service.register_estate(SUNNY)
    service.register_estate(dict(SUNNY, estate_id="e-2", name="明月小区"))
    service.register_estate(dict(SUNNY, estate_id="e-3", name="滨江花园", region="宁波片区"))
    for number, estate_id in enumerate(("e-1", "e-2", "e-3", "e-2", "e-3")):
        household = f"h-{number}"
        service.import_households(estate_id, [dict(HOUSEHOLD, household_id=household)])
        service.register_complaint(dict(COMPLAINT, estate_id=estate_id, household_id=household))
    everyone = service.group_complaint_stats("2026-11", group_by="region")
    for period in ("2026-11", "2026"):     # a month's documents, a year's
        some = service.group_complaint_stats(period, group_by="region",
                                             estate_ids=["e-3", "e-1", "e-unknown"])
        assert set(some["estates"]) == {"e-1", "e-3"}
        assert {key: group["estate_ids"] for key, group in some["groups"].items()} == {
            "华东物业/杭州片区": ["e-1"], "华东物业/宁波片区": ["e-3"]}
        for group in some["groups"].values():
            assert group["received"] == sum(some["estates"][estate]["received"]
                                            for estate in group["estate_ids"])
        # the total is theirs, not the group's (e-2's two complaints left out)
        assert some["total"]["received"] == 3 and everyone["total"]["received"] == 5
        assert some["total"]["closed_rate"] == everyone["total"]["closed_rate"]
    # a group whose every estate was asked: the same figures as among every estate's
    assert service.group_complaint_stats("2026-11", group_by="region", estate_ids=["e-3"])[
        "groups"] == {"华东物业/宁波片区": everyone["groups"]["华东物业/宁波片区"]}
    lean = service.group_complaint_stats("2026-11", group_by="company", per_estate=False,
                                         estate_ids=["e-1", "e-3"])
    assert "estates" not in lean
    assert lean["groups"]["华东物业"]["received"] == lean["total"]["received"] == 3
    for bad in ("e-1", [], ["e 1!"], [f"e-{number}" for number in range(1001)], [None]):
        with pytest.raises(InvalidInput) as refused:
            service.group_complaint_stats("2026-11", estate_ids=bad)
        assert "estate_ids" in refused.value.errors, bad


def test_an_estates_figures_carry_its_names(service):
    service.register_estate(SUNNY)
    figures = service.complaint_stats("e-1", "2026-11")
    assert (figures["name"], figures["company"], figures["region"]) == \
        ("阳光花园", "华东物业", "杭州片区")


def test_config_policies_stay_checked_at_start_up():
    with pytest.raises(InvalidInput, match="ESTATE_POLICIES.e-9"):
        Policies.from_config(load_config(ESTATE_POLICIES={"e-9": {"reply_working_days": 0}}))


@pytest.mark.parametrize("record", [
    {"_id": "e-5", "name": "阳光花园", "company": "华南公司", "region": None,
     "timezone": "Asia/Urumqi", "created_at": datetime(2026, 1, 1)},
    {"_id": "e-6", "created_at": datetime(2026, 1, 1)}],       # a bare one, before records
    ids=["record", "bare"])
def test_headquarters_rows_label_an_estate_as_its_view_does(record):
    view = estates.view(dict(record, updated_at=record["created_at"]), "Asia/Shanghai")
    assert estates.label(record, "Asia/Shanghai") == {key: view[key] for key in estates.LABEL}
