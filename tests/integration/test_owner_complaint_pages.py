"""The owner's complaint page and an estate's online complaint form as owners meet them:
real HTTP to the five services running as processes. The owner's link is taken from the
message notify sent (its delivery log), which proves the message carries it."""
import re

import pytest
import requests

from tests.helpers import (
    close_complaint,
    household,
    register_complaint,
    register_estate,
    wait_until,
)

pytestmark = pytest.mark.broker

ESTATE, HOUSEHOLD = "oc-east", "oc-e-1"
ESTATE_NAME = "东方明珠花园"
PHONE = "13812345678"
LINK = re.compile(r"(http://127\.0\.0\.1:\d+)(/c/[A-Za-z0-9_-]{22,})$")
NONCE = re.compile(r'name="nonce" value="([0-9a-f]+)"')
ANY_MOBILE = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")


@pytest.fixture(scope="module")
def clerk(gateway):
    """An estate with one household, and its front-desk clerk."""
    register_estate(gateway, ESTATE, ESTATE_NAME,
                    [household(HOUSEHOLD, "3", "1", "502", "王芳", PHONE)])
    return gateway.user("clerk.oc", ["cs_staff"], [ESTATE])


def _delivery(gateway, complaint_id, template):
    """The message notify sent about a complaint, from its delivery log (as an admin)."""
    def sent():
        response = gateway.request("GET", "/api/v1/notify/deliveries", token=gateway.admin,
                                   params={"ref": complaint_id, "template": template})
        assert response.status_code == 200, response.text
        return [item for item in response.json()["items"] if item["status"] == "sent"]
    return wait_until(sent, timeout=20, message=f"{template} sent")[0]


def _act(gateway, token, complaint_id, action, body):
    response = gateway.request("POST", f"/api/v1/complaints/{complaint_id}/{action}",
                               token=token, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _page(gateway, path, status=200):
    response = requests.get(gateway.url(path), timeout=30)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert "form-action 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert not ANY_MOBILE.search(response.text), "a full phone number on an owner page"
    return response


def test_the_owner_follows_the_complaint_from_the_link_in_the_message(gateway, clerk):
    complaint = register_complaint(gateway, clerk, ESTATE, HOUSEHOLD, "楼上装修到晚上十点",
                                   category="noise")
    apology = _delivery(gateway, complaint["id"], "complaint_received")["text"]
    assert apology.startswith("【物业服务中心】非常抱歉")
    base, path = LINK.search(apology).groups()
    assert base == gateway.base_url
    token = path.rsplit("/", 1)[1]

    page = _page(gateway, path).text
    assert complaint["id"] in page and "收到投诉" in page and "已受理" in page
    assert "首次回复" not in page and 'id="review-form"' not in page

    _act(gateway, clerk, complaint["id"], "acknowledge", {"note": "内部备注：业主很着急"})
    page = _page(gateway, path).text
    assert "首次回复" in page and "内部备注" not in page

    _act(gateway, clerk, complaint["id"], "assign",
         {"department": "秩序部", "assignee_id": "staff-oc-77"})
    page = _page(gateway, path).text
    assert "由秩序部负责处理" in page and "staff-oc-77" not in page

    _act(gateway, clerk, complaint["id"], "resolve", {"resolution": "已约谈装修单位，晚八点后停工"})
    assert "已约谈装修单位，晚八点后停工" in _page(gateway, path).text

    _act(gateway, clerk, complaint["id"], "close", {"owner_signoff": "none"})
    closing = _delivery(gateway, complaint["id"], "complaint_closed")["text"]
    assert closing.endswith(path)                      # the closing links the same page
    page = _page(gateway, path).text
    assert "已办结" in page and 'id="review-form"' in page and "申请复核" in page
    clerk_id = gateway.request("GET", "/api/v1/me", token=clerk).json()["id"]
    assert clerk_id not in page and "clerk.oc" not in page

    # the review, through the form as a browser without JavaScript sends it
    nonce = NONCE.search(page).group(1)
    posted = requests.post(gateway.url(f"{path}/review"), timeout=30, allow_redirects=False,
                           data={"nonce": nonce, "reason": "晚上九点后仍有噪音"})
    assert posted.status_code == 303, posted.text
    assert posted.headers["Location"].endswith(path)
    page = _page(gateway, path).text
    assert 'id="review-open"' in page and "复核中" in page and 'id="review-form"' not in page

    recorded = gateway.request("GET", f"/api/v1/complaints/{complaint['id']}", token=clerk)
    staff_view = recorded.json()
    assert staff_view["status"] == "under_review"
    assert (staff_view["history"][-1]["action"], staff_view["history"][-1]["by"]) == (
        "request_review", "owner")
    assert staff_view["reviews"][-1]["requested_by"] == "owner"
    assert staff_view["reviews"][-1]["reason"] == "晚上九点后仍有噪音"
    assert token not in recorded.text                 # staff never see the owner's link


def test_a_review_without_the_pages_nonce_changes_nothing(gateway, clerk):
    complaint = register_complaint(gateway, clerk, ESTATE, HOUSEHOLD, "楼道垃圾没人清",
                                   channel="visit")
    path = LINK.search(_delivery(gateway, complaint["id"], "complaint_received")["text"])[2]
    close_complaint(gateway, clerk, complaint["id"], note="", department=None,
                    resolution="已清理", signoff="none")
    refused = requests.post(gateway.url(f"{path}/review"), timeout=30, allow_redirects=False,
                            data={"nonce": "0" * 32, "reason": "伪造的请求"})
    assert refused.status_code == 403 and "页面已过期" in refused.text
    state = gateway.request("GET", f"/api/v1/complaints/{complaint['id']}", token=clerk).json()
    assert state["status"] == "closed" and state["reviews"] == []


def test_an_unknown_link_gets_a_404_page_that_reveals_nothing(gateway):
    for token in ("AAAAAAAAAAAAAAAAAAAAAA", "not-a-token", "x" * 80):
        page = _page(gateway, f"/c/{token}", status=404).text
        assert token not in page and "链接无效" in page and "cmp-" not in page


def test_the_online_form_registers_an_online_complaint_and_the_apology_goes_out(gateway, clerk):
    form = _page(gateway, f"/e/{ESTATE}/complain").text
    assert '<label class="field" for="phone">' in form and "噪音" in form and "停车" in form
    answer = requests.post(gateway.url(f"/e/{ESTATE}/complain"), timeout=30,
                           allow_redirects=False, data={
                               "nonce": NONCE.search(form).group(1), "category": "parking",
                               "content": "地库入口被私家车长期占用", "location": "5栋地库",
                               "name": "赵六", "phone": "13900002222", "website": ""})
    assert answer.status_code == 303, answer.text
    path = answer.headers["Location"]
    assert re.fullmatch(r"/c/[A-Za-z0-9_-]{22,}\?received=1", path)
    confirmation = _page(gateway, path).text
    assert 'id="received"' in confirmation and "投诉已提交" in confirmation
    number = re.search(r'id="number">(cmp-[0-9a-f]+)<', confirmation).group(1)
    assert f'href="{path.split("?")[0]}"' in confirmation

    listed = gateway.request("GET", "/api/v1/complaints", token=clerk,
                             params={"estate_id": ESTATE, "channel": "online"}).json()["items"]
    [complaint] = [item for item in listed if item["id"] == number]
    assert complaint["reporter"] == {"name": "赵六", "phone": "139****2222"}
    assert complaint["household_id"] is None and "5栋地库" in complaint["content"]
    apology = _delivery(gateway, number, "complaint_received")
    assert apology["text"].startswith("【物业服务中心】非常抱歉")
    assert apology["text"].endswith(path.split("?")[0]) and apology["address"] == "139****2222"


def test_the_online_form_limits_each_phone_and_marks_what_it_refuses(gateway, clerk):
    _page(gateway, "/e/oc-nowhere/complain", status=404)
    form = _page(gateway, f"/e/{ESTATE}/complain").text
    data = {"nonce": NONCE.search(form).group(1), "category": "greening",
            "content": "草坪枯黄", "name": "钱七", "phone": "12345"}
    refused = requests.post(gateway.url(f"/e/{ESTATE}/complain"), data=data, timeout=30)
    assert refused.status_code == 422
    assert 'aria-describedby="phone-error"' in refused.text and "草坪枯黄" in refused.text
    data["phone"] = "13900003333"
    for _ in range(5):
        sent = requests.post(gateway.url(f"/e/{ESTATE}/complain"), data=data, timeout=30,
                             allow_redirects=False)
        assert sent.status_code == 303, sent.text
    limited = requests.post(gateway.url(f"/e/{ESTATE}/complain"), timeout=30,
                            allow_redirects=False, data=dict(data, phone="+86 139 0000 3333"))
    assert limited.status_code == 429 and "今日提交次数已达上限" in limited.text
    assert limited.headers["Retry-After"]
