"""The report as an .xlsx workbook for the notice board: 「将调查结果公示于小区公示栏」.

Sheets: 汇总 (summary), 分项满意率 (per category), 排名 (ranking overall and per
category), 共性意见 (common opinions), 整改计划 (rectification plan). Chinese
headings, rates as percentages, A4 with the heading row repeated on every page.
Pure Python (openpyxl), no store.
"""
import io
from datetime import datetime
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

KIND_LABELS = {"half_yearly": "半年度", "quarterly": "季度", "event": "专项"}
STATUS_LABELS = {"open": "待整改", "in_progress": "整改中", "done": "已完成"}
ROUND_STATUS_LABELS = {"scheduled": "未开始", "open": "进行中", "closed": "已结束"}
PERCENT = "0.0%"
SCORE = "0.0"
DAY = "yyyy-mm-dd"
# The dates a sheet can hold as dates; anything else is written as text.
SHEET_DATES = (datetime(1900, 3, 1), datetime(9999, 12, 31))

_thin = Side(style="thin", color="808080")
BORDER = Border(left=_thin, right=_thin, top=_thin, bottom=_thin)
HEADING_FILL = PatternFill("solid", fgColor="DDEBF7")
TITLE_FONT = Font(size=14, bold=True)
BOLD = Font(bold=True)
WRAP = Alignment(wrap_text=True, vertical="top")
CENTRE = Alignment(horizontal="center", vertical="center", wrap_text=True)


def build(report, ranking, estate_names=None, timezone="Asia/Shanghai"):
    """The workbook's bytes for ``report`` (one estate or all) and the round's ``ranking``."""
    zone = ZoneInfo(timezone)
    names = estate_names or {}
    book = Workbook()
    _summary(book.active, report, names, zone)
    _categories(book.create_sheet(), report)
    _ranking(book.create_sheet(), ranking, names)
    _opinions(book.create_sheet(), report)
    _rectifications(book.create_sheet(), report, names, zone)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _summary(sheet, report, names, zone):
    sheet.title = "汇总"
    scope = names.get(report["estate_id"], report["estate_id"]) if report["estate_id"] \
        else f"全部 {len(report['estate_ids'])} 个小区"
    _title(sheet, f"{report['title']} — 满意度调查结果", 6)
    _line(sheet, f"范围：{scope}    类型：{KIND_LABELS.get(report['kind'], report['kind'])}"
                  + (f"（{report['occasion']}）" if report.get("occasion") else "")
                  + f"    调查时间：{_day(report['opens_at'], zone):%Y-%m-%d} 至 "
                    f"{_day(report['closes_at'], zone):%Y-%m-%d}"
                  + f"    状态：{ROUND_STATUS_LABELS.get(report['status'], report['status'])}")
    start = sheet.max_row + 2
    rows = [
        ("发放问卷（份）", report["invited"], None),
        ("回收问卷（份）", report["returned"], None),
        ("回收率", report["response_rate"], PERCENT),
        ("有效评价（项次）", report["answered"], None),
        ("满意评价（4-5分，项次）", report["satisfied"], None),
        ("总体满意率", report["satisfaction_rate"], PERCENT),
        ("综合得分（百分制）", report["score"], SCORE),
    ]
    _table(sheet, ["指标", "数值"], [(name, value) for name, value, _ in rows],
           {2: [fmt for _, _, fmt in rows]}, start)
    if report["estates"]:
        _line(sheet, "各小区情况", bold=True, gap=1)
        _table(sheet, ["小区", "发放（份）", "回收（份）", "回收率", "满意率", "得分"], [
            (names.get(line["estate_id"], line["estate_id"]), line["invited"], line["returned"],
             line["response_rate"], line["satisfaction_rate"], line["score"])
            for line in report["estates"]], {4: PERCENT, 5: PERCENT, 6: SCORE})
    template = report.get("template") or {}
    _line(sheet, f"满意率 = 4分、5分评价数 ÷ 有效评价数（不适用不计）；得分 = 平均分 × 20。"
          f"问卷模板 {template.get('template_id', '')} 第 {template.get('template_version', '')} 版。", gap=1)
    _layout(sheet, [26, 14, 14, 12, 12, 12], heading_row=start, landscape=False)


def _categories(sheet, report):
    sheet.title = "分项满意率"
    _title(sheet, f"{report['title']} — 分项满意率", 12)
    start = sheet.max_row + 2
    rows = [
        (number, view["label_zh"], view["answered"], view["satisfied"], view["not_applicable"],
         view["rate"], view["score"], *(view["distribution"].get(str(a), 0) for a in (5, 4, 3, 2, 1)))
        for number, view in enumerate(report["categories"].values(), start=1)
    ]
    rows.append(("", "合计", report["answered"], report["satisfied"],
                 sum(view["not_applicable"] for view in report["categories"].values()),
                 report["satisfaction_rate"], report["score"], "", "", "", "", ""))
    _table(sheet, ["序号", "调查项目", "有效评价", "满意（4-5分）", "不适用", "满意率", "得分",
                   "非常满意(5)", "满意(4)", "一般(3)", "不满意(2)", "非常不满意(1)"],
           rows, {6: PERCENT, 7: SCORE}, start)
    for cell in sheet[sheet.max_row]:
        cell.font = BOLD
    _layout(sheet, [6, 14, 10, 12, 8, 10, 8, 11, 9, 9, 10, 12], heading_row=start)


def _ranking(sheet, ranking, names):
    sheet.title = "排名"
    _title(sheet, "各小区满意度排名（按95%置信下限）", 6)
    _line(sheet, f"按满意率 95% Wilson 置信区间下限排序；回收少于 {ranking['min_returned']} "
                 "份的小区样本不足，单列，不参与排名。")
    start = sheet.max_row + 2
    headings = ["名次", "小区", "回收（份）", "满意率", "置信下限", "置信上限"]
    _table(sheet, headings, _ranking_rows(ranking, names), {4: PERCENT, 5: PERCENT, 6: PERCENT},
           start)
    for key, block in ranking["categories"].items():
        _line(sheet, f"{block['label_zh']}（{key}）", bold=True, gap=1)
        _table(sheet, ["名次", "小区", "有效评价", "满意率", "置信下限", "置信上限"],
               _ranking_rows(block, names), {4: PERCENT, 5: PERCENT, 6: PERCENT})
    _layout(sheet, [8, 24, 12, 10, 10, 10], heading_row=start, landscape=False)


def _ranking_rows(block, names):
    rows = [(entry["rank"], names.get(entry["estate_id"], entry["estate_id"]), entry["returned"],
             entry["rate"], entry["lower_bound"], entry["upper_bound"])
            for entry in block["ranked"]]
    rows += [("样本不足", names.get(entry["estate_id"], entry["estate_id"]), entry["returned"],
              entry["rate"], entry["lower_bound"], entry["upper_bound"])
             for entry in block["too_few"]]
    return rows


def _opinions(sheet, report):
    sheet.title = "共性意见"
    _title(sheet, f"{report['title']} — 业主共性意见", 5)
    start = sheet.max_row + 2
    rows = []
    for topic in report["opinions"]:
        for term in topic["terms"]:
            rows.append((topic["label_zh"], topic["comments"], term["term"], term["count"],
                         "\n".join(term["quotes"])))
    _table(sheet, ["调查项目", "意见条数", "关键词", "提及次数", "意见摘录"], rows or
           [("（本次调查没有收到文字意见）", "", "", "", "")], {}, start)
    _layout(sheet, [14, 10, 14, 10, 70], heading_row=start)


def _rectifications(sheet, report, names, zone):
    sheet.title = "整改计划"
    _title(sheet, f"{report['title']} — 整改计划", 8)
    _line(sheet, "对调查发现的问题，责成有关部门限期整改，接受业主监督。")
    start = sheet.max_row + 2
    labels = {key: view["label_zh"] for key, view in report["categories"].items()}
    rows = [
        (number, names.get(item["estate_id"], item["estate_id"]),
         item.get("label_zh") or labels.get(item["category"], item["category"]),
         item["action"], item["department"], _day(item["due_at"], zone),
         STATUS_LABELS.get(item["status"], item["status"]) + ("（已逾期）" if item.get("overdue")
                                                              else ""),
         (item["history"][-1].get("note") or "") if item.get("history") else "")
        for number, item in enumerate(report["rectifications"], start=1)
    ]
    _table(sheet, ["序号", "小区", "调查项目", "整改措施", "责任部门", "完成期限", "状态", "备注"],
           rows or [("", "", "", "（暂无整改项）", "", "", "", "")], {6: DAY}, start)
    _layout(sheet, [6, 16, 12, 40, 14, 12, 12, 24], heading_row=start)


# helpers ------------------------------------------------------------------------

def _writable(value):
    """What a cell can always hold, whatever was stored: text without the characters a
    workbook refuses (control characters, lone surrogates), dates in a sheet's range."""
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("", value)
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, datetime) and not SHEET_DATES[0] <= value <= SHEET_DATES[1]:
        return value.isoformat(sep=" ")
    return value


def _title(sheet, text, width):
    sheet.cell(1, 1, _writable(text))
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=width)
    sheet.cell(1, 1).font = TITLE_FONT
    sheet.cell(1, 1).alignment = Alignment(horizontal="center")
    sheet.row_dimensions[1].height = 24


def _line(sheet, text, bold=False, gap=0):
    cell = sheet.cell(sheet.max_row + 1 + gap, 1, _writable(text))
    if bold:
        cell.font = BOLD


def _table(sheet, headings, rows, formats, start=None):
    """A bordered table under a shaded heading row; ``formats`` {column: format or
    [format per row]} (1-based columns)."""
    if start is None:
        start = sheet.max_row + 1   # right under the line that names it
    for column, heading in enumerate(headings, start=1):
        cell = sheet.cell(start, column, _writable(heading))
        cell.font, cell.fill, cell.alignment, cell.border = BOLD, HEADING_FILL, CENTRE, BORDER
    for offset, row in enumerate(rows, start=1):
        for column, value in enumerate(row, start=1):
            cell = sheet.cell(start + offset, column, _writable(value))
            cell.border, cell.alignment = BORDER, WRAP
            fmt = formats.get(column)
            fmt = fmt[offset - 1] if isinstance(fmt, list) else fmt
            if fmt and value is not None and value != "" and not isinstance(cell.value, str):
                cell.number_format = fmt


def _layout(sheet, widths, heading_row, landscape=True):
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


def _day(moment, zone):
    """A date as the estate reads it (its time zone); Excel cells hold no offset."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    try:
        return moment.astimezone(zone).replace(tzinfo=None)
    except OverflowError:      # at the very end of the calendar: as stored (UTC)
        return moment.replace(tzinfo=None)
