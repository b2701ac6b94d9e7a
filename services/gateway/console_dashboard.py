"""The headquarters dashboard (总部看板, ``/console/dashboard``): the group's figures
across its estates for one month (default: last month, in the service centre's zone).

* Only for who may read the group's statistics (``stats.group``, across every estate):
  anyone else gets the console's 403 page.
* The figures are the statistics operations of the REST API, as they answer for the
  month — intake's ``group_complaint_stats`` (``GET /stats/complaints``), revisit's
  ``revisit_stats`` across estates (``GET /stats/revisits``) and, for the league table, the
  survey ranking of a round (``GET /survey/rounds/{id}/ranking``). Nothing is computed
  here but the page's order of rows: each number shown is one the RPC gave.
* Each chart (Apache ECharts, ``static/vendor/echarts``, from ``make assets``; drawn by
  ``static/dashboard.js``) is drawn from the table of numbers under it, so the chart and
  the table cannot disagree; the table is one click away (``<details>``), and open — the
  whole view — without JavaScript.
* The league table is the survey's ranking: estates by the lower bound of the 95 %
  Wilson interval of their satisfaction rate, and those under the survey policy's
  minimum of returned questionnaires (``min_ranked_returns``) listed apart, never
  ranked — so an estate with five questionnaires cannot top it.
"""
from datetime import datetime, timedelta
from typing import Any

from werkzeug.wrappers import Response

from services.gateway.console import ZONE, ConsoleContext, signed_in
from services.gateway.problems import Problem
from shared.schemas.revisit import MONTH
from shared.schemas.vocabulary import WORK_ORDER_KINDS

ROUNDS_SHOWN = 20          # the league table's round picker: the newest rounds
# The group's rates, in the order the chart shows them: (figures, name in the figures).
GROUP_RATES = (("complaints", "first_reply_on_time_rate"), ("complaints", "reply_on_time_rate"),
               ("revisits", "revisit_rate"), ("revisits", "satisfaction_rate"),
               ("complaints", "repeat_rate"), ("complaints", "reopened_rate"))
# Each estate's line: the complaint figures' rates and counts, then the revisit figures'.
ESTATE_COMPLAINT_FIGURES = ("counted", "first_reply_on_time_rate", "reply_on_time_rate",
                            "repeat_rate", "reopened_rate", "overdue_now")
ESTATE_REVISIT_FIGURES = ("revisit_rate", "satisfaction_rate", "overdue")


def last_month(now: datetime) -> str:
    first_of_this_month = now.astimezone(ZONE).date().replace(day=1)
    return (first_of_this_month - timedelta(days=1)).strftime("%Y-%m")


@signed_in
def dashboard(ctx: ConsoleContext) -> Response:
    if not ctx.sees_group:
        raise Problem(403, "the group's figures need a headquarters role")
    asked = ctx.request.args.get("month", "")
    month = asked if MONTH.fullmatch(asked) else last_month(ctx.now)
    complaints = ctx.call("GET", "/stats/complaints", {"period": month})
    revisits = ctx.call("GET", "/stats/revisits", {"period": month})
    rounds, chosen, ranking = _ranking(ctx, ctx.request.args.get("round_id"))
    return ctx.render("console/dashboard.html", **page_context(
        month, bool(asked) and asked != month, complaints, revisits, rounds, chosen, ranking))


def shown(value: Any, column: str) -> str:
    """A figure as the page prints it: a rate (0.8571) as a percentage (85.71%), none as —."""
    if value is None:
        return "—"
    return f"{value * 100:.2f}%" if column.endswith("rate") else str(value)


def cells(figures: dict, columns) -> list[tuple[str, str, str]]:
    """(column, the RPC's value as data-value, as shown) of each column: what a table's
    cell holds, and what the chart beside it is drawn from."""
    return [(column, "" if figures.get(column) is None else str(figures[column]),
             shown(figures.get(column), column)) for column in columns]


def estate_rows(complaints: dict, revisits: dict) -> list[tuple[str, list]]:
    """Each estate's line: its complaint figures, then its revisit figures (the template
    would spend a millisecond an estate building these cells itself)."""
    by_complaints, by_revisits = complaints["estates"], revisits.get("estates", {})
    return [(estate, cells(by_complaints.get(estate, {}), ESTATE_COMPLAINT_FIGURES)
             + cells(by_revisits.get(estate, {}), ESTATE_REVISIT_FIGURES))
            for estate in sorted(set(by_complaints) | set(by_revisits))]


def page_context(month: str, month_refused: bool, complaints: dict, revisits: dict,
                 rounds: list, chosen: dict | None, ranking: dict | None) -> dict:
    """What the dashboard's template shows, from the statistics RPCs' answers as they are."""
    return {
        "month": month, "month_refused": month_refused, "complaints": complaints,
        "revisits": revisits, "estate_rows": estate_rows(complaints, revisits),
        "group_rates": [(name, (complaints["total"] if source == "complaints" else revisits)[name])
                        for source, name in GROUP_RATES],
        "estate_complaint_figures": ESTATE_COMPLAINT_FIGURES,
        "estate_revisit_figures": ESTATE_REVISIT_FIGURES, "sampled_kinds": WORK_ORDER_KINDS,
        "rounds": rounds, "chosen_round": chosen, "ranking": ranking}


def _ranking(ctx: ConsoleContext, round_id: str | None):
    """The newest rounds, the one chosen (default: the newest closed one, else the newest)
    and its ranking; nothing for a role that may not read rankings."""
    if not (ctx.may("GET", "/survey/rounds") and ctx.may("GET", "/survey/rounds/r/ranking")):
        return [], None, None
    rounds = ctx.call("GET", "/survey/rounds", {"limit": str(ROUNDS_SHOWN)})["items"]
    by_id = {round_["id"]: round_ for round_ in rounds}
    chosen = by_id.get(round_id or "") or next(
        (round_ for round_ in rounds if round_["status"] == "closed"),
        rounds[0] if rounds else None)
    if chosen is None:
        return rounds, None, None
    return rounds, chosen, ctx.call("GET", f"/survey/rounds/{chosen['id']}/ranking")
