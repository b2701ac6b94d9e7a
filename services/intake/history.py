"""The history line every complaint and work order keeps: who did what, when, why."""


def history_entry(at, by, action, from_state, to_state, note, **details):
    """``details``: what a step decided besides its note (an assignment's department), kept
    as fields so the owner's page can show them without reading staff's notes."""
    return {"at": at, "by": by, "action": action, "from": from_state, "to": to_state,
            "note": note or "", **details}
