"""revisit's own dependency providers: the estates' policies, and a timer set by config."""
from nameko.extensions import DependencyProvider

from services.revisit.policies import PolicyBook


class Policies(DependencyProvider):
    """Gives workers the policy book, built once at start: a policy that is not installed
    or a setting it does not have stops the service from starting, loudly."""

    def setup(self):
        self.book = PolicyBook(self.container.config)

    def get_dependency(self, worker_ctx):
        return self.book
