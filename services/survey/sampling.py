"""Which households a round invites: everyone, or a stratified random sample by building or
unit (「要求代表性和广泛性」). Pure Python."""
import hashlib
import math
import random
from collections import defaultdict
from collections.abc import Iterable


def seed_from(round_id: str) -> int:
    """A round's sampling seed unless one is given: stored, so the sample can be redrawn."""
    return int(hashlib.sha256(round_id.encode()).hexdigest()[:15], 16)


def stratum(household: dict, by: str) -> str:
    building = str(household.get("building") or "")
    return building if by == "building" else f"{building}/{household.get('unit') or ''}"


def allocate(sizes: dict[str, int], rate: float) -> dict[str, int]:
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


def choose_households(households: Iterable[dict], sample: dict) -> list[dict]:
    """Everyone, or a stratified random sample; the same seed draws the same sample."""
    ordered = sorted(households, key=lambda household: household["id"])
    if sample["mode"] == "all":
        return ordered
    strata: defaultdict[str, list[dict]] = defaultdict(list)
    for household in ordered:
        strata[stratum(household, sample["by"])].append(household)
    quota = allocate({name: len(members) for name, members in strata.items()}, sample["rate"])
    chosen: list[dict] = []
    for name in sorted(strata):
        # one generator per stratum: adding a building elsewhere leaves this draw alone
        draw = random.Random(f"{sample['seed']}:{name}")
        chosen.extend(draw.sample(strata[name], quota[name]))
    return sorted(chosen, key=lambda household: household["id"])
