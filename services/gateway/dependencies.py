"""The gateway's providers: its accounts over its own store, and its clients' addresses."""
import logging
import os
from datetime import timedelta

from services.gateway import identity
from services.gateway.accounts import Accounts, AccountSettings
from services.gateway.repository import GatewayRepository
from shared.clock import Clock
from shared.dependencies import Store

log = logging.getLogger(__name__)


class AccountStore(Store):
    """The gateway's store, handed to workers as ``Accounts``.

    At start-up it refuses a missing or built-in signing key outside development, and on
    a store with no users creates ``admin`` (``HUIFANG_ADMIN_PASSWORD``, else a generated
    password logged once).
    """

    def __init__(self, clock=None):
        # the gateway publishes no events: its broker user needs no rights on the
        # services' exchanges and queues (deploy/rabbitmq/definitions.json)
        super().__init__(GatewayRepository, events=False)
        self.clock = clock or Clock()

    def setup(self):
        config = self.container.config
        secret = identity.check_secret(
            config.get("GATEWAY_SECRET") or None, config.get("HUIFANG_ENV") or None)
        self.settings = AccountSettings(
            secret=secret,
            token_lifetime=timedelta(minutes=float(config.get("GATEWAY_TOKEN_MINUTES") or 60)),
            secure_cookies=(config.get("HUIFANG_ENV") or "") != "development",
            throttle=identity.LoginThrottle(
                delay_step=timedelta(milliseconds=float(config.get("GATEWAY_LOGIN_DELAY_MS", 500))),
                lock_after=int(config.get("GATEWAY_LOGIN_LOCK_AFTER") or 10),
                address_lock_after=int(config.get("GATEWAY_LOGIN_ADDRESS_LOCK_AFTER") or 50),
                lock_for=timedelta(minutes=float(config.get("GATEWAY_LOGIN_LOCK_MINUTES") or 15)),
            ),
        )
        super().setup()
        generated = Accounts(self.repository, self.settings, self.clock).ensure_first_admin(
            config.get("HUIFANG_ADMIN_PASSWORD") or os.environ.get("HUIFANG_ADMIN_PASSWORD"))
        if generated:
            log.warning("created the first user 'admin' with the password %s - "
                        "log in and change it (this is the only time it is shown)", generated)

    def get_dependency(self, worker_ctx):
        return Accounts(self.repository, self.settings, self.clock, worker_ctx)
