"""Who a message goes to, resolved: a recipient's contact and preferences as intake and
notify's own store know them now (events carry no addresses, only refs)."""
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from nameko.exceptions import RemoteError

from services.notify.recipients import Recipients, StaffMember, staff_for
from services.notify.repository import NotifyRepository
from services.notify.settings import EstateSettings, NotifySettings, ZonedSettings
from shared.errors import InvalidInput
from shared.masking import mask_address
from shared.schemas import notify as schemas
from shared.schemas.intake import MAX_CONTACT_REFS

CONTACT_BATCH = MAX_CONTACT_REFS   # refs one intake.get_contacts call is asked


@dataclass
class Target:
    """One recipient, resolved: its id for the log, its contact, whether it is a household."""
    recipient: str
    contact: Mapping[str, Any] | None = None
    preferences: dict | None = None
    household: bool = True
    error: str | None = None
    contact_ref: str | None = None   # what intake.get_contact was asked


Resolve = Callable[[], Target]


class AddressBook:
    """Recipients looked up through ``intake`` (contacts, households) and the settings'
    staff directory, with the households' preferences from ``store``."""

    def __init__(self, intake: Any, store: NotifyRepository,
                 settings: NotifySettings | ZonedSettings) -> None:
        self.intake, self.store, self.settings = intake, store, settings
        self._preloaded: dict[str, Target] = {}

    @contextmanager
    def preloaded(self, refs: list[str]) -> Iterator[None]:
        """Within, ``contact`` answers these refs from one look-up made now (``contacts``):
        a batch of events to households, each resolved as it is handled."""
        self._preloaded = self.contacts(refs)
        try:
            yield
        finally:
            self._preloaded = {}

    def for_event(self, event: dict, recipients: Recipients,
                  estate: EstateSettings) -> Iterable[tuple[str | None, Resolve]]:
        """[(key, resolve)]: ``key`` tells apart an event's deliveries when it has several
        recipients (None when it has one); ``resolve()`` gives the Target."""
        kind, value = recipients.alternatives[0]
        if kind == "contact":
            return [(None, lambda: self.contact(value))]
        if kind == "households":
            return self.households(self._occupied_households(event["estate_id"]))
        members = staff_for(estate.staff, recipients)
        if members:
            return [(member["id"], functools.partial(staff_target, member))
                    for member in members]
        wanted = " or ".join(f"{kind} {value}" for kind, value in recipients.alternatives)
        return [(None, lambda: Target(recipient=f"{recipients.alternatives[0][1]}",
                                      household=False,
                                      error=f"no {wanted} in the staff directory of estate "
                                            f"{event['estate_id']} (NOTIFY_STAFF)"))]

    def households(self, household_ids: list[str]) -> Iterator[tuple[str, Resolve]]:
        """(household id, resolve) for each household of a broadcast; the contacts of a
        batch of them are looked up together, when the first of the batch is resolved
        (a redelivered broadcast, all logged already, looks up none)."""
        for start in range(0, len(household_ids), CONTACT_BATCH):
            batch = household_ids[start:start + CONTACT_BATCH]
            targets: dict[str, Target] = {}

            def resolve(household_id: str, batch: list[str] = batch,
                        targets: dict[str, Target] = targets) -> Target:
                if not targets:
                    targets.update(self.contacts(batch))
                return targets[household_id]
            for household_id in batch:
                yield household_id, functools.partial(resolve, household_id)

    def contact(self, ref: str) -> Target:
        if ref in self._preloaded:
            return self._preloaded[ref]
        contact = self._contact(ref)     # looked up now: events carry no addresses
        household_id = contact and contact.get("household_id")
        preferences = self.store.get_preferences(household_id) if household_id else None
        return contact_target(ref, contact, preferences)

    def contacts(self, refs: list[str]) -> dict[str, Target]:
        """{ref: Target} for many refs: contacts from ``intake.get_contacts``, a batch a
        call, the households' preferences in one read."""
        refs, contacts = list(dict.fromkeys(refs)), {}
        if not refs:
            return {}
        for start in range(0, len(refs), CONTACT_BATCH):
            contacts.update(self.intake.get_contacts(refs[start:start + CONTACT_BATCH]))
        preferences = self.store.preferences_of(
            {contact["household_id"] for contact in contacts.values()
             if contact and contact.get("household_id")})
        return {ref: contact_target(ref, contacts.get(ref), preferences.get(
            (contacts.get(ref) or {}).get("household_id"))) for ref in refs}

    def for_send(self, to: str, estate_id: str | None) -> tuple[Target, str | None]:
        """The recipient of ``send``: an address, a staff member or a household/complaint."""
        if schemas.address_kind(to):
            return Target(recipient=mask_address(to), household=False), estate_id
        staff_estate, member = self.settings.find_staff(to, estate_id)
        if member is not None:
            return staff_target(member), staff_estate
        target = self.contact(to)
        if target.error or target.contact is None:   # (no error: the contact was found)
            raise InvalidInput({"to": ["unknown household, complaint or staff member"]})
        return target, estate_id or target.contact["estate_id"]

    def _contact(self, ref: str) -> dict | None:
        try:
            return self.intake.get_contact(ref)
        except RemoteError as exc:
            if exc.exc_type == "NotFound":
                return None
            raise

    def _occupied_households(self, estate_id: str) -> list[str]:
        try:
            households = self.intake.list_households(estate_id, {"occupied": True})
        except RemoteError as exc:
            if exc.exc_type != "NotFound":
                raise
            return []   # an estate intake does not know has nobody to tell
        return [household["id"] for household in households]


def contact_target(ref: str, contact: dict | None, preferences: dict | None) -> Target:
    if contact is None:
        return Target(recipient=ref, error=f"intake knows no contact for {ref}",
                      contact_ref=ref)
    return Target(recipient=contact.get("household_id") or ref, contact=contact,
                  preferences=preferences, contact_ref=ref)


def staff_target(member: StaffMember) -> Target:
    return Target(recipient=member["id"], contact=member, household=False,
                  preferences={"channels": member.get("channels") or []})
