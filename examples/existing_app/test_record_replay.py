"""Record the unchanged app against a local OpenAI-compatible server, then replay it.

The real ``langchain-openai`` client talks to 127.0.0.1; the cassette it leaves
is a fakellm script. Replayed with the server stopped, on virtual time, the app
gets the same messages, tool calls and usage, and the same
``get_usage_metadata_callback`` totals, with the recorded latencies.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import openai
import pytest
from langchain_core.callbacks import get_usage_metadata_callback
from langchain_openai import ChatOpenAI

from existing_app import app as app_module
from existing_app.provider_server import MODEL, OpenAIServer, Reply
from fakellm import intercept, load_script, virtual_time
from fakellm.fixtures import FakeLLMFactory


@pytest.fixture
def app(openai_server: OpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The app, imported as production would, with its client pointed at the local server."""
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    yield importlib.reload(app_module)
    monkeypatch.undo()
    importlib.reload(app_module)


AGENT_RUN = [
    Reply(tool_calls=[("call_rose", "get_price", ['{"flo', 'wer": ', '"rose"}'])], usage=(61, 17)),
    Reply(chunks=["A rose ", "costs ", "4.5 euros."], usage=(95, 8)),
]


def _shape(messages: list) -> list:  # type: ignore[type-arg]
    # Everything the app can read but the ids LangChain gives each run.
    return [m.model_dump(exclude={"id"}) for m in messages]


def test_a_recorded_agent_run_replays_identically_with_the_server_stopped(
    app: ModuleType, openai_server: OpenAIServer, fake_llm: FakeLLMFactory, tmp_path: Path
) -> None:
    cassette = tmp_path / "agent.yaml"
    openai_server.add(*AGENT_RUN)
    with (
        intercept(ChatOpenAI, cassette=cassette, record="once"),
        get_usage_metadata_callback() as live_usage,
    ):
        live = app.agent.invoke({"messages": [("user", "What does a rose cost?")]})
    assert len(openai_server.requests) == 2
    openai_server.server.stop()

    with (
        virtual_time() as clock,
        intercept(ChatOpenAI, cassette=cassette),
        get_usage_metadata_callback() as replay_usage,
    ):
        replayed = app.agent.invoke({"messages": [("user", "What does a rose cost?")]})

    assert _shape(replayed["messages"]) == _shape(live["messages"])
    assert replayed["messages"][-1].text == "A rose costs 4.5 euros."
    assert replayed["messages"][1].tool_calls[0]["id"] == "call_rose"
    assert list(replay_usage.usage_metadata) == list(live_usage.usage_metadata) == [MODEL]
    assert replay_usage.usage_metadata[MODEL] == live_usage.usage_metadata[MODEL]
    assert replay_usage.usage_metadata[MODEL] == {
        "input_tokens": 61 + 95, "output_tokens": 17 + 8, "total_tokens": 78 + 103,
        "input_token_details": {}, "output_token_details": {},
    }  # fmt: skip
    recorded = load_script(cassette).turns
    assert clock.elapsed == pytest.approx(sum(sum(t.delays(9)) for t in recorded), abs=1e-6)


def test_a_recorded_stream_replays_chunk_for_chunk_with_its_delays(
    app: ModuleType, openai_server: OpenAIServer, fake_llm: FakeLLMFactory, tmp_path: Path
) -> None:
    cassette = tmp_path / "stream.yaml"
    openai_server.add(Reply(chunks=["Pink ", "tulips", " or ", "peonies."], usage=(9, 4)))
    with intercept(ChatOpenAI, cassette=cassette, record="once"):
        live = [c for c in app.llm.stream("Something for spring?", stream_usage=True)]
    openai_server.server.stop()

    [turn] = load_script(cassette).turns
    with virtual_time() as clock, intercept(ChatOpenAI, cassette=cassette):
        replayed = [c for c in app.llm.stream("Something for spring?", stream_usage=True)]

    assert [c.model_dump(exclude={"id"}) for c in replayed] == [
        c.model_dump(exclude={"id"}) for c in live
    ]
    assert turn.stream is not None
    # role, four text chunks, finish reason, usage: each with its own measured delay
    assert [c.content for c in turn.stream] == ["", "Pink ", "tulips", " or ", "peonies.", "", ""]
    assert turn.stream[-1].usage_metadata is not None
    assert turn.stream[-1].delay > 0
    assert clock.elapsed == pytest.approx(sum(c.delay for c in turn.stream), abs=1e-6)
    full = sum(replayed[1:], replayed[0])
    assert full.usage_metadata == {
        "input_tokens": 9, "output_tokens": 4, "total_tokens": 13,
        "input_token_details": {}, "output_token_details": {},
    }  # fmt: skip
    assert full.response_metadata["finish_reason"] == "stop"
    assert full.response_metadata["model_name"] == MODEL


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(status=429, retry_after="2"), {"type": "RateLimitError", "retry_after": 2.0}),
        (Reply(status=500), {"type": "ServerError"}),  # 500 is its default status
    ],
)
def test_provider_errors_are_recorded_by_type_and_attributes(
    openai_server: OpenAIServer, fake_llm: FakeLLMFactory, tmp_path: Path, reply: Reply, error: dict
) -> None:  # type: ignore[type-arg]
    cassette = tmp_path / "error.yaml"
    openai_server.add(reply)
    llm = ChatOpenAI(model="gpt-4o-mini", base_url=openai_server.base_url, max_retries=0)
    with (
        intercept(ChatOpenAI, cassette=cassette, record="once"),
        pytest.raises(openai.APIStatusError) as live,
    ):
        llm.invoke("hi")
    openai_server.server.stop()

    [turn] = load_script(cassette).turns
    assert {k: v for k, v in turn.error.spec().items() if k != "message"} == error
    with (
        virtual_time(),
        intercept(ChatOpenAI, cassette=cassette),
        pytest.raises(type(turn.error)) as replayed,
    ):
        llm.invoke("hi")
    assert str(replayed.value) == str(live.value)
