"""``GET /stats/revisits?estate_ids=``: several estates' revisit rows in one call, for whoever
may read an estate's statistics (``stats.estate``), each estate one of theirs — carried out
by the gateway's real dispatcher against a stand-in revisit service."""
import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from services.gateway import api
from services.gateway.problems import Problem
from shared.actor import Actor

OWN, OWN_TOO, OTHER = "e-own", "e-own-2", "e-other"
FIGURES = next(operation for operation in api.OPERATIONS if operation.name == "stats.revisits")


class Revisit(api.Services):
    """Answers ``revisit_stats`` with a row for each estate asked, and one for ``OTHER``
    besides (a service that answered too much)."""

    def __init__(self):
        super().__init__({})
        self.calls = []

    def call(self, target, *args, **kwargs):
        self.calls.append((target, args, kwargs))
        asked = kwargs.get("estate_ids") or []
        return {"period": args[1], "estates": {estate: {"revisit_rate": 1.0}
                                               for estate in [*asked, OTHER]}}


def ask(actor, estates, **query):
    services = Revisit()
    request = EnvironBuilder(path=api.PREFIX + FIGURES.path, query_string={
        "period": "2026-11", "estate_ids": estates, **query})
    response = api.execute(FIGURES, Request(request.get_environ()), {}, actor, services,
                           2_000_000)
    return response.json, services.calls


def test_a_supervisor_reads_the_rows_of_their_estates_in_one_call():
    supervisor = Actor("u", ("supervisor",), (OWN, OWN_TOO))
    answer, calls = ask(supervisor, [OWN, OWN_TOO])
    assert calls == [("revisit.revisit_stats", (None, "2026-11"),
                      {"estate_ids": [OWN, OWN_TOO]})]
    assert set(answer["estates"]) == {OWN, OWN_TOO}     # never another estate's row


@pytest.mark.parametrize("actor, status", [
    (Actor("u", ("supervisor",), (OWN,)), 404),          # one asked is not theirs
    (Actor("u", ("cs_staff",), (OWN, OTHER)), 403),      # may not read statistics
])
def test_an_estate_not_theirs_or_a_role_without_statistics_is_refused(actor, status):
    with pytest.raises(Problem) as refused:
        ask(actor, [OWN, OTHER])
    assert refused.value.status == status


def test_headquarters_reads_any_estates_rows():
    answer, calls = ask(Actor("u", ("hq_analyst",), ()), [OTHER])
    assert calls[0][2] == {"estate_ids": [OTHER]} and set(answer["estates"]) == {OTHER}


def test_the_estate_id_beside_them_is_passed_on_for_the_service_to_refuse():
    _, calls = ask(Actor("u", ("supervisor",), (OWN,)), [OWN], estate_id=OWN)
    assert calls == [("revisit.revisit_stats", (OWN, "2026-11"), {"estate_ids": [OWN]})]
