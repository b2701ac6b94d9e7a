"""The owner's online revisit page /r/{token}, page logic without a broker: revisit stands
behind a fake, the rate counters are the gateway's embedded store."""
from datetime import UTC, datetime, timedelta

import pytest
from nameko.exceptions import RemoteError
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway import owner_revisit, pages
from services.gateway.owner import OwnerContext
from services.gateway.repository import GatewayRepository
from shared.schemas.vocabulary import COMPLAINT_CATEGORIES, REVISIT_KINDS, SATISFACTION_LEVELS
from tests.helpers import embedded

# ahead of the real clock: the embedded store expires rate counters (a TTL index) by it
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
SECRET = "s" * 40
TOKEN = "cmV2aXNpdC10b2tlbi0xMjM"
VIEW = {"kind": "complaint", "complaint_id": "cmp-0123456789abcdef", "category": "noise",
        "due_at": "2026-11-26T02:00:00+00:00", "expires_at": "2026-12-03T02:00:00+00:00",
        "timezone": "Asia/Shanghai", "state": "open"}
ANSWER = {"satisfaction": "unsatisfied", "resolved": "no", "comments": "晚上还是很吵"}


class FakeRevisit:
    """revisit's owner RPCs as the gateway calls them (``services.call``)."""

    def __init__(self):
        self.view = dict(VIEW)
        self.calls = []
        self.refusal = None     # what record_online_revisit raises, if anything

    def call(self, target, *args):
        self.calls.append((target, *args))
        if args[0] != TOKEN:
            raise RemoteError("InvalidInput", '{"token": ["unknown link"]}')
        if target == "revisit.online_revisit":
            return self.view
        if target == "revisit.record_online_revisit":
            if self.refusal:
                raise self.refusal
            self.view = dict(self.view, state="answered")
            return self.view
        raise AssertionError(target)


@pytest.fixture
def revisit():
    return FakeRevisit()


@pytest.fixture
def context(revisit):
    repository = embedded(GatewayRepository)

    def make(method="GET", data=None, language="zh-CN,zh"):
        builder = EnvironBuilder(method=method, path=f"/r/{TOKEN}", data=data,
                                 headers={"Accept-Language": language},
                                 environ_base={"REMOTE_ADDR": "10.0.0.7"})
        return OwnerContext(revisit, repository, SECRET, NOW, Request(builder.get_environ()))
    return make


def text_of(response):
    return response.get_data(as_text=True)


def post(context, **fields):
    return owner_revisit.revisit_submit(context("POST", data={
        "nonce": pages.form_nonce(SECRET, TOKEN, NOW), **fields}), TOKEN)


def test_the_form_says_what_it_is_about_and_asks_with_labelled_radios(context):
    response = owner_revisit.revisit_page(context(), TOKEN)
    html = text_of(response)
    assert response.status_code == 200
    assert "关于您的投诉（编号 cmp-0123456789abcdef，噪音类）" in html
    assert "此链接在 2026-12-03 10:00 前有效" in html          # Shanghai time
    for level in SATISFACTION_LEVELS:
        assert f'<label class="choice" for="satisfaction-{level}">' in html
        assert f'id="satisfaction-{level}" name="satisfaction" value="{level}"' in html
    for value in ("yes", "no"):
        assert f'id="resolved-{value}" name="resolved" value="{value}"' in html
    assert '<label class="comment-label" for="comments">' in html
    assert 'id="comments" name="comments"' in html and 'maxlength="2000"' in html
    assert f'action="/r/{TOKEN}"' in html and "<script" not in html
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_english_when_the_browser_prefers_it(context):
    html = text_of(owner_revisit.revisit_page(context(language="en-GB,en;q=0.9"), TOKEN))
    assert "About your complaint no. cmp-0123456789abcdef (Noise)" in html
    assert "Very unsatisfied" in html and "No, not solved" in html


@pytest.mark.parametrize("kind", [kind for kind in REVISIT_KINDS if kind != "complaint"])
def test_a_work_order_or_routine_revisit_says_what_it_is_about(context, revisit, kind):
    revisit.view = {key: value for key, value in VIEW.items()
                    if key not in ("complaint_id", "category")} | {"kind": kind}
    for language in ("zh-CN", "en"):
        html = text_of(owner_revisit.revisit_page(context(language=language), TOKEN))
        assert pages.catalogue(language[:2])[f"revisit_about_{kind}"] in html


@pytest.mark.parametrize("locale", ["zh", "en"])
def test_every_complaint_category_has_its_words(locale):
    words = pages.catalogue(locale)
    assert all(f"category_{category}" in words for category in COMPLAINT_CATEGORIES)


def test_an_answer_goes_to_revisit_and_comes_back_to_the_thank_you(context, revisit):
    response = post(context, **ANSWER)
    assert (response.status_code, response.headers["Location"]) == (303, f"/r/{TOKEN}")
    assert ("revisit.record_online_revisit", TOKEN, {
        "satisfaction": "unsatisfied", "resolved": False, "comments": "晚上还是很吵"}) \
        in revisit.calls
    thanks = owner_revisit.revisit_page(context(), TOKEN)
    assert thanks.status_code == 200 and "感谢您的回复" in text_of(thanks)
    assert 'name="satisfaction"' not in text_of(thanks)


def test_a_second_submit_records_nothing_and_lands_on_the_thank_you(context, revisit):
    revisit.view = dict(VIEW, state="answered")
    response = post(context, **ANSWER)
    assert (response.status_code, response.headers["Location"]) == (303, f"/r/{TOKEN}")
    assert not [call for call in revisit.calls if call[0] == "revisit.record_online_revisit"]


def test_missing_choices_are_marked_and_what_was_given_is_kept(context, revisit):
    response = post(context, satisfaction="neutral", comments="还行吧")
    html = text_of(response)
    assert response.status_code == 422
    assert 'id="errors"' in html and "还有 1 处需要填写或修改" in html
    assert 'fieldset class="question has-error" id="q-resolved"' in html
    assert 'aria-describedby="e-resolved"' in html and "请选择一项。" in html
    assert 'value="neutral"\n               checked' in html and "还行吧</textarea>" in html
    assert not [call for call in revisit.calls if call[0] == "revisit.record_online_revisit"]


def test_a_forged_choice_or_an_overlong_comment_is_refused_on_the_page(context):
    html = text_of(post(context, satisfaction="ecstatic", resolved="maybe",
                        comments="长" * 2001))
    assert "还有 3 处需要填写或修改" in html
    assert html.count("这一项的内容无法接受") == 2 and "请精简到 2000 字以内" in html


def test_without_a_fresh_nonce_nothing_is_taken(context, revisit):
    response = owner_revisit.revisit_submit(context("POST", data=ANSWER), TOKEN)
    assert response.status_code == 403 and "页面已过期" in text_of(response)
    assert revisit.calls == []


def test_answered_meanwhile_by_the_other_submit_shows_where_it_stands(context, revisit):
    revisit.refusal = RemoteError(
        "InvalidInput", '{"token": ["this revisit has already been answered"]}')
    response = post(context, **ANSWER)
    assert (response.status_code, response.headers["Location"]) == (303, f"/r/{TOKEN}")


@pytest.mark.parametrize("state, status, words", [
    ("answered", 200, "感谢您的回复"), ("closed", 410, "此回访已结束"), ("expired", 410, "链接已过期")])
def test_each_state_has_its_page(context, revisit, state, status, words):
    revisit.view = dict(VIEW, state=state)
    response = owner_revisit.revisit_page(context(), TOKEN)
    assert response.status_code == status and words in text_of(response)
    assert "cmp-0123456789abcdef" not in text_of(response)


def test_an_unknown_link_gets_a_page_that_reveals_nothing(context):
    for response in (owner_revisit.revisit_page(context(), "unknown-token-of-22-ch"),
                     owner_revisit.revisit_submit(context("POST", data={
                         "nonce": pages.form_nonce(SECRET, "unknown-token-of-22-ch", NOW),
                         **ANSWER}), "unknown-token-of-22-ch")):
        html = text_of(response)
        assert response.status_code == 404 and "链接无效" in html
        assert "unknown-token" not in html and "cmp-" not in html
