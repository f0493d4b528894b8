"""Hypothesis scenario exploration: examples per second (issue 6's target: >= 100).

Each example is a 3-call scenario of 20 chunks per call, drawn by
``fakellm.strategies.scenarios``, played on a fresh virtual-time loop with a
Recorder, and checked with a token-collector property. The baseline is the
same number of examples of the same strategy, drawn but not played, so the
ratio shows what playing costs on top of Hypothesis' own generation.

Run: ``python benchmarks/bench_explore.py [--examples N]``.
"""

from __future__ import annotations

import argparse
import time

from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from fakellm import strategies as fs

_WALL = (time.perf_counter,)  # freezegun swaps module references while a scenario runs


def _strategy() -> st.SearchStrategy[fs.Scenario]:
    turn = fs.turns(min_chunks=20, max_chunks=20)
    return fs.scenarios(calls=3, scripts=fs.scripts(turns=turn, max_turns=1))


async def _collect(model, tokens: dict) -> str:
    text = ""
    async for chunk in model.astream("Which flowers?"):
        tokens.setdefault(chunk.id, []).append(chunk.text)
        text += chunk.text
    return text


def _examples_per_second(examples: int, *, play: bool) -> float:
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate])
    @given(_strategy())
    def check(scenario: fs.Scenario) -> None:
        if play:
            tokens: dict = {}
            run = scenario.run(lambda i, m: _collect(m, tokens), return_exceptions=True)
            assert len(run.results) == 3

    check()  # warm-up: imports, strategy compilation
    t0 = _WALL[0]()
    check()
    return examples / (_WALL[0]() - t0)


def rows(examples: int = 300):
    """Ratio rows for ``benchmarks/run.py``: (name, measured, baseline, unit, target)."""
    played = _examples_per_second(examples, play=True)
    drawn = _examples_per_second(examples, play=False)
    return [
        ("explore: 3 calls x 20 chunks, examples/s", played, 1.0, "ex/s", ">= 100"),
        ("explore: playing vs drawing only", 1 / played, 1 / drawn, "s/ex", "<= 10"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300)
    args = parser.parse_args()
    for name, measured, baseline, unit, target in rows(args.examples):
        print(
            f"{name:45} {measured:10.4f} {baseline:10.4f} {unit:5} "
            f"{measured / baseline:8.2f}x  {target}"
        )


if __name__ == "__main__":
    main()
