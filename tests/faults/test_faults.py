"""The proof, as a suite (issue 13): N complaints round the whole loop — register,
acknowledge, assign, resolve, close; revisit schedules the 100 % revisit; notify sends the
owner's notice — with the four back-end services as OS processes on this module's vhost,
under four faults. Each scenario reports its numbers (``tests/faults/loop.py``: printed,
and written to ``test-artifacts/faults/<scenario>.json``) and passes only when every
complaint made exactly one of each, nothing was lost and nothing done twice.

``make faults`` runs 1,000 complaints per scenario (``FAULTS_COMPLAINTS``); plain
``pytest`` (``make test``) the short form. The scenarios share one set of services (each
on an estate of its own); the one that kills them comes last."""
import json
from urllib.parse import unquote, urlparse

import pytest

from shared.schemas.vocabulary import SERVICES
from tests.faults.loop import (
    Duplicator,
    Fault,
    FaultyServices,
    LoopDriver,
    Outcomes,
    Report,
    complaints_per_scenario,
    connections_closed,
    durable_store,
    each_service_killed,
    publish_poison,
    spread,
)

pytestmark = [pytest.mark.broker, pytest.mark.faults]


@pytest.fixture(scope="module")
def services(module_service_config, tmp_path_factory):
    services = FaultyServices(module_service_config, tmp_path_factory.mktemp("services"))
    try:
        services.start()
        yield services
    finally:
        services.stop()


@pytest.fixture
def loop(request, services):
    """(driver, outcomes): the scenario's estate imported, its audit queue listening
    before its first complaint."""
    tag = request.node.name.removeprefix("test_")[:12].rstrip("_")
    driver = LoopDriver(services.config, complaints_per_scenario(), tag)
    outcomes = Outcomes(services.config, services, driver)
    driver.import_households()
    yield driver, outcomes
    outcomes.close()


def settle_and_count(name, driver, outcomes, excuse_kills=False, **details):
    outcomes.settle(timeout=120 + driver.size * 0.5)
    report = Report.build(name, driver, outcomes, driver.faults, excuse_kills=excuse_kills)
    letters = outcomes.dead_letters()
    report.dead_letters = sum(len(found) for found in letters.values())
    report.details.update(
        faults=[fault.name for fault in driver.faults], stream_seconds=round(driver.seconds, 1),
        client_retries=driver.retries,
        events_heard_more_than_once=sum(1 for count in outcomes.copies.values() if count > 1),
        **details)
    return report, letters


def assert_balanced(report):
    assert report.registered == report.closed == report.revisits_scheduled \
        == report.owner_messages == report.complaints, report.unbalanced
    assert (report.duplicates, report.lost, report.held_in_memory_by_killed_process) \
        == (0, 0, 0), report.unbalanced


def vhost_of(config):
    return unquote(urlparse(config["AMQP_URI"]).path[1:])


def redeliveries(rabbit_manager, vhost):
    """Messages the broker handed out again, over the services' queues (management API)."""
    return sum(queue.get("message_stats", {}).get("redeliver", 0)
               for queue in rabbit_manager.get_queues(vhost)
               if queue["name"].split(".", 1)[0] in SERVICES)


def test_every_connection_of_the_vhost_closed_three_times(loop, services, rabbit_manager):
    driver, outcomes = loop
    vhost = vhost_of(services.config)
    driver.run(connections_closed(rabbit_manager, vhost, 3))
    report, _ = settle_and_count("connections_closed", driver, outcomes)
    report.publish()
    assert all("(0 connections)" not in fault.name for fault in driver.faults)
    assert_balanced(report)
    assert report.dead_letters == 0


def test_every_event_delivered_twice(loop, services):
    driver, outcomes = loop
    duplicator = Duplicator(services.config)
    try:
        driver.run()
        report, _ = settle_and_count("events_delivered_twice", driver, outcomes)
        report.details["copies_injected"] = duplicator.copies
    finally:
        duplicator.close()
    report.publish()
    # each event the loop's consumers handle came twice: registered, closed, scheduled
    assert duplicator.copies >= 3 * driver.size
    assert_balanced(report)
    assert report.dead_letters == 0


def test_poison_messages_mixed_into_the_stream(loop, services, rabbit_manager):
    driver, outcomes = loop
    redelivered_before = redeliveries(rabbit_manager, vhost_of(services.config))
    count = 9 * max(1, driver.size // 90)   # every kind of poison, every way, alike
    batches = iter([range(start, count, 3) for start in range(3)])
    expected = {}

    def poison_batch():
        for service, letters in publish_poison(services.config, next(batches)).items():
            expected[service] = expected.get(service, 0) + letters

    driver.run([Fault(at, "poison", poison_batch) for at in spread(3)])
    report, letters = settle_and_count("poison_messages", driver, outcomes,
                                       poison_published=count)
    report.details["dead_letters_by_service"] = {s: len(found) for s, found in letters.items()}
    report.details["poison_attempts_max"] = max(
        (letter["attempts"] or 0 for found in letters.values() for letter in found), default=0)
    report.details["redelivered"] = redeliveries(
        rabbit_manager, vhost_of(services.config)) - redelivered_before
    report.publish()
    assert_balanced(report)
    # each poison message dead-lettered by every service it reached, at its first attempt
    # (no retry, no redelivery loop), and nothing else there
    assert {s: len(found) for s, found in letters.items() if found} == expected
    for found in letters.values():
        for letter in found:
            assert "poison-" in json.dumps(letter["body"], ensure_ascii=False), letter
            assert letter["attempts"] == 1, letter
    assert report.details["redelivered"] == 0    # no hot loop: nothing handed out again
    assert outcomes.queues_empty()


def test_each_service_killed_and_restarted(loop, services):
    """Last: with the embedded store the killed services forget the earlier scenarios."""
    driver, outcomes = loop
    driver.run(each_service_killed(services, driver))
    report, _ = settle_and_count("services_killed", driver, outcomes,
                                 excuse_kills=not durable_store(),
                                 store="MongoDB" if durable_store() else "embedded")
    report.publish()
    # what a killed process held in memory is excused only with the embedded store; the
    # rest balances exactly (with MONGO_URI nothing at all may be lost)
    assert (report.duplicates, report.lost) == (0, 0), report.unbalanced
    if durable_store():
        assert_balanced(report)
    assert report.held_in_memory_by_killed_process < report.complaints
    assert report.dead_letters == 0
