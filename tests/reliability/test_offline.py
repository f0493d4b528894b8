"""Offline: nothing in fakellm opens a socket, at import or at work, and the suite
passes with no network at all.

The audit-hook test always runs. The network-namespace run repeats the unit and
integration suites inside ``unshare -rn`` (no interface but a down loopback, so
nothing can leave the machine); it costs a second suite run, so it is opt-in:
``FAKELLM_NETNS_RUN=1 python -m pytest tests/reliability/test_offline.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.reliability.conftest import ROOT, subprocess_env

NETWORK_EVENTS = {
    "socket.connect",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyaddr",
    "socket.getnameinfo",
    "socket.sendto",
    "socket.sendmsg",
}


def test_no_socket_is_opened_by_fakellm_and_none_reaches_the_network():
    proc = subprocess.run(
        [sys.executable, "-m", "tests.reliability.offline_audit"],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    events = [tuple(e) for e in json.loads(proc.stdout)]
    # Not one socket asked for by fakellm's own code.
    assert [e for e in events if e[3] == "fakellm"] == []
    # Nothing that resolves a name or sends a packet, by anyone.
    assert [e for e in events if e[1] in NETWORK_EVENTS] == []
    # What remains: asyncio's self-pipe (a local socket pair) while a loop runs, and
    # urllib3's import-time IPv6 check (a socket bound to ::1, pulled in by
    # langchain-core's `requests` import). Neither can leave the machine.
    assert {e for e in events if e[0] == "workload"} == {
        ("workload", "socket.__new__", "AF_UNIX", "asyncio")
    }
    assert {e for e in events if e[0] == "import"} <= {
        ("import", "socket.__new__", "AF_INET6", "urllib3"),
        ("import", "socket.bind", "(('::1', 0),)", "urllib3"),
    }


def _no_network_namespace() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-rn", sys.executable, "-c", "import socket; print(socket.if_nameindex())"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    # A fresh network namespace holds only the loopback interface (and it is down).
    return probe.returncode == 0 and probe.stdout.strip() == "[(1, 'lo')]"


@pytest.mark.skipif(
    os.environ.get("FAKELLM_NETNS_RUN") != "1",
    reason="runs the suite again (about 10 s): set FAKELLM_NETNS_RUN=1 (or run CI's whole "
    "suite under `unshare -rn`)",
)
def test_the_suite_passes_with_the_network_unreachable():
    if not _no_network_namespace():
        pytest.skip("needs `unshare -rn` (unprivileged user and network namespaces)")
    proc = subprocess.run(
        [
            *("unshare", "-rn", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"),
            *("tests/unit", "tests/integration"),
        ],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = proc.stdout.strip().splitlines()[-1]
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert " passed" in summary
    assert "failed" not in summary
    assert "error" not in summary
