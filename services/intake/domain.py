"""Complaints: registration, deadlines, the state machine, overdue alerts and
escalation, repeats, reviews, outside units and flags. Pure Python.

Policy values (deadlines, routing, the escalation ladder) live in
``services/intake/policy.py``; the rules that use them live here.

Every change goes into the complaint's ``history`` (who, what, when, note):
「有处理记录,做到事事有着落,件件有回音」.

Deadlines are records in ``deadlines``: each has a ``kind``, the handling
``round`` it belongs to, ``due_at``, ``warn_at`` (when it is announced as
approaching, None for no warning), and ``met_at`` / ``superseded_at`` /
``warned_at`` / ``alerted_at``. A reopen or a review starts a new round: the open
deadlines of the old one are superseded, so nothing stale is ever alerted, and the
round climbs its own escalation ladder; its new deadlines get their own warnings.
"""
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from services.intake import work_orders
from services.intake.history import history_entry
from services.intake.policy import ComplaintPolicy, EscalationLevel
from shared.departments import check_department
from shared.documents import deep_copy
from shared.envelope import Changed, Envelope, record_event
from shared.errors import InvalidInput, InvalidTransition
from shared.expected_state import already_done
from shared.links import new_token
from shared.masking import mask_email, mask_phone, mask_text
from shared.periods import month_of
from shared.schemas.intake import INSTRUCTING_ROLES

SOURCE = "intake"
# How much of the owner's words a staff message quotes (complaint_assigned, _repeated).
SUMMARY_CHARS = 60

# action -> (states it may start from, state it leads to)
TRANSITIONS = {
    "acknowledge": ({"registered", "reopened"}, "acknowledged"),
    "assign": ({"acknowledged", "assigned"}, "assigned"),
    "resolve": ({"assigned"}, "resolved"),
    "close": ({"resolved"}, "closed"),
    "reopen": ({"resolved", "closed"}, "reopened"),
    # 「如果业主对投诉处理结果不满意,可以向物业公司申请复核」
    "request_review": ({"closed"}, "under_review"),
    "uphold_review": ({"under_review"}, "closed"),
    "overturn_review": ({"under_review"}, "reopened"),
}
STATES = ("registered", "acknowledged", "assigned", "resolved", "closed", "reopened",
          "under_review")
# Still being handled: someone above can be told.
ESCALATABLE = {"registered", "acknowledged", "assigned", "reopened", "under_review"}
# What a new round (reopen, review) starts afresh; special measures stay owed.
RESTARTING = ("first_response", "reply", "promised_reply", "review")
# What a step decided, kept on its history line (history line key -> complaint field): the
# complaint itself keeps only the latest, and the notes are staff's words.
HISTORY_DETAILS = {
    "assign": {"department": "department", "reply_promised_at": "reply_promised_at"},
    "reopen": {"source": "reopen_source"},
}


def new_complaint_id() -> str:
    return f"cmp-{uuid.uuid4().hex[:16]}"


def new_owner_token() -> str:
    """The credential of the owner's page (/c/<token>): unguessable, never shown to staff."""
    return new_token()


# What one transition's step gives ``apply``: the history line's note and the events.
Step = tuple[str, list[Envelope]]


# registration ---------------------------------------------------------------------

def register(complaint_id: str, data: dict, earlier: Iterable[dict], policy: ComplaintPolicy,
             now: datetime) -> Changed:
    """A new complaint and its events: ``complaint_registered``, and
    ``complaint_repeated`` when it repeats one of ``earlier`` (the household's or
    reporter's complaints in the same category)."""
    received_at = data.get("received_at") or now
    _not_in_the_future(received_at, now, "received_at")
    complaint = {
        "_id": complaint_id,
        "estate_id": data["estate_id"],
        # 「直接向公司或公司经理投诉」: "company" when made to the company, not an estate
        "level": data.get("level") or "estate",
        "household_id": data.get("household_id"),
        "reporter": data.get("reporter"),
        # who to match a walk-in's next complaint by; never shown (a full number)
        "reporter_key": reporter_key(data.get("reporter")),
        # the owner's link (services/intake/owner.py); only notify and the owner see it
        "owner_token": new_owner_token(),
        "channel": data["channel"],
        "category": data["category"],
        "severity": data["severity"],
        "content": data["content"],
        "status": "registered",
        "received_at": received_at,
        "registered_at": now,
        "routed_department": policy.department_for(data["category"]),
        "department": None,
        "assignee_id": None,
        "external": None,
        "reply_promised_at": None,
        "repeat_of": None,
        "special_measures_due": None,
        "special_measures": [],
        "work_order_id": None,
        "malicious": False,
        "malicious_flag": None,
        "reviews": [],
        "round": 0,
        "closing_no": 0,
        "reopen_no": 0,
        "deadlines": [],
        "escalations": [],
        "history": [history_entry(now, data.get("staff_id") or "reporter", "register", None,
                           "registered", data["channel"])],
    }
    _owe_answers(complaint, received_at, policy)
    events = []
    repeat_of = find_repeat(complaint, earlier, policy)
    if repeat_of:
        due = received_at + policy.special_measures_within
        complaint.update(repeat_of=repeat_of, special_measures_due=due)
        complaint["deadlines"].append(_deadline("special_measures", due, 0))
    if work_orders.is_emergency_repair(complaint, policy):
        # The order itself is written right after the complaint; the flag lets the
        # deadline sweep finish the job if the process dies in between.
        complaint.update(work_order_id=work_orders.emergency_work_order_id(complaint_id),
                         work_order_pending=True)
    events.append(_event("complaint_registered", complaint, {
        key: complaint[key] for key in (
            "household_id", "category", "severity", "channel", "received_at",
            "first_response_due", "reply_due", "repeat_of", "routed_department",
            "special_measures_due", "work_order_id", "level")
    }, now))
    if repeat_of:
        events.append(_event("complaint_repeated", complaint, {
            **{key: complaint[key] for key in (
                "repeat_of", "household_id", "category", "special_measures_due")},
            "summary": summary(complaint)}, now))
    return _rescheduled(complaint, policy), events


def find_repeat(complaint: dict, earlier: Iterable[dict], policy: ComplaintPolicy) -> str | None:
    """The earlier complaint this one repeats, or None.

    「收到客户对服务仍存在缺陷的再次投诉时,服务中心应在24小时内安排特殊措施」: the
    same household (or, without one, the same reporter's phone) about the same
    category, while the earlier complaint is still open or within the estate's
    window after it was closed. The most recent such complaint wins.
    """
    window_start = complaint["received_at"] - policy.repeat_window

    def same_matter(other: dict) -> bool:
        return (other["_id"] != complaint["_id"]
                and other["estate_id"] == complaint["estate_id"]
                and other["category"] == complaint["category"]
                and other["received_at"] <= complaint["received_at"]
                and _same_reporter(other, complaint))

    def still_live(other: dict) -> bool:
        return other["status"] != "closed" or other["closed_at"] >= window_start

    matches = [other for other in earlier if same_matter(other) and still_live(other)]
    return max(matches, key=lambda other: other["received_at"])["_id"] if matches else None


def _same_reporter(one: dict, other: dict) -> bool:
    if one.get("household_id") or other.get("household_id"):
        return one.get("household_id") == other.get("household_id")
    keys = [reporter_key(complaint.get("reporter")) for complaint in (one, other)]
    return keys[0] is not None and keys[0] == keys[1]


def reporter_key(reporter: dict | None) -> str | None:
    """A reporter's phone as digits only, without +86: the same person however typed."""
    digits = "".join(ch for ch in (reporter or {}).get("phone") or "" if ch.isdigit())
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    return digits or None


# the state machine ---------------------------------------------------------------------

def apply(complaint: dict, action: str, by: str | None, now: datetime, policy: ComplaintPolicy,
          expected_status: str | None = None, **details: Any) -> Changed | None:
    """Move ``complaint`` through ``action``: the changed complaint and its events, or None
    when ``expected_status`` shows this very step already happened (a retry: the complaint
    is answered as it is; ``shared.expected_state``).

    Raises ``InvalidTransition`` naming the current state if ``TRANSITIONS``
    does not allow the action from it, or the complaint is not in ``expected_status``.
    ``details`` are the action's inputs.
    """
    allowed_from, target = TRANSITIONS[action]
    current = complaint["status"]
    if already_done("complaint", complaint["_id"], action, current, expected_status, STATES,
                    leads_to=target, last=last_step(complaint), this=(by, action)):
        return None
    if current not in allowed_from:
        raise InvalidTransition("complaint", complaint["_id"], current, action)
    complaint = deep_copy(complaint)
    complaint["status"] = target
    note, events = STEPS[action](complaint, by, now, policy, **details)
    decided = {key: complaint.get(field) for key, field in HISTORY_DETAILS.get(action, {}).items()}
    complaint["history"].append(history_entry(now, by, action, current, target, note, **decided))
    return _rescheduled(complaint, policy), events


def last_step(complaint: dict) -> tuple[str | None, str] | None:
    """(who, what) of the last step that moved the complaint (notes, alerts and
    escalations in between move nothing), or None."""
    moved = [line for line in complaint["history"] if line["action"] in TRANSITIONS]
    return (moved[-1]["by"], moved[-1]["action"]) if moved else None


def expect(complaint: dict, expected_status: str | None, action: str) -> None:
    """A step alongside the state machine (escalating, flagging, …) changes no state: it
    only checks the caller saw the complaint's."""
    already_done("complaint", complaint["_id"], action, complaint["status"], expected_status,
                 STATES)


def _acknowledge(complaint: dict, by: str | None, now: datetime, policy: ComplaintPolicy,
                 note: str = "") -> Step:
    """「接到客户投诉后,应首先向业主表示歉意」: the first reply to the owner."""
    complaint.update(acknowledged_at=now, acknowledged_by=by)
    _meet(complaint, ("first_response",), now)
    return note, [_event("complaint_acknowledged", complaint,
                         {"staff_id": by, "acknowledged_at": now}, now)]


def _assign(complaint: dict, by: str | None, now: datetime, policy: ComplaintPolicy,
            department: str | None = None, assignee_id: str | None = None,
            external_unit: str | None = None, reply_promised_at: datetime | None = None) -> Step:
    """To the responsible department (the routing table's unless named: one the estate's
    routing names, whoever calls); outside units are referred and followed, not dropped; a
    promised reply time is a firm reply."""
    if department:
        check_department(department, policy.departments())
    department = department or policy.department_for(complaint["category"])
    complaint.update(department=department, assignee_id=assignee_id, assigned_at=now)
    note = f"to {department}" + (f" ({assignee_id})" if assignee_id else "")
    if external_unit and (complaint["external"] or {}).get("unit") != external_unit:
        # 「属于外单位责任范围的,积极协调相关部门帮助业主解决问题」
        complaint["external"] = {"unit": external_unit, "status": "referred", "reference": None,
                                 "referred_at": now, "updated_at": now}
        note += f"; referred to {external_unit}"
    if reply_promised_at:
        # 「对业主反映的问题,不能立即答复的,应确定具体答复时间」
        if reply_promised_at <= now:
            raise InvalidInput({"reply_promised_at": ["must be in the future"]})
        _meet(complaint, ("reply",), now)
        _supersede(complaint, ("promised_reply",), now)
        complaint["deadlines"].append(
            _deadline("promised_reply", reply_promised_at, complaint["round"]))
        complaint["reply_promised_at"] = reply_promised_at
        note += f"; reply promised by {reply_promised_at.isoformat()}"
    external = complaint["external"] or {}
    return note, [_event("complaint_assigned", complaint, {
        "department": department, "assignee_id": assignee_id,
        "external_unit": external.get("unit"), "reply_promised_at": reply_promised_at,
        "assigned_at": now,
        "reply_due": reply_promised_at or complaint["reply_due"], "summary": summary(complaint),
    }, now)]


def _resolve(complaint: dict, by: str | None, now: datetime, policy: ComplaintPolicy,
             resolution: str) -> Step:
    complaint.update(resolution=resolution, resolved_at=now, resolved_by=by)
    _meet(complaint, ("reply", "promised_reply"), now)
    return resolution, [_event("complaint_resolved", complaint, {
        "staff_id": by, "resolved_at": now, "resolution": resolution}, now)]


def _close(complaint: dict, by: str | None, now: datetime, policy: ComplaintPolicy,
           owner_signoff: str, closed_at: datetime | None = None) -> Step:
    closed_at = closed_at or now
    _not_in_the_future(closed_at, now, "closed_at")
    if closed_at < complaint["received_at"]:
        raise InvalidInput({"closed_at": ["before the complaint was received"]})
    complaint.update(closed_at=closed_at, closed_by=by, owner_signoff=owner_signoff)
    complaint["closing_no"] += 1
    return f"owner sign-off: {owner_signoff}", [_event("complaint_closed", complaint, {
        key: complaint[key] for key in ("household_id", "category", "severity", "closed_at",
                                        "owner_signoff", "closing_no", "malicious")
    }, now)]


def _reopen(complaint: dict, by: str | None, now: datetime, policy: ComplaintPolicy,
            reason: str, source: str) -> Step:
    """A reopened complaint starts over: fresh deadlines from now, a fresh ladder."""
    complaint["reopen_no"] += 1
    complaint.update(reopen_source=source, reopened_at=now, reply_promised_at=None)
    _new_round(complaint, now)
    _owe_answers(complaint, now, policy)
    return reason, [_event("complaint_reopened", complaint, {
        "reason": reason, "source": source, "reopened_at": now,
        "reopen_no": complaint["reopen_no"]}, now)]


def _request_review(complaint: dict, by: str | None, now: datetime, policy: ComplaintPolicy,
                    reason: str, requested_by: str | None = None) -> Step:
    _new_round(complaint, now)
    due = policy.calendar.add_working_days(now, policy.review_working_days)
    review = {"no": len(complaint["reviews"]) + 1, "reason": reason,
              "requested_by": requested_by, "recorded_by": by, "requested_at": now,
              "due_at": due, "outcome": None, "finding": None, "decided_by": None,
              "decided_at": None}
    complaint["reviews"].append(review)
    complaint["deadlines"].append(_deadline("review", due, complaint["round"]))
    return reason, [_event("complaint_review_requested", complaint, {
        "review_no": review["no"], "requested_at": now, "due_at": due, "reason": reason}, now)]


def _uphold_review(complaint: dict, by: str | None, now: datetime, policy: ComplaintPolicy,
                   finding: str) -> Step:
    """The review confirms the outcome: the complaint is closed again, as it was."""
    return finding, [_decide_review(complaint, by, now, "upheld", finding)]


def _overturn_review(complaint: dict, by: str | None, now: datetime, policy: ComplaintPolicy,
                     finding: str) -> Step:
    """The review finds the outcome wrong: the complaint is worked again."""
    decided = _decide_review(complaint, by, now, "overturned", finding)
    _, reopened = _reopen(complaint, by, now, policy, finding, "review")
    return finding, [decided, *reopened]


def _decide_review(complaint: dict, by: str | None, now: datetime, outcome: str,
                   finding: str) -> Envelope:
    review = complaint["reviews"][-1]
    review.update(outcome=outcome, finding=finding, decided_by=by, decided_at=now)
    _meet(complaint, ("review",), now)
    return _event("complaint_reviewed", complaint, {
        "review_no": review["no"], "outcome": outcome, "reviewer_id": by, "decided_at": now,
        "finding": finding}, now)


# action -> its step: (the history note, the events), given the complaint and the inputs
STEPS: dict[str, Callable[..., Step]] = {
    "acknowledge": _acknowledge,
    "assign": _assign,
    "resolve": _resolve,
    "close": _close,
    "reopen": _reopen,
    "request_review": _request_review,
    "uphold_review": _uphold_review,
    "overturn_review": _overturn_review,
}


def allowed_actions(complaint: dict, policy: ComplaintPolicy) -> list[str]:
    """What the complaint's state allows now: each transition of ``TRANSITIONS`` from its
    status, ``escalate`` while a rung of the ladder is left, ``special_measures`` for a
    repeat, ``external_status`` once an outside unit has it, ``flag_malicious`` (or lifting
    the flag) always. Whose role permits which is the gateway's table, not this."""
    status = complaint["status"]
    actions = [action for action, (starts, _) in TRANSITIONS.items() if status in starts]
    if status in ESCALATABLE and _levels_ahead(complaint, policy):
        actions.append("escalate")
    if complaint.get("repeat_of"):
        actions.append("special_measures")
    if complaint.get("external"):
        actions.append("external_status")
    if awaits_instruction(complaint):
        actions.append("instruct")
    return [*actions, "flag_malicious"]


def escalated_role(complaint: dict) -> str | None:
    """The rung (its role) this round of handling has been taken up to, None for none."""
    this_round = [step for step in complaint["escalations"] if step["round"] == complaint["round"]]
    return max(this_round, key=lambda step: step["level"])["role"] if this_round else None


def awaits_instruction(complaint: dict) -> bool:
    """「待经理做出明确指示」: a complaint still being handled whose round has been taken up
    to a manager's rung (the estate's or the company's) takes that manager's instruction."""
    return complaint["status"] in ESCALATABLE and escalated_role(complaint) in INSTRUCTING_ROLES


def can_reopen_after_revisit(complaint: dict) -> bool:
    """An unsatisfied follow-up reopens a finished complaint; a live one is already open."""
    return complaint["status"] in TRANSITIONS["reopen"][0]


# alongside the state machine ----------------------------------------------------------

def take_special_measures(complaint: dict, by: str | None, measures: str, now: datetime,
                          policy: ComplaintPolicy, expected_status: str | None = None) -> Changed:
    """What the service centre did about a repeat complaint, within the 24 hours owed."""
    expect(complaint, expected_status, "take special measures for")
    if not complaint.get("repeat_of"):
        raise InvalidTransition("complaint", complaint["_id"], "not a repeat complaint",
                                "take special measures for")
    complaint = deep_copy(complaint)
    on_time = now <= complaint["special_measures_due"]
    complaint["special_measures"].append({"at": now, "by": by, "measures": measures})
    _meet(complaint, ("special_measures",), now)
    _note(complaint, now, by, "special_measures", measures)
    return _rescheduled(complaint, policy), [_event("complaint_special_measures_taken", complaint, {
        "repeat_of": complaint["repeat_of"], "staff_id": by, "taken_at": now,
        "on_time": on_time}, now)]


def update_external_status(complaint: dict, by: str | None, data: dict, now: datetime,
                           policy: ComplaintPolicy, expected_status: str | None = None,
                           ) -> Changed:
    """Where the outside unit stands: the matter keeps its own status, followed up."""
    expect(complaint, expected_status, "update the outside unit of")
    if not complaint.get("external"):
        raise InvalidTransition("complaint", complaint["_id"], "not referred to an outside unit",
                                "update the outside unit of")
    complaint = deep_copy(complaint)
    external = complaint["external"]
    external.update(status=data["status"], updated_at=now)
    if data.get("reference"):
        external["reference"] = data["reference"]
    _note(complaint, now, by, "external_update", f"{external['unit']}: {data['status']}; "
          f"{data['note']}")
    return _rescheduled(complaint, policy), [_event("complaint_referral_updated", complaint, {
        "external_unit": external["unit"], "status": external["status"], "updated_at": now}, now)]


def flag_malicious(complaint: dict, data: dict, now: datetime, policy: ComplaintPolicy,
                   expected_status: str | None = None) -> Changed:
    """「对业主的恶意投诉,做到坚持原则并耐心解释」: flagged by a supervisor with a reason,
    left out of the statistics, never deleted. ``malicious`` false lifts the flag."""
    expect(complaint, expected_status, "flag" if data["malicious"] else "unflag")
    if complaint["malicious"] == data["malicious"]:
        state = "already flagged malicious" if data["malicious"] else "not flagged malicious"
        raise InvalidTransition("complaint", complaint["_id"], state,
                                "flag" if data["malicious"] else "unflag")
    complaint = deep_copy(complaint)
    complaint["malicious"] = data["malicious"]
    complaint["malicious_flag"] = {"by": data["flagged_by"], "role": data["role"],
                                   "reason": data["reason"], "at": now,
                                   "malicious": data["malicious"]}
    action = "flag_malicious" if data["malicious"] else "unflag_malicious"
    _note(complaint, now, data["flagged_by"], action, data["reason"])
    return _rescheduled(complaint, policy), [_event("complaint_flagged_malicious", complaint, {
        "malicious": data["malicious"], "flagged_by": data["flagged_by"], "role": data["role"],
        "flagged_at": now}, now)]


# deadlines, overdue alerts and escalation ------------------------------------------------

def open_deadlines(complaint: dict) -> list[dict]:
    return [deadline for deadline in complaint["deadlines"]
            if deadline["met_at"] is None and deadline["superseded_at"] is None]


def is_overdue(complaint: dict, now: datetime) -> bool:
    return complaint.get("next_due_at") is not None and complaint["next_due_at"] <= now


def check_deadlines(complaint: dict, now: datetime, policy: ComplaintPolicy) -> Changed:
    """The alerts due by ``now``: ``complaint_deadline_approaching`` once for each deadline
    whose warning time has come while it is still ahead, ``complaint_overdue`` once for
    each missed deadline, then ``complaint_escalated`` up the estate's ladder, each rung
    once a round. A warning the timer reaches only after its deadline is not sent: the
    overdue alert says more.

    The ladder is climbed while a deadline of the current round stays missed,
    each rung ``after`` the first miss, while the complaint is still being handled
    (``ESCALATABLE``: a resolved or closed one that still owes special measures is
    alerted overdue, not taken up to the company). Major and emergency complaints
    start higher (the estate manager). A timer calls this; the caller saves the
    result only if nobody changed the complaint meanwhile, so each alert goes out once.
    """
    complaint = deep_copy(complaint)
    events: list[Envelope] = []
    for deadline in sorted(open_deadlines(complaint), key=lambda item: item["due_at"]):
        if deadline["due_at"] <= now and deadline["alerted_at"] is None:
            deadline["alerted_at"] = now
            _note(complaint, now, "system", "overdue",
                  f"{deadline['kind']} was due {deadline['due_at'].isoformat()}")
            events.append(_event("complaint_overdue", complaint, {
                "deadline": deadline["kind"], "due_at": deadline["due_at"],
                "reopen_no": complaint["reopen_no"], "summary": summary(complaint),
                **_handlers(complaint)}, now))
        elif _warning_due(deadline, now):
            deadline["warned_at"] = now
            _note(complaint, now, "system", "deadline_approaching",
                  f"{deadline['kind']} due {deadline['due_at'].isoformat()}")
            events.append(_event("complaint_deadline_approaching", complaint, {
                "deadline": deadline["kind"], "due_at": deadline["due_at"],
                "minutes_left": int((deadline["due_at"] - now).total_seconds() // 60),
                "reopen_no": complaint["reopen_no"], "summary": summary(complaint),
                **_handlers(complaint)}, now))
    missed = _missed_this_round(complaint, now)
    if missed and complaint["status"] in ESCALATABLE:
        first = min(missed, key=lambda item: item["due_at"])
        for level in _levels_ahead(complaint, policy):
            if _rung_due(complaint, level, first["due_at"], policy) > now:
                break
            events.append(_climb(complaint, level, now, "system",
                                 f"{first['kind']} overdue since {first['due_at'].isoformat()}",
                                 first))
    return _rescheduled(complaint, policy), events


def _warning_due(deadline: dict, now: datetime) -> bool:
    """Is the deadline's warning owed at ``now`` (its time come, not sent, still ahead)?"""
    warn_at = deadline.get("warn_at")   # none on deadlines stored before warnings
    return (warn_at is not None and warn_at <= now < deadline["due_at"]
            and deadline.get("warned_at") is None)


def escalate(complaint: dict, by: str | None, reason: str, now: datetime, policy: ComplaintPolicy,
             role: str | None = None, expected_status: str | None = None) -> Changed:
    """A member of staff takes the complaint up by hand: the next rung, or straight to
    ``role`` when the matter is beyond their authority (「对于超越自己权限的投诉事件应及时向
    公司经理汇报」). Counts as that rung for the round; the rungs below are passed."""
    roles = [level.role for level in policy.escalation_levels]
    if role is not None and role not in roles:
        raise InvalidInput({"role": [f"not on the estate's escalation ladder ({', '.join(roles)})"]})
    expect(complaint, expected_status, "escalate")
    if complaint["status"] not in ESCALATABLE:
        raise InvalidTransition("complaint", complaint["_id"], complaint["status"], "escalate")
    ahead = _levels_ahead(complaint, policy)
    if role is not None:
        ahead = [level for level in ahead if level.role == role]
    if not ahead:
        reached = _reached(complaint)
        state = (f"already escalated to {policy.level(reached).role}" if reached else
                 f"a {complaint['severity']} complaint, escalated above {role}")
        raise InvalidTransition("complaint", complaint["_id"], state, "escalate")
    complaint = deep_copy(complaint)
    event = _climb(complaint, ahead[0], now, by, reason, None)
    return _rescheduled(complaint, policy), [event]


def _levels_ahead(complaint: dict, policy: ComplaintPolicy) -> Sequence[EscalationLevel]:
    start = max(_reached(complaint) + 1, policy.escalation_start(complaint["severity"]))
    return policy.escalation_levels[start - 1:]


def _reached(complaint: dict) -> int:
    """The highest rung of this round so far, 0 for none."""
    return max((step["level"] for step in complaint["escalations"]
                if step["round"] == complaint["round"]), default=0)


def _climb(complaint: dict, level: EscalationLevel, now: datetime, by: str | None, reason: str,
           deadline: dict | None) -> Envelope:
    complaint["escalations"].append({
        "level": level.level, "role": level.role, "round": complaint["round"], "at": now,
        "by": by, "reason": reason, "manual": deadline is None})
    _note(complaint, now, by, "escalate", f"level {level.level} ({level.role}): {reason}")
    return _event("complaint_escalated", complaint, {
        "level": level.level, "role": level.role, "reason": reason, "manual": deadline is None,
        "deadline": deadline and deadline["kind"], "due_at": deadline and deadline["due_at"],
        "reopen_no": complaint["reopen_no"], "summary": summary(complaint),
        **_handlers(complaint)}, now)


def _rung_due(complaint: dict, level: EscalationLevel, missed_at: datetime,
              policy: ComplaintPolicy) -> datetime:
    """When ``level`` is due after the first miss. A ladder that starts higher (major
    complaints) reaches its first rung when the first rung would have been reached."""
    start = policy.level(policy.escalation_start(complaint["severity"]))
    skipped = start.after - policy.level(1).after
    return missed_at + level.after - skipped


def _missed_this_round(complaint: dict, now: datetime) -> list[dict]:
    return [deadline for deadline in open_deadlines(complaint)
            if deadline["due_at"] <= now and deadline["round"] == complaint["round"]]


def _rescheduled(complaint: dict, policy: ComplaintPolicy) -> dict:
    """Keep the fields the store queries by in step with the deadlines:
    ``next_due_at`` (overdue when past), ``next_warn_at`` (its warning time: approaching
    from then) and ``alert_due_at`` (when the timer looks next: the next warning, missed
    deadline or rung); and ``stats_month``, the month of receipt its statistics count it
    in, in the estate's time zone (a complaint stored before it had one gets it at its
    next change). A new deadline gets its warning time here, from the estate's policy."""
    complaint.setdefault("stats_month", month_of(complaint["received_at"], policy.timezone))
    pending = open_deadlines(complaint)
    for deadline in pending:
        if "warn_at" not in deadline:
            deadline.update(warn_at=policy.warning_at(deadline["kind"], deadline["due_at"]),
                            warned_at=None)
    earliest = min(pending, key=lambda item: item["due_at"], default=None)
    complaint["next_due_at"] = earliest and earliest["due_at"]
    complaint["next_due"] = earliest and earliest["kind"]
    complaint["next_warn_at"] = earliest and earliest["warn_at"]
    moments = [deadline["due_at"] for deadline in pending if deadline["alerted_at"] is None]
    moments += [deadline["warn_at"] for deadline in pending
                if deadline["warn_at"] is not None and deadline["warned_at"] is None
                and deadline["alerted_at"] is None]
    alerted = [deadline["due_at"] for deadline in pending
               if deadline["alerted_at"] is not None and deadline["round"] == complaint["round"]]
    ahead = _levels_ahead(complaint, policy)
    if alerted and ahead and complaint["status"] in ESCALATABLE:
        moments.append(_rung_due(complaint, ahead[0], min(alerted), policy))
    complaint["alert_due_at"] = min(moments, default=None)
    return complaint


def _owe_answers(complaint: dict, start: datetime, policy: ComplaintPolicy) -> None:
    """The first reply owed from ``start`` on the estate's working days, and the answer
    in its kind of days (``ComplaintPolicy.reply_due``)."""
    first = policy.calendar.add_working_days(start, policy.first_response_working_days)
    reply = policy.reply_due(start)
    complaint.update(first_response_due=first, reply_due=reply)
    complaint["deadlines"] += [_deadline("first_response", first, complaint["round"]),
                               _deadline("reply", reply, complaint["round"])]


def _new_round(complaint: dict, now: datetime) -> None:
    complaint["round"] += 1
    _supersede(complaint, RESTARTING, now)


def _deadline(kind: str, due_at: datetime, round_no: int) -> dict:
    return {"kind": kind, "round": round_no, "due_at": due_at, "met_at": None,
            "superseded_at": None, "alerted_at": None}


def _meet(complaint: dict, kinds: Collection[str], at: datetime) -> None:
    for deadline in open_deadlines(complaint):
        if deadline["kind"] in kinds:
            deadline["met_at"] = at


def _supersede(complaint: dict, kinds: Collection[str], at: datetime) -> None:
    for deadline in open_deadlines(complaint):
        if deadline["kind"] in kinds:
            deadline["superseded_at"] = at


def _handlers(complaint: dict) -> dict:
    return {"department": complaint.get("department") or complaint.get("routed_department"),
            "assignee_id": complaint.get("assignee_id")}


# views ------------------------------------------------------------------------------------

HIDDEN = ("alert_due_at", "work_order_pending", "reporter_key", "owner_token")


def public_view(document: dict) -> dict:
    """A complaint or household as staff and other services may see it: contacts masked."""
    view = {key: value for key, value in document.items() if key not in HIDDEN}
    if view.get("reporter"):
        view["reporter"] = dict(view["reporter"], phone=mask_phone(view["reporter"]["phone"]))
    if "contacts" in view:
        view["contacts"] = [
            dict(contact, phone=mask_phone(contact["phone"]), email=mask_email(contact.get("email")))
            for contact in view["contacts"]
        ]
    return view


def preferred_contact(contacts: list[dict]) -> dict | None:
    """The contact marked primary, else the first listed."""
    return next((contact for contact in contacts if contact.get("primary")),
                contacts[0] if contacts else None)


def household_conflicts(estate_id: str, rows: Iterable[dict],
                        existing: Mapping[str, str]) -> dict[str, list[str]]:
    """Field errors for rows that cannot be imported into ``estate_id``: a household id
    listed twice, or one that already belongs to another estate (``existing``: id -> estate)."""
    errors: dict[str, list[str]] = {}
    seen: dict[str, int] = {}
    for index, row in enumerate(rows):
        household_id = row["household_id"]
        if household_id in seen:
            errors[f"rows.{index}.household_id"] = [
                f"listed twice (also row {seen[household_id]})"]
        seen.setdefault(household_id, index)
        other = existing.get(household_id)
        if other is not None and other != estate_id:
            errors[f"rows.{index}.household_id"] = [f"belongs to estate {other}"]
    return errors


# helpers ------------------------------------------------------------------------------------

def _not_in_the_future(moment: datetime, now: datetime, field: str) -> None:
    if moment > now + work_orders.CLOCK_SKEW:
        raise InvalidInput({field: ["must not be in the future"]})


def _note(complaint: dict, at: datetime, by: str | None, action: str, note: str | None) -> None:
    status = complaint["status"]
    complaint["history"].append(history_entry(at, by, action, status, status, note))


def summary(complaint: dict) -> str:
    """The start of the owner's words for the staff who act on them: masked before it is
    cut, so that no half of a number escapes the mask."""
    return mask_text(complaint.get("content") or "")[:SUMMARY_CHARS]


def _event(event_type: str, complaint: dict, data: dict, now: datetime) -> Envelope:
    # Every change a complaint keeps adds to its history, so the history's length when the
    # event is built names the change (with the type, each event of it): built again for
    # the same change (a timer's pass after a crash), an event has the same id.
    return record_event(event_type, SOURCE, complaint, "complaint_id", data, now,
                        key=f"{complaint['_id']}/{len(complaint['history'])}")
