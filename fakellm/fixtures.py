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
import itertools
import math
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

import pytest

pytest.register_assert_rewrite("fakellm.assertions")

# The imports below come after the rewrite hook so that assertions is rewritten.
from fakellm._clock import (  # noqa: E402
    DEFAULT_BUDGET,
    hold_mirror,
    parse_budget,
    parse_start,
    stop_virtual_time,
)
from fakellm._loop import VIRTUAL_TIME_LOOP, VirtualTimeLoop, virtual_loop_factory  # noqa: E402
from fakellm._network import NetworkGuard  # noqa: E402
from fakellm.errors import InvalidScript  # noqa: E402

if TYPE_CHECKING:
    from fakellm._intercept import Interception
    from fakellm._model import FakeChatModel, FakeLLM
    from fakellm._recorder import Recorder
    from fakellm._scenario import VirtualTime
    from fakellm._script import Script
    from fakellm.fuzz import Fuzzer

# LangChain, pydantic and freezegun are imported when a test first uses
# fakellm, not when pytest loads the plugin: a suite that never touches
# fakellm pays only for this module.


def __getattr__(name: str) -> Any:
    if name == "VirtualTime":
        from fakellm._scenario import VirtualTime

        return VirtualTime
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


__all__ = ["FakeLLMFactory", "NetworkGuard", "VirtualTime", "asyncio_loop_factories"]

_FIXTURES = frozenset({"fake_llm", "llm_recorder", "virtual_clock", "network_guard"})
_NETWORK_MODES = ("fixtures", "all", "off")
_MARKER_DOC = (
    "fakellm(script=None, *, strict=True, allow_unused=False, virtual_time=False, "
    "block_network=True, start=None, budget=<ini>, real_perf_counter=False, "
    "intercept=None, cassette=None, record=None, "
    "match='order'): script the test's fake_llm() models (inline, "
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
    # ---- record and replay (intercept, cassettes) ----
    group.addoption(
        "--fakellm-record",
        dest="fakellm_record",
        choices=RECORD_MODES,  # the same tuple as fakellm._cassette's (a test pins it)
        default=None,
        help="record mode of every cassette in this run, over markers and fixture calls: "
        "none (replay only, the default), once, new_episodes, all",
    )
    # ---- end record and replay ----
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
    # -- virtual time (#13)
    parser.addini(
        "fakellm_virtual_time_budget",
        "virtual seconds a virtual-time test may use before TimeBudgetExceeded "
        "(default 86400, one day; 'none' for no budget)",
        default="86400",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker and check the suite-wide options once."""
    config.addinivalue_line("markers", _MARKER_DOC)
    config.addinivalue_line(
        "markers",
        'asyncio(loop_factories=["virtual_time"]): run an async test on fakellm\'s '
        "virtual-time loop (scripted delays cost no wall-clock time)",
    )
    config.stash[_budget_key] = _ini_budget(config)
    mode = _network_mode(config)
    if mode not in _NETWORK_MODES:
        msg = f"fakellm_block_network = {mode!r}: expected one of {', '.join(_NETWORK_MODES)}"
        raise pytest.UsageError(msg)


@pytest.hookimpl(specname="pytest_unconfigure")
def pytest_unconfigure_fakellm_clock(config: pytest.Config) -> None:
    """Undo the freezegun patching that virtual time leaves in place between
    tests (see :func:`fakellm.stop_virtual_time`); a no-op while a scope is active."""
    stop_virtual_time()


_budget_key = pytest.StashKey["float | None"]()


def _ini_budget(config: pytest.Config) -> float | None:
    raw = str(config.getini("fakellm_virtual_time_budget")).strip()
    if raw.lower() == "none":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        msg = (
            f"fakellm_virtual_time_budget = {raw!r}: expected a positive number of "
            "virtual seconds, or none"
        )
        raise pytest.UsageError(msg)
    return value


def _budget(item: pytest.Item, settings: _Settings) -> float | None:
    """The test's virtual-time budget: its marker's ``budget=``, else the ini option."""
    if settings.budget is not _FROM_INI:
        return settings.budget
    return item.config.stash.get(_budget_key, DEFAULT_BUDGET)


#: ``_Settings.budget`` when the marker gives none (the ini option applies).
_FROM_INI: Any = object()


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
    budget: float | None = _FROM_INI
    real_perf_counter: bool = False
    # ---- intercept and cassettes ----
    intercept: Any = None
    cassette: Any = None
    record: str | None = None
    match: str = "order"


_MARKER_ARGS: tuple[str, ...] = (
    "script", "strict", "allow_unused", "virtual_time", "block_network", "start",
)  # fmt: skip
_MARKER_ARGS += ("intercept", "cassette", "record", "match")
_MARKER_ARGS += ("budget", "real_perf_counter")
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
    for name in ("strict", "allow_unused", "virtual_time", "block_network", "real_perf_counter"):
        if name in kwargs and not isinstance(kwargs[name], bool):
            msg = f"{where}: {name}={kwargs[name]!r}: expected True or False"
            _misuse(msg)
    _check_intercept_args(kwargs, where)
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
            parse_start(kwargs["start"])
        except (TypeError, ValueError) as exc:
            problem = str(exc)
        else:
            problem = ""
        if problem:
            _misuse(f"{where}: {problem}")
    if "budget" in kwargs:
        try:
            kwargs["budget"] = parse_budget(kwargs["budget"])
        except (TypeError, ValueError) as exc:
            problem = str(exc)
        else:
            problem = ""
        if problem:  # raised outside the except: no chained traceback in the report
            _misuse(f"{where}: {problem}")
    return replace(base, **kwargs)


def _misuse(msg: str) -> NoReturn:
    # A short failure without a traceback into the plugin: the fix is in the test.
    pytest.fail(msg, pytrace=False)


# ---- intercept and cassettes: marker arguments, the fixture method's setup ----

# fakellm._cassette.RECORD_MODES, spelled here so that loading the plugin does
# not import the cassette module (and LangChain with it).
RECORD_MODES = ("none", "once", "new_episodes", "all")


def _check_intercept_args(kwargs: dict[str, Any], where: str) -> None:
    if kwargs.get("record") is not None and kwargs["record"] not in RECORD_MODES:
        _misuse(f"{where}: record={kwargs['record']!r}: accepted: {', '.join(RECORD_MODES)}")
    if kwargs.get("match", "order") not in ("order", "fingerprint"):
        _misuse(f"{where}: match={kwargs['match']!r}: accepted: order, fingerprint")
    has_cassette = kwargs.get("cassette") is not None
    if (has_cassette or kwargs.get("record") is not None) and kwargs.get("intercept") is None:
        _misuse(f"{where}: cassette= and record= need intercept= (the classes to replay)")
    if has_cassette and kwargs.get("script") is not None:
        _misuse(f"{where}: give a script or a cassette=, not both (a cassette is a script)")


def _start_interception(
    item: pytest.Item, state: _TestState, targets: tuple[Any, ...], **options: Any
) -> Interception:
    """Build, install and register one interception; teardown uninstalls and checks it."""
    from fakellm._intercept import Interception, resolve_path

    cli = item.config.getoption("fakellm_record")
    if options.get("cassette") is not None:
        options["cassette"] = resolve_path(options["cassette"], item.path.parent)
        options["record"] = cli or options.get("record") or "none"
    seam = Interception(*targets, **options)
    seam.install()
    state.interceptions.append(seam)
    return seam


def _marker_interception(item: pytest.Item, state: _TestState) -> None:
    settings = state.settings
    if settings.intercept is None:
        return
    targets = settings.intercept
    targets = tuple(targets) if isinstance(targets, list | tuple) else (targets,)
    try:
        _start_interception(
            item,
            state,
            targets,
            script=None if settings.cassette is not None else (settings.script or Script()),
            cassette=settings.cassette,
            record=settings.record,
            match=settings.match,
            allow_unused=settings.allow_unused,
            strict=settings.strict,
        )
    except (ImportError, TypeError, ValueError, OSError) as exc:
        _misuse(f"@pytest.mark.fakellm on {item.nodeid}: {exc}")


def _stop_interceptions(state: _TestState) -> None:
    # A failed test writes no recording: its run may be the broken one.
    for seam in reversed(state.interceptions):
        seam.uninstall(save=state.call_passed)


# ---- end intercept and cassettes ----


def _marker_script(item: pytest.Item, value: object, where: str) -> Script:
    from fakellm._script import as_script, load_script

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
    interceptions: list[Interception] = field(default_factory=list)  # intercept / cassettes

    def findings(self) -> list[str]:
        """Every problem the teardown check reports, one paragraph each."""
        out: list[str] = []
        if self.settings.strict:
            for model in self.models:
                for call in model.unexpected_calls:
                    kind = type(call.unexpected).__name__
                    out.append(f"{kind} (the app may have swallowed it): {call.unexpected}")
                try:
                    model.assert_all_turns_used()
                except AssertionError as exc:
                    out.append(f"UnusedTurns: {exc}")
                if model.races:
                    from fakellm._order import race_message

                    label = f"{type(model).__name__}(model_name={model.model_name!r})"
                    out.append(f"Race: {race_message(label, model.races)}")
        for seam in self.interceptions:
            out.extend(seam.findings())
        if self.guard is not None and self.guard.blocked:
            lines = "\n".join(self.guard.report())
            out.append(
                "NetworkBlocked (the app may have swallowed it): the test tried to reach "
                f"the network:\n{lines}\nfakellm keeps tests offline; loopback is allowed. "
                "If this is on purpose, mark the test @pytest.mark.fakellm(block_network=False)."
            )
        return out

    def timelines(self) -> str:
        # Bounded like an assertion message's timeline: a test with hundreds of
        # runs gets its first and last rows, not megabytes of report.
        parts = [
            r.events.timeline(max_events=_REPORT_EVENTS) if len(r) else "(no events recorded)"
            for r in self.recorders
        ]
        return "\n\n".join(parts)


#: Rows of a failing test's timeline section at most (first and last halves).
_REPORT_EVENTS = 200

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
        if _wants_virtual_time(item, state):
            # Import what fakellm builds before freezegun patches datetime:
            # classes defined while it is started would derive from its fakes.
            _import_models()
            # One freezegun start per test: every scope inside it is cheap.
            undo.enter_context(hold_mirror())
        if state.settings.virtual_time and not _is_async(item):
            undo.enter_context(_virtual_time_of(item, state.settings))
        elif not _wants_virtual_time(item, state):
            _refuse_virtual_time_args(item, state.settings)
        undo.callback(_stop_interceptions, state)
        _marker_interception(item, state)
        yield state
    # Only a passing test is failed here: a failed test keeps its own error, and
    # what these checks found was added to its report instead.
    if state.call_passed:
        found = state.findings()
        if found:
            pytest.fail("fakellm teardown checks failed:\n\n" + "\n\n".join(found), pytrace=False)


def _virtual_time_of(item: pytest.Item, settings: _Settings) -> VirtualTime:
    from fakellm._scenario import virtual_time

    return virtual_time(
        start=settings.start,
        budget=_budget(item, settings),
        real_perf_counter=settings.real_perf_counter,
    )


_VIRTUAL_TIME_ONLY: Final = (
    ("start", None, "sets the instant virtual time starts at"),
    ("budget", _FROM_INI, "sets the test's virtual-time budget"),
    ("real_perf_counter", False, "makes time.perf_counter read real time under virtual time"),
)


def _refuse_virtual_time_args(item: pytest.Item, settings: _Settings) -> None:
    for name, unset, does in _VIRTUAL_TIME_ONLY:
        if getattr(settings, name) is not unset:
            _misuse(
                f"@pytest.mark.fakellm on {item.nodeid}: {name}= {does}, but this test has "
                "no virtual time: add virtual_time=True, the virtual_clock fixture, or "
                "loop_factories=['virtual_time']"
            )


def _import_models() -> None:
    import fakellm._model
    import fakellm._recorder  # noqa: F401


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


# Loops the plugin's factories made (with a serial number), so a test's
# leaked tasks can be found on the loop made for it.
_made_loops: weakref.WeakKeyDictionary[VirtualTimeLoop, int] = weakref.WeakKeyDictionary()
_loop_serial = itertools.count()
_first_loop_key = pytest.StashKey[int]()
_factories: dict[object, Callable[[], VirtualTimeLoop]] = {}


def _virtual_factory(
    start: datetime | str | None,
    budget: float | None = DEFAULT_BUDGET,
    real_perf_counter: bool = False,
) -> Callable[[], VirtualTimeLoop]:
    """One factory object per start instant, budget and perf_counter choice.

    pytest-asyncio caches a scoped loop by its factory parameter, so a new
    factory per test would give every test a fresh loop whatever its
    ``loop_scope``; the same object lets ``loop_scope="module"`` share one.
    """
    key = (parse_start(start), budget, real_perf_counter)
    factory = _factories.get(key)
    if factory is None:
        make = virtual_loop_factory(
            start=key[0], budget=budget, real_perf_counter=real_perf_counter
        )

        def factory() -> VirtualTimeLoop:
            loop = make()
            _made_loops[loop] = next(_loop_serial)
            return loop

        factory.__qualname__ = factory.__name__ = "virtual_time_loop"
        _factories[key] = factory
    return factory


def _loop_scope(item: pytest.Item) -> str:
    marker = item.get_closest_marker("asyncio")
    scope = marker.kwargs.get("loop_scope") if marker is not None else None
    if scope is None:
        scope = item.config.getini("asyncio_default_test_loop_scope") or "function"
    return str(scope)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Note which loops are new from here on: a function-scoped loop is made in setup."""
    # Peek at the counter without consuming a number another loop would get.
    global _loop_serial
    current = next(_loop_serial)
    _loop_serial = itertools.count(current)
    item.stash[_first_loop_key] = current


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    """Fail a function-scoped virtual-time test that leaves tasks or timers pending.

    The same rule as ``run_scenario``: when the test's own coroutine is done,
    any other task still pending is a leak, named with where it waits.
    """
    result = yield
    first = pyfuncitem.stash.get(_first_loop_key, None)
    if first is None or _loop_scope(pyfuncitem) != "function":
        return result
    for loop, serial in list(_made_loops.items()):
        if serial < first or loop.is_closed() or loop.is_running():
            continue
        leaked = sorted(
            (t for t in asyncio.all_tasks(loop) if not t.done()), key=lambda t: t.get_name()
        )
        timers = loop.describe_pending_timers()
        del _made_loops[loop]
        if leaked:
            from fakellm._scenario import leaked_tasks_message

            msg = leaked_tasks_message(leaked, loop.time(), "the test", "the test")
            _misuse(f"LeakedTasks: {msg}")
        if timers:
            lines = "\n".join(f"  - {t}" for t in timers)
            msg = (
                f"the test finished at virtual time {loop.time():g} s but left "
                f"{len(timers)} timer(s) pending:\n{lines}\n"
                "Cancel every call_later/call_at handle you schedule before the test ends."
            )
            _misuse(f"LeakedTasks: {msg}")
    return result


def _default_loop() -> asyncio.AbstractEventLoop:
    # What pytest-asyncio builds when no factory is given, so tests that do not
    # opt in keep their loop.
    return asyncio.new_event_loop()


def asyncio_loop_factories(
    item: Any,
    *,
    start: datetime | str | None = None,
    budget: float | None = DEFAULT_BUDGET,
    real_perf_counter: bool = False,
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The answer for pytest-asyncio's ``pytest_asyncio_loop_factories`` hook.

    That hook must answer for every async test, and every name it returns
    parametrizes the tests that do not pick one. So a test gets the default
    loop alone (one hidden parameter: ids unchanged) unless its marker asks
    for ``loop_factories=["virtual_time"]``. The plugin answers the hook
    itself; a conftest that answers it too can delegate here::

        def pytest_asyncio_loop_factories(config, item):
            return fakellm.fixtures.asyncio_loop_factories(item)

    Args:
        item: the test item (only its ``asyncio`` marker is read).
        start: the instant the virtual-time loop starts at (default 2024-01-01).
        budget: virtual seconds the loop may run (default one day; None: none).
        real_perf_counter: ``time.perf_counter`` reads real time on the loop.
    """
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": _default_loop}
    marker = item.get_closest_marker("asyncio")
    wanted = marker.kwargs.get("loop_factories") if marker is not None else None
    if wanted and not isinstance(wanted, str) and VIRTUAL_TIME_LOOP in wanted:
        factories[VIRTUAL_TIME_LOOP] = _virtual_factory(start, budget, real_perf_counter)
    return factories


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
    budget = _budget(item, settings)
    if settings.virtual_time:
        return {
            VIRTUAL_TIME_LOOP: _virtual_factory(settings.start, budget, settings.real_perf_counter)
        }
    factories = asyncio_loop_factories(
        item, start=settings.start, budget=budget, real_perf_counter=settings.real_perf_counter
    )
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

    def __init__(self, state: _TestState, item: pytest.Item | None = None) -> None:
        self._state = state
        self._item = item

    def __repr__(self) -> str:
        n = len(self._state.models)
        return f"<fake_llm: {n} model{'' if n == 1 else 's'} made>"

    @property
    def models(self) -> list[FakeChatModel | FakeLLM]:
        """Every model this factory made, in order."""
        return list(self._state.models)

    def __call__(self, script: Any = None, /, **settings: Any) -> FakeChatModel:
        """A :class:`~fakellm.FakeChatModel` playing ``script``."""
        from fakellm._model import FakeChatModel

        model = FakeChatModel(**self._settings(script, settings))
        self._state.models.append(model)
        return model

    def completion(self, script: Any = None, /, **settings: Any) -> FakeLLM:
        """A :class:`~fakellm.FakeLLM` (completion-style) playing ``script``."""
        from fakellm._model import FakeLLM

        model = FakeLLM(**self._settings(script, settings))
        self._state.models.append(model)
        return model

    # ---- intercept and cassettes ----

    def intercept(
        self,
        *targets: Any,
        script: Any = None,
        cassette: str | Path | None = None,
        record: str | None = None,
        match: str = "order",
        scrub: Callable[[str], str] | None = None,
        allow_unused: bool | None = None,
    ) -> Interception:
        """Answer the named chat model classes from a script or a cassette for this test.

        Spelled as :func:`fakellm.intercept`; ``script`` defaults to the marker's,
        a relative ``cassette`` path is relative to the test file, and
        ``--fakellm-record`` overrides ``record``. Teardown undoes the patch and
        fails the test if nothing was intercepted, a call went unanswered or a
        turn or recording was left unused.
        """
        if script is None and cassette is None:
            script = self._state.settings.script or Script()
        if allow_unused is None:
            allow_unused = self._state.settings.allow_unused
        if self._item is None:
            msg = "fake_llm.intercept() needs the test item (use the fake_llm fixture)"
            raise RuntimeError(msg)
        return _start_interception(
            self._item,
            self._state,
            targets,
            script=script,
            cassette=cassette,
            record=record,
            match=match,
            scrub=scrub,
            allow_unused=allow_unused,
            strict=self._state.settings.strict,
        )

    @property
    def interceptions(self) -> list[Interception]:
        """Every interception active in this test (the marker's first)."""
        return list(self._state.interceptions)

    # ---- end intercept and cassettes ----

    def _settings(self, script: Any, settings: dict[str, Any]) -> dict[str, Any]:
        if "script" in settings:
            if script is not None:
                msg = "fake_llm() got the script twice (positionally and as script=)"
                raise TypeError(msg)
            script = settings.pop("script")
        if script is None:
            from fakellm._script import Script

            script = self._state.settings.script or Script()
        settings.setdefault("allow_unused", self._state.settings.allow_unused)
        return {"script": script, **settings}


@pytest.fixture
def fake_llm(request: pytest.FixtureRequest, _fakellm: _TestState) -> FakeLLMFactory:
    """A factory of scripted fake models, strict at teardown. See :class:`FakeLLMFactory`."""
    return FakeLLMFactory(_fakellm, request.node)


@pytest.fixture
def llm_recorder(_fakellm: _TestState) -> Recorder:
    """A fresh :class:`~fakellm.Recorder`; a failing test's report shows its timeline."""
    from fakellm._recorder import Recorder

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

    Yields the :class:`~fakellm._scenario.VirtualTime` scope (``.elapsed``, ``.now()``).
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
    with _virtual_time_of(request.node, _fakellm.settings) as scope:
        yield scope


# --------------------------------------------------------------------- reports and traces
# The options of issue #15, kept in one block: `--fakellm-report=DIR` writes an
# HTML timeline for each failing test that recorded events, and
# `--fakellm-update-traces` lets `assert_trace` (re)write its golden files.
# Hooks here use `specname` so they sit beside the plugin's own hooks of the
# same name without touching them (pytest only looks at names starting "pytest_").


@pytest.hookimpl(specname="pytest_addoption")
def pytest_addoption_fakellm_report(parser: pytest.Parser) -> None:
    """``--fakellm-report=DIR`` and ``--fakellm-update-traces``."""
    group = parser.getgroup("fakellm", "fakellm: offline fake LLMs")
    group.addoption(
        "--fakellm-report",
        dest="fakellm_report",
        metavar="DIR",
        default=None,
        help="write an HTML timeline of each failing test's llm_recorder events into DIR",
    )
    group.addoption(
        "--fakellm-update-traces",
        dest="fakellm_update_traces",
        action="store_true",
        default=False,
        help="let fakellm.assertions.assert_trace write its golden files instead of "
        "comparing against them",
    )


@pytest.hookimpl(specname="pytest_configure")
def pytest_configure_fakellm_report(config: pytest.Config) -> None:
    """Turn on golden-file writing for ``--fakellm-update-traces``."""
    from fakellm import assertions

    if config.getoption("fakellm_update_traces", False):
        assertions.update_traces(True)


@pytest.hookimpl(specname="pytest_unconfigure")
def pytest_unconfigure_fakellm_report(config: pytest.Config) -> None:
    """Turn it off again (pytester runs many sessions in one process)."""
    from fakellm import assertions

    if config.getoption("fakellm_update_traces", False):
        assertions.update_traces(False)


def pytest_exception_interact(
    node: pytest.Item | pytest.Collector,
    call: pytest.CallInfo[Any],
    report: pytest.TestReport | pytest.CollectReport,
) -> None:
    """Write the failing test's HTML timeline (``--fakellm-report``), and drop
    the plugin's timeline section when a fakellm assertion's message holds it."""
    from fakellm.assertions import FakeLLMAssertionError

    state = node.stash.get(_state_key, None) if isinstance(node, pytest.Item) else None
    if state is None or not isinstance(report, pytest.TestReport):
        return
    if call.excinfo is not None and isinstance(call.excinfo.value, FakeLLMAssertionError):
        report.sections = [s for s in report.sections if s[0] != "fakellm timeline"]
    folder = node.config.getoption("fakellm_report", None)
    logs = [r.events for r in state.recorders if len(r)]
    if not folder or not logs:
        return
    base = Path(folder)
    base.mkdir(parents=True, exist_ok=True)
    stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in node.nodeid)[:150]
    written = []
    for i, log in enumerate(logs):
        path = base / (f"{stem}.html" if len(logs) == 1 else f"{stem}-{i + 1}.html")
        log.to_html(path, title=node.nodeid)
        written.append(str(path))
    report.sections.append(("fakellm report", "\n".join(written)))


# --------------------------------------------------------------------- fuzzing agents
# The fixture of issue #20, kept in one block: `fakellm_fuzz` is a
# fakellm.fuzz.Fuzzer configured by the test's `@pytest.mark.fakellm_fuzz(...)`.
# fakellm.fuzz (and LangChain with it) is imported when a test asks for it.

_FUZZ_MARKER_DOC = (
    "fakellm_fuzz(max_examples=100, derandomize=False, **decisions): settings of the "
    "fakellm_fuzz fixture: Hypothesis' example count, and fakellm.fuzz.decisions() "
    "arguments (max_steps, text, parallel, errors, ...)"
)
_FIXTURES = _FIXTURES | {"fakellm_fuzz"}


@pytest.hookimpl(specname="pytest_configure")
def pytest_configure_fakellm_fuzz(config: pytest.Config) -> None:
    """Register ``@pytest.mark.fakellm_fuzz``."""
    config.addinivalue_line("markers", _FUZZ_MARKER_DOC)


@pytest.fixture
def fakellm_fuzz(request: pytest.FixtureRequest, _fakellm: _TestState) -> Fuzzer:
    """A :class:`fakellm.fuzz.Fuzzer` for this test, set by its ``fakellm_fuzz`` marker:
    ``fakellm_fuzz.check(lambda: agent.invoke(...), fuzz.terminates(within=6))``."""
    import inspect as _inspect

    from fakellm import fuzz

    marker = request.node.get_closest_marker("fakellm_fuzz")
    options: dict[str, Any] = {}
    if marker is not None:
        where = f"@pytest.mark.fakellm_fuzz on {request.node.nodeid}"
        if marker.args:
            _misuse(f"{where}: takes keyword arguments only, got {marker.args!r}")
        accepted = [
            *fuzz.Fuzzer._SETTINGS,
            *(p for p in _inspect.signature(fuzz.decisions).parameters),
        ]
        unknown = sorted(set(marker.kwargs) - set(accepted))
        if unknown:
            _misuse(
                f"{where}: unknown argument{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; accepted: {', '.join(accepted)}"
            )
        options = dict(marker.kwargs)
    return fuzz.Fuzzer(name=request.node.name, **options)
