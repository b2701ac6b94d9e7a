"""The owner's complaint page and the online complaint form, page logic without a broker:
intake stands behind a fake, the rate counters are the gateway's embedded store."""
import re
from datetime import UTC, datetime, timedelta

import pytest
from nameko.exceptions import RemoteError
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway import api, owner_complaint, pages
from services.gateway.owner import OwnerContext
from services.gateway.repository import GatewayRepository
from shared.rpc import RpcTimeout
from shared.schemas.vocabulary import COMPLAINT_CATEGORIES
from tests.helpers import embedded

# ahead of the real clock: the embedded store expires rate counters (a TTL index) by it
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
SECRET = "s" * 40
TOKEN = "Zm9yLXRoZS1vd25lcl9fXw"
VIEW = {
    "number": "cmp-0123456789abcdef", "category": "noise", "channel": "wechat",
    "received_at": "2026-11-23T01:00:00+00:00", "status": "closed", "answer_due": None,
    "timeline": [
        {"step": "received", "at": "2026-11-23T01:00:00+00:00"},
        {"step": "acknowledged", "at": "2026-11-23T02:10:00+00:00"},
        {"step": "assigned", "at": "2026-11-23T02:20:00+00:00", "department": "秩序部",
         "reply_promised_at": "2026-11-25T02:00:00+00:00"},
        {"step": "resolved", "at": "2026-11-23T02:30:00+00:00",
         "resolution": "已约谈装修单位，晚八点后停工"},
        {"step": "closed", "at": "2026-11-23T02:40:00+00:00"},
        {"step": "reopened", "at": "2026-11-23T03:00:00+00:00", "source": "revisit"},
        {"step": "reopened", "at": "2026-11-23T03:01:00+00:00", "source": None},
        {"step": "review_requested", "at": "2026-11-23T04:00:00+00:00",
         "due_at": "2026-11-26T04:00:00+00:00"},
        {"step": "review_upheld", "at": "2026-11-23T05:00:00+00:00", "finding": "维持原结果"},
        {"step": "review_overturned", "at": "2026-11-23T06:00:00+00:00", "finding": "重新处理"},
    ],
    "review": {"can_request": True, "open": None},
    "link_expires_at": "2027-02-21T02:40:00+00:00",
}
CATEGORIES = [{"category": key, "department": "客服中心", "survey_category": False}
              for key in COMPLAINT_CATEGORIES]
FORM = {"category": "cleaning", "content": "楼道垃圾三天没清", "name": "李雷",
        "phone": "13900001111", "location": "3栋502"}


class FakeIntake:
    """intake's owner RPCs as the gateway calls them (``services.call``)."""

    def __init__(self):
        self.view = dict(VIEW)
        self.calls = []
        self.errors = {}

    def call(self, target, *args):
        self.calls.append((target, *args))
        if target in self.errors:
            raise self.errors[target]
        if target == "intake.owner_view":
            if args[0] != TOKEN:
                raise RemoteError("InvalidInput", '{"token": ["unknown or expired link"]}')
            return self.view
        if target == "intake.owner_request_review":
            return self.view
        if target == "intake.list_categories":
            if args[0] != "e-1":
                raise RemoteError("NotFound", f"estate {args[0]!r} not found")
            return CATEGORIES
        if target == "intake.register_online_complaint":
            return dict(self.view, owner_token=TOKEN)
        raise AssertionError(target)


@pytest.fixture
def intake():
    return FakeIntake()


@pytest.fixture
def repository():
    return embedded(GatewayRepository)


@pytest.fixture
def context(intake, repository):
    def make(method="GET", path="/", data=None, language="zh-CN,zh", address="10.0.0.7",
             now=NOW):
        builder = EnvironBuilder(method=method, path=path, data=data,
                                 headers={"Accept-Language": language},
                                 environ_base={"REMOTE_ADDR": address})
        return OwnerContext(intake, repository, SECRET, now, Request(builder.get_environ()))
    return make


def text_of(response):
    return response.get_data(as_text=True)


def nonce(key=TOKEN):
    return pages.form_nonce(SECRET, key, NOW)


def estate_nonce():
    return nonce("estate:e-1")


# the owner's complaint page ------------------------------------------------------------

def test_the_page_shows_the_number_status_and_every_step_in_chinese(context):
    response = owner_complaint.complaint_page(context(), TOKEN)
    html = text_of(response)
    assert response.status_code == 200
    for shown in ("cmp-0123456789abcdef", "噪音", "已办结", "由秩序部负责处理", "承诺于 2026-11-25 10:00",
                  "已约谈装修单位，晚八点后停工", "回访后重新处理", "维持原结果",
                  "将于 2026-11-26 12:00 前答复", "2026-11-23 09:00", "此链接有效期至 2027-02-21"):
        assert shown in html, shown
    assert html.count('class="step ') == len(VIEW["timeline"])


def test_every_page_carries_the_security_headers(context):
    response = owner_complaint.complaint_page(context(), TOKEN)
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


def test_english_when_the_browser_prefers_it(context):
    html = text_of(owner_complaint.complaint_page(context(language="en-GB,en;q=0.9"), TOKEN))
    assert "Progress" in html and "Ask for a review" in html and "Noise" in html


def test_an_unknown_token_gets_a_page_that_reveals_nothing(context):
    response = owner_complaint.complaint_page(context(), "unknown-token-of-22-ch")
    html = text_of(response)
    assert response.status_code == 404
    assert "unknown-token" not in html and "cmp-" not in html and "链接无效" in html


def test_the_review_button_shows_only_when_a_review_may_be_asked(context, intake):
    html = text_of(owner_complaint.complaint_page(context(), TOKEN))
    assert 'id="review-form"' in html and f'action="/c/{TOKEN}/review"' in html
    assert '<label class="field" for="reason">' in html and f'value="{nonce()}"' in html
    intake.view = dict(VIEW, status="assigned", review={"can_request": False, "open": None})
    assert 'id="review-form"' not in text_of(owner_complaint.complaint_page(context(), TOKEN))
    intake.view = dict(VIEW, status="under_review", review={
        "can_request": False, "open": {"requested_at": "2026-11-23T04:00:00+00:00",
                                       "due_at": "2026-11-26T04:00:00+00:00"}})
    html = text_of(owner_complaint.complaint_page(context(), TOKEN))
    assert 'id="review-form"' not in html and 'id="review-open"' in html and "复核中" in html


def test_a_review_request_goes_to_intake_and_comes_back_to_the_page(context, intake):
    response = owner_complaint.review_submit(
        context("POST", data={"nonce": nonce(), "reason": "噪音仍然存在"}), TOKEN)
    assert (response.status_code, response.headers["Location"]) == (303, f"/c/{TOKEN}")
    assert ("intake.owner_request_review", TOKEN, {"reason": "噪音仍然存在"}) in intake.calls


@pytest.mark.parametrize("offered", [None, "", "0" * 32, "stale"])
def test_a_review_without_a_fresh_nonce_is_refused(context, intake, offered):
    if offered == "stale":
        offered = pages.form_nonce(SECRET, TOKEN, NOW - timedelta(hours=pages.NONCE_HOURS + 1))
    data = {"reason": "x"} if offered is None else {"nonce": offered, "reason": "x"}
    response = owner_complaint.review_submit(context("POST", data=data), TOKEN)
    assert response.status_code == 403
    assert not any(call[0] == "intake.owner_request_review" for call in intake.calls)


def test_a_nonce_of_another_link_does_not_do(context):
    data = {"nonce": pages.form_nonce(SECRET, "another-token-000000000", NOW), "reason": "x"}
    assert owner_complaint.review_submit(context("POST", data=data), TOKEN).status_code == 403


@pytest.mark.parametrize("reason, message", [("  ", "请填写不满意的原因"), ("长" * 2001, "2000")])
def test_a_refused_reason_comes_back_kept_and_marked(context, intake, reason, message):
    intake.errors["intake.owner_request_review"] = RemoteError(
        "InvalidInput", '{"reason": ["must not be empty"]}')
    response = owner_complaint.review_submit(
        context("POST", data={"nonce": nonce(), "reason": reason}), TOKEN)
    html = text_of(response)
    assert response.status_code == 422
    assert message in html and 'aria-invalid="true"' in html
    assert reason.strip() in html


def test_asked_twice_the_page_just_shows_where_it_stands(context, intake):
    intake.errors["intake.owner_request_review"] = RemoteError(
        "InvalidTransition", "cannot request a review of complaint: it is under_review")
    response = owner_complaint.review_submit(
        context("POST", data={"nonce": nonce(), "reason": "再来"}), TOKEN)
    assert (response.status_code, response.headers["Location"]) == (303, f"/c/{TOKEN}")


def test_a_link_used_too_often_is_told_to_wait(context):
    for _ in range(60):
        owner_complaint.complaint_page(context(), TOKEN)
    response = owner_complaint.complaint_page(context(), TOKEN)
    assert response.status_code == 429 and response.headers["Retry-After"]


# the online complaint form ---------------------------------------------------------------

def test_the_form_lists_the_estates_categories_in_chinese_with_a_label_for_each_field(context):
    response = owner_complaint.complaint_form(context(path="/e/e-1/complain"), "e-1")
    html = text_of(response)
    assert response.status_code == 200
    assert '<option value="noise" >噪音</option>' in html.replace("  ", " ")
    for field in ("category", "content", "location", "name", "phone", "website"):
        assert f'for="{field}"' in html and f'id="{field}"' in html, field
    assert f'value="{estate_nonce()}"' in html and 'action="/e/e-1/complain"' in html


@pytest.mark.parametrize("locale", pages.LOCALES)
def test_every_complaint_category_has_a_name_in_every_language(locale):
    words = pages.catalogue(locale)
    assert all(words.get(f"category_{key}") for key in COMPLAINT_CATEGORIES)


def test_an_unknown_estate_gets_the_page_that_reveals_nothing(context):
    for call in (owner_complaint.complaint_form,
                 lambda ctx, estate: owner_complaint.complaint_submit(ctx, estate)):
        response = call(context("POST", data=dict(FORM, nonce=estate_nonce())), "e-404")
        assert response.status_code == 404 and "e-404" not in text_of(response)


def test_a_complaint_sent_goes_to_intake_as_online_and_on_to_its_page(context, intake):
    response = owner_complaint.complaint_submit(
        context("POST", data=dict(FORM, nonce=estate_nonce())), "e-1")
    assert (response.status_code, response.headers["Location"]) == (
        303, f"/c/{TOKEN}?received=1")
    [(_, data)] = [call for call in intake.calls
                   if call[0] == "intake.register_online_complaint"]
    assert data == {"estate_id": "e-1", "category": "cleaning", "content": "楼道垃圾三天没清",
                    "reporter": {"name": "李雷", "phone": "13900001111"}, "location": "3栋502"}


def test_the_confirmation_shows_the_number_and_the_link_to_keep(context, intake):
    intake.view = dict(VIEW, status="registered", timeline=VIEW["timeline"][:1],
                       review={"can_request": False, "open": None}, link_expires_at=None,
                       answer_due="2026-11-26T01:00:00+00:00")
    html = text_of(owner_complaint.complaint_page(context(path=f"/c/{TOKEN}"), TOKEN,
                                                  received=True))
    assert 'id="received"' in html and "编号 cmp-0123456789abcdef" in html
    assert f'<a id="owner-link" href="/c/{TOKEN}">http://localhost/c/{TOKEN}</a>' in html
    assert "预计答复时间" in html and 'id="review-form"' not in html
    intake.view = VIEW                       # an old complaint: no confirmation
    html = text_of(owner_complaint.complaint_page(context(), TOKEN, received=True))
    assert 'id="received"' not in html


@pytest.mark.parametrize("missing", ["category", "content", "name", "phone"])
def test_a_form_with_a_field_left_out_comes_back_kept_and_marked(context, intake, missing):
    form = dict(FORM, nonce=estate_nonce(), **{missing: " "})
    response = owner_complaint.complaint_submit(context("POST", data=form), "e-1")
    html = text_of(response)
    assert response.status_code == 422
    assert f'aria-describedby="{missing}-error"' in html
    kept = [value for field, value in FORM.items() if field != missing]
    assert all(value in html for value in kept)
    assert not any(call[0] == "intake.register_online_complaint" for call in intake.calls)


def test_what_intake_refuses_is_marked_on_the_form(context, intake):
    intake.errors["intake.register_online_complaint"] = RemoteError(
        "InvalidInput", '{"reporter": {"phone": ["not a valid mainland mobile or landline"]}}')
    response = owner_complaint.complaint_submit(
        context("POST", data=dict(FORM, phone="12345", nonce=estate_nonce())), "e-1")
    assert response.status_code == 422
    assert 'aria-describedby="phone-error"' in text_of(response)


def test_a_bot_filling_the_hidden_field_is_thanked_and_nothing_is_registered(context, intake):
    response = owner_complaint.complaint_submit(
        context("POST", data=dict(FORM, nonce=estate_nonce(), website="http://spam")), "e-1")
    assert response.status_code == 200 and "感谢" in text_of(response)
    assert not any(call[0] == "intake.register_online_complaint" for call in intake.calls)


def test_an_expired_form_comes_back_with_what_was_typed(context, intake):
    stale = pages.form_nonce(SECRET, "estate:e-1", NOW - timedelta(hours=pages.NONCE_HOURS + 1))
    for offered in (stale, nonce(TOKEN), pages.form_nonce(SECRET, "estate:e-2", NOW)):
        response = owner_complaint.complaint_submit(
            context("POST", data=dict(FORM, nonce=offered)), "e-1")
        html = text_of(response)
        assert response.status_code == 403 and FORM["content"] in html
        assert f'value="{estate_nonce()}"' in html           # a fresh one to send again
    assert not any(call[0] == "intake.register_online_complaint" for call in intake.calls)


def test_a_phone_number_files_five_complaints_a_day_however_it_is_typed(context, intake):
    for number, phone in enumerate(["13900001111", "+86 139 0000 1111", "139-0000-1111",
                                    "8613900001111", "13900001111"]):
        response = owner_complaint.complaint_submit(context(
            "POST", data=dict(FORM, phone=phone, nonce=estate_nonce()),
            address=f"10.0.1.{number}"), "e-1")
        assert response.status_code == 303
    response = owner_complaint.complaint_submit(context(
        "POST", data=dict(FORM, nonce=estate_nonce()), address="10.0.2.1"), "e-1")
    assert response.status_code == 429 and "今日提交次数已达上限" in text_of(response)
    other = owner_complaint.complaint_submit(context(
        "POST", data=dict(FORM, phone="13900002222", nonce=estate_nonce()),
        address="10.0.2.2"), "e-1")
    assert other.status_code == 303


def test_the_rate_counters_keep_no_phone_number(context, repository):
    owner_complaint.complaint_submit(context("POST", data=dict(FORM, nonce=estate_nonce())),
                                     "e-1")
    keys = " ".join(doc["_id"] for doc in repository.db.rate_counters.find())
    assert "complaint-phone:" in keys and "13900001111" not in keys


def test_an_address_sends_thirty_complaints_an_hour(context):
    for number in range(30):
        owner_complaint.complaint_submit(context(
            "POST", data=dict(FORM, phone=f"139000{number:05d}", nonce=estate_nonce())), "e-1")
    response = owner_complaint.complaint_submit(context(
        "POST", data=dict(FORM, phone="13700000000", nonce=estate_nonce())), "e-1")
    assert response.status_code == 429


def test_with_intake_down_the_form_keeps_what_was_typed(context, intake):
    intake.errors["intake.register_online_complaint"] = RpcTimeout("intake did not answer")
    response = owner_complaint.complaint_submit(
        context("POST", data=dict(FORM, nonce=estate_nonce())), "e-1")
    assert response.status_code == 503 and FORM["content"] in text_of(response)
    assert response.headers["Retry-After"]


def test_no_page_about_a_complaint_shows_a_phone_number(context, intake):
    html = text_of(owner_complaint.complaint_page(context(), TOKEN, received=True))
    assert not re.search(r"1[3-9]\d{9}", html)


def test_no_api_operation_reaches_what_only_owners_pages_may_ask():
    owners_only = {"intake.owner_view", "intake.owner_request_review",
                   "intake.register_online_complaint", "intake.get_contact"}
    assert not any(operation.rpc in owners_only for operation in api.OPERATIONS)
