"""Owner lists stored a chunk at a time: each chunk whole or not at all, a report of what
was imported and what was not, the estate known only once some of its households are; and
the command's progress and report by spreadsheet line."""
import io

import pytest

from services.intake import importer
from services.intake import repository as intake_repository
from services.intake.repository import IntakeRepository
from shared import household_lists
from shared.clock import FrozenClock
from shared.errors import InvalidInput
from tests.helpers import embedded
from tests.unit.test_intake_service import NOW, make_service


def row(number, **changes):
    return {"household_id": f"h-{number}", "building": str(number % 7), "unit": "1",
            "room": str(number), "occupied": True,
            "contacts": [{"name": "王芳", "phone": "13812345678"}], **changes}


@pytest.fixture
def service(monkeypatch):
    monkeypatch.setattr(intake_repository, "IMPORT_CHUNK", 10)
    return make_service(embedded(IntakeRepository), FrozenClock(NOW))


def stored_ids(service):
    return sorted(int(h["_id"][2:]) for h in service.store.db.households.find())


def stored_meanwhile(service, monkeypatch, *numbers):
    """Households another import stores between this one's check and its writes."""
    unseen = {f"h-{number}" for number in numbers}
    for household_id in unseen:
        service.store.db.households.insert_one(
            {"_id": household_id, "estate_id": "e-1", "building": "other"})
    seen = service.store.household_estates
    monkeypatch.setattr(service.store, "household_estates", lambda ids: {
        found: estate for found, estate in seen(ids).items() if found not in unseen})


def test_a_list_longer_than_a_chunk_is_imported_whole(service):
    service.import_households("e-1", [row(n) for n in range(5)], estate={"name": "测试小区"})
    answer = service.import_households("e-1", [row(n, building="9") for n in range(25)], estate={"name": "测试小区"})
    assert answer == {"imported": 20, "updated": 5, "failed": []}
    assert stored_ids(service) == list(range(25))
    assert {h["building"] for h in service.store.db.households.find()} == {"9"}
    assert service.store.estate_exists("e-1")


def test_a_chunk_that_cannot_be_stored_is_undone_alone_and_reported(service, monkeypatch):
    service.import_households("e-1", [row(12)], estate={"name": "测试小区"})
    stored_meanwhile(service, monkeypatch, 15)
    answer = service.import_households("e-1", [row(n, building="9") for n in range(25)], estate={"name": "测试小区"})
    assert answer["imported"] == 15 and answer["updated"] == 0
    [failed] = answer["failed"]
    assert failed == {"rows": [10, 19], "error": "DuplicateKeyError: stored meanwhile: h-15"}
    # rows 10-19: none stored by this import, those there before left as they were
    assert stored_ids(service) == [*range(10), 12, 15, *range(20, 25)]
    assert service.store.find_household("h-12")["building"] == "5"
    assert service.store.find_household("h-15")["building"] == "other"
    # sent again, the chunk is imported
    monkeypatch.undo()
    assert service.import_households("e-1", [row(n) for n in range(10, 20)], estate={"name": "测试小区"})["failed"] == []
    assert stored_ids(service) == list(range(25))


def test_the_estate_becomes_known_with_the_first_chunk_stored(service, monkeypatch):
    stored_meanwhile(service, monkeypatch, 3)
    answer = service.import_households("e-2", [row(n) for n in range(15)], estate={"name": "测试小区"})
    assert answer["failed"][0]["rows"] == [0, 9] and answer["imported"] == 5
    assert service.store.estate_exists("e-2")


def test_no_chunk_stored_leaves_the_estate_unknown(service, monkeypatch):
    stored_meanwhile(service, monkeypatch, 3, 13)
    answer = service.import_households("e-2", [row(n) for n in range(15)], estate={"name": "测试小区"})
    assert [failed["rows"] for failed in answer["failed"]] == [[0, 9], [10, 14]]
    assert answer["imported"] == 0
    assert not service.store.estate_exists("e-2")
    assert stored_ids(service) == [3, 13]


# the command -----------------------------------------------------------------------------

def lines_of(rows):
    """Spreadsheet lines: the header on line 1, one household a line."""
    return [[number + 2] for number in range(len(rows))]


def as_over_rpc(service):
    """The service's import as the command's ``call`` gets it: a refusal as its errors."""
    def call(estate_id, rows):
        try:
            return service.import_households(estate_id, rows, estate={"name": "测试小区"})
        except InvalidInput as refusal:
            return {"errors": refusal.errors}
    return call


def send(call, rows, chunk=10):
    out = io.StringIO()
    report = household_lists.send_in_chunks(call, "e-1", rows, lines_of(rows), out, chunk=chunk)
    code = importer.print_report("owners.xlsx", "e-1", rows, report, out)
    return code, out.getvalue()


def test_the_command_shows_its_progress_and_what_it_imported(service):
    rows = [row(n) for n in range(25)]
    code, out = send(as_over_rpc(service), rows)
    assert code == 0
    assert out.splitlines() == [
        "  10 / 25 households sent (40%)", "  20 / 25 households sent (80%)",
        "  25 / 25 households sent (100%)",
        "owners.xlsx: 25 households imported, 0 updated (25 contacts) into estate e-1"]
    assert stored_ids(service) == list(range(25))


def test_a_refused_chunk_is_reported_by_line_and_the_others_imported(service):
    service.import_households("e-9", [row(14)], estate={"name": "测试小区"})
    code, out = send(as_over_rpc(service), [row(n) for n in range(25)])
    assert code == 2
    assert "owners.xlsx: 15 households imported, 0 updated (15 contacts)" in out
    assert "10 households NOT imported" in out
    assert "line 16: household_id: belongs to estate e-9" in out      # row 14
    assert stored_ids(service) == [*range(10), 14, *range(20, 25)]


def test_a_chunk_intake_could_not_store_is_reported_by_its_lines(service, monkeypatch):
    stored_meanwhile(service, monkeypatch, 15)
    code, out = send(as_over_rpc(service), [row(n) for n in range(25)], chunk=25)
    assert code == 2
    assert "lines 12-21: not stored: DuplicateKeyError: stored meanwhile: h-15" in out
    assert "owners.xlsx: 15 households imported, 0 updated (15 contacts)" in out


def test_a_call_that_fails_stops_the_command_with_the_lines_not_sent(service):
    calls = []

    def call(estate_id, rows):
        calls.append(len(rows))
        if len(calls) == 2:
            raise TimeoutError("intake did not answer")
        return as_over_rpc(service)(estate_id, rows)
    code, out = send(call, [row(n) for n in range(25)])
    assert code == 2 and calls == [10, 10]
    assert "lines 12-26: not stored: TimeoutError: intake did not answer" in out
    assert "owners.xlsx: 10 households imported" in out
    assert stored_ids(service) == list(range(10))


def test_one_refused_chunk_alone_is_nothing_imported(service):
    service.import_households("e-9", [row(3)], estate={"name": "测试小区"})
    code, out = send(as_over_rpc(service), [row(n) for n in range(5)])
    assert code == 2
    assert out.splitlines() == ["owners.xlsx: nothing imported, intake refused:",
                                "line 5: household_id: belongs to estate e-9"]
