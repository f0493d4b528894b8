"""A call that is not streamed builds its message once, equal to what streaming adds up to.

``invoke`` never builds per-chunk pieces for a turn played whole: it reads the
reply straight from the turn. These tests hold that message, field for field,
to the one core merges from the same turn's stream, on turns where the two ways
could drift apart: thousands of chunks, tool calls, reasoning, content blocks,
refusals, scripted metadata, and replies cut short by ``stop`` or ``max_tokens``.
"""

from __future__ import annotations

import asyncio
import operator
from functools import reduce
from typing import Any

import pytest
from hypothesis import given, settings
from langchain_core.messages import AIMessage, AIMessageChunk

from fakellm import FakeChatModel, ToolCall, Turn, Usage, strategies

PRICE = {
    "type": "function",
    "function": {
        "name": "price",
        "description": "Price of a flower.",
        "parameters": {
            "type": "object",
            "properties": {"flower": {"type": "string"}, "size": {"type": "string"}},
        },
    },
}

TURNS = {
    "2000 chunks": Turn(chunks=[f"w{i} " for i in range(2000)]),
    "tool calls": Turn(
        "Let me check.",
        tool_calls=[
            ToolCall("price", {"flower": "rose", "size": "large"}),
            ToolCall("price", {"flower": "tulip", "size": "small"}, id="call_t"),
        ],
    ),
    "invalid tool arguments": Turn(tool_calls=[ToolCall("price", raw_args='{"flower": "ro')]),
    "reasoning": Turn("The answer is roses.", reasoning="They asked about flowers, so roses."),
    "content blocks": Turn(
        content=[
            {"type": "text", "text": "Pink roses."},
            {"type": "image", "url": "https://example.com/rose.png"},
        ],
        reasoning="Show one.",
    ),
    "refusal": Turn("I would rather not.", refusal="Not allowed."),
    "metadata": Turn(
        "a b c",
        id="msg-7",
        name="florist",
        additional_kwargs={"seed": 7},
        response_metadata={"system_fingerprint": "fp_1"},
        usage=Usage(input_tokens=10, output_token_details={"reasoning": 2}),
    ),
    "reasoning usage counted": Turn("Roses.", reasoning="one two three four", chunks="chars"),
}

# (stop, max_tokens): the turn played whole, cut by a stop sequence, cut by max_tokens.
CUTS = {
    "whole": (None, None),
    "stop": (["roses", "w5 ", "flower", "b"], None),
    "max_tokens": (None, 3),
    "stop and max_tokens": (["w1000 ", "roses"], 2),
}

FIELDS = (
    "content",
    "additional_kwargs",
    "response_metadata",
    "tool_calls",
    "invalid_tool_calls",
    "usage_metadata",
    "id",
)


def _model(turn: Turn, max_tokens: int | None) -> Any:
    return FakeChatModel(script=[turn], max_tokens=max_tokens).bind_tools([PRICE])


def _fields(message: AIMessage | AIMessageChunk) -> dict[str, Any]:
    out = {f: getattr(message, f) for f in FIELDS}
    # Core copies generate's llm_output into an invoked message's metadata (never a stream's).
    out["response_metadata"] = {
        k: v for k, v in out["response_metadata"].items() if k != "token_usage"
    }
    return out


def _pairs(turn: Turn, stop: list[str] | None, max_tokens: int | None) -> list[Any]:
    invoked = _model(turn, max_tokens).invoke("Which flowers?", stop=stop)
    streamed = reduce(operator.add, _model(turn, max_tokens).stream("Which flowers?", stop=stop))

    async def both() -> tuple[Any, Any]:
        ainvoked = await _model(turn, max_tokens).ainvoke("Which flowers?", stop=stop)
        chunks = [c async for c in _model(turn, max_tokens).astream("Which flowers?", stop=stop)]
        return ainvoked, reduce(operator.add, chunks)

    ainvoked, astreamed = asyncio.run(both())
    return [invoked, streamed, ainvoked, astreamed]


@pytest.mark.parametrize("cut", list(CUTS), ids=list(CUTS))
@pytest.mark.parametrize("name", list(TURNS), ids=list(TURNS))
def test_invoke_equals_the_merged_stream_field_for_field(name: str, cut: str) -> None:
    turn = TURNS[name]
    invoked, streamed, ainvoked, astreamed = _pairs(turn, *CUTS[cut])
    assert (type(invoked), type(ainvoked)) == (AIMessage, AIMessage)
    assert _fields(invoked) == _fields(streamed) == _fields(ainvoked) == _fields(astreamed)
    # Core's chunk merge drops ``name``: compared on the invoked messages only.
    assert invoked.name == ainvoked.name == turn.name


def test_a_whole_2000_chunk_reply_is_exact_and_builds_no_pieces() -> None:
    turn = Turn(chunks=[f"w{i} " for i in range(2000)])
    reply = FakeChatModel(script=[turn]).invoke("hi")
    assert reply.content == "".join(f"w{i} " for i in range(2000))
    assert reply.usage_metadata == {"input_tokens": 1, "output_tokens": 2000, "total_tokens": 2001}
    assert reply.response_metadata["finish_reason"] == "stop"
    # Turn.pieces is cached on first use: an invoke (and building the turn) never used it.
    assert "pieces" not in vars(turn)


def test_a_cut_reply_counts_only_what_was_sent() -> None:
    turn = Turn("one two three four five", reasoning="a b c")
    model = FakeChatModel(script=[turn, turn])
    cut = model.invoke("hi", stop=["three"])
    assert cut.content == [
        {"type": "reasoning", "reasoning": "a b c", "index": 0},
        {"type": "text", "text": "one two ", "index": 1},
    ]
    assert cut.usage_metadata == {
        "input_tokens": 1,
        "output_tokens": 5,
        "total_tokens": 6,
        "output_token_details": {"reasoning": 3},
    }
    short = model.invoke("hi", max_tokens=2)
    assert short.content == [{"type": "reasoning", "reasoning": "a b ", "index": 0}]
    assert short.usage_metadata["output_token_details"] == {"reasoning": 2}
    assert short.response_metadata["finish_reason"] == "length"


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(strategies.turns(max_ms=0, errors=False, reasoning=True))
def test_a_turns_piece_counts_equal_its_pieces(turn: Turn) -> None:
    count, reasoning = turn.piece_count, turn.reasoning_piece_count
    assert "pieces" not in vars(turn)
    assert count == len(turn.pieces)
    assert reasoning == sum(1 for p in turn.pieces if p.kind == "reasoning")


# -- a plain-text reply is a copy of a validated prototype: the same objects -----------


def _state(value: Any) -> Any:
    """Everything pydantic holds for a model instance, nested models and lists of them too."""
    if isinstance(value, list):
        return [_state(v) for v in value]
    if not hasattr(value, "__pydantic_fields_set__"):
        return value
    return (
        type(value),
        {k: _state(v) for k, v in value.__dict__.items()},
        value.__pydantic_fields_set__,
        value.__pydantic_extra__,
        value.__pydantic_private__,
    )


REPLIES = {
    "plain": ("w0 w1 ", "fakellm-m-0", None, {}, {"model_name": "m", "finish_reason": "stop"}),
    "empty": ("", "fakellm-m-1", None, {}, {}),
    "scripted": ("roses", "msg-7", "florist", {"seed": [7]}, {"system_fingerprint": "fp"}),
}


@pytest.mark.parametrize("name", REPLIES)
def test_a_copied_reply_is_the_validated_one(name: str) -> None:
    from fakellm._model import (
        _copied_result,
        _copyable,
        _Reply,
        _result_prototype,
        _validated_result,
    )

    content, message_id, who, kwargs, meta = REPLIES[name]
    usage = {"input_tokens": 2, "output_tokens": 3, "total_tokens": 5}
    llm_output = {"token_usage": {"total_tokens": 5}, "model_name": "m"}
    args = (content, message_id, who, kwargs, [], [], usage, meta, llm_output)
    reply = _Reply(*args)
    assert _copyable(reply)
    copied, validated = _copied_result(reply), _validated_result(_Reply(*args))
    assert _state(copied) == _state(validated)
    assert copied == validated
    # Every container is the call's own: none is the prototype's.
    proto = _result_prototype()[0]
    pairs = [(copied, proto), (copied.generations[0], proto.generations[0])]
    pairs.append((copied.generations[0].message, proto.generations[0].message))
    for mine, theirs in pairs:
        for field, value in mine.__dict__.items():
            if isinstance(value, list | dict):
                assert value is not theirs.__dict__[field], field
    assert copied.generations[0].message.__pydantic_extra__ is not (
        proto.generations[0].message.__pydantic_extra__
    )


@pytest.mark.parametrize(
    "change",
    [
        {"content": [{"type": "text", "text": "a"}]},
        {"tool_calls": [{"name": "a", "args": {}, "id": "1", "type": "tool_call"}]},
        {"invalid_tool_calls": [{"name": "a", "args": "{", "id": "1", "error": None}]},
        {"usage_metadata": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2,
                            "output_token_details": {"reasoning": 1}}},
    ],
)  # fmt: skip
def test_other_replies_are_validated(change: dict[str, Any]) -> None:
    from fakellm._model import _copyable, _Reply

    usage = {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}
    reply = _Reply("a", "id", None, {}, [], [], usage, {}, {})._replace(**change)
    assert not _copyable(reply)


def test_an_invoked_plain_reply_equals_a_validated_build() -> None:
    model = FakeChatModel(script=[Turn("a b", name="florist", additional_kwargs={"k": 1})])
    message = model.invoke("hi")
    built = AIMessage(**{k: getattr(message, k) for k in message.model_fields_set})
    assert message == built
    assert message.model_fields_set == built.model_fields_set
