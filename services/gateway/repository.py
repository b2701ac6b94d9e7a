"""The gateway's data: staff accounts (with their revoked tokens) and failed-login counters;
the console's jobs keep theirs through ``jobs.JobStore`` on the same database."""
import time
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pymongo import ASCENDING, IndexModel, ReturnDocument

from services.gateway import jobs
from shared.once import insert_once
from shared.store import Repository

# What a user record shows to an administrator; never the password hash.
USER_FIELDS = ("username", "display_name", "roles", "estates", "department", "disabled",
               "created_at", "updated_at", "created_by")
# What every request reads of its user: who they are, and whether the token still holds.
ACTOR_FIELDS = ("roles", "estates", "department", "disabled", "token_version",
                "revoked_tokens")
# How long requests may go on a user's record read by an earlier one (a store read costs
# more than the rest of authenticating). A change made through this gateway instance drops
# it at once; one made through another instance applies within this time.
ACTOR_CACHE_SECONDS = 1.0
ACTOR_CACHE_SIZE = 4096


class UsernameTaken(Exception):
    pass


class GatewayRepository(Repository):
    indexes: ClassVar[dict] = {
        "users": [IndexModel([("username", ASCENDING)], unique=True)],
        "login_failures": [],
        "rate_counters": [IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0)],
        **jobs.INDEXES,     # the console's long imports and exports
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._actors: dict[str, tuple[float, dict | None]] = {}   # user id: (until, record)
        self._user_changes = 0

    # users --------------------------------------------------------------------

    def has_users(self) -> bool:
        return self.db.users.count_documents({}, limit=1) > 0

    def add_user(self, user: dict) -> dict:
        if insert_once(self.db.users.insert_one, user) is None:
            raise UsernameTaken(user["username"])
        return user

    def find_user(self, user_id: str) -> dict | None:
        return self.db.users.find_one({"_id": user_id})

    def find_users(self, user_ids: list[str], fields: tuple[str, ...]) -> list[dict]:
        """The users of ``user_ids`` that exist (``fields`` of each), one read."""
        return list(self.db.users.find({"_id": {"$in": user_ids}}, dict.fromkeys(fields, 1)))

    def find_actor(self, user_id: str) -> dict | None:
        """What a request needs of its user (``ACTOR_FIELDS``), at most
        ``ACTOR_CACHE_SECONDS`` old. Shared between requests: read it, never change it."""
        now = time.monotonic()
        kept = self._actors.get(user_id)
        if kept is not None and kept[0] > now:
            return kept[1]
        changes = self._user_changes
        actor = self.db.users.find_one({"_id": user_id}, dict.fromkeys(ACTOR_FIELDS, 1))
        # a user changed while the store answered may have been read as they were before
        if self._user_changes == changes:
            if len(self._actors) >= ACTOR_CACHE_SIZE:
                self._actors.clear()
            self._actors[user_id] = (now + ACTOR_CACHE_SECONDS, actor)
        return actor

    def _user_changed(self, user_id: str) -> None:
        """Requests from now on read the user anew (``find_actor``)."""
        self._user_changes += 1
        self._actors.pop(user_id, None)

    def find_username(self, username: str) -> dict | None:
        return self.db.users.find_one({"username": username})

    def list_users(self, limit: int, after: str | None) -> list[dict]:
        query = {"username": {"$gt": after}} if after else {}
        return list(self.db.users.find(query).sort("username", ASCENDING).limit(limit))

    def update_user(self, user_id: str, changes: dict, revoke_tokens: bool) -> dict | None:
        update: dict = {"$set": changes}
        if revoke_tokens:
            update["$inc"] = {"token_version": 1}
        try:
            return self.db.users.find_one_and_update(
                {"_id": user_id}, update, return_document=ReturnDocument.AFTER)
        finally:
            self._user_changed(user_id)

    # tokens -------------------------------------------------------------------
    # A logged-out token stays in its user's ``revoked_tokens`` until it would have expired:
    # every request reads its user anyway (``find_actor``): checking costs no lookup of its own.

    def revoke_token(self, user_id: str, token_id: str, expires_at: datetime,
                     now: datetime) -> None:
        user = self.db.users.find_one({"_id": user_id}, {"revoked_tokens": 1}) or {}
        update: dict = {"$set": {f"revoked_tokens.{token_id}": expires_at}}
        expired = [token for token, until in (user.get("revoked_tokens") or {}).items()
                   if until <= now and token != token_id]
        if expired:     # tokens past their expiry need no revocation any more
            update["$unset"] = {f"revoked_tokens.{token}": "" for token in expired}
        try:
            self.db.users.update_one({"_id": user_id}, update)
        finally:
            self._user_changed(user_id)

    # failed logins ------------------------------------------------------------

    def login_failures(self, key: str, since: datetime) -> dict | None:
        """The failure counter of a username or address, if it counted anything since."""
        return self.db.login_failures.find_one({"_id": key, "last_at": {"$gte": since}})

    def count_login_failure(self, key: str, now: datetime, window: timedelta) -> int:
        # a counter idle longer than the window starts again
        self.db.login_failures.delete_one({"_id": key, "last_at": {"$lt": now - window}})
        counter = self.db.login_failures.find_one_and_update(
            {"_id": key}, {"$inc": {"failures": 1}, "$set": {"last_at": now}},
            upsert=True, return_document=ReturnDocument.AFTER)
        return counter["failures"]

    def lock_login(self, key: str, until: datetime) -> None:
        self.db.login_failures.update_one({"_id": key}, {"$set": {"locked_until": until}})

    def clear_login_failures(self, key: str) -> None:
        self.db.login_failures.delete_one({"_id": key})

    # rate limits ----------------------------------------------------------------

    def count_hit(self, window_key: str, expires_at: datetime) -> int:
        """One more use in a rate window; the uses so far."""
        counter = self.db.rate_counters.find_one_and_update(
            {"_id": window_key}, {"$inc": {"hits": 1}, "$setOnInsert": {"expires_at": expires_at}},
            upsert=True, return_document=ReturnDocument.AFTER)
        return counter["hits"]
