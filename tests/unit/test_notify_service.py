import logging
from datetime import UTC, datetime, timedelta
from importlib.metadata import EntryPoint
from unittest.mock import Mock

import pytest
from nameko.exceptions import RemoteError
from nameko.testing.services import worker_factory

from services.notify import channels as channels_module
from services.notify.channels import Channel, ChannelError
from services.notify.repository import NotifyRepository
from services.notify.service import NotifyService
from services.notify.settings import NotifySettings, SettingsError
from shared.actor import Actor, Caller
from shared.clock import FrozenClock
from shared.envelope import new_event, parse_event
from shared.errors import InvalidInput
from shared.schemas.events import EVENTS
from tests.helpers import embedded, handle_one, intake_with_contact

NOW = datetime(2026, 10, 9, 2, 30, tzinfo=UTC)   # 10:30 in Shanghai
PHONE = "13812345678"
EMAIL = "zhang.san@example.com"
CONTACT = {"household_id": "h-1", "estate_id": "e-1", "name": "张三", "phone": PHONE,
           "email": EMAIL, "preferred_channel": "sms"}
STAFF = [
    {"id": "eng-3", "name": "王工", "roles": ["staff"], "department": "工程部",
     "phone": "13900000003"},
    {"id": "sup-1", "name": "李主管", "roles": ["supervisor"], "department": "客服部",
     "phone": "13900000001"},
    {"id": "sup-2", "name": "赵主管", "roles": ["supervisor"], "department": "客服部",
     "email": "zhao@example.com"},
    {"id": "mgr-1", "name": "陈经理", "roles": ["manager"], "phone": "13900000009"},
]


def shanghai(hour, minute=0, day=9):
    return datetime(2026, 10, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


# plug-ins standing in for gateways ------------------------------------------------------

class RecordingChannel(Channel):
    """An SMS gateway that records what it sends; ``failures`` are raised first, one per try."""

    kind = "sms"

    def __init__(self, settings=None):
        super().__init__(settings)
        self.sent, self.failures = [], []

    def send(self, address, message):
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append((address, message.text))
        return f"gw-{len(self.sent)}"


class MailChannel(RecordingChannel):
    kind = "email"
    address_field = "email"


class BrokenChannel(Channel):
    """A gateway that refuses everything (and, carelessly, quotes the number)."""

    def send(self, address, message):
        raise ChannelError(f"gateway refused {address}")


class BuggyChannel(Channel):
    """A plug-in with a bug: it raises something that is not a ChannelError."""

    def send(self, address, message):
        raise TypeError(f"cannot format {address}")


class PickyChannel(Channel):
    """A plug-in that refuses its settings."""

    def __init__(self, settings=None):
        raise ValueError("api_key is required")


PLUGINS = {"recording": RecordingChannel, "mail": MailChannel, "broken": BrokenChannel,
           "buggy": BuggyChannel, "picky": PickyChannel}


@pytest.fixture(autouse=True)
def plugins(monkeypatch):
    """Install the test plug-ins beside the shipped ones, as pip would through the entry point."""
    installed = dict(channels_module.installed_channels())
    for name, cls in PLUGINS.items():
        installed[name] = EntryPoint(name=name, value=f"{__name__}:{cls.__name__}",
                                     group=channels_module.GROUP)
    monkeypatch.setattr(channels_module, "installed_channels", lambda: installed)


@pytest.fixture
def repository():
    return embedded(NotifyRepository)


@pytest.fixture
def intake():
    return intake_with_contact(CONTACT)


@pytest.fixture
def clock():
    return FrozenClock(NOW)


@pytest.fixture
def make_service(repository, intake, clock):
    def make(**config):
        settings = NotifySettings({"NOTIFY_CHANNELS": ["console"], "NOTIFY_STAFF": STAFF,
                                   **config})
        service = worker_factory(NotifyService, store=repository, clock=clock, intake=intake,
                                 settings=settings, caller=Caller(None, None))
        service.channel = lambda name, estate_id=None: settings.channel(estate_id, name)
        return service
    return make


@pytest.fixture
def service(make_service):
    return make_service()


@pytest.fixture
def console_log(caplog):
    caplog.set_level(logging.INFO)
    return caplog


DATA = {
    "complaint_registered": lambda now: {
        "complaint_id": "cmp-1", "household_id": "h-1", "category": "cleaning",
        "severity": "normal", "channel": "hotline", "received_at": now,
        "first_response_due": now + timedelta(days=1), "reply_due": now + timedelta(days=3)},
    "complaint_assigned": lambda now: {
        "complaint_id": "cmp-1", "department": "工程部", "assignee_id": "eng-3",
        "assigned_at": now, "reply_due": now + timedelta(days=3), "summary": "楼道垃圾没人清理"},
    "complaint_repeated": lambda now: {
        "complaint_id": "cmp-2", "repeat_of": "cmp-1", "household_id": "h-1",
        "category": "cleaning", "special_measures_due": now + timedelta(hours=24),
        "summary": "楼道垃圾还是没人清理"},
    "complaint_resolved": lambda now: {
        "complaint_id": "cmp-1", "staff_id": "eng-3", "resolved_at": now,
        "resolution": "已清理楼道，业主可拨 13812345678 反馈"},
    "complaint_review_requested": lambda now: {
        "complaint_id": "cmp-1", "review_no": 1, "requested_at": now,
        "due_at": now + timedelta(days=5), "reason": "垃圾桶还是坏的"},
    "complaint_reviewed": lambda now: {
        "complaint_id": "cmp-1", "review_no": 1, "outcome": "upheld", "reviewer_id": "mgr-1",
        "decided_at": now, "finding": "已更换垃圾桶"},
    "revisit_overdue": lambda now: {
        "revisit_id": "rv-1", "kind": "complaint", "source_id": "cmp-1",
        "due_at": now - timedelta(hours=1)},
    "survey_round_closed": lambda now: {
        "round_id": "rnd-1", "invited": 40, "returned": 30, "response_rate": 0.75},
    "rectification_created": lambda now: {
        "rectification_id": "rect-1", "round_id": "rnd-1", "category": "greening",
        "department": "工程部", "due_at": now + timedelta(days=30), "action": "补种草坪"},
    "rectification_done": lambda now: {
        "rectification_id": "rect-1", "round_id": "rnd-1", "category": "greening",
        "department": "工程部", "due_at": now + timedelta(days=30), "action": "补种草坪",
        "status": "done"},
    "complaint_overdue": lambda now: {
        "complaint_id": "cmp-1", "deadline": "first_response", "due_at": now},
    "complaint_escalated": lambda now: {"complaint_id": "cmp-1", "level": 1, "role": "manager"},
    "complaint_closed": lambda now: {
        "complaint_id": "cmp-1", "household_id": "h-1", "category": "cleaning",
        "severity": "normal", "closed_at": now, "owner_signoff": "satisfied", "closing_no": 1},
    "revisit_scheduled": lambda now: {
        "revisit_id": "rv-1", "kind": "complaint", "source_id": "cmp-1", "household_id": "h-1",
        "due_at": now + timedelta(days=3), "assigned_role": "staff", "method": "phone"},
    "revisit_booked": lambda now: {
        "revisit_id": "rv-1", "household_id": "h-1", "at": now + timedelta(days=2),
        "method": "onsite"},
    "revisit_completed": lambda now: {
        "revisit_id": "rv-1", "kind": "complaint", "source_id": "cmp-1", "reached": True,
        "satisfaction": "satisfied", "resolved": True, "completed_at": now},
    "survey_invitation_issued": lambda now: {
        "round_id": "rnd-1", "invitation_id": "inv-1", "household_id": "h-1",
        "token": "tok-abc", "expires_at": now + timedelta(days=14)},
    "survey_reminder_due": lambda now: {
        "round_id": "rnd-1", "invitation_id": "inv-1", "household_id": "h-1",
        "token": "tok-abc", "reminder_no": 1},
    "survey_report_published": lambda now: {
        "round_id": "rnd-1", "satisfaction_rate": 0.9, "rectifications": 2},
    "rectification_overdue": lambda now: {
        "rectification_id": "rect-1", "round_id": "rnd-1", "category": "greening",
        "department": "工程部", "due_at": now - timedelta(days=1)},
}


def event(event_type, when=NOW, estate_id="e-1", **changes):
    """A parsed envelope of ``event_type`` published at ``when``, its data changed as given."""
    data = dict(DATA[event_type](when), **changes)
    return parse_event(new_event(event_type, EVENTS[event_type][0], estate_id, data, when))


HANDLERS = {
    "complaint_registered": "acknowledge_complaint", "complaint_assigned": "tell_assignee",
    "complaint_overdue": "alert_overdue_complaint",
    "complaint_escalated": "alert_escalated_complaint", "complaint_closed": "announce_closing",
    "revisit_scheduled": "announce_revisit", "revisit_booked": "confirm_appointment",
    "revisit_completed": "cancel_reminders", "survey_invitation_issued": "invite_to_survey",
    "survey_reminder_due": "remind_of_survey",
    "survey_report_published": "announce_survey_report",
    "rectification_overdue": "alert_overdue_rectification",
    "complaint_repeated": "alert_repeat_complaint", "complaint_resolved": "announce_resolution",
    "complaint_review_requested": "ask_for_review_decision",
    "complaint_reviewed": "announce_review_outcome", "revisit_overdue": "report_overdue_revisit",
    "survey_round_closed": "announce_round_closed",
    "rectification_created": "assign_rectification",
    "rectification_done": "announce_rectification_done",
}


def handle(service, envelope):
    handle_one(getattr(service, HANDLERS[envelope["type"]]), envelope)
    return envelope


def outbox_events(repository):
    return [event for delivery in repository.db.deliveries.find() for event in delivery["outbox"]]


def console_messages(caplog):
    return [record.getMessage() for record in caplog.records
            if record.name == "services.notify.channels"]


# events ---------------------------------------------------------------------------

def test_complaint_registered_sends_one_apology_and_logs_the_delivery(
        service, repository, intake, console_log):
    handle(service, event("complaint_registered"))

    intake.get_contact.assert_called_once_with("cmp-1")
    [delivery] = service.list_deliveries({})
    assert delivery["status"] == "sent" and delivery["channel"] == "console"
    assert delivery["ref"] == "cmp-1" and delivery["recipient"] == "h-1"
    assert delivery["template"] == "complaint_received"
    assert delivery["text"].startswith("【物业服务中心】非常抱歉")
    assert "2026-10-12 10:30" in delivery["text"]           # reply due, Shanghai time
    assert delivery["sent_at"] == NOW.isoformat() and delivery["segments"] == 1
    assert delivery["address"] == "138****5678"
    [message] = console_messages(console_log)
    assert "138****5678" in message and delivery["text"] in message

    [sent] = outbox_events(repository)
    assert sent["type"] == "notification_sent" and sent["estate_id"] == "e-1"
    assert parse_event(sent)["data"] == {
        "delivery_id": delivery["id"], "channel": "console", "template": "complaint_received",
        "recipient": "h-1", "ref": "cmp-1"}


def test_no_full_address_in_any_event_or_log_line(service, repository, console_log):
    for event_type in ("complaint_registered", "complaint_assigned", "complaint_closed",
                       "survey_invitation_issued"):
        handle(service, event(event_type))
    assert PHONE not in console_log.text and "zhang.san@" not in console_log.text
    assert "13900000003" not in console_log.text
    assert PHONE not in str(outbox_events(repository))
    assert repository.db.deliveries.find_one({"ref": "cmp-1"})["address"] == PHONE   # log only


def test_the_same_event_twice_sends_one_message(service, repository, intake, console_log):
    envelope = handle(service, event("complaint_registered"))
    handle(service, envelope)

    assert repository.db.deliveries.count_documents({}) == 1
    assert len(console_messages(console_log)) == 1
    assert intake.get_contact.call_count == 1
    assert repository.db.deliveries.find_one()["_id"] == f"{envelope['id']}:complaint_received"


def test_a_delivery_id_is_inserted_once_even_when_two_workers_race(repository, service):
    handle(service, event("complaint_registered"))
    existing = repository.db.deliveries.find_one()
    assert repository.add_delivery(dict(existing, status="queued")) is None


def test_revisit_scheduled_tells_the_household_when_and_how(service, intake):
    handle(service, event("revisit_scheduled"))

    intake.get_contact.assert_called_once_with("h-1")
    [delivery] = service.list_deliveries({"ref": "rv-1"})
    assert delivery["template"] == "revisit_scheduled" and delivery["status"] == "sent"
    assert "2026-10-12" in delivery["text"] and "电话" in delivery["text"]


def test_a_revisit_the_owner_may_answer_online_links_to_its_page_once(
        make_service, repository, intake):
    service = make_service(PUBLIC_BASE_URL="https://wy.huifang.cn/")
    envelope = handle(service, event("revisit_scheduled", token="tok-rv-0123456789abc"))
    handle(service, envelope)      # redelivered: still one message

    [delivery] = service.list_deliveries({"ref": "rv-1"})
    assert delivery["template"] == "revisit_online" and delivery["status"] == "sent"
    assert "https://wy.huifang.cn/r/tok-rv-0123456789abc " in delivery["text"]
    assert "2026-10-12" in delivery["text"] and "电话" in delivery["text"]
    intake.get_contact.assert_called_once_with("h-1")

    # staff reading the log through the gateway cannot answer in the owner's name
    service.caller = Caller(Actor("u-sup", ("supervisor",), ("e-1",)), "gateway")
    [seen] = service.list_deliveries({"ref": "rv-1"})
    assert "tok-rv-0123456789abc" not in seen["text"] and "/r/tok-…" in seen["text"]
    service.caller = Caller(Actor("u-admin", ("admin",), ()), "gateway")
    assert "/r/tok-rv-0123456789abc" in service.list_deliveries({"ref": "rv-1"})[0]["text"]


def test_a_revisit_without_household_is_skipped_quietly(service, repository, intake):
    handle(service, event("revisit_scheduled", household_id=None))
    intake.get_contact.assert_not_called()
    assert repository.db.deliveries.count_documents({}) == 0


def test_the_locale_is_configurable_per_group_estate_and_household(make_service, intake):
    service = make_service(NOTIFY_LOCALE="en", NOTIFY_ESTATES={"e-2": {"locale": "zh"}})
    handle(service, event("complaint_registered"))
    handle(service, event("complaint_registered", estate_id="e-2"))
    english, chinese = sorted(service.list_deliveries(), key=lambda d: d["estate_id"])
    assert english["text"].startswith("[Property Service Centre] We are sorry")
    assert chinese["text"].startswith("【物业服务中心】非常抱歉")

    service.set_preferences("h-1", {"locale": "zh"})
    handle(service, event("complaint_closed"))
    assert service.list_deliveries({"template": "complaint_closed"})[0]["locale"] == "zh"


def test_each_estate_signs_with_its_own_name(make_service):
    service = make_service(NOTIFY_SIGNATURE="汇方物业",
                           NOTIFY_ESTATES={"e-2": {"signature": {"zh": "阳光花园"}}})
    handle(service, event("complaint_registered"))
    handle(service, event("complaint_registered", estate_id="e-2"))
    texts = sorted(d["text"][:6] for d in service.list_deliveries())
    assert texts == ["【汇方物业】", "【阳光花园】"]


def test_an_unknown_contact_is_logged_as_failed_not_retried(service, repository, intake):
    intake.get_contact.side_effect = RemoteError("NotFound", "household or complaint 'cmp-1'")
    handle(service, event("complaint_registered"))

    [delivery] = service.list_deliveries({"status": "failed"})
    assert "no contact" in delivery["error"] and delivery["recipient"] == "cmp-1"
    [failed] = outbox_events(repository)
    assert failed["type"] == "notification_failed"


def test_intake_being_down_raises_so_the_event_is_retried(service, repository, intake):
    intake.get_contact.side_effect = RemoteError("ConnectionError", "intake unavailable")
    with pytest.raises(RemoteError):
        handle(service, event("complaint_registered"))
    assert repository.db.deliveries.count_documents({}) == 0   # a retry starts afresh


# staff ------------------------------------------------------------------------------

def test_an_assignment_tells_the_assignee_from_the_staff_directory(service, intake):
    handle(service, event("complaint_assigned"))
    # asked once, for the owner's message: the assignee's address is the directory's
    intake.get_contact.assert_called_once_with("cmp-1")
    [delivery] = service.list_deliveries({"template": "complaint_assigned"})
    assert delivery["recipient"] == "eng-3" and delivery["status"] == "sent"
    assert "cmp-1" in delivery["text"] and "工程部" in delivery["text"]
    assert "楼道垃圾没人清理" in delivery["text"] and "2026-10-12 10:30 前答复" in delivery["text"]
    assert delivery["text"].endswith("详情：http://127.0.0.1:8000/console/complaints/cmp-1")
    assert delivery["address"] == "139****0003"


def test_an_unlisted_assignee_falls_back_to_the_department(service):
    handle(service, event("complaint_assigned", assignee_id="eng-404"))
    assert [d["recipient"] for d in service.list_deliveries(
        {"template": "complaint_assigned"})] == ["eng-3"]


def test_overdue_complaints_reach_every_supervisor_once(service):
    envelope = handle(service, event("complaint_overdue"))
    handle(service, envelope)
    deliveries = service.list_deliveries({"template": "complaint_overdue"})
    assert sorted(d["recipient"] for d in deliveries) == ["sup-1", "sup-2"]
    assert all("首次回复期限" in d["text"] for d in deliveries)


def test_an_escalation_reaches_the_role_it_names(service):
    handle(service, event("complaint_escalated", role="manager", level=2))
    [delivery] = service.list_deliveries()
    assert delivery["recipient"] == "mgr-1" and "项目经理" in delivery["text"]


def test_an_overdue_rectification_reaches_its_department(service):
    handle(service, event("rectification_overdue"))
    [delivery] = service.list_deliveries()
    assert delivery["recipient"] == "eng-3" and delivery["ref"] == "rect-1"
    assert "绿化" in delivery["text"] and "请工程部" in delivery["text"]


def test_with_nobody_in_the_directory_the_failure_is_recorded_and_announced(
        make_service, repository):
    service = make_service(NOTIFY_STAFF=[])
    handle(service, event("complaint_escalated"))
    [delivery] = service.list_deliveries({"status": "failed"})
    assert "no role manager" in delivery["error"] and "NOTIFY_STAFF" in delivery["error"]
    assert outbox_events(repository)[0]["type"] == "notification_failed"


def test_staff_are_not_held_by_quiet_hours(make_service, clock):
    service = make_service(NOTIFY_CHANNELS=["console", "mail"])   # sup-2 has only e-mail
    clock.at = shanghai(23, 30)
    handle(service, event("complaint_overdue", when=clock.at))
    assert {d["status"] for d in service.list_deliveries()} == {"sent"}


# channels, fallback, retries -------------------------------------------------------------

def test_a_failing_channel_falls_back_to_the_next_configured_one(make_service):
    service = make_service(NOTIFY_CHANNELS=["broken", "console"])
    handle(service, event("complaint_registered"))

    [delivery] = service.list_deliveries({})
    assert delivery["status"] == "sent" and delivery["channel"] == "console"
    assert [attempt["channel"] for attempt in delivery["attempts"]] == ["broken", "console"]
    assert delivery["attempts"][0]["error"] == "gateway refused 138****5678"


def test_when_every_channel_fails_the_delivery_fails_with_an_event(make_service, repository):
    service = make_service(NOTIFY_CHANNELS=["broken"])
    handle(service, event("complaint_registered"))

    [delivery] = service.list_deliveries({"status": "failed"})
    assert delivery["failed_at"] == NOW.isoformat() and PHONE not in delivery["error"]
    [failed] = outbox_events(repository)
    data = parse_event(failed)["data"]
    assert failed["type"] == "notification_failed"
    assert data["recipient"] == "h-1" and data["error"] == "gateway refused 138****5678"


def test_a_plug_in_that_raises_is_recorded_and_the_next_channel_used(make_service, console_log):
    service = make_service(NOTIFY_CHANNELS=["buggy", "console"])
    handle(service, event("complaint_registered"))
    [delivery] = service.list_deliveries()
    assert delivery["status"] == "sent" and delivery["channel"] == "console"
    assert delivery["attempts"][0]["error"] == (
        "channel buggy raised TypeError: cannot format 138****5678")
    assert PHONE not in console_log.text


def test_retries_back_off_then_fall_back_then_succeed(make_service, clock, repository):
    service = make_service(NOTIFY_CHANNELS=["recording", "mail"], NOTIFY_RETRY_DELAYS_S=[30, 120])
    gateway, mail = service.channel("recording"), service.channel("mail")
    gateway.failures = [ChannelError("gateway busy", retryable=True)] * 3

    handle(service, event("complaint_registered"))
    [delivery] = service.list_deliveries()
    assert delivery["status"] == "queued" and delivery["reason"] == "retry 1 on recording"
    assert delivery["next_attempt_at"] == (NOW + timedelta(seconds=30)).isoformat()

    clock.advance(timedelta(seconds=29))
    service.dispatch_due()                          # not due yet
    assert len(service.list_deliveries()[0]["attempts"]) == 1
    clock.advance(timedelta(seconds=1))
    service.dispatch_due()                          # second try fails: wait 120 s
    assert service.list_deliveries()[0]["reason"] == "retry 2 on recording"
    clock.advance(timedelta(seconds=120))
    service.dispatch_due()                          # third fails: no retry left, e-mail takes it

    [delivery] = service.list_deliveries()
    assert delivery["status"] == "sent" and delivery["channel"] == "mail"
    assert [(a["channel"], a.get("retryable")) for a in delivery["attempts"]] == [
        ("recording", True), ("recording", True), ("recording", True), ("mail", None)]
    assert gateway.sent == [] and mail.sent == [(EMAIL, delivery["text"])]
    assert [e["type"] for e in outbox_events(repository)] == ["notification_sent"]


def test_an_error_no_retry_fixes_goes_to_the_next_channel_at_once(make_service):
    service = make_service(NOTIFY_CHANNELS=["recording", "mail"])
    service.channel("recording").failures = [ChannelError("number is on a blocklist")]
    handle(service, event("complaint_registered"))
    [delivery] = service.list_deliveries()
    assert delivery["status"] == "sent" and delivery["channel"] == "mail"


def test_a_malformed_address_is_recorded_and_the_next_channel_tried(make_service, intake):
    service = make_service(NOTIFY_CHANNELS=["sms_http", "console"], NOTIFY_CHANNEL_SETTINGS={
        "sms_http": {"url": "http://127.0.0.1:9/sms"}})
    intake.get_contact.return_value = dict(CONTACT, phone="010-62345678")   # a landline
    handle(service, event("complaint_registered"))
    [delivery] = service.list_deliveries()
    assert delivery["attempts"][0]["error"] == "not a mobile number: 010****5678"
    assert delivery["status"] == "sent" and delivery["channel"] == "console"


def test_an_event_with_a_blank_value_is_logged_as_failed_naming_the_parameter(
        service, repository):
    handle(service, event("complaint_escalated", role=" "))     # upstream sent a blank role
    [delivery] = service.list_deliveries()
    assert delivery["status"] == "failed" and delivery["recipient"] == "mgr-1"
    assert delivery["error"] == "template complaint_escalated needs role"
    assert outbox_events(repository)[0]["type"] == "notification_failed"


def test_a_channel_dropped_from_the_config_while_a_retry_waited_is_recorded_and_skipped(
        make_service, clock):
    before = make_service(NOTIFY_CHANNELS=["recording", "console"])
    before.channel("recording").failures = [ChannelError("busy", retryable=True)]
    handle(before, event("complaint_registered"))
    after = make_service(NOTIFY_CHANNELS=["console"])            # restarted with new settings
    clock.advance(timedelta(seconds=30))
    after.dispatch_due()
    [delivery] = after.list_deliveries()
    assert delivery["status"] == "sent" and delivery["channel"] == "console"
    assert [a["error"] for a in delivery["attempts"]] == [
        "busy", "channel recording is not configured any more", None]


# a message that waited goes to the contact as it is when it is sent -------------------------

def test_a_message_that_waited_goes_to_the_number_intake_has_when_it_is_sent(
        make_service, intake, clock):
    service = make_service(NOTIFY_CHANNELS=["recording"])
    clock.at = shanghai(23, 0)
    handle(service, event("revisit_scheduled", when=clock.at))
    intake.get_contact.return_value = dict(CONTACT, phone="13987654321")   # a new number
    clock.at = shanghai(8, 0, day=10)
    service.dispatch_due()

    [(address, _)] = service.channel("recording").sent
    assert address == "13987654321"
    assert [call.args for call in intake.get_contact.call_args_list] == [("h-1",), ("h-1",)]
    [delivery] = service.list_deliveries()
    assert delivery["status"] == "sent" and delivery["address"] == "139****4321"
    assert [route["address"] for route in delivery["routes"]] == ["139****4321"]


def test_a_reminder_goes_on_the_channels_configured_when_it_is_sent(make_service, clock):
    before = make_service(NOTIFY_CHANNELS=["recording", "console"])
    handle(before, event("revisit_booked"))                  # reminder in a day
    after = make_service(NOTIFY_CHANNELS=["mail", "console"])   # restarted with new settings
    clock.advance(timedelta(days=1))
    after.dispatch_due()
    reminder = after.list_deliveries({"template": "revisit_reminder"})[0]
    assert reminder["status"] == "sent" and reminder["channel"] == "mail"
    assert after.channel("mail").sent == [(EMAIL, reminder["text"])]


def test_a_household_that_opted_out_while_a_message_waited_does_not_get_it(service, clock,
                                                                           console_log):
    clock.at = shanghai(23, 0)
    handle(service, event("revisit_scheduled", when=clock.at))
    service.set_preferences("h-1", {"opt_out": True})
    clock.at = shanghai(8, 0, day=10)
    service.dispatch_due()
    [delivery] = service.list_deliveries()
    assert delivery["status"] == "suppressed" and delivery["reason"] == "household opted out"
    assert console_messages(console_log) == []


def test_a_contact_gone_while_a_message_waited_is_recorded_as_failed_and_announced(
        service, repository, intake, clock):
    clock.at = shanghai(23, 0)
    handle(service, event("revisit_scheduled", when=clock.at))
    intake.get_contact.side_effect = RemoteError("NotFound", "household 'h-1'")
    clock.at = shanghai(8, 0, day=10)
    service.dispatch_due()
    [delivery] = service.list_deliveries()
    assert delivery["status"] == "failed" and "no contact" in delivery["error"]
    [failed] = outbox_events(repository)
    assert failed["type"] == "notification_failed" and failed["data"]["recipient"] == "h-1"


def test_intake_down_when_a_waited_message_is_due_keeps_it_for_the_next_pass(
        service, intake, clock, console_log):
    clock.at = shanghai(23, 0)
    handle(service, event("revisit_scheduled", when=clock.at))
    intake.get_contact.side_effect = RemoteError("ConnectionError", "intake unavailable")
    clock.at = shanghai(8, 0, day=10)
    service.dispatch_due()
    assert service.list_deliveries()[0]["status"] == "queued"
    intake.get_contact.side_effect = None
    clock.advance(timedelta(seconds=120))                    # its claim lapses
    service.dispatch_due()
    assert service.list_deliveries()[0]["status"] == "sent"
    assert len(console_messages(console_log)) == 1


def test_a_waited_send_stays_on_the_channel_it_was_given(make_service, intake, clock):
    service = make_service(NOTIFY_CHANNELS=["recording", "mail"])
    clock.at = shanghai(23, 0)
    service.send(dict(SEND, channel="mail", template="revisit_scheduled", params={
        "revisit_id": "rv-9", "due_date": "2026-10-12", "method": "phone"}))
    intake.get_contact.return_value = dict(CONTACT, email="zhang.new@example.com")
    clock.at = shanghai(8, 0, day=10)
    service.dispatch_due()
    assert [address for address, _ in service.channel("mail").sent] == ["zhang.new@example.com"]
    assert service.channel("recording").sent == []


def test_a_broadcast_due_at_once_is_not_looked_up_twice(make_service, intake):
    intake.list_households.return_value = [{"id": "h-1"}]
    service = make_service()
    handle(service, event("survey_report_published"))
    service.dispatch_due()
    assert service.list_deliveries()[0]["status"] == "sent"
    intake.get_contact.assert_called_once_with("h-1")


def test_the_household_channel_order_comes_first(make_service):
    service = make_service(NOTIFY_CHANNELS=["broken", "console"])
    service.set_preferences("h-1", {"channels": ["console"]})
    handle(service, event("complaint_registered"))
    [delivery] = service.list_deliveries({})
    assert [attempt["channel"] for attempt in delivery["attempts"]] == ["console"]


# opt-out, quiet hours, reminders ------------------------------------------------------------

def test_an_opted_out_household_is_logged_as_suppressed_and_not_sent(
        service, repository, console_log):
    service.set_preferences("h-1", {"opt_out": True})
    handle(service, event("revisit_scheduled"))

    [delivery] = service.list_deliveries({"status": "suppressed"})
    assert delivery["reason"] == "household opted out"
    assert console_messages(console_log) == [] and outbox_events(repository) == []


def test_mandatory_notices_reach_households_that_opted_out(service):
    service.set_preferences("h-1", {"opt_out": True})
    handle(service, event("complaint_registered"))
    handle(service, event("complaint_closed"))
    assert {d["status"] for d in service.list_deliveries()} == {"sent"}


def test_a_message_in_quiet_hours_waits_for_the_morning(service, clock, console_log):
    clock.at = shanghai(23, 30)
    handle(service, event("revisit_scheduled", when=clock.at))
    [delivery] = service.list_deliveries()
    assert delivery["status"] == "queued" and delivery["reason"] == "quiet hours"
    assert delivery["next_attempt_at"] == shanghai(8, 0, day=10).isoformat()

    clock.at = shanghai(7, 59, day=10)
    service.dispatch_due()
    assert console_messages(console_log) == []
    clock.at = shanghai(8, 0, day=10)
    service.dispatch_due()
    [delivery] = service.list_deliveries()
    assert delivery["status"] == "sent" and delivery["sent_at"] == shanghai(8, 0, day=10).isoformat()
    assert len(console_messages(console_log)) == 1
    service.dispatch_due()
    assert len(console_messages(console_log)) == 1      # sent once


def test_the_acknowledgement_of_a_complaint_made_at_night_goes_at_once(service, clock):
    clock.at = shanghai(23, 30)
    handle(service, event("complaint_registered", when=clock.at))
    assert service.list_deliveries()[0]["status"] == "sent"


def test_a_household_sets_its_own_quiet_hours_and_an_estate_may_have_none(make_service, clock):
    service = make_service(NOTIFY_ESTATES={"e-2": {"quiet_hours": None}})
    clock.at = shanghai(21, 0)
    service.set_preferences("h-1", {"quiet_hours": "20:30-07:00"})
    handle(service, event("revisit_scheduled", when=clock.at))
    assert service.list_deliveries()[0]["next_attempt_at"] == shanghai(7, 0, day=10).isoformat()

    service.set_preferences("h-1", {"quiet_hours": None})
    clock.at = shanghai(23, 0)
    handle(service, event("revisit_scheduled", when=clock.at, estate_id="e-2"))
    assert service.list_deliveries({"estate_id": "e-2"})[0]["status"] == "sent"


def test_a_retry_that_falls_into_the_night_waits_for_the_morning(make_service, clock):
    service = make_service(NOTIFY_CHANNELS=["recording"], NOTIFY_RETRY_DELAYS_S=[600])
    service.channel("recording").failures = [ChannelError("busy", retryable=True)]
    clock.at = shanghai(21, 55)
    handle(service, event("revisit_scheduled", when=clock.at))
    clock.at = shanghai(22, 5)
    service.dispatch_due()
    [delivery] = service.list_deliveries()
    assert delivery["status"] == "queued"
    assert delivery["next_attempt_at"] == shanghai(8, 0, day=10).isoformat()
    clock.at = shanghai(8, 0, day=10)
    service.dispatch_due()
    assert service.list_deliveries()[0]["status"] == "sent"


def test_an_appointment_is_confirmed_and_reminded_a_day_before(service, clock, console_log):
    booked = handle(service, event("revisit_booked"))      # visit at NOW + 2 days
    confirmation, reminder = sorted(service.list_deliveries(), key=lambda d: d["template"])
    assert confirmation["template"] == "revisit_booked" and confirmation["status"] == "sent"
    assert reminder["template"] == "revisit_reminder" and reminder["status"] == "queued"
    assert reminder["next_attempt_at"] == (NOW + timedelta(days=1)).isoformat()

    handle(service, booked)                                  # redelivered: nothing new
    assert len(service.list_deliveries()) == 2
    clock.advance(timedelta(days=1))
    service.dispatch_due()
    reminder = service.list_deliveries({"template": "revisit_reminder"})[0]
    assert reminder["status"] == "sent" and "温馨提示" in reminder["text"]


def test_a_new_booking_replaces_the_reminder_and_a_done_visit_cancels_it(service, clock):
    handle(service, event("revisit_booked"))
    rebooked = handle(service, event("revisit_booked", at=NOW + timedelta(days=3)))
    handle(service, rebooked)                                # redelivery keeps the new one
    reminders = service.list_deliveries({"template": "revisit_reminder"})
    assert sorted((d["status"], d["reason"]) for d in reminders) == [
        ("queued", None), ("suppressed", "superseded by a new appointment")]

    handle(service, event("revisit_completed"))
    assert {(d["status"], d["reason"]) for d in service.list_deliveries(
        {"template": "revisit_reminder", "status": "suppressed"})} == {
        ("suppressed", "superseded by a new appointment"),
        ("suppressed", "the follow-up visit took place")}
    clock.advance(timedelta(days=3))
    service.dispatch_due()
    assert service.list_deliveries({"template": "revisit_reminder", "status": "sent"}) == []


def test_no_reminder_for_an_appointment_closer_than_the_lead_time(service):
    handle(service, event("revisit_booked", at=NOW + timedelta(hours=5)))
    assert [d["template"] for d in service.list_deliveries()] == ["revisit_booked"]


# surveys ------------------------------------------------------------------------------

def test_a_survey_invitation_carries_the_link_from_the_configured_base_url(make_service):
    service = make_service(NOTIFY_SURVEY_BASE_URL="https://wy.example.cn/survey")
    handle(service, event("survey_invitation_issued"))
    [delivery] = service.list_deliveries({"ref": "rnd-1"})
    assert "https://wy.example.cn/survey/tok-abc" in delivery["text"]


class BatchPublisher:
    """Records what is published, and how: each ``publish`` one confirm, a batch one."""

    def __init__(self):
        self.confirms, self.events = [], []

    def publish(self, event):
        self.publish_batch([event])

    def publish_batch(self, events):
        self.confirms.append(len(events))
        self.events += events


def invitations(households, when=NOW):
    return [event("survey_invitation_issued", when, household_id=household,
                  invitation_id=f"inv-{household}", token=f"tok-{household}")
            for household in households]


def test_a_batch_of_invitations_asks_intake_once_and_confirms_its_notices_together(
        service, repository, intake, console_log):
    repository.publisher = BatchPublisher()
    intake.get_contact.side_effect = lambda ref: dict(CONTACT, household_id=ref,
                                                      phone=f"13800000{ref[-3:]}")
    batch = invitations([f"h-{n:03d}" for n in range(30)])

    assert service.invite_to_survey(batch) == {}

    intake.get_contacts.assert_called_once_with([f"h-{n:03d}" for n in range(30)])
    deliveries = service.list_deliveries({"ref": "rnd-1", "limit": 100})
    assert sorted(d["recipient"] for d in deliveries) == [f"h-{n:03d}" for n in range(30)]
    assert {d["status"] for d in deliveries} == {"sent"}
    assert repository.publisher.confirms == [30]     # one wait for the broker's confirms
    assert {e["data"]["recipient"] for e in repository.publisher.events} == {
        d["recipient"] for d in deliveries}
    assert outbox_events(repository) == []           # nothing left for the relay
    assert len(console_messages(console_log)) == 30


def test_a_redelivered_batch_sends_nothing_twice_and_the_new_ones_once(
        service, repository, intake, console_log):
    repository.publisher = BatchPublisher()
    intake.get_contact.side_effect = lambda ref: dict(CONTACT, household_id=ref)
    first = invitations(["h-1", "h-2"])
    service.invite_to_survey(first)
    # the broker gives the first two again (their acks were lost) with a third
    assert service.invite_to_survey(first + invitations(["h-3"])) == {}
    assert sorted(d["recipient"] for d in service.list_deliveries({"ref": "rnd-1"})) == [
        "h-1", "h-2", "h-3"]
    assert len(console_messages(console_log)) == 3
    assert repository.publisher.confirms == [2, 1]


def test_a_batch_keeps_each_households_preferences_and_quiet_hours(service, intake, clock):
    intake.get_contact.side_effect = lambda ref: dict(CONTACT, household_id=ref)
    service.set_preferences("h-out", {"opt_out": True})
    service.set_preferences("h-late", {"quiet_hours": "10:00-12:00"})   # now is 10:30
    service.invite_to_survey(invitations(["h-out", "h-late", "h-1"]))
    outcome = {d["recipient"]: (d["status"], d["reason"])
               for d in service.list_deliveries({"ref": "rnd-1"})}
    assert outcome == {"h-out": ("suppressed", "household opted out"),
                       "h-late": ("queued", "quiet hours"), "h-1": ("sent", None)}


def test_an_invitation_that_fails_alone_is_answered_and_the_others_go(
        service, repository, intake, monkeypatch):
    repository.publisher = BatchPublisher()
    intake.get_contact.side_effect = lambda ref: dict(CONTACT, household_id=ref)
    batch = invitations(["h-1", "h-2", "h-3"])
    deliver = service.deliveries.deliver

    def deliver_but_h2(delivery_id, estate, template_id, params, target, **kwargs):
        if target.recipient == "h-2":
            raise RuntimeError("store hiccup")
        return deliver(delivery_id, estate, template_id, params, target, **kwargs)
    monkeypatch.setattr(service.deliveries, "deliver", deliver_but_h2)

    failed = service.invite_to_survey(batch)

    assert list(failed) == [batch[1]["id"]] and "hiccup" in str(failed[batch[1]["id"]])
    assert sorted(d["recipient"] for d in service.list_deliveries({"ref": "rnd-1"})) == [
        "h-1", "h-3"]
    assert repository.publisher.confirms == [2]


def test_a_batch_fails_whole_when_intake_does_not_answer(service, intake):
    intake.get_contacts.side_effect = RemoteError("RpcTimeout", "intake is down")
    with pytest.raises(RemoteError):
        service.invite_to_survey(invitations(["h-1", "h-2"]))
    assert service.list_deliveries({"ref": "rnd-1"}) == []


def test_a_published_report_reaches_every_occupied_household_through_the_dispatcher(
        service, intake, console_log):
    intake.list_households.return_value = [{"id": "h-1"}, {"id": "h-2"}, {"id": "h-3"}]
    intake.get_contact.side_effect = lambda ref: dict(CONTACT, household_id=ref)
    envelope = handle(service, event("survey_report_published"))
    handle(service, envelope)
    intake.list_households.assert_called_with("e-1", {"occupied": True})
    deliveries = service.list_deliveries({"ref": "rnd-1"})
    assert sorted(d["recipient"] for d in deliveries) == ["h-1", "h-2", "h-3"]
    assert {d["status"] for d in deliveries} == {"queued"}

    service.dispatch_due()
    deliveries = service.list_deliveries({"ref": "rnd-1"})
    assert {d["status"] for d in deliveries} == {"sent"}
    assert "90.0%" in deliveries[0]["text"] and len(console_messages(console_log)) == 3

    handle(service, event("survey_report_published", edition=2))   # a corrected edition
    assert len(service.list_deliveries({"ref": "rnd-1"})) == 3


# the new duties: who must act, and owners kept informed ------------------------------------

def recipients_of(service, template):
    return sorted(d["recipient"] for d in service.list_deliveries({"template": template}))


def test_a_repeat_complaint_reaches_every_supervisor_and_manager_at_once_and_once(
        make_service, clock):
    both = {"id": "mgr-2", "name": "周经理", "roles": ["supervisor", "manager"],
            "phone": "13900000010"}
    service = make_service(NOTIFY_CHANNELS=["console", "mail"], NOTIFY_STAFF=STAFF + [both])
    clock.at = shanghai(23, 30)                      # staff have no quiet hours
    envelope = handle(service, event("complaint_repeated", when=clock.at))
    handle(service, envelope)                        # redelivered

    deliveries = service.list_deliveries({"template": "complaint_repeated"})
    assert sorted(d["recipient"] for d in deliveries) == ["mgr-1", "mgr-2", "sup-1", "sup-2"]
    assert {d["status"] for d in deliveries} == {"sent"}
    text = deliveries[0]["text"]
    assert "重复投诉 cmp-2" in text and "前次 cmp-1" in text and "楼道垃圾还是没人清理" in text
    assert "2026-10-10 23:30 前安排特殊措施" in text and "/console/complaints/cmp-2" in text


def test_the_owner_hears_which_department_has_the_complaint_and_the_reply_time(
        make_service, intake, clock):
    service = make_service(PUBLIC_BASE_URL="https://wy.huifang.cn")
    intake.get_contact.return_value = dict(CONTACT, owner_url_token="tok-c-0123456789ab")
    handle(service, event("complaint_assigned"))
    [owner] = service.list_deliveries({"template": "complaint_routed"})
    assert owner["recipient"] == "h-1" and owner["status"] == "sent"
    assert "已交由工程部处理，将于 2026-10-12 10:30 前答复您" in owner["text"]
    assert owner["text"].endswith("https://wy.huifang.cn/c/tok-c-0123456789ab")
    [staff] = service.list_deliveries({"template": "complaint_assigned"})
    assert "/c/" not in staff["text"]                # never the owner's credential


def test_owner_notices_of_progress_wait_for_the_morning(service, clock):
    clock.at = shanghai(23, 0)
    for event_type in ("complaint_assigned", "complaint_resolved", "complaint_reviewed"):
        handle(service, event(event_type, when=clock.at))
    owners = [d for d in service.list_deliveries() if d["recipient"] == "h-1"]
    assert sorted(d["template"] for d in owners) == [
        "complaint_resolved", "complaint_review_decided", "complaint_routed"]
    assert {(d["status"], d["reason"]) for d in owners} == {("queued", "quiet hours")}
    assert {d["next_attempt_at"] for d in owners} == {shanghai(8, 0, day=10).isoformat()}


def test_the_owner_hears_what_was_done_masked(service):
    handle(service, event("complaint_resolved"))
    [delivery] = service.list_deliveries({"template": "complaint_resolved"})
    assert "已处理：已清理楼道" in delivery["text"] and PHONE not in delivery["text"]
    assert "138****5678" in delivery["text"]


def test_an_opted_out_owner_still_hears_the_review_outcome_but_not_the_progress(service):
    service.set_preferences("h-1", {"opt_out": True})
    for event_type in ("complaint_assigned", "complaint_resolved", "complaint_reviewed"):
        handle(service, event(event_type))
    status = {d["template"]: d["status"] for d in service.list_deliveries()
              if d["recipient"] == "h-1"}
    assert status == {"complaint_routed": "suppressed", "complaint_resolved": "suppressed",
                      "complaint_review_decided": "sent"}
    [decided] = service.list_deliveries({"template": "complaint_review_decided"})
    assert "维持原处理结果（已更换垃圾桶）" in decided["text"]


def test_a_review_to_decide_reaches_the_manager_with_its_deadline(service):
    handle(service, event("complaint_review_requested"))
    [delivery] = service.list_deliveries({"template": "complaint_review_requested"})
    assert delivery["recipient"] == "mgr-1"
    assert "垃圾桶还是坏的" in delivery["text"] and "2026-10-14 10:30 前作出复核决定" in delivery["text"]


def test_an_onsite_revisit_is_told_to_the_role_that_goes_and_a_phone_one_to_nobody(service):
    handle(service, event("revisit_scheduled", method="onsite", assigned_role="supervisor"))
    assert recipients_of(service, "revisit_onsite") == ["sup-1", "sup-2"]
    assert service.list_deliveries({"template": "revisit_onsite"})[0]["text"].endswith(
        "详情：http://127.0.0.1:8000/console/revisits/rv-1")
    handle(service, event("revisit_scheduled", revisit_id="rv-2", method="phone",
                          assigned_role="supervisor"))
    assert len(service.list_deliveries({"template": "revisit_onsite"})) == 2


def test_an_overdue_revisit_goes_up_to_the_manager_else_the_company_manager(make_service):
    company = {"id": "cm-1", "name": "公司经理", "roles": ["company_manager"],
               "phone": "13900000020"}
    service = make_service(NOTIFY_STAFF=STAFF + [company])
    handle(service, event("revisit_overdue", deadline="promised_reply"))
    [delivery] = service.list_deliveries({"template": "revisit_overdue"})
    assert delivery["recipient"] == "mgr-1" and "承诺答复的期限" in delivery["text"]

    service = make_service(NOTIFY_STAFF=STAFF[:3] + [company])   # no estate manager
    handle(service, event("revisit_overdue", revisit_id="rv-2"))
    [delivery] = service.list_deliveries({"ref": "rv-2"})
    assert delivery["recipient"] == "cm-1" and "上报" in delivery["text"]


def test_a_closed_round_reaches_the_estate_and_company_managers(make_service):
    company = {"id": "cm-1", "name": "公司经理", "roles": ["company_manager"],
               "email": "cm@example.com"}
    service = make_service(NOTIFY_CHANNELS=["console", "mail"], NOTIFY_STAFF=STAFF + [company])
    handle(service, event("survey_round_closed"))
    assert recipients_of(service, "survey_round_closed") == ["cm-1", "mgr-1"]
    assert all("回收率 75.0%" in d["text"]
               for d in service.list_deliveries({"template": "survey_round_closed"}))


def test_a_new_rectification_reaches_its_department_with_action_and_deadline(service):
    handle(service, event("rectification_created"))
    [delivery] = service.list_deliveries({"template": "rectification_created"})
    assert delivery["recipient"] == "eng-3" and delivery["ref"] == "rect-1"
    assert "补种草坪" in delivery["text"] and "2026-11-08 前完成" in delivery["text"]


def test_a_done_rectification_reaches_every_occupied_household_once(service, intake):
    intake.list_households.return_value = [{"id": "h-1"}, {"id": "h-2"}]
    intake.get_contact.side_effect = lambda ref: dict(CONTACT, household_id=ref)
    envelope = handle(service, event("rectification_done"))
    handle(service, envelope)
    service.dispatch_due()
    deliveries = service.list_deliveries({"template": "rectification_done"})
    assert sorted(d["recipient"] for d in deliveries) == ["h-1", "h-2"]
    assert {d["status"] for d in deliveries} == {"sent"}
    assert "绿化方面的整改已完成：补种草坪" in deliveries[0]["text"]


# rate limit ---------------------------------------------------------------------------------

def test_the_daily_sms_limit_suppresses_the_excess_until_the_next_day(make_service, clock):
    service = make_service(NOTIFY_CHANNELS=["recording"], NOTIFY_DAILY_LIMITS={"recording": 2})
    for _ in range(3):
        handle(service, event("survey_reminder_due"))
    statuses = [d["status"] for d in sorted(service.list_deliveries(),
                                            key=lambda d: d["created_at"] + d["id"])]
    assert sorted(statuses) == ["sent", "sent", "suppressed"]
    [excess] = service.list_deliveries({"status": "suppressed"})
    assert excess["reason"] == "daily limit reached on recording"
    assert len(service.channel("recording").sent) == 2

    clock.at = shanghai(8, 0, day=10)                     # a new day in Shanghai
    handle(service, event("survey_reminder_due", when=clock.at))
    assert len(service.channel("recording").sent) == 3


def test_over_the_sms_limit_the_next_channel_still_delivers(make_service):
    service = make_service(NOTIFY_CHANNELS=["recording", "mail"],
                           NOTIFY_DAILY_LIMITS={"recording": 1})
    handle(service, event("survey_reminder_due"))
    handle(service, event("survey_reminder_due"))
    assert sorted(d["channel"] for d in service.list_deliveries()) == ["mail", "recording"]


def test_a_failed_send_does_not_use_up_the_quota(make_service):
    service = make_service(NOTIFY_CHANNELS=["recording", "console"],
                           NOTIFY_DAILY_LIMITS={"recording": 1})
    service.channel("recording").failures = [ChannelError("refused")]
    handle(service, event("survey_reminder_due"))      # failed on recording, console took it
    handle(service, event("survey_reminder_due"))      # the quota is still there
    assert len(service.channel("recording").sent) == 1


# the dispatcher: nothing lost, nothing sent twice ---------------------------------------------

def test_a_crash_between_logging_and_sending_is_recovered_by_the_dispatcher(
        service, clock, console_log, monkeypatch):
    envelope = event("complaint_registered")
    monkeypatch.setattr(service.deliveries, "attempt", Mock(side_effect=RuntimeError("worker died")))
    with pytest.raises(RuntimeError):
        handle(service, envelope)
    monkeypatch.undo()
    [delivery] = service.list_deliveries()
    assert delivery["status"] == "queued"

    handle(service, envelope)                  # the event is redelivered: logged already
    service.dispatch_due()                     # the dead worker's claim still holds
    assert console_messages(console_log) == []
    clock.advance(timedelta(seconds=120))      # the claim lapses
    service.dispatch_due()
    service.dispatch_due()
    assert service.list_deliveries()[0]["status"] == "sent"
    assert len(console_messages(console_log)) == 1


def test_two_dispatchers_never_claim_the_same_delivery(service, repository, clock):
    clock.at = shanghai(23, 0)
    handle(service, event("revisit_scheduled", when=clock.at))
    clock.at = shanghai(8, 0, day=10)
    lease = timedelta(seconds=60)
    [first] = repository.claim_due(clock.at, "instance-a", lease, 10)
    assert first["claim"] == "instance-a"
    assert repository.claim_due(clock.at, "instance-b", lease, 10) == []
    # the slower instance cannot record an outcome for a delivery it does not hold
    assert repository.save_claimed(first["_id"], "instance-b", {"status": "sent"}) is None
    assert repository.save_claimed(first["_id"], "instance-a", {"status": "sent"}) is not None


# settings -------------------------------------------------------------------------------

@pytest.mark.parametrize("config, message", [
    ({"NOTIFY_CHANNELS": ["console", "pigeon"]}, "pigeon"),
    ({"NOTIFY_ESTATES": {"e-2": {"channels": ["pigeon"]}}}, "pigeon"),
    ({"NOTIFY_CHANNELS": ["picky"]}, "api_key is required"),
    ({"NOTIFY_CHANNELS": ["email"]}, "sender"),
    ({"NOTIFY_CHANNELS": ["sms_http"], "NOTIFY_CHANNEL_SETTINGS": {
        "sms_http": {"url": "http://x", "body": {"to": "{mobile}"}}}}, "mobile"),
    ({"NOTIFY_QUIET_HOURS": "late"}, "quiet_hours"),
    ({"NOTIFY_STAFF": [{"id": "x", "phone": "12345"}]}, "phone"),
    ({"NOTIFY_STAFF": [{"id": "x"}, {"id": "x"}]}, "twice"),
    ({"NOTIFY_DAILY_LIMITS": {"pigeon": 3}}, "pigeon"),
    ({"NOTIFY_LOCALE": "fr"}, "fr"),
    ({"NOTIFY_ESTATES": {"e-2": {"template_dir": "/nonexistent"}}}, "/nonexistent"),
    ({"NOTIFY_ESTATES": {"e-2": {"colour": "red"}}}, "colour"),
])
def test_unusable_settings_stop_the_start_with_a_clear_message(config, message):
    with pytest.raises(SettingsError) as error:
        NotifySettings(config)
    assert message in str(error.value)


def test_an_estate_uses_its_own_template_directory(make_service, tmp_path):
    (tmp_path / "zh.yaml").write_text(
        "complaint_received:\n  audience: owner\n  mandatory: true\n  immediate: true\n"
        "  text: \"业主您好，给您添麻烦了！投诉 {complaint_id} 已收到，{reply_due} 前答复。\"\n",
        encoding="utf-8")
    service = make_service(NOTIFY_ESTATES={"e-2": {"template_dir": str(tmp_path)}})
    handle(service, event("complaint_registered", estate_id="e-2"))
    handle(service, event("complaint_registered"))
    texts = {d["estate_id"]: d["text"] for d in service.list_deliveries()}
    assert texts["e-2"].startswith("【物业服务中心】业主您好")
    assert texts["e-1"].startswith("【物业服务中心】非常抱歉")


def test_an_estate_with_its_own_channel_settings_gets_its_own_channel(make_service):
    service = make_service(
        NOTIFY_CHANNELS=["sms_http"],
        NOTIFY_CHANNEL_SETTINGS={"sms_http": {"url": "http://127.0.0.1:9/group",
                                              "headers": {"Authorization": "Bearer g"}}},
        NOTIFY_ESTATES={"e-2": {"channel_settings": {"sms_http": {"url": "http://127.0.0.1:9/e2"}}}})
    group, own = service.channel("sms_http"), service.channel("sms_http", "e-2")
    assert (group.url, own.url) == ("http://127.0.0.1:9/group", "http://127.0.0.1:9/e2")
    assert own.headers == {"Authorization": "Bearer g"}          # the rest is inherited


# list_deliveries ------------------------------------------------------------------

def test_list_deliveries_filters_by_ref_channel_and_status(service, intake):
    handle(service, event("complaint_registered"))
    handle(service, event("revisit_scheduled"))
    intake.get_contact.side_effect = RemoteError("NotFound", "gone")
    handle(service, event("revisit_scheduled"))                  # another event: fails

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
    [sent] = outbox_events(repository)
    assert sent["type"] == "notification_sent" and sent["estate_id"] == "e-1"
    assert len(console_messages(console_log)) == 1


def test_send_to_a_staff_member_by_id(service, intake):
    overdue = dict(SEND, to="sup-1", template="complaint_overdue", params={
        "complaint_id": "cmp-9", "deadline": "reply", "due_at": "2026-10-12 10:30",
        "summary": "楼道灯不亮"})
    with pytest.raises(InvalidInput) as error:     # the group-wide directory: which estate?
        service.send(overdue)
    assert list(error.value.errors) == ["estate_id"]
    delivery = service.send(dict(overdue, estate_id="e-1"))
    intake.get_contact.assert_not_called()
    assert delivery["recipient"] == "sup-1" and delivery["status"] == "sent"
    assert delivery["address"] == "139****0001"


def test_send_to_an_address_needs_an_estate_and_never_names_the_address(service, repository):
    to_address = dict(SEND, to=EMAIL, ref=None)
    with pytest.raises(InvalidInput) as error:
        service.send(to_address)
    assert list(error.value.errors) == ["estate_id"]

    delivery = service.send(dict(to_address, estate_id="e-1", channel="console"))
    assert delivery["recipient"] == "z***@example.com"
    assert "zhang.san@" not in str(outbox_events(repository))


def test_send_to_a_household_in_quiet_hours_waits(service, clock):
    clock.at = shanghai(23, 0)
    delivery = service.send(dict(SEND, template="revisit_scheduled", params={
        "revisit_id": "rv-9", "due_date": "2026-10-12", "method": "phone"}))
    assert delivery["status"] == "queued" and delivery["reason"] == "quiet hours"


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


def test_send_refuses_an_address_the_channel_cannot_use(make_service, repository):
    service = make_service(NOTIFY_CHANNELS=["console", "sms_http"], NOTIFY_CHANNEL_SETTINGS={
        "sms_http": {"url": "http://127.0.0.1:9/sms"}})
    for to, message in [("010-62345678", "not a mobile number: 010****5678"),
                        (EMAIL, "not a mobile number: z***@example.com")]:
        with pytest.raises(InvalidInput) as error:
            service.send(dict(SEND, channel="sms_http", to=to, estate_id="e-1"))
        assert error.value.errors == {"to": [message]}
    assert repository.db.deliveries.count_documents({}) == 0


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
        "h-1", {"channels": ["console"], "quiet_hours": "22:00–08:00", "opt_out": False,
                "locale": "en"})
    assert result == {"household_id": "h-1", "channels": ["console"],
                      "quiet_hours": "22:00-08:00", "opt_out": False, "locale": "en",
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
    ({"locale": "fr"}, "locale"),
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


# who acted: the person the gateway passes along (shared/actor.py) ------------------------

def test_with_an_actor_the_delivery_and_preferences_name_who_asked(service, repository):
    service.caller = Caller(Actor("u-cs", ("cs_staff",), ("e-1",)), "gateway")
    delivery = service.send(SEND)
    assert delivery["requested_by"] == "u-cs"
    assert service.set_preferences("h-1", {"opt_out": True})["updated_by"] == "u-cs"
    service.caller = Caller(None, None)        # changed again by a service: nobody named
    assert "updated_by" not in service.set_preferences("h-1", {"opt_out": False})
    assert "updated_by" not in repository.db.preferences.find_one({"_id": "h-1"})


def test_without_an_actor_nobody_is_said_to_have_asked(service):
    assert "requested_by" not in service.send(SEND)


def test_ping_answers_with_the_service_name(service):
    assert service.ping() == {"service": "notify"}
