"""The other services' copy of intake's estates (shared/estates.py): events applied once
and in revision order, intake asked once for an estate with no copy, names carried."""
from datetime import UTC, datetime

import mongomock

from services.notify import message_templates, notifications
from services.notify.settings import NotifySettings, ZonedSettings
from services.revisit.dependencies import ZonedPolicies
from services.revisit.policies import PolicyBook
from shared import embedded
from shared.envelope import new_event, parse_event
from shared.estates import COPIES, ZONE_INDEXES, EstateCopies

AT = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def estate_event(event_type, revision, name, timezone="Asia/Shanghai", estate_id="e-1"):
    data = {"name": name, "company": "华东物业", "region": "杭州片区", "timezone": timezone,
            "revision": revision}
    if event_type == "estate_updated":
        data["changed"] = ["name"]
    return parse_event(new_event(event_type, "intake", estate_id, data, AT,
                                 key=f"{estate_id}@{revision}"))


def copies(fetch=None):
    return EstateCopies(mongomock.MongoClient().db, fetch, "Asia/Shanghai")


def test_each_event_is_applied_once_and_never_over_a_newer_one():
    estates = copies()
    registered = estate_event("estate_registered", 0, "阳光花园")
    renamed = estate_event("estate_updated", 1, "阳光花园一期", timezone="Asia/Urumqi")
    assert estates.learn(registered) is True
    assert estates.learn(renamed) is True
    assert estates.learn(renamed) is False          # redelivered
    assert estates.learn(registered) is False       # late
    assert (estates.name("e-1"), estates.zone("e-1")) == ("阳光花园一期", "Asia/Urumqi")
    assert estates.collection.find_one({"_id": "e-1"})["events"] == [
        registered["id"], renamed["id"]]


def test_a_newer_event_first_makes_the_older_one_a_no_op():
    estates = copies()
    assert estates.learn(estate_event("estate_updated", 2, "新名字")) is True
    assert estates.learn(estate_event("estate_updated", 1, "旧名字")) is False
    assert estates.name("e-1") == "新名字"


def test_an_estate_without_a_copy_is_asked_of_intake_once():
    asked = []

    def fetch(estate_id):
        asked.append(estate_id)
        return None if estate_id == "e-404" else {
            "estate_id": estate_id, "name": "明月小区", "company": None, "region": None,
            "timezone": "Asia/Urumqi", "revision": 3}
    estates = copies(fetch)
    assert estates.zone("e-2") == "Asia/Urumqi"
    assert EstateCopies(estates.collection.database, fetch, "UTC").name("e-2") == "明月小区"
    assert asked == ["e-2"]                             # the second worker read the copy
    # intake does not know it: the group's zone and the id stand in (asked again later)
    assert (estates.zone("e-404"), estates.name("e-404")) == ("Asia/Shanghai", "e-404")
    # an event newer than the fetched copy still applies
    assert estates.learn(estate_event("estate_updated", 4, "明月小区二期", estate_id="e-2"))
    assert estates.name("e-2") == "明月小区二期"


def test_timers_read_the_copy_only_and_never_wait_on_intake():
    asked = []

    def fetch(estate_id):
        asked.append(estate_id)
        return {"estate_id": estate_id, "name": "明月小区", "company": None, "region": None,
                "timezone": "Asia/Urumqi", "revision": 3}
    estates = copies(fetch)
    assert estates.zone("e-2", ask_intake=False) == "Asia/Shanghai"   # the group's, for now
    assert asked == []
    assert estates.zone("e-2") == "Asia/Urumqi"       # an RPC of the same worker still asks
    assert estates.zone("e-2", ask_intake=False) == "Asia/Urumqi"     # then the copy serves
    assert asked == ["e-2"]


def test_reports_get_names_beside_their_estate_ids():
    estates = copies()
    estates.learn(estate_event("estate_registered", 0, "阳光花园"))
    ranking = {"ranked": [{"estate_id": "e-1", "rate": 0.9}],
               "too_few": [{"estate_id": "e-9", "rate": None}]}
    assert estates.named(ranking) == {
        "ranked": [{"estate_id": "e-1", "rate": 0.9, "estate_name": "阳光花园"}],
        "too_few": [{"estate_id": "e-9", "rate": None, "estate_name": "e-9"}]}
    assert estates.describe("e-1") == {"estate_name": "阳光花园", "company": "华东物业",
                                       "region": "杭州片区"}


def test_revisit_works_in_the_zone_of_the_estates_record_once_it_has_its_copy():
    estates = copies()
    book = ZonedPolicies(PolicyBook({}), estates)
    assert book.for_estate("e-1").timezone == "Asia/Shanghai"     # no copy yet: the config's
    estates.learn(estate_event("estate_registered", 0, "乌鲁木齐花园", timezone="Asia/Urumqi"))
    book = ZonedPolicies(PolicyBook({}), EstateCopies(estates.collection.database, None, "UTC"))
    assert book.for_estate("e-1").timezone == "Asia/Urumqi"
    assert book.default.timezone == "Asia/Shanghai"
    assert COPIES in estates.collection.database.list_collection_names()


def test_notify_writes_an_estates_messages_under_the_name_of_its_record():
    estates = copies()
    settings = NotifySettings({})
    assert ZonedSettings(settings, estates).estate("e-1").context.estate_name == "e-1"  # no copy
    estates.learn(estate_event("estate_registered", 0, "阳光花园", timezone="Asia/Urumqi"))
    estate = ZonedSettings(settings, EstateCopies(estates.collection.database, None, "UTC")
                           ).estate("e-1")
    assert (estate.context.estate_name, estate.zone) == ("阳光花园", "Asia/Urumqi")
    assigned = notifications.NOTIFICATIONS["complaint_assigned"][0]
    params = notifications.message_params(assigned, {
        "complaint_id": "cmp-1", "department": "工程部", "assigned_at": AT, "summary": "楼道灯坏了"},
        estate.context)
    text = message_templates.render(settings.templates("e-1", "zh")["complaint_assigned"], params, "华东物业").text
    assert text.startswith("【华东物业】阳光花园：投诉 cmp-1（楼道灯坏了）")


def test_the_estates_in_another_zone_are_found_without_reading_every_copy():
    """The zones in use are noted as copies are written: which estates are elsewhere is an
    index lookup of the other zones (none when every copy is in the asked one)."""
    db = embedded.new_client()["revisit"]
    db[COPIES].create_indexes(ZONE_INDEXES[COPIES])
    estates = EstateCopies(db, None, "Asia/Shanghai")
    for number in range(20):
        estates.learn(estate_event("estate_registered", 0, "花园", estate_id=f"e-{number}"))
    assert estates.in_zones_other_than("Asia/Shanghai") == []   # the copies read once
    with embedded.recording_scans() as scans:
        assert estates.in_zones_other_than("Asia/Shanghai") == []
        estates.learn(estate_event("estate_updated", 1, "花园", timezone="Asia/Urumqi",
                                   estate_id="e-7"))
        assert estates.in_zones_other_than("Asia/Shanghai") == ["e-7"]
        assert sorted(estates.in_zones_other_than("Asia/Urumqi"))[:2] == ["e-0", "e-1"]
    assert scans == []


def test_copies_kept_before_their_zones_were_noted_are_read_once_for_theirs():
    db = embedded.new_client()["revisit"]
    db[COPIES].create_indexes(ZONE_INDEXES[COPIES])
    db[COPIES].insert_many([{"_id": "e-1", "timezone": "Asia/Shanghai"},
                            {"_id": "e-2", "timezone": "Asia/Urumqi"}])   # an older store
    estates = EstateCopies(db, None, "Asia/Shanghai")
    estates.learn(estate_event("estate_registered", 0, "新花园", estate_id="e-3"))
    assert estates.in_zones_other_than("Asia/Shanghai") == ["e-2"]
    with embedded.recording_scans() as scans:
        assert EstateCopies(db, None, "UTC").in_zones_other_than("Asia/Shanghai") == ["e-2"]
    assert scans == []
