"""notify's settings: config.yaml's NOTIFY_* keys, each estate's own over the group's.

Read and checked once, when the service starts: an unknown channel, a
plug-in that refuses its settings, a template its event cannot fill or a
malformed staff directory stops the start with a message that names it,
rather than failing message by message later.
"""
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from services.notify import event_params, message_templates
from services.notify.catalogue import Catalogue, load_catalogue, with_overrides
from services.notify.channels import Channel, load_channels
from services.notify.pacing import TokenBucket
from shared.errors import InvalidInput
from shared.estates import EstateCopies, copies_for, group_zone
from shared.links import owner_link, public_base_url, warn_if_unreachable
from shared.schemas import notify as schemas
from shared.schemas.base import load

DEFAULTS: dict[str, Any] = {
    # 「回访可以通过电话、邮件、短信、在线调查等方式进行」: the channels (plug-ins) tried in
    # turn, each owner's preference first
    "channels": ["console"],
    # The language of messages where the owner chose none
    "locale": "zh",
    # Who signs every message, per language
    "signature": {"zh": "物业服务中心", "en": "Property Service Centre"},
    # 「采取上门回访的应提前与业主进行预约,获得同意后方可上门,并不能影响业主的正常生活」
    # local hours no message reaches an owner (it waits till they end)
    "quiet_hours": "22:00-08:00",
    # At most this many messages a day to one owner, per template (none: no limit)
    "daily_limits": {},
    # An owner is reminded of a booked on-site visit this many hours before it
    "reminder_lead_hours": 24,
    # The staff directory: who holds which role and department in which estates
    "staff": [],
    # Each channel's own settings (the SMS gateway's address, rate_per_second …)
    "channel_settings": {},
    # A failed send is tried again after these waits, then given up as failed
    "retry_delays_s": [30, 120, 600],
    # A dispatcher holds the deliveries it took this long before another may take them
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
    estate_id: str | None    # None: the group's
    channels: tuple          # names, in the order tried
    locale: str
    signature: dict          # {locale or "*": name}
    quiet_hours: str | None  # "22:00-08:00", None: none
    zone: str
    daily_limits: dict       # channel name -> messages per recipient and local day
    staff: tuple             # the staff directory
    context: event_params.Context
    retry_delays: tuple      # seconds
    claim: timedelta         # how long a worker holds a delivery it is sending

    def signature_for(self, locale: str) -> str:
        return self.signature.get(locale) or self.signature.get("*") \
            or DEFAULTS["signature"].get(locale) or DEFAULTS["signature"]["zh"]


class NotifySettings:
    """Channels, templates and per-estate settings, built from the nameko config."""

    def __init__(self, config: dict[str, Any]) -> None:
        raw = {field: config[key] for key, field in CONFIG_KEYS.items()
               if config.get(key) not in (None, "")}
        if "quiet_hours" not in raw and "NOTIFY_QUIET_HOURS" in config:
            raw["quiet_hours"] = None   # set empty: no quiet hours
        try:
            self.group = dict(DEFAULTS, **load(schemas.NotifySettings(), raw))
        except InvalidInput as exc:
            raise SettingsError(f"NOTIFY settings: {exc}") from None
        self.estates = self.group.pop("estates", {})
        # an estate's own zone is its record's (``ZonedSettings``); this is the group's
        self.group_zone = group_zone(config)
        # the gateway's owner pages, which owners' messages link to (PUBLIC_BASE_URL)
        self.public_base_url = public_base_url(config)
        # the survey page is one of them, unless NOTIFY_SURVEY_BASE_URL names another site
        self.group.setdefault("survey_base_url", owner_link(self.public_base_url, "s", ""))
        try:
            base = load_catalogue()
            self.catalogues: dict[str | None, Catalogue] = {None: base}
            for estate_id, own in self.estates.items():
                if own.get("template_dir") or own.get("templates"):
                    self.catalogues[estate_id] = with_overrides(
                        base, estate_id, own.get("template_dir"), own.get("templates"))
            # One instance per channel on the group's settings; estates with
            # settings of their own (their own SMS account) get their own instances.
            shared = list(self.group["channels"])
            self._channels: dict[str | None, dict[str, Channel]] = {}
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
        self._estate_cache: dict[str | None, EstateSettings] = {}
        for estate_id in [None, *self.estates]:
            self._check_estate(self.estate(estate_id))

    # per estate ------------------------------------------------------------------

    def estate(self, estate_id: str | None) -> EstateSettings:
        if estate_id not in self._estate_cache:
            merged = self._merged(estate_id if estate_id in self.estates else None)
            zone = self.group_zone
            self._estate_cache[estate_id] = EstateSettings(
                estate_id=estate_id, channels=tuple(merged["channels"]), locale=merged["locale"],
                signature=dict(merged["signature"]), quiet_hours=merged["quiet_hours"], zone=zone,
                daily_limits=dict(merged["daily_limits"]), staff=tuple(merged["staff"]),
                context=event_params.Context(
                    zone=zone, survey_base_url=merged["survey_base_url"],
                    reminder_lead=timedelta(hours=merged["reminder_lead_hours"]),
                    public_base_url=self.public_base_url,
                    estate_name=estate_id or event_params.NOT_AVAILABLE),
                retry_delays=tuple(self.group["retry_delays_s"]),
                claim=timedelta(seconds=self.group["claim_seconds"]),
            )
        return self._estate_cache[estate_id]

    def channel(self, estate_id: str | None, name: str) -> Channel:
        own = self._channels.get(estate_id) if estate_id in self.estates else None
        return (own or self._channels[None])[name]

    def channels(self, estate_id: str | None) -> dict[str, Channel]:
        """{name: channel} an estate uses, in its order."""
        return {name: self.channel(estate_id, name) for name in self.estate(estate_id).channels}

    def pace(self, estate_id: str | None, name: str) -> float:
        """Seconds to wait before one more message on the channel (0: at once): its
        provider's rate, shared by every estate that uses the same account."""
        bucket = self._buckets.get(id(self.channel(estate_id, name)))
        return bucket.reserve() if bucket else 0.0

    def all_channel_names(self) -> list[str]:
        return sorted({name for channels in self._channels.values() for name in channels})

    def templates(self, estate_id: str | None, locale: str) -> dict[str, message_templates.Template]:
        catalogue = self.catalogues.get(estate_id) or self.catalogues[None]
        return catalogue.get(locale) or catalogue[self.estate(estate_id).locale]

    def locales(self) -> list[str]:
        return sorted(self.catalogues[None])

    def find_staff(self, staff_id: str, estate_id: str | None = None,
                   ) -> tuple[str | None, dict | None]:
        """A staff member by id: in ``estate_id``'s directory, or in any if none is given."""
        estates = [estate_id] if estate_id else [None, *self.estates]
        for candidate in estates:
            for member in self.estate(candidate).staff:
                if member["id"] == staff_id:
                    return candidate or estate_id, member
        return None, None

    # helpers -----------------------------------------------------------------------

    def _merged(self, estate_id: str | None) -> dict[str, Any]:
        own = self.estates.get(estate_id) or {}
        merged = dict(self.group, **{k: v for k, v in own.items()
                                     if k not in ("channel_settings", "template_dir", "templates")})
        merged["channel_settings"] = {
            name: dict(self.group["channel_settings"].get(name) or {}, **settings)
            for name, settings in {**self.group["channel_settings"],
                                   **(own.get("channel_settings") or {})}.items()}
        return merged

    def _rate_limits(self) -> dict[int, TokenBucket]:
        """{id of a channel instance: its TokenBucket}, for the channels whose settings
        name a rate; one per instance, as each instance is one provider account."""
        buckets: dict[int, TokenBucket] = {}
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

    def _dispatch_batch(self) -> int:
        """Deliveries one claim takes: fewer when a slow channel could not send them all
        within half the claim (they would be taken again by another worker)."""
        rates = [bucket.rate for bucket in self._buckets.values()]
        if not rates:
            return DISPATCH_BATCH
        within = int(min(rates) * self.group["claim_seconds"] / 2)
        return max(1, min(DISPATCH_BATCH, within))

    @staticmethod
    def _load_channels(merged: Mapping[str, Any]) -> dict[str, Channel]:
        return load_channels(merged["channels"], merged["channel_settings"])

    def _check_estate(self, estate: EstateSettings) -> None:
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


class ZonedSettings:
    """One worker's settings: each estate's in the time zone and under the name of its
    record, from notify's copy of intake's estates (shared/estates.py; never asking intake:
    the dispatcher and event handlers go on while it is away); the group's zone and the
    estate's id until the copy has it."""

    def __init__(self, settings: NotifySettings, estates: EstateCopies) -> None:
        self.settings, self.estates = settings, estates

    def estate(self, estate_id: str | None) -> EstateSettings:
        own = self.settings.estate(estate_id)
        copy = self.estates.get(estate_id) if estate_id else None
        if copy is None or (copy["timezone"], copy["name"]) == (own.zone, own.context.estate_name):
            return own
        zone = copy["timezone"]
        return replace(own, zone=zone,
                       context=replace(own.context, zone=zone, estate_name=copy["name"]))

    def __getattr__(self, name: str) -> Any:   # everything else: the settings'
        return getattr(self.settings, name)


def notify_settings(config: dict) -> NotifySettings:
    """The settings, built once when the service starts (``shared.policies``)."""
    settings = NotifySettings(config)
    # a placeholder base outside development: every link sent to owners would be dead
    for name, url in (("PUBLIC_BASE_URL", settings.public_base_url),
                      ("NOTIFY_SURVEY_BASE_URL", settings.group["survey_base_url"])):
        warn_if_unreachable(name, url, config.get("HUIFANG_ENV"))
    return settings


def zoned_by_estate_copies(settings: NotifySettings, container: Any,
                           worker_ctx: Any) -> ZonedSettings:
    """A worker's view: each estate's settings in the zone of notify's estate copy."""
    return ZonedSettings(settings, copies_for(container, worker_ctx, intake=None))
