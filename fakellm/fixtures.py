"""fakellm's pytest plugin, loaded automatically through the ``pytest11`` entry point.

Installing the package is all a user does. The plugin gives every test:

* ``fake_llm``: a factory of scripted models (``fake_llm(script, **settings)``
  makes a :class:`~fakellm.FakeChatModel`, ``fake_llm.completion(...)`` a
  :class:`~fakellm.FakeLLM`), each checked at teardown: an unexpected call (even
  one the app swallowed) or a turn left unplayed fails the test;
* ``llm_recorder``: a fresh :class:`~fakellm.Recorder`, whose timeline is added to
  the report of a failing test;
* ``network_guard``: the test's network guard, to ``acknowledge()`` a block the
  test provoked on purpose;
* ``virtual_clock``: virtual time for a sync test (async tests opt in with
  ``@pytest.mark.asyncio(loop_factories=["virtual_time"])``, or with the marker
  below next to ``@pytest.mark.asyncio`` unless ``asyncio_mode = auto``);
* the marker ``@pytest.mark.fakellm(script, strict=, allow_unused=,
  virtual_time=, block_network=, start=)``;
* a network guard: a test that uses any of these fixtures (or the marker, or any
  test with ``fakellm_block_network = "all"``) cannot connect off this machine;
  loopback stays allowed. A blocked attempt raises
  :class:`~fakellm.errors.NetworkBlocked` and fails the test at teardown even if
  the app swallowed it.

Teardown checks run only when the test itself passed, so they never hide the
test's own exception; when it failed, what they found is added to its report.

Prior art: pytest-httpx (record the unexpected, fail at teardown, say how to opt
out) and time-machine (one fixture that does nothing until used).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import pytest

pytest.register_assert_rewrite("fakellm.assertions")

# The imports below come after the rewrite hook so that assertions is rewritten.
from fakellm._clock import (  # noqa: E402
    VIRTUAL_TIME_LOOP,
    VirtualTime,
    asyncio_loop_factories,
    virtual_loop_factory,
    virtual_time,
)
from fakellm._model import FakeChatModel, FakeLLM  # noqa: E402
from fakellm._network import NetworkGuard  # noqa: E402
from fakellm._recorder import Recorder  # noqa: E402
from fakellm._script import Script, as_script, load_script  # noqa: E402
from fakellm.errors import InvalidScript  # noqa: E402

__all__ = ["FakeLLMFactory", "NetworkGuard", "VirtualTime"]

_FIXTURES = frozenset({"fake_llm", "llm_recorder", "virtual_clock", "network_guard"})
_NETWORK_MODES = ("fixtures", "all", "off")
_MARKER_DOC = (
    "fakellm(script=None, *, strict=True, allow_unused=False, virtual_time=False, "
    "block_network=True, start=None): script the test's fake_llm() models (inline, "
    "or a YAML/JSON path relative to the test file) and set fakellm's checks for it"
)


# --------------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    """Suite-wide defaults: an ini option each, and a command-line flag to override it."""
    group = parser.getgroup("fakellm", "fakellm: offline fake LLMs")
    group.addoption(
        "--fakellm-strict",
        dest="fakellm_strict",
        choices=("on", "off"),
        default=None,
        help="fail tests whose fake models got unexpected calls or kept unused turns "
        "(default: the fakellm_strict ini option, on)",
    )
    group.addoption(
        "--fakellm-block-network",
        dest="fakellm_block_network",
        choices=_NETWORK_MODES,
        default=None,
        help="block connections off this machine in tests that use fakellm "
        "('fixtures', the default), in every test ('all'), or never ('off')",
    )
    group.addoption(
        "--fakellm-timeline",
        dest="fakellm_timeline",
        choices=("on", "off"),
        default=None,
        help="add the llm_recorder timeline to the report of failing tests (default: on)",
    )
    parser.addini(
        "fakellm_strict", "fakellm teardown checks (default true)", type="bool", default=True
    )
    parser.addini(
        "fakellm_block_network",
        "where fakellm's network guard applies: fixtures (default), all, off",
        default="fixtures",
    )
    parser.addini(
        "fakellm_timeline",
        "print llm_recorder timelines of failing tests (default true)",
        type="bool",
        default=True,
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and check the suite-wide options once."""
    config.addinivalue_line("markers", _MARKER_DOC)
    config.addinivalue_line(
        "markers",
        'asyncio(loop_factories=["virtual_time"]): run an async test on fakellm\'s '
        "virtual-time loop (scripted delays cost no wall-clock time)",
    )
    mode = _network_mode(config)
    if mode not in _NETWORK_MODES:
        msg = f"fakellm_block_network = {mode!r}: expected one of {', '.join(_NETWORK_MODES)}"
        raise pytest.UsageError(msg)


def _flag(config: pytest.Config, name: str) -> bool:
    cli = config.getoption(name)
    if cli is not None:
        return bool(cli == "on")
    return bool(config.getini(name))


def _network_mode(config: pytest.Config) -> str:
    return str(config.getoption("fakellm_block_network") or config.getini("fakellm_block_network"))


# --------------------------------------------------------------------- the marker


@dataclass(frozen=True)
class _Settings:
    """What applies to one test: the suite's defaults, then its marker."""

    script: Script | None = None
    strict: bool = True
    allow_unused: bool = False
    virtual_time: bool = False
    block_network: bool = True
    start: datetime | str | None = None


_MARKER_ARGS = ("script", "strict", "allow_unused", "virtual_time", "block_network", "start")
_settings_key = pytest.StashKey[_Settings]()


def _settings(item: pytest.Item) -> _Settings:
    """Read (once per test) the suite's defaults and the test's marker."""
    if _settings_key in item.stash:
        return item.stash[_settings_key]
    mode = _network_mode(item.config)
    uses = bool(_FIXTURES.intersection(getattr(item, "fixturenames", ())))
    marker = item.get_closest_marker("fakellm")
    base = _Settings(
        strict=_flag(item.config, "fakellm_strict"),
        block_network=mode == "all" or (mode == "fixtures" and (uses or marker is not None)),
    )
    settings = base if marker is None else _read_marker(item, marker, base)
    item.stash[_settings_key] = settings
    return settings


def _read_marker(item: pytest.Item, marker: pytest.Mark, base: _Settings) -> _Settings:
    where = f"@pytest.mark.fakellm on {item.nodeid}"
    if len(marker.args) > 1:
        msg = f"{where}: takes one positional argument (the script), got {len(marker.args)}"
        _misuse(msg)
    kwargs = dict(marker.kwargs)
    if marker.args:
        if "script" in kwargs:
            msg = f"{where}: the script is given twice (positionally and as script=)"
            _misuse(msg)
        kwargs["script"] = marker.args[0]
    unknown = sorted(set(kwargs) - set(_MARKER_ARGS))
    if unknown:
        msg = (
            f"{where}: unknown argument{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(repr(u) for u in unknown)}; accepted: {', '.join(_MARKER_ARGS)}"
        )
        _misuse(msg)
    for name in ("strict", "allow_unused", "virtual_time", "block_network"):
        if name in kwargs and not isinstance(kwargs[name], bool):
            msg = f"{where}: {name}={kwargs[name]!r}: expected True or False"
            _misuse(msg)
    if kwargs.get("script", ...) is None:
        del kwargs["script"]  # the documented default
    if "script" in kwargs:
        kwargs["script"] = _marker_script(item, kwargs["script"], where)
    if kwargs.get("block_network") and _network_mode(item.config) == "off":
        # The command line turned the guard off for the whole run; it wins.
        kwargs["block_network"] = False
    if kwargs.get("start") is not None:
        # Fail now, naming the marker, rather than inside virtual time later.
        try:
            virtual_loop_factory(start=kwargs["start"])
        except (TypeError, ValueError) as exc:
            problem = str(exc)
        else:
            problem = ""
        if problem:
            _misuse(f"{where}: {problem}")
    return replace(base, **kwargs)


def _misuse(msg: str) -> NoReturn:
    # A short failure without a traceback into the plugin: the fix is in the test.
    pytest.fail(msg, pytrace=False)


def _marker_script(item: pytest.Item, value: object, where: str) -> Script:
    try:
        if isinstance(value, str | Path):
            path = Path(value)
            if not path.is_absolute():
                path = item.path.parent / path
            if not path.is_file():
                what = "a directory, not a file" if path.is_dir() else "no such file"
                msg = (
                    f"{where}: script={str(value)!r}: {what} {str(path)!r} "
                    "(a string script is a YAML/JSON path relative to the test file; "
                    'for inline text use a list: script=["hello"])'
                )
                _misuse(msg)
            return load_script(path)
        return as_script(value)
    except InvalidScript as exc:
        problem = str(exc)
    except OSError as exc:  # a name the file system refuses, e.g. too long
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        problem = f"script={shown}: not a usable file path ({exc.strerror})"
    _misuse(f"{where}: {problem}")


# --------------------------------------------------------------------- per-test state


@dataclass
class _TestState:
    """What fakellm made for one test, checked at its teardown."""

    settings: _Settings
    models: list[FakeChatModel | FakeLLM] = field(default_factory=list)
    recorders: list[Recorder] = field(default_factory=list)
    guard: NetworkGuard | None = None
    call_passed: bool = False  # the test body's outcome, from its call report

    def findings(self) -> list[str]:
        """Every problem the teardown check reports, one paragraph each."""
        out: list[str] = []
        if self.settings.strict:
            for model in self.models:
                for call in model.unexpected_calls:
                    out.append(f"UnexpectedCall (the app may have swallowed it): {call.unexpected}")
                try:
                    model.assert_all_turns_used()
                except AssertionError as exc:
                    out.append(f"UnusedTurns: {exc}")
        if self.guard is not None and self.guard.blocked:
            lines = "\n".join(self.guard.report())
            out.append(
                "NetworkBlocked (the app may have swallowed it): the test tried to reach "
                f"the network:\n{lines}\nfakellm keeps tests offline; loopback is allowed. "
                "If this is on purpose, mark the test @pytest.mark.fakellm(block_network=False)."
            )
        return out

    def timelines(self) -> str:
        parts = [r.events.timeline() if len(r) else "(no events recorded)" for r in self.recorders]
        return "\n\n".join(parts)


_state_key = pytest.StashKey[_TestState]()


@pytest.fixture(autouse=True)
def _fakellm(request: pytest.FixtureRequest) -> Iterator[_TestState]:
    """Set up what the test's settings ask for; check it all at teardown."""
    item = request.node
    state = _TestState(_settings(item))
    item.stash[_state_key] = state
    with contextlib.ExitStack() as undo:
        if state.settings.block_network:
            state.guard = undo.enter_context(NetworkGuard())
        if state.settings.virtual_time and not _is_async(item):
            undo.enter_context(virtual_time(start=state.settings.start))
        elif state.settings.start is not None and not _wants_virtual_time(item, state):
            _misuse(
                f"@pytest.mark.fakellm on {item.nodeid}: start= sets the instant virtual "
                "time starts at, but this test has no virtual time: add virtual_time=True, "
                "the virtual_clock fixture, or loop_factories=['virtual_time']"
            )
        yield state
    # Only a passing test is failed here: a failed test keeps its own error, and
    # what these checks found was added to its report instead.
    if state.call_passed:
        found = state.findings()
        if found:
            pytest.fail("fakellm teardown checks failed:\n\n" + "\n\n".join(found), pytrace=False)


def _is_async(item: pytest.Item) -> bool:
    return inspect.iscoroutinefunction(getattr(item, "obj", None))


def _wants_virtual_time(item: pytest.Item, state: _TestState) -> bool:
    if state.settings.virtual_time or "virtual_clock" in getattr(item, "fixturenames", ()):
        return True
    return VIRTUAL_TIME_LOOP in asyncio_loop_factories(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Note whether the test passed; give a failing one fakellm's findings and timeline."""
    report = yield
    state = item.stash.get(_state_key, None)
    if state is None:
        return report
    if report.when == "call":
        state.call_passed = report.passed
    if not report.failed or report.when == "setup":
        return report
    if report.when == "call":
        found = state.findings()
        if found:
            section = "fakellm checks (not raised: the test failed)"
            report.sections.append((section, "\n\n".join(found)))
    if state.recorders and _flag(item.config, "fakellm_timeline"):
        report.sections.append(("fakellm timeline", state.timelines()))
    return report


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]] | None:
    """Give async tests the virtual-time loop when they ask for it.

    The hook takes the first answer, and this one runs first: a test that asks
    for virtual time gets it even if a conftest answers the hook too, and any
    other test is left to that conftest.
    """
    try:
        settings = _settings(item)
    except pytest.fail.Exception:
        # A bad marker: the _fakellm fixture reports it at this test's setup,
        # instead of a collection error taking the whole module down.
        settings = _Settings()
    if settings.virtual_time:
        return {VIRTUAL_TIME_LOOP: virtual_loop_factory(start=settings.start)}
    factories = asyncio_loop_factories(item, start=settings.start)
    if VIRTUAL_TIME_LOOP in factories:
        return factories
    if len(item.ihook.pytest_asyncio_loop_factories.get_hookimpls()) > 1:
        return None
    return factories


# --------------------------------------------------------------------- fixtures


class FakeLLMFactory:
    """The ``fake_llm`` fixture: makes scripted models and checks each at teardown.

    ``fake_llm(["Hello!"])`` makes a :class:`~fakellm.FakeChatModel`;
    ``fake_llm.completion(["Hello!"])`` a :class:`~fakellm.FakeLLM`. With no
    script, a model plays the test's ``@pytest.mark.fakellm`` script. Other
    keyword arguments are the model's settings (``model="gpt-4o-mini"``,
    ``allow_unused=True``, ...).
    """

    def __init__(self, state: _TestState) -> None:
        self._state = state

    def __repr__(self) -> str:
        n = len(self._state.models)
        return f"<fake_llm: {n} model{'' if n == 1 else 's'} made>"

    @property
    def models(self) -> list[FakeChatModel | FakeLLM]:
        """Every model this factory made, in order."""
        return list(self._state.models)

    def __call__(self, script: Any = None, /, **settings: Any) -> FakeChatModel:
        """A :class:`~fakellm.FakeChatModel` playing ``script``."""
        model = FakeChatModel(**self._settings(script, settings))
        self._state.models.append(model)
        return model

    def completion(self, script: Any = None, /, **settings: Any) -> FakeLLM:
        """A :class:`~fakellm.FakeLLM` (completion-style) playing ``script``."""
        model = FakeLLM(**self._settings(script, settings))
        self._state.models.append(model)
        return model

    def _settings(self, script: Any, settings: dict[str, Any]) -> dict[str, Any]:
        if "script" in settings:
            if script is not None:
                msg = "fake_llm() got the script twice (positionally and as script=)"
                raise TypeError(msg)
            script = settings.pop("script")
        if script is None:
            script = self._state.settings.script or Script()
        settings.setdefault("allow_unused", self._state.settings.allow_unused)
        return {"script": script, **settings}


@pytest.fixture
def fake_llm(_fakellm: _TestState) -> FakeLLMFactory:
    """A factory of scripted fake models, strict at teardown. See :class:`FakeLLMFactory`."""
    return FakeLLMFactory(_fakellm)


@pytest.fixture
def llm_recorder(_fakellm: _TestState) -> Recorder:
    """A fresh :class:`~fakellm.Recorder`; a failing test's report shows its timeline."""
    recorder = Recorder()
    _fakellm.recorders.append(recorder)
    return recorder


@pytest.fixture
def network_guard(_fakellm: _TestState) -> NetworkGuard:
    """The test's :class:`NetworkGuard`: ``acknowledge()`` a block the test provoked."""
    if _fakellm.guard is None:
        msg = (
            "network_guard was requested but the guard is off for this test "
            "(block_network=False or fakellm_block_network = off)"
        )
        _misuse(msg)
    return _fakellm.guard


@pytest.fixture
def virtual_clock(request: pytest.FixtureRequest, _fakellm: _TestState) -> Iterator[VirtualTime]:
    """Virtual time for a sync test: scripted delays and ``time.sleep``-free waits cost nothing.

    Yields the :class:`~fakellm._clock.VirtualTime` scope (``.elapsed``, ``.now()``).
    """
    if _is_async(request.node):
        msg = (
            "virtual_clock is for sync tests; an async test opts into virtual time with "
            '@pytest.mark.asyncio(loop_factories=["virtual_time"]) or '
            "@pytest.mark.fakellm(virtual_time=True) (with @pytest.mark.asyncio unless "
            "asyncio_mode = auto)"
        )
        _misuse(msg)
    if _fakellm.settings.virtual_time:
        msg = (
            "virtual_clock and @pytest.mark.fakellm(virtual_time=True) both start virtual "
            "time; use one"
        )
        _misuse(msg)
    with virtual_time(start=_fakellm.settings.start) as scope:
        yield scope
