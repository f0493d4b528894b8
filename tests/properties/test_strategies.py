"""The strategies make only valid scripts, and shrink the way their docs say."""

from __future__ import annotations

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from fakellm import FakeChatModel, FakeLLM, Script, ToolCall, Turn, errors, strategies
from fakellm._clock import virtual_time
from fakellm._script import Usage

from .common import FAST


class Order(BaseModel):
    """Order flowers."""

    flower: str = Field(min_length=1, max_length=5)
    count: int = Field(ge=1, le=12)
    gift: bool | None = None


def get_price(flower: str, colour: str = "red") -> float:
    """Price of a flower."""
    return 1.0


TOOLS = [Order, get_price]


@FAST
@given(strategies.token_streams(text="Roses, lilies."))
def test_cuts_of_a_text_join_back_to_it(chunks):
    assert "".join(chunks) == "Roses, lilies."
    assert 1 <= len(chunks) <= 6


@FAST
@given(strategies.latencies(min_size=2, max_size=4, max_ms=7))
def test_latencies_are_bounded_whole_milliseconds(delays):
    assert 2 <= len(delays) <= 4
    assert all(isinstance(d, int) and 0 <= d <= 7 for d in delays)


@FAST
@given(strategies.errors(chunks=3))
def test_errors_strike_where_a_turn_of_that_size_can_fail(failure):
    assert failure.error in strategies.DEFAULT_ERRORS
    assert failure.at_chunk == "end" or 0 <= failure.at_chunk <= 3
    turn = Turn(chunks=("a", "b", "c"), error=failure.error, at_chunk=failure.at_chunk)
    assert turn.error_position == (3 if failure.at_chunk == "end" else failure.at_chunk)


@FAST
@given(strategies.usage())
def test_usage_is_valid_and_consistent(spec):
    if spec is not None:
        i, o, t = spec.input_tokens, spec.output_tokens, spec.total_tokens
        assert t is None or t == i + o
        assert spec.input_token_details.get("cache_read", 0) <= (i or 0)


@FAST
@given(strategies.tool_calls(tools=TOOLS, max_calls=3))
def test_tool_calls_fit_the_bound_schemas(calls):
    for call in calls:
        assert call.name in ("Order", "get_price")
        if call.name == "Order":
            Order(**call.args)  # raises if the arguments break the schema
        else:
            assert set(call.args) <= {"flower", "colour"}
            assert isinstance(call.args["flower"], str)


@FAST
@given(strategies.turns(tools=TOOLS, reasoning=True))
def test_the_chat_model_plays_every_generated_turn(turn):
    model = FakeChatModel(script=[turn]).bind_tools(TOOLS)
    with virtual_time(freeze=False) as vt:
        if turn.error is None:
            reply = model.invoke("hi")
            assert [c["name"] for c in reply.tool_calls] == [c.name for c in turn.tool_calls]
        else:
            with pytest.raises(turn.error):
                model.invoke("hi")
    # Time passes up to the last chunk, or up to when chunk ``at_chunk`` would have come.
    n = len(turn.pieces)
    done = n if turn.error is None else turn.error_position
    assert vt.elapsed == pytest.approx(sum(turn.delays(max(n, 1))[: done + 1]), abs=1e-6)


@FAST
@given(strategies.scripts(max_turns=3))
def test_the_llm_plays_every_generated_script(script):
    llm = FakeLLM(script=script)
    with virtual_time(freeze=False):
        for turn in script.turns:
            if turn.error is None:
                assert llm.invoke("hi") == "".join(turn.chunks)
            else:
                with pytest.raises(turn.error):
                    llm.invoke("hi")
    assert llm.unused_turns == []


@FAST
@given(strategies.scripts(turns=strategies.turns(tools=None), max_turns=2), st.data())
def test_free_tool_calls_play_once_tools_for_binds_them(script, data):
    calls = data.draw(strategies.tool_calls())
    script = Script([*script.turns, Turn(tool_calls=calls)])
    model = FakeChatModel(script=script).bind_tools(strategies.tools_for(script))
    with virtual_time(freeze=False):
        for turn in script.turns:
            if turn.error is None:
                reply = model.invoke("hi")
            else:
                with pytest.raises(turn.error):
                    model.invoke("hi")
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [(c.name, c.args) for c in calls]


# -- shrinking, as documented -------------------------------------------------------


def minimal(strategy, condition=lambda value: True):
    """The example Hypothesis shrinks to (same every run, no example database)."""
    return find(strategy, condition, settings=settings(database=None, derandomize=True))


def test_latencies_shrink_towards_zero():
    assert minimal(strategies.latencies(size=3), lambda d: d[2] > d[0]) == (0, 0, 1)
    assert minimal(strategies.latencies(size=3), lambda d: d[1] >= 10) == (10, 10, 10)


def test_latencies_shrink_towards_equal():
    assert minimal(strategies.latencies(size=3), lambda d: min(d) >= 5) == (5, 5, 5)


def test_token_streams_shrink_to_fewer_simpler_chunks():
    assert minimal(strategies.token_streams(), lambda c: len(c) >= 2) == ("", "")
    assert minimal(strategies.token_streams(), lambda c: "".join(c)) == ("0",)


def test_errors_shrink_to_a_rate_limit_before_the_first_chunk():
    found = minimal(strategies.errors(chunks=5))
    assert found == strategies.ErrorAt(errors.RateLimitError, 0)


def test_turns_shrink_to_the_simplest_failing_turn():
    turn = minimal(strategies.turns(), lambda t: t.error is not None)
    assert turn == Turn(chunks=(), error=errors.RateLimitError)
    assert strategies.source(turn) == "Turn(chunks=(), error=errors.RateLimitError)"


def test_usage_shrinks_to_computed_then_to_zero():
    assert minimal(strategies.usage()) is None
    assert minimal(strategies.usage(), lambda u: u is not None) == Usage()


def test_tool_calls_shrink_to_the_simplest_call_with_required_args_only():
    (call,) = minimal(strategies.tool_calls(tools=TOOLS))
    assert call == ToolCall("get_price", {"flower": ""})
    (call,) = minimal(strategies.tool_calls(tools=TOOLS), lambda c: c[0].name == "Order")
    assert call == ToolCall("Order", {"flower": "0", "count": 1})


class _Order(BaseModel):
    qty: int = Field(gt=0, lt=10)
    code: str = Field(pattern="^[A-Z]{3}$")
    step: int = Field(multiple_of=5, ge=3, le=30)
    ratio: float = Field(gt=0, lt=1)


@FAST
@given(strategies.tool_calls(tools=[_Order]))
def test_tool_arguments_honour_exclusive_bounds_patterns_and_steps(calls) -> None:
    for call in calls:
        _Order(**call.args)  # raises if an argument breaks the schema


def test_chunks_can_be_longer_than_one_byte_can_say() -> None:
    longest = find(
        strategies.token_streams(max_chunk_size=1000, min_chunks=1, max_chunks=1),
        lambda chunks: len(chunks[0]) > 300,
        settings=settings(database=None, derandomize=True),
    )
    assert len(longest[0]) == 301


@FAST
@given(strategies.turns(max_ms=0, max_first_token_ms=5000, errors=False))
def test_slow_first_tokens_leave_later_chunks_quick(turn):
    assert 0 <= turn.first_token_delay <= 5.0
    assert turn.delay == 0.0  # later chunks: max_ms=0


def test_a_slow_first_token_shrinks_to_the_threshold():
    turn = minimal(
        strategies.turns(max_ms=0, max_first_token_ms=5000, errors=False, usage=False),
        lambda t: t.first_token_delay >= 1.5,
    )
    assert strategies.source(turn) == "Turn(chunks=(), first_token_delay=1.5)"
