"""An owner follows a complaint on a phone: the page behind the link in the apology
message shows each step as staff move the complaint, and 申请复核 asks for a review; the
online revisit answered unsatisfied reopens it; the estate's online complaint form
registers a complaint and the apology goes out. Staff act through the HTTP API."""
import re

import pytest

from tests.helpers import (
    close_complaint,
    household,
    register_complaint,
    register_estate,
    wait_until,
)

pytestmark = [pytest.mark.broker, pytest.mark.browser]

ESTATE, HOUSEHOLD = "br-complaints", "br-c-1"
ESTATE_NAME = "锦绣江南"
LINK = r"https?://[^\s]+/{page}/[A-Za-z0-9_-]{{16,}}"


@pytest.fixture(scope="module")
def clerk(gateway):
    """An estate with one household, and its front-desk clerk."""
    register_estate(gateway, ESTATE, ESTATE_NAME,
                    [household(HOUSEHOLD, "5", "2", "1203", "李娜", "13712345678")])
    return gateway.user("clerk.browser", ["cs_staff"], [ESTATE])


def register(gateway, clerk, content, category="noise"):
    return register_complaint(gateway, clerk, ESTATE, HOUSEHOLD, content, category)["id"]


def act(gateway, clerk, complaint_id, action, body=None):
    done = gateway.request("POST", f"/api/v1/complaints/{complaint_id}/{action}",
                           token=clerk, json=body or {})
    assert done.status_code == 200, (action, done.text)
    return done.json()


def complaint(gateway, clerk, complaint_id):
    return gateway.request("GET", f"/api/v1/complaints/{complaint_id}", token=clerk).json()


def message(gateway, ref, template, status="sent"):
    """The message notify sent about ``ref`` (an administrator reads links whole)."""
    def sent():
        listed = gateway.request("GET", "/api/v1/notify/deliveries", token=gateway.admin,
                                 params={"ref": ref, "template": template})
        assert listed.status_code == 200, listed.text
        return [item for item in listed.json()["items"] if item["status"] == status] or None
    return wait_until(sent, timeout=30, interval=0.2, message=f"{template} {status}")[0]


def link_in(text, page):
    found = re.search(LINK.format(page=page), text)
    assert found, text
    return found.group()


def steps(browser):
    """The timeline's step names, oldest first."""
    return [item.find_element("css selector", "strong").text
            for item in browser.find_all("#timeline li")]


def test_each_step_appears_as_the_complaint_moves_and_a_review_can_be_asked(
        gateway, clerk, browser):
    complaint_id = register(gateway, clerk, "楼上装修每天到晚上十点")
    link = link_in(message(gateway, complaint_id, "complaint_received")["text"], "c")
    assert link.startswith(gateway.base_url + "/c/")

    browser.open(link)
    browser.wait_for_heading("我的投诉")
    assert browser.text("#number") == complaint_id
    assert browser.text("#status") == "已受理"
    assert steps(browser) == ["收到投诉"]
    browser.check("registered")

    act(gateway, clerk, complaint_id, "acknowledge", {"note": "内部备注：业主很着急"})
    browser.reload()
    assert steps(browser) == ["收到投诉", "首次回复"]
    assert "内部备注" not in browser.text()
    assert browser.text("#status") == "已回复，处理中"

    act(gateway, clerk, complaint_id, "assign", {"department": "秩序部"})
    browser.reload()
    assert steps(browser)[-1] == "转交责任部门"
    assert "由秩序部负责处理。" in browser.text("#timeline")
    assert browser.text("#status") == "处理中"
    browser.check("assigned")

    act(gateway, clerk, complaint_id, "resolve", {"resolution": "已约谈装修单位，晚八点后停工"})
    browser.reload()
    assert steps(browser)[-1] == "处理结果"
    assert browser.text("blockquote.answer") == "已约谈装修单位，晚八点后停工"
    assert not browser.find_all("#review-form")      # not before it is closed

    act(gateway, clerk, complaint_id, "close", {"owner_signoff": "none"})
    closing = message(gateway, complaint_id, "complaint_closed")["text"]
    assert link_in(closing, "c") == link               # the closing links the same page
    browser.reload()
    assert steps(browser)[-1] == "投诉办结"
    assert browser.text("#status") == "已办结"
    browser.check("closed")

    # 申请复核 without a reason: said on the page, nothing asked
    browser.click("#review-submit")
    browser.wait_for(lambda: browser.find_all("#reason-error"), "the reason's error")
    assert browser.text("#reason-error") == "请填写不满意的原因。"
    assert browser.find("#reason").get_attribute("aria-invalid") == "true"
    assert browser.find("#reason").get_attribute("aria-describedby") == "reason-error"
    browser.check("review-reason-missing")
    assert complaint(gateway, clerk, complaint_id)["status"] == "closed"

    browser.type("#reason", "晚上九点后仍有噪音")
    browser.click("#review-submit")
    browser.wait_for(lambda: browser.find_all("#review-open"), "the review under way")
    assert browser.url == link                          # 303 back to the page
    assert browser.text("#status") == "复核中"
    assert steps(browser)[-1] == "申请复核"
    assert not browser.find_all("#review-form")
    browser.check("review-requested")
    staff_view = complaint(gateway, clerk, complaint_id)
    assert staff_view["status"] == "under_review"
    assert staff_view["reviews"][-1]["reason"] == "晚上九点后仍有噪音"


def test_an_unsatisfied_online_revisit_reopens_the_complaint(gateway, clerk, browser):
    complaint_id = register(gateway, clerk, "三单元楼道灯坏了一周", "public_facilities")
    complaint_link = link_in(message(gateway, complaint_id, "complaint_received")["text"], "c")
    close_complaint(gateway, clerk, complaint_id, note="马上安排", department=None,
                    resolution="已更换灯具", signoff="none")

    def announced():
        listed = gateway.request("GET", "/api/v1/revisits", token=clerk,
                                 params={"source_id": complaint_id}).json()["items"]
        return [item for item in listed if item["announced"]] or None
    [revisit] = wait_until(announced, timeout=30, interval=0.2, message="the revisit announced")
    link = link_in(message(gateway, revisit["id"], "revisit_online")["text"], "r")

    browser.open(link)
    browser.wait_for_heading("回访")
    assert complaint_id in browser.text("#about") and "公共设施" in browser.text("#about")
    browser.check("questions")
    browser.click('label[for="satisfaction-unsatisfied"]')
    browser.click('label[for="resolved-no"]')
    assert browser.find("#satisfaction-unsatisfied").is_selected()
    assert browser.find("#resolved-no").is_selected()
    browser.type("#comments", "灯还是不亮，晚上回家很黑")
    browser.shot("answered")
    browser.click("#submit")
    browser.wait_for_heading("感谢您的回复")
    assert browser.url == link
    browser.check("thank-you")

    def reopened():
        seen = complaint(gateway, clerk, complaint_id)
        return seen if seen["status"] == "reopened" else None
    seen = wait_until(reopened, timeout=30, interval=0.2, message="the complaint reopened")
    assert seen["reopen_source"] == "revisit"
    assert "灯还是不亮" in seen["history"][-1]["note"]

    # the owner's complaint page says so too
    browser.open(complaint_link)
    assert browser.text("#status") == "重新处理中"
    assert steps(browser)[-1] == "重新处理"
    assert "回访后重新处理。" in browser.text("#timeline")
    browser.check("complaint-reopened")

    # the revisit link takes no second answer
    browser.open(link)
    browser.wait_for_heading("感谢您的回复")
    assert not browser.find_all("#revisit-form")


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_the_online_complaint_form_registers_and_the_apology_is_sent(
        gateway, clerk, request, javascript):
    page = request.getfixturevalue("browser" if javascript else "browser_nojs")
    phone = "1361234567" + ("1" if javascript else "2")
    page.open(gateway.url(f"/e/{ESTATE}/complain"))
    page.wait_for_heading("网上投诉")
    page.check("form")

    # the name left out: marked, and what was typed is kept
    page.find("#category").send_keys("噪音")             # a select takes its option's text
    page.type("#content", "小区门口的垃圾站每天早上五点清运，噪音太大")
    page.type("#phone", phone)
    page.click("#complaint-submit")
    page.wait_for(lambda: page.find_all("#name-error"), "the name's error")
    assert "还有 1 处需要填写或修改" in page.text("#errors")
    assert page.text("#name-error") == "请填写此项。"
    assert page.find("#name").get_attribute("aria-invalid") == "true"
    assert page.find("#content").get_attribute("value") == "小区门口的垃圾站每天早上五点清运，噪音太大"
    assert page.find("#phone").get_attribute("value") == phone
    assert page.find("#category option:checked").text == "噪音"
    page.check("name-missing")

    page.type("#name", "陈先生")
    page.type("#location", "5栋2单元")
    page.click("#complaint-submit")
    page.wait_for(lambda: page.find_all("#received"), "the confirmation")
    assert page.text("#received h1") == "投诉已提交"
    number = page.text("#number")
    assert number in page.text("#received")
    assert page.text("#status") == "已受理"
    assert steps(page) == ["收到投诉"]
    owner_link = page.find("#owner-link").text
    assert page.url == owner_link + "?received=1"
    page.check("received")

    apology = message(gateway, number, "complaint_received")
    assert apology["text"].startswith("【物业服务中心】非常抱歉")
    assert link_in(apology["text"], "c") == owner_link
    assert apology["address"].endswith(phone[-4:]) and phone not in apology["address"]
    registered = complaint(gateway, clerk, number)
    assert (registered["channel"], registered["category"]) == ("online", "noise")
    assert "5栋2单元" in registered["content"]

    page.open(owner_link)                                # the link kept: no confirmation now
    assert not page.find_all("#received")
