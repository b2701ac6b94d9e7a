"""An owner answers the satisfaction survey on a phone: the link from the invitation
message, every question answered by tapping its label, the thank-you page, the report
counting it — with JavaScript and without; the validation error that keeps what was
filled in; a half-filled form that survives a reload."""
import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import households, register_estate, wait_until

pytestmark = [pytest.mark.broker, pytest.mark.browser]

THANKS = "感谢您的参与"
# the answers given, question by question (cycled): 5 非常满意 … "na" 不了解
ANSWERS = ("5", "4", "5", "3", "na", "4", "2", "5", "4", "1", "5")


def survey_links(gateway, estate, count=1, **round_fields):
    """A round for ``count`` new households of ``estate``; the link each invitation
    message carries (from notify's delivery log), and the round."""
    register_estate(gateway, estate, "碧水湾小区", households(estate, count, phones="1391234"))
    now = datetime.now(UTC)
    created = gateway.request("POST", "/api/v1/survey/rounds", token=gateway.admin, json={
        "title": "2026年下半年业主满意度调查", "estate_ids": [estate],
        "opens_at": (now - timedelta(minutes=1)).isoformat(),
        "closes_at": (now + timedelta(days=14)).isoformat(), **round_fields})
    assert created.status_code in (200, 201), created.text
    round_ = created.json()

    def invitations():
        listed = gateway.request("GET", "/api/v1/notify/deliveries", token=gateway.admin,
                                 params={"template": "survey_invitation", "ref": round_["id"]})
        assert listed.status_code == 200, listed.text
        items = listed.json()["items"]
        return items if len(items) == count else None

    messages = wait_until(invitations, timeout=30, interval=0.2,
                          message="the survey invitations in the delivery log")
    links = {}
    for message in messages:
        found = re.search(r"https?://\S+/s/[\w-]+", message["text"])
        assert found, message["text"]
        links[message["recipient"]] = found.group()
    assert all(link.startswith(gateway.base_url + "/s/") for link in links.values()), links
    return [links[f"{estate}-{n}"] for n in range(count)], round_


def report(gateway, round_id):
    answer = gateway.request("GET", f"/api/v1/survey/rounds/{round_id}/report",
                             token=gateway.admin)
    assert answer.status_code == 200, answer.text
    return answer.json()


def questions(browser):
    """The questionnaire's question keys, in order (from the radio groups' ids)."""
    return [fieldset.get_attribute("id")[2:] for fieldset in browser.find_all("fieldset[id^=q-]")]


def answer(browser, key, value):
    """Tap the label of a choice, as a thumb would."""
    browser.click(f'label[for="a-{key}-{value}"]')
    assert browser.find(f"#a-{key}-{value}").is_selected()


def checked(browser, key):
    chosen = [radio.get_attribute("value") for radio in browser.find_all(f'[name="answer.{key}"]')
              if radio.is_selected()]
    return chosen[0] if chosen else None


def fill_all(browser, keys):
    for n, key in enumerate(keys):
        answer(browser, key, ANSWERS[n % len(ANSWERS)])
    browser.type(f"#c-{keys[0]}", "楼道每天都很干净，谢谢保洁阿姨")
    browser.type("#c-general", "希望增加小区的停车位")


def submit(browser):
    browser.click('button[name=action][value=submit]')


def answer_everything(browser, link, gateway, round_):
    browser.open(link)
    assert "满意度调查" in browser.title
    keys = questions(browser)
    assert len(keys) >= 3
    browser.check("questionnaire")
    fill_all(browser, keys)
    browser.shot("filled-in")
    submit(browser)
    browser.wait_for_heading(THANKS)
    assert browser.url == link                # POST, then 303 back to the link
    browser.check("thank-you")
    counted = report(gateway, round_["id"])
    assert counted["returned"] == 1, counted
    # the same link again: the thank-you page, no second questionnaire
    browser.open(link)
    browser.wait_for_heading(THANKS)
    assert not browser.find_all("form.survey")


def test_an_owner_answers_every_question_and_the_report_counts_it(gateway, browser):
    (link,), round_ = survey_links(gateway, "br-sv-js")
    answer_everything(browser, link, gateway, round_)


def test_the_survey_works_the_same_without_javascript(gateway, browser_nojs):
    (link,), round_ = survey_links(gateway, "br-sv-nojs")
    assert browser_nojs.driver.execute_script("return 1") == 1   # WebDriver still can
    answer_everything(browser_nojs, link, gateway, round_)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_a_question_left_out_is_marked_and_the_rest_is_kept(gateway, request, javascript):
    page = request.getfixturevalue("browser" if javascript else "browser_nojs")
    (link,), round_ = survey_links(gateway, f"br-sv-err-{page.profile}")
    page.open(link)
    keys = questions(page)
    fill_all(page, keys)
    missing = keys[1]
    # take the second answer back: a radio cannot be unticked, so the form goes without it
    page.driver.execute_script(
        "document.querySelectorAll('[name=\"answer.' + arguments[0] + '\"]')"
        ".forEach(function (r) { r.checked = false; });", missing)
    submit(page)
    page.wait_for(lambda: page.find_all(".errors"), "the error summary")
    assert "还有 1 处需要填写或修改" in page.text(".errors")
    assert page.find(".errors").get_attribute("role") == "alert"
    # the question left out: marked, its error said and tied to it
    question = page.find(f"#q-{missing}")
    assert "has-error" in question.get_attribute("class")
    assert question.get_attribute("aria-describedby") == f"e-{missing}"
    assert page.text(f"#e-{missing}") == "请选择一项（不清楚可选“不了解”）。"
    assert all(radio.get_attribute("aria-invalid") == "true"
               for radio in page.find_all(f'[name="answer.{missing}"]'))
    # the others: still answered, no error; the comments still there
    for n, key in enumerate(keys):
        if key != missing:
            assert checked(page, key) == ANSWERS[n % len(ANSWERS)], key
            assert page.find(f"#a-{key}-5").get_attribute("aria-invalid") is None
    assert page.find(f"#c-{keys[0]}").get_attribute("value") == "楼道每天都很干净，谢谢保洁阿姨"
    assert page.find("#c-general").get_attribute("value") == "希望增加小区的停车位"
    page.check("validation-error")
    assert report(gateway, round_["id"])["returned"] == 0
    # answering it now sends the whole questionnaire
    answer(page, missing, "4")
    submit(page)
    page.wait_for_heading(THANKS)
    assert report(gateway, round_["id"])["returned"] == 1


def test_javascript_saves_a_draft_that_survives_a_reload(gateway, browser):
    (link,), round_ = survey_links(gateway, "br-sv-draft-js")
    browser.open(link)
    keys = questions(browser)
    answer(browser, keys[0], "5")
    answer(browser, keys[1], "2")
    browser.type(f"#c-{keys[1]}", "电梯经常停运")
    answer(browser, keys[2], "na")          # leaving the comment box: its change is saved too

    def saved():   # what the server would show a fresh visit (the draft), read as HTML
        html = gateway.http.get(link, timeout=10).text
        return ("电梯经常停运" in html and re.search(
            rf'id="a-{keys[2]}-na"[^>]*checked', html) is not None)

    wait_until(saved, timeout=10, interval=0.3, message="the autosaved draft")
    browser.reload()
    assert [checked(browser, key) for key in keys[:4]] == ["5", "2", "na", None]
    assert browser.find(f"#c-{keys[1]}").get_attribute("value") == "电梯经常停运"
    browser.check("draft-restored")
    # not the browser's own memory of the form: the link opened anew shows the same
    browser.open(link)
    assert [checked(browser, key) for key in keys[:4]] == ["5", "2", "na", None]
    assert report(gateway, round_["id"])["returned"] == 0


def test_without_javascript_the_save_button_keeps_a_draft(gateway, browser_nojs):
    page = browser_nojs
    (link,), round_ = survey_links(gateway, "br-sv-draft-nojs")
    page.open(link)
    keys = questions(page)
    answer(page, keys[0], "4")
    answer(page, keys[2], "3")
    page.type("#c-general", "垃圾分类的指引可以再清楚一点")
    page.click('button[name=action][value=save]')
    page.wait_for(lambda: page.find_all(".notice"), "the saved notice")
    assert page.text(".notice") == "已暂存。您可以稍后打开同一链接继续填写。"
    page.check("draft-saved")
    page.open(link)                          # later: the same link, the same answers
    assert [checked(page, key) for key in keys[:3]] == ["4", None, "3"]
    assert page.find("#c-general").get_attribute("value") == "垃圾分类的指引可以再清楚一点"
    assert not page.find_all(".notice")
    assert report(gateway, round_["id"])["returned"] == 0


def test_closed_and_unknown_links_say_so(gateway, browser):
    (link,), round_ = survey_links(gateway, "br-sv-closed")
    closed = gateway.request("POST", f"/api/v1/survey/rounds/{round_['id']}/close",
                             token=gateway.admin)
    assert closed.status_code == 200, closed.text
    browser.open(link)
    browser.wait_for_heading("调查已结束")
    browser.check("closed")
    browser.open(gateway.url("/s/no-such-token-at-all"))
    browser.wait_for_heading("链接无效")
    browser.check("unknown-link")
    # axe-core really ran inside the page, its CSP (no inline script) notwithstanding
    assert "script-src 'self'" in gateway.http.get(link, timeout=10).headers[
        "Content-Security-Policy"]
    browser.driver.execute_script(
        "document.querySelector('main').insertAdjacentHTML('beforeend', '<button></button>')")
    with pytest.raises(AssertionError, match="button-name"):
        browser.assert_accessible("self-check")
