"""Every list RPC pages by cursor in its documented order and takes ``estate_ids``.

Each list is filled straight through its repository's collection (ties in the
sort key on purpose, ids not in insertion order), then read through the RPC
(worker_factory, embedded store, no broker).
"""
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import worker_factory

from services.intake.repository import IntakeRepository
from services.intake.service import IntakeService
from services.notify.repository import NotifyRepository
from services.notify.service import NotifyService
from services.revisit.repository import RevisitRepository
from services.revisit.service import RevisitService
from services.survey.repository import SurveyRepository
from services.survey.service import SurveyService
from shared.clock import FrozenClock
from shared.errors import InvalidInput
from shared.paging import encode_cursor
from tests.helpers import embedded

NOW = datetime(2026, 6, 1, 2, 0, tzinfo=UTC)
T0 = datetime(2026, 5, 1, tzinfo=UTC)
ESTATES = ("e-1", "e-2", "e-3")
COUNT = 13
ROUND = {"_id": "r-1", "title": "2026 上半年", "estate_ids": list(ESTATES), "status": "open",
         "kind": "half_yearly", "created_at": T0, "labels": {}}


def at(rank):
    return T0 + timedelta(hours=rank)


@dataclass
class Case:
    """One list RPC: its service, what one of its records looks like, how it is called and
    the order docs/rpc.md gives it (sort keys, newest first or not)."""

    repository: type
    service: type
    collection: str
    record: Callable[[str, str, int], dict]   # (id, estate, rank): rank repeats, so keys tie
    call: Callable                            # (service, filters, paged) -> the result
    order: Callable[[dict], tuple]
    newest_first: bool
    estates: bool = True                      # takes estate_ids
    seed: tuple = ()                          # records the list needs besides its own

    def make(self):
        repository = embedded(self.repository)
        for collection, document in self.seed:
            repository.db[collection].insert_one(dict(document))
        return worker_factory(self.service, store=repository, clock=FrozenClock(NOW))

    def expected(self, records):
        return [record["_id"] for record in
                sorted(records, key=self.order, reverse=self.newest_first)]

    def first_rank(self):
        """A rank that sorts before every record (estate e-1 sorts first too)."""
        return 100 if self.newest_first else -100


def estate_of(record):
    return record.get("estate_ids") or [record["estate_id"]]


CASES = {
    "intake.list_households": Case(
        IntakeRepository, IntakeService, "households",
        lambda ident, estate, rank: {"_id": ident, "estate_id": "e-1", "building": str(rank),
                                     "unit": "1", "room": "101", "occupied": True,
                                     "contacts": []},
        lambda service, filters, paged: service.list_households("e-1", filters, paged=paged),
        lambda record: (record["_id"],), newest_first=False, estates=False,
        seed=(("estates", {"_id": "e-1"}),)),   # an estate intake knows
    "intake.list_complaints": Case(
        IntakeRepository, IntakeService, "complaints",
        lambda ident, estate, rank: {"_id": ident, "estate_id": estate, "received_at": at(rank),
                                     "status": "registered", "category": "noise",
                                     "next_due_at": None, "repeat_of": None},
        lambda service, filters, paged: service.list_complaints(filters, paged=paged),
        lambda record: (record["received_at"], record["_id"]), newest_first=True),
    "intake.list_work_orders": Case(
        IntakeRepository, IntakeService, "work_orders",
        lambda ident, estate, rank: {"_id": ident, "estate_id": estate, "received_at": at(rank),
                                     "kind": "repair", "status": "registered"},
        lambda service, filters, paged: service.list_work_orders(filters, paged=paged),
        lambda record: (record["received_at"], record["_id"]), newest_first=True),
    "revisit.list_revisits": Case(
        RevisitRepository, RevisitService, "revisits",
        lambda ident, estate, rank: {"_id": ident, "estate_id": estate, "due_at": at(rank),
                                     "kind": "complaint", "status": "scheduled",
                                     "source_id": f"c-{ident}"},
        lambda service, filters, paged: service.list_revisits(filters, paged=paged),
        lambda record: (record["due_at"], record["_id"]), newest_first=False),
    "survey.list_rounds": Case(
        SurveyRepository, SurveyService, "rounds",
        lambda ident, estate, rank: dict(ROUND, _id=ident, created_at=at(rank),
                                         estate_ids=[estate] + (["e-9"] if rank == 1 else [])),
        lambda service, filters, paged: service.list_rounds(filters, paged=paged),
        lambda record: (record["created_at"], record["_id"]), newest_first=True),
    "survey.list_invitations": Case(
        SurveyRepository, SurveyService, "invitations",
        lambda ident, estate, rank: {"_id": ident, "round_id": "r-1", "estate_id": estate,
                                     "household_id": f"h-{rank + 1000:04d}",
                                     "token": f"token-{ident}-0123456789", "status": "issued"},
        lambda service, filters, paged: service.list_invitations("r-1", None, filters,
                                                                 paged=paged),
        lambda record: (record["estate_id"], record["household_id"], record["_id"]),
        newest_first=False, seed=(("rounds", ROUND),)),
    "survey.list_rectifications": Case(
        SurveyRepository, SurveyService, "rectifications",
        lambda ident, estate, rank: {"_id": ident, "round_id": "r-1", "estate_id": estate,
                                     "due_at": at(rank), "category": "cleaning",
                                     "status": "open"},
        lambda service, filters, paged: service.list_rectifications(filters, paged=paged),
        lambda record: (record["estate_id"], record["due_at"], record["_id"]),
        newest_first=False, seed=(("rounds", ROUND),)),
    "notify.list_deliveries": Case(
        NotifyRepository, NotifyService, "deliveries",
        lambda ident, estate, rank: {"_id": ident, "estate_id": estate, "created_at": at(rank),
                                     "status": "sent", "channel": "sms", "address": None,
                                     "routes": []},
        lambda service, filters, paged: service.list_deliveries(filters, paged=paged),
        lambda record: (record["created_at"], record["_id"]), newest_first=True),
}
ESTATE_CASES = [name for name, case in CASES.items() if case.estates]


def fill(case, service):
    """COUNT records over three estates, four ranks (so sort keys tie), ids shuffled."""
    records = [case.record(f"x-{(n * 7) % COUNT:02d}", ESTATES[n % 3], n % 4)
               for n in range(COUNT)]
    for record in records:
        service.store.db[case.collection].insert_one(dict(record))
    return records


def walk(case, service, limit, **filters):
    """Every page from the first: the ids in the order given, and the pages."""
    seen, pages, cursor = [], [], None
    while len(pages) <= COUNT + 2:           # a cursor that never ends fails, not hangs
        page = case.call(service, dict(filters, limit=limit, **({"cursor": cursor} if cursor
                                                                   else {})), True)
        assert set(page) == {"items", "next_cursor"}
        pages.append(page)
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen, pages
        assert len(page["items"]) == limit
    raise AssertionError("the pages never end")


@pytest.fixture(params=CASES, ids=str)
def case(request):
    return CASES[request.param]


@pytest.mark.parametrize("limit", [1, 4, COUNT, COUNT + 5])
def test_pages_give_every_record_once_in_the_documented_order(case, limit):
    service = case.make()
    expected = case.expected(fill(case, service))
    seen, pages = walk(case, service, limit)
    assert seen == expected
    assert len(pages) == max(1, -(-COUNT // limit)) and pages[-1]["next_cursor"] is None


def test_unpaged_calls_still_return_the_plain_list(case):
    service = case.make()
    expected = case.expected(fill(case, service))
    assert [item["id"] for item in case.call(service, None, False)] == expected
    assert [item["id"] for item in case.call(service, {"limit": 5}, False)] == expected[:5]


def test_a_record_added_before_the_cursor_neither_repeats_nor_hides_one(case):
    service = case.make()
    expected = case.expected(fill(case, service))
    first = case.call(service, {"limit": 4}, True)
    newcomer = case.record("a-new" if not case.estates else "x-new", "e-1", case.first_rank())
    service.store.db[case.collection].insert_one(newcomer)
    assert case.call(service, None, False)[0]["id"] == newcomer["_id"]   # it sorts first
    rest, _ = walk(case, service, 3, cursor=first["next_cursor"])
    assert [item["id"] for item in first["items"]] + rest == expected


@pytest.mark.parametrize("cursor", ["", "garbage!", "中文", "x" * 5000, 42, ["a"],
                                    encode_cursor([("elsewhere", 1)], ["a", "b"]),
                                    encode_cursor([("received_at", -1)], ["a"])])
def test_a_bad_cursor_is_invalid_input_on_cursor(case, cursor):
    service = case.make()
    fill(case, service)
    with pytest.raises(InvalidInput) as caught:
        case.call(service, {"cursor": cursor}, True)
    assert list(caught.value.errors) == ["cursor"]


def test_a_cursor_needs_a_paged_call_and_limits_are_checked(case):
    service = case.make()
    fill(case, service)
    cursor = case.call(service, {"limit": 2}, True)["next_cursor"]
    for filters, paged, field in [({"cursor": cursor}, False, "cursor"),
                                  ({}, "true", "paged"), ({"limit": 0}, True, "limit"),
                                  ({"limit": 10 ** 6}, True, "limit"),
                                  ({"limit": "5"}, False, "limit")]:
        with pytest.raises(InvalidInput) as caught:
            case.call(service, filters, paged)
        assert list(caught.value.errors) == [field]


def test_a_cursor_is_no_use_to_another_list():
    complaints, revisits = CASES["intake.list_complaints"], CASES["revisit.list_revisits"]
    intake, revisit = complaints.make(), revisits.make()
    fill(complaints, intake)
    fill(revisits, revisit)
    cursor = revisits.call(revisit, {"limit": 2}, True)["next_cursor"]
    with pytest.raises(InvalidInput) as caught:
        complaints.call(intake, {"cursor": cursor}, True)
    assert caught.value.errors == {"cursor": ["not a valid cursor"]}


@pytest.mark.parametrize("name", ESTATE_CASES)
def test_estate_ids_means_any_of_them_and_narrows_estate_id(name):
    case = CASES[name]
    service = case.make()
    records = fill(case, service)
    some = ["e-1", "e-3"]
    chosen = case.expected([r for r in records if set(estate_of(r)) & set(some)])
    assert chosen and len(chosen) < COUNT
    assert [item["id"] for item in case.call(service, {"estate_ids": some}, False)] == chosen
    assert walk(case, service, 2, estate_ids=some)[0] == chosen
    only_one = case.expected([r for r in records if "e-1" in estate_of(r)])
    assert [item["id"] for item in case.call(
        service, {"estate_id": "e-1", "estate_ids": some}, False)] == only_one
    assert case.call(service, {"estate_id": "e-2", "estate_ids": some}, False) == []
    assert case.call(service, {"estate_id": "e-2", "estate_ids": some}, True) == {
        "items": [], "next_cursor": None}


@pytest.mark.parametrize("name", ESTATE_CASES)
@pytest.mark.parametrize("estate_ids", [[], ["bad id"], ["$gt"], "e-1", [{"$ne": None}],
                                        [f"e-{n}" for n in range(1001)], None])
def test_bad_estate_ids_are_invalid_input_on_estate_ids(name, estate_ids):
    case = CASES[name]
    with pytest.raises(InvalidInput) as caught:
        case.call(case.make(), {"estate_ids": estate_ids}, False)
    assert [key.split(".")[0] for key in caught.value.errors] == ["estate_ids"]


def test_a_thousand_estate_ids_are_fine():
    case = CASES["intake.list_complaints"]
    service = case.make()
    fill(case, service)
    assert len(case.call(service, {"estate_ids": [f"e-{n}" for n in range(1000)]}, False)) \
        == COUNT


def test_survey_rounds_touching_any_of_the_estates():
    case = CASES["survey.list_rounds"]
    service = case.make()
    records = fill(case, service)
    both = [r["_id"] for r in records if "e-9" in r["estate_ids"]]
    assert {r["id"] for r in case.call(service, {"estate_ids": ["e-9"]}, False)} == set(both)
    assert len(both) < len(case.call(service, {"estate_ids": ["e-9", "e-2"]}, False))


def test_list_invitations_keeps_its_positional_estate():
    case = CASES["survey.list_invitations"]
    service = case.make()
    records = fill(case, service)
    in_e2 = case.expected([r for r in records if r["estate_id"] == "e-2"])
    assert [i["id"] for i in service.list_invitations("r-1", "e-2")] == in_e2
    page = service.list_invitations("r-1", "e-2", {"limit": 2}, paged=True)
    rest = service.list_invitations("r-1", "e-2", {"cursor": page["next_cursor"]}, paged=True)
    assert [i["id"] for i in page["items"] + rest["items"]] == in_e2
    assert [i["id"] for i in service.list_invitations("r-1", None, {"estate_id": "e-2"})] == in_e2
    assert service.list_invitations("r-1", "e-2", {"estate_id": "e-2"}) != []
    with pytest.raises(InvalidInput) as caught:
        service.list_invitations("r-1", "e-2", {"estate_id": "e-3"})
    assert list(caught.value.errors) == ["estate_id"]
    with pytest.raises(InvalidInput) as caught:       # not an estate of the round, as before
        service.list_invitations("r-1", None, {"estate_id": "e-7"})
    assert list(caught.value.errors) == ["estate_id"]


def test_keys_starting_with_a_dollar_never_reach_a_query(case):
    with pytest.raises(InvalidInput) as caught:
        case.call(case.make(), {"$where": "1", "cursor": {"$gt": ""}}, True)
    assert set(caught.value.errors) == {"$where", "cursor.$gt"}
