"""intake's own parts of its nameko extensions: how its policies are built and read
(given to workers by ``shared.policies.EstatePolicies``), and who may read full contacts
(its timers come from ``shared.timers``)."""
from collections.abc import Callable
from pathlib import Path

import yaml
from nameko.extensions import DependencyProvider

from services.intake.policy import ComplaintPolicy, Policies
from shared.dependencies import Store

DEFAULT_CONTACT_CALLERS = ["notify"]


def complaint_policies(config: dict) -> Policies:
    """Every estate's complaint policy from config, checked when the service starts.

    ``HOLIDAY_TABLES`` lists announced holiday tables: a YAML/JSON file path
    (relative to the working directory) or the table itself.
    """
    tables = [read_holiday_table(entry) for entry in config.get("HOLIDAY_TABLES") or []]
    return Policies.from_config(config, tables)


def read_through_records(policies: Policies, container, worker_ctx) -> "EstatePolicyBook":
    """A worker's view: each estate's policy with its record's overrides and zone."""
    store = next(provider for provider in container.dependencies
                 if isinstance(provider, Store))
    return EstatePolicyBook(policies, store.repository.find_estate)


class EstatePolicyBook:
    """One worker's view of the policies: an estate's is the config's with its record's
    overrides and time zone (services/intake/estates.py), each record read once a worker."""

    def __init__(self, policies: Policies, find_estate: Callable[[str], dict | None]):
        self.policies = policies
        self._find_estate = find_estate
        self._read: dict[str, ComplaintPolicy] = {}

    def for_estate(self, estate_id: str | None) -> ComplaintPolicy:
        if estate_id is None:
            return self.policies.for_estate(None)
        if estate_id not in self._read:
            record = self._find_estate(estate_id)
            self._read[estate_id] = self.policies.for_record(record) \
                if record is not None and "name" in record \
                else self.policies.for_estate(estate_id)   # not migrated yet: the config's
        return self._read[estate_id]

    def for_record(self, estate: dict) -> ComplaintPolicy:
        return self.policies.for_record(estate)


class ContactCallers(DependencyProvider):
    """``CONTACT_CALLERS``: the services ``get_contact`` answers (default notify), checked
    when the service starts: a bare string would let any name inside it through."""

    def setup(self):
        self.callers = contact_callers(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.callers


def contact_callers(config) -> tuple[str, ...]:
    callers = config.get("CONTACT_CALLERS", DEFAULT_CONTACT_CALLERS)
    if not isinstance(callers, list) or not all(
            isinstance(name, str) and name.strip() for name in callers):
        raise ValueError(f"CONTACT_CALLERS must be a list of service names, not {callers!r}")
    return tuple(callers)


def read_holiday_table(entry):
    if isinstance(entry, dict):
        return entry
    with Path(entry).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)
