"""A survey round's life: the group's defaults (``SurveyPolicy``), what each estate is asked,
opening, closing and giving up. Pure Python.

「服务中心每半年进行一次业主/用户意见调查」.
"""
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.survey.cadence import CADENCES, DEFAULT_CADENCE
from services.survey.formulas import response_rate
from shared.envelope import Changed, new_event
from shared.errors import InvalidInput, InvalidTransition
from shared.expected_state import already_done
from shared.schemas.survey import ROUND_STATUSES

SOURCE = "survey"


@dataclass(frozen=True)
class SurveyPolicy:
    """The group's survey settings (``SURVEY_POLICY`` in config.yaml), an estate's own over
    them (``SURVEY_ESTATE_POLICIES``); a round may set its own reminders.

    The group's rules: "reminders go to those who have not answered"; "a small sample must
    not win a ranking by luck, so rankings use a confidence bound and a minimum sample".
    """

    # Owners who have not answered are reminded this often, at most this many times (the
    # group's rule: a reminder only to those who have not answered)
    reminder_interval_days: float = 3
    max_reminders: int = 2
    # An estate with fewer returned questionnaires is listed apart, never ranked (the
    # group's rule: a small sample must not top the league by luck)
    min_ranked_returns: int = 30
    # households read from intake per page, and invitations written and issued per batch
    # (intake pages by at most 1000)
    round_batch_size: int = 1000
    # a round's background work is held this long from its last batch: after that (its
    # worker died) another instance takes it over
    round_work_lease_seconds: float = 60
    # a response stored but not counted after this long was left by a crash: it is counted
    response_grace_seconds: float = 60
    # 「管理处每半年进行一次业主/用户意见调查」 (the other texts: 「每季度组织一次住户满意度调查」,
    # 「每年至少进行一次住户意见调查」): the period each estate's rounds must cover —
    # half_yearly, quarterly or yearly; one passing without a closed round is warned of
    cadence: str = DEFAULT_CADENCE
    # The zone of the group's workbook and reports (each estate's own is its record's)
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        problems = {}
        positive = ("reminder_interval_days", "round_work_lease_seconds",
                    "response_grace_seconds")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                problems[name] = "must be a number above 0"
        for name, least in (("max_reminders", 0), ("min_ranked_returns", 1),
                            ("round_batch_size", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                problems[name] = f"must be a whole number >= {least}"
        if isinstance(self.round_batch_size, int) and self.round_batch_size > 1000:
            problems["round_batch_size"] = "at most 1000 (intake pages by at most 1000)"
        if self.cadence not in CADENCES:
            problems["cadence"] = f"must be one of {', '.join(CADENCES)}"
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            problems["timezone"] = f"unknown time zone {self.timezone!r}"
        if problems:
            raise SurveyPolicyError(problems)


class SurveyPolicyError(ValueError):
    """A survey setting the service cannot start with, each named."""

    def __init__(self, problems: Mapping[str, str], where: str = "SURVEY_POLICY"):
        self.problems = dict(problems)
        super().__init__("; ".join(f"{where}.{name}: {why}" for name, why in problems.items()))


class SurveyPolicies:
    """Each estate's survey policy: the group's (``SURVEY_POLICY``) with the estate's own
    settings over it (``SURVEY_ESTATE_POLICIES.<estate_id>``), built and checked once when
    the service starts (``shared.policies.EstatePolicies``)."""

    def __init__(self, group: SurveyPolicy, estates: Mapping[str, SurveyPolicy]):
        self.group, self.estates = group, dict(estates)

    @classmethod
    def from_config(cls, config: Mapping) -> "SurveyPolicies":
        values = dict(config.get("SURVEY_POLICY") or {})
        group = _policy(values, "SURVEY_POLICY")
        estates = {estate_id: _policy({**values, **(own or {})},
                                      f"SURVEY_ESTATE_POLICIES.{estate_id}")
                   for estate_id, own in (config.get("SURVEY_ESTATE_POLICIES") or {}).items()}
        return cls(group, estates)

    def for_estate(self, estate_id: str | None) -> SurveyPolicy:
        return self.estates.get(estate_id, self.group) if estate_id else self.group


def _policy(values: dict, where: str) -> SurveyPolicy:
    known = {item.name for item in fields(SurveyPolicy)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SurveyPolicyError({name: "no such setting" for name in unknown}, where)
    try:
        return SurveyPolicy(**values)
    except SurveyPolicyError as error:
        raise SurveyPolicyError(error.problems, where) from None


def new_round_id() -> str:
    return f"rnd-{uuid.uuid4().hex[:16]}"


def by_person(record: dict, field: str, person: str | None) -> dict:
    """``record`` naming the person who acted, when one did: a call from a service or a
    timer names nobody, and the record stays as it always was."""
    if person is not None:
        record[field] = person
    return record


def questionnaire(round_: dict, estate_id: str) -> list[str]:
    """The categories asked in ``estate_id``: the round's, then the estate's own."""
    return round_["categories"] + round_.get("estate_categories", {}).get(estate_id, [])


def all_categories(round_: dict, estate_ids: Iterable[str] | None = None) -> list[str]:
    """The categories asked in any of ``estate_ids`` (None: of every estate of the round)."""
    extra = [key for estate_id in (round_["estate_ids"] if estate_ids is None else estate_ids)
             for key in round_.get("estate_categories", {}).get(estate_id, [])]
    return round_["categories"] + list(dict.fromkeys(extra))


def open_round(round_: dict, now: datetime) -> Changed:
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


def abandon(round_: dict, now: datetime) -> dict:
    """A round whose invitations cannot be written (an estate intake no longer knows):
    never announced, given up."""
    if round_["status"] != "creating":
        raise InvalidTransition("survey round", round_["_id"], round_["status"], "abandon")
    return dict(round_, status="abandoned", abandoned_at=now)


def check_estate(round_: dict, estate_id: str) -> None:
    if estate_id not in round_["estate_ids"]:
        raise InvalidInput({"estate_id": ["not an estate of this round"]})


def check_part(round_: dict, estate_ids: Iterable[str]) -> None:
    """A part of the round (a person's estates of a group round): its estates only."""
    strangers = [estate_id for estate_id in estate_ids if estate_id not in round_["estate_ids"]]
    if strangers:
        raise InvalidInput({"estate_ids": [
            f"not estates of this round: {', '.join(strangers)}"]})


def close(round_: dict, returned_by_estate: Mapping[str, int], now: datetime,
          closed_by: str | None = None, expected_status: str | None = None,
          ) -> Changed | None:
    """The closed round and one ``survey_round_closed`` per estate; ``closed_by`` the person
    who closed it (none: the schedule, at ``closes_at``). None when ``expected_status``
    shows this very closing happened already (a retry)."""
    if already_done("survey round", round_["_id"], "close", round_["status"], expected_status,
                    ROUND_STATUSES, leads_to="closed", last=(round_.get("closed_by"), "close"),
                    this=(closed_by, "close")):
        return None
    if round_["status"] not in ("open", "scheduled"):
        raise InvalidTransition("survey round", round_["_id"], round_["status"], "close")
    round_ = by_person(dict(round_, status="closed", closed_at=now), "closed_by", closed_by)
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
