"""Answering: whether an invitation's token may answer now, and the response it stores (an
anonymous one cannot be traced to its household). Pure Python."""
import uuid
from datetime import datetime, timedelta

from services.survey import opinions
from shared.errors import InvalidInput

UNKNOWN_TOKEN = "unknown invitation"
USED_TOKEN = "this invitation has already been used"
EXPIRED_TOKEN = "this invitation has expired"
CLOSED_ROUND = "this survey has closed"


def refuse_token(reason: str) -> InvalidInput:
    return InvalidInput({"token": [reason]})


def answer_state(round_: dict, invitation: dict, now: datetime) -> str:
    """Where an invitation stands for its owner: ``open`` to answer, ``not_open`` yet,
    ``answered``, ``expired``, ``closed``, or ``unknown`` (never sent)."""
    if invitation["status"] == "pending" or round_["status"] in ("creating", "abandoned"):
        return "unknown"     # never sent: its token cannot have reached anyone
    if invitation["status"] == "answered":
        return "answered"
    if invitation["status"] == "expired" or now >= invitation["expires_at"]:
        return "expired"
    if round_["status"] == "scheduled" or now < round_["opens_at"]:
        return "not_open"
    if round_["status"] != "open" or now >= round_["closes_at"]:
        return "closed"
    return "open"


REFUSALS = {"unknown": UNKNOWN_TOKEN, "answered": USED_TOKEN, "expired": EXPIRED_TOKEN,
            "closed": CLOSED_ROUND}


def why_not_answerable(round_: dict, invitation: dict, now: datetime) -> str | None:
    """The reason ``invitation`` cannot be answered now, or None if it can."""
    state = answer_state(round_, invitation, now)
    if state == "open":
        return None
    if state == "not_open":
        return f"this survey opens at {round_['opens_at'].isoformat()}"
    return REFUSALS[state]


def response(round_: dict, invitation: dict, data: dict, now: datetime,
             grace: timedelta) -> dict:
    """The stored questionnaire; an anonymous one cannot be traced to its household.

    ``count_after`` is when the relay may count it if its writer died before doing so;
    it goes once the response is counted.
    """
    answer = {
        "_id": uuid.uuid4().hex,
        "round_id": round_["_id"],
        "estate_id": invitation["estate_id"],
        "answers": data["answers"],
        "comments": data["comments"],
        "terms": opinions.terms_by_topic(data["comments"]),
        # only the day: a to-the-second time would match the invitation's answered_at
        "submitted_on": now.date().isoformat(),
        "counted": False,
        "count_after": now + grace,
    }
    if not round_["anonymous"]:
        answer.update(household_id=invitation["household_id"], invitation_id=invitation["_id"])
    return answer
