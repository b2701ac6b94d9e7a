"""revisit: schedules, samples, plans, books, records and measures follow-up visits.
Entrypoints only."""
import base64
import logging
from datetime import timedelta

from services.revisit import domain, followups, plans, sampling, stats
from services.revisit.dependencies import zoned_by_estate_copies
from services.revisit.policies import PolicyBook
from services.revisit.repository import RevisitRepository
from shared import paging
from shared.actor import CallerProvider
from shared.dependencies import ClockProvider, Store
from shared.errors import EXPECTED_ERRORS, Forbidden, InvalidInput
from shared.estates import Estates
from shared.idempotency import idempotent
from shared.messaging import AS_THEY_COME, handles, handles_batch
from shared.periods import period_bounds, period_months
from shared.policies import EstatePolicies
from shared.rpc import RpcProxy, not_found_as, ping, rpc, to_json
from shared.schemas import revisit as schemas
from shared.schemas.base import load, require_id, require_token
from shared.store import ConcurrentUpdate, already_applied
from shared.timers import timer_from_config

log = logging.getLogger(__name__)

# how long one instance holds a month it closes; a crash lets another take it after this
MONTH_CLOSING_LEASE = timedelta(minutes=10)
# estates whose routine plan of the year one pass of the timer makes, each held this long
ROUTINE_PLAN_BATCH = 50
ROUTINE_PLAN_LEASE = timedelta(minutes=10)
# an owner's online answer read and written again when the revisit changed meanwhile
ONLINE_ANSWER_TRIES = 3


class RevisitService:
    name = "revisit"
    ping = ping

    store = Store(RevisitRepository)
    clock = ClockProvider()
    policies = EstatePolicies(PolicyBook, view=zoned_by_estate_copies)
    intake = RpcProxy("intake")
    estates = Estates()
    caller = CallerProvider()

    # events ---------------------------------------------------------------------------

    @handles("intake", "estate_registered")
    def keep_estate_copy(self, event):
        """Estates' names and zones as intake's records say (shared/estates.py)."""
        self.estates.learn(event)

    @handles("intake", "estate_updated")
    def keep_estate_copy_updated(self, event):
        self.estates.learn(event)

    @handles_batch("intake", "complaint_closed", **AS_THEY_COME)
    def schedule_complaint_revisits(self, events):
        """「所有投诉应100%进行回访」: each closing's revisit; a burst's announced with one
        confirm. {event id: error} of those that failed (each retried alone)."""
        failed, scheduled = {}, {}
        now = self.clock.now()
        for event in events:
            try:
                scheduled[event["id"]] = domain.schedule_complaint_revisit(
                    event["data"], event["estate_id"], self._policy(event["estate_id"]), now,
                    key_customer=self.store.is_key_customer(event["data"]["household_id"]))
            except Exception as exc:   # this one alone takes the retry path
                if not isinstance(exc, EXPECTED_ERRORS):
                    log.exception("event %s: its revisit failed", event["id"])
                failed[event["id"]] = exc
        self.store.schedule_all(list(scheduled.values()))
        return failed

    @handles("intake", "complaint_reopened")
    def cancel_superseded_revisits(self, event):
        reopened, now = event["data"], self.clock.now()
        for revisit in self.store.open_complaint_revisits(reopened["complaint_id"]):
            if domain.superseded_by_reopening(revisit, reopened):
                cancelled = domain.cancel(revisit, f"complaint reopened ({reopened['source']})", now)
                self.store.cancel(revisit, {key: cancelled[key] for key in (
                    "status", "cancelled_at", "cancel_reason")})

    @handles("intake", "work_order_completed")
    def follow_up_work_order(self, event):
        """Decide now whether the order is revisited (the decision is kept, so a redelivery
        gets the same answer), then schedule its visits."""
        order, estate_id, now = event["data"], event["estate_id"], self.clock.now()
        policy = self._policy(estate_id)
        decided = self.store.work_order(order["work_order_id"])
        if decided is None:
            month = sampling.month_of(order["completed_at"], policy.timezone)
            so_far = sampling.MonthSoFar(0, 0)
            if order["kind"] in sampling.SAMPLED_KINDS:
                so_far = sampling.MonthSoFar(*self.store.month_so_far(
                    estate_id, order["kind"], month,
                    sampling.previous_months(month, policy.forecast_months)))
            decision = sampling.decide(order, estate_id, so_far, policy)
            decided = self.store.add_work_order(
                sampling.decided_work_order(order, estate_id, month, decision, now))
        if decided["selected"]:
            for revisit, events in domain.schedule_work_order_revisits(
                    order, estate_id, decided["reason"], policy, now,
                    key_customer=self.store.is_key_customer(order["household_id"])):
                self.store.schedule(revisit, events)

    @handles("intake", "household_moved_in")
    def plan_moved_in_household(self, event):
        """「年回访率100%(按照已办理入住户数统计)」: a household that moved in gets its
        routine visit in this year's plan, once."""
        moved_in, estate_id, now = event["data"], event["estate_id"], self.clock.now()
        policy = self._policy(estate_id)
        household = plans.moved_in_household(moved_in)
        household["key_customer"] = (household["key_customer"]
                                     or self.store.is_key_customer(household["id"]))
        planned = self.store.routine_revisits(estate_id, plans.year_to_plan(now, policy))
        for revisit, events in plans.plan_move_in(estate_id, household, planned, policy, now):
            self.store.schedule(revisit, events)

    @handles("intake", "household_key_customer_set")
    def reassign_key_customer_visits(self, event):
        """「重点客户的回访由客服负责人或项目经理负责」: the household's open visits go to
        that rung (or back to staff when the flag is lifted); an older change arriving
        after a newer one changes nothing."""
        flagged = event["data"]
        if not self.store.record_key_customer(flagged["household_id"], event["estate_id"],
                                              flagged["key_customer"], flagged["changed_at"]):
            return
        policy = self._policy(event["estate_id"])
        for revisit in self.store.open_household_revisits(flagged["household_id"]):
            changes = plans.key_customer_changes(revisit, flagged["key_customer"], policy)
            if changes:
                self.store.change_while_open(revisit, changes)

    @handles("revisit", "revisit_unsatisfied")
    def open_followup(self, event):
        """「向相关部门反馈」: an unsatisfied or unresolved work-order or routine revisit (made
        by staff or answered online) opens one follow-up for its department. From the
        event, so the follow-up cannot be lost between the record and its opening; once,
        its id deriving from the revisit's."""
        revisit = self.store.get(event["data"]["revisit_id"])
        if followups.needs_followup(revisit):
            self.store.open_followup(*followups.open_followup(
                revisit, self._policy(revisit["estate_id"]), self.clock.now()))

    @timer_from_config("REVISIT_TIMER_INTERVAL", 60)
    def watch_deadlines(self):
        """Announce visits whose window opened; mark late visits and late promised replies.
        Every instance runs this: each change is claimed, so it happens (and is told) once."""
        now = self.clock.now()
        for revisit in self.store.to_announce(now):
            self.store.claim_announcement(revisit, *domain.announce(revisit, now))
        for revisit in self.store.overdue(now):
            self.store.claim_overdue(revisit, *domain.mark_overdue(revisit, now))
        for revisit in self.store.replies_overdue(now):
            self.store.claim_reply_overdue(revisit, *domain.mark_reply_overdue(revisit, now))
        for followup in self.store.followups_overdue(now):
            self.store.claim_followup_overdue(followup, *followups.mark_overdue(followup, now))
        self.store.settle_counts()   # what a crashed writer left of the statistics' counters

    @timer_from_config("REVISIT_ROUTINE_PLAN_SECONDS", 3600)
    def plan_routine_years(self):
        """「年回访率100%」: once a year has begun in an estate's time zone, plan its routine
        visits if nobody did (``plan_routine_revisits`` by hand counts) — every estate
        revisit has a copy of, never asking intake which there are — up to
        ``ROUTINE_PLAN_BATCH`` estates a pass. Each estate is claimed for
        ``ROUTINE_PLAN_LEASE``, so of several instances one plans it."""
        now = self.clock.now()
        estate_ids = self.estates.ids()     # the copies: never waits on intake
        years = {estate_id: plans.year_to_plan(now, self._policy(estate_id))
                 for estate_id in estate_ids}
        made = self.store.routine_plans_made(years)
        waiting = [estate_id for estate_id in estate_ids if estate_id not in made]
        for estate_id in waiting[:ROUTINE_PLAN_BATCH]:
            year = years[estate_id]
            if self.store.claim_routine_plan(estate_id, year, now, ROUTINE_PLAN_LEASE):
                summary = self._plan_routine(estate_id, year, now)
                log.info("routine revisits of %s planned for %s: %s", estate_id, year, summary)

    @timer_from_config("REVISIT_MONTH_CLOSING_SECONDS", 3600)
    def close_finished_months(self):
        """Close each estate's month of work orders once it is over in the estate's time
        zone, topping up what online sampling fell short of (``close_sampling_month`` by
        hand does the same), and again when late paper records add orders to it. Each
        month is claimed, so one instance closes it."""
        now = self.clock.now()
        for estate_id, month in self.store.pending_months():
            policy = self._policy(estate_id)
            if not sampling.is_month_over(month, now, policy.timezone):
                continue
            claimed = self.store.claim_month_closing(estate_id, month, now, MONTH_CLOSING_LEASE)
            if claimed is not None:
                report = self._close_month(estate_id, month, policy, now, claimed)
                log.info("sampling of %s closed for %s: %s", month, estate_id, report)

    # rpc ------------------------------------------------------------------------------

    @rpc
    def list_revisits(self, filters=None, paged=False):
        filters = paging.load_filters(schemas.RevisitFilters(), filters, paged)
        revisits, next_cursor = self.store.list(filters)
        return paging.answer([to_json(domain.listed_view(revisit)) for revisit in revisits],
                             next_cursor, paged)

    @rpc
    def get_revisit(self, revisit_id):
        require_id(revisit_id, "id")
        return to_json(domain.staff_view(self.store.get(revisit_id)))

    @rpc
    @idempotent
    def book_appointment(self, revisit_id, data, expected_status=None):
        require_id(revisit_id, "id")
        appointment = load(schemas.BookAppointment(), data)
        revisit = self.store.get(revisit_id)
        booked = None if already_applied(revisit) else domain.book(
            revisit, appointment, self._policy(revisit["estate_id"]), self.clock.now(),
            booked_by=self.caller.actor_id, expected_status=expected_status)
        if booked is None:   # a retry of a booking made: the revisit as it is
            return to_json(domain.staff_view(revisit))
        return to_json(domain.staff_view(self.store.save(*booked)))

    @rpc
    @idempotent
    def record_revisit(self, revisit_id, data, expected_status=None):
        require_id(revisit_id, "id")
        outcome = self.caller.load(schemas.RecordRevisit(), data)
        revisit, now = self.store.get(revisit_id), self.clock.now()
        policy = self._policy(revisit["estate_id"])
        recorded = None if already_applied(revisit) else domain.record(
            revisit, outcome, policy, now, expected_status)
        if recorded is None:   # a retry of a record made: the revisit as it is
            return to_json(domain.staff_view(revisit))
        revisit, events = recorded
        # the next observation of an important repair goes with the record, or neither does
        follow_up = domain.next_observation(revisit, policy, now)
        return to_json(domain.staff_view(self.store.save_recorded(revisit, events, follow_up)))

    @rpc
    @idempotent
    def record_reply(self, revisit_id, data):
        require_id(revisit_id, "id")
        reply = self.caller.load(schemas.RecordReply(), data)
        revisit = self.store.get(revisit_id)
        if already_applied(revisit):
            return to_json(domain.staff_view(revisit))
        revisit = domain.record_reply(revisit, reply, self.clock.now())
        return to_json(domain.staff_view(self.store.save(revisit, [])))

    @rpc
    def list_followups(self, filters=None, paged=False):
        """The follow-ups of unsatisfied revisits, the answer due soonest first."""
        filters = paging.load_filters(schemas.FollowupFilters(), filters, paged)
        now = self.clock.now()
        found, next_cursor = self.store.list_followups(filters, now)
        return paging.answer([to_json(followups.view(followup, now)) for followup in found],
                             next_cursor, paged)

    @rpc
    def get_followup(self, followup_id):
        require_id(followup_id, "id")
        return to_json(followups.view(self.store.get_followup(followup_id), self.clock.now()))

    @rpc
    @idempotent
    def record_followup_measures(self, followup_id, data, expected_status=None):
        require_id(followup_id, "id")
        data = self.caller.load(schemas.RecordFollowupMeasures(), data)
        followup = self._followup_step(followup_id, followups.record_measures, data,
                                       expected_status)
        return to_json(followups.view(followup, self.clock.now()))

    @rpc
    @idempotent
    def answer_followup(self, followup_id, data, expected_status=None):
        require_id(followup_id, "id")
        data = self.caller.load(schemas.AnswerFollowup(), data)
        answered = self._followup_step(followup_id, followups.answer, data, expected_status)
        self._settle_promised_reply(answered, data)
        return to_json(followups.view(answered, self.clock.now()))

    @rpc
    def online_revisit(self, token):
        """What the owner's link shows (``domain.online_view``); nothing about staff."""
        revisit = self._online(token)
        return to_json(domain.online_view(revisit, self._policy(revisit["estate_id"]),
                                          self.clock.now()))

    @rpc
    @idempotent
    def record_online_revisit(self, token, data):
        """The owner's own answer through the link, recorded as a call is (method
        ``online``). Once: a second answer, or the loser of two at once, is refused."""
        if self.caller.actor_id is not None:
            raise Forbidden("the owner answers through their link; staff record_revisit")
        revisit = self._online(token)
        answer = load(schemas.OnlineAnswer(), data)
        for _ in range(ONLINE_ANSWER_TRIES):
            policy, now = self._policy(revisit["estate_id"]), self.clock.now()
            if already_applied(revisit):   # this request's answer, kept by an earlier run
                return to_json(domain.online_view(revisit, policy, now))
            done, events = domain.record_online(revisit, answer, policy, now)
            try:
                return to_json(domain.online_view(self.store.save(done, events), policy, now))
            except ConcurrentUpdate:
                # answered, called or announced meanwhile: decide again on what it is now
                revisit = self._online(token)
        raise ConcurrentUpdate(f"revisits {revisit['_id']!r} changed meanwhile")

    @rpc
    @idempotent
    def close_sampling_month(self, estate_id, month):
        query = load(schemas.CloseSamplingMonth(), {"estate_id": estate_id, "month": month})
        estate_id, month, now = query["estate_id"], query["month"], self.clock.now()
        policy = self._policy(estate_id)
        if not sampling.is_month_over(month, now, policy.timezone):
            raise InvalidInput({"month": [f"{month} is not over yet in {policy.timezone}"]})
        self._require_estate(estate_id)
        return self._close_month(estate_id, month, policy, now)

    def _close_month(self, estate_id, month, policy, now, claimed=None):
        orders = self.store.month_orders(estate_id, month)
        chosen, report = sampling.close_month(orders, estate_id, month, policy)
        for order_id in chosen:
            self.store.select_for_top_up(order_id, now)
        # Every top-up's visits, again: a crash after selecting must not lose them.
        for order in orders:
            if order["_id"] in chosen or order.get("reason") == "top_up":
                for revisit, events in domain.schedule_work_order_revisits(
                        sampling.order_payload(order), estate_id, "top_up", policy, now,
                        decided_at=now,
                        key_customer=self.store.is_key_customer(order.get("household_id"))):
                    self.store.schedule(revisit, events)
        self.store.record_month_closed(estate_id, month, report, now, claimed)
        return report

    @rpc
    @idempotent
    def plan_routine_revisits(self, estate_id, year):
        query = load(schemas.PlanRoutineRevisits(), {"estate_id": estate_id, "year": year})
        return self._plan_routine(query["estate_id"], query["year"], self.clock.now())

    @rpc
    def monthly_revisit_plan(self, estate_id, month):
        """「物业服务中心每月应制定回访计划」: the month's routine, complaint and work-order
        visits of an estate (``plans.monthly_plan``)."""
        return to_json(self._monthly_plan(estate_id, month))

    @rpc
    def export_monthly_plan(self, estate_id, month):
        """The month's plan as an .xlsx workbook (bytes, base64)."""
        plan = self._monthly_plan(estate_id, month)
        estate = self.intake.get_estate(plan["estate_id"])
        workbook = plans.plan_workbook(plan, estate.get("name") or plan["estate_id"],
                                       self._policy(plan["estate_id"]).timezone)
        return base64.b64encode(workbook).decode("ascii")

    @rpc
    def revisit_stats(self, estate_id, period, per_estate=None, estate_ids=None,
                      group_by=None):
        """From the counters kept per estate × month (``stats``), and what is overdue now.
        Across estates (no ``estate_id``) the group's figures come from its total counters
        (one document a month); with ``per_estate`` (the default) every estate's figures
        too, from one read of the period's counters. With ``estate_ids``: those estates'
        rows alone (``_rows_of``). ``group_by`` region or company: each group's figures
        too (``groups``), from the same read of the estates' counters (``_groups``)."""
        query = load(schemas.RevisitStatsQuery(), {
            "estate_id": estate_id, "period": period,
            **({"per_estate": per_estate} if per_estate is not None else {}),
            **({"estate_ids": estate_ids} if estate_ids is not None else {}),
            **({"group_by": group_by} if group_by is not None else {})})
        estate_id, period, now = query["estate_id"], query["period"], self.clock.now()
        group_by = query["group_by"]
        if query["estate_ids"] is not None:
            return self._rows_of(query["estate_ids"], period, now, group_by)
        if estate_id is not None:
            self._require_estate(estate_id)
        policy = self._policy(estate_id) if estate_id else self.policies.default
        since, until = period_bounds(period, policy.timezone)
        months = period_months(period)
        if estate_id is None:    # the group's total counters (``stats.group_figures``)
            elsewhere = self.policies.estates_elsewhere(policy.timezone)   # (read once)
            figures = stats.group_figures(
                self._group_counters(months, elsewhere, since, until), now)
        else:
            buckets = self._stats_counters(estate_id, months, set(), since, until)
            figures = stats.figures(buckets, self._quota_for, now)
        names = self.estates.describe(estate_id) if estate_id else {}
        result = to_json({"estate_id": estate_id, **names, "period": period, "from": since,
                          "until": until, **figures})
        if estate_id is None and (query["per_estate"] or group_by != "estate"):
            # one read of the estates' counters for the rows and the groups
            buckets = self._stats_counters(None, months, elsewhere, since, until)
        if estate_id is None and query["per_estate"]:   # numbers and names: JSON as they are
            estates = stats.figures_by_estate(buckets, self._quota_for, now)
            self.estates.names(estates)   # one read of the copies for all of them
            result["estates"] = {estate: {**self.estates.describe(estate), **figures}
                                 for estate, figures in estates.items()}
        if estate_id is None and group_by != "estate":
            result.update(self._groups(buckets, self.estates.ids(), group_by, now))
        return result

    @rpc
    @idempotent
    def check_statistics(self, data=None):
        """Recount the statistics' counters from the raw revisits and work orders and
        compare; with ``repair`` the recount replaces them (run it while nothing writes)."""
        options = load(schemas.CheckStatistics(), data)   # None: the defaults
        recounted, kept = self.store.recount(self._stats_month)
        found = stats.differences(kept, recounted)
        if found and options["repair"]:
            self.store.replace_counters(recounted, self._stats_month)
        return {"consistent": not found, "differences": found,
                "repaired": bool(found and options["repair"])}

    @rpc
    def get_policy(self, estate_id):
        self._require_estate(require_id(estate_id, "estate_id"))
        return to_json(self.policies.describe(estate_id))

    # helpers --------------------------------------------------------------------------

    def _followup_step(self, followup_id, step, data, expected_status):
        """The follow-up after ``step``, or as it is when this is a retry of a step made."""
        followup = self.store.get_followup(followup_id)
        moved = None if already_applied(followup) else step(followup, data, self.clock.now(),
                                                            expected_status)
        return followup if moved is None else self.store.save_followup(*moved)

    def _settle_promised_reply(self, followup, data):
        """A reply promised to the owner during the visit (``record_reply``) is given by the
        department's answer: one answer, one mechanism. Also on a retry, so a crash between
        the two writes is made good by the caller's retry."""
        revisit = self.store.get(followup["revisit_id"])
        if followup["status"] == "answered" and followups.awaits_reply(revisit):
            replied = domain.record_reply(revisit, {
                "staff_id": data["staff_id"], "reply": data["answer"],
                "replied_at": followup["answered_at"]}, self.clock.now())
            try:
                self.store.save(replied, [])
            except ConcurrentUpdate:
                pass   # answered meanwhile by record_reply: that answer stands

    def _policy(self, estate_id):
        return self.policies.for_estate(estate_id)

    def _plan_routine(self, estate_id, year, now):
        """Plan (or top up) an estate's routine visits of ``year``, and keep that it is made."""
        with not_found_as("estate", estate_id):
            households = self.intake.list_households(estate_id, {"occupied": True})
        scheduled, to_cancel, summary = domain.plan_routine(
            estate_id, year, households, self.store.routine_revisits(estate_id, year),
            self._policy(estate_id), now)
        for revisit, events in scheduled:
            self.store.schedule(revisit, events)
        for revisit in self.store.routine_revisits(estate_id, year):
            if revisit["_id"] in to_cancel:
                cancelled = domain.cancel(revisit, "household no longer occupied", now)
                self.store.cancel(revisit, {key: cancelled[key] for key in (
                    "status", "cancelled_at", "cancel_reason")})
        self.store.record_routine_plan(estate_id, year, summary, now)
        return summary

    def _monthly_plan(self, estate_id, month):
        query = load(schemas.MonthlyRevisitPlan(), {"estate_id": estate_id, "month": month})
        self._require_estate(query["estate_id"])
        return plans.monthly_plan(query["estate_id"], query["month"],
                                  self.store.plan_month_revisits(query["estate_id"],
                                                                 query["month"]))

    def _stats_month(self, revisit):
        """The month a revisit stored before counters existed is counted in."""
        return sampling.month_of(revisit["source_at"], self._policy(revisit["estate_id"]).timezone)

    def _rows_of(self, estate_ids, period, now, group_by="estate"):
        """Several estates' rows in one call, each what ``revisit_stats(estate, period)``
        gives (its months in its own zone: its counters as kept), with its names; zeros
        for one with nothing counted, none for one intake does not know. No group figures:
        the caller may read these estates only; ``group_by`` region or company: groups
        made of these estates alone."""
        self.estates.names(estate_ids)    # one read of the copies (intake for the unknown)
        known = [estate for estate in dict.fromkeys(estate_ids) if self.estates.get(estate)]
        buckets = {estate: [] for estate in known}
        for bucket in self.store.estates_counters(known, period_months(period)):
            buckets[bucket[0]].append(bucket)
        answer = {"period": period, "estates": {
            estate: {**self.estates.describe(estate),
                     **stats.figures(buckets[estate], self._quota_for, now)}
            for estate in known}}
        if group_by != "estate":
            answer.update(self._groups([bucket for estate in known for bucket in buckets[estate]],
                                       known, group_by, now))
        return answer

    def _groups(self, buckets, estate_ids, group_by, now):
        """``groups``: the figures of each company or region (``stats.figures_by_group``)
        made of ``estate_ids`` and the estates counted in ``buckets``, named by the estates'
        copies (one read for all)."""
        members = list(dict.fromkeys([*estate_ids, *(bucket[0] for bucket in buckets)]))
        self.estates.names(members)
        return {"group_by": group_by, "groups": to_json(stats.figures_by_group(
            buckets, {estate: self.estates.describe(estate) for estate in members}, group_by,
            self._quota_for, now))}

    def _quota_for(self, estate_id):
        """An estate's sampling quota: its configured policy's (no zone changes a quota,
        so the rows of 3,000 estates read no copy for it)."""
        return sampling.quota_of(self.policies.configured_policy(estate_id))

    def _group_counters(self, months, elsewhere, since, until):
        """The group's total counters of ``months`` (a document a month); an estate
        ``elsewhere`` (its record in another zone than the group's) is taken out and
        recounted in these months, as ``_stats_counters`` does for its row."""
        buckets = self.store.group_counters(months)
        for estate in sorted(elsewhere):
            buckets += [(estate, month, stats.negated(counts))
                        for _, month, counts in self.store.counters(estate, months)]
            buckets += self._recounted(estate, months, since, until)
        return buckets

    def _recounted(self, estate, months, since, until):
        """An estate's counters of the period's ``months`` recounted from its documents."""
        recounted = stats.recount(self.store.revisits_for_stats(estate, since, until),
                                  self.store.work_orders_for_stats(estate, months),
                                  self.store.followups_for_stats(estate, months),
                                  self.store.closings_for_stats(estate, months))
        return [(estate, month, stats.nested(counts)) for (_, month), counts in recounted.items()]

    def _stats_counters(self, estate_id, months, elsewhere, since, until):
        """The period's estate-month counters. Each estate's months are its own time
        zone's: across estates (the default's months) one ``elsewhere`` (its record in
        another zone) is recounted from its documents instead."""
        buckets = [bucket for bucket in self.store.counters(estate_id, months)
                   if bucket[0] not in elsewhere]
        for estate in sorted(elsewhere):
            buckets += self._recounted(estate, months, since, until)
        return buckets

    def _require_estate(self, estate_id):
        """Estates are intake's: one it does not know is ``NotFound`` here too."""
        with not_found_as("estate", estate_id):
            self.intake.get_estate(estate_id)

    def _online(self, token):
        """The revisit an owner's link opens; an unknown link is refused on ``token``."""
        revisit = self.store.find_by_online_token(require_token(token, "revisit"))
        if revisit is None or not domain.link_sent(revisit):
            raise domain.refuse_link(domain.UNKNOWN_LINK)
        return revisit
