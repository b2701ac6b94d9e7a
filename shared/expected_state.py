"""The state a caller saw: the optional keyword argument ``expected_status`` of every
state-machine step (docs/rpc.md).

A caller reads a record, then asks for a step, saying which state it saw. The record
still in that state: the step goes on as the state machine says. The record already in
the state the step leads to, its last step being this very one by this very actor: an
earlier try did it and its answer was lost (a timeout, a dropped connection), so the
record is answered as it is, neither refused nor changed again. Anything else is
``InvalidTransition`` naming the state the record is in (409 at the gateway).

The state machines themselves stay in the domain modules; they hand over what to compare.

>>> STATES = ("registered", "acknowledged", "assigned")
>>> step = dict(kind="complaint", record_id="cmp-1", action="acknowledge",
...             expected="registered", states=STATES, leads_to="acknowledged",
...             this=("s-1", "acknowledge"))
>>> already_done(current="registered", **step)    # as the caller saw it: go on
False
>>> already_done(current="acknowledged", last=("s-1", "acknowledge"), **step)  # its retry
True
>>> already_done(current="assigned", last=("s-7", "assign"), **step)
Traceback (most recent call last):
shared.errors.InvalidTransition: cannot acknowledge complaint 'cmp-1': it is assigned, not registered as expected
"""
from collections.abc import Collection

from shared.errors import InvalidInput, InvalidTransition

EXPECTED_STATUS = "expected_status"


def already_done(kind: str, record_id: str, action: str, current: str,
                 expected: str | None, states: Collection[str], *,
                 leads_to: str | None = None, last: tuple | None = None,
                 this: tuple | None = None) -> bool:
    """True when the step is a retry of one that happened (answer the record as it is);
    False when it may go on; ``InvalidTransition`` when the record is not as expected.

    ``last`` is the record's last step as (who, what), ``this`` the one asked for; a step
    that leaves the state as it is (``leads_to`` None) is never taken for a retry.
    """
    if expected is None:
        return False
    if not isinstance(expected, str) or expected not in states:
        raise InvalidInput({EXPECTED_STATUS: [f"one of {', '.join(states)}"]})
    if current == expected:
        return False
    if leads_to is not None and current == leads_to and last is not None and last == this:
        return True
    raise InvalidTransition(kind, record_id, current, action, expected=expected)
