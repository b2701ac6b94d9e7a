"""What a household's change announces (services/intake/households.py): moving in
(「年回访率100%(按照已办理入住户数统计)」) and the key-customer flag (重点客户) — the
rule, the owner list's column, and intake's entrypoints on the embedded store."""
from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import worker_factory

from services.intake import households
from services.intake.policy import Policies
from services.intake.repository import IntakeRepository
from services.intake.service import IntakeService
from shared import household_lists
from shared.actor import Caller
from shared.clock import FrozenClock
from shared.config import load_config
from shared.envelope import parse_event
from shared.errors import InvalidInput, NotFound
from tests.helpers import embedded

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def row(household_id="h-1", occupied=True, **extra):
    return {"household_id": household_id, "building": "3", "unit": "1", "room": "502",
            "occupied": occupied, "contacts": [], **extra}


def types(events):
    return [event["type"] for event in events]


# the rule --------------------------------------------------------------------------

@pytest.mark.parametrize("before, new_row, expected", [
    (None, row(), ["household_moved_in"]),                          # new, occupied
    (None, row(occupied=False), []),                                # new, vacant
    ({"occupied": False}, row(), ["household_moved_in"]),           # moved in since
    ({"occupied": True}, row(), []),                                # lived there already
    ({"occupied": True}, row(occupied=False), []),                  # moved out: no event
    (None, row(key_customer=True), ["household_moved_in", "household_key_customer_set"]),
    ({"occupied": True, "key_customer": True}, row(key_customer=False),
     ["household_key_customer_set"]),
    ({"occupied": True, "key_customer": True}, row(key_customer=True), []),
    ({"occupied": True, "key_customer": True}, row(), []),          # no column: kept
])
def test_an_import_announces_moving_in_and_a_changed_flag(before, new_row, expected):
    assert types(households.announcements("e-1", new_row, before, NOW)) == expected


def test_moving_in_carries_the_address_and_the_flag_as_it_stands():
    [event] = households.announcements("e-1", row(), {"occupied": False, "key_customer": True},
                                       NOW)
    data = parse_event(event)["data"]
    assert data == {"household_id": "h-1", "building": "3", "unit": "1", "room": "502",
                    "key_customer": True, "moved_in_at": NOW}


# the owner list's optional column 重点客户 ------------------------------------------------

def test_the_owner_list_reads_the_key_customer_column_and_leaves_blanks_alone():
    header = ["户号", "楼栋", "单元", "房号", "入住", "姓名", "电话", "重点客户"]
    lines = [(2, ["h-1", "3", "1", "502", "是", "王芳", "13812345678", "是"]),
             (3, ["h-2", "3", "1", "503", "是", "李雷", "13812345679", ""]),
             (4, ["h-3", "3", "1", "504", "是", "韩梅", "13812345670", "也许"])]
    rows, _, errors = household_lists.households_from_lines(header, lines)
    assert [r.get("key_customer") for r in rows] == [True, None, None]
    assert errors == {4: {"key_customer": ["cannot read '也许' as yes or no"]}}
    rows, _, errors = household_lists.households_from_lines(header[:-1], [
        (2, ["h-1", "3", "1", "502", "是", "王芳", "13812345678"])])
    assert "key_customer" not in rows[0] and not errors


# the entrypoints --------------------------------------------------------------------

@pytest.fixture
def service():
    config = load_config()
    return worker_factory(IntakeService, store=embedded(IntakeRepository),
                          clock=FrozenClock(NOW), config=config,
                          policies=Policies.from_config(config), caller=Caller(None, None),
                          contact_callers=("notify",))


def outbox(service, household_id):
    return types(service.store.db.households.find_one({"_id": household_id})["outbox"])


def test_importing_keeps_what_each_household_announces_in_its_own_write(service):
    service.import_households("e-1", [row("h-1"), row("h-2", occupied=False),
                                      row("h-3", key_customer=True)],
                              estate={"name": "测试小区"})
    assert outbox(service, "h-1") == ["household_moved_in"]
    assert outbox(service, "h-2") == []
    assert outbox(service, "h-3") == ["household_moved_in", "household_key_customer_set"]
    service.clock.now = lambda: NOW + timedelta(days=1)
    service.import_households("e-1", [row("h-1"), row("h-2"), row("h-3")])   # h-2 moved in
    assert outbox(service, "h-1") == ["household_moved_in"]                  # nothing new
    assert outbox(service, "h-2") == ["household_moved_in"]
    assert service.get_household("h-3")["key_customer"] is True             # no column: kept
    assert "outbox" not in service.get_household("h-3")


def test_set_key_customer_flags_once_and_lifts(service):
    service.import_households("e-1", [row("h-1")], estate={"name": "测试小区"})
    assert service.set_key_customer("h-1", True)["key_customer"] is True
    assert service.set_key_customer("h-1", True)["key_customer"] is True     # already so
    assert outbox(service, "h-1") == ["household_moved_in", "household_key_customer_set"]
    assert service.set_key_customer("h-1", False)["key_customer"] is False
    flags = [parse_event(event)["data"]["key_customer"] for event in
             service.store.db.households.find_one({"_id": "h-1"})["outbox"][1:]]
    assert flags == [True, False]
    with pytest.raises(InvalidInput, match="key_customer"):
        service.set_key_customer("h-1", "yes please")
    with pytest.raises(NotFound):
        service.set_key_customer("h-404", True)


def test_the_estates_are_listed_for_the_other_services_timers(service):
    service.import_households("e-2", [], estate={"name": "二号小区"})
    service.import_households("e-1", [row("h-1")], estate={"name": "一号小区"})
    assert service.list_estate_ids() == ["e-1", "e-2"]


def test_a_page_of_households_is_found_by_their_ids_in_one_call(service):
    service.import_households("e-1", [row(f"h-{n}") for n in range(5)],
                              estate={"name": "一号小区"})
    service.import_households("e-2", [row("h-9")], estate={"name": "二号小区"})
    found = service.list_households("e-1", {"household_ids": ["h-3", "h-1", "h-9", "h-404"]})
    assert [household["id"] for household in found] == ["h-1", "h-3"]   # e-1's alone, by id
    page = service.list_households("e-1", {"household_ids": ["h-0", "h-1", "h-2"], "limit": 2},
                                   paged=True)
    assert [household["id"] for household in page["items"]] == ["h-0", "h-1"]
    rest = service.list_households("e-1", {"household_ids": ["h-0", "h-1", "h-2"], "limit": 2,
                                           "cursor": page["next_cursor"]}, paged=True)
    assert [household["id"] for household in rest["items"]] == ["h-2"]
    for wrong in ([], ["a b"], [f"h-{n}" for n in range(1001)], "h-1"):
        with pytest.raises(InvalidInput, match="household_ids"):
            service.list_households("e-1", {"household_ids": wrong})
