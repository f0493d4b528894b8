"""A rule's responder or ``when`` predicate that fails is a script bug, reported as one.

It raises ResponderError naming the rule, the call and the cause, and is recorded
on the model, so the test fails at teardown even when the app swallowed it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from fakellm import FakeChatModel, Rule, Script, ToolCall, Turn, errors


def _prices(call: Any) -> str:
    return {"rose": "2.50"}[call.last_human_message]


def test_a_failing_responder_names_the_rule_and_the_call() -> None:
    model = FakeChatModel(script=Script(rules=[Rule(responder=_prices, name="prices")]))
    assert model.invoke("rose").text == "2.50"
    with pytest.raises(errors.ResponderError) as info:
        model.invoke("tulip")
    assert str(info.value) == (
        "the responder of Rule 'prices' (rules[0]) raised KeyError: 'tulip' on call #1 "
        "(last human message: 'tulip'). Fix the responder; the call is recorded, so the "
        "test fails even if the app swallowed this error."
    )
    assert isinstance(info.value.__cause__, KeyError)
    assert [c.index for c in model.unexpected_calls] == [1]
    assert model.unexpected_calls[0].unexpected is info.value


def test_a_failing_when_predicate_names_the_rule() -> None:
    def picky(call: Any) -> bool:
        return call.tool_names[0] == "x"

    rule = Rule(when=picky, respond="yes")
    model = FakeChatModel(script=Script(rules=[rule]))
    with pytest.raises(errors.ResponderError) as info:
        model.invoke("hi")
    assert str(info.value).startswith(
        "the when predicate of Rule(when=picky) (rules[0]) raised IndexError: tuple index "
        "out of range on call #0 (last human message: 'hi')."
    )


def test_a_swallowed_responder_error_still_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        from fakellm import FakeChatModel, Script
        from fakellm._script import Rule

        def boom(call):
            raise RuntimeError("no price list")

        def test_app_swallows(fake_llm):
            model = fake_llm(script=Script(rules=[Rule(responder=boom, name="prices")]))
            safe = model.with_fallbacks([FakeChatModel(script=["fallback"])])
            assert safe.invoke("hi").text == "fallback"
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    line = (
        "ResponderError (the app may have swallowed it): the responder of Rule 'prices' "
        "(rules[0]) raised RuntimeError: no price list on call #0 (last human message: 'hi')."
    )
    result.stdout.re_match_lines([re.escape(line) + ".*"])


def test_a_responder_may_return_an_ai_message() -> None:
    def reply(call: Any) -> AIMessage:
        return AIMessage(
            "Checking.",
            id="msg_7",
            tool_calls=[{"name": "get_price", "args": {"flower": "rose"}, "id": "c1"}],
        )

    model = FakeChatModel(script=Script(rules=[Rule(responder=reply)]))
    tools = [{"name": "get_price", "description": "price", "parameters": {"type": "object"}}]
    got = model.bind_tools(tools).invoke("hi")
    assert (got.text, got.id) == ("Checking.", "msg_7")
    assert got.tool_calls == [
        {"type": "tool_call", "name": "get_price", "args": {"flower": "rose"}, "id": "c1"}
    ]
    assert model.calls[0].turn == Turn(
        "Checking.", id="msg_7", tool_calls=[ToolCall("get_price", {"flower": "rose"}, id="c1")]
    )


async def _async_prices(call: Any) -> str:
    return {"rose": "2.50"}[call.last_human_message]


async def test_an_async_responder_answers_the_async_paths() -> None:
    model = FakeChatModel(
        script=Script(rules=[Rule(responder=_async_prices, name="prices", times=3)])
    )
    assert (await model.ainvoke("rose")).text == "2.50"
    assert "".join([c.text async for c in model.astream("rose")]) == "2.50"
    with pytest.raises(errors.ResponderError) as info:
        await model.ainvoke("tulip")
    assert str(info.value).startswith(
        "the responder of Rule 'prices' (rules[0]) raised KeyError: 'tulip' on call #2"
    )
    assert [c.turn for c in model.calls[:2]] == [Turn("2.50"), Turn("2.50")]
    assert model.calls[2].unexpected is info.value


def test_an_async_responder_on_a_sync_call_says_to_use_the_async_path() -> None:
    model = FakeChatModel(script=Script(rules=[Rule(responder=_async_prices, name="prices")]))
    with pytest.raises(errors.ResponderError) as info:
        model.invoke("rose")
    assert str(info.value) == (
        "the responder of Rule 'prices' (rules[0]) raised TypeError: it is async, and this "
        "call is synchronous; async responders answer ainvoke/astream/abatch (use a plain "
        "function for sync calls) on call #0 (last human message: 'rose'). Fix the "
        "responder; the call is recorded, so the test fails even if the app swallowed "
        "this error."
    )
    assert model.unexpected_calls[0].unexpected is info.value


async def test_an_async_responder_answers_the_llms_async_paths() -> None:
    from fakellm import FakeLLM

    llm = FakeLLM(script=Script(rules=[Rule(responder=_async_prices, times=2)]))
    assert await llm.ainvoke("rose") == "2.50"
    assert "".join([c async for c in llm.astream("rose")]) == "2.50"
    assert [c.turn for c in llm.calls] == [Turn("2.50"), Turn("2.50")]
