"""The history line every complaint and work order keeps: who did what, when, why."""
from datetime import datetime
from typing import Any


def history_entry(at: datetime, by: str | None, action: str, from_state: str | None,
                  to_state: str | None, note: str | None, **details: Any) -> dict:
    """``details``: what a step decided besides its note (an assignment's department), kept
    as fields so the owner's page can show them without reading staff's notes."""
    return {"at": at, "by": by, "action": action, "from": from_state, "to": to_state,
            "note": note or "", **details}
