"""Shapes a real model returns, and the tool_choice contracts a real model keeps.

Every shape is checked on the four ways an app reads a reply (invoke, stream,
astream, astream_events), which must agree exactly; every contract violation
raises ToolChoiceError naming the call, the turn and the fix.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from typing import Any

import pytest
from langchain_core.exceptions import ModelRefusalError
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.tools import tool
from pydantic import BaseModel

from fakellm import FakeChatModel, ToolCall, Turn, errors


@tool
def get_price(flower: str) -> float:
    """Price of a flower."""
    return 1.0


class Flower(BaseModel):
    name: str
    petals: int


PATHS = ["invoke", "stream", "astream", "astream_events"]


async def _reply(runnable: Any, path: str) -> Any:
    """The whole reply as the app sees it on ``path``."""
    if path == "invoke":
        return runnable.invoke("hi")
    if path == "stream":
        return reduce(lambda a, b: a + b, runnable.stream("hi"))
    if path == "astream":
        chunks = [c async for c in runnable.astream("hi")]
        return reduce(lambda a, b: a + b, chunks)
    ends = [
        e["data"]["output"]
        async for e in runnable.astream_events("hi", version="v2")
        if e["event"] == "on_chat_model_end"
    ]
    assert len(ends) == 1
    return ends[0]


def _seen(message: Any) -> dict[str, Any]:
    """What an app can read off a reply (``name`` aside: core's chunk merge drops it)."""
    return {
        "content": message.content,
        "content_blocks": message.content_blocks,
        "tool_calls": message.tool_calls,
        "invalid_tool_calls": message.invalid_tool_calls,
        "id": message.id,
        "additional_kwargs": message.additional_kwargs,
        "usage_metadata": message.usage_metadata,
        "finish_reason": message.response_metadata["finish_reason"],
    }


SHAPES: dict[str, tuple[Turn, Callable[[FakeChatModel], Any], dict[str, Any]]] = {
    "malformed tool arguments": (
        Turn(tool_calls=[ToolCall("get_price", raw_args="flower=rose, size=large")]),
        lambda m: m.bind_tools([get_price]),
        {
            "tool_calls": [],
            "invalid_tool_calls": [
                {
                    "type": "invalid_tool_call",
                    "name": "get_price",
                    "args": "flower=rose, size=large",
                    "id": "call_0_0",
                    "error": None,
                }
            ],
        },
    ),
    "a call of a tool that is not bound": (
        Turn(tool_calls=[ToolCall("get_weather", {"city": "Paris"}, allow_unbound=True)]),
        lambda m: m.bind_tools([get_price]),
        {
            "tool_calls": [
                {
                    "type": "tool_call",
                    "name": "get_weather",
                    "args": {"city": "Paris"},
                    "id": "call_0_0",
                }
            ],
            "invalid_tool_calls": [],
        },
    ),
    "text despite a forced tool_choice": (
        Turn("I would rather chat.", ignore_tool_choice=True),
        lambda m: m.bind_tools([get_price], tool_choice="any"),
        {"content": "I would rather chat.", "tool_calls": []},
    ),
    "a refusal": (
        Turn(refusal="I can't help with that."),
        lambda m: m,
        {
            "content_blocks": [
                {"type": "refusal", "refusal": "I can't help with that.", "index": 0}
            ],
            "finish_reason": "stop",
        },
    ),
    "id, name and additional_kwargs": (
        Turn("Roses.", id="msg_01", name="florist", additional_kwargs={"audio": {"id": "a1"}}),
        lambda m: m,
        {"id": "msg_01", "additional_kwargs": {"audio": {"id": "a1"}}, "content": "Roses."},
    ),
    "the default stable id": (
        Turn("Roses."),
        lambda m: m,
        {"id": "fakellm-fake-chat-model-0"},
    ),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("shape", list(SHAPES))
async def test_every_shape_is_the_same_on_every_path(shape: str, path: str) -> None:
    turn, wrap, expected = SHAPES[shape]
    reference = FakeChatModel(script=[turn])
    want = _seen(wrap(reference).invoke("hi"))
    assert {k: want[k] for k in expected} == expected
    model = FakeChatModel(script=[turn])
    got = _seen(await _reply(wrap(model), path))
    assert got == want


@pytest.mark.parametrize("path", ["stream", "astream"])
async def test_malformed_arguments_stream_as_their_raw_fragments(path: str) -> None:
    turn = Turn(tool_calls=[ToolCall("get_price", raw_args='{"flower": rose, "size": 3}')])
    model = FakeChatModel(script=[turn]).bind_tools([get_price])
    if path == "stream":
        chunks = list(model.stream("hi"))
    else:
        chunks = [c async for c in model.astream("hi")]
    assert [c.tool_call_chunks[0]["args"] for c in chunks if c.tool_call_chunks] == [
        '{"flower": rose, ',
        '"size": 3}',
    ]


async def test_name_is_on_the_invoked_message_and_on_every_chunk() -> None:
    turn = Turn("a b", name="florist")
    model = FakeChatModel(script=[turn, turn, turn])
    assert model.invoke("hi").name == "florist"
    assert {c.name for c in model.stream("hi")} == {"florist"}
    assert {c.name async for c in model.astream("hi")} == {"florist"}


def test_ids_are_stable_per_model_and_call() -> None:
    model = FakeChatModel(script=["a", "b"], model="gpt-x")
    assert [model.invoke("hi").id, next(iter(model.stream("hi"))).id] == [
        "fakellm-gpt-x-0",
        "fakellm-gpt-x-1",
    ]


# --- a LangGraph agent compared whole ------------------------------------------------------


def test_an_agents_messages_compare_whole_with_literal_messages() -> None:
    from langchain.agents import create_agent

    model = FakeChatModel(
        script=[
            Turn(tool_calls=[ToolCall("get_price", {"flower": "rose"})]),
            "A rose costs 1.0.",
        ],
        model="florist-model",
    )
    agent = create_agent(model, tools=[get_price])
    result = agent.invoke({"messages": [HumanMessage("price of a rose?", id="h1")]})
    meta = {"model_name": "florist-model", "model_provider": "fakellm"}
    human, asked, tool_result, answered = result["messages"]
    # The tool message's id is LangGraph's own (a uuid4); everything else is literal.
    assert (tool_result.content, tool_result.tool_call_id) == ("1.0", "call_0_0")
    assert [human, asked, answered] == [
        HumanMessage("price of a rose?", id="h1"),
        AIMessage(
            "",
            id="fakellm-florist-model-0",
            tool_calls=[{"name": "get_price", "args": {"flower": "rose"}, "id": "call_0_0"}],
            usage_metadata={"input_tokens": 5, "output_tokens": 1, "total_tokens": 6},
            response_metadata={
                "token_usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
                **meta,
                "finish_reason": "tool_calls",
            },
        ),
        AIMessage(
            "A rose costs 1.0.",
            id="fakellm-florist-model-1",
            usage_metadata={"input_tokens": 18, "output_tokens": 4, "total_tokens": 22},
            response_metadata={
                "token_usage": {"prompt_tokens": 18, "completion_tokens": 4, "total_tokens": 22},
                **meta,
                "finish_reason": "stop",
            },
        ),
    ]


# --- tool_choice contracts -------------------------------------------------------------------

LABEL = "FakeChatModel(model_name='fake-chat-model') call #0"
OPT_OUT = "or set ignore_tool_choice=True on the turn to script a model that ignores it."


@pytest.mark.parametrize(
    ("tool_choice", "wanted"),
    [
        ("any", "a tool call"),
        ("required", "a tool call"),
        ("get_price", "a call of 'get_price'"),
        ({"type": "function", "function": {"name": "get_price"}}, "a call of 'get_price'"),
    ],
)
def test_a_forced_tool_choice_answered_with_text_is_an_error(tool_choice: Any, wanted: str) -> None:
    model = FakeChatModel(script=["Roses."])
    with pytest.raises(errors.ToolChoiceError) as info:
        model.bind_tools([get_price], tool_choice=tool_choice).invoke("hi")
    name = "name" if wanted == "a tool call" else "'get_price'"
    assert str(info.value) == (
        f"{LABEL} (tool_choice={tool_choice!r}): the call forces {wanted}, but "
        "Turn('Roses.') answers without one; a real model would call the tool. Script "
        f"Turn(tool_calls=[ToolCall({name}, {{...}})]) (or Turn(structured=...) for "
        f"with_structured_output), {OPT_OUT}"
    )
    assert model.call_count == 1


def test_tool_choice_none_answered_with_a_tool_call_is_an_error() -> None:
    model = FakeChatModel(script=[Turn(tool_calls=[ToolCall("get_price", {"flower": "rose"})])])
    with pytest.raises(errors.ToolChoiceError) as info:
        model.bind_tools([get_price], tool_choice="none").invoke("hi")
    assert str(info.value) == (
        f"{LABEL} (tool_choice='none'): tool_choice='none' forbids tool calls, but "
        f"Turn(tool_calls=[get_price]) calls get_price. Script a text reply, {OPT_OUT}"
    )


def test_a_tool_choice_naming_an_unbound_tool_is_an_error() -> None:
    model = FakeChatModel(script=[Turn(tool_calls=[ToolCall("get_price", {"flower": "rose"})])])
    with pytest.raises(errors.ToolChoiceError) as info:
        model.bind_tools([get_price], tool_choice="get_stock").invoke("hi")
    assert str(info.value) == (
        f"{LABEL} (tool_choice='get_stock'): tool_choice names 'get_stock', which is not "
        "bound (bound tools: 'get_price'); a real provider rejects the request. Bind the "
        f"tool, {OPT_OUT}"
    )


def test_a_turn_that_fails_before_answering_keeps_its_error_under_a_forced_choice() -> None:
    model = FakeChatModel(script=[Turn(error=errors.RateLimitError())])
    with pytest.raises(errors.RateLimitError):
        model.bind_tools([get_price], tool_choice="any").invoke("hi")


# --- structured output ----------------------------------------------------------------------------

METHODS = ["function_calling", "json_schema", "json_mode"]
ROSE = Flower(name="rose", petals=5)


@pytest.mark.parametrize("path", ["invoke", "ainvoke", "stream", "astream"])
@pytest.mark.parametrize("method", METHODS)
async def test_structured_turns_fit_every_method(method: str, path: str) -> None:
    model = FakeChatModel(script=[Turn(structured=ROSE)])
    runnable = model.with_structured_output(Flower, method=method)  # type: ignore[arg-type]
    if path == "invoke":
        got = runnable.invoke("hi")
    elif path == "ainvoke":
        got = await runnable.ainvoke("hi")
    elif path == "stream":
        got = list(runnable.stream("hi"))[-1]
    else:
        got = [c async for c in runnable.astream("hi")][-1]
    assert got == ROSE
    sent = model.calls[0]
    if method == "function_calling":  # the tool form: the schema's tool, forced
        assert (sent.tool_choice, sent.tool_names) == ("any", ("Flower",))
    else:  # the JSON form: the request asked for a JSON reply
        assert sent.tool_names == ()
        assert sent.kwargs["response_format"]["type"] in ("json_schema", "json_object")


def test_structured_dicts_and_include_raw() -> None:
    model = FakeChatModel(script=[Turn(structured={"name": "tulip", "petals": 6})])
    out = model.with_structured_output(Flower, include_raw=True).invoke("hi")
    assert out["parsed"] == Flower(name="tulip", petals=6)
    assert out["raw"].tool_calls[0]["args"] == {"name": "tulip", "petals": 6}
    assert out["parsing_error"] is None


def test_a_text_turn_under_function_calling_is_an_error_not_none() -> None:
    model = FakeChatModel(script=["Roses are nice."])
    with pytest.raises(errors.ToolChoiceError, match=r"forces a tool call, but Turn\('Roses"):
        model.with_structured_output(Flower).invoke("hi")


@pytest.mark.parametrize("method", METHODS)
def test_a_refusal_raises_model_refusal_error_under_structured_output(method: str) -> None:
    model = FakeChatModel(script=[Turn(refusal="Not flowers, sorry.")])
    with pytest.raises(ModelRefusalError) as info:
        model.with_structured_output(Flower, method=method).invoke("hi")  # type: ignore[arg-type]
    assert str(info.value) == "Model refused to produce the requested output: Not flowers, sorry."
    assert info.value.raw_message is not None
    assert info.value.raw_message.id == "fakellm-fake-chat-model-0"


# --- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (
            {"tool_calls": [{"name": "f", "args": {"a": 1}, "raw_args": "{}"}]},
            "invalid script: tool_calls[0].raw_args: give either args (a mapping) or raw_args "
            "(text), not both (got '{}')",
        ),
        (
            {"structured": {"a": 1}, "text": "x"},
            "invalid script: structured: give either structured or text, not both: structured "
            "becomes the text or the tool call the app's structured-output method expects "
            "(got {'a': 1})",
        ),
        (
            {"structured": 5},
            "invalid script: structured: structured must be a pydantic model instance or a "
            "mapping (got 5)",
        ),
        (
            {"refusal": "no", "content": [{"type": "text", "text": "x"}]},
            "invalid script: refusal: give either refusal or content (got 'no')",
        ),
        (
            {"text": "x", "additional_kwargs": {"f": object}},
            "invalid script: additional_kwargs: additional_kwargs must be JSON-serialisable: "
            "Object of type type is not JSON serializable (got {'f': <class 'object'>})",
        ),
    ],
)
def test_bad_new_fields_name_the_field_and_what_is_accepted(data: Any, text: str) -> None:
    with pytest.raises(errors.InvalidScript) as info:
        Turn(**data)
    assert str(info.value) == text


# --- profile -------------------------------------------------------------------------------------


def test_the_default_profile_is_a_capable_provider_models() -> None:
    assert FakeChatModel().profile == {
        "max_input_tokens": 128_000,
        "max_output_tokens": 16_384,
        "text_inputs": True,
        "text_outputs": True,
        "image_inputs": True,
        "tool_calling": True,
        "tool_choice": True,
        "tool_call_streaming": True,
        "structured_output": True,
        "reasoning_output": True,
    }
    assert FakeChatModel(profile={"max_input_tokens": 10}).profile == {"max_input_tokens": 10}


def test_create_agent_uses_the_provider_strategy_as_with_openai() -> None:
    from langchain.agents import create_agent

    model = FakeChatModel(script=[Turn(structured=ROSE)])
    result = create_agent(model, response_format=Flower).invoke(
        {"messages": [HumanMessage("a flower?")]}
    )
    assert result["structured_response"] == ROSE
    sent = model.calls[0]
    assert sent.tool_names == ()
    assert sent.kwargs["response_format"]["type"] == "json_schema"


def test_without_structured_output_in_the_profile_create_agent_uses_a_tool() -> None:
    from langchain.agents import create_agent

    model = FakeChatModel(
        script=[Turn(structured=ROSE)], profile={"tool_calling": True, "structured_output": False}
    )
    result = create_agent(model, tools=[get_price], response_format=Flower).invoke(
        {"messages": [HumanMessage("a flower?")]}
    )
    assert result["structured_response"] == ROSE
    sent = model.calls[0]
    assert sent.tool_choice == "any"
    assert sent.tool_names == ("get_price", "Flower")
    assert [c["name"] for c in result["messages"][1].tool_calls] == ["Flower"]


def test_summarization_counts_a_fractional_trigger_against_the_profile() -> None:
    from langchain.agents import create_agent
    from langchain.agents.middleware import SummarizationMiddleware

    # The default profile is enough to set a fractional trigger up at all.
    SummarizationMiddleware(FakeChatModel(), trigger=("fraction", 0.5))
    summarizer = FakeChatModel(
        script=["they said hello"], model="summarizer", profile={"max_input_tokens": 40}
    )
    model = FakeChatModel(script=["answer"])
    middleware = SummarizationMiddleware(
        summarizer, trigger=("fraction", 0.5), keep=("messages", 1)
    )
    history: list[Any] = [
        HumanMessage("hello " * 10),
        AIMessage("hello back " * 10),
        HumanMessage("now answer"),
    ]
    result = create_agent(model, middleware=[middleware]).invoke({"messages": history})
    assert summarizer.call_count == 1
    assert "they said hello" in model.calls[0].messages[0].text
    assert result["messages"][-1].text == "answer"


def test_message_ids_are_the_same_in_fresh_processes() -> None:
    import os
    import subprocess
    import sys

    program = (
        "import asyncio\n"
        "from fakellm import FakeChatModel, ToolCall, Turn\n"
        "m = FakeChatModel(script=['a b', Turn(tool_calls=[ToolCall('f', {'x': 1}, "
        "allow_unbound=True)]), 'c'], model='m')\n"
        "ids = [m.invoke('hi').id, next(iter(m.stream('hi'))).id]\n"
        "ids.append(asyncio.run(m.ainvoke('hi')).id)\n"
        "print(ids, m.calls[1].turn.tool_calls[0].name)\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", program],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("0", "1")
    }
    assert outputs == {"['fakellm-m-0', 'fakellm-m-1', 'fakellm-m-2'] f\n"}
