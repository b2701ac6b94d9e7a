"""责任部门: the group's departments are the ones its complaint routing names. Pure Python.

「物业员判断业主反映问题的责任部门」: intake routes each complaint category to a department
(services/intake/policy.py) by ``DEFAULT_ROUTING``, with the group's ``routing``
(COMPLAINT_POLICY) and an estate's (ESTATE_POLICIES, or its record's ``policy``) over it.
Those names are the only departments there are: a department's staff account must name one
(the gateway asks ``intake.list_departments``), and so must any other work handed to a
department — revisit's follow-ups (its config, checked here when it starts) and survey's
rectifications (checked by the gateway at input) — or no account could ever be given it.
"""
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

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
