"""Fixed cost of a scenario: ``run_scenario(noop)`` against ``asyncio.run(noop)``.

Run: ``python benchmarks/bench_fixed_cost.py [--rounds R] [--calls N]``

langchain, langgraph and langchain-community are imported first, so
freezegun's scan of every loaded module (the cost this measures) sees a real
app's module count. Timing rules (CPU time, garbage collected before each
section, imports frozen out of the collector's sight, shuffled order, ratio
per round against ``asyncio.run(noop)`` timed in the same round, median and
min-max): ``_harness.py``. A section is N calls of one case.

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
import subprocess
import sys
import warnings
from collections.abc import Callable

import langchain.agents  # noqa: F401
import langgraph.graph  # noqa: F401

with warnings.catch_warnings():  # its sunset notice
    warnings.simplefilter("ignore")
    import langchain_community.chat_models  # noqa: F401

from _harness import Section, render, rounds, row, settle

from fakellm._clock import hold_mirror, stop_virtual_time
from fakellm._scenario import run_scenario


async def noop() -> None:
    return None


def repeated(calls: int, fn: Callable[[], object]) -> Section:
    """``calls`` calls of ``fn``; µs per call."""

    def run() -> int:
        for _ in range(calls):
            fn()
        return calls

    return run


def held(calls: int) -> Section:
    """``calls`` run_scenario calls inside one hold_mirror(), as the plugin runs a test."""

    def run() -> int:
        with hold_mirror():
            for _ in range(calls):
                run_scenario(noop)
        return calls

    return run


def scan_each_time() -> None:
    run_scenario(noop)
    stop_virtual_time()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    print(f"{len(sys.modules)} modules loaded")
    sections = {
        "asyncio.run": repeated(args.calls, lambda: asyncio.run(noop())),
        "scan": repeated(args.calls, scan_each_time),
        "parked": repeated(args.calls, lambda: run_scenario(noop)),
        "held": held(args.calls),
    }
    for warm in sections.values():
        warm()
    # The one scan a process pays, outside the timing; "scan" ends it each call,
    # and shuffled rounds may time it just before "parked".
    sections["scan"] = _then_scan(sections["scan"])
    settle()
    times = rounds(sections, args.rounds)
    base = "asyncio.run"
    print(
        "\n".join(
            render(
                [
                    row(
                        "run_scenario(noop), parked between calls vs asyncio.run(noop)",
                        times,
                        "parked",
                        base,
                        "µs/call",
                        "<= 2.00",
                    ),
                    row(
                        "run_scenario(noop), mirror held vs asyncio.run(noop)",
                        times,
                        "held",
                        base,
                        "µs/call",
                    ),
                    row(
                        "run_scenario(noop) + stop_virtual_time() (a scan per call)",
                        times,
                        "scan",
                        base,
                        "µs/call",
                    ),
                ]
            )
        )
    )


def _then_scan(section: Section) -> Section:
    def run() -> int:
        try:
            return section()
        finally:
            run_scenario(noop)  # scans again, so the next section finds the scan in place

    return run


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
