"""The headquarters dashboard (总部看板, ``/console/dashboard``): the group's figures
across its estates for one month (default: last month, in the service centre's zone).

* Only for who may read the group's statistics (``stats.group``, across every estate):
  anyone else gets the console's 403 page.
* The figures are the statistics operations of the REST API, as they answer for the
  month — intake's ``group_complaint_stats`` (``GET /stats/complaints``), revisit's
  ``revisit_stats`` across estates (``GET /stats/revisits``) and, for the league table, the
  survey ranking of a round (``GET /survey/rounds/{id}/ranking``). Nothing is computed
  here but the page's order of rows: each number shown is one the RPC gave. Both
  statistics are asked with every estate's row (not ``per_estate=false``): the estates'
  table orders all of them by the figure chosen and the overdue chart picks from all.
* Each chart (Apache ECharts, ``static/vendor/echarts``, from ``make assets``; drawn by
  ``static/dashboard.js``) is drawn from the table of numbers under it, so the chart and
  the table cannot disagree; the table is one click away (``<details>``), and open — the
  whole view — without JavaScript.
* The estates' table and the overdue chart show estates, or — picked in the table's form
  (a GET form: no JavaScript) — companies or regions (``group_by``): then both statistics
  are asked ``group_by`` without the estates' rows (``per_estate=false``), and each line
  is a group's figures as the RPCs summed them (shared/estate_groups.py: the same key in
  both answers, an estate with no company or region in ``(未分组)``). The charts follow,
  drawn from the table.
* The estates' table is a page of ``ESTATES_SHOWN`` estates ordered by the figure chosen,
  the worst first (or the best), with links to page through them all; the overdue chart
  the ``OVERDUE_SHOWN`` estates with the most overdue work. However many estates the
  group has, the page holds a few dozen rows (at 10,000 estates the whole table made a
  7 MB page that took seconds to render: ``make bench --only dashboard``).
* The league table is the survey's ranking: estates by the lower bound of the 95 %
  Wilson interval of their satisfaction rate, and those under the survey policy's
  minimum of returned questionnaires (``min_ranked_returns``) listed apart, never
  ranked — so an estate with five questionnaires cannot top it.
"""
import heapq
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

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
ESTATES_SHOWN = 50         # the estates' table: a page of this many
OVERDUE_SHOWN = 20         # the overdue chart: the estates with the most overdue work
# The figures where more is better (the worst of them is the lowest); of every other
# figure of an estate's line the worst is the highest.
MORE_IS_BETTER = ("first_reply_on_time_rate", "reply_on_time_rate", "revisit_rate",
                  "satisfaction_rate")
DEFAULT_ORDER_BY = "reply_on_time_rate"     # 答复及时率: the worst first
GROUPINGS = ("estate", "company", "region")   # the table's lines (shared/estate_groups.py)


@dataclass(frozen=True)
class EstateTable:
    """Which page of the estates' table is shown: ordered by ``by``, the worst first
    unless ``best_first``, page ``page`` (from 1); a line an estate, or a company's or
    region's estates together (``group_by``)."""
    by: str = DEFAULT_ORDER_BY
    best_first: bool = False
    page: int = 1
    group_by: str = "estate"

    @classmethod
    def asked(cls, args) -> "EstateTable":
        """The table a query asks for; what is not one of its choices, the default."""
        by = args.get("by", "")
        page = args.get("page", "")
        group_by = args.get("group_by", "")
        return cls(by if by in ESTATE_COMPLAINT_FIGURES + ESTATE_REVISIT_FIGURES
                   else DEFAULT_ORDER_BY, args.get("order") == "best",
                   int(page) if page.isascii() and page.isdigit() and 0 < int(page) < 10**6
                   else 1, group_by if group_by in GROUPINGS else "estate")

    @property
    def lines(self) -> str:
        """Where the statistics' answers hold the table's lines."""
        return "estates" if self.group_by == "estate" else "groups"

    def asks(self) -> dict:
        """What the statistics operations are asked besides the period: by estate every
        estate's row; by group the groups alone."""
        if self.group_by == "estate":
            return {}
        return {"group_by": self.group_by, "per_estate": "false"}

    def query(self, **changes) -> dict:
        table = {"by": self.by, "order": "best" if self.best_first else "worst",
                 "page": self.page, "group_by": self.group_by, **changes}
        return {key: str(value) for key, value in table.items()}


def last_month(now: datetime) -> str:
    first_of_this_month = now.astimezone(ZONE).date().replace(day=1)
    return (first_of_this_month - timedelta(days=1)).strftime("%Y-%m")


@signed_in
def dashboard(ctx: ConsoleContext) -> Response:
    if not ctx.sees_group:
        raise Problem(403, "the group's figures need a headquarters role")
    asked = ctx.request.args.get("month", "")
    month = asked if MONTH.fullmatch(asked) else last_month(ctx.now)
    table = EstateTable.asked(ctx.request.args)
    complaints = ctx.call("GET", "/stats/complaints", {"period": month, **table.asks()})
    revisits = ctx.call("GET", "/stats/revisits", {"period": month, **table.asks()})
    rounds, chosen, ranking = _ranking(ctx, ctx.request.args.get("round_id"))
    ctx.know_estate_names(names_carried(complaints, revisits, ranking))
    return ctx.render("console/dashboard.html", **page_context(
        month, bool(asked) and asked != month, complaints, revisits, rounds, chosen, ranking,
        table))


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


def names_carried(complaints: dict, revisits: dict, ranking: dict | None) -> dict[str, str]:
    """{estate id: name} from the figures themselves (intake's ``name``, revisit's and
    survey's ``estate_name``): the page names its estates without asking intake."""
    ranked = (ranking or {}).get("ranked", []) + (ranking or {}).get("too_few", [])
    found = [*((estate, figures.get("estate_name"))
               for estate, figures in revisits.get("estates", {}).items()),
             *((entry["estate_id"], entry.get("estate_name")) for entry in ranked),
             *((estate, figures.get("name"))
               for estate, figures in complaints.get("estates", {}).items())]
    return {estate: name for estate, name in found if name}


def group_names(by_complaints: dict, by_revisits: dict) -> dict[str, str]:
    """{group key: what its line is headed by}: its company, or its company and region, as
    the figures carry them (either answer: the keys are the same)."""
    return {key: " · ".join(filter(None, (group.get("company"), group.get("region"))))
            for key, group in {**by_revisits, **by_complaints}.items()}


def estate_rows(by_complaints: dict, by_revisits: dict, estates) -> list[tuple[str, list]]:
    """Each of ``estates``' line (an estate's, or a group's): its complaint figures, then
    its revisit figures."""
    return [(estate, cells(by_complaints.get(estate, {}), ESTATE_COMPLAINT_FIGURES)
             + cells(by_revisits.get(estate, {}), ESTATE_REVISIT_FIGURES))
            for estate in estates]


def ordered_estates(by_complaints: dict, by_revisits: dict, by: str,
                    best_first: bool = False) -> list[str]:
    """Every line of the figures (estates, or groups), by the figure ``by``: the worst first
    (or the best), those without it (nothing counted) last; equals by key."""
    figures = by_revisits if by in ESTATE_REVISIT_FIGURES else by_complaints
    estates = set(by_complaints) | set(by_revisits)
    known = [(value, estate) for estate in estates
             if (value := figures.get(estate, {}).get(by)) is not None]
    highest_first = (by in MORE_IS_BETTER) == best_first
    known.sort(key=lambda pair: (-pair[0] if highest_first else pair[0], pair[1]))
    return [estate for _, estate in known] + sorted(
        estate for estate in estates if figures.get(estate, {}).get(by) is None)


def most_overdue(by_complaints: dict, by_revisits: dict,
                 count: int = OVERDUE_SHOWN) -> list[str]:
    """The ``count`` lines (estates, or groups) with the most overdue complaints and
    revisits together."""
    def overdue(estate: str) -> int:
        return ((by_complaints.get(estate, {}).get("overdue_now") or 0)
                + (by_revisits.get(estate, {}).get("overdue") or 0))
    return heapq.nsmallest(count, set(by_complaints) | set(by_revisits),
                           key=lambda estate: (-overdue(estate), estate))


def page_context(month: str, month_refused: bool, complaints: dict, revisits: dict,
                 rounds: list, chosen: dict | None, ranking: dict | None,
                 table: EstateTable | None = None) -> dict:
    """What the dashboard's template shows, from the statistics RPCs' answers as they are."""
    table = table or EstateTable()
    by_complaints = complaints.get(table.lines, {})
    by_revisits = revisits.get(table.lines, {})
    ordered = ordered_estates(by_complaints, by_revisits, table.by, table.best_first)
    pages = max(1, -(-len(ordered) // ESTATES_SHOWN))
    page = min(table.page, pages)
    first = (page - 1) * ESTATES_SHOWN

    def link(**changes) -> str:
        return "/console/dashboard?" + urlencode({
            "month": month, **({"round_id": chosen["id"]} if chosen else {}),
            **table.query(**changes)})
    return {
        "month": month, "month_refused": month_refused, "complaints": complaints,
        "revisits": revisits,
        "estate_rows": estate_rows(by_complaints, by_revisits,
                                   ordered[first:first + ESTATES_SHOWN]),
        "overdue_rows": estate_rows(by_complaints, by_revisits,
                                    most_overdue(by_complaints, by_revisits)),
        "group_names": ({} if table.group_by == "estate"
                        else group_names(by_complaints, by_revisits)),
        "groupings": GROUPINGS,
        "estate_table": {"by": table.by, "best_first": table.best_first, "page": page,
                         "group_by": table.group_by,
                         "pages": pages, "count": len(ordered), "first": first + 1,
                         "last": min(first + ESTATES_SHOWN, len(ordered)),
                         "next_url": link(page=page + 1) if page < pages else None,
                         "previous_url": link(page=page - 1) if page > 1 else None},
        "estate_figures": ESTATE_COMPLAINT_FIGURES + ESTATE_REVISIT_FIGURES,
        "group_rates": [(name, (complaints["total"] if source == "complaints" else revisits)[name])
                        for source, name in GROUP_RATES],
        "estate_complaint_figures": ESTATE_COMPLAINT_FIGURES,
        "estate_revisit_figures": ESTATE_REVISIT_FIGURES, "sampled_kinds": WORK_ORDER_KINDS,
        "rounds": rounds, "chosen_round": chosen, "ranking": ranking}


def _ranking(ctx: ConsoleContext, round_id: str | None):
    """The newest rounds, the one chosen (default: the newest closed one, else the newest)
    and its ranking; nothing for a role that may not read rankings."""
    if not (ctx.may("GET", "/survey/rounds") and ctx.may_action("survey.rounds.ranking")):
        return [], None, None
    rounds = ctx.call("GET", "/survey/rounds", {"limit": str(ROUNDS_SHOWN)})["items"]
    by_id = {round_["id"]: round_ for round_ in rounds}
    chosen = by_id.get(round_id or "") or next(
        (round_ for round_ in rounds if round_["status"] == "closed"),
        rounds[0] if rounds else None)
    if chosen is None:
        return rounds, None, None
    return rounds, chosen, ctx.call("GET", f"/survey/rounds/{chosen['id']}/ranking")
