"""Headquarters' revisit statistics by company and region (``revisit_stats(None, period,
group_by=...)``): each group is its estates' rows added up — counts summed, rates from the
summed counts, never an average — named as the estates' copies say, an estate with no
company or region in the named ``(未分组)`` group, and with ``estate_ids`` groups made of
those estates alone."""
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from nameko.testing.services import worker_factory

from services.revisit.dependencies import ZonedPolicies
from services.revisit.policies import PolicyBook
from services.revisit.repository import RevisitRepository
from services.revisit.service import RevisitService
from shared.actor import Caller
from shared.clock import FrozenClock
from shared.config import load_config
from shared.envelope import new_event, parse_event
from shared.errors import InvalidInput
from shared.estate_groups import UNGROUPED
from shared.estates import EstateCopies
from shared.rates import rate
from tests.helpers import embedded, handle_one
from tests.unit.test_revisit_service import PHONE_VISIT, closed_event, complete_repairs

SHANGHAI = ZoneInfo("Asia/Shanghai")
EAST, SOUTH = "华东物业", "华南物业"
# estate -> (company, region); e-30 follows another policy (another sampling quota)
RECORDS = {"e-1": (EAST, "杭州片区"), "e-2": (EAST, "杭州片区"), "e-3": (EAST, "宁波片区"),
           "e-30": (SOUTH, "广州片区"), "e-4": (None, None), "e-5": (SOUTH, "深圳片区")}
CONFIG = load_config(REVISIT_ESTATE_POLICIES={"e-30": {"policy": "in_home_repairs_30"}})
NOVEMBER = datetime(2026, 11, 2, 1, tzinfo=SHANGHAI).astimezone(UTC)
# the counts that add up, and the work-order kinds' sampling figures
COUNTS = ("complaints_closed", "complaint_revisits_done", "revisits", "done", "overdue")
SAMPLING = ("orders", "required", "sampled", "revisited_orders")


@pytest.fixture(scope="module")
def service():
    """Six estates (one with nothing counted, one with no company or region); complaint
    revisits done, late, unsatisfied and still open; repairs sampled in two estates under
    two quotas, the month closed and some visited."""
    repository = embedded(RevisitRepository)
    copies = EstateCopies(repository.db, None, "Asia/Shanghai")
    for estate, (company, region) in RECORDS.items():
        copies.learn(parse_event(new_event("estate_registered", "intake", estate, {
            "name": f"小区{estate}", "company": company, "region": region,
            "timezone": "Asia/Shanghai", "revision": 0}, NOVEMBER, key=f"{estate}@0")))
    clock = FrozenClock(NOVEMBER)
    service = worker_factory(RevisitService, store=repository, clock=clock, estates=copies,
                             policies=ZonedPolicies(PolicyBook(CONFIG), copies),
                             caller=Caller(None, None))
    # complaints closed: e-1 four (three visited), e-2 one (visited), e-3 two (one), e-4 one
    closings = {"e-1": 4, "e-2": 1, "e-3": 2, "e-4": 1}
    for estate, count in closings.items():
        for number in range(count):
            handle_one(service.schedule_complaint_revisits, closed_event(
                complaint_id=f"cmp-{estate}-{number}", closed_at=NOVEMBER, estate=estate))
    clock.at = NOVEMBER + timedelta(days=1)
    for revisit_id, outcome in (("rv-cmp-e-1-0-1", PHONE_VISIT),
                                ("rv-cmp-e-1-1-1", dict(PHONE_VISIT, satisfaction="unsatisfied")),
                                ("rv-cmp-e-2-0-1", PHONE_VISIT),
                                ("rv-cmp-e-4-0-1", PHONE_VISIT)):
        service.record_revisit(revisit_id, outcome)
    clock.at = NOVEMBER + timedelta(days=6)                        # late ones
    for revisit_id in ("rv-cmp-e-1-2-1", "rv-cmp-e-3-0-1"):
        service.record_revisit(revisit_id, PHONE_VISIT)
    for estate in ("e-1", "e-30"):
        complete_repairs(service, clock, 30, NOVEMBER, estate=estate, prefix=f"wo-{estate}",
                         days=20)
    clock.at = datetime(2026, 12, 1, 9, tzinfo=SHANGHAI).astimezone(UTC)
    for estate in ("e-1", "e-30"):
        service.close_sampling_month(estate, "2026-11")
        for revisit in service.list_revisits({"kind": "repair", "estate_id": estate,
                                              "limit": 1000})[:4]:
            service.record_revisit(revisit["id"], PHONE_VISIT)
    clock.at = datetime(2026, 12, 5, tzinfo=SHANGHAI).astimezone(UTC)
    return service


def figures(row: dict) -> dict:
    return {key: value for key, value in row.items()
            if key not in ("estate_name", "company", "region", "estate_ids")}


@pytest.mark.parametrize("group_by", ["company", "region"])
def test_each_group_is_its_estates_rows_added_up(service, group_by):
    by_estate = service.revisit_stats(None, "2026-11")
    grouped = service.revisit_stats(None, "2026-11", group_by=group_by)
    rows = by_estate["estates"]
    assert grouped["group_by"] == group_by and grouped["estates"] == rows
    assert "groups" not in by_estate
    members = [estate for group in grouped["groups"].values() for estate in group["estate_ids"]]
    assert sorted(members) == sorted(RECORDS)        # every estate once, e-5 with nothing too
    for key, group in grouped["groups"].items():
        counted = [rows[estate] for estate in group["estate_ids"] if estate in rows]
        for name in COUNTS:
            assert group[name] == sum(row[name] for row in counted), (key, name)
        for name in SAMPLING:
            assert group["kinds"]["repair"][name] == sum(
                row["kinds"]["repair"][name] for row in counted), (key, name)
        # rates from the summed counts
        assert group["revisit_rate"] == rate(group["complaint_revisits_done"],
                                             group["complaints_closed"])
        assert group["kinds"]["repair"]["revisit_rate"] == rate(
            group["kinds"]["repair"]["revisited_orders"], group["kinds"]["repair"]["required"])
        assert group["on_time_rate"] == rate(
            sum(kind["on_time"] for kind in group["kinds"].values()), group["done"])
    # the groups together are the group's total of complaints
    assert sum(group["complaints_closed"] for group in grouped["groups"].values()) == \
        grouped["complaints_closed"] == 8


def test_a_groups_rate_is_not_the_average_of_its_estates_rates(service):
    regions = service.revisit_stats(None, "2026-11", group_by="region")["groups"]
    rows = service.revisit_stats(None, "2026-11")["estates"]
    hangzhou = regions[f"{EAST}/杭州片区"]
    assert (hangzhou["company"], hangzhou["region"], hangzhou["estate_ids"]) == (
        EAST, "杭州片区", ["e-1", "e-2"])
    assert (rows["e-1"]["revisit_rate"], rows["e-2"]["revisit_rate"]) == (0.75, 1.0)
    assert hangzhou["revisit_rate"] == 0.8            # 4 of 5, not (0.75 + 1.0) / 2
    # the sampled kinds: what each estate's own quota required of it, added up
    companies = service.revisit_stats(None, "2026-11", group_by="company")["groups"]
    assert companies[SOUTH]["estate_ids"] == ["e-30", "e-5"]
    for company, estate in ((SOUTH, "e-30"), (EAST, "e-1")):    # the only ones with repairs
        repair = companies[company]["kinds"]["repair"]
        assert (repair["orders"], repair["required"], repair["revisited_orders"]) == (
            30, rows[estate]["kinds"]["repair"]["required"], 4)
        assert repair["revisit_rate"] == rate(4, repair["required"])


def test_an_estate_with_no_company_or_region_is_in_the_ungrouped_group(service):
    companies = service.revisit_stats(None, "2026-11", group_by="company")["groups"]
    regions = service.revisit_stats(None, "2026-11", group_by="region")["groups"]
    assert set(companies) == {EAST, SOUTH, UNGROUPED}
    assert companies[UNGROUPED]["estate_ids"] == ["e-4"]
    assert "region" not in companies[UNGROUPED]
    ungrouped = regions[f"{UNGROUPED}/{UNGROUPED}"]
    assert (ungrouped["company"], ungrouped["region"], ungrouped["estate_ids"]) == (
        UNGROUPED, UNGROUPED, ["e-4"])
    assert ungrouped["complaints_closed"] == ungrouped["complaint_revisits_done"] == 1
    # an estate with nothing counted is in its group, which shows zeros
    shenzhen = regions[f"{SOUTH}/深圳片区"]
    assert shenzhen["estate_ids"] == ["e-5"] and shenzhen["revisits"] == 0
    assert shenzhen["revisit_rate"] is None


def test_groups_without_the_estates_rows_and_groups_of_some_estates_alone(service):
    full = service.revisit_stats(None, "2026-11", group_by="region")
    lean = service.revisit_stats(None, "2026-11", per_estate=False, group_by="region")
    assert "estates" not in lean and lean["groups"] == full["groups"]
    assert {key: value for key, value in lean.items() if key != "groups"} == {
        key: value for key, value in full.items() if key not in ("groups", "estates")}
    # a person's estates: groups made of them alone, nothing of another estate
    mine = service.revisit_stats(None, "2026-11", estate_ids=["e-1", "e-3"], group_by="company")
    assert set(mine["estates"]) == {"e-1", "e-3"}
    east = mine["groups"][EAST]
    assert set(mine["groups"]) == {EAST} and east["estate_ids"] == ["e-1", "e-3"]
    assert east["complaints_closed"] == 6 and east["complaint_revisits_done"] == 4
    assert figures(east) == figures(service.revisit_stats(
        None, "2026-11", group_by="company", estate_ids=["e-3", "e-1"])["groups"][EAST])
    assert "groups" not in service.revisit_stats(None, "2026-11", estate_ids=["e-1"])


@pytest.mark.parametrize("estate, extra, field", [
    (None, {"group_by": "building"}, "group_by"),
    (None, {"group_by": ""}, "group_by"),
    ("e-1", {"group_by": "region"}, "group_by"),       # one estate is in one group
])
def test_a_grouping_that_is_not_one_is_refused_on_its_field(service, estate, extra, field):
    with pytest.raises(InvalidInput) as refused:
        service.revisit_stats(estate, "2026-11", **extra)
    assert field in refused.value.errors
