"""The network guard: a test that uses fakellm cannot reach past this machine.

Three layers, each for what the one above it cannot see:

* the Python socket API: ``socket.socket.connect``, ``connect_ex``, ``sendto``
  and ``sendmsg``, and the lookups ``getaddrinfo``, ``gethostbyname(_ex)``,
  ``gethostbyaddr`` and ``getnameinfo`` are wrapped, and pass what they allow
  to whatever was in place before (so guards nest, and a test of the guard can
  put a recording stand-in below it);
* the ``_socket`` level: an audit hook (PEP 578) refuses the same operations
  when code calls the C socket type or functions directly, bypassing
  ``socket.py``;
* child processes: ``subprocess.Popen`` (and so ``subprocess.run``, asyncio's
  subprocesses, ...) starts children with ``HTTP_PROXY``/``HTTPS_PROXY``/
  ``ALL_PROXY`` pointing at a port on 127.0.0.1 that refuses every connection,
  and ``NO_PROXY`` naming loopback, so an HTTP client in the child that reads
  these variables (requests, httpx, urllib, curl, pip) is refused.

Each blocked attempt raises :class:`~fakellm.errors.NetworkBlocked`, is kept in
:attr:`NetworkGuard.blocked` and names its call site: the first frame outside
the standard library, installed packages and fakellm.
"""

from __future__ import annotations

import inspect
import ipaddress
import os
import site
import socket
import subprocess
import sys
import sysconfig
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from fakellm.errors import NetworkBlocked

__all__ = ["NetworkGuard"]


def _is_local(host: object) -> bool:
    """True for addresses on this machine: loopback, "any", localhost names."""
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").lower()
    if name in ("", "localhost", "localhost.", "ip6-localhost", "ip6-loopback"):
        return True
    if name.endswith((".localhost", ".localhost.")):
        return True
    try:
        ip = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def _describe(host: object, port: object) -> str:
    shown = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    if port is None:
        return shown
    if ":" in shown:
        shown = f"[{shown}]"
    return f"{shown}:{port}"


def _library_prefixes() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    found = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    found.update(site.getsitepackages())
    found.add(site.getusersitepackages())
    found.add(str(Path(__file__).resolve().parent))  # fakellm itself
    return tuple(os.path.join(os.path.realpath(p), "") for p in found if p)


_LIBRARY = _library_prefixes()


def _call_site(frame: FrameType | None) -> str:
    """``file:line in function`` of the first frame that is the app's or the test's own.

    Library frames (the standard library, installed packages, fakellm) are
    skipped; if every frame is a library's, the innermost one outside this
    module and ``socket.py`` is named instead.
    """
    fallback = ""
    while frame is not None:
        code = frame.f_code
        path = code.co_filename
        if not path.startswith("<frozen"):
            real = os.path.realpath(path) if not path.startswith("<") else path
            site_text = f"{_shown_path(real)}:{frame.f_lineno} in {code.co_name}"
            if not real.startswith(_LIBRARY):
                return site_text
            if not fallback and real not in (__file__, socket.__file__):
                fallback = site_text
        frame = frame.f_back
    return fallback


def _shown_path(path: str) -> str:
    try:
        return os.path.relpath(path) if path.startswith(os.getcwd() + os.sep) else path
    except (OSError, ValueError):  # no current directory; another drive
        return path


_PATCHED = ("connect", "connect_ex", "sendto", "sendmsg")
_LOOKUPS = ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr", "getnameinfo")
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
_LOOPBACK_NAMES = "localhost,127.0.0.1,::1"
_MISSING = object()

# The guards installed now, innermost last: the audit hook reports to the innermost.
_ACTIVE: list[NetworkGuard] = []
_HOOK_LOCK = threading.Lock()
_hook_added = False


@dataclass
class NetworkGuard:
    """Blocks connections to addresses off this machine while installed.

    It wraps the socket entry points, watches the ``_socket`` level with an
    audit hook and points the proxies of child processes at a port that
    refuses (see the module docstring). Each blocked attempt raises
    :class:`~fakellm.errors.NetworkBlocked` and is kept in :attr:`blocked`, so a
    test fails at teardown even if the app swallowed the error. Loopback
    addresses, ``localhost`` and Unix sockets pass through.

    Attributes:
        blocked: one line per blocked attempt, e.g. ``"connect to 192.0.2.1:443"``.
        sites: where each blocked attempt came from (``file:line in function``),
            in the order of :attr:`blocked`; ``""`` when no frame could be named.
    """

    blocked: list[str] = field(default_factory=list)
    sites: list[str] = field(default_factory=list)
    _below: dict[str, Any] = field(default_factory=dict, repr=False)
    _refuser: socket.socket | None = field(default=None, repr=False)

    def check(self, what: str, host: object, port: object) -> None:
        """Raise NetworkBlocked (and remember it) unless ``host`` is on this machine."""
        if _is_local(host):
            return
        where = _describe(host, port)
        self.blocked.append(f"{what} {where}")
        self.sites.append(_call_site(inspect.currentframe()))
        msg = (
            f"fakellm blocked a network access ({what} {where}): tests that use fakellm "
            "stay offline; loopback is allowed. To let this test out, mark it "
            "@pytest.mark.fakellm(block_network=False)."
        )
        raise NetworkBlocked(msg)

    def report(self) -> list[str]:
        """The blocked attempts as report lines: each, then where it came from."""
        lines = []
        for attempt, where in zip(self.blocked, self.sites, strict=False):
            lines.append(f"  - {attempt}")
            if where:
                lines.append(f"    at {where}")
        return lines

    def acknowledge(self) -> list[str]:
        """Take the blocked attempts recorded so far, so they no longer fail the test.

        For a test that provokes a block on purpose: assert on what this
        returns; attempts made after the call are recorded (and fail) as usual.
        """
        taken, self.blocked, self.sites = self.blocked, [], []
        return taken

    def child_environment(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """``env`` (default: this process's) with the proxies that refuse every connection."""
        out = dict(os.environ if env is None else env)
        if self._refuser is None:
            # Bound but never listening: a connection to it is refused at once.
            self._refuser = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._refuser.bind(("127.0.0.1", 0))
        proxy = f"http://127.0.0.1:{self._refuser.getsockname()[1]}"
        for name in _PROXY_VARIABLES:
            out[name] = out[name.lower()] = proxy
        out["NO_PROXY"] = out["no_proxy"] = _LOOPBACK_NAMES
        return out

    def install(self) -> None:
        """Wrap the socket entry points (undo with :meth:`uninstall`, innermost first)."""
        if self._below:
            msg = "this NetworkGuard is installed already"
            raise RuntimeError(msg)
        below = {name: socket.socket.__dict__.get(name, _MISSING) for name in _PATCHED}
        below.update({name: getattr(socket, name) for name in _LOOKUPS})
        below["Popen.__init__"] = subprocess.Popen.__dict__["__init__"]
        self._below = below
        real = {name: getattr(socket.socket, name) for name in _PATCHED}
        real_lookups = {name: getattr(socket, name) for name in _LOOKUPS}
        real_popen_init: Callable[..., None] = below["Popen.__init__"]

        def check_address(what: str, sock: Any, address: Any) -> None:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
                self.check(what, address[0], address[1] if len(address) > 1 else "?")

        # Plain functions, not bound methods, so that socket instances bind to them.
        def connect(sock: socket.socket, address: Any) -> Any:
            check_address("connect to", sock, address)
            return real["connect"](sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> Any:
            check_address("connect to", sock, address)
            return real["connect_ex"](sock, address)

        def sendto(sock: socket.socket, *args: Any) -> Any:
            check_address("send to", sock, args[-1] if len(args) > 1 else None)
            return real["sendto"](sock, *args)

        def sendmsg(sock: socket.socket, *args: Any) -> Any:
            # sendmsg(buffers[, ancdata[, flags[, address]]])
            check_address("send to", sock, args[3] if len(args) > 3 else None)
            return real["sendmsg"](sock, *args)

        def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            self.check("lookup of", host, port)
            return real_lookups["getaddrinfo"](host, port, *args, **kwargs)

        def getnameinfo(sockaddr: Any, flags: int) -> Any:
            if isinstance(sockaddr, tuple) and sockaddr:
                port = sockaddr[1] if len(sockaddr) > 1 else None
                self.check("reverse lookup of", sockaddr[0], port)
            return real_lookups["getnameinfo"](sockaddr, flags)

        def lookup(name: str) -> Callable[[Any], Any]:
            def guarded(host: Any) -> Any:
                self.check("lookup of", host, None)
                return real_lookups[name](host)

            return guarded

        def popen_init(popen: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
            # env is Popen's eleventh parameter; callers nearly always name it.
            if len(args) > 10:
                args = (*args[:10], self._child_env(args[10]), *args[11:])
            else:
                kwargs["env"] = self._child_env(kwargs.get("env"))
            real_popen_init(popen, *args, **kwargs)

        socket.socket.connect = connect  # type: ignore[method-assign, assignment]
        socket.socket.connect_ex = connect_ex  # type: ignore[method-assign, assignment]
        socket.socket.sendto = sendto  # type: ignore[method-assign, assignment]
        socket.socket.sendmsg = sendmsg  # type: ignore[method-assign, assignment]
        socket.getaddrinfo = getaddrinfo
        socket.getnameinfo = getnameinfo
        for name in ("gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
            setattr(socket, name, lookup(name))
        subprocess.Popen.__init__ = popen_init  # type: ignore[method-assign, assignment]
        _watch(self)

    def _child_env(self, env: Any) -> Any:
        if env is not None and any(isinstance(k, bytes) for k in env):
            return env  # a bytes environment: left as the caller built it
        return self.child_environment(env)

    def uninstall(self) -> None:
        """Put back what was in place before :meth:`install`."""
        _unwatch(self)
        for name in _PATCHED:
            if self._below[name] is _MISSING:
                # Inherited from _socket.socket: dropping the shadow restores it.
                delattr(socket.socket, name)
            else:
                setattr(socket.socket, name, self._below[name])
        for name in _LOOKUPS:
            setattr(socket, name, self._below[name])
        subprocess.Popen.__init__ = self._below["Popen.__init__"]  # type: ignore[method-assign]
        self._below = {}
        if self._refuser is not None:
            self._refuser.close()
            self._refuser = None

    def __enter__(self) -> NetworkGuard:
        self.install()
        return self

    def __exit__(self, *exc: object) -> None:
        self.uninstall()


# -- the _socket level ------------------------------------------------------------------------


def _watch(guard: NetworkGuard) -> None:
    global _hook_added
    with _HOOK_LOCK:
        if not _hook_added:
            # An audit hook cannot be removed: it stays, and does nothing while
            # no guard is installed.
            sys.addaudithook(_audit)
            _hook_added = True
        _ACTIVE.append(guard)


def _unwatch(guard: NetworkGuard) -> None:
    with _HOOK_LOCK:
        if guard in _ACTIVE:
            _ACTIVE.remove(guard)


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Refuse what the C socket module is about to do (PEP 578 events), past socket.py."""
    if not _ACTIVE or not event.startswith("socket."):
        return
    guard = _ACTIVE[-1]
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
        sock, address = args
        family = getattr(sock, "family", None)
        if family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            what = "connect to" if event == "socket.connect" else "send to"
            guard.check(what, address[0], address[1] if len(address) > 1 else "?")
    elif event == "socket.getaddrinfo":
        guard.check("lookup of", args[0], args[1])
    elif event in ("socket.gethostbyname", "socket.gethostbyaddr"):
        guard.check("lookup of", args[0], None)
    elif event == "socket.getnameinfo":
        sockaddr = args[0]
        if isinstance(sockaddr, tuple) and sockaddr:
            port = sockaddr[1] if len(sockaddr) > 1 else None
            guard.check("reverse lookup of", sockaddr[0], port)
