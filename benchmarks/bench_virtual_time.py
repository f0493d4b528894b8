"""What virtual time costs, and what it saves.

Run: ``python benchmarks/bench_virtual_time.py [--streams N] [--repeat R]``

1. Overhead: N concurrent ``astream`` calls with scripted delays, run under
   virtual time (``run_scenario``: fresh VirtualTimeLoop + freezegun), against
   the same streams with zero delays on a stock asyncio loop (the floor).
   Target: ratio <= 1.2x.
2. Speed-up: a scenario with 10 minutes of scripted latency (10 sequential
   calls, each 31 s to the first token then 29 more chunks 1 s apart), virtual
   seconds per wall second. Target: > 1000x.

Uses FakeChatModel when it can be imported, else plain asyncio.sleep streams.
Figures are best-of-R wall times; this is a script, not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fakellm._clock import run_scenario

# freezegun rebinds module-level references to the real clock functions while
# a scenario runs; a tuple slot keeps the real one.
_WALL = (time.perf_counter,)

WORDS = 20

try:
    from fakellm._model import FakeChatModel
    from fakellm._script import Turn
except ImportError:  # pragma: no cover - the model is written separately
    FakeChatModel = None  # type: ignore[assignment,misc]


def make_stream(
    first: float, delay: float, words: int = WORDS, turns: int = 1
) -> Callable[[], AsyncIterator[Any]]:
    """One stream factory: FakeChatModel if available, else plain sleeps."""
    text = " ".join(f"w{i}" for i in range(words))
    if FakeChatModel is not None:
        model = FakeChatModel(
            script=[
                Turn(text, chunks="words", first_token_delay=first, delay=delay)
                for _ in range(turns)
            ]
        )
        return lambda: model.astream("hello")

    async def plain() -> AsyncIterator[str]:
        await asyncio.sleep(first)
        for i, word in enumerate(text.split()):
            if i:
                await asyncio.sleep(delay)
            yield word

    return plain


async def consume(stream: Callable[[], AsyncIterator[Any]], calls: int = 1) -> int:
    n = 0
    for _ in range(calls):
        async for _chunk in stream():
            n += 1
    return n


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        t0 = _WALL[0]()
        fn()
        times.append(_WALL[0]() - t0)
    return min(times)


def bench_overhead(n: int, repeat: int) -> list[tuple[str, float, str]]:
    def virtual() -> None:
        streams = [make_stream(0.3 + 0.01 * i, 0.05) for i in range(n)]
        result = run_scenario(*(lambda s=s: consume(s) for s in streams))
        assert sum(result.results) == n * WORDS

    def virtual_no_freeze() -> None:
        streams = [make_stream(0.3 + 0.01 * i, 0.05) for i in range(n)]
        result = run_scenario(*(lambda s=s: consume(s) for s in streams), freeze=False)
        assert sum(result.results) == n * WORDS

    def virtual_zero() -> None:
        streams = [make_stream(0.0, 0.0) for _ in range(n)]
        result = run_scenario(*(lambda s=s: consume(s) for s in streams))
        assert sum(result.results) == n * WORDS

    def floor() -> None:
        streams = [make_stream(0.0, 0.0) for _ in range(n)]

        async def main() -> list[int]:
            return await asyncio.gather(*(consume(s) for s in streams))

        assert sum(asyncio.run(main())) == n * WORDS

    base = best_of(repeat, floor)
    rows = [(f"{n} streams, zero delays, stock loop (floor)", base, "1.00x")]
    for label, fn in (
        (f"{n} streams, zero delays, run_scenario", virtual_zero),
        (f"{n} streams, scripted delays, run_scenario", virtual),
        (
            f"{n} streams, scripted delays, run_scenario(freeze=False)",
            virtual_no_freeze,
        ),
    ):
        wall = best_of(repeat, fn)
        rows.append((label, wall, f"{wall / base:.2f}x"))
    return rows


def bench_speedup(repeat: int) -> tuple[str, float, str]:
    calls, words, first, delay = 10, 30, 31.0, 1.0
    virtual_seconds = calls * (first + (words - 1) * delay)  # 600 s

    def scenario() -> None:
        stream = make_stream(first, delay, words=words, turns=calls)
        result = run_scenario(lambda: consume(stream, calls))
        assert result.elapsed == virtual_seconds, result.elapsed

    wall = best_of(repeat, scenario)
    label = f"{virtual_seconds / 60:g} min of scripted latency ({calls} calls)"
    return label, wall, f"{virtual_seconds / wall:,.0f}x faster than real"


def rows(streams: int = 100, repeat: int = 7) -> list[tuple[str, float, float, str, str]]:
    """Ratio rows for ``benchmarks/run.py``: (name, measured, baseline, unit, target).

    The floor is the same streams with zero delays on a stock asyncio loop; the
    speed-up row compares the wall time with the scripted (virtual) seconds.
    """
    overhead = bench_overhead(streams, repeat)
    floor = overhead[0][1]
    out = [
        (
            f"run_scenario, {label} vs zero delays on a stock loop",
            wall * 1e3,
            floor * 1e3,
            "ms",
            "<= 1.20",
        )
        for label, wall in (("zero delays", overhead[1][1]), ("scripted delays", overhead[2][1]))
    ]
    label, wall, _ = bench_speedup(repeat)
    # Virtual seconds per wall second, against real time (1 s per s).
    out.append((f"{label}: virtual vs real time", 600.0 / wall, 1.0, "s/s", ">= 1000"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    source = "FakeChatModel" if FakeChatModel is not None else "asyncio.sleep streams"
    print(f"virtual time benchmark ({source}, {WORDS} chunks per stream)")
    rows = [*bench_overhead(args.streams, args.repeat), bench_speedup(args.repeat)]
    width = max(len(r[0]) for r in rows)
    print(f"{'scenario':<{width}}  {'wall (best)':>12}  result")
    for label, wall, note in rows:
        print(f"{label:<{width}}  {wall * 1000:>9.1f} ms  {note}")


if __name__ == "__main__":
    main()
