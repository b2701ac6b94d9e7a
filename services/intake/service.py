"""intake: households, complaints and work orders. Entrypoints only."""
import functools
import logging
from collections import Counter
from datetime import timedelta

from nameko.dependency_providers import Config

from services.intake import (
    domain,
    estates,
    households,
    instructions,
    owner,
    revisits,
    stats,
    work_orders,
)
from services.intake.dependencies import ContactCallers, complaint_policies, read_through_records
from services.intake.repository import ALERT_BATCH, IntakeRepository
from shared import estate_groups, paging
from shared.actor import CallerProvider
from shared.counters import GROUP
from shared.departments import followup_departments
from shared.dependencies import ClockProvider, Store
from shared.errors import InvalidInput, NotFound
from shared.idempotency import derived_id, idempotent
from shared.messaging import handles
from shared.periods import month_of, period_bounds, period_months
from shared.policies import EstatePolicies
from shared.rpc import ping, rpc, to_json
from shared.schemas import intake as schemas
from shared.schemas.base import load, require_id
from shared.schemas.vocabulary import COMPLAINT_CATEGORIES, SURVEY_CATEGORIES
from shared.store import HANDLED_EVENTS, ConcurrentUpdate, already_applied
from shared.timers import timer_from_config

log = logging.getLogger(__name__)

# A write that lost the race with another worker is read again and redone this often.
WRITE_ATTEMPTS = 3
# An emergency order not yet written this long after its complaint was (a crash in
# between) is written by the deadline timer.
WORK_ORDER_GRACE = timedelta(seconds=10)
# Who serves the owners' pages: the owner's link and the online form answer only the
# gateway, on no person's behalf (the token is the owner's credential, not staff's).
OWNER_PAGE_CALLERS = ("gateway",)


class IntakeService:
    name = "intake"
    ping = ping

    store = Store(IntakeRepository)
    clock = ClockProvider()
    config = Config()
    policies = EstatePolicies(complaint_policies, view=read_through_records)
    caller = CallerProvider()
    contact_callers = ContactCallers()

    # households ---------------------------------------------------------------

    @rpc
    @idempotent
    def import_households(self, estate_id, rows, estate=None):
        """Every row checked first (a bad one: ``InvalidInput``, nothing written), then
        stored a chunk at a time: the report names the chunks that failed. A new estate
        needs ``estate`` (its ``name``, and ``company``, ``region``, ``timezone``,
        ``policy`` as ``register_estate`` takes them): its record is written with the
        first chunk. For an estate intake knows ``estate`` is not used (``update_estate``
        renames)."""
        require_id(estate_id, "estate_id")
        if not isinstance(rows, list):
            raise InvalidInput({"rows": ["expected a list of households"]})
        new_estate = None if self.store.estate_exists(estate_id) else \
            self._new_estate(estate_id, estate, field="estate")
        rows = load(schemas.HouseholdRow(many=True), rows, field="rows", many=True)
        existing = self.store.household_estates(row["household_id"] for row in rows)
        conflicts = domain.household_conflicts(estate_id, rows, existing)
        if conflicts:
            raise InvalidInput(conflicts)
        return self.store.import_households(estate_id, rows, set(existing), self.clock.now(),
                                            new_estate)

    @rpc
    def list_households(self, estate_id, filters=None, paged=False):
        self._require_estate(estate_id)
        filters = paging.load_filters(schemas.HouseholdFilters(), filters, paged)
        households, next_cursor = self.store.list_households(estate_id, filters)
        return paging.answer([to_json(domain.public_view(household)) for household in households],
                             next_cursor, paged)

    @rpc
    def estates_with_households(self, estate_ids, filters=None):
        """Which of ``estate_ids`` (at most ``MAX_ESTATES_CHECKED``) intake does not know, and
        which it knows with no household (``occupied`` ones with ``{"occupied": true}``):
        ``{"unknown": [...], "without_households": [...]}``, each in the order asked. What
        survey asks before a round, for all its estates at once."""
        ids = load(schemas.EstatesToCheck(), {"estate_ids": estate_ids})["estate_ids"]
        if filters is not None and not isinstance(filters, dict):
            raise InvalidInput({"filters": ["expected an object, e.g. {\"occupied\": true}"]})
        filters = load(schemas.HouseholdsThatCount(), filters, field="filters")
        ids = list(dict.fromkeys(ids))
        known, peopled = self.store.estates_with_households(ids, filters)
        return {"unknown": [estate_id for estate_id in ids if estate_id not in known],
                "without_households": [estate_id for estate_id in ids
                                       if estate_id in known and estate_id not in peopled]}

    @rpc
    def get_household(self, household_id):
        """One household, contacts masked."""
        require_id(household_id, "id")
        household = self.store.find_household(household_id)
        if household is None:
            raise NotFound("household", household_id)
        return to_json(domain.public_view(household))

    # estates (services/intake/estates.py) -------------------------------------

    @rpc
    @idempotent
    def set_key_customer(self, household_id, flag):
        """Flag a household as a key customer (重点客户) or lift the flag; announced
        (``household_key_customer_set``) when it changes."""
        require_id(household_id, "household_id")
        flag = load(schemas.KeyCustomer(), {"key_customer": flag})["key_customer"]
        household = self.store.find_household(household_id)
        if household is None:
            raise NotFound("household", household_id)
        if bool(household.get("key_customer")) != flag and not already_applied(household):
            now = self.clock.now()
            household = self.store.set_key_customer(household_id, flag, [
                households.key_customer_event(household["estate_id"], household_id, flag,
                                              now)]) or self.store.find_household(household_id)
        return to_json(domain.public_view(household))

    @rpc
    def list_estate_ids(self):
        """The ids of every estate intake knows (the other services' timers go through
        their own copies of the estates, shared/estates.py, never asking intake)."""
        return self.store.estate_ids()

    @rpc
    def get_estate(self, estate_id):
        """An estate's record (id, name, company, region, timezone, policy, revision): what
        the other services ask before they act on an estate; ``NotFound`` otherwise."""
        return self._estate_view(self._require_estate(estate_id))

    @rpc
    @idempotent
    def register_estate(self, data):
        """A new estate's record, announced (``estate_registered``)."""
        data = load(schemas.RegisterEstate(), data)
        estate = self.store.add_estate(*self._new_estate(data["estate_id"], data))
        return self._estate_view(estate)

    @rpc
    @idempotent
    def update_estate(self, estate_id, data, expected_revision=None):
        """Change an estate's names, zone or policy overrides, announced
        (``estate_updated``); with ``expected_revision`` (the ``revision`` read) only if
        nobody changed it since (else ``InvalidTransition``)."""
        data = load(schemas.UpdateEstate(), data)
        if expected_revision is not None and (
                isinstance(expected_revision, bool) or not isinstance(expected_revision, int)):
            raise InvalidInput({"expected_revision": ["must be a whole number"]})
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            estate = self._require_estate(estate_id)
            if already_applied(estate):
                break
            if "name" not in estate:   # not migrated yet: its legacy record first
                estate = self._migrate(estate_id, estate.get("created_at")) or \
                    self._require_estate(estate_id)
            changed = estates.update(estate, data, self.clock.now(), self._group_zone(),
                                     expected_revision)
            if changed is None:
                break
            self._check_policy(estate, changed[0])
            try:
                estate = self.store.save_estate(*changed)
                break
            except ConcurrentUpdate:
                if attempt == WRITE_ATTEMPTS:   # (read again: a stale expected_revision says so)
                    raise
        return self._estate_view(estate)

    @rpc
    def list_estates(self, filters=None, paged=False):
        """Estates by id; filters ``company``, ``region``, ``estate_ids``, ``name`` (exactly)
        and ``name_prefix`` (a name starting so)."""
        filters = paging.load_filters(schemas.EstateFilters(), filters, paged)
        found, next_cursor = self.store.list_estates(filters)
        return paging.answer([self._estate_view(estate) for estate in found], next_cursor,
                             paged)

    @rpc
    @idempotent
    def migrate_estates(self, limit=1000):
        """Records for estates known before records existed (named by their id until
        renamed), announced as registered; at most ``limit`` a call, run again until
        ``left`` is 0. Safe to run while the service works and in several instances."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10000:
            raise InvalidInput({"limit": ["a whole number from 1 to 10000"]})
        migrated = sum(self._migrate(estate_id, created_at) is not None
                       for estate_id, created_at in self.store.estates_to_migrate(limit))
        return {"migrated": migrated, "left": len(self.store.estates_to_migrate(1))}

    @rpc
    def get_contact(self, ref):
        """The full contact behind a household, complaint or work order: for the services
        in ``CONTACT_CALLERS`` (notify), never for a person."""
        self.caller.require_service(self.contact_callers, "full contacts")
        require_id(ref, "ref")
        complaint = self.store.find_complaint(ref)
        source = complaint or self.store.find_work_order(ref)
        household_id = source["household_id"] if source else ref
        household = self.store.find_household(household_id) if household_id else None
        contact = self._contact(complaint, source, household)
        if contact is None:
            raise NotFound("household, complaint or work order", ref)
        return contact

    @rpc
    def get_contacts(self, refs):
        """``get_contact`` for a batch of refs (notify's dispatcher): {ref: contact}, null
        for a ref intake does not know (as ``get_contact``'s ``NotFound``, the others are
        still answered). The same callers only; at most ``MAX_CONTACT_REFS`` refs."""
        self.caller.require_service(self.contact_callers, "full contacts")
        refs = load(schemas.ContactRefs(), {"refs": refs})["refs"]
        complaints, orders, households = self.store.contact_sources(refs)
        answer = {}
        for ref in dict.fromkeys(refs):
            complaint = complaints.get(ref)
            source = complaint or orders.get(ref)
            household_id = source["household_id"] if source else ref
            answer[ref] = self._contact(complaint, source, households.get(household_id))
        return answer

    def _contact(self, complaint, source, household):
        """The contact of a household, or of a complaint's or work order's reporter; None
        when there is none. A complaint's carries the owner's link token."""
        if household is not None:
            contact = domain.preferred_contact(household.get("contacts", []))
            contact = {"household_id": household["_id"], "estate_id": household["estate_id"],
                       **(contact or {})}
        elif source is not None and source.get("reporter"):
            contact = {"household_id": None, "estate_id": source["estate_id"],
                       "preferred_channel": "sms", **source["reporter"]}
        else:
            return None
        if complaint is not None:   # a message about a complaint ends with the owner's link
            contact["owner_url_token"] = self.store.ensure_owner_token(
                complaint["_id"], domain.new_owner_token())
        return contact

    # complaints ---------------------------------------------------------------

    @rpc
    def list_categories(self, estate_id=None):
        """The complaint taxonomy and where the estate routes each category."""
        if estate_id is not None:
            self._require_estate(estate_id)
        policy = self.policies.for_estate(estate_id)
        return [{"category": category, "department": policy.department_for(category),
                 "survey_category": category in SURVEY_CATEGORIES}
                for category in COMPLAINT_CATEGORIES]

    @rpc
    def list_departments(self, estate_ids=None):
        """The departments the complaint routing of these estates sends to (None: the
        group's policy), by name: the names a department's staff account may carry. An
        estate intake does not know yet routes as the config says."""
        ids = load(schemas.DepartmentsOf(), {"estate_ids": estate_ids})["estate_ids"]
        policies = [self.policies.for_estate(estate_id) for estate_id in ids or [None]]
        return sorted({name for policy in policies for name in policy.departments()})

    @rpc
    @idempotent
    def register_complaint(self, data):
        return self._view(self._register(self.caller.load(schemas.RegisterComplaint(), data)))

    @rpc
    @idempotent
    def acknowledge_complaint(self, complaint_id, data, expected_status=None):
        data = self.caller.load(schemas.AcknowledgeComplaint(), data)
        return self._move(complaint_id, "acknowledge", data["staff_id"], expected_status,
                          note=data["note"])

    @rpc
    @idempotent
    def assign_complaint(self, complaint_id, data, expected_status=None):
        data = self.caller.load(schemas.AssignComplaint(), data)
        actor = data.pop("staff_id") or data["assignee_id"] or "desk"
        return self._move(complaint_id, "assign", actor, expected_status, **data)

    @rpc
    @idempotent
    def resolve_complaint(self, complaint_id, data, expected_status=None):
        data = self.caller.load(schemas.ResolveComplaint(), data)
        return self._move(complaint_id, "resolve", data["staff_id"], expected_status,
                          resolution=data["resolution"])

    @rpc
    @idempotent
    def close_complaint(self, complaint_id, data, expected_status=None):
        data = self.caller.load(schemas.CloseComplaint(), data)
        return self._move(complaint_id, "close", data["closed_by"], expected_status,
                          owner_signoff=data["owner_signoff"], closed_at=data["closed_at"])

    @rpc
    @idempotent
    def reopen_complaint(self, complaint_id, data, expected_status=None):
        data = self.caller.load(schemas.ReopenComplaint(), data)
        return self._move(complaint_id, "reopen", data["staff_id"] or data["source"],
                          expected_status, reason=data["reason"], source=data["source"])

    @rpc
    @idempotent
    def request_review(self, complaint_id, data, expected_status=None):
        data = self.caller.load(schemas.RequestReview(), data)
        actor = data["staff_id"] or "owner"
        return self._move(complaint_id, "request_review", actor, expected_status,
                          reason=data["reason"], requested_by=data["requested_by"])

    @rpc
    @idempotent
    def decide_review(self, complaint_id, data, expected_status=None):
        data = self.caller.load(schemas.DecideReview(), data)
        action = "uphold_review" if data["outcome"] == "upheld" else "overturn_review"
        return self._move(complaint_id, action, data["reviewer_id"], expected_status,
                          finding=data["finding"])

    @rpc
    @idempotent
    def escalate_complaint(self, complaint_id, data, expected_status=None):
        data = self.caller.load(schemas.EscalateComplaint(), data)
        return self._change(complaint_id, lambda complaint, policy, now: domain.escalate(
            complaint, data["staff_id"], data["reason"], now, policy, role=data["role"],
            expected_status=expected_status))

    @rpc
    @idempotent
    def record_special_measures(self, complaint_id, data, expected_status=None):
        data = self.caller.load(schemas.RecordSpecialMeasures(), data)
        return self._change(complaint_id, lambda complaint, policy, now:
                            domain.take_special_measures(
                                complaint, data["staff_id"], data["measures"], now, policy,
                                expected_status))

    @rpc
    @idempotent
    def update_external_status(self, complaint_id, data, expected_status=None):
        data = self.caller.load(schemas.UpdateExternalStatus(), data)
        return self._change(complaint_id, lambda complaint, policy, now:
                            domain.update_external_status(
                                complaint, data["staff_id"], data, now, policy,
                                expected_status))

    @rpc
    @idempotent
    def flag_malicious(self, complaint_id, data, expected_status=None):
        data = self.caller.load(schemas.FlagMalicious(), data)   # role: the actor's rung
        return self._change(complaint_id, lambda complaint, policy, now:
                            domain.flag_malicious(complaint, data, now, policy,
                                                  expected_status))

    @rpc
    @idempotent
    def record_instruction(self, complaint_id, data, expected_status=None):
        """The manager's instruction on a complaint escalated to them (instructions.py)."""
        data = self.caller.load(schemas.RecordInstruction(), data)   # role: the actor's rung
        return self._change(complaint_id, lambda complaint, policy, now: instructions.record(
            complaint, data, now, policy, expected_status))

    @rpc
    def get_complaint(self, complaint_id):
        """The complaint, its history, and the actions its state allows now."""
        require_id(complaint_id, "id")
        complaint = self.store.get_complaint(complaint_id)
        policy = self.policies.for_estate(complaint["estate_id"])
        return {**self._view(complaint),
                "allowed_actions": domain.allowed_actions(complaint, policy)}

    @rpc
    def list_complaints(self, filters=None, paged=False):
        filters = paging.load_filters(schemas.ComplaintFilters(), filters, paged)
        complaints, next_cursor = self.store.list_complaints(filters, self.clock.now())
        return paging.answer([self._view(complaint) for complaint in complaints], next_cursor,
                             paged)

    @rpc
    def complaint_stats(self, estate_id, period):
        """The estate's figures for one period, from its counters (services/intake/stats.py)."""
        estate = self._estate_view(self._require_estate(estate_id))
        period = load(schemas.StatsQuery(), {"period": period})["period"]
        counts = self.store.counted(period_months(period), estate_id).get(estate_id, {})
        return self._figures(estate_id, period, counts, self.clock.now(), estate)

    @rpc
    def group_complaint_stats(self, period, group_by=None, per_estate=None, estate_ids=None):
        """Headquarters: the group's figures for one period, from its monthly totals (one
        counter document a month); with ``per_estate`` (the default) every estate's figures
        too, from one read of the period's counters; ``group_by`` region or company: each
        group's figures (``groups``), from its estates' counters added up. With
        ``estate_ids`` (a regional user's) the estates intake knows of those alone: their
        rows, their groups, and a ``total`` summed from their documents (the group's own
        totals count every estate)."""
        query = load(schemas.GroupStatsQuery(), {
            "period": period, **({"group_by": group_by} if group_by else {}),
            **({"per_estate": per_estate} if per_estate is not None else {}),
            **({"estate_ids": estate_ids} if estate_ids is not None else {})})
        period, group_by, chosen = query["period"], query["group_by"], query["estate_ids"]
        now, months = self.clock.now(), period_months(period)
        answer: dict = {"period": period, "group_by": group_by}
        if chosen is None:
            answer["total"] = stats.figures(self.store.counted(months, GROUP).get(GROUP, {}),
                                            now)
            if not query["per_estate"] and group_by == "estate":
                return answer
        counted = self.store.counted(months, estate_ids=chosen)
        figures: dict[str, dict] = {}
        groups: dict[str, tuple[dict, Counter, list]] = {}
        total: Counter = Counter()
        zone = self._group_zone()
        for record in self.store.all_estates(chosen):
            estate = estates.label(record, zone)
            counts = counted.get(estate["estate_id"], {})
            if chosen is not None:
                stats.add(total, counts)
            if query["per_estate"]:
                figures[estate["estate_id"]] = self._figures(estate["estate_id"], period,
                                                             counts, now, estate)
            if group_by != "estate":
                _, summed, members = groups.setdefault(
                    estate_groups.group_of(estate, group_by),
                    (estate_groups.group_label(estate, group_by), Counter(), []))
                stats.add(summed, counts)
                members.append(estate["estate_id"])
        if chosen is not None:
            answer["total"] = stats.figures(total, now)
        if query["per_estate"]:
            answer["estates"] = figures
        if group_by != "estate":
            answer["groups"] = {key: {**label, "estate_ids": members,
                                      **stats.figures(summed, now)}
                                for key, (label, summed, members) in groups.items()}
        return answer

    @rpc
    @idempotent
    def check_statistics(self, data=None):
        """Recount the complaint statistics' counters from the raw complaints and compare
        with the kept ones; with ``repair`` the recount replaces them (run it while nothing
        writes complaints: a store filled before the counters, or a difference found).
        Complaints stored before the counters get their month of receipt first."""
        options = load(schemas.CheckStatistics(), data)   # None: the defaults
        unfiled = self.store.unfiled_complaints()
        if unfiled and options["repair"]:
            self.store.file_complaints({
                complaint_id: month_of(received_at,
                                       self.policies.for_estate(estate_id).timezone)
                for complaint_id, estate_id, received_at in unfiled})
        recounted, kept = self.store.recount()
        found = stats.counter_differences(kept, recounted)
        repaired = bool((found or unfiled) and options["repair"])
        if repaired:
            self.store.replace_counters(recounted)
        return {"consistent": not found and not unfiled, "differences": found,
                "unfiled": len(unfiled), "repaired": repaired}

    # the owner's page and the estate's online form (the gateway, no login) -------

    @rpc
    def owner_view(self, token):
        """What the owner may see of their complaint (services/intake/owner.py)."""
        self.caller.require_service(OWNER_PAGE_CALLERS, "the owner's link")
        complaint, policy = self._by_owner_token(token)
        return to_json(owner.owner_view(complaint, policy))

    @rpc
    @idempotent
    def owner_request_review(self, token, data):
        """「可以向物业公司申请复核」 from the owner's page: as ``request_review``, recorded
        as the owner's (``requested_by`` and ``by`` "owner"); answers the owner's view."""
        self.caller.require_service(OWNER_PAGE_CALLERS, "the owner's link")
        complaint, _ = self._by_owner_token(token)
        data = load(schemas.OwnerReviewRequest(), data)
        self._change(complaint["_id"], lambda complaint, policy, now: owner.request_review(
            complaint, data["reason"], now, policy))
        return self.owner_view(token)

    @rpc
    @idempotent
    def register_online_complaint(self, data):
        """A complaint from the estate's online form: channel ``online``, the reporter's
        name and phone. Answers the owner's view and ``owner_token`` (the link the
        confirmation page shows), which is why only the gateway may call it."""
        self.caller.require_service(OWNER_PAGE_CALLERS, "online complaints")
        data = load(schemas.RegisterOnlineComplaint(), data)
        complaint = self._register(owner.online_complaint(data))
        policy = self.policies.for_estate(complaint["estate_id"])
        return to_json({**owner.owner_view(complaint, policy),
                        "owner_token": complaint["owner_token"]})

    @handles("revisit", "revisit_unsatisfied")
    def reopen_after_unsatisfied_revisit(self, event):
        """「物业公司应主动回访已投诉的业主,了解投诉问题是否得到解决」: if not, it reopens."""
        data = event["data"]
        if data["kind"] != "complaint":
            return
        reason = data["comments"] or f"follow-up visit {data['revisit_id']}: owner unsatisfied"

        def reopen(complaint, policy, now):
            if not domain.can_reopen_after_revisit(complaint):
                return None  # already reopened by someone else: nothing to do
            return domain.apply(complaint, "reopen", "revisit", now, policy,
                                reason=reason, source="revisit")

        self._change(data["source_id"], reopen, handled_event=event["id"])

    @handles("revisit", "revisit_completed")
    def keep_revisit(self, event):
        """「在《投诉意见处理表》中记录回访情况」: the complaint keeps its revisit's outcome
        (services/intake/revisits.py); its status and counts stay as they are."""
        data = event["data"]
        if data["kind"] != "complaint":
            return

        def keep(complaint, policy, now):
            kept = revisits.keep_revisit(complaint, data)
            return None if kept is None else (kept, [])   # nothing to announce

        self._change(data["source_id"], keep, handled_event=event["id"])

    # timers -------------------------------------------------------------------

    @timer_from_config("OVERDUE_SCAN_SECONDS", 60)
    def send_deadline_alerts(self):
        """Overdue alerts and escalations, in every instance: each complaint is written
        only if unchanged since it was read, so of two instances one sends, once."""
        now = self.clock.now()
        sent = 0
        for _ in range(10):   # bounded: what is left waits for the next tick
            due = self.store.complaints_due_for_alerts(now)
            for complaint in due:
                policy = self.policies.for_estate(complaint["estate_id"])
                changed, events = domain.check_deadlines(complaint, now, policy)
                try:
                    self.store.save_complaint(changed, events)
                except ConcurrentUpdate:
                    continue   # another instance or a member of staff got there first
                sent += len(events)
            if len(due) < ALERT_BATCH:
                break
        for complaint in self.store.complaints_awaiting_work_order(now - WORK_ORDER_GRACE):
            self._open_emergency_work_order(complaint)
        if sent:
            log.info("deadline alerts: %d event(s)", sent)

    @timer_from_config("OVERDUE_SCAN_SECONDS", 60)
    def settle_interrupted_counts(self):
        """Finish adding to the statistics' counters what a writer that died half-way left
        pending on its complaint (services/intake/repository.py)."""
        settled = self.store.settle_counts()
        if settled:
            log.warning("statistics of %d complaint(s) settled after an interruption", settled)

    # work orders --------------------------------------------------------------

    @rpc
    @idempotent
    def register_work_order(self, data):
        data = self.caller.load(schemas.RegisterWorkOrder(), data)
        self._check_references(data)
        if data["complaint_id"]:
            complaint = self.store.find_complaint(data["complaint_id"])
            if complaint is None or complaint["estate_id"] != data["estate_id"]:
                raise InvalidInput({"complaint_id": ["unknown complaint in this estate"]})
        order_id = derived_id("wo") or work_orders.new_work_order_id()
        made = self.store.find_work_order(order_id)
        if made is not None:   # this request's first run made it, then died before answering
            return to_json(made)
        order, events = work_orders.register(
            order_id, data, self.policies.for_estate(data["estate_id"]), self.clock.now())
        return to_json(self.store.add_work_order(order, events))

    @rpc
    @idempotent
    def complete_work_order(self, work_order_id, data, expected_status=None):
        require_id(work_order_id, "id")
        data = self.caller.load(schemas.CompleteWorkOrder(), data)
        return self._change_order(work_order_id, lambda order, now: work_orders.complete(
            order, data, now, expected_status))

    @rpc
    @idempotent
    def cancel_work_order(self, work_order_id, data, expected_status=None):
        require_id(work_order_id, "id")
        data = self.caller.load(schemas.CancelWorkOrder(), data)
        return self._change_order(work_order_id, lambda order, now: work_orders.cancel(
            order, data, now, expected_status))

    @rpc
    def get_work_order(self, work_order_id):
        require_id(work_order_id, "id")
        return to_json(self.store.get_work_order(work_order_id))

    @rpc
    def list_work_orders(self, filters=None, paged=False):
        filters = paging.load_filters(schemas.WorkOrderFilters(), filters, paged)
        orders, next_cursor = self.store.list_work_orders(filters)
        return paging.answer([to_json(order) for order in orders], next_cursor, paged)

    # helpers ------------------------------------------------------------------

    def _register(self, data):
        self._check_references(data)
        complaint_id = derived_id("cmp") or domain.new_complaint_id()
        made = self.store.find_complaint(complaint_id)
        if made is not None:   # this request's first run made it, then died before answering
            return made
        policy = self.policies.for_estate(data["estate_id"])
        earlier = self.store.earlier_complaints(
            data["estate_id"], data["category"], data["household_id"],
            domain.reporter_key(data["reporter"]))
        complaint, events = domain.register(
            complaint_id, data, earlier, policy, self.clock.now())
        complaint = self.store.add_complaint(complaint, events)
        if complaint.get("work_order_pending"):
            self._open_emergency_work_order(complaint)
        return complaint

    def _move(self, complaint_id, action, actor, expected_status=None, **details):
        return self._change(complaint_id, lambda complaint, policy, now: domain.apply(
            complaint, action, actor, now, policy, expected_status, **details))

    def _change(self, complaint_id, change, handled_event=None):
        """Read, change, write if nobody else wrote meanwhile (else read again).

        ``change`` returns the changed complaint and its events, or None when there is
        nothing to do; with ``handled_event`` an event already applied is not applied again,
        nor a request whose first run changed it (``already_applied``).
        """
        require_id(complaint_id, "id")
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            complaint = self.store.get_complaint(complaint_id)
            if handled_event in complaint.get(HANDLED_EVENTS, ()) or already_applied(complaint):
                return self._view(complaint)
            policy = self.policies.for_estate(complaint["estate_id"])
            changed = change(complaint, policy, self.clock.now())
            if changed is None:
                return self._view(complaint)
            complaint, events = changed
            try:
                return self._view(
                    self.store.save_complaint(complaint, events, handled_event=handled_event))
            except ConcurrentUpdate:
                if attempt == WRITE_ATTEMPTS:
                    raise

    def _change_order(self, work_order_id, change):
        """A work order's step: read, change, write if nobody else wrote meanwhile (else
        ``ConcurrentUpdate``, the caller retries). ``change`` gives the order and its
        events, or None for a step that already happened."""
        order = self.store.get_work_order(work_order_id)
        changed = None if already_applied(order) else change(order, self.clock.now())
        if changed is None:
            return to_json(order)
        return to_json(self.store.save_work_order(*changed))

    def _open_emergency_work_order(self, complaint):
        """「对业主投诉的紧急维修内容转报处理」: the repair order, at once."""
        policy = self.policies.for_estate(complaint["estate_id"])
        order, events = work_orders.for_emergency(complaint, policy, self.clock.now())
        self.store.add_work_order_once(order, events)
        self.store.work_order_opened(complaint["_id"])

    def _figures(self, estate_id, period, counts, now, estate):
        """An estate's figures, under its names (``estate``: its view)."""
        start, end = self._bounds(period, estate["timezone"])
        return {"estate_id": estate_id, "name": estate["name"], "company": estate["company"],
                "region": estate["region"], "period": period, "from": start, "until": end,
                **stats.figures(counts, now)}

    @staticmethod
    @functools.lru_cache(maxsize=256)
    def _bounds(period, timezone):
        """The period's bounds in that zone, as the figures show them (the same for every
        estate of a zone: worked out once)."""
        return tuple(moment.isoformat() for moment in period_bounds(period, timezone))

    def _by_owner_token(self, token):
        """The complaint behind an owner's link that still works, and its estate's policy."""
        complaint = self.store.find_by_owner_token(schemas.require_owner_token(token))
        if complaint is None:
            raise owner.refuse_link()
        policy = self.policies.for_estate(complaint["estate_id"])
        if not owner.link_works(complaint, self.clock.now(), policy):
            raise owner.refuse_link()
        return complaint, policy

    def _group_zone(self):
        return self.policies.for_estate(None).timezone

    def _estate_view(self, estate):
        return to_json(estates.view(estate, self._group_zone()))

    def _new_estate(self, estate_id, data, field=None):
        """A new estate's record and announcement from ``data`` (``register_estate``'s
        fields; loaded here when ``field`` names the argument they came in)."""
        if field is not None:
            if data is None:
                raise InvalidInput({f"{field}.name": [
                    "required for a new estate (intake does not know this estate_id)"]})
            data = load(schemas.NewEstate(), data, field=field)
        estate, events = estates.register(estate_id, data, self._group_zone(),
                                          self.clock.now())
        try:
            self._check_policy(None, estate)
        except InvalidInput as exc:
            raise InvalidInput({f"{field}.{name}" if field else name: errors
                                for name, errors in exc.errors.items()}) from None
        return estate, events

    def _check_policy(self, before, estate):
        """The record's overrides must make a valid policy (``InvalidInput`` on ``policy``),
        and a routing they change must keep the departments revisit's follow-ups go to
        (on ``policy.routing``: ``estates.check_routing``)."""
        policy = self.policies.for_record(estate)
        if estates.reroutes(before, estate):
            estates.check_routing(policy.departments(),
                                  followup_departments(self.config, estate["_id"]))

    def _migrate(self, estate_id, created_at):
        """Write a legacy estate's record (``estates.legacy_record``): the record, or None
        when another writer got there first."""
        zone = self.policies.for_estate(estate_id).timezone   # ESTATE_POLICIES' zone, if any
        estate, events = estates.legacy_record(estate_id, zone, created_at, self.clock.now())
        return estate if self.store.migrate_estate(estate, events) else None

    def _require_estate(self, estate_id):
        """The estate an RPC is about (its argument): ``NotFound`` when intake does not know it."""
        estate = self.store.find_estate(require_id(estate_id, "estate_id"))
        if estate is None:
            raise NotFound("estate", estate_id)
        return estate

    def _check_estate(self, estate_id):
        """An estate named in an input's field: ``InvalidInput`` on it when unknown."""
        if not self.store.estate_exists(estate_id):
            raise InvalidInput({"estate_id": ["unknown estate"]})

    def _check_references(self, data):
        self._check_estate(data["estate_id"])
        household_id = data.get("household_id")
        if household_id:
            household = self.store.find_household(household_id)
            if household is None or household["estate_id"] != data["estate_id"]:
                raise InvalidInput({"household_id": ["unknown household in this estate"]})

    @staticmethod
    def _view(complaint):
        return to_json(domain.public_view(complaint))
