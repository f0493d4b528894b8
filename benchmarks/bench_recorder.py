"""What recording costs: streaming with the Recorder against a no-op inline handler.

Run: ``python benchmarks/bench_recorder.py [--rounds 9]``

Both sides stream the same reused FakeChatModel (its first call untimed), so
the difference is the handler: the Recorder records each callback (clock, task,
thread, wall time), the no-op handler returns at once. Each call gets a new
handler, as each test gets a new Recorder. A streamed token is recorded as a
plain tuple and becomes its Event when ``events`` is first read, so the
"recorded and read" rows also read ``events`` once after each call: what a test
that looks at its log pays in all. Also reports the memory a recorded event
costs. Timing rules: see ``_harness.py``.
"""

from __future__ import annotations

import asyncio
import sys
import tracemalloc
from collections.abc import Callable

from _harness import Row, Section, arguments, measure, on_loop, render, row
from langchain_core.callbacks import BaseCallbackHandler

from fakellm import FakeChatModel, Recorder, Script, Turn

SIZES = (20, 2000)


class NoOp(BaseCallbackHandler):
    """The floor: an inline handler that does nothing."""

    run_inline = True


def make_model(n: int) -> FakeChatModel:
    words = [f"w{i} " for i in range(n)]
    return FakeChatModel(script=Script([Turn(chunks=words)], when_exhausted="repeat_last"))


def read_events(handler: BaseCallbackHandler) -> None:
    """Read a Recorder's log, as a test does after the call."""
    assert isinstance(handler, Recorder)
    assert len(handler.events) > 2


def _sections(
    n: int,
    budget: int,
    loop: asyncio.AbstractEventLoop,
    handler: Callable[[], BaseCallbackHandler],
    after: Callable[[BaseCallbackHandler], None] = lambda _handler: None,
) -> dict[str, Section]:
    model = make_model(n)
    calls = max(1, budget // n)
    for _ in model.stream("q"):  # the first call, and core's serialization, untimed
        pass

    def sync() -> int:
        for _ in range(calls):
            h = handler()
            for _chunk in model.stream("q", config={"callbacks": [h]}):
                pass
            after(h)
        return calls * n

    async def run_async() -> int:
        for _ in range(calls):
            h = handler()
            async for _chunk in model.astream("q", config={"callbacks": [h]}):
                pass
            after(h)
        return calls * n

    return {"stream": sync, "astream": on_loop(loop, run_async)}


def sections(
    budget: int, loop: asyncio.AbstractEventLoop, sizes: tuple[int, ...] = SIZES
) -> dict[str, Section]:
    """Timed sections ``"<handler> <path> <n>"``; µs per chunk."""
    out: dict[str, Section] = {}
    for n in sizes:
        for name, handler, after in (
            ("recorder", Recorder, lambda _h: None),
            ("recorder+read", Recorder, read_events),
            ("noop", NoOp, lambda _h: None),
        ):
            for path, section in _sections(n, budget, loop, handler, after).items():
                out[f"{name} {path} {n}"] = section
    return out


def rows(budget: int = 2000, n_rounds: int = 9, sizes: tuple[int, ...] = SIZES) -> list[Row]:
    """Report rows for ``benchmarks/run.py``: µs per chunk, ratio to the no-op handler."""
    times = measure(lambda loop: sections(budget, loop, sizes), n_rounds)
    return [
        row(
            f"Recorder{' recorded and read' if read else ''} vs no-op inline handler, "
            f"{path}, {n} chunks",
            times,
            f"recorder{'+read' if read else ''} {path} {n}",
            f"noop {path} {n}",
            "µs/chunk",
            "<= 1.10" if n == 20 and not read else "",
        )
        for read in (False, True)
        for n in sizes
        for path in ("stream", "astream")
    ]


def memory_per_event(n: int = 2000) -> tuple[float, float, int, int]:
    """Bytes per recorded event: allocated by the Recorder, in all, and the Event tuple."""
    model = make_model(n)
    rec = Recorder()
    chunks = []
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    # Keep the chunks alive, so only the Recorder's own allocations count as its own.
    for c in model.stream("q", config={"callbacks": [rec]}):
        chunks.append(c)
    log = rec.events  # the tokens' Events are built on this first read
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = after.compare_to(before, "filename")
    own = sum(
        s.size_diff
        for s in stats
        if s.traceback[0].filename.endswith(("_recorder.py", "_events.py"))
    )
    total = sum(s.size_diff for s in stats)
    events = len(log)
    return own / events, total / events, sys.getsizeof(log[1]), events


def main() -> None:
    args = arguments(__doc__, rounds=9, budget=2000)
    print("\n".join(render(rows(args.budget, args.rounds))))
    own, total, size, events = memory_per_event()
    print(
        f"\nmemory per recorded event ({events} events): {own:.0f} B allocated by the "
        f"Recorder, {total:.0f} B in all (with what langchain-core allocates for the "
        f"callback call), the Event tuple itself {size} B"
    )


if __name__ == "__main__":
    main()
