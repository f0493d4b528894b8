"""The virtual-time event loop: its timers, its selector, and what it does when idle.

:class:`VirtualTimeLoop` is an ``asyncio.SelectorEventLoop`` whose clock is a
:class:`~fakellm._clock.VirtualClock`. The one moment a loop would sleep is
the selector's wait; there it decides, in order:

1. real work in flight (an executor job, a child process, a busy thread the
   loop's run started): wait for it for real, with virtual time frozen, and
   raise :class:`~fakellm.errors.Stalled` with every task's and thread's stack
   if nothing happens for ``stall_timeout`` real seconds;
2. real I/O watchers (a socket to a loopback server): wait up to ``io_grace``
   real seconds for them before jumping past a timer, in the spirit of trio's
   ``autojump_threshold``, so a local server that answers in 50 ms is not
   timed out by a 30 s virtual timeout;
3. a timer: jump the clock to it (refusing with
   :class:`~fakellm.errors.TimeBudgetExceeded` past the clock's budget);
4. nothing at all: :class:`~fakellm.errors.DeadlockError`, naming the tasks.

Deadlines are integer microseconds; timers due at one tick fire first in,
first out. A timer at ``math.inf`` never fires, as on a stock loop.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import contextvars
import functools
import heapq
import linecache
import math
import os
import selectors
import threading
import traceback
import weakref
from collections import deque
from collections.abc import Callable
from datetime import datetime
from types import FrameType
from typing import Any, Final, TypeVar, TypeVarTuple

from fakellm import _compat, _order
from fakellm._clock import (
    DEFAULT_BUDGET,
    US,
    VirtualClock,
    clock_scope,
    hold_mirror,
    parse_budget,
    parse_flag,
    parse_start,
    seconds_to_ticks,
)
from fakellm.errors import DeadlockError, Stalled, TimeBudgetExceeded

__all__ = [
    "DEFAULT_IO_GRACE",
    "DEFAULT_STALL_TIMEOUT",
    "VIRTUAL_TIME_LOOP",
    "VirtualTimeLoop",
    "describe_task",
    "virtual_loop_factory",
]

R = TypeVar("R")
Ts = TypeVarTuple("Ts")

#: The name that selects :class:`VirtualTimeLoop` in
#: ``@pytest.mark.asyncio(loop_factories=[VIRTUAL_TIME_LOOP])``.
VIRTUAL_TIME_LOOP: Final = "virtual_time"

#: Real seconds the loop waits on open sockets and pipes before it jumps past
#: a timer: enough for a loopback server to answer, short enough that an idle
#: open connection costs little per jump.
DEFAULT_IO_GRACE: Final = 0.25

#: Real seconds without any progress while the loop waits on real work before
#: it gives up with :class:`~fakellm.errors.Stalled` instead of hanging.
DEFAULT_STALL_TIMEOUT: Final = 30.0

_SelectResult = list[tuple[Any, int]]

# Real seconds between looks at a busy thread that may never wake the loop,
# and how long a thread started during the run may take to report back before
# the loop calls a deadlock.
_THREAD_POLL: Final = 0.005
_THREAD_GRACE: Final = 0.05
# Real seconds the loop waits, once per executor job, for the job to finish
# before anything else runs; and that a finished job waits for an earlier one
# before its result is delivered out of submission order.
_ORDER_GRACE: Final = 0.25
# Real seconds between looks at a job that called back into the loop: it is
# waited for while it runs code, not once it blocks (on the loop, most likely).
_CALLBACK_POLL: Final = 0.001


class _VirtualTimerHandle(asyncio.TimerHandle):
    """A timer the loop keeps in a per-deadline FIFO bucket instead of the heap."""

    __slots__ = ("_vt_args", "_vt_callback", "_vt_context", "_vt_loop", "_vt_owner", "_vt_ticks")

    def __init__(
        self,
        ticks: int | float,
        callback: Callable[..., object],
        args: tuple[Any, ...],
        loop: VirtualTimeLoop,
        context: contextvars.Context,
        owner: object,
    ) -> None:
        super().__init__(ticks / US, callback, args, loop, context)
        self._vt_ticks = ticks
        self._vt_callback: Callable[..., object] | None = callback
        self._vt_args = args
        self._vt_context = context
        self._vt_loop = loop
        self._vt_owner = owner

    def cancel(self) -> None:
        if not self.cancelled():
            self._vt_loop._timer_dropped(self)
        super().cancel()


class _Bucket:
    """Every timer due at one tick, in the order they were scheduled."""

    __slots__ = ("base", "handles", "live")

    def __init__(self, base: asyncio.TimerHandle | None) -> None:
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

    def select(self, timeout: float | None = None) -> _SelectResult:
        loop = self._loop_ref()
        if loop is not None:
            loop._settle_jobs()
        if loop is None or (timeout is not None and timeout <= 0):
            return super().select(timeout)
        events: _SelectResult = super().select(0)
        if events:
            return events
        return loop._when_idle(self._wait_for_real)

    def _wait_for_real(self, timeout: float | None) -> _SelectResult:
        return super().select(timeout)


_NEVER: Final = math.inf


class _Job:
    """One executor job of a loop: its unit, and whether it called back into the loop.

    A job that calls ``loop.call_soon_threadsafe`` (``run_coroutine_threadsafe``
    does) is usually about to wait for the loop; waiting for it to finish
    first would only cost the whole grace.
    """

    __slots__ = ("called_back", "loop", "thread", "unit", "wake")

    def __init__(self, loop: VirtualTimeLoop, unit: _order.Unit) -> None:
        self.loop = loop
        self.unit = unit
        #: Set when the job ends, and when it calls back into its loop.
        self.wake = threading.Event()
        self.called_back = False
        self.thread = 0  # the worker running it, once it runs

    def waits_on_loop(self) -> bool:
        """Whether it called back into the loop and is now blocked in a wait that
        nothing has signalled yet (``Future.result``, ``Event.wait``, ``Queue.get``).

        One that was signalled and is about to run again is not (its frame still
        shows the wait): the loop then waits for it as for any running job.
        """
        if not self.called_back or self.unit.finished.is_set():
            return False
        frame = _compat.current_frames().get(self.thread)
        return frame is not None and _compat.waits_unsignalled(frame)


# The job the calling worker thread is running, if it is one of a virtual loop's.
_running = threading.local()


def _run_job(job: _Job, clock: VirtualClock, freeze: bool, func: Callable[..., R], *args: Any) -> R:
    """Run an executor job in its worker: on its loop's clock, known to ``call_soon_threadsafe``."""
    outer = getattr(_running, "job", None)
    job.thread = threading.get_ident()
    _running.job = job
    try:
        result: R = job.unit.run(_on_clock, clock, freeze, func, *args)
        return result
    finally:
        _running.job = outer
        job.wake.set()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop whose clock jumps to the next timer instead of waiting.

    See the module docstring for what it does when idle. Work in a thread
    takes zero virtual time (a 0.2 s thread job finishes "before" a 0.05 s
    timer); code running in executor jobs reads this loop's clock.

    Args:
        start: the instant elapsed time 0 stands for (see
            :class:`~fakellm._clock.VirtualClock`).
        clock: share an existing clock instead (``start`` and ``budget``
            must then be left out).
        freeze: mirror the clock into freezegun and ``time.sleep`` for this
            loop's thread and its executor jobs, from the first run until
            :meth:`close`.
        budget: virtual seconds the loop may run (default one day; None: no
            budget). Past it the loop raises
            :class:`~fakellm.errors.TimeBudgetExceeded` naming the waiting
            tasks and the timers that kept firing.
        io_grace: real seconds to wait on open sockets and pipes before
            jumping past a timer.
        stall_timeout: real seconds of no progress on real work before
            :class:`~fakellm.errors.Stalled` (None: wait forever).
        real_perf_counter: ``time.perf_counter`` reads real time on this
            loop's clock (see :class:`~fakellm._clock.VirtualClock`).
    """

    def __new__(
        cls,
        *,
        start: datetime | str | None = None,
        clock: VirtualClock | None = None,
        freeze: bool = False,
        budget: float | None = DEFAULT_BUDGET,
        io_grace: float = DEFAULT_IO_GRACE,
        stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
        real_perf_counter: bool = False,
    ) -> VirtualTimeLoop:
        # Arguments are checked before the object exists: a loop object that
        # failed half-way through __init__ would break in BaseEventLoop.__del__.
        _loop_clock(start, clock, budget, real_perf_counter)
        _check_options(freeze, io_grace, stall_timeout)
        return super().__new__(cls)

    def __init__(
        self,
        *,
        start: datetime | str | None = None,
        clock: VirtualClock | None = None,
        freeze: bool = False,
        budget: float | None = DEFAULT_BUDGET,
        io_grace: float = DEFAULT_IO_GRACE,
        stall_timeout: float | None = DEFAULT_STALL_TIMEOUT,
        real_perf_counter: bool = False,
    ) -> None:
        self._vt_clock = _loop_clock(start, clock, budget, real_perf_counter)
        self._vt_freeze = freeze
        self._vt_hold: contextlib.ExitStack | None = None
        self._vt_io_grace = float(io_grace)
        self._vt_stall = None if stall_timeout is None else float(stall_timeout)
        self._vt_buckets: dict[int | float, _Bucket] = {}
        self._vt_deadlines: list[int] = []  # ticks of live buckets; stale entries skipped
        self._vt_live_timers = 0
        self._vt_jobs = 0
        self._vt_job_order: deque[tuple[asyncio.Future[Any], asyncio.Future[Any]]] = deque()
        self._vt_job_units: dict[asyncio.Future[Any], _Job] = {}
        self._vt_processes: list[asyncio.SubprocessTransport] = []
        self._vt_fired: collections.Counter[object] = collections.Counter()
        # Thread objects, not idents: a new thread may get an ended one's ident.
        self._vt_threads_before: frozenset[threading.Thread] = frozenset()
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

    def describe_pending_timers(self) -> list[str]:
        """Each timer still scheduled: when it is due and who scheduled it."""
        out = []
        for ticks in sorted(self._vt_buckets):
            for handle in self._vt_buckets[ticks].handles:
                if handle._vt_callback is not None:
                    due = "math.inf" if ticks == _NEVER else f"{ticks / US:g} s"
                    owner = _owner_name(handle._vt_owner)
                    out.append(f"a timer due at {due}, scheduled by {owner}")
        return out

    def time(self) -> float:
        """Virtual seconds since the clock's start (never reads a real clock)."""
        return self._vt_clock.ticks / US

    def call_at(
        self,
        when: float,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        """Schedule ``callback`` at virtual ``when``, rounded to 1 µs, FIFO on ties."""
        if type(when) is float and -_NEVER < when < _NEVER:
            ticks: int | float = round(when * US)  # the common case, checked below
        else:
            ticks = seconds_to_ticks(when, name="when", allow_inf=True)
        if context is None:
            context = contextvars.copy_context()
        bucket = self._vt_buckets.get(ticks)
        if bucket is None:
            if self.is_closed():
                raise RuntimeError("Event loop is closed")
            base = None
            if ticks != _NEVER:
                # One real timer per distinct tick, so the base heap never
                # orders equal deadlines (it would, in heap order). It sits one
                # float step early: asyncio runs timers due before
                # time() + 1e-9, which stops moving past 2**24 s.
                due = math.nextafter(ticks / US, -math.inf)
                base = super().call_at(due, self._fire_bucket, ticks)
                heapq.heappush(self._vt_deadlines, int(ticks))
            bucket = self._vt_buckets[ticks] = _Bucket(base)
        elif self.is_closed():
            raise RuntimeError("Event loop is closed")
        handle = _VirtualTimerHandle(ticks, callback, args, self, context, _owner(callback))
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
            if bucket.base is not None:
                bucket.base.cancel()

    def _fire_bucket(self, ticks: int | float) -> None:
        bucket = self._vt_buckets.pop(ticks, None)
        if bucket is None:
            return
        # The base timer sits a float step early; the clock is exact.
        self._vt_clock.move_to_tick(int(ticks))
        self._vt_live_timers -= bucket.live
        for handle in bucket.handles:
            callback, handle._vt_callback = handle._vt_callback, None
            if callback is None:
                continue
            self._vt_fired[handle._vt_owner] += 1
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

    # ------------------------------------------------------------ real work

    def run_in_executor(
        self,
        executor: concurrent.futures.Executor | None,
        func: Callable[[*Ts], R],
        *args: *Ts,
    ) -> asyncio.Future[R]:
        """Run ``func`` in ``executor`` on this loop's clock; the loop waits for it."""
        unit = _order.fork()  # the race detector orders takes by hand-over and hand-back
        record = _Job(self, unit)
        job: Any = functools.partial(_run_job, record, self._vt_clock, self._vt_freeze, func)
        inner: asyncio.Future[R] = super().run_in_executor(executor, job, *args)
        outer: asyncio.Future[R] = self.create_future()
        outer.add_done_callback(unit.join)
        # Counted until its result is delivered on the loop thread, so there
        # is no moment where the job is done but its result in transit.
        self._vt_jobs += 1
        self._vt_job_order.append((inner, outer))
        self._vt_job_units[inner] = record
        inner.add_done_callback(self._job_finished)
        outer.add_done_callback(functools.partial(_cancel_inner, inner))
        return outer

    def _job_finished(self, _inner: asyncio.Future[Any]) -> None:
        """Deliver finished jobs in the order they were submitted.

        Work in threads takes zero virtual time, so "each job finishes the
        moment it is submitted, in order" is a schedule that can happen; the
        order threads happen to finish in is not a property of the app. This
        keeps LangChain's executor hop (sync callback handlers, sync tools)
        from reordering what the loop does next.
        """
        if not _inner.cancelled():
            _inner.exception()  # marked retrieved: _settle_jobs may have handed it back
        order = self._vt_job_order
        while order and order[0][0].done():
            self._deliver(*order.popleft())

    def _settle_jobs(self) -> None:
        """Let the jobs handed over so far finish before anything else runs.

        Work in threads takes zero virtual time: a job finishes the moment it
        is submitted, before the tasks that were ready alongside it go on. So
        each iteration first waits for the jobs (once, up to ``_ORDER_GRACE``
        real seconds each: one still running then may be waiting on the loop;
        see :meth:`_wait_for_job`) and hands their results back in submission
        order. Otherwise a task
        resumed by a quick job runs ahead of one whose job was slower, and
        concurrent calls that each hop (langsmith's ``traceable`` around
        ``create_agent``'s middleware hooks does, tracing on or off) would
        interleave differently from run to run.
        """
        order = self._vt_job_order
        while order:
            inner, outer = order[0]
            job = self._vt_job_units[inner]
            unit = job.unit
            if outer.done():  # cancelled: counted until the job really ends
                return
            if not unit.waited:
                unit.waited = True
                _wait_for_job(job)
            if not unit.hand_back(outer):
                return
            order.popleft()
            del self._vt_job_units[inner]
            self._vt_jobs -= 1

    def call_soon_threadsafe(
        self,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        """asyncio's, noting a call from one of this loop's executor jobs.

        Such a job (``asyncio.run_coroutine_threadsafe(...).result()``, a
        ``call_soon_threadsafe`` then a wait) may now wait on the loop, so the
        loop stops waiting for it once it blocks (see :meth:`_settle_jobs`);
        noted per job, so a call made before the loop starts waiting counts too.
        """
        job: _Job | None = getattr(_running, "job", None)
        if job is not None and job.loop is self:
            job.called_back = True
            job.wake.set()
        return super().call_soon_threadsafe(callback, *args, context=context)

    def _deliver(self, inner: asyncio.Future[Any], outer: asyncio.Future[Any]) -> None:
        self._vt_job_units.pop(inner, None)
        self._vt_jobs -= 1
        if outer.done():
            return
        if inner.cancelled():
            outer.cancel()
        elif (exc := inner.exception()) is not None:
            outer.set_exception(exc)
        else:
            outer.set_result(inner.result())

    def _held_behind_jobs_on_loop(self) -> bool:
        """Whether every unfinished job ahead of the first finished one waits on the loop."""
        for inner, _outer in self._vt_job_order:
            if inner.done():
                return True
            job = self._vt_job_units.get(inner)
            if job is None or not job.waits_on_loop():
                return False
        return False

    def _release_out_of_order(self) -> bool:
        """Deliver finished jobs held behind a job that has not finished (fallback)."""
        held = [(i, o) for i, o in self._vt_job_order if i.done()]
        for pair in held:
            self._vt_job_order.remove(pair)
            self._deliver(*pair)
        return bool(held)

    async def shutdown_default_executor(self) -> None:
        """Shut the default executor down; its joining thread counts as a job."""
        self._vt_jobs += 1
        try:
            await super().shutdown_default_executor()
        finally:
            self._vt_jobs -= 1

    async def subprocess_exec(
        self, protocol_factory: Callable[[], Any], *args: Any, **kwargs: Any
    ) -> tuple[asyncio.SubprocessTransport, Any]:
        """Start a child process; the loop counts it as real work until it exits."""
        transport, protocol = await super().subprocess_exec(protocol_factory, *args, **kwargs)
        self._vt_processes.append(transport)
        return transport, protocol

    async def subprocess_shell(
        self, protocol_factory: Callable[[], Any], cmd: Any, **kwargs: Any
    ) -> tuple[asyncio.SubprocessTransport, Any]:
        """Start a shell command; the loop counts it as real work until it exits."""
        transport, protocol = await super().subprocess_shell(protocol_factory, cmd, **kwargs)
        self._vt_processes.append(transport)
        return transport, protocol

    def _real_work(self, *, timer_due: bool = False) -> str | None:
        """What real work is in flight, if any, described for a Stalled error.

        With a timer due, jobs that called back into the loop and wait on it
        (``run_coroutine_threadsafe(asyncio.sleep(1), loop).result()``) are not
        real work: they wait for the loop's timers, as on a stock loop.
        """
        jobs = self._vt_jobs
        if jobs and timer_due:
            jobs -= sum(1 for job in self._vt_job_units.values() if job.waits_on_loop())
        if jobs:
            return f"{jobs} executor job(s)"
        if self._vt_processes:
            self._vt_processes = [t for t in self._vt_processes if t.get_returncode() is None]
            if self._vt_processes:
                return f"{len(self._vt_processes)} child process(es)"
        if not self._new_threads():
            return None
        busy = _busy_threads(self._vt_threads_before)
        if busy:
            return f"thread(s) {', '.join(busy)}"
        return None

    def _new_threads(self) -> bool:
        """Whether a thread exists that the loop's first run did not start with."""
        before = self._vt_threads_before
        if threading.active_count() == len(before):
            # Same count: new threads only if as many old ones ended (rare).
            return any(t not in before for t in threading.enumerate())
        return True

    # -------------------------------------------------------------- running

    def run_forever(self) -> None:
        """Run until :meth:`stop`, on this loop's clock (mirrored into freezegun if asked)."""
        if self._vt_freeze and self._vt_hold is None and not self.is_closed():
            # Held until close: asyncio.Runner runs the loop several times.
            self._vt_hold = contextlib.ExitStack()
            self._vt_hold.enter_context(hold_mirror())
        if not self._vt_threads_before:
            self._vt_threads_before = frozenset(threading.enumerate())
        with clock_scope(self._vt_clock, sync=False, freeze=self._vt_freeze):
            super().run_forever()

    def close(self) -> None:
        """Close the loop and let go of freezegun if this loop held it."""
        try:
            super().close()
        finally:
            # Its keys are tasks, which hold the loop: left filled, every task
            # of the run would wait for a full garbage collection, and until
            # then each asyncio.all_tasks() in the process copies them all.
            self._vt_fired.clear()
            hold, self._vt_hold = self._vt_hold, None
            if hold is not None:
                hold.close()

    def _when_idle(self, select: Callable[[float | None], _SelectResult]) -> _SelectResult:
        """Decide what the loop does when nothing is ready and it would wait."""
        deadline = self._next_deadline()
        work = self._real_work(timer_due=deadline is not None)
        if work is not None:
            events = self._wait_for_work(select, work)
            if events is not None:
                return events
        if set(self._vt_selector.get_map()) - self._vt_own_fds:
            events = select(self._vt_io_grace if deadline is not None else self._vt_stall)
            if events:
                return events
            if deadline is None:
                raise Stalled(self._stall_message("waiting on sockets or pipes"))
        if deadline is not None:
            if deadline > self._vt_clock.limit_ticks:
                raise TimeBudgetExceeded(self._budget_message(deadline))
            self._vt_clock.move_to_tick(deadline)
            return []
        if self._new_threads():
            # A thread that was just handed work may still look idle; give it
            # a moment to report back before calling this a deadlock.
            events = select(_THREAD_GRACE)
            if events or self._real_work() is not None:
                return events
        raise DeadlockError(self._deadlock_message())

    def _wait_for_work(
        self, select: Callable[[float | None], _SelectResult], work: str
    ) -> _SelectResult | None:
        """Wait for real work to wake the loop; None once only idle threads are left.

        Jobs and child processes wake the loop when they finish; a busy thread
        may not, so it is polled in short slices until it is idle again.
        """
        waited = 0.0
        while True:
            polling = work.startswith("thread")
            slice_ = _THREAD_POLL if polling else self._vt_stall
            if not polling and any(i.done() for i, _ in self._vt_job_order):
                # A finished job is held behind one still running; if that one
                # waits on the loop, holding would deadlock it: deliver out of
                # order, at once if every job ahead called back and now waits,
                # else after a grace.
                if not self._held_behind_jobs_on_loop():
                    events = select(_ORDER_GRACE)
                    if events:
                        return events
                if self._release_out_of_order():
                    return []
            events = select(slice_)
            if events:
                return events
            if not polling or slice_ is None:
                break
            waited += slice_
            if self._vt_stall is not None and waited >= self._vt_stall:
                break
            found = self._real_work()
            if found is None:
                return None
            work = found
        raise Stalled(self._stall_message(f"waiting for {work}"))

    # ------------------------------------------------------------- messages

    def _waiting(self) -> str:
        tasks = sorted(asyncio.all_tasks(self), key=lambda t: t.get_name())
        if not tasks:
            return "no task is running"
        lines = "\n".join(f"  - {describe_task(t)}" for t in tasks)
        return f"{len(tasks)} task(s) are still waiting:\n{lines}"

    def _deadlock_message(self) -> str:
        forever = sum(b.live for k, b in self._vt_buckets.items() if k == _NEVER)
        never = f"; {forever} timer(s) due at math.inf never fire" if forever else ""
        head = (
            f"virtual time {self.time():g} s: nothing can ever wake the event loop "
            f"(no timers, no executor jobs, no child processes, no I/O watchers{never})"
        )
        if not asyncio.all_tasks(self):
            return f"{head}, and it is waiting with no task running."
        return (
            f"{head}, but {self._waiting()}\n"
            "Something they await (a Future, Event, Queue or lock) is never "
            "resolved; resolve it, or give the wait a timeout."
        )

    def _budget_message(self, deadline: int) -> str:
        head = self._vt_clock.over_budget_message(deadline, "the next timer is due")
        by_name: collections.Counter[str] = collections.Counter()
        for owner, n in self._vt_fired.items():
            by_name[_owner_name(owner)] += n
        firing = ", ".join(f"{who} ({n} times)" for who, n in by_name.most_common(3))
        kept = f"\nTimers that fired most: {firing}." if firing else ""
        return (
            f"{head}\n{self._waiting()}{kept}\nA periodic task beside a wait that never "
            "ends is a livelock: end the wait, or stop the periodic task."
        )

    def _stall_message(self, what: str) -> str:
        return (
            f"virtual time {self.time():g} s: the event loop has been {what} for "
            f"{self._vt_stall:g} real seconds with no progress (stall_timeout).\n"
            f"{self._waiting()}\nThreads:\n{_thread_stacks()}"
        )


def _wait_for_job(job: _Job) -> None:
    """Wait up to ``_ORDER_GRACE`` for an executor job to finish, unless it waits on the loop.

    A job that called back into the loop (before this wait or during it) is
    waited for only while it runs code: once it blocks in a wait, it is most
    likely waiting for the loop to run what it sent, which the loop can do
    only after this wait. A job that sends and goes on (LangGraph's stream
    writer, a tracer's queue) is still waited for until it ends.
    """
    if not job.wake.wait(_ORDER_GRACE):
        return  # neither ended nor called back: given up on, as before
    finished = job.unit.finished
    for _ in range(round(_ORDER_GRACE / _CALLBACK_POLL)):
        if finished.is_set() or job.waits_on_loop():
            return
        finished.wait(_CALLBACK_POLL)


def _on_clock(clock: VirtualClock, freeze: bool, func: Callable[..., R], *args: Any) -> R:
    """Run an executor job on its loop's clock, whatever thread it lands on."""
    with clock_scope(clock, sync=True, freeze=freeze):
        return func(*args)


def _cancel_inner(inner: asyncio.Future[Any], outer: asyncio.Future[Any]) -> None:
    if outer.cancelled():
        inner.cancel()


def _owner(callback: Callable[..., object]) -> object:
    """Who scheduled a timer: the current task, else the callback (named when reported)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return callback if task is None else task


def _owner_name(owner: object) -> str:
    """How a message names a timer's owner: ``task 'name'``, else the callback's name."""
    if isinstance(owner, asyncio.Task):
        return f"task {owner.get_name()!r}"
    return str(getattr(owner, "__qualname__", type(owner).__name__))


_IDLE_WAITS: Final = frozenset({"wait", "get", "select", "_worker", "acquire", "join"})
_STDLIB_DIR: Final = os.path.dirname(os.__file__) + os.sep


def _busy_threads(before: frozenset[threading.Thread]) -> list[str]:
    """Threads started since the loop's first run that are running code, not waiting.

    An anyio worker (``anyio.to_thread``) or a thread the test started reports
    back with ``call_soon_threadsafe``, which the loop cannot see coming; while
    such a thread is busy, the loop waits for it instead of calling a deadlock.
    """
    me = threading.get_ident()
    frames = _compat.current_frames()
    busy = []
    for thread in threading.enumerate():
        ident = thread.ident
        if ident is None:
            busy.append(repr(thread.name))  # still starting
            continue
        if ident == me or thread in before:
            continue
        frame = frames.get(ident)
        if frame is None or _is_idle_wait(frame):
            continue
        busy.append(repr(thread.name))
    return busy


def _is_idle_wait(frame: FrameType) -> bool:
    code = frame.f_code
    return code.co_filename.startswith(_STDLIB_DIR) and code.co_name in _IDLE_WAITS


def _thread_stacks() -> str:
    frames = _compat.current_frames()
    parts = []
    for thread in threading.enumerate():
        frame = frames.get(thread.ident or -1)
        if frame is None:
            continue
        stack = "".join(traceback.format_stack(frame)).rstrip()
        parts.append(f"  thread {thread.name!r}:\n{stack}")
    return "\n".join(parts)


def _check_options(freeze: object, io_grace: object, stall_timeout: object) -> None:
    if not isinstance(freeze, bool):
        msg = f"freeze={freeze!r}: expected True or False"
        raise TypeError(msg)
    for name, value, none_ok in (
        ("io_grace", io_grace, False),
        ("stall_timeout", stall_timeout, True),
    ):
        if value is None and none_ok:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            accepted = " or None" if none_ok else ""
            msg = f"{name}={value!r}: expected a number of real seconds >= 0{accepted}"
            raise TypeError(msg) if not isinstance(value, int | float) else ValueError(msg)


def _loop_clock(
    start: datetime | str | None,
    clock: VirtualClock | None,
    budget: float | None,
    real_perf_counter: bool,
) -> VirtualClock:
    if clock is None:
        return VirtualClock(start, budget=budget, real_perf_counter=real_perf_counter)
    if start is not None or budget != DEFAULT_BUDGET or real_perf_counter is not False:
        msg = (
            f"start={start!r}, budget={budget!r}, real_perf_counter={real_perf_counter!r} "
            f"and clock={clock!r}: give one or the other (a shared clock already has its "
            "start, budget and real_perf_counter)"
        )
        raise TypeError(msg)
    if not isinstance(clock, VirtualClock):
        msg = f"clock={clock!r}: expected a VirtualClock or None"
        raise TypeError(msg)
    return clock


def describe_task(task: asyncio.Task[Any]) -> str:
    """Name a task and the innermost line of the app's code it is suspended at."""
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
    *,
    start: datetime | str | None = None,
    freeze: bool = True,
    budget: float | None = DEFAULT_BUDGET,
    real_perf_counter: bool = False,
) -> Callable[[], VirtualTimeLoop]:
    """A loop factory for ``asyncio.Runner``, anyio or pytest-asyncio.

    Each call of the returned factory builds a fresh :class:`VirtualTimeLoop`
    with its own clock, mirrored into freezegun by default.

    Args:
        start: the instant elapsed time 0 stands for.
        freeze: mirror the loop's clock into freezegun and ``time.sleep``.
        budget: virtual seconds each loop may run (None: no budget).
        real_perf_counter: ``time.perf_counter`` reads real time.
    """
    start_at = parse_start(start)
    budget = parse_budget(budget)
    parse_flag("real_perf_counter", real_perf_counter)
    _check_options(freeze, DEFAULT_IO_GRACE, DEFAULT_STALL_TIMEOUT)

    def factory() -> VirtualTimeLoop:
        return VirtualTimeLoop(
            start=start_at, freeze=freeze, budget=budget, real_perf_counter=real_perf_counter
        )

    factory.__qualname__ = factory.__name__ = "virtual_time_loop"
    return factory
