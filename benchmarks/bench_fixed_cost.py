"""Fixed cost of a scenario: ``run_scenario(noop)`` against ``asyncio.run(noop)``.

Run: ``python benchmarks/bench_fixed_cost.py [--rounds R] [--calls N]``

langchain, langgraph and langchain-community are imported first, so
freezegun's scan of every loaded module (the cost this measures) sees a real
app's module count. Each round: ``gc.collect()``, then N calls of each case,
timed in CPU time; the ratio is per round against ``asyncio.run`` timed in the
same round. Printed: median and min-max of the ratios.

Cases: ``run_scenario`` alone (after the first scope freezegun's scan
lingers and is parked between calls, so each call un-parks and parks it);
inside ``hold_mirror()`` (what the pytest plugin does for each virtual-time
test: nothing to un-park), both after the process's first scope (its one
scan is not timed); and, for comparison, ``stop_virtual_time()``
after every call (freezegun's full start and stop, with its scan of every
loaded module, per call: what every call cost before the scan lingered).

Then the plugin's import cost: CPU time of fresh interpreters importing
pytest alone, pytest and the plugin (what every process of a suite that never
uses fakellm pays), and the plugin plus a first use (LangChain imported).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable

import langchain.agents  # noqa: F401
import langgraph.graph  # noqa: F401

with warnings.catch_warnings():  # its sunset notice
    warnings.simplefilter("ignore")
    import langchain_community.chat_models  # noqa: F401

from fakellm._clock import hold_mirror, stop_virtual_time
from fakellm._scenario import run_scenario

_CPU = (time.process_time,)  # a tuple slot keeps the real clock under freezegun


async def noop() -> None:
    return None


def timed(calls: int, fn: Callable[[], object]) -> float:
    gc.collect()
    start = _CPU[0]()
    for _ in range(calls):
        fn()
    return (_CPU[0]() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    print(f"{len(sys.modules)} modules loaded")
    bare: list[float] = []
    held: list[float] = []
    scanned: list[float] = []
    base_ms: list[float] = []

    def scan_each_time() -> None:
        run_scenario(noop)
        stop_virtual_time()

    for _ in range(args.rounds):
        floor = timed(args.calls, lambda: asyncio.run(noop()))
        full = timed(args.calls, scan_each_time)
        run_scenario(noop)  # the one scan a process pays, outside the timing
        alone = timed(args.calls, lambda: run_scenario(noop))
        with hold_mirror():
            inside = timed(args.calls, lambda: run_scenario(noop))
        base_ms.append(floor * 1e3)
        bare.append(alone / floor)
        held.append(inside / floor)
        scanned.append(full / floor)
    print(f"asyncio.run(noop): median {statistics.median(base_ms):.3f} ms CPU")
    for name, ratios in (
        ("run_scenario alone (scan lingers, parked between calls)", bare),
        ("run_scenario, mirror held", held),
        ("run_scenario + stop_virtual_time (a scan per call)", scanned),
    ):
        print(
            f"{name}: {statistics.median(ratios):.2f}x asyncio.run "
            f"(min {min(ratios):.2f}, max {max(ratios):.2f})"
        )


def import_cost(code: str, runs: int = 5) -> float:
    """Least CPU seconds a fresh interpreter spends running ``code``."""
    probe = f"import time; t = time.process_time(); {code}; print(time.process_time() - t)"
    return min(
        float(
            subprocess.run(
                [sys.executable, "-c", probe], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    )


def plugin_import() -> None:
    base = import_cost("import pytest")
    plugin = import_cost("import pytest, fakellm.fixtures")
    used = import_cost("import pytest, fakellm.fixtures; fakellm.fixtures._import_models()")
    print(f"import pytest: {base * 1e3:.0f} ms CPU")
    print(f"+ fakellm's plugin, unused: +{(plugin - base) * 1e3:.0f} ms (target < 50)")
    print(f"+ first use (models, LangChain): +{(used - base) * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
    plugin_import()
