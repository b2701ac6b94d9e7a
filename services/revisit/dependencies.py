"""revisit's own part of its policies: each worker's view of the policy book (given to
workers by ``shared.policies.EstatePolicies``; its timers come from ``shared.timers``)."""
from dataclasses import replace

from services.revisit.policies import PolicyBook
from shared.estates import EstateCopies, copies_for


def zoned_by_estate_copies(book: PolicyBook, container, worker_ctx) -> "ZonedPolicies":
    """A worker's view of the policy book (built once at start: a policy that is not
    installed or a setting it does not have stops the service from starting, loudly),
    each estate's zone from the copy of intake's records, never by asking intake:
    revisit's event handlers and timers go on while intake is away."""
    return ZonedPolicies(book, copies_for(container, worker_ctx, intake=None))


class ZonedPolicies:
    """The policy book, each estate's policy in the time zone of the estate's record
    (shared/estates.py) once revisit has its copy; the configured zone until then."""

    def __init__(self, book: PolicyBook, estates: EstateCopies):
        self.book, self.estates = book, estates

    def for_estate(self, estate_id):
        policy = self.book.for_estate(estate_id)
        copy = self.estates.get(estate_id) if estate_id else None
        if copy is None or copy["timezone"] == policy.timezone:
            return policy
        return replace(policy, timezone=copy["timezone"])

    def estates_elsewhere(self, zone: str) -> set[str]:
        """The estates whose visits are counted in a zone other than ``zone``: by the zone
        of their record (the copies); one without a copy yet, by its configured zone."""
        copied = set(self.estates.in_zones_other_than(zone))
        configured = {estate for estate, policy in self.book.estates.items()
                      if policy.timezone != zone and estate not in copied}
        return copied | {estate for estate in configured if self.estates.get(estate) is None}

    def __getattr__(self, name):   # default, describe, name_for: the book's (``estates``
        # here is the copies; the configured estates are ``book.estates``)
        return getattr(self.book, name)
