"""What an executor job that calls back into the loop costs under virtual time.

Run: ``python benchmarks/bench_job_callbacks.py [--jobs N] [--rounds R]``

Eight sync jobs, one after another, each calling back into its loop and waiting
for the answer (``asyncio.run_coroutine_threadsafe(...).result()``, or
``loop.call_soon_threadsafe(event.set)`` then ``event.wait()``), as LangChain's
sync code does from a worker thread. The virtual loop waits for each executor job
before its next step, up to a grace of real seconds; a job that is waiting for
the loop must not be waited for. The baseline is the same jobs on a stock loop.

Unlike the other benchmarks this one times **wall-clock** seconds: the cost it
watches is time spent waiting, which CPU time does not see. Ratios are taken
per round against the stock loop timed in the same round (median [min-max]).
These are measurements, never test assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from fakellm._loop import VirtualTimeLoop

# A tuple slot keeps the real clock should anything rebind module-level names.
_WALL = (time.perf_counter,)


async def _double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


def via_coroutine(loop: asyncio.AbstractEventLoop, x: int) -> object:
    return asyncio.run_coroutine_threadsafe(_double(x), loop).result(timeout=30)


def via_event(loop: asyncio.AbstractEventLoop, x: int) -> object:
    done = threading.Event()
    loop.call_soon_threadsafe(done.set)
    return done.wait(30)


async def _jobs(job: Callable[[asyncio.AbstractEventLoop, int], object], n: int) -> list[Any]:
    loop = asyncio.get_running_loop()
    return [await loop.run_in_executor(None, job, loop, i) for i in range(n)]


def _wall(factory: Callable[[], asyncio.AbstractEventLoop], job: Any, n: int) -> float:
    t0 = _WALL[0]()
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_jobs(job, n))
    return _WALL[0]() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"{args.jobs} executor jobs in a row, each calling back into its loop (wall seconds)")
    for job in (via_coroutine, via_event):
        virtual, stock, ratios = [], [], []
        for _ in range(args.rounds):
            v = _wall(lambda: VirtualTimeLoop(freeze=True), job, args.jobs)
            s = _wall(asyncio.new_event_loop, job, args.jobs)
            virtual.append(v)
            stock.append(s)
            ratios.append(v / s)
        print(
            f"{job.__name__:<14} virtual loop {statistics.median(virtual):.4f} s, "
            f"stock loop {statistics.median(stock):.4f} s, "
            f"ratio {statistics.median(ratios):.2f}x [{min(ratios):.2f} - {max(ratios):.2f}]"
        )


if __name__ == "__main__":
    main()
