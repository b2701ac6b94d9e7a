"""Delivery channels are plug-ins: classes named in the entry-point group ``huifang.channels``.

A plug-in is installed with pip, declares its class under that group and is
named in ``NOTIFY_CHANNELS``; no core file changes. ``console`` ships here and
needs nothing.
"""
import logging
from functools import cache
from importlib.metadata import entry_points

from shared.masking import mask_address

log = logging.getLogger(__name__)

GROUP = "huifang.channels"


class ChannelError(Exception):
    """A message could not be delivered. The text says why, never with the full address."""


class UnknownChannel(LookupError):
    """A configured or requested channel name that no installed plug-in provides."""


class Channel:
    """Base of every channel plug-in.

    ``address_field`` names the contact field (from ``intake.get_contact``) the
    channel delivers to; ``send`` delivers one rendered message or raises
    ``ChannelError``.
    """

    name = None
    address_field = "phone"

    def __init__(self, config=None):
        self.config = config or {}

    def send(self, address, message):
        raise NotImplementedError


class ConsoleChannel(Channel):
    """Writes the message to the log (development, demos): the default channel."""

    name = "console"

    def send(self, address, message):
        # Logs are read by many: the address is masked, like everywhere outside the delivery log.
        log.info("console message to %s: %s", mask_address(address), message)


@cache
def installed_channels():
    """Channel name -> entry point, for every installed plug-in (scanned once)."""
    return {entry.name: entry for entry in entry_points(group=GROUP)}


def load_channels(names, config=None):
    """The named channels, in the order given, as {name: instance}.

    Raises ``UnknownChannel`` naming what is missing and what is installed.
    """
    names = list(dict.fromkeys(names))
    installed = installed_channels()
    unknown = [name for name in names if name not in installed]
    if unknown:
        raise UnknownChannel(
            f"unknown notification channel(s): {', '.join(unknown)}; installed in entry-point "
            f"group {GROUP}: {', '.join(sorted(installed)) or 'none'}"
        )
    channels = {}
    for name in names:
        channel_class = installed[name].load()
        if not (isinstance(channel_class, type) and issubclass(channel_class, Channel)):
            raise UnknownChannel(f"channel plug-in {name!r} is not a {Channel.__qualname__}")
        channels[name] = channel_class(config)
    return channels
