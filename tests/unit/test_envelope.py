from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.envelope import new_event, parse_event
from shared.errors import InvalidInput

NOW = datetime(2026, 10, 9, 2, 30, tzinfo=UTC)
CLOSED = {
    "complaint_id": "cmp-1", "household_id": "h-1", "category": "cleaning",
    "severity": "major", "closed_at": NOW, "owner_signoff": "satisfied", "closing_no": 1,
}


def test_envelope_round_trip_keeps_every_field_and_time_in_utc():
    event = new_event("complaint_closed", "intake", "estate-1", CLOSED, NOW)
    assert set(event) >= {"id", "type", "source", "time", "estate_id", "schema_version", "data"}
    assert event["data"]["closed_at"] == "2026-10-09T02:30:00+00:00"
    parsed = parse_event(event)
    assert parsed["data"]["closed_at"] == NOW
    assert parsed["time"] == NOW


def test_event_ids_are_unique():
    ids = {new_event("complaint_closed", "intake", "e", CLOSED, NOW)["id"] for _ in range(50)}
    assert len(ids) == 50


def test_a_service_cannot_publish_another_services_event():
    with pytest.raises(AssertionError):
        new_event("complaint_closed", "revisit", "e", CLOSED, NOW)
    event = new_event("complaint_closed", "intake", "e", CLOSED, NOW)
    with pytest.raises(InvalidInput) as error:
        parse_event(dict(event, source="revisit"))
    assert "source" in error.value.errors


@pytest.mark.parametrize("change, field", [
    ({"type": "complaint_exploded"}, "type"),
    ({"time": "2026-10-09T10:30:00"}, "time"),          # no offset
    ({"estate_id": {"$ne": 1}}, "estate_id.$ne"),
    ({"schema_version": "1"}, "schema_version"),
    ({"extra": 1}, "extra"),
])
def test_malformed_envelopes_are_refused_naming_the_field(change, field):
    event = new_event("complaint_closed", "intake", "e", CLOSED, NOW)
    with pytest.raises(InvalidInput) as error:
        parse_event(dict(event, **change))
    assert field in error.value.errors


def test_payload_is_checked_against_its_schema():
    event = new_event("complaint_closed", "intake", "e", CLOSED, NOW)
    event["data"] = dict(event["data"], owner_signoff="delighted")
    with pytest.raises(InvalidInput) as error:
        parse_event(event)
    assert "owner_signoff" in error.value.errors["data"]


def test_publisher_refuses_a_payload_consumers_would_refuse():
    with pytest.raises(InvalidInput):
        new_event("complaint_closed", "intake", "e", dict(CLOSED, owner_signoff="delighted"), NOW)


def test_times_are_stored_in_utc_whatever_offset_they_came_with():
    shanghai = timezone(timedelta(hours=8))
    event = new_event("complaint_closed", "intake", "e",
                      dict(CLOSED, closed_at=NOW.astimezone(shanghai)), NOW)
    assert parse_event(event)["data"]["closed_at"].utcoffset() == timedelta(0)
