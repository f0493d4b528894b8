"""dump_script round-trips every script the strategies draw, and every recording replays exactly."""

from __future__ import annotations

import itertools
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
    """A stand-in provider integration: streams what the test drew, as integrations do."""

    reply: list[AIMessageChunk]

    @property
    def _llm_type(self) -> str:
        return "stand-in"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        chunks = list(self._stream(messages))
        return ChatResult(
            generations=[
                ChatGeneration(message=message_chunk_to_message(sum(chunks[1:], chunks[0]).message))
            ]
        )

    def _stream(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        for chunk in self.reply:
            yield ChatGenerationChunk(message=chunk.model_copy(deep=True))


@st.composite
def _replies(draw: st.DrawFn) -> list[AIMessageChunk]:
    texts = draw(st.lists(st.text(st.characters(), min_size=1, max_size=8), max_size=5))
    out = [AIMessageChunk(content="")]  # the role chunk integrations send first
    out += [AIMessageChunk(content=t) for t in texts]
    for index in range(draw(st.integers(0, 2))):
        args = json.dumps(draw(st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=2)))
        cuts = sorted(draw(st.sets(st.integers(1, max(len(args) - 1, 1)), max_size=3)))
        pieces = [args[i:j] for i, j in itertools.pairwise([0, *cuts, len(args)]) if args[i:j]]
        for k, piece in enumerate(pieces):
            first = k == 0
            out.append(
                AIMessageChunk(
                    content="",
                    tool_call_chunks=[
                        {"name": "get_price" if first else None, "args": piece,
                         "id": f"call_{index}" if first else None, "index": index}
                    ],
                )
            )  # fmt: skip
    i, o = draw(st.integers(0, 500)), draw(st.integers(0, 500))
    out.append(
        AIMessageChunk(
            content="",
            usage_metadata={"input_tokens": i, "output_tokens": o, "total_tokens": i + o},
            response_metadata={"finish_reason": "stop", "model_name": "stand-in-1"},
        )
    )
    return out


@FAST
@given(_replies())
def test_any_recorded_stream_replays_chunk_for_chunk(reply: list[AIMessageChunk]) -> None:
    tool = {"type": "function", "function": {"name": "get_price", "parameters": {}}}
    model = _Provider(reply=reply).bind(tools=[tool])
    with tempfile.TemporaryDirectory() as folder:
        cassette = Path(folder) / "run.yaml"
        with intercept(_Provider, cassette=cassette, record="once"):
            live = list(model.stream("go"))
        with virtual_time() as clock, intercept(_Provider, cassette=cassette):
            replayed = list(model.stream("go"))
        [turn] = load_script(cassette).turns

    def texts(chunks: list[AIMessageChunk]) -> list[str]:
        return [c.text for c in chunks if c.text]

    assert texts(replayed) == texts(live)
    whole_live, whole_replayed = sum(live[1:], live[0]), sum(replayed[1:], replayed[0])
    assert [(c["name"], c["args"], c["id"]) for c in whole_replayed.tool_calls] == [
        (c["name"], c["args"], c["id"]) for c in whole_live.tool_calls
    ]
    assert whole_replayed.usage_metadata == whole_live.usage_metadata
    assert whole_replayed.response_metadata["model_name"] == "stand-in-1"
    assert clock.elapsed == pytest.approx(
        turn.first_token_delay + sum(turn.delays(len(turn.pieces))[1:])
    )
