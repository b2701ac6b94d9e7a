"""Delivery channels are plug-ins: classes named in the entry-point group ``huifang.channels``.

A plug-in is installed with pip, declares its class under that group and is
named in ``NOTIFY_CHANNELS`` (or an estate's ``channels``); its settings come
from ``NOTIFY_CHANNEL_SETTINGS[<name>]``. No core file changes. Shipped here:
``console`` (the default, needs nothing), ``email`` (SMTP) and ``sms_http``
(a generic HTTP SMS gateway).
"""
import json
import logging
import smtplib
import ssl
import string
from collections.abc import Iterable, Mapping
from contextlib import closing, suppress
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, localtime, make_msgid
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import requests

from services.notify.sms import sms_segments
from shared.masking import mask_address
from shared.schemas.base import MOBILE_PATTERN
from shared.schemas.notify import EMAIL_PATTERN

log = logging.getLogger(__name__)

GROUP = "huifang.channels"


class ChannelError(Exception):
    """A message could not be delivered. The text says why, never with the full address.

    ``retryable``: the same channel may succeed later (a timeout, a busy
    server); otherwise the next channel is tried at once.
    """

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class AddressError(ChannelError):
    """The address cannot be used on this channel (malformed, or the wrong kind)."""


class UnknownChannel(LookupError):
    """A configured or requested channel name that no installed plug-in provides."""


class ChannelConfigError(ValueError):
    """A channel's settings are unusable: the service refuses to start with them."""


@dataclass(frozen=True)
class Message:
    """What a channel delivers: the signed text, a subject for channels that have one."""
    text: str
    subject: str = ""
    sender_name: str = ""
    delivery_id: str = ""


class Channel:
    """Base of every channel plug-in.

    ``address_field`` names the contact field (from ``intake.get_contact``) the
    channel delivers to; ``kind`` is what it is for people (``sms``, ``email``,
    ``phone``, ``log``). ``send`` delivers one message or raises
    ``ChannelError``, and may return the gateway's message id. ``settings``
    are the plug-in's own (``NOTIFY_CHANNEL_SETTINGS[<name>]``): a plug-in
    raises ``ChannelConfigError`` for settings it cannot use, so the service
    does not start with them.
    """

    name: str | None = None
    kind = "other"
    address_field = "phone"

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        self.settings = dict(settings or {})

    def check_address(self, address: str) -> None:
        """Raise ``AddressError`` if ``address`` cannot be used here."""

    def send(self, address: str, message: Message) -> str | None:
        raise NotImplementedError


class ConsoleChannel(Channel):
    """Writes the message to the log (development, demos): the default channel."""

    name = "console"
    kind = "log"

    def send(self, address: str, message: Message) -> None:
        # Logs are read by many: the address is masked, like everywhere outside the delivery log.
        log.info("console message to %s: %s", mask_address(address), message.text)


class EmailChannel(Channel):
    """E-mail through an SMTP server (``smtplib``).

    Settings: ``host``, ``port``, ``security`` (``none``, ``starttls`` or
    ``ssl``), ``ca_file`` (certificates to trust besides the system's: a relay
    with a private CA), ``username``/``password`` (login when given),
    ``sender`` (the From address; the display name is the estate's
    signature), ``timeout`` (seconds). A busy or unreachable server (4xx,
    timeouts) is retried; a refusal (5xx, a failed login), a certificate that
    is not trusted or a server without STARTTLS is not: no retry fixes those.
    """

    name = "email"
    kind = "email"
    address_field = "email"
    SECURITY = ("none", "starttls", "ssl")

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(settings)
        self.host = self.settings.get("host") or "localhost"
        self.security = self.settings.get("security") or "none"
        if self.security not in self.SECURITY:
            raise ChannelConfigError(f"email: security must be one of {', '.join(self.SECURITY)}")
        default_port = {"none": 25, "starttls": 587, "ssl": 465}[self.security]
        self.port = int(self.settings.get("port") or default_port)
        self.username = self.settings.get("username") or None
        self.password = self.settings.get("password") or ""
        self.sender = self.settings.get("sender") or ""
        if not EMAIL_PATTERN.match(self.sender):
            raise ChannelConfigError("email: sender must be an e-mail address")
        self.timeout = float(self.settings.get("timeout") or 10)
        self.ca_file = self.settings.get("ca_file") or None
        if self.ca_file:
            try:   # read now: an unreadable bundle stops the start, not every message
                ssl.create_default_context(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ChannelConfigError(f"email: ca_file cannot be used: {exc}") from None

    def check_address(self, address: str) -> None:
        if not EMAIL_PATTERN.match(address or ""):
            raise AddressError(f"not an e-mail address: {mask_address(address)}")

    def send(self, address: str, message: Message) -> None:
        self.check_address(address)
        mail = EmailMessage()
        mail["From"] = formataddr((message.sender_name, self.sender)) if message.sender_name \
            else self.sender
        mail["To"] = str(Address(addr_spec=address))
        mail["Subject"] = message.subject or message.sender_name or "Notification"
        # RFC 5322 wants both; smtplib adds neither, and relays mark mail without them as spam.
        mail["Date"] = format_datetime(localtime())
        mail["Message-ID"] = make_msgid(domain=self.sender.rsplit("@", 1)[1])
        if message.delivery_id:
            mail["X-Huifang-Delivery"] = message.delivery_id
        mail.set_content(message.text)
        try:
            with closing(self._connect()) as server:
                if self.security == "starttls":
                    server.starttls(context=self._tls_context())
                if self.username:
                    server.login(self.username, self.password)
                server.send_message(mail)
                with suppress(smtplib.SMTPException, OSError):
                    server.quit()   # the mail is sent: how the server takes QUIT is moot
        except ssl.SSLCertVerificationError as exc:
            raise ChannelError(f"SMTP server {self.host}:{self.port} certificate not trusted: "
                               f"{exc.verify_message}") from None
        except smtplib.SMTPNotSupportedError as exc:   # no STARTTLS, or no AUTH before TLS
            raise ChannelError(f"SMTP server {self.host}:{self.port}: {exc}") from None
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise ChannelError(f"SMTP server refused the recipient: {code} {_text(text)}",
                               retryable=400 <= code < 500) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise ChannelError(f"SMTP login refused: {exc.smtp_code}") from None
        except smtplib.SMTPResponseException as exc:
            raise ChannelError(f"SMTP server answered {exc.smtp_code} {_text(exc.smtp_error)}",
                               retryable=400 <= exc.smtp_code < 500) from None
        except (smtplib.SMTPException, OSError) as exc:   # refused, reset, timed out
            raise ChannelError(f"SMTP server {self.host}:{self.port} unreachable: "
                               f"{type(exc).__name__}: {exc}", retryable=True) from None

    def _connect(self) -> smtplib.SMTP:
        if self.security == "ssl":
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                    context=self._tls_context())
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)

    def _tls_context(self) -> ssl.SSLContext:
        """Certificates are always verified, host name included: the mail carries owners' data."""
        return ssl.create_default_context(cafile=self.ca_file)


class HttpSmsChannel(Channel):
    """SMS through any HTTP gateway that takes a JSON request (``requests``).

    Settings: ``url``; ``method`` (POST); ``headers`` (the auth header, e.g.
    ``Authorization: Bearer …``); ``body``: a JSON template whose strings may
    use ``{phone}``, ``{text}``, ``{signature}``, ``{segments}`` and
    ``{delivery_id}`` (a string that is only ``{segments}`` stays a number);
    ``timeout`` (seconds); ``success``: ``{field, value}`` a 2xx answer must
    also carry (gateways that answer 200 with an error code);
    ``message_id_field``: where the answer names the message. Timeouts,
    connection errors, 429 and 5xx are retried; other answers are refusals.
    """

    name = "sms_http"
    kind = "sms"
    address_field = "phone"
    PLACEHOLDERS = frozenset({"phone", "text", "signature", "segments", "delivery_id"})

    def __init__(self, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(settings)
        self.url = self.settings.get("url") or ""
        if not self.url.startswith(("http://", "https://")):
            raise ChannelConfigError("sms_http: url must be an http(s) URL")
        self.method = (self.settings.get("method") or "POST").upper()
        self.headers = {str(k): str(v) for k, v in (self.settings.get("headers") or {}).items()}
        self.body = self.settings.get("body") or {"to": "{phone}", "text": "{text}"}
        unknown = _template_names(self.body) - self.PLACEHOLDERS
        if unknown:
            raise ChannelConfigError(
                f"sms_http: body uses {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(self.PLACEHOLDERS))}")
        self.timeout = float(self.settings.get("timeout") or 10)
        self.success = self.settings.get("success") or None
        self.message_id_field = self.settings.get("message_id_field") or None

    def check_address(self, address: str) -> None:
        if not MOBILE_PATTERN.match(address or ""):
            raise AddressError(f"not a mobile number: {mask_address(address)}")

    def send(self, address: str, message: Message) -> str | None:
        self.check_address(address)
        values = {"phone": address, "text": message.text, "signature": message.sender_name,
                  "segments": sms_segments(message.text).count,
                  "delivery_id": message.delivery_id}
        try:
            answer = requests.request(self.method, self.url, json=_fill(self.body, values),
                                      headers=self.headers, timeout=self.timeout)
        except requests.Timeout:
            raise ChannelError(f"SMS gateway timed out after {self.timeout:g}s",
                               retryable=True) from None
        except requests.RequestException as exc:
            raise ChannelError(f"SMS gateway unreachable: {type(exc).__name__}",
                               retryable=True) from None
        if answer.status_code == 429 or answer.status_code >= 500:
            raise ChannelError(f"SMS gateway answered {answer.status_code}: {_text(answer.text)}",
                               retryable=True)
        if not 200 <= answer.status_code < 300:
            raise ChannelError(f"SMS gateway refused: {answer.status_code} {_text(answer.text)}")
        reply = _json(answer)
        if self.success and reply.get(self.success["field"]) != self.success["value"]:
            raise ChannelError(f"SMS gateway refused: {_text(answer.text)}")
        if self.message_id_field and reply.get(self.message_id_field) is not None:
            return str(reply[self.message_id_field])
        return None


def _text(value: object, limit: int = 200) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return " ".join(str(value).split())[:limit]


def _json(answer: requests.Response) -> dict:
    try:
        reply = answer.json()
    except (ValueError, json.JSONDecodeError):
        return {}
    return reply if isinstance(reply, dict) else {}


def _template_names(value: object) -> set[str]:
    if isinstance(value, str):
        return {name for _, name, _, _ in string.Formatter().parse(value) if name}
    if isinstance(value, dict):
        return set().union(*(_template_names(item) for item in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_template_names(item) for item in value)) if value else set()
    return set()


def _fill(value: Any, values: Mapping[str, Any]) -> Any:
    """The JSON body template with the message filled in."""
    if isinstance(value, str):
        whole = value.strip()
        if whole.startswith("{") and whole.endswith("}") and whole[1:-1] in values:
            return values[whole[1:-1]]     # "{segments}" stays a number
        return value.format_map(values)
    if isinstance(value, dict):
        return {key: _fill(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, values) for item in value]
    return value


@cache
def installed_channels() -> dict[str, EntryPoint]:
    """Channel name -> entry point, for every installed plug-in (scanned once)."""
    return {entry.name: entry for entry in entry_points(group=GROUP)}


def load_channels(names: Iterable[str], settings: Mapping[str, Any] | None = None,
                  ) -> dict[str, Channel]:
    """The named channels, in the order given, as {name: instance}.

    ``settings``: {channel name: its settings}. Raises ``UnknownChannel`` naming
    what is missing and what is installed, ``ChannelConfigError`` for a plug-in
    that cannot be loaded or refuses its settings.
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
        try:
            channel_class = installed[name].load()
        except Exception as exc:
            raise ChannelConfigError(
                f"channel plug-in {name!r} cannot be loaded: {type(exc).__name__}: {exc}") from exc
        if not (isinstance(channel_class, type) and issubclass(channel_class, Channel)):
            raise UnknownChannel(f"channel plug-in {name!r} is not a {Channel.__qualname__}")
        try:
            channels[name] = channel_class((settings or {}).get(name))
        except ChannelConfigError:
            raise
        except Exception as exc:
            raise ChannelConfigError(
                f"channel plug-in {name!r} refused its settings: {type(exc).__name__}: {exc}"
            ) from exc
    return channels
