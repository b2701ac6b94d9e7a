"""``huifang-intake check``: what it prints and the exit code a script can test."""
from argparse import Namespace
from unittest import mock

import pytest
from nameko.exceptions import RemoteError

from services.intake import cli

DIFFERENCE = {"estate_id": "e-1", "month": "2026-11", "counter": "received", "kept": 3,
              "recomputed": 1}


class Intake:
    def __init__(self, answer):
        self.answer, self.asked = answer, []

    def check_statistics(self, data):
        self.asked.append(data)
        return self.answer


@pytest.mark.parametrize("answer, repair, code, verdict", [
    ({"consistent": True, "differences": [], "unfiled": 0, "repaired": False}, False, 0,
     "consistent"),
    ({"consistent": False, "differences": [DIFFERENCE], "unfiled": 2, "repaired": False}, False,
     1, "1 difference(s); 2 complaint(s) stored before the counters"),
    ({"consistent": False, "differences": [DIFFERENCE], "unfiled": 0, "repaired": True}, True, 0,
     "repaired"),
])
def test_check_prints_the_differences_and_a_verdict(capsys, answer, repair, code, verdict):
    intake = Intake(answer)
    assert cli._check(intake, Namespace(repair=repair)) == code
    assert intake.asked == [{"repair": repair}]
    out, err = capsys.readouterr()
    assert out.count('"counter": "received"') == len(answer["differences"])
    assert err.strip() == f"complaint statistics: {verdict}"


def test_a_refusal_is_reported_not_raised(capsys):
    proxy = mock.MagicMock()
    proxy.return_value.__enter__.return_value.check_statistics.side_effect = RemoteError(
        "InvalidInput", "repair: not a boolean")
    with mock.patch("shared.cli.ServiceRpcProxy", proxy):
        assert cli.main(["check"]) == 2
    assert "intake refused: InvalidInput" in capsys.readouterr().err
