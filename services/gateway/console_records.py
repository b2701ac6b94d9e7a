"""The paper records the policy texts ask for, printed from the console.

Each record is an HTML page laid out for A4 (``static/records.css``: its print rules hide
the page's own links) and, with ``?format=pdf``, the same page as a PDF (WeasyPrint, with
the machine's CJK font) to file or bind:

* ``/console/records/complaints/{id}``: 《投诉意见处理表》 — the owner's complaint as
  registered (《业主投诉记录》), how it was handled, its revisits, and the lines the owner
  and the project manager sign.
* ``/console/records/revisits?estate_id=&month=``: the month's 《回访记录本》 of an
  estate — every revisit recorded that month, in the order they were made;
  ``&kind=work_orders``: the repair revisits alone, the record bound each month
  (「维修回访记录按月装订」).
* ``/console/records/surveys?round_id=&estate_id=``: the survey's result for the notice
  board with its rectification plan (「公示于小区公示栏」).
* ``/console/records/complaint-report?estate_id=&period=``: the periodic complaint
  statistics published to owners (第十六条); ``?format=xlsx`` as a workbook too.
* ``/console/records/``: a form for each record; a record asked for with a missing or
  wrong choice comes back to it, the field said.

As everywhere in the console, every read is an operation of the REST API carried out for
this person (``ConsoleContext.call``): the permission table and the estate scope decide
what can be printed, and contacts arrive masked.
"""
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote, urlencode

from openpyxl import Workbook
from werkzeug.utils import redirect
from werkzeug.wrappers import Response

from services.gateway import pages
from services.gateway.console import (
    MACHINE_NOTES,
    ZONE,
    ConsoleContext,
    field_errors,
    household_of,
    households_of,
    signed_in,
    staff_names,
)
from services.gateway.problems import Problem
from shared import sheets
from shared.errors import InvalidInput
from shared.schemas.vocabulary import WORK_ORDER_KINDS

RECORDS = "/console/records/"
STYLESHEET = Path(__file__).parent / "static" / "records.css"
PDF = "application/pdf"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PAGE_LIMIT = "500"             # rows fetched per API page while a record is gathered
WORK_ORDERS = "work_orders"    # the revisit book's ``kind``: the repair revisits alone


@dataclass(frozen=True)
class Record:
    """What a record page needs: its template, the file name of its PDF, its context —
    and, for a record that is a table, its workbook (``sheet(words)``: the .xlsx bytes in
    the page's language)."""
    template: str
    file_name: str
    context: dict
    sheet: Callable[[dict], bytes] | None = None


def printed(gather: Callable[..., Record]) -> Callable[..., Response]:
    """A record page: ``gather`` reads what it prints; the answer is the HTML page, or
    with ``?format=pdf`` the same page as a PDF download. A choice it refuses: the
    records' forms again, with the field said."""
    @signed_in
    def page(ctx: ConsoleContext, *args) -> Response:
        try:
            record = gather(ctx, *args)
        except InvalidInput as exc:
            return _choices(ctx, field_errors(exc.errors), 422)
        except Problem as problem:
            if problem.status != 422:
                raise
            return _choices(ctx, field_errors(problem.errors), 422)
        asked = ctx.request.args.get("format")
        if asked == "xlsx" and record.sheet is not None:
            return _download(record.sheet(pages.catalogue(ctx.locale)), XLSX,
                             record.file_name.removesuffix(".pdf") + ".xlsx")
        as_pdf = asked == "pdf"
        html = ctx.render(record.template, pdf=as_pdf, printed_at=ctx.now,
                          pdf_url=_format_url(ctx, "pdf"),
                          xlsx_url=_format_url(ctx, "xlsx") if record.sheet else None,
                          **record.context)
        if not as_pdf:
            return html
        return _download(to_pdf(html.get_data(as_text=True)), PDF, record.file_name)
    page.__name__ = gather.__name__
    return page


def to_pdf(html: str) -> bytes:
    """The page as a PDF, laid out by its print stylesheet."""
    import weasyprint  # loads pango: only where a PDF is asked for

    return weasyprint.HTML(string=html).write_pdf(
        stylesheets=[weasyprint.CSS(filename=str(STYLESHEET))])


def _format_url(ctx: ConsoleContext, kind: str) -> str:
    return f"{ctx.request.path}?{urlencode({**ctx.request.args.to_dict(), 'format': kind})}"


def _download(content: bytes, mimetype: str, file_name: str) -> Response:
    return Response(content, mimetype=mimetype, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(file_name)}",
        "Cache-Control": "no-store"})


# the records -------------------------------------------------------------------------------

@signed_in
def index(ctx: ConsoleContext) -> Response:
    """A form for each record: which estate, which month or period, which round."""
    return _choices(ctx)


def _choices(ctx: ConsoleContext, errors: dict | None = None, status: int = 200) -> Response:
    rounds = (ctx.call("GET", "/survey/rounds", {"limit": "50"})["items"]
              if ctx.may("GET", "/survey/rounds") else [])
    ctx.name_estates(ctx.actor.estates)
    return ctx.render("records/index.html", status, nav="records", errors=errors or {},
                      values=ctx.request.args, estates=ctx.actor.estates,
                      group_wide=ctx.actor.group_wide, rounds=rounds,
                      this_month=ctx.now.astimezone(ZONE).strftime("%Y-%m"))


@signed_in
def complaint_lookup(ctx: ConsoleContext) -> Response:
    """The records form's complaint number: that complaint's record."""
    try:
        complaint_id = _required(ctx, "complaint_id")
    except InvalidInput as exc:
        return _choices(ctx, field_errors(exc.errors), 422)
    return redirect(f"{RECORDS}complaints/{quote(complaint_id, safe='')}", code=303)


@printed
def complaint_record(ctx: ConsoleContext, complaint_id: str) -> Record:
    """《投诉意见处理表》 of one complaint."""
    complaint = _read(ctx, f"/complaints/{quote(complaint_id, safe='')}")
    # 「在《投诉意见处理表》中记录回访情况」: the revisits made, as intake keeps them on the
    # complaint (in the order they were made), for whoever may read the complaint
    revisits = complaint.get("revisits") or []
    return Record("records/complaint.html", f"投诉意见处理表-{complaint['id']}.pdf", {
        "complaint": complaint, "estate": estate_name(ctx, complaint.get("estate_id")),
        "household": household_of(ctx, complaint.get("household_id")),
        "names": staff_names(ctx, [*complaint.get("history", ()), *(
            {"by": revisit.get("visitor_id")} for revisit in revisits)]),
        "machine_notes": MACHINE_NOTES, "revisits": revisits})


@printed
def revisit_book(ctx: ConsoleContext) -> Record:
    """The month's 《回访记录本》 of an estate (or its repair revisits alone)."""
    estate_id, month = _estate(ctx), _month(ctx)
    kind = ctx.request.args.get("kind") or None
    if kind not in (None, WORK_ORDERS):
        raise InvalidInput({"kind": [f"expected {WORK_ORDERS} or nothing"]})
    start, end = month_span(month)
    done = _all(ctx, "/revisits", {"estate_id": estate_id, "status": "done",
                                   "done_from": start.isoformat(),
                                   "done_before": end.isoformat()})
    if kind:
        done = [revisit for revisit in done if revisit["kind"] in WORK_ORDER_KINDS]
    done.sort(key=lambda revisit: revisit["completed_at"])
    title = "records_repair_book" if kind else "records_revisit_book"
    estate = estate_name(ctx, estate_id)
    households = households_of(ctx, estate_id, (revisit.get("household_id") for revisit in done))
    visitors = staff_names(ctx, [{"by": (revisit.get("outcome") or {}).get("visitor_id")}
                                 for revisit in done])
    context = {"estate": estate, "estate_id": estate_id, "month": month, "title_key": title,
               "revisits": done, "kind": kind, "households": households, "names": visitors}
    return Record("records/revisit_book.html", f"{estate}-{month}-{title}.pdf", context,
                  sheet=lambda words: revisit_book_sheet(context, words))


def revisit_book_sheet(book: dict, words: dict) -> bytes:
    """The 《回访记录本》 as a workbook: the page's table, a row a revisit."""
    def said(key: str, fallback: str = "") -> str:
        return words.get(key, fallback)

    def household(revisit: dict) -> str:
        found = book["households"].get(revisit.get("household_id"))
        return said("console_address").format(**{
            part: found.get(part, "") for part in ("building", "unit", "room")}) \
            if found else revisit.get("household_id") or ""

    rows = []
    for number, revisit in enumerate(book["revisits"], start=1):
        outcome = revisit.get("outcome") or {}
        level = (said("records_unreached") if outcome.get("reached") is False
                 else said(f"records_level_{outcome.get('satisfaction')}", ""))
        rows.append((number, sheets.day(revisit["completed_at"], ZONE), household(revisit),
                     said(f"console_rv_kind_{revisit['kind']}", revisit["kind"]),
                     said(f"records_method_{outcome.get('method')}", ""), level,
                     outcome.get("comments") or "",
                     book["names"].get(outcome.get("visitor_id"), outcome.get("visitor_id") or ""),
                     outcome.get("signed_by") or ("✓" if outcome.get("signed") else "")))
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = book["month"]
    sheets.title(sheet, f"{book['estate']} {said(book['title_key'])}", 9)
    sheets.line(sheet, said("records_month").format(month=book["month"]))
    start = sheet.max_row + 2
    sheets.table(sheet, [said(key) for key in (
        "records_no", "records_when", "console_household", "records_kind", "records_method",
        "records_satisfaction", "records_owner_words", "records_visitor",
        "records_owner_signed")], rows, {2: sheets.MINUTE}, start)
    sheets.layout(sheet, [6, 18, 16, 12, 10, 10, 40, 12, 12], heading_row=start)
    return sheets.workbook_bytes(workbook)


@printed
def survey_notice(ctx: ConsoleContext) -> Record:
    """A survey round's result for one estate's notice board, with its rectification plan."""
    round_id, estate_id = _required(ctx, "round_id"), _estate(ctx)
    report = _read(ctx, f"/survey/rounds/{quote(round_id, safe='')}/report",
                   {"estate_id": estate_id})
    estate = estate_name(ctx, estate_id)
    return Record("records/survey_notice.html", f"{estate}-{report['title']}.pdf",
                  {"report": report, "estate": estate})


@printed
def complaint_report(ctx: ConsoleContext) -> Record:
    """The complaint statistics of a period, as published to an estate's owners."""
    estate_id = _estate(ctx)
    period = _required(ctx, "period")
    figures = _read(ctx, "/stats/complaints", {"estate_id": estate_id, "period": period})
    estate = estate_name(ctx, estate_id)
    context = {"figures": figures, "estate": estate, "period": period}
    return Record("records/complaint_report.html", f"{estate}-{period}-投诉统计.pdf", context,
                  sheet=lambda words: complaint_report_sheet(context, words))


def complaint_report_sheet(report: dict, words: dict) -> bytes:
    """The owners' complaint statistics as a workbook: the page's figures, then its table
    of complaints by category."""
    def said(key: str, fallback: str = "") -> str:
        return words.get(key, fallback)

    figures = report["figures"]
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = report["period"][:31]
    sheets.title(sheet, f"{report['estate']} {said('records_report_title')}", 3)
    sheets.line(sheet, said("records_period").format(period=report["period"]))
    start = sheet.max_row + 2
    rates = ("first_reply_on_time_rate", "reply_on_time_rate", "closed_rate")
    rows = [(said(key), figures.get(name)) for key, name in (
        ("records_received", "counted"), ("records_closed", "closed"),
        ("records_closed_rate", "closed_rate"), ("records_first_reply_on_time", rates[0]),
        ("records_reply_on_time", rates[1]), ("records_repeats", "repeats"),
        ("records_reopened", "reopened"))]
    sheets.table(sheet, [said("records_figure"), said("records_count_col")], rows,
                 {2: [sheets.PERCENT if name in rates else None for name in (
                     "counted", "closed", "closed_rate", *rates[:2], "repeats", "reopened")]},
                 start)
    sheets.line(sheet, said("records_by_category"), bold=True, gap=1)
    categories = [(said(f"category_{category}", category), count)
                  for category, count in (figures.get("by_category") or {}).items() if count]
    sheets.table(sheet, [said("records_category"), said("records_count_col")], categories, {})
    sheets.layout(sheet, [28, 14, 14], heading_row=start, landscape=False)
    return sheets.workbook_bytes(workbook)


# reading -------------------------------------------------------------------------------------

def estate_name(ctx: ConsoleContext, estate_id: str | None) -> str:
    """The estate a record is of, as its people name it (``ConsoleContext.name_estates``)."""
    ctx.name_estates([estate_id])
    return ctx.estate_name(estate_id)


def month_span(month: str) -> tuple[datetime, datetime]:
    """The first moment of ``month`` (YYYY-MM) and of the next, in the console's zone."""
    try:
        start = datetime.strptime(month, "%Y-%m").replace(tzinfo=ZONE)
    except ValueError:
        raise InvalidInput({"month": ["expected a month as YYYY-MM"]}) from None
    following = (start.replace(year=start.year + 1, month=1) if start.month == 12
                 else start.replace(month=start.month + 1))
    return start, following


def _month(ctx: ConsoleContext) -> str:
    month = _required(ctx, "month")
    month_span(month)
    return month


def _estate(ctx: ConsoleContext) -> str:
    """The estate a record is asked for: one of this person's (another's is not found,
    as its records are everywhere)."""
    estate_id = _required(ctx, "estate_id")
    if not ctx.actor.covers(estate_id):
        raise Problem(404, "no such estate")
    return estate_id


def _required(ctx: ConsoleContext, name: str) -> str:
    value = (ctx.request.args.get(name) or "").strip()
    if not value:
        raise InvalidInput({name: ["Missing data for required field."]})
    return value


def _read(ctx: ConsoleContext, path: str, query: dict | None = None) -> dict:
    try:
        return ctx.call("GET", path, query)
    except Problem as problem:
        if problem.status == 422 and not query:   # not even an id: unknown, like any other
            raise Problem(404, "no such record") from None
        raise


def _all(ctx: ConsoleContext, path: str, query: dict) -> list[dict]:
    """Every item of a list, page after page (a record prints all of them)."""
    items, cursor = [], None
    while True:
        page = ctx.call("GET", path, {**query, "limit": PAGE_LIMIT,
                                      **({"cursor": cursor} if cursor else {})})
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


