"""intake's own nameko extensions: the estates' policies and a timer whose interval is config."""
from pathlib import Path

import yaml
from nameko.extensions import DependencyProvider

from services.intake.policy import Policies


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


def read_holiday_table(entry):
    if isinstance(entry, dict):
        return entry
    with Path(entry).open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)
