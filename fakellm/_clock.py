"""Where the fake models spend their scripted delays, and the virtual clock.

Async delays are ``await asyncio.sleep(seconds)`` on the running loop, so they
follow whatever clock that loop keeps. Sync delays go through :func:`sleep`,
the one seam that virtual time replaces: outside the harness it sleeps for
real, inside it advances the virtual clock without sleeping.

Virtual time has three entry points, all built on :class:`VirtualClock`:

* :class:`VirtualTimeLoop`, an asyncio event loop whose clock jumps straight
  to the next timer, so ten minutes of scripted latency run in milliseconds
  and always in the same order;
* :func:`virtual_time`, a context manager and decorator for sync code (and a
  decorator that runs an ``async def`` on a fresh :class:`VirtualTimeLoop`);
* :func:`run_scenario`, which runs coroutines concurrently on a fresh loop and
  returns their results with the elapsed virtual time.

Each of them also freezes :mod:`freezegun` at the start instant and moves it
on every jump, so ``datetime.now()``, ``date.today()`` and ``time.time()`` read
``start + elapsed`` exactly. freezegun also patches ``time.monotonic`` and
``time.perf_counter``; nothing here reads them: the virtual clock is a plain
integer count of microseconds, and real waits are left to the OS selector.

Prior art: trio's ``MockClock(autojump_threshold=0)``, the ``looptime`` pytest
plugin, ``aiotools.VirtualClock``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import heapq
import inspect
import linecache
import math
import os
import selectors
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType, TracebackType
from typing import Any, Final, ParamSpec, TypeVar, TypeVarTuple, overload

import freezegun

from fakellm import _events
from fakellm.errors import DeadlockError, LeakedTasks

__all__ = [
    "DEFAULT_START",
    "VIRTUAL_TIME_LOOP",
    "LeakedTasks",
    "ScenarioResult",
    "VirtualClock",
    "VirtualTime",
    "VirtualTimeLoop",
    "asleep",
    "asyncio_loop_factories",
    "run_scenario",
    "sleep",
    "virtual_loop_factory",
    "virtual_time",
]

P = ParamSpec("P")
R = TypeVar("R")
Ts = TypeVarTuple("Ts")

#: The instant every virtual clock starts at unless told otherwise: a naive
#: datetime read as UTC, which is what freezegun freezes naive datetimes as.
DEFAULT_START: Final = datetime(2024, 1, 1, 0, 0, 0)

#: The name that selects :class:`VirtualTimeLoop` in
#: ``@pytest.mark.asyncio(loop_factories=[VIRTUAL_TIME_LOOP])``.
VIRTUAL_TIME_LOOP: Final = "virtual_time"

# Deadlines and the clock are kept in whole microseconds: rounding removes float
# noise (0.1 + 0.2 and 0.15 + 0.15 land on the same tick), integers make equal
# deadlines compare equal, and timedelta (hence freezegun) is exact at 1 µs.
_US: Final = 1_000_000

_real_sleep: Final = time.sleep

# The active sync-sleep function. A ContextVar rather than a global, so that a
# virtual-time scope in one thread or task does not leak into others.
_sync_sleeper: contextvars.ContextVar[Callable[[float], None]] = contextvars.ContextVar(
    "fakellm_sync_sleeper", default=time.sleep
)


def sleep(seconds: float) -> None:
    """Spend ``seconds`` of a sync call's scripted delay on the active clock.

    Inside :func:`virtual_time` or :func:`run_scenario` this advances the
    virtual clock. On the thread of a running :class:`VirtualTimeLoop` it does
    too: a sync delay there blocks the loop, just as a real one would, so the
    loop's clock moves on by ``seconds``. Anywhere else it really sleeps.
    """
    if seconds > 0:
        sleeper = _sync_sleeper.get()
        if sleeper is _real_sleep:
            loop = _running_virtual_loop()
            if loop is not None:
                sleeper = loop.clock.advance
        sleeper(seconds)


async def asleep(seconds: float) -> None:
    """Spend ``seconds`` of an async call's scripted delay on the running loop."""
    if seconds > 0:
        await asyncio.sleep(seconds)


def _running_virtual_loop() -> VirtualTimeLoop | None:
    loop = _running_loop_or_none()
    return loop if isinstance(loop, VirtualTimeLoop) else None


def current_sync_clock() -> VirtualClock | None:
    """The clock of the enclosing sync ``virtual_time()`` scope, or None.

    Such a scope installs its clock's ``advance`` as the sync sleeper; this is
    the one place that knows it, so readers (the Recorder) need not.
    """
    owner = getattr(_sync_sleeper.get(), "__self__", None)
    return owner if isinstance(owner, VirtualClock) else None


# --------------------------------------------------------------------------- clock


def _parse_start(start: datetime | str | None, *, name: str = "start") -> datetime:
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


def _seconds_to_ticks(seconds: float, *, name: str) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        msg = f"{name}={seconds!r}: expected a number of seconds (int or float)"
        raise TypeError(msg)
    if math.isnan(seconds) or math.isinf(seconds):
        msg = f"{name}={seconds!r}: expected a finite number of seconds"
        raise ValueError(msg)
    return round(seconds * _US)


class VirtualClock:
    """A thread-safe clock that only moves when told to, in whole microseconds.

    It is the one time source behind :class:`VirtualTimeLoop`,
    :func:`virtual_time` and :func:`run_scenario`. Sync sleeps from several
    threads advance it under a lock; the loop jumps it to its next timer.

    Args:
        start: the wall-clock instant that elapsed time 0 stands for; a naive
            datetime is read as UTC, an aware one is converted to naive UTC.
            Defaults to :data:`DEFAULT_START` (2024-01-01T00:00:00).
    """

    __slots__ = ("_lock", "_on_move", "_start", "_ticks")

    def __init__(self, start: datetime | str | None = None) -> None:
        self._start = _parse_start(start)
        self._ticks = 0
        self._lock = threading.Lock()
        # Called with the new instant after every move, under the lock, so
        # freezegun never sees the clock's moves out of order.
        self._on_move: Callable[[datetime], None] | None = None

    @property
    def start(self) -> datetime:
        """The instant elapsed time 0 stands for (naive, UTC)."""
        return self._start

    @property
    def ticks(self) -> int:
        """Elapsed virtual time in whole microseconds."""
        return self._ticks

    @property
    def elapsed(self) -> float:
        """Elapsed virtual time in seconds."""
        return self._ticks / _US

    def now(self) -> datetime:
        """The current virtual instant: ``start + elapsed`` (naive, UTC)."""
        return self._start + timedelta(microseconds=self._ticks)

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (rounded to 1 µs).

        Raises:
            TypeError: ``seconds`` is not a number.
            ValueError: ``seconds`` is negative, NaN or infinite (time can't go
                backwards).
        """
        ticks = _seconds_to_ticks(seconds, name="seconds")
        if ticks < 0:
            msg = f"seconds={seconds!r}: time can't go backwards; expected >= 0"
            raise ValueError(msg)
        with self._lock:
            self._move_to_locked(self._ticks + ticks)

    def _jump_to(self, ticks: int) -> None:
        """Move to ``ticks`` unless the clock is already past it (loop use)."""
        with self._lock:
            if ticks > self._ticks:
                self._move_to_locked(ticks)

    def _move_to_locked(self, ticks: int) -> None:
        self._ticks = ticks
        if self._on_move is not None:
            self._on_move(self.now())

    def __repr__(self) -> str:
        return f"VirtualClock(start={self._start.isoformat()!r}, elapsed={self.elapsed})"


# Only pytest's timer module: freezegun ignores a prefix anywhere in the few
# frames above a time call, so "_pytest" would unfreeze every test body too.
_REAL_TIME_FOR = ["_pytest.timing"]


class _Freezer:
    """One ``freeze_time(start)`` per scope, moved to ``start + elapsed`` on every jump.

    Never ``tick``, ``auto_tick_seconds`` or ``real_asyncio``: the virtual
    clock is the only clock, freezegun just mirrors it.
    """

    __slots__ = ("_api", "_clock")

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self._api: Any = None

    @property
    def active(self) -> bool:
        return self._api is not None

    def start(self) -> None:
        if self._api is not None:
            return
        # pytest's own timers (durations, junit times) read the real clock.
        api = freezegun.freeze_time(self._clock.now(), ignore=_REAL_TIME_FOR)
        factory = api.start()
        self._api = api
        self._clock._on_move = factory.move_to

    def stop(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            self._clock._on_move = None
            api.stop()


# ---------------------------------------------------------------------------- loop


class _VirtualTimerHandle(asyncio.TimerHandle):
    """A timer the loop keeps in a per-deadline FIFO bucket instead of the heap."""

    __slots__ = ("_vt_args", "_vt_callback", "_vt_context", "_vt_loop", "_vt_ticks")

    def __init__(
        self,
        ticks: int,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: VirtualTimeLoop,
        context: contextvars.Context,
    ) -> None:
        super().__init__(ticks / _US, callback, args, loop, context)
        self._vt_ticks = ticks
        self._vt_callback: Callable[..., object] | None = callback
        self._vt_args = args
        self._vt_context = context
        self._vt_loop = loop

    def cancel(self) -> None:
        if not self.cancelled():
            self._vt_loop._timer_dropped(self)
        super().cancel()


class _Bucket:
    """Every timer due at one tick, in the order they were scheduled."""

    __slots__ = ("base", "handles", "live")

    def __init__(self, base: asyncio.TimerHandle) -> None:
        self.base = base
        self.handles: deque[_VirtualTimerHandle] = deque()
        self.live = 0


class _VirtualSelector(selectors.DefaultSelector):
    """The loop's selector: polls real I/O, and asks the loop what to do when idle.

    asyncio hands the selector the time to wait until the next timer; that is
    the one moment the loop would sleep, so it is where virtual time jumps.
    """

    def __init__(self) -> None:
        super().__init__()
        self._loop_ref: Callable[[], VirtualTimeLoop | None] = lambda: None

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        loop = self._loop_ref()
        if loop is None or (timeout is not None and timeout <= 0):
            return super().select(timeout)
        events: list[tuple[Any, int]] = super().select(0)
        if events:
            return events
        return loop._when_idle(self._wait_for_real)

    def _wait_for_real(self) -> list[tuple[Any, int]]:
        return super().select(None)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop whose clock jumps to the next timer instead of waiting.

    Each time the loop would sleep it does, in order:

    1. poll real I/O with timeout 0 and run whatever is ready;
    2. if executor jobs (``run_in_executor``, ``asyncio.to_thread``) are in
       flight, wait for them for real with virtual time frozen: work in a
       thread takes zero virtual time (a 0.2 s thread job finishes "before" a
       0.05 s timer);
    3. else jump the clock to the next timer;
    4. else, with no timers, no jobs and no I/O watchers, nothing can ever wake
       the loop: raise :class:`~fakellm.errors.DeadlockError` naming the
       waiting tasks instead of hanging.

    Deadlines are rounded to 1 µs and timers due at the same tick fire first
    in, first out, so equal sleeps wake in start order and float noise never
    swaps two timers.

    Limitation: threads the loop did not start through ``run_in_executor`` or
    ``asyncio.to_thread`` (``anyio.to_thread``, hand-made threads calling
    ``call_soon_threadsafe``) are invisible to it, so waiting only on them is
    reported as a deadlock.

    Args:
        start: the instant elapsed time 0 stands for (see :class:`VirtualClock`).
        clock: share an existing clock instead (``start`` must then be None).
        freeze: also freeze freezegun at ``start`` and move it with every jump,
            from the loop's first run until :meth:`close`.
    """

    def __new__(
        cls,
        *,
        start: datetime | str | None = None,
        clock: VirtualClock | None = None,
        freeze: bool = False,
    ) -> VirtualTimeLoop:
        # Arguments are checked before the object exists: a loop object that
        # failed half-way through __init__ would break in BaseEventLoop.__del__.
        _loop_clock(start, clock)
        if not isinstance(freeze, bool):
            msg = f"freeze={freeze!r}: expected True or False"
            raise TypeError(msg)
        return super().__new__(cls)

    def __init__(
        self,
        *,
        start: datetime | str | None = None,
        clock: VirtualClock | None = None,
        freeze: bool = False,
    ) -> None:
        self._vt_clock = _loop_clock(start, clock)
        self._vt_freezer = _Freezer(self._vt_clock) if freeze else None
        self._vt_buckets: dict[int, _Bucket] = {}
        self._vt_deadlines: list[int] = []  # ticks of live buckets; stale entries skipped
        self._vt_live_timers = 0
        self._vt_jobs = 0
        selector = _VirtualSelector()
        super().__init__(selector)
        # Whatever the base loop registered while starting is its own self-pipe;
        # only other watchers mean real I/O can still wake the loop.
        self._vt_own_fds = frozenset(selector.get_map())
        self._vt_selector = selector
        selector._loop_ref = weakref.ref(self)

    @property
    def clock(self) -> VirtualClock:
        """The virtual clock this loop reads and jumps."""
        return self._vt_clock

    @property
    def pending_timers(self) -> int:
        """How many timers are scheduled and not yet fired or cancelled."""
        return self._vt_live_timers

    @property
    def pending_jobs(self) -> int:
        """How many executor jobs this loop is waiting for."""
        return self._vt_jobs

    def time(self) -> float:
        """Virtual seconds since the clock's start (never reads a real clock)."""
        return self._vt_clock._ticks / _US

    def call_at(
        self,
        when: float,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """Schedule ``callback`` at virtual ``when``, rounded to 1 µs, FIFO on ties."""
        ticks = _seconds_to_ticks(when, name="when")
        if context is None:
            context = contextvars.copy_context()
        bucket = self._vt_buckets.get(ticks)
        if bucket is None:
            # One real timer per distinct tick: the base heap then never has
            # to order equal deadlines, which it would do in heap order.
            base = super().call_at(ticks / _US, self._fire_bucket, ticks)
            bucket = self._vt_buckets[ticks] = _Bucket(base)
            heapq.heappush(self._vt_deadlines, ticks)
        elif self.is_closed():
            # The base call_at says this for a new bucket; say it for all.
            raise RuntimeError("Event loop is closed")
        handle = _VirtualTimerHandle(ticks, callback, args, self, context)
        bucket.handles.append(handle)
        bucket.live += 1
        self._vt_live_timers += 1
        return handle

    def _timer_dropped(self, handle: _VirtualTimerHandle) -> None:
        bucket = self._vt_buckets.get(handle._vt_ticks)
        if bucket is None or handle._vt_callback is None:
            return  # already fired
        handle._vt_callback = None
        bucket.live -= 1
        self._vt_live_timers -= 1
        if bucket.live == 0:
            # Leave no timer behind: a cancelled sleep must not keep the loop
            # (or the deadlock check) thinking something is still due.
            del self._vt_buckets[handle._vt_ticks]
            bucket.base.cancel()

    def _fire_bucket(self, ticks: int) -> None:
        bucket = self._vt_buckets.pop(ticks, None)
        if bucket is None:
            return
        self._vt_live_timers -= bucket.live
        for handle in bucket.handles:
            callback, handle._vt_callback = handle._vt_callback, None
            if callback is None:
                continue
            try:
                handle._vt_context.run(callback, *handle._vt_args)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:
                self.call_exception_handler(
                    {
                        "message": f"Exception in timer callback {callback!r}",
                        "exception": exc,
                        "handle": handle,
                    }
                )

    def _next_deadline(self) -> int | None:
        while self._vt_deadlines and self._vt_deadlines[0] not in self._vt_buckets:
            heapq.heappop(self._vt_deadlines)
        return self._vt_deadlines[0] if self._vt_deadlines else None

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[[*Ts], R],
        *args: *Ts,
    ) -> asyncio.Future[R]:
        """Run ``func`` in ``executor``; the loop waits for it with time frozen."""
        future = super().run_in_executor(executor, func, *args)
        self._vt_jobs += 1
        # Counted off on the loop thread once the result has reached the loop,
        # so there is no moment where the job is done but its result in transit.
        future.add_done_callback(self._job_done)
        return future

    def _job_done(self, _future: asyncio.Future[Any]) -> None:
        self._vt_jobs -= 1

    async def shutdown_default_executor(self) -> None:
        """Shut the default executor down; its joining thread counts as a job."""
        self._vt_jobs += 1
        try:
            await super().shutdown_default_executor()
        finally:
            self._vt_jobs -= 1

    def run_forever(self) -> None:
        """Run until :meth:`stop`; freezes freezegun on the first run if asked to."""
        if self._vt_freezer is not None and not self.is_closed():
            self._vt_freezer.start()
        super().run_forever()

    def close(self) -> None:
        """Close the loop and stop freezing time if this loop started it."""
        try:
            super().close()
        finally:
            if self._vt_freezer is not None:
                self._vt_freezer.stop()

    def _when_idle(
        self, wait_for_real: Callable[[], list[tuple[Any, int]]]
    ) -> list[tuple[Any, int]]:
        """Decide what the loop does when nothing is ready and it would wait."""
        if self._vt_jobs:
            return wait_for_real()
        deadline = self._next_deadline()
        if deadline is not None:
            self._vt_clock._jump_to(deadline)
            return []
        if set(self._vt_selector.get_map()) - self._vt_own_fds:
            return wait_for_real()
        raise DeadlockError(self._deadlock_message())

    def _deadlock_message(self) -> str:
        tasks = sorted(asyncio.all_tasks(self), key=lambda t: t.get_name())
        head = (
            f"virtual time {self.time():g} s: nothing can ever wake the event loop "
            "(no timers, no executor jobs, no I/O watchers)"
        )
        if not tasks:
            return f"{head}, and it is waiting with no task running."
        lines = "\n".join(f"  - {_describe_task(t)}" for t in tasks)
        return (
            f"{head}, but {len(tasks)} task(s) are still waiting:\n{lines}\n"
            "Something they await (a Future, Event, Queue or lock) is never "
            "resolved; resolve it, or give the wait a timeout."
        )


def _loop_clock(start: datetime | str | None, clock: VirtualClock | None) -> VirtualClock:
    if clock is None:
        return VirtualClock(start)
    if start is not None:
        msg = (
            f"start={start!r} and clock={clock!r}: give one or the other "
            "(a shared clock already has its start)"
        )
        raise TypeError(msg)
    if not isinstance(clock, VirtualClock):
        msg = f"clock={clock!r}: expected a VirtualClock or None"
        raise TypeError(msg)
    return clock


def _describe_task(task: asyncio.Task[Any]) -> str:
    """Name a task and the innermost line its coroutine is suspended at."""
    awaiting: Any = task.get_coro()
    frame = None
    # Follow the await chain down to the innermost coroutine still suspended,
    # but report the last frame of the app's own code, not asyncio's.
    while getattr(awaiting, "cr_frame", None) is not None:
        if frame is None or not _is_asyncio_code(awaiting.cr_frame):
            frame = awaiting.cr_frame
        awaiting = getattr(awaiting, "cr_await", None)
    if frame is None:
        return repr(task.get_name())
    code = frame.f_code
    line = linecache.getline(code.co_filename, frame.f_lineno).strip()
    source = f": {line}" if line else ""
    return f"{task.get_name()!r} at {code.co_filename}:{frame.f_lineno} in {code.co_name}(){source}"


_ASYNCIO_PREFIX: Final = os.path.dirname(asyncio.__file__) + os.sep


def _is_asyncio_code(frame: FrameType) -> bool:
    return frame.f_code.co_filename.startswith(_ASYNCIO_PREFIX)


def virtual_loop_factory(
    *, start: datetime | str | None = None, freeze: bool = True
) -> Callable[[], VirtualTimeLoop]:
    """A loop factory for ``asyncio.Runner``, anyio or pytest-asyncio.

    Each call of the returned factory builds a fresh :class:`VirtualTimeLoop`
    with its own clock, frozen to freezegun by default.

    Args:
        start: the instant elapsed time 0 stands for.
        freeze: couple freezegun to the loop's clock.
    """
    start_at = _parse_start(start)
    if not isinstance(freeze, bool):
        msg = f"freeze={freeze!r}: expected True or False"
        raise TypeError(msg)

    def factory() -> VirtualTimeLoop:
        return VirtualTimeLoop(start=start_at, freeze=freeze)

    factory.__qualname__ = factory.__name__ = "virtual_time_loop"
    return factory


def _default_loop() -> asyncio.AbstractEventLoop:
    # What pytest-asyncio builds when no factory is given, so tests that do not
    # opt in keep their loop.
    return asyncio.get_event_loop_policy().new_event_loop()


def asyncio_loop_factories(
    item: Any, *, start: datetime | str | None = None
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The answer for pytest-asyncio's ``pytest_asyncio_loop_factories`` hook.

    That hook must answer for every async test, and every name it returns
    parametrizes the tests that do not pick one. So a test gets the default
    loop alone (one hidden parameter: ids unchanged) unless its marker asks
    for ``loop_factories=["virtual_time"]``. Wire it in a conftest or plugin::

        def pytest_asyncio_loop_factories(config, item):
            return fakellm._clock.asyncio_loop_factories(item)

    and opt a test in with one line:
    ``@pytest.mark.asyncio(loop_factories=["virtual_time"])``.

    Args:
        item: the test item (only its ``asyncio`` marker is read).
        start: the instant the virtual-time loop starts at (default 2024-01-01).
    """
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": _default_loop}
    marker = item.get_closest_marker("asyncio")
    wanted = marker.kwargs.get("loop_factories") if marker is not None else None
    if wanted and not isinstance(wanted, str) and VIRTUAL_TIME_LOOP in wanted:
        factories[VIRTUAL_TIME_LOOP] = virtual_loop_factory(start=start)
    return factories


# -------------------------------------------------------------------- virtual_time


class VirtualTime:
    """A virtual-time scope: context manager, and decorator for sync or async code.

    Build it with :func:`virtual_time`. As a context manager (or on a sync
    function) it gives the block a fresh :class:`VirtualClock`: every
    :func:`fakellm._clock.sleep` advances it instead of sleeping, and
    freezegun follows it. On an ``async def`` it makes a sync function that
    runs the coroutine on a fresh :class:`VirtualTimeLoop` with the same
    coupling. Each entry starts again at ``start``; :attr:`elapsed` and
    :meth:`now` read the current (or, after exit, the last) scope.

    What virtual time means for threads: sync code running in threads that
    inherit the scope's context (LangChain ``batch`` copies contextvars into
    its workers) shares the one clock, and each sleep advances it under a
    lock. Delays in concurrent threads therefore *add up* instead of
    overlapping: two threads each sleeping 1 s leave ``elapsed == 2.0``. The
    total is deterministic; the order in which threads observe the clock is
    not.

    Do not start a stock event loop (``asyncio.run``) inside the ``with``
    block: its timers read the frozen ``time.monotonic`` and never fire.
    Decorate the ``async def`` instead, or use :func:`run_scenario`.
    """

    def __init__(self, start: datetime, *, freeze: bool) -> None:
        self._start = start
        self._freeze = freeze
        self._clock = VirtualClock(start)
        self._freezer: _Freezer | None = None
        self._token: contextvars.Token[Callable[[float], None]] | None = None

    @property
    def start(self) -> datetime:
        """The instant elapsed time 0 stands for (naive, UTC)."""
        return self._start

    @property
    def clock(self) -> VirtualClock:
        """The clock of the current (or last) scope."""
        return self._clock

    @property
    def elapsed(self) -> float:
        """Virtual seconds elapsed in the current (or last) scope."""
        return self._clock.elapsed

    def now(self) -> datetime:
        """The current virtual instant, ``start + elapsed`` (naive, UTC)."""
        return self._clock.now()

    def __enter__(self) -> VirtualTime:
        if self._token is not None:
            msg = (
                "this virtual_time() scope is already active; nested or "
                "concurrent use needs its own virtual_time() object"
            )
            raise RuntimeError(msg)
        self._clock = VirtualClock(self._start)
        if self._freeze:
            self._freezer = _Freezer(self._clock)
            self._freezer.start()
        self._token = _sync_sleeper.set(self._clock.advance)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        freezer, self._freezer = self._freezer, None
        try:
            if token is not None:
                _sync_sleeper.reset(token)
        finally:
            if freezer is not None:
                freezer.stop()

    async def __aenter__(self) -> VirtualTime:
        msg = (
            "virtual_time() cannot change the clock of a loop that is already "
            "running; decorate the async function with @virtual_time() instead, "
            "use run_scenario(...), or run on a VirtualTimeLoop"
        )
        raise TypeError(msg)

    async def __aexit__(self, *exc_info: object) -> None:  # pragma: no cover
        return None

    @overload
    def __call__(self, func: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, R]: ...

    @overload
    def __call__(self, func: Callable[P, R]) -> Callable[P, R]: ...

    def __call__(self, func: Callable[P, Any]) -> Callable[P, Any]:
        if not callable(func):
            msg = f"virtual_time() decorates a function, got {func!r}"
            raise TypeError(msg)
        if inspect.iscoroutinefunction(func):
            coro_func = func

            @functools.wraps(func)
            def run_async(*args: P.args, **kwargs: P.kwargs) -> Any:
                return self._run_on_loop(coro_func(*args, **kwargs))

            return run_async

        @functools.wraps(func)
        def run_sync(*args: P.args, **kwargs: P.kwargs) -> Any:
            with self:
                return func(*args, **kwargs)

        return run_sync

    def _run_on_loop(self, coro: Coroutine[Any, Any, R]) -> R:
        loop = VirtualTimeLoop(start=self._start, freeze=self._freeze)
        self._clock = loop.clock
        token = _sync_sleeper.set(loop.clock.advance)
        try:
            with asyncio.Runner(loop_factory=lambda: loop) as runner:
                return runner.run(coro)
        finally:
            _sync_sleeper.reset(token)


def virtual_time(start: datetime | str | None = None, *, freeze: bool = True) -> VirtualTime:
    """Run code on virtual time: ``with virtual_time() as vt:`` or ``@virtual_time()``.

    Args:
        start: the instant elapsed time 0 stands for; naive means UTC.
            Defaults to :data:`DEFAULT_START` (2024-01-01T00:00:00).
        freeze: couple freezegun, so ``datetime.now()``, ``date.today()`` and
            ``time.time()`` read ``start + elapsed``.

    Returns:
        A :class:`VirtualTime`; see there for what it does to sync code,
        threads and ``async def`` functions.
    """
    start_at = _parse_start(start)
    if not isinstance(freeze, bool):
        msg = f"freeze={freeze!r}: expected True or False"
        raise TypeError(msg)
    return VirtualTime(start_at, freeze=freeze)


# -------------------------------------------------------------------- run_scenario


@dataclass(frozen=True)
class ScenarioResult:
    """What :func:`run_scenario` returns.

    Attributes:
        results: each task's return value (or, with ``return_exceptions=True``,
            the exception it raised), in the order the tasks were given.
        elapsed: virtual seconds from the start until the last task finished.
        names: each task's name, in the same order.
        start: the instant elapsed time 0 stood for (naive, UTC).
    """

    results: tuple[Any, ...]
    elapsed: float
    names: tuple[str, ...]
    start: datetime

    @property
    def end(self) -> datetime:
        """The virtual instant the last task finished."""
        return self.start + timedelta(microseconds=round(self.elapsed * _US))


_Runnable = Coroutine[Any, Any, Any] | Callable[[], Any]


def _validate_names(names: Sequence[str] | None, count: int) -> tuple[str, ...]:
    if names is None:
        return tuple(f"scenario-{i}" for i in range(count))
    if isinstance(names, str) or not isinstance(names, Sequence):
        msg = f"names={names!r}: expected a sequence of {count} task names or None"
        raise TypeError(msg)
    if len(names) != count or not all(isinstance(n, str) and n for n in names):
        msg = f"names={names!r}: expected {count} non-empty strings, one per task"
        raise ValueError(msg)
    if len(set(names)) != count:
        msg = f"names={names!r}: task names must be unique"
        raise ValueError(msg)
    return tuple(names)


async def _call(runnable: _Runnable, name: str) -> Any:
    _events.scenario_task.set(name)  # tasks it spawns report the scenario's name
    if inspect.iscoroutine(runnable):
        return await runnable
    result = runnable()  # type: ignore[operator]
    if inspect.isawaitable(result):
        return await result
    return result


def run_scenario(
    *runnables: Coroutine[Any, Any, Any] | Callable[[], Any],
    start: datetime | str | None = None,
    names: Sequence[str] | None = None,
    return_exceptions: bool = False,
    freeze: bool = True,
) -> ScenarioResult:
    """Run coroutines concurrently on a fresh virtual-time loop; return their results.

    Each argument becomes one task, started in argument order: a coroutine, a
    coroutine function, or any zero-argument callable (called on the loop
    thread; an awaitable result is awaited). Every call gets its own
    :class:`VirtualTimeLoop`, clock and freezegun scope, so no state carries
    over from the previous call.

    Args:
        *runnables: what to run, one task each.
        start: the instant elapsed time 0 stands for; naive means UTC.
        names: task names (default ``scenario-0``, ``scenario-1``, ...), so
            recordings can tell which task did what.
        return_exceptions: put a failed task's exception in ``results``
            instead of raising the first one (in argument order) after every
            task has finished.
        freeze: couple freezegun to the virtual clock.

    Returns:
        A :class:`ScenarioResult` with the results in order and the elapsed
        virtual time.

    Raises:
        DeadlockError: tasks wait on something that can never happen.
        LeakedTasks: the scenario's tasks finished but left other tasks
            pending; they are cancelled and named in the message.
    """
    try:
        start_at = _parse_start(start)
        if not runnables:
            msg = "run_scenario() needs at least one coroutine or callable to run"
            raise TypeError(msg)
        for i, runnable in enumerate(runnables):
            if not (inspect.iscoroutine(runnable) or callable(runnable)):
                msg = (
                    f"runnables[{i}]={runnable!r}: expected a coroutine, a coroutine "
                    "function or a zero-argument callable"
                )
                raise TypeError(msg)
        task_names = _validate_names(names, len(runnables))
        for flag, value in (
            ("return_exceptions", return_exceptions),
            ("freeze", freeze),
        ):
            if not isinstance(value, bool):
                msg = f"{flag}={value!r}: expected True or False"
                raise TypeError(msg)
        if _running_loop_or_none() is not None:
            msg = (
                "run_scenario() starts its own event loop and cannot run inside "
                "a running one; call it from sync code (a plain test function)"
            )
            raise RuntimeError(msg)
    except BaseException:
        _close_coroutines(runnables)
        raise

    loop = VirtualTimeLoop(start=start_at, freeze=freeze)
    token = _sync_sleeper.set(loop.clock.advance)
    try:
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            outcomes, elapsed = runner.run(_scenario_main(runnables, task_names))
    finally:
        _sync_sleeper.reset(token)

    if not return_exceptions:
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
    return ScenarioResult(
        results=tuple(outcomes), elapsed=elapsed, names=task_names, start=start_at
    )


async def _scenario_main(
    runnables: Iterable[_Runnable], names: Sequence[str]
) -> tuple[list[Any], float]:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    me = asyncio.current_task()
    if me is not None:
        me.set_name("run_scenario")
    tasks = [
        asyncio.create_task(_call(r, name), name=name)
        for r, name in zip(runnables, names, strict=True)
    ]
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = loop.clock.elapsed
    await _finish_generator_closes(me)
    leaked = sorted(
        (t for t in asyncio.all_tasks() if t is not me and not t.done()),
        key=lambda t: t.get_name(),
    )
    if leaked:
        described = "\n".join(f"  - {_describe_task(t)}" for t in leaked)
        for task in leaked:
            task.cancel()
        await asyncio.gather(*leaked, return_exceptions=True)
        msg = (
            f"the scenario's tasks finished at virtual time {elapsed:g} s but left "
            f"{len(leaked)} task(s) pending:\n{described}\n"
            "Await every task you create (or cancel it) before the scenario ends."
        )
        raise LeakedTasks(msg)
    return list(outcomes), elapsed


async def _finish_generator_closes(me: asyncio.Task[Any] | None) -> None:
    """Let the ``aclose()`` tasks of async generators left early run to their end.

    A consumer that ``break``s out of ``astream`` leaves the generator to the
    loop's finalizer hook, which schedules its ``aclose()`` as a task: that is
    cleanup in progress, not a leak.
    """
    await asyncio.sleep(0)  # the hook schedules the task with call_soon
    while True:
        closing = [
            t
            for t in asyncio.all_tasks()
            if t is not me
            and not t.done()
            and type(t.get_coro()).__name__ == "async_generator_athrow"
        ]
        if not closing:
            return
        await asyncio.gather(*closing, return_exceptions=True)


def _running_loop_or_none() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _close_coroutines(runnables: Iterable[object]) -> None:
    # Coroutines that will never run are closed so Python does not warn
    # "coroutine ... was never awaited" on top of the real error.
    for runnable in runnables:
        if inspect.iscoroutine(runnable):
            runnable.close()
