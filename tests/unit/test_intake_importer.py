"""Reading the estates' owner lists (.csv, .xlsx) into import_households rows."""
import io

import pytest
from openpyxl import Workbook

from services.intake import importer
from shared import household_lists

CHINESE = ["户号", "楼栋", "单元", "房号", "入住", "姓名", "电话", "邮箱", "首选渠道", "主联系人", "面积"]
LINES = [
    ["h-301", "3", "1", "301", "是", "王芳", "13812345678", "", "短信", "", "89.5"],
    ["h-301", "3", "1", "301", "是", "李雷", "13900001111", "li@example.com", "邮件", "是", "89.5"],
    ["h-302", "3", "1", "302", "空置", "", "", "", "", "", "120"],
]


def write_csv(path, header, lines, encoding="utf-8-sig"):
    with path.open("w", encoding=encoding, newline="") as handle:
        for cells in [header, *lines]:
            handle.write(",".join(cells) + "\r\n")
    return path


def write_xlsx(path, header, lines, sheet="业主名单"):
    workbook = Workbook()
    worksheet = workbook.active
    worksheet.title = sheet
    worksheet.append(header)
    for cells in lines:
        # Excel stores phone numbers typed in as numbers
        worksheet.append([float(cell) if cell.isdigit() and len(cell) == 11 else cell
                          for cell in cells])
    workbook.save(path)
    return path


EXPECTED = [
    {"household_id": "h-301", "building": "3", "unit": "1", "room": "301", "occupied": True,
     "contacts": [
         {"name": "王芳", "phone": "13812345678", "preferred_channel": "sms"},
         {"name": "李雷", "phone": "13900001111", "email": "li@example.com",
          "preferred_channel": "email", "primary": True}]},
    {"household_id": "h-302", "building": "3", "unit": "1", "room": "302", "occupied": False,
     "contacts": []},
]


@pytest.mark.parametrize("make", [
    lambda tmp: write_csv(tmp / "owners.csv", CHINESE, LINES),
    lambda tmp: write_csv(tmp / "owners.csv", CHINESE, LINES, encoding="gb18030"),
    lambda tmp: write_xlsx(tmp / "owners.xlsx", CHINESE, LINES),
])
def test_one_line_per_contact_makes_households_with_several_contacts(tmp_path, make):
    rows, origins, errors = household_lists.prepare(make(tmp_path))
    assert errors == {}
    assert rows == EXPECTED
    assert origins == [[2, 3], [4]]


def test_english_headers_and_a_named_sheet(tmp_path):
    header = ["household_id", "building", "unit", "room", "occupied", "name", "phone"]
    path = tmp_path / "owners.xlsx"
    workbook = Workbook()
    workbook.active.append(["cover sheet"])
    sheet = workbook.create_sheet("list")
    sheet.append(header)
    sheet.append(["h-1", "1", "1", "101", True, "张三", 13812345678])
    workbook.save(path)
    rows, _, errors = household_lists.prepare(path, sheet="list")
    assert errors == {}
    assert rows[0]["occupied"] is True and rows[0]["contacts"][0]["phone"] == "13812345678"
    with pytest.raises(household_lists.SheetError, match="no sheet 'missing'"):
        household_lists.prepare(path, sheet="missing")


def test_errors_name_the_spreadsheet_line(tmp_path):
    lines = [
        ["h-1", "1", "1", "101", "是", "张三", "12345", "", "", "", ""],          # bad phone
        ["h-2", "1", "1", "102", "也许", "李四", "13812345678", "", "", "", ""],   # occupied?
        ["h-1", "1", "2", "101", "是", "王五", "13900001111", "", "", "", ""],     # unit differs
        ["h-3", "1", "1", "103", "否", "赵六", "13700001111", "not-mail", "", "", ""],
    ]
    _, _, errors = household_lists.prepare(write_csv(tmp_path / "o.csv", CHINESE, lines))
    assert errors == {
        3: {"occupied": ["cannot read '也许' as yes or no"]},
        4: {"unit": ["'2' differs from line 2 ('1') for the same household"]},
    }
    # once the line errors are fixed, the schema's own checks name the lines too
    lines[1][4], lines[2][2] = "是", "1"
    _, _, errors = household_lists.prepare(write_csv(tmp_path / "o.csv", CHINESE, lines))
    assert errors == {2: {"phone": ["not a valid mainland mobile or landline number"]},
                      5: {"email": ["Not a valid email address."]}}
    assert household_lists.describe(errors)[0] == (
        "line 2: phone: not a valid mainland mobile or landline number")


def test_missing_columns_and_wrong_files(tmp_path):
    with pytest.raises(household_lists.SheetError, match="occupied"):
        household_lists.prepare(write_csv(tmp_path / "o.csv", CHINESE[:4], [["h-1", "1", "1", "1"]]))
    (tmp_path / "o.txt").write_text("x")
    with pytest.raises(household_lists.SheetError, match="csv or .xlsx"):
        household_lists.prepare(tmp_path / "o.txt")


def test_service_errors_are_mapped_back_to_lines():
    origins = [[2, 3], [4]]
    assert household_lists.server_errors(
        {"rows.1.household_id": ["belongs to estate e-9"], "estate_id": ["not a valid id"]},
        origins) == {4: {"household_id": ["belongs to estate e-9"]},
                     0: {"estate_id": ["not a valid id"]}}


def test_dry_run_checks_and_sends_nothing(tmp_path):
    out = io.StringIO()
    path = write_xlsx(tmp_path / "owners.xlsx", CHINESE, LINES)
    assert importer.main(["e-1", str(path), "--dry-run"], out=out,
                         config={"AMQP_URI": "pyamqp://nobody@127.0.0.1:1/"}) == 0
    assert "2 households, 2 contacts, all valid" in out.getvalue()


def test_a_bad_file_stops_before_sending(tmp_path):
    out = io.StringIO()
    lines = [["h-1", "1", "1", "101", "是", "张三", "12345", "", "", "", ""]]
    path = write_csv(tmp_path / "o.csv", CHINESE, lines)
    # an unreachable broker: reaching it would fail the test
    assert importer.main(["e-1", str(path)], out=out,
                         config={"AMQP_URI": "pyamqp://nobody@127.0.0.1:1/"}) == 2
    assert "line 2: phone" in out.getvalue()
