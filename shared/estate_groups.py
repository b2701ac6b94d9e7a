"""Headquarters' groups of estates: by company, or by region within its company. Pure Python.

One rule for every service's statistics (intake's complaint figures, revisit's), so the
same estates land in the same group under the same key, and the dashboard can set a
group's complaint figures beside its revisit figures. An estate whose record has no
company (or region) yet is in the named group ``UNGROUPED``, never dropped.

    >>> east = {"estate_id": "e1", "name": "东城名苑", "company": "华东公司", "region": "城东片区"}
    >>> bare = {"estate_id": "e2", "name": "e2", "company": None, "region": None}
    >>> group_of(east, "region"), group_of(bare, "company")
    ('华东公司/城东片区', '(未分组)')
    >>> group_label(east, "region")
    {'company': '华东公司', 'region': '城东片区'}
"""
from collections.abc import Mapping
from typing import Any

# How group statistics are grouped: an estate's own id, or one of its names up the tree.
GROUPINGS = ("estate", "region", "company")
# The group of estates whose record has no company or region yet.
UNGROUPED = "(未分组)"


def group_of(estate: Mapping[str, Any], group_by: str) -> str:
    """The group an estate's figures are added to: its id, its region (within its company:
    two companies may both have a 城东片区) or its company."""
    if group_by == "estate":
        return str(estate["estate_id"])
    company = estate.get("company") or UNGROUPED
    if group_by == "company":
        return company
    return f"{company}/{estate.get('region') or UNGROUPED}"


def group_label(estate: Mapping[str, Any], group_by: str) -> dict:
    """What a group's figures show beside its key: names, not ids."""
    if group_by == "estate":
        return {key: estate[key] for key in ("estate_id", "name", "company", "region")}
    label = {"company": estate.get("company") or UNGROUPED}
    if group_by == "region":
        label["region"] = estate.get("region") or UNGROUPED
    return label
