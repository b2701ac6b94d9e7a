"""Errors that cross RPC with their details.

nameko sends ``exc_type`` (the class name) and ``value`` (``str(exc)``) to the
caller, so the message of each error is what a client reads: for
``InvalidInput`` it is the field errors as JSON, ``{"field": ["message"]}``.
Entrypoints list ``EXPECTED_ERRORS`` so nameko logs them as warnings, not crashes.
"""
import json


class HuifangError(Exception):
    """Base of the errors a caller is meant to handle."""


class InvalidInput(HuifangError):
    def __init__(self, errors: object) -> None:
        message = json.dumps(errors, ensure_ascii=False, sort_keys=True, default=str)
        self.errors = json.loads(message)  # what the caller will read: keys as strings
        super().__init__(message)


class NotFound(HuifangError):
    def __init__(self, kind: str, ident: object) -> None:
        self.kind, self.ident = kind, ident
        super().__init__(f"{kind} {ident!r} not found")


class InvalidTransition(HuifangError):
    def __init__(self, kind: str, ident: object, current: str, action: str,
                 expected: str | None = None) -> None:
        self.current = current
        # ``expected``: the state the caller said it saw (``expected_status``), if another
        seen = f", not {expected} as expected" if expected and expected != current else ""
        super().__init__(f"cannot {action} {kind} {ident!r}: it is {current}{seen}")


class Forbidden(HuifangError):
    """This caller may not do this (full contacts for a person, say); the message says what."""


EXPECTED_ERRORS = (InvalidInput, NotFound, InvalidTransition, Forbidden)
