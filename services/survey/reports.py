"""The round's report — 「调查表的回收份数、总的满意率以及分项满意率、业主/用户对物业服务、
管理的意见(共性的意见)」 — from the tallies alone, and its publication with the rectification
plan. Pure Python."""
from collections.abc import Iterable, Mapping
from datetime import datetime

from services.survey import opinions
from services.survey.formulas import response_rate, satisfaction_rate, score
from services.survey.rounds import SOURCE, all_categories, by_person, check_estate, questionnaire
from services.survey.tallies import combine
from services.survey.templates import label
from shared.envelope import Changed, Envelope, new_event
from shared.errors import InvalidTransition
from shared.schemas.survey import GENERAL_COMMENT

TOP_TERMS = 5                # common opinions shown per category


def report(round_: dict, tallies: Iterable[dict], rectifications: Iterable[dict] = (),
           estate_id: str | None = None, part: list[str] | None = None) -> dict:
    """The round's report over all its estates, over ``part`` of them (a person's estates of
    a group round) or over ``estate_id`` alone, from those estates' tallies (and
    rectifications) alone: it costs the same for any number of responses."""
    estate_ids = [estate_id] if estate_id else part or round_["estate_ids"]
    categories = (questionnaire(round_, estate_id) if estate_id
                  else all_categories(round_, estate_ids))
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


def _category_view(round_: dict, key: str, counts: dict) -> dict:
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


def _estate_line(round_: dict, tally: dict) -> dict:
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


def common_opinions(round_: dict, total: dict, categories: Iterable[str]) -> list[dict]:
    """「业主/用户对物业服务、管理的意见(共性的意见)」: per category (and the general box)
    the words most comments used, how many comments used each, and the shortest distinct
    comments using each quoted (``opinions.best_quotes``)."""
    found: list[dict] = []
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


def publish(round_: dict, reports: Mapping[str, dict], data: dict, now: datetime,
            by: str | None = None) -> Changed:
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
    events: list[Envelope] = []
    for estate_id in estate_ids:
        edition = (published.get(estate_id) or {}).get("edition", 0) + 1
        published[estate_id] = by_person(
            {"at": now, "edition": edition, "note": data["note"]}, "by", by)
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
