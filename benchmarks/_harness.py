"""How every benchmark here times things, so its figures can be quoted.

- CPU time (``time.process_time``): other processes on a shared machine do
  not count against the code measured, as wall-clock time would.
- ``gc.collect()`` before each timed section, and ``gc.freeze()`` once the
  imports and warm-ups are done (see :func:`settle`): a collection triggered
  by garbage an earlier section left, or one traversing every imported module,
  would otherwise land on whichever section happened to run next (identical
  code then read 1.08x-1.52x against itself across processes).
- Each round runs every section once, in an order shuffled per round by a
  seeded generator, so slow drifts (CPU frequency, cache state) spread evenly.
- Ratios are taken per round, against the baseline timed in that same round,
  and reported as median [min-max] over the rounds: a ratio of medians would
  pair a fast round of one with a slow round of the other.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

SEED = 17

#: A prepared benchmark section: runs its work once and returns how many units
#: (chunks, calls, events, examples) it processed.
Section = Callable[[], int]


def cpu() -> float:
    """CPU seconds of this process (all threads), the clock every section uses."""
    return time.process_time()


def settle() -> None:
    """Collect, then move every surviving object (imports, warm-up caches) out
    of the collector's sight, so later collections only see what benchmarks allocate."""
    gc.collect()
    gc.freeze()


def timed(section: Section) -> float:
    """CPU microseconds per unit of one run of ``section``, collected garbage first."""
    gc.collect()
    t0 = cpu()
    units = section()
    return (cpu() - t0) / units * 1e6


def rounds(sections: Mapping[str, Section], n: int, *, seed: int = SEED) -> dict[str, list[float]]:
    """Time every section once per round, in a shuffled order; µs per unit per round."""
    rng = random.Random(seed)
    out: dict[str, list[float]] = {name: [] for name in sections}
    names = list(sections)
    for _ in range(n):
        rng.shuffle(names)
        for name in names:
            out[name].append(timed(sections[name]))
    return out


def measure(
    build: Callable[[asyncio.AbstractEventLoop], Mapping[str, Section]], n: int
) -> dict[str, list[float]]:
    """Build the sections (with their warm-ups) on a fresh event loop, settle, time
    ``n`` rounds of them (:func:`rounds`), then close the loop."""
    loop = asyncio.new_event_loop()
    try:
        sections = build(loop)
        settle()
        return rounds(sections, n)
    finally:
        loop.close()


def arguments(doc: str, *, rounds: int, budget: int) -> argparse.Namespace:
    """``--rounds`` and ``--budget`` (chunks per timed section) of a benchmark script."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--budget", type=int, default=budget, help="chunks per timed section")
    return parser.parse_args()


def on_loop(loop: asyncio.AbstractEventLoop, make: Callable[[], Awaitable[int]]) -> Section:
    """A section that runs the coroutine ``make()`` returns on ``loop`` (kept for all rounds)."""
    return lambda: loop.run_until_complete(make())  # type: ignore[arg-type]


@dataclass(frozen=True)
class Row:
    """One line of the report: what fakellm costs against its baseline, per round.

    ``baseline`` is None for an absolute figure (examples per second), which is
    then compared with the target itself.
    """

    name: str
    unit: str
    measured: list[float]
    baseline: list[float] | None
    target: str

    @property
    def ratios(self) -> list[float]:
        if self.baseline is None:
            return list(self.measured)
        return [m / b for m, b in zip(self.measured, self.baseline, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    @property
    def ok(self) -> bool | None:
        if not self.target:
            return None
        op, bound = self.target.split()
        return self.ratio <= float(bound) if op == "<=" else self.ratio >= float(bound)


def row(
    name: str,
    times: Mapping[str, list[float]],
    measured: str,
    baseline: str | None,
    unit: str,
    target: str = "",
) -> Row:
    """A Row from the per-round times of two sections (``baseline`` None: absolute)."""
    return Row(name, unit, times[measured], None if baseline is None else times[baseline], target)


def render(rows: Iterable[Row]) -> list[str]:
    """The table: medians of both sides, the per-round ratio as median [min-max]."""
    rows = list(rows)
    width = max((len(r.name) for r in rows), default=10)
    lines = [
        f"{'benchmark':<{width}}  {'measured':>10}  {'baseline':>10}  {'unit':<9}"
        f"{'ratio':>9}  {'[min - max]':<17}  target",
    ]
    for r in rows:
        ratios = r.ratios
        base = f"{statistics.median(r.baseline):>10.3f}" if r.baseline is not None else " " * 10
        kind = "x" if r.baseline is not None else " "
        spread = f"[{min(ratios):.3f} - {max(ratios):.3f}]"
        mark = {None: "", True: "ok", False: "MISS"}[r.ok]
        lines.append(
            f"{r.name:<{width}}  {statistics.median(r.measured):>10.3f}  {base}  {r.unit:<9}"
            f"{r.ratio:>8.3f}{kind}  {spread:<17}  {r.target:<8}  {mark}".rstrip()
        )
    return lines
