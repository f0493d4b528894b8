"""Replay the checked-in cassette of a tool-calling agent run (``cassettes/agent.yaml``).

It was recorded once from the app in ``app.py``, unchanged, with its ChatOpenAI
pointed at the local OpenAI-compatible server of ``provider_server.py``;
against the real API it would be recorded the same way with
``--fakellm-record=once`` and ``@pytest.mark.fakellm(block_network=False)``.
The replay needs no server, no key and no network, and runs on virtual time
with the latencies that were measured.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.callbacks import get_usage_metadata_callback
from langchain_openai import ChatOpenAI

from existing_app import app
from fakellm import load_script
from fakellm.errors import UnexpectedCall
from fakellm.fixtures import FakeLLMFactory, VirtualTime

CASSETTE = Path(__file__).parent / "cassettes" / "agent.yaml"


@pytest.mark.fakellm(intercept=ChatOpenAI, cassette="cassettes/agent.yaml")
def test_the_recorded_agent_run_replays(
    fake_llm: FakeLLMFactory, virtual_clock: VirtualTime
) -> None:
    with get_usage_metadata_callback() as usage:
        answer = app.quote("What do 3 roses and 2 tulips cost?")

    assert answer == "Three roses cost 13.50 euros and two tulips 4.00, so 17.50 in all."
    [seam] = fake_llm.interceptions
    first, second = seam.calls
    assert first.tool_names == ("get_price",)
    assert [m.type for m in second.messages] == ["system", "human", "ai", "tool", "tool"]
    assert [m.content for m in second.messages[3:]] == ["4.5", "2.0"]  # the app's real tool
    assert usage.usage_metadata["gpt-4o-mini-2024-07-18"]["total_tokens"] == 132 + 170
    recorded = load_script(CASSETTE).turns
    assert virtual_clock.elapsed == pytest.approx(
        sum(c.delay for t in recorded for c in t.stream or ())
    )


# strict=False: the mismatch (which teardown would report again) is this test's point.
@pytest.mark.fakellm(intercept=ChatOpenAI, cassette="cassettes/agent.yaml", strict=False)
def test_a_changed_prompt_fails_with_the_difference() -> None:
    with pytest.raises(UnexpectedCall) as failure:
        app.quote("What do 4 roses cost?")

    assert "-- human: What do 3 roses and 2 tulips cost?\n+- human: What do 4 roses cost?" in str(
        failure.value
    )
