"""Counts as the statistics' counters keep them: {path: n}, a path naming a counter
field of a counter document (``"by_status.open"``). Plain arithmetic, no store:
domain code (each service's ``stats``) and ``shared.counters`` both use it.

    >>> difference({"received": 1, "by_status.open": 1}, {"received": 1, "by_status.closed": 1})
    {'by_status.closed': 1, 'by_status.open': -1}
    >>> nested({"received": 2, "by_status.open": 1})
    {'received': 2, 'by_status': {'open': 1}}
    >>> flat({"_id": "e-1:2026-11", "received": 2, "by_status": {"open": 1, "closed": 0}},
    ...      skip=("_id",))
    {'received': 2, 'by_status.open': 1}
"""
from collections.abc import Collection, Mapping

Counts = dict[str, int]


def difference(old: Counts, new: Counts) -> Counts:
    """``new - old``, without the counters it leaves as they are (sorted by path)."""
    changed = {path: new.get(path, 0) - old.get(path, 0) for path in old.keys() | new.keys()}
    return {path: change for path, change in sorted(changed.items()) if change}


def nested(counts: Counts) -> dict:
    """{path: n} as the nested fields ``$inc`` with those paths makes."""
    fields: dict = {}
    for path, count in counts.items():
        *parents, name = path.split(".")
        level = fields
        for parent in parents:
            level = level.setdefault(parent, {})
        level[name] = count
    return fields


def flat(fields: Mapping, prefix: str = "", skip: Collection[str] = ()) -> Counts:
    """Nested counters as {path: n}, zeros left out (``skip``: top-level fields that are
    not counts)."""
    counts = {}
    for key, value in fields.items():
        if key in skip:
            continue
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            counts.update(flat(value, path))
        elif value:
            counts[path] = value
    return counts
