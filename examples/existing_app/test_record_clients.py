"""Recording the real provider clients, streaming and not, then replaying without them.

``langchain-openai`` and ``langchain-anthropic`` talk to local servers on
127.0.0.1 that speak each provider's wire format; what they return is
recorded at the model level and replayed, with the servers stopped, to the
same text, tool calls and usage.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import anthropic
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.tools import tool
from pydantic import BaseModel

from existing_app.provider_server import AnthropicServer, OpenAIServer, Reply
from fakellm import intercept, load_script, run_scenario, virtual_time
from fakellm.fixtures import FakeLLMFactory, NetworkGuard


@tool
def get_price(flower: str) -> float:
    """The price of one stem of ``flower``, in euros."""
    return 4.5


ROSE = ("toolu_1", "get_price", ['{"flower":', ' "rose"}'])
REPLIES = [
    Reply(chunks=["Let me ", "check."], tool_calls=[ROSE], usage=(30, 12)),
    Reply(chunks=["Roses ", "cost 4.5."], usage=(40, 6)),
]


def _client(
    provider: str, request: pytest.FixtureRequest
) -> tuple[OpenAIServer | AnthropicServer, type[BaseChatModel], BaseChatModel]:
    """The provider's local server (with REPLIES queued), its class, and a real client of it."""
    if provider == "openai":
        from langchain_openai import ChatOpenAI

        openai_server: OpenAIServer = request.getfixturevalue("openai_server")
        openai_server.add(*REPLIES)
        client = ChatOpenAI(
            model="gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-dummy",
            max_retries=0, stream_usage=True,
        )  # fmt: skip
        return openai_server, ChatOpenAI, client
    server: AnthropicServer = request.getfixturevalue("anthropic_server")
    server.add(*REPLIES)
    claude = ChatAnthropic(
        model="claude-sonnet-4-6", base_url=server.base_url, api_key="sk-ant-dummy",
        max_retries=0,
    )  # fmt: skip
    return server, ChatAnthropic, claude


def _seen(message: AIMessage | AIMessageChunk) -> tuple[object, ...]:
    usage = message.usage_metadata or {}
    return (
        message.text,
        [(c["name"], c["args"], c["id"]) for c in message.tool_calls],
        {k: usage.get(k) for k in ("input_tokens", "output_tokens", "total_tokens")},
    )


def _both_ways(model: BaseChatModel) -> list[tuple[object, ...]]:
    bound = model.bind_tools([get_price])
    chunks = list(bound.stream("What does a rose cost?"))
    streamed = chunks[0]
    for chunk in chunks[1:]:
        streamed = streamed + chunk
    invoked = bound.invoke("And now?")
    return [_seen(streamed), _seen(invoked)]  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_real_clients_are_recorded_and_replayed_without_their_server(
    provider: str,
    request: pytest.FixtureRequest,
    fake_llm: FakeLLMFactory,
    network_guard: NetworkGuard,
    tmp_path: Path,
) -> None:
    server, cls, model = _client(provider, request)
    cassette = tmp_path / f"{provider}.yaml"

    with intercept(cls, cassette=cassette, record="once"):
        live = _both_ways(model)
    server.server.stop()
    with virtual_time(), intercept(cls, cassette=cassette):
        replayed = _both_ways(model)

    assert replayed == live
    assert live[0] == (
        "Let me check.",
        [("get_price", {"flower": "rose"}, "toolu_1")],
        {"input_tokens": 30, "output_tokens": 12, "total_tokens": 42},
    )
    assert network_guard.blocked == []
    text = cassette.read_text(encoding="utf-8")
    assert "sk-" not in text  # neither key
    streamed = load_script(cassette).turns[0].stream
    assert streamed is not None
    assert [c.text for c in streamed if c.text] == ["Let me ", "check."]
    assert [t["args"] for c in streamed for t in c.tool_call_chunks] == [
        "",
        '{"flower":',
        ' "rose"}',
    ]  # the fragments as the provider cut them


async def _both_ways_async(model: BaseChatModel) -> list[tuple[object, ...]]:
    bound = model.bind_tools([get_price])
    chunks = [chunk async for chunk in bound.astream("What does a rose cost?")]
    streamed = chunks[0]
    for chunk in chunks[1:]:
        streamed = streamed + chunk
    invoked = await bound.ainvoke("And now?")
    return [_seen(streamed), _seen(invoked)]  # type: ignore[arg-type]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_the_async_paths_record_and_replay_too(
    provider: str, request: pytest.FixtureRequest, fake_llm: FakeLLMFactory, tmp_path: Path
) -> None:
    server, cls, model = _client(provider, request)
    cassette = tmp_path / f"{provider}-async.yaml"

    with intercept(cls, cassette=cassette, record="once"):
        live = asyncio.run(_both_ways_async(model))
    server.server.stop()
    with intercept(cls, cassette=cassette):
        replayed = run_scenario(_both_ways_async(model))

    assert replayed.results == (live,)
    turns = load_script(cassette).turns
    assert [c.text for c in turns[0].stream or () if c.text] == ["Let me ", "check."]
    assert replayed.elapsed == pytest.approx(sum(sum(t.delays(99)) for t in turns))


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (Reply(status=429, retry_after="7"), {"type": "RateLimitError", "retry_after": 7.0}),
        (Reply(status=529), {"type": "ServerError", "status_code": 529}),
    ],
)
def test_anthropic_errors_are_recorded_by_type_and_attributes(
    anthropic_server: AnthropicServer,
    fake_llm: FakeLLMFactory,
    tmp_path: Path,
    reply: Reply,
    error: dict[str, object],
) -> None:
    cassette = tmp_path / "error.yaml"
    anthropic_server.add(reply)
    model = ChatAnthropic(
        model="claude-sonnet-4-6", base_url=anthropic_server.base_url, api_key="sk-ant-dummy",
        max_retries=0,
    )  # fmt: skip
    with (
        intercept(ChatAnthropic, cassette=cassette, record="once"),
        pytest.raises(anthropic.APIStatusError) as live,
    ):
        model.invoke("hi")
    anthropic_server.server.stop()

    [turn] = load_script(cassette).turns
    assert {k: v for k, v in turn.error.spec().items() if k != "message"} == error
    with (
        virtual_time(),
        intercept(ChatAnthropic, cassette=cassette),
        pytest.raises(type(turn.error)) as replayed,
    ):
        model.invoke("hi")
    assert str(replayed.value) == str(live.value)


def test_an_anthropic_agent_run_replays_its_content_blocks(
    anthropic_server: AnthropicServer, fake_llm: FakeLLMFactory, tmp_path: Path
) -> None:
    from langchain.agents import create_agent

    model = ChatAnthropic(
        model="claude-sonnet-4-6", base_url=anthropic_server.base_url, api_key="sk-ant-dummy",
        max_retries=0,
    )  # fmt: skip
    agent = create_agent(model, tools=[get_price])
    anthropic_server.add(*REPLIES)
    cassette = tmp_path / "agent.yaml"
    question = {"messages": [("user", "What does a rose cost?")]}

    with intercept(ChatAnthropic, cassette=cassette, record="once"):
        live = agent.invoke(question)
    anthropic_server.server.stop()
    with virtual_time(), intercept(ChatAnthropic, cassette=cassette):
        replayed = agent.invoke(question)

    def seen(messages: list[Any]) -> list[Any]:
        return [m.model_dump(exclude={"id"}) for m in messages]

    assert seen(replayed["messages"]) == seen(live["messages"])
    assert replayed["messages"][-1].text == "Roses cost 4.5."
    assert replayed["messages"][1].content == [  # content blocks, as live
        {"text": "Let me check.", "type": "text"},
        {"id": "toolu_1", "input": {"flower": "rose"}, "name": "get_price",
         "toolset_name": None, "type": "tool_use"},
    ]  # fmt: skip


RUN = UUID(int=14)  # one run id live and replayed: LangChain derives id-less chunks' ids from it


def _timed(chunks: Iterator[AIMessageChunk]) -> tuple[list[dict[str, Any]], list[float]]:
    seen, times = [], []
    started = time.monotonic()
    for chunk in chunks:
        seen.append(chunk.model_dump())
        times.append(time.monotonic() - started)
    return seen, times


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_real_clients_stream_replays_chunk_for_chunk_at_the_recorded_times(
    provider: str, request: pytest.FixtureRequest, fake_llm: FakeLLMFactory, tmp_path: Path
) -> None:
    server, cls, model = _client(provider, request)
    server.queue.clear()
    thinking = ["Roses are ", "in stock."] if provider == "anthropic" else []
    server.add(Reply(thinking=thinking, chunks=["Let me ", "check."], tool_calls=[ROSE]))
    bound = model.bind_tools([get_price])
    cassette = tmp_path / f"{provider}-exact.yaml"

    with intercept(cls, cassette=cassette, record="once"):
        live, _ = _timed(bound.stream("What does a rose cost?", config={"run_id": RUN}))
    server.server.stop()
    with virtual_time(), intercept(cls, cassette=cassette):
        replayed, times = _timed(bound.stream("What does a rose cost?", config={"run_id": RUN}))

    assert replayed == live  # every field of every chunk, ids included
    [turn] = load_script(cassette).turns
    assert turn.stream is not None
    arrivals = list(itertools.accumulate(c.delay for c in turn.stream))
    assert times[: len(arrivals)] == pytest.approx(arrivals, abs=1e-6)
    fragments = [t["args"] for c in turn.stream for t in c.tool_call_chunks]
    assert fragments == ["", '{"flower":', ' "rose"}']  # as the provider cut them
    if provider == "anthropic":
        assert live[1]["content"] == [
            {"type": "thinking", "thinking": "Roses are ", "index": 0}
        ]  # a thinking block, replayed as one
        assert {"type": "thinking", "thinking": "", "signature": "sig-local", "index": 0} in [
            b for c in live for b in c["content"] if isinstance(b, dict)
        ]
    else:
        assert live[-2]["usage_metadata"]["input_token_details"] == {}  # the usage-only chunk


class Flower(BaseModel):
    name: str


# The openai SDK's own parse() warns about its ParsedChatCompletionMessage typing, live.
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")
def test_openai_structured_output_streams_replay_with_the_parsed_object(
    openai_server: OpenAIServer, fake_llm: FakeLLMFactory, tmp_path: Path
) -> None:
    from langchain_openai import ChatOpenAI

    openai_server.add(Reply(chunks=['{"name": ', '"rose"}']))
    llm = ChatOpenAI(
        model="gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-dummy", max_retries=0
    )
    structured = llm.bind(response_format=Flower)
    cassette = tmp_path / "structured.yaml"
    with intercept(ChatOpenAI, cassette=cassette, record="once"):
        live = list(structured.stream("A flower?", config={"run_id": RUN}))
    openai_server.server.stop()
    with intercept(ChatOpenAI, cassette=cassette):
        replayed = list(structured.stream("A flower?", config={"run_id": RUN}))

    assert replayed == live
    parsed = [c.additional_kwargs["parsed"] for c in replayed if "parsed" in c.additional_kwargs]
    assert parsed == [Flower(name="rose")]
    assert isinstance(parsed[0], Flower)  # the object, as the SDK gives it
