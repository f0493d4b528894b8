"""FakeLLM: the completion-style model, for code like ``llm.agenerate([...])``."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler

from fakellm import FakeLLM, ToolCall, Turn, errors


class Tokens(BaseCallbackHandler):
    run_inline = True

    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_llm_start(self, serialized: Any, prompts: list[str], **kw: Any) -> None:
        self.seen.append(f"start:{prompts}")

    def on_llm_new_token(self, token: str, **kw: Any) -> None:
        self.seen.append(token)

    def on_llm_end(self, response: Any, **kw: Any) -> None:
        self.seen.append("end")

    def on_llm_error(self, error: BaseException, **kw: Any) -> None:
        self.seen.append(f"error:{type(error).__name__}")


def test_invoke_returns_text_and_llm_output_usage() -> None:
    llm = FakeLLM(script=["1 + 1 = 2"], model="gpt-3.5-turbo-instruct")
    result = llm.generate(["1 + 1 = "])
    assert result.generations[0][0].text == "1 + 1 = 2"
    assert result.generations[0][0].generation_info == {"finish_reason": "stop"}
    assert result.llm_output == {
        # prompt: 1|+|1|= (4); answer: "1 ", "+ ", "1 ", "= ", "2" (5 chunks)
        "token_usage": {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9},
        "model_name": "gpt-3.5-turbo-instruct",
    }
    assert llm.calls[0].prompt == "1 + 1 = "
    assert llm.calls[0].last_human_message == "1 + 1 = "


def test_stream_fires_token_callbacks_itself() -> None:
    handler = Tokens()
    llm = FakeLLM(script=["a b c"])
    assert list(llm.stream("go", config={"callbacks": [handler]})) == ["a ", "b ", "c"]
    assert handler.seen == ["start:['go']", "a ", "b ", "c", "end"]


def test_streaming_true_streams_tokens_inside_generate() -> None:
    handler = Tokens()
    llm = FakeLLM(script=["x y"], streaming=True)
    assert llm.invoke("go", config={"callbacks": [handler]}) == "x y"
    assert handler.seen == ["start:['go']", "x ", "y", "end"]


async def test_async_paths_with_an_async_handler() -> None:
    seen: list[str] = []

    class AsyncTokens(AsyncCallbackHandler):
        async def on_llm_new_token(self, token: str, **kw: Any) -> None:
            seen.append(token)

    llm = FakeLLM(script=["p q", "r s"], streaming=True)
    assert await llm.ainvoke("go", config={"callbacks": [AsyncTokens()]}) == "p q"
    assert [c async for c in llm.astream("go", config={"callbacks": [AsyncTokens()]})] == [
        "r ",
        "s",
    ]
    assert seen == ["p ", "q", "r ", "s"]


def test_error_mid_stream() -> None:
    handler = Tokens()
    llm = FakeLLM(script=[Turn("a b c", error=errors.APIConnectionError, at_chunk=1)])
    got = []
    with pytest.raises(errors.APIConnectionError):
        got.extend(llm.stream("go", config={"callbacks": [handler]}))
    assert got == ["a "]
    assert handler.seen == ["start:['go']", "a ", "error:APIConnectionError"]


def test_stop_and_max_tokens() -> None:
    llm = FakeLLM(script=["one two three", "one two three"])
    assert llm.invoke("x", stop=["three"]) == "one two "
    capped = llm.generate(["x"], max_tokens=1)
    assert capped.generations[0][0].text == "one "
    assert capped.generations[0][0].generation_info == {"finish_reason": "length"}


def test_a_completion_llm_cannot_call_tools() -> None:
    llm = FakeLLM(script=[Turn(tool_calls=[ToolCall("f")])])
    with pytest.raises(errors.UnknownToolError, match="a completion LLM can only return text"):
        llm.invoke("x")


def test_unexpected_call_names_the_prompt() -> None:
    llm = FakeLLM(script=[])
    with pytest.raises(errors.UnexpectedCall, match="Last human message: 'hello'"):
        llm.invoke("hello")
    assert len(llm.unexpected_calls) == 1


def test_token_counting_is_offline() -> None:
    llm = FakeLLM(script=[])
    assert llm.get_num_tokens("Hello, world!") == 4
