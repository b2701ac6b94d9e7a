"""The console's pages read what their rows name in batches: a month's 《回访记录本》 asks
intake for its households one call per ``HOUSEHOLDS_PER_CALL`` ids (never one call per
row) and reads its visitors' names from the accounts once; a complaint's or a revisit's
history is named by one read too. Intake and revisit stand behind fakes that count the
calls; every read still goes through ``api.execute`` (permissions, estate scope)."""
from datetime import UTC, datetime, timedelta

from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway import api, console, console_records
from services.gateway.identity import TokenClaims
from shared.actor import Actor
from shared.errors import NotFound

NOW = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
CLAIMS = TokenClaims("u-sup", "jti-1", 0, NOW + timedelta(hours=1))
VISITORS = {f"u-v{n}": f"回访员{n}" for n in range(3)}
USERS = {"u-sup": {"id": "u-sup", "username": "sup", "display_name": "主管"},
         **{user: {"id": user, "username": user, "display_name": name}
            for user, name in VISITORS.items()}}
ROWS = console.HOUSEHOLDS_PER_CALL + 200      # more households than one call finds


def done_revisit(number):
    return {"id": f"rv-{number}", "estate_id": "e-1", "kind": "routine", "status": "done",
            "household_id": f"h-{number:05d}", "source_id": None,
            "completed_at": (NOW - timedelta(days=1, minutes=number)).isoformat(),
            "outcome": {"method": "phone", "reached": True, "satisfaction": "satisfied",
                        "visitor_id": f"u-v{number % 3}", "comments": "", "signed": False,
                        "signed_by": None}}


class FakeIntake:
    """intake's household reads, counted; ``h-00007`` is a household it does not find."""
    unknown = "h-00007"

    def __init__(self):
        self.calls = []

    def list_households(self, estate_id, filters, paged=False):
        self.calls.append(("list_households", estate_id, dict(filters)))
        return {"items": [{"id": household, "estate_id": estate_id, "building": "7",
                           "unit": "1", "room": f"r{household}"}
                          for household in filters.get("household_ids", ())
                          if household != self.unknown],
                "next_cursor": None}

    def get_household(self, household_id):
        self.calls.append(("get_household", household_id))
        return {"id": household_id, "estate_id": "e-1", "building": "7", "unit": "1",
                "room": f"r{household_id}"}

    def list_estates(self, filters, paged=False):
        return {"items": [{"id": "e-1", "name": "阳光花园"}], "next_cursor": None}


class FakeRevisit:
    def __init__(self, revisits):
        self.revisits = revisits

    def list_revisits(self, filters, paged=False):
        return {"items": self.revisits, "next_cursor": None}


class FakeAccounts:
    """The accounts, counting the reads of other people's records."""

    def __init__(self):
        self.reads = []

    def authenticate(self, request):
        return Actor("u-sup", ("supervisor",), ("e-1",)), CLAIMS

    def csrf_token(self, claims):
        return "csrf"

    def get_user(self, user_id):
        if user_id != "u-sup":                  # the signed-in person: the page's header
            self.reads.append(("get_user", user_id))
        if user_id not in USERS:
            raise NotFound("user", user_id)
        return USERS[user_id]

    def display_names(self, user_ids):
        wanted = sorted(set(user_ids))
        self.reads.append(("display_names", wanted))
        return {user: USERS[user]["display_name"] for user in wanted if user in USERS}


def book(query="estate_id=e-1&month=2026-11"):
    intake, accounts = FakeIntake(), FakeAccounts()
    revisit = FakeRevisit([done_revisit(number) for number in range(ROWS)])
    ctx = console.ConsoleContext(
        accounts, api.Services({"intake": intake, "revisit": revisit}), 100_000, NOW,
        Request(EnvironBuilder(path="/console/records/revisits", query_string=query,
                               headers={"Accept-Language": "zh-CN"}).get_environ()))
    return console_records.revisit_book(ctx), intake, accounts


def test_the_revisit_book_asks_for_its_households_a_page_at_a_time():
    response, intake, _ = book()
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert [call[0] for call in intake.calls] == ["list_households", "list_households"]
    assert all(call[1] == "e-1" for call in intake.calls)
    asked = [call[2]["household_ids"] for call in intake.calls]
    assert [len(ids) for ids in asked] == [console.HOUSEHOLDS_PER_CALL, 200]
    assert sorted(id_ for ids in asked for id_ in ids) == sorted(
        f"h-{number:05d}" for number in range(ROWS))
    html = response.get_data(as_text=True)
    assert "7栋 1单元 rh-00008" in html and "7栋 1单元 rh-01100" in html
    assert f"<td>{FakeIntake.unknown}</td>" in html      # not found: shown by its id


def test_the_revisit_book_reads_its_visitors_names_at_once():
    response, _, accounts = book()
    assert accounts.reads == [("display_names", sorted(VISITORS))]
    assert response.get_data(as_text=True).count("回访员1") == len(range(1, ROWS, 3))


def test_a_history_is_named_by_one_read_of_the_accounts():
    accounts = FakeAccounts()
    ctx = console.ConsoleContext(accounts, api.Services({}), 100_000, NOW,
                                 Request(EnvironBuilder(path="/console/").get_environ()))
    history = [{"by": "u-v0"}, {"by": "u-v1"}, {"by": "u-v0"}, {"by": "system"}, {"by": None}]
    assert console.staff_names(ctx, history) == {"u-v0": "回访员0", "u-v1": "回访员1"}
    assert accounts.reads == [("display_names", ["system", "u-v0", "u-v1"])]
