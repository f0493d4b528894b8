"""Agent fuzzing throughput: examples per second of fakellm.fuzz on a real agent.

The agent is ``langchain.agents.create_agent`` with 3 tools, invoked sync and
played on virtual time by ``Decisions.play``. Each example makes exactly 5
tool-calling steps and a final text answer (``decisions(max_steps=5, text=0,
parallel=0)``): 6 model calls and 5 tool runs. Every round draws new examples,
as a test run does: not derandomized, which would fix the share of uncounted
runs (below) at one sample's.

Baselines, timed in the same rounds:

- the same agent replaying trajectories the fuzzer drew (a warm-up run's
  examples: the same mix of tools and arguments, step for step) from a plain
  ``Script`` through ``fuzz.play`` (recorded, on virtual time, no
  Hypothesis): the ratio is what drawing every decision costs, Hypothesis'
  engine and its uncounted runs included;
- the agent alone replaying those trajectories (no fakellm.fuzz, no virtual
  time, no recording): against the replay above, what ``fuzz.play`` costs;
- the same replay of one fixed trajectory (``search`` five times), the
  baseline of earlier rounds, kept for comparison;
- the agent alone on that fixed trajectory (no fakellm.fuzz, no virtual time,
  no recording).

Hypothesis also runs examples it does not count: a mutated example that runs
out of choices stops at the draw that overruns, mid-agent. The report gives
the agent runs and model calls per counted example, for the fuzzer and the
replay. Timing rules: ``_harness.py``.

Run: ``python benchmarks/bench_fuzz.py [--examples N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from typing import Any

from _harness import Row, Section, render, rounds, row, settle
from hypothesis import HealthCheck, Phase, given, settings
from langchain.agents import create_agent
from langchain_core.tools import tool

from fakellm import FakeChatModel, Script, ToolCall, Turn, fuzz
from fakellm._clock import hold_mirror


@tool
def search(query: str) -> str:
    """Search the catalogue."""
    return f"3 results for {query!r}"


@tool
def confirm(room: int) -> str:
    """Confirm a room."""
    return f"room {room} confirmed"


@tool
def book(room: int, nights: int = 1) -> str:
    """Book a room."""
    return f"room {room} booked for {nights} nights"


TOOLS = [search, confirm, book]
ASK = {"messages": [("user", "Book me a room.")]}
#: One fixed trajectory: ``search`` five times, then a text answer.
FIXED = [
    *(Turn(tool_calls=[ToolCall("search", {"query": "sea"})]) for _ in range(5)),
    Turn("Booked."),
]


@dataclasses.dataclass
class Tally:
    """What a fuzzed section did: agent runs started (Hypothesis' uncounted
    examples included), model calls, and the trajectories of counted examples."""

    runs: int = 0
    model_calls: int = 0
    keep: bool = False
    trajectories: list[list[Turn]] = dataclasses.field(default_factory=list)


def fuzzed(
    examples: int,
    *,
    shared: bool = True,
    freeze: bool = False,
    held: bool = False,
    tally: Tally | None = None,
) -> Section:
    """``examples`` fuzzed examples: one property test, with its agent built once
    for it when ``shared`` (else per example); freezegun coupled to the virtual
    clock when ``freeze``, started once for the whole test when ``held``, else per
    example."""
    agent: Any = None

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(fuzz.decisions(max_steps=5, text=0, parallel=0))
    def prop(decisions: fuzz.Decisions) -> None:
        if tally is not None:
            tally.runs += 1
        if shared:
            run = decisions.play(lambda: agent.invoke(ASK), freeze=freeze)
        else:
            own = create_agent(decisions.model, tools=TOOLS)
            run = decisions.play(lambda: own.invoke(ASK), freeze=freeze)
        assert run.model_calls == 6
        if tally is not None and tally.keep:
            tally.trajectories.append([s.turn for s in run.steps])

    def section() -> int:
        nonlocal agent
        # A fresh model per test: a shared model keeps every call it answered.
        model = fuzz.model()
        agent = create_agent(model, tools=TOOLS)
        with hold_mirror() if held else contextlib.nullcontext():
            prop()
        if tally is not None:
            tally.model_calls += model.call_count
        return examples

    return section


def replayed(trajectories: list[list[Turn]], *, play: bool = True) -> Section:
    """The agent replaying ``trajectories``, one per example, from a plain
    ``Script`` through ``fuzz.play`` (recorded, on virtual time) or, with
    ``play=False``, alone: what the examples cost without drawing. A fresh
    model and agent per run, as ``fuzzed`` builds them."""
    script = Script([t for trajectory in trajectories for t in trajectory])

    def section() -> int:
        model = FakeChatModel(script=script)
        agent = create_agent(model, tools=TOOLS)
        for trajectory in trajectories:
            if play:
                run = fuzz.play(lambda: agent.invoke(ASK), model=model)
                assert run.model_calls == len(trajectory)
            else:
                agent.invoke(ASK)
        return len(trajectories)

    return section


def report(examples: int = 200, n_rounds: int = 5) -> tuple[list[Row], dict[str, Any]]:
    """The rows, and per counted example what the fuzzed section ran."""
    drawn = Tally(keep=True)
    fuzzed(examples, tally=drawn)()  # warm-up; the trajectories the replays replay
    tally = Tally()
    sections: dict[str, Section] = {
        "fuzzed": fuzzed(examples, tally=tally),
        "replayed": replayed(drawn.trajectories),
        "replayed, alone": replayed(drawn.trajectories, play=False),
        "scripted": replayed([FIXED] * examples),
        "alone": replayed([FIXED] * examples, play=False),
        "built per example": fuzzed(examples, shared=False),
        "freeze=True": fuzzed(examples, freeze=True),
        "freeze=True, held": fuzzed(examples, freeze=True, held=True),
    }
    for name, warm in sections.items():
        if name != "fuzzed":
            warm()
    settle()
    times = rounds(sections, n_rounds)
    per_second = {name: [1e6 / us for us in per] for name, per in times.items()}
    label = "fuzz: 5-step agent, 3 tools"
    rows = [
        row(f"{label}, agent built once", per_second, "fuzzed", None, "ex/s", ">= 100"),
        row(f"{label}, vs replaying the drawn trajectories", times, "fuzzed", "replayed", "µs/ex"),
        row(f"{label}, vs replaying one fixed trajectory", times, "fuzzed", "scripted", "µs/ex"),
        row(
            f"{label}, replaying drawn: played vs alone",
            times,
            "replayed",
            "replayed, alone",
            "µs/ex",
        ),
        row(f"{label}, the agent alone (fixed trajectory)", per_second, "alone", None, "runs/s"),
        row(f"{label}, agent built per example", per_second, "built per example", None, "ex/s"),
        row(f"{label}, freeze=True", per_second, "freeze=True", None, "ex/s"),
        row(
            f"{label}, freeze=True inside hold_mirror()",
            per_second,
            "freeze=True, held",
            None,
            "ex/s",
        ),
    ]
    counted = examples * n_rounds
    replay_calls = sum(len(t) for t in drawn.trajectories) / len(drawn.trajectories)
    counts = {
        "agent runs per counted example, fuzzed": tally.runs / counted,
        "model calls per counted example, fuzzed": tally.model_calls / counted,
        "model calls per example, replayed": replay_calls,
    }
    return rows, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows, counts = report(args.examples, args.rounds)
    print("\n".join(render(rows)))
    for name, value in counts.items():
        print(f"{name}: {value:.3f}")


if __name__ == "__main__":
    main()
