"""Seeded chaos on virtual time: quotas answered with 429 and retry-after until
the window rolls, failing requests, cut streams, slow first tokens; and a retry
bug that only a quota burst exposes, found and shrunk."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from hypothesis import Phase, find, given, settings

from fakellm import (
    FakeChatModel,
    Script,
    ToolCall,
    Turn,
    errors,
    run_scenario,
    strategies,
    virtual_time,
)
from fakellm.chaos import Chaos, Quota
from fakellm.strategies import Scenario

from .common import FAST, HUNT


def test_a_quota_answers_429_with_retry_after_until_the_window_rolls():
    model = FakeChatModel(
        script=Chaos(quota=Quota(requests=2, window=10.0)).apply(Script(["a", "b", "c", "d"]))
    )
    seen = []

    async def ask(name, at):
        await asyncio.sleep(at)
        try:
            seen.append((name, asyncio.get_running_loop().time(), (await model.ainvoke(name)).text))
        except errors.RateLimitError as exc:
            seen.append((name, asyncio.get_running_loop().time(), exc.retry_after))
            await asyncio.sleep(exc.retry_after)
            seen.append((name, asyncio.get_running_loop().time(), (await model.ainvoke(name)).text))

    run_scenario(ask("x", 0), ask("y", 0.5), ask("z", 2.25), freeze=False)
    assert seen == [
        ("x", 0.0, "a"),
        ("y", 0.5, "b"),
        ("z", 2.25, 7.75),  # third request in the window [0, 10): 429, retry after 7.75 s
        ("z", 10.0, "c"),  # the window rolled: the retry gets the turn the 429 did not use
    ]
    # The 429 was answered (and recorded) as a call like any other.
    assert isinstance(model.calls[2].turn.error, errors.RateLimitError)
    assert model.unused_turns == ["turns[3]: Turn('d')"]


def test_the_429_is_a_rate_limit_error_with_status_and_message():
    model = FakeChatModel(script=Chaos(quota=Quota(1, 60)).apply(Script(["a", "b"])))
    with virtual_time(freeze=False) as vt:
        assert model.invoke("hi").text == "a"
        vt.clock.advance(15)
        with pytest.raises(errors.RateLimitError) as caught:
            model.invoke("hi")
    assert caught.value.status_code == 429
    assert caught.value.retry_after == 45.0
    assert str(caught.value) == (
        "rate limit reached: 1 requests per 60 s; retry after 45 s (scripted by fakellm chaos)"
    )


def test_failing_requests_consume_no_turn():
    model = FakeChatModel(script=Chaos(failures=(1, 2)).apply(Script(["a", "b"])))
    with virtual_time(freeze=False):
        assert model.invoke("hi").text == "a"
        for _ in range(2):
            with pytest.raises(errors.ServerError):
                model.invoke("hi")
        assert model.invoke("hi").text == "b"
    assert model.unused_turns == []


def test_cut_streams_and_slow_first_tokens_rewrite_the_queued_turns():
    script = Script([Turn("one two three", delay=0.1), Turn("fast")])
    chaos = Chaos(truncate=((0, 2),), slow=((1, 3000),))
    assert chaos.apply(script).turns == (
        Turn("one two three", delay=0.1, error=errors.APIConnectionError, at_chunk=2),
        Turn("fast", first_token_delay=3.0),
    )
    model = FakeChatModel(script=chaos.apply(script))
    with virtual_time(freeze=False) as vt:
        got = []
        with pytest.raises(errors.APIConnectionError):
            got.extend(c.text for c in model.stream("hi"))
        assert got == ["one ", "two "]
        assert model.invoke("hi").text == "fast"
    assert vt.elapsed == pytest.approx(0.1 + 0.1 + 3.0)


PRICE = {
    "type": "function",
    "function": {
        "name": "get_price",
        "description": "The price of a flower.",
        "parameters": {"type": "object", "properties": {"flower": {"type": "string"}}},
    },
}


def test_malformed_arguments_arrive_as_invalid_tool_calls():
    script = Script([Turn(tool_calls=[ToolCall("get_price", {"flower": "rose"})]), Turn("plain")])
    chaos = Chaos(malformed=(0, 1))
    assert repr(chaos) == "Chaos(malformed=(0, 1))"
    # A turn without tool calls has no arguments to break.
    assert chaos.apply(script).turns == (
        Turn(tool_calls=[ToolCall("get_price", raw_args='{"flower": "rose"}}')]),
        Turn("plain"),
    )
    model = FakeChatModel(script=chaos.apply(script)).bind_tools([PRICE])
    broken = model.invoke("hi")
    assert broken.tool_calls == []
    assert broken.invalid_tool_calls == [
        {
            "type": "invalid_tool_call",
            "id": "call_0_0",
            "name": "get_price",
            "args": '{"flower": "rose"}}',
            "error": None,
        }
    ]
    assert model.invoke("hi").content == "plain"
    with pytest.raises(ValueError, match=r"^malformed=\[0\]: expected a tuple of turn numbers"):
        Chaos(malformed=[0])  # type: ignore[arg-type]


def test_chaos_prints_as_code_and_rejects_bad_values():
    chaos = Chaos(quota=Quota(2, 10.0), failures=(3,), failure=errors.APITimeoutError)
    assert repr(chaos) == (
        "Chaos(quota=Quota(requests=2, window=10.0), failures=(3,), failure=errors.APITimeoutError)"
    )
    assert repr(Chaos()) == "Chaos()"
    with pytest.raises(ValueError, match=r"^requests=0: expected an integer >= 1$"):
        Quota(0)
    with pytest.raises(ValueError, match=r"^window=-1: expected a finite number of seconds > 0$"):
        Quota(1, -1)
    with pytest.raises(ValueError, match=r"^failures=\[1\]: expected a tuple of request numbers"):
        Chaos(failures=[1])  # type: ignore[arg-type]


SEEDED = (
    "Chaos(failures=(1, 3, 6, 8, 10, 11, 14, 15), truncate=((1, 1), (2, 1)), slow=((3, 4680),))"
)


def test_seeded_chaos_is_the_same_plan_in_every_process():
    chaos = Chaos.seeded(
        7, requests=20, failure_rate=0.25, turns=4, truncate_rate=0.3, slow_rate=0.3
    )
    assert repr(chaos) == SEEDED
    code = (
        "from fakellm.chaos import Chaos; print(repr(Chaos.seeded(7, requests=20, "
        "failure_rate=0.25, turns=4, truncate_rate=0.3, slow_rate=0.3)))"
    )
    # A fresh process, with another hash seed than this one's.
    hashseed = "12345" if os.environ.get("PYTHONHASHSEED") != "12345" else "0"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": hashseed},
    ).stdout
    assert out.strip() == SEEDED


def test_a_malformed_rate_adds_its_turns_and_leaves_the_other_faults_as_seeded():
    chaos = Chaos.seeded(
        7,
        requests=20,
        failure_rate=0.25,
        turns=4,
        truncate_rate=0.3,
        slow_rate=0.3,
        malformed_rate=0.5,
    )
    assert repr(chaos) == SEEDED[:-1] + ", malformed=(1, 3))"


def test_the_chaos_strategy_shrinks_to_the_fewest_failures():
    def minimal(condition):
        quick = settings(database=None, derandomize=True, phases=[Phase.generate, Phase.shrink])
        return find(strategies.chaos(failure_rate=0.3, max_requests=5), condition, settings=quick)

    assert minimal(lambda c: len(c.failures) >= 2) == Chaos(failures=(3, 4))
    assert minimal(lambda c: 1 in c.failures) == Chaos(failures=(1,))


def test_the_chaos_strategy_shrinks_to_the_fewest_malformed_turns():
    quick = settings(database=None, derandomize=True, phases=[Phase.generate, Phase.shrink])
    drawn = strategies.chaos(malformed_rate=0.3, max_turns=4)
    assert find(drawn, lambda c: len(c.malformed) >= 2, settings=quick) == Chaos(malformed=(2, 3))
    assert find(drawn, lambda c: 1 in c.malformed, settings=quick) == Chaos(malformed=(1,))


chaotic = strategies.scenarios(
    min_calls=1,
    max_calls=3,
    scripts=strategies.scripts(turns=strategies.turns(errors=False), max_turns=1),
    chaos=strategies.chaos(truncate_rate=0.5, slow_rate=0.5, max_turns=1, max_slow_ms=3000),
)


@FAST
@given(chaotic)
def test_drawn_cuts_and_slow_tokens_strike_each_calls_turn_on_a_shared_model(scenario):
    async def stream(i, model):
        got = []
        try:
            async for chunk in model.astream("hi"):
                got.append((asyncio.get_running_loop().time(), chunk.text))
        except errors.APIConnectionError:
            return got, "cut"
        return got, "whole"

    run = scenario.run(stream, shared=True)
    cut, slow = dict(scenario.chaos.truncate), dict(scenario.chaos.slow)
    for i, (got, how) in enumerate(run.results):
        turn = scenario.scripts[i].turns[0]
        pieces = [p.text for p in turn.pieces if p.text]
        assert how == (
            "cut" if 0 in cut else "whole"
        )  # a cut past the last chunk still drops the end
        streamed = [text for _, text in got if text]
        assert streamed == (pieces[: cut[0]] if how == "cut" else pieces)
        if got and 0 in slow:  # the first chunk came late by exactly the slowdown
            first = scenario.starts_ms[i] / 1000 + turn.first_token_delay + slow[0] / 1000
            assert got[0][0] == pytest.approx(first, abs=1e-6)


# -- the demonstration: a retry policy that only a quota burst breaks -----------------------

QUOTA = Quota(requests=2, window=10.0)
plain = strategies.scripts(turns=strategies.turns(errors=False, usage=False), max_turns=1)


async def ask_with_backoff(model, question):
    """The bug: a fixed exponential backoff (1, 2, 4 s) that ignores retry-after."""
    for attempt in range(4):
        try:
            return (await model.ainvoke(question)).text
        except errors.RateLimitError:
            if attempt == 3:
                raise
            await asyncio.sleep(2**attempt)
    raise AssertionError("unreachable")


async def ask_honouring_retry_after(model, question):
    """The fix: wait as long as the provider says."""
    for attempt in range(4):
        try:
            return (await model.ainvoke(question)).text
        except errors.RateLimitError as exc:
            if attempt == 3:
                raise
            await asyncio.sleep(exc.retry_after)
    raise AssertionError("unreachable")


def retry_property(ask, seen=None):
    # Calls spread over 20 s: most draws never burst past the quota.
    @given(
        strategies.scenarios(
            min_calls=1, max_calls=4, scripts=plain, max_start_ms=20_000, chaos=Chaos(quota=QUOTA)
        )
    )
    def check(scenario):
        if seen is not None:
            seen.append(scenario)
        run = scenario.run(
            lambda i, model: ask(model, f"q{i}"), shared=True, return_exceptions=True
        )
        assert run.exceptions == (None,) * scenario.calls

    return check


def test_a_quota_burst_breaks_the_backoff_that_ignores_retry_after():
    seen = []
    with pytest.raises(AssertionError) as caught:
        HUNT(retry_property(ask_with_backoff, seen))()
    # Shrunk to the burst itself: three calls at once against two requests per
    # window; the third backs off 1 + 2 + 4 s and gives up at 7 s, before the
    # window rolls at 10 s.
    assert seen[-1] == Scenario(
        scripts=(Script([Turn(chunks=())]),) * 3,
        starts_ms=(0, 0, 0),
        chaos=Chaos(quota=QUOTA),
    )
    notes = "\n".join(caught.value.__notes__)
    assert "chaos=Chaos(quota=Quota(requests=2, window=10.0))," in notes
    run = seen[-1].run(
        lambda i, m: ask_with_backoff(m, f"q{i}"), shared=True, return_exceptions=True
    )
    assert run.results[:2] == ("", "")
    assert isinstance(run.results[2], errors.RateLimitError)
    assert run.results[2].retry_after == 3.0
    assert run.elapsed == 7.0


def test_honouring_retry_after_survives_every_burst():
    FAST(retry_property(ask_honouring_retry_after))()
