"""No event carries a phone number or an e-mail address, whatever staff and owners type:
every free-text field of every RPC that publishes an event gets numbers and addresses
written every way people write them, the events go on to the services that handle them
(intake reopens after an unsatisfied revisit, notify tells households), and then every
event body in every outbox is searched. The records keep the text: staff need it."""
import json
import re
import unicodedata
from datetime import timedelta

import pytest

from shared.masking import mask_text
from tests.helpers import prepared
from tests.world import GATEWAY, NOBODY, NOW, build

# (what is typed, the digits or address that must not come out)
PHONES = [("13912345601", "13912345601"), ("+86 139 1234 5602", "13912345602"),
          ("139-1234-5603", "13912345603"), ("0086-13912345604", "13912345604"),
          ("(010) 6234 5605", "62345605"), ("021-64301606", "64301606"),
          ("１３９１２３４５６０７", "13912345607"), ("电话13912345608谢谢", "13912345608")]
EMAILS = ["owner1@example.cn", "Zhang.San+hf@mail.example.com", "13912345609@qq.com",
          "li_lei@163.com"]
# the world's own contacts: never in an event either
CONTACTS = ["13812345678", "13912345678", "wf@example.com"]


def typed(n, limit=2000):
    """Free text as staff or an owner types it, numbers and addresses in it (n: which)."""
    phone, email = PHONES[n % len(PHONES)][0], EMAILS[n % len(EMAILS)]
    return f"业主来电 {phone} 仍停水，邮件 {email} 请回电"[:limit]


def short(n, limit=50):
    phone, email = PHONES[n % len(PHONES)][0], EMAILS[n % len(EMAILS)]
    return f"{phone} {email}"[:limit]


def digits_of(text):
    """``text`` with its digits as ASCII and nothing between them (how a number hides)."""
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"[\s\-()（）+]", "", text)


def leaks(body):
    """The numbers and addresses fed in (or the world's contacts) found in an event body."""
    text = json.dumps(body, ensure_ascii=False)
    flat = digits_of(text)
    found = [digits for _, digits in PHONES if digits in flat]
    found += [email for email in EMAILS + CONTACTS if email.lower() in text.lower()]
    found += [phone for phone in CONTACTS if phone in flat]
    return found


@pytest.fixture(scope="module")
def world():
    """The world, then every event-publishing RPC with numbers and addresses typed in."""
    world = build()
    intake, revisit, survey, notify = world.intake, world.revisit, world.survey, world.notify
    base = {"estate_id": "e-1", "channel": "hotline", "category": "noise",
            "severity": "normal"}

    def complaint(n, **changes):
        return intake.register_complaint(dict(base, household_id="h-2", content=typed(n),
                                              **changes))["id"]

    def to_closed(cid, n):
        intake.acknowledge_complaint(cid, {"staff_id": "s-1", "note": typed(n)})
        # (a department is one the routing names, else refused: nothing typed travels)
        intake.assign_complaint(cid, {"department": "环境部",
                                      "external_unit": short(n + 1, 100)})
        intake.update_external_status(cid, {"staff_id": "s-1", "status": "in_progress",
                                            "note": typed(n + 2),
                                            "reference": short(n + 3, 100)})
        intake.escalate_complaint(cid, {"staff_id": "s-1", "reason": typed(n + 4)})
        intake.resolve_complaint(cid, {"staff_id": "s-1", "resolution": typed(n + 5)})
        intake.close_complaint(cid, {"closed_by": "s-1", "owner_signoff": "unsatisfied"})
        return cid

    first = to_closed(complaint(0, category="cleaning"), 0)
    intake.flag_malicious(first, {"flagged_by": "s-9", "role": "supervisor",
                                  "reason": typed(6)})
    repeat = complaint(1, category="noise")
    repeat = complaint(2, category="noise")
    intake.record_special_measures(repeat, {"staff_id": "s-1", "measures": typed(3)})
    reviewed = to_closed(complaint(4, category="greening"), 4)
    intake.request_review(reviewed, {"reason": typed(5), "requested_by": short(5),
                                     "staff_id": "s-1"})
    intake.decide_review(reviewed, {"reviewer_id": "s-9", "outcome": "overturned",
                                    "finding": typed(6)})
    reopened = to_closed(complaint(7, category="parking"), 7)
    intake.reopen_complaint(reopened, {"reason": typed(0), "source": "owner"})
    by_owner = to_closed(complaint(1, category="fees"), 1)
    token = intake.store.db.complaints.find_one({"_id": by_owner})["owner_token"]
    intake.caller = GATEWAY
    intake.owner_request_review(token, {"reason": typed(2)})
    intake.register_online_complaint({"estate_id": "e-1", "category": "noise",
                                      "content": typed(3), "location": short(3),
                                      "reporter": {"name": short(4), "phone": "13700001111"}})
    intake.caller = NOBODY
    order = intake.register_work_order({"estate_id": "e-1", "kind": "repair",
                                        "content": "屋顶漏水 " + typed(5),
                                        "location": short(5, 200)})["id"]
    intake.complete_work_order(order, {"staff_id": "s-2", "note": typed(6)})
    world.hand_on()

    # revisits: a call that finds the owner unhappy, an owner answering online
    open_revisits = list(revisit.store.db.revisits.find(
        {"kind": "complaint", "status": "scheduled"}))
    by_phone = open_revisits[0]
    revisit.record_revisit(by_phone["_id"], {
        "visitor_id": "s-1", "method": "phone", "reached": True,
        "satisfaction": "unsatisfied", "resolved": False, "comments": typed(7)})
    online = next(r for r in open_revisits if r.get("online_token") and r.get("announced")
                  and r["_id"] != by_phone["_id"])
    revisit.record_online_revisit(online["online_token"], {
        "satisfaction": "very_unsatisfied", "resolved": False, "comments": typed(1)})
    visit = next(r for r in revisit.store.db.revisits.find({"status": "scheduled"})
                 if r.get("household_id"))
    revisit.book_appointment(visit["_id"], {
        "at": (NOW + timedelta(days=1)).replace(hour=2).isoformat(), "owner_consent": True})
    world.hand_on()

    # a household moving in whose address columns hold what staff typed (columns swapped)
    intake.import_households("e-1", [{"household_id": "h-pii", "building": short(2, 50),
                                      "unit": short(3, 50), "room": short(4, 50),
                                      "occupied": True}])
    world.hand_on()

    # an estate registered and renamed by staff who typed a number into it
    intake.register_estate({"estate_id": "e-9", "name": "新城 " + short(1, 40),
                            "company": short(2, 60), "region": short(3, 60)})
    intake.update_estate("e-9", {"name": "新城 " + short(4, 40), "region": short(5, 60)})

    # the manager's instruction; a repair revisit found unsatisfied, followed up, answered
    intake.record_instruction(world.ids["escalated"], {
        "staff_id": "m-1", "role": "manager", "instruction": typed(2)})
    repair = revisit.list_revisits({"source_id": order})[0]["id"]
    revisit.record_revisit(repair, {
        "visitor_id": "s-1", "method": "phone", "reached": True,
        "satisfaction": "unsatisfied", "resolved": False, "comments": typed(3)})
    world.hand_on()
    followup = revisit.list_followups({"revisit_id": repair})[0]["id"]
    revisit.record_followup_measures(followup, {"staff_id": "s-2", "measures": typed(4),
                                                "responsible": short(4)})
    revisit.answer_followup(followup, {"staff_id": "s-2", "answer": typed(5)})
    revisit.answer_followup(world.ids["followup"], {"staff_id": "s-2", "answer": typed(6)})
    world.hand_on()

    # survey: a round about an event, a rectification, a report published
    round_ = prepared(survey, survey.create_round({
        "title": short(0, 200), "kind": "event", "occasion": typed(1, 200),
        "estate_ids": ["e-1"], "opens_at": (NOW - timedelta(hours=1)).isoformat(),
        "closes_at": (NOW + timedelta(days=7)).isoformat(),
        "add_categories": [{"key": "lift", "label_zh": short(2, 40),
                            "label_en": short(3, 80)}]}))
    rectification = survey.add_rectification(round_["id"], {
        "estate_id": "e-1", "category": "cleaning", "action": typed(4, 1000),
        "department": "环境部", "due_at": (NOW + timedelta(days=30)).isoformat()})
    survey.update_rectification(rectification["id"], {"status": "done",
                                                      "note": typed(6, 1000)})
    survey.close_round(round_["id"])
    survey.publish_report(round_["id"], {"note": typed(7, 1000)})
    world.hand_on()

    # notify: a message with numbers in its parameters, and to addresses typed as such
    notify.send({"channel": "console", "to": "h-1", "template": "complaint_received",
                 "params": {"complaint_id": "cmp-9", "reply_due": short(0)}, "ref": "cmp-9"})
    notify.send({"channel": "console", "to": "13912345601", "estate_id": "e-1",
                 "template": "complaint_received",
                 "params": {"complaint_id": "cmp-9", "reply_due": typed(1, 400)}})
    world.hand_on()
    world.ids.update(first=first, reopened=reopened, by_phone=by_phone["_id"])
    return world


def test_the_rpcs_published_what_they_announce(world):
    types = {event["type"] for _, event in world.events()}
    assert {"complaint_reopened", "complaint_escalated", "complaint_assigned",
            "complaint_referral_updated", "revisit_unsatisfied", "survey_round_opened",
            "survey_invitation_issued", "rectification_created", "rectification_done",
            "survey_report_published", "notification_sent", "work_order_completed",
            "household_moved_in",
            "complaint_instruction_recorded", "revisit_followup_opened",
            "revisit_followup_answered", "estate_registered", "estate_updated"} <= types


def test_no_event_carries_a_phone_number_or_an_e_mail_address(world):
    events = world.events()
    assert len(events) > 100
    leaked = {(service, event["type"]): found for service, event in events
              if (found := leaks(event))}
    assert leaked == {}


def test_free_text_in_events_is_masked_where_it_was(world):
    reopened = [event["data"] for _, event in world.events("intake")
                if event["type"] == "complaint_reopened"
                and event["data"]["complaint_id"] == world.ids["reopened"]]
    assert [data["reason"] for data in reopened] == [mask_text(typed(0))]
    assert reopened[0]["reason"] == "业主来电 139****5601 仍停水，邮件 o***@example.cn 请回电"


def test_the_records_keep_the_text(world):
    complaint = world.intake.store.db.complaints.find_one({"_id": world.ids["reopened"]})
    assert complaint["history"][-1]["note"] == typed(0)
    recorded = world.revisit.store.db.revisits.find_one({"_id": world.ids["by_phone"]})
    assert recorded["outcome"]["comments"] == typed(7)
