"""Logins without a broker: password hashes, tokens, CSRF, the login throttle."""
import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from services.gateway import identity

SECRET = "s" * 40
NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def test_a_password_hash_is_argon2id_and_verifies_only_the_password():
    hashed = identity.hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert identity.verify_password(hashed, "correct horse battery")
    assert not identity.verify_password(hashed, "correct horse batterY")
    assert not identity.verify_password("not a hash", "correct horse battery")


def test_a_token_verifies_until_it_expires():
    token, claims = identity.issue_token(SECRET, "u-1", 3, NOW, timedelta(minutes=60))
    verified = identity.verify_token(SECRET, token, NOW + timedelta(minutes=59))
    assert (verified.user_id, verified.version, verified.token_id) == ("u-1", 3, claims.token_id)
    with pytest.raises(identity.InvalidToken):
        identity.verify_token(SECRET, token, NOW + timedelta(minutes=60))


def test_a_token_signed_with_another_key_is_refused():
    token, _ = identity.issue_token("k" * 40, "u-1", 0, NOW, timedelta(minutes=5))
    with pytest.raises(identity.InvalidToken):
        identity.verify_token(SECRET, token, NOW)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_alg_none_is_refused():
    claims = {"sub": "admin-id", "jti": "x", "ver": 0, "iat": 0, "exp": 4102444800}
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."
    with pytest.raises(identity.InvalidToken):
        identity.verify_token(SECRET, unsigned, NOW)


def test_a_tampered_claim_breaks_the_signature():
    token, _ = identity.issue_token(SECRET, "u-1", 0, NOW, timedelta(minutes=5))
    header, _, signature = token.split(".")
    forged = f"{header}.{_b64({'sub': 'u-admin', 'jti': 'x', 'ver': 0, 'iat': 0, 'exp': 4102444800})}.{signature}"
    with pytest.raises(identity.InvalidToken):
        identity.verify_token(SECRET, forged, NOW)


def test_a_token_missing_claims_or_with_wrong_types_is_refused():
    for payload in ({"sub": "u-1", "exp": 4102444800},
                    {"sub": 7, "jti": "x", "ver": 0, "iat": 0, "exp": 4102444800},
                    {"sub": "u-1", "jti": "x", "ver": "0", "iat": 0, "exp": 4102444800}):
        token = jwt.encode(payload, SECRET, algorithm="HS256")
        with pytest.raises(identity.InvalidToken):
            identity.verify_token(SECRET, token, NOW)
    for garbage in ("", "abc", "a.b.c", "\ud800", "x" * 5000):
        with pytest.raises(identity.InvalidToken):
            identity.verify_token(SECRET, garbage, NOW)


def test_the_development_key_only_in_development():
    with pytest.raises(ValueError, match="GATEWAY_SECRET"):
        identity.check_secret(None, None)
    with pytest.raises(ValueError, match="GATEWAY_SECRET"):
        identity.check_secret(identity.DEVELOPMENT_SECRET, "production")
    with pytest.raises(ValueError, match="32"):
        identity.check_secret("short", None)
    assert identity.check_secret(None, "development") == identity.DEVELOPMENT_SECRET
    assert identity.check_secret(SECRET, None) == SECRET


def test_the_csrf_token_belongs_to_one_session():
    token = identity.csrf_token(SECRET, "jti-1")
    assert identity.csrf_matches(SECRET, "jti-1", token)
    assert not identity.csrf_matches(SECRET, "jti-2", token)
    assert not identity.csrf_matches(SECRET, "jti-1", None)
    assert not identity.csrf_matches("k" * 40, "jti-1", token)


def test_failed_logins_are_slowed_then_locked():
    throttle = identity.LoginThrottle()
    delays = [throttle.delay(failures) for failures in range(12)]
    assert delays[:throttle.free_failures + 1] == [0.0] * (throttle.free_failures + 1)
    assert delays == sorted(delays) and delays[-1] == throttle.max_delay.total_seconds()
    assert throttle.locked_until(throttle.lock_after - 1, NOW) is None
    assert throttle.locked_until(throttle.lock_after, NOW) == NOW + throttle.lock_for
