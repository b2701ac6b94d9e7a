import logging
from datetime import UTC, datetime

import pytest

from services.notify import domain
from services.notify.catalogue import load_catalogue
from services.notify.channels import ConsoleChannel, UnknownChannel, load_channels
from shared.envelope import parse_event

NOW = datetime(2026, 10, 9, 2, 30, tzinfo=UTC)   # 10:30 in Shanghai
CATALOGUE = load_catalogue()

# What each event's payload carries (as parsed by the consumer).
EVENT_DATA = {
    "complaint_registered": {
        "complaint_id": "cmp-1", "household_id": "h-1", "category": "cleaning",
        "severity": "normal", "channel": "hotline", "received_at": NOW,
        "first_response_due": datetime(2026, 10, 12, 2, 30, tzinfo=UTC),
        "reply_due": datetime(2026, 10, 14, 2, 30, tzinfo=UTC), "repeat_of": None,
    },
    "revisit_scheduled": {
        "revisit_id": "rv-1", "kind": "complaint", "source_id": "cmp-1", "household_id": "h-1",
        "due_at": datetime(2026, 10, 15, 17, 0, tzinfo=UTC),   # 16 Oct in Shanghai
        "assigned_role": "staff", "method": "onsite",
    },
}


def template(text, labels=None, template_id="t"):
    return domain.Template(id=template_id, locale="zh", audience="owner", text=text,
                           labels=labels or {})


# templates -----------------------------------------------------------------------

def test_the_shipped_templates_pass_the_check():
    assert set(CATALOGUE) == {"zh", "en"}
    assert domain.check_templates(CATALOGUE) == []


@pytest.mark.parametrize("locale", ["zh", "en"])
@pytest.mark.parametrize("event_type", sorted(domain.NOTIFICATIONS))
def test_every_template_renders_from_what_its_event_supplies(locale, event_type):
    notification = domain.NOTIFICATIONS[event_type]
    params = notification.build(EVENT_DATA[event_type], "Asia/Shanghai")
    assert set(params) == set(notification.supplies)
    text = domain.render(CATALOGUE[locale][notification.template], params)
    assert "{" not in text and "None" not in text


def test_complaint_acknowledgement_apologises_first_and_shows_local_deadline():
    notification = domain.NOTIFICATIONS["complaint_registered"]
    params = notification.build(EVENT_DATA["complaint_registered"], "Asia/Shanghai")
    text = domain.render(CATALOGUE["zh"]["complaint_received"], params)
    assert text.startswith("【物业服务中心】非常抱歉")
    assert "cmp-1" in text
    assert "2026-10-14 10:30" in text            # 02:30 UTC is 10:30 in Shanghai


def test_revisit_notice_shows_local_due_date_and_the_method_in_words():
    notification = domain.NOTIFICATIONS["revisit_scheduled"]
    params = notification.build(EVENT_DATA["revisit_scheduled"], "Asia/Shanghai")
    assert "2026-10-16" in domain.render(CATALOGUE["zh"]["revisit_scheduled"], params)
    assert "上门" in domain.render(CATALOGUE["zh"]["revisit_scheduled"], params)
    assert "home visit" in domain.render(CATALOGUE["en"]["revisit_scheduled"], params)
    assert "onsite" not in domain.render(CATALOGUE["en"]["revisit_scheduled"], params)


def test_the_event_data_used_here_is_what_consumers_receive():
    from shared.envelope import new_event
    for event_type, data in EVENT_DATA.items():
        source = "intake" if event_type.startswith("complaint") else "revisit"
        assert parse_event(new_event(event_type, source, "e-1", data, NOW))["data"] == data


@pytest.mark.parametrize("params", [
    {"complaint_id": "cmp-1"},
    {"complaint_id": "cmp-1", "reply_due": None},
    {"complaint_id": "cmp-1", "reply_due": "  "},
])
def test_a_missing_or_blank_parameter_raises_naming_it(params):
    with pytest.raises(domain.MissingParameters) as error:
        domain.render(CATALOGUE["zh"]["complaint_received"], params)
    assert error.value.missing == ["reply_due"]
    assert "reply_due" in str(error.value)


def test_check_finds_a_template_using_a_parameter_its_event_does_not_supply():
    broken = {locale: dict(templates) for locale, templates in CATALOGUE.items()}
    broken["en"]["complaint_received"] = template("Dear {owner_name}, {complaint_id}",
                                                  template_id="complaint_received")
    problems = domain.check_templates(broken)
    assert len(problems) == 1
    assert "en/complaint_received" in problems[0] and "owner_name" in problems[0]


def test_check_finds_a_template_missing_in_one_locale():
    broken = {locale: dict(templates) for locale, templates in CATALOGUE.items()}
    del broken["en"]["revisit_scheduled"]
    assert any(problem.startswith("en/revisit_scheduled: missing")
               for problem in domain.check_templates(broken))


@pytest.mark.parametrize("entry, problem", [
    ({"audience": "owner", "text": "{owner.phone}"}, "plain name"),
    ({"audience": "owner", "text": "{} done"}, "plain name"),
    ({"audience": "owner", "text": "{unclosed"}, "malformed"),
    ({"audience": "owner", "text": ""}, "text"),
    ({"audience": "everyone", "text": "hi"}, "audience"),
    ({"audience": "owner", "text": "hi", "sender": "x"}, "expected only"),
])
def test_unusable_template_entries_are_refused(entry, problem):
    with pytest.raises(domain.TemplateError) as error:
        domain.parse_templates("zh", {"t": entry})
    assert problem in str(error.value) and "zh/t" in str(error.value)


def test_a_template_file_must_be_a_mapping(tmp_path):
    (tmp_path / "zh.yaml").write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(domain.TemplateError):
        load_catalogue(tmp_path)


def test_labels_turn_values_into_words_and_leave_others_alone():
    greeting = template("{method} {n}", labels={"method": {"sms": "短信"}})
    assert domain.render(greeting, {"method": "sms", "n": 3}) == "短信 3"
    assert domain.render(greeting, {"method": "fax", "n": 3}) == "fax 3"


# channel choice ------------------------------------------------------------------

def test_channel_order_is_preferences_then_contact_then_config_and_only_configured():
    configured = ["console", "sms", "email"]
    assert domain.channel_order(configured) == ["console", "sms", "email"]
    assert domain.channel_order(configured, None, {"preferred_channel": "email"}) == [
        "email", "console", "sms"]
    assert domain.channel_order(
        configured, {"channels": ["sms", "pigeon"]}, {"preferred_channel": "email"}
    ) == ["sms", "email", "console"]


def test_routes_skip_channels_the_contact_has_no_address_for():
    contact = {"phone": "13812345678", "email": None}
    fields = {"email": "email", "sms": "phone", "console": "phone"}
    assert domain.routes(["email", "sms", "console"], fields, contact) == [
        ("sms", "13812345678"), ("console", "13812345678")]
    assert domain.routes(["email"], fields, contact) == []
    assert domain.routes(["sms"], fields, None) == []


def test_opt_out():
    assert domain.opted_out({"opt_out": True})
    assert not domain.opted_out({"opt_out": False})
    assert not domain.opted_out(None)


# delivery records and events ------------------------------------------------------

def _delivery():
    return domain.new_delivery(
        "ev-1:complaint_received", estate_id="e-1", template=CATALOGUE["zh"]["complaint_received"],
        text="...", ref="cmp-1", recipient="h-1", channel="console", address="13812345678",
        now=NOW, source_event="ev-1")


def test_sent_and_failed_events_name_the_household_never_the_address():
    delivery = _delivery()
    _, [sent] = domain.sent(delivery, "console", "13812345678", [], NOW)
    changes, [failed] = domain.failed(delivery, [], "gateway refused 13812345678", NOW)
    for event in (sent, failed):
        data = parse_event(event)["data"]
        assert data["recipient"] == "h-1" and data["delivery_id"] == delivery["_id"]
        assert "13812345678" not in str(event)
    assert failed["type"] == "notification_failed"
    assert changes["error"] == "gateway refused 138****5678"


def test_public_view_masks_the_address():
    assert domain.public_view(_delivery())["address"] == "138****5678"
    assert _delivery()["address"] == "13812345678"    # only the delivery log keeps it


def test_redact_masks_any_number_or_email_in_text():
    text = domain.redact("to +86 13812345678 and zhang.san@example.com failed")
    assert "13812345678" not in text and "zhang.san@" not in text
    assert "z***@example.com" in text


# channels -------------------------------------------------------------------------

@pytest.mark.parametrize("address, shown, hidden", [
    ("13812345678", "138****5678", "13812345678"),
    ("zhang.san@example.com", "z***@example.com", "zhang.san@"),
])
def test_console_channel_logs_the_message_with_the_address_masked(caplog, address, shown, hidden):
    caplog.set_level(logging.INFO, logger="services.notify.channels")
    ConsoleChannel().send(address, "您好")
    assert shown in caplog.text and "您好" in caplog.text
    assert hidden not in caplog.text


def test_channels_are_found_through_entry_points():
    channels = load_channels(["console", "console"])
    assert list(channels) == ["console"]
    assert isinstance(channels["console"], ConsoleChannel)


def test_an_unknown_channel_is_a_clear_error():
    with pytest.raises(UnknownChannel) as error:
        load_channels(["console", "pigeon"])
    assert "pigeon" in str(error.value) and "console" in str(error.value)


# preferences ----------------------------------------------------------------------

def test_preferences_merge_only_what_is_given():
    first = domain.merge_preferences(None, {"opt_out": True}, "h-1", NOW)
    assert first == {"_id": "h-1", "channels": [], "quiet_hours": None, "opt_out": True,
                     "updated_at": NOW}
    second = domain.merge_preferences(first, {"channels": ["console"]}, "h-1", NOW)
    assert second["opt_out"] is True and second["channels"] == ["console"]
    assert domain.preferences_view(second)["household_id"] == "h-1"
