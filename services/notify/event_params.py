"""What a message about an event is written from: each event's parameters (dates in the
estate's zone, free text cut to an excerpt, links to the owner's and the console's pages)
and what the estate's settings add (``Context``). Pure Python."""
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from shared.links import DEFAULT_PUBLIC_BASE_URL, owner_link

Data = Mapping[str, Any]     # an event's data, as its schema (shared/schemas/events) allows
Params = dict[str, object]   # a template's parameters: name -> value

NOT_AVAILABLE = "n/a"   # a value an event may lack; templates' labels say it in words
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


def local_time(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


def local_date(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Context:
    """What an estate's settings add to an event when its messages are written."""
    zone: str = "Asia/Shanghai"
    survey_base_url: str = "https://survey.example.com/s/"
    reminder_lead: timedelta = timedelta(hours=24)
    public_base_url: str = DEFAULT_PUBLIC_BASE_URL   # the gateway's owner pages
    estate_name: str = NOT_AVAILABLE                 # as its owners and staff call it

    def survey_link(self, token: str) -> str:
        return self.survey_base_url.rstrip("/") + "/" + token

    def revisit_link(self, token: str) -> str:
        return owner_link(self.public_base_url, "r", token)

    def complaint_link(self, token: str) -> str:
        return owner_link(self.public_base_url, "c", token)

    def console_link(self, *path: object) -> str:
        """A page of the staff console (services/gateway/console*.py): ``complaints/<id>``,
        ``revisits/<id>``. Staff log in to open it: it carries no credential."""
        return f"{self.public_base_url.rstrip('/')}/console/" + "/".join(
            quote(str(part), safe="") for part in path)

    def complaint_console_link(self, complaint_id: str) -> str:
        return self.console_link("complaints", complaint_id)

    def revisit_console_link(self, revisit_id: str) -> str:
        """Where the visitor books the visit and records it (the console's revisit page)."""
        return self.console_link("revisits", revisit_id)

    def rectifications_console_link(self) -> str:
        """The user's rectifications (a department sees its own), each linking its round,
        where it is moved on: a department may not open the round itself."""
        return self.console_link("surveys", "rectifications")

    def followup_console_link(self, followup_id: str) -> str:
        """Where the department records its measures and its answer to the owner."""
        return self.console_link("revisits", "followups", followup_id)


def estate_params(context: Context) -> Params:
    """``ESTATE_PARAMS``: what every message of the estate may show, whoever asked for it."""
    return {"estate_name": context.estate_name}


def with_contact_params(params: Mapping[str, object], contact: Mapping[str, Any] | None,
                        context: Context) -> Params:
    """``params`` with ``CONTACT_PARAMS`` as the recipient's contact gives them — the link
    to the owner's complaint page when intake answered its token with the contact (a
    message about a complaint) — never as a caller typed them: no message carries a link
    to an owner's page that notify did not make."""
    own = {name: value for name, value in params.items() if name not in CONTACT_PARAMS}
    token = (contact or {}).get("owner_url_token")
    return {**own, "complaint_url": context.complaint_link(token)} if token else own


def excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    """``text`` (free text, masked in the event) cut to ``limit`` characters, … when cut;
    ``NOT_AVAILABLE`` when there is none (the template's labels say so in words)."""
    text = " ".join((text or "").split())
    if not text:
        return NOT_AVAILABLE
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _time_or_not_available(moment: datetime | None, zone: str) -> str:
    return local_time(moment, zone) if moment else NOT_AVAILABLE


def _percent(rate: float | None) -> str:
    """A rate (0.8571) as a message says it: 85.7%; no rate (nothing to count): n/a."""
    return NOT_AVAILABLE if rate is None else f"{rate * 100:.1f}%"


def complaint_received_params(data: Data, context: Context) -> Params:
    return {
        "complaint_id": data["complaint_id"],
        "received_at": local_time(data["received_at"], context.zone),
        "first_response_due": local_time(data["first_response_due"], context.zone),
        "reply_due": local_time(data["reply_due"], context.zone),
    }


def complaint_assigned_params(data: Data, context: Context) -> Params:
    return {"complaint_id": data["complaint_id"], "department": data["department"],
            "assigned_at": local_time(data["assigned_at"], context.zone),
            "reply_due": _time_or_not_available(data.get("reply_due"), context.zone),
            "summary": excerpt(data.get("summary"), limit=SUMMARY_CHARS),
            "console_url": context.complaint_console_link(data["complaint_id"])}


def complaint_routed_params(data: Data, context: Context) -> Params:
    """第十三条: the owner hears which department has the complaint and by when it answers."""
    return {"complaint_id": data["complaint_id"], "department": data["department"],
            "reply_due": _time_or_not_available(data.get("reply_due"), context.zone)}


def complaint_overdue_params(data: Data, context: Context) -> Params:
    return {"complaint_id": data["complaint_id"], "deadline": data["deadline"],
            "due_at": local_time(data["due_at"], context.zone),
            "summary": excerpt(data.get("summary"), limit=SUMMARY_CHARS),
            "console_url": context.complaint_console_link(data["complaint_id"])}


def complaint_deadline_approaching_params(data: Data, context: Context) -> Params:
    """The deadline, the time left (hours and minutes, as the warning was sent) and what
    the complaint is about, with the console page to act on."""
    hours_left, minutes_left = divmod(max(data["minutes_left"], 0), 60)
    return {"complaint_id": data["complaint_id"], "deadline": data["deadline"],
            "due_at": local_time(data["due_at"], context.zone),
            "hours_left": hours_left, "minutes_left": minutes_left,
            "summary": excerpt(data.get("summary"), limit=SUMMARY_CHARS),
            "console_url": context.complaint_console_link(data["complaint_id"])}


def complaint_escalated_params(data: Data, context: Context) -> Params:
    """Who it goes up to, why (the deadline missed, or ``manual``: taken up by staff) and
    what the complaint is about, with the console page to act on."""
    return {"complaint_id": data["complaint_id"], "level": data["level"], "role": data["role"],
            "cause": data.get("deadline") or "manual",
            "summary": excerpt(data.get("summary"), limit=SUMMARY_CHARS),
            "console_url": context.complaint_console_link(data["complaint_id"])}


def instruction_params(data: Data, context: Context) -> Params:
    """The manager's instruction, for whoever has the complaint, with the page to act from."""
    return {"complaint_id": data["complaint_id"], "role": data["role"],
            "instruction": excerpt(data.get("instruction")),
            "summary": excerpt(data.get("summary"), limit=SUMMARY_CHARS),
            "console_url": context.complaint_console_link(data["complaint_id"])}


def complaint_repeated_params(data: Data, context: Context) -> Params:
    return {"complaint_id": data["complaint_id"], "repeat_of": data["repeat_of"],
            "category": data["category"],
            "summary": excerpt(data.get("summary"), limit=SUMMARY_CHARS),
            "special_measures_due": local_time(data["special_measures_due"], context.zone),
            "console_url": context.complaint_console_link(data["complaint_id"])}


def complaint_resolved_params(data: Data, context: Context) -> Params:
    return {"complaint_id": data["complaint_id"], "resolution": excerpt(data.get("resolution"))}


def review_requested_params(data: Data, context: Context) -> Params:
    return {"complaint_id": data["complaint_id"], "review_no": data["review_no"],
            "reason": excerpt(data.get("reason")),
            "due_at": local_time(data["due_at"], context.zone),
            "console_url": context.complaint_console_link(data["complaint_id"])}


def complaint_reviewed_params(data: Data, context: Context) -> Params:
    return {"complaint_id": data["complaint_id"], "outcome": data["outcome"],
            "finding": excerpt(data.get("finding"))}


def complaint_closed_params(data: Data, context: Context) -> Params:
    return {"complaint_id": data["complaint_id"],
            "closed_at": local_time(data["closed_at"], context.zone)}


def revisit_scheduled_params(data: Data, context: Context) -> Params:
    return {"revisit_id": data["revisit_id"], "due_date": local_date(data["due_at"], context.zone),
            "method": data["method"]}


def onsite_revisit_params(data: Data, context: Context) -> Params:
    return {"revisit_id": data["revisit_id"], "kind": data["kind"],
            "source_id": data["source_id"], "due_date": local_date(data["due_at"], context.zone),
            "console_url": context.revisit_console_link(data["revisit_id"])}


def revisit_overdue_params(data: Data, context: Context) -> Params:
    return {"revisit_id": data["revisit_id"], "kind": data["kind"],
            "source_id": data["source_id"], "deadline": data["deadline"],
            "due_at": local_time(data["due_at"], context.zone),
            "console_url": context.revisit_console_link(data["revisit_id"])}


def revisit_online_params(data: Data, context: Context) -> Params:
    return dict(revisit_scheduled_params(data, context),
                revisit_url=context.revisit_link(data["token"]))


def appointment_params(data: Data, context: Context) -> Params:
    return {"revisit_id": data["revisit_id"], "at": local_time(data["at"], context.zone),
            "method": data["method"]}


def survey_invitation_params(data: Data, context: Context) -> Params:
    return {"survey_url": context.survey_link(data["token"]),
            "expires_date": local_date(data["expires_at"], context.zone)}


def survey_reminder_params(data: Data, context: Context) -> Params:
    return {"survey_url": context.survey_link(data["token"]), "reminder_no": data["reminder_no"]}


def survey_report_params(data: Data, context: Context) -> Params:
    return {"satisfaction_rate": _percent(data["satisfaction_rate"]),
            "rectifications": data["rectifications"]}


def survey_round_closed_params(data: Data, context: Context) -> Params:
    """The round's response, with its console page (the report, the rectifications)."""
    return {"round_id": data["round_id"], "invited": data["invited"],
            "returned": data["returned"], "response_rate": _percent(data.get("response_rate")),
            "console_url": context.console_link("surveys", data["round_id"])}


def rectification_params(data: Data, context: Context) -> Params:
    return {"rectification_id": data["rectification_id"], "category": data["category"],
            "department": data["department"], "action": excerpt(data.get("action")),
            "due_date": local_date(data["due_at"], context.zone),
            "console_url": context.rectifications_console_link()}


def rectification_done_params(data: Data, context: Context) -> Params:
    return {"category": data["category"], "action": excerpt(data.get("action"))}


def rectification_overdue_params(data: Data, context: Context) -> Params:
    return {"rectification_id": data["rectification_id"], "category": data["category"],
            "department": data["department"],
            "due_date": local_date(data["due_at"], context.zone),
            "console_url": context.rectifications_console_link()}


def followup_params(data: Data, context: Context) -> Params:
    """A follow-up of an unsatisfied revisit, for the department or the leadership."""
    return {"followup_id": data["followup_id"], "kind": data["kind"],
            "department": data["department"],
            "summary": excerpt(data.get("summary"), limit=SUMMARY_CHARS),
            "due_date": local_date(data["answer_due_at"], context.zone),
            "console_url": context.followup_console_link(data["followup_id"])}


def followup_answered_params(data: Data, context: Context) -> Params:
    return {"kind": data["kind"], "answer": excerpt(data.get("answer"))}


def survey_cadence_params(data: Data, context: Context) -> Params:
    """The period that passed without a closed survey round, and the console page that
    opens a round."""
    return {"period": data["period"], "cadence": data["cadence"],
            "console_url": context.console_link("surveys", "new")}


def reminder_time(data: Data, context: Context) -> datetime:
    return data["at"] - context.reminder_lead
