"""Satisfaction surveys: rounds, invitations, answers and the report. Pure Python.

Policy texts (../shared/seed): 「服务中心每半年进行一次业主/用户意见调查」 and the report
gives 「调查表的回收份数、总的满意率以及分项满意率、业主/用户对物业服务、管理的意见(共性的意见)」.
"""
import hashlib
import secrets
import uuid
from collections import Counter

from shared.envelope import new_event
from shared.errors import InvalidInput, InvalidTransition
from shared.schemas.survey import ANSWER_SCALE

SOURCE = "survey"

# The nine default categories of the policy text, 「1.供电管理 2.供水管理 3.消防治安管理 …」.
CATEGORY_LABELS = {
    "power_supply": ("供电", "Power supply"),
    "water_supply": ("供水", "Water supply"),
    "fire_security": ("消防治安", "Fire safety and security"),
    "order": ("秩序", "Order"),
    "cleaning": ("卫生", "Cleaning"),
    "greening": ("绿化", "Greening"),
    "public_facilities": ("公共设施", "Public facilities"),
    "repair_service": ("维修服务", "Repair service"),
    "service_attitude": ("服务态度", "Service attitude"),
}
SATISFIED_ANSWERS = (4, 5)
DISTRIBUTION_KEYS = tuple(str(answer) for answer in ANSWER_SCALE)

UNKNOWN_TOKEN = "unknown invitation"
USED_TOKEN = "this invitation has already been used"
CLOSED_ROUND = "this survey has closed"


# ids and tokens ---------------------------------------------------------------

def new_round_id():
    return f"rnd-{uuid.uuid4().hex[:16]}"


def invitation_id(round_id, household_id):
    """One invitation per household and round, whoever issues it and however often."""
    digest = hashlib.sha256(f"{round_id}\x00{household_id}".encode()).hexdigest()
    return f"inv-{digest[:24]}"


def new_token():
    """Unguessable and single-use: the token alone lets its holder answer."""
    return secrets.token_urlsafe(16)


# opening a round ------------------------------------------------------------------

def check_schedule(data, now):
    if data["closes_at"] <= now:
        raise InvalidInput({"closes_at": ["is already past: nobody could answer"]})


def open_round(round_id, data, households, now, token=new_token):
    """The round, its ``survey_round_opened`` events, and each invitation with its event.

    ``households`` maps each estate of the round to its occupied households.
    """
    empty = [estate_id for estate_id in data["estate_ids"] if not households.get(estate_id)]
    if empty:
        raise InvalidInput({"estate_ids": [
            f"{estate_id}: no occupied households to invite" for estate_id in empty]})
    round_ = {
        "_id": round_id,
        "title": data["title"],
        "kind": data["kind"],
        "estate_ids": list(data["estate_ids"]),
        "opens_at": data["opens_at"],
        "closes_at": data["closes_at"],
        "categories": list(data["categories"]),
        "anonymous": data["anonymous"],
        "status": "open",
        "invited": {estate_id: len(households[estate_id]) for estate_id in data["estate_ids"]},
        "created_at": now,
        "closed_at": None,
    }
    issued = [
        _invite(round_, estate_id, household, token(), now)
        for estate_id in round_["estate_ids"] for household in households[estate_id]
    ]
    events = [
        new_event("survey_round_opened", SOURCE, estate_id, {
            "round_id": round_id, "invited": round_["invited"][estate_id],
            **{key: round_[key] for key in ("title", "kind", "opens_at", "closes_at")},
        }, now)
        for estate_id in round_["estate_ids"]
    ]
    return round_, events, issued


def _invite(round_, estate_id, household, token, now):
    invitation = {
        "_id": invitation_id(round_["_id"], household["id"]),
        "round_id": round_["_id"],
        "estate_id": estate_id,
        "household_id": household["id"],
        # where the household lives, for staff and for sampling by building later
        "building": household.get("building"),
        "unit": household.get("unit"),
        "room": household.get("room"),
        "token": token,
        "status": "issued",
        "issued_at": now,
        "expires_at": round_["closes_at"],
        "answered_at": None,
    }
    event = new_event("survey_invitation_issued", SOURCE, estate_id, {
        "invitation_id": invitation["_id"],
        **{key: invitation[key] for key in ("round_id", "household_id", "token")},
        "expires_at": invitation["expires_at"],
    }, now)
    return invitation, [event]


def check_estate(round_, estate_id):
    if estate_id not in round_["estate_ids"]:
        raise InvalidInput({"estate_id": ["not an estate of this round"]})


# answering ----------------------------------------------------------------------

def refuse_token(reason):
    return InvalidInput({"token": [reason]})


def why_not_answerable(round_, invitation, now):
    """The reason ``invitation`` cannot be answered now, or None if it can."""
    if invitation["status"] == "answered":
        return USED_TOKEN
    if invitation["status"] != "issued" or round_["status"] != "open" \
            or now >= round_["closes_at"]:
        return CLOSED_ROUND
    if now < round_["opens_at"]:
        return f"this survey opens at {round_['opens_at'].isoformat()}"
    return None


def response(round_, invitation, data, now):
    """The stored questionnaire; an anonymous one cannot be traced to its household."""
    answer = {
        "_id": uuid.uuid4().hex,
        "round_id": round_["_id"],
        "estate_id": invitation["estate_id"],
        "answers": data["answers"],
        "comments": data["comments"],
        # only the day: a to-the-second time would match the invitation's answered_at
        "submitted_on": now.date().isoformat(),
    }
    if not round_["anonymous"]:
        answer.update(household_id=invitation["household_id"], invitation_id=invitation["_id"])
    return answer


def tally_increment(answers):
    """The ``$inc`` one questionnaire adds to its round × estate tally, per category."""
    increment = {"returned": 1}
    for category, answer in answers.items():
        prefix = f"categories.{category}"
        if answer is None:
            increment[f"{prefix}.not_applicable"] = 1
            continue
        increment[f"{prefix}.answered"] = 1
        increment[f"{prefix}.satisfied"] = int(answer in SATISFIED_ANSWERS)
        increment[f"{prefix}.score_sum"] = answer
        increment[f"{prefix}.distribution.{answer}"] = 1
    return increment


# closing ----------------------------------------------------------------------

def close(round_, returned_by_estate, now):
    """The closed round and one ``survey_round_closed`` per estate."""
    if round_["status"] != "open":
        raise InvalidTransition("survey round", round_["_id"], round_["status"], "close")
    round_ = dict(round_, status="closed", closed_at=now)
    events = [
        new_event("survey_round_closed", SOURCE, estate_id, {
            "round_id": round_["_id"],
            "invited": round_["invited"][estate_id],
            "returned": returned_by_estate.get(estate_id, 0),
        }, now)
        for estate_id in round_["estate_ids"]
    ]
    return round_, events


# the report ---------------------------------------------------------------------

def response_rate(returned, invited):
    """「调查表的回收份数」 against those issued: returned ÷ invited, None if nobody was invited."""
    return _ratio(returned, invited)


def satisfaction_rate(satisfied, answered):
    """DESIGN.md §2: Satisfaction rate = answers of 4 or 5 ÷ answers given (N/A excluded)."""
    return _ratio(satisfied, answered)


def score(score_sum, answered):
    """DESIGN.md §2: Score = mean of answer × 20. (100 points, one decimal; None if unanswered)"""
    return round(score_sum / answered * 20, 1) if answered else None


def _ratio(part, whole):
    """A fraction rounded to four places (0.8571 is 85.71 %); None when there is no whole."""
    return round(part / whole, 4) if whole else None


def report(round_, tallies, comments, estate_id=None):
    """The round's report over all its estates, or over ``estate_id`` alone.

    ``tallies`` are the round × estate counters of those estates, ``comments``
    each of their questionnaires' comments ({category or "general": text}).
    """
    estate_ids = [estate_id] if estate_id else round_["estate_ids"]
    categories = {category: _empty_tally() for category in round_["categories"]}
    returned = 0
    for tally in tallies:
        returned += tally.get("returned", 0)
        for category, counts in tally.get("categories", {}).items():
            _add(categories[category], counts)
    answered = sum(counts["answered"] for counts in categories.values())
    satisfied = sum(counts["satisfied"] for counts in categories.values())
    score_sum = sum(counts["score_sum"] for counts in categories.values())
    invited = sum(round_["invited"][estate_id] for estate_id in estate_ids)
    return {
        "round_id": round_["_id"],
        "title": round_["title"],
        "status": round_["status"],
        "estate_id": estate_id,
        "invited": invited,
        "returned": returned,
        "response_rate": response_rate(returned, invited),
        "answered": answered,
        "satisfied": satisfied,
        "satisfaction_rate": satisfaction_rate(satisfied, answered),
        "score": score(score_sum, answered),
        "categories": {
            category: _category_view(category, counts) for category, counts in categories.items()
        },
        "opinions": common_opinions(comments),
        "rectifications": [],
    }


def _empty_tally():
    return {"answered": 0, "satisfied": 0, "not_applicable": 0, "score_sum": 0,
            "distribution": {key: 0 for key in DISTRIBUTION_KEYS}}


def _add(total, counts):
    for key in ("answered", "satisfied", "not_applicable", "score_sum"):
        total[key] += counts.get(key, 0)
    for key, count in counts.get("distribution", {}).items():
        total["distribution"][key] += count


def _category_view(category, counts):
    label_zh, label_en = CATEGORY_LABELS.get(category, (category, category))
    return {
        "answered": counts["answered"],
        "satisfied": counts["satisfied"],
        "not_applicable": counts["not_applicable"],
        "rate": satisfaction_rate(counts["satisfied"], counts["answered"]),
        "score": score(counts["score_sum"], counts["answered"]),
        "distribution": counts["distribution"],
        "label_zh": label_zh,
        "label_en": label_en,
    }


def common_opinions(comments):
    """「业主/用户对物业服务、管理的意见(共性的意见)」: the same remark counted once per
    questionnaire, most frequent first. (Grouping remarks into themes comes later.)"""
    counts = Counter(
        (topic, " ".join(text.split()))
        for questionnaire in comments for topic, text in questionnaire.items()
    )
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [{"category": topic, "text": text, "count": count}
            for (topic, text), count in ranked]
