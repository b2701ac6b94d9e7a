"""One reading of quiet hours for notify and revisit."""
from datetime import time

import pytest

from shared import quiet_hours


@pytest.mark.parametrize("text, normal", [
    ("22:00-08:00", "22:00-08:00"), ("22:00 – 08:00", "22:00-08:00"), ("12:00~14:00", "12:00-14:00"),
])
def test_written_ranges_are_read_the_same_way(text, normal):
    assert quiet_hours.normalize(text) == normal


@pytest.mark.parametrize("text", ["late", "24:00-08:00", "22:00-22:00", "22-08"])
def test_what_is_not_a_range_is_refused(text):
    with pytest.raises(ValueError):
        quiet_hours.normalize(text)


@pytest.mark.parametrize("clock, quiet", [
    (time(21, 59), False), (time(22), True), (time(3), True), (time(8), False),
])
def test_a_range_may_wrap_midnight(clock, quiet):
    assert quiet_hours.contains("22:00-08:00", clock) is quiet
