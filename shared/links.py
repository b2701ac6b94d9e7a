"""Links in messages to owners: a page of the gateway and the token that opens it,
``<PUBLIC_BASE_URL>/<page>/<token>`` (``/r/`` a revisit, ``/s/`` a survey, …).

The token alone lets its holder act (answer a revisit, a survey), so it is unguessable:
``secrets.token_urlsafe(16)``, 128 random bits. The base is the gateway's public address;
a placeholder (example.com) or this machine's own address makes every link sent dead, so a
service that starts with one outside development says so loudly (``warn_if_unreachable``).

>>> token = new_token()
>>> len(token)                     # 128 random bits
22
>>> base = public_base_url({"PUBLIC_BASE_URL": "https://wy.huifang.cn/"})
>>> owner_link(base, "r", "Zq3xY8pL0aBcDeFgHiJkLm")          # a revisit's page
'https://wy.huifang.cn/r/Zq3xY8pL0aBcDeFgHiJkLm'
>>> hide_tokens("回访请点 https://wy.huifang.cn/r/Zq3xY8pL0aBcDeFgHiJkLm")   # for staff
'回访请点 https://wy.huifang.cn/r/Zq3x…'
>>> warn_if_unreachable("PUBLIC_BASE_URL", base, "production")
False
>>> warn_if_unreachable("PUBLIC_BASE_URL", "http://127.0.0.1:8000", "development")
False
"""
import ipaddress
import logging
import re
import secrets
from urllib.parse import urlsplit

from shared.masking import MaybeText

log = logging.getLogger(__name__)

# `make run` and the tests: the gateway on this machine.
DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"
DEVELOPMENT = "development"
# RFC 2606: reserved for examples, never anyone's site.
PLACEHOLDER_DOMAINS = ("example.com", "example.net", "example.org")


def new_token() -> str:
    """Unguessable (128 random bits, 22 characters): the token alone opens its page."""
    return secrets.token_urlsafe(16)


def public_base_url(config: dict) -> str:
    """The gateway's address as owners reach it (config ``PUBLIC_BASE_URL``)."""
    return (config.get("PUBLIC_BASE_URL") or DEFAULT_PUBLIC_BASE_URL).rstrip("/")


def owner_link(base_url: str, page: str, token: str) -> str:
    """``<base>/<page>/<token>``: the link an owner opens."""
    return f"{base_url.rstrip('/')}/{page}/{token}"


# A link to an owner page in a message: its token is the owner's credential.
_OWNER_LINK = re.compile(r"(/[csr]/)([A-Za-z0-9_-]{4})[A-Za-z0-9_-]+")


def hide_tokens(text: MaybeText) -> MaybeText:
    """``text`` with every owner link's token cut to its first characters: staff reading
    the delivery log must not be able to answer in an owner's name."""
    return _OWNER_LINK.sub(r"\1\2…", text) if isinstance(text, str) else text


def warn_if_unreachable(name: str, url: str, environment: str | None) -> bool:
    """Warn loudly when ``url`` (config ``name``), which goes into owners' messages, is a
    placeholder or this machine while not in development; True if it warned."""
    if (environment or "") == DEVELOPMENT or not _unreachable(url):
        return False
    log.warning("!!! %s is %s: owners cannot open the links sent to them. Set %s to the "
                "gateway's public address (HUIFANG_ENV=%s accepts it).",
                name, url, name, DEVELOPMENT)
    return True


def _unreachable(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if not host or host == "localhost" or any(
            host == domain or host.endswith("." + domain) for domain in PLACEHOLDER_DOMAINS):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
