"""Who acted (shared/actor.py): the person from the context data, the calling service from
the call-id stack, and the inputs they stamp; and ``ping``, shared by every service."""
from types import SimpleNamespace

import pytest
from nameko.cli.run import import_service
from nameko.containers import ServiceContainer
from nameko.rpc import Rpc

from services.intake.service import IntakeService
from services.notify.service import NotifyService
from services.revisit.service import RevisitService
from services.survey.service import SurveyService
from shared.actor import ACTOR_CONTEXT_KEY, Actor, Caller, CallerProvider
from shared.config import load_config
from shared.errors import Forbidden, InvalidInput
from shared.schemas import intake as schemas


def worker(data, parent="notify.acknowledge_complaint.5f0c"):
    """Just what ``CallerProvider`` reads of a nameko worker context."""
    return SimpleNamespace(data=data, immediate_parent_call_id=parent)


@pytest.mark.parametrize("roles, rung", [
    ((), None), (("department", "hq_analyst"), None), (("cs_staff",), "staff"),
    (("cs_staff", "estate_manager", "supervisor"), "manager"),
    (("company_manager",), "company_manager"),
])
def test_the_rung_is_the_highest_the_roles_reach(roles, rung):
    assert Actor("u-1", roles).rung == rung


def test_the_provider_reads_the_person_and_the_calling_service():
    context = {ACTOR_CONTEXT_KEY: Actor("u-1", ("supervisor",), ("e-1",)).to_context()}
    caller = CallerProvider().get_dependency(worker(context))
    assert caller == Caller(Actor("u-1", ("supervisor",), ("e-1",)), "notify")
    assert CallerProvider().get_dependency(worker({}, parent=None)) == Caller(None, None)


@pytest.mark.parametrize("value", [
    "u-1", {"roles": ["admin"]}, {"id": 7}, {"id": "u-1", "roles": "supervisor"},
    {"id": "u-1", "estates": [1]},
])
def test_a_person_that_cannot_be_read_is_flagged_never_dropped(value):
    caller = CallerProvider().get_dependency(worker({ACTOR_CONTEXT_KEY: value}))
    assert (caller.actor, caller.unreadable_actor) == (None, True)
    with pytest.raises(InvalidInput):
        assert caller.actor_id
    with pytest.raises(InvalidInput):
        caller.load(schemas.AcknowledgeComplaint(), {"staff_id": "s-1"})
    with pytest.raises(Forbidden):
        caller.require_service(("notify",), "full contacts")


def test_stamping_fills_only_the_fields_the_schema_has():
    caller = Caller(Actor("u-1", ("cs_staff",)), "gateway")
    assert caller.load(schemas.AcknowledgeComplaint(), {"staff_id": "s-9"}) == {
        "staff_id": "u-1", "note": ""}
    assert caller.load(schemas.CloseComplaint(), {"owner_signoff": "none"})["closed_by"] == "u-1"
    # escalate's role is the rung to go to, not a grant: it stays as typed
    assert caller.load(schemas.EscalateComplaint(), {"reason": "x", "role": "company_manager"}) \
        == {"staff_id": "u-1", "reason": "x", "role": "company_manager"}
    assert caller.actor_id == "u-1"


def test_without_a_person_the_input_is_loaded_as_typed():
    caller = Caller(None, "notify")
    data = {"flagged_by": "sup-1", "role": "supervisor", "reason": "x"}
    assert caller.stamp(data, schemas.FlagMalicious()) is data
    assert caller.load(schemas.FlagMalicious(), data)["role"] == "supervisor"
    assert caller.actor_id is None


def test_a_service_only_call_names_what_is_refused_and_to_whom():
    with pytest.raises(Forbidden, match="only for notify, not for revisit"):
        Caller(None, "revisit").require_service(("notify",), "full contacts")
    with pytest.raises(Forbidden, match="not for a person"):
        Caller(Actor("u-1"), "notify").require_service(("notify",), "full contacts")
    Caller(None, "notify").require_service(("notify",), "full contacts")


@pytest.mark.parametrize("service", [IntakeService, RevisitService, SurveyService,
                                     NotifyService])
def test_nameko_gives_every_service_its_own_shared_ping(service):
    # `nameko run` finds the one service of the module (a shared class would be a second)
    assert import_service(service.__module__) == [service]
    container = ServiceContainer(service, load_config())
    [ping] = [entrypoint for entrypoint in container.entrypoints
              if isinstance(entrypoint, Rpc) and entrypoint.method_name == "ping"]
    assert ping.container.service_name == service.name   # bound to this container
    assert service.ping(SimpleNamespace(name=service.name)) == {"service": service.name}
