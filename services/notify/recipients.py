"""Who an event's message is for (``Recipients``), and the members of an estate's staff
directory that names. Pure Python."""
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.notify.event_params import Data

Alternative = tuple[str, Any]   # (kind, value): see Recipients
StaffMember = Mapping[str, Any]   # an entry of NOTIFY_STAFF: id, roles, department, …


@dataclass(frozen=True)
class Recipients:
    """Who receives a message: the first of ``alternatives`` that finds anyone, or, when
    ``together``, everyone each of them finds (the supervisors and the managers).

    Each alternative is (kind, value): ``contact`` (a household or complaint
    id: intake.get_contact), ``staff`` (a staff id), ``role``, ``department``
    (the estate's staff directory) or ``households`` (every occupied household
    of the estate).
    """
    alternatives: tuple[Alternative, ...]
    together: bool = False

    @property
    def owners(self) -> bool:
        return self.alternatives[0][0] in ("contact", "households")


# An event's data -> who hears of it, or None: nobody to tell.
RecipientsOf = Callable[[Data], Recipients | None]


def contact_of(key: str) -> RecipientsOf:
    """The household or complaint whose id the event's ``key`` holds (its contact)."""
    return lambda data: Recipients((("contact", data[key]),)) if data.get(key) else None


def from_directory(*alternatives: Callable[[Data], Alternative | None],
                   together: bool = False) -> RecipientsOf:
    """Recipients from the staff directory; each alternative a function of the event data
    (None: it does not apply). ``together``: all of them, not the first that finds anyone."""
    def recipients(data: Data) -> Recipients | None:
        found = tuple(pair for pair in (alternative(data) for alternative in alternatives)
                      if pair and pair[1])
        return Recipients(found, together) if found else None
    return recipients


def by_roles(*roles: str, together: bool = False) -> RecipientsOf:
    return from_directory(*(lambda data, role=role: ("role", role) for role in roles),
                          together=together)


def every_household(data: Data) -> Recipients:
    """Every occupied household of the estate (a notice for the whole estate)."""
    return Recipients((("households", None),))


def staff_matching(directory: Sequence[StaffMember], kind: str,
                   value: object) -> list[StaffMember]:
    """The members of an estate's staff directory an alternative names."""
    if kind == "staff":
        return [member for member in directory if member["id"] == value]
    if kind == "role":
        return [member for member in directory if value in member.get("roles", ())]
    if kind == "department":
        return [member for member in directory if member.get("department") == value]
    raise ValueError(f"not a staff directory lookup: {kind}")


def staff_for(directory: Sequence[StaffMember], recipients: Recipients) -> list[StaffMember]:
    """The members of an estate's staff directory ``recipients`` name, each once: those of
    the first alternative that finds anyone, or of all of them when ``together``."""
    found: dict[str, StaffMember] = {}
    for kind, value in recipients.alternatives:
        members = staff_matching(directory, kind, value)
        for member in members:
            found.setdefault(member["id"], member)
        if members and not recipients.together:
            break
    return list(found.values())
