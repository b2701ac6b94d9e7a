"""`scripts/run-services.sh` (what `make run` starts) stops on one signal: SIGTERM or
SIGINT (Ctrl-C) to its whole process group, or SIGTERM to the script alone, reaches
each service once, the script waits for them, and nothing is left running."""
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from tests.helpers import ROOT, free_port, is_serving, wait_until

pytestmark = pytest.mark.broker

SERVICES = ("intake", "revisit", "survey", "notify", "gateway")


def process_table():
    """{pid: (ppid, process group, state)} of every process, from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue                               # gone meanwhile
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[0])
    return table


def family(root):
    """The pids of ``root``'s process group and of all its descendants (the services
    live in sessions of their own), still alive (zombies count as gone)."""
    table = process_table()
    alive = {pid for pid, (_, _, state) in table.items() if state != "Z"}
    members = {pid for pid, (_, group, _) in table.items() if group == root}
    members.add(root)
    growing = True
    while growing:
        children = {pid for pid, (parent, _, _) in table.items() if parent in members}
        growing = not children <= members
        members |= children
    return members & alive


@pytest.fixture
def started(rabbit_config, tmp_path):
    """run-services.sh in a process group of its own, once all five services serve."""
    port = free_port()
    environment = {
        **os.environ,
        "AMQP_URI": rabbit_config["AMQP_URI"],
        "MONGO_DB_PREFIX": f"test_{uuid.uuid4().hex[:8]}",
        "GATEWAY_ADDRESS": f"127.0.0.1:{port}",
        "HUIFANG_ENV": "development",
        "HUIFANG_ADMIN_PASSWORD": "admin-password-for-tests",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "run-services.log"
    with open(log, "wb") as output:
        script = subprocess.Popen(
            ["bash", str(ROOT / "scripts" / "run-services.sh")], cwd=ROOT, env=environment,
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True)

    def output():
        return log.read_text(encoding="utf-8", errors="replace")

    def healthy():
        try:
            return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    started_processes = set()
    try:
        for service in SERVICES:
            wait_until(lambda name=service: is_serving(rabbit_config, name)
                       or script.poll() is not None,
                       timeout=120, interval=0.5, message=f"{service} serving")
            assert script.poll() is None, f"run-services.sh ended:\n{output()}"
        wait_until(healthy, timeout=30, interval=0.5, message="gateway /healthz")
        started_processes = family(script.pid)
        # the script and the five nameko processes (setsid execs: one process each)
        assert len(started_processes) >= 1 + len(SERVICES), started_processes
        yield script, started_processes, output
    finally:
        leftovers = family_alive(started_processes)
        if script.poll() is None:
            leftovers |= family(script.pid)
        for pid in leftovers:                      # only what this test started
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            script.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def family_alive(pids):
    table = process_table()
    return {pid for pid in pids if pid in table and table[pid][2] != "Z"}


@pytest.mark.parametrize("signum, to_group", [
    (signal.SIGTERM, True),     # kill -- -PGID, a supervisor stopping the job
    (signal.SIGINT, True),      # Ctrl-C in the terminal: the foreground group
    (signal.SIGTERM, False),    # kill PID of the script alone
], ids=["sigterm-group", "ctrl-c-group", "sigterm-script"])
def test_one_signal_stops_every_service(started, signum, to_group):
    script, processes, output = started
    if to_group:
        os.killpg(script.pid, signum)
    else:
        os.kill(script.pid, signum)

    deadline = time.monotonic() + 10
    while family_alive(processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = family_alive(processes)
    assert not left, f"still running 10 s after the signal: {sorted(left)}\n{output()}"
    assert script.wait(timeout=1) == 0, output()

    text = output()
    assert text.count("stopping the services...") == 1, text
    assert "Traceback" not in text, text
    assert "AssertionError" not in text, text
