"""A channel shipped as its own distribution is picked up through its entry point,
with no change to any core file."""
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from nameko.testing.services import worker_factory

from services.notify import channels as channels_module
from services.notify.repository import NotifyRepository
from services.notify.service import NotifyService
from services.notify.settings import NotifySettings, SettingsError
from shared.clock import FrozenClock
from shared.envelope import new_event, parse_event
from tests.helpers import embedded, intake_with_contact

NOW = datetime(2026, 10, 9, 2, 30, tzinfo=UTC)


@pytest.fixture
def fax_distribution(tmp_path):
    """``huifang-fax`` 1.0 installed on sys.path: its module and its dist-info, as pip leaves them."""
    site = tmp_path / "site-packages"
    (site / "huifang_fax").mkdir(parents=True)
    (site / "huifang_fax" / "__init__.py").write_text(textwrap.dedent('''
        from services.notify.channels import Channel

        SENT = []

        class FaxChannel(Channel):
            """Faxes the estate office's number (a plug-in from another team)."""
            kind = "fax"
            address_field = "fax"

            def send(self, address, message):
                SENT.append((self.settings["station"], address, message.text))
                return "fax-1"
    '''), encoding="utf-8")
    dist_info = site / "huifang_fax-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: huifang-fax\nVersion: 1.0\n", encoding="utf-8")
    (dist_info / "entry_points.txt").write_text(
        "[huifang.channels]\nfax = huifang_fax:FaxChannel\n", encoding="utf-8")
    sys.path.insert(0, str(site))
    channels_module.installed_channels.cache_clear()
    yield site
    sys.path.remove(str(site))
    sys.modules.pop("huifang_fax", None)
    channels_module.installed_channels.cache_clear()


def test_an_uninstalled_channel_stops_the_start():
    with pytest.raises(SettingsError, match="fax"):
        NotifySettings({"NOTIFY_CHANNELS": ["fax"]})


def test_a_channel_installed_as_its_own_distribution_is_found_and_delivers(fax_distribution):
    assert "fax" in channels_module.installed_channels()
    settings = NotifySettings({"NOTIFY_CHANNELS": ["fax", "console"],
                               "NOTIFY_CHANNEL_SETTINGS": {"fax": {"station": "HQ-1"}}})
    intake = intake_with_contact({
        "household_id": "h-1", "estate_id": "e-1", "name": "张三", "phone": "13812345678",
        "fax": "010-62345678", "preferred_channel": "sms"})
    service = worker_factory(NotifyService, store=embedded(NotifyRepository),
                             clock=FrozenClock(NOW), intake=intake, settings=settings)
    service.acknowledge_complaint([parse_event(new_event("complaint_registered", "intake", "e-1", {
        "complaint_id": "cmp-1", "household_id": "h-1", "category": "cleaning",
        "severity": "normal", "channel": "hotline", "received_at": NOW,
        "first_response_due": NOW + timedelta(days=1), "reply_due": NOW + timedelta(days=3),
    }, NOW))])

    [delivery] = service.list_deliveries()
    assert delivery["status"] == "sent" and delivery["channel"] == "fax"
    assert delivery["attempts"][0]["reference"] == "fax-1"
    from huifang_fax import SENT
    assert SENT == [("HQ-1", "010-62345678", delivery["text"])]
