"""`make demo` (with `make run` going): one complaint through the whole loop,
told the way a service-centre manager would tell it."""
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet

eventlet.monkey_patch()

import sys
import uuid
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from nameko.exceptions import UnknownService
from nameko.standalone.rpc import ClusterRpcProxy

from scripts.events import EventListener, wait_until
from scripts.healthcheck import is_serving
from shared.config import load_config
from shared.schemas.vocabulary import SERVICES

LOCAL = ZoneInfo("Asia/Shanghai")


def local(moment):
    return datetime.fromisoformat(moment).astimezone(LOCAL).strftime("%Y-%m-%d %H:%M")


def tomorrow_at_ten():
    """A visit at a decent hour in Shanghai, never in the owner's quiet hours."""
    day = datetime.now(LOCAL).date() + timedelta(days=1)
    return datetime.combine(day, time(10, 0), LOCAL).isoformat()


def delivered(delivery):
    """What became of a message, in words: sent, or held for the end of quiet hours."""
    if delivery["status"] == "sent":
        return f"sent by {delivery['channel']}"
    if delivery["status"] == "queued":
        return f"held for the end of the owner's quiet hours, until {local(delivery['next_attempt_at'])}"
    return delivery["status"]


def say(who, text):
    print(f"[{who:>7}] {text}")


def main():
    config = load_config()
    missing = [service for service in SERVICES if not is_serving(config, service)]
    if missing:
        print(f"Not running: {', '.join(missing)}. Start the services with `make run` first.")
        return 1
    estate = f"demo-{uuid.uuid4().hex[:4]}"
    listener = EventListener(config["AMQP_URI"])
    try:
        with ClusterRpcProxy(config, timeout=30) as rpc:
            run(rpc, listener, estate)
    except UnknownService as exc:
        print(f"A service is missing: {exc}. Is `make run` going?")
        return 1
    finally:
        listener.close()
    return 0


def run(rpc, listener, estate):
    rpc.intake.import_households(estate, [{
        "household_id": f"{estate}-0301", "building": "3", "unit": "1", "room": "301",
        "occupied": True, "contacts": [{"name": "王芳", "phone": "13812345678"}]}])
    say("intake", f"Owner list of estate {estate} loaded: 3-1-301, 王芳 (138****5678).")

    complaint = rpc.intake.register_complaint({
        "estate_id": estate, "household_id": f"{estate}-0301", "channel": "hotline",
        "category": "water_supply", "severity": "major",
        "content": "3栋连续三个晚上停水，没有任何通知"})
    cid = complaint["id"]
    say("intake", f"Hotline complaint {cid} registered as MAJOR (water supply). "
                  f"First reply due {local(complaint['first_response_due'])}, "
                  f"answer due {local(complaint['reply_due'])} (working days).")
    [ack] = wait_until(lambda: rpc.notify.list_deliveries({"ref": cid}), timeout=15)
    say("notify", f"Apology to the owner {delivered(ack)}: {ack['text']}")

    rpc.intake.acknowledge_complaint(cid, {"staff_id": "cs-01", "note": "电话致歉"})
    rpc.intake.assign_complaint(cid, {"department": "工程部", "assignee_id": "eng-3"})
    say("intake", "Acknowledged by the service desk and assigned to the engineering department.")
    rpc.intake.resolve_complaint(cid, {"staff_id": "eng-3", "resolution": "更换减压阀"})
    rpc.intake.close_complaint(cid, {"closed_by": "cs-01", "owner_signoff": "none"})
    say("intake", "Engineering replaced the pressure valve; the complaint is closed.")

    listener.wait_for("revisit_scheduled", source_id=cid)
    [revisit] = rpc.revisit.list_revisits({"source_id": cid})
    say("revisit", f"Follow-up visit {revisit['id']} scheduled: a {revisit['assigned_role']} "
                   f"goes {revisit['method']}, due by {local(revisit['due_at'])} "
                   f"(3 days after closing; major complaints are visited in person).")
    [notice] = wait_until(lambda: rpc.notify.list_deliveries({"ref": revisit["id"]}), timeout=15)
    say("notify", f"Notice of the visit {delivered(notice)}: {notice['text']}")

    rpc.revisit.book_appointment(revisit["id"], {
        "at": tomorrow_at_ten(),
        "owner_consent": True})
    rpc.revisit.record_revisit(revisit["id"], {
        "visitor_id": "sup-1", "method": "onsite", "reached": True,
        "satisfaction": "unsatisfied", "resolved": False,
        "comments": "晚上仍然停水", "signed_by": "王芳"})
    say("revisit", "Supervisor visited with the owner's consent; the owner signed and says "
                   "the water still stops at night: NOT satisfied.")

    listener.wait_for("complaint_reopened", complaint_id=cid)
    complaint = rpc.intake.get_complaint(cid)
    say("intake", f"Complaint {cid} is {complaint['status'].upper()} again with new deadlines: "
                  f"first reply by {local(complaint['first_response_due'])}.")
    print()
    print("History of the complaint:")
    for entry in complaint["history"]:
        print(f"  {local(entry['at'])}  {entry['action']:<12} {entry['from'] or '':<13}"
              f"-> {entry['to']:<13} by {entry['by']}  {entry['note']}")


if __name__ == "__main__":
    sys.exit(main())
