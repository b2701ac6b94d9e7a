from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.envelope import new_event, parse_event, similar_events
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


# many events of one kind in a row (notify's dispatcher) -----------------------------------

SENT = {"delivery_id": "d-1", "channel": "console", "template": "rectification_done",
        "recipient": "h-1", "ref": "rect-1"}


def sent_events(count, at=NOW):
    return [new_event("notification_sent", "notify", "e-1",
                      dict(SENT, delivery_id=f"d-{n}", recipient=f"h-{n}"), at + timedelta(
                          seconds=n), key=f"d-{n}") for n in range(count)]


def test_similar_events_are_the_events_built_one_by_one():
    with similar_events():
        alike = sent_events(3)
    assert alike == sent_events(3)
    assert [parse_event(event)["time"] for event in alike] == \
        [NOW + timedelta(seconds=n) for n in range(3)]


@pytest.mark.parametrize(("change", "field"), [
    ({"delivery_id": "not an id"}, "data.delivery_id"),
    ({"recipient": "h-\x00"}, "data.recipient"),
    ({"ref": "r\ud800"}, "data.ref"),
])
def test_a_similar_event_with_a_bad_value_is_refused_naming_it(change, field):
    with similar_events():
        new_event("notification_sent", "notify", "e-1", SENT, NOW)
        with pytest.raises(InvalidInput) as refused:
            new_event("notification_sent", "notify", "e-1", dict(SENT, **change), NOW)
    assert list(refused.value.errors) == [field]


def test_a_similar_event_at_a_time_out_of_range_is_refused():
    with similar_events():
        new_event("notification_sent", "notify", "e-1", SENT, NOW)
        with pytest.raises(InvalidInput) as refused:
            new_event("notification_sent", "notify", "e-1", SENT, NOW.replace(year=2150))
    assert list(refused.value.errors) == ["time"]


def test_a_payload_with_a_whole_payload_rule_is_checked_in_full_each_time(monkeypatch):
    from marshmallow import ValidationError, validates_schema

    from shared.schemas.events import EVENTS, NotificationSent

    class NotToItself(NotificationSent):
        @validates_schema
        def not_to_itself(self, data, **kwargs):
            if data["recipient"] == data["delivery_id"]:
                raise ValidationError("a delivery is not its own recipient", "recipient")

    monkeypatch.setitem(EVENTS, "notification_sent", ("notify", NotToItself))
    with similar_events():
        new_event("notification_sent", "notify", "e-1", SENT, NOW)
        with pytest.raises(InvalidInput, match="its own recipient"):
            new_event("notification_sent", "notify", "e-1", dict(SENT, recipient="d-1"), NOW)
