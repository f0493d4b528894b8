"""dump_script round-trips every script the strategies draw, and every recording replays exactly."""

from __future__ import annotations

import itertools
import json
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, message_chunk_to_message
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from fakellm import (
    FakeChatModel,
    Rule,
    Script,
    ToolCall,
    Turn,
    Usage,
    dump_script,
    errors,
    intercept,
    load_script,
    virtual_time,
)
from fakellm import strategies as fs
from fakellm._script import parse_script_text

from .common import FAST


def get_price(flower: str, stems: int = 1) -> float:
    """Price of some stems of a flower."""
    return 1.0 * stems


def get_stock(flower: str) -> int:
    """Stems in stock."""
    return 3


@FAST
@given(fs.scripts(max_turns=4))
def test_any_drawn_script_round_trips_exactly(script: Script) -> None:
    assert parse_script_text(dump_script(script)) == script


@FAST
@given(
    fs.scripts(
        turns=fs.turns(tools=[get_price, get_stock], reasoning=True, alphabet=st.characters()),
        max_turns=3,
    )
)
def test_any_drawn_script_with_tool_calls_reasoning_and_any_text_round_trips_exactly(
    script: Script,
) -> None:
    assert parse_script_text(dump_script(script)) == script


@FAST
@given(
    st.sampled_from(fs.DEFAULT_ERRORS),
    st.text(min_size=1, max_size=20),
    st.one_of(st.none(), st.floats(0, 60, allow_nan=False)),
)
def test_error_instances_come_back_with_their_class_and_attributes(
    cls: type[errors.ProviderError], message: str, retry_after: float | None
) -> None:
    error = (
        errors.RateLimitError(message, retry_after=retry_after)
        if cls is errors.RateLimitError
        else cls(message)
    )
    script = Script([Turn("partial answer", error=error, at_chunk=1)])

    back = parse_script_text(dump_script(script)).turns[0].error

    assert type(back) is cls
    assert back is not error  # exceptions compare by identity; a new one with the same spec
    assert back.spec() == error.spec()
    assert dump_script(Script([Turn("partial answer", error=back, at_chunk=1)])) == dump_script(
        script
    )


def test_every_turn_field_round_trips(tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = Script(
        [
            Turn(
                "Roses and lilies",
                chunks=("Roses", " and", " lilies"),
                first_token_delay=0.25,
                delay=(0.01, 0.02),
                usage=Usage(input_tokens=7, output_tokens=3, input_token_details={"cache_read": 2}),
                finish_reason="stop",
                response_metadata={
                    "model_name": "gpt-4o-mini-2024-07-18",
                    "system_fingerprint": "fp",
                },
                request={"messages": [{"human": "hi"}], "fingerprint": "abc"},
            ),
            Turn("x y z", chunks={"regex": r"\w"}, delay={"repeat": [0.1, 0.2]}),
            Turn(content=[{"type": "text", "text": "hi"}], reasoning="think first"),
            Turn(tool_calls=[ToolCall("get_price", {"flower": "rose"}, id="call_1")]),
            Turn(error=TimeoutError("slow"), first_token_delay=3.0),
            Turn(error=errors.ServerError, at_chunk=0),
            Turn("cut", error=errors.APIConnectionError(), at_chunk="end"),
        ],
        rules=[Rule(match=r"price", respond="4.5 euros", times=2, name="prices")],
    )
    path = tmp_path / "script.yaml"
    text = dump_script(script, path)

    loaded = load_script(path)
    assert path.read_text(encoding="utf-8") == text
    assert dump_script(loaded) == text
    assert loaded.rules == script.rules
    for mine, theirs in zip(loaded.turns, script.turns, strict=True):
        assert mine.model_dump(exclude={"error"}) == theirs.model_dump(exclude={"error"})
        kind = mine.error if isinstance(mine.error, type) else type(mine.error)
        assert kind is (theirs.error if isinstance(theirs.error, type) else type(theirs.error))
    assert loaded.turns[4].error.args == ("slow",)


def test_a_plain_text_turn_is_written_as_a_string() -> None:
    assert dump_script(Script(["hello", "world"])) == "turns:\n- hello\n- world\n"


@pytest.mark.parametrize(
    ("script", "message"),
    [
        (
            Script(rules=[Rule(when=lambda call: True, respond="x")]),
            "rules[0].when: a function cannot be written to a file; use match= or tools=",
        ),
        (
            Script([Turn("a b", chunks=re.compile(r"\w+", re.IGNORECASE))]),
            "turns[0].chunks: a regex with flags cannot be written to a file; "
            "use inline flags (?i)",
        ),
        (
            Script([Turn(error=type("Custom", (Exception,), {}))]),
            "turns[0].error: Custom cannot be written to a file; a script file names a "
            "fakellm.errors provider error or a builtin exception",
        ),
    ],
)
def test_what_a_file_cannot_hold_is_a_clear_error(script: Script, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        dump_script(script)


@FAST
@given(fs.scripts(max_turns=2))
def test_a_dumped_script_plays_like_the_original(script: Script) -> None:
    tools = fs.tools_for(script)
    original = FakeChatModel(script=script, allow_unused=True).bind_tools(tools)
    again = FakeChatModel(script=parse_script_text(dump_script(script)), allow_unused=True)
    for _ in script.turns:
        try:
            expected = [c.content for c in original.stream("go")]
        except Exception as exc:  # the scripted error: the copy must raise it too
            with pytest.raises(type(exc)):
                list(again.bind_tools(tools).stream("go"))
            continue
        assert [c.content for c in again.bind_tools(tools).stream("go")] == expected


class _Provider(BaseChatModel):
    """A stand-in provider integration: streams what the test drew, as integrations do,
    waiting the drawn delay (on the active clock) before each chunk."""

    reply: list[tuple[float, AIMessageChunk]]

    @property
    def _llm_type(self) -> str:
        return "stand-in"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        chunks = [c.message for c in self._stream(messages)]
        whole = message_chunk_to_message(sum(chunks[1:], chunks[0]))
        return ChatResult(generations=[ChatGeneration(message=whole)])

    def _stream(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        for delay, chunk in self.reply:
            time.sleep(delay)
            yield ChatGenerationChunk(message=chunk.model_copy(deep=True))


_WORDS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=6)


@st.composite
def _replies(draw: st.DrawFn) -> list[tuple[float, AIMessageChunk]]:
    """A provider stream in the shapes integrations send: a role chunk, reasoning,
    text (a string, or content blocks as Anthropic's), tool-call argument fragments cut
    anywhere, a finish chunk, a usage-only last chunk (empty token details included),
    ids on every chunk, on the first only or on none; a delay before each."""
    blocks = draw(st.booleans())
    ids = draw(st.sampled_from(["all", "first", "none"]))
    empty: Any = [] if blocks else ""
    out = [AIMessageChunk(content=empty, response_metadata={"model_provider": "stand-in"})]
    for piece in draw(st.lists(_WORDS, max_size=3)):
        if blocks:
            block = {"type": "thinking", "thinking": piece, "index": 0}
            out.append(AIMessageChunk(content=[block]))
        else:
            out.append(AIMessageChunk(content="", additional_kwargs={"reasoning_content": piece}))
    for piece in draw(st.lists(_WORDS, max_size=4)):
        content: Any = [{"type": "text", "text": piece, "index": 1}] if blocks else piece
        out.append(AIMessageChunk(content=content))
    for index in range(draw(st.integers(0, 2))):
        args = json.dumps(draw(st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=2)))
        cuts = sorted(draw(st.sets(st.integers(1, max(len(args) - 1, 1)), max_size=3)))
        pieces = [args[i:j] for i, j in itertools.pairwise([0, *cuts, len(args)]) if args[i:j]]
        for k, piece in enumerate(pieces):
            first = k == 0
            out.append(
                AIMessageChunk(
                    content=empty,
                    tool_call_chunks=[
                        {"name": "get_price" if first else None, "args": piece,
                         "id": f"call_{index}" if first else None, "index": index + 2}
                    ],
                )
            )  # fmt: skip
    out.append(
        AIMessageChunk(
            content=empty, response_metadata={"finish_reason": "stop", "model_name": "stand-in-1"}
        )
    )
    if draw(st.booleans()):
        i, o = draw(st.integers(0, 500)), draw(st.integers(0, 500))
        usage: Any = {"input_tokens": i, "output_tokens": o, "total_tokens": i + o}
        usage |= draw(
            st.sampled_from(
                [{}, {"input_token_details": {}, "output_token_details": {}},
                 {"input_token_details": {"cache_read": min(i, 3)}}]
            )
        )  # fmt: skip
        out.append(AIMessageChunk(content=empty, usage_metadata=usage, chunk_position="last"))
    for k, chunk in enumerate(out):
        if ids == "all" or (ids == "first" and k == 0):
            chunk.id = "msg_stand_in"
    delays = draw(st.lists(st.integers(0, 900), min_size=len(out), max_size=len(out)))
    return [(d / 1000, chunk) for d, chunk in zip(delays, out, strict=True)]


_TOOL = {"type": "function", "function": {"name": "get_price", "parameters": {}}}
_RUN = UUID(int=7)  # one run id for both runs: LangChain derives id-less chunks' ids from it


def _timed_stream(model: Any) -> tuple[list[AIMessageChunk], list[float]]:
    chunks, times = [], []
    started = time.monotonic()
    for chunk in model.stream("go", config={"run_id": _RUN}):
        chunks.append(chunk)
        times.append(round(time.monotonic() - started, 6))
    return chunks, times


@FAST
@given(_replies())
def test_any_recorded_stream_replays_chunk_for_chunk(
    reply: list[tuple[float, AIMessageChunk]],
) -> None:
    model = _Provider(reply=reply).bind(tools=[_TOOL])
    with tempfile.TemporaryDirectory() as folder:
        cassette = Path(folder) / "run.yaml"
        with virtual_time(), intercept(_Provider, cassette=cassette, record="once"):
            live, live_times = _timed_stream(model)
            live_whole = model.invoke("once more", config={"run_id": _RUN})
        with virtual_time(), intercept(_Provider, cassette=cassette):
            replayed, replayed_times = _timed_stream(model)
            replayed_whole = model.invoke("once more", config={"run_id": _RUN})
        streamed, invoked = load_script(cassette).turns

    # Every field an app can read, chunk for chunk: content, tool_call_chunks,
    # additional_kwargs, response_metadata, usage_metadata, id, chunk_position.
    assert [c.model_dump() for c in replayed] == [c.model_dump() for c in live]
    assert replayed_whole.model_dump() == live_whole.model_dump()
    # Each chunk at the time it came, on the virtual clock: content-less ones too.
    assert replayed_times == live_times
    assert [c.delay for c in streamed.stream or ()] == [d for d, _ in reply]
    assert [c.delay for c in invoked.stream or ()] == [round(sum(d for d, _ in reply), 6)]


_ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=6)


@st.composite
def _stream_turns(draw: st.DrawFn) -> Turn:
    """Turns whose ``stream`` holds any chunk shape a recording can: text or content
    blocks of any characters, argument fragments, metadata, usage with (empty) details,
    an id given, null, or left to the turn."""
    chunks = []
    for _ in range(draw(st.integers(1, 4))):
        chunk: dict[str, Any] = {"delay": draw(st.integers(0, 10**6)) / 10**6}
        if draw(st.booleans()):
            chunk["content"] = draw(
                _ANY_TEXT
                | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": _ANY_TEXT}))
            )
        if draw(st.booleans()):
            chunk["tool_call_chunks"] = [
                {"index": draw(st.integers(0, 3)), "args": draw(_ANY_TEXT),
                 "name": draw(st.none() | st.just("get_price"))}
            ]  # fmt: skip
        if draw(st.booleans()):
            chunk["response_metadata"] = {"note": draw(_ANY_TEXT), "n": draw(st.none())}
        if draw(st.booleans()):
            chunk["usage_metadata"] = {
                "input_tokens": 1, "output_tokens": 2, "total_tokens": 3,
                **draw(st.sampled_from([{}, {"input_token_details": {}},
                                        {"output_token_details": {"reasoning": 1}}])),
            }  # fmt: skip
        how = draw(st.sampled_from(["turn", "null", "own"]))
        if how != "turn":
            chunk["id"] = None if how == "null" else draw(_ANY_TEXT)
        chunks.append(chunk)
    return Turn(stream=chunks, id=draw(st.none() | _ANY_TEXT))


@FAST
@given(_stream_turns())
def test_any_stream_turn_round_trips_exactly(turn: Turn) -> None:
    again = parse_script_text(dump_script(Script([turn]))).turns[0]
    assert again == turn
    assert again.stream is not None
    assert turn.stream is not None
    assert ["id" in c.model_fields_set for c in again.stream] == [
        "id" in c.model_fields_set for c in turn.stream
    ]
