"""Agent fuzzing throughput: examples per second of fakellm.fuzz on a real agent.

The agent is ``langchain.agents.create_agent`` with 3 tools, invoked sync and
played on virtual time by ``Decisions.play``. Each example makes exactly 5
tool-calling steps and a final text answer (``decisions(max_steps=5, text=0,
parallel=0)``): 6 model calls and 5 tool runs. The baseline is the same
agent replaying the same shape from a plain 6-turn ``Script`` through
``fuzz.play`` (recorded, no Hypothesis), timed in the same round, so the
ratio is what drawing every decision costs on top of running the agent.

CPU time (``time.process_time``), ``gc.collect()`` before each measurement,
the ratio per round, then the median and the min-max over rounds.

Run: ``python benchmarks/bench_fuzz.py [--examples N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import statistics
import time

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


def fuzzed(
    examples: int, *, shared: bool = True, freeze: bool = False, held: bool = False
) -> float:
    """CPU seconds for ``examples`` fuzzed examples (the agent built once when
    ``shared``; freezegun coupled to the virtual clock when ``freeze``, started
    once for the whole run when ``held``, else per example)."""
    model = fuzz.model()
    agent = create_agent(model, tools=TOOLS)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(fuzz.decisions(max_steps=5, text=0, parallel=0))
    def prop(decisions: fuzz.Decisions) -> None:
        if shared:
            run = decisions.play(lambda: agent.invoke(ASK), freeze=freeze)
        else:
            own = create_agent(decisions.model, tools=TOOLS)
            run = decisions.play(lambda: own.invoke(ASK), freeze=freeze)
        assert run.model_calls == 6

    with hold_mirror() if held else contextlib.nullcontext():
        gc.collect()
        t0 = time.process_time()
        prop()
        return time.process_time() - t0


def plain(examples: int) -> float:
    """CPU seconds for ``examples`` runs of the agent alone: no fakellm.fuzz, no
    virtual time, no recording (what the agent costs by itself)."""
    turns = [Turn(tool_calls=[ToolCall("search", {"query": "sea"})]) for _ in range(5)]
    model = FakeChatModel(script=Script([*turns, Turn("Booked.")], when_exhausted="cycle"))
    agent = create_agent(model, tools=TOOLS)
    gc.collect()
    t0 = time.process_time()
    for _ in range(examples):
        agent.invoke(ASK)
    return time.process_time() - t0


def scripted_shared(examples: int) -> float:
    """CPU seconds for ``examples`` replays, one agent built once (as ``fuzzed`` does)."""
    turns = [Turn(tool_calls=[ToolCall("search", {"query": "sea"})]) for _ in range(5)]
    model = FakeChatModel(script=Script([*turns, Turn("Booked.")], when_exhausted="cycle"))
    agent = create_agent(model, tools=TOOLS)
    gc.collect()
    t0 = time.process_time()
    for _ in range(examples):
        run = fuzz.play(lambda: agent.invoke(ASK), model=model)
        assert run.model_calls == 6
    return time.process_time() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n = args.examples
    fuzzed(20), scripted_shared(20)  # warm-up: imports, strategy and graph compilation
    rates, ratios, alone, own, frozen, held = [], [], [], [], [], []
    for _ in range(args.rounds):
        f = fuzzed(n)
        s = scripted_shared(n)
        rates.append(n / f)
        ratios.append(f / s)
        alone.append(n / plain(n))
    for _ in range(max(1, args.rounds // 2)):
        own.append(n / fuzzed(n, shared=False))
        frozen.append(n / fuzzed(n, freeze=True))
        held.append(n / fuzzed(n, freeze=True, held=True))

    def show(name: str, values: list[float], unit: str) -> None:
        print(
            f"{name:58} median {statistics.median(values):8.2f} {unit}  "
            f"(min {min(values):.2f}, max {max(values):.2f}, {len(values)} rounds)"
        )

    print(f"create_agent, 3 tools, 5 tool steps + 1 text answer per example; {n} examples/round")
    show("fuzzed examples/s (agent built once, fuzz.model())", rates, "ex/s")
    show("fuzzed / scripted replay, CPU per example", ratios, "x")
    show("the agent alone (scripted, no fuzz, no virtual time) runs/s", alone, "runs/s")
    show("fuzzed examples/s (agent built per example)", own, "ex/s")
    show("fuzzed examples/s, freeze=True (freezegun per example)", frozen, "ex/s")
    show("fuzzed examples/s, freeze=True inside hold_mirror()", held, "ex/s")


if __name__ == "__main__":
    main()
