"""Accounts on the embedded store, without a broker: first admin, logins, the throttle,
revocation by logout, password change, disabling and a change of rights."""
from datetime import UTC, datetime, timedelta

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway import identity, repository
from services.gateway.accounts import SESSION_COOKIE, Accounts, AccountSettings
from services.gateway.problems import Problem
from services.gateway.repository import GatewayRepository
from shared.actor import ACTOR_CONTEXT_KEY
from shared.errors import InvalidInput
from tests.helpers import embedded

SECRET = "t" * 40


class Clock:
    # near the real time: the store expires revoked tokens (a TTL index) by the real clock
    def __init__(self):
        self.moment = datetime.now(UTC)

    def now(self):
        return self.moment


class WorkerContext:
    def __init__(self):
        self.data = {}


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def accounts(clock):
    settings = AccountSettings(secret=SECRET, throttle=identity.LoginThrottle(
        delay_step=timedelta(0), lock_after=3, address_lock_after=6))
    accounts = Accounts(embedded(GatewayRepository), settings, clock, WorkerContext())
    accounts.ensure_first_admin("first-admin-password")
    return accounts


def _request(token=None, method="GET", cookie=None, csrf=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if csrf:
        headers["X-CSRF-Token"] = csrf
    builder = EnvironBuilder(path="/api/v1/me", method=method, headers=headers)
    if cookie:
        builder.headers["Cookie"] = f"{SESSION_COOKIE}={cookie}"
    return Request(builder.get_environ())


def _login(accounts, username, password, address="10.0.0.1"):
    answer, claims = accounts.login({"username": username, "password": password}, address)
    return answer["access_token"], claims


def _status(call):
    with pytest.raises(Problem) as refused:
        call()
    return refused.value.status


def test_the_first_start_creates_admin_once(accounts):
    assert accounts.ensure_first_admin("another-password-1") is None
    token, _ = _login(accounts, "admin", "first-admin-password")
    actor, _ = accounts.authenticate(_request(token))
    assert actor.roles == ("admin",) and actor.group_wide
    assert accounts.worker_ctx.data[ACTOR_CONTEXT_KEY]["id"] == actor.id


def test_a_generated_first_password_is_returned_and_works(clock):
    accounts = Accounts(embedded(GatewayRepository), AccountSettings(secret=SECRET), clock)
    generated = accounts.ensure_first_admin(None)
    assert generated and len(generated) >= 20
    assert _login(accounts, "admin", generated)


def test_a_weak_first_password_stops_the_start(clock):
    accounts = Accounts(embedded(GatewayRepository), AccountSettings(secret=SECRET), clock)
    with pytest.raises(ValueError, match="HUIFANG_ADMIN_PASSWORD"):
        accounts.ensure_first_admin("admin")


def test_an_expired_token_is_refused(accounts, clock):
    token, _ = _login(accounts, "admin", "first-admin-password")
    clock.moment += accounts.settings.token_lifetime
    assert _status(lambda: accounts.authenticate(_request(token))) == 401


def test_logout_revokes_only_that_token(accounts):
    first, claims = _login(accounts, "admin", "first-admin-password")
    second, _ = _login(accounts, "admin", "first-admin-password")
    accounts.logout(claims)
    assert _status(lambda: accounts.authenticate(_request(first))) == 401
    assert accounts.authenticate(_request(second))


def test_a_revoked_token_is_forgotten_once_it_would_have_expired(accounts, clock):
    _, first = _login(accounts, "admin", "first-admin-password")
    accounts.logout(first)
    clock.moment += accounts.settings.token_lifetime
    token, second = _login(accounts, "admin", "first-admin-password")
    accounts.logout(second)      # kept in the user's record, the expired one pruned
    assert list(accounts.repository.find_actor(second.user_id)["revoked_tokens"]) == [
        second.token_id]
    assert _status(lambda: accounts.authenticate(_request(token))) == 401


def test_a_password_change_revokes_every_earlier_token(accounts):
    token, _ = _login(accounts, "admin", "first-admin-password")
    actor, _ = accounts.authenticate(_request(token))
    with pytest.raises(InvalidInput):
        accounts.change_password(actor, {"current_password": "wrong-one-here",
                                         "new_password": "second-admin-password"})
    accounts.change_password(actor, {"current_password": "first-admin-password",
                                     "new_password": "second-admin-password"})
    assert _status(lambda: accounts.authenticate(_request(token))) == 401
    assert _login(accounts, "admin", "second-admin-password")


def test_fewer_rights_revoke_tokens_and_apply_at_once(accounts):
    user = accounts.create_user({"username": "clerk", "password": "clerk-password",
                                 "roles": ["cs_staff"], "estates": ["e1", "e2"]}, None)
    token, _ = _login(accounts, "clerk", "clerk-password")
    assert accounts.authenticate(_request(token))[0].estates == ("e1", "e2")
    accounts.update_user(user["id"], {"estates": ["e1"]}, None)
    assert _status(lambda: accounts.authenticate(_request(token))) == 401
    fresh, _ = _login(accounts, "clerk", "clerk-password")
    assert accounts.authenticate(_request(fresh))[0].estates == ("e1",)
    with pytest.raises(InvalidInput) as refused:      # staff of no estate at all
        accounts.update_user(user["id"], {"estates": []}, None)
    assert "estates" in refused.value.errors


def test_a_disabled_user_cannot_log_in_or_use_a_token(accounts):
    user = accounts.create_user({"username": "leaver", "password": "leaver-password",
                                 "roles": ["supervisor"], "estates": ["e1"]}, None)
    token, _ = _login(accounts, "leaver", "leaver-password")
    accounts.update_user(user["id"], {"disabled": True}, None)
    assert _status(lambda: accounts.authenticate(_request(token))) == 401
    assert _status(lambda: _login(accounts, "leaver", "leaver-password")) == 401


def test_a_username_is_locked_after_repeated_failures_then_unlocked(accounts, clock):
    for _ in range(3):
        assert _status(lambda: _login(accounts, "admin", "nope-nope-nope")) == 401
    assert _status(lambda: _login(accounts, "admin", "first-admin-password")) == 429
    clock.moment += accounts.settings.throttle.lock_for + timedelta(seconds=1)
    assert _login(accounts, "admin", "first-admin-password")


def test_an_address_is_locked_after_failures_across_usernames(accounts):
    for n in range(6):
        assert _status(lambda n=n: _login(accounts, f"user{n}", "whatever-it-is",
                                          "10.9.9.9")) == 401
    assert _status(lambda: _login(accounts, "admin", "first-admin-password", "10.9.9.9")) == 429
    assert _login(accounts, "admin", "first-admin-password", "10.1.1.1")


def test_a_session_cookie_needs_the_csrf_token_for_changes(accounts):
    token, claims = _login(accounts, "admin", "first-admin-password")
    assert accounts.authenticate(_request(cookie=token))          # reading is fine
    assert _status(lambda: accounts.authenticate(_request(method="POST", cookie=token))) == 403
    assert _status(lambda: accounts.authenticate(
        _request(method="POST", cookie=token, csrf="0" * 64))) == 403
    assert accounts.authenticate(_request(method="POST", cookie=token,
                                          csrf=accounts.csrf_token(claims)))
    # a bearer token is not sent by browsers on their own: no CSRF token needed
    assert accounts.authenticate(_request(token, method="POST"))


def test_the_user_list_pages_by_username_and_hides_hashes(accounts):
    for name in ("bob", "carol", "dave"):
        accounts.create_user({"username": name, "password": "a-long-password",
                              "roles": ["hq_analyst"]}, None)
    first = accounts.list_users({"limit": 2})
    second = accounts.list_users({"limit": 2, "cursor": first["next_cursor"]})
    names = [user["username"] for user in first["items"] + second["items"]]
    assert names == ["admin", "bob", "carol", "dave"] and second["next_cursor"] is None
    assert all("password_hash" not in user for user in first["items"])


# the user's record kept between requests (GatewayRepository.find_actor) --------------

def test_a_logout_applies_at_once_though_the_user_was_just_read(accounts):
    token, claims = _login(accounts, "admin", "first-admin-password")
    assert accounts.authenticate(_request(token))      # the record is kept from here
    accounts.logout(claims)
    assert _status(lambda: accounts.authenticate(_request(token))) == 401


def test_fewer_rights_apply_at_once_though_the_user_was_just_read(accounts):
    user = accounts.create_user({"username": "desk", "password": "desk-password",
                                 "roles": ["cs_staff"], "estates": ["e1"]}, None)
    token, _ = _login(accounts, "desk", "desk-password")
    assert accounts.authenticate(_request(token))
    accounts.update_user(user["id"], {"disabled": True}, "u-admin")
    assert _status(lambda: accounts.authenticate(_request(token))) == 401


def test_a_change_made_elsewhere_applies_within_the_cache_time(accounts, monkeypatch):
    """Another gateway instance's change reaches this one's store, not its memory: it
    applies once the record kept here is ``ACTOR_CACHE_SECONDS`` old."""
    now = [1000.0]
    monkeypatch.setattr(repository.time, "monotonic", lambda: now[0])
    token, claims = _login(accounts, "admin", "first-admin-password")
    assert accounts.authenticate(_request(token))
    accounts.repository.db.users.update_one(        # as the other instance's logout writes it
        {"_id": claims.user_id}, {"$set": {f"revoked_tokens.{claims.token_id}": claims.expires_at}})
    now[0] += repository.ACTOR_CACHE_SECONDS / 2
    assert accounts.authenticate(_request(token))
    now[0] += repository.ACTOR_CACHE_SECONDS / 2
    assert _status(lambda: accounts.authenticate(_request(token))) == 401


def test_display_names_are_read_for_many_users_at_once(accounts):
    for username, display_name in (("wang.fang", "王芳"), ("li.lei", None)):
        accounts.create_user({"username": username, "password": "a-long-password-1",
                              "roles": ["cs_staff"], "estates": ["e-1"],
                              **({"display_name": display_name} if display_name else {})},
                             None)
    ids = {user["username"]: user["id"] for user in accounts.list_users({})["items"]}
    finds = []
    found = accounts.repository.find_users
    accounts.repository.find_users = lambda *args: finds.append(args) or found(*args)
    names = accounts.display_names([ids["wang.fang"], ids["li.lei"], "system",
                                    ids["wang.fang"]])
    assert names == {ids["wang.fang"]: "王芳", ids["li.lei"]: "li.lei"}
    assert len(finds) == 1
    assert accounts.display_names([]) == {}


# 责任部门: a department's account names its department, one its estates' routing knows ----

def _routing(asked):
    """intake.list_departments as the accounts ask it: each call's estates recorded."""
    def departments(estates):
        asked.append(estates)
        return ["客服中心", "工程部", "秩序部"] if estates == ["e1"] else ["客服中心"]
    return departments


def _department_user(**extra):
    return {"username": "eng.e1", "password": "eng-password", "roles": ["department"],
            "estates": ["e1"], **extra}


def test_a_department_user_needs_a_department_its_estates_route_to(accounts):
    asked = []
    for data, says in ((_department_user(), "required"),                    # none named
                       (_department_user(department="保洁部"), "one of 客服中心, 工程部"),
                       ({**_department_user(department="工程部"), "roles": ["cs_staff"]},
                        "only for the department role")):
        with pytest.raises(InvalidInput) as refused:
            accounts.create_user(data, None, _routing(asked))
        assert list(refused.value.errors) == ["department"]
        assert says in refused.value.errors["department"][0]
    assert asked == [["e1"]]                   # intake asked only once the rest was valid
    assert accounts.repository.find_username("eng.e1") is None       # nothing written
    made = accounts.create_user(_department_user(department="工程部"), None, _routing(asked))
    assert made["department"] == "工程部" and asked[-1] == ["e1"]
    token, _ = _login(accounts, "eng.e1", "eng-password")
    assert accounts.authenticate(_request(token))[0].department == "工程部"
    # another estate's routing does not know 工程部: moving the user there is refused
    with pytest.raises(InvalidInput) as refused:
        accounts.update_user(made["id"], {"estates": ["e2"]}, None, _routing(asked))
    assert "客服中心" in refused.value.errors["department"][0]


def test_an_account_from_before_departments_can_still_be_disabled_and_then_given_one(accounts):
    made = accounts.create_user({"username": "old.dept", "password": "old-password-1",
                                 "roles": ["cs_staff"], "estates": ["e1"]}, None)
    # as upgraded stores hold them: the department role, no department
    accounts.repository.update_user(made["id"], {"roles": ["department"]}, revoke_tokens=False)
    token, _ = _login(accounts, "old.dept", "old-password-1")
    assert accounts.authenticate(_request(token))[0].department is None
    assert accounts.update_user(made["id"], {"display_name": "老账号"}, None)["department"] is None
    with pytest.raises(InvalidInput) as refused:          # roles touched: the department too
        accounts.update_user(made["id"], {"roles": ["department"]}, None, _routing([]))
    assert list(refused.value.errors) == ["department"]
    changed = accounts.update_user(made["id"], {"department": "秩序部"}, None, _routing([]))
    assert changed["department"] == "秩序部"
    assert _status(lambda: accounts.authenticate(_request(token))) == 401   # rights changed
