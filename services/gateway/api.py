"""The REST API: every operation of ``/api/v1`` in one table, and how one is carried out.

An ``Operation`` names its permission (``permissions.PERMISSIONS``), its HTTP method
and path, the RPC behind it, how the RPC's arguments come from the request, how its
estate is found (the scope) and which shared schema documents its input. The gateway
holds no business rule: inputs are validated by the same schemas inside the service
(its ``InvalidInput`` becomes a 422 naming the fields); here a request is only
authenticated, checked against the permission table and the user's estates, and passed
on with the user as the actor. (A department named in a body is the service's to check
against intake's routing, whoever calls it: shared/departments.py.)

Every change (POST, PUT, PATCH) goes with a ``request_id`` (``shared/idempotency.py``): the
client's ``Idempotency-Key`` header, so that a client repeating a request whose answer it
did not get (a timeout, a dropped connection) changes nothing twice and gets the first
answer, or a fresh one. A state-machine step also takes the state the client saw, as the
query parameter ``expected_status`` (``shared/expected_state.py``).
"""
import base64
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from marshmallow import Schema, fields, validate
from nameko.exceptions import RemoteError
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from services.gateway.http import json_body, json_response
from services.gateway.permissions import (
    NO_DEPARTMENT,
    allowed,
    confined_department,
    refusal,
)
from services.gateway.problems import Problem, invalid, not_found
from shared.actor import Actor
from shared.schemas import intake, notify, revisit, survey
from shared.schemas.base import ID_PATTERN, Flag, Id, IdList, OneOf, Period
from shared.schemas.base import Schema as BaseSchema

PREFIX = "/api/v1"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# ASCII digits only: str.isdigit() also takes "²" and "٣", which int() refuses or reads
INTEGER = re.compile(r"-?[0-9]{1,11}")
IDEMPOTENCY_KEY = "Idempotency-Key"
EXPECTED_STATUS = "expected_status"
CHANGES = frozenset({"POST", "PUT", "PATCH"})


# scopes: where an operation's estate is found --------------------------------------

class Scope:
    """How an operation finds the estate(s) it touches."""


@dataclass(frozen=True)
class Unscoped(Scope):
    """Nothing of one estate (the group's survey templates)."""


@dataclass(frozen=True)
class InBody(Scope):
    """Creates in the body's ``estate_id`` (or every one of ``estate_ids``): refused
    outside the user's estates."""
    field: str = "estate_id"


@dataclass(frozen=True)
class InPath(Scope):
    """An estate named in the path: unknown (404) outside the user's estates."""
    param: str = "estate_id"


@dataclass(frozen=True)
class OfRecord(Scope):
    """An existing record, read first with ``getter``: unknown (404) outside the user's
    estates. A record of several estates (a group survey round) is visible to whoever
    has one of them; changing it needs them all, and reading a part of it needs the
    ``estate_id`` query naming one's own (``by_part``) — or, where the RPC reads a part of
    it (``mine``: a round's report and ranking), without it the part of the user's own
    estates (``Call.estates``). A record of a department's work names it in
    ``department``: unknown (404) to another department's staff."""
    getter: str
    param: str
    field: str = "estate_id"
    by_part: bool = False
    department: str | None = None
    mine: bool = False


@dataclass(frozen=True)
class Listing(Scope):
    """A list: only the user's estates are asked for and answered; of a department's work
    (``department``: the filter and the items' field), only a confined person's department."""
    department: str | None = None


@dataclass(frozen=True)
class Figures(Scope):
    """Statistics: with ``estate_id`` that estate's; without, the group's (``stats.group``);
    where ``several``, with ``estate_ids`` those estates' rows, each one the user's (of
    ``group_rpc`` where there is one)."""
    group_rpc: str | None = None
    several: bool = False


# operations ------------------------------------------------------------------------

@dataclass(frozen=True)
class Call:
    path: dict
    query: dict
    body: dict
    # of a record of several estates (``OfRecord.mine``): the user's part of it, None: all
    estates: list[str] | None = None


@dataclass(frozen=True)
class Operation:
    name: str                              # permission and OpenAPI operationId
    method: str
    path: str                              # under /api/v1, OpenAPI style: /complaints/{id}
    rpc: str                               # "<service>.<method>"
    args: Callable[[Call], tuple]
    summary: str
    scope: Scope
    body: type[Schema] | None = None       # documents the body; the service validates it
    query: type[Schema] | None = None      # documents the query; the service validates it
    params: type[Schema] | None = None     # documents the path; without, each part is an id
    paged: bool = False
    status: int = 200
    tag: str = ""
    download: str | None = None            # media type of a file answer
    result: str = "object"                 # what answers: object, list, page, or file
    permission: str = ""                   # when several operations share one (statistics)
    expects_status: bool = False           # a state-machine step: ?expected_status= passed on

    @property
    def action(self) -> str:
        return self.permission or self.name

    @property
    def rule(self) -> str:
        return PREFIX + self.path.replace("{", "<").replace("}", ">")


def _id(name):
    return lambda call: (call.path[name],)


def _id_body(name):
    return lambda call: (call.path[name], call.body)


def _filters(call):
    return (call.query,)


def _round_part(call):
    """A round, its one estate (``?estate_id=``), else the user's part of it."""
    estate_id = call.query.get("estate_id")
    return (call.path["round_id"], estate_id, None if estate_id else call.estates)


class EstateQuery(BaseSchema):
    estate_id = Id()


class StatsPeriodQuery(BaseSchema):
    period = Period(required=True)
    estate_id = Id()


class TemplateVersionQuery(BaseSchema):
    version = fields.Integer(validate=validate.Range(min=1))


class HouseholdImport(BaseSchema):
    rows = fields.List(fields.Nested(intake.HouseholdRow), required=True)
    estate = fields.Nested(intake.NewEstate)   # required for a new estate: its name, ...


class GroupStatsQuery(StatsPeriodQuery):
    per_estate = Flag()     # the group's figures: false leaves every estate's row out (fast)
    group_by = OneOf(intake.ESTATE_GROUPINGS)    # the group's figures: by region or company
    # these estates' rows alone, in one call (each one of yours); with group_by, groups
    # made of them (a person of some estates: of theirs, without estate_ids)
    estate_ids = IdList()


class RevisitStatsQuery(GroupStatsQuery):
    pass


class ComplaintStatsQuery(GroupStatsQuery):
    pass


class EstateRevisionQuery(BaseSchema):
    expected_revision = fields.Integer()          # the revision read: a change meanwhile is 409


_COMPLAINT = OfRecord("intake.get_complaint", "complaint_id", department="department")
_WORK_ORDER = OfRecord("intake.get_work_order", "work_order_id")
_REVISIT = OfRecord("revisit.get_revisit", "revisit_id")
_FOLLOWUP = OfRecord("revisit.get_followup", "followup_id", department="department")
_ROUND = OfRecord("survey.get_round", "round_id", field="estate_ids")
_ROUND_PART = OfRecord("survey.get_round", "round_id", field="estate_ids", by_part=True)
# a report or ranking: of the user's estates of the round, unless they have all of them
_ROUND_MINE = OfRecord("survey.get_round", "round_id", field="estate_ids", by_part=True,
                       mine=True)
_RECTIFICATION = OfRecord("survey.get_rectification", "rectification_id",
                          department="department")
_DEPARTMENT_WORK = Listing(department="department")


def _complaint_action(action, rpc, schema, summary):
    return Operation(f"complaints.{action.replace('-', '_')}", "POST",
                     f"/complaints/{{complaint_id}}/{action}", f"intake.{rpc}",
                     _id_body("complaint_id"), summary, _COMPLAINT, body=schema,
                     tag="complaints", expects_status=True)


OPERATIONS: tuple[Operation, ...] = (
    # households
    # estates
    Operation("estates.list", "GET", "/estates", "intake.list_estates", _filters,
              "Estates (names, company, region, time zone)", Listing(),
              query=intake.EstateFilters, paged=True, tag="estates", result="page"),
    Operation("estates.get", "GET", "/estates/{estate_id}", "intake.get_estate",
              _id("estate_id"), "One estate's record", InPath(), tag="estates"),
    Operation("estates.register", "POST", "/estates", "intake.register_estate",
              lambda c: (c.body,), "Register an estate", InBody(), body=intake.RegisterEstate,
              status=201, tag="estates"),
    Operation("estates.update", "PATCH", "/estates/{estate_id}", "intake.update_estate",
              lambda c: (c.path["estate_id"], c.body, c.query.get("expected_revision")),
              "Rename an estate, move it, change its time zone or policy overrides",
              InPath(), body=intake.UpdateEstate, query=EstateRevisionQuery, tag="estates"),
    # households
    Operation("households.import", "POST", "/estates/{estate_id}/households",
              "intake.import_households",
              lambda c: (c.path["estate_id"], c.body.get("rows"), c.body.get("estate")),
              "Import or update an estate's households and their contacts", InPath(),
              body=HouseholdImport, tag="households"),
    Operation("households.list", "GET", "/estates/{estate_id}/households",
              "intake.list_households", lambda c: (c.path["estate_id"], c.query),
              "An estate's households, contacts masked", InPath(),
              query=intake.HouseholdFilters, paged=True, tag="households", result="page"),
    Operation("households.get", "GET", "/households/{household_id}", "intake.get_household",
              _id("household_id"), "One household, contacts masked",
              OfRecord("intake.get_household", "household_id"), tag="households"),
    Operation("households.key_customer", "POST", "/households/{household_id}/key-customer",
              "intake.set_key_customer",
              lambda c: (c.path["household_id"], c.body.get("key_customer")),
              "Flag a household as a key customer (重点客户), or lift the flag",
              OfRecord("intake.get_household", "household_id"), body=intake.KeyCustomer,
              tag="households"),
    Operation("categories.list", "GET", "/estates/{estate_id}/categories",
              "intake.list_categories", lambda c: (c.path["estate_id"],),
              "Complaint categories and the department each is routed to", InPath(),
              tag="complaints", result="list"),
    # complaints
    Operation("complaints.register", "POST", "/complaints", "intake.register_complaint",
              lambda c: (c.body,), "Register a complaint (the owner is sent an apology)",
              InBody(), body=intake.RegisterComplaint, status=201, tag="complaints"),
    Operation("complaints.list", "GET", "/complaints", "intake.list_complaints", _filters,
              "Complaints, newest first", _DEPARTMENT_WORK, query=intake.ComplaintFilters,
              paged=True, tag="complaints", result="page"),
    Operation("complaints.get", "GET", "/complaints/{complaint_id}", "intake.get_complaint",
              _id("complaint_id"), "A complaint with its whole history", _COMPLAINT,
              tag="complaints"),
    _complaint_action("acknowledge", "acknowledge_complaint", intake.AcknowledgeComplaint,
                      "First reply to the owner"),
    _complaint_action("assign", "assign_complaint", intake.AssignComplaint,
                      "Route to the responsible department (or an outside unit)"),
    _complaint_action("resolve", "resolve_complaint", intake.ResolveComplaint,
                      "Record how it was resolved"),
    _complaint_action("close", "close_complaint", intake.CloseComplaint,
                      "Close, with the owner's sign-off (a revisit follows)"),
    _complaint_action("reopen", "reopen_complaint", intake.ReopenComplaint, "Reopen"),
    _complaint_action("review", "request_review", intake.RequestReview,
                      "The owner asks for a review (复核)"),
    _complaint_action("decide-review", "decide_review", intake.DecideReview,
                      "Uphold or overturn the outcome under review"),
    _complaint_action("escalate", "escalate_complaint", intake.EscalateComplaint,
                      "Escalate to the next rung, or straight to a named one"),
    _complaint_action("instruct", "record_instruction", intake.RecordInstruction,
                      "The manager's instruction on a complaint escalated to them"),
    _complaint_action("special-measures", "record_special_measures",
                      intake.RecordSpecialMeasures,
                      "Record the special measures a repeat complaint needs"),
    _complaint_action("external-status", "update_external_status",
                      intake.UpdateExternalStatus, "Where an outside unit stands"),
    _complaint_action("flag-malicious", "flag_malicious", intake.FlagMalicious,
                      "Flag (or unflag) a complaint as malicious"),
    # work orders
    Operation("work_orders.register", "POST", "/work-orders", "intake.register_work_order",
              lambda c: (c.body,), "Register a work order (or a paper record of one)",
              InBody(), body=intake.RegisterWorkOrder, status=201, tag="work orders"),
    Operation("work_orders.list", "GET", "/work-orders", "intake.list_work_orders", _filters,
              "Work orders, newest first", Listing(), query=intake.WorkOrderFilters,
              paged=True, tag="work orders", result="page"),
    Operation("work_orders.get", "GET", "/work-orders/{work_order_id}",
              "intake.get_work_order", _id("work_order_id"), "A work order", _WORK_ORDER,
              tag="work orders"),
    Operation("work_orders.complete", "POST", "/work-orders/{work_order_id}/complete",
              "intake.complete_work_order", _id_body("work_order_id"),
              "Complete (a sampled revisit may follow)", _WORK_ORDER,
              body=intake.CompleteWorkOrder, tag="work orders", expects_status=True),
    Operation("work_orders.cancel", "POST", "/work-orders/{work_order_id}/cancel",
              "intake.cancel_work_order", _id_body("work_order_id"), "Cancel, with the reason",
              _WORK_ORDER, body=intake.CancelWorkOrder, tag="work orders",
              expects_status=True),
    # revisits
    Operation("revisits.list", "GET", "/revisits", "revisit.list_revisits", _filters,
              "Revisits by due time", Listing(), query=revisit.RevisitFilters, paged=True,
              tag="revisits", result="page"),
    Operation("revisits.get", "GET", "/revisits/{revisit_id}", "revisit.get_revisit",
              _id("revisit_id"), "A revisit with its attempts and outcome", _REVISIT,
              tag="revisits"),
    Operation("revisits.book", "POST", "/revisits/{revisit_id}/book",
              "revisit.book_appointment", _id_body("revisit_id"),
              "Book an on-site visit with the owner's consent", _REVISIT,
              body=revisit.BookAppointment, tag="revisits", expects_status=True),
    Operation("revisits.record", "POST", "/revisits/{revisit_id}/record",
              "revisit.record_revisit", _id_body("revisit_id"),
              "Record a revisit's outcome (unsatisfied reopens the complaint)", _REVISIT,
              body=revisit.RecordRevisit, tag="revisits", expects_status=True),
    Operation("revisits.reply", "POST", "/revisits/{revisit_id}/reply",
              "revisit.record_reply", _id_body("revisit_id"), "Give the reply promised",
              _REVISIT, body=revisit.RecordReply, tag="revisits"),
    # follow-ups of unsatisfied revisits 「向相关部门反馈…一个月内向业主反馈」
    Operation("followups.list", "GET", "/followups", "revisit.list_followups", _filters,
              "Follow-ups of unsatisfied revisits, the answer due soonest first",
              _DEPARTMENT_WORK,
              query=revisit.FollowupFilters, paged=True, tag="revisits", result="page"),
    Operation("followups.get", "GET", "/followups/{followup_id}", "revisit.get_followup",
              _id("followup_id"), "A follow-up with the owner's words, measures and answer",
              _FOLLOWUP, tag="revisits"),
    Operation("followups.measures", "POST", "/followups/{followup_id}/measures",
              "revisit.record_followup_measures", _id_body("followup_id"),
              "Record improvement measures and who carries them out", _FOLLOWUP,
              body=revisit.RecordFollowupMeasures, tag="revisits", expects_status=True),
    Operation("followups.answer", "POST", "/followups/{followup_id}/answer",
              "revisit.answer_followup", _id_body("followup_id"),
              "Record the answer given to the owner (the owner is told)", _FOLLOWUP,
              body=revisit.AnswerFollowup, tag="revisits", expects_status=True),
    Operation("revisits.close_sampling_month", "POST",
              "/estates/{estate_id}/sampling/{month}/close", "revisit.close_sampling_month",
              lambda c: (c.path["estate_id"], c.path["month"]),
              "Close a month of work-order sampling (tops up the shortfall)", InPath(),
              params=revisit.CloseSamplingMonth, tag="revisits"),
    Operation("revisits.plan_routine", "POST", "/estates/{estate_id}/routine-plans/{year}",
              "revisit.plan_routine_revisits",
              lambda c: (c.path["estate_id"], _year(c.path["year"])),
              "Plan the year's routine revisits of every occupied household", InPath(),
              params=revisit.PlanRoutineRevisits, tag="revisits"),
    Operation("revisits.monthly_plan", "GET", "/revisits/plans/{estate_id}/{month}",
              "revisit.monthly_revisit_plan", lambda c: (c.path["estate_id"], c.path["month"]),
              "The month's revisit plan: routine, complaint and work-order visits", InPath(),
              params=revisit.MonthlyRevisitPlan, tag="revisits"),
    Operation("revisits.monthly_plan_export", "GET",
              "/revisits/plans/{estate_id}/{month}/export", "revisit.export_monthly_plan",
              lambda c: (c.path["estate_id"], c.path["month"]),
              "The month's revisit plan as a workbook (.xlsx)", InPath(),
              params=revisit.MonthlyRevisitPlan, tag="revisits", download=XLSX,
              result="file", permission="revisits.monthly_plan"),
    Operation("revisits.policy", "GET", "/estates/{estate_id}/revisit-policy",
              "revisit.get_policy", lambda c: (c.path["estate_id"],),
              "The revisit policy the estate follows", InPath(), tag="revisits"),
    # statistics
    Operation("stats.complaints", "GET", "/stats/complaints", "intake.complaint_stats",
              lambda c: (c.query.get("estate_id"), c.query.get("period")),
              "Complaint figures of an estate, of the group without estate_id (by company or "
              "region with group_by), or the rows of several estates with estate_ids (their "
              "total and groups)", Figures("intake.group_complaint_stats", several=True),
              query=ComplaintStatsQuery,
              tag="statistics", permission="stats.estate"),
    Operation("stats.revisits", "GET", "/stats/revisits", "revisit.revisit_stats",
              lambda c: (c.query.get("estate_id"), c.query.get("period")),
              "Revisit figures of an estate, of the group without estate_id (by company or "
              "region with group_by), or the rows of several estates with estate_ids (and "
              "their groups)", Figures(several=True),
              query=RevisitStatsQuery, tag="statistics", permission="stats.estate"),
    # surveys
    Operation("survey.templates.list", "GET", "/survey/templates", "survey.list_templates",
              lambda c: (), "Questionnaire templates (latest versions)", Unscoped(),
              tag="surveys", result="list"),
    Operation("survey.templates.get", "GET", "/survey/templates/{template_id}",
              "survey.get_template",
              lambda c: (c.path["template_id"], c.query.get("version")),
              "A template, its latest or a given version", Unscoped(),
              query=TemplateVersionQuery, tag="surveys"),
    Operation("survey.templates.save", "POST", "/survey/templates", "survey.save_template",
              lambda c: (c.body,), "Save a template's next version", Unscoped(),
              body=survey.SaveTemplate, status=201, tag="surveys"),
    Operation("survey.rounds.create", "POST", "/survey/rounds", "survey.create_round",
              lambda c: (c.body,), "Open a survey round in one or many estates",
              InBody("estate_ids"), body=survey.CreateRound, status=201, tag="surveys"),
    Operation("survey.rounds.list", "GET", "/survey/rounds", "survey.list_rounds", _filters,
              "Survey rounds, newest first", Listing(), query=survey.RoundFilters,
              paged=True, tag="surveys", result="page"),
    Operation("survey.rounds.get", "GET", "/survey/rounds/{round_id}", "survey.get_round",
              _id("round_id"), "A survey round", _ROUND, tag="surveys"),
    Operation("survey.rounds.close", "POST", "/survey/rounds/{round_id}/close",
              "survey.close_round", _id("round_id"), "Close a round", _ROUND, tag="surveys",
              expects_status=True),
    Operation("survey.rounds.publish", "POST", "/survey/rounds/{round_id}/publish",
              "survey.publish_report", _id_body("round_id"),
              "Publish the results to the owners", _ROUND, body=survey.PublishReport,
              tag="surveys"),
    Operation("survey.rounds.report", "GET", "/survey/rounds/{round_id}/report",
              "survey.round_report", _round_part,
              "The report: response and satisfaction rates, scores, opinions — of the "
              "user's estates of the round (or of ?estate_id=)", _ROUND_MINE,
              query=EstateQuery, tag="surveys"),
    Operation("survey.rounds.ranking", "GET", "/survey/rounds/{round_id}/ranking",
              "survey.estate_ranking", lambda c: (c.path["round_id"], c.estates),
              "The user's estates of the round ranked by satisfaction", _ROUND_MINE,
              tag="surveys"),
    Operation("survey.rounds.export", "GET", "/survey/rounds/{round_id}/export",
              "survey.export_report", _round_part,
              "The notice-board workbook (.xlsx) of the user's estates (or of ?estate_id=)",
              _ROUND_MINE, query=EstateQuery, tag="surveys", download=XLSX, result="file"),
    Operation("survey.rounds.check", "POST", "/survey/rounds/{round_id}/check",
              "survey.check_statistics", _id_body("round_id"),
              "Recount a round's statistics from the raw answers", _ROUND,
              body=survey.CheckStatistics, tag="surveys"),
    Operation("survey.invitations.list", "GET", "/survey/rounds/{round_id}/invitations",
              "survey.list_invitations", lambda c: (c.path["round_id"], None, c.query),
              "A round's invitations (for paper questionnaires)", _ROUND_PART,
              query=survey.InvitationFilters, paged=True, tag="surveys", result="page"),
    Operation("survey.rectifications.add", "POST", "/survey/rounds/{round_id}/rectifications",
              "survey.add_rectification", _id_body("round_id"),
              "Add a rectification with its department and deadline", InBody(),
              body=survey.AddRectification, status=201, tag="surveys"),
    Operation("survey.rectifications.list", "GET", "/survey/rectifications",
              "survey.list_rectifications", _filters, "Rectifications", _DEPARTMENT_WORK,
              query=survey.RectificationFilters, paged=True, tag="surveys", result="page"),
    Operation("survey.rectifications.get", "GET", "/survey/rectifications/{rectification_id}",
              "survey.get_rectification", _id("rectification_id"), "A rectification",
              _RECTIFICATION, tag="surveys"),
    Operation("survey.rectifications.update", "PATCH",
              "/survey/rectifications/{rectification_id}",
              "survey.update_rectification", _id_body("rectification_id"),
              "Move a rectification on (in progress, done)", _RECTIFICATION,
              body=survey.UpdateRectification, tag="surveys", expects_status=True),
    # notices
    Operation("notify.deliveries.list", "GET", "/notify/deliveries", "notify.list_deliveries",
              _filters, "The delivery log, newest first (addresses masked)", Listing(),
              query=notify.DeliveryFilters, paged=True, tag="notices", result="page"),
    Operation("notify.preferences.set", "PUT", "/households/{household_id}/preferences",
              "notify.set_preferences", _id_body("household_id"),
              "A household's channels, quiet hours and opt-out",
              OfRecord("intake.get_household", "household_id"), body=notify.Preferences,
              tag="notices"),
)


def _year(text: str) -> Any:
    """A year of the path as a number; anything else as text (the service says what is wrong)."""
    return int(text) if INTEGER.fullmatch(text) else text


ROUTES = Map([Rule(operation.rule, methods=[operation.method], endpoint=operation)
              for operation in OPERATIONS])


def match(method: str, path: str) -> tuple[Operation, dict]:
    """The operation behind ``method`` and ``path`` (under /api/v1), or a problem."""
    adapter = ROUTES.bind("gateway")
    return adapter.match(path, method=method)


# carrying one out --------------------------------------------------------------------

def query_filters(schema: type[Schema] | None, request: Request) -> dict:
    """The query string as the service's filter schema expects it: lists, booleans and
    integers typed; anything else as text (the service says what is wrong with it)."""
    declared = schema().fields if schema else {}
    result = {}
    for key in request.args:
        kind = declared.get(key)
        values = request.args.getlist(key)
        if isinstance(kind, fields.List):
            result[key] = values
            continue
        value = values[-1]
        if isinstance(kind, fields.Boolean) and value in ("true", "false"):
            result[key] = value == "true"
        elif isinstance(kind, fields.Integer) and INTEGER.fullmatch(value):
            result[key] = int(value)
        else:
            result[key] = value
    return result


@dataclass
class Services:
    """The RPC proxies, by service name."""
    proxies: dict = field(default_factory=dict)

    def call(self, target: str, *args, **kwargs):
        service, method = target.split(".")
        return getattr(self.proxies[service], method)(*args, **kwargs)


def execute(operation: Operation, request: Request, path_values: dict, actor: Actor,
            services: Services, body_limit: int) -> Response:
    if not allowed(actor.roles, operation.action):
        raise Problem(403, refusal(actor.roles, operation.action))
    change = change_arguments(operation, request)
    # a body is read only where one is documented; elsewhere it is never used
    call = Call(path=path_values, query=query_filters(operation.query, request),
                body=json_body(request, body_limit) if operation.body is not None else {})
    scope = operation.scope
    if isinstance(scope, Listing):
        return _list(operation, call, actor, services)
    if isinstance(scope, Figures):
        return _figures(operation, call, actor, services)
    if isinstance(scope, InBody):
        _check_new(call.body.get(scope.field), actor)
    elif isinstance(scope, InPath):
        if not actor.covers(call.path[scope.param]):
            raise not_found()
    elif isinstance(scope, OfRecord):
        record = _check_record(operation, scope, call, actor, services)
        if operation.rpc == scope.getter:
            return json_response(record)        # the check read it already
        if scope.mine:
            call = replace(call, estates=_part_of(record, scope, actor))
    try:
        result = services.call(operation.rpc, *operation.args(call), **change,
                               **({"paged": True} if operation.paged else {}))
    except RemoteError as exc:
        raise _key_problem(exc, request) or exc from None
    if operation.download:
        return Response(base64.b64decode(result), mimetype=operation.download, headers={
            "Content-Disposition":
                f'attachment; filename="{"-".join(call.path.values()) or "report"}.xlsx"'})
    if operation.paged:
        result = _visible_page(result, actor, None)
    return json_response(result, operation.status)


def change_arguments(operation: Operation, request: Request) -> dict:
    """The keyword arguments every change carries: ``request_id`` (the client's
    ``Idempotency-Key``, else a fresh one) and, for a state-machine step, the
    ``expected_status`` the client named."""
    if operation.method not in CHANGES:
        return {}
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is not None and not ID_PATTERN.fullmatch(key):
        raise invalid({IDEMPOTENCY_KEY: [
            "1 to 128 letters, digits, '_', '.', ':' or '-', starting with a letter or digit"]})
    arguments = {"request_id": key or uuid.uuid4().hex}
    if operation.expects_status and EXPECTED_STATUS in request.args:
        arguments[EXPECTED_STATUS] = request.args[EXPECTED_STATUS]
    return arguments


def _key_problem(exc: RemoteError, request: Request) -> Problem | None:
    """A key the client reused for another request: the service names ``request_id``, the
    client sent it as ``Idempotency-Key``."""
    if exc.exc_type != "InvalidInput" or IDEMPOTENCY_KEY not in request.headers:
        return None
    try:
        errors = json.loads(exc.value)
    except (TypeError, ValueError):
        return None
    if not isinstance(errors, dict) or "request_id" not in errors:
        return None
    return invalid({IDEMPOTENCY_KEY: errors["request_id"]})


def _check_new(estates, actor: Actor) -> None:
    """Creating in an estate that is not the user's is refused (the service checks the rest)."""
    estates = estates if isinstance(estates, list) else [estates]
    if not actor.group_wide and any(isinstance(estate, str) and not actor.covers(estate)
                                    for estate in estates):
        raise Problem(403, "you may not create records in that estate")


def _check_record(operation: Operation, scope: OfRecord, call: Call, actor: Actor,
                  services: Services) -> dict:
    record = services.call(scope.getter, call.path[scope.param])
    if not _of_department(record, scope.department, actor):
        raise not_found()
    estates = record.get(scope.field)
    estates = estates if isinstance(estates, list) else [estates]
    if actor.group_wide or all(actor.covers(estate) for estate in estates):
        return record
    mine = [estate for estate in estates if actor.covers(estate)]
    if not mine:
        raise not_found()
    if operation.method == "GET" and not scope.by_part:
        return record   # a shared record (a group round) is visible to each of its estates
    if scope.by_part and call.query.get("estate_id") in mine:
        return record
    if scope.mine and call.query.get("estate_id") is None:
        return record   # the user's part of it (``_part_of``)
    if scope.by_part:
        raise Problem(403, "name one of your estates with ?estate_id=")
    raise Problem(403, "this record concerns estates that are not yours")


def _part_of(record: dict, scope: OfRecord, actor: Actor) -> list[str] | None:
    """The estates of a record of several that the user reads: theirs, None when all are."""
    estates = record.get(scope.field) or []
    if actor.group_wide or all(actor.covers(estate) for estate in estates):
        return None
    return [estate for estate in estates if actor.covers(estate)]


def _list(operation: Operation, call: Call, actor: Actor, services: Services) -> Response:
    filters = dict(call.query)
    department = operation.scope.department
    confined = confined_department(actor) if department else None
    if confined is not None:
        if confined == NO_DEPARTMENT:
            return json_response({"items": [], "next_cursor": None})
        filters[department] = confined      # whatever department the query named
    if not actor.group_wide:
        asked = filters.get("estate_ids") or list(actor.estates)
        mine = [estate for estate in asked if actor.covers(estate)]
        wanted = filters.get("estate_id")
        if not mine or (wanted is not None and not actor.covers(wanted)):
            return json_response({"items": [], "next_cursor": None})
        filters["estate_ids"] = mine
    page = services.call(operation.rpc, filters, paged=True)
    return json_response(_visible_page(page, actor, department))


def _visible_page(page: dict, actor: Actor, department: str | None) -> dict:
    """A second guard: nothing of another estate (or department) leaves, whatever the
    service answered."""
    if actor.group_wide and confined_department(actor) is None:
        return page
    return {**page, "items": [item for item in page["items"] if _visible(item, actor)
                              and _of_department(item, department, actor)]}


def _of_department(record: dict, field: str | None, actor: Actor) -> bool:
    """May ``actor`` see ``record``, a department's work named in ``field``? Anyone who is
    not confined to a department may (permissions.confined_department)."""
    confined = confined_department(actor) if field else None
    return confined is None or (confined != NO_DEPARTMENT and record.get(field) == confined)


def _visible(item: dict, actor: Actor) -> bool:
    if "estate_ids" in item:
        return any(actor.covers(estate) for estate in item["estate_ids"])
    return actor.covers(item.get("estate_id"))


def _figures(operation: Operation, call: Call, actor: Actor, services: Services) -> Response:
    estate_id = call.query.get("estate_id")
    grouping = {"group_by": call.query["group_by"]} if "group_by" in call.query else {}
    if operation.scope.several and "estate_ids" in call.query:
        return _estates_figures(operation, call, actor, services, call.query["estate_ids"])
    if estate_id is None:
        if (operation.scope.several and grouping and actor.estates and not actor.group_wide
                and allowed(actor.roles, "stats.group")):
            # a headquarters role over some estates (a region's): groups made of theirs
            return _estates_figures(operation, call, actor, services, list(actor.estates))
        if not allowed(actor.roles, "stats.group") or not actor.group_wide:
            raise Problem(403, "the group's figures need a headquarters role; "
                               "name your estate with ?estate_id=")
        group_rpc = operation.scope.group_rpc
        rows = {"per_estate": call.query["per_estate"]} if "per_estate" in call.query else {}
        if group_rpc:
            return json_response(services.call(group_rpc, call.query.get("period"),
                                               **grouping, **rows))
        return json_response(services.call(operation.rpc, *operation.args(call),
                                           **grouping, **rows))
    elif not actor.covers(estate_id):
        raise not_found()
    return json_response(services.call(operation.rpc, *operation.args(call)))


def _estates_figures(operation: Operation, call: Call, actor: Actor, services: Services,
                     asked: list[str]) -> Response:
    """Several estates' rows in one call (``?estate_ids=``, or the user's own estates for
    their groups): each estate must be the user's, as ``estate_id`` must; with
    ``group_by``, groups made of those estates alone. A second guard keeps any other row,
    and any group with another estate in it, from leaving."""
    if not all(actor.covers(estate) for estate in asked):
        raise not_found()
    grouping = {"group_by": call.query["group_by"]} if "group_by" in call.query else {}
    group_rpc = operation.scope.group_rpc     # where there is one, it takes estate_ids
    target, args = ((group_rpc, (call.query.get("period"),)) if group_rpc
                    else (operation.rpc, operation.args(call)))
    answer = services.call(target, *args, estate_ids=asked, **grouping)
    answer["estates"] = {estate: row for estate, row in answer["estates"].items()
                         if actor.covers(estate)}
    if "groups" in answer:
        answer["groups"] = {key: group for key, group in answer["groups"].items()
                            if all(actor.covers(estate) for estate in group["estate_ids"])}
    return json_response(answer)
