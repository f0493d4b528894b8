"""The per-call shortcuts give what the general code gave, field for field.

Each shortcut here replaced a slower general path: the call record written into
its ``__dict__``, input tokens read from a str content directly, the race
detector building nothing for a take the app orders, an async call's Unit built
only when it hops, and the run watch of ``astream`` handed over once core's
stream is in its reporting block.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import threading
import uuid
from typing import Any

import pytest
from langchain_core.messages import (
    AIMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from fakellm import FakeChatModel, Turn, _order, _tokens
from fakellm._model import _input_tokens, _tool_calls_of
from fakellm._script import Call, chat_call, new_call

# -- the call record -----------------------------------------------------------------


def test_a_record_built_into_its_dict_equals_the_dataclass_built_one() -> None:
    values: dict[str, Any] = {
        "index": 3,
        "messages": (HumanMessage("hi"),),
        "tools": ({"type": "function", "function": {"name": "f"}},),
        "tool_choice": "any",
        "stop": ("x",),
        "model": "m",
        "kwargs": {"seed": 1},
        "streaming": True,
        "run_id": uuid.uuid4(),
        "tags": ("t",),
        "metadata": {"k": "v"},
    }
    fast, slow = new_call(**values), Call(**values)
    assert fast == slow
    assert vars(fast) == vars(slow)
    assert repr(fast) == repr(slow)
    assert dataclasses.replace(fast, index=4) == dataclasses.replace(slow, index=4)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.index = 5  # type: ignore[misc]
    bare, bare_slow = new_call(index=0), Call(index=0)
    assert vars(bare) == vars(bare_slow)
    # Each record has its own default containers, as the dataclass gives it.
    assert new_call(index=0).kwargs is not bare.kwargs
    assert new_call(index=0).metadata is not bare.metadata
    # A chat model's record, its values given in place: the same record, keys in order,
    # and a dict sharing its keys with the other records' (less than half the size).
    del values["index"]
    positional, keyword = chat_call(*values.values()), Call(index=-1, **values)
    assert positional == keyword
    assert list(vars(positional).items()) == list(vars(keyword).items())
    assert repr(positional) == repr(keyword)
    assert sys.getsizeof(vars(chat_call(*values.values()))) < sys.getsizeof(dict(vars(keyword)))


# -- input tokens ----------------------------------------------------------------------


class Shouting(HumanMessage):
    """A message class whose text is not its content."""

    @property
    def text(self) -> Any:  # type: ignore[override]
        return str(self.content).upper() + " !!"


def _reference_tokens(messages: list[Any]) -> int:
    """The count as it was: every message's ``text``, then its tool calls."""
    texts: list[str] = []
    for m in messages:
        texts.append(m.text)
        for tc in _tool_calls_of(m) or ():
            texts.extend((tc["name"], str(tc["args"])))
    return _tokens.count_tokens_in(texts)


def test_input_tokens_read_as_every_message_s_text_reads() -> None:
    messages: list[Any] = [
        SystemMessage("Be brief, please."),
        HumanMessage("Roses, lilies and sunflowers."),
        HumanMessage("with a call", tool_calls=[{"name": "lookup", "args": {"q": "x y"}}]),
        AIMessage("", tool_calls=[{"name": "get_price", "args": {"flower": "rose"}, "id": "1"}]),
        AIMessage([{"type": "text", "text": "block text"}, {"type": "reasoning", "x": 1}]),
        ToolMessage("12 dollars", tool_call_id="1"),
        ChatMessage("custom role", role="critic"),
        FunctionMessage("function says", name="fn"),
        Shouting("quiet words"),
        HumanMessage(["a plain string block", {"type": "text", "text": "and one more"}]),
    ]
    for i in range(len(messages)):
        assert _input_tokens(messages[i : i + 1]) == _reference_tokens(messages[i : i + 1])
    assert _input_tokens(messages) == _reference_tokens(messages) == 53
    model = FakeChatModel(script=["ok"])
    assert model.get_num_tokens_from_messages(messages) == 53
    assert model.invoke(messages).usage_metadata["input_tokens"] == 53


# -- the race detector's bookkeeping ---------------------------------------------------------


def test_a_take_the_app_orders_builds_no_origin_and_others_are_as_before() -> None:
    assert _order.by_threads(False) is None  # the main thread, no loop
    assert _order.by_threads(True) is None  # a batch input
    assert _order.origin(False) == _order.Origin(threading.current_thread().name, False)
    with _order.in_turn(object()) as taking:
        assert taking.ordered is False
        taking.took(None)  # nothing to report to
    seen: list[Any] = []
    worker = threading.Thread(
        target=lambda: seen.extend([_order.by_threads(False), _order.origin(False)]), name="w-1"
    )
    worker.start()
    worker.join()
    assert seen == [_order.Origin("w-1", True, None)] * 2

    async def on_a_loop() -> list[Any]:
        return [_order.by_threads(False), _order.origin(False)]

    assert asyncio.run(on_a_loop()) == [None, _order.Origin(threading.current_thread().name, False)]


def test_an_async_call_gets_its_unit_only_when_it_hops_stamped_as_it_started() -> None:
    async def call(hop: bool) -> tuple[Any, int, int]:
        with _order.async_call():
            started = _order._stamp()
            if hop:
                _order.hopped()
                _order.hopped()  # once is enough: the same unit
            where = _order.origin(False)
            ended = _order._stamp()
        return where, started, ended

    where, _, _ = asyncio.run(call(False))
    assert where == _order.Origin(threading.current_thread().name, False)
    where, started, ended = asyncio.run(call(True))
    unit = where.unit
    assert where.by_threads is True
    assert isinstance(unit, _order.Unit)
    assert unit.hopped is True
    assert unit.forked < started  # handed over as the call began, not when it hopped
    assert unit.joined is not None
    assert unit.joined > ended  # handed back as the call ended
    _order.hopped()  # outside any async call: nothing to mark


# -- a plain-text turn's first play ---------------------------------------------------------


def _streamed(turn: Turn, *, built: bool) -> list[dict[str, Any]]:
    if built:
        turn.pieces  # noqa: B018  (built before the first play, as on a model played before)
        assert "pieces" in vars(turn)
    model = FakeChatModel(script=[turn], allow_unused=True)
    chunks = list(model._stream([HumanMessage("hi")], stream_usage=True))
    assert ("pieces" in vars(turn)) is built  # the first play built none
    return [{"chunk": c.model_dump(), "message": vars(c.message)} for c in chunks]


@pytest.mark.parametrize(
    "make",
    [
        lambda: Turn("Roses, lilies and  sunflowers."),
        lambda: Turn("abc", chunks="chars", name="bot", additional_kwargs={"k": 1}),
        lambda: Turn(chunks=["a", "", "bc "]),
        lambda: Turn("x" * 10, chunks=3, id="fixed"),
        lambda: Turn(""),
        lambda: Turn("one two", chunks={"regex": r"\w+"}),
    ],
)
def test_a_first_play_streams_what_a_played_turn_streams(make: Any) -> None:
    assert _streamed(make(), built=False) == _streamed(make(), built=True)
