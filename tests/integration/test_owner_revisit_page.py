"""An owner answers a complaint's follow-up online: staff register and close the complaint
through the API, revisit schedules and announces its follow-up, notify's message carries the
link, the owner opens it and answers unsatisfied — and intake reopens the complaint exactly
as after a phone call. The five services run as processes (``make run``), over real HTTP."""
import re
import secrets

import pytest

from tests.helpers import closed_complaint, household, register_estate, wait_until

pytestmark = pytest.mark.broker

ESTATE, HOUSEHOLD = "rv-online", "rvo-1"
ESTATE_NAME = "滨江花园"
ONLINE_LINK = re.compile(r"https?://\S+/r/([A-Za-z0-9_-]{16,64})")
NONCE = re.compile(r'name="nonce" value="([0-9a-f]+)"')


@pytest.fixture(scope="module")
def clerk(gateway):
    register_estate(gateway, ESTATE, ESTATE_NAME,
                    [household(HOUSEHOLD, "3", "1", "502", "王芳", "13912340502")])
    return gateway.user("clerk.online", ["cs_staff"], [ESTATE])


def closed_complaint_id(gateway, clerk, content="三单元楼道灯坏了一周"):
    """A complaint registered, handled and closed by the clerk, through the API: its id."""
    return closed_complaint(gateway, clerk, ESTATE, HOUSEHOLD, content,
                            category="public_facilities", note="非常抱歉，马上安排",
                            department=None, resolution="已更换灯具", signoff="none")["id"]


def announced_revisit(gateway, clerk, complaint_id):
    def found():
        listed = gateway.request("GET", "/api/v1/revisits", token=clerk,
                                 params={"source_id": complaint_id})
        assert listed.status_code == 200, listed.text
        items = [item for item in listed.json()["items"] if item["announced"]]
        return items[0] if items else None
    return wait_until(found, timeout=30, interval=0.2, message="the revisit announced")


def link_in_message(gateway, revisit_id):
    """The link the owner's message carries, as notify's delivery log shows it."""
    def sent():
        listed = gateway.request("GET", "/api/v1/notify/deliveries", token=gateway.admin,
                                 params={"ref": revisit_id})
        assert listed.status_code == 200, listed.text
        return [item for item in listed.json()["items"] if item["status"] == "sent"] or None
    [message] = wait_until(sent, timeout=30, interval=0.2, message="the revisit message sent")
    assert message["template"] == "revisit_online" and message["recipient"] == HOUSEHOLD
    found = ONLINE_LINK.search(message["text"])
    assert found, message["text"]
    return found.group(0), found.group(1)


def open_page(gateway, link, **headers):
    response = gateway.http.get(link, headers=headers, timeout=30, allow_redirects=False)
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Referrer-Policy"] == "no-referrer"
    return response


def submit(gateway, link, nonce, **answer):
    return gateway.http.post(link, data={"nonce": nonce, **answer}, timeout=30,
                             allow_redirects=False)


def test_an_unsatisfied_answer_online_reopens_the_complaint_once(gateway, clerk):
    complaint_id = closed_complaint_id(gateway, clerk)
    revisit = announced_revisit(gateway, clerk, complaint_id)
    assert revisit["online"] is True and revisit["status"] == "scheduled"
    link, token = link_in_message(gateway, revisit["id"])
    assert link == f"{gateway.base_url}/r/{token}"
    assert token not in gateway.request("GET", f"/api/v1/revisits/{revisit['id']}",
                                        token=clerk).text     # staff never see it

    page = open_page(gateway, link)
    assert page.status_code == 200, page.text
    assert complaint_id in page.text and "公共设施" in page.text
    assert 'name="satisfaction"' in page.text and 'name="resolved"' in page.text
    nonce = NONCE.search(page.text).group(1)

    # a choice left out: the form again, what was given kept, nothing recorded
    missing = submit(gateway, link, nonce, satisfaction="unsatisfied", comments="灯还是不亮")
    assert missing.status_code == 422 and 'id="q-resolved"' in missing.text
    assert "灯还是不亮</textarea>" in missing.text
    assert gateway.request("GET", f"/api/v1/revisits/{revisit['id']}",
                           token=clerk).json()["status"] == "scheduled"

    answered = submit(gateway, link, nonce, satisfaction="unsatisfied", resolved="no",
                      comments="灯还是不亮")
    assert (answered.status_code, answered.headers["Location"]) == (303, f"/r/{token}")

    def reopened():
        complaint = gateway.request("GET", f"/api/v1/complaints/{complaint_id}",
                                    token=clerk).json()
        return complaint if complaint["status"] == "reopened" else None
    complaint = wait_until(reopened, timeout=30, interval=0.2,
                           message="the complaint reopened after the online answer")
    assert complaint["reopen_source"] == "revisit"
    assert [entry["action"] for entry in complaint["history"]].count("reopen") == 1
    assert "灯还是不亮" in complaint["history"][-1]["note"]
    recorded = gateway.request("GET", f"/api/v1/revisits/{revisit['id']}", token=clerk).json()
    assert recorded["status"] == "done"
    assert {key: recorded["outcome"][key] for key in (
        "method", "visitor_id", "reached", "satisfaction", "resolved")} == {
        "method": "online", "visitor_id": None, "reached": True,
        "satisfaction": "unsatisfied", "resolved": False}

    # the link now says thank you and takes nothing more
    thanks = open_page(gateway, link)
    assert thanks.status_code == 200 and "感谢您的回复" in thanks.text
    assert 'name="satisfaction"' not in thanks.text
    again = submit(gateway, link, nonce, satisfaction="very_satisfied", resolved="yes")
    assert (again.status_code, again.headers["Location"]) == (303, f"/r/{token}")
    assert gateway.request("GET", f"/api/v1/revisits/{revisit['id']}",
                           token=clerk).json()["outcome"] == recorded["outcome"]
    history = gateway.request("GET", f"/api/v1/complaints/{complaint_id}",
                              token=clerk).json()["history"]
    assert [entry["action"] for entry in history].count("reopen") == 1

    english = open_page(gateway, link, **{"Accept-Language": "en-GB,en;q=0.9"})
    assert "Thank you for your answer" in english.text


def test_a_revisit_made_by_phone_closes_its_link(gateway, clerk):
    complaint_id = closed_complaint_id(gateway, clerk, "电梯按钮失灵")
    revisit = announced_revisit(gateway, clerk, complaint_id)
    link, _ = link_in_message(gateway, revisit["id"])
    called = gateway.request("POST", f"/api/v1/revisits/{revisit['id']}/record", token=clerk,
                             json={"method": "phone", "reached": True,
                                   "satisfaction": "satisfied", "resolved": True})
    assert called.status_code == 200, called.text
    page = open_page(gateway, link)
    assert page.status_code == 410 and "此回访已结束" in page.text
    assert 'name="satisfaction"' not in page.text


def test_an_unknown_link_is_a_404_page_that_reveals_nothing(gateway):
    token = secrets.token_urlsafe(16)
    for path in (f"/r/{token}", "/r/not-a-token", "/r/%24ne"):
        page = open_page(gateway, gateway.url(path))
        assert page.status_code == 404 and "链接无效" in page.text
        assert token not in page.text and "Traceback" not in page.text
        assert "cmp-" not in page.text and "rv-" not in page.text
