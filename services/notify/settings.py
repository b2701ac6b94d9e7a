"""notify's settings: config.yaml's NOTIFY_* keys, each estate's own over the group's.

Read and checked once, when the service starts: an unknown channel, a
plug-in that refuses its settings, a template its event cannot fill or a
malformed staff directory stops the start with a message that names it,
rather than failing message by message later.
"""
from dataclasses import dataclass
from datetime import timedelta

from nameko.extensions import DependencyProvider

from services.notify import domain
from services.notify.catalogue import load_catalogue, with_overrides
from services.notify.channels import load_channels
from services.notify.pacing import TokenBucket
from shared.errors import InvalidInput
from shared.links import owner_link, public_base_url, warn_if_unreachable
from shared.schemas import notify as schemas
from shared.schemas.base import load

DEFAULTS = {
    "channels": ["console"],
    "locale": "zh",
    "signature": {"zh": "物业服务中心", "en": "Property Service Centre"},
    # 「采取上门回访的应提前与业主进行预约,获得同意后方可上门,并不能影响业主的正常生活」
    "quiet_hours": "22:00-08:00",
    "daily_limits": {},
    "reminder_lead_hours": 24,
    "staff": [],
    "channel_settings": {},
    "retry_delays_s": [30, 120, 600],
    "claim_seconds": 120,
}
# config.yaml key -> settings field
CONFIG_KEYS = {
    "NOTIFY_CHANNELS": "channels",
    "NOTIFY_LOCALE": "locale",
    "NOTIFY_SIGNATURE": "signature",
    "NOTIFY_QUIET_HOURS": "quiet_hours",
    "NOTIFY_DAILY_LIMITS": "daily_limits",
    "NOTIFY_SURVEY_BASE_URL": "survey_base_url",
    "NOTIFY_REMINDER_LEAD_HOURS": "reminder_lead_hours",
    "NOTIFY_STAFF": "staff",
    "NOTIFY_CHANNEL_SETTINGS": "channel_settings",
    "NOTIFY_RETRY_DELAYS_S": "retry_delays_s",
    "NOTIFY_CLAIM_SECONDS": "claim_seconds",
    "NOTIFY_ESTATES": "estates",
}
DEFAULT_TIMEZONE = "Asia/Shanghai"
# The key of a channel's NOTIFY_CHANNEL_SETTINGS the dispatcher reads, not the plug-in:
# the provider's limit, messages a second (none: unlimited).
RATE_KEY = "rate_per_second"
DISPATCH_BATCH = 500   # deliveries the dispatcher claims (and looks up contacts for) at once


class SettingsError(ValueError):
    """The NOTIFY_* configuration cannot be used; the message names what is wrong."""


@dataclass(frozen=True)
class EstateSettings:
    estate_id: str
    channels: tuple          # names, in the order tried
    locale: str
    signature: dict          # {locale or "*": name}
    quiet_hours: str | None  # "22:00-08:00", None: none
    zone: str
    daily_limits: dict       # channel name -> messages per recipient and local day
    staff: tuple             # the staff directory
    context: domain.Context
    retry_delays: tuple      # seconds
    claim: timedelta         # how long a worker holds a delivery it is sending

    def signature_for(self, locale):
        return self.signature.get(locale) or self.signature.get("*") \
            or DEFAULTS["signature"].get(locale) or DEFAULTS["signature"]["zh"]


class NotifySettings:
    """Channels, templates and per-estate settings, built from the nameko config."""

    def __init__(self, config):
        raw = {field: config[key] for key, field in CONFIG_KEYS.items()
               if config.get(key) not in (None, "")}
        if "quiet_hours" not in raw and "NOTIFY_QUIET_HOURS" in config:
            raw["quiet_hours"] = None   # set empty: no quiet hours
        try:
            self.group = dict(DEFAULTS, **load(schemas.NotifySettings(), raw))
        except InvalidInput as exc:
            raise SettingsError(f"NOTIFY settings: {exc}") from None
        self.estates = self.group.pop("estates", {})
        self._zones = _zones(config)
        # the gateway's owner pages, which owners' messages link to (PUBLIC_BASE_URL)
        self.public_base_url = public_base_url(config)
        # the survey page is one of them, unless NOTIFY_SURVEY_BASE_URL names another site
        self.group.setdefault("survey_base_url", owner_link(self.public_base_url, "s", ""))
        try:
            base = load_catalogue()
            self.catalogues = {None: base}
            for estate_id, own in self.estates.items():
                if own.get("template_dir") or own.get("templates"):
                    self.catalogues[estate_id] = with_overrides(
                        base, estate_id, own.get("template_dir"), own.get("templates"))
            # One instance per channel on the group's settings; estates with
            # settings of their own (their own SMS account) get their own instances.
            shared = list(self.group["channels"])
            self._channels = {}
            for estate_id, own in self.estates.items():
                merged = self._merged(estate_id)
                if own.get("channel_settings"):
                    self._channels[estate_id] = load_channels(
                        merged["channels"], merged["channel_settings"])
                else:
                    shared += merged["channels"]
            self._channels[None] = load_channels(shared, self.group["channel_settings"])
            self._buckets = self._rate_limits()
        except (LookupError, ValueError) as exc:
            raise SettingsError(str(exc)) from None
        self.dispatch_batch = self._dispatch_batch()
        self._estate_cache = {}
        for estate_id in [None, *self.estates]:
            self._check_estate(self.estate(estate_id))

    # per estate ------------------------------------------------------------------

    def estate(self, estate_id):
        if estate_id not in self._estate_cache:
            merged = self._merged(estate_id if estate_id in self.estates else None)
            zone = self._zones.get(estate_id) or self._zones[None]
            self._estate_cache[estate_id] = EstateSettings(
                estate_id=estate_id, channels=tuple(merged["channels"]), locale=merged["locale"],
                signature=dict(merged["signature"]), quiet_hours=merged["quiet_hours"], zone=zone,
                daily_limits=dict(merged["daily_limits"]), staff=tuple(merged["staff"]),
                context=domain.Context(
                    zone=zone, survey_base_url=merged["survey_base_url"],
                    reminder_lead=timedelta(hours=merged["reminder_lead_hours"]),
                    public_base_url=self.public_base_url),
                retry_delays=tuple(self.group["retry_delays_s"]),
                claim=timedelta(seconds=self.group["claim_seconds"]),
            )
        return self._estate_cache[estate_id]

    def channel(self, estate_id, name):
        own = self._channels.get(estate_id) if estate_id in self.estates else None
        return (own or self._channels[None])[name]

    def channels(self, estate_id):
        """{name: channel} an estate uses, in its order."""
        return {name: self.channel(estate_id, name) for name in self.estate(estate_id).channels}

    def pace(self, estate_id, name):
        """Seconds to wait before one more message on the channel (0: at once): its
        provider's rate, shared by every estate that uses the same account."""
        bucket = self._buckets.get(id(self.channel(estate_id, name)))
        return bucket.reserve() if bucket else 0.0

    def all_channel_names(self):
        return sorted({name for channels in self._channels.values() for name in channels})

    def templates(self, estate_id, locale):
        catalogue = self.catalogues.get(estate_id) or self.catalogues[None]
        return catalogue.get(locale) or catalogue[self.estate(estate_id).locale]

    def locales(self):
        return sorted(self.catalogues[None])

    def find_staff(self, staff_id, estate_id=None):
        """A staff member by id: in ``estate_id``'s directory, or in any if none is given."""
        estates = [estate_id] if estate_id else [None, *self.estates]
        for candidate in estates:
            for member in self.estate(candidate).staff:
                if member["id"] == staff_id:
                    return candidate or estate_id, member
        return None, None

    # helpers -----------------------------------------------------------------------

    def _merged(self, estate_id):
        own = self.estates.get(estate_id) or {}
        merged = dict(self.group, **{k: v for k, v in own.items()
                                     if k not in ("channel_settings", "template_dir", "templates")})
        merged["channel_settings"] = {
            name: dict(self.group["channel_settings"].get(name) or {}, **settings)
            for name, settings in {**self.group["channel_settings"],
                                   **(own.get("channel_settings") or {})}.items()}
        return merged

    def _rate_limits(self):
        """{id of a channel instance: its TokenBucket}, for the channels whose settings
        name a rate; one per instance, as each instance is one provider account."""
        buckets = {}
        for estate_id, channels in self._channels.items():
            settings = self._merged(estate_id)["channel_settings"] if estate_id \
                else self.group["channel_settings"]
            for name, channel in channels.items():
                rate = (settings.get(name) or {}).get(RATE_KEY)
                if rate is None:
                    continue
                if isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0:
                    raise ValueError(f"channel {name}: {RATE_KEY} must be a positive number")
                buckets[id(channel)] = TokenBucket(rate)
        return buckets

    def _dispatch_batch(self):
        """Deliveries one claim takes: fewer when a slow channel could not send them all
        within half the claim (they would be taken again by another worker)."""
        rates = [bucket.rate for bucket in self._buckets.values()]
        if not rates:
            return DISPATCH_BATCH
        within = int(min(rates) * self.group["claim_seconds"] / 2)
        return max(1, min(DISPATCH_BATCH, within))

    @staticmethod
    def _load_channels(merged):
        return load_channels(merged["channels"], merged["channel_settings"])

    def _check_estate(self, estate):
        where = f"estate {estate.estate_id}" if estate.estate_id else "NOTIFY"
        if estate.locale not in self.catalogues[None]:
            raise SettingsError(f"{where}: no templates for locale {estate.locale!r}")
        for name in estate.daily_limits:
            if name not in self.all_channel_names():
                raise SettingsError(f"{where}: daily_limits names channel {name!r}, not in use")
        for member in estate.staff:
            unknown = [name for name in member["channels"] if name not in estate.channels]
            if unknown:
                raise SettingsError(f"{where}: staff {member['id']} prefers unknown channel(s) "
                                    f"{', '.join(unknown)}")


def _zones(config):
    """Each estate's time zone, as intake's complaint policy sets it."""
    group = (config.get("COMPLAINT_POLICY") or {}).get("timezone") or DEFAULT_TIMEZONE
    zones = {None: group}
    for estate_id, policy in (config.get("ESTATE_POLICIES") or {}).items():
        if (policy or {}).get("timezone"):
            zones[estate_id] = policy["timezone"]
    return zones


class Settings(DependencyProvider):
    """Gives workers the settings, built once when the service starts."""

    def setup(self):
        config = self.container.config
        self.settings = NotifySettings(config)
        # a placeholder base outside development: every link sent to owners would be dead
        for name, url in (("PUBLIC_BASE_URL", self.settings.public_base_url),
                          ("NOTIFY_SURVEY_BASE_URL", self.settings.group["survey_base_url"])):
            warn_if_unreachable(name, url, config.get("HUIFANG_ENV"))

    def get_dependency(self, worker_ctx):
        return self.settings
