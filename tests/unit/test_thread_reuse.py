"""A thread that gets the ident of one that ended is a new thread, to the mirror and the loop.

The OS hands an ended thread's id to a later one (glibc reuses the cached
stack). The mirror and the virtual loop used to tell old threads from new ones
by ident, so such a thread was taken for the old one: it read real time inside
a scope, and the loop called a deadlock while it was busy.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from fakellm import virtual_time
from fakellm._loop import VirtualTimeLoop

START = dt.datetime(2030, 6, 1, 12, 0, 0)


@contextmanager
def old_thread() -> Iterator[Callable[[], int]]:
    """A thread alive on entry; calling the yielded function ends it and returns its ident."""
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="old")
    thread.start()

    def end() -> int:
        release.set()
        thread.join()
        return thread.ident or 0

    try:
        yield end
    finally:
        release.set()
        thread.join()


def thread_with_ident(ident: int, target: Callable[[], None]) -> threading.Thread:
    """A new thread that got ``ident`` (tried until the OS reuses it), then runs ``target``."""
    for _ in range(500):
        go = threading.Event()
        chosen: list[bool] = []

        def run(go: threading.Event = go, chosen: list[bool] = chosen) -> None:
            go.wait()
            if chosen:
                target()

        thread = threading.Thread(target=run, name="new")
        thread.start()
        if thread.ident == ident:
            chosen.append(True)
            go.set()
            return thread
        go.set()
        thread.join()
        threading.Event().wait(0.001)  # real, even in a scope: the old stack goes back
    # A precondition, not the behaviour under test: under load another thread (an
    # earlier test's executor worker winding down) can take the ended thread's stack
    # first, and each new thread then reuses its own; seen once under -n 2.
    pytest.skip(f"the OS did not reuse thread id {ident} in 500 new threads")


def test_a_thread_started_in_a_scope_with_an_ended_threads_ident_joins_the_scope() -> None:
    readings: list[dt.datetime] = []
    with old_thread() as end, virtual_time(START):
        ident = end()
        new = thread_with_ident(ident, lambda: readings.append(dt.datetime.now()))
        new.join()
    assert readings == [START]


def test_the_loop_waits_for_a_busy_thread_with_an_ended_threads_ident() -> None:
    def spin(seconds: float) -> None:
        deadline = time.perf_counter() + seconds  # real: this loop does not freeze time
        while time.perf_counter() < deadline:
            pass

    async def main(end: Callable[[], int]) -> str:
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[str] = loop.create_future()

        def work() -> None:
            spin(0.1)  # busy, not waiting: the loop must wait for it
            loop.call_soon_threadsafe(reply.set_result, "from the new thread")

        thread_with_ident(end(), work)
        return await reply

    with old_thread() as end:
        loop = VirtualTimeLoop(freeze=False)
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            assert runner.run(main(end)) == "from the new thread"
