"""A nameko timer whose interval is read from the config when the service starts,
so deployments tune it and tests run it fast. Every instance runs it: the work it
does must be claimed atomically, so that two instances never both do it."""
from nameko.timer import Timer


class ConfiguredTimer(Timer):
    def __init__(self, config_key, default_seconds, **kwargs):
        self.config_key, self.default_seconds = config_key, default_seconds
        super().__init__(interval=default_seconds, **kwargs)

    def setup(self):
        self.interval = float(self.container.config.get(self.config_key) or self.default_seconds)
        super().setup()


timer_from_config = ConfiguredTimer.decorator
