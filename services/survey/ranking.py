"""Estates ranked by satisfaction: the lower bound of the 95 % Wilson interval, a minimum
sample apart. Pure Python."""
from collections import defaultdict
from collections.abc import Iterable

from services.survey.formulas import satisfaction_rate, wilson_interval
from services.survey.rounds import all_categories, questionnaire
from services.survey.tallies import combine
from services.survey.templates import label


def estate_ranking(round_: dict, tallies: Iterable[dict], min_returned: int,
                   part: list[str] | None = None) -> dict:
    """Estates by the lower bound of the 95 % Wilson interval of their satisfaction rate:
    every estate of the round, or those of ``part`` among themselves (``tallies`` theirs).

    Overall, households are the independent units (nine answers of one household are not
    nine opinions), so the bound uses the pooled rate over the returned questionnaires;
    per category, each answer is one household's. Estates under ``min_returned``
    questionnaires (answers, per category) are listed apart, never ranked.
    """
    overall: list[dict] = []
    by_category: defaultdict[str, list[dict]] = defaultdict(list)
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
                       for key in all_categories(round_, part)},
    }


def _ranking_entry(estate_id: str, satisfied: int, answered: int, sample: int) -> dict:
    rate = satisfaction_rate(satisfied, answered)
    lower, upper = wilson_interval(satisfied / answered, sample) if answered else (None, None)
    return {"estate_id": estate_id, "rate": rate, "returned": sample, "answered": answered,
            "lower_bound": lower, "upper_bound": upper}


def rank(entries: list[dict], min_returned: int) -> dict[str, list[dict]]:
    """{"ranked": [...], "too_few": [...]}: ranked by lower bound, then rate, then sample."""
    eligible = [e for e in entries if e["returned"] >= min_returned and e["answered"]]
    apart = [e for e in entries if e not in eligible]
    eligible.sort(key=lambda e: (-e["lower_bound"], -e["rate"], -e["returned"], e["estate_id"]))
    apart.sort(key=lambda e: (-e["returned"], e["estate_id"]))
    ranked: list[dict] = []
    for position, entry in enumerate(eligible, start=1):
        tied = ranked and ranked[-1]["lower_bound"] == entry["lower_bound"] \
            and ranked[-1]["rate"] == entry["rate"]
        ranked.append(dict(entry, rank=ranked[-1]["rank"] if tied else position))
    return {"ranked": ranked, "too_few": apart}
