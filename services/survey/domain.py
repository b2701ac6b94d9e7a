"""Satisfaction surveys: templates, rounds, invitations, answers, statistics, ranking and
rectification. Pure Python.

Policy texts: 「服务中心每半年进行一次业主/用户意见调查」 and the report
gives 「调查表的回收份数、总的满意率以及分项满意率、业主/用户对物业服务、管理的意见(共性的意见)」.
"""
import hashlib
import json
import math
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from services.survey import opinions
from shared.envelope import new_event, new_events
from shared.errors import InvalidInput, InvalidTransition
from shared.expected_state import already_done
from shared.links import new_token  # unguessable: the token alone lets its holder answer
from shared.schemas.survey import (
    ANSWER_SCALE,
    GENERAL_COMMENT,
    RECTIFICATION_STATUSES,
    ROUND_STATUSES,
)

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
# What estates and rounds commonly add: 「(2) 停车管理和交通情况的评价」, 「物业费调整」,
# 「社区活动:包括社区组织的活动丰富性、吸引力等」.
OPTIONAL_CATEGORY_LABELS = {
    "parking": ("停车管理", "Parking"),
    "fees": ("物业收费", "Fees"),
    "community_activities": ("社区文化活动", "Community activities"),
}
KNOWN_CATEGORIES = {**CATEGORY_LABELS, **OPTIONAL_CATEGORY_LABELS}
GENERAL_LABELS = ("总体意见", "General")
DEFAULT_TEMPLATE_ID = "default"
DEFAULT_TEMPLATE_TITLE = "物业服务满意度调查（标准九项）"

SATISFIED_ANSWERS = (4, 5)
DISTRIBUTION_KEYS = tuple(str(answer) for answer in ANSWER_SCALE)
WILSON_Z = 1.959964          # two-sided 95 %
TOP_TERMS = 5                # common opinions shown per category

UNKNOWN_TOKEN = "unknown invitation"
USED_TOKEN = "this invitation has already been used"
EXPIRED_TOKEN = "this invitation has expired"
CLOSED_ROUND = "this survey has closed"


@dataclass(frozen=True)
class SurveyPolicy:
    """Defaults a round may override; ``SURVEY_POLICY`` in config.yaml.

    The group's rules: "reminders go to those who have not answered"; "a small sample must
    not win a ranking by luck, so rankings use a confidence bound and a minimum sample".
    """

    reminder_interval_days: float = 3
    max_reminders: int = 2
    min_ranked_returns: int = 30
    # households read from intake per page, and invitations written and issued per batch
    # (intake pages by at most 1000)
    round_batch_size: int = 1000
    # a round's background work is held this long from its last batch: after that (its
    # worker died) another instance takes it over
    round_work_lease_seconds: float = 60
    # a response stored but not counted after this long was left by a crash: it is counted
    response_grace_seconds: float = 60
    timezone: str = "Asia/Shanghai"


# ids and tokens ---------------------------------------------------------------

def new_round_id():
    return f"rnd-{uuid.uuid4().hex[:16]}"


def new_rectification_id():
    return f"rect-{uuid.uuid4().hex[:16]}"


def invitation_id(round_id, household_id):
    """One invitation per household and round, whoever issues it and however often."""
    digest = hashlib.sha256(f"{round_id}\x00{household_id}".encode()).hexdigest()
    return f"inv-{digest[:24]}"


def tally_id(round_id, estate_id):
    return f"{round_id}:{estate_id}"


# templates --------------------------------------------------------------------

def template_document(template_id, version, title, categories, now):
    # "template_version", not "version": that name is the store's optimistic lock
    return {
        "_id": f"{template_id}:v{version}",
        "template_id": template_id,
        "template_version": version,
        "title": title,
        "categories": categories,
        "created_at": now,
    }


def default_template(now):
    """Version 1 of the default template: the nine categories of the policy text."""
    return template_document(DEFAULT_TEMPLATE_ID, 1, DEFAULT_TEMPLATE_TITLE, [
        _definition(key, *labels) for key, labels in CATEGORY_LABELS.items()], now)


def new_template_version(data, latest, now, created_by=None):
    """The next version of a template (version 1 if it is new); old versions never change.
    ``created_by``: the person who saved it, when a person did (the gateway)."""
    categories = resolve_categories(data["categories"], latest, "categories")
    version = latest["template_version"] + 1 if latest else 1
    return _by(template_document(data["template_id"], version, data["title"], categories, now),
               "created_by", created_by)


def resolve_categories(items, template, field):
    """Category items (a known key, or a full definition) as definitions.

    A key is known if the template defines it, or it is one of the nine or of the
    common additions (parking, fees, community activities).
    """
    known = {**{key: _definition(key, *labels) for key, labels in KNOWN_CATEGORIES.items()},
             **{entry["key"]: entry for entry in (template or {}).get("categories", [])}}
    definitions, errors = [], {}
    for index, item in enumerate(items):
        definition = item if isinstance(item, dict) else known.get(item)
        if definition is None:
            errors[f"{field}.{index}"] = [(
                f"{item}: not a category of this template; define it with key, label_zh "
                "and label_en")]
        elif any(entry["key"] == definition["key"] for entry in definitions):
            errors[f"{field}.{index}"] = [f"{definition['key']}: asked twice"]
        else:
            definitions.append(dict(definition))
    if errors:
        raise InvalidInput(errors)
    return definitions


def _definition(key, label_zh, label_en):
    return {"key": key, "label_zh": label_zh, "label_en": label_en}


# planning a round --------------------------------------------------------------

def check_schedule(data, now):
    if data["closes_at"] <= now:
        raise InvalidInput({"closes_at": ["is already past: nobody could answer"]})


def household_filters(data):
    """What create_round asks intake for: occupied households unless told otherwise."""
    return {"occupied": True} if data["occupied_only"] else {}


def request_fingerprint(data):
    """A digest of what a create_round call asked for (its ``request_id`` aside)."""
    asked = {key: value for key, value in data.items() if key != "request_id"}
    return hashlib.sha256(json.dumps(asked, sort_keys=True, ensure_ascii=False,
                                     default=str).encode()).hexdigest()


def replay(round_, data):
    """The round a retried create_round gets back: the one the first call with that
    ``request_id`` made (still ``creating`` while that call is storing it), provided
    the retry asks for the same round."""
    if round_.get("request_fingerprint") != request_fingerprint(data):
        raise InvalidInput({"request_id": [
            f"already used for another round ({round_['_id']}); send a new request_id"]})
    return round_


def check_households(data, empty):
    """Refuse a round with estates where intake lists nobody to invite (``empty``)."""
    if empty:
        which = "occupied households" if data["occupied_only"] else "households"
        raise InvalidInput({"estate_ids": [
            f"{estate_id}: no {which} to invite" for estate_id in empty]})


def plan_round(round_id, data, template, policy, now, created_by=None):
    """The round (status ``creating``) as create_round stores it; ``created_by`` the
    person who asked for it, when a person did (the gateway).

    Its invitations are written, then issued, in the background a batch at a time
    (``read_households``, ``finish_writing``, ``issue_batch``), recorded in ``progress``.
    Nothing is announced until all of them are written. A round made for a client's
    ``request_id`` keeps it with a fingerprint of the request, so a retry finds it
    (``replay``).
    """
    base = resolve_categories(
        data["categories"] if data["categories"] is not None else template["categories"],
        template, "categories")
    added = resolve_categories(data["add_categories"], template, "add_categories")
    common = _merge(base, added, "add_categories")
    per_estate = {
        estate_id: _merge(common, resolve_categories(
            items, template, f"estate_categories.{estate_id}"),
            f"estate_categories.{estate_id}")[len(common):]
        for estate_id, items in data["estate_categories"].items()
    }
    sample = dict(data["sample"])
    if sample["mode"] == "stratified":
        sample.setdefault("seed", seed_from(round_id))
    reminders = {
        "interval_days": data["reminders"].get("interval_days", policy.reminder_interval_days),
        "max": data["reminders"].get("max", policy.max_reminders),
    }
    round_ = {
        "_id": round_id,
        "title": data["title"],
        "kind": data["kind"],
        "occasion": data["occasion"],
        "estate_ids": list(data["estate_ids"]),
        "opens_at": data["opens_at"],
        "closes_at": data["closes_at"],
        "template": {"template_id": template["template_id"],
                     "template_version": template["template_version"]},
        "categories": [entry["key"] for entry in common],
        "estate_categories": {estate_id: [entry["key"] for entry in extra]
                              for estate_id, extra in per_estate.items() if extra},
        # labels kept with the round: it reports the same whatever the template becomes
        "labels": {entry["key"]: [entry["label_zh"], entry["label_en"]]
                   for entry in common + [e for extra in per_estate.values() for e in extra]},
        "anonymous": data["anonymous"],
        "occupied_only": data["occupied_only"],
        "sample": sample,
        "reminders": reminders,
        "status": "creating",
        # per estate, counted as its households are read
        "households": {estate_id: 0 for estate_id in data["estate_ids"]},
        "invited": {estate_id: 0 for estate_id in data["estate_ids"]},
        "progress": new_progress(now),
        "created_at": now,
        "closed_at": None,
        "published": {},
    }
    _by(round_, "created_by", created_by)
    if data["request_id"]:
        # only then: the store's unique index on request_id skips rounds without one
        round_.update(request_id=data["request_id"],
                      request_fingerprint=request_fingerprint(data))
    return round_


def _by(record, field, person):
    """``record`` naming the person who acted, when one did: a call from a service or a
    timer names nobody, and the record stays as it always was."""
    if person is not None:
        record[field] = person
    return record


def _merge(first, second, field):
    keys = {entry["key"] for entry in first}
    twice = [entry["key"] for entry in second if entry["key"] in keys]
    if twice:
        raise InvalidInput({field: [f"already asked: {', '.join(twice)}"]})
    return first + second


def _invitation(round_, estate_id, household, token, batch):
    return {
        "_id": invitation_id(round_["_id"], household["id"]),
        "round_id": round_["_id"],
        "issue_batch": batch_key(round_["_id"], batch),
        "estate_id": estate_id,
        "household_id": household["id"],
        # where the household lives, for staff
        "building": household.get("building"),
        "unit": household.get("unit"),
        "room": household.get("room"),
        "token": token,
        "status": "pending",
        "issued_at": None,
        "expires_at": round_["closes_at"],
        "answered_at": None,
        "reminders_sent": 0,
        "next_reminder_at": None,
    }


def questionnaire(round_, estate_id):
    """The categories asked in ``estate_id``: the round's, then the estate's own."""
    return round_["categories"] + round_.get("estate_categories", {}).get(estate_id, [])


def all_categories(round_):
    extra = [key for estate_id in round_["estate_ids"]
             for key in round_.get("estate_categories", {}).get(estate_id, [])]
    return round_["categories"] + list(dict.fromkeys(extra))


def label(round_, key):
    if key == GENERAL_COMMENT:
        return GENERAL_LABELS
    zh, en = round_.get("labels", {}).get(key) or KNOWN_CATEGORIES.get(key, (key, key))
    return zh, en


# sampling -------------------------------------------------------------------------

def seed_from(round_id):
    """A round's sampling seed unless one is given: stored, so the sample can be redrawn."""
    return int(hashlib.sha256(round_id.encode()).hexdigest()[:15], 16)


def stratum(household, by):
    building = str(household.get("building") or "")
    return building if by == "building" else f"{building}/{household.get('unit') or ''}"


def allocate(sizes, rate):
    """Invitations per stratum, proportional to its size: 「要求代表性和广泛性」.

    The total is ⌈rate × N⌉, shared by largest remainder, so each stratum gets its
    exact quota rounded down or up; a stratum whose quota rounds to nothing still
    gets one household, so every building is represented.
    """
    exact = {name: round(rate * size, 9) for name, size in sizes.items()}
    quota = {name: math.floor(value) for name, value in exact.items()}
    total = math.ceil(round(rate * sum(sizes.values()), 9))
    by_remainder = sorted(exact, key=lambda name: (-(exact[name] - quota[name]), name))
    for name in by_remainder[:max(0, total - sum(quota.values()))]:
        quota[name] += 1
    return {name: max(count, 1) if sizes[name] else 0 for name, count in quota.items()}


def choose_households(households, sample):
    """Everyone, or a stratified random sample; the same seed draws the same sample."""
    ordered = sorted(households, key=lambda household: household["id"])
    if sample["mode"] == "all":
        return ordered
    strata = defaultdict(list)
    for household in ordered:
        strata[stratum(household, sample["by"])].append(household)
    quota = allocate({name: len(members) for name, members in strata.items()}, sample["rate"])
    chosen = []
    for name in sorted(strata):
        # one generator per stratum: adding a building elsewhere leaves this draw alone
        draw = random.Random(f"{sample['seed']}:{name}")
        chosen.extend(draw.sample(strata[name], quota[name]))
    return sorted(chosen, key=lambda household: household["id"])


# writing and issuing a round in the background ------------------------------------------
#
# A round's invitations are written from intake's pages, then issued, a batch at a time by
# the instance holding the round's lease. ``progress`` says how far it got and where to go
# on; each step is computed from it alone, so a batch done again after a crash gives the
# same invitations (ids from the household), counts and events (ids from the invitation).

def new_progress(now):
    return {
        "households_seen": 0, "invited": 0, "issued": 0,
        # where reading stands: the estate (its place in estate_ids) and intake's cursor in it
        "estate_index": 0, "cursor": None,
        # invitation batches written (numbered from 0), and how many of them are issued
        "batches": 0, "issued_batches": 0,
        "done": False,                       # every invitation written and issued
        "lease_until": now, "worker": None,  # who works on it, until when (the store's claim)
    }


def batch_key(round_id, number):
    """The batch an invitation is written and issued with (indexed: a batch is read without
    the round's other invitations)."""
    return f"{round_id}/{number}"


def reading(round_):
    """(estate, intake's cursor in it) to read next; None once every estate is read."""
    progress = round_["progress"]
    if progress["estate_index"] >= len(round_["estate_ids"]):
        return None
    return round_["estate_ids"][progress["estate_index"]], progress["cursor"]


def reads_whole_estates(round_):
    """A stratified sample draws from all of an estate's households at once, so its estates
    are read whole; when everyone is invited, a page at a time (the cursor is kept)."""
    return round_["sample"]["mode"] != "all"


def read_households(round_, estate_id, households, next_cursor, batch_size, token=new_token):
    """``households`` intake listed for ``estate_id`` (a page, or the whole estate for a
    sample) and its cursor after them (None: the estate is read): their invitations, in
    numbered batches, and the round with its counts and progress past them."""
    chosen = households if round_["sample"]["mode"] == "all" else \
        choose_households(households, round_["sample"])
    progress = dict(round_["progress"])
    invitations = []
    for start in range(0, len(chosen), batch_size):
        invitations += [_invitation(round_, estate_id, household, token(), progress["batches"])
                        for household in chosen[start:start + batch_size]]
        progress["batches"] += 1
    progress.update(households_seen=progress["households_seen"] + len(households),
                    invited=progress["invited"] + len(invitations), cursor=next_cursor,
                    estate_index=progress["estate_index"] + (next_cursor is None))
    return invitations, dict(
        round_, progress=progress,
        households={**round_["households"],
                    estate_id: round_["households"][estate_id] + len(households)},
        invited={**round_["invited"], estate_id: round_["invited"][estate_id] + len(invitations)})


def finish_writing(round_, now):
    """Every invitation written: the round opens (announced per estate; its invitations are
    issued next) or waits for opens_at."""
    if round_["status"] != "creating":
        raise InvalidTransition("survey round", round_["_id"], round_["status"], "activate")
    progress = dict(round_["progress"],
                    done=round_["progress"]["issued_batches"] >= round_["progress"]["batches"])
    round_ = dict(round_, status="scheduled", progress=progress)
    if now < round_["opens_at"]:
        return round_, []
    return open_round(round_, now)


def issue_batch(round_, invitations, now):
    """A written batch of the round's invitations (``batch_key``): the changes that send
    those still pending (the same for each: they all expire when the round closes), the
    ``survey_invitation_issued`` of every invitation the batch sends — now, or in a run
    that died before its events were kept (ids derived from the invitation: the same
    whoever builds them) — and the round with its progress past the batch."""
    changes = {"status": "issued", "issued_at": now, "next_reminder_at": _next_reminder(
        round_, {"expires_at": round_["closes_at"]}, now, 0)}
    sent = [invitation for invitation in invitations
            if invitation["status"] == "pending" or invitation["issued_at"] is not None]
    events = []
    for estate_id in dict.fromkeys(invitation["estate_id"] for invitation in sent):
        of_estate = [invitation for invitation in sent if invitation["estate_id"] == estate_id]
        events += new_events("survey_invitation_issued", SOURCE, estate_id,
                             [_issued(round_, invitation) for invitation in of_estate], now,
                             keys=[invitation["_id"] for invitation in of_estate])
    progress = dict(round_["progress"])
    progress.update(issued=progress["issued"] + len(sent),
                    issued_batches=progress["issued_batches"] + 1)
    progress["done"] = progress["issued_batches"] >= progress["batches"]
    return changes, events, dict(round_, progress=progress)


# opening, issuing, reminding --------------------------------------------------------

def open_round(round_, now):
    if round_["status"] != "scheduled":
        raise InvalidTransition("survey round", round_["_id"], round_["status"], "open")
    round_ = dict(round_, status="open", opened_at=now)
    events = [
        new_event("survey_round_opened", SOURCE, estate_id, {
            "round_id": round_["_id"], "invited": round_["invited"][estate_id],
            **{key: round_[key] for key in ("title", "kind", "opens_at", "closes_at")},
            "categories": questionnaire(round_, estate_id),
            "anonymous": round_["anonymous"],
        }, now, key=f"{round_['_id']}/{estate_id}")   # a round opens once
        for estate_id in round_["estate_ids"]
    ]
    return round_, events


def abandon(round_, now):
    """A round whose invitations cannot be written (an estate intake no longer knows):
    never announced, given up."""
    if round_["status"] != "creating":
        raise InvalidTransition("survey round", round_["_id"], round_["status"], "abandon")
    return dict(round_, status="abandoned", abandoned_at=now)


def issue(round_, invitation, now):
    """The changes that send a pending invitation, and its ``survey_invitation_issued``."""
    changes = {"status": "issued", "issued_at": now,
               "next_reminder_at": _next_reminder(round_, invitation, now, 0)}
    event = new_event("survey_invitation_issued", SOURCE, invitation["estate_id"],
                      _issued(round_, invitation), now,
                      key=invitation["_id"])   # an invitation is issued once
    return changes, [event]


def _issued(round_, invitation):
    return {"invitation_id": invitation["_id"],
            **{key: invitation[key]
               for key in ("round_id", "household_id", "token", "expires_at")},
            "title": round_["title"]}


def remind(round_, invitation, now):
    """The changes of the next reminder to a household that has not answered, and its event."""
    number = invitation.get("reminders_sent", 0) + 1
    changes = {"reminders_sent": number, "last_reminded_at": now,
               "next_reminder_at": _next_reminder(round_, invitation, now, number)}
    event = new_event("survey_reminder_due", SOURCE, invitation["estate_id"], {
        "invitation_id": invitation["_id"],
        **{key: invitation[key] for key in ("round_id", "household_id", "token", "expires_at")},
        "reminder_no": number,
        "title": round_["title"],
    }, now, key=f"{invitation['_id']}/{number}")   # the n-th reminder, once
    return changes, [event]


def _next_reminder(round_, invitation, now, sent):
    settings = round_["reminders"]
    if sent >= settings["max"]:
        return None
    due = now + timedelta(days=settings["interval_days"])
    return due if due < invitation["expires_at"] else None


def check_estate(round_, estate_id):
    if estate_id not in round_["estate_ids"]:
        raise InvalidInput({"estate_id": ["not an estate of this round"]})


# answering ----------------------------------------------------------------------

def refuse_token(reason):
    return InvalidInput({"token": [reason]})


def answer_state(round_, invitation, now):
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


def why_not_answerable(round_, invitation, now):
    """The reason ``invitation`` cannot be answered now, or None if it can."""
    state = answer_state(round_, invitation, now)
    if state == "open":
        return None
    if state == "not_open":
        return f"this survey opens at {round_['opens_at'].isoformat()}"
    return REFUSALS[state]


def response(round_, invitation, data, now, grace):
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


def empty_tally(round_, estate_id):
    return {
        "_id": tally_id(round_["_id"], estate_id),
        "round_id": round_["_id"],
        "estate_id": estate_id,
        "returned": 0,
        "categories": {key: empty_counts() for key in questionnaire(round_, estate_id)},
        "comments": {},
        "terms": {},
        "in_flight": [],
    }


def empty_counts():
    return {"answered": 0, "satisfied": 0, "not_applicable": 0, "score_sum": 0,
            "distribution": {key: 0 for key in DISTRIBUTION_KEYS}}


def tally_update(response):
    """What a questionnaire adds to its round × estate tally: the counters (one ``$inc``),
    and its comments offered as quotes for their words (kept only if among the best), so
    a report never reads responses."""
    return {"increment": tally_increment(response),
            "quotes": opinions.quote_candidates(response.get("comments", {}),
                                                response.get("terms", {}))}


def tally_increment(response):
    """The ``$inc`` one questionnaire adds to its round × estate tally: per category the
    answers, satisfied answers, score sum and distribution; per comment box its words."""
    increment = {"returned": 1}
    for category, answer in response["answers"].items():
        prefix = f"categories.{category}"
        if answer is None:
            increment[f"{prefix}.not_applicable"] = 1
            continue
        increment[f"{prefix}.answered"] = 1
        increment[f"{prefix}.satisfied"] = int(answer in SATISFIED_ANSWERS)
        increment[f"{prefix}.score_sum"] = answer
        increment[f"{prefix}.distribution.{answer}"] = 1
    for topic in response.get("comments", {}):
        increment[f"comments.{topic}"] = 1
    for topic, words in response.get("terms", {}).items():
        for word in words:
            increment[f"terms.{topic}.{word}"] = 1
    return increment


# closing ----------------------------------------------------------------------

def close(round_, returned_by_estate, now, closed_by=None, expected_status=None):
    """The closed round and one ``survey_round_closed`` per estate; ``closed_by`` the person
    who closed it (none: the schedule, at ``closes_at``). None when ``expected_status``
    shows this very closing happened already (a retry)."""
    if already_done("survey round", round_["_id"], "close", round_["status"], expected_status,
                    ROUND_STATUSES, leads_to="closed", last=(round_.get("closed_by"), "close"),
                    this=(closed_by, "close")):
        return None
    if round_["status"] not in ("open", "scheduled"):
        raise InvalidTransition("survey round", round_["_id"], round_["status"], "close")
    round_ = _by(dict(round_, status="closed", closed_at=now), "closed_by", closed_by)
    events = [
        new_event("survey_round_closed", SOURCE, estate_id, {
            "round_id": round_["_id"],
            "invited": round_["invited"][estate_id],
            "returned": returned_by_estate.get(estate_id, 0),
            "response_rate": response_rate(returned_by_estate.get(estate_id, 0),
                                           round_["invited"][estate_id]),
        }, now, key=f"{round_['_id']}/{estate_id}")   # a round closes once
        for estate_id in round_["estate_ids"]
    ]
    return round_, events


# formulas ---------------------------------------------------------------------

def response_rate(returned, invited):
    """「调查表的回收份数」 against those issued: returned ÷ invited, None if nobody was invited."""
    return _ratio(returned, invited)


def satisfaction_rate(satisfied, answered):
    """Satisfaction rate = answers of 4 or 5 ÷ answers given (N/A excluded)."""
    return _ratio(satisfied, answered)


def score(score_sum, answered):
    """Score = mean of answer × 20. (100 points, one decimal; None if unanswered)"""
    return round(score_sum / answered * 20, 1) if answered else None


def _ratio(part, whole):
    """A fraction rounded to four places (0.8571 is 85.71 %); None when there is no whole."""
    return round(part / whole, 4) if whole else None


def wilson_interval(rate, n, z=WILSON_Z):
    """The 95 % Wilson score interval of a proportion ``rate`` observed over ``n``.

    Unlike rate ± z·se it stays inside [0, 1] and is wide for small n: 3 of 3
    satisfied gives (0.44, 1.0), 300 of 300 gives (0.99, 1.0).
    """
    if not n:
        return None, None
    centre = rate + z * z / (2 * n)
    spread = z * math.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return (round(max(0.0, (centre - spread) / denominator), 4),
            round(min(1.0, (centre + spread) / denominator), 4))


# the report ---------------------------------------------------------------------

def combine(tallies, categories):
    """The tallies of several estates added up: returned, per category, comments, words."""
    total = {"returned": 0, "categories": {key: empty_counts() for key in categories},
             "comments": defaultdict(int), "terms": defaultdict(lambda: defaultdict(int)),
             "examples": defaultdict(lambda: defaultdict(list))}
    for tally in tallies:
        total["returned"] += tally.get("returned", 0)
        for key, counts in tally.get("categories", {}).items():
            into = total["categories"].setdefault(key, empty_counts())
            for field in ("answered", "satisfied", "not_applicable", "score_sum"):
                into[field] += counts.get(field, 0)
            for answer, count in counts.get("distribution", {}).items():
                into["distribution"][answer] += count
        for topic, count in tally.get("comments", {}).items():
            total["comments"][topic] += count
        for topic, words in tally.get("terms", {}).items():
            for word, count in words.items():
                total["terms"][topic][word] += count
        for topic, words in tally.get("examples", {}).items():
            for word, texts in words.items():
                total["examples"][topic][word].extend(texts)
    return total


def report(round_, tallies, rectifications=(), estate_id=None):
    """The round's report over all its estates, or over ``estate_id`` alone, from the
    round × estate tallies alone: it costs the same for any number of responses."""
    estate_ids = [estate_id] if estate_id else round_["estate_ids"]
    categories = questionnaire(round_, estate_id) if estate_id else all_categories(round_)
    total = combine(tallies, categories)
    answered = sum(counts["answered"] for counts in total["categories"].values())
    satisfied = sum(counts["satisfied"] for counts in total["categories"].values())
    score_sum = sum(counts["score_sum"] for counts in total["categories"].values())
    invited = sum(round_["invited"][estate] for estate in estate_ids)
    return {
        "round_id": round_["_id"],
        "title": round_["title"],
        "kind": round_["kind"],
        "occasion": round_.get("occasion"),
        "status": round_["status"],
        "opens_at": round_["opens_at"],
        "closes_at": round_["closes_at"],
        "template": round_.get("template"),
        "estate_id": estate_id,
        "estate_ids": estate_ids,
        "invited": invited,
        "returned": total["returned"],
        "response_rate": response_rate(total["returned"], invited),
        "answered": answered,
        "satisfied": satisfied,
        "satisfaction_rate": satisfaction_rate(satisfied, answered),
        "score": score(score_sum, answered),
        "categories": {key: _category_view(round_, key, total["categories"][key])
                       for key in categories},
        "estates": [_estate_line(round_, tally) for tally in tallies] if not estate_id else [],
        "opinions": common_opinions(round_, total, categories),
        "rectifications": list(rectifications),
        "published": {estate: round_.get("published", {}).get(estate)
                      for estate in estate_ids if round_.get("published", {}).get(estate)},
    }


def _category_view(round_, key, counts):
    label_zh, label_en = label(round_, key)
    return {
        "answered": counts["answered"],
        "satisfied": counts["satisfied"],
        "not_applicable": counts["not_applicable"],
        "rate": satisfaction_rate(counts["satisfied"], counts["answered"]),
        "score": score(counts["score_sum"], counts["answered"]),
        "distribution": dict(counts["distribution"]),
        "label_zh": label_zh,
        "label_en": label_en,
    }


def _estate_line(round_, tally):
    counts = combine([tally], [])["categories"].values()
    answered = sum(c["answered"] for c in counts)
    satisfied = sum(c["satisfied"] for c in counts)
    invited = round_["invited"][tally["estate_id"]]
    return {
        "estate_id": tally["estate_id"],
        "invited": invited,
        "returned": tally.get("returned", 0),
        "response_rate": response_rate(tally.get("returned", 0), invited),
        "satisfaction_rate": satisfaction_rate(satisfied, answered),
        "score": score(sum(c["score_sum"] for c in counts), answered),
    }


def common_opinions(round_, total, categories):
    """「业主/用户对物业服务、管理的意见(共性的意见)」: per category (and the general box)
    the words most comments used, how many comments used each, and the shortest distinct
    comments using each quoted (``opinions.best_quotes``)."""
    found = []
    for topic in [*categories, GENERAL_COMMENT]:
        ranked = opinions.top_terms(total["terms"].get(topic, {}), TOP_TERMS)
        if not ranked:
            continue
        label_zh, label_en = label(round_, topic)
        found.append({
            "category": topic,
            "label_zh": label_zh,
            "label_en": label_en,
            "comments": total["comments"].get(topic, 0),
            "terms": [{"term": word, "count": count,
                       "quotes": [opinions.quote(text) for text in opinions.best_quotes(
                           total["examples"][topic][word], word)]}
                      for word, count in ranked],
        })
    return found


# ranking ----------------------------------------------------------------------------

def estate_ranking(round_, tallies, min_returned):
    """Estates by the lower bound of the 95 % Wilson interval of their satisfaction rate.

    Overall, households are the independent units (nine answers of one household are not
    nine opinions), so the bound uses the pooled rate over the returned questionnaires;
    per category, each answer is one household's. Estates under ``min_returned``
    questionnaires (answers, per category) are listed apart, never ranked.
    """
    overall, by_category = [], defaultdict(list)
    for tally in tallies:
        total = combine([tally], questionnaire(round_, tally["estate_id"]))
        answered = sum(c["answered"] for c in total["categories"].values())
        satisfied = sum(c["satisfied"] for c in total["categories"].values())
        overall.append(_ranking_entry(tally["estate_id"], satisfied, answered, tally["returned"]))
        for key, counts in total["categories"].items():
            by_category[key].append(_ranking_entry(
                tally["estate_id"], counts["satisfied"], counts["answered"], counts["answered"]))
    return {
        "round_id": round_["_id"],
        "min_returned": min_returned,
        **rank(overall, min_returned),
        "categories": {key: dict(rank(by_category[key], min_returned),
                                 label_zh=label(round_, key)[0], label_en=label(round_, key)[1])
                       for key in all_categories(round_)},
    }


def _ranking_entry(estate_id, satisfied, answered, sample):
    rate = satisfaction_rate(satisfied, answered)
    lower, upper = wilson_interval(satisfied / answered, sample) if answered else (None, None)
    return {"estate_id": estate_id, "rate": rate, "returned": sample, "answered": answered,
            "lower_bound": lower, "upper_bound": upper}


def rank(entries, min_returned):
    """{"ranked": [...], "too_few": [...]}: ranked by lower bound, then rate, then sample."""
    eligible = [e for e in entries if e["returned"] >= min_returned and e["answered"]]
    apart = [e for e in entries if e not in eligible]
    eligible.sort(key=lambda e: (-e["lower_bound"], -e["rate"], -e["returned"], e["estate_id"]))
    apart.sort(key=lambda e: (-e["returned"], e["estate_id"]))
    ranked = []
    for position, entry in enumerate(eligible, start=1):
        tied = ranked and ranked[-1]["lower_bound"] == entry["lower_bound"] \
            and ranked[-1]["rate"] == entry["rate"]
        ranked.append(dict(entry, rank=ranked[-1]["rank"] if tied else position))
    return {"ranked": ranked, "too_few": apart}


# statistics check ----------------------------------------------------------------

def counters(tally):
    """The comparable figures of a tally, zeros dropped (a missing counter is a zero)."""
    flat = {"returned": tally.get("returned", 0)}
    for key, counts in tally.get("categories", {}).items():
        for field in ("answered", "satisfied", "not_applicable", "score_sum"):
            flat[f"categories.{key}.{field}"] = counts.get(field, 0)
        for answer, count in counts.get("distribution", {}).items():
            flat[f"categories.{key}.distribution.{answer}"] = count
    for topic, count in tally.get("comments", {}).items():
        flat[f"comments.{topic}"] = count
    for topic, words in tally.get("terms", {}).items():
        for word, count in words.items():
            flat[f"terms.{topic}.{word}"] = count
    return {path: value for path, value in flat.items() if value}


def differences(stored, recomputed):
    """Where the kept counters and a recount from the raw responses disagree, per estate."""
    found = []
    for estate_id in sorted(set(stored) | set(recomputed)):
        kept = counters(stored.get(estate_id, {}))
        counted = counters(recomputed.get(estate_id, {}))
        for path in sorted(set(kept) | set(counted)):
            if kept.get(path, 0) != counted.get(path, 0):
                found.append({"estate_id": estate_id, "counter": path,
                              "kept": kept.get(path, 0), "recomputed": counted.get(path, 0)})
    return found


# rectification ----------------------------------------------------------------------

def new_rectification(rectification_id, round_, data, now, by=None):
    """「对存在的问题,服务中心主任提出整改意见,责成有关部门限期解决」: an action with a
    department and a deadline, for one estate and category of the round; ``by`` the
    person who set it, in its first history line."""
    check_estate(round_, data["estate_id"])
    if round_["status"] in ("creating", "abandoned"):
        raise InvalidTransition("survey round", round_["_id"], round_["status"],
                                "add a rectification to")
    allowed = questionnaire(round_, data["estate_id"]) + [GENERAL_COMMENT]
    if data["category"] not in allowed:
        raise InvalidInput({"category": [
            f"not asked in {data['estate_id']}: one of {', '.join(allowed)}"]})
    if data["due_at"] <= now:
        raise InvalidInput({"due_at": ["a deadline must be in the future"]})
    rectification = {
        "_id": rectification_id,
        "round_id": round_["_id"],
        "estate_id": data["estate_id"],
        "category": data["category"],
        "action": data["action"],
        "department": data["department"],
        "assignee_id": data["assignee_id"],
        "due_at": data["due_at"],
        "status": "open",
        "created_at": now,
        "done_at": None,
        "overdue_at": None,
        "history": [{"at": now, "status": "open", "note": None, "by": by}],
    }
    return rectification, [_rectification_event("rectification_created", rectification, now)]


RECTIFICATION_TRANSITIONS = {"open": ("in_progress", "done"), "in_progress": ("done",)}


def update_rectification(rectification, data, now, expected_status=None):
    """The rectification moved on, with its history line; None when ``expected_status``
    shows this very step happened already (a retry)."""
    current = rectification["status"]
    last = rectification["history"][-1] if rectification["history"] else {}
    if already_done("rectification", rectification["_id"], f"move to {data['status']}", current,
                    expected_status, RECTIFICATION_STATUSES, leads_to=data["status"],
                    last=(last.get("by"), last.get("status")),
                    this=(data["staff_id"], data["status"])):
        return None
    if data["status"] not in RECTIFICATION_TRANSITIONS.get(current, ()):
        raise InvalidTransition("rectification", rectification["_id"], current,
                                f"move to {data['status']}")
    rectification = dict(
        rectification, status=data["status"],
        history=rectification["history"] + [
            {"at": now, "status": data["status"], "note": data["note"], "by": data["staff_id"]}])
    events = []
    if data["status"] == "done":
        rectification["done_at"] = now
        events.append(_rectification_event("rectification_done", rectification, now))
    return rectification, events


def rectification_overdue(rectification, now):
    """The one ``rectification_overdue`` of an action past its deadline and not done."""
    return {"overdue_at": now}, [_rectification_event("rectification_overdue", rectification, now)]


def is_overdue(rectification, now):
    return rectification["status"] != "done" and rectification["due_at"] <= now


def rectification_view(rectification, round_, now):
    label_zh, label_en = label(round_, rectification["category"]) if round_ else (None, None)
    return dict(rectification, overdue=is_overdue(rectification, now),
                label_zh=label_zh, label_en=label_en)


def _rectification_event(event_type, rectification, now):
    # created, done and overdue each happen once to a rectification
    return new_event(event_type, SOURCE, rectification["estate_id"], {
        "rectification_id": rectification["_id"],
        **{key: rectification[key] for key in
           ("round_id", "category", "department", "due_at", "action", "status")},
    }, now, key=rectification["_id"])


# publishing --------------------------------------------------------------------------

def publish(round_, reports, data, now, by=None):
    """「业主/用户意见调查结果及整改方案应向业主单位公布,接受监督」: each estate's report
    with its rectification plan, announced to its owners (published again: a new edition).

    ``reports`` holds each estate's report (with its rectifications); ``by`` the person who
    published it, when a person did (the gateway).
    """
    if round_["status"] != "closed":
        raise InvalidTransition("survey round", round_["_id"], round_["status"],
                                "publish the report of")
    estate_ids = data["estate_ids"] or round_["estate_ids"]
    for estate_id in estate_ids:
        check_estate(round_, estate_id)
    published = dict(round_.get("published", {}))
    events = []
    for estate_id in estate_ids:
        edition = (published.get(estate_id) or {}).get("edition", 0) + 1
        published[estate_id] = _by({"at": now, "edition": edition, "note": data["note"]},
                                   "by", by)
        estate_report = reports[estate_id]
        events.append(new_event("survey_report_published", SOURCE, estate_id, {
            "round_id": round_["_id"],
            "satisfaction_rate": estate_report["satisfaction_rate"],
            "rectifications": len(estate_report["rectifications"]),
            "title": round_["title"],
            "invited": estate_report["invited"],
            "returned": estate_report["returned"],
            "response_rate": estate_report["response_rate"],
            "score": estate_report["score"],
            "edition": edition,
            "note": data["note"],
        }, now, key=f"{round_['_id']}/{estate_id}/{edition}"))   # each edition once
    return dict(round_, published=published), events
