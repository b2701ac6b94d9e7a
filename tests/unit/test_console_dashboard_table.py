"""The headquarters dashboard's estates table at the group's size: a page of estates
ordered by the figure chosen (the worst first, or the best), every number in it the
statistics RPC's, and a page that stays small however many estates there are."""
import re

from werkzeug.datastructures import MultiDict

from services.gateway import console_dashboard, pages
from services.gateway.console_dashboard import ESTATES_SHOWN, EstateTable, page_context

ROW = re.compile(r'<tr id="estate-([\w-]+)">')


def figures(size: int) -> tuple[dict, dict]:
    """Statistics of ``size`` estates: the on-time reply rate falls with the estate's
    number, every seventh estate has nothing counted (no rate), the eleventh has revisits
    overdue."""
    complaints, revisits = {}, {}
    for number in range(size):
        estate = f"e-{number:05d}"
        rate = None if number % 7 == 3 else round(1 - number / (size * 2), 4)
        complaints[estate] = {"counted": number % 13, "first_reply_on_time_rate": rate,
                              "reply_on_time_rate": rate, "repeat_rate": 0.0,
                              "reopened_rate": None, "overdue_now": number % 5}
        revisits[estate] = {"revisit_rate": 1.0, "satisfaction_rate": 0.9,
                            "overdue": 3 if number % 11 == 0 else 0}
    total = {"counted": size, "first_reply_on_time_rate": 0.9, "reply_on_time_rate": 0.8,
             "repeat_rate": 0.1, "reopened_rate": None, "overdue_now": 2}
    return ({"total": total, "estates": complaints},
            {"estates": revisits, "kinds": {}, "revisit_rate": 1.0, "satisfaction_rate": 0.9,
             "overdue": 3})


def rows(context: dict) -> list[str]:
    return [estate for estate, _ in context["estate_rows"]]


def test_the_worst_estates_by_the_on_time_reply_first_a_page_at_a_time():
    complaints, revisits = figures(120)
    first = page_context("2026-11", False, complaints, revisits, [], None, None)
    shown = rows(first)
    assert len(shown) == ESTATES_SHOWN
    rates = [complaints["estates"][estate]["reply_on_time_rate"] for estate in shown]
    assert None not in rates and rates == sorted(rates)          # the lowest rate first
    assert shown[0] == "e-00119"
    table = first["estate_table"]
    assert (table["count"], table["pages"], table["first"], table["last"]) == (120, 3, 1, 50)
    assert table["previous_url"] is None
    assert "by=reply_on_time_rate" in table["next_url"] and "page=2" in table["next_url"]
    assert "month=2026-11" in table["next_url"]

    last = page_context("2026-11", False, complaints, revisits, [], None, None,
                        EstateTable(page=3))
    assert len(rows(last)) == 20 and last["estate_table"]["next_url"] is None
    # the estates with no rate come last, never ranked as the worst
    assert all(complaints["estates"][estate]["reply_on_time_rate"] is None
               for estate in rows(last)[-17:])
    every = rows(first) + rows(page_context("2026-11", False, complaints, revisits, [], None,
                                            None, EstateTable(page=2))) + rows(last)
    assert sorted(every) == sorted(complaints["estates"])          # each estate once


def test_the_best_first_or_by_another_figure_and_each_cell_the_rpcs_number():
    complaints, revisits = figures(120)
    best = page_context("2026-11", False, complaints, revisits, [], None, None,
                        EstateTable.asked(MultiDict({"order": "best"})))
    assert rows(best)[0] == "e-00000"
    overdue = page_context("2026-11", False, complaints, revisits, [], None, None,
                           EstateTable.asked(MultiDict({"by": "overdue"})))
    assert {revisits["estates"][estate]["overdue"] for estate in rows(overdue)[:11]} == {3}
    for estate, cells in overdue["estate_rows"]:
        for column, value, _ in cells:
            source = revisits if column in console_dashboard.ESTATE_REVISIT_FIGURES else complaints
            expected = source["estates"][estate].get(column)
            assert value == ("" if expected is None else str(expected)), (estate, column)
    # what is no choice of the table: its default, never an error
    asked = EstateTable.asked(MultiDict({"by": "password", "page": "²", "order": "x"}))
    assert asked == EstateTable()
    beyond = page_context("2026-11", False, complaints, revisits, [], None, None,
                          EstateTable(page=99))
    assert beyond["estate_table"]["page"] == 3


def test_at_ten_thousand_estates_the_page_holds_a_page_of_them():
    complaints, revisits = figures(10_000)
    context = page_context("2026-11", False, complaints, revisits, [], None, None)
    html = pages.render(
        "console/dashboard.html", "zh", user={"username": "hq", "display_name": "总部", "roles": []},
        may=lambda *args: True, sees_group=True, csrf_token="x", known=lambda key: True,
        new_key=lambda: "k", estate_name=lambda estate: estate,
        **context).get_data(as_text=True)
    assert len(ROW.findall(html)) == ESTATES_SHOWN
    assert len(html) < 200_000
    assert 'id="estates-next"' in html and "第 1 / 200 页" in html
    # the overdue chart: the estates with the most overdue work, a few of them
    overdue = [estate for estate, _ in context["overdue_rows"]]
    assert len(overdue) == console_dashboard.OVERDUE_SHOWN
    worst = max(complaints["estates"][e]["overdue_now"] + revisits["estates"][e]["overdue"]
                for e in complaints["estates"])
    first = overdue[0]
    assert complaints["estates"][first]["overdue_now"] + revisits["estates"][first]["overdue"] \
        == worst


def grouped_figures() -> tuple[dict, dict]:
    """Both statistics by region, as the RPCs answer ``group_by=region`` without the
    estates' rows: the same keys in both, one of them the estates with no company."""
    keys = {"华东物业/杭州片区": ("华东物业", "杭州片区"), "华东物业/宁波片区": ("华东物业", "宁波片区"),
            "(未分组)/(未分组)": ("(未分组)", "(未分组)")}
    complaints, revisits = {}, {}
    for number, (key, (company, region)) in enumerate(keys.items()):
        label = {"company": company, "region": region, "estate_ids": [f"e-{number}"]}
        complaints[key] = {**label, "counted": 3 + number, "first_reply_on_time_rate": 0.5,
                           "reply_on_time_rate": 1 - number / 10, "repeat_rate": 0.0,
                           "reopened_rate": None, "overdue_now": number}
        revisits[key] = {**label, "revisit_rate": 0.8, "satisfaction_rate": None,
                         "overdue": 2 * number}
    return ({"total": {"first_reply_on_time_rate": 0.5, "reply_on_time_rate": 0.9,
                       "repeat_rate": 0.0, "reopened_rate": None, "overdue_now": 3},
             "group_by": "region", "groups": complaints},
            {"group_by": "region", "groups": revisits, "kinds": {}, "revisit_rate": 0.8,
             "satisfaction_rate": None, "overdue": 6})


def test_grouped_by_region_each_line_is_a_groups_figures_as_the_rpcs_summed_them():
    complaints, revisits = grouped_figures()
    table = EstateTable.asked(MultiDict({"group_by": "region"}))
    assert table.asks() == {"group_by": "region", "per_estate": "false"}
    assert EstateTable.asked(MultiDict({"group_by": "building"})).group_by == "estate"
    context = page_context("2026-11", False, complaints, revisits, [], None, None, table)
    # the worst reply on time first, each cell the group's number from its own answer
    assert rows(context) == ["(未分组)/(未分组)", "华东物业/宁波片区", "华东物业/杭州片区"]
    for key, cells in context["estate_rows"]:
        for column, value, _ in cells:
            source = (revisits if column in console_dashboard.ESTATE_REVISIT_FIGURES
                      else complaints)["groups"][key]
            assert value == ("" if source.get(column) is None else str(source[column]))
    assert context["overdue_rows"][0][0] == "(未分组)/(未分组)"
    html = pages.render(
        "console/dashboard.html", "zh", user={"username": "hq", "display_name": "总部", "roles": []},
        may=lambda *args: True, sees_group=True, csrf_token="x", known=lambda key: True,
        new_key=lambda: "k", estate_name=lambda estate: estate,
        **context).get_data(as_text=True)
    assert '<option value="region" selected>按片区</option>' in html
    assert '<tr class="group-row" data-group="华东物业/杭州片区"><th scope="row">华东物业 · 杭州片区</th>' in html
    assert "(未分组) · (未分组)" in html and not ROW.findall(html)
    assert "<caption>各片区 2026-11 的数据（其下小区合计）</caption>" in html
    # the charts follow the table they are drawn from
    assert 'data-table="table-estates"' in html and 'data-table="table-overdue"' in html
    # paging keeps the grouping; by estate the lines are the estates' rows again
    assert table.query(page=2)["group_by"] == "region"
    by_estate = page_context("2026-11", False, *figures(3), [], None, None)
    assert rows(by_estate) and by_estate["group_names"] == {}
