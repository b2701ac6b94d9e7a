"""``GET /stats/revisits?group_by=company|region`` (and ``/stats/complaints``): the
group's figures by company or region for a group-wide role; for a headquarters role over
some estates (a region's), the groups made of their estates alone, and no group with another
estate in it — carried out by the gateway's real dispatcher against a stand-in service."""
import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway import api
from services.gateway.problems import Problem
from shared.actor import Actor

EAST_1, EAST_2, WEST = "e-east-1", "e-east-2", "e-west"
REGION = {EAST_1: "华东物业/城东片区", EAST_2: "华东物业/城东片区", WEST: "华东物业/城西片区"}
OPERATION = {operation.name: operation for operation in api.OPERATIONS}


class Stats(api.Services):
    """Answers the statistics RPCs by region, with the estates asked (every estate
    without ``estate_ids``) and, besides, the whole east and the west (a service that
    answered too much)."""

    def __init__(self):
        super().__init__({})
        self.calls = []

    def call(self, target, *args, **kwargs):
        self.calls.append((target, args, kwargs))
        asked = kwargs.get("estate_ids") or list(REGION)
        groups: dict[str, dict] = {}
        answered = list(dict.fromkeys([*asked, EAST_2, WEST]))
        for estate in answered:
            group = groups.setdefault(REGION[estate], {"estate_ids": [], "revisits": 0})
            group["estate_ids"].append(estate)
            group["revisits"] += 1
        return {"period": "2026-11", "group_by": kwargs.get("group_by"),
                "estates": {estate: {"revisits": 1} for estate in answered},
                "groups": groups}


def ask(actor, name="stats.revisits", **query):
    services = Stats()
    operation = OPERATION[name]
    request = EnvironBuilder(path=api.PREFIX + operation.path,
                             query_string={"period": "2026-11", **query})
    response = api.execute(operation, Request(request.get_environ()), {}, actor, services,
                           2_000_000)
    return response.json, services.calls


def test_a_regional_user_sees_only_the_groups_made_of_their_estates():
    regional = Actor("u", ("company_manager",), (EAST_1, EAST_2))
    answer, calls = ask(regional, group_by="region")
    # asked for their estates alone, grouped
    assert calls == [("revisit.revisit_stats", (None, "2026-11"),
                      {"estate_ids": [EAST_1, EAST_2], "group_by": "region"})]
    assert set(answer["groups"]) == {"华东物业/城东片区"}        # never the west's
    assert answer["groups"]["华东物业/城东片区"]["estate_ids"] == [EAST_1, EAST_2]
    assert set(answer["estates"]) == {EAST_1, EAST_2}


def test_a_group_with_another_estate_in_it_does_not_leave():
    # a person of one east estate: the east's group as the stand-in answers it holds the
    # other east estate too, so it stays at the gateway, as the west's does
    answer, calls = ask(Actor("u", ("hq_analyst",), (EAST_1,)), group_by="region")
    assert calls[0][2] == {"estate_ids": [EAST_1], "group_by": "region"}
    assert answer["groups"] == {} and set(answer["estates"]) == {EAST_1}


def test_a_group_wide_role_sees_every_group():
    answer, calls = ask(Actor("u", ("hq_analyst",), ()), group_by="company")
    assert calls == [("revisit.revisit_stats", (None, "2026-11"), {"group_by": "company"})]
    assert set(answer["groups"]) == {"华东物业/城东片区", "华东物业/城西片区"}


def test_a_regional_users_complaint_groups_are_of_their_estates_too():
    regional = Actor("u", ("company_manager",), (EAST_1, EAST_2))
    answer, calls = ask(regional, "stats.complaints", group_by="region")
    # intake's group RPC, asked for their estates alone
    assert calls == [("intake.group_complaint_stats", ("2026-11",),
                      {"estate_ids": [EAST_1, EAST_2], "group_by": "region"})]
    assert set(answer["groups"]) == {"华东物业/城东片区"}
    assert set(answer["estates"]) == {EAST_1, EAST_2}
    # of one east estate: the east's group holds another, so it stays at the gateway
    answer, calls = ask(Actor("u", ("hq_analyst",), (EAST_1,)), "stats.complaints",
                        group_by="company", estate_ids=[EAST_1])
    assert calls[0][2] == {"estate_ids": [EAST_1], "group_by": "company"}
    assert answer["groups"] == {} and set(answer["estates"]) == {EAST_1}
    # a group-wide role: the group's RPC as before, every group
    answer, calls = ask(Actor("u", ("hq_analyst",), ()), "stats.complaints", group_by="region")
    assert calls == [("intake.group_complaint_stats", ("2026-11",), {"group_by": "region"})]
    assert set(answer["groups"]) == {"华东物业/城东片区", "华东物业/城西片区"}


@pytest.mark.parametrize("name", ["stats.revisits", "stats.complaints"])
@pytest.mark.parametrize("actor, query, status", [
    # a supervisor reads their estate's figures, not groups
    (Actor("u", ("supervisor",), (EAST_1,)), {"group_by": "region"}, 403),
    # a regional user without group_by: the group's total is not theirs to read
    (Actor("u", ("company_manager",), (EAST_1,)), {}, 403),
    # their groups of named estates: each one theirs
    (Actor("u", ("company_manager",), (EAST_1,)),
     {"group_by": "region", "estate_ids": [EAST_1, WEST]}, 404),
])
def test_who_may_not_read_groups_is_refused(name, actor, query, status):
    with pytest.raises(Problem) as refused:
        ask(actor, name, **query)
    assert refused.value.status == status

