"""Estates as records on the real broker: intake's RPCs announce each change, and another
service keeps a copy from those events — a renamed estate learned once, however often the
event comes — or asks intake once for an estate it has not heard of."""
import pytest
from nameko.exceptions import RemoteError
from nameko.standalone.rpc import ServiceRpcProxy
from nameko.testing.services import entrypoint_waiter

from services.intake.service import IntakeService
from services.revisit.service import RevisitService
from shared.dependencies import Store
from shared.estates import COPIES
from shared.messaging import EventPublisher

pytestmark = pytest.mark.broker

SUNNY = {"estate_id": "e-sun", "name": "阳光花园", "company": "华东物业", "region": "杭州片区"}


def database(container):
    return next(d for d in container.dependencies if isinstance(d, Store)).repository.db


@pytest.fixture
def intake(service_config, container_factory):
    container = container_factory(IntakeService, service_config)
    container.start()
    return container


def test_estate_rpcs_validate_write_and_announce(intake, service_config, listener):
    with ServiceRpcProxy("intake", service_config) as rpc:
        registered = rpc.register_estate(SUNNY)
        assert (registered["name"], registered["timezone"], registered["revision"]) == \
            ("阳光花园", "Asia/Shanghai", 0)
        announced = listener.wait_for("estate_registered")
        assert (announced["source"], announced["estate_id"]) == ("intake", "e-sun")
        assert announced["data"]["name"] == "阳光花园"

        with pytest.raises(RemoteError) as refused:
            rpc.register_estate({"estate_id": "e-2", "timezone": "Mars/Olympus"})
        assert refused.value.exc_type == "InvalidInput"
        assert '"name"' in refused.value.value and '"timezone"' in refused.value.value

        rpc.update_estate("e-sun", {"name": "阳光花园一期"}, expected_revision=0)
        updated = listener.wait_for("estate_updated")
        assert (updated["data"]["name"], updated["data"]["revision"],
                updated["data"]["changed"]) == ("阳光花园一期", 1, ["name"])
        with pytest.raises(RemoteError) as stale:
            rpc.update_estate("e-sun", {"name": "又一个名字"}, expected_revision=0)
        assert stale.value.exc_type == "InvalidTransition"

        with pytest.raises(RemoteError) as nameless:
            rpc.import_households("e-new", [])
        assert nameless.value.exc_type == "InvalidInput" and "estate.name" in nameless.value.value
        rpc.import_households("e-new", [], estate={"name": "新城花园", "company": "华东物业"})
        assert listener.wait_for("estate_registered", name="新城花园")["estate_id"] == "e-new"
        page = rpc.list_estates({"company": "华东物业"}, paged=True)
        assert [estate["name"] for estate in page["items"]] == ["新城花园", "阳光花园一期"]


def test_another_service_learns_a_renamed_estate_once(
        intake, service_config, container_factory, listener):
    revisit = container_factory(RevisitService, service_config)
    revisit.start()
    copies = database(revisit)[COPIES]
    with ServiceRpcProxy("intake", service_config) as rpc:
        with entrypoint_waiter(revisit, "keep_estate_copy"):
            rpc.register_estate(SUNNY)
        with entrypoint_waiter(revisit, "keep_estate_copy_updated"):
            rpc.update_estate("e-sun", {"name": "阳光花园一期", "region": "宁波片区"})
    renamed = listener.wait_for("estate_updated")
    copy = copies.find_one({"_id": "e-sun"})
    assert (copy["name"], copy["region"], copy["revision"]) == ("阳光花园一期", "宁波片区", 1)

    # the rename again (a redelivery) and the registration late: neither changes the copy
    publisher = EventPublisher(service_config)
    registered = listener.of_type("estate_registered")[0]
    for event, handler in ((renamed, "keep_estate_copy_updated"),
                           (registered, "keep_estate_copy")):
        with entrypoint_waiter(revisit, handler):
            publisher.publish(event)
    copy = copies.find_one({"_id": "e-sun"})
    assert (copy["name"], copy["revision"]) == ("阳光花园一期", 1)
    assert copy["events"] == [registered["id"], renamed["id"]]   # each applied once

    with ServiceRpcProxy("revisit", service_config) as rpc:
        assert rpc.revisit_stats("e-sun", "2026-11")["estate_name"] == "阳光花园一期"


def test_an_estate_without_a_copy_is_asked_of_intake_once(
        intake, service_config, container_factory):
    with ServiceRpcProxy("intake", service_config) as rpc:
        rpc.register_estate(SUNNY)
    database(intake).estates.update_one({"_id": "e-sun"}, {"$set": {"name": "直接改的名字"}})
    revisit = container_factory(RevisitService, service_config)
    with entrypoint_waiter(revisit, "keep_estate_copy"):   # the queued registration
        revisit.start()
    copies = database(revisit)[COPIES]
    copies.delete_many({})   # as if it had never come
    with ServiceRpcProxy("revisit", service_config) as rpc:
        assert rpc.revisit_stats("e-sun", "2026-11")["estate_name"] == "直接改的名字"
        database(intake).estates.update_one({"_id": "e-sun"}, {"$set": {"name": "再改"}})
        # kept: not asked again
        assert rpc.revisit_stats("e-sun", "2026-11")["estate_name"] == "直接改的名字"
    assert copies.count_documents({}) == 1
