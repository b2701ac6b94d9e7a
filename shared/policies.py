"""One way every service gives its workers each estate's policy.

A service's policies are the group's settings in config.yaml with each estate's own
over them. ``EstatePolicies`` builds them once, when the service starts — a setting that
is wrong stops the start with a message naming it, rather than failing at the first
call that reads it — and hands each worker a *view*: the built book as it is, or with
what only a worker can see (the estate's record, the zone of the estate's copy).

Every service declares it the same way, under the same name::

    class RevisitService:
        policies = EstatePolicies(PolicyBook, view=zoned_by_estate_copies)
        ...
        policy = self.policies.for_estate(estate_id)

``build(config)`` returns the book: anything with ``for_estate(estate_id)`` (``None``
for the group's own policy). A sketch of one, built and read as a worker would:

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Reminders:
...     interval_days: int = 3
>>> class Book:
...     def __init__(self, config):
...         group = config.get("REMINDERS") or {}
...         self.estates = {estate: Reminders(**{**group, **own})
...                         for estate, own in (config.get("ESTATE_REMINDERS") or {}).items()}
...         self.group = Reminders(**group)
...     def for_estate(self, estate_id):
...         return self.estates.get(estate_id, self.group)
>>> provider = EstatePolicies(Book)
>>> provider.container = type("Container", (), {"config": {"ESTATE_REMINDERS": {"e-9": {"interval_days": 5}}}})()
>>> provider.setup()
>>> provider.get_dependency(worker_ctx=None).for_estate("e-9").interval_days
5
>>> provider.get_dependency(worker_ctx=None).for_estate("e-1").interval_days
3
"""
from collections.abc import Callable
from typing import Any, Protocol

from nameko.extensions import DependencyProvider


class PolicyBook(Protocol):
    """What a service's policies answer: the policy of an estate (None: the group's)."""

    def for_estate(self, estate_id: str | None) -> Any: ...


Build = Callable[[dict], PolicyBook]
View = Callable[[PolicyBook, Any, Any], PolicyBook]


class EstatePolicies(DependencyProvider):
    """Each estate's policy, built once from the service's config when it starts
    (``build``), given to each worker as ``view(book, container, worker_ctx)`` returns it
    (default: the book itself)."""

    def __init__(self, build: Build, view: View | None = None):
        self.build, self.view = build, view

    def setup(self) -> None:
        self.book = self.build(self.container.config)

    def get_dependency(self, worker_ctx: Any) -> PolicyBook:
        if self.view is None:
            return self.book
        return self.view(self.book, self.container, worker_ctx)
