"""What virtual time costs, and what it saves.

Run: ``python benchmarks/bench_virtual_time.py [--streams N] [--rounds R] [--real-delays]``

1. Overhead: N concurrent ``astream`` calls of 20 chunks under ``run_scenario``
   (a fresh VirtualTimeLoop and the freezegun mirror), with zero delays and
   with scripted delays, against the same streams with zero delays under
   ``asyncio.run`` on a stock loop (the floor). Target: ratio <= 1.2x.
   Every run builds its models and its loop, on both sides.
2. Speed-up: a scenario with 10 minutes of scripted latency (10 sequential
   calls, each 31 s to the first token then 29 more chunks 1 s apart), virtual
   seconds per CPU second. Target: > 1000x.

``--real-delays`` adds, for context, the scripted delays slept for real on a
stock loop (CPU time of about 2 wall seconds per round): what the delays cost
a stock loop, where the floor above has no delay at all.

Timing rules (CPU time, garbage collected before each section, shuffled order,
ratios per round against the floor timed in the same round): ``_harness.py``.
Every section runs once before timing, so the process's one scan of loaded
modules for freezegun is not timed.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from _harness import Row, Section, render, rounds, row, settle

from fakellm._model import FakeChatModel
from fakellm._scenario import run_scenario
from fakellm._script import Turn

WORDS = 20
#: The speed-up scenario: calls, chunks per call, seconds to the first chunk, between chunks.
CALLS, LONG_WORDS, FIRST, DELAY = 10, 30, 31.0, 1.0
VIRTUAL_SECONDS = CALLS * (FIRST + (LONG_WORDS - 1) * DELAY)  # 600 s


def make_stream(
    first: float, delay: float, words: int = WORDS, turns: int = 1
) -> Callable[[], AsyncIterator[Any]]:
    """A fresh FakeChatModel of ``turns`` turns of ``words`` chunks; its astream factory."""
    text = " ".join(f"w{i}" for i in range(words))
    model = FakeChatModel(
        script=[
            Turn(text, chunks="words", first_token_delay=first, delay=delay) for _ in range(turns)
        ]
    )
    return lambda: model.astream("hello")


async def consume(stream: Callable[[], AsyncIterator[Any]], calls: int = 1) -> int:
    n = 0
    for _ in range(calls):
        async for _chunk in stream():
            n += 1
    return n


def _streams(n: int, *, delays: bool, scale: float = 1.0) -> list[Callable[[], AsyncIterator[Any]]]:
    if delays:
        return [make_stream((0.3 + 0.01 * i) * scale, 0.05 * scale) for i in range(n)]
    return [make_stream(0.0, 0.0) for _ in range(n)]


def on_stock_loop(n: int, *, delays: bool = False) -> Section:
    """The streams under ``asyncio.run``; µs per chunk."""

    def run() -> int:
        streams = _streams(n, delays=delays)

        async def main() -> list[int]:
            return await asyncio.gather(*(consume(s) for s in streams))

        chunks = sum(asyncio.run(main()))
        assert chunks == n * WORDS, chunks
        return chunks

    return run


def under_run_scenario(n: int, *, delays: bool, freeze: bool = True) -> Section:
    """The streams as the tasks of one ``run_scenario``; µs per chunk."""

    def run() -> int:
        streams = _streams(n, delays=delays)
        result = run_scenario(*(lambda s=s: consume(s) for s in streams), freeze=freeze)
        chunks = sum(result.results)
        assert chunks == n * WORDS, chunks
        return chunks

    return run


def long_scenario() -> int:
    """The speed-up scenario, once (one unit: µs per scenario)."""
    stream = make_stream(FIRST, DELAY, words=LONG_WORDS, turns=CALLS)
    result = run_scenario(lambda: consume(stream, CALLS))
    assert result.elapsed == VIRTUAL_SECONDS, result.elapsed
    return 1


FLOOR = "stock loop, zero delays"
ZERO = "run_scenario, zero delays"
SCRIPTED = "run_scenario, scripted delays"
UNFROZEN = "run_scenario(freeze=False), scripted delays"
REAL = "stock loop, scripted delays slept for real"
LONG = "10 min of scripted latency"


def sections(streams: int, *, real_delays: bool = False) -> dict[str, Section]:
    """Timed sections, each run once first (imports, the first scope's scan)."""
    out = {
        FLOOR: on_stock_loop(streams),
        ZERO: under_run_scenario(streams, delays=False),
        SCRIPTED: under_run_scenario(streams, delays=True),
        UNFROZEN: under_run_scenario(streams, delays=True, freeze=False),
        LONG: long_scenario,
    }
    if real_delays:
        out[REAL] = on_stock_loop(streams, delays=True)
    for warm in out.values():
        warm()
    return out


def _rows(times: dict[str, list[float]], *, unfrozen: bool = False) -> list[Row]:
    floor = "vs zero delays on a stock loop"
    unit = "µs/chunk"
    out = [
        row(f"{ZERO} {floor}", times, ZERO, FLOOR, unit, "<= 1.20"),
        row(f"{SCRIPTED} {floor}", times, SCRIPTED, FLOOR, unit, "<= 1.20"),
    ]
    if unfrozen:
        out.append(row(f"{UNFROZEN} {floor}", times, UNFROZEN, FLOOR, unit))
    if REAL in times:
        out.append(row(f"{REAL} {floor}", times, REAL, FLOOR, unit))
        out.append(row(f"{SCRIPTED} vs {REAL}", times, SCRIPTED, REAL, unit))
    # Virtual seconds per CPU second, against real time (1 s per s).
    per_second = {LONG: [VIRTUAL_SECONDS / (us * 1e-6) for us in times[LONG]]}
    label = f"{LONG} ({CALLS} calls): virtual vs real time"
    out.append(row(label, per_second, LONG, None, "s/s", ">= 1000"))
    return out


def rows(streams: int = 100, n_rounds: int = 7) -> list[Row]:
    """Report rows for ``benchmarks/run.py``."""
    timed = sections(streams)
    settle()
    return _rows(rounds(timed, n_rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--real-delays", action="store_true", help="also sleep the delays for real")
    args = parser.parse_args()
    timed = sections(args.streams, real_delays=args.real_delays)
    settle()
    times = rounds(timed, args.rounds)
    print(f"{args.streams} concurrent FakeChatModel astream calls of {WORDS} chunks")
    print("\n".join(render(_rows(times, unfrozen=True))))


if __name__ == "__main__":
    main()
