"""Hypothesis scenario exploration: examples per CPU second.

Run: ``python benchmarks/bench_explore.py [--examples 300] [--rounds 3]``

Each example is a 3-call scenario of 20 chunks per call, drawn by
``fakellm.strategies.scenarios``, played on a fresh virtual-time loop with a
Recorder (``Scenario.run``), and checked with a token-collector property; once
with freezegun coupled to the virtual clock (``freeze=True``, what a test of
``datetime.now()``-reading code needs) and once without. The draws are
deterministic (``derandomize=True``): every round plays the same examples.
The baseline row draws the same examples without playing them, so the ratio
is what playing costs on top of Hypothesis' own generation. Timing rules: see
``_harness.py``.
"""

from __future__ import annotations

import argparse
from typing import Any

from _harness import Row, Section, render, rounds, row, settle
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from fakellm import FakeChatModel
from fakellm import strategies as fs

CALLS, CHUNKS = 3, 20


def _strategy() -> st.SearchStrategy[fs.Scenario]:
    turn = fs.turns(min_chunks=CHUNKS, max_chunks=CHUNKS)
    return fs.scenarios(calls=CALLS, scripts=fs.scripts(turns=turn, max_turns=1))


async def _collect(model: FakeChatModel, tokens: dict[Any, list[str]]) -> str:
    text = ""
    async for chunk in model.astream("Which flowers?"):
        tokens.setdefault(chunk.id, []).append(chunk.text)
        text += chunk.text
    return text


def section(examples: int, *, play: bool, freeze: bool = False) -> Section:
    """``examples`` deterministic examples of the strategy, played or only drawn."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.generate],
    )
    @given(_strategy())
    def check(scenario: fs.Scenario) -> None:
        if play:
            tokens: dict[Any, list[str]] = {}
            run = scenario.run(
                lambda i, m: _collect(m, tokens), return_exceptions=True, freeze=freeze
            )
            assert len(run.results) == CALLS

    def run() -> int:
        check()
        return examples

    return run


def sections(examples: int) -> dict[str, Section]:
    """Timed sections; µs per example."""
    out = {
        "played, freezegun on": section(examples, play=True, freeze=True),
        "played, freezegun off": section(examples, play=True),
        "drawn only": section(examples, play=False),
    }
    for warm in out.values():  # imports, strategy compilation
        warm()
    return out


def rows(examples: int = 300, n_rounds: int = 3) -> list[Row]:
    """Report rows for ``benchmarks/run.py``: examples per CPU second, and playing
    against drawing only."""
    timed = sections(examples)
    settle()
    times = rounds(timed, n_rounds)
    per_second = {name: [1e6 / us for us in per] for name, per in times.items()}
    label = f"explore: {CALLS} calls x {CHUNKS} chunks"
    return [
        row(f"{label}, freezegun on", per_second, "played, freezegun on", None, "ex/s", ">= 300"),
        row(f"{label}, freezegun off", per_second, "played, freezegun off", None, "ex/s"),
        row(
            f"{label}, playing vs drawing only (freezegun on)",
            times,
            "played, freezegun on",
            "drawn only",
            "µs/ex",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("\n".join(render(rows(args.examples, args.rounds))))


if __name__ == "__main__":
    main()
