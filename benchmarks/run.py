"""Run every benchmark and print one report of ratios against same-round baselines.

Run: ``python benchmarks/run.py`` (about a minute) or ``python benchmarks/run.py
--quick`` (about ten seconds; fewer rounds and smaller sizes, so a noisier
report). Run it on a quiet machine: CPU time keeps other processes' work out of
the figures, but not their effect on caches and CPU frequency.

Each row compares what fakellm costs (``measured``) with a baseline timed in
the same process and the same rounds (``baseline``: a correct floor chat model,
langchain-core's GenericFakeChatModel, a no-op callback handler, the smallest
log, drawing without playing, zero delays on a stock loop). ``ratio`` is the
median of the per-round ratios and ``[min - max]`` their spread; rows without a
baseline report an absolute figure (examples per second) against their target.
A row that misses its target is marked ``MISS``. How timing is done (CPU time,
garbage collected before each section, ``gc.freeze()`` after the imports,
shuffled order per round, deterministic Hypothesis draws): ``_harness.py``.
These are measurements, never test assertions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_events
import bench_explore
import bench_model
import bench_recorder
import bench_virtual_time
from _harness import Row, render, settle

FULL: dict[str, Any] = {
    "model": {"budget": 2000, "n_rounds": 9, "sizes": (3, 20, 2000)},
    "recorder": {"budget": 2000, "n_rounds": 9, "sizes": (20, 2000)},
    "events": {"sizes": (1_000, 10_000, 100_000), "n_rounds": 3},
    "virtual_time": {"streams": 100, "n_rounds": 7},
    "explore": {"examples": 200, "n_rounds": 3},
}
QUICK: dict[str, Any] = {
    "model": {"budget": 1000, "n_rounds": 5, "sizes": (3, 20, 2000)},
    "recorder": {"budget": 1000, "n_rounds": 5, "sizes": (20, 2000)},
    "events": {"sizes": (1_000, 10_000), "n_rounds": 1},
    "virtual_time": {"streams": 50, "n_rounds": 3},
    "explore": {"examples": 20, "n_rounds": 1},
}


def report(sizes: dict[str, Any]) -> tuple[list[Row], list[str]]:
    """Every row, and the per-size detail of the EventLog queries."""
    event_rows, event_detail = bench_events.rows(**sizes["events"])
    rows = [
        *bench_model.rows(**sizes["model"]),
        *bench_recorder.rows(**sizes["recorder"]),
        *event_rows,
        *bench_virtual_time.rows(**sizes["virtual_time"]),
        *bench_explore.rows(**sizes["explore"]),
    ]
    return rows, event_detail


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, smaller sizes")
    args = parser.parse_args(argv)
    settle()  # everything imported so far stays out of the collector's way
    rows, detail = report(QUICK if args.quick else FULL)
    table = "\n".join([*render(rows), "", *detail])
    print(table)
    return table


if __name__ == "__main__":
    main()
