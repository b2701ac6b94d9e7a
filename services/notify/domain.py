"""Notifications: templates, who hears what, channel choice, quiet hours, SMS
segments and the delivery log's state changes. Pure Python.

Policy texts: 「接到客户投诉后,应首先向业主表示歉意」 — the
acknowledgement apologises first — and 「回访可以通过电话、邮件、短信等方式进行」 —
channels are interchangeable plug-ins.
"""
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from shared.envelope import record_event
from shared.links import DEFAULT_PUBLIC_BASE_URL, hide_tokens, owner_link
from shared.masking import mask_address, mask_text

SOURCE = "notify"
# Who reads a template: a household, or staff (any, by role, or a department's).
AUDIENCES = ("owner", "staff", "supervisor", "manager", "department")
TEMPLATE_KEYS = {"audience", "text", "subject", "labels", "mandatory", "immediate", "link"}
# How the sender's name (物业名) is shown: carriers want 【签名】 on Chinese SMS.
SIGNATURE_FORMATS = {"zh": "【{}】", "en": "[{}] "}
NOT_AVAILABLE = "n/a"   # a value an event may lack; templates' labels say it in words
# Between a text and its link: Chinese text ends in full-width punctuation already.
LINK_SEPARATORS = {"zh": ""}
# Parameters notify fills from the recipient's contact (intake.get_contact), not from the
# event: events never carry the owner's link token.
CONTACT_PARAMS = ("complaint_url",)
# Parameters every message may show, whatever its event: the estate's, from notify's copy of
# intake's record (``Context.estate_name``; its id until the copy has it).
ESTATE_PARAMS = ("estate_name",)
# Free text quoted in a message (what was done, why): enough to know what it is about, no
# more than an SMS can carry; the rest is on the page its link opens.
EXCERPT_CHARS = 50
SUMMARY_CHARS = 60   # the complaint's own words in a staff message (intake sends that much)


class TemplateError(ValueError):
    """A template file or entry that cannot be used."""


class MissingParameters(TemplateError):
    def __init__(self, template_id, missing):
        self.template_id, self.missing = template_id, list(missing)
        super().__init__(f"template {template_id} needs {', '.join(self.missing)}")


# templates -------------------------------------------------------------------

@dataclass(frozen=True)
class Template:
    id: str
    locale: str
    audience: str
    text: str
    labels: dict = field(default_factory=dict)   # param -> {value: display text}
    subject: str | None = None                   # e-mail subject line
    mandatory: bool = False    # a notice the household cannot opt out of
    immediate: bool = False    # answers the owner's own request: quiet hours do not hold it
    # Ends the text when its parameters are known (the owner's page, from the contact); a
    # message without them goes without it rather than not at all.
    link: str | None = None

    @property
    def params(self):
        """What the text and subject need: a message without any of them cannot go."""
        return placeholders(self.text) | placeholders(self.subject or "")

    @property
    def link_params(self):
        return placeholders(self.link or "")


def placeholders(text):
    """The parameter names ``text`` uses; only plain names (no attribute or index access)."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"malformed template text: {exc}") from None
    names = set()
    for _, name, spec, _ in parsed:
        if name is None:
            continue
        if not name.isidentifier() or "{" in (spec or ""):
            raise TemplateError(f"placeholder {{{name}}} must be a plain name")
        names.add(name)
    return frozenset(names)


def parse_templates(locale, document):
    """One locale's template file (already parsed YAML) as {template id: Template}."""
    if not isinstance(document, dict):
        raise TemplateError(f"{locale}: expected a mapping of template ids")
    return {str(template_id): parse_template(locale, str(template_id), entry)
            for template_id, entry in document.items()}


def parse_template(locale, template_id, entry):
    """One entry of a locale's template file as a Template; a TemplateError names the
    entry (``locale/id``) and what is wrong with it."""
    where = f"{locale}/{template_id}"
    problem = _entry_problem(entry)
    if problem:
        raise TemplateError(f"{where}: {problem}")
    labels = entry.get("labels") or {}
    template = Template(
        id=template_id, locale=locale, audience=entry["audience"], text=entry["text"].strip(),
        labels={name: {str(k): str(v) for k, v in values.items()}
                for name, values in labels.items()},
        subject=entry.get("subject"), mandatory=entry.get("mandatory", False),
        immediate=entry.get("immediate", False), link=(entry.get("link") or "").strip() or None,
    )
    try:
        placeholders(template.text), placeholders(template.subject or ""), template.link_params
    except TemplateError as exc:
        raise TemplateError(f"{where}: {exc}") from None
    return template


def _entry_problem(entry) -> str | None:
    """What makes a template entry unusable (the first thing found), or None."""
    if not isinstance(entry, dict) or set(entry) - TEMPLATE_KEYS:
        return f"expected only {', '.join(sorted(TEMPLATE_KEYS))}"
    if entry.get("audience") not in AUDIENCES:
        return f"audience must be one of {', '.join(AUDIENCES)}"
    for key in ("text", "subject", "link"):
        if key in entry and (not isinstance(entry[key], str) or not entry[key].strip()):
            return f"{key} must be non-empty text"
    if "text" not in entry:
        return "text is missing"
    for key in ("mandatory", "immediate"):
        if not isinstance(entry.get(key, False), bool):
            return f"{key} must be true or false"
    labels = entry.get("labels") or {}
    if not isinstance(labels, dict) or not all(isinstance(v, dict) for v in labels.values()):
        return "labels map a parameter to {value: text}"
    return None


def override_templates(catalogue, overrides, where):
    """``catalogue`` with some templates replaced (an estate's own wording).

    An override may only replace a template that exists: a misspelt id would
    otherwise be silently ignored.
    """
    merged = {locale: dict(templates) for locale, templates in catalogue.items()}
    for locale, templates in overrides.items():
        if locale not in merged:
            raise TemplateError(f"{where}: no base templates for locale {locale!r}")
        for template_id, template in templates.items():
            if template_id not in merged[locale]:
                raise TemplateError(f"{where}: {locale}/{template_id} overrides no template")
            merged[locale][template_id] = template
    return merged


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str


def render(template, params, signature):
    """The message, signed. A missing or blank parameter raises: an SMS never shows a gap.

    The signature (【物业名】) is part of the text: it is what the owner reads
    and what the carrier counts.
    """
    missing = sorted(name for name in template.params if _blank(params.get(name)))
    if missing:
        raise MissingParameters(template.id, missing)
    values = {
        name: template.labels.get(name, {}).get(str(params[name]), params[name])
        for name in template.params | template.link_params if not _blank(params.get(name))
    }
    body = template.text.format_map(values)
    if template.link and template.link_params <= set(values):
        body += LINK_SEPARATORS.get(template.locale, " ") + template.link.format_map(values)
    subject = template.subject.format_map(values) if template.subject else signature
    return Rendered(text=sign(body, signature, template.locale), subject=subject)


def sign(text, signature, locale):
    return SIGNATURE_FORMATS.get(locale, SIGNATURE_FORMATS["zh"]).format(signature) + text


def _blank(value):
    return value is None or (isinstance(value, str) and not value.strip())


def local_time(moment, zone):
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def local_date(moment, zone):
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d")


# which event tells whom what ---------------------------------------------------

@dataclass(frozen=True)
class Context:
    """What an estate's settings add to an event when its messages are written."""
    zone: str = "Asia/Shanghai"
    survey_base_url: str = "https://survey.example.com/s/"
    reminder_lead: timedelta = timedelta(hours=24)
    public_base_url: str = DEFAULT_PUBLIC_BASE_URL   # the gateway's owner pages
    estate_name: str = NOT_AVAILABLE                 # as its owners and staff call it

    def survey_link(self, token):
        return self.survey_base_url.rstrip("/") + "/" + token

    def revisit_link(self, token):
        return owner_link(self.public_base_url, "r", token)

    def complaint_link(self, token):
        return owner_link(self.public_base_url, "c", token)

    def console_link(self, *path):
        """A page of the staff console (services/gateway/console*.py): ``complaints/<id>``,
        ``revisits/<id>``. Staff log in to open it: it carries no credential."""
        return f"{self.public_base_url.rstrip('/')}/console/" + "/".join(
            quote(str(part), safe="") for part in path)

    def complaint_console_link(self, complaint_id):
        return self.console_link("complaints", complaint_id)

    def revisit_console_link(self, revisit_id):
        """Where the visitor books the visit and records it (the console's revisit page)."""
        return self.console_link("revisits", revisit_id)

    def followup_console_link(self, followup_id):
        """Where the department records its measures and its answer to the owner."""
        return self.console_link("revisits", "followups", followup_id)


def message_params(notification, data, context):
    """What ``notification``'s message about an event (``data``) is written from: what the
    event supplies (``build``) and the estate's own."""
    return {**notification.build(data, context), **estate_params(context)}


def estate_params(context):
    """``ESTATE_PARAMS``: what every message of the estate may show, whoever asked for it."""
    return {"estate_name": context.estate_name}


def with_contact_params(params, contact, context):
    """``params`` with ``CONTACT_PARAMS`` as the recipient's contact gives them — the link
    to the owner's complaint page when intake answered its token with the contact (a
    message about a complaint) — never as a caller typed them: no message carries a link
    to an owner's page that notify did not make."""
    own = {name: value for name, value in params.items() if name not in CONTACT_PARAMS}
    token = (contact or {}).get("owner_url_token")
    return {**own, "complaint_url": context.complaint_link(token)} if token else own


@dataclass(frozen=True)
class Recipients:
    """Who receives a message: the first of ``alternatives`` that finds anyone, or, when
    ``together``, everyone each of them finds (the supervisors and the managers).

    Each alternative is (kind, value): ``contact`` (a household or complaint
    id: intake.get_contact), ``staff`` (a staff id), ``role``, ``department``
    (the estate's staff directory) or ``households`` (every occupied household
    of the estate).
    """
    alternatives: tuple
    together: bool = False

    @property
    def owners(self):
        return self.alternatives[0][0] in ("contact", "households")


@dataclass(frozen=True)
class Notification:
    template: str
    audience: str
    supplies: tuple                      # parameter names ``build`` fills
    build: Callable                      # (event data, Context) -> params
    ref: Callable                        # event data -> the id the log files it under
    recipients: Callable                 # event data -> Recipients, or None: nobody to tell
    requires: tuple = ()                 # what the template must show: the point of the message
    send_at: Callable | None = None      # (event data, Context) -> when; None: at once
    skip_when_late: bool = False         # a reminder whose moment has passed is pointless


def _contact(key):
    return lambda data: Recipients((("contact", data[key]),)) if data.get(key) else None


def _directory(*alternatives, together=False):
    """Recipients from the staff directory; each alternative a function of the event data
    (None: it does not apply). ``together``: all of them, not the first that finds anyone."""
    def recipients(data):
        found = tuple(pair for pair in (alternative(data) for alternative in alternatives)
                      if pair and pair[1])
        return Recipients(found, together) if found else None
    return recipients


def _roles(*roles, together=False):
    return _directory(*(lambda data, role=role: ("role", role) for role in roles),
                      together=together)


def _households(data):
    """Every occupied household of the estate (a notice for the whole estate)."""
    return Recipients((("households", None),))


def excerpt(text, limit=EXCERPT_CHARS):
    """``text`` (free text, masked in the event) cut to ``limit`` characters, … when cut;
    ``NOT_AVAILABLE`` when there is none (the template's labels say so in words)."""
    text = " ".join((text or "").split())
    if not text:
        return NOT_AVAILABLE
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _time_or_not_available(moment, zone):
    return local_time(moment, zone) if moment else NOT_AVAILABLE


def complaint_received_params(data, context):
    return {
        "complaint_id": data["complaint_id"],
        "received_at": local_time(data["received_at"], context.zone),
        "first_response_due": local_time(data["first_response_due"], context.zone),
        "reply_due": local_time(data["reply_due"], context.zone),
    }


def complaint_assigned_params(data, context):
    return {"complaint_id": data["complaint_id"], "department": data["department"],
            "assigned_at": local_time(data["assigned_at"], context.zone),
            "reply_due": _time_or_not_available(data.get("reply_due"), context.zone),
            "summary": excerpt(data.get("summary"), limit=SUMMARY_CHARS),
            "console_url": context.complaint_console_link(data["complaint_id"])}


def complaint_routed_params(data, context):
    """第十三条: the owner hears which department has the complaint and by when it answers."""
    return {"complaint_id": data["complaint_id"], "department": data["department"],
            "reply_due": _time_or_not_available(data.get("reply_due"), context.zone)}


def complaint_overdue_params(data, context):
    return {"complaint_id": data["complaint_id"], "deadline": data["deadline"],
            "due_at": local_time(data["due_at"], context.zone),
            "console_url": context.complaint_console_link(data["complaint_id"])}


def complaint_deadline_approaching_params(data, context):
    """The deadline, the time left (hours and minutes, as the warning was sent) and what
    the complaint is about, with the console page to act on."""
    hours_left, minutes_left = divmod(max(data["minutes_left"], 0), 60)
    return {"complaint_id": data["complaint_id"], "deadline": data["deadline"],
            "due_at": local_time(data["due_at"], context.zone),
            "hours_left": hours_left, "minutes_left": minutes_left,
            "summary": excerpt(data.get("summary"), limit=SUMMARY_CHARS),
            "console_url": context.complaint_console_link(data["complaint_id"])}


def complaint_escalated_params(data, context):
    return {"complaint_id": data["complaint_id"], "level": data["level"], "role": data["role"],
            "console_url": context.complaint_console_link(data["complaint_id"])}


def instruction_params(data, context):
    """The manager's instruction, for whoever has the complaint, with the page to act from."""
    return {"complaint_id": data["complaint_id"], "role": data["role"],
            "instruction": excerpt(data.get("instruction")),
            "summary": excerpt(data.get("summary"), limit=SUMMARY_CHARS),
            "console_url": context.complaint_console_link(data["complaint_id"])}


def complaint_repeated_params(data, context):
    return {"complaint_id": data["complaint_id"], "repeat_of": data["repeat_of"],
            "category": data["category"],
            "summary": excerpt(data.get("summary"), limit=SUMMARY_CHARS),
            "special_measures_due": local_time(data["special_measures_due"], context.zone),
            "console_url": context.complaint_console_link(data["complaint_id"])}


def complaint_resolved_params(data, context):
    return {"complaint_id": data["complaint_id"], "resolution": excerpt(data.get("resolution"))}


def review_requested_params(data, context):
    return {"complaint_id": data["complaint_id"], "review_no": data["review_no"],
            "reason": excerpt(data.get("reason")),
            "due_at": local_time(data["due_at"], context.zone),
            "console_url": context.complaint_console_link(data["complaint_id"])}


def complaint_reviewed_params(data, context):
    return {"complaint_id": data["complaint_id"], "outcome": data["outcome"],
            "finding": excerpt(data.get("finding"))}


def complaint_closed_params(data, context):
    return {"complaint_id": data["complaint_id"],
            "closed_at": local_time(data["closed_at"], context.zone)}


def revisit_scheduled_params(data, context):
    return {"revisit_id": data["revisit_id"], "due_date": local_date(data["due_at"], context.zone),
            "method": data["method"]}


def onsite_revisit_params(data, context):
    return {"revisit_id": data["revisit_id"], "kind": data["kind"],
            "source_id": data["source_id"], "due_date": local_date(data["due_at"], context.zone),
            "console_url": context.revisit_console_link(data["revisit_id"])}


def _onsite_visitor(data):
    """「重大投诉…由主管或经理上门回访」: the supervisor or manager who must go, told when the
    revisit's window opens; phone and message revisits are the desk's worklist."""
    if data["method"] != "onsite" or data["assigned_role"] not in ONSITE_VISITORS:
        return None
    return Recipients(tuple(dict.fromkeys((("role", data["assigned_role"]), ("role", "manager")))))


def revisit_overdue_params(data, context):
    return {"revisit_id": data["revisit_id"], "kind": data["kind"],
            "source_id": data["source_id"], "deadline": data["deadline"],
            "due_at": local_time(data["due_at"], context.zone),
            "console_url": context.revisit_console_link(data["revisit_id"])}


def revisit_online_params(data, context):
    return dict(revisit_scheduled_params(data, context),
                revisit_url=context.revisit_link(data["token"]))


def _household_if_online(online):
    """The household, for the one of a revisit's two messages that fits it: with the link
    to answer online (the event carries its token) or without."""
    household = _contact("household_id")
    return lambda data: household(data) if bool(data.get("token")) is online else None


def appointment_params(data, context):
    return {"revisit_id": data["revisit_id"], "at": local_time(data["at"], context.zone),
            "method": data["method"]}


def survey_invitation_params(data, context):
    return {"survey_url": context.survey_link(data["token"]),
            "expires_date": local_date(data["expires_at"], context.zone)}


def survey_reminder_params(data, context):
    return {"survey_url": context.survey_link(data["token"]), "reminder_no": data["reminder_no"]}


def survey_report_params(data, context):
    rate = data["satisfaction_rate"]
    return {"satisfaction_rate": NOT_AVAILABLE if rate is None else f"{rate * 100:.1f}%",
            "rectifications": data["rectifications"]}


def survey_round_closed_params(data, context):
    rate = data.get("response_rate")
    return {"round_id": data["round_id"], "invited": data["invited"],
            "returned": data["returned"],
            "response_rate": NOT_AVAILABLE if rate is None else f"{rate * 100:.1f}%"}


def rectification_params(data, context):
    return {"rectification_id": data["rectification_id"], "category": data["category"],
            "department": data["department"], "action": excerpt(data.get("action")),
            "due_date": local_date(data["due_at"], context.zone)}


def rectification_done_params(data, context):
    return {"category": data["category"], "action": excerpt(data.get("action"))}


def rectification_overdue_params(data, context):
    return {"rectification_id": data["rectification_id"], "category": data["category"],
            "department": data["department"],
            "due_date": local_date(data["due_at"], context.zone)}


def followup_params(data, context):
    """A follow-up of an unsatisfied revisit, for the department or the leadership."""
    return {"followup_id": data["followup_id"], "kind": data["kind"],
            "department": data["department"],
            "summary": excerpt(data.get("summary"), limit=SUMMARY_CHARS),
            "due_date": local_date(data["answer_due_at"], context.zone),
            "console_url": context.followup_console_link(data["followup_id"])}


def followup_answered_params(data, context):
    return {"kind": data["kind"], "answer": excerpt(data.get("answer"))}


def survey_cadence_params(data, context):
    """The period that passed without a closed survey round, and the console page that
    opens a round."""
    return {"period": data["period"], "cadence": data["cadence"],
            "console_url": context.console_link("surveys", "new")}


def reminder_time(data, context):
    return data["at"] - context.reminder_lead


def _complaint_id(data):
    return data["complaint_id"]


# Who goes on an on-site revisit that staff must be told of (a major complaint's).
ONSITE_VISITORS = ("supervisor", "manager")

# event type -> the notifications it triggers, in the order they are sent
NOTIFICATIONS = {
    "complaint_registered": (Notification(
        "complaint_received", "owner",
        ("complaint_id", "received_at", "first_response_due", "reply_due"),
        complaint_received_params, ref=lambda d: d["complaint_id"],
        recipients=_contact("complaint_id"), requires=("complaint_id", "reply_due")),),
    "complaint_assigned": (
        Notification(
            "complaint_assigned", "staff",
            ("complaint_id", "department", "assigned_at", "reply_due", "summary", "console_url"),
            complaint_assigned_params, ref=_complaint_id,
            recipients=_directory(lambda d: ("staff", d["assignee_id"]),
                                  lambda d: ("department", d["department"]),
                                  lambda d: ("role", "supervisor")),
            requires=("complaint_id", "reply_due", "summary")),
        # 第十三条「及时向业主反馈处理进展情况」: which department, and by when it answers
        Notification(
            "complaint_routed", "owner", ("complaint_id", "department", "reply_due"),
            complaint_routed_params, ref=_complaint_id, recipients=_contact("complaint_id"),
            requires=("department", "reply_due")),
    ),
    "complaint_overdue": (Notification(
        "complaint_overdue", "supervisor", ("complaint_id", "deadline", "due_at", "console_url"),
        complaint_overdue_params, ref=_complaint_id,
        recipients=_roles("supervisor", "manager"),
        requires=("complaint_id",)),),
    # before the deadline, not only after it: whoever has the complaint (the assignee, else
    # its department), else the supervisors who answer for the service centre
    "complaint_deadline_approaching": (Notification(
        "complaint_deadline_approaching", "staff",
        ("complaint_id", "deadline", "due_at", "hours_left", "minutes_left", "summary",
         "console_url"),
        complaint_deadline_approaching_params, ref=_complaint_id,
        recipients=_directory(lambda d: ("staff", d["assignee_id"]),
                              lambda d: ("department", d["department"]),
                              lambda d: ("role", "supervisor")),
        requires=("complaint_id", "deadline", "due_at")),),
    "complaint_escalated": (Notification(
        "complaint_escalated", "manager", ("complaint_id", "level", "role", "console_url"),
        complaint_escalated_params, ref=_complaint_id,
        recipients=_directory(lambda d: ("role", d["role"]), lambda d: ("role", "manager")),
        requires=("complaint_id",)),),
    # 「待经理做出明确指示后,妥善处理」: whoever has the complaint (the assignee, else its
    # department, else the supervisors) hears what the manager decided
    "complaint_instruction_recorded": (Notification(
        "complaint_instruction_recorded", "staff",
        ("complaint_id", "role", "instruction", "summary", "console_url"),
        instruction_params, ref=_complaint_id,
        recipients=_directory(lambda d: ("staff", d["assignee_id"]),
                              lambda d: ("department", d["department"]),
                              lambda d: ("role", "supervisor")),
        requires=("complaint_id", "instruction")),),
    # 「收到客户对服务仍存在缺陷的再次投诉时,服务中心应在24小时内安排特殊措施」: the
    # supervisors and the managers both, at once (staff have no quiet hours)
    "complaint_repeated": (Notification(
        "complaint_repeated", "supervisor",
        ("complaint_id", "repeat_of", "category", "summary", "special_measures_due",
         "console_url"),
        complaint_repeated_params, ref=_complaint_id,
        recipients=_roles("supervisor", "manager", together=True),
        requires=("complaint_id", "repeat_of", "special_measures_due")),),
    # 第十六条: what was done, before the closing and the revisit
    "complaint_resolved": (Notification(
        "complaint_resolved", "owner", ("complaint_id", "resolution"),
        complaint_resolved_params, ref=_complaint_id, recipients=_contact("complaint_id"),
        requires=("complaint_id", "resolution")),),
    # 第十四条「申请复核」: the estate manager decides (the console's decide_review)
    "complaint_review_requested": (Notification(
        "complaint_review_requested", "manager",
        ("complaint_id", "review_no", "reason", "due_at", "console_url"),
        review_requested_params, ref=_complaint_id,
        recipients=_roles("manager", "supervisor"),
        requires=("complaint_id", "due_at")),),
    # the owner asked: the outcome reaches them even if they opted out of notices
    "complaint_reviewed": (Notification(
        "complaint_review_decided", "owner", ("complaint_id", "outcome", "finding"),
        complaint_reviewed_params, ref=_complaint_id, recipients=_contact("complaint_id"),
        requires=("complaint_id", "outcome")),),
    "complaint_closed": (Notification(
        "complaint_closed", "owner", ("complaint_id", "closed_at"),
        complaint_closed_params, ref=lambda d: d["complaint_id"],
        recipients=_contact("complaint_id"), requires=("complaint_id",)),),
    "revisit_scheduled": (
        Notification(
            "revisit_scheduled", "owner", ("revisit_id", "due_date", "method"),
            revisit_scheduled_params, ref=lambda d: d["revisit_id"],
            recipients=_household_if_online(False), requires=("due_date",)),
        # 「回访可以通过电话、邮件、短信、在线调查等方式进行」: the owner may answer by the link
        Notification(
            "revisit_online", "owner", ("revisit_id", "due_date", "method", "revisit_url"),
            revisit_online_params, ref=lambda d: d["revisit_id"],
            recipients=_household_if_online(True), requires=("revisit_url",)),
        Notification(
            "revisit_onsite", "supervisor",
            ("revisit_id", "kind", "source_id", "due_date", "console_url"),
            onsite_revisit_params, ref=lambda d: d["revisit_id"], recipients=_onsite_visitor,
            requires=("source_id", "due_date")),
    ),
    # 「回访逾期…上报公司领导」: the visit, or the reply promised during it, is late
    "revisit_overdue": (Notification(
        "revisit_overdue", "manager",
        ("revisit_id", "kind", "source_id", "deadline", "due_at", "console_url"),
        revisit_overdue_params, ref=lambda d: d["revisit_id"],
        recipients=_roles("manager", "company_manager"),
        requires=("source_id", "deadline", "due_at")),),
    # 「向相关部门反馈」: the department (else the manager) gets the owner's words and the date
    # the owner must hear back by
    "revisit_followup_opened": (Notification(
        "revisit_followup_opened", "department",
        ("followup_id", "kind", "department", "summary", "due_date", "console_url"),
        followup_params, ref=lambda d: d["followup_id"],
        recipients=_directory(lambda d: ("department", d["department"]),
                              lambda d: ("role", "manager")),
        requires=("department", "summary", "due_date")),),
    # 「一个月内向业主反馈」 missed: up the ladder, as a late revisit goes
    "revisit_followup_overdue": (Notification(
        "revisit_followup_overdue", "manager",
        ("followup_id", "kind", "department", "summary", "due_date", "console_url"),
        followup_params, ref=lambda d: d["followup_id"],
        recipients=_roles("manager", "company_manager"),
        requires=("followup_id", "department", "due_date")),),
    "revisit_followup_answered": (Notification(
        "revisit_followup_answered", "owner", ("kind", "answer"), followup_answered_params,
        ref=lambda d: d["followup_id"], recipients=_contact("household_id"),
        requires=("answer",)),),
    "revisit_booked": (
        Notification(
            "revisit_booked", "owner", ("revisit_id", "at", "method"), appointment_params,
            ref=lambda d: d["revisit_id"], recipients=_contact("household_id"), requires=("at",)),
        Notification(
            "revisit_reminder", "owner", ("revisit_id", "at", "method"), appointment_params,
            ref=lambda d: d["revisit_id"], recipients=_contact("household_id"), requires=("at",),
            send_at=reminder_time, skip_when_late=True),
    ),
    "survey_invitation_issued": (Notification(
        "survey_invitation", "owner", ("survey_url", "expires_date"), survey_invitation_params,
        ref=lambda d: d["round_id"], recipients=_contact("household_id"),
        requires=("survey_url",)),),
    "survey_reminder_due": (Notification(
        "survey_reminder", "owner", ("survey_url", "reminder_no"), survey_reminder_params,
        ref=lambda d: d["round_id"], recipients=_contact("household_id"),
        requires=("survey_url",)),),
    "survey_report_published": (Notification(
        "survey_report_published", "owner", ("satisfaction_rate", "rectifications"),
        survey_report_params, ref=lambda d: d["round_id"],
        # A report published again (a corrected edition) is not broadcast a second time.
        recipients=lambda d: Recipients((("households", None),)) if d.get("edition", 1) == 1
        else None,
        requires=("satisfaction_rate",)),),
    # the estate manager and the company's (survey reports go up: 「上报公司」)
    "survey_round_closed": (Notification(
        "survey_round_closed", "manager",
        ("round_id", "invited", "returned", "response_rate"),
        survey_round_closed_params, ref=lambda d: d["round_id"],
        recipients=_roles("manager", "company_manager", together=True),
        requires=("round_id", "response_rate")),),
    # 「责成有关部门限期解决」: the department (else the manager) gets the job and deadline
    "rectification_created": (Notification(
        "rectification_created", "department",
        ("rectification_id", "category", "department", "action", "due_date"),
        rectification_params, ref=lambda d: d["rectification_id"],
        recipients=_directory(lambda d: ("department", d["department"]),
                              lambda d: ("role", "manager")),
        requires=("action", "due_date")),),
    # 「整改方案应向业主单位公布,接受监督」: each rectification done, to every household once
    "rectification_done": (Notification(
        "rectification_done", "owner", ("category", "action"), rectification_done_params,
        ref=lambda d: d["rectification_id"], recipients=_households,
        requires=("category", "action")),),
    # 「每半年进行一次业主/用户意见调查」 not kept: the estate manager and headquarters
    "survey_cadence_missed": (Notification(
        "survey_cadence_missed", "manager", ("period", "cadence", "console_url"),
        survey_cadence_params, ref=lambda d: d["period"],
        recipients=_roles("manager", "hq_analyst", together=True),
        requires=("period", "cadence")),),
    "rectification_overdue": (Notification(
        "rectification_overdue", "department",
        ("rectification_id", "category", "department", "due_date"),
        rectification_overdue_params, ref=lambda d: d["rectification_id"],
        recipients=_directory(lambda d: ("department", d["department"]),
                              lambda d: ("role", "manager")),
        requires=("category", "due_date")),),
}


def check_templates(catalogue, notifications=NOTIFICATIONS):
    """Problems with a catalogue ({locale: {id: Template}}); empty when all is well.

    Every notification's template must exist in every locale, be written for
    its audience, use only the parameters its event supplies and show what
    the message is for; every locale must hold the same templates.
    """
    problems = []
    all_ids = set().union(*(set(templates) for templates in catalogue.values())) if catalogue else set()
    for locale, templates in sorted(catalogue.items()):
        for template_id in sorted(all_ids - set(templates)):
            problems.append(f"{locale}/{template_id}: missing (other locales have it)")
        for event_type, event_notifications in notifications.items():
            for notification in event_notifications:
                problems += _template_problems(locale, templates, event_type, notification)
    return problems


def _template_problems(locale, templates, event_type, notification):
    where = f"{locale}/{notification.template}"
    template = templates.get(notification.template)
    if template is None:
        return [f"{where}: missing ({event_type} uses it)"]
    problems = []
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


# channel choice --------------------------------------------------------------------

def channel_order(configured, preferences=None, contact=None):
    """Channels to try, best first: the recipient's own order, then the contact's
    preferred channel, then the configured order. Only configured channels."""
    wanted = list((preferences or {}).get("channels") or [])
    if contact and contact.get("preferred_channel"):
        wanted.append(contact["preferred_channel"])
    return [name for name in dict.fromkeys(wanted + list(configured)) if name in configured]


def routes(order, address_fields, contact):
    """[{channel, address}] from ``order`` for which the contact has an address."""
    contact = contact or {}
    return [{"channel": name, "address": contact[address_fields[name]]} for name in order
            if contact.get(address_fields[name])]


def opted_out(preferences, template):
    """「except legally required notices」: a mandatory template reaches even those who opted out."""
    return bool(preferences and preferences.get("opt_out")) and not template.mandatory


def staff_matching(directory, kind, value):
    """The members of an estate's staff directory an alternative names."""
    if kind == "staff":
        return [member for member in directory if member["id"] == value]
    if kind == "role":
        return [member for member in directory if value in member.get("roles", ())]
    if kind == "department":
        return [member for member in directory if member.get("department") == value]
    raise ValueError(f"not a staff directory lookup: {kind}")


def staff_for(directory, recipients):
    """The members of an estate's staff directory ``recipients`` name, each once: those of
    the first alternative that finds anyone, or of all of them when ``together``."""
    found: dict = {}
    for kind, value in recipients.alternatives:
        members = staff_matching(directory, kind, value)
        for member in members:
            found.setdefault(member["id"], member)
        if members and not recipients.together:
            break
    return list(found.values())


# SMS segments -----------------------------------------------------------------------

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")   # each costs an escape plus the character


@dataclass(frozen=True)
class Segments:
    count: int
    encoding: str        # "gsm7" or "ucs2"
    units: int           # septets (GSM-7) or UTF-16 code units (UCS-2)


def sms_segments(text):
    """How many SMS a carrier bills for ``text`` (signature included).

    Pure GSM-7 text: 160 septets in one message, 153 per part once split.
    Anything else (Chinese) goes as UCS-2: 70 characters in one, 67 per part.
    A character is never split across parts (an escaped GSM character or a
    UTF-16 surrogate pair moves whole to the next part).
    """
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text):
        costs = [2 if char in GSM7_EXTENSION else 1 for char in text]
        encoding, single, part = "gsm7", 160, 153
    else:
        costs = [2 if ord(char) > 0xFFFF else 1 for char in text]
        encoding, single, part = "ucs2", 70, 67
    units = sum(costs)
    if units <= single:
        return Segments(1 if text else 0, encoding, units)
    count, used = 1, 0
    for cost in costs:
        if used + cost > part:
            count, used = count + 1, 0
        used += cost
    return Segments(count, encoding, units)


# rate limits ---------------------------------------------------------------------------

def quota_key(recipient, channel, now, zone):
    """One counter per recipient, channel and local day."""
    return f"{recipient}|{channel}|{local_date(now, zone)}"


# delivery records ------------------------------------------------------------------

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# When a queued delivery is next for the dispatcher (its repository keeps it); only
# queued deliveries hold one.
DUE_AT = "due_at"
BOOKKEEPING = ("claim", "claimed_until", DUE_AT)   # never shown


def delivery_id_for(event_id, template_id, recipient=None):
    """One delivery per event, template (and recipient, when an event tells several):
    a redelivered event finds it already there."""
    return f"{event_id}:{template_id}" + (f":{recipient}" if recipient else "")


def new_delivery_id():
    return f"dlv-{uuid.uuid4().hex[:16]}"


def new_claim():
    return uuid.uuid4().hex


def new_delivery(delivery_id, *, estate_id, template, rendered, ref, recipient, routes, now,
                 channel=None, source_event=None, send_at=None, quiet_hours=None,
                 zone="Asia/Shanghai", contact_ref=None, pinned_channel=None,
                 requested_by=None):
    """A 'queued' delivery; the delivery log is the only record that keeps full addresses.

    ``routes`` are the (channel, address) pairs to try in order; ``next_attempt_at``
    is when it may go (later for a reminder). ``quiet_hours`` (with ``zone``)
    is kept when they apply, so every attempt, retries too, respects them.
    ``channel`` names the channel meant when there is no route at all.
    ``contact_ref`` is what ``intake.get_contact`` was asked (a household's
    messages), so one that waits is sent to the contact as it is then;
    ``pinned_channel`` the one channel ``send`` was told to use; ``requested_by`` the
    person who asked for it through ``send`` (none for a service or an event's message).
    """
    first = routes[0] if routes else {"channel": channel, "address": None}
    delivery = {
        "_id": delivery_id,
        "estate_id": estate_id,
        "template": template.id,
        "locale": template.locale,
        "text": rendered.text,
        "subject": rendered.subject,
        "segments": sms_segments(rendered.text).count,
        "ref": ref,
        "recipient": recipient,          # household / complaint / staff id, never an address
        "contact_ref": contact_ref,
        "pinned_channel": pinned_channel,
        "routes": list(routes),
        "route": 0,                      # index of the route being tried
        "tries": 0,                      # failed tries on that route
        "channel": first["channel"],
        "address": first["address"],
        "status": "queued",
        "reason": None,
        "quiet_hours": quiet_hours,
        "zone": zone,
        "next_attempt_at": send_at or now,
        "claimed_until": EPOCH,
        "claim": None,
        "source_event": source_event,
        "attempts": [],
        "error": None,
        "created_at": now,
        "updated_at": now,
        "sent_at": None,
        "failed_at": None,
    }
    if requested_by is not None:
        delivery["requested_by"] = requested_by
    return delivery


def claimed(delivery, claim, now, lease):
    """``delivery`` held by one worker until ``now + lease`` (a crash lets it go again)."""
    return dict(delivery, claim=claim, claimed_until=now + lease)


def defer(delivery, until, reason, now):
    """Changes that put a delivery back to wait until ``until``, unclaimed."""
    return {"next_attempt_at": until, "reason": reason, "claim": None, "claimed_until": EPOCH,
            "updated_at": now}


def attempt(channel, now, error=None, retryable=None, reference=None, skipped=None):
    """One try on one channel as the log keeps it (error texts redacted)."""
    record = {"channel": channel, "at": now, "error": redact(error) if error else None}
    if error:
        record["retryable"] = bool(retryable)
    if reference:
        record["reference"] = redact(reference)
    if skipped:
        record["skipped"] = skipped
    return record


@dataclass(frozen=True)
class Outcome:
    """What one try on a route gave: sent, an error (retryable or not), or skipped."""
    error: str | None = None
    retryable: bool = False
    skipped: str | None = None      # why it was not tried (the recipient's daily limit)
    reference: str | None = None    # the gateway's message id


def after_try(delivery, outcome, now, retry_delays):
    """The delivery's next step after one try on its current route, and its new state.

    ``sent``; ``retry`` (wait, then the same route again); ``next`` (fall back
    to the next route); ``exhausted`` (no route left: see ``finished``).
    Retries back off along ``retry_delays`` (seconds); a channel that keeps
    failing, or an error no retry can fix, moves on to the next route.
    """
    route = delivery["routes"][delivery["route"]]
    record = attempt(route["channel"], now, outcome.error, outcome.retryable,
                     outcome.reference, outcome.skipped)
    delivery = dict(delivery, attempts=delivery["attempts"] + [record], updated_at=now)
    if outcome.error is None and outcome.skipped is None:
        return "sent", delivery
    if outcome.error and outcome.retryable and delivery["tries"] < len(retry_delays):
        tries = delivery["tries"] + 1
        wait = timedelta(seconds=retry_delays[tries - 1])
        return "retry", dict(delivery, tries=tries, next_attempt_at=now + wait,
                             reason=f"retry {tries} on {route['channel']}")
    following = delivery["route"] + 1
    if following < len(delivery["routes"]):
        nxt = delivery["routes"][following]
        return "next", dict(delivery, route=following, tries=0,
                            channel=nxt["channel"], address=nxt["address"])
    return "exhausted", delivery


def progress(delivery):
    """The fields a try changes, to store while the delivery waits for its next try."""
    return {key: delivery[key] for key in (
        "routes", "attempts", "route", "tries", "channel", "address", "next_attempt_at",
        "reason", "updated_at")}


def waited(delivery):
    """Whether a household's delivery was held (quiet hours, a reminder's moment) and has
    not been tried: its contact is looked up again, as it is when the message goes."""
    return bool(delivery.get("contact_ref")) and not delivery["attempts"] \
        and delivery["next_attempt_at"] > delivery["created_at"]


def rerouted(delivery, routes):
    """``delivery`` to go on ``routes`` (non-empty), from the first."""
    return dict(delivery, routes=list(routes), route=0, tries=0, channel=routes[0]["channel"],
                address=routes[0]["address"])


def finished(delivery, now):
    """How a delivery whose routes are used up ends: its changes and events.

    Suppressed if every route was skipped for the daily limit (the excess is
    logged, nobody is told); otherwise failed, with the last error.
    """
    tried = [record for record in delivery["attempts"] if not record.get("skipped")]
    if delivery["attempts"] and not tried:
        channels = ", ".join(dict.fromkeys(record["channel"] for record in delivery["attempts"]))
        return suppressed(f"daily limit reached on {channels}", now, delivery["attempts"]), []
    error = tried[-1]["error"] if tried else "no channel to try"
    return failed(delivery, delivery["attempts"], error, now)


def sent(delivery, channel, address, attempts, now):
    """The changes that mark ``delivery`` sent, and its ``notification_sent`` event."""
    changes = {"status": "sent", "channel": channel, "address": address, "attempts": attempts,
               "sent_at": now, "updated_at": now, "reason": None, "claim": None}
    return changes, [_event("notification_sent", dict(delivery, **changes), {}, now)]


def failed(delivery, attempts, error, now):
    """The changes that mark ``delivery`` failed, and its ``notification_failed`` event."""
    changes = {"status": "failed", "attempts": attempts, "error": redact(error),
               "failed_at": now, "updated_at": now, "reason": None, "claim": None}
    return changes, [_event("notification_failed", dict(delivery, **changes),
                            {"error": changes["error"]}, now)]


def suppressed(reason, now, attempts=None):
    """Not sent on purpose (opted out, daily limit, superseded): logged, no event."""
    changes = {"status": "suppressed", "reason": reason, "updated_at": now, "claim": None}
    if attempts is not None:
        changes["attempts"] = attempts
    return changes


def public_view(delivery, show_links=True):
    """A delivery as staff see it: addresses masked, the bookkeeping left out, and the
    owner links' tokens cut short unless ``show_links``."""
    view = {key: value for key, value in delivery.items() if key not in BOOKKEEPING}
    if not show_links:
        view["text"] = hide_tokens(view.get("text"))
    view["address"] = mask_address(delivery.get("address"))
    view["routes"] = [dict(route, address=mask_address(route["address"]))
                      for route in delivery.get("routes", [])]
    return view


def redact(text):
    """An error text from a plug-in may quote the address: masked (``mask_text``), kept short."""
    return mask_text(str(text))[:1000]


def _event(event_type, delivery, data, now):
    told = {key: delivery[key] for key in ("channel", "template", "recipient", "ref")}
    # a delivery ends sent or failed once: its id derives from the delivery's
    return record_event(event_type, SOURCE, delivery, "delivery_id", dict(told, **data), now,
                        key=delivery["_id"])


# preferences --------------------------------------------------------------------------

def default_preferences(household_id):
    return {"_id": household_id, "channels": [], "quiet_hours": None, "opt_out": False,
            "locale": None}


def merge_preferences(current, changes, household_id, now, updated_by=None):
    """``current`` (or the defaults) with the given fields changed; ``updated_by`` the
    person who changed them, when a person did (the gateway)."""
    base = dict(default_preferences(household_id), **(current or {}))
    merged = dict(base, **changes, updated_at=now)
    merged.pop("updated_by", None)   # whoever changed them before did not make this change
    if updated_by is not None:
        merged["updated_by"] = updated_by
    return merged


def preferences_view(preferences):
    view = dict(preferences, household_id=preferences["_id"])
    view.pop("_id")
    return view
