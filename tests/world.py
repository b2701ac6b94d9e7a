"""The four services as service tests build them (``worker_factory``, the embedded store, a
frozen clock), wired to each other as RPC wires them — intake's errors reach its callers as
nameko's ``RemoteError`` — with a little of everything in them: estates and households,
complaints in every state, work orders, revisits, survey rounds, a delivery. Events stay in
the outboxes (nothing publishes), and the tests hand them on to their handlers themselves.

``tests/unit/test_bad_input.py`` throws bad input at every RPC of it; ``test_event_pii.py``
feeds phone numbers and e-mail addresses through it into events.
"""
import json
import pickle
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import mongomock
from nameko.exceptions import RemoteError
from nameko.testing.services import worker_factory

from services.intake.dependencies import contact_callers
from services.intake.policy import Policies
from services.intake.repository import IntakeRepository
from services.intake.service import IntakeService
from services.notify.repository import NotifyRepository
from services.notify.service import NotifyService
from services.notify.settings import NotifySettings
from services.revisit.policies import PolicyBook
from services.revisit.repository import RevisitRepository
from services.revisit.service import RevisitService
from services.survey.repository import SurveyRepository
from services.survey.rounds import SurveyPolicies
from services.survey.service import SurveyService
from shared.actor import Caller
from shared.clock import FrozenClock
from shared.config import load_config
from shared.envelope import parse_event
from shared.errors import HuifangError
from shared.estates import EstateCopies
from tests.helpers import embedded, handle_one, prepared

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)     # Monday 10:00 in Shanghai
NOBODY = Caller(None, None)
# who each guarded RPC answers: the owner's pages are the gateway's, full contacts notify's
GATEWAY, NOTIFY = Caller(None, "gateway"), Caller(None, "notify")

HOUSEHOLDS = [
    {"household_id": "h-1", "building": "3", "unit": "1", "room": "502", "occupied": True,
     "contacts": [{"name": "王芳", "phone": "13812345678", "email": "wf@example.com"}]},
    {"household_id": "h-2", "building": "3", "unit": "1", "room": "602", "occupied": True,
     "contacts": [{"name": "李雷", "phone": "13912345678"}]},
    {"household_id": "h-3", "building": "5", "unit": "2", "room": "101", "occupied": False},
]
COMPLAINT = {"estate_id": "e-1", "household_id": "h-1", "channel": "hotline",
             "category": "noise", "severity": "normal", "content": "楼上装修到晚上十点"}
ORDER = {"estate_id": "e-1", "household_id": "h-2", "kind": "repair", "content": "卫生间灯不亮"}


class RemoteService:
    """A service as another reaches it over RPC: JSON in and out, its ``HuifangError``s as
    ``RemoteError`` (what ``shared.rpc.not_found_as`` and friends see), called as ``caller``."""

    def __init__(self, service, caller=NOBODY):
        self.service, self.caller = service, caller

    def __getattr__(self, name):
        def call(*args, **kwargs):
            method = getattr(self.service, name)
            before, self.service.caller = self.service.caller, self.caller
            try:
                return json.loads(json.dumps(method(*args, **kwargs)))
            except HuifangError as error:
                raise RemoteError(type(error).__name__, str(error)) from None
            finally:
                self.service.caller = before
        return call


@dataclass
class World:
    clock: FrozenClock
    intake: IntakeService
    revisit: RevisitService
    survey: SurveyService
    notify: NotifyService
    ids: dict = field(default_factory=dict)

    @property
    def services(self):
        return {"intake": self.intake, "revisit": self.revisit, "survey": self.survey,
                "notify": self.notify}

    def snapshot(self):
        """Every document of every collection of the four stores, as bytes to compare."""
        state = {}
        for name, service in self.services.items():
            db = service.store.db
            if isinstance(db, mongomock.Database):    # the embedded store: its own dicts
                collections = db._store._collections   # (read a thousand times: no copies)
                state[name] = {collection: dict(store._documents)
                               for collection, store in collections.items()}
            else:                                      # a MongoDB server (MONGO_URI)
                state[name] = {collection: list(db[collection].find().sort("_id"))
                               for collection in sorted(db.list_collection_names())}
        return pickle.dumps(state)

    @staticmethod
    def same(before, after):
        """Two snapshots hold the same documents (equal values pickle apart when an undone
        write left copies where the same object was)."""
        return before == after or pickle.loads(before) == pickle.loads(after)

    def events(self, service=None):
        """Every event still in an outbox (nothing publishes here): (service, envelope)."""
        found = []
        for name, instance in self.services.items():
            if service not in (None, name):
                continue
            db = instance.store.db
            for collection in db.list_collection_names():
                for document in db[collection].find({"outbox.0": {"$exists": True}}):
                    found += [(name, event) for event in document["outbox"]]
        return found

    def hand_on(self, seen=None):
        """Give every outboxed event to the handlers that take it, as the broker would:
        intake → revisit (closings, reopenings, completed work), revisit → intake
        (unsatisfied follow-ups), to notify what it handles. Each event once."""
        seen = set() if seen is None else seen
        handlers = {
            "complaint_closed": [self.revisit.schedule_complaint_revisits,
                                 self.notify.announce_closing],
            "complaint_reopened": [self.revisit.cancel_superseded_revisits],
            "work_order_completed": [self.revisit.follow_up_work_order],
            "household_moved_in": [self.revisit.plan_moved_in_household],
            "household_key_customer_set": [self.revisit.reassign_key_customer_visits],
            "revisit_unsatisfied": [self.intake.reopen_after_unsatisfied_revisit,
                                    self.revisit.open_followup],
            "revisit_scheduled": [self.notify.announce_revisit],
            "complaint_escalated": [self.notify.alert_escalated_complaint],
            "survey_report_published": [self.notify.announce_survey_report],
        }
        while True:
            fresh = [(name, event) for name, event in self.events() if event["id"] not in seen]
            if not fresh:
                return seen
            for _, event in fresh:
                seen.add(event["id"])
                for handler in handlers.get(event["type"], ()):
                    handle_one(handler, parse_event(json.loads(json.dumps(event))))


def build(clock=None):
    """The world, filled: ``ids`` names a record of each kind and state."""
    clock = clock or FrozenClock(NOW)
    config = load_config(NOTIFY_QUIET_HOURS="")
    intake = worker_factory(IntakeService, store=embedded(IntakeRepository), clock=clock,
                            config=config, policies=Policies.from_config(config),
                            caller=NOBODY, contact_callers=contact_callers(config))
    revisit = worker_factory(RevisitService, store=embedded(RevisitRepository), clock=clock,
                             policies=PolicyBook(config), caller=NOBODY,
                             intake=RemoteService(intake))
    survey_store = embedded(SurveyRepository)
    survey = worker_factory(SurveyService, store=survey_store, clock=clock,
                            config={"SURVEY_POLICY": {"min_ranked_returns": 1}}, caller=NOBODY,
                            policies=SurveyPolicies.from_config(
                                {"SURVEY_POLICY": {"min_ranked_returns": 1}}),
                            intake=RemoteService(intake),
                            estates=EstateCopies(survey_store.db, intake.get_estate,
                                                 "Asia/Shanghai"))
    settings = NotifySettings({"NOTIFY_CHANNELS": ["console"], "NOTIFY_QUIET_HOURS": "",
                               "NOTIFY_STAFF": [{"id": "sup-1", "name": "李主管",
                                                 "roles": ["supervisor"],
                                                 "phone": "13900000001"},
                                                {"id": "mgr-1", "name": "张经理",
                                                 "roles": ["manager"],
                                                 "phone": "13900000002"}]})
    notify = worker_factory(NotifyService, store=embedded(NotifyRepository), clock=clock,
                            settings=settings, caller=NOBODY,
                            intake=RemoteService(intake, NOTIFY))
    world = World(clock, intake, revisit, survey, notify)
    ids = world.ids

    intake.import_households("e-1", HOUSEHOLDS, estate={"name": "测试小区"})
    intake.import_households("e-2", [dict(HOUSEHOLDS[0], household_id="h-21")], estate={"name": "测试小区"})

    def complaint(*steps, **changes):
        found = intake.register_complaint(dict(COMPLAINT, **changes))["id"]
        data = {
            "acknowledge_complaint": {"staff_id": "s-1", "note": "已致歉"},
            "assign_complaint": {"department": "秩序部", "assignee_id": "s-7"},
            "resolve_complaint": {"staff_id": "s-7", "resolution": "已劝导"},
            "close_complaint": {"closed_by": "s-1", "owner_signoff": "satisfied"},
            "request_review": {"reason": "业主不认可", "staff_id": "s-1"},
        }
        for step in steps:
            getattr(intake, step)(found, data[step])
        return found

    ids["registered"] = complaint()          # the first of h-1's noise complaints
    ids["repeat"] = complaint(category="noise", household_id="h-1")
    ids["acknowledged"] = complaint("acknowledge_complaint", category="parking")
    ids["assigned"] = complaint("acknowledge_complaint", "assign_complaint",
                                category="cleaning")
    ids["resolved"] = complaint("acknowledge_complaint", "assign_complaint",
                                "resolve_complaint", category="greening")
    ids["closed"] = complaint("acknowledge_complaint", "assign_complaint",
                              "resolve_complaint", "close_complaint", category="fire_security")
    ids["under_review"] = complaint("acknowledge_complaint", "assign_complaint",
                                    "resolve_complaint", "close_complaint", "request_review",
                                    category="public_facilities", household_id="h-2")
    ids["referred"] = complaint("acknowledge_complaint", category="water_supply",
                                household_id="h-2")
    intake.assign_complaint(ids["referred"], {"department": "客服中心",
                                              "external_unit": "自来水公司"})
    ids["escalated"] = complaint("acknowledge_complaint", category="fees",
                                 household_id="h-2")   # awaits the manager's instruction
    intake.escalate_complaint(ids["escalated"], {"staff_id": "s-1", "reason": "超出权限",
                                                 "role": "manager"})
    ids["owner_token"] = intake.store.db.complaints.find_one(
        {"_id": ids["closed"]})["owner_token"]
    ids["work_order"] = intake.register_work_order(ORDER)["id"]
    done = intake.register_work_order(dict(ORDER, content="水龙头漏水"))["id"]
    intake.complete_work_order(done, {"staff_id": "s-2"})
    ids["completed_work_order"] = done
    # an important repair is always revisited (others are sampled): the follow-up's visit
    repaired = intake.register_work_order(dict(ORDER, content="屋面渗水", important=True))["id"]
    intake.complete_work_order(repaired, {"staff_id": "s-2"})

    world.hand_on()   # closings and completed work reach revisit, as they would
    revisits = list(revisit.store.db.revisits.find())
    ids["revisit"] = next(r["_id"] for r in revisits if r["kind"] == "complaint")
    ids["online_token"] = next(r["online_token"] for r in revisits
                               if r.get("online_token") and r.get("announced"))
    repair = next(r["_id"] for r in revisits if r["source_id"] == repaired)
    revisit.record_revisit(repair, {"visitor_id": "s-1", "method": "phone", "reached": True,
                                    "satisfaction": "unsatisfied", "resolved": False,
                                    "comments": "雨后仍渗水"})
    world.hand_on()   # the unsatisfied repair opens a follow-up; its measures are recorded
    ids["followup"] = revisit.list_followups({"revisit_id": repair})[0]["id"]
    revisit.record_followup_measures(ids["followup"], {
        "staff_id": "s-2", "measures": "更换防水层", "responsible": "王工"})

    template = survey.save_template({"template_id": "tpl-1", "title": "物业服务满意度",
                                     "categories": ["cleaning", "greening", "repair_service"]})
    ids["template"] = template["template_id"]
    opened = prepared(survey, survey.create_round({
        "title": "2026 下半年满意度调查", "estate_ids": ["e-1"],
        "opens_at": (NOW - timedelta(hours=1)).isoformat(),
        "closes_at": (NOW + timedelta(days=14)).isoformat(), "template_id": "tpl-1"}))
    ids["round"] = opened["id"]
    ids["survey_token"] = survey.list_invitations(opened["id"])[0]["token"]
    closed = prepared(survey, survey.create_round({
        "title": "2026 上半年满意度调查", "estate_ids": ["e-1", "e-2"],
        "opens_at": (NOW - timedelta(hours=2)).isoformat(),
        "closes_at": (NOW + timedelta(days=14)).isoformat()}))
    survey.submit_response(survey.list_invitations(closed["id"])[0]["token"],
                           {"answers": {"cleaning": 4}, "comments": {"general": "很好"}})
    survey.close_round(closed["id"])
    ids["closed_round"] = closed["id"]
    ids["rectification"] = survey.add_rectification(closed["id"], {
        "estate_id": "e-1", "category": "cleaning", "action": "增加保洁频次",
        "department": "环境部", "due_at": (NOW + timedelta(days=30)).isoformat()})["id"]

    notify.set_preferences("h-1", {"opt_out": False})
    world.hand_on()
    return world
