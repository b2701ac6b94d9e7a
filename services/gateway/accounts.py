"""Staff accounts and logins: the use cases behind ``/api/v1/auth`` and ``/api/v1/users``.

Who a request comes from is decided here: a bearer token (API clients) or the
session cookie (browsers, with the CSRF token on every state-changing request); the
token must verify, be unrevoked, and belong to an enabled user whose token version it
carries. Every request reads its user (kept a second: ``GatewayRepository.find_actor``),
so a change of roles or estates, a logout or a disable applies at once through this
gateway, within a second through another instance of it. The authenticated ``Actor``
goes into the worker's context data, which nameko passes along every RPC the request makes.
"""
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import eventlet
from marshmallow import ValidationError
from werkzeug.wrappers import Request

from services.gateway import identity
from services.gateway.problems import Problem
from services.gateway.repository import USER_FIELDS, GatewayRepository, UsernameTaken
from shared.actor import ACTOR_CONTEXT_KEY, Actor
from shared.clock import Clock
from shared.errors import InvalidInput, NotFound
from shared.paging import Page
from shared.rpc import to_json
from shared.schemas import gateway as schemas
from shared.schemas.base import load

log = logging.getLogger(__name__)

# The departments intake's routing names in some estates (all of the group's: none given):
# what a department user's ``department`` must be one of (``known_departments``).
Departments = Callable[[list[str]], list[str]]


def no_departments(estates: list[str]) -> list[str]:
    """Where nobody asked intake (a caller that sets no departments): none known."""
    return []

SESSION_COOKIE = "huifang_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
FIRST_ADMIN = "admin"


@dataclass(frozen=True)
class AccountSettings:
    secret: str
    token_lifetime: timedelta = timedelta(minutes=60)
    throttle: identity.LoginThrottle = field(default_factory=identity.LoginThrottle)
    secure_cookies: bool = True


def user_view(user: dict) -> dict:
    return to_json({"_id": user["_id"], **{key: user.get(key) for key in USER_FIELDS}})


def known_departments(services: Any) -> Departments:
    """``Departments`` asked of intake (``intake.list_departments``) through ``services``
    (``api.Services``)."""
    return lambda estates: services.call("intake.list_departments", estates or None)


def _check_department(user: dict, departments: Departments) -> None:
    """A department a user's estates route complaints to (as intake's policy names them)."""
    if not user.get("department"):
        return
    known = departments(list(user.get("estates") or []))
    if user["department"] not in known:
        raise InvalidInput({"department": [
            f"not a department of the user's estates: one of {', '.join(known)}" if known
            else "no department is known for the user's estates"]})


def _actor_of(user: dict) -> Actor:
    return Actor(user["_id"], tuple(user.get("roles", ())), tuple(user.get("estates", ())),
                 user.get("department"))


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="huifang"'})


class Accounts:
    def __init__(self, repository: GatewayRepository, settings: AccountSettings, clock: Clock,
                 worker_ctx: Any = None) -> None:
        self.repository, self.settings, self.clock = repository, settings, clock
        self.worker_ctx = worker_ctx

    # first start ------------------------------------------------------------------

    def ensure_first_admin(self, password: str | None) -> str | None:
        """Create ``admin`` on a store with no users; the generated password, if any."""
        if self.repository.has_users():
            return None
        generated = None if password else identity.generate_password()
        first = {"username": FIRST_ADMIN, "password": password or generated,
                 "display_name": "Administrator", "roles": ["admin"], "estates": []}
        try:
            self._add(load(schemas.NewUser(), first), created_by=None)
        except InvalidInput as error:   # a weak HUIFANG_ADMIN_PASSWORD: do not start on it
            raise ValueError(f"HUIFANG_ADMIN_PASSWORD: {error.errors.get('password')}") from None
        except UsernameTaken:
            return None     # another instance created it first
        return generated

    # logins -----------------------------------------------------------------------

    def login(self, data: Any, address: str) -> tuple[dict, identity.TokenClaims]:
        data = load(schemas.Login(), data)
        keys = (f"user:{data['username']}", f"addr:{address}")
        now = self.clock.now()
        failures = self._check_throttle(keys, now)
        eventlet.sleep(self.settings.throttle.delay(failures))
        user = self.repository.find_username(data["username"])
        if (user is None or user.get("disabled")
                or not identity.verify_password(user["password_hash"], data["password"])):
            self._count_failure(keys, now)
            raise _unauthorized("wrong username or password")
        self.repository.clear_login_failures(keys[0])
        if identity.needs_rehash(user["password_hash"]):
            self.repository.update_user(user["_id"], {
                "password_hash": identity.hash_password(data["password"])}, revoke_tokens=False)
        token, claims = identity.issue_token(
            self.settings.secret, user["_id"], user.get("token_version", 0), now,
            self.settings.token_lifetime)
        return {"access_token": token, "token_type": "Bearer",
                "expires_in": int(self.settings.token_lifetime.total_seconds()),
                "user": self._summary(user)}, claims

    def _check_throttle(self, keys: Iterable[str], now: datetime) -> int:
        throttle, worst = self.settings.throttle, 0
        for key in keys:
            counter = self.repository.login_failures(key, now - throttle.window)
            if counter is None:
                continue
            locked_until = counter.get("locked_until")
            if locked_until and locked_until > now:
                wait = int((locked_until - now).total_seconds()) + 1
                raise Problem(429, "too many failed logins; try again later",
                              headers={"Retry-After": str(wait)})
            worst = max(worst, counter["failures"])
        return worst

    def _count_failure(self, keys: Iterable[str], now: datetime) -> None:
        throttle = self.settings.throttle
        for key in keys:
            failures = self.repository.count_login_failure(key, now, throttle.window)
            until = throttle.locked_until(failures, now, address=key.startswith("addr:"))
            if until:
                log.warning("logins locked for %s until %s", key.split(":")[0], until)
                self.repository.lock_login(key, until)

    def csrf_token(self, claims: identity.TokenClaims) -> str:
        return identity.csrf_token(self.settings.secret, claims.token_id)

    # every request ----------------------------------------------------------------

    def authenticate(self, request: Request) -> tuple[Actor, identity.TokenClaims]:
        """The person behind the request, put into the worker's context data; else 401."""
        token, from_cookie = self._token_of(request)
        try:
            claims = identity.verify_token(self.settings.secret, token, self.clock.now())
        except identity.InvalidToken:
            raise _unauthorized("the token is invalid or has expired") from None
        user = self.repository.find_actor(claims.user_id)
        if (user is None or user.get("disabled")
                or user.get("token_version", 0) != claims.version
                or claims.token_id in (user.get("revoked_tokens") or {})):
            raise _unauthorized("the token has been revoked")
        if from_cookie and request.method not in SAFE_METHODS:
            offered = request.headers.get(CSRF_HEADER) or request.form.get("csrf_token")
            if not identity.csrf_matches(self.settings.secret, claims.token_id, offered):
                raise Problem(403, "the CSRF token is missing or wrong")
        actor = _actor_of(user)
        if self.worker_ctx is not None:
            self.worker_ctx.data[ACTOR_CONTEXT_KEY] = actor.to_context()
        return actor, claims

    def act_as(self, user_id: str) -> Actor | None:
        """Work started by a person and carried on without them (``console_jobs``): that
        person with their roles and estates as they are now, put into the worker's context
        data like a request's; None if they are no user any more, or disabled."""
        user = self.repository.find_actor(user_id)
        if user is None or user.get("disabled"):
            return None
        actor = _actor_of(user)
        if self.worker_ctx is not None:
            self.worker_ctx.data[ACTOR_CONTEXT_KEY] = actor.to_context()
        return actor

    def _token_of(self, request: Request) -> tuple[str, bool]:
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise _unauthorized("use 'Authorization: Bearer <token>'")
            return token.strip(), False
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            return cookie, True
        raise _unauthorized("log in first: POST /api/v1/auth/token")

    def logout(self, claims: identity.TokenClaims) -> None:
        self.repository.revoke_token(claims.user_id, claims.token_id, claims.expires_at,
                                     self.clock.now())

    # users ------------------------------------------------------------------------

    def create_user(self, data: Any, created_by: str | None,
                    departments: Departments = no_departments) -> dict:
        data = load(schemas.NewUser(), data)
        _check_department(data, departments)
        try:
            return user_view(self._add(data, created_by))
        except UsernameTaken:
            raise InvalidInput({"username": ["already taken"]}) from None

    def _add(self, data: dict, created_by: str | None) -> dict:
        now = self.clock.now()
        return self.repository.add_user({
            "_id": f"u-{uuid.uuid4().hex[:12]}", "username": data["username"],
            "display_name": data.get("display_name") or data["username"],
            "roles": sorted(set(data["roles"])), "estates": sorted(set(data["estates"])),
            "department": data.get("department"), "disabled": False, "password_hash": identity.hash_password(data["password"]),
            "token_version": 0, "created_at": now, "updated_at": now, "created_by": created_by,
        })

    def get_user(self, user_id: str) -> dict:
        user = self.repository.find_user(user_id)
        if user is None:
            raise NotFound("user", user_id)
        return user_view(user)

    def display_names(self, user_ids: Iterable[str]) -> dict[str, str]:
        """``{id: name as colleagues know them}`` of those ids that are users, one read
        for all (a page's history lines, a month's visitors)."""
        wanted = sorted(set(user_ids))
        if not wanted:
            return {}
        return {user["_id"]: user.get("display_name") or user["username"] for user in
                self.repository.find_users(wanted, ("username", "display_name"))}

    def find_by_username(self, username: str) -> dict:
        user = self.repository.find_username(username)
        if user is None:
            raise NotFound("user", username)
        return user_view(user)

    def list_users(self, filters: Any) -> Page:
        filters = load(schemas.UserFilters(), filters)
        users = self.repository.list_users(filters["limit"] + 1, filters["cursor"])
        page = users[:filters["limit"]]
        more = len(users) > filters["limit"]
        return {"items": [user_view(user) for user in page],
                "next_cursor": page[-1]["username"] if more else None}

    def update_user(self, user_id: str, data: Any, updated_by: str | None,
                    departments: Departments = no_departments) -> dict:
        changes = load(schemas.UserChanges(), data)
        user = self.repository.find_user(user_id)
        if user is None:
            raise NotFound("user", user_id)
        merged = {**user, **changes}
        touches_scope = bool(changes.keys() & {"roles", "estates", "department"})
        try:
            schemas.check_scope(merged)
            if touches_scope:   # an account from before departments may still be disabled
                schemas.check_department(merged)
        except ValidationError as exc:
            raise InvalidInput(exc.normalized_messages()) from None
        if touches_scope:
            _check_department(merged, departments)
        # new password, disabling or fewer rights: tokens issued before stop working
        revoke = "password" in changes or changes.get("disabled") is True or touches_scope
        if "password" in changes:
            changes["password_hash"] = identity.hash_password(changes.pop("password"))
        changes.update(updated_at=self.clock.now(), updated_by=updated_by)
        updated = self.repository.update_user(user_id, changes, revoke_tokens=revoke)
        if updated is None:     # deleted since it was read
            raise NotFound("user", user_id)
        return user_view(updated)

    def change_password(self, actor: Actor, data: Any) -> None:
        data = load(schemas.PasswordChange(), data)
        user = self.repository.find_user(actor.id)
        if user is None or not identity.verify_password(user["password_hash"],
                                                        data["current_password"]):
            raise InvalidInput({"current_password": ["wrong password"]})
        self.repository.update_user(user["_id"], {
            "password_hash": identity.hash_password(data["new_password"]),
            "updated_at": self.clock.now()}, revoke_tokens=True)

    @staticmethod
    def _summary(user: dict) -> dict:
        return {"id": user["_id"], "username": user["username"],
                "display_name": user.get("display_name"), "roles": user.get("roles", []),
                "estates": user.get("estates", []), "department": user.get("department")}
