"""The app of ``app.py``, tested unchanged: its own ChatOpenAI answers from scripts.

``fake_llm.intercept(ChatOpenAI, script=...)`` (or the marker argument
``intercept=``) makes every ChatOpenAI answer from the script, including the
one built at import time and the ones ``init_chat_model`` builds; the app's
own ``bind_tools``, agent loop and callbacks run as in production.
"""

from __future__ import annotations

import pytest
from langchain_core.callbacks import get_usage_metadata_callback
from langchain_openai import ChatOpenAI

from existing_app import app
from fakellm import ToolCall, Turn
from fakellm.fixtures import FakeLLMFactory, VirtualTime


def test_the_module_level_model_answers_from_the_script(fake_llm: FakeLLMFactory) -> None:
    seam = fake_llm.intercept(ChatOpenAI, script=["Sunflowers."])

    assert app.suggest("a birthday") == "Sunflowers."
    assert isinstance(app.llm, ChatOpenAI)
    [call] = seam.calls
    assert call.last_human_message == "Suggest one flower for a birthday. Answer with its name."
    assert call.model == "gpt-4o-mini"


@pytest.mark.fakellm(
    [
        Turn(tool_calls=[ToolCall("get_price", {"flower": "rose"}, id="call_rose")]),
        Turn("A rose costs 4.5 euros.", chunks="words", first_token_delay=0.8),
    ],
    intercept=ChatOpenAI,
)
def test_the_agent_built_at_import_runs_its_tools(
    fake_llm: FakeLLMFactory, virtual_clock: VirtualTime
) -> None:
    with get_usage_metadata_callback() as usage:
        answer = app.quote("What does a rose cost?")

    assert answer == "A rose costs 4.5 euros."
    [seam] = fake_llm.interceptions
    first, second = seam.calls
    assert first.tool_names == ("get_price",)  # the agent's own bind_tools ran
    assert [m.type for m in second.messages] == ["system", "human", "ai", "tool"]
    assert second.messages[-1].content == "4.5"  # the real tool answered
    assert second.messages[-1].tool_call_id == "call_rose"
    # one chunk of tool-call arguments, then five words
    assert usage.usage_metadata["gpt-4o-mini"]["output_tokens"] == 1 + 5
    assert virtual_clock.elapsed == 0.8  # the scripted latency, on virtual time


@pytest.mark.fakellm(["Two roses, one lily."], intercept="init_chat_model")
def test_models_built_by_init_chat_model_are_intercepted(fake_llm: FakeLLMFactory) -> None:
    assert app.summarize("2 roses, 1 lily") == "Two roses, one lily."
    [seam] = fake_llm.interceptions
    assert ChatOpenAI in seam.classes
    assert seam.calls[0].kwargs == {}
    assert seam.calls[0].model == "gpt-4o-mini"


async def test_async_paths_and_streaming_are_intercepted(fake_llm: FakeLLMFactory) -> None:
    fake_llm.intercept(
        "langchain_openai.ChatOpenAI",
        script=[Turn("Pink tulips.", chunks="words"), "White lilies."],
    )

    chunks = [chunk.text async for chunk in app.llm.astream("Something for spring?")]
    reply = await app.llm.ainvoke("And for a wedding?")

    assert chunks == ["Pink ", "tulips."]
    assert reply.text == "White lilies."
    assert reply.response_metadata["model_provider"] == "openai"
