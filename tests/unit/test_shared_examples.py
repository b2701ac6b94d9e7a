"""The usage examples in the docstrings of ``shared/`` run and say what they show (doctest),
and every extension a service builds on has one."""
import doctest
import importlib
import pkgutil

import pytest

import shared

MODULES = sorted(info.name for info in pkgutil.walk_packages(shared.__path__, "shared."))
# What a service is made of: each says how it is used, by an example that runs.
WITH_EXAMPLES = (
    "shared.dependencies", "shared.embedded", "shared.envelope", "shared.expected_state",
    "shared.idempotency", "shared.links", "shared.masking", "shared.messaging",
    "shared.paging", "shared.rates", "shared.rpc", "shared.timers",
)


@pytest.mark.parametrize("name", MODULES)
def test_the_examples_run_as_written(name):
    module = importlib.import_module(name)
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True)
    assert failed == 0, f"{name}: {failed} of {attempted} examples failed (printed above)"
    if name in WITH_EXAMPLES:
        assert attempted, f"{name} shows no example of its use"


def test_every_module_named_to_have_examples_exists():
    assert set(WITH_EXAMPLES) <= set(MODULES)
