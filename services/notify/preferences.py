"""A household's notification preferences as notify keeps them: channels in its own
order, quiet hours, an opt-out, a language. Pure Python."""
from collections.abc import Mapping
from datetime import datetime
from typing import Any

Preferences = dict[str, Any]   # as stored: _id (the household), the fields above, updated_*


def default_preferences(household_id: str) -> Preferences:
    return {"_id": household_id, "channels": [], "quiet_hours": None, "opt_out": False,
            "locale": None}


def merge_preferences(current: Mapping[str, Any] | None, changes: Mapping[str, Any],
                      household_id: str, now: datetime,
                      updated_by: str | None = None) -> Preferences:
    """``current`` (or the defaults) with the given fields changed; ``updated_by`` the
    person who changed them, when a person did (the gateway)."""
    base = dict(default_preferences(household_id), **(current or {}))
    merged = dict(base, **changes, updated_at=now)
    merged.pop("updated_by", None)   # whoever changed them before did not make this change
    if updated_by is not None:
        merged["updated_by"] = updated_by
    return merged


def preferences_view(preferences: Mapping[str, Any]) -> dict[str, Any]:
    view = dict(preferences, household_id=preferences["_id"])
    view.pop("_id")
    return view
