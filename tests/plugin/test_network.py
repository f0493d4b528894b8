"""The network guard, tested without a packet ever leaving the machine.

Every socket entry point the guard wraps is first replaced by a recording
stand-in, so the guard sits on top of the stand-in: an attempt the guard lets
through lands in the stand-in's log, never on a wire, even if the guard were
broken. The addresses are reserved for documentation (RFC 5737, RFC 3849,
RFC 2606).
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from fakellm.fixtures import _is_local

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

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        log.append(("getaddrinfo", host, port))
        family = socket.AF_INET6 if ":" in str(host) else socket.AF_INET
        address = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket.socket, "sendto", sendto)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
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
    udp.close()
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
            "fakellm keeps tests offline; loopback is allowed. If this is on purpose, mark the "
            "test @pytest.mark.fakellm(block_network=False).",
            "*ERROR at teardown of test_every_way_out_is_blocked*",
            "*the test tried to reach the network:",
            "  - connect to 198.51.100.7:80",
            "  - connect to 203.0.113.9:8443",
            "  - connect to [2001:db8::1]:443",
            "  - send to 192.0.2.53:53",
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
