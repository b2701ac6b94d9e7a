import logging
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint
from unittest.mock import Mock

import pytest
from nameko.exceptions import RemoteError
from nameko.testing.services import worker_factory

from services.notify import channels as channels_module
from services.notify.channels import Channel, ChannelError, UnknownChannel
from services.notify.repository import NotifyRepository
from services.notify.service import NotifyService
from shared.clock import FrozenClock
from shared.envelope import new_event, parse_event
from shared.errors import InvalidInput
from tests.helpers import embedded

NOW = datetime(2026, 10, 9, 2, 30, tzinfo=UTC)   # 10:30 in Shanghai
PHONE = "13812345678"
CONTACT = {"household_id": "h-1", "estate_id": "e-1", "name": "张三", "phone": PHONE,
           "email": "zhang.san@example.com", "preferred_channel": "sms"}


class BrokenChannel(Channel):
    """A gateway that refuses everything (and, carelessly, quotes the number)."""

    def send(self, address, message):
        raise ChannelError(f"gateway refused {address}")


@pytest.fixture
def repository():
    return embedded(NotifyRepository)


@pytest.fixture
def intake():
    return Mock(**{"get_contact.return_value": dict(CONTACT)})


@pytest.fixture
def make_service(repository, intake):
    def make(**config):
        return worker_factory(NotifyService, store=repository, clock=FrozenClock(NOW),
                              intake=intake, config={"NOTIFY_CHANNELS": ["console"], **config})
    return make


@pytest.fixture
def service(make_service):
    return make_service()


@pytest.fixture
def broken_installed(monkeypatch):
    """Install a 'broken' plug-in beside console, as pip would through the entry point."""
    installed = dict(channels_module.installed_channels())
    installed["broken"] = EntryPoint(
        name="broken", value=f"{__name__}:BrokenChannel", group=channels_module.GROUP)
    monkeypatch.setattr(channels_module, "installed_channels", lambda: installed)


@pytest.fixture
def console_log(caplog):
    caplog.set_level(logging.INFO)
    return caplog


def complaint_registered(household_id="h-1"):
    return parse_event(new_event("complaint_registered", "intake", "e-1", {
        "complaint_id": "cmp-1", "household_id": household_id, "category": "cleaning",
        "severity": "normal", "channel": "hotline", "received_at": NOW,
        "first_response_due": NOW + timedelta(days=1), "reply_due": NOW + timedelta(days=3),
    }, NOW))


def revisit_scheduled(household_id="h-1"):
    return parse_event(new_event("revisit_scheduled", "revisit", "e-1", {
        "revisit_id": "rv-1", "kind": "complaint", "source_id": "cmp-1",
        "household_id": household_id, "due_at": NOW + timedelta(days=3),
        "assigned_role": "staff", "method": "phone",
    }, NOW))


def outbox_events(repository):
    return [event for delivery in repository.db.deliveries.find() for event in delivery["outbox"]]


def console_messages(caplog):
    return [record.getMessage() for record in caplog.records
            if record.name == "services.notify.channels"]


# events ---------------------------------------------------------------------------

def test_complaint_registered_sends_one_apology_and_logs_the_delivery(
        service, repository, intake, console_log):
    service.acknowledge_complaint(complaint_registered())

    intake.get_contact.assert_called_once_with("cmp-1")
    [delivery] = service.list_deliveries({})
    assert delivery["status"] == "sent" and delivery["channel"] == "console"
    assert delivery["ref"] == "cmp-1" and delivery["recipient"] == "h-1"
    assert delivery["template"] == "complaint_received"
    assert delivery["text"].startswith("【物业服务中心】非常抱歉")
    assert "2026-10-12 10:30" in delivery["text"]           # reply due, Shanghai time
    assert delivery["sent_at"] == NOW.isoformat()
    assert delivery["address"] == "138****5678"
    [message] = console_messages(console_log)
    assert "138****5678" in message and delivery["text"] in message

    [event] = outbox_events(repository)
    assert event["type"] == "notification_sent" and event["estate_id"] == "e-1"
    assert parse_event(event)["data"] == {
        "delivery_id": delivery["id"], "channel": "console", "template": "complaint_received",
        "recipient": "h-1", "ref": "cmp-1"}


def test_no_full_address_in_any_event_or_log_line(service, repository, console_log):
    service.acknowledge_complaint(complaint_registered())
    assert PHONE not in console_log.text and "zhang.san@" not in console_log.text
    assert PHONE not in str(outbox_events(repository))
    assert repository.db.deliveries.find_one()["address"] == PHONE   # the log alone keeps it


def test_the_same_event_twice_sends_one_message(service, repository, intake, console_log):
    event = complaint_registered()
    service.acknowledge_complaint(event)
    service.acknowledge_complaint(event)

    assert repository.db.deliveries.count_documents({}) == 1
    assert len(console_messages(console_log)) == 1
    assert intake.get_contact.call_count == 1
    assert repository.db.deliveries.find_one()["_id"] == f"{event['id']}:complaint_received"


def test_a_delivery_id_is_inserted_once_even_when_two_workers_race(repository, service):
    service.acknowledge_complaint(complaint_registered())
    existing = repository.db.deliveries.find_one()
    assert repository.add_delivery(dict(existing, status="queued")) is None


def test_revisit_scheduled_tells_the_household_when_and_how(service, repository, intake):
    service.announce_revisit(revisit_scheduled())

    intake.get_contact.assert_called_once_with("h-1")
    [delivery] = service.list_deliveries({"ref": "rv-1"})
    assert delivery["template"] == "revisit_scheduled" and delivery["status"] == "sent"
    assert "2026-10-12" in delivery["text"] and "电话" in delivery["text"]
    assert outbox_events(repository)[0]["type"] == "notification_sent"


def test_a_revisit_without_household_is_skipped_quietly(service, repository, intake):
    service.announce_revisit(revisit_scheduled(household_id=None))
    intake.get_contact.assert_not_called()
    assert repository.db.deliveries.count_documents({}) == 0


def test_the_locale_is_configurable(make_service):
    service = make_service(NOTIFY_LOCALE="en")
    service.acknowledge_complaint(complaint_registered())
    text = service.list_deliveries({})[0]["text"]
    assert text.startswith("[Property Service Centre] We are sorry")


def test_an_unknown_contact_is_logged_as_failed_not_retried(service, repository, intake):
    intake.get_contact.side_effect = RemoteError("NotFound", "household or complaint 'cmp-1'")
    service.acknowledge_complaint(complaint_registered())

    [delivery] = service.list_deliveries({"status": "failed"})
    assert "no contact" in delivery["error"] and delivery["recipient"] == "cmp-1"
    [event] = outbox_events(repository)
    assert event["type"] == "notification_failed"


def test_intake_being_down_raises_so_the_event_is_retried(service, repository, intake):
    intake.get_contact.side_effect = RemoteError("ConnectionError", "intake unavailable")
    with pytest.raises(RemoteError):
        service.acknowledge_complaint(complaint_registered())
    assert repository.db.deliveries.count_documents({}) == 0   # a retry starts afresh


@pytest.mark.usefixtures("broken_installed")
def test_a_failing_channel_falls_back_to_the_next_configured_one(make_service):
    service = make_service(NOTIFY_CHANNELS=["broken", "console"])
    service.acknowledge_complaint(complaint_registered())

    [delivery] = service.list_deliveries({})
    assert delivery["status"] == "sent" and delivery["channel"] == "console"
    assert [attempt["channel"] for attempt in delivery["attempts"]] == ["broken", "console"]
    assert delivery["attempts"][0]["error"] == "gateway refused 138****5678"


@pytest.mark.usefixtures("broken_installed")
def test_when_every_channel_fails_the_delivery_fails_with_an_event(make_service, repository):
    service = make_service(NOTIFY_CHANNELS=["broken"])
    service.acknowledge_complaint(complaint_registered())

    [delivery] = service.list_deliveries({"status": "failed"})
    assert delivery["failed_at"] == NOW.isoformat() and PHONE not in delivery["error"]
    [event] = outbox_events(repository)
    data = parse_event(event)["data"]
    assert event["type"] == "notification_failed"
    assert data["recipient"] == "h-1" and data["error"] == "gateway refused 138****5678"


@pytest.mark.usefixtures("broken_installed")
def test_the_household_channel_order_comes_first(make_service, repository):
    service = make_service(NOTIFY_CHANNELS=["broken", "console"])
    service.set_preferences("h-1", {"channels": ["console"]})
    service.acknowledge_complaint(complaint_registered())
    [delivery] = service.list_deliveries({})
    assert [attempt["channel"] for attempt in delivery["attempts"]] == ["console"]


def test_an_opted_out_household_is_logged_as_suppressed_and_not_sent(
        service, repository, console_log):
    service.set_preferences("h-1", {"opt_out": True})
    service.acknowledge_complaint(complaint_registered())

    [delivery] = service.list_deliveries({"status": "suppressed"})
    assert delivery["reason"] == "household opted out"
    assert console_messages(console_log) == [] and outbox_events(repository) == []


def test_an_unknown_configured_channel_is_a_clear_error(make_service, repository):
    service = make_service(NOTIFY_CHANNELS=["console", "pigeon"])
    with pytest.raises(UnknownChannel, match="pigeon"):
        service.acknowledge_complaint(complaint_registered())
    assert repository.db.deliveries.count_documents({}) == 0


# list_deliveries ------------------------------------------------------------------

def test_list_deliveries_filters_by_ref_channel_and_status(service, intake):
    service.acknowledge_complaint(complaint_registered())
    service.announce_revisit(revisit_scheduled())
    intake.get_contact.side_effect = RemoteError("NotFound", "gone")
    service.announce_revisit(revisit_scheduled())                  # another event: fails

    assert len(service.list_deliveries()) == 3
    assert [d["template"] for d in service.list_deliveries({"ref": "cmp-1"})] == [
        "complaint_received"]
    assert len(service.list_deliveries({"ref": "rv-1"})) == 2
    assert len(service.list_deliveries({"ref": "rv-1", "status": "sent"})) == 1
    assert len(service.list_deliveries({"channel": "console", "status": "sent"})) == 2
    assert service.list_deliveries({"channel": "sms"}) == []
    assert service.list_deliveries({"status": "queued"}) == []
    assert all(PHONE not in str(delivery) for delivery in service.list_deliveries())


@pytest.mark.parametrize("filters, field", [
    ({"status": "lost"}, "status"),
    ({"ref": {"$ne": None}}, "ref.$ne"),
    ({"colour": "red"}, "colour"),
])
def test_list_deliveries_refuses_bad_filters(service, filters, field):
    with pytest.raises(InvalidInput) as error:
        service.list_deliveries(filters)
    assert field in error.value.errors


# send -------------------------------------------------------------------------------

SEND = {"channel": "console", "to": "h-1", "template": "complaint_received",
        "params": {"complaint_id": "cmp-9", "reply_due": "2026-10-12 10:30"}, "ref": "cmp-9"}


def test_send_renders_and_delivers_to_a_household(service, repository, intake, console_log):
    delivery = service.send(SEND)

    intake.get_contact.assert_called_once_with("h-1")
    assert delivery["status"] == "sent" and delivery["recipient"] == "h-1"
    assert "cmp-9" in delivery["text"] and "2026-10-12 10:30" in delivery["text"]
    assert delivery["address"] == "138****5678"
    assert service.list_deliveries({"ref": "cmp-9"}) == [delivery]
    [event] = outbox_events(repository)
    assert event["type"] == "notification_sent" and event["estate_id"] == "e-1"
    assert len(console_messages(console_log)) == 1


def test_send_to_an_address_needs_an_estate_and_never_names_the_address(service, repository):
    to_address = dict(SEND, to="zhang.san@example.com", ref=None)
    with pytest.raises(InvalidInput) as error:
        service.send(to_address)
    assert list(error.value.errors) == ["estate_id"]

    delivery = service.send(dict(to_address, estate_id="e-1"))
    assert delivery["recipient"] == "z***@example.com"
    assert "zhang.san@" not in str(outbox_events(repository))


@pytest.mark.parametrize("change, field", [
    ({"template": "birthday_wishes"}, "template"),
    ({"channel": "pigeon"}, "channel"),
    ({"params": {"complaint_id": "cmp-9"}}, "params"),              # reply_due missing
    ({"params": {"complaint_id": "cmp-9", "reply_due": " "}}, "params"),
    ({"params": {"complaint_id": {"$gt": ""}, "reply_due": "x"}}, "params.complaint_id.$gt"),
    ({"to": "not an id!"}, "to"),
    ({"to": "zhang@"}, "to"),
    ({"priority": "high"}, "priority"),
])
def test_send_refuses_bad_input_naming_the_field_and_writes_nothing(
        service, repository, intake, change, field):
    with pytest.raises(InvalidInput) as error:
        service.send(dict(SEND, **change))
    assert field in error.value.errors
    assert repository.db.deliveries.count_documents({}) == 0
    intake.get_contact.assert_not_called()


def test_send_names_the_missing_parameter(service):
    with pytest.raises(InvalidInput) as error:
        service.send(dict(SEND, params={"complaint_id": "cmp-9"}))
    assert error.value.errors == {
        "params": {"reply_due": ["required by template complaint_received"]}}


def test_send_to_an_unknown_household_writes_nothing(service, repository, intake):
    intake.get_contact.side_effect = RemoteError("NotFound", "household or complaint 'h-404'")
    with pytest.raises(InvalidInput) as error:
        service.send(dict(SEND, to="h-404"))
    assert "to" in error.value.errors
    assert repository.db.deliveries.count_documents({}) == 0


# preferences ------------------------------------------------------------------------

def test_set_preferences_stores_and_returns_them(service, repository):
    result = service.set_preferences(
        "h-1", {"channels": ["console"], "quiet_hours": "22:00–08:00", "opt_out": False})
    assert result == {"household_id": "h-1", "channels": ["console"],
                      "quiet_hours": "22:00-08:00", "opt_out": False,
                      "updated_at": NOW.isoformat()}
    # Only what is given changes.
    assert service.set_preferences("h-1", {"opt_out": True})["channels"] == ["console"]
    assert repository.get_preferences("h-1")["opt_out"] is True


@pytest.mark.parametrize("data, field", [
    ({"channels": ["pigeon"]}, "channels"),
    ({"channels": ["console", "console"]}, "channels"),
    ({"channels": "console"}, "channels"),
    ({"quiet_hours": "22:00"}, "quiet_hours"),
    ({"quiet_hours": "24:00-08:00"}, "quiet_hours"),
    ({"quiet_hours": "08:00-08:00"}, "quiet_hours"),
    ({"opt_out": "yes"}, "opt_out"),
    ({"language": "zh"}, "language"),
])
def test_set_preferences_refuses_bad_input_and_writes_nothing(service, repository, data, field):
    with pytest.raises(InvalidInput) as error:
        service.set_preferences("h-1", data)
    assert field in error.value.errors
    assert repository.get_preferences("h-1") is None


def test_set_preferences_needs_a_valid_household_id(service):
    with pytest.raises(InvalidInput) as error:
        service.set_preferences({"$ne": None}, {})
    assert "household_id" in error.value.errors
