"""Executor jobs that call back into the virtual loop cost no grace; the others keep their order.

The loop waits (once per job, up to a grace) for each executor job to finish
before anything else runs. A job that calls back into the loop and then waits
for it cannot finish before the loop runs again, so that wait ends as soon as
the job blocks. Each test sets the grace to 1000 s: on a loop that waited the
grace out, the job's own bounded wait (5 s) runs out first, and the test fails
with the job's error or a False, not by timing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from typing import Any

import pytest

from fakellm import _loop
from fakellm._loop import VirtualTimeLoop

JOB_WAIT = 5.0  # real seconds a job waits for the loop before it gives up


@pytest.fixture(autouse=True)
def long_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_loop, "_ORDER_GRACE", 1000.0)


def run_on(main: Any, *, freeze: bool = True) -> Any:
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(freeze=freeze)) as runner:
        return runner.run(main())


async def double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def through_the_loop(loop: asyncio.AbstractEventLoop, x: int) -> int:
    return asyncio.run_coroutine_threadsafe(double(x), loop).result(timeout=JOB_WAIT)


def set_by_the_loop(loop: asyncio.AbstractEventLoop, x: int) -> tuple[int, bool]:
    done = threading.Event()
    loop.call_soon_threadsafe(done.set)
    return x, done.wait(JOB_WAIT)


def test_eight_jobs_one_after_another_that_wait_on_the_loop_are_not_waited_for():
    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        out: list[Any] = []
        for i in range(8):
            out.append(await loop.run_in_executor(None, through_the_loop, loop, i))
            out.append(await loop.run_in_executor(None, set_by_the_loop, loop, i))
        return out

    expected = []
    for i in range(8):
        expected += [2 * i, (i, True)]
    assert run_on(main) == expected


def test_a_job_that_called_back_before_the_loop_started_waiting_is_not_waited_for():
    posted = threading.Event()

    def job(loop: asyncio.AbstractEventLoop) -> bool:
        done = threading.Event()
        loop.call_soon_threadsafe(done.set)
        posted.set()
        return done.wait(JOB_WAIT)

    async def main() -> bool:
        loop = asyncio.get_running_loop()
        result = loop.run_in_executor(None, job, loop)
        # The callback arrives while this task still runs: before the loop
        # gets to its wait for the job.
        assert posted.wait(JOB_WAIT)
        return await result

    assert run_on(main) is True


def test_a_finished_job_held_behind_one_that_waits_on_the_loop_is_released_at_once():
    def inner_job() -> str:
        return "inner"

    async def outer_needs_inner() -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, inner_job)

    def outer_job(loop: asyncio.AbstractEventLoop) -> str:
        future = asyncio.run_coroutine_threadsafe(outer_needs_inner(), loop)
        return "outer got " + future.result(timeout=JOB_WAIT)

    async def main() -> str:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, outer_job, loop)

    assert run_on(main) == "outer got inner"


def test_a_job_that_sends_and_goes_on_is_still_waited_for_until_it_ends():
    # LangGraph's stream writer and langchain-core's tracer queues send from
    # executor jobs with call_soon_threadsafe and carry on: the job is waited
    # for until it ends, so its result comes back before the other task's next
    # step, on every run (a loop that stopped waiting at the first callback
    # would let the stepping task run ahead while the job sleeps).
    trace: list[str] = []
    sent: list[str] = []

    def job(loop: asyncio.AbstractEventLoop) -> str:
        loop.call_soon_threadsafe(sent.append, "sent")
        time.sleep(0.05)  # real: this loop does not freeze time; the job runs code meanwhile
        return "job"

    async def waiter() -> None:
        loop = asyncio.get_running_loop()
        trace.append(await loop.run_in_executor(None, job, loop))

    async def stepper() -> None:
        for i in range(3):
            trace.append(f"step {i}")
            await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(waiter(), stepper())

    run_on(main, freeze=False)
    assert trace == ["step 0", "step 1", "job", "step 2"]
    assert sent == ["sent"]


def test_a_job_waiting_on_a_coroutine_that_sleeps_lets_the_clock_move_as_a_stock_loop_does():
    # It used to count as real work in flight, so the clock stood still and the
    # loop ended in Stalled; on a stock loop it takes 1.5 s.
    async def nap() -> float:
        await asyncio.sleep(1.5)
        return asyncio.get_running_loop().time()

    def job(loop: asyncio.AbstractEventLoop) -> float:
        return asyncio.run_coroutine_threadsafe(nap(), loop).result(timeout=JOB_WAIT)

    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        woke = await loop.run_in_executor(None, job, loop)
        return woke, loop.time()

    assert run_on(main) == (1.5, 1.5)


def test_a_job_the_loop_just_woke_finishes_before_the_clock_moves():
    # Once the loop has resolved what the job waits for, the job is running
    # again even while its frame still shows the wait: the loop waits for it,
    # so it ends at virtual time 0, before the 1 s timer, on every run.
    async def quick() -> str:
        return "quick"

    def job(loop: asyncio.AbstractEventLoop) -> str:
        return asyncio.run_coroutine_threadsafe(quick(), loop).result(timeout=JOB_WAIT)

    async def main() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        timer = asyncio.ensure_future(asyncio.sleep(1))
        got = await loop.run_in_executor(None, job, loop)
        at = loop.time()
        await timer
        return got, at

    assert [run_on(main) for _ in range(30)] == [("quick", 0.0)] * 30


def test_a_job_that_called_back_then_waits_on_a_pool_running_its_work_is_still_waited_for():
    # Its wait is signalled by another pool's worker (one that existed before the
    # loop, so no "new busy thread" shows it), not by the loop: it is real work.
    # On a stock loop the job ends long before the 5 s timeout; the clock jumped
    # to the timeout instead.
    other = concurrent.futures.ThreadPoolExecutor(1)
    other.submit(lambda: None).result()

    def work() -> str:
        time.sleep(0.05)  # real: the other pool's worker runs code meanwhile
        return "worked"

    def job(loop: asyncio.AbstractEventLoop) -> str:
        loop.call_soon_threadsafe(lambda: None)  # a note to the loop, then real work elsewhere
        return other.submit(work).result(timeout=JOB_WAIT)

    async def main() -> tuple[str, float]:
        loop = asyncio.get_running_loop()
        got = await asyncio.wait_for(loop.run_in_executor(None, job, loop), timeout=5)
        return got, loop.time()

    try:
        assert run_on(main) == ("worked", 0.0)
    finally:
        other.shutdown()
