"""The owner's own view of a complaint, behind the link in their messages (/c/<token>),
and the complaints owners file themselves on an estate's online form. Pure Python.

「投诉处理小组应及时向业主反馈处理进展情况,并提供解决方案」 (第十三条): the owner sees
where the complaint stands, step by step, and the answer given. 「如果业主对投诉处理结果
不满意,可以向物业公司申请复核」 (第十四条): on a closed complaint the owner asks for a
review (复核) there too.

What the owner sees is built here, field by field, never by hiding fields of the staff's
view: no staff name or id (history ``by``, assignees, reviewers), no contact, no staff
note, no escalation, overdue alert, malicious flag or special measure. Of the notes only
the two meant for the owner are shown: the resolution (the answer to the complaint) and a
review's finding (the answer to the owner's review request).

The link token is the credential. It works while the complaint is being handled and for
``owner_link_days`` (policy, default 90) after it was last closed — long enough to ask for
a review and read its answer — then it stops; a reopening makes it work again.
"""
from datetime import datetime

from services.intake import domain
from services.intake.policy import ComplaintPolicy
from shared.envelope import Changed
from shared.errors import InvalidInput, InvalidTransition

# history action -> the step the owner's timeline shows; other actions are internal
TIMELINE_STEPS = {
    "register": "received",
    "acknowledge": "acknowledged",
    "assign": "assigned",
    "resolve": "resolved",
    "close": "closed",
    "reopen": "reopened",
    "request_review": "review_requested",
    "uphold_review": "review_upheld",
    "overturn_review": "review_overturned",
}
# Still owing the owner an answer: the page shows when it is due.
AWAITING_ANSWER = ("registered", "acknowledged", "assigned", "reopened")
UNKNOWN_LINK = "unknown or expired link"
# Folded into an online complaint's content: where the owner says it is (typed, unchecked).
LOCATION_NOTE = "\n（业主自报位置：{}）"


# the link --------------------------------------------------------------------------

def last_closed_at(complaint: dict) -> datetime | None:
    """When the complaint last became closed (a closing, or a review that upheld it);
    None unless it is closed now."""
    if complaint["status"] != "closed":
        return None
    return max((line["at"] for line in complaint["history"]
                if line["to"] == "closed" and line["from"] != "closed"), default=None)


def link_expires_at(complaint: dict, policy: ComplaintPolicy) -> datetime | None:
    """When the owner's link stops working; None while the complaint is being handled."""
    closed_at = last_closed_at(complaint)
    return closed_at + policy.owner_link_lifetime if closed_at else None


def link_works(complaint: dict, now: datetime, policy: ComplaintPolicy) -> bool:
    expires_at = link_expires_at(complaint, policy)
    return expires_at is None or now < expires_at


def refuse_link() -> InvalidInput:
    """One answer for a token never issued and one expired: the page reveals neither."""
    return InvalidInput({"token": [UNKNOWN_LINK]})


# what the owner sees ------------------------------------------------------------------

def timeline(complaint: dict) -> list[dict]:
    """The steps of the complaint the owner may see, oldest first: ``step``, ``at`` and,
    per step, the department (assigned), the promised reply time, the resolution text,
    why it was reopened (``source``), a review's due time or finding."""
    steps, reviews = [], iter(complaint.get("reviews", []))
    for line in complaint["history"]:
        step = TIMELINE_STEPS.get(line["action"])
        if step is None:
            continue
        entry = {"step": step, "at": line["at"]}
        if step == "received":
            entry["at"] = complaint["received_at"]
        elif step == "assigned":
            # lines written before departments were kept on them: the current one
            entry["department"] = line.get("department") or complaint.get("department")
            entry["reply_promised_at"] = line.get("reply_promised_at")
        elif step == "resolved":
            entry["resolution"] = line["note"]          # the answer given to the owner
        elif step == "reopened":
            entry["source"] = line.get("source") or _reopen_source(line)
        elif step == "review_requested":
            review = next(reviews, None) or {}
            entry["due_at"] = review.get("due_at")
        elif step in ("review_upheld", "review_overturned"):
            entry["finding"] = line["note"]             # the answer to the owner's request
        steps.append(entry)
    return steps


def _reopen_source(line: dict) -> str | None:
    """Older lines: a reopening nobody recorded by hand names its source as ``by``."""
    return line["by"] if line["by"] in ("owner", "revisit", "review") else None


def can_request_review(complaint: dict) -> bool:
    """Only a closed complaint, and not while a review of it is still open."""
    return complaint["status"] == "closed" and not any(
        review["outcome"] is None for review in complaint.get("reviews", []))


def answer_due(complaint: dict) -> datetime | None:
    """When the owner is next owed an answer: the promised reply time, else the reply
    deadline; an open review's due time; None when nothing is owed."""
    status = complaint["status"]
    if status in AWAITING_ANSWER:
        return complaint.get("reply_promised_at") or complaint.get("reply_due")
    if status == "under_review":
        return complaint["reviews"][-1]["due_at"]
    return None


def owner_view(complaint: dict, policy: ComplaintPolicy) -> dict:
    """The complaint as its owner sees it (the page at /c/<token>)."""
    open_review = next((review for review in complaint.get("reviews", [])
                        if review["outcome"] is None), None)
    return {
        "number": complaint["_id"],
        "category": complaint["category"],
        "channel": complaint["channel"],
        "received_at": complaint["received_at"],
        "status": complaint["status"],
        "answer_due": answer_due(complaint),
        "timeline": timeline(complaint),
        "review": {
            "can_request": can_request_review(complaint),
            "open": open_review and {"requested_at": open_review["requested_at"],
                                     "due_at": open_review["due_at"]},
        },
        "link_expires_at": link_expires_at(complaint, policy),
    }


# what the owner does -------------------------------------------------------------------

def request_review(complaint: dict, reason: str, now: datetime,
                   policy: ComplaintPolicy) -> Changed | None:
    """The owner's review request from the page: recorded as the owner's, by nobody else."""
    if not can_request_review(complaint):
        raise InvalidTransition("complaint", complaint["_id"], complaint["status"],
                                "request a review of")
    return domain.apply(complaint, "request_review", "owner", now, policy, reason=reason,
                        requested_by="owner")


def online_complaint(data: dict) -> dict:
    """The register_complaint input of a complaint filed on the estate's online form: the
    reporter answers (a household is never matched from what a stranger types: its
    contacts would get the messages), and where the owner says it is joins the content."""
    content = data["content"]
    if data.get("location"):
        content += LOCATION_NOTE.format(data["location"].strip())
    return {"estate_id": data["estate_id"], "household_id": None, "reporter": data["reporter"],
            "channel": "online", "category": data["category"], "severity": "normal",
            "content": content, "received_at": None, "staff_id": None}
