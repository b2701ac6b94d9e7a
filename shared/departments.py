"""责任部门: the group's departments are the ones its complaint routing names. Pure Python.

「物业员判断业主反映问题的责任部门」: intake routes each complaint category to a department
(services/intake/policy.py) by ``DEFAULT_ROUTING``, with the group's ``routing``
(COMPLAINT_POLICY) and an estate's (ESTATE_POLICIES, or its record's ``policy``) over it.
Those names are the only departments there are: a department's staff account must name one
(the gateway asks ``intake.list_departments``), and so must any other work handed to a
department, or no account could ever be given it. Each service that writes such work
refuses another name itself (``check_department``), whoever calls it: intake's
assignments (``services/intake/domain.py``, by the estate's policy), survey's
rectifications (asking ``intake.list_departments`` in the RPC: a person adding one, never
an event handler) and revisit's follow-ups (its config, ``FOLLOWUP_DEPARTMENTS`` with
``followup_departments`` over them, checked against the config's routing when it starts;
intake refuses an estate record whose routing leaves one of them out:
``followup_departments`` here).
"""
from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Any

from shared.errors import InvalidInput

# category -> department, unless the group or an estate routes it elsewhere
DEFAULT_ROUTING = MappingProxyType({
    "power_supply": "工程部",
    "water_supply": "工程部",
    "fire_security": "秩序部",
    "order": "秩序部",
    "cleaning": "环境部",
    "greening": "环境部",
    "public_facilities": "工程部",
    "repair_service": "工程部",
    "service_attitude": "客服中心",
    "parking": "秩序部",
    "noise": "秩序部",
    "neighbours": "客服中心",
    "fees": "财务部",
    "other": "客服中心",
})


# 「将回访结果整理成报告,向相关部门反馈问题和建议」: the department an unsatisfied revisit of
# each kind is followed up by (revisit's ``RevisitPolicy.followup_departments`` over them).
FOLLOWUP_DEPARTMENTS = MappingProxyType({
    "repair": "工程部", "special_service": "工程部", "assistance": "客服中心",
    "community_activity": "客服中心", "other_service": "客服中心", "routine": "客服中心",
})


def check_department(name: str, known: Collection[str], field: str = "department") -> None:
    """Work handed to ``name``: ``InvalidInput`` on ``field`` unless the routing names it
    (``known``: the estate's departments), so that a department account can be given it."""
    if name not in known:
        raise InvalidInput({field: [
            f"not a department of this estate's complaint routing: one of {', '.join(sorted(known))}"]})


def merged_routing(*layers: Mapping[str, str] | None) -> dict[str, str]:
    """Category -> department: ``DEFAULT_ROUTING`` with each layer over the one before
    (the group's ``routing``, then an estate's)."""
    routing = dict(DEFAULT_ROUTING)
    for layer in layers:
        routing.update(layer or {})
    return routing


def configured_departments(config: Mapping[str, Any], estate_id: str | None = None,
                           ) -> list[str]:
    """The departments config.yaml's complaint routing names for ``estate_id`` (None: the
    group's policy), by name: what another service checks its own config against when it
    starts. (An estate's record may route further; only intake knows it, at run time.)"""
    group = (config.get("COMPLAINT_POLICY") or {}).get("routing")
    estate = ((config.get("ESTATE_POLICIES") or {}).get(estate_id) or {}).get("routing") \
        if estate_id is not None else None
    return sorted(set(merged_routing(group, estate).values()))


def followup_departments(config: Mapping[str, Any], estate_id: str | None = None,
                         ) -> dict[str, str]:
    """Revisit kind -> the department config.yaml sends its follow-ups to in ``estate_id``
    (None: the group's): ``FOLLOWUP_DEPARTMENTS`` with ``followup_departments`` of
    REVISIT_ESTATE_POLICIES.<estate_id>, else of REVISIT_POLICY, over them (an estate's
    replaces the group's whole, as revisit's ``build_policy`` does). What intake keeps an
    estate record's routing naming: revisit opens follow-ups in event handlers, which
    never wait on intake, so the names must stay routed where the record is written."""
    estates = config.get("REVISIT_ESTATE_POLICIES") or {}
    given = ((estates.get(estate_id) or {}).get("followup_departments")
             if estate_id is not None else None)
    if given is None:
        given = (config.get("REVISIT_POLICY") or {}).get("followup_departments")
    pairs = given.items() if isinstance(given, Mapping) else ()   # (config gives a mapping)
    return {**FOLLOWUP_DEPARTMENTS, **{kind: name for kind, name in pairs
                                       if isinstance(kind, str) and isinstance(name, str)}}
