"""Counters that take each change once, kept without multi-document transactions (the
embedded store has none).

**Add once.** A counter document lists in ``in_flight`` the ids of the changes being
added to it. ``add_once`` makes a change's ``$inc`` and puts its id there in one write,
matching only while the id is not there: a second settler of the same change (a slow
writer and the relay) adds nothing. ``is_in_flight`` tells a relay that the ``$inc`` was
made before a crash; ``done_adding`` takes the id out once the change is recorded as
counted where it came from. survey's tallies count responses this way.

    >>> from shared.embedded import new_client
    >>> tallies = new_client()["example"]["tallies"]
    >>> _ = tallies.insert_one({"_id": "r-1:e-1", "returned": 0, "in_flight": []})
    >>> add_once(tallies, "r-1:e-1", "resp-1", {"returned": 1})
    True
    >>> add_once(tallies, "r-1:e-1", "resp-1", {"returned": 1})   # the same change again
    False
    >>> done_adding(tallies, "r-1:e-1", "resp-1")
    >>> tallies.find_one()
    {'_id': 'r-1:e-1', 'returned': 1, 'in_flight': []}

**Counters per estate × month** (``MonthCounters``, intake's complaint counters and
revisit's): a record's change reaches its counter document once:

1. the record is written with what its change does to its counters (``difference`` of
   its contribution before and after) in ``stats_pending``, and its new contribution in
   ``stats_counted``, in the same write;
2. the counter document gets the ``$inc`` and the change's id in ``in_flight``
   (``add_once``);
3. the change leaves the record's ``stats_pending``;
4. its id leaves ``in_flight``.

A repository that keeps the group's totals (``keeps_group_totals``) adds each change to
its month's group document (``GROUP``) too, in step 2 the same way, so headquarters
reads one document a month instead of one an estate (``with_group_totals`` gives them
again from a recount); one that keeps year totals (``keeps_year_totals``) adds it to
the estate's (and the group's) document of the month's year as well, so a year's figures
read one document an estate instead of twelve (``with_year_totals``; ``period_keys``
says which documents a period reads). Paths an estate's documents keep for their own bookkeeping
(``estate_only``: revisit's work orders with a visit done) stay out of the group's; a
count added only where the estate's document meets a condition (``_conditional_counts``)
is decided there, and the group's total adds what was decided: the estate's document
notes the condition that held in ``in_flight`` beside the change's id (``<id>|<n>``), so
the relay finds it again after a crash. Every change in the group writes its month's
group document: on MongoDB that document is hot (one writer at a time); the writes are
small ``$inc``s and stay so (the document holds a few hundred counters whatever the
group's size, open deadlines aside).

A crash leaves a record with ``stats_unsettled``: after its writer's grace the relay
(``settle_counts``) redoes 2-4 for each change left, skipping 2 if the id is still in
``in_flight`` (it leaves only after step 3). A record stored before the counters has no
``stats_counted`` (it is not counted yet): its next change counts it whole.

    >>> class Tickets(MonthCounters):
    ...     counters_collection = "ticket_counters"
    ...     counted_collections = ("tickets",)
    >>> tickets = Tickets(new_client()["example"])
    >>> ticket, change = tickets._counted({"_id": "t-1", "estate_id": "e-1",
    ...                                    "stats_month": "2026-11"}, {"open": 1}, 0)
    >>> _ = tickets.db.tickets.insert_one(ticket)
    >>> tickets._settle("tickets", "t-1", [change])
    >>> tickets.kept_counts()
    {('e-1', '2026-11'): {'open': 1}}
    >>> tickets.settle_counts()       # nothing left for the relay
    0
"""
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from pymongo import ASCENDING, IndexModel
from pymongo.collection import Collection

from shared.counts import Counts, difference, flat, nested
from shared.leases import claim_each
from shared.once import insert_once
from shared.store import Repository

IN_FLIGHT = "in_flight"
# the bookkeeping on each counted record (never shown: shared.rpc.INTERNAL_KEYS)
COUNTED = "stats_counted"          # its contribution as the counters hold it: [[path, n]]
PENDING = "stats_pending"          # changes it still owes the counters, each applied once
UNSETTLED = "stats_unsettled"      # True while it owes any: what the relay looks for
SETTLE_AFTER = "stats_settle_after"   # left to its writer until then, then to the relay
BOOKKEEPING = (COUNTED, PENDING, UNSETTLED, SETTLE_AFTER)
# the pseudo-estate of the group's total counters per month (no estate id can be "*")
GROUP = "*"
# counter document fields that are not counts
COUNTER_INFO = ("_id", "estate_id", "month", IN_FLIGHT)
# each counted collection's index for the relay's lookup: only unsettled records hold these
UNSETTLED_INDEX = IndexModel([(UNSETTLED, ASCENDING), (SETTLE_AFTER, ASCENDING)], sparse=True)


def add_once(counters: Collection, counter_id: str, change_id: str, inc: Counts,
             condition: dict | None = None, note: str | None = None) -> bool:
    """Step 2: ``inc`` on the counter document and ``change_id`` into its ``in_flight``, in
    one write, unless the id is there already (or ``condition`` does not hold): whether
    it was made. ``note``: one more entry for ``in_flight`` in the same write."""
    update: dict[str, Any] = {"$push": {IN_FLIGHT: change_id if note is None
                                        else {"$each": [change_id, note]}}}
    if inc:
        update["$inc"] = inc
    query = {"_id": counter_id, IN_FLIGHT: {"$ne": change_id}, **(condition or {})}
    return bool(counters.update_one(query, update).matched_count)


def is_in_flight(counters: Collection, counter_id: str, change_id: str) -> bool:
    """Whether the change's ``$inc`` was made and the change is not done yet."""
    return counters.find_one({"_id": counter_id, IN_FLIGHT: change_id}) is not None


def done_adding(counters: Collection, counter_id: str, change_id: str,
                notes: Iterable[str] = ()) -> None:
    """Step 4: the change is recorded as counted where it came from; its id (and the
    ``notes`` made with it) leave."""
    notes = list(notes)
    counters.update_one({"_id": counter_id}, {"$pull": {
        IN_FLIGHT: {"$in": [change_id, *notes]} if notes else change_id}})


def counter_id(estate_id: str, month: str | None) -> str:
    return f"{estate_id}:{month}"


def counter_document(estate_id: str, month: str | None, counts: Counts) -> dict:
    """A counter document holding ``counts`` (a repair writes these)."""
    return {"_id": counter_id(estate_id, month), "estate_id": estate_id, "month": month,
            IN_FLIGHT: [], **nested(counts)}


def year_of(month: str) -> str:
    """The year document's key of a month's (``2026`` of ``2026-11``)."""
    return month[:4]


def with_year_totals(counted: dict[tuple[str, str | None], Counts],
                     estate_only: tuple[str, ...] = ()
                     ) -> dict[tuple[str, str | None], Counts]:
    """``counted`` ({(estate, month): counts}) with each estate's year summed under
    (estate, ``year_of(month)``): what the year documents hold (``estate_only`` paths left
    out; records filed under no month yet are in no year)."""
    years: dict[tuple[str, str | None], Counts] = {}
    for (estate_id, month), counts in counted.items():
        if month is not None and len(month) > len(year_of(month)):
            total = years.setdefault((estate_id, year_of(month)), {})
            for path, count in counts.items():
                if not (estate_only and path.startswith(estate_only)):
                    total[path] = total.get(path, 0) + count
    return {**counted, **{key: {path: count for path, count in total.items() if count}
                          for key, total in years.items()}}


def with_group_totals(counted: dict[tuple[str, str | None], Counts],
                      estate_only: tuple[str, ...] = ()
                      ) -> dict[tuple[str, str | None], Counts]:
    """``counted`` ({(estate, month): counts}) with each month's sum over its estates under
    (``GROUP``, month): what the group's total documents hold (paths starting with one
    of ``estate_only`` left out)."""
    totals: dict[tuple[str, str | None], Counts] = {}
    for (estate_id, month), counts in counted.items():
        if estate_id != GROUP:
            total = totals.setdefault((GROUP, month), {})
            for path, count in counts.items():
                if not (estate_only and path.startswith(estate_only)):
                    total[path] = total.get(path, 0) + count
    return {**counted, **{key: {path: count for path, count in total.items() if count}
                          for key, total in totals.items()}}


def counts_of(document: Mapping) -> Counts:
    """A counter document's counts as {path: n}, zeros left out."""
    return flat(document, skip=COUNTER_INFO)


class MonthCounters(Repository):
    """A ``Repository`` with per estate × month counters: steps 1-4 and the relay, as the
    module's docstring tells. A subclass names its ``counters`` collection and the
    ``counted_collections`` whose records carry the bookkeeping (each indexed with
    ``UNSETTLED_INDEX``)."""

    counters_collection: ClassVar[str]
    counted_collections: ClassVar[tuple[str, ...]]
    keeps_group_totals: ClassVar[bool] = False     # each month's total too (``GROUP``)
    keeps_year_totals: ClassVar[bool] = False      # each year's too (``year_of``)
    # counter path prefixes an estate's month documents keep and the totals do not
    estate_only: ClassVar[tuple[str, ...]] = ()

    def counted_month(self, document: dict) -> str | None:
        """The month a record is counted in."""
        return document.get("stats_month")

    def _counted(self, document: dict, contribution: Counts, change_name: object,
                 before: Counts | None = None) -> tuple[dict, dict]:
        """Step 1: ``document`` to write with its new ``contribution`` and the change to its
        counters pending (a change that changes no counter is still recorded: it is
        settled as one), and that change."""
        month = self.counted_month(document)
        change = {"id": f"{document['_id']}@{change_name}",
                  "counter": counter_id(document["estate_id"], month),
                  "estate_id": document["estate_id"], "month": month,
                  "inc": sorted(difference(before or {}, contribution).items())}
        return dict(document, **{COUNTED: sorted(contribution.items()), PENDING: [change],
                                 UNSETTLED: True,
                                 SETTLE_AFTER: datetime.now(UTC) + self.outbox_grace}), change

    @staticmethod
    def _uncounted(document: dict) -> tuple[dict, Counts]:
        """A record read earlier without its bookkeeping, and what the counters hold of it
        (nothing for one stored before the counters: it is counted whole now)."""
        document = {key: value for key, value in document.items()
                    if key not in (PENDING, UNSETTLED, SETTLE_AFTER)}
        return document, dict(document.pop(COUNTED, None) or [])

    def _save_pending(self, collection: str, document: dict, change: dict, events: list,
                      handled_event: str | None = None) -> dict:
        """Save a changed record (``save_versioned``) from ``_counted``, its change pending,
        then steps 2-4."""
        document = {key: value for key, value in document.items() if key != PENDING}
        saved = self.save_versioned(collection, document, events, handled_event,
                                    push={PENDING: change})
        self._settle(collection, saved["_id"], [change])
        return saved

    def _settle(self, collection: str, document_id: str, changes: Iterable[dict]) -> None:
        """Steps 2-4 for the ``changes`` a write left pending on its record."""
        for change in changes:
            for target in self._targets(change):
                self._apply(target)
            self._forget(collection, document_id, change)

    def _targets(self, change: dict) -> list[dict]:
        """The counter documents a change adds to, each as the change for it: its
        estate-month's first, then the totals kept — the month's group total, the
        estate's and the group's year — each adding what the first decided
        (``decided_on``)."""
        month = change["month"]
        keys = [month, year_of(month)] if self.keeps_year_totals and month else [month]
        estates = [change["estate_id"], GROUP] if self.keeps_group_totals else [change["estate_id"]]
        return [change] + [dict(change, counter=counter_id(estate_id, key), estate_id=estate_id,
                                month=key, decided_on=change["counter"])
                           for key in keys for estate_id in estates
                           if (estate_id, key) != (change["estate_id"], month)]

    def period_keys(self, months: list[str]) -> list[str]:
        """The counter documents a period of ``months`` reads: its year's when the
        months are a whole year and years are kept, else its months'."""
        years = {year_of(month) for month in months}
        if self.keeps_year_totals and len(months) == 12 and len(years) == 1:
            return list(years)
        return months

    def _apply(self, change: dict) -> None:
        """Step 2, the counter document made first if it is new. A counter a change brings
        back to zero is dropped (the condition is in the same write). The group's total
        adds what the estate's document decided (its note ``<id>|<n>``: the n-th
        conditional count held there), never its ``estate_only`` paths; so do the
        year totals."""
        counters = self.db[self.counters_collection]
        inc = dict(change["inc"])
        conditional = list(self._conditional_counts(inc))
        if "decided_on" in change:     # a total: what the estate's month document decided
            held = self._condition_held(change, len(conditional))
            inc = {path: step for path, step in
                   {**inc, **(conditional[held][1] if held is not None else {})}.items()
                   if not (self.estate_only and path.startswith(self.estate_only))}
            if not self._add(counters, change, inc):
                return
        else:
            for number, (condition, more) in enumerate(conditional):
                if self._add(counters, change, {**inc, **more}, condition,
                             note=f"{change['id']}|{number}"):
                    break
            else:
                if not self._add(counters, change, inc):
                    return
        for path, step in inc.items():
            if step < 0:
                counters.update_one({"_id": change["counter"], path: 0}, {"$unset": {path: ""}})

    @staticmethod
    def _add(counters: Collection, change: dict, inc: Counts, condition: dict | None = None,
             note: str | None = None) -> bool:
        """``add_once`` to the change's counter document, made first if it is not there
        (tried only when the add found nothing: nearly every change meets a document
        that exists, and the upsert is a write of its own)."""
        if add_once(counters, change["counter"], change["id"], inc, condition, note):
            return True
        if counters.find_one({"_id": change["counter"]}, {"_id": 1}) is not None:
            return False   # taken already, or its condition does not hold
        insert_once(counters.update_one, {"_id": change["counter"]}, {"$setOnInsert": {
            "estate_id": change["estate_id"], "month": change["month"], IN_FLIGHT: []}},
            upsert=True)
        return add_once(counters, change["counter"], change["id"], inc, condition, note)

    def _condition_held(self, change: dict, conditions: int) -> int | None:
        """Which of a change's ``conditions`` conditional counts held on its estate's
        document (noted there until the change is done), if any."""
        if not conditions:
            return None
        notes = {f"{change['id']}|{number}": number for number in range(conditions)}
        estate = self.db[self.counters_collection].find_one({"_id": change["decided_on"]},
                                                            {IN_FLIGHT: 1})
        return next((notes[entry] for entry in (estate or {}).get(IN_FLIGHT, [])
                     if entry in notes), None)

    def _notes(self, change: dict) -> list[str]:
        """The notes a change may leave beside its id (``_apply``)."""
        return [f"{change['id']}|{number}"
                for number in range(len(list(self._conditional_counts(dict(change["inc"])))))]

    def _conditional_counts(self, inc: Counts) -> Iterable[tuple[dict, Counts]]:
        """(condition, more counts): counts added with ``inc`` only where the counter
        document meets the condition at the moment of the write, the first that holds;
        ``inc`` alone if none does. None here."""
        return ()

    def _forget(self, collection: str, document_id: str, change: dict) -> None:
        """Steps 3 and 4; the flag goes once nothing is pending (checked in its write): in
        one write when this change was all that was pending, as it nearly always is."""
        records = self.db[collection]
        if not records.update_one(
                {"_id": document_id, PENDING: {"$size": 1}, f"{PENDING}.id": change["id"]},
                {"$set": {PENDING: []}, "$unset": {UNSETTLED: "", SETTLE_AFTER: ""}}
        ).matched_count:
            records.update_one({"_id": document_id}, {"$pull": {PENDING: {"id": change["id"]}}})
            self._unflag(collection, document_id)
        for target in self._targets(change):
            done_adding(self.db[self.counters_collection], target["counter"], change["id"],
                        self._notes(change) if "decided_on" not in target else ())

    def _unflag(self, collection: str, document_id: str) -> None:
        self.db[collection].update_one({"_id": document_id, PENDING: {"$size": 0}},
                                       {"$unset": {UNSETTLED: "", SETTLE_AFTER: ""}})

    def _counted_as_is(self, collection: str, document_id: str, counted: list,
                       changes: dict | None = None) -> None:
        """Repair: the record's contribution is ``counted`` ([[path, n]]) and nothing is
        pending (``changes``: more to set in the same write)."""
        self.db[collection].update_one({"_id": document_id}, {
            "$set": {COUNTED: counted, PENDING: [], **(changes or {})},
            "$unset": {UNSETTLED: "", SETTLE_AFTER: ""}})

    def settle_counts(self, lease: timedelta = timedelta(seconds=30), limit: int = 500,
                      now: datetime | None = None) -> int:
        """The relay: what crashed writers (or relays) left pending, once their grace (or
        lease) has passed, each record claimed for ``lease`` so two instances do not both
        settle it. ``now``: the clock of the pass (tests move it on)."""
        settled, now = 0, now or datetime.now(UTC)
        for collection in self.counted_collections:
            for document in claim_each(self.db[collection], {UNSETTLED: True}, SETTLE_AFTER,
                                       now, lease, limit - settled, projection={PENDING: 1}):
                for change in document.get(PENDING, []):
                    for target in self._targets(change):
                        if not is_in_flight(self.db[self.counters_collection],
                                            target["counter"], change["id"]):
                            self._apply(target)
                    self._forget(collection, document["_id"], change)
                self._unflag(collection, document["_id"])
                settled += 1
        return settled

    def with_totals(self, counted: dict[tuple[str, str | None], Counts]
                    ) -> dict[tuple[str, str | None], Counts]:
        """A recount ({(estate, month): counts}) with the totals this repository keeps:
        what its counter documents hold."""
        if self.keeps_year_totals:
            counted = with_year_totals(counted, self.estate_only)
        if self.keeps_group_totals:
            counted = with_group_totals(counted, self.estate_only)
        return counted

    def kept_counts(self) -> dict[tuple[str, str | None], Counts]:
        """Every counter document's counts: {(estate, month): counts} (for a recount)."""
        return {(document["estate_id"], document["month"]): counts_of(document)
                for document in self.db[self.counters_collection].find({}, {IN_FLIGHT: 0})}

    def store_counters(self, counted: dict[tuple[str, str | None], Counts]) -> None:
        """Counter documents for ``counted`` ({(estate, month): counts}), none there yet."""
        documents = [counter_document(estate_id, month, counts)
                     for (estate_id, month), counts in counted.items()]
        if documents:
            self.db[self.counters_collection].insert_many(documents)
