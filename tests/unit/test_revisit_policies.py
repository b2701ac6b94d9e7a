"""Revisit policies: the quota rules, per-estate choice in config, and plug-ins found
through the entry-point group ``huifang.revisit_policies``."""
import base64
import hashlib
import subprocess
import sys
import textwrap
import zipfile
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nameko.testing.services import worker_factory

from services.revisit import policies
from services.revisit.policies import (
    InHomeRepairShare,
    PolicyBook,
    PolicyError,
    RevisitPolicy,
    volume_table_quota,
)
from services.revisit.repository import RevisitRepository
from services.revisit.service import RevisitService
from shared.clock import FrozenClock
from shared.envelope import new_event, parse_event
from tests.helpers import embedded

DEFAULT = RevisitPolicy()
THIRTY = InHomeRepairShare()


# -- the volume table: 「派工单在20-50张之间的,抽取派工单总量的30%…」 ------------------------

@pytest.mark.parametrize("orders, required", [
    (0, 0), (1, 1), (4, 4), (5, 5), (6, 5), (19, 5),       # under 20: 5, or all if fewer
    (20, 6), (21, 7), (33, 10), (50, 15),                  # 30 %, rounded up
    (51, 8), (60, 9), (99, 15), (100, 15),                 # 15 %, rounded up
    (101, 20), (500, 20),                                  # over 100: 20
])
def test_volume_table(orders, required):
    assert volume_table_quota(orders) == required
    assert DEFAULT.quota("repair", orders) == required


@given(st.integers(min_value=0, max_value=500))
def test_volume_table_over_every_volume_up_to_500(orders):
    required = volume_table_quota(orders)
    assert 0 <= required <= orders                          # never more than there are
    assert required == min(required, 20)
    if orders < 20:
        assert required == min(orders, 5)
    elif orders <= 50:
        # at least 30 %, and rounding up adds less than one order (exact: no float error)
        assert required * 100 >= 30 * orders > (required - 1) * 100
    elif orders <= 100:
        assert required * 100 >= 15 * orders > (required - 1) * 100
    else:
        assert required == 20


@given(st.sampled_from(["repair", "special_service", "assistance"]),
       st.integers(min_value=0, max_value=500))
def test_every_sampled_kind_follows_the_table(kind, orders):
    assert DEFAULT.quota(kind, orders) == volume_table_quota(orders)


@given(st.sampled_from(["community_activity", "other_service"]),
       st.integers(min_value=0, max_value=500))
def test_community_activities_and_other_services_are_all_revisited(kind, orders):
    assert DEFAULT.quota(kind, orders) == orders


# -- 「每月零修回访率应达到入户零维修量的30%以上」 ---------------------------------------------

@given(st.integers(min_value=0, max_value=500))
def test_thirty_percent_of_in_home_repairs(orders):
    required = THIRTY.quota("repair", orders)
    assert required * 10 >= 3 * orders > (required - 1) * 10
    assert THIRTY.quota("assistance", orders) == volume_table_quota(orders)


def test_thirty_percent_rounds_up_without_float_error():
    # 0.3 * 10 is 3.0000000000000004 in floating point: must still be 3
    assert THIRTY.quota("repair", 10) == 3
    assert THIRTY.quota("repair", 11) == 4
    assert InHomeRepairShare(repair_share=0.45).quota("repair", 20) == 9


def test_only_orders_with_a_household_count_toward_the_quota():
    assert DEFAULT.in_population({"household_id": "h-1"})
    assert not THIRTY.in_population({"household_id": None})     # a common-area repair


# -- choosing a policy per estate ----------------------------------------------------------

def test_every_estate_follows_the_configured_policy_unless_it_has_its_own():
    book = PolicyBook({
        "REVISIT_POLICY": {"policy": "default", "complaint_revisit_days": 4},
        "REVISIT_ESTATE_POLICIES": {
            "estate-9": {"policy": "in_home_repairs_30", "repair_share": 0.4},
            "estate-5": {"complaint_revisit_days": 5},
        },
    })
    assert type(book.for_estate("estate-1")) is RevisitPolicy
    assert book.for_estate("estate-1").complaint_revisit_days == 4
    nine = book.for_estate("estate-9")
    assert isinstance(nine, InHomeRepairShare)
    assert (nine.repair_share, nine.complaint_revisit_days) == (0.4, 4)   # inherits the rest
    assert nine.quota("repair", 10) == 4
    assert book.for_estate("estate-5").complaint_revisit_days == 5
    assert book.describe("estate-9")["policy"] == "in_home_repairs_30"


def test_settings_of_one_policy_do_not_leak_into_another():
    book = PolicyBook({"REVISIT_POLICY": {"policy": "in_home_repairs_30", "repair_share": 0.5},
                       "REVISIT_ESTATE_POLICIES": {"estate-2": {"policy": "default"}}})
    assert book.for_estate("estate-1").quota("repair", 10) == 5
    assert type(book.for_estate("estate-2")) is RevisitPolicy


@pytest.mark.parametrize("config, message", [
    ({"REVISIT_POLICY": {"policy": "no_such_policy"}}, "unknown revisit policy 'no_such_policy'"),
    ({"REVISIT_POLICY": {"complaint_revisit_dayz": 3}}, "no setting complaint_revisit_dayz"),
    ({"REVISIT_ESTATE_POLICIES": {"e-1": {"repair_share": 0.3}}}, "e-1: policy 'default'"),
    ({"REVISIT_POLICY": {"max_attempts": 0}}, "max_attempts"),
    ({"REVISIT_POLICY": {"complaint_revisit_days": -1}}, "complaint_revisit_days"),
    ({"REVISIT_POLICY": {"major_complaint_role": "janitor"}}, "major_complaint_role"),
    ({"REVISIT_POLICY": {"quiet_hours": ["late"]}}, "quiet_hours"),
    ({"REVISIT_POLICY": {"timezone": "Mars/Olympus"}}, "timezone"),
    ({"REVISIT_POLICY": {"policy": "in_home_repairs_30", "repair_share": 1.5}}, "repair_share"),
])
def test_a_wrong_configuration_is_refused_naming_what_is_wrong(config, message):
    with pytest.raises(PolicyError, match=message):
        PolicyBook(config)


# -- a policy installed as a separate package -----------------------------------------------

PLUGIN = textwrap.dedent('''
    """A group's own policy: every in-home repair is revisited, within two days."""
    from dataclasses import dataclass

    from services.revisit.policies import RevisitPolicy


    @dataclass(frozen=True)
    class EveryRepair(RevisitPolicy):
        repair_revisit_days: int = 2

        def quota(self, kind, orders):
            return orders if kind == "repair" else super().quota(kind, orders)
''')


def build_wheel(directory, name, version, files, entry_points):
    """A real wheel, as a group's build would produce it (no build backend needed)."""
    dist_info = f"{name}-{version}.dist-info"
    files = dict(files, **{
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: huifang-tests\n"
                              "Root-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/entry_points.txt": entry_points,
    })
    record = []
    for path, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    files[f"{dist_info}/RECORD"] = "\n".join(record + [f"{dist_info}/RECORD,,"]) + "\n"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


@pytest.fixture
def acme_policy_installed(tmp_path, monkeypatch):
    """pip-installs a separate distribution declaring ``every_repair``; removed afterwards."""
    wheel = build_wheel(tmp_path, "huifang_policy_acme", "1.0",
                        {"huifang_policy_acme/__init__.py": PLUGIN},
                        "[huifang.revisit_policies]\nevery_repair = huifang_policy_acme:EveryRepair\n")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--target", str(site), str(wheel)], check=True, capture_output=True)
    monkeypatch.syspath_prepend(str(site))     # what a site-packages directory is to Python
    yield
    sys.modules.pop("huifang_policy_acme", None)
    policies._classes.pop("every_repair", None)


def test_a_policy_installed_as_a_separate_package_is_picked_up(acme_policy_installed):
    config = {"REVISIT_ESTATE_POLICIES": {"estate-acme": {"policy": "every_repair"}}}
    book = PolicyBook(config)
    acme = book.for_estate("estate-acme")
    assert type(acme).__module__ == "huifang_policy_acme"
    assert acme.quota("repair", 100) == 100            # its own rule, not the table's 15
    assert acme.quota("assistance", 100) == 15         # the rest inherited
    done = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)    # 10:00 in Shanghai
    [visit] = acme.work_order_visits({"kind": "repair", "completed_at": done,
                                      "household_id": "h-1"})
    assert visit.due_at == datetime(2026, 11, 12, 16, 0, tzinfo=UTC)  # end of the day after next
    assert type(book.for_estate("estate-other")) is RevisitPolicy

    # and the service, given that configuration, follows it: every repair is revisited
    service = worker_factory(RevisitService, store=embedded(RevisitRepository),
                             clock=FrozenClock(done), policies=book)
    for number in range(30):
        service.follow_up_work_order(parse_event(new_event(
            "work_order_completed", "intake", "estate-acme", {
                "work_order_id": f"wo-{number}", "household_id": f"h-{number}",
                "kind": "repair", "completed_at": done}, done)))
    assert len(service.list_revisits({"estate_id": "estate-acme"})) == 30
    assert service.get_policy("estate-acme")["class"] == "huifang_policy_acme:EveryRepair"


def test_the_same_name_is_unknown_while_the_package_is_not_installed():
    with pytest.raises(PolicyError, match="unknown revisit policy 'every_repair'.*default"):
        PolicyBook({"REVISIT_ESTATE_POLICIES": {"estate-acme": {"policy": "every_repair"}}})

