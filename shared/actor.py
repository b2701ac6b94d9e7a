"""Who is acting: the authenticated person the gateway passes along, and the calling service.

The gateway puts the logged-in user into nameko's context data under
``ACTOR_CONTEXT_KEY``; nameko carries context data along every RPC a worker makes,
so a service three calls away still knows who acted. When an actor is present the
who-acted fields of an input (``staff_id``, ``closed_by``, ``visitor_id`` …) are
overwritten with the actor's id: a name typed into a request body grants nothing.
Without an actor (a service, a script, a test on the broker) the typed field stands,
as before; the gateway is the only door people have.

A field that grants something by the role it names (``flag_malicious``'s ``role``)
declares ``metadata={ACTOR_FIELD: "rung"}``: with an actor it becomes the actor's rung.

Context data, call-id stack included, is written by whoever publishes the call: it
is trusted because only the services and the gateway hold broker credentials
(README: compose gives each its own broker user), not because it cannot be forged.
"""
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from marshmallow import Schema
from nameko.extensions import DependencyProvider

from shared.errors import Forbidden, InvalidInput
from shared.schemas.base import ACTOR_FIELD, ID_PATTERN, load
from shared.schemas.vocabulary import GROUP_WIDE_ROLES, USER_ROLE_RUNGS

ACTOR_CONTEXT_KEY = "huifang.actor"
# Input fields that say who did something; an authenticated actor fills them.
ACTOR_ID_FIELDS = ("staff_id", "closed_by", "visitor_id", "flagged_by", "reviewer_id")
# The rungs of the services' ladders, lowest first.
RUNG_ORDER = ("staff", "supervisor", "manager", "company_manager")
# Stamped for a person on no rung: no rung check accepts it, so its own message refuses.
NO_RUNG = ""


@dataclass(frozen=True)
class Actor:
    id: str
    roles: tuple[str, ...] = ()
    estates: tuple[str, ...] = ()   # empty with a group-wide role: every estate
    # 责任部门: the department of a department's staff (the gateway confines them to it,
    # services/gateway/permissions.py); not passed to the services, which need it not.
    department: str | None = None

    @property
    def group_wide(self) -> bool:
        return not self.estates and any(role in GROUP_WIDE_ROLES for role in self.roles)

    def covers(self, estate_id: str | None) -> bool:
        """May this person see and act in ``estate_id``?"""
        return self.group_wide or estate_id in self.estates

    @property
    def rung(self) -> str | None:
        """The highest rung of the services' ladder this person stands on."""
        rungs = [USER_ROLE_RUNGS[role] for role in self.roles if role in USER_ROLE_RUNGS]
        return max(rungs, key=RUNG_ORDER.index, default=None)

    def to_context(self) -> dict:
        return {"id": self.id, "roles": list(self.roles), "estates": list(self.estates)}

    @classmethod
    def from_context(cls, context_data: dict) -> "Actor | None":
        data = context_data.get(ACTOR_CONTEXT_KEY)
        if not isinstance(data, dict) or not _is_id(data.get("id")):
            return None   # an id goes into records (``booked_by``): a plain id, nothing else
        roles, estates = data.get("roles") or [], data.get("estates") or []
        if not all(isinstance(names, list) and all(_is_id(name) for name in names)
                   for names in (roles, estates)):
            return None   # "supervisor" as a bare string must not become nine roles
        return cls(data["id"], tuple(roles), tuple(estates))


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


@dataclass(frozen=True)
class Caller:
    """Who is calling an RPC: the person (if any) and the service the call came from."""
    actor: Actor | None
    service: str | None
    # The call named a person that could not be read (a gateway bug or a forgery): every
    # use of the person is refused rather than falling back to the typed names.
    unreadable_actor: bool = False

    @property
    def actor_id(self) -> str | None:
        """The acting person's id, None for a call no person made (a service, a timer)."""
        actor = self._person()
        return actor.id if actor else None

    def stamp(self, data: Any, schema: Schema) -> Any:
        """``data`` with each who-acted field of ``schema`` naming the actor, if there is one,
        and each field marked ``ACTOR_FIELD: "rung"`` holding the actor's rung."""
        actor = self._person()
        if actor is None or not isinstance(data, dict):
            return data
        stamped = {name: actor.id for name in ACTOR_ID_FIELDS if name in schema.fields}
        stamped.update({name: actor.rung or NO_RUNG for name, field in schema.fields.items()
                        if field.metadata.get(ACTOR_FIELD) == "rung"})
        return {**data, **stamped}

    def load(self, schema: Schema, data: Any, **kwargs: Any) -> Any:
        """``shared.schemas.base.load`` of ``data`` stamped with the actor (``stamp``)."""
        return load(schema, self.stamp(data, schema), **kwargs)

    def require_service(self, allowed: Collection[str], what: str) -> None:
        """Only the services in ``allowed`` may do ``what``, and never on a person's behalf
        (a person reaching a service through the gateway carries an actor)."""
        if self.actor is not None or self.unreadable_actor:
            raise Forbidden(f"{what}: not for a person (the call carries an actor)")
        if self.service not in allowed:
            raise Forbidden(f"{what}: only for {', '.join(allowed) or 'no service'}, "
                            f"not for {self.service or 'a caller that gives no service'}")

    def _person(self) -> Actor | None:
        if self.unreadable_actor:
            raise InvalidInput({ACTOR_CONTEXT_KEY: ["the acting person could not be read"]})
        return self.actor


class CallerProvider(DependencyProvider):
    """Gives workers the ``Caller`` of the call they are running."""

    def get_dependency(self, worker_ctx: Any) -> Caller:
        # never raises: an error here would kill the container, not refuse the call
        parent = worker_ctx.immediate_parent_call_id   # "<service>.<method>.<uuid>"
        actor = Actor.from_context(worker_ctx.data)
        return Caller(actor, parent.split(".", 1)[0] if parent else None,
                      unreadable_actor=actor is None and ACTOR_CONTEXT_KEY in worker_ctx.data)
