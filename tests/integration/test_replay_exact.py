"""Exact replay: a Turn's ``stream`` (chunks as recorded), what the recorder writes in it,
and the run (id, tags, metadata) of streamed intercepted calls."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI

from fakellm import FakeChatModel, Script, Turn, dump_script, intercept, load_script, virtual_time
from fakellm._script import parse_script_text
from fakellm.errors import InvalidScript

pytestmark = pytest.mark.usefixtures("network_guard")  # loopback only, as in every fakellm test

RUN = UUID(int=14)
CONFIG: Any = {"run_id": RUN, "tags": ["checkout"], "metadata": {"user": "u-1"}}
PRICE = {"type": "function", "function": {"name": "get_price", "parameters": {}}}


# -- the run of a streamed intercepted call ------------------------------------------------


class _Runs(BaseCallbackHandler):
    """The run id LangChain reports for each chat model run."""

    def __init__(self) -> None:
        self.ids: list[UUID] = []

    def on_chat_model_start(
        self, serialized: Any, messages: Any, *, run_id: UUID, **kw: Any
    ) -> None:
        self.ids.append(run_id)


def test_streamed_calls_record_their_run_id_tags_and_metadata_as_invoked_ones_do() -> None:
    llm = ChatOpenAI(model="gpt-4o-mini", api_key="sk-dummy", tags=["shop"])
    streaming = ChatOpenAI(model="gpt-4o-mini", api_key="sk-dummy", streaming=True)
    with intercept(ChatOpenAI, script=["a", "b", "c", "d"]) as seam:
        llm.invoke("x", config=CONFIG)
        list(llm.stream("x", config=CONFIG))
        streaming.invoke("x", config=CONFIG)  # core streams it through _stream
        asyncio.run(_astream(llm))
    runs = [(c.streaming, c.run_id, c.tags) for c in seam.calls]
    assert runs == [
        (False, RUN, ("checkout", "shop")),
        (True, RUN, ("checkout", "shop")),
        (True, RUN, ("checkout",)),
        (True, RUN, ("checkout", "shop")),
    ]
    invoked = dict(seam.calls[0].metadata)
    assert invoked["user"] == "u-1"
    assert [dict(c.metadata) for c in seam.calls] == [invoked] * 4  # lc_versions too
    assert "stream" not in ChatOpenAI.__dict__  # put back


async def _astream(llm: ChatOpenAI) -> list[AIMessageChunk]:
    return [c async for c in llm.astream("x", config=CONFIG)]


def test_a_stream_without_a_run_id_records_the_one_langchain_reports() -> None:
    llm = ChatOpenAI(model="gpt-4o-mini", api_key="sk-dummy")
    runs = _Runs()
    with intercept(ChatOpenAI, script=["a", "b"]) as seam:
        list(llm.stream("x", config={"callbacks": [runs]}))
        asyncio.run(_astream_with(llm, runs))
    assert [c.run_id for c in seam.calls] == runs.ids
    assert len(set(runs.ids)) == 2


async def _astream_with(llm: ChatOpenAI, runs: _Runs) -> list[AIMessageChunk]:
    return [c async for c in llm.astream("x", config={"callbacks": [runs]})]


# -- a Turn's stream: played exactly as written ---------------------------------------------


RECORDED = Turn(
    id="msg_1",
    stream=[
        {"delay": 0.5, "content": []},
        {"delay": 0.25, "content": [{"type": "thinking", "thinking": "Price?", "index": 0}]},
        {"delay": 0.125, "content": [{"type": "text", "text": "Let me ", "index": 1}]},
        {"delay": 0.125, "tool_call_chunks": [{"index": 2, "name": "lookup", "id": "t1"}]},
        {"delay": 0.0625, "tool_call_chunks": [{"index": 2, "args": '{"fl'}], "id": None},
        {"delay": 0.0625, "tool_call_chunks": [{"index": 2, "args": 'ower": "rose"}'}]},
        {
            "delay": 1.0,
            "response_metadata": {"stop_reason": "tool_use"},
            "usage_metadata": {"input_tokens": 9, "output_tokens": 4, "total_tokens": 13,
                               "input_token_details": {}},
            "chunk_position": "last",
        },
    ],
)  # fmt: skip


def test_a_stream_turn_streams_every_chunk_as_written_at_its_time() -> None:
    model = FakeChatModel(script=[RECORDED]).bind_tools([PRICE])
    arrived = []
    with virtual_time() as clock:
        for chunk in model.stream("x"):
            arrived.append((clock.elapsed, chunk))
    assert [t for t, _ in arrived] == [0.5, 0.75, 0.875, 1.0, 1.0625, 1.125, 2.125]
    chunks = [c for _, c in arrived]
    assert chunks[1].content == [{"type": "thinking", "thinking": "Price?", "index": 0}]
    assert [c.tool_call_chunks[0]["args"] for c in chunks[3:6]] == [
        None, '{"fl', 'ower": "rose"}'
    ]  # fmt: skip
    assert [c.id for c in chunks] == ["msg_1"] * 4 + [chunks[4].id] + ["msg_1"] * 2
    assert str(chunks[4].id).startswith("lc_run--")  # id: null: LangChain gives the run's
    assert chunks[-1].usage_metadata == {
        "input_tokens": 9, "output_tokens": 4, "total_tokens": 13, "input_token_details": {},
    }  # fmt: skip
    assert chunks[-1].response_metadata == {"stop_reason": "tool_use"}  # nothing added
    whole = sum(chunks[1:], chunks[0])
    assert whole.tool_calls == [
        {"name": "lookup", "args": {"flower": "rose"}, "id": "t1", "type": "tool_call"}
    ]  # "lookup" is not bound: a recorded answer replays as the provider gave it


def test_invoke_merges_the_stream_as_langchain_merges_a_provider_stream() -> None:
    model = FakeChatModel(script=[RECORDED, RECORDED]).bind_tools([PRICE])
    with virtual_time() as clock:
        invoked = model.invoke("x")
    streamed = list(model.stream("x"))
    merged = sum(streamed[1:], streamed[0])
    assert clock.elapsed == 2.125
    assert (
        invoked.content
        == merged.content
        == [
            {"type": "thinking", "thinking": "Price?", "index": 0},
            {"type": "text", "text": "Let me ", "index": 1},
        ]
    )
    assert invoked.tool_calls == merged.tool_calls
    assert invoked.id == "msg_1"
    assert invoked.response_metadata == {"stop_reason": "tool_use"}


def test_without_ids_a_stream_turn_gets_the_stable_fake_id() -> None:
    model = FakeChatModel(model="m", script=[Turn(stream=[{"content": "a"}, {"content": "b"}])])
    assert [c.id for c in model.stream("x")][:2] == ["fakellm-m-0", "fakellm-m-0"]


def test_a_stream_turn_can_fail_after_its_chunks() -> None:
    turn = Turn(stream=[{"content": "a"}, {"content": "b"}], error="ServerError", at_chunk=1)
    model = FakeChatModel(script=[turn])
    seen = []
    with pytest.raises(Exception, match="internal server error") as caught:
        for chunk in model.stream("x"):
            seen.append(chunk.content)
    assert type(caught.value).__name__ == "ServerError"
    assert seen == ["a"]


def test_a_stream_turn_dumps_and_loads_exactly() -> None:
    script = Script([RECORDED])
    text = dump_script(script)
    assert parse_script_text(text) == script
    assert text.splitlines()[:5] == [
        "turns:",
        "- id: msg_1",
        "  stream:",
        "  - {delay: 0.5, content: []}",
        "  - {delay: 0.25, content: [{type: thinking, thinking: 'Price?', index: 0}]}",
    ]
    assert "  - {delay: 0.0625, tool_call_chunks: [{index: 2, args: '{\"fl'}], id: null}\n" in text
    assert "    response_metadata: {stop_reason: tool_use}\n" in text
    # a chunk that says `id: null` is not the same as one that says nothing
    assert Turn(stream=[{"id": None}]) != Turn(stream=[{}])


@pytest.mark.parametrize(
    ("turn", "message"),
    [
        (
            {"stream": [{"content": "a"}], "text": "a"},
            "invalid script: text: give either stream or text, not both: a stream's chunks "
            "carry the whole answer (content, tool_call_chunks, usage_metadata, "
            "response_metadata, each chunk's delay); the turn adds only id, name, error and "
            "at_chunk (got 'a')",
        ),
        ({"stream": []}, "invalid script: stream: a stream needs at least one chunk (got ())"),
        (
            {"stream": [{"tool_call_chunks": [{"index": 0, "arg": "{}"}]}]},
            "invalid script: stream[0].tool_call_chunks[0]: unknown key 'arg'; accepted: name, "
            "args, id, index (got {'index': 0, 'arg': '{}'})",
        ),
        (
            {"stream": [{"usage_metadata": {"input_tokens": 1, "cached": 1}}]},
            "invalid script: stream[0].usage_metadata.cached: unknown key 'cached'; accepted: "
            "input_tokens, output_tokens, total_tokens, input_token_details, "
            "output_token_details (got 1)",
        ),
        (
            {"stream": [{"content": "a"}], "error": "ServerError", "at_chunk": 2},
            "invalid script: at_chunk: the error position is past the last chunk; this stream "
            "has 1 chunks, accepted: 0 (before the first chunk), a chunk count up to the "
            "number of chunks, or 'end' (got 2)",
        ),
        (
            {"stream": [{"delay": -1}]},
            "invalid script: stream[0].delay: delay must be a finite number of seconds >= 0 "
            "(got -1)",
        ),
    ],
)
def test_bad_stream_turns_are_clear_errors(turn: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidScript) as caught:
        Turn(**turn)
    assert str(caught.value) == message


# -- recording into the stream form ---------------------------------------------------------


class _Hallucinating(BaseChatModel):
    """A provider that calls a tool the request never bound (models do)."""

    @property
    def _llm_type(self) -> str:
        return "hallucinating"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        call = {"name": "lookup", "args": {"q": "rose"}, "id": "t9", "type": "tool_call"}
        message = AIMessage(
            "", tool_calls=[call], response_metadata={"finish_reason": "tool_calls"}
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        yield ChatGenerationChunk(message=AIMessageChunk("a"))
        raise ConnectionError("connection reset mid-stream")


def test_a_recorded_call_of_an_unbound_tool_replays(tmp_path: Path) -> None:
    model = _Hallucinating().bind(tools=[PRICE])
    cassette = tmp_path / "unbound.yaml"
    with intercept(_Hallucinating, cassette=cassette, record="once"):
        live = model.invoke("x", config={"run_id": RUN})
    with virtual_time(), intercept(_Hallucinating, cassette=cassette):
        replayed = model.invoke("x", config={"run_id": RUN})
    assert replayed.model_dump() == live.model_dump()
    assert replayed.tool_calls == [
        {"name": "lookup", "args": {"q": "rose"}, "id": "t9", "type": "tool_call"}
    ]


def test_an_error_mid_stream_is_recorded_after_the_chunks_before_it(tmp_path: Path) -> None:
    model = _Hallucinating()
    cassette = tmp_path / "broken.yaml"
    seam = intercept(_Hallucinating, cassette=cassette, record="once")
    live: list[str] = []
    with seam, pytest.raises(ConnectionError):
        live.extend(str(c.content) for c in model.stream("x"))
    seam.uninstall()  # the block failed, so nothing was saved: save what was recorded
    assert seam.cassette is not None
    seam.cassette.save()
    [turn] = load_script(cassette).turns
    assert (turn.error_position, [c.content for c in turn.stream or ()]) == (1, ["a"])
    replayed: list[str] = []
    with (
        virtual_time(),
        intercept(_Hallucinating, cassette=cassette),
        pytest.raises(ConnectionError, match="connection reset mid-stream"),
    ):
        replayed.extend(str(c.content) for c in model.stream("x"))
    assert replayed == live == ["a"]
