"""A nameko timer whose interval is read from the config when the service starts,
so deployments tune it and tests run it fast. Every instance runs it: the work it
does must be claimed atomically, so that two instances never both do it.

>>> from nameko.containers import ServiceContainer
>>> from nameko.testing.utils import get_extension
>>> class Reminders:
...     name = "reminders"
...
...     @timer_from_config("REMINDER_SECONDS", 60)
...     def send_due_reminders(self):
...         ...   # claims each due reminder before sending it
>>> container = ServiceContainer(Reminders, {"REMINDER_SECONDS": "0.5"})
>>> timer = get_extension(container, ConfiguredTimer)
>>> timer.setup()
>>> timer.interval              # the config's; 60 s without the key
0.5
"""
from typing import Any

from nameko.timer import Timer


class ConfiguredTimer(Timer):
    def __init__(self, config_key: str, default_seconds: float, **kwargs: Any) -> None:
        self.config_key, self.default_seconds = config_key, default_seconds
        super().__init__(interval=default_seconds, **kwargs)

    def setup(self) -> None:
        self.interval = float(self.container.config.get(self.config_key) or self.default_seconds)
        super().setup()


timer_from_config = ConfiguredTimer.decorator
