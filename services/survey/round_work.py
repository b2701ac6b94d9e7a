"""A round's background work: its invitations written from intake's pages, then issued, a
batch at a time. Each round is claimed with a lease its worker renews every batch; once
the lease lapses (that worker died) another instance takes the round over where its
``progress`` says. The reminders that follow go a page at a time too. The steps are
``invitations``' (pure); this drives them against the store and intake."""
import logging
from datetime import datetime, timedelta
from typing import Any

from services.survey import invitations, planning, rounds, tallies
from services.survey.repository import SurveyRepository
from shared.clock import Clock
from shared.envelope import Envelope
from shared.errors import NotFound
from shared.rpc import not_found_as

log = logging.getLogger(__name__)

REMINDER_PAGE = 1000   # invitations read for their reminders at a time


class RoundWork:
    """The rounds being created or issued, worked on by one timer tick of one instance."""

    def __init__(self, store: SurveyRepository, intake: Any, clock: Clock,
                 policy: rounds.SurveyPolicy) -> None:
        self.store, self.intake, self.clock = store, intake, clock
        self.batch_size = policy.round_batch_size
        self.lease = timedelta(seconds=policy.round_work_lease_seconds)

    def run(self) -> None:
        """Every round with work left, claimed one at a time: its invitations written, then
        issued once it is open."""
        while (round_ := self.store.claim_round_work(self.clock.now(), self.lease)) is not None:
            if round_["status"] == "creating":
                round_ = self.write_invitations(round_)
            if round_ is not None and round_["status"] == "open":
                self.issue_invitations(round_)

    def write_invitations(self, round_: dict) -> dict | None:
        """Read the round's households from intake and write their invitations, a batch at a
        time from where its progress stands, then open it (or schedule it). The round as
        saved; None if another worker took it over or it was abandoned."""
        self.store.add_tallies([tallies.empty_tally(round_, estate_id)
                                for estate_id in round_["estate_ids"]])
        while (place := invitations.reading(round_)) is not None:
            estate_id, cursor = place
            try:
                households, cursor = self._read_households(round_, estate_id, cursor)
            except NotFound:
                self._abandon(round_, f"estate {estate_id} is no longer known to intake")
                return None
            written, round_ = invitations.read_households(round_, estate_id, households,
                                                          cursor, self.batch_size)
            self.store.write_invitations(written)
            saved = self.store.save_work(round_, [], "creating", self.clock.now() + self.lease)
            if saved is None:
                return None
            round_ = saved
        now = self.clock.now()
        ready, events = invitations.finish_writing(round_, now)
        # a scheduled round is let go: the schedule opens it, then any instance issues it
        return self.store.save_work(ready, events, "creating",
                                    now + self.lease if ready["status"] == "open" else now)

    def issue_invitations(self, round_: dict) -> None:
        """Issue an open round's invitations a batch at a time from where its progress
        stands, each with its ``survey_invitation_issued``."""
        while not round_["progress"]["done"]:
            key = invitations.batch_key(round_["_id"], round_["progress"]["issued_batches"])
            now = self.clock.now()
            changes, events, round_ = invitations.issue_batch(
                round_, self.store.invitation_batch(key), now)
            self.store.issue_invitations(key, changes, events)
            saved = self.store.save_work(round_, [], "open", now + self.lease)
            if saved is None:
                return
            round_ = saved

    def _read_households(self, round_: dict, estate_id: str, cursor: str | None,
                         ) -> tuple[list[dict], str | None]:
        """(households, intake's cursor after them): a page, or the whole estate for a
        sample (``invitations.reads_whole_estates``)."""
        filters = dict(planning.household_filters(round_), limit=self.batch_size)
        households: list[dict] = []
        while True:
            with not_found_as("estate", estate_id):
                page = self.intake.list_households(
                    estate_id, dict(filters, cursor=cursor), paged=True)
            households += page["items"]
            cursor = page["next_cursor"]
            if cursor is None or not invitations.reads_whole_estates(round_):
                return households, cursor

    def _abandon(self, round_: dict, reason: str) -> None:
        if self.store.save_work(rounds.abandon(round_, self.clock.now()), [], "creating",
                                self.clock.now()):
            self.store.discard_round_data(round_["_id"])
            log.warning("survey round %s abandoned: %s", round_["_id"], reason)


def send_reminders(store: SurveyRepository, round_: dict, now: datetime) -> None:
    """The round's reminders due by ``now``, a page of invitations at a time, each claimed
    once (another instance may send some of them), the page's events published with one
    confirm; until none is left."""
    while True:
        due = store.reminders_due(round_["_id"], now, REMINDER_PAGE)
        held: dict[str, list[Envelope]] = {}
        for invitation in due:
            changes, events = invitations.remind(round_, invitation, now)
            if store.claim_reminder(invitation, changes, events, publish=False) is not None:
                held[invitation["_id"]] = events
        store.publish_outboxes("invitations", held)
        if len(due) < REMINDER_PAGE or not held:   # (none claimed: another instance is on it)
            return
