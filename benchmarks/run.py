"""Run every benchmark and print one table of ratios, plus how cost grows.

Run: ``python benchmarks/run.py`` (about a minute) or ``python benchmarks/run.py --quick``
(tiny sizes, seconds; the numbers are then only a smoke test).

The ratio table has one row per comparison: what fakellm costs (``measured``),
what its baseline costs, measured side by side in this process (``baseline``:
langchain-core's floor model or stock fakes, a no-op handler, zero-delay runs
on a stock loop, or real time), their ratio and the target. A row whose ratio
misses its target is marked ``MISS``, so a regression is visible at a glance.

The scaling section reports the cost per unit (chunk, concurrent stream,
recorded event) at growing sizes and the growth of that per-unit cost from the
smallest size to the largest: about 1.0x means linear; 4x at 16x the size
would mean quadratic. These are measurements, never test assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_explore
import bench_model
import bench_recorder
import bench_virtual_time

from fakellm import FakeChatModel, Recorder, Script, Turn, run_scenario
from fakellm.assertions import assert_well_formed

Row = tuple[str, float, float, str, str]  # name, measured, baseline, unit, target

FULL = {
    "model": {"chunks": 200, "streams": 100, "rounds": 7},
    "recorder": {"chunks": 2000, "repeats": 7},
    "virtual_time": {"streams": 100, "repeat": 7},
    "explore": {"examples": 300},
    "chunks": (50, 200, 800),
    "streams": (10, 100, 1000),
    "events": (500, 2000, 8000),
    "repeat": 5,
}
QUICK = {
    "model": {"chunks": 10, "streams": 3, "rounds": 1},
    "recorder": {"chunks": 20, "repeats": 1},
    "virtual_time": {"streams": 3, "repeat": 1},
    "explore": {"examples": 3},
    "chunks": (5, 10, 20),
    "streams": (2, 4, 8),
    "events": (20, 40, 80),
    "repeat": 1,
}


def ratio_rows(sizes: dict[str, Any]) -> list[Row]:
    return [
        *bench_model.rows(**sizes["model"]),
        *bench_recorder.rows(**sizes["recorder"]),
        *bench_virtual_time.rows(**sizes["virtual_time"]),
        *bench_explore.rows(**sizes["explore"]),
    ]


def per_chunk(n: int, repeat: int) -> float:
    """µs per chunk: FakeChatModel.astream of n chunks, recorded."""
    words = [f"w{i} " for i in range(n)]
    model = FakeChatModel(script=Script([Turn(chunks=words)], when_exhausted="repeat_last"))

    async def once() -> None:
        async for _ in model.astream("hi", config={"callbacks": [Recorder()]}):
            pass

    return bench_virtual_time.best_of(repeat, lambda: asyncio.run(once())) / n * 1e6


def per_stream(n: int, repeat: int) -> float:
    """µs per stream: n concurrent 10-chunk streams with scripted delays, run_scenario."""

    def once() -> None:
        models = [
            FakeChatModel(script=[Turn(" ".join("abcdefghij"), delay=0.01 * (i % 7))])
            for i in range(n)
        ]
        rec = Recorder()

        async def drain(m: FakeChatModel) -> None:
            async for _ in m.astream("hi", config={"callbacks": [rec]}):
                pass

        run_scenario(*(drain(m) for m in models))

    return bench_virtual_time.best_of(repeat, once) / n * 1e6


def per_event(n: int, repeat: int) -> float:
    """µs per event: normalized(), assert_well_formed() and usage() of a log of n events
    (n/4 streamed calls of 2 tokens each, so the number of runs grows with n too)."""
    model = FakeChatModel(script=Script([Turn("a b")], when_exhausted="repeat_last"))
    rec = Recorder()
    for _ in range(n // 4):
        for _ in model.stream("hi", config={"callbacks": [rec]}):
            pass
    log = rec.events
    assert len(log) == n, len(log)

    def queries() -> None:
        log._runs = log._labels = None  # type: ignore[misc]  # no cached run table
        log.normalized()
        assert_well_formed(log)
        log.usage()

    return bench_virtual_time.best_of(repeat, queries) / n * 1e6


def scaling_rows(sizes: dict[str, Any]) -> list[tuple[str, str, list[tuple[int, float]]]]:
    repeat = sizes["repeat"]
    return [
        (
            "FakeChatModel.astream, recorded",
            "µs/chunk",
            [(n, per_chunk(n, repeat)) for n in sizes["chunks"]],
        ),
        (
            "concurrent streams, run_scenario",
            "µs/stream",
            [(n, per_stream(n, repeat)) for n in sizes["streams"]],
        ),
        (
            "EventLog queries + assert_well_formed",
            "µs/event",
            [(n, per_event(n, repeat)) for n in sizes["events"]],
        ),
    ]


def _meets(ratio: float, target: str) -> bool:
    op, bound = target.split()
    return ratio <= float(bound) if op == "<=" else ratio >= float(bound)


def render(rows: list[Row], scaling: list[tuple[str, str, list[tuple[int, float]]]]) -> str:
    width = max(len(r[0]) for r in rows)
    lines = [
        f"{'benchmark':<{width}}  {'measured':>10}  {'baseline':>10}  {'unit':<9}"
        f"{'ratio':>8}  {'target':<8}  ",
    ]
    for name, measured, baseline, unit, target in rows:
        ratio = measured / baseline
        mark = "ok" if _meets(ratio, target) else "MISS"
        lines.append(
            f"{name:<{width}}  {measured:>10.3f}  {baseline:>10.3f}  {unit:<9}"
            f"{ratio:>7.3f}x  {target:<8}  {mark}"
        )
    lines += ["", "scaling (cost per unit at growing sizes; growth ~1.0x = linear)"]
    for name, unit, points in scaling:
        cells = "  ".join(f"{n:>5}: {cost:8.2f}" for n, cost in points)
        growth = points[-1][1] / points[0][1]
        size_growth = points[-1][0] / points[0][0]
        lines.append(
            f"{name:<{width}}  {unit:<9} {cells}  growth {growth:.2f}x over {size_growth:g}x size"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    table = render(ratio_rows(sizes), scaling_rows(sizes))
    print(table)
    return table


if __name__ == "__main__":
    main()
