"""Which event tells whom what (``NOTIFICATIONS``), and the check that every template
fits the notifications that use it. Pure Python.

Policy text: 「回访可以通过电话、邮件、短信等方式进行」 — channels are interchangeable
plug-ins; what an event calls for is a message to someone, not a channel.
"""
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from services.notify.event_params import (
    CONTACT_PARAMS,
    ESTATE_PARAMS,
    Context,
    Data,
    Params,
    appointment_params,
    complaint_assigned_params,
    complaint_closed_params,
    complaint_deadline_approaching_params,
    complaint_escalated_params,
    complaint_overdue_params,
    complaint_received_params,
    complaint_repeated_params,
    complaint_resolved_params,
    complaint_reviewed_params,
    complaint_routed_params,
    estate_params,
    followup_answered_params,
    followup_params,
    instruction_params,
    onsite_revisit_params,
    rectification_done_params,
    rectification_overdue_params,
    rectification_params,
    reminder_time,
    review_requested_params,
    revisit_online_params,
    revisit_overdue_params,
    revisit_scheduled_params,
    survey_cadence_params,
    survey_invitation_params,
    survey_reminder_params,
    survey_report_params,
    survey_round_closed_params,
)
from services.notify.message_templates import Template, placeholders
from services.notify.recipients import (
    Recipients,
    RecipientsOf,
    by_roles,
    contact_of,
    every_household,
    from_directory,
)


@dataclass(frozen=True)
class Notification:
    template: str
    audience: str
    supplies: tuple[str, ...]            # parameter names ``build`` fills
    build: Callable[[Data, Context], Params]
    ref: Callable[[Data], str]           # the id the log files it under
    recipients: RecipientsOf
    requires: tuple[str, ...] = ()       # what the template must show: the point of the message
    send_at: Callable[[Data, Context], datetime] | None = None   # None: at once
    skip_when_late: bool = False         # a reminder whose moment has passed is pointless


def message_params(notification: Notification, data: Data, context: Context) -> Params:
    """What ``notification``'s message about an event (``data``) is written from: what the
    event supplies (``build``) and the estate's own."""
    return {**notification.build(data, context), **estate_params(context)}


def _onsite_visitor(data: Data) -> Recipients | None:
    """「重大投诉…由主管或经理上门回访」: the supervisor or manager who must go, told when the
    revisit's window opens; phone and message revisits are the desk's worklist."""
    if data["method"] != "onsite" or data["assigned_role"] not in ONSITE_VISITORS:
        return None
    return Recipients(tuple(dict.fromkeys((("role", data["assigned_role"]), ("role", "manager")))))


def _household_if_online(online: bool) -> RecipientsOf:
    """The household, for the one of a revisit's two messages that fits it: with the link
    to answer online (the event carries its token) or without."""
    household = contact_of("household_id")
    return lambda data: household(data) if bool(data.get("token")) is online else None


def _ref(field: str) -> Callable[[Data], str]:
    """A notification's ``ref``: the event's own id in ``field``."""
    return lambda data: data[field]


# Who goes on an on-site revisit that staff must be told of (a major complaint's).
ONSITE_VISITORS = ("supervisor", "manager")
# 「回访逾期…上报公司领导」: who hears that a revisit is late (or the answer it promised)
LATE_REVISIT_LADDER = by_roles("manager", "company_manager")

# event type -> the notifications it triggers, in the order they are sent
NOTIFICATIONS: dict[str, tuple[Notification, ...]] = {
    "complaint_registered": (Notification(
        "complaint_received", "owner",
        ("complaint_id", "received_at", "first_response_due", "reply_due"),
        complaint_received_params, ref=_ref("complaint_id"),
        recipients=contact_of("complaint_id"), requires=("complaint_id", "reply_due")),),
    "complaint_assigned": (
        Notification(
            "complaint_assigned", "staff",
            ("complaint_id", "department", "assigned_at", "reply_due", "summary", "console_url"),
            complaint_assigned_params, ref=_ref("complaint_id"),
            recipients=from_directory(lambda d: ("staff", d["assignee_id"]),
                                  lambda d: ("department", d["department"]),
                                  lambda d: ("role", "supervisor")),
            requires=("complaint_id", "reply_due", "summary")),
        # 第十三条「及时向业主反馈处理进展情况」: which department, and by when it answers
        Notification(
            "complaint_routed", "owner", ("complaint_id", "department", "reply_due"),
            complaint_routed_params, ref=_ref("complaint_id"), recipients=contact_of("complaint_id"),
            requires=("department", "reply_due")),
    ),
    "complaint_overdue": (Notification(
        "complaint_overdue", "supervisor",
        ("complaint_id", "deadline", "due_at", "summary", "console_url"),
        complaint_overdue_params, ref=_ref("complaint_id"),
        recipients=by_roles("supervisor", "manager"),
        requires=("complaint_id", "summary")),),
    # before the deadline, not only after it: whoever has the complaint (the assignee, else
    # its department), else the supervisors who answer for the service centre
    "complaint_deadline_approaching": (Notification(
        "complaint_deadline_approaching", "staff",
        ("complaint_id", "deadline", "due_at", "hours_left", "minutes_left", "summary",
         "console_url"),
        complaint_deadline_approaching_params, ref=_ref("complaint_id"),
        recipients=from_directory(lambda d: ("staff", d["assignee_id"]),
                              lambda d: ("department", d["department"]),
                              lambda d: ("role", "supervisor")),
        requires=("complaint_id", "deadline", "due_at")),),
    "complaint_escalated": (Notification(
        "complaint_escalated", "manager",
        ("complaint_id", "level", "role", "cause", "summary", "console_url"),
        complaint_escalated_params, ref=_ref("complaint_id"),
        recipients=from_directory(lambda d: ("role", d["role"]), lambda d: ("role", "manager")),
        requires=("complaint_id", "cause", "summary")),),
    # 「待经理做出明确指示后,妥善处理」: whoever has the complaint (the assignee, else its
    # department, else the supervisors) hears what the manager decided
    "complaint_instruction_recorded": (Notification(
        "complaint_instruction_recorded", "staff",
        ("complaint_id", "role", "instruction", "summary", "console_url"),
        instruction_params, ref=_ref("complaint_id"),
        recipients=from_directory(lambda d: ("staff", d["assignee_id"]),
                              lambda d: ("department", d["department"]),
                              lambda d: ("role", "supervisor")),
        requires=("complaint_id", "instruction")),),
    # 「收到客户对服务仍存在缺陷的再次投诉时,服务中心应在24小时内安排特殊措施」: the
    # supervisors and the managers both, at once (staff have no quiet hours)
    "complaint_repeated": (Notification(
        "complaint_repeated", "supervisor",
        ("complaint_id", "repeat_of", "category", "summary", "special_measures_due",
         "console_url"),
        complaint_repeated_params, ref=_ref("complaint_id"),
        recipients=by_roles("supervisor", "manager", together=True),
        requires=("complaint_id", "repeat_of", "special_measures_due")),),
    # 第十六条: what was done, before the closing and the revisit
    "complaint_resolved": (Notification(
        "complaint_resolved", "owner", ("complaint_id", "resolution"),
        complaint_resolved_params, ref=_ref("complaint_id"), recipients=contact_of("complaint_id"),
        requires=("complaint_id", "resolution")),),
    # 第十四条「申请复核」: the estate manager decides (the console's decide_review)
    "complaint_review_requested": (Notification(
        "complaint_review_requested", "manager",
        ("complaint_id", "review_no", "reason", "due_at", "console_url"),
        review_requested_params, ref=_ref("complaint_id"),
        recipients=by_roles("manager", "supervisor"),
        requires=("complaint_id", "due_at")),),
    # the owner asked: the outcome reaches them even if they opted out of notices
    "complaint_reviewed": (Notification(
        "complaint_review_decided", "owner", ("complaint_id", "outcome", "finding"),
        complaint_reviewed_params, ref=_ref("complaint_id"), recipients=contact_of("complaint_id"),
        requires=("complaint_id", "outcome")),),
    "complaint_closed": (Notification(
        "complaint_closed", "owner", ("complaint_id", "closed_at"),
        complaint_closed_params, ref=_ref("complaint_id"),
        recipients=contact_of("complaint_id"), requires=("complaint_id",)),),
    "revisit_scheduled": (
        Notification(
            "revisit_scheduled", "owner", ("revisit_id", "due_date", "method"),
            revisit_scheduled_params, ref=_ref("revisit_id"),
            recipients=_household_if_online(False), requires=("due_date",)),
        # 「回访可以通过电话、邮件、短信、在线调查等方式进行」: the owner may answer by the link
        Notification(
            "revisit_online", "owner", ("revisit_id", "due_date", "method", "revisit_url"),
            revisit_online_params, ref=_ref("revisit_id"),
            recipients=_household_if_online(True), requires=("revisit_url",)),
        Notification(
            "revisit_onsite", "supervisor",
            ("revisit_id", "kind", "source_id", "due_date", "console_url"),
            onsite_revisit_params, ref=_ref("revisit_id"), recipients=_onsite_visitor,
            requires=("source_id", "due_date")),
    ),
    # 「回访逾期…上报公司领导」: the visit, or the reply promised during it, is late
    "revisit_overdue": (Notification(
        "revisit_overdue", "manager",
        ("revisit_id", "kind", "source_id", "deadline", "due_at", "console_url"),
        revisit_overdue_params, ref=_ref("revisit_id"),
        recipients=LATE_REVISIT_LADDER,
        requires=("source_id", "deadline", "due_at")),),
    # 「向相关部门反馈」: the department (else the manager) gets the owner's words and the date
    # the owner must hear back by
    "revisit_followup_opened": (Notification(
        "revisit_followup_opened", "department",
        ("followup_id", "kind", "department", "summary", "due_date", "console_url"),
        followup_params, ref=_ref("followup_id"),
        recipients=from_directory(lambda d: ("department", d["department"]),
                              lambda d: ("role", "manager")),
        requires=("department", "summary", "due_date")),),
    # 「一个月内向业主反馈」 missed: up the ladder, as a late revisit goes
    "revisit_followup_overdue": (Notification(
        "revisit_followup_overdue", "manager",
        ("followup_id", "kind", "department", "summary", "due_date", "console_url"),
        followup_params, ref=_ref("followup_id"),
        recipients=LATE_REVISIT_LADDER,
        requires=("followup_id", "department", "due_date")),),
    "revisit_followup_answered": (Notification(
        "revisit_followup_answered", "owner", ("kind", "answer"), followup_answered_params,
        ref=_ref("followup_id"), recipients=contact_of("household_id"),
        requires=("answer",)),),
    "revisit_booked": (
        Notification(
            "revisit_booked", "owner", ("revisit_id", "at", "method"), appointment_params,
            ref=_ref("revisit_id"), recipients=contact_of("household_id"), requires=("at",)),
        Notification(
            "revisit_reminder", "owner", ("revisit_id", "at", "method"), appointment_params,
            ref=_ref("revisit_id"), recipients=contact_of("household_id"), requires=("at",),
            send_at=reminder_time, skip_when_late=True),
    ),
    "survey_invitation_issued": (Notification(
        "survey_invitation", "owner", ("survey_url", "expires_date"), survey_invitation_params,
        ref=_ref("round_id"), recipients=contact_of("household_id"),
        requires=("survey_url",)),),
    "survey_reminder_due": (Notification(
        "survey_reminder", "owner", ("survey_url", "reminder_no"), survey_reminder_params,
        ref=_ref("round_id"), recipients=contact_of("household_id"),
        requires=("survey_url",)),),
    "survey_report_published": (Notification(
        "survey_report_published", "owner", ("satisfaction_rate", "rectifications"),
        survey_report_params, ref=_ref("round_id"),
        # A report published again (a corrected edition) is not broadcast a second time.
        recipients=lambda d: Recipients((("households", None),)) if d.get("edition", 1) == 1
        else None,
        requires=("satisfaction_rate",)),),
    # the estate manager and the company's (survey reports go up: 「上报公司」)
    "survey_round_closed": (Notification(
        "survey_round_closed", "manager",
        ("round_id", "invited", "returned", "response_rate", "console_url"),
        survey_round_closed_params, ref=_ref("round_id"),
        recipients=by_roles("manager", "company_manager", together=True),
        requires=("round_id", "response_rate")),),
    # 「责成有关部门限期解决」: the department (else the manager) gets the job and deadline
    "rectification_created": (Notification(
        "rectification_created", "department",
        ("rectification_id", "category", "department", "action", "due_date", "console_url"),
        rectification_params, ref=_ref("rectification_id"),
        recipients=from_directory(lambda d: ("department", d["department"]),
                              lambda d: ("role", "manager")),
        requires=("action", "due_date")),),
    # 「整改方案应向业主单位公布,接受监督」: each rectification done, to every household once
    "rectification_done": (Notification(
        "rectification_done", "owner", ("category", "action"), rectification_done_params,
        ref=_ref("rectification_id"), recipients=every_household,
        requires=("category", "action")),),
    # 「每半年进行一次业主/用户意见调查」 not kept: the estate manager and headquarters
    "survey_cadence_missed": (Notification(
        "survey_cadence_missed", "manager", ("period", "cadence", "console_url"),
        survey_cadence_params, ref=_ref("period"),
        recipients=by_roles("manager", "hq_analyst", together=True),
        requires=("period", "cadence")),),
    "rectification_overdue": (Notification(
        "rectification_overdue", "department",
        ("rectification_id", "category", "department", "due_date", "console_url"),
        rectification_overdue_params, ref=_ref("rectification_id"),
        recipients=from_directory(lambda d: ("department", d["department"]),
                              lambda d: ("role", "manager")),
        requires=("category", "due_date")),),
}


def check_templates(catalogue: Mapping[str, Mapping[str, Template]],
                    notifications: Mapping[str, tuple[Notification, ...]] = NOTIFICATIONS,
                    ) -> list[str]:
    """Problems with a catalogue ({locale: {id: Template}}); empty when all is well.

    Every notification's template must exist in every locale, be written for
    its audience, use only the parameters its event supplies and show what
    the message is for; every locale must hold the same templates.
    """
    problems: list[str] = []
    all_ids: set[str] = set().union(*(set(templates) for templates in catalogue.values()))
    for locale, templates in sorted(catalogue.items()):
        for template_id in sorted(all_ids - set(templates)):
            problems.append(f"{locale}/{template_id}: missing (other locales have it)")
        for event_type, event_notifications in notifications.items():
            for notification in event_notifications:
                problems += _template_problems(locale, templates, event_type, notification)
    return problems


def _template_problems(locale: str, templates: Mapping[str, Template], event_type: str,
                       notification: Notification) -> list[str]:
    where = f"{locale}/{notification.template}"
    template = templates.get(notification.template)
    if template is None:
        return [f"{where}: missing ({event_type} uses it)"]
    problems: list[str] = []
    if template.audience != notification.audience:
        problems.append(f"{where}: audience must be {notification.audience}")
    supplied = {*notification.supplies, *ESTATE_PARAMS}
    unknown = sorted(template.params - supplied)
    if unknown:
        problems.append(f"{where}: uses {', '.join(unknown)}, which {event_type} does not supply")
    owners_only = set(CONTACT_PARAMS) if notification.audience == "owner" else set()
    unknown = sorted(template.link_params - supplied - owners_only)
    if unknown:
        problems.append(f"{where}: its link uses {', '.join(unknown)}, which neither "
                        f"{event_type} nor the contact supplies"
                        + ("" if owners_only else " (an owner's page is for owners' messages)"))
    absent = sorted(set(notification.requires) - placeholders(template.text))
    if absent:
        problems.append(f"{where}: must show {', '.join(absent)}")
    return problems
