"""Every call's messages are its own: mutating one call's output never changes another's.

A real integration builds new objects for every response, and apps do mutate
what they get (merge chunks in place, attach metadata, append tool results), so
a fake that shares containers between calls corrupts results the app already
holds. The field-for-field test guards any fast way of building chunks (copying
a validated prototype instead of validating each one): every message the model
hands out must equal the same message built through pydantic validation, so a
validator a future langchain-core adds cannot be skipped silently.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import Runnable

from fakellm import FakeChatModel, Script, ToolCall, Turn

TURNS = {
    "text": Turn("Roses and lilies", chunks="words"),
    "content blocks": Turn(content=[{"type": "text", "text": "Pink roses"}]),
    "reasoning": Turn("Roses.", reasoning="They asked for flowers.", chunks="words"),
    "tool calls": Turn(tool_calls=[ToolCall("get_price", {"flower": "rose"}, id="call_1")]),
}
CONTAINERS = (
    "content",
    "additional_kwargs",
    "response_metadata",
    "tool_calls",
    "invalid_tool_calls",
    "tool_call_chunks",
)


def get_price(flower: str) -> str:
    """The price of a flower."""
    return "3 EUR"


def _model(turn: str) -> Runnable[Any, Any]:
    model = FakeChatModel(script=Script([TURNS[turn]], when_exhausted="repeat_last"))
    return model.bind_tools([get_price]) if turn == "tool calls" else model


def _play(model: Runnable[Any, Any], path: str) -> list[BaseMessage]:
    if path == "stream":
        return list(model.stream("Which flowers?"))
    if path == "astream":

        async def drain() -> list[BaseMessage]:
            return [c async for c in model.astream("Which flowers?")]

        return asyncio.run(drain())
    if path == "invoke":
        return [model.invoke("Which flowers?")]
    return [asyncio.run(model.ainvoke("Which flowers?"))]


def _state(messages: list[BaseMessage]) -> list[dict[str, Any]]:
    """Everything an app can see of the messages, except the per-run id."""
    return [{k: copy.deepcopy(v) for k, v in m.__dict__.items() if k != "id"} for m in messages]


def _mutate(messages: list[BaseMessage]) -> None:
    """Change every mutable container of every message, as careless app code might."""
    for m in messages:
        for name in CONTAINERS:
            value = getattr(m, name, None)
            if isinstance(value, dict):
                value["mutated"] = True
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, dict):
                        item["mutated"] = True
                value.append({"type": "text", "text": "mutated"})


@pytest.mark.parametrize("turn", list(TURNS))
@pytest.mark.parametrize("path", ["stream", "astream", "invoke", "ainvoke"])
def test_a_call_cannot_change_another_calls_messages(path: str, turn: str) -> None:
    model = _model(turn)
    first = _play(model, path)
    second = _play(model, path)
    expected = _state(second)
    assert expected == _state(first)  # the same turn, played twice

    _mutate(first)
    assert _state(second) == expected  # an earlier call's output left alone
    assert _state(_play(model, path)) == expected  # and so is every later call's


def _validated(obj: Any) -> Any:
    """The same message (or generation) built through pydantic validation from its set fields."""
    fields = {k: copy.deepcopy(getattr(obj, k)) for k in obj.model_fields_set}
    return type(obj)(**fields)


class _Generations(BaseCallbackHandler):
    """Keeps the generation chunks core hands to callbacks (their ``text`` is read there)."""

    def __init__(self) -> None:
        self.chunks: list[Any] = []

    def on_llm_new_token(self, token: str, *, chunk: Any = None, **kwargs: Any) -> None:
        self.chunks.append(chunk)


@pytest.mark.parametrize("path", ["stream", "astream"])
@pytest.mark.parametrize("turn", list(TURNS))
def test_every_chunk_equals_a_validated_build_field_for_field(path: str, turn: str) -> None:
    generations = _Generations()
    model = _model(turn).with_config(callbacks=[generations])
    for _ in range(2):  # the first play of a turn and a replay of it
        chunks = _play(model, path)
        assert chunks
        for chunk in chunks:
            assert type(chunk) is AIMessageChunk
            built = _validated(chunk)
            assert chunk.__dict__ == built.__dict__
            assert chunk.model_fields_set == built.model_fields_set
            assert chunk.__pydantic_extra__ == built.__pydantic_extra__
    assert len(generations.chunks) == 2 * len(chunks)
    for generation in generations.chunks:
        assert type(generation) is ChatGenerationChunk
        built_generation = _validated(generation)
        assert generation.__dict__ == built_generation.__dict__
        assert generation.model_fields_set == built_generation.model_fields_set
