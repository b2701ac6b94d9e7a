"""Owners' messages about a complaint end with the link to their complaint page,
``<PUBLIC_BASE_URL>/c/<token>``: the token comes with the contact intake answers notify
(events never carry it); the survey link derives from the same base unless overridden."""
import logging
from datetime import UTC, datetime, timedelta
from unittest.mock import Mock

import pytest
from nameko.testing.services import worker_factory

from services.notify import event_params, message_templates, notifications, sms
from services.notify.catalogue import load_catalogue
from services.notify.repository import NotifyRepository
from services.notify.service import NotifyService
from services.notify.settings import NotifySettings, notify_settings
from shared.actor import Caller
from shared.clock import FrozenClock
from shared.envelope import new_event, parse_event
from shared.errors import InvalidInput
from shared.policies import EstatePolicies
from tests.helpers import embedded, intake_with_contact

NOW = datetime(2026, 10, 9, 2, 30, tzinfo=UTC)   # 10:30 in Shanghai
TOKEN = "Zm9yLXRoZS1vd25lcl9fXw"                  # 22 characters, as intake mints them
CONTACT = {"household_id": "h-1", "estate_id": "e-1", "name": "张三", "phone": "13812345678",
           "preferred_channel": "sms"}
CATALOGUE = load_catalogue()
SIGNATURES = {"zh": "物业服务中心", "en": "Property Service Centre"}
CONTEXT = event_params.Context(public_base_url="https://wy.example.cn")
COMPLAINT_EVENTS = {
    "complaint_registered": ("acknowledge_complaint", "complaint_received", {
        "complaint_id": "cmp-0123456789abcdef", "household_id": "h-1", "category": "cleaning",
        "severity": "normal", "channel": "hotline", "received_at": NOW,
        "first_response_due": NOW + timedelta(days=1), "reply_due": NOW + timedelta(days=3)}),
    "complaint_closed": ("announce_closing", "complaint_closed", {
        "complaint_id": "cmp-0123456789abcdef", "household_id": "h-1", "category": "cleaning",
        "severity": "normal", "closed_at": NOW, "owner_signoff": "satisfied", "closing_no": 1}),
}


def rendered(event_type, locale, contact, context=CONTEXT):
    _, template_id, data = COMPLAINT_EVENTS[event_type]
    notification = notifications.NOTIFICATIONS[event_type][0]
    params = notifications.message_params(notification, parse_event(new_event(event_type, "intake", "e-1", data, NOW))
                                ["data"], context)
    return message_templates.render(CATALOGUE[locale][template_id],
                         event_params.with_contact_params(params, contact, context), SIGNATURES[locale])


# the message ------------------------------------------------------------------------

@pytest.mark.parametrize("locale", ["zh", "en"])
@pytest.mark.parametrize("event_type", COMPLAINT_EVENTS)
def test_every_owner_message_about_a_complaint_ends_with_its_page(event_type, locale):
    text = rendered(event_type, locale, dict(CONTACT, owner_url_token=TOKEN)).text
    assert text.endswith(f"https://wy.example.cn/c/{TOKEN}")
    assert "cmp-0123456789abcdef" in text


@pytest.mark.parametrize("locale", ["zh", "en"])
@pytest.mark.parametrize("event_type", COMPLAINT_EVENTS)
def test_without_a_token_the_message_still_goes_without_the_link(event_type, locale):
    text = rendered(event_type, locale, CONTACT).text
    assert "/c/" not in text and "{" not in text and "None" not in text


def test_the_apology_still_comes_first_and_the_closing_offers_a_review():
    received = rendered("complaint_registered", "zh", dict(CONTACT, owner_url_token=TOKEN)).text
    assert received.startswith("【物业服务中心】非常抱歉")
    closed = rendered("complaint_closed", "zh", dict(CONTACT, owner_url_token=TOKEN)).text
    assert "申请复核" in closed


@pytest.mark.parametrize("locale", ["zh", "en"])
@pytest.mark.parametrize("event_type", COMPLAINT_EVENTS)
def test_an_sms_with_the_link_stays_two_parts(event_type, locale):
    text = rendered(event_type, locale, dict(CONTACT, owner_url_token=TOKEN)).text
    assert sms.sms_segments(text).count <= 2, text


def test_a_link_a_caller_typed_never_goes_out():
    typed = {"complaint_id": "cmp-1", "complaint_url": "https://evil.example.net/c/x"}
    assert event_params.with_contact_params(typed, CONTACT, CONTEXT) == {"complaint_id": "cmp-1"}
    assert event_params.with_contact_params(typed, dict(CONTACT, owner_url_token=TOKEN), CONTEXT)[
        "complaint_url"] == f"https://wy.example.cn/c/{TOKEN}"


def test_a_link_must_use_what_its_event_or_the_contact_supplies():
    broken = {locale: dict(templates) for locale, templates in CATALOGUE.items()}
    broken["zh"]["complaint_closed"] = message_templates.parse_template("zh", "complaint_closed", {
        "audience": "owner", "text": "{complaint_id} {closed_at}", "link": "{survey_url}"})
    problems = notifications.check_templates(broken)
    assert problems == [("zh/complaint_closed: its link uses survey_url, which neither "
                         "complaint_closed nor the contact supplies")]
    with pytest.raises(message_templates.TemplateError, match="link must be non-empty"):
        message_templates.parse_template("zh", "t", {"audience": "owner", "text": "x", "link": " "})


def test_an_estates_own_wording_may_leave_the_link_out():
    template = message_templates.parse_template("zh", "complaint_received", {
        "audience": "owner", "text": "业主您好，投诉 {complaint_id} 已登记"})
    message = message_templates.render(template, {"complaint_id": "cmp-1",
                                       "complaint_url": "https://wy.example.cn/c/x"}, "物业")
    assert message.text == "【物业】业主您好，投诉 cmp-1 已登记"


# the settings ------------------------------------------------------------------------

def test_the_survey_link_derives_from_the_public_base_unless_set():
    derived = NotifySettings({"PUBLIC_BASE_URL": "https://wy.example.cn/"}).estate(None)
    assert derived.context.survey_link("tok") == "https://wy.example.cn/s/tok"
    assert derived.context.complaint_link("tok") == "https://wy.example.cn/c/tok"
    assert NotifySettings({}).estate(None).context.survey_link("t") == \
        "http://127.0.0.1:8000/s/t"
    own = NotifySettings({"PUBLIC_BASE_URL": "https://wy.example.cn",
                          "NOTIFY_SURVEY_BASE_URL": "https://survey.wy.cn/q/",
                          "NOTIFY_ESTATES": {"e-9": {"survey_base_url": "https://e9.wy.cn/s"}}})
    assert own.estate(None).context.survey_link("t") == "https://survey.wy.cn/q/t"
    assert own.estate("e-9").context.survey_link("t") == "https://e9.wy.cn/s/t"
    assert own.estate("e-9").context.complaint_link("t") == "https://wy.example.cn/c/t"


@pytest.mark.parametrize("environment, base, warned", [
    ("", "https://huifang.example.com", True), ("production", "http://127.0.0.1:8000", True),
    ("development", "https://huifang.example.com", False), ("", "https://wy.sunshine.cn", False)])
def test_a_placeholder_base_outside_development_is_said_loudly(caplog, environment, base,
                                                               warned):
    provider = EstatePolicies(notify_settings)
    provider.container = Mock(config={"PUBLIC_BASE_URL": base, "HUIFANG_ENV": environment})
    with caplog.at_level(logging.WARNING):
        provider.setup()
    said = [record.getMessage() for record in caplog.records
            if "PUBLIC_BASE_URL" in record.getMessage()]
    assert bool(said) is warned


# the service ---------------------------------------------------------------------------

@pytest.fixture
def intake():
    return intake_with_contact(dict(CONTACT, owner_url_token=TOKEN))


@pytest.fixture
def service(intake):
    settings = NotifySettings({"NOTIFY_CHANNELS": ["console"],
                               "PUBLIC_BASE_URL": "https://wy.example.cn"})
    return worker_factory(NotifyService, store=embedded(NotifyRepository),
                          clock=FrozenClock(NOW), intake=intake, settings=settings,
                          caller=Caller(None, None))


@pytest.mark.parametrize("event_type", COMPLAINT_EVENTS)
def test_notify_writes_the_link_it_gets_with_the_contact(service, intake, event_type):
    handler, template_id, data = COMPLAINT_EVENTS[event_type]
    getattr(service, handler)([parse_event(new_event(event_type, "intake", "e-1", data, NOW))])
    intake.get_contact.assert_called_once_with("cmp-0123456789abcdef")
    [delivery] = service.list_deliveries({"template": template_id})
    assert delivery["text"].endswith(f"https://wy.example.cn/c/{TOKEN}")
    assert delivery["status"] in ("sent", "queued")


def test_send_to_a_complaint_adds_its_link_and_drops_a_typed_one(service, intake):
    delivery = service.send({"channel": "console", "to": "cmp-0123456789abcdef",
                             "template": "complaint_received",
                             "params": {"complaint_id": "cmp-0123456789abcdef",
                                        "reply_due": "2026-10-12 10:30",
                                        "complaint_url": "https://evil.example.net/"}})
    assert delivery["text"].endswith(f"https://wy.example.cn/c/{TOKEN}")
    assert "evil" not in delivery["text"]
    intake.get_contact.return_value = dict(CONTACT)    # a household: no complaint, no link
    delivery = service.send({"channel": "console", "to": "h-1", "template": "complaint_received",
                             "params": {"complaint_id": "cmp-1", "reply_due": "2026-10-12"}})
    assert "/c/" not in delivery["text"]
    with pytest.raises(InvalidInput):    # the text's own parameters are still required
        service.send({"channel": "console", "to": "h-1", "template": "complaint_received",
                      "params": {"complaint_id": "cmp-1"}})
