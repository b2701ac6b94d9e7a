"""The gateway's HTTP entrypoint: refusals logged as expected, signatures checked once."""
from types import SimpleNamespace

import pytest
from nameko.exceptions import IncorrectSignature, RemoteError

from services.gateway.http import REFUSALS, HttpEntrypoint, http
from services.gateway.problems import Problem
from shared.errors import InvalidInput


class Service:
    @http("GET", "/things/<string:thing_id>")
    def thing(self, request, thing_id):
        return thing_id


def _entrypoint() -> HttpEntrypoint:
    entrypoint = HttpEntrypoint("GET", "/things/<string:thing_id>")
    entrypoint.container = SimpleNamespace(service_cls=Service)
    entrypoint.method_name = "thing"
    return entrypoint


def test_a_route_with_the_methods_parameters_passes_every_time():
    entrypoint = _entrypoint()
    for _ in range(3):
        entrypoint.check_signature(("request",), {"thing_id": "t-1"})


def test_a_route_with_other_parameters_is_refused_every_time():
    entrypoint = _entrypoint()
    entrypoint.check_signature(("request",), {"thing_id": "t-1"})
    for _ in range(2):       # what passed once does not let another set of names through
        with pytest.raises(IncorrectSignature):
            entrypoint.check_signature(("request",), {"other": "t-1"})


def test_refusals_are_expected_errors_and_a_crash_is_not():
    entrypoint = next(iter(Service.thing.nameko_entrypoints))
    assert entrypoint.expected_exceptions == REFUSALS
    for refusal in (Problem(404, "no"), InvalidInput({"x": ["bad"]}),
                    RemoteError("NotFound", "gone")):
        assert isinstance(refusal, REFUSALS)
    assert not isinstance(ValueError("boom"), REFUSALS)
