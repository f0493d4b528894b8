"""The network guard, tested without a packet ever leaving the machine.

Every socket entry point the guard wraps is first replaced by a recording
stand-in, so the guard sits on top of the stand-in: an attempt the guard lets
through lands in the stand-in's log, never on a wire, even if the guard were
broken. The addresses are reserved for documentation (RFC 5737, RFC 3849,
RFC 2606).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fakellm._network import NetworkGuard, _is_local
from fakellm.errors import NetworkBlocked

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """What would have reached the real socket functions.

    The stand-in lookup resolves every name to loopback: a second floor, so
    that even a connect that slipped past both the guard and the stand-in
    connect could only reach this machine.
    """
    log: list[tuple[Any, ...]] = []

    def connect(sock: socket.socket, address: Any) -> None:
        log.append(("connect", address))

    def connect_ex(sock: socket.socket, address: Any) -> int:
        log.append(("connect_ex", address))
        return 0

    def sendto(sock: socket.socket, *args: Any) -> int:
        log.append(("sendto", args[-1]))
        return len(args[0])

    def sendmsg(sock: socket.socket, *args: Any) -> int:
        log.append(("sendmsg", args[3] if len(args) > 3 else None))
        return sum(map(len, args[0]))

    def getnameinfo(sockaddr: Any, flags: int) -> tuple[str, str]:
        log.append(("getnameinfo", sockaddr))
        return ("localhost", str(sockaddr[1]))

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        log.append(("getaddrinfo", host, port))
        family = socket.AF_INET6 if ":" in str(host) else socket.AF_INET
        address = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket.socket, "sendmsg", sendmsg)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "getnameinfo", getnameinfo)
    for name in ("gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
        monkeypatch.setattr(socket, name, lambda host, name=name: log.append((name, host)))
    return log


# pytest-socket, where installed, puts the real connect back at every test's
# setup, which would take the stand-in out from under the guard; keep it out.
QUIET = ("-p", "no:cacheprovider", "-p", "no:socket", "-p", "no:unraisableexception")

SUITE = """
import socket

import pytest
from fakellm import errors


def fetch(address):
    # An app that hides network trouble from its caller.
    try:
        socket.create_connection(address).close()
        return "connected"
    except OSError:
        return "offline"


def test_app_swallows_the_error(fake_llm):
    assert fetch(("api.example.com", 443)) == "offline"


def test_every_way_out_is_blocked(llm_recorder):
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with pytest.raises(errors.NetworkBlocked, match=r"connect to 198\\.51\\.100\\.7:80\\)"):
        tcp.connect(("198.51.100.7", 80))
    with pytest.raises(errors.NetworkBlocked):
        tcp.connect_ex(("203.0.113.9", 8443))
    tcp.close()
    six = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    with pytest.raises(errors.NetworkBlocked, match=r"\\[2001:db8::1\\]:443"):
        six.connect(("2001:db8::1", 443, 0, 0))
    six.close()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with pytest.raises(errors.NetworkBlocked, match="send to 192.0.2.53:53"):
        udp.sendto(b"query", ("192.0.2.53", 53))
    with pytest.raises(errors.NetworkBlocked, match="send to 192.0.2.54:53"):
        udp.sendmsg([b"query"], [], 0, ("192.0.2.54", 53))
    udp.close()
    with pytest.raises(errors.NetworkBlocked, match="reverse lookup of 192.0.2.9:443"):
        socket.getnameinfo(("192.0.2.9", 443), 0)
    with pytest.raises(errors.NetworkBlocked, match="lookup of example.org:80"):
        socket.getaddrinfo("example.org", 80)
    with pytest.raises(errors.NetworkBlocked, match="lookup of example.net\\)"):
        socket.gethostbyname("example.net")
    with pytest.raises(errors.NetworkBlocked):
        socket.gethostbyname_ex("www.example.net")
    with pytest.raises(errors.NetworkBlocked):
        socket.gethostbyaddr("192.0.2.8")


def test_loopback_stays_allowed(fake_llm):
    assert fetch(("127.0.0.1", 8080)) == "connected"
    assert fetch(("localhost", 8081)) == "connected"
    assert fetch(("::1", 8082)) == "connected"
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.sendmsg([b"ping"], [], 0, ("127.0.0.1", 9999))
    udp.close()
    assert socket.getnameinfo(("127.0.0.1", 80), 0) == ("localhost", "80")


@pytest.mark.fakellm(block_network=False)
def test_opted_out(fake_llm):
    assert fetch(("192.0.2.1", 443)) == "connected"


def test_without_fakellm_fixtures():
    assert fetch(("192.0.2.2", 443)) == "connected"
"""


def test_the_guard_blocks_reports_and_lets_loopback_through(
    pytester: pytest.Pytester, wire: list[tuple[Any, ...]]
) -> None:
    pytester.makepyfile(test_app=SUITE)
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=5, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_app_swallows_the_error*",
            "fakellm teardown checks failed:",
            "",
            "NetworkBlocked (the app may have swallowed it): the test tried to reach the network:",
            "  - lookup of api.example.com:443",
            "    at test_app.py:* in fetch",
            "fakellm keeps tests offline; loopback is allowed. If this is on purpose, mark the "
            "test @pytest.mark.fakellm(block_network=False).",
            "*ERROR at teardown of test_every_way_out_is_blocked*",
            "*the test tried to reach the network:",
            "  - connect to 198.51.100.7:80",
            "  - connect to 203.0.113.9:8443",
            "  - connect to [2001:db8::1]:443",
            "  - send to 192.0.2.53:53",
            "  - send to 192.0.2.54:53",
            "  - reverse lookup of 192.0.2.9:443",
            "    at test_app.py:* in test_every_way_out_is_blocked",
            "  - lookup of example.org:80",
            "  - lookup of example.net",
            "  - lookup of www.example.net",
            "  - lookup of 192.0.2.8",
        ]
    )
    assert wire == [
        ("getaddrinfo", "127.0.0.1", 8080),
        ("connect", ("127.0.0.1", 8080)),
        ("getaddrinfo", "localhost", 8081),
        ("connect", ("127.0.0.1", 8081)),
        ("getaddrinfo", "::1", 8082),
        ("connect", ("::1", 8082)),
        ("sendmsg", ("127.0.0.1", 9999)),
        ("getnameinfo", ("127.0.0.1", 80)),
        ("getaddrinfo", "192.0.2.1", 443),
        ("connect", ("127.0.0.1", 443)),
        ("getaddrinfo", "192.0.2.2", 443),
        ("connect", ("127.0.0.1", 443)),
    ]


def test_the_guard_comes_off_after_each_test(
    pytester: pytest.Pytester, wire: list[tuple[Any, ...]]
) -> None:
    stand_in = socket.socket.connect
    pytester.makepyfile(test_app=SUITE)
    pytester.runpytest(*QUIET)
    assert socket.socket.connect is stand_in


def test_block_network_all_guards_every_test(
    pytester: pytest.Pytester, wire: list[tuple[Any, ...]]
) -> None:
    pytester.makepyfile(test_app=SUITE)
    result = pytester.runpytest(*QUIET, "--fakellm-block-network=all", "-k", "without")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert 'offline' == 'connected'*"])
    assert wire == []


def test_block_network_off_lets_everything_through_to_the_stand_in(
    pytester: pytest.Pytester, wire: list[tuple[Any, ...]]
) -> None:
    pytester.makeini("[pytest]\nfakellm_block_network = off\n")
    pytester.makepyfile(test_app=SUITE)
    result = pytester.runpytest(*QUIET, "-k", "swallows")
    result.assert_outcomes(failed=1)
    assert wire == [
        ("getaddrinfo", "api.example.com", 443),
        ("connect", ("127.0.0.1", 443)),
    ]


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("0.0.0.0", True),
        ("", True),
        (None, True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("app.localhost", True),
        (b"127.0.0.1", True),
        ("192.0.2.1", False),
        ("2001:db8::1", False),
        ("::ffff:192.0.2.1", False),
        ("example.com", False),
        ("localhost.example.com", False),
        (42, False),
    ],
)
def test_what_counts_as_this_machine(host: object, local: bool) -> None:
    assert _is_local(host) is local


def test_a_test_acknowledges_the_block_it_provoked(
    pytester: pytest.Pytester, wire: list[tuple[Any, ...]]
) -> None:
    pytester.makepyfile(
        """
        import socket

        import pytest
        from fakellm import errors

        def test_expected_block(network_guard):
            with pytest.raises(errors.NetworkBlocked):
                socket.getaddrinfo("api.example.com", 443)
            assert network_guard.acknowledge() == ["lookup of api.example.com:443"]
            assert network_guard.blocked == []

        def test_later_blocks_still_count(network_guard):
            network_guard.acknowledge()
            with pytest.raises(errors.NetworkBlocked):
                socket.getaddrinfo("api.example.org", 443)

        @pytest.mark.fakellm(block_network=False)
        def test_guard_off(network_guard):
            pass
        """
    )
    result = pytester.runpytest(*QUIET)
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_later_blocks_still_count*",
            "  - lookup of api.example.org:443",
            "*ERROR at setup of test_guard_off*",
            "network_guard was requested but the guard is off for this test "
            "(block_network=False or fakellm_block_network = off)",
        ]
    )
    assert wire == []


# -- call sites ------------------------------------------------------------------------------------


def _app_fetch(host: str) -> None:
    socket.create_connection((host, 443)).close()  # the call site the report names


def _line_of(marker: str) -> int:
    lines = Path(__file__).read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if marker in line and "_line_of" not in line)


def test_each_blocked_attempt_names_its_call_site(
    wire: list[tuple[Any, ...]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(Path(__file__).parents[2])
    with NetworkGuard() as guard, pytest.raises(NetworkBlocked):
        _app_fetch("api.example.com")
    site = (
        f"tests/plugin/test_network.py:{_line_of('the call site the report names')} in _app_fetch"
    )
    assert guard.blocked == ["lookup of api.example.com:443"]
    assert guard.sites == [site]
    assert guard.report() == ["  - lookup of api.example.com:443", f"    at {site}"]
    assert guard.acknowledge() == ["lookup of api.example.com:443"]
    assert (guard.blocked, guard.sites, guard.report()) == ([], [], [])
    assert wire == []


# -- the _socket level: an audit hook --------------------------------------------------------------

# Synthetic audit events, raised with sys.audit: the hook sees exactly what CPython's
# socket module reports before a connect, send or lookup, and no socket is touched.
INET = SimpleNamespace(family=socket.AF_INET)
INET6 = SimpleNamespace(family=socket.AF_INET6)
UNIX = SimpleNamespace(family=getattr(socket, "AF_UNIX", -1))
EVENTS = [
    ("socket.connect", (INET, ("192.0.2.1", 443)), "connect to 192.0.2.1:443"),
    ("socket.connect", (INET6, ("2001:db8::2", 80, 0, 0)), "connect to [2001:db8::2]:80"),
    ("socket.sendto", (INET, ("192.0.2.53", 53)), "send to 192.0.2.53:53"),
    ("socket.sendmsg", (INET, ("192.0.2.54", 53)), "send to 192.0.2.54:53"),
    ("socket.getaddrinfo", ("example.org", 443, 0, 0, 0), "lookup of example.org:443"),
    ("socket.gethostbyname", ("example.net",), "lookup of example.net"),
    ("socket.gethostbyaddr", ("192.0.2.8",), "lookup of 192.0.2.8"),
    ("socket.getnameinfo", (("192.0.2.9", 22),), "reverse lookup of 192.0.2.9:22"),
]


def test_the_socket_level_is_guarded_by_an_audit_hook() -> None:
    with NetworkGuard() as guard:
        for event, args, _ in EVENTS:
            with pytest.raises(NetworkBlocked):
                sys.audit(event, *args)
        # Loopback, Unix sockets and other events pass.
        sys.audit("socket.connect", INET, ("127.0.0.1", 8080))
        sys.audit("socket.connect", UNIX, "/tmp/app.sock")
        sys.audit("socket.getaddrinfo", "localhost", 80, 0, 0, 0)
        sys.audit("socket.getnameinfo", ("::1", 80))
        sys.audit("socket.bind", INET, ("0.0.0.0", 8080))
    assert guard.blocked == [what for _, _, what in EVENTS]
    here = "test_the_socket_level_is_guarded_by_an_audit_hook"
    assert all(site.endswith(f" in {here}") for site in guard.sites)
    # Once the guard is off, the hook (which stays) lets everything through.
    for event, args, _ in EVENTS:
        sys.audit(event, *args)
    assert len(guard.blocked) == len(EVENTS)


def test_the_hook_reports_to_the_innermost_guard() -> None:
    with NetworkGuard() as outer:
        with NetworkGuard() as inner, pytest.raises(NetworkBlocked):
            sys.audit("socket.gethostbyname", "example.com")
        with pytest.raises(NetworkBlocked):
            sys.audit("socket.gethostbyname", "example.org")
    assert inner.blocked == ["lookup of example.com"]
    assert outer.blocked == ["lookup of example.org"]


def test_the_c_socket_type_reaches_the_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    # Real calls on the _socket level, past socket.py, all to loopback: the hook sees
    # each before the kernel does (a non-loopback one would be refused right there).
    import _socket

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    seen: list[tuple[str, object, object]] = []
    with NetworkGuard() as guard:
        check = guard.check
        monkeypatch.setattr(guard, "check", lambda *a: (seen.append(a), check(*a)))
        raw = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        raw.connect(("127.0.0.1", port))
        raw.close()
        udp = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        udp.sendto(b"x", ("127.0.0.1", port))
        udp.close()
        _socket.getaddrinfo("127.0.0.1", port)
        flags = _socket.NI_NUMERICHOST | _socket.NI_NUMERICSERV
        assert _socket.getnameinfo(("127.0.0.1", port), flags) == ("127.0.0.1", str(port))
    server.close()
    assert seen == [
        ("connect to", "127.0.0.1", port),
        ("send to", "127.0.0.1", port),
        ("lookup of", "127.0.0.1", port),
        ("reverse lookup of", "127.0.0.1", port),
    ]
    assert guard.blocked == []


# -- child processes -------------------------------------------------------------------------------

# The child puts its own stand-ins below urllib: a lookup of anything but loopback and
# a connect off the machine are logged and refused there, never sent.
CHILD = """
import json, socket, sys, urllib.error, urllib.request

log = []
real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo
LOCAL = ("127.0.0.1", "::1", "localhost")


def connect(sock, address):
    log.append(["connect", list(address[:2])])
    if address[0] not in LOCAL:
        raise OSError("stand-in: not leaving the machine")
    return real_connect(sock, address)


def getaddrinfo(host, port, *args, **kwargs):
    log.append(["lookup", host, port])
    if host not in LOCAL:
        raise socket.gaierror("stand-in: no lookups off the machine")
    return real_getaddrinfo(host, port, *args, **kwargs)


socket.socket.connect, socket.getaddrinfo = connect, getaddrinfo
outcomes = []
for url in sys.argv[1:]:
    try:
        urllib.request.urlopen(url, timeout=10)
        outcomes.append("fetched")
    except urllib.error.URLError as exc:
        outcomes.append(type(exc.reason).__name__)
print(json.dumps({"log": log, "outcomes": outcomes, "proxies": urllib.request.getproxies()}))
"""


def _run_child(**kwargs: Any) -> dict[str, Any]:
    urls = ["http://api.example.com/v1", "https://api.example.com/v1"]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, *urls], capture_output=True, text=True, check=True, **kwargs
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_a_child_process_http_client_is_refused_on_this_machine() -> None:
    with NetworkGuard() as guard:
        proxy = guard.child_environment()["HTTPS_PROXY"]
        port = int(proxy.rsplit(":", 1)[1])
        child = _run_child()
        given = _run_child(env={**os.environ, "HTTPS_PROXY": "http://proxy.example.com:3128"})
    assert proxy == f"http://127.0.0.1:{port}"
    expected = {
        "log": [["lookup", "127.0.0.1", port], ["connect", ["127.0.0.1", port]]] * 2,
        "outcomes": ["ConnectionRefusedError", "ConnectionRefusedError"],
        "proxies": {"http": proxy, "https": proxy, "all": proxy, "no": "localhost,127.0.0.1,::1"},
    }
    assert child == expected
    assert given == expected  # the guard's proxies win over the caller's
    assert guard.blocked == []  # refused in the child; the parent never saw the attempts


def test_the_guard_puts_popen_back_and_closes_its_port() -> None:
    init = subprocess.Popen.__init__
    with NetworkGuard() as guard:
        assert subprocess.Popen.__init__ is not init
        refuser = guard.child_environment() and guard._refuser
    assert subprocess.Popen.__init__ is init
    assert refuser is not None
    assert refuser.fileno() == -1
    child = _run_child(env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()})
    assert child["proxies"] == {}
