"""The round × estate tallies: what one questionnaire adds to its estate's counters, tallies
added up, and the check of kept counters against a recount. Pure Python.

The domain says which counters change and by how much (``tally_counts``: counter paths as
tuples); the repository says how that is stored.
"""
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from services.survey import opinions
from services.survey.formulas import SATISFIED_ANSWERS
from services.survey.rounds import questionnaire
from shared.schemas.survey import ANSWER_SCALE

DISTRIBUTION_KEYS = tuple(str(answer) for answer in ANSWER_SCALE)
# A counter in a tally: its path, e.g. ("categories", "cleaning", "answered").
CounterPath = tuple[str, ...]


def tally_id(round_id: str, estate_id: str) -> str:
    return f"{round_id}:{estate_id}"


def empty_tally(round_: dict, estate_id: str) -> dict:
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


def empty_counts() -> dict:
    return {"answered": 0, "satisfied": 0, "not_applicable": 0, "score_sum": 0,
            "distribution": {key: 0 for key in DISTRIBUTION_KEYS}}


def tally_update(response: dict) -> dict:
    """What a questionnaire adds to its round × estate tally: the counters it moves
    (``counts``), and its comments offered as quotes for their words (kept only if among
    the best), so a report never reads responses."""
    return {"counts": tally_counts(response),
            "quotes": opinions.quote_candidates(response.get("comments", {}),
                                                response.get("terms", {}))}


def tally_counts(response: dict) -> Counter[CounterPath]:
    """What one questionnaire adds to its round × estate tally, by counter: per category
    the answers, satisfied answers, score sum and distribution; per comment box its words.
    A counter is named by its path in the tally, ``("terms", topic, word)``."""
    counts: Counter[CounterPath] = Counter({("returned",): 1})
    for category, answer in response["answers"].items():
        if answer is None:
            counts["categories", category, "not_applicable"] = 1
            continue
        counts["categories", category, "answered"] = 1
        counts["categories", category, "satisfied"] = int(answer in SATISFIED_ANSWERS)
        counts["categories", category, "score_sum"] = answer
        counts["categories", category, "distribution", str(answer)] = 1
    for topic in response.get("comments", {}):
        counts["comments", topic] = 1
    for topic, words in response.get("terms", {}).items():
        for word in words:
            counts["terms", topic, word] = 1
    return counts


def combine(tallies: Iterable[dict], categories: Iterable[str]) -> dict[str, Any]:
    """The tallies of several estates added up: returned, per category, comments, words."""
    total: dict[str, Any] = {"returned": 0, "categories": {key: empty_counts() for key in categories},
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


def counters(tally: dict) -> dict[str, int]:
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


def differences(stored: Mapping[str, dict], recomputed: Mapping[str, dict]) -> list[dict]:
    """Where the kept counters and a recount from the raw responses disagree, per estate."""
    found: list[dict] = []
    for estate_id in sorted(set(stored) | set(recomputed)):
        kept = counters(stored.get(estate_id, {}))
        counted = counters(recomputed.get(estate_id, {}))
        for path in sorted(set(kept) | set(counted)):
            if kept.get(path, 0) != counted.get(path, 0):
                found.append({"estate_id": estate_id, "counter": path,
                              "kept": kept.get(path, 0), "recomputed": counted.get(path, 0)})
    return found
