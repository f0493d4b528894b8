"""The virtual clock, the sleep seam, and the one freezegun mirror every thread reads.

A :class:`VirtualClock` is a plain integer count of microseconds that only
moves when told to. The fake models spend sync delays through :func:`sleep`
(async ones through :func:`asleep`, on the running loop's clock).

While any virtual-time scope is active (a :class:`~fakellm._loop.VirtualTimeLoop`
that freezes, ``virtual_time()``, ``run_scenario``), one process-wide
:class:`_Mirror` keeps freezegun started and answers every reader from the
clock of the *calling thread's* scope:

* ``time.time``, ``time.monotonic``, ``time.perf_counter`` (and their ``_ns``
  forms), ``datetime.now``, ``date.today`` read ``start + elapsed``;
* ``time.sleep`` advances the clock instead of sleeping;
* a thread with no scope of its own (an executor or anyio worker, a thread
  the test started) reads the scope whose context it inherited, else the most
  recently entered scope.

Code in :data:`REAL_TIME_MODULES` (the standard library's thread, queue,
selector and event-loop machinery, pytest, Hypothesis) keeps reading real time
when it calls a clock itself, so their real timeouts and measurements still
work. freezegun's scan of every loaded module happens once, at the first
scope; between scopes its freeze is parked (see :class:`_Mirror`): outside a
scope every module holds the real functions again, and the next scope costs a
few assignments. :func:`stop_virtual_time` undoes it all.

Prior art: trio's ``MockClock(autojump_threshold=0)``, the ``looptime`` pytest
plugin, ``aiotools.VirtualClock``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import inspect
import math
import operator
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING, Any, Final

# freezegun is imported with this module, not at the first scope: a module
# imported while a freeze is active (pytester's in-process runs re-import what
# they imported) would define its classes on freezegun's fakes.
import freezegun

from fakellm import _compat
from fakellm.errors import TimeBudgetExceeded

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_START",
    "MIRROR",
    "REAL_TIME_MODULES",
    "VirtualClock",
    "asleep",
    "clock_scope",
    "current_clock",
    "current_sync_clock",
    "hold_mirror",
    "parse_budget",
    "parse_flag",
    "parse_start",
    "seconds_to_ticks",
    "sleep",
    "stop_virtual_time",
]

#: The instant every virtual clock starts at unless told otherwise: a naive
#: datetime read as UTC, which is what freezegun freezes naive datetimes as.
DEFAULT_START: Final = datetime(2024, 1, 1, 0, 0, 0)

#: Virtual seconds a scope may use before :class:`~fakellm.errors.TimeBudgetExceeded`
#: ends it (one day): long enough for any scripted latency and retry backoff,
#: short enough that a livelock (a heartbeat beside a wait that never ends)
#: fails in milliseconds of wall time.
DEFAULT_BUDGET: Final = 86_400.0

#: Modules whose *own* clock calls read real time under virtual time: their
#: timeouts and measurements are about the real machine (a ``Queue.get``
#: timeout, a stock event loop, pytest's durations, Hypothesis deadlines).
#: Only the direct caller counts, so app code run by them is still virtual.
REAL_TIME_MODULES: Final = (
    "_pytest",
    "asyncio",
    "concurrent.futures",
    "fakellm._clock",
    "fakellm._compat",
    "hypothesis",
    "multiprocessing",
    "pluggy",
    "queue",
    "selectors",
    "subprocess",
    "threading",
)

# Deadlines and the clock are kept in whole microseconds: rounding removes float
# noise (0.1 + 0.2 and 0.15 + 0.15 land on the same tick), integers make equal
# deadlines compare equal at any magnitude, and timedelta (hence freezegun) is
# exact at 1 µs.
US: Final = 1_000_000

_real_sleep: Final = time.sleep
_real_new_event_loop: Final = asyncio.events.new_event_loop

# A replaceable sync sleeper: tests of the models set it to record the delays
# they spend. The default means "whatever clock the caller is on".
_sync_sleeper: contextvars.ContextVar[Callable[[float], None]] = contextvars.ContextVar(
    "fakellm_sync_sleeper", default=_real_sleep
)

# The clock whose context a task or thread inherited: anyio workers and
# LangChain's executor hop copy contextvars, so they find their scope here.
_context_clock: contextvars.ContextVar[VirtualClock | None] = contextvars.ContextVar(
    "fakellm_context_clock", default=None
)


def sleep(seconds: float) -> None:
    """Spend ``seconds`` of a sync call's scripted delay on the caller's clock.

    Inside any virtual-time scope (this thread's, or the one it inherited) it
    advances that clock; on the thread of a running virtual-time loop that
    blocks the loop, as a real sync delay would, so the loop's clock moves on
    by ``seconds``. Anywhere else it really sleeps.
    """
    if seconds > 0:
        sleeper = _sync_sleeper.get()
        if sleeper is not _real_sleep:
            sleeper(seconds)
            return
        clock = current_clock()
        if clock is not None:
            clock.advance(seconds)
        else:
            _real_sleep(seconds)


async def asleep(seconds: float) -> None:
    """Spend ``seconds`` of an async call's scripted delay on the running loop."""
    if seconds > 0:
        await asyncio.sleep(seconds)


def current_clock() -> VirtualClock | None:
    """The virtual clock the calling thread reads, or None outside virtual time."""
    return _MIRROR.current()


def current_sync_clock() -> VirtualClock | None:
    """The clock a sync reader outside a running loop should use (the Recorder's question)."""
    return _MIRROR.current()


# --------------------------------------------------------------------------- clock


def parse_start(start: datetime | str | None, *, name: str = "start") -> datetime:
    """Normalise a start instant to a naive UTC datetime, as freezegun keeps it."""
    if start is None:
        return DEFAULT_START
    if isinstance(start, str):
        try:
            start = datetime.fromisoformat(start)
        except ValueError:
            msg = (
                f"{name}={start!r}: expected an ISO-8601 datetime string such as "
                f"'2024-01-01T00:00:00' (naive means UTC), a datetime, or None"
            )
            raise ValueError(msg) from None
    if not isinstance(start, datetime):
        msg = (
            f"{name}={start!r}: expected a datetime, an ISO-8601 string or None, "
            f"got {type(start).__name__}"
        )
        raise TypeError(msg)
    if start.tzinfo is not None:
        start = start.astimezone(UTC).replace(tzinfo=None)
    return start


def seconds_to_ticks(seconds: float, *, name: str, allow_inf: bool = False) -> int | float:
    """``seconds`` as whole microseconds; ``math.inf`` stays infinite if allowed."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        msg = f"{name}={seconds!r}: expected a number of seconds (int or float)"
        raise TypeError(msg)
    if math.isnan(seconds) or (math.isinf(seconds) and not (allow_inf and seconds > 0)):
        msg = f"{name}={seconds!r}: expected a finite number of seconds"
        raise ValueError(msg)
    if math.isinf(seconds):
        return math.inf
    return round(seconds * US)


def parse_budget(budget: float | None) -> float | None:
    """Check a virtual-time budget: positive seconds, or None for no budget."""
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not 0 < budget < math.inf:
        msg = f"budget={budget!r}: expected a positive, finite number of virtual seconds, or None"
        raise ValueError(msg) if isinstance(budget, int | float) else TypeError(msg)
    return float(budget)


def parse_flag(name: str, value: object) -> bool:
    """Check a True/False option."""
    if not isinstance(value, bool):
        msg = f"{name}={value!r}: expected True or False"
        raise TypeError(msg)
    return value


_MAX_TICKS_FROM = datetime.max


class VirtualClock:
    """A thread-safe clock that only moves when told to, in whole microseconds.

    It is the one time source behind the virtual-time loop, ``virtual_time()``
    and ``run_scenario()``. Sync sleeps from several threads advance it under
    a lock; the loop moves it to its next timer.

    Args:
        start: the wall-clock instant that elapsed time 0 stands for; a naive
            datetime is read as UTC, an aware one is converted to naive UTC.
            Defaults to :data:`DEFAULT_START` (2024-01-01T00:00:00).
        budget: virtual seconds the clock may move before it refuses with
            :class:`~fakellm.errors.TimeBudgetExceeded` (None: only the last
            instant a datetime can hold, 9999-12-31, limits it).
        real_perf_counter: ``time.perf_counter`` (and ``perf_counter_ns``)
            read real time for readers on this clock, for code that must
            measure wall time; everything else stays virtual.
    """

    __slots__ = ("_budget", "_limit", "_lock", "_real_perf_counter", "_start", "_ticks")

    def __init__(
        self,
        start: datetime | str | None = None,
        *,
        budget: float | None = DEFAULT_BUDGET,
        real_perf_counter: bool = False,
    ) -> None:
        self._start = parse_start(start)
        self._budget = parse_budget(budget)
        self._real_perf_counter = parse_flag("real_perf_counter", real_perf_counter)
        self._ticks = 0
        self._lock = threading.Lock()
        representable = (_MAX_TICKS_FROM - self._start) // timedelta(microseconds=1)
        self._limit = (
            representable if self._budget is None else min(representable, round(self._budget * US))
        )

    @property
    def start(self) -> datetime:
        """The instant elapsed time 0 stands for (naive, UTC)."""
        return self._start

    @property
    def real_perf_counter(self) -> bool:
        """Whether ``time.perf_counter`` reads real time on this clock."""
        return self._real_perf_counter

    @property
    def budget(self) -> float | None:
        """Virtual seconds this clock may move in all (None: no budget)."""
        return self._budget

    @property
    def limit_ticks(self) -> int:
        """The tick past which the clock refuses to move (budget or datetime.max)."""
        return self._limit

    @property
    def ticks(self) -> int:
        """Elapsed virtual time in whole microseconds."""
        return self._ticks

    @property
    def elapsed(self) -> float:
        """Elapsed virtual time in seconds."""
        return self._ticks / US

    def now(self) -> datetime:
        """The current virtual instant: ``start + elapsed`` (naive, UTC)."""
        return self._start + timedelta(microseconds=self._ticks)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (rounded to 1 µs).

        Raises:
            TypeError: ``seconds`` is not a number.
            ValueError: ``seconds`` is negative, NaN or infinite (time can't go
                backwards).
            TimeBudgetExceeded: the move would pass the clock's budget.
        """
        ticks = seconds_to_ticks(seconds, name="seconds")
        if ticks < 0:
            msg = f"seconds={seconds!r}: time can't go backwards; expected >= 0"
            raise ValueError(msg)
        with self._lock:
            target = self._ticks + int(ticks)
            if target > self._limit:
                raise TimeBudgetExceeded(
                    self.over_budget_message(target, f"a sleep of {seconds!r} s would end")
                )
            self._ticks = target

    def move_to_tick(self, ticks: int) -> None:
        """Move to the absolute tick ``ticks`` unless already past it (for event loops).

        The caller checks :attr:`limit_ticks` first, so it can say more about
        why the limit was reached than the clock can.
        """
        with self._lock:
            if ticks > self._ticks:
                self._ticks = ticks

    def over_budget_message(self, target: int, what: str) -> str:
        """The head of the error for a move to ``target`` that the limit refuses."""
        at = f"virtual time {self.elapsed:g} s: {what} at {target / US:g} s"
        if self._budget is not None and target > round(self._budget * US):
            return (
                f"{at}, past this scope's budget of {self._budget:g} virtual seconds. "
                "If the wait is meant to be that long, raise the budget (budget=... on "
                "virtual_time(), run_scenario() or the loop factory, or the "
                "fakellm_virtual_time_budget ini option; None for none)."
            )
        return f"{at}, past the last instant a datetime can hold (9999-12-31)."

    def __repr__(self) -> str:
        return f"VirtualClock(start={self._start.isoformat()!r}, elapsed={self.elapsed})"


# ---------------------------------------------------------------- freezegun mirror


class _VirtualNow:
    """freezegun's time factory: the calling thread's virtual instant.

    Readers with no scope get real time before they reach it (see
    :meth:`_Mirror.real_here`); the fallback covers a scope that another
    thread closed in between.
    """

    def __call__(self) -> datetime:
        clock = _MIRROR.current(frozen_only=True)
        if clock is not None:
            return clock.now()
        return _compat.FREEZEGUN_REAL_DATETIME.now(UTC).replace(tzinfo=None)


def _virtual_time_sleep(seconds: float) -> None:
    """``time.sleep`` while the mirror is up: virtual for app code in a scope."""
    if seconds < 0:
        raise ValueError("sleep length must be non-negative")
    caller = inspect.currentframe()
    module = caller.f_back.f_globals.get("__name__", "") if caller and caller.f_back else ""
    clock = None if str(module).startswith(REAL_TIME_MODULES) else _MIRROR.current()
    if clock is None:
        _real_sleep(seconds)
    elif seconds:
        clock.advance(seconds)


def _virtual_new_event_loop() -> Any:
    """A stock loop started inside a sync scope would read frozen time and hang;
    give it a virtual-time loop on the scope's clock instead."""
    clock = _MIRROR.sync_scope_clock()
    if clock is None:
        return _real_new_event_loop()
    from fakellm._loop import VirtualTimeLoop  # the loop module imports this one

    return VirtualTimeLoop(clock=clock, freeze=True)


class _Mirror:
    """freezegun, shared by every virtual-time scope in the process, scanned once.

    Never ``tick``, ``auto_tick_seconds`` or ``real_asyncio``: the virtual
    clocks are the only clocks, freezegun just reads them through
    :class:`_VirtualNow`. Scopes register per thread; readers find theirs.

    The first scope starts freezegun's freeze and scans every loaded module
    once for ``from time import time``-style bindings, keeping the list. After
    the last scope the freeze is *parked*, not stopped: it leaves freezegun's
    stacks, and the ``time``/``datetime``/``uuid`` attributes, pickling hooks
    and every binding on the list are the real ones again. The next scope
    un-parks it by setting the list again, with no scan; only modules imported
    since make it scan again. :func:`stop_virtual_time` (the plugin at session
    end, ``atexit`` otherwise) ends freezegun's freeze too.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._holds = 0
        self._up = False
        self._api: Any = None
        self._bindings: tuple[tuple[dict[str, Any], str, object, object], ...] = ()
        self._scanned: _SignatureT = (-1, ())
        self._factory = _VirtualNow()
        self._saved: dict[str, Any] = {}
        self._atexit = False
        # Whether this mirror's start made the patches in place (not someone else's
        # freeze underneath), and whether its park left them in under someone's
        # freeze started inside a scope (see _end_nested_last).
        self._made_patches = False
        self._left_in = False
        # thread id -> its scopes, innermost last: (clock, sync, frozen)
        self._by_thread: dict[int, list[tuple[VirtualClock, bool, bool]]] = {}
        # Scopes in the order entered: frozen ones (the default for threads with
        # no scope of their own), and all live ones. Replaced, never mutated,
        # so readers in other threads need no lock.
        self._entered: list[VirtualClock] = []
        #: Every live scope's clock, in the order entered (empty outside them).
        self.live: list[VirtualClock] = []
        # id(clock) -> the threads alive when its frozen scope was entered
        # Thread objects, not idents: a thread started later may get the ident
        # of one that has ended since.
        self._threads_before: dict[int, frozenset[threading.Thread]] = {}

    @property
    def started(self) -> bool:
        """True while fakellm's freeze is in freezegun's stacks (not parked)."""
        return self._up

    @property
    def lingering(self) -> bool:
        """True while freezegun's scan of loaded modules is in place (parked or not)."""
        return self._api is not None

    def current(self, *, frozen_only: bool = False) -> VirtualClock | None:
        stack = self._by_thread.get(threading.get_ident())
        if stack:
            for clock, _sync, frozen in reversed(stack):
                if frozen or not frozen_only:
                    return clock
        inherited = _context_clock.get()
        entered = self._entered
        if inherited is not None and inherited in (entered if frozen_only else self.live):
            return inherited
        # A thread the most recent scope started joins it; threads that were
        # there before every scope (pytest-xdist's, a library's poller) stay real.
        if entered:
            me = threading.current_thread()
            for clock in reversed(entered):
                if me not in self._threads_before.get(id(clock), ()):
                    return clock
        return None

    def real_here(self, frame: Any, reader: str) -> bool:
        """freezegun's question for fakellm's freeze: real time for this reader?

        Real when the calling thread has no frozen scope, when the reader's
        caller (``frame``; None for datetime methods) is a real-time module,
        or for ``perf_counter`` on a clock with ``real_perf_counter``.
        """
        if frame is not None and str(frame.f_globals.get("__name__", "")).startswith(
            REAL_TIME_MODULES
        ):
            return True
        clock = self.current(frozen_only=True)
        if clock is None:
            return True
        return clock.real_perf_counter and reader.startswith("perf_counter")

    def innermost(self, clock: VirtualClock, *, sync: bool, freeze: bool) -> bool:
        """True if ``clock`` is already the calling thread's innermost scope, alike."""
        stack = self._by_thread.get(threading.get_ident())
        return bool(stack) and stack[-1] == (clock, sync, freeze)  # type: ignore[index]

    def sync_scope_clock(self) -> VirtualClock | None:
        stack = self._by_thread.get(threading.get_ident())
        if stack and stack[-1][1]:
            return stack[-1][0]
        return None

    def hold(self) -> None:
        with self._lock:
            if self._holds == 0:
                self._start()
            self._holds += 1

    def release(self) -> None:
        with self._lock:
            self._holds -= 1
            if self._holds == 0:
                self._park()
                self._left_in = self._made_patches and _compat.freezegun_active()

    def enter(self, clock: VirtualClock, *, sync: bool, freeze: bool) -> None:
        """Make ``clock`` the calling thread's clock (and, frozen, the default for others)."""
        with self._lock:
            if freeze:
                self.hold()
                self._threads_before[id(clock)] = frozenset(threading.enumerate())
                self._entered = [*self._entered, clock]
            self.live = [*self.live, clock]
            self._by_thread.setdefault(threading.get_ident(), []).append((clock, sync, freeze))

    def exit(self, clock: VirtualClock) -> None:
        with self._lock:
            ident = threading.get_ident()
            stack = self._by_thread.get(ident, [])
            frozen = False
            for i in range(len(stack) - 1, -1, -1):
                if stack[i][0] is clock:
                    frozen = stack[i][2]
                    del stack[i]
                    break
            if not stack:
                self._by_thread.pop(ident, None)
            self.live = _without(self.live, clock)
            if frozen:
                self._entered = _without(self._entered, clock)
                if clock not in self._entered:
                    self._threads_before.pop(id(clock), None)
                self.release()

    def _start(self) -> None:
        _compat.freezegun_mend_unnested_stops(self._end_nested_last)
        depth = _compat.freezegun_depth()
        ours = self._left_in or not _compat.freezegun_modules_patched()
        try:
            self._start_mirror()
        except BaseException:
            self._unwind_start(depth)
            raise
        self._made_patches = ours

    def _end_nested_last(self) -> bool:
        """Someone's ``freeze_time`` started inside a scope ends after it, as the last freeze.

        It started on top of this mirror's freeze, so freezegun patched nothing
        for it and cannot put anything back; the patches and bindings still in
        are this mirror's: park them as if the scope had ended last.
        """
        with self._lock:
            if self._up or self._api is None or not self._left_in:
                return False  # not this mirror's patches: freezegun's own stop
            self._left_in = False
            _compat.freezegun_truncate(0)
            if _modules_unchanged(self._scanned):
                _compat.freezegun_patch_modules(fake=False)
                _compat.freezegun_set_bindings(self._bindings, fake=False)
            else:
                self._unscan()  # modules imported since bound the fakes too
            return True

    def _unwind_start(self, depth: int) -> None:
        """Undo a start that failed part-way: whatever step it failed at, nothing
        of it is left (freezegun's stacks as they were, and with no other freeze,
        the modules, pickling and every binding real again)."""
        self._up = False
        if time.sleep is _virtual_time_sleep:
            time.sleep = self._saved.get("sleep", _real_sleep)
        if asyncio.events.new_event_loop is _virtual_new_event_loop:
            asyncio.events.new_event_loop = self._saved.get("new_event_loop", _real_new_event_loop)
        _compat.freezegun_truncate(depth)
        if not _compat.freezegun_active():
            _compat.freezegun_patch_modules(fake=False)
            # A scan that failed part-way returned no list of what it bound.
            _compat.freezegun_unbind_everywhere()

    def _start_mirror(self) -> None:
        _compat.freezegun_route_real_time(self._factory, self.real_here)
        if _compat.freezegun_active():
            # Someone else's freeze is running (and has patched the modules):
            # answer on top of it until the last scope ends.
            _compat.freezegun_push(self._factory, REAL_TIME_MODULES)
        elif self._api is not None and _modules_unchanged(self._scanned):
            _compat.freezegun_patch_modules(fake=True)
            _compat.freezegun_set_bindings(self._bindings, fake=True)
            _compat.freezegun_push(self._factory, REAL_TIME_MODULES)
        else:
            self._unscan()  # modules were imported since the last scan
            # ignore="" (every module): freezegun patches only the time,
            # datetime and uuid modules; the modules' own bindings are fakellm's
            # scan, which imports nothing (see freezegun_bind_fakes).
            api = freezegun.freeze_time(DEFAULT_START, ignore=[""])
            api.start()
            _compat.freezegun_replace_factory(self._factory)
            self._bindings = _compat.freezegun_bind_fakes(REAL_TIME_MODULES)
            self._api, self._scanned = api, _modules_signature()
            if not self._atexit:
                self._atexit = True
                atexit.register(stop_virtual_time)
        self._saved = {"sleep": time.sleep, "new_event_loop": asyncio.events.new_event_loop}
        time.sleep = _virtual_time_sleep  # type: ignore[assignment]
        asyncio.events.new_event_loop = _virtual_new_event_loop
        self._up = True

    def _park(self) -> None:
        if not self._up:
            return
        self._up = False
        time.sleep = self._saved["sleep"]
        asyncio.events.new_event_loop = self._saved["new_event_loop"]
        if _compat.freezegun_remove(self._factory):
            if not _modules_unchanged(self._scanned):
                # Modules imported inside the scope bound freezegun's fakes:
                # put them back now; the next scope scans again anyway.
                self._unscan()
            else:
                _compat.freezegun_patch_modules(fake=False)
                # The bindings the scan made go back too: a module holding
                # freezegun's class while ``datetime.datetime`` is real fails
                # identity checks (pydantic cannot build a datetime field).
                _compat.freezegun_set_bindings(self._bindings, fake=False)

    def _unscan(self) -> None:
        api, self._api = self._api, None
        _compat.freezegun_set_bindings(self._bindings, fake=False)
        self._bindings, self._scanned = (), (-1, ())
        if api is not None:
            # freezegun's stop() expects its freeze innermost and the modules patched.
            _compat.freezegun_patch_modules(fake=True)
            _compat.freezegun_push(self._factory, REAL_TIME_MODULES)
            _compat.freezegun_stop_without_imports(api)

    def stop(self) -> bool:
        with self._lock:
            if self._holds or _compat.freezegun_active():
                return False
            self._unscan()
            return True


_SignatureT = tuple[int, tuple[object, ...]]
# How many of the last modules the signature holds.
_TAIL: Final = 4


def _modules_signature() -> _SignatureT:
    """What shows a module was imported since: how many there are, and the last few.

    A new module goes last in ``sys.modules``. The module objects themselves
    are kept, not their ids: one deleted inside a scope then stays alive, so a
    module imported after it cannot take its id. The last few, not only the
    last: deleting two and putting the last back after an import is seen too.
    On the hot path of every scope (about 0.3 µs).
    """
    modules = sys.modules
    return len(modules), tuple(islice(reversed(modules.values()), _TAIL))


def _modules_unchanged(then: _SignatureT) -> bool:
    """Whether ``sys.modules`` still has the length and the last modules of ``then``."""
    modules = sys.modules
    count, tail = then
    return len(modules) == count and all(
        map(operator.is_, tail, islice(reversed(modules.values()), _TAIL))
    )


def _without(clocks: list[VirtualClock], clock: VirtualClock) -> list[VirtualClock]:
    """``clocks`` without the last occurrence of ``clock`` (a new list)."""
    out = list(clocks)
    for i in range(len(out) - 1, -1, -1):
        if out[i] is clock:
            del out[i]
            break
    return out


_MIRROR: Final = _Mirror()
#: The one mirror; its ``live`` list is empty outside every virtual-time scope
#: (the Recorder's cheap test before it asks for a clock).
MIRROR: Final = _MIRROR


def stop_virtual_time() -> bool:
    """Undo everything fakellm did to freezegun and the clock functions, now.

    After its first virtual-time scope fakellm leaves freezegun's patching of
    loaded modules in place (every reader outside a scope answers exactly like
    the real function), so later scopes cost a few assignments instead of a
    scan of every module. The pytest plugin calls this at the end of the
    session and ``atexit`` otherwise; call it yourself if something needs the
    modules exactly as imported before then. The next scope scans again.

    Returns:
        True if nothing of fakellm's freeze is left; False if a scope is still
        active, or another freeze (someone's ``freeze_time``) is running, and
        it was left alone.
    """
    return _MIRROR.stop()


def hold_mirror() -> contextlib.AbstractContextManager[None]:
    """Keep freezegun started across many scopes (the plugin holds it per test)."""
    return _Held()


# The two context managers below are classes, not @contextmanager generators:
# every run_scenario enters five of them (its own scope, then one hold and
# three scopes for asyncio.Runner's three runs of the loop), and a generator
# costs about twice as much to enter and leave.


class _Held:
    __slots__ = ()

    def __enter__(self) -> None:
        _MIRROR.hold()

    def __exit__(self, *exc_info: object) -> None:
        _MIRROR.release()


class _ClockScope:
    __slots__ = ("_clock", "_freeze", "_sync", "_token")

    def __init__(self, clock: VirtualClock, sync: bool, freeze: bool) -> None:
        self._clock = clock
        self._sync = sync
        self._freeze = freeze
        self._token: contextvars.Token[VirtualClock | None] | None = None

    def __enter__(self) -> None:
        if self._token is not None:
            # Entered again inside itself, the inner exit would end the scope
            # the outer one still runs in (a generator refused this too).
            raise RuntimeError("a clock scope cannot be entered again while it is open")
        clock, sync, freeze = self._clock, self._sync, self._freeze
        if _MIRROR.innermost(clock, sync=sync, freeze=freeze) and _context_clock.get() is clock:
            # Already this thread's scope (a loop's run inside run_scenario's own
            # scope, asyncio.Runner's three runs): nothing to change.
            return
        token = _context_clock.set(clock)
        try:
            _MIRROR.enter(clock, sync=sync, freeze=freeze)
        except BaseException:
            _context_clock.reset(token)
            raise
        self._token = token

    def __exit__(self, *exc_info: object) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                _MIRROR.exit(self._clock)
            finally:
                _context_clock.reset(token)


def clock_scope(
    clock: VirtualClock, *, sync: bool, freeze: bool = True
) -> contextlib.AbstractContextManager[None]:
    """Make ``clock`` the calling thread's (and its context's) clock for the block.

    Args:
        clock: the clock readers in this thread (and threads inheriting its
            context, or with no scope of their own) read.
        sync: the scope is sync code (``virtual_time()``), so a stock event
            loop started in it gets a virtual-time loop on this clock.
        freeze: mirror into freezegun; without it only :func:`sleep` and the
            loop see the clock.
    """
    return _ClockScope(clock, sync, freeze)


if TYPE_CHECKING:
    from fakellm._loop import VIRTUAL_TIME_LOOP as VIRTUAL_TIME_LOOP
    from fakellm._loop import VirtualTimeLoop as VirtualTimeLoop
    from fakellm._loop import virtual_loop_factory as virtual_loop_factory
    from fakellm._scenario import ScenarioResult as ScenarioResult
    from fakellm._scenario import VirtualTime as VirtualTime
    from fakellm._scenario import run_scenario as run_scenario
    from fakellm._scenario import virtual_time as virtual_time
    from fakellm.errors import LeakedTasks as LeakedTasks
    from fakellm.fixtures import asyncio_loop_factories as asyncio_loop_factories

# Names that moved to _loop and _scenario when this module was split by
# concern; code written against the old layout still finds them here.
_MOVED: Final = {
    "VIRTUAL_TIME_LOOP": "fakellm._loop",
    "VirtualTimeLoop": "fakellm._loop",
    "virtual_loop_factory": "fakellm._loop",
    "LeakedTasks": "fakellm.errors",
    "ScenarioResult": "fakellm._scenario",
    "VirtualTime": "fakellm._scenario",
    "run_scenario": "fakellm._scenario",
    "virtual_time": "fakellm._scenario",
    "asyncio_loop_factories": "fakellm.fixtures",
}


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    import importlib

    return getattr(importlib.import_module(module), name)
