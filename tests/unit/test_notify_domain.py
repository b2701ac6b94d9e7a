import logging
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notify import (
    channel_choice,
    delivery_log,
    event_params,
    message_templates,
    notifications,
    pacing,
    preferences,
    recipients,
    sms,
)
from services.notify.catalogue import load_catalogue, with_overrides
from services.notify.channels import ConsoleChannel, Message, UnknownChannel, load_channels
from shared.envelope import new_event, parse_event
from shared.quiet_hours import quiet_until
from shared.schemas.events import EVENTS

NOW = datetime(2026, 10, 9, 2, 30, tzinfo=UTC)   # 10:30 in Shanghai
CATALOGUE = load_catalogue()
CONTEXT = event_params.Context(zone="Asia/Shanghai", survey_base_url="https://wy.example.cn/s/",
                         estate_name="阳光花园")

# What each event's payload carries, as its publisher sends it.
EVENT_DATA = {
    "complaint_registered": {
        "complaint_id": "cmp-1", "household_id": "h-1", "category": "cleaning",
        "severity": "normal", "channel": "hotline", "received_at": NOW,
        "first_response_due": datetime(2026, 10, 12, 2, 30, tzinfo=UTC),
        "reply_due": datetime(2026, 10, 14, 2, 30, tzinfo=UTC),
    },
    "complaint_assigned": {
        "complaint_id": "cmp-1", "department": "工程部", "assignee_id": "eng-3",
        "assigned_at": NOW, "reply_due": datetime(2026, 10, 12, 2, 30, tzinfo=UTC),
        "summary": "楼道垃圾三天没人清理，业主电话 13812345678",
    },
    "complaint_repeated": {
        "complaint_id": "cmp-2", "repeat_of": "cmp-1", "household_id": "h-1",
        "category": "cleaning", "special_measures_due": datetime(2026, 10, 10, 2, 30, tzinfo=UTC),
        "summary": "楼道垃圾还是没人清理",
    },
    "complaint_resolved": {
        "complaint_id": "cmp-1", "staff_id": "eng-3", "resolved_at": NOW,
        "resolution": "已安排保洁每日两次清理楼道，并更换了破损的垃圾桶",
    },
    "complaint_review_requested": {
        "complaint_id": "cmp-1", "review_no": 1, "requested_at": NOW,
        "due_at": datetime(2026, 10, 14, 2, 30, tzinfo=UTC), "reason": "垃圾桶还是坏的",
    },
    "complaint_reviewed": {
        "complaint_id": "cmp-1", "review_no": 1, "outcome": "overturned",
        "reviewer_id": "mgr-1", "decided_at": NOW, "finding": "垃圾桶未更换",
    },
    "revisit_overdue": {
        "revisit_id": "rv-1", "kind": "complaint", "source_id": "cmp-1",
        "due_at": datetime(2026, 10, 8, 9, 0, tzinfo=UTC), "deadline": "promised_reply",
    },
    "survey_round_closed": {"round_id": "rnd-1", "invited": 120, "returned": 87,
                            "response_rate": 0.725},
    "rectification_created": {
        "rectification_id": "rect-1", "round_id": "rnd-1", "category": "greening",
        "department": "绿化部", "due_at": datetime(2026, 11, 8, 9, 0, tzinfo=UTC),
        "action": "补种中心花园枯死的草坪", "status": "open",
    },
    "rectification_done": {
        "rectification_id": "rect-1", "round_id": "rnd-1", "category": "greening",
        "department": "绿化部", "due_at": datetime(2026, 11, 8, 9, 0, tzinfo=UTC),
        "action": "补种中心花园枯死的草坪", "status": "done",
    },
    "complaint_overdue": {
        "complaint_id": "cmp-1", "deadline": "reply",
        "due_at": datetime(2026, 10, 14, 2, 30, tzinfo=UTC),
    },
    "complaint_escalated": {"complaint_id": "cmp-1", "level": 2, "role": "manager"},
    "complaint_instruction_recorded": {
        "complaint_id": "cmp-1", "instruction": "今天派工程部更换垃圾桶，联系13800138000",
        "instructed_by": "mgr-1", "role": "manager", "escalated_to": "manager",
        "instructed_at": datetime(2026, 10, 9, 2, 30, tzinfo=UTC),
        "summary": "楼道垃圾三天没人清理", "department": "环境部", "assignee_id": "s-7"},
    "complaint_deadline_approaching": {
        "complaint_id": "cmp-1", "deadline": "first_response",
        "due_at": datetime(2026, 10, 14, 2, 30, tzinfo=UTC), "minutes_left": 135,
        "summary": "楼道垃圾三天没人清理，电话13800138000", "department": "环境部",
        "assignee_id": None,
    },
    "complaint_closed": {
        "complaint_id": "cmp-1", "household_id": "h-1", "category": "cleaning",
        "severity": "normal", "closed_at": NOW, "owner_signoff": "satisfied", "closing_no": 1,
    },
    "revisit_scheduled": {
        "revisit_id": "rv-1", "kind": "complaint", "source_id": "cmp-1", "household_id": "h-1",
        "due_at": datetime(2026, 10, 15, 17, 0, tzinfo=UTC),   # 16 Oct in Shanghai
        "assigned_role": "staff", "method": "onsite", "token": "rv-token-abcdefghijk",
    },
    "revisit_booked": {
        "revisit_id": "rv-1", "household_id": "h-1",
        "at": datetime(2026, 10, 11, 6, 0, tzinfo=UTC), "method": "onsite",   # 14:00 local
    },
    "survey_invitation_issued": {
        "round_id": "rnd-1", "invitation_id": "inv-1", "household_id": "h-1",
        "token": "tok-abc", "expires_at": datetime(2026, 10, 31, 15, 59, tzinfo=UTC),
    },
    "survey_reminder_due": {
        "round_id": "rnd-1", "invitation_id": "inv-1", "household_id": "h-1",
        "token": "tok-abc", "reminder_no": 1,
    },
    "survey_report_published": {"round_id": "rnd-1", "satisfaction_rate": 0.8734,
                                "rectifications": 3},
    "survey_cadence_missed": {
        "period": "2026-H1", "cadence": "half_yearly",
        "period_start": datetime(2025, 12, 31, 16, 0, tzinfo=UTC),
        "period_end": datetime(2026, 6, 30, 16, 0, tzinfo=UTC),
    },
    "rectification_overdue": {
        "rectification_id": "rect-1", "round_id": "rnd-1", "category": "greening",
        "department": "绿化部", "due_at": datetime(2026, 10, 8, 9, 0, tzinfo=UTC),
    },
    "revisit_followup_opened": {
        "followup_id": "fu-rv-wo-1-after_repair", "revisit_id": "rv-wo-1-after_repair",
        "kind": "repair", "source_id": "wo-1", "household_id": "h-1", "department": "工程部",
        "answer_due_at": datetime(2026, 11, 8, 2, 30, tzinfo=UTC), "status": "open",
        "summary": "修完还是漏水，电话 13812345678",
    },
    "revisit_followup_overdue": {
        "followup_id": "fu-rv-wo-1-after_repair", "revisit_id": "rv-wo-1-after_repair",
        "kind": "repair", "source_id": "wo-1", "household_id": "h-1", "department": "工程部",
        "answer_due_at": datetime(2026, 11, 8, 2, 30, tzinfo=UTC), "status": "measures_recorded",
    },
    "revisit_followup_answered": {
        "followup_id": "fu-rv-wo-1-after_repair", "revisit_id": "rv-wo-1-after_repair",
        "kind": "repair", "source_id": "wo-1", "household_id": "h-1", "department": "工程部",
        "answer_due_at": datetime(2026, 11, 8, 2, 30, tzinfo=UTC), "status": "answered",
        "answer": "已更换屋面防水层，雨后复查无渗漏", "answered_at": NOW, "on_time": True,
    },
}


def parsed(event_type):
    """The payload as a consumer receives it (defaults filled, times parsed)."""
    source = EVENTS[event_type][0]
    return parse_event(new_event(event_type, source, "e-1", EVENT_DATA[event_type], NOW))["data"]


def rendered(event_type, locale="zh", index=0, signature="阳光花园物业"):
    notification = notifications.NOTIFICATIONS[event_type][index]
    params = notifications.message_params(notification, parsed(event_type), CONTEXT)
    return message_templates.render(CATALOGUE[locale][notification.template], params, signature)


def template(text, labels=None, template_id="t", **flags):
    return message_templates.Template(id=template_id, locale="zh", audience="owner", text=text,
                           labels=labels or {}, **flags)


# templates -----------------------------------------------------------------------

def test_the_shipped_templates_pass_the_check():
    assert set(CATALOGUE) == {"zh", "en"}
    assert notifications.check_templates(CATALOGUE) == []


def test_every_event_notify_handles_has_sample_data_here():
    assert set(EVENT_DATA) == set(notifications.NOTIFICATIONS)


@pytest.mark.parametrize("locale", ["zh", "en"])
@pytest.mark.parametrize("event_type, index", [
    (event_type, index) for event_type, notifications in sorted(notifications.NOTIFICATIONS.items())
    for index in range(len(notifications))])
def test_every_template_renders_from_what_its_event_supplies(locale, event_type, index):
    notification = notifications.NOTIFICATIONS[event_type][index]
    params = notifications.message_params(notification, parsed(event_type), CONTEXT)
    assert set(params) == {*notification.supplies, *event_params.ESTATE_PARAMS}
    message = rendered(event_type, locale, index)
    assert "{" not in message.text and "None" not in message.text
    assert "{" not in message.subject
    signed = "【阳光花园物业】" if locale == "zh" else "[阳光花园物业] "
    assert message.text.startswith(signed)
    template = CATALOGUE[locale][notification.template]
    for required in notification.requires:   # the point of the message is in it
        value = params[required]
        assert str(template.labels.get(required, {}).get(str(value), value)) in message.text


def test_complaint_acknowledgement_apologises_first_and_shows_number_and_local_deadline():
    text = rendered("complaint_registered").text
    assert text.startswith("【阳光花园物业】非常抱歉")
    assert "cmp-1" in text
    assert "2026-10-14 10:30" in text            # 02:30 UTC is 10:30 in Shanghai


@pytest.mark.parametrize("event_type, index, zh, en", [
    ("complaint_assigned", 0,
     ["cmp-1", "工程部", "2026-10-09 10:30", "楼道垃圾三天没人清理", "2026-10-12 10:30 前答复",
      "详情：http://127.0.0.1:8000/console/complaints/cmp-1"],
     ["assigned to 工程部", "reply by 2026-10-12 10:30", "/console/complaints/cmp-1"]),
    ("complaint_assigned", 1, ["cmp-1", "交由工程部处理", "2026-10-12 10:30 前答复您"],
     ["handled by 工程部", "reply by 2026-10-12 10:30"]),
    ("complaint_repeated", 0,
     ["重复投诉 cmp-2", "卫生", "前次 cmp-1", "楼道垃圾还是没人清理", "2026-10-10 10:30 前安排特殊措施",
      "/console/complaints/cmp-2"],
     ["Repeat complaint cmp-2", "(cleaning, earlier cmp-1)", "by 2026-10-10 10:30"]),
    ("complaint_resolved", 0, ["cmp-1 已处理：已安排保洁每日两次清理楼道"], ["dealt with: "]),
    ("complaint_review_requested", 0,
     ["申请复核", "第 1 次", "垃圾桶还是坏的", "2026-10-14 10:30 前作出复核决定",
      "/console/complaints/cmp-1"], ["decide by 2026-10-14 10:30"]),
    ("complaint_reviewed", 0, ["复核已有结果：重新处理", "垃圾桶未更换"], ["handled again"]),
    ("revisit_scheduled", 2, ["2026-10-16 前对投诉 cmp-1 进行上门回访", "预约",
                              "详情：http://127.0.0.1:8000/console/revisits/rv-1"],
     ["about complaint cmp-1", "Details: http://127.0.0.1:8000/console/revisits/rv-1"]),
    ("revisit_overdue", 0, ["投诉 cmp-1 的回访中承诺答复的期限 2026-10-08 17:00 已过", "上报",
                            "/console/revisits/rv-1"], ["promised reply deadline"]),
    ("survey_round_closed", 0, ["发出 120 份", "回收 87 份", "回收率 72.5%"],
     ["response rate 72.5%"]),
    ("rectification_created", 0, ["rect-1", "绿化", "补种中心花园枯死的草坪", "请绿化部于 2026-11-08"],
     ["by 2026-11-08"]),
    ("rectification_done", 0, ["绿化方面的整改已完成：补种中心花园枯死的草坪"], ["on greening"]),
    ("complaint_overdue", 0, ["答复期限 2026-10-14 10:30", "督办"], ["reply deadline"]),
    ("complaint_escalated", 0, ["第 2 级", "项目经理"], ["level 2", "estate manager"]),
    # the instruction reaches whoever has the complaint; a number in it stays masked
    ("complaint_instruction_recorded", 0,
     ["投诉 cmp-1", "楼道垃圾三天没人清理", "项目经理指示：今天派工程部更换垃圾桶", "138****8000",
      "/console/complaints/cmp-1"], ["the estate manager instructs", "/console/complaints/cmp-1"]),
    ("complaint_deadline_approaching", 0,
     ["投诉 cmp-1", "楼道垃圾三天没人清理", "首次回复期限 2026-10-14 10:30 即将到期",
      "还剩约 2 小时 15 分钟", "/console/complaints/cmp-1"],
     ["first-reply deadline", "2026-10-14 10:30", "about 2 h 15 min left",
      "/console/complaints/cmp-1"]),
    ("complaint_closed", 0, ["cmp-1", "2026-10-09 10:30", "处理完毕"], ["handled and closed"]),
    ("revisit_scheduled", 0, ["2026-10-16", "上门"], ["home visit"]),
    ("revisit_booked", 0, ["2026-10-11 14:00", "上门回访"], ["booked for 2026-10-11 14:00"]),
    ("revisit_booked", 1, ["温馨提示", "2026-10-11 14:00"], ["Reminder"]),
    ("survey_invitation_issued", 0, ["https://wy.example.cn/s/tok-abc", "2026-10-31"],
     ["Answer by 2026-10-31"]),
    ("survey_reminder_due", 0, ["https://wy.example.cn/s/tok-abc"], ["not yet received"]),
    ("survey_report_published", 0, ["87.3%", "整改措施 3 项"], ["overall satisfaction 87.3%"]),
    ("rectification_overdue", 0, ["rect-1", "绿化", "2026-10-08", "请绿化部"], ["(greening)"]),
])
def test_each_message_says_what_it_is_for_in_local_time_and_words(event_type, index, zh, en):
    zh_text, en_text = rendered(event_type, "zh", index).text, rendered(event_type, "en", index).text
    assert all(part in zh_text for part in zh), zh_text
    assert all(part in en_text for part in en), en_text


@pytest.mark.parametrize("event_type, index, zh, en", [
    # staff may answer for several estates: each message to them says which
    ("complaint_assigned", 0, "【阳光花园物业】阳光花园：投诉 cmp-1", "阳光花园: Complaint cmp-1"),
    ("complaint_overdue", 0, "阳光花园：投诉 cmp-1", "阳光花园: The reply deadline"),
    ("revisit_scheduled", 2, "阳光花园：请于 2026-10-16 前", "阳光花园: Please visit"),
    ("rectification_created", 0, "阳光花园：整改任务 rect-1", "阳光花园: Corrective action rect-1"),
    ("survey_round_closed", 0, "阳光花园：满意度调查", "阳光花园: Survey"),
    # owners read their estate's name where a message speaks of the estate
    ("rectification_done", 0, "阳光花园绿化方面的整改已完成", "on greening at 阳光花园"),
    ("survey_report_published", 0, "详见阳光花园公示栏", "notice board of 阳光花园"),
    ("survey_invitation_issued", 0, "参加阳光花园业主满意度调查", "the 阳光花园 owner satisfaction"),
])
def test_messages_name_the_estate(event_type, index, zh, en):
    assert zh in rendered(event_type, "zh", index).text
    assert en in rendered(event_type, "en", index).text


def test_a_report_without_answers_says_so_in_words():
    data = dict(parsed("survey_report_published"), satisfaction_rate=None)
    notification = notifications.NOTIFICATIONS["survey_report_published"][0]
    params = notifications.message_params(notification, data, CONTEXT)
    assert "暂无数据" in message_templates.render(CATALOGUE["zh"]["survey_report_published"], params, "x").text
    assert "not available" in message_templates.render(
        CATALOGUE["en"]["survey_report_published"], params, "x").text


def test_survey_link_joins_base_url_and_token_with_one_slash():
    assert event_params.Context(survey_base_url="https://a.cn/s").survey_link("t1") == "https://a.cn/s/t1"
    assert event_params.Context(survey_base_url="https://a.cn/s/").survey_link("t1") == "https://a.cn/s/t1"


def test_a_revisit_link_is_the_public_base_then_r_then_the_token():
    context = event_params.Context(public_base_url="https://wy.example.cn/")
    assert context.revisit_link("tok-1") == "https://wy.example.cn/r/tok-1"
    assert event_params.Context().revisit_link("tok-1") == "http://127.0.0.1:8000/r/tok-1"


def test_a_revisit_the_owner_may_answer_online_gets_the_message_with_its_link():
    data = dict(parsed("revisit_scheduled"), method="phone")
    plain, online = notifications.NOTIFICATIONS["revisit_scheduled"][:2]
    assert (plain.template, online.template) == ("revisit_scheduled", "revisit_online")
    assert plain.recipients(data) is None
    assert online.recipients(data).alternatives == (("contact", "h-1"),)
    for locale, words in (("zh", "如未回复"), ("en", "If we hear nothing")):
        text = message_templates.render(CATALOGUE[locale]["revisit_online"],
                             notifications.message_params(online, data, CONTEXT), "x").text
        assert "http://127.0.0.1:8000/r/rv-token-abcdefghijk " in text, text
        assert words in text and "2026-10-16" in text


def test_a_revisit_without_a_token_gets_the_message_without_a_link():
    data = dict(parsed("revisit_scheduled"), token=None)
    plain, online = notifications.NOTIFICATIONS["revisit_scheduled"][:2]
    assert online.recipients(data) is None
    assert plain.recipients(data).alternatives == (("contact", "h-1"),)
    assert "/r/" not in message_templates.render(CATALOGUE["zh"]["revisit_scheduled"],
                                      notifications.message_params(plain, data, CONTEXT), "x").text


def test_email_subject_is_rendered_too():
    assert rendered("complaint_registered").subject == "您的投诉已登记（编号 cmp-1）"
    plain = template("hi {n}")
    assert message_templates.render(plain, {"n": 1}, "物业").subject == "物业"   # no subject: the sender


@pytest.mark.parametrize("params", [
    {"complaint_id": "cmp-1"},
    {"complaint_id": "cmp-1", "reply_due": None},
    {"complaint_id": "cmp-1", "reply_due": "  "},
])
def test_a_missing_or_blank_parameter_raises_naming_it(params):
    with pytest.raises(message_templates.MissingParameters) as error:
        message_templates.render(CATALOGUE["zh"]["complaint_received"], params, "物业")
    assert error.value.missing == ["reply_due"]
    assert "reply_due" in str(error.value)


def test_check_finds_a_template_using_a_parameter_its_event_does_not_supply():
    broken = {locale: dict(templates) for locale, templates in CATALOGUE.items()}
    broken["en"]["complaint_received"] = template(
        "Dear {owner_name}, {complaint_id} by {reply_due}", template_id="complaint_received")
    problems = notifications.check_templates(broken)
    assert len(problems) == 1
    assert "en/complaint_received" in problems[0] and "owner_name" in problems[0]


def test_check_finds_a_template_that_leaves_out_what_the_message_is_for():
    broken = {locale: dict(templates) for locale, templates in CATALOGUE.items()}
    broken["zh"]["survey_invitation"] = message_templates.Template(
        id="survey_invitation", locale="zh", audience="owner", text="请参加满意度调查")
    assert notifications.check_templates(broken) == ["zh/survey_invitation: must show survey_url"]


def test_check_finds_a_template_written_for_the_wrong_audience():
    broken = {locale: dict(templates) for locale, templates in CATALOGUE.items()}
    broken["zh"]["complaint_assigned"] = message_templates.Template(
        id="complaint_assigned", locale="zh", audience="owner",
        text="{complaint_id} {summary} {reply_due}")
    assert notifications.check_templates(broken) == ["zh/complaint_assigned: audience must be staff"]


def test_check_finds_a_template_missing_in_one_locale():
    broken = {locale: dict(templates) for locale, templates in CATALOGUE.items()}
    del broken["en"]["revisit_reminder"]
    assert any(problem.startswith("en/revisit_reminder: missing")
               for problem in notifications.check_templates(broken))


@pytest.mark.parametrize("entry, problem", [
    ({"audience": "owner", "text": "{owner.phone}"}, "plain name"),
    ({"audience": "owner", "text": "{} done"}, "plain name"),
    ({"audience": "owner", "text": "{unclosed"}, "malformed"),
    ({"audience": "owner", "text": ""}, "text"),
    ({"audience": "owner"}, "text is missing"),
    ({"audience": "owner", "text": "hi", "subject": "{x.y}"}, "plain name"),
    ({"audience": "everyone", "text": "hi"}, "audience"),
    ({"audience": "owner", "text": "hi", "sender": "x"}, "expected only"),
    ({"audience": "owner", "text": "hi", "mandatory": "yes"}, "mandatory"),
])
def test_unusable_template_entries_are_refused(entry, problem):
    with pytest.raises(message_templates.TemplateError) as error:
        message_templates.parse_templates("zh", {"t": entry})
    assert problem in str(error.value) and "zh/t" in str(error.value)


def test_a_template_file_must_be_a_mapping(tmp_path):
    (tmp_path / "zh.yaml").write_text("- just a list\n", encoding="utf-8")
    with pytest.raises(message_templates.TemplateError):
        load_catalogue(tmp_path)


def test_labels_turn_values_into_words_and_leave_others_alone():
    greeting = template("{method} {n}", labels={"method": {"sms": "短信"}})
    assert message_templates.render(greeting, {"method": "sms", "n": 3}, "物业").text == "【物业】短信 3"
    assert message_templates.render(greeting, {"method": "fax", "n": 3}, "物业").text == "【物业】fax 3"


# per-estate wording --------------------------------------------------------------------

def test_an_estate_rewords_a_template_from_its_own_directory(tmp_path):
    (tmp_path / "zh.yaml").write_text(
        "complaint_received:\n  audience: owner\n  mandatory: true\n  immediate: true\n"
        "  text: \"业主您好，给您添麻烦了！投诉 {complaint_id} 已收到，{reply_due} 前答复。\"\n",
        encoding="utf-8")
    catalogue = with_overrides(CATALOGUE, "e-7", template_dir=tmp_path)
    assert catalogue["zh"]["complaint_received"].text.startswith("业主您好")
    assert catalogue["en"]["complaint_received"] == CATALOGUE["en"]["complaint_received"]
    assert catalogue["zh"]["complaint_closed"] == CATALOGUE["zh"]["complaint_closed"]
    assert CATALOGUE["zh"]["complaint_received"].text.startswith("非常抱歉")   # base unchanged


@pytest.mark.parametrize("templates, problem", [
    ({"zh": {"complaint_received": {"audience": "owner", "text": "{complaint_id} {owner}"}}},
     "owner"),
    ({"zh": {"birthday": {"audience": "owner", "text": "生日快乐"}}}, "overrides no template"),
    ({"fr": {"complaint_received": {"audience": "owner", "text": "{complaint_id}"}}}, "fr"),
    # the new staff and owner notices are checked as the old ones are
    ({"zh": {"complaint_repeated": {"audience": "supervisor",
                                    "text": "{complaint_id} {repeat_of} 尽快处理"}}},
     "must show special_measures_due"),
    ({"zh": {"complaint_routed": {"audience": "owner",
                                  "text": "{department} {reply_due} {assignee_phone}"}}},
     "assignee_phone"),
    ({"en": {"revisit_overdue": {"audience": "manager", "text": "{source_id} {deadline} {due_at}",
                                 "link": "{console_url} {complaint_url}"}}}, "complaint_url"),
    ({"zh": {"rectification_done": {"audience": "manager", "text": "{category} {action}"}}},
     "audience must be owner"),
])
def test_an_estate_override_that_does_not_fit_is_refused_at_load(templates, problem):
    with pytest.raises(message_templates.TemplateError) as error:
        with_overrides(CATALOGUE, "e-7", templates=templates)
    assert problem in str(error.value) and "e-7" in str(error.value)


# SMS segments ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, count, encoding", [
    ("", 0, "gsm7"),
    ("a" * 160, 1, "gsm7"),
    ("a" * 161, 2, "gsm7"),
    ("a" * 306, 2, "gsm7"),            # 2 x 153
    ("a" * 307, 3, "gsm7"),
    ("€" * 80, 1, "gsm7"),             # extension characters cost two septets
    ("€" * 81, 2, "gsm7"),
    ("中" * 70, 1, "ucs2"),
    ("中" * 71, 2, "ucs2"),
    ("中" * 134, 2, "ucs2"),           # 2 x 67
    ("中" * 135, 3, "ucs2"),
    ("a" * 69 + "中", 1, "ucs2"),      # one Chinese character makes the whole text UCS-2
    ("a" * 70 + "中", 2, "ucs2"),
    ("😀" * 35, 1, "ucs2"),            # a surrogate pair is two units
    ("中" * 66 + "😀" + "中" * 66, 3, "ucs2"),   # ... never split: 134 units, yet 3 parts
])
def test_sms_segments_are_counted_like_carriers_do(text, count, encoding):
    segments = sms.sms_segments(text)
    assert (segments.count, segments.encoding) == (count, encoding)


def test_the_signature_counts_towards_the_segments():
    body = "您" * 64                             # 64 characters alone fit in one SMS ...
    assert sms.sms_segments(body).count == 1
    signed = message_templates.sign(body, "阳光花园物业", "zh")   # ... 【阳光花园物业】 adds 8
    assert len(signed) == 72 and sms.sms_segments(signed).count == 2


def test_the_shipped_acknowledgement_fits_one_chinese_sms():
    assert sms.sms_segments(rendered("complaint_registered").text).count == 1


@given(st.text(alphabet=st.sampled_from("ab中€😀"), max_size=400))
def test_segments_never_fewer_than_the_units_allow(text):
    segments = sms.sms_segments(text)
    per_part = 153 if segments.encoding == "gsm7" else 67
    single = 160 if segments.encoding == "gsm7" else 70
    if segments.units <= single:
        assert segments.count == (1 if text else 0)
    else:
        assert segments.count >= math.ceil(segments.units / per_part)
        assert segments.count <= math.ceil(segments.units / (per_part - 1))


# quiet hours ------------------------------------------------------------------------------

def shanghai(hour, minute=0, day=9):
    return datetime(2026, 10, day, hour, minute, tzinfo=UTC) - timedelta(hours=8)


@pytest.mark.parametrize("now, until", [
    (shanghai(21, 59), None),
    (shanghai(22, 0), shanghai(8, 0, day=10)),
    (shanghai(23, 30), shanghai(8, 0, day=10)),
    (shanghai(0, 15, day=10), shanghai(8, 0, day=10)),
    (shanghai(7, 59, day=10), shanghai(8, 0, day=10)),
    (shanghai(8, 0, day=10), None),
    (shanghai(12, 0), None),
])
def test_quiet_hours_wrap_midnight_in_the_estate_time_zone(now, until):
    assert quiet_until(now, "22:00-08:00", "Asia/Shanghai") == until


def test_quiet_hours_within_one_day_and_none():
    assert quiet_until(shanghai(13), "12:00-14:00", "Asia/Shanghai") == shanghai(14)
    assert quiet_until(shanghai(15), "12:00-14:00", "Asia/Shanghai") is None
    assert quiet_until(shanghai(23), None, "Asia/Shanghai") is None


# channel choice ------------------------------------------------------------------

def test_channel_order_is_preferences_then_contact_then_config_and_only_configured():
    configured = ["console", "sms", "email"]
    assert channel_choice.channel_order(configured) == ["console", "sms", "email"]
    assert channel_choice.channel_order(configured, None, {"preferred_channel": "email"}) == [
        "email", "console", "sms"]
    assert channel_choice.channel_order(
        configured, {"channels": ["sms", "pigeon"]}, {"preferred_channel": "email"}
    ) == ["sms", "email", "console"]


def test_routes_skip_channels_the_contact_has_no_address_for():
    contact = {"phone": "13812345678", "email": None}
    fields = {"email": "email", "sms": "phone", "console": "phone"}
    assert channel_choice.routes(["email", "sms", "console"], fields, contact) == [
        {"channel": "sms", "address": "13812345678"},
        {"channel": "console", "address": "13812345678"}]
    assert channel_choice.routes(["email"], fields, contact) == []
    assert channel_choice.routes(["sms"], fields, None) == []


def test_opt_out_holds_back_all_but_mandatory_notices():
    optional, mandatory = template("x"), template("x", mandatory=True)
    assert channel_choice.opted_out({"opt_out": True}, optional)
    assert not channel_choice.opted_out({"opt_out": True}, mandatory)
    assert not channel_choice.opted_out({"opt_out": False}, optional)
    assert not channel_choice.opted_out(None, optional)


def test_the_shipped_mandatory_and_immediate_notices():
    zh = CATALOGUE["zh"]
    # the review outcome answers the owner's own request (第十四条): it goes even to those who
    # opted out; the other new owner notices (assignment, resolution, rectification) do not
    assert {t for t, v in zh.items() if v.mandatory} == {
        "complaint_received", "complaint_closed", "complaint_review_decided"}
    assert {t for t, v in zh.items() if v.immediate} == {"complaint_received"}


STAFF = [
    {"id": "eng-3", "roles": ["staff"], "department": "工程部"},
    {"id": "sup-1", "roles": ["supervisor"], "department": "客服部"},
    {"id": "mgr-1", "roles": ["manager", "supervisor"], "department": None},
]


@pytest.mark.parametrize("kind, value, ids", [
    ("staff", "eng-3", ["eng-3"]),
    ("role", "supervisor", ["sup-1", "mgr-1"]),
    ("department", "工程部", ["eng-3"]),
    ("department", "保安部", []),
])
def test_staff_recipients_by_id_role_or_department(kind, value, ids):
    assert [m["id"] for m in recipients.staff_matching(STAFF, kind, value)] == ids


def test_assignment_goes_to_the_assignee_or_else_the_department():
    notification = notifications.NOTIFICATIONS["complaint_assigned"][0]
    assert notification.recipients(parsed("complaint_assigned")).alternatives == (
        ("staff", "eng-3"), ("department", "工程部"), ("role", "supervisor"))
    without = dict(parsed("complaint_assigned"), assignee_id=None)
    assert notification.recipients(without).alternatives[0] == ("department", "工程部")


def test_a_revisit_of_a_common_area_job_has_no_household_to_tell():
    for token in (None, "rv-token-abcdefghijk"):
        data = dict(parsed("revisit_scheduled"), household_id=None, token=token)
        assert all(notification.recipients(data) is None
                   for notification in notifications.NOTIFICATIONS["revisit_scheduled"])


# who must act: the new staff notices ------------------------------------------------------

def notification_of(template_id):
    [found] = [(event_type, n) for event_type, notifications in notifications.NOTIFICATIONS.items()
               for n in notifications if n.template == template_id]
    return found


def recipients_of(template_id, **changes):
    event_type, notification = notification_of(template_id)
    return notification.recipients(dict(parsed(event_type), **changes))


def staff_ids(named, directory=STAFF):
    return [member["id"] for member in recipients.staff_for(directory, named)]


DIRECTORY = STAFF + [
    {"id": "mgr-2", "roles": ["manager"], "department": None},
    {"id": "cm-1", "roles": ["company_manager"], "department": None},
]


def test_a_repeat_complaint_goes_to_every_supervisor_and_manager_once_each():
    recipients = recipients_of("complaint_repeated")
    assert recipients.together
    assert recipients.alternatives == (("role", "supervisor"), ("role", "manager"))
    # mgr-1 is supervisor and manager: told once
    assert staff_ids(recipients, DIRECTORY) == ["sup-1", "mgr-1", "mgr-2"]


def test_an_approaching_deadline_goes_to_whoever_has_the_complaint():
    assert staff_ids(recipients_of("complaint_deadline_approaching", department="工程部",
                                   assignee_id="sup-1"), DIRECTORY) == ["sup-1"]
    assert staff_ids(recipients_of("complaint_deadline_approaching", department="工程部"),
                     DIRECTORY) == ["eng-3"]
    # no one in the department's directory: the supervisors who answer for the desk
    assert staff_ids(recipients_of("complaint_deadline_approaching"), DIRECTORY) == [
        "sup-1", "mgr-1"]


def test_without_together_the_first_alternative_that_finds_anyone_wins():
    overdue = recipients_of("complaint_overdue")
    assert not overdue.together
    assert staff_ids(overdue, DIRECTORY) == ["sup-1", "mgr-1"]
    assert staff_ids(overdue, [m for m in DIRECTORY if "supervisor" not in m["roles"]]) == [
        "mgr-2"]
    assert staff_ids(overdue, []) == []


@pytest.mark.parametrize("method, role, expected", [
    ("onsite", "supervisor", (("role", "supervisor"), ("role", "manager"))),
    ("onsite", "manager", (("role", "manager"),)),
    ("onsite", "staff", None),        # the desk's own worklist
    ("phone", "manager", None),       # not on site
])
def test_an_onsite_revisit_is_told_to_the_supervisor_or_manager_who_goes(method, role, expected):
    recipients = recipients_of("revisit_onsite", method=method, assigned_role=role, token=None)
    assert (recipients and recipients.alternatives) == expected


@pytest.mark.parametrize("template_id, page", [
    # the round's page: its report, ranking and rectifications
    ("survey_round_closed", "/console/surveys/rnd-1"),
    # a department may not open a round: its own list, each linking where it is moved on
    ("rectification_created", "/console/surveys/rectifications"),
    ("rectification_overdue", "/console/surveys/rectifications"),
])
def test_survey_duties_link_the_console_page_to_act_on(template_id, page):
    event_type, notification = notification_of(template_id)
    for locale in ("zh", "en"):
        text = message_templates.render(CATALOGUE[locale][template_id], notifications.message_params(
            notification, parsed(event_type), CONTEXT), "x").text
        assert text.endswith(page), text


@pytest.mark.parametrize("data, zh, en", [
    ({"deadline": "reply"}, "因答复逾期已升级", "estate manager: reply overdue"),
    ({"deadline": None, "manual": True}, "因员工上报已升级", "estate manager: raised by staff"),
])
def test_an_escalation_says_why_and_what_about(data, zh, en):
    event_type, notification = notification_of("complaint_escalated")
    event = dict(parsed(event_type), summary="楼道垃圾三天没人清理", **data)
    for locale, expected in (("zh", zh), ("en", en)):
        text = message_templates.render(CATALOGUE[locale]["complaint_escalated"],
                                        notifications.message_params(notification, event, CONTEXT),
                                        "x").text
        assert expected in text and "楼道垃圾三天没人清理" in text, text


def test_a_review_goes_to_the_manager_who_decides_else_a_supervisor():
    recipients = recipients_of("complaint_review_requested")
    assert staff_ids(recipients, DIRECTORY) == ["mgr-1", "mgr-2"]
    assert staff_ids(recipients, STAFF[:2]) == ["sup-1"]


def test_an_overdue_revisit_goes_up_to_the_manager_else_the_company_manager():
    recipients = recipients_of("revisit_overdue")
    assert not recipients.together
    assert staff_ids(recipients, DIRECTORY) == ["mgr-1", "mgr-2"]
    assert staff_ids(recipients, [DIRECTORY[-1]]) == ["cm-1"]


def test_a_closed_round_goes_to_the_estate_manager_and_the_company_manager():
    recipients = recipients_of("survey_round_closed")
    assert recipients.together
    assert staff_ids(recipients, DIRECTORY) == ["mgr-1", "mgr-2", "cm-1"]


def test_a_round_closed_with_nobody_invited_says_so_in_words():
    _, closed = notification_of("survey_round_closed")
    params = notifications.message_params(closed, dict(parsed("survey_round_closed"), response_rate=None), CONTEXT)
    assert "回收率 暂无数据" in message_templates.render(
        CATALOGUE["zh"]["survey_round_closed"], params, "x").text


def test_a_rectification_goes_to_its_department_else_the_manager():
    assert recipients_of("rectification_created").alternatives == (
        ("department", "绿化部"), ("role", "manager"))
    assert staff_ids(recipients_of("rectification_created", department="保安部"), DIRECTORY) == [
        "mgr-1", "mgr-2"]


@pytest.mark.parametrize("template_id", ["complaint_routed", "complaint_resolved",
                                         "complaint_review_decided"])
def test_owners_hear_of_their_complaint_with_its_page_and_within_quiet_hours(template_id):
    event_type, notification = notification_of(template_id)
    assert notification.recipients(parsed(event_type)).alternatives == (("contact", "cmp-1"),)
    for locale in ("zh", "en"):
        template = CATALOGUE[locale][template_id]
        assert template.audience == "owner" and not template.immediate
        assert template.link_params == {"complaint_url"}
        contact = {"owner_url_token": "tok-owner-abcdef"}
        params = event_params.with_contact_params(notifications.message_params(notification, parsed(event_type), CONTEXT),
                                            contact, CONTEXT)
        assert message_templates.render(template, params, "x").text.endswith(
            "http://127.0.0.1:8000/c/tok-owner-abcdef")


def test_a_done_rectification_is_told_to_every_household_of_the_estate():
    recipients = recipients_of("rectification_done")
    assert recipients.owners and recipients.alternatives == (("households", None),)
    assert not CATALOGUE["zh"]["rectification_done"].mandatory


@pytest.mark.parametrize("event_type, index, missing, words", [
    ("complaint_assigned", 0, {"summary": None, "reply_due": None}, ["内容见系统", "规定时限"]),
    ("complaint_assigned", 1, {"reply_due": None}, ["将于 规定时限 前答复您"]),
    ("complaint_repeated", 0, {"summary": None}, ["内容见系统"]),
    ("complaint_resolved", 0, {"resolution": None}, ["已按您反映的问题处理完毕"]),
    ("complaint_review_requested", 0, {"reason": None}, ["未说明理由"]),
    ("complaint_reviewed", 0, {"finding": None}, ["详见投诉页面"]),
    ("rectification_created", 0, {"action": None}, ["详见整改方案"]),
])
def test_an_event_published_before_it_carried_a_detail_still_makes_its_message(
        event_type, index, missing, words):
    """Events from before the payload had a summary, a deadline or what was done."""
    data = {key: value for key, value in EVENT_DATA[event_type].items() if key not in missing}
    payload = parse_event(new_event(event_type, EVENTS[event_type][0], "e-1", data, NOW))["data"]
    notification = notifications.NOTIFICATIONS[event_type][index]
    text = message_templates.render(CATALOGUE["zh"][notification.template],
                         notifications.message_params(notification, payload, CONTEXT), "x").text
    assert all(word in text for word in words), text


def test_quoted_free_text_is_cut_short_and_kept_on_one_line():
    assert event_params.excerpt("已清理\n楼道  ") == "已清理 楼道"
    assert event_params.excerpt("修" * 80) == "修" * 49 + "…"
    assert len(event_params.excerpt("修" * 80)) == event_params.EXCERPT_CHARS
    assert event_params.excerpt("  ") == event_params.excerpt(None) == event_params.NOT_AVAILABLE


def test_staff_messages_link_to_the_complaint_in_the_console():
    context = event_params.Context(public_base_url="https://wy.example.cn/")
    assert context.complaint_console_link("cmp/1") == \
        "https://wy.example.cn/console/complaints/cmp%2F1"
    text = message_templates.render(CATALOGUE["zh"]["complaint_escalated"], notifications.message_params(
        notifications.NOTIFICATIONS["complaint_escalated"][0], parsed("complaint_escalated"), context), "x").text
    assert text.endswith("详情：https://wy.example.cn/console/complaints/cmp-1")


# delivery state -----------------------------------------------------------------------

def _delivery(routes=None):
    return delivery_log.new_delivery(
        "ev-1:complaint_received", estate_id="e-1", template=CATALOGUE["zh"]["complaint_received"],
        rendered=message_templates.Rendered("【物业】...", "s"), ref="cmp-1", recipient="h-1",
        routes=routes or [{"channel": "sms_http", "address": "13812345678"},
                          {"channel": "email", "address": "zhang.san@example.com"}],
        now=NOW, source_event="ev-1")


def test_a_retryable_error_backs_off_then_falls_back_to_the_next_route():
    delivery, delays = _delivery(), (30, 120)
    busy = delivery_log.Outcome(error="gateway answered 503", retryable=True)
    step, delivery = delivery_log.after_try(delivery, busy, NOW, delays)
    assert step == "retry" and delivery["next_attempt_at"] == NOW + timedelta(seconds=30)
    step, delivery = delivery_log.after_try(delivery, busy, NOW, delays)
    assert step == "retry" and delivery["next_attempt_at"] == NOW + timedelta(seconds=120)
    step, delivery = delivery_log.after_try(delivery, busy, NOW, delays)
    assert step == "next" and delivery["channel"] == "email" and delivery["tries"] == 0
    step, delivery = delivery_log.after_try(delivery, delivery_log.Outcome(), NOW, delays)
    assert step == "sent"
    assert [(a["channel"], a["error"] is None) for a in delivery["attempts"]] == [
        ("sms_http", False), ("sms_http", False), ("sms_http", False), ("email", True)]


def test_an_error_no_retry_fixes_falls_back_at_once_and_the_last_route_fails():
    delivery = _delivery()
    refused = delivery_log.Outcome(error="gateway refused 13812345678", retryable=False)
    step, delivery = delivery_log.after_try(delivery, refused, NOW, (30,))
    assert step == "next"
    step, delivery = delivery_log.after_try(delivery, refused, NOW, (30,))
    assert step == "exhausted"
    changes, [event] = delivery_log.finished(delivery, NOW)
    assert changes["status"] == "failed" and changes["error"] == "gateway refused 138****5678"
    assert event["type"] == "notification_failed"


def test_a_daily_limit_on_every_route_suppresses_without_an_event():
    delivery = _delivery([{"channel": "sms_http", "address": "13812345678"}])
    step, delivery = delivery_log.after_try(delivery, delivery_log.Outcome(skipped="daily limit"), NOW, (30,))
    assert step == "exhausted"
    changes, events = delivery_log.finished(delivery, NOW)
    assert changes["status"] == "suppressed" and "daily limit" in changes["reason"]
    assert events == []


def test_sent_and_failed_events_name_the_household_never_the_address():
    delivery = _delivery()
    _, [sent] = delivery_log.sent(delivery, "console", "13812345678", [], NOW)
    changes, [failed] = delivery_log.failed(delivery, [], "gateway refused 13812345678", NOW)
    for event in (sent, failed):
        data = parse_event(event)["data"]
        assert data["recipient"] == "h-1" and data["delivery_id"] == delivery["_id"]
        assert "13812345678" not in str(event)
    assert failed["type"] == "notification_failed"
    assert changes["error"] == "gateway refused 138****5678"


def test_public_view_masks_every_address():
    view = delivery_log.public_view(_delivery())
    assert view["address"] == "138****5678"
    assert [route["address"] for route in view["routes"]] == ["138****5678", "z***@example.com"]
    assert "claim" not in view and "claimed_until" not in view
    assert _delivery()["address"] == "13812345678"    # only the delivery log keeps it


def test_redact_masks_any_number_or_email_in_text():
    text = delivery_log.redact("to +86 13812345678, 010-62345678 and zhang.san@example.com failed")
    assert "13812345678" not in text and "62345678" not in text and "zhang.san@" not in text
    assert "z***@example.com" in text


def test_quota_keys_count_per_local_day():
    late = shanghai(23, 59)
    assert pacing.quota_key("h-1", "sms_http", late, "Asia/Shanghai") == "h-1|sms_http|2026-10-09"
    assert pacing.quota_key("h-1", "sms_http", late + timedelta(minutes=1),
                            "Asia/Shanghai") == "h-1|sms_http|2026-10-10"


# channels -------------------------------------------------------------------------

@pytest.mark.parametrize("address, shown, hidden", [
    ("13812345678", "138****5678", "13812345678"),
    ("zhang.san@example.com", "z***@example.com", "zhang.san@"),
])
def test_console_channel_logs_the_message_with_the_address_masked(caplog, address, shown, hidden):
    caplog.set_level(logging.INFO, logger="services.notify.channels")
    ConsoleChannel().send(address, Message(text="您好"))
    assert shown in caplog.text and "您好" in caplog.text
    assert hidden not in caplog.text


def test_channels_are_found_through_entry_points():
    channels = load_channels(["console", "console"])
    assert list(channels) == ["console"]
    assert isinstance(channels["console"], ConsoleChannel)


def test_an_unknown_channel_is_a_clear_error():
    with pytest.raises(UnknownChannel) as error:
        load_channels(["console", "pigeon"])
    assert "pigeon" in str(error.value) and "sms_http" in str(error.value)


# preferences ----------------------------------------------------------------------

def test_preferences_merge_only_what_is_given():
    first = preferences.merge_preferences(None, {"opt_out": True}, "h-1", NOW)
    assert first == {"_id": "h-1", "channels": [], "quiet_hours": None, "opt_out": True,
                     "locale": None, "updated_at": NOW}
    second = preferences.merge_preferences(first, {"channels": ["console"]}, "h-1", NOW)
    assert second["opt_out"] is True and second["channels"] == ["console"]
    assert preferences.preferences_view(second)["household_id"] == "h-1"


def test_an_unsatisfied_revisit_reaches_its_department_with_the_answer_date_and_link():
    text = rendered("revisit_followup_opened").text
    assert "工程部" in text and "2026-11-08" in text and "修完还是漏水" in text
    assert "13812345678" not in text          # the owner's words travel masked
    assert text.endswith("/console/revisits/followups/fu-rv-wo-1-after_repair")
    [notification] = notifications.NOTIFICATIONS["revisit_followup_opened"]
    assert notification.recipients(parsed("revisit_followup_opened")).alternatives == (
        ("department", "工程部"), ("role", "manager"))
    [overdue] = notifications.NOTIFICATIONS["revisit_followup_overdue"]
    assert overdue.recipients(parsed("revisit_followup_overdue")).alternatives == (
        ("role", "manager"), ("role", "company_manager"))
    answered = rendered("revisit_followup_answered").text
    assert "已更换屋面防水层" in answered and "维修" in answered
