"""intake's own nameko extensions: the estates' policies, who may read full contacts, and
a timer whose interval is config."""
from pathlib import Path

import yaml
from nameko.extensions import DependencyProvider

from services.intake.policy import Policies

DEFAULT_CONTACT_CALLERS = ["notify"]


class EstatePolicies(DependencyProvider):
    """Every estate's complaint policy, built and checked once when the service starts.

    ``HOLIDAY_TABLES`` lists announced holiday tables: a YAML/JSON file path
    (relative to the working directory) or the table itself.
    """

    def setup(self):
        config = self.container.config
        tables = [read_holiday_table(entry) for entry in config.get("HOLIDAY_TABLES") or []]
        self.policies = Policies.from_config(config, tables)

    def get_dependency(self, worker_ctx):
        return self.policies


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
