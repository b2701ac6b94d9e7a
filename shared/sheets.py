"""Workbooks for people (a notice board, a month's plan on paper): one way to write a
titled, bordered, printable sheet with openpyxl, for every export (survey's report,
revisit's monthly plan). Chinese headings are the caller's; A4, the heading row repeated
on every page, page numbers in the footer.
"""
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

PERCENT = "0.0%"
SCORE = "0.0"
DAY = "yyyy-mm-dd"
MINUTE = "yyyy-mm-dd hh:mm"
# The dates a sheet can hold as dates; anything else is written as text.
SHEET_DATES = (datetime(1900, 3, 1), datetime(9999, 12, 31))

_thin = Side(style="thin", color="808080")
BORDER = Border(left=_thin, right=_thin, top=_thin, bottom=_thin)
HEADING_FILL = PatternFill("solid", fgColor="DDEBF7")
TITLE_FONT = Font(size=14, bold=True)
BOLD = Font(bold=True)
WRAP = Alignment(wrap_text=True, vertical="top")
CENTRE = Alignment(horizontal="center", vertical="center", wrap_text=True)


def workbook_bytes(book: Workbook) -> bytes:
    """The .xlsx file of ``book``."""
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def writable(value: Any) -> Any:
    """What a cell can always hold, whatever was stored: text without the characters a
    workbook refuses (control characters, lone surrogates), dates in a sheet's range."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, datetime) and not SHEET_DATES[0] <= value <= SHEET_DATES[1]:
        return value.isoformat(sep=" ")
    return value


def title(sheet: Worksheet, text: str, width: int) -> None:
    sheet.cell(1, 1, writable(text))
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    sheet.cell(1, 1).font = TITLE_FONT
    sheet.cell(1, 1).alignment = Alignment(horizontal="center")
    sheet.row_dimensions[1].height = 24


def line(sheet: Worksheet, text: str, bold: bool = False, gap: int = 0) -> None:
    cell = sheet.cell(sheet.max_row + 1 + gap, 1, writable(text))
    if bold:
        cell.font = BOLD


def table(sheet: Worksheet, headings: Sequence[str], rows: Iterable[Sequence[Any]],
          formats: Mapping[int, str | list[str | None] | None], start: int | None = None,
          ) -> None:
    """A bordered table under a shaded heading row; ``formats`` {column: format or
    [format per row]} (1-based columns)."""
    if start is None:
        start = sheet.max_row + 1   # right under the line that names it
    for column, heading in enumerate(headings, start=1):
        cell = sheet.cell(start, column, writable(heading))
        cell.font, cell.fill, cell.alignment, cell.border = BOLD, HEADING_FILL, CENTRE, BORDER
    for offset, row in enumerate(rows, start=1):
        for column, value in enumerate(row, start=1):
            cell = sheet.cell(start + offset, column, writable(value))
            cell.border, cell.alignment = BORDER, WRAP
            fmt = formats.get(column)
            fmt = fmt[offset - 1] if isinstance(fmt, list) else fmt
            if fmt and value is not None and value != "" and not isinstance(cell.value, str):
                cell.number_format = fmt


def layout(sheet: Worksheet, widths: Sequence[float], heading_row: int,
           landscape: bool = True) -> None:
    for column, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(column)].width = width
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    sheet.page_setup.orientation = "landscape" if landscape else "portrait"
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_options.horizontalCentered = True
    sheet.print_title_rows = f"{heading_row}:{heading_row}"
    sheet.freeze_panes = sheet.cell(heading_row + 1, 1)
    sheet.oddFooter.center.text = "第 &P 页，共 &N 页"
    sheet.page_margins.left = sheet.page_margins.right = 0.5


def day(moment: datetime | str, zone: tzinfo) -> datetime:
    """A date as the estate reads it (its time zone); Excel cells hold no offset."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    try:
        return moment.astimezone(zone).replace(tzinfo=None)
    except OverflowError:      # at the very end of the calendar: as stored (UTC)
        return moment.replace(tzinfo=None)
