"""The report as an .xlsx workbook for the notice board: 「将调查结果公示于小区公示栏」.

Sheets: 汇总 (summary), 分项满意率 (per category), 排名 (ranking overall and per
category), 共性意见 (common opinions), 整改计划 (rectification plan). Chinese
headings, rates as percentages, A4 with the heading row repeated on every page.
Pure Python (openpyxl), no store.
"""
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from shared import sheets
from shared.sheets import BOLD, DAY, PERCENT, SCORE

KIND_LABELS = {"half_yearly": "半年度", "quarterly": "季度", "event": "专项"}
STATUS_LABELS = {"open": "待整改", "in_progress": "整改中", "done": "已完成"}
ROUND_STATUS_LABELS = {"scheduled": "未开始", "open": "进行中", "closed": "已结束"}


def build(report: dict, ranking: dict, estate_names: Mapping[str, str] | None = None,
          timezone: str = "Asia/Shanghai") -> bytes:
    """The workbook's bytes for ``report`` (one estate or all) and the round's ``ranking``."""
    zone = ZoneInfo(timezone)
    names = estate_names or {}
    book = Workbook()
    _summary(book.active, report, names, zone)
    _categories(book.create_sheet(), report)
    _ranking(book.create_sheet(), ranking, names)
    _opinions(book.create_sheet(), report)
    _rectifications(book.create_sheet(), report, names, zone)
    return sheets.workbook_bytes(book)


def _summary(sheet: Worksheet, report: dict, names: Mapping[str, str], zone: ZoneInfo) -> None:
    sheet.title = "汇总"
    scope = names.get(report["estate_id"], report["estate_id"]) if report["estate_id"] \
        else f"全部 {len(report['estate_ids'])} 个小区"
    sheets.title(sheet, f"{report['title']} — 满意度调查结果", 6)
    sheets.line(sheet, f"范围：{scope}    类型：{KIND_LABELS.get(report['kind'], report['kind'])}"
                  + (f"（{report['occasion']}）" if report.get("occasion") else "")
                  + f"    调查时间：{sheets.day(report['opens_at'], zone):%Y-%m-%d} 至 "
                    f"{sheets.day(report['closes_at'], zone):%Y-%m-%d}"
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
    sheets.table(sheet, ["指标", "数值"], [(name, value) for name, value, _ in rows],
           {2: [fmt for _, _, fmt in rows]}, start)
    if report["estates"]:
        sheets.line(sheet, "各小区情况", bold=True, gap=1)
        sheets.table(sheet, ["小区", "发放（份）", "回收（份）", "回收率", "满意率", "得分"], [
            (names.get(line["estate_id"], line["estate_id"]), line["invited"], line["returned"],
             line["response_rate"], line["satisfaction_rate"], line["score"])
            for line in report["estates"]], {4: PERCENT, 5: PERCENT, 6: SCORE})
    template = report.get("template") or {}
    sheets.line(sheet, f"满意率 = 4分、5分评价数 ÷ 有效评价数（不适用不计）；得分 = 平均分 × 20。"
          f"问卷模板 {template.get('template_id', '')} 第 {template.get('template_version', '')} 版。", gap=1)
    sheets.layout(sheet, [26, 14, 14, 12, 12, 12], heading_row=start, landscape=False)


def _categories(sheet: Worksheet, report: dict) -> None:
    sheet.title = "分项满意率"
    sheets.title(sheet, f"{report['title']} — 分项满意率", 12)
    start = sheet.max_row + 2
    rows = [
        (number, view["label_zh"], view["answered"], view["satisfied"], view["not_applicable"],
         view["rate"], view["score"], *(view["distribution"].get(str(a), 0) for a in (5, 4, 3, 2, 1)))
        for number, view in enumerate(report["categories"].values(), start=1)
    ]
    rows.append(("", "合计", report["answered"], report["satisfied"],
                 sum(view["not_applicable"] for view in report["categories"].values()),
                 report["satisfaction_rate"], report["score"], "", "", "", "", ""))
    sheets.table(sheet, ["序号", "调查项目", "有效评价", "满意（4-5分）", "不适用", "满意率", "得分",
                   "非常满意(5)", "满意(4)", "一般(3)", "不满意(2)", "非常不满意(1)"],
           rows, {6: PERCENT, 7: SCORE}, start)
    for cell in sheet[sheet.max_row]:
        cell.font = BOLD
    sheets.layout(sheet, [6, 14, 10, 12, 8, 10, 8, 11, 9, 9, 10, 12], heading_row=start)


def _ranking(sheet: Worksheet, ranking: dict, names: Mapping[str, str]) -> None:
    sheet.title = "排名"
    sheets.title(sheet, "各小区满意度排名（按95%置信下限）", 6)
    sheets.line(sheet, f"按满意率 95% Wilson 置信区间下限排序；回收少于 {ranking['min_returned']} "
                 "份的小区样本不足，单列，不参与排名。")
    start = sheet.max_row + 2
    headings = ["名次", "小区", "回收（份）", "满意率", "置信下限", "置信上限"]
    sheets.table(sheet, headings, _ranking_rows(ranking, names), {4: PERCENT, 5: PERCENT, 6: PERCENT},
           start)
    for key, block in ranking["categories"].items():
        sheets.line(sheet, f"{block['label_zh']}（{key}）", bold=True, gap=1)
        sheets.table(sheet, ["名次", "小区", "有效评价", "满意率", "置信下限", "置信上限"],
               _ranking_rows(block, names), {4: PERCENT, 5: PERCENT, 6: PERCENT})
    sheets.layout(sheet, [8, 24, 12, 10, 10, 10], heading_row=start, landscape=False)


def _ranking_rows(block: dict, names: Mapping[str, str]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = [(entry["rank"], names.get(entry["estate_id"], entry["estate_id"]), entry["returned"],
             entry["rate"], entry["lower_bound"], entry["upper_bound"])
            for entry in block["ranked"]]
    rows += [("样本不足", names.get(entry["estate_id"], entry["estate_id"]), entry["returned"],
              entry["rate"], entry["lower_bound"], entry["upper_bound"])
             for entry in block["too_few"]]
    return rows


def _opinions(sheet: Worksheet, report: dict) -> None:
    sheet.title = "共性意见"
    sheets.title(sheet, f"{report['title']} — 业主共性意见", 5)
    start = sheet.max_row + 2
    rows: list[tuple[Any, ...]] = []
    for topic in report["opinions"]:
        for term in topic["terms"]:
            rows.append((topic["label_zh"], topic["comments"], term["term"], term["count"],
                         "\n".join(term["quotes"])))
    sheets.table(sheet, ["调查项目", "意见条数", "关键词", "提及次数", "意见摘录"], rows or
           [("（本次调查没有收到文字意见）", "", "", "", "")], {}, start)
    sheets.layout(sheet, [14, 10, 14, 10, 70], heading_row=start)


def _rectifications(sheet: Worksheet, report: dict, names: Mapping[str, str],
                    zone: ZoneInfo) -> None:
    sheet.title = "整改计划"
    sheets.title(sheet, f"{report['title']} — 整改计划", 8)
    sheets.line(sheet, "对调查发现的问题，责成有关部门限期整改，接受业主监督。")
    start = sheet.max_row + 2
    labels = {key: view["label_zh"] for key, view in report["categories"].items()}
    rows: list[tuple[Any, ...]] = [
        (number, names.get(item["estate_id"], item["estate_id"]),
         item.get("label_zh") or labels.get(item["category"], item["category"]),
         item["action"], item["department"], sheets.day(item["due_at"], zone),
         STATUS_LABELS.get(item["status"], item["status"]) + ("（已逾期）" if item.get("overdue")
                                                              else ""),
         (item["history"][-1].get("note") or "") if item.get("history") else "")
        for number, item in enumerate(report["rectifications"], start=1)
    ]
    sheets.table(sheet, ["序号", "小区", "调查项目", "整改措施", "责任部门", "完成期限", "状态", "备注"],
           rows or [("", "", "", "（暂无整改项）", "", "", "", "")], {6: DAY}, start)
    sheets.layout(sheet, [6, 16, 12, 40, 14, 12, 12, 24], heading_row=start)
