"""survey: satisfaction-survey templates, rounds, invitations, responses, reports,
rankings, rectifications and exports. Entrypoints only."""
import base64
import logging
from datetime import timedelta

from nameko.dependency_providers import Config

from services.survey import (
    answering,
    cadence,
    planning,
    ranking,
    rectifications,
    reports,
    rounds,
    tallies,
    templates,
    workbook,
)
from services.survey.repository import DRAFT, SurveyRepository
from services.survey.round_work import RoundWork, send_reminders
from shared import paging
from shared.actor import CallerProvider
from shared.dependencies import ClockProvider, Store
from shared.errors import InvalidInput, NotFound
from shared.estates import Estates
from shared.idempotency import derived_id, idempotent
from shared.messaging import handles
from shared.policies import EstatePolicies
from shared.rpc import RpcProxy, ping, rpc, to_json
from shared.schemas import survey as schemas
from shared.schemas.base import load, require_id
from shared.schemas.intake import MAX_ESTATES_CHECKED
from shared.store import ConcurrentUpdate, already_applied
from shared.timers import timer_from_config

log = logging.getLogger(__name__)

# estates whose last survey period one pass of the cadence timer decides
CADENCE_BATCH = 500

class SurveyService:
    name = "survey"
    ping = ping

    store = Store(SurveyRepository)
    clock = ClockProvider()
    config = Config()
    intake = RpcProxy("intake")
    estates = Estates()
    policies = EstatePolicies(rounds.SurveyPolicies.from_config)
    caller = CallerProvider()

    # templates ----------------------------------------------------------------

    @rpc
    @idempotent
    def save_template(self, data):
        """A new version of a template; rounds keep reporting with the version they used."""
        data = load(schemas.SaveTemplate(), data)
        for _ in range(3):
            latest = self._latest_template(data["template_id"], required=False)
            if latest is not None and already_applied(latest):
                return to_json(latest)   # this request's version, kept by an earlier run
            template = templates.new_template_version(data, latest, self.clock.now(),
                                                      created_by=self.caller.actor_id)
            if self.store.add_template(template):
                return to_json(template)
        raise InvalidInput({"template_id": ["changed by someone else meanwhile; try again"]})

    @rpc
    def get_template(self, template_id, version=None):
        require_id(template_id, "template_id")
        if version is None:
            return to_json(templates.offered(self._latest_template(template_id)))
        # bounded: MongoDB stores 64-bit integers, and the driver raises past them
        if not isinstance(version, int) or isinstance(version, bool) or \
                not 1 <= version < 2**31:
            raise InvalidInput({"version": ["a version number: 1, 2, ..."]})
        template = self.store.template_version(template_id, version)
        if template is None:
            raise NotFound("template", f"{template_id} v{version}")
        return to_json(templates.offered(template))

    @rpc
    def list_templates(self):
        self._latest_template(templates.DEFAULT_TEMPLATE_ID)
        return to_json(self.store.list_templates())

    # rounds ---------------------------------------------------------------------

    @rpc
    @idempotent
    def create_round(self, data):
        """A round, answered at once (``creating``): ``prepare_rounds`` writes and issues its
        invitations in the background (its ``progress``). Called again with the same
        ``request_id``, the round that call made."""
        data = load(schemas.CreateRound(), data)
        if data["request_id"] and (earlier := self.store.round_for_request(data["request_id"])):
            return to_json(planning.replay(earlier, data))
        round_id = derived_id("rnd") or rounds.new_round_id()
        made = self.store.find_round(round_id)
        if made is not None:   # this request's first run made it, then died before answering
            return to_json(made)
        now = self.clock.now()
        planning.check_schedule(data, now)
        self._check_estates(data)   # before the template: it may seed the default
        template = self._latest_template(data["template_id"], field="template_id")
        round_ = planning.plan_round(round_id, data, template, self._policy(), now,
                                     created_by=self.caller.actor_id)
        if not self.store.create_round(round_):
            # a retry that ran alongside the first call: that call's round is the answer
            return to_json(planning.replay(self.store.round_for_request(data["request_id"]), data))
        return to_json(round_)

    @rpc
    def get_round(self, round_id):
        return to_json(self._round(round_id))

    @rpc
    def list_rounds(self, filters=None, paged=False):
        filters = paging.load_filters(schemas.RoundFilters(), filters, paged)
        found, next_cursor = self.store.list_rounds(filters)
        return paging.answer(to_json(found), next_cursor, paged)

    @rpc
    def list_invitations(self, round_id, estate_id=None, filters=None, paged=False):
        """``estate_id`` may come as the second argument (as it always did) or in ``filters``."""
        round_ = self._round(round_id)
        if estate_id is not None:
            require_id(estate_id, "estate_id")
        filters = paging.load_filters(schemas.InvitationFilters(), filters, paged)
        if estate_id is not None and filters.setdefault("estate_id", estate_id) != estate_id:
            raise InvalidInput({"estate_id": ["given twice, differently"]})
        if "estate_id" in filters:
            rounds.check_estate(round_, filters["estate_id"])
        found, next_cursor = self.store.list_invitations(round_["_id"], filters)
        return paging.answer(to_json(found), next_cursor, paged)

    @rpc
    @idempotent
    def close_round(self, round_id, expected_status=None):
        round_ = self._round(round_id)
        if already_applied(round_):
            return to_json(round_)
        return to_json(self._close(round_, self.clock.now(), closed_by=self.caller.actor_id,
                                   expected_status=expected_status))

    # answering ----------------------------------------------------------------

    @rpc
    def get_questionnaire(self, token):
        """What the owner's form shows for an invitation: the questions, nothing about who."""
        invitation, round_ = self._invitation(token)
        reason = answering.why_not_answerable(round_, invitation, self.clock.now())
        categories = rounds.questionnaire(round_, invitation["estate_id"])
        return to_json({
            "round_id": round_["_id"], "title": round_["title"], "estate_id": invitation["estate_id"],
            "opens_at": round_["opens_at"], "closes_at": round_["closes_at"],
            "anonymous": round_["anonymous"], "answerable": reason is None, "reason": reason,
            "state": answering.answer_state(round_, invitation, self.clock.now()),
            "draft": invitation.get(DRAFT) if reason is None else None,
            "categories": [dict(zip(("key", "label_zh", "label_en"),
                                    (key, *templates.label(round_, key)))) for key in categories],
            "scale": templates.SCALE_LABELS,
        })

    @rpc
    @idempotent
    def save_draft(self, token, data):
        """Keep what the owner has filled in so far; a reload of the form shows it again."""
        invitation, round_ = self._invitation(token)
        reason = answering.why_not_answerable(round_, invitation, self.clock.now())
        if reason:
            raise answering.refuse_token(reason)
        draft = load(schemas.DraftResponse(
            rounds.questionnaire(round_, invitation["estate_id"])), data)
        self.store.save_draft(invitation["_id"], draft)
        return {"saved": True}

    @rpc
    @idempotent
    def submit_response(self, token, data):
        invitation, round_ = self._invitation(token)
        if already_applied(invitation):   # this request's answers, kept by an earlier run
            return {"accepted": True}
        now = self.clock.now()
        reason = answering.why_not_answerable(round_, invitation, now)
        if reason:
            raise answering.refuse_token(reason)
        data = load(schemas.SubmitResponse(
            rounds.questionnaire(round_, invitation["estate_id"])), data)
        response = answering.response(round_, invitation, data, now, self._grace())
        if self.store.claim_invitation(invitation["_id"], now, response) is None:
            # Someone else got there first: a concurrent submission, or the round closed.
            latest = self.store.find_invitation(token)
            raise answering.refuse_token(
                answering.why_not_answerable(round_, latest, now) or answering.USED_TOKEN)
        self.store.store_response(invitation["_id"], response, tallies.tally_update(response))
        return {"accepted": True}

    # the report, ranking and statistics -------------------------------------------

    @handles("intake", "estate_registered")
    def keep_estate_copy(self, event):
        """Estates' names and zones as intake's records say (shared/estates.py)."""
        self.estates.learn(event)

    @handles("intake", "estate_updated")
    def keep_estate_copy_updated(self, event):
        self.estates.learn(event)

    @rpc
    def round_report(self, round_id, estate_id=None, estate_ids=None):
        """The round's report — of every estate, of ``estate_ids`` (a part: a person's
        estates of a group round) or of ``estate_id`` — each estate named (``estate_name``
        beside ``estate_id``)."""
        round_ = self._round(round_id)
        return self.estates.named(to_json(self._report(round_, estate_id,
                                                       self._part(round_, estate_ids))))

    @rpc
    def estate_ranking(self, round_id, estate_ids=None):
        """The round's estates ranked, or those of ``estate_ids`` among themselves."""
        round_ = self._round(round_id)
        return self.estates.named(to_json(self._ranking(round_, self._part(round_, estate_ids))))

    @rpc
    @idempotent
    def check_statistics(self, round_id, data=None):
        """Recount the round from its raw responses (aggregation pipelines) and compare with
        the kept counters; with ``repair`` (closed rounds only) the recount replaces them."""
        options = load(schemas.CheckStatistics(), data)   # None: the defaults
        round_ = self._round(round_id)
        recounted = self.store.recount(round_["_id"])
        stored = {tally["estate_id"]: tally for tally in self.store.tallies(round_["_id"])}
        found = tallies.differences(stored, recounted)
        repaired = False
        if found and options["repair"]:
            if round_["status"] != "closed":
                raise InvalidInput({"repair": ["close the round first: answers still arrive"]})
            self.store.replace_counters(round_["_id"], recounted, round_["estate_ids"])
            repaired = True
        return {"round_id": round_["_id"], "consistent": not found, "differences": found,
                "repaired": repaired}

    @rpc
    def export_report(self, round_id, estate_id=None, estate_ids=None):
        """The report (as ``round_report``) as an .xlsx workbook, base64-encoded."""
        round_ = self._round(round_id)
        part = self._part(round_, estate_ids)
        report = self._report(round_, estate_id, part)
        standings = self._ranking(round_, part)
        names = self.estates.names(report["estate_ids"])
        content = workbook.build(report, standings, names, timezone=self._policy().timezone)
        return base64.b64encode(content).decode("ascii")

    @rpc
    @idempotent
    def publish_report(self, round_id, data=None):
        """「业主/用户意见调查结果及整改方案应向业主单位公布」 → ``survey_report_published``."""
        data = load(schemas.PublishReport(), data)   # None: the defaults
        round_ = self._round(round_id)
        if already_applied(round_):   # published by this request's earlier run
            return to_json(round_)
        estate_reports = {estate_id: self._report(round_, estate_id)
                          for estate_id in data["estate_ids"] or round_["estate_ids"]
                          if estate_id in round_["estate_ids"]}
        return to_json(self._save(*reports.publish(round_, estate_reports, data, self.clock.now(),
                                                   by=self.caller.actor_id)))

    # rectification ----------------------------------------------------------------

    @rpc
    @idempotent
    def add_rectification(self, round_id, data):
        data = load(schemas.AddRectification(), data)
        round_ = self._round(round_id)
        now = self.clock.now()
        rectification_id = derived_id("rect") or rectifications.new_rectification_id()
        made = self.store.find_rectification(rectification_id)
        if made is not None:   # this request's first run made it, then died before answering
            return to_json(rectifications.rectification_view(made, round_, now))
        # the estate's departments as intake routes them (its record's overrides too, which
        # no copy here holds): one call, as a person adds a rectification, never in a handler
        departments = self.intake.list_departments([data["estate_id"]])
        rectification, events = rectifications.new_rectification(
            rectification_id, round_, data, now, departments, by=self.caller.actor_id)
        saved = self.store.add_rectification(rectification, events)
        return to_json(rectifications.rectification_view(saved, round_, now))

    @rpc
    def get_rectification(self, rectification_id):
        require_id(rectification_id, "id")
        rectification = self.store.get_rectification(rectification_id)
        return to_json(rectifications.rectification_view(
            rectification, self.store.get_round(rectification["round_id"]), self.clock.now()))

    @rpc
    @idempotent
    def update_rectification(self, rectification_id, data, expected_status=None):
        require_id(rectification_id, "id")
        data = self.caller.load(schemas.UpdateRectification(), data)
        rectification = self.store.get_rectification(rectification_id)
        now = self.clock.now()
        updated = None if already_applied(rectification) else rectifications.update_rectification(
            rectification, data, now, expected_status)
        saved = rectification if updated is None else self.store.save_rectification(*updated)
        return to_json(rectifications.rectification_view(
            saved, self.store.get_round(saved["round_id"]), now))

    @rpc
    def list_rectifications(self, filters=None, paged=False):
        filters = paging.load_filters(schemas.RectificationFilters(), filters, paged)
        now = self.clock.now()
        rounds_by_id = {}
        found = []
        items, next_cursor = self.store.list_rectifications(filters, now)
        for item in items:
            if item["round_id"] not in rounds_by_id:
                rounds_by_id[item["round_id"]] = self.store.get_round(item["round_id"])
            found.append(rectifications.rectification_view(
                item, rounds_by_id[item["round_id"]], now))
        return paging.answer(to_json(found), next_cursor, paged)

    # timers: every instance runs them; each piece of work is claimed atomically ------

    @timer_from_config("SURVEY_ROUND_WORK_SECONDS", 2)
    def prepare_rounds(self):
        """Write the invitations of rounds being created, then issue them once the round is
        open, a batch at a time. Each round is claimed with a lease its worker renews every
        batch; once the lease lapses (that worker died) another instance takes the round
        over where its ``progress`` says."""
        RoundWork(self.store, self.intake, self.clock, self._policy()).run()

    @timer_from_config("SURVEY_SCHEDULE_SECONDS", 30)
    def run_schedule(self):
        """Open and close rounds on time, and expire the invitations of closed rounds."""
        now = self.clock.now()
        for round_ in self.store.rounds_in("scheduled", now, "opens_at"):
            self._try_save(*rounds.open_round(round_, now))
        for round_ in self.store.rounds_in("open"):
            if round_["closes_at"] <= now:
                try:
                    self._close(round_, now)
                except ConcurrentUpdate:
                    pass   # another instance closed it

    @timer_from_config("SURVEY_SCHEDULE_SECONDS", 30)
    def send_reminders(self):
        """``survey_reminder_due`` to households that have not answered, at the round's
        interval, at most its number of times, each once whatever the number of instances."""
        now = self.clock.now()
        for round_ in self.store.rounds_in("open"):
            if now < round_["closes_at"]:
                send_reminders(self.store, round_, now)

    @timer_from_config("SURVEY_SCHEDULE_SECONDS", 30)
    def complete_interrupted_responses(self):
        """Finish storing and counting responses whose writer died half-way."""
        now = self.clock.now()
        grace = self._grace()
        for invitation in self.store.interrupted_claims(now, grace):
            response = invitation["pending_response"]["response"]
            self.store.store_response(invitation["_id"], response,
                                      tallies.tally_update(response))
            log.warning("response to invitation %s completed after an interruption",
                        invitation["_id"])
        for response in self.store.uncounted_responses(now, grace):
            self.store.finish_counting(response, tallies.tally_update(response))
            log.warning("response %s counted after an interruption", response["_id"])

    @timer_from_config("SURVEY_SCHEDULE_SECONDS", 30)
    def flag_overdue_rectifications(self):
        """One ``rectification_overdue`` per action past its deadline and not done."""
        now = self.clock.now()
        for rectification in self.store.overdue_rectifications(now):
            self.store.claim_overdue(rectification,
                                     *rectifications.rectification_overdue(rectification, now))

    @timer_from_config("SURVEY_CADENCE_SECONDS", 3600)
    def watch_survey_cadence(self):
        """Decide each estate's last ended survey period once (``cadence.verdict``): a
        missed one is told (``survey_cadence_missed``) once, whatever the number of
        instances; up to ``CADENCE_BATCH`` estates a pass, the rest on the next. The
        estates are the copies of intake's records: the pass never waits on intake."""
        now, periods = self.clock.now(), {}
        for estate_id in self.estates.ids():     # the copies: never waits on intake
            kept = self.policies.for_estate(estate_id).cadence
            periods[estate_id] = (kept, *cadence.last_ended_period(
                now, kept, self.estates.zone(estate_id, ask_intake=False)))
        decided = self.store.cadence_decided(
            cadence.check_id(estate_id, period[1]) for estate_id, period in periods.items())
        waiting = [(estate_id, period) for estate_id, period in periods.items()
                   if cadence.check_id(estate_id, period[1]) not in decided]
        for estate_id, (kept, name, start, end) in waiting[:CADENCE_BATCH]:
            verdict = cadence.verdict(self.store.rounds_closing_since(estate_id, start),
                                      start, end)
            if verdict == cadence.PENDING:
                continue     # a round of the period is still open: decided once it closes
            events = [cadence.missed_event(estate_id, name, kept, start, end, now)
                      ] if verdict == cadence.MISSED else []
            self.store.record_cadence({
                "_id": cadence.check_id(estate_id, name), "estate_id": estate_id,
                "period": name, "cadence": kept, "verdict": verdict, "decided_at": now},
                events)

    # helpers ------------------------------------------------------------------

    def _round(self, round_id):
        return self.store.get_round(require_id(round_id, "round_id"))

    def _invitation(self, token):
        invitation = self.store.find_invitation(schemas.require_token(token))
        if invitation is None:
            raise answering.refuse_token(answering.UNKNOWN_TOKEN)
        return invitation, self.store.get_round(invitation["round_id"])

    def _check_estates(self, data):
        """Each estate known to intake, with someone to invite: else refused on
        ``estate_ids``, before anything is written. intake answers for up to
        ``MAX_ESTATES_CHECKED`` estates a call (one call for most rounds), not one each."""
        ids, unknown, empty = data["estate_ids"], [], []
        for start in range(0, len(ids), MAX_ESTATES_CHECKED):
            found = self.intake.estates_with_households(
                ids[start:start + MAX_ESTATES_CHECKED], planning.household_filters(data))
            unknown += found["unknown"]
            empty += found["without_households"]
        planning.check_estates(data, unknown, empty)

    def _latest_template(self, template_id, required=True, field=None):
        template = self.store.latest_template(template_id)
        if template is None and template_id == templates.DEFAULT_TEMPLATE_ID:
            # the built-in template lives in code; stored on first use like any other
            self.store.seed_template(templates.default_template(self.clock.now()))
            template = self.store.latest_template(template_id)
        if template is None and required:
            if field:
                raise InvalidInput({field: ["unknown template"]})
            raise NotFound("template", template_id)
        return template

    def _close(self, round_, now, closed_by=None, expected_status=None):
        closed = rounds.close(round_, self.store.returned_by_estate(round_["_id"]), now,
                              closed_by, expected_status)
        if closed is None:   # a retry of a closing made: the round as it is
            return round_
        closed = self._save(*closed)
        self.store.expire_invitations(round_["_id"], now)
        return closed

    def _report(self, round_, estate_id=None, part=None):
        if estate_id is not None:
            rounds.check_estate(round_, require_id(estate_id, "estate_id"))
        scope = {"estate_id": estate_id, "estate_ids": part}
        plan = [
            rectifications.rectification_view(item, round_, self.clock.now())
            for item in self.store.list_rectifications({"round_id": round_["_id"], **{
                key: value for key, value in scope.items() if value is not None}})[0]]
        return reports.report(round_, self.store.tallies(round_["_id"], **scope), plan,
                              estate_id, part)

    def _ranking(self, round_, part=None):
        return ranking.estate_ranking(round_, self.store.tallies(round_["_id"], estate_ids=part),
                                      self._policy().min_ranked_returns, part)

    @staticmethod
    def _part(round_, estate_ids):
        """The estates of a part of the round asked for (None: the whole round)."""
        if estate_ids is None:
            return None
        part = load(schemas.RoundPart(), {"estate_ids": estate_ids})["estate_ids"]
        rounds.check_part(round_, part)
        return part

    def _save(self, round_, events):
        return self.store.save_round(round_, events)

    def _try_save(self, round_, events):
        """Save unless another instance changed the round first (then it did the work)."""
        try:
            return self._save(round_, events)
        except ConcurrentUpdate:
            return None

    def _policy(self):
        return self.policies.for_estate(None)

    def _grace(self):
        return timedelta(seconds=self._policy().response_grace_seconds)
