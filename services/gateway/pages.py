"""Server-rendered pages: Jinja2 templates, the wording in the reader's language, and
the headers every page carries.

* Chinese by default; English when the browser prefers it (``Accept-Language``). The
  words of each page are in ``messages/<page>.<locale>.yaml``, one key each, so a template
  holds no language of its own.
* Every page: ``Content-Security-Policy`` allowing only this site's own files (no inline
  script or style, no third-party assets), ``Referrer-Policy: no-referrer`` (a link's
  token must not leak in a Referer header), no caching, no framing.
* Forms: each carries a nonce bound to the link's token and the hour it was made
  (``form_nonce``); a POST without a fresh one is refused — that is the CSRF guard of
  pages that have no login.
"""
import functools
import hashlib
import hmac
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from werkzeug.datastructures import LanguageAccept
from werkzeug.wrappers import Request, Response

HERE = Path(__file__).resolve().parent
LOCALES = ("zh", "en")
DEFAULT_LOCALE = "zh"
NONCE_HOURS = 12   # how long a page may stay open before its form must be reloaded

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml",
                ".png": "image/png"}

_environment = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


@functools.cache
def catalogue(locale: str) -> dict:
    """Every page's words in ``locale``: ``messages/<page>.<locale>.yaml`` together."""
    words: dict = {}
    for path in sorted((HERE / "messages").glob(f"*.{locale}.yaml")):
        with path.open(encoding="utf-8") as handle:
            words.update(yaml.safe_load(handle) or {})
    return words


def locale_of(request: Request) -> str:
    accepted: LanguageAccept = request.accept_languages
    return accepted.best_match(LOCALES, default=DEFAULT_LOCALE) or DEFAULT_LOCALE


def render(template: str, locale: str, status: int = 200, **context) -> Response:
    words = catalogue(locale)

    def t(key: str, **params) -> str:
        text = words[key]
        return text.format(**params) if params else text

    html = _environment.get_template(template).render(t=t, locale=locale, **context)
    return Response(html, status=status, mimetype="text/html", headers=SECURITY_HEADERS)


def static_file(name: str) -> Response | None:
    """A file of ``static/`` or a folder of it (``vendor/echarts/echarts.min.js``, unpacked
    by ``make assets``); nothing outside it, nothing of another type."""
    folder = HERE / "static"
    path = (folder / name).resolve()
    if (not path.is_relative_to(folder) or not path.is_file()
            or path.suffix not in STATIC_TYPES):
        return None
    return Response(path.read_bytes(), mimetype=STATIC_TYPES[path.suffix], headers={
        "Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})


def form_nonce(secret: str, token: str, now: datetime) -> str:
    """The nonce a page's form carries: bound to its link's token and the hour."""
    hour = int(now.timestamp() // 3600)
    return _nonce(secret, token, hour)


def nonce_is_fresh(secret: str, token: str, offered: str | None, now: datetime) -> bool:
    if not offered:
        return False
    hour = int(now.timestamp() // 3600)
    return any(hmac.compare_digest(_nonce(secret, token, hour - age), offered)
               for age in range(NONCE_HOURS))


def _nonce(secret: str, token: str, hour: int) -> str:
    return hmac.new(secret.encode(), f"form:{token}:{hour}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def short(token: str) -> str:
    """A token as logs may show it: enough to find it, too little to use it."""
    return token[:6] + "…" if isinstance(token, str) else "?"


# Pages show times in this zone (an estate's own zone waits for estates as records).
DISPLAY_ZONE = "Asia/Shanghai"


def local_time(moment: str | None, zone: str = DISPLAY_ZONE) -> str:
    """An ISO time as an owner reads it: local date and minute."""
    if not moment:
        return ""
    return datetime.fromisoformat(moment).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


_environment.filters["local_time"] = local_time


def percent(value: float | None) -> str:
    """A rate (0.8571) as printed: 85.71%; no rate (nothing to count) as —."""
    return "—" if value is None else f"{value * 100:.2f}%"


_environment.filters["percent"] = percent
