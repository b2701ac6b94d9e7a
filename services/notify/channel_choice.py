"""Whether a message goes to a household, and on which channels to which addresses, best
first. Pure Python."""
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from services.notify.message_templates import Template


class Route(TypedDict):
    """One channel to try, and the recipient's address on it."""
    channel: str
    address: str


def channel_order(configured: Sequence[str], preferences: Mapping[str, Any] | None = None,
                  contact: Mapping[str, Any] | None = None) -> list[str]:
    """Channels to try, best first: the recipient's own order, then the contact's
    preferred channel, then the configured order. Only configured channels."""
    wanted = list((preferences or {}).get("channels") or [])
    if contact and contact.get("preferred_channel"):
        wanted.append(contact["preferred_channel"])
    return [name for name in dict.fromkeys(wanted + list(configured)) if name in configured]


def routes(order: Sequence[str], address_fields: Mapping[str, str],
           contact: Mapping[str, Any] | None) -> list[Route]:
    """[{channel, address}] from ``order`` for which the contact has an address."""
    contact = contact or {}
    return [{"channel": name, "address": contact[address_fields[name]]} for name in order
            if contact.get(address_fields[name])]


def opted_out(preferences: Mapping[str, Any] | None, template: Template) -> bool:
    """「except legally required notices」: a mandatory template reaches even those who opted out."""
    return bool(preferences and preferences.get("opt_out")) and not template.mandatory
