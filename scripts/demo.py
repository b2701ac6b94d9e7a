"""`make demo` (with `make run` going): one complaint through the whole loop, driven
over the gateway's HTTP API as any API client would drive it, told the way a
service-centre manager would tell it.

The administrator logs in (``HUIFANG_ADMIN_PASSWORD``, the development default of
`make run` unless set) and makes a desk clerk and a supervisor for a new estate; the
supervisor loads the owner list, the clerk registers a complaint and works it to its
close, the supervisor visits the owner, and the owner's answer reopens it. The gateway
is at ``GATEWAY_ADDRESS`` (the port `make run` uses) on this machine.
"""
import os
import secrets
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import requests

LOCAL = ZoneInfo("Asia/Shanghai")
# scripts/run-services.sh makes the first admin with this unless HUIFANG_ADMIN_PASSWORD is set
DEVELOPMENT_ADMIN_PASSWORD = "admin-dev-password"
ROLE_NAMES = {"cs_staff": "客服助理", "supervisor": "客服主管"}
# the demo's estate, as its owners and staff call it
ESTATE_NAME = "阳光花园（演示）"


class ApiError(Exception):
    """A problem+json answer: its status and what it says."""

    def __init__(self, response: requests.Response):
        try:
            problem = response.json()
        except ValueError:
            problem = {"title": response.reason, "detail": response.text[:200]}
        detail = problem.get("detail") or problem.get("title")
        errors = problem.get("errors")
        super().__init__(f"{response.request.method} {response.url} -> {response.status_code}: "
                         f"{detail}{f' {errors}' if errors else ''}")
        self.status = response.status_code


class Gateway:
    """The REST API as a client holds it: a base URL and whose token a call carries."""

    def __init__(self, base_url: str):
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()

    def call(self, method: str, path: str, token: str | None = None, **kwargs) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.http.request(method, self.base_url + path, headers=headers,
                                     timeout=30, **kwargs)
        if response.status_code >= 400:
            raise ApiError(response)
        return response.json()

    def login(self, username: str, password: str) -> str:
        return self.call("POST", "/api/v1/auth/token",
                         json={"username": username, "password": password})["access_token"]


def gateway_url() -> str:
    """Where `make run` serves the gateway: GATEWAY_ADDRESS's port, on this machine."""
    address = os.environ.get("GATEWAY_ADDRESS") or "0.0.0.0:8000"
    return f"http://127.0.0.1:{address.rsplit(':', 1)[-1]}"


def wait_for(fetch: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll until ``fetch`` returns something: events take their time through the broker."""
    deadline = time.monotonic() + timeout
    while True:
        found = fetch()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} after {timeout:.0f} s")
        time.sleep(0.5)


def local(moment: str) -> str:
    return datetime.fromisoformat(moment).astimezone(LOCAL).strftime("%Y-%m-%d %H:%M")


def visit_right_away(minutes: int = 5) -> dict:
    """An on-site visit the owner agreed to have in ``minutes``: a visit is recorded when
    it is made (from half an hour before its booked time), and the demo cannot wait for
    tomorrow. The owner gives their own quiet hours (one hour, six hours away) in place of
    the estate's midday and night ones, so the booking holds at any hour of the day."""
    at = (datetime.now(LOCAL) + timedelta(minutes=minutes)).replace(second=0, microsecond=0)
    quiet_from = at + timedelta(hours=6)
    return {"at": at.isoformat(), "owner_consent": True,
            "quiet_hours": [f"{quiet_from:%H:%M}-{quiet_from + timedelta(hours=1):%H:%M}"]}


def delivered(delivery: dict) -> str:
    """What became of a message, in words: sent, or held for the end of quiet hours."""
    if delivery["status"] == "sent":
        return f"sent by {delivery['channel']}"
    if delivery["status"] == "queued":
        return ("held for the end of the owner's quiet hours, until "
                f"{local(delivery['next_attempt_at'])}")
    return delivery["status"]


def say(who: str, text: str) -> None:
    print(f"[{who:>7}] {text}", flush=True)


def main() -> int:
    api = Gateway(gateway_url())
    try:
        ready = api.http.get(api.base_url + "/readyz", timeout=10)
    except requests.ConnectionError:
        print(f"No gateway at {api.base_url}. Start the services with `make run` first.")
        return 1
    if ready.status_code != 200:
        print(f"The gateway at {api.base_url} is up but not ready: {ready.text}")
        return 1
    try:
        run(api, f"demo-{uuid.uuid4().hex[:4]}")
    except ApiError as error:
        print(f"The gateway refused: {error}")
        if error.status == 401:
            print("Is HUIFANG_ADMIN_PASSWORD the password `make run` started with?")
        return 1
    except TimeoutError as error:
        print(f"Waited in vain: {error}. Are all five services running?")
        return 1
    return 0


def run(api: Gateway, estate: str) -> None:
    people = make_staff(api, estate)
    desk, lead = people["desk"]["token"], people["lead"]["token"]
    names = {person["id"]: person["username"] for person in people.values()}

    household = f"{estate}-0301"
    api.call("POST", f"/api/v1/estates/{estate}/households", lead, json={"rows": [{
        "household_id": household, "building": "3", "unit": "1", "room": "301",
        "occupied": True, "contacts": [{"name": "王芳", "phone": "13812345678"}]}],
        "estate": {"name": ESTATE_NAME, "company": "华东物业", "region": "杭州片区"}})
    say("lead", f"Owner list of estate {ESTATE_NAME} ({estate}) loaded, the estate "
                "registered with it: 3-1-301, 王芳 (138****5678).")

    complaint = api.call("POST", "/api/v1/complaints", desk, json={
        "estate_id": estate, "household_id": household, "channel": "hotline",
        "category": "water_supply", "severity": "major",
        "content": "3栋连续三个晚上停水，没有任何通知"})
    cid = complaint["id"]
    say("desk", f"Hotline complaint {cid} registered as MAJOR (water supply). "
                f"First reply due {local(complaint['first_response_due'])}, "
                f"answer due {local(complaint['reply_due'])} (working days).")
    [ack] = wait_for(lambda: deliveries(api, lead, ref=cid, template="complaint_received"),
                     "apology")
    say("notify", f"Apology to the owner {delivered(ack)}: {ack['text']}")

    work(api, desk, cid, "acknowledge", {"note": "电话致歉"})
    work(api, desk, cid, "assign", {"department": "工程部"})
    say("desk", "Acknowledged with an apology on the phone; assigned to the engineering "
                "department.")
    work(api, desk, cid, "resolve", {"resolution": "更换减压阀"})
    work(api, desk, cid, "close", {"owner_signoff": "none"})
    say("desk", "Engineering replaced the pressure valve; the complaint is closed.")

    [revisit] = wait_for(lambda: api.call("GET", "/api/v1/revisits", lead,
                                          params={"source_id": cid})["items"], "revisit")
    say("revisit", f"Follow-up visit {revisit['id']} scheduled: a {revisit['assigned_role']} "
                   f"goes {revisit['method']}, due by {local(revisit['due_at'])} "
                   f"(3 days after closing; major complaints are visited in person).")
    [notice] = wait_for(lambda: deliveries(api, lead, ref=revisit["id"],
                                           template="revisit_scheduled"), "visit notice")
    say("notify", f"Notice of the visit {delivered(notice)}: {notice['text']}")

    api.call("POST", f"/api/v1/revisits/{revisit['id']}/book", lead,
             json=visit_right_away())
    api.call("POST", f"/api/v1/revisits/{revisit['id']}/record", lead, json={
        "method": "onsite", "reached": True, "satisfaction": "unsatisfied",
        "resolved": False, "comments": "晚上仍然停水", "signed_by": "王芳"})
    say("lead", "Visited at once, as the owner asked; the owner signed and says the "
                "water still stops at night: NOT satisfied.")

    complaint = wait_for(lambda: reopened(api, desk, cid), "reopening")
    say("intake", f"Complaint {cid} is {complaint['status'].upper()} again with new "
                  f"deadlines: first reply by {local(complaint['first_response_due'])}.")

    print("\nHistory of the complaint (who acted is the logged-in user):")
    for entry in complaint["history"]:
        by = names.get(entry["by"], entry["by"])
        print(f"  {local(entry['at'])}  {entry['action']:<12} {entry['from'] or '':<13}"
              f"-> {entry['to']:<13} by {by:<16} {entry['note'] or ''}")
    print(f"\nnotify's delivery log for estate {estate} (addresses masked):")
    for delivery in reversed(deliveries(api, lead, estate_id=estate)):
        why = delivery.get("error") or delivery.get("reason")
        print(f"  {local(delivery['created_at'])}  {delivery['template']:<20} "
              f"to {delivery['recipient']:<16} {delivered(delivery)}"
              f"{f' ({why})' if why and delivery['status'] in ('failed', 'suppressed') else ''}")


def make_staff(api: Gateway, estate: str) -> dict:
    """The administrator makes a desk clerk and a supervisor of the estate; both log in."""
    password = os.environ.get("HUIFANG_ADMIN_PASSWORD") or DEVELOPMENT_ADMIN_PASSWORD
    admin = api.login("admin", password)
    people = {}
    for who, role in (("desk", "cs_staff"), ("lead", "supervisor")):
        username, secret = f"{who}.{estate}", secrets.token_urlsafe(12)
        user = api.call("POST", "/api/v1/users", admin, json={
            "username": username, "password": secret, "roles": [role], "estates": [estate]})
        people[who] = {**user, "token": api.login(username, secret)}
    say("admin", f"Logged in as admin; made {people['desk']['username']} (cs_staff, "
                 f"{ROLE_NAMES['cs_staff']}) and {people['lead']['username']} (supervisor, "
                 f"{ROLE_NAMES['supervisor']}) for estate {estate}; both logged in.")
    return people


def work(api: Gateway, token: str, complaint_id: str, action: str, body: dict) -> dict:
    return api.call("POST", f"/api/v1/complaints/{complaint_id}/{action}", token, json=body)


def deliveries(api: Gateway, token: str, **filters) -> list:
    return api.call("GET", "/api/v1/notify/deliveries", token, params=filters)["items"]


def reopened(api: Gateway, token: str, complaint_id: str) -> dict | None:
    complaint = api.call("GET", f"/api/v1/complaints/{complaint_id}", token)
    return complaint if complaint["status"] == "reopened" else None


if __name__ == "__main__":
    sys.exit(main())
