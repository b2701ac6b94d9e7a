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
