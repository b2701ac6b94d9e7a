"""`make demo` against the five services as `make run` starts them: it must tell the
whole loop, over HTTP only, and end well."""
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.broker


def test_the_demo_drives_a_complaint_round_the_loop_over_http(gateway):
    port = gateway.base_url.rsplit(":", 1)[-1]
    result = subprocess.run(
        [sys.executable, "-m", "scripts.demo"], check=False, cwd=ROOT, timeout=180,
        capture_output=True, text=True,
        env={**os.environ, "GATEWAY_ADDRESS": f"127.0.0.1:{port}",
             "HUIFANG_ADMIN_PASSWORD": gateway.ADMIN_PASSWORD})
    assert result.returncode == 0, result.stdout + result.stderr
    told = result.stdout
    assert "REOPENED again" in told
    # the history names the logged-in clerk, not a name typed into a body
    history = told.split("History of the complaint")[1].split("delivery log")[0]
    assert history.count("by desk.demo-") == 5
    assert "complaint_received   to demo-" in told and "sent by console" in told
