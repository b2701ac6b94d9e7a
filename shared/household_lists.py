"""Owner lists from the estates' spreadsheets, read and checked: what the
``huifang-import-households`` command (services/intake/importer.py) and the console's
import job (services/gateway/console_jobs.py) both send to ``intake.import_households``.

One line per contact: lines with the same household id are one household with several
contacts. Headers may be the RPC's field names or the usual Chinese ones (户号, 楼栋, 单元,
房号, 入住, 姓名, 电话, 邮箱, 首选渠道, 主联系人, 重点客户); other columns (面积, 备注 …) are
ignored. The whole file is checked with the service's own schema, errors name the
spreadsheet line; the households then go ``SEND_CHUNK`` at a time, and intake's answers
add up to a report by line.
"""
import csv
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TextIO

from shared.errors import InvalidInput
from shared.schemas import intake as schemas
from shared.schemas.base import load

HOUSEHOLD_COLUMNS = ("household_id", "building", "unit", "room", "occupied")
CONTACT_COLUMNS = ("name", "phone", "email", "preferred_channel", "primary")
HEADERS = {
    "household_id": ("household_id", "户号", "房屋编号", "房产编号", "房号编码"),
    "building": ("building", "楼栋", "楼号", "栋号", "幢"),
    "unit": ("unit", "单元", "单元号"),
    "room": ("room", "房号", "房间号", "室号"),
    "occupied": ("occupied", "入住", "是否入住", "入住状态"),
    "name": ("name", "姓名", "联系人", "业主姓名", "住户姓名"),
    "phone": ("phone", "电话", "手机", "手机号", "联系电话", "手机号码"),
    "email": ("email", "邮箱", "电子邮箱", "电子邮件"),
    "preferred_channel": ("preferred_channel", "首选渠道", "联系偏好", "通知方式"),
    "primary": ("primary", "主联系人", "是否主联系人"),
    # optional: a list without it leaves each household's flag as it was
    "key_customer": ("key_customer", "重点客户", "是否重点客户"),
}
HEADER_FIELDS = {alias.strip().lower(): name for name, aliases in HEADERS.items()
                 for alias in aliases}
YES = {"true", "yes", "y", "1", "是", "已入住", "入住", "√", "✓"}
NO = {"false", "no", "n", "0", "否", "未入住", "空置", "空置房", "×"}
CHANNEL_WORDS = {"短信": "sms", "邮件": "email", "电子邮件": "email", "邮箱": "email",
                 "电话": "phone", "微信": "wechat"}
# Households sent in one call: the unit of progress, and of what a refusal leaves out.
SEND_CHUNK = 1000


class SheetError(Exception):
    """The file cannot be read as an owner list at all (format, headers)."""


# reading the file -------------------------------------------------------------------

# Line number (0: the whole file) -> {column: [message]}.
LineErrors = dict[int, dict[str, Any]]
# Header cells, then (line number, cells) of each line after it.
Lines = list[tuple[int, list[Any]]]


def read_lines(path: str | Path, sheet: str | None = None) -> tuple[list[str], Lines]:
    """(header cells, [(line number, cells), ...]) of a .csv, .xlsx or .xlsm file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = _read_csv(path)
    elif suffix in (".xlsx", ".xlsm"):
        table = _read_xlsx(path, sheet)
    else:
        raise SheetError(f"{path.name}: expected a .csv or .xlsx file")
    numbered = [(number, cells) for number, cells in enumerate(table, start=1)
                if any(_text(cell) for cell in cells)]
    if not numbered:
        raise SheetError(f"{path.name}: the file is empty")
    (_, header), *lines = numbered
    return [_text(cell) for cell in header], lines


def _read_csv(path: Path) -> list[list[Any]]:
    # Excel in China saves CSV as GBK more often than not; try UTF-8 first.
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            with path.open(encoding=encoding, newline="") as handle:
                return list(csv.reader(handle))
        except UnicodeDecodeError:
            continue
    raise SheetError(f"{path.name}: neither UTF-8 nor GBK text")


def _read_xlsx(path: Path, sheet: str | None) -> list[list[Any]]:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True, data_only=True)
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise SheetError(f"{path.name}: no sheet {sheet!r} (has {', '.join(workbook.sheetnames)})")
        worksheet = workbook[sheet] if sheet is not None else workbook.worksheets[0]
        return [list(row) for row in worksheet.iter_rows(values_only=True)]
    finally:
        workbook.close()


def _text(cell: object) -> str:
    """A cell as the text a person sees: 13812345678.0 from Excel is 13812345678."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime | date):
        return cell.isoformat()
    return str(cell).strip()


# lines to households ------------------------------------------------------------------

def households_from_lines(header: list[str], lines: Lines,
                          ) -> tuple[list[dict], list[list[int]], LineErrors]:
    """The ``import_households`` rows, the lines each came from, and the line errors.

    Returns ``(rows, origins, errors)``: ``origins[i]`` lists the line numbers of
    row ``i``'s contacts (the household's first line first); ``errors`` maps a
    line number to ``{column: [message]}``.
    """
    columns = _columns(header)
    rows: list[dict] = []
    origins: list[list[int]] = []
    errors: defaultdict[int, dict[str, Any]] = defaultdict(dict)
    by_id: dict[str, int] = {}
    for number, cells in lines:
        values = {name: _text(cells[index]) if index < len(cells) else ""
                  for index, name in columns.items()}
        household = _household(values, errors[number])
        contact = _contact(values, errors[number])
        known = by_id.get(household["household_id"])
        if known is None:
            by_id[household["household_id"]] = len(rows)
            rows.append(dict(household, contacts=[contact] if contact else []))
            origins.append([number])
            continue
        errors[number].update(_differences(household, rows[known], origins[known][0]))
        if contact:
            rows[known]["contacts"].append(contact)
            origins[known].append(number)
    return rows, origins, {number: found for number, found in errors.items() if found}


def _columns(header: list) -> dict[int, str]:
    """{cell index: field} of the header's known columns; a missing household column is
    refused."""
    columns = {index: HEADER_FIELDS[name.strip().lower()] for index, name in enumerate(header)
               if name.strip().lower() in HEADER_FIELDS}
    missing = [name for name in HOUSEHOLD_COLUMNS if name not in columns.values()]
    if missing:
        raise SheetError("missing column(s): " + ", ".join(
            f"{name} ({HEADERS[name][1]})" for name in missing))
    return columns


def _household(values: dict, errors: dict) -> dict:
    """A line's household columns, its yes/no answers read (an unreadable one: None, with
    its error in ``errors``)."""
    household = {name: values.get(name, "") for name in HOUSEHOLD_COLUMNS}
    occupied = _yes_no(household["occupied"])
    if occupied is None:
        errors["occupied"] = [f"cannot read {household['occupied']!r} as yes or no"]
    household["occupied"] = occupied
    if values.get("key_customer"):
        household["key_customer"] = _yes_no(values["key_customer"])
        if household["key_customer"] is None:
            errors["key_customer"] = [f"cannot read {values['key_customer']!r} as yes or no"]
    return household


def _differences(household: dict, first: dict, first_line: int) -> dict:
    """{column: [message]} where a later line of a household disagrees with its first."""
    return {name: [(f"{household[name]!r} differs from line {first_line} "
                    f"({first[name]!r}) for the same household")]
            for name in HOUSEHOLD_COLUMNS[1:]
            if household[name] != first[name] and household[name] is not None}


def _contact(values: dict, errors: dict) -> dict | None:
    if not values.get("name") and not values.get("phone"):
        return None
    contact: dict[str, Any] = {"name": values.get("name", ""), "phone": values.get("phone", "")}
    if values.get("email"):
        contact["email"] = values["email"]
    channel = values.get("preferred_channel")
    if channel:
        contact["preferred_channel"] = CHANNEL_WORDS.get(channel, channel.lower())
    if values.get("primary"):
        primary = _yes_no(values["primary"])
        if primary is None:
            errors["primary"] = [f"cannot read {values['primary']!r} as yes or no"]
        contact["primary"] = bool(primary)
    return contact


def _yes_no(text: str) -> bool | None:
    word = text.strip().lower()
    return True if word in YES else False if word in NO else None


def schema_errors(rows: list[dict], origins: list[list[int]]) -> LineErrors:
    """The service's own checks, run here first: line number -> {column: [message]}."""
    try:
        load(schemas.HouseholdRow(many=True), rows, field="rows", many=True)
    except InvalidInput as exc:
        return errors_by_line(exc.errors.get("rows", exc.errors), origins)
    return {}


def errors_by_line(errors: dict, origins: list[list[int]]) -> LineErrors:
    """``{"3": {"contacts": {"1": {"phone": [...]}}}}`` -> ``{line: {"phone": [...]}}``."""
    found: defaultdict[int, dict[str, Any]] = defaultdict(dict)
    for index, fields in errors.items():
        lines = origins[int(index)] if str(index).isdigit() else [0]
        if not isinstance(fields, dict):
            found[lines[0]]["_row"] = fields
            continue
        for name, messages in fields.items():
            if name == "contacts" and isinstance(messages, dict):
                for contact, details in messages.items():
                    line = lines[int(contact)] if str(contact).isdigit() else lines[0]
                    for column, text in details.items():
                        found[line][column] = text
            else:
                found[lines[0]][name] = messages
    return dict(found)


def server_errors(errors: dict, origins: list[list[int]]) -> LineErrors:
    """The service's ``InvalidInput`` (``rows.3.household_id`` keys) by line."""
    nested: dict[str, Any] = {}
    for key, messages in errors.items():
        parts = key.split(".")
        if parts[0] == "rows" and len(parts) == 3 and parts[1].isdigit():
            nested.setdefault(parts[1], {})[parts[2]] = messages
        elif key == "rows" and isinstance(messages, dict):
            nested.update(messages)
        else:
            nested.setdefault("_file", {})[key] = messages
    general = nested.pop("_file", None)
    found = errors_by_line(nested, origins)
    if general:
        found[0] = general
    return found


def prepare(path: str | Path, sheet: str | None = None,
            ) -> tuple[list[dict], list[list[int]], LineErrors]:
    """Rows ready for ``import_households`` and the errors that stop the import."""
    header, lines = read_lines(path, sheet)
    rows, origins, errors = households_from_lines(header, lines)
    if not errors:
        errors = schema_errors(rows, origins)
    return rows, origins, errors


def describe(errors: LineErrors) -> list[str]:
    return [f"{'file' if line == 0 else f'line {line}'}: {column}: {'; '.join(map(str, messages))}"
            for line, found in sorted(errors.items()) for column, messages in found.items()]


def send_in_chunks(call: Callable[[str, list], dict], estate_id: str, rows: list[dict],
                   origins: list[list[int]], out: TextIO, chunk: int = SEND_CHUNK) -> dict:
    """Send ``rows`` ``chunk`` at a time through ``call(estate_id, rows)`` (the RPC: its
    answer, or ``{"errors": ...}`` for a refusal), showing the progress. The report:
    ``imported``, ``updated``, ``contacts`` stored, ``refused`` ({line: {column: [message]}}),
    ``failed`` ([(first line, last line, why)]): a chunk intake could not store, and all
    from the first one not answered on (the rest is not sent)."""
    report: dict[str, Any] = {"imported": 0, "updated": 0, "contacts": 0, "refused": {},
                              "failed": []}
    for start in range(0, len(rows), chunk) if rows else [0]:
        part, lines = rows[start:start + chunk], origins[start:start + chunk]
        try:
            answer = call(estate_id, part)
        except Exception as exc:  # noqa: BLE001 - told, with where to start again
            report["failed"].append(_lines(origins[start:], f"{type(exc).__name__}: {exc}"))
            break
        add_answer(report, answer, part, lines)
        if "errors" in answer:
            continue
        if len(rows) > chunk:
            done = min(start + chunk, len(rows))
            print(f"  {done:,} / {len(rows):,} households sent ({done / len(rows):.0%})",
                  file=out, flush=True)
    return report


def add_answer(report: dict, answer: dict, part: list[dict], lines: list[list[int]]) -> None:
    """Add intake's answer for one chunk (``part``, from ``lines``) to ``report``: its
    refusal by line, or what it stored and the ranges it could not."""
    if "errors" in answer:
        report["refused"].update(server_errors(answer["errors"], lines))
        return
    stored = set(range(len(part)))
    for failed in answer.get("failed", []):
        first, last = failed["rows"]
        report["failed"].append(_lines(lines[first:last + 1], failed["error"]))
        stored -= set(range(first, last + 1))
    report["imported"] += answer["imported"]
    report["updated"] += answer["updated"]
    report["contacts"] += sum(len(part[index]["contacts"]) for index in stored)


def _lines(origins: list[list[int]], why: str) -> tuple[int, int, str]:
    numbers = [number for lines in origins for number in lines]
    return min(numbers, default=0), max(numbers, default=0), why


