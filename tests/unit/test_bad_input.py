"""No input can poison a record: every RPC of docs/rpc.md (the four services' public ones),
given input that is wrong in one place — a wrong type, a field missing or one too many, a
``$`` key, a control character or a lone surrogate, a huge string, free text that says
nothing (empty or whitespace-only), a time outside
2000–2099, a number out of range, an id of nothing — answers ``InvalidInput`` (``NotFound``
for the id of nothing an RPC is about) and writes nothing: every document of every store
is the same before and after. No other exception gets out.

The services run as service tests build them (``tests/world.py``: ``worker_factory``, the
embedded store, intake reached as over RPC). ``ping``, ``list_templates`` and
``list_estate_ids`` take no input here; over the broker any argument to them is refused
like every call that does not fit its method
(``tests/integration/test_rpc_malformed_requests.py``).
"""
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, fields, validate

from shared.errors import InvalidInput, NotFound
from shared.paging import Cursor
from shared.schemas import intake, notify, revisit, survey
from tests import world as world_module
from tests.world import GATEWAY, NOBODY, NOTIFY, NOW

# 200 bad inputs per RPC, four to a hypothesis example: its engine costs more than a call
INPUTS, BATCH = 200, 4

# -- bad values ---------------------------------------------------------------------------

# C0 controls (tab, newline and CR are text), DEL, and lone surrogates
BAD_CHARACTERS = ["\x00", "\x01", "\x07", "\x08", "\x0b", "\x1b", "\x1f", "\x7f",
                  "\ud800", "\udbff", "\udc00", "\udfff"]
bad_text = st.builds(lambda before, bad, after: before + bad + after,
                     st.text(max_size=6), st.sampled_from(BAD_CHARACTERS), st.text(max_size=6))
huge_text = st.builds(lambda size, char: char * size,
                      st.integers(2_001, 100_000), st.sampled_from(["x", "好", "1", " a"]))
operators = st.sampled_from([{"$ne": None}, {"$gt": ""}, {"$where": "sleep(100)"},
                             {"a": {"$regex": ".*"}}, {"$in": ["e-1"]}])
# bad in any field: load refuses them wherever they are
ANYWHERE = st.one_of(operators, bad_text, st.lists(bad_text, min_size=1, max_size=2),
                     st.builds(lambda key, value: {key: value}, bad_text, st.just(1)))
WRONG_FOR_TEXT = st.sampled_from([12, 1.5, True, [], ["x"], {"a": 1}])
BLANK_TEXT = st.sampled_from(["", " ", "\t\n ", "\u3000\u3000"])
BAD_TIMES = st.sampled_from([
    "0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00", "1999-12-31T23:59:59+00:00",
    "2100-01-01T00:00:00+00:00", "2026-11-23T10:00:00", "2026-02-30T10:00:00+08:00",
    "tomorrow", "", 1764000000, True, [], {"$date": 1}])
unknown_id = st.from_regex(r"zz-[a-z0-9]{1,12}", fullmatch=True)
unknown_token = st.from_regex(r"[A-Za-z0-9_\-]{16,40}", fullmatch=True)
# a bare id or token argument that is no id at all
BAD_ID = st.one_of(ANYWHERE, WRONG_FOR_TEXT, huge_text, st.sampled_from(
    ["", " ", "a b", "e-1\n", "e-1 ", "-e1", "ｅ-1", "e/1", "x" * 129, None]))


def _range(field):
    return next((rule for rule in field.validators if isinstance(rule, validate.Range)), None)


def bad_for(field: fields.Field, base: Any = None) -> st.SearchStrategy:
    """Values ``field`` must refuse (``base``: its value in the valid input, if any)."""
    options = [ANYWHERE]
    if isinstance(field, fields.Nested):
        options.append(st.sampled_from(["x", 12, [1], True]))
        if isinstance(base, dict):
            options.append(body(field.schema, base))
    elif isinstance(field, fields.List):
        options.append(st.sampled_from(["x", 12, {"a": 1}, True]))
        options.append(bad_for(field.inner).map(lambda value: [value]))
    elif isinstance(field, fields.Dict):
        options.append(st.sampled_from(["x", 12, [1], True, {"not a key!": "x"}]))
    elif isinstance(field, fields.Boolean):
        options.append(st.sampled_from(["maybe", [], 2.5, {"a": 1}, "x"]))
    elif isinstance(field, (fields.Integer, fields.Float)):
        options.append(st.sampled_from(["x", True, [], {"a": 1}]
                                       + (["1"] if isinstance(field, fields.Integer) else [])))
        rule = _range(field)
        if rule is not None and rule.max is not None:
            options.append(st.integers(int(rule.max) + 1, 10**30))
        if rule is not None and rule.min is not None:
            options.append(st.integers(-10**30, int(rule.min) - 1))
    elif isinstance(field, fields.AwareDateTime):
        options.append(BAD_TIMES)
    elif isinstance(field, fields.String) and not isinstance(field, Cursor):
        options += [WRONG_FOR_TEXT, huge_text]
        if any(isinstance(rule, validate.Predicate) and rule.method == "strip"
               for rule in field.validators):          # free text (Text): it says nothing
            options.append(BLANK_TEXT)
    elif isinstance(field, Cursor):
        options += [WRONG_FOR_TEXT, st.sampled_from(["garbage!", "W10", "eyJ4IjoxfQ"])]
    else:                                      # fields.Field, fields.Raw: typed in code
        options.append(st.sampled_from([[1], {"a": 1}, 1.5]))
    return st.one_of(options)


def body(schema: Schema, base: dict, refs=()) -> st.SearchStrategy:
    """``base`` (valid for ``schema``) made wrong in one place."""
    def put(name):
        return lambda value: {**base, name: value}

    options = [st.sampled_from(["x", 12, [], [base], True, "\ud800"])]   # not an object
    for name, field in schema.fields.items():
        options.append(bad_for(field, base.get(name)).map(put(name)))
        if field.required:
            options.append(st.just({key: value for key, value in base.items() if key != name}))
    for name in refs:                                 # names a record that does not exist
        nobody = unknown_id.map(lambda ident: [ident]) \
            if isinstance(schema.fields[name], fields.List) else unknown_id
        options.append(nobody.map(put(name)))
    options.append(st.from_regex(r"[a-z_]{1,16}", fullmatch=True)
                   .filter(lambda key: key not in schema.fields).map(lambda key: {**base, key: 1}))
    options.append(st.sampled_from(["$where", "a.$b", "$set"]).map(lambda key: {**base, key: 1}))
    return st.one_of(options)


# -- the RPCs ---------------------------------------------------------------------------------

@dataclass
class Arg:
    """One argument of an RPC call: its valid value and how to make it bad.

    ``kind``: ``id`` (a record the RPC is about: an unknown one is NotFound), ``new-id``
    (may name a new record), ``token``, ``body`` (``schema``; ``refs``: fields naming other
    records), ``rows``, ``paged``, ``period``, ``month``, ``year``, ``version``,
    ``round-estate`` (an estate of the round: an unknown one is InvalidInput), ``ids`` (a
    bounded list of ids; unknown ones are answered as missing, not refused).
    ``optional``: None is a valid value."""
    kind: str
    value: Any
    schema: Any = None
    refs: tuple = ()
    optional: bool = False
    most: int = intake.MAX_CONTACT_REFS   # ``ids``: how many one call takes


def arg_strategy(arg: Arg):
    """(bad value, the error it must raise) for one argument."""
    def refused(strategy, error=InvalidInput):
        return strategy.map(lambda value: (value, error))

    bad_id = BAD_ID.filter(lambda value: value is not None) if arg.optional else BAD_ID
    if arg.kind in ("id", "new-id", "round-estate", "token"):
        options = [refused(bad_id)]
        if arg.kind == "id":
            options.append(refused(unknown_id, NotFound))
        elif arg.kind == "round-estate":
            options.append(refused(unknown_id))
        elif arg.kind == "token":
            options.append(refused(unknown_token))
        return st.one_of(options)
    if arg.kind == "body":
        return refused(body(arg.schema, arg.value, arg.refs))
    if arg.kind == "rows":
        row = arg.value[0]
        return refused(st.one_of(
            st.sampled_from(["x", 12, {"a": 1}, True, None, [None], ["x"]]),
            body(intake.HouseholdRow(), row).map(lambda bad: [row, bad] if isinstance(bad, dict)
                                                 else [bad]),
            st.just([row, row])))                                  # a household twice
    if arg.kind == "ids":
        shapes = ["h-1", 12, {"$in": ["h-1"]}, True, None, [], [None], ["h-1"] * (arg.most + 1)]
        return refused(st.one_of(
            st.sampled_from([shape for shape in shapes if shape is not None or not arg.optional]),
            bad_id.map(lambda bad: [*arg.value, bad])))
    if arg.kind in ("paged", "flag"):
        return refused(st.sampled_from(["yes", 1, 0, None, [], {"$ne": 1}, "\ud800"]))
    if arg.kind in ("period", "month"):
        shapes = ["2026-13", "2026-00", "26", "1899", "2100", "2026-1", "2026-Q5", "2026-H3",
                  "2026-11-01", "２０２６", "2026\n", "2026-11\n"]
        if arg.kind == "month":
            shapes += ["2026", "2026-Q1", "1899-12", "2100-01"]
        return refused(st.one_of(st.sampled_from(shapes), bad_id))
    if arg.kind == "year":
        return refused(st.one_of(st.sampled_from(["2026", 2026.5, True, None, [], {"$gt": 1}]),
                                 st.integers(2101, 10**30), st.integers(-10**30, 1999)))
    if arg.kind == "version":
        return refused(st.one_of(st.sampled_from([0, -1, "1", True, 1.5, [], {"$gt": 0}]),
                                 st.integers(2**31, 10**30), st.integers(-10**30, 0)))
    raise AssertionError(arg.kind)


@dataclass
class Call:
    service: str
    method: str
    args: tuple
    caller: Any = NOBODY


def tomorrow(hour):
    """``hour`` local (Shanghai) time tomorrow, as the input gives a time."""
    return (NOW + timedelta(days=1)).replace(hour=hour - 8, minute=0).isoformat()


def calls(world):
    ids = world.ids
    paged = Arg("paged", False)
    estate = Arg("id", "e-1")
    # a person's estates of a round: its estates only, each once
    round_part = Arg("ids", ["e-1"], most=survey.MAX_ROUND_PART, optional=True)
    categories = ("cleaning", "greening", "repair_service")
    settings_ = world.notify.settings
    templates = settings_.templates(None, settings_.estate(None).locale)
    send_schema = notify.SendNotification(
        known_channels=settings_.all_channel_names(),
        templates={name: template.params for name, template in templates.items()})
    preferences = notify.Preferences(known_channels=settings_.all_channel_names(),
                                     known_locales=settings_.locales())
    row = {"household_id": "h-9", "building": "9", "unit": "1", "room": "101",
           "occupied": True, "contacts": [{"name": "周明", "phone": "13600001111"}]}
    complaint = dict(world_module.COMPLAINT)
    online = {"estate_id": "e-1", "category": "noise", "content": "夜间施工",
              "reporter": {"name": "路人", "phone": "13700001111"}}
    answer = {"answers": {"cleaning": 4}, "comments": {"general": "好"}}
    rectification = {"estate_id": "e-1", "category": "cleaning", "action": "加派保洁",
                     "department": "环境部", "due_at": (NOW + timedelta(days=9)).isoformat()}

    def data(schema, value, *refs):
        return Arg("body", value, schema, refs)

    def filters(schema, value=None):
        return Arg("body", value or {}, schema)

    return [
        # intake
        Call("intake", "import_households", (Arg("new-id", "e-1"), Arg("rows", [row]))),
        Call("intake", "list_households", (estate, filters(intake.HouseholdFilters()), paged)),
        Call("intake", "get_estate", (estate,)),
        Call("intake", "register_estate", (data(intake.RegisterEstate(), {
            "estate_id": "e-new", "name": "新城花园", "company": "华东物业"}),)),
        Call("intake", "update_estate", (estate, data(intake.UpdateEstate(), {
            "name": "阳光花园", "region": "杭州片区"}))),
        Call("intake", "list_estates", (filters(intake.EstateFilters()), paged)),
        Call("intake", "migrate_estates", (Arg("version", 1000),)),
        Call("intake", "get_household", (Arg("id", "h-1"),)),
        Call("intake", "set_key_customer", (Arg("id", "h-1"), Arg("flag", True))),
        Call("intake", "get_contact", (Arg("id", ids["registered"]),), NOTIFY),
        Call("intake", "get_contacts", (Arg("ids", [ids["registered"], "h-1"]),), NOTIFY),
        Call("intake", "estates_with_households", (
            Arg("ids", ["e-1", "e-2"], most=intake.MAX_ESTATES_CHECKED),
            data(intake.HouseholdsThatCount(), {"occupied": True}))),
        Call("intake", "list_categories", (Arg("id", "e-1", optional=True),)),
        Call("intake", "list_departments", (
            Arg("ids", ["e-1", "e-2"], most=intake.MAX_ESTATES_CHECKED, optional=True),)),
        Call("intake", "register_complaint", (data(intake.RegisterComplaint(), complaint,
                                                   "estate_id", "household_id"),)),
        Call("intake", "acknowledge_complaint", (Arg("id", ids["registered"]), data(
            intake.AcknowledgeComplaint(), {"staff_id": "s-1", "note": "已致歉"}))),
        Call("intake", "assign_complaint", (Arg("id", ids["acknowledged"]), data(
            intake.AssignComplaint(), {"department": "秩序部", "assignee_id": "s-7"}))),
        Call("intake", "resolve_complaint", (Arg("id", ids["assigned"]), data(
            intake.ResolveComplaint(), {"staff_id": "s-7", "resolution": "已劝导"}))),
        Call("intake", "close_complaint", (Arg("id", ids["resolved"]), data(
            intake.CloseComplaint(), {"closed_by": "s-1", "owner_signoff": "satisfied"}))),
        Call("intake", "reopen_complaint", (Arg("id", ids["closed"]), data(
            intake.ReopenComplaint(), {"reason": "仍有噪音", "source": "owner"}))),
        Call("intake", "request_review", (Arg("id", ids["closed"]), data(
            intake.RequestReview(), {"reason": "不认可", "staff_id": "s-1"}))),
        Call("intake", "decide_review", (Arg("id", ids["under_review"]), data(
            intake.DecideReview(), {"reviewer_id": "s-9", "outcome": "upheld",
                                    "finding": "处理得当"}))),
        Call("intake", "escalate_complaint", (Arg("id", ids["registered"]), data(
            intake.EscalateComplaint(), {"staff_id": "s-1", "reason": "超出权限"}))),
        Call("intake", "record_special_measures", (Arg("id", ids["repeat"]), data(
            intake.RecordSpecialMeasures(), {"staff_id": "s-1", "measures": "专人跟进"}))),
        Call("intake", "update_external_status", (Arg("id", ids["referred"]), data(
            intake.UpdateExternalStatus(), {"staff_id": "s-1", "status": "in_progress",
                                            "note": "已报修"}))),
        Call("intake", "flag_malicious", (Arg("id", ids["registered"]), data(
            intake.FlagMalicious(), {"flagged_by": "s-9", "role": "supervisor",
                                     "reason": "恶意"}))),
        Call("intake", "record_instruction", (Arg("id", ids["escalated"]), data(
            intake.RecordInstruction(), {"staff_id": "m-1", "role": "manager",
                                         "instruction": "先行垫付维修"}))),
        Call("intake", "get_complaint", (Arg("id", ids["registered"]),)),
        Call("intake", "list_complaints", (filters(intake.ComplaintFilters(),
                                                   {"estate_id": "e-1"}), paged)),
        Call("intake", "complaint_stats", (estate, Arg("period", "2026-11"))),
        Call("intake", "group_complaint_stats", (Arg("period", "2026-11"),)),
        Call("intake", "check_statistics", (data(intake.CheckStatistics(),
                                                 {"repair": False}),)),
        Call("intake", "register_work_order", (data(
            intake.RegisterWorkOrder(), dict(world_module.ORDER), "estate_id", "household_id",
            "complaint_id"),)),
        Call("intake", "complete_work_order", (Arg("id", ids["work_order"]), data(
            intake.CompleteWorkOrder(), {"staff_id": "s-2"}))),
        Call("intake", "cancel_work_order", (Arg("id", ids["work_order"]), data(
            intake.CancelWorkOrder(), {"staff_id": "s-2", "reason": "重复登记"}))),
        Call("intake", "get_work_order", (Arg("id", ids["work_order"]),)),
        Call("intake", "list_work_orders", (filters(intake.WorkOrderFilters(),
                                                    {"estate_id": "e-1"}), paged)),
        Call("intake", "owner_view", (Arg("token", ids["owner_token"]),), GATEWAY),
        Call("intake", "owner_request_review", (Arg("token", ids["owner_token"]), data(
            intake.OwnerReviewRequest(), {"reason": "不满意"})), GATEWAY),
        Call("intake", "register_online_complaint", (data(
            intake.RegisterOnlineComplaint(), online, "estate_id"),), GATEWAY),
        # revisit
        Call("revisit", "list_revisits", (filters(revisit.RevisitFilters(),
                                                  {"estate_id": "e-1"}), paged)),
        Call("revisit", "get_revisit", (Arg("id", ids["revisit"]),)),
        Call("revisit", "book_appointment", (Arg("id", ids["revisit"]), data(
            revisit.BookAppointment(), {"at": tomorrow(10), "owner_consent": True}))),
        Call("revisit", "record_revisit", (Arg("id", ids["revisit"]), data(
            revisit.RecordRevisit(), {"visitor_id": "s-1", "method": "phone", "reached": True,
                                      "satisfaction": "satisfied", "resolved": True}))),
        Call("revisit", "record_reply", (Arg("id", ids["revisit"]), data(
            revisit.RecordReply(), {"staff_id": "s-1", "reply": "已答复"}))),
        Call("revisit", "list_followups", (filters(revisit.FollowupFilters(),
                                                   {"estate_id": "e-1"}), paged)),
        Call("revisit", "get_followup", (Arg("id", ids["followup"]),)),
        Call("revisit", "record_followup_measures", (Arg("id", ids["followup"]), data(
            revisit.RecordFollowupMeasures(), {"staff_id": "s-2", "measures": "更换线路",
                                               "responsible": "王工"}))),
        Call("revisit", "answer_followup", (Arg("id", ids["followup"]), data(
            revisit.AnswerFollowup(), {"staff_id": "s-2", "answer": "已更换灯座"}))),
        Call("revisit", "online_revisit", (Arg("token", ids["online_token"]),)),
        Call("revisit", "record_online_revisit", (Arg("token", ids["online_token"]), data(
            revisit.OnlineAnswer(), {"satisfaction": "satisfied", "resolved": True}))),
        Call("revisit", "close_sampling_month", (estate, Arg("month", "2026-10"))),
        Call("revisit", "plan_routine_revisits", (estate, Arg("year", 2026))),
        Call("revisit", "monthly_revisit_plan", (estate, Arg("month", "2026-11"))),
        Call("revisit", "export_monthly_plan", (estate, Arg("month", "2026-11"))),
        Call("revisit", "revisit_stats", (Arg("id", "e-1", optional=True),
                                          Arg("period", "2026-11"))),
        Call("revisit", "check_statistics", (data(revisit.CheckStatistics(),
                                                  {"repair": False}),)),
        Call("revisit", "get_policy", (estate,)),
        # survey
        Call("survey", "save_template", (data(survey.SaveTemplate(), {
            "template_id": "tpl-2", "title": "专项调查", "categories": ["cleaning"]}),)),
        Call("survey", "get_template", (Arg("id", ids["template"]), Arg("version", 1))),
        Call("survey", "create_round", (data(survey.CreateRound(), {
            "title": "专项调查", "estate_ids": ["e-1"], "opens_at": tomorrow(9),
            "closes_at": (NOW + timedelta(days=20)).isoformat(), "template_id": "tpl-1"},
            "estate_ids", "template_id"),)),
        Call("survey", "get_round", (Arg("id", ids["round"]),)),
        Call("survey", "list_rounds", (filters(survey.RoundFilters()), paged)),
        Call("survey", "list_invitations", (Arg("id", ids["round"]),
                                            Arg("round-estate", "e-1", optional=True),
                                            filters(survey.InvitationFilters()), paged)),
        Call("survey", "get_questionnaire", (Arg("token", ids["survey_token"]),)),
        Call("survey", "save_draft", (Arg("token", ids["survey_token"]),
                                      data(survey.DraftResponse(categories), answer))),
        Call("survey", "submit_response", (Arg("token", ids["survey_token"]),
                                           data(survey.SubmitResponse(categories), answer))),
        Call("survey", "close_round", (Arg("id", ids["round"]),)),
        Call("survey", "round_report", (Arg("id", ids["closed_round"]),
                                        Arg("round-estate", "e-1", optional=True),
                                        round_part)),
        Call("survey", "estate_ranking", (Arg("id", ids["closed_round"]), round_part)),
        Call("survey", "check_statistics", (Arg("id", ids["closed_round"]), data(
            survey.CheckStatistics(), {"repair": False}))),
        Call("survey", "add_rectification", (Arg("id", ids["closed_round"]), data(
            survey.AddRectification(), rectification, "estate_id"))),
        Call("survey", "get_rectification", (Arg("id", ids["rectification"]),)),
        Call("survey", "update_rectification", (Arg("id", ids["rectification"]), data(
            survey.UpdateRectification(), {"status": "in_progress", "note": "进行中"}))),
        Call("survey", "list_rectifications", (filters(survey.RectificationFilters(), {
            "round_id": ids["closed_round"]}), paged)),
        Call("survey", "publish_report", (Arg("id", ids["closed_round"]), data(
            survey.PublishReport(), {"note": "公示", "estate_ids": ["e-1"]}, "estate_ids"))),
        Call("survey", "export_report", (Arg("id", ids["closed_round"]),
                                         Arg("round-estate", "e-1", optional=True),
                                         round_part)),
        # notify
        Call("notify", "send", (data(send_schema, {
            "channel": "console", "to": "h-1", "template": "complaint_received",
            "params": {"complaint_id": "cmp-9", "reply_due": "2026-11-25 10:00"},
            "ref": "cmp-9", "estate_id": "e-1"}, "to", "estate_id"),)),
        Call("notify", "list_deliveries", (filters(notify.DeliveryFilters()), paged)),
        Call("notify", "set_preferences", (Arg("id", "h-1"), data(preferences,
                                                                   {"opt_out": True}))),
    ]


# -- the suite --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def world():
    return world_module.build()


@pytest.fixture(scope="module")
def rpcs(world):
    return {f"{call.service}.{call.method}": call for call in calls(world)}


def documented_rpcs():
    from tests.unit.test_contract_docs import documented_rpcs as documented
    return sorted(f"{service}.{name}" for service, names in documented().items()
                  for name in names if name not in ("ping", "list_templates",
                                                     "list_estate_ids"))


def test_every_rpc_of_the_reference_is_in_the_suite(rpcs):
    assert sorted(rpcs) == documented_rpcs()


def bad_calls(call):
    """The call wrong in one argument: (args, the error it must raise)."""
    def with_bad(position):
        def build(bad):
            value, error = bad
            args = [arg.value for arg in call.args]
            args[position] = value
            return args, error
        return arg_strategy(call.args[position]).map(build)
    return st.one_of([with_bad(position) for position in range(len(call.args))])


@pytest.mark.parametrize("name", documented_rpcs())
def test_bad_input_is_refused_and_writes_nothing(world, rpcs, name):
    call = rpcs[name]
    service = world.services[call.service]
    method = getattr(service, call.method)
    tried = []
    state = [world.snapshot()]    # each input leaves it as it found it: one snapshot each

    @settings(max_examples=INPUTS // BATCH, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.lists(bad_calls(call), min_size=BATCH, max_size=BATCH))
    def refused(batch):
        for args, error in batch:
            tried.append(args)
            before = state[0]
            service.caller = call.caller
            try:
                method(*args)
            except (InvalidInput, NotFound) as raised:
                assert isinstance(raised, error), f"{name}{tuple(args)!r}: {raised!r}"
            else:
                raise AssertionError(f"{name}{tuple(args)!r} was accepted")
            finally:
                service.caller = NOBODY
            state[0] = world.snapshot()
            assert world.same(before, state[0]), f"{name}{tuple(args)!r} wrote something"

    refused()
    assert len(tried) >= INPUTS
