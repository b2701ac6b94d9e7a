"""The history line every complaint and work order keeps: who did what, when, why."""


def history_entry(at, by, action, from_state, to_state, note):
    return {"at": at, "by": by, "action": action, "from": from_state, "to": to_state,
            "note": note or ""}
