"""Properties of the harness itself, over generated scripts and schedules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.messages import HumanMessage

from fakellm import FakeChatModel, strategies
from fakellm.assertions import assert_stream_matches_invoke, assert_usage, assert_well_formed

from .common import FAST
from .test_strategies import TOOLS

INPUT = [HumanMessage("Which flowers suit a birthday?")]
INPUT_TOKENS = FakeChatModel().get_num_tokens_from_messages(INPUT)

# No latency (parity is about content, and the stock loops here sleep for real),
# no errors (an error turn has no reply to compare).
parity_turns = strategies.turns(max_ms=0, errors=False, tools=TOOLS, reasoning=True)


def expected_usage(turn):
    """What a turn should report, worked out from the script alone."""
    given_ = turn.usage
    i = given_.input_tokens if given_ and given_.input_tokens is not None else INPUT_TOKENS
    o = given_.output_tokens if given_ and given_.output_tokens is not None else len(turn.pieces)
    t = given_.total_tokens if given_ and given_.total_tokens is not None else i + o
    return {"input_tokens": i, "output_tokens": o, "total_tokens": t}


@FAST
@given(parity_turns)
def test_stream_and_invoke_agree(turn):
    def model():
        return FakeChatModel(script=[turn]).bind_tools(TOOLS)

    assert_stream_matches_invoke(model, INPUT, modes=["invoke", "stream", "astream", "batch"])
    reply = model().invoke(INPUT)
    assert reply.text == "".join(turn.chunks)
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        (c.name, c.args) for c in turn.tool_calls
    ]
    assert {k: reply.usage_metadata[k] for k in expected_usage(turn)} == expected_usage(turn)


def call_in_mode(mode):
    async def call(i, model):
        if mode[i] == "stream":
            return [c async for c in model.astream(INPUT)]
        return await model.ainvoke(INPUT)

    return call


modes = st.lists(st.sampled_from(["invoke", "stream"]), min_size=3, max_size=3)


@FAST
@given(strategies.scenarios(calls=3), modes)
def test_usage_sums_are_exact_under_any_concurrency(scenario, mode):
    run = scenario.run(call_in_mode(mode), return_exceptions=True)
    served = [s.turns[0] for s in scenario.scripts]
    ok = [t for t in served if t.error is None]
    want = {k: sum(expected_usage(t)[k] for t in ok) for k in ("input_tokens", "output_tokens")}
    assert_usage(
        run.events, **want, total_tokens=sum(expected_usage(t)["total_tokens"] for t in ok)
    )
    assert [type(e) if e else None for e in run.exceptions] == [t.error for t in served]


@FAST
@given(strategies.scenarios(calls=3, scripts=strategies.scripts(max_turns=2)), modes)
def test_every_recorded_trace_is_well_formed(scenario, mode):
    async def call(i, model):
        out = []
        for _ in scenario.scripts[i].turns:  # the app calls until the script is used up
            try:
                out.append(await call_in_mode(mode)(i, model))
            except Exception as exc:
                out.append(exc)
        return out

    run = scenario.run(call)
    assert_well_formed(run.events)
    assert len(run.events.runs()) == sum(len(s.turns) for s in scenario.scripts)
    assert all(m.unused_turns == [] for m in run.models)


failing_turns = strategies.turns().filter(lambda t: t.error is not None)


@FAST
@given(strategies.scenarios(calls=2, scripts=strategies.scripts(turns=failing_turns, max_turns=1)))
def test_an_error_comes_after_exactly_the_chunks_scripted_before_it(scenario):
    run = scenario.run(call_in_mode(["stream", "stream"]), return_exceptions=True)
    for i, script in enumerate(scenario.scripts):
        turn = script.turns[0]
        k = turn.error_position
        (model_run,) = run.runs(i)
        own = run.events.filter(run=model_run.id)
        assert own.kinds() == ["chat_model_start", *["llm_new_token"] * k, "llm_error"]
        assert own.tokens(model_run) == [p.text for p in turn.pieces[:k]]
        assert type(own[-1].error) is turn.error
        assert isinstance(run.results[i], turn.error)
        # ...and it strikes when chunk k would have come, on the virtual clock.
        waits = turn.delays(max(len(turn.pieces), 1))
        started = scenario.starts_ms[i] / 1000
        assert own[-1].time == pytest.approx(started + sum(waits[: k + 1]), abs=1e-6)


@FAST
@given(strategies.scenarios(calls=3, perturb=True), modes)
def test_harness_properties_hold_on_the_perturbed_loop_too(scenario, mode):
    run = scenario.run(call_in_mode(mode), return_exceptions=True)
    assert_well_formed(run.events)
    ok = [s.turns[0] for s in scenario.scripts if s.turns[0].error is None]
    assert_usage(run.events, output_tokens=sum(expected_usage(t)["output_tokens"] for t in ok))
