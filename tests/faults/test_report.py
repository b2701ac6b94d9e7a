"""The fault suite's pass condition can fail: ``Report.build`` counts a doubled effect as a
duplicate and a missing one as lost, and excuses an unbalanced complaint as held in memory
by a killed process only when a kill came while it was under way (embedded store)."""
import pytest

from tests.faults.loop import EXPOSURE_SECONDS, Fault, LoopDriver, Report, Tally

pytestmark = pytest.mark.faults

T0 = 1_000_000.0   # a wall-clock moment


class Counted:
    def __init__(self, tallies):
        self.tallies = tallies

    def tally(self):
        return self.tallies


def whole(n, at=T0, messages=1, announcements=1):
    return Tally(registered={f"cmp-{n}"}, closed={f"closed-{n}"}, revisits={f"rv-{n}"},
                 announcements={f"ann-{n}-{i}" for i in range(announcements)},
                 messages=messages, last_seen=at)


def report(tallies, faults=(), excuse_kills=False, failed=()):
    driver = LoopDriver(config=None, size=len(tallies), tag="t")
    for slot in driver.slots:
        slot.started_at, slot.finished_at = T0 - 5, T0
        slot.failed = "NotFound: complaint" if slot.number in failed else None
    return Report.build("unit", driver, Counted(tallies), list(faults), excuse_kills)


def kill(at):
    return Fault(0.5, "kill -9 revisit", action=None, kills=True, started_at=at,
                 ended_at=at + 3)


def test_one_of_each_per_complaint_balances():
    built = report({0: whole(0), 1: whole(1)})
    assert (built.registered, built.closed, built.revisits_scheduled, built.owner_messages) \
        == (2, 2, 2, 2)
    assert (built.duplicates, built.lost, built.held_in_memory_by_killed_process) == (0, 0, 0)


def test_a_second_owner_message_or_announcement_is_a_duplicate():
    built = report({0: whole(0, messages=2), 1: whole(1, announcements=2)})
    assert (built.duplicates, built.lost) == (2, 0)
    assert [item["complaint"] for item in built.unbalanced] == [0, 1]


def test_a_missing_effect_is_lost():
    missing = whole(0)
    missing.revisits, missing.announcements, missing.messages = set(), set(), 0
    assert report({0: missing, 1: whole(1)}).lost == 1


def test_a_complaint_a_kill_cut_short_is_held_in_memory_only_with_the_embedded_store():
    missing = whole(0)
    missing.messages = 0
    during = [kill(T0 + 1)]
    held = report({0: missing}, during, excuse_kills=True)
    assert (held.held_in_memory_by_killed_process, held.lost) == (1, 0)
    durable = report({0: missing}, during, excuse_kills=False)   # MONGO_URI: no excuse
    assert (durable.held_in_memory_by_killed_process, durable.lost) == (0, 1)


def test_a_loss_long_before_any_kill_is_not_excused():
    missing = whole(0)
    missing.messages = 0
    later = [kill(T0 + EXPOSURE_SECONDS + 5)]
    built = report({0: missing}, later, excuse_kills=True)
    assert (built.held_in_memory_by_killed_process, built.lost) == (0, 1)


def test_a_complaint_the_driver_could_not_finish_is_lost_unless_a_kill_explains_it():
    stopped = Tally()
    assert report({0: stopped}, failed={0}).lost == 1
    assert report({0: stopped}, [kill(T0)], excuse_kills=True, failed={0}) \
        .held_in_memory_by_killed_process == 1
