"""Logins: password hashes, signed bearer tokens, the browser session's CSRF token and
the throttle on repeated failed logins. Plain Python: no nameko, no store.

* Passwords are hashed with argon2id (argon2-cffi's defaults, RFC 9106's second
  recommended profile); a hash made with older parameters is re-hashed at the next login.
* A token is a JWT signed with HS256 and ``GATEWAY_SECRET``: ``sub`` (user id), ``jti``
  (its own id, for logout), ``ver`` (the user's token version: a password change or a
  disable bumps it, which revokes every token issued before), ``iat``/``exp``. Only
  HS256 is accepted, so ``alg: none`` and algorithm swaps fail verification.
* A browser gets the same token in an HttpOnly, SameSite=Strict cookie; every
  state-changing request made with the cookie must carry the CSRF token derived from
  the token's ``jti`` (in the ``X-CSRF-Token`` header or a form's ``csrf_token`` field).
"""
import functools
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ALGORITHM = "HS256"
# The key `make run` and the tests use; the gateway refuses it unless HUIFANG_ENV=development.
DEVELOPMENT_SECRET = "huifang-development-secret-do-not-use-in-production"
MIN_SECRET_LENGTH = 32
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()


class InvalidToken(Exception):
    """The token is malformed, tampered with, signed with another key or expired."""


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


def generate_password() -> str:
    return secrets.token_urlsafe(18)


def check_secret(secret: str | None, environment: str | None) -> str:
    """The signing key to use, or ``ValueError`` saying why the gateway must not start."""
    if not secret or secret == DEVELOPMENT_SECRET:
        if environment == "development":
            return DEVELOPMENT_SECRET
        raise ValueError("GATEWAY_SECRET must be set (the built-in development key is "
                         "accepted only with HUIFANG_ENV=development)")
    if len(secret) < MIN_SECRET_LENGTH:
        raise ValueError(f"GATEWAY_SECRET must be at least {MIN_SECRET_LENGTH} characters")
    return secret


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    token_id: str
    version: int
    expires_at: datetime


def issue_token(secret: str, user_id: str, version: int, now: datetime,
                lifetime: timedelta) -> tuple[str, TokenClaims]:
    claims = TokenClaims(user_id, uuid.uuid4().hex, version, now + lifetime)
    token = jwt.encode({
        "sub": user_id, "jti": claims.token_id, "ver": version,
        "iat": int(now.timestamp()), "exp": int(claims.expires_at.timestamp()),
    }, secret, algorithm=ALGORITHM)
    return token, claims


def verify_token(secret: str, token: str, now: datetime) -> TokenClaims:
    subject, token_id, version, expires = _signed_claims(secret, token)
    # checked against the injectable clock rather than PyJWT's own
    if expires <= now.timestamp():
        raise InvalidToken("expired")
    return TokenClaims(subject, token_id, version, datetime.fromtimestamp(expires, now.tzinfo))


@functools.lru_cache(maxsize=4096)
def _signed_claims(secret: str, token: str) -> tuple[str, str, int, int]:
    """A token's claims once its signature and their shape are checked (sub, jti, ver,
    exp). Kept for the tokens last seen: a client sends the same one with every request,
    and its signature cannot change; expiry, revocation and the user are checked anew."""
    try:
        payload = jwt.decode(
            token, secret, algorithms=[ALGORITHM],
            options={"require": ["sub", "jti", "ver", "iat", "exp"], "verify_exp": False})
    except (jwt.PyJWTError, UnicodeError, ValueError) as exc:   # a lone surrogate, garbage
        raise InvalidToken(type(exc).__name__) from None
    if not (isinstance(payload["sub"], str) and isinstance(payload["jti"], str)
            and isinstance(payload["ver"], int) and isinstance(payload["exp"], int)):
        raise InvalidToken("malformed claims")
    return payload["sub"], payload["jti"], payload["ver"], payload["exp"]


def csrf_token(secret: str, token_id: str) -> str:
    """The CSRF token of one browser session, bound to its bearer token."""
    return hmac.new(secret.encode(), f"csrf:{token_id}".encode(), hashlib.sha256).hexdigest()


def csrf_matches(secret: str, token_id: str, offered: str | None) -> bool:
    if not offered:
        return False
    return hmac.compare_digest(csrf_token(secret, token_id), offered)


@dataclass(frozen=True)
class LoginThrottle:
    """Repeated failed logins for a username or from an address are slowed, then locked.

    Each failure within ``window`` after the ``free_failures`` first ones delays the
    answer by ``delay_step`` more (at most ``max_delay``); ``lock_after`` failures lock
    the username for ``lock_for``, ``address_lock_after`` the address (higher: many
    people may share one, e.g. a service centre's office network). A successful login
    clears the username's count.
    """
    free_failures: int = 3
    delay_step: timedelta = timedelta(milliseconds=500)
    max_delay: timedelta = timedelta(seconds=3)
    lock_after: int = 10
    address_lock_after: int = 50
    lock_for: timedelta = timedelta(minutes=15)
    window: timedelta = timedelta(minutes=15)

    def delay(self, failures: int) -> float:
        """Seconds to wait before answering a login after ``failures`` recent failures."""
        extra = max(0, failures - self.free_failures)
        return min(self.delay_step * extra, self.max_delay).total_seconds()

    def locked_until(self, failures: int, last_failure: datetime,
                     address: bool = False) -> datetime | None:
        limit = self.address_lock_after if address else self.lock_after
        return last_failure + self.lock_for if failures >= limit else None
