"""A sleep that nothing can overtake ends on the spot, in the order the timer gives.

The virtual loop ends an ``asyncio.sleep`` at once (clock jumped, result set, no
suspension) when nothing else can run before its timer is due. Each test runs the
same program with that shortcut and without it and expects the very same trace:
order, loop time, ``time.time()`` and ``datetime.now()`` at every step.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from fakellm import FakeChatModel, Recorder, Script, Turn, _compat
from fakellm._clock import VirtualTimeLoop
from fakellm._scenario import run_tasks
from fakellm.errors import TimeBudgetExceeded

Trace = list[tuple[Any, ...]]


class _Counted(_compat.RunOnceHook, VirtualTimeLoop):
    """A virtual loop that counts its iterations."""

    iterations = 0

    def _before_run_once(self) -> None:
        self.iterations += 1


class _EveryTimer(_Counted):
    """The same loop, every sleep waking through its timer."""

    _vt_sleeps_on_the_spot = False


def play(
    loop_class: type[_Counted], *tasks: Callable[[Trace], Awaitable[None]], **loop_kwargs: Any
) -> tuple[Trace, int]:
    trace: Trace = []

    def bound(task: Callable[[Trace], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        return lambda: task(trace)

    loop = loop_class(freeze=True, **loop_kwargs)
    names = [f"t{i}" for i in range(len(tasks))]
    outcomes, elapsed = run_tasks(loop, [bound(t) for t in tasks], names, freeze=True)
    errors = [type(o).__name__ for o in outcomes if isinstance(o, BaseException)]
    trace.append(("end", elapsed, *errors))
    return trace, loop.iterations


def both(*tasks: Callable[[Trace], Awaitable[None]], **loop_kwargs: Any) -> Trace:
    """The trace with the shortcut, after checking it is the one without."""
    fast, _ = play(_Counted, *tasks, **loop_kwargs)
    slow, _ = play(_EveryTimer, *tasks, **loop_kwargs)
    assert fast == slow
    return fast


def mark(trace: Trace, what: str) -> None:
    loop_time = asyncio.get_running_loop().time()
    epoch_s = round(time.time() - 1704067200, 6)  # from the default start, 2024-01-01
    trace.append((what, loop_time, epoch_s, dt.datetime.now().microsecond))


def sleeper(name: str, *delays: float) -> Callable[[Trace], Awaitable[None]]:
    async def run(trace: Trace) -> None:
        for delay in delays:
            await asyncio.sleep(delay)
            mark(trace, name)

    return run


def test_one_task_alone_sleeps_through_the_same_instants() -> None:
    trace = both(sleeper("a", 0.001, 0.0000004, 0.25, 2))
    assert trace == [
        ("a", 0.001, 0.001, 1000),
        ("a", 0.001, 0.001, 1000),  # 0.4 µs rounds to now
        ("a", 0.251, 0.251, 251000),
        ("a", 2.251, 2.251, 251000),
        ("end", 2.251),
    ]


def test_interleaved_tasks_and_ties_keep_their_order() -> None:
    trace = both(sleeper("a", 0.002, 0.001, 0.003), sleeper("b", 0.001, 0.002, 0.003))
    # b's second timer (set at 1 ms) and a's second (set at 2 ms) are both due at
    # 3 ms: b's, set first, fires first; then a sleeps alone, then b.
    assert [(w, t) for w, t, *_ in trace] == [
        ("b", 0.001),
        ("a", 0.002),
        ("b", 0.003),
        ("a", 0.003),
        ("b", 0.006),
        ("a", 0.006),
        ("end", 0.006),
    ]


def test_a_ready_callback_or_a_new_task_runs_before_the_sleep_ends() -> None:
    async def main(trace: Trace) -> None:
        loop = asyncio.get_running_loop()
        loop.call_soon(mark, trace, "callback")
        await asyncio.sleep(1)
        mark(trace, "main")
        task = asyncio.create_task(sleeper("child", 0)(trace))
        await asyncio.sleep(1)
        mark(trace, "main")
        await task

    assert [(w, t) for w, t, *_ in both(main)] == [
        ("callback", 0.0),
        ("main", 1.0),
        ("child", 1.0),
        ("main", 2.0),
        ("end", 2.0),
    ]


def test_timeouts_expire_and_pass_as_before() -> None:
    async def main(trace: Trace) -> None:
        try:
            async with asyncio.timeout(0.5):
                await asyncio.sleep(1)
        except TimeoutError:
            mark(trace, "timed out")
        async with asyncio.timeout(5):
            await asyncio.sleep(1)
        mark(trace, "in time")
        assert await asyncio.wait_for(asyncio.sleep(1, result="r"), timeout=2) == "r"
        mark(trace, "wait_for")

    assert [(w, t) for w, t, *_ in both(main)] == [
        ("timed out", 0.5),
        ("in time", 1.5),
        ("wait_for", 2.5),
        ("end", 2.5),
    ]


def test_a_sleep_past_the_budget_fails_as_before() -> None:
    def over() -> None:
        play(_Counted, sleeper("a", 1, 5), budget=3)

    with pytest.raises(TimeBudgetExceeded) as fast:
        over()
    with pytest.raises(TimeBudgetExceeded) as slow:
        play(_EveryTimer, sleeper("a", 1, 5), budget=3)
    assert str(fast.value) == str(slow.value)
    assert "the next timer is due at 6 s, past this scope's budget of 3" in str(fast.value)


def test_a_sleep_cancelled_by_another_task_stays_cancelled() -> None:
    async def main(trace: Trace) -> None:
        victim = asyncio.create_task(sleeper("victim", 1, 1)(trace))
        await asyncio.sleep(1.5)
        victim.cancel()
        mark(trace, "cancelled")
        with pytest.raises(asyncio.CancelledError):
            await victim
        await asyncio.sleep(1)
        mark(trace, "main")

    assert [(w, t) for w, t, *_ in both(main)] == [
        ("victim", 1.0),
        ("cancelled", 1.5),
        ("main", 2.5),
        ("end", 2.5),
    ]


def test_streams_record_the_same_events() -> None:
    def call(delays: tuple[float, ...]) -> Callable[[Trace], Awaitable[None]]:
        async def run(trace: Trace) -> None:
            recorder = Recorder()
            turn = Turn(chunks=("a", "b", "c"), first_token_delay=delays[0], delay=delays[1:])
            model = FakeChatModel(script=Script([turn]), callbacks=[recorder])
            async for _ in model.astream("hi"):
                mark(trace, "chunk")
            trace.extend((e.kind, e.time, e.wall_time) for e in recorder.events)

        return run

    trace = both(call((0.003, 0.001, 0.004)), call((0.001, 0.005, 0.001)))
    assert [t for w, t, *_ in trace if w == "chunk"] == [0.001, 0.003, 0.004, 0.006, 0.007, 0.008]


def test_a_task_alone_takes_a_few_iterations_instead_of_two_per_sleep() -> None:
    _, fast = play(_Counted, sleeper("a", *[0.001] * 100))
    _, slow = play(_EveryTimer, sleeper("a", *[0.001] * 100))
    assert slow >= 200
    assert fast < 20  # starting, finishing and closing the run


@pytest.mark.parametrize("loop_class", [_Counted, _EveryTimer])
def test_a_sleep_after_stop_waits_for_the_next_run(loop_class: type[_Counted]) -> None:
    trace: Trace = []
    loop = loop_class()
    try:

        async def stopper() -> None:
            loop.stop()

        loop.create_task(stopper())
        sleeping = loop.create_task(sleeper("a", 1)(trace))
        loop.run_forever()
        stopped_at = (loop.time(), list(trace))
        loop.run_until_complete(sleeping)
    finally:
        loop.close()
    assert stopped_at == (0.0, [])
    assert [(w, t) for w, t, *_ in trace] == [("a", 1.0)]
