"""Record modes, matching and scrubbing, against a local OpenAI-compatible server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from langchain_openai import ChatOpenAI

from existing_app.provider_server import OpenAIServer, Reply
from fakellm import intercept, load_script
from fakellm.errors import UnexpectedCall, UnusedTurns
from fakellm.fixtures import FakeLLMFactory

pytestmark = pytest.mark.usefixtures("fake_llm")  # the network guard: loopback only


@pytest.fixture
def llm(openai_server: OpenAIServer) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-4o-mini", base_url=openai_server.base_url, api_key="sk-dummy", max_retries=0
    )


def _record(cassette: Path, llm: ChatOpenAI, server: OpenAIServer, *prompts: str) -> None:
    server.add(*(Reply(chunks=[f"answer to {p}"]) for p in prompts))
    with intercept(ChatOpenAI, cassette=cassette, record="all"):
        for prompt in prompts:
            llm.invoke(prompt)


def _texts(cassette: Path) -> list[str]:
    return ["".join(c.text for c in t.stream or ()) for t in load_script(cassette).turns]


def test_once_records_a_missing_cassette_then_only_replays(
    llm: ChatOpenAI, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "once.yaml"
    openai_server.add(Reply(chunks=["Roses."]))
    with intercept(ChatOpenAI, cassette=cassette, record="once"):
        assert llm.invoke("hello").text == "Roses."
    with intercept(ChatOpenAI, cassette=cassette, record="once"):
        assert llm.invoke("hello").text == "Roses."
    assert len(openai_server.requests) == 1


def test_new_episodes_replays_what_matches_and_records_the_rest(
    llm: ChatOpenAI, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "episodes.yaml"
    _record(cassette, llm, openai_server, "hello")
    openai_server.add(Reply(chunks=["new answer"]))

    with intercept(ChatOpenAI, cassette=cassette, record="new_episodes"):
        assert llm.invoke("hello").text == "answer to hello"
        assert llm.invoke("bye").text == "new answer"

    assert len(openai_server.requests) == 2  # one per recording, none for the replay
    assert _texts(cassette) == ["answer to hello", "new answer"]


def test_all_records_everything_again(
    llm: ChatOpenAI, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "all.yaml"
    _record(cassette, llm, openai_server, "hello", "bye")
    _record(cassette, llm, openai_server, "bye")
    assert _texts(cassette) == ["answer to bye"]
    assert len(openai_server.requests) == 3


def test_match_by_fingerprint_answers_out_of_order(
    llm: ChatOpenAI, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "fp.yaml"
    _record(cassette, llm, openai_server, "hello", "bye")

    with intercept(ChatOpenAI, cassette=cassette, match="fingerprint"):
        assert llm.invoke("bye").text == "answer to bye"
        assert llm.invoke("hello").text == "answer to hello"
    in_order = intercept(ChatOpenAI, cassette=cassette)
    with (
        pytest.raises(UnusedTurns) as at_exit,  # raised by the interception's exit check
        in_order,
        pytest.raises(UnexpectedCall, match=r"Closest recording: turns\[0\]"),
    ):
        llm.invoke("bye")
    assert in_order.cassette is not None
    assert in_order.cassette.used == [False, False]
    assert str(at_exit.value).startswith(
        "UnexpectedCall (the app may have swallowed it): intercept(ChatOpenAI) call #0 has no "
        "recording"
    )


def test_scrub_rewrites_what_is_written_and_what_is_matched(
    llm: ChatOpenAI, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "scrubbed.yaml"

    def scrub(text: str) -> str:
        return re.sub(r"alice@example\.com", "<email>", text)

    openai_server.add(Reply(chunks=["Mailed ", "alice@example.com."]))
    with intercept(ChatOpenAI, cassette=cassette, record="once", scrub=scrub):
        assert llm.invoke("Mail alice@example.com").text == "Mailed alice@example.com."

    assert "alice" not in cassette.read_text(encoding="utf-8")
    with intercept(ChatOpenAI, cassette=cassette, scrub=scrub):
        assert llm.invoke("Mail alice@example.com").text == "Mailed <email>."


def test_a_chunk_scrubbed_empty_keeps_its_place_and_its_delay(
    llm: ChatOpenAI, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    cassette = tmp_path / "scrubbed.yaml"
    openai_server.add(Reply(chunks=["Token ", "sk-live-123", " used."]))
    with intercept(
        ChatOpenAI, cassette=cassette, record="once", scrub=lambda t: t.replace("sk-live-123", "")
    ):
        live = list(llm.stream("Which token?"))

    assert "sk-live" not in cassette.read_text(encoding="utf-8")
    [turn] = load_script(cassette).turns
    assert turn.stream is not None
    # role, three text chunks, finish: as many chunks as the provider sent
    assert [c.content for c in turn.stream] == ["", "Token ", "", " used.", ""]
    assert len(turn.stream) == len(live) - 1  # LangChain adds the closing chunk itself
    assert turn.stream[2].delay > 0  # the scrubbed chunk's wait is kept


def test_the_fixture_method_records_through_the_same_seam(
    fake_llm: FakeLLMFactory, llm: ChatOpenAI, openai_server: OpenAIServer, tmp_path: Path
) -> None:
    seam = fake_llm.intercept(ChatOpenAI, cassette=tmp_path / "fixture.yaml", record="once")
    openai_server.add(Reply(chunks=["Lilies."]))
    assert llm.invoke("hello").text == "Lilies."
    assert seam.cassette is not None
    assert seam.cassette.path == tmp_path / "fixture.yaml"
    [turn] = seam.cassette.new  # written at teardown
    assert turn.stream is not None
    assert [c.content for c in turn.stream] == ["Lilies."]
