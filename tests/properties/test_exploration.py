"""Scenario exploration finds planted concurrency bugs, shrinks them to a minimal,
readable counterexample, and passes the fixed apps."""

from __future__ import annotations

import pytest
from hypothesis import given

from fakellm import Script, Turn, strategies
from fakellm.strategies import Scenario

from .apps import BuggyTokenCollector, BuggyUsageMeter, TokenCollector, UsageMeter, stream_reply
from .common import FAST, HUNT

# Plain streams: the bugs here are about timing, not about errors or usage.
plain = strategies.scripts(turns=strategies.turns(errors=False, usage=False), max_turns=1)


def collector_property(make_collector, seen=None):
    @given(strategies.scenarios(calls=3, scripts=plain))
    def check(scenario):
        if seen is not None:
            seen.append(scenario)
        collector = make_collector()
        run = scenario.run(lambda i, model: stream_reply(model, collector))
        for i, streamed in enumerate(run.results):
            (model_run,) = run.runs(i)
            got = collector.text(model_run.id)
            assert got == streamed, f"call{i}: collected {got!r}, streamed {streamed!r}"

    return check


def test_exploration_catches_tokens_filed_under_the_current_run():
    seen = []
    with pytest.raises(AssertionError) as caught:
        HUNT(collector_property(BuggyTokenCollector, seen))()

    # The failure Hypothesis reports is the shrunk one, replayed last.
    minimal = seen[-1]
    assert "collected '', streamed '0'" in str(caught.value)
    # Minimal: all three calls start together, exactly one streams a chunk
    # (the one-character "0"), and exactly one wait of 1 ms lets the others
    # start before that chunk arrives. Less latency or fewer chunks cannot fail.
    assert minimal.starts_ms == (0, 0, 0)
    turns = [s.turns[0] for s in minimal.scripts]
    assert sorted(c for t in turns for c in t.chunks if c) == ["0"]
    waits = sorted(w for t in turns for w in t.delays(max(len(t.pieces), 1)))
    assert waits == [0.0, 0.0, 0.001]
    # Readable: the scenario as code to paste, then ms, then the timeline.
    notes = "\n".join(caught.value.__notes__)
    assert "Script([Turn(chunks=('0',), first_token_delay=0.001)])" in notes
    assert "waits(ms)=[1]" in notes
    assert "Timeline:" in notes
    assert "token '0'" in notes


def test_the_fixed_collector_passes():
    FAST(collector_property(TokenCollector))()


def meter_property(make_meter):
    @given(strategies.scenarios(calls=3, scripts=plain))
    def check(scenario):
        meter = make_meter()
        run = scenario.run(lambda i, model: meter.ask(model))
        assert meter.total == sum(run.results), f"total {meter.total}, replies {run.results}"

    return check


def test_exploration_catches_a_lost_update_across_an_await():
    # Shrunk to: three calls at once, one of them a single-chunk reply; the
    # concurrent updates of the meter lose it.
    with pytest.raises(AssertionError, match=r"total 0, replies \(0, 1, 0\)") as caught:
        HUNT(meter_property(BuggyUsageMeter))()
    assert "Script([Turn(chunks=('0',))])" in "\n".join(caught.value.__notes__)


def test_the_fixed_meter_passes():
    FAST(meter_property(UsageMeter))()


# -- running and reading scenarios ------------------------------------------------------


def test_a_scenario_replays_by_hand_outside_hypothesis():
    scenario = Scenario(
        scripts=(
            Script([Turn(chunks=("a", "b"), first_token_delay=0.002, delay=(0.001,))]),
            Script([Turn(chunks=("x",), first_token_delay=0.001)]),
        ),
        starts_ms=(0, 1),
    )
    run = scenario.run(lambda i, model: stream_reply(model, TokenCollector()))
    assert run.results == ("ab", "x")
    assert run.elapsed == 0.003
    tokens = [(e.run_name, e.token, e.time) for e in run.events if e.kind == "llm_new_token"]
    # Both first chunks are due at 2 ms: the timer set first (call0's, at 0 ms) fires first.
    assert tokens == [("call0", "a", 0.002), ("call1", "x", 0.002), ("call0", "b", 0.003)]
    assert scenario.describe().splitlines() == [
        "Scenario with 2 concurrent calls:",
        "  call0: starts at 0 ms",
        "    turn 0: chunks=['a', 'b'], waits(ms)=[2, 1]",
        "  call1: starts at 1 ms",
        "    turn 0: chunks=['x'], waits(ms)=[1]",
    ]


def test_call_errors_are_raised_after_all_calls_or_kept():
    failing = Scenario(
        scripts=(Script([Turn("a", error="RateLimitError")]), Script(["b"])), starts_ms=(0, 0)
    )

    async def call(i, model):
        return (await model.ainvoke("hi")).text

    with pytest.raises(Exception, match="rate limit"):
        failing.run(call)
    run = failing.run(call, return_exceptions=True)
    assert [type(e).__name__ if e else None for e in run.exceptions] == ["RateLimitError", None]
    assert run.results[1] == "b"


def test_a_hold_on_the_perturbed_loop_reorders_ready_callbacks():
    order = []

    async def call(i, model):
        order.append(i)

    two = (Script(), Script())
    Scenario(scripts=two, starts_ms=(0, 0)).run(call)
    assert order == [0, 1]
    order.clear()
    run = Scenario(scripts=two, starts_ms=(0, 0), holds=((1, 1),)).run(call)
    assert order == [1, 0]  # FIFO broken on purpose: call0's first step waited a turn
    assert run.held == ("  call_soon #1: a step of task 'call0' held for 1 iteration(s)",)
