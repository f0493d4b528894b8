"""Running code on virtual time: ``virtual_time()`` scopes and ``run_scenario()``.

Both are built on :class:`~fakellm._clock.VirtualClock` and
:class:`~fakellm._loop.VirtualTimeLoop`. ``run_scenario`` and pytest's
virtual-time tests share one leak rule: when the scenario's own tasks are
done, any other task still pending is a leak, named and cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from fakellm import _events
from fakellm._clock import (
    DEFAULT_BUDGET,
    US,
    VirtualClock,
    clock_scope,
    parse_budget,
    parse_flag,
    parse_start,
)
from fakellm._loop import VirtualTimeLoop, describe_task
from fakellm.errors import LeakedTasks

__all__ = [
    "ScenarioResult",
    "VirtualTime",
    "leaked_tasks_message",
    "run_scenario",
    "run_tasks",
    "virtual_time",
]

P = ParamSpec("P")
R = TypeVar("R")


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

    Every thread reads the scope's clock: ``time.time``, ``time.monotonic``,
    ``datetime.now`` and ``time.sleep`` in the block, in executor and anyio
    workers and in threads the block starts. A stock event loop started in
    the block (``asyncio.run``) gets a virtual-time loop on the same clock.
    """

    def __init__(
        self, start: datetime, *, freeze: bool, budget: float | None, real_perf_counter: bool
    ) -> None:
        self._start = start
        self._freeze = freeze
        self._budget = budget
        self._real_perf_counter = real_perf_counter
        self._clock = self._new_clock()
        self._scope: contextlib.ExitStack | None = None

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
        if self._scope is not None:
            msg = (
                "this virtual_time() scope is already active; nested or "
                "concurrent use needs its own virtual_time() object"
            )
            raise RuntimeError(msg)
        self._clock = self._new_clock()
        scope = contextlib.ExitStack()
        scope.enter_context(clock_scope(self._clock, sync=True, freeze=self._freeze))
        self._scope = scope
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        scope, self._scope = self._scope, None
        if scope is not None:
            scope.close()

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

    def _new_clock(self) -> VirtualClock:
        return VirtualClock(
            self._start, budget=self._budget, real_perf_counter=self._real_perf_counter
        )

    def _run_on_loop(self, coro: Coroutine[Any, Any, R]) -> R:
        self._clock = self._new_clock()
        loop = VirtualTimeLoop(clock=self._clock, freeze=self._freeze)
        result: R = _run_on(loop, coro, freeze=self._freeze)
        return result


def virtual_time(
    start: datetime | str | None = None,
    *,
    freeze: bool = True,
    budget: float | None = DEFAULT_BUDGET,
    real_perf_counter: bool = False,
) -> VirtualTime:
    """Run code on virtual time: ``with virtual_time() as vt:`` or ``@virtual_time()``.

    Args:
        start: the instant elapsed time 0 stands for; naive means UTC.
            Defaults to :data:`DEFAULT_START` (2024-01-01T00:00:00).
        freeze: mirror the clock into freezegun and ``time.sleep``, so
            ``datetime.now()``, ``time.time()``, ``time.monotonic()`` and
            ``time.sleep`` in every thread follow it.
        budget: virtual seconds the scope may use (default one day; None:
            none); past it :class:`~fakellm.errors.TimeBudgetExceeded`.
        real_perf_counter: ``time.perf_counter`` (and ``perf_counter_ns``)
            read real time in the scope, for code that must measure wall
            time; every other reader stays virtual.

    Returns:
        A :class:`VirtualTime`; see there for what it does to sync code,
        threads and ``async def`` functions.
    """
    start_at = parse_start(start)
    parse_flag("freeze", freeze)
    return VirtualTime(
        start_at,
        freeze=freeze,
        budget=parse_budget(budget),
        real_perf_counter=parse_flag("real_perf_counter", real_perf_counter),
    )


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
        return self.start + timedelta(microseconds=round(self.elapsed * US))


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
    budget: float | None = DEFAULT_BUDGET,
    real_perf_counter: bool = False,
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
        freeze: mirror the virtual clock into freezegun and ``time.sleep``.
        budget: virtual seconds the scenario may run (default one day; None:
            none).
        real_perf_counter: ``time.perf_counter`` reads real time in the
            scenario (every other reader stays virtual).

    Returns:
        A :class:`ScenarioResult` with the results in order and the elapsed
        virtual time.

    Raises:
        DeadlockError: tasks wait on something that can never happen.
        TimeBudgetExceeded: the scenario would run past its virtual-time budget.
        Stalled: real work (a thread, a process, a socket) made no progress.
        LeakedTasks: the scenario's tasks finished but left other tasks
            pending; they are cancelled and named in the message.
    """
    try:
        start_at = parse_start(start)
        budget = parse_budget(budget)
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
        parse_flag("return_exceptions", return_exceptions)
        parse_flag("freeze", freeze)
        parse_flag("real_perf_counter", real_perf_counter)
        if _running_loop_or_none() is not None:
            msg = (
                "run_scenario() starts its own event loop and cannot run inside "
                "a running one; call it from sync code (a plain test function)"
            )
            raise RuntimeError(msg)
    except BaseException:
        _close_coroutines(runnables)
        raise

    # The clock is made here and handed over: given start= and budget=, the
    # loop would build one clock to check them and another to keep.
    clock = VirtualClock(start_at, budget=budget, real_perf_counter=real_perf_counter)
    loop = VirtualTimeLoop(clock=clock, freeze=freeze)
    outcomes, elapsed = run_tasks(loop, runnables, task_names, freeze=freeze)

    if not return_exceptions:
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
    return ScenarioResult(
        results=tuple(outcomes), elapsed=elapsed, names=task_names, start=start_at
    )


def run_tasks(
    loop: VirtualTimeLoop,
    runnables: Sequence[_Runnable],
    names: Sequence[str],
    *,
    freeze: bool,
) -> tuple[list[Any], float]:
    """Run each runnable as a named task on ``loop`` (then closed); check for leaks.

    Returns each task's result or exception, in order, and the virtual time
    the last one finished at. The loop may be a subclass (the strategies'
    perturbed loop).
    """
    # The main task returns nothing: asyncio.Runner, putting back the SIGINT
    # handler on the main thread, formats the task's repr (its result
    # included) into an error message it discards, each time.
    out: list[tuple[list[Any], float]] = []
    _run_on(loop, _scenario_main(runnables, names, out), freeze=freeze)
    return out[0]


def _run_on(loop: VirtualTimeLoop, coro: Coroutine[Any, Any, R], *, freeze: bool) -> R:
    # The scope around the runner puts the clock in the context its tasks
    # copy, so threads that inherit it (anyio workers) find this clock.
    with (
        clock_scope(loop.clock, sync=False, freeze=freeze),
        asyncio.Runner(loop_factory=lambda: loop) as runner,
    ):
        return runner.run(coro)


async def _scenario_main(
    runnables: Iterable[_Runnable],
    names: Sequence[str],
    out: list[tuple[list[Any], float]],
) -> None:
    """Run the tasks and check for leaks; put ``(outcomes, elapsed)`` in ``out``."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)  # run_tasks gives it one
    me = asyncio.current_task()
    if me is not None:
        me.set_name("run_scenario")
    tasks = [
        asyncio.create_task(_call(r, name), name=name)
        for r, name in zip(runnables, names, strict=True)
    ]
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = loop.clock.elapsed
    leaked = sorted(await _pending_after_closes(me), key=lambda t: t.get_name())
    if leaked:
        msg = leaked_tasks_message(leaked, elapsed, "the scenario's tasks")
        for task in leaked:
            task.cancel()
        await asyncio.gather(*leaked, return_exceptions=True)
        raise LeakedTasks(msg)
    out.append((list(outcomes), elapsed))


def leaked_tasks_message(
    leaked: Sequence[asyncio.Task[Any]], elapsed: float, whose: str, ends: str = "the scenario"
) -> str:
    """The LeakedTasks message: when, how many, and each task with where it waits."""
    described = "\n".join(f"  - {describe_task(t)}" for t in leaked)
    return (
        f"{whose} finished at virtual time {elapsed:g} s but left "
        f"{len(leaked)} task(s) pending:\n{described}\n"
        f"Await every task you create (or cancel it) before {ends} ends."
    )


async def _pending_after_closes(me: asyncio.Task[Any] | None) -> list[asyncio.Task[Any]]:
    """Let the ``aclose()`` tasks of async generators left early run to their end,
    then return every other task still pending (the leaks).

    A consumer that ``break``s out of ``astream`` leaves the generator to the
    loop's finalizer hook, which schedules its ``aclose()`` as a task: that is
    cleanup in progress, not a leak.
    """
    await asyncio.sleep(0)  # the hook schedules the task with call_soon
    while True:
        # One all_tasks() per pass: it copies every task the process still
        # holds, not only this loop's.
        pending = [t for t in asyncio.all_tasks() if t is not me]
        closing = [t for t in pending if type(t.get_coro()).__name__ == "async_generator_athrow"]
        if not closing:
            return pending
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
