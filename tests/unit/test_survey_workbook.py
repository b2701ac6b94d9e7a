"""The notice-board workbook renders whatever is stored: a record written before inputs
were bounded (a due date in 9999, a control character in an action) cannot break it."""
import io
from datetime import UTC, datetime

from openpyxl import load_workbook

from services.survey import workbook


def _report(action, due_at):
    return {
        "title": "2026年下半年\x01调查", "estate_id": "e1", "estate_ids": ["e1"],
        "kind": "half_yearly", "occasion": None, "status": "closed",
        "opens_at": datetime(2026, 7, 1, tzinfo=UTC), "closes_at": datetime(2026, 7, 31, tzinfo=UTC),
        "invited": 10, "returned": 4, "response_rate": 0.4, "answered": 4, "satisfied": 3,
        "satisfaction_rate": 0.75, "score": 80.0, "categories": {}, "opinions": [], "estates": [],
        "rectifications": [{
            "estate_id": "e1", "category": "general", "label_zh": "其他", "action": action,
            "department": "秩序部", "due_at": due_at, "status": "open", "overdue": False,
            "history": [{"note": "已安排\x00人员"}]}],
    }


def test_a_poisoned_record_still_exports():
    data = workbook.build(_report("加强\x00夜间\x1b巡逻\ud800",
                                  datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
                          {"ranked": [], "too_few": [], "categories": {}, "min_returned": 30})
    book = load_workbook(io.BytesIO(data))
    rows = list(book["整改计划"].iter_rows(values_only=True))
    row = next(row for row in rows if row[0] == 1)
    assert row[3] == "加强夜间巡逻?"
    assert isinstance(row[5], str) and row[5].startswith("9999-12-3")   # kept, as text
    assert row[7] == "已安排人员"
    assert book["汇总"].cell(1, 1).value.startswith("2026年下半年调查")


def test_an_ordinary_due_date_stays_a_date():
    data = workbook.build(_report("加强巡逻", datetime(2026, 9, 1, tzinfo=UTC)),
                          {"ranked": [], "too_few": [], "categories": {}, "min_returned": 30})
    rows = list(load_workbook(io.BytesIO(data))["整改计划"].iter_rows(values_only=True))
    assert isinstance(next(row for row in rows if row[0] == 1)[5], datetime)
