"""Token totals seen by LangChain's own counters equal the script's usage exactly."""

from __future__ import annotations

import asyncio

import pytest
from langchain_community.callbacks import get_openai_callback
from langchain_core.callbacks import get_usage_metadata_callback
from langchain_core.messages import HumanMessage

from fakellm import FakeChatModel, FakeLLM, Script, Turn

# "Which flowers suit a birthday?" is 6 tokens; FLOWERS streams as 4 chunks.
PROMPT = "Which flowers suit a birthday?"
FLOWERS = "Roses, lilies and sunflowers."
ONE = {"input_tokens": 6, "output_tokens": 4, "total_tokens": 10}


def _model(n: int) -> FakeChatModel:
    return FakeChatModel(script=[FLOWERS] * n, model="gpt-4o-mini")


def _times(k: int) -> dict[str, int]:
    return {key: value * k for key, value in ONE.items()}


def test_invoke_counts_once() -> None:
    with get_usage_metadata_callback() as cb:
        _model(1).invoke(PROMPT)
    assert cb.usage_metadata == {"gpt-4o-mini": ONE}


def test_stream_counts_once() -> None:
    with get_usage_metadata_callback() as cb:
        list(_model(1).stream(PROMPT))
    assert cb.usage_metadata == {"gpt-4o-mini": ONE}


def test_batch_counts_each_call() -> None:
    with get_usage_metadata_callback() as cb:
        _model(3).batch([PROMPT] * 3)
    assert cb.usage_metadata == {"gpt-4o-mini": _times(3)}


async def test_abatch_and_astream_count_each_call() -> None:
    model = _model(4)
    with get_usage_metadata_callback() as cb:
        await model.abatch([PROMPT] * 3)
        async for _ in model.astream(PROMPT):
            pass
    assert cb.usage_metadata == {"gpt-4o-mini": _times(4)}


async def test_gather_of_agenerate_counts_three_times_one_call() -> None:
    model = _model(3)
    with get_usage_metadata_callback() as cb:
        await asyncio.gather(*(model.agenerate([[HumanMessage(PROMPT)]]) for _ in range(3)))
    assert cb.usage_metadata == {"gpt-4o-mini": _times(3)}


def test_models_are_counted_under_their_own_names() -> None:
    a = FakeChatModel(script=[FLOWERS], model="gpt-4o-mini")
    b = FakeChatModel(
        script=[Turn("ok", usage={"input_tokens": 50, "output_tokens": 5})], model="o3"
    )
    with get_usage_metadata_callback() as cb:
        a.invoke(PROMPT)
        b.invoke(PROMPT)
    assert cb.usage_metadata == {
        "gpt-4o-mini": ONE,
        "o3": {"input_tokens": 50, "output_tokens": 5, "total_tokens": 55},
    }


def test_a_failed_call_counts_nothing() -> None:
    model = FakeChatModel(
        script=[Turn(FLOWERS, error=ValueError("dropped"), at_chunk=2)], model="gpt-4o-mini"
    )
    with get_usage_metadata_callback() as cb, pytest.raises(ValueError, match="dropped"):
        list(model.stream(PROMPT))
    assert cb.usage_metadata == {}


@pytest.mark.parametrize("mode", ["invoke", "stream", "batch"])
def test_openai_callback_counts_chat_usage(mode: str) -> None:
    model = _model(2)
    with get_openai_callback() as cb:
        if mode == "invoke":
            model.invoke(PROMPT)
            model.invoke(PROMPT)
        elif mode == "stream":
            list(model.stream(PROMPT))
            list(model.stream(PROMPT))
        else:
            model.batch([PROMPT, PROMPT])
    assert (cb.prompt_tokens, cb.completion_tokens, cb.total_tokens) == (12, 8, 20)
    assert cb.successful_requests == 2


async def test_openai_callback_counts_concurrent_agenerate_of_a_completion_llm() -> None:
    # The seed's S7: three concurrent agenerate calls count three times one call.
    llm = FakeLLM(script=["Pink."] * 3, model="gpt-3.5-turbo-instruct")
    question = "What colour flowers does my sister like?"  # 8 tokens
    with get_openai_callback() as cb:
        await asyncio.gather(*(llm.agenerate([question]) for _ in range(3)))
    assert (cb.prompt_tokens, cb.completion_tokens, cb.total_tokens) == (24, 3, 27)
    assert cb.successful_requests == 3


def test_openai_callback_counts_a_multi_prompt_generate_once_per_prompt() -> None:
    llm = FakeLLM(script=["a b", "c d e"])
    with get_openai_callback() as cb:
        result = llm.generate(["one two", "three"])
    assert [g[0].text for g in result.generations] == ["a b", "c d e"]
    # prompts: 2 + 1 tokens; answers: 2 + 3 chunks
    assert (cb.prompt_tokens, cb.completion_tokens, cb.total_tokens) == (3, 5, 8)


def test_cycled_script_usage_is_exact_over_many_calls() -> None:
    model = FakeChatModel(script=Script([FLOWERS, "ok"], when_exhausted="cycle"), model="m")
    with get_usage_metadata_callback() as cb:
        for _ in range(10):
            model.invoke(PROMPT)
    # 5 x (6 in, 4 out) + 5 x (6 in, 1 out)
    assert cb.usage_metadata == {"m": {"input_tokens": 60, "output_tokens": 25, "total_tokens": 85}}


def test_a_token_buffer_memory_trims_offline_by_the_same_counter() -> None:
    from langchain_classic.memory import ConversationTokenBufferMemory

    model = FakeChatModel(script=[])
    memory = ConversationTokenBufferMemory(llm=model, max_token_limit=10, return_messages=True)
    # 7 + 5 tokens: over the limit of 10, so the first exchange is dropped.
    memory.save_context(
        {"input": "my sister's birthday is tomorrow"}, {"output": "Happy birthday to her!"}
    )
    memory.save_context({"input": "she likes pink roses"}, {"output": "Pink roses it is."})
    kept = memory.load_memory_variables({})["history"]
    assert [m.content for m in kept] == ["she likes pink roses", "Pink roses it is."]
    assert model.get_num_tokens_from_messages(kept) == 9


def test_input_tokens_count_tool_calls_wherever_a_message_holds_them() -> None:
    from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

    model = FakeChatModel()
    call = {"name": "price", "args": {"flower": "rose"}, "id": "c1"}
    messages = [
        SystemMessage("Be brief."),  # 3
        HumanMessage("Price?", tool_calls=[call]),  # 2, and 10 for the extra field
        AIMessage("", tool_calls=[call]),  # 10: price, then 9 in {'flower': 'rose'}
        ToolMessage("12 euros", tool_call_id="c1"),  # 2
    ]
    assert model.get_num_tokens_from_messages(messages) == 3 + 2 + 10 + 10 + 2
