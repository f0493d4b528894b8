"""intercept(): provider classes answer from a script; everything a fake model does still works."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from fakellm import ToolCall, Turn, errors, intercept, run_scenario, virtual_time
from fakellm.errors import UnexpectedCall, UnusedTurns

pytestmark = pytest.mark.usefixtures("network_guard")  # loopback only, as in every fakellm test


def _openai() -> ChatOpenAI:
    return ChatOpenAI(model="gpt-4o-mini", api_key="sk-dummy")


class _NoStreaming(BaseChatModel):
    """An integration with only ``_generate`` (LangChain then never streams it)."""

    @property
    def _llm_type(self) -> str:
        return "no-streaming"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        return ChatResult(generations=[ChatGeneration(message=AIMessage("real"))])


def test_the_class_gets_its_own_hooks_back_afterwards() -> None:
    before = {name: ChatOpenAI.__dict__.get(name) for name in ("_generate", "_stream")}
    with intercept(ChatOpenAI, script=["hi"]):
        assert ChatOpenAI.__dict__["_generate"] is not before["_generate"]
        _openai().invoke("x")
    assert {name: ChatOpenAI.__dict__.get(name) for name in ("_generate", "_stream")} == before
    assert "_generate" not in ChatOpenAI.__dict__  # inherited from BaseChatOpenAI, as before


def test_a_class_without_streaming_is_not_given_any() -> None:
    with intercept(_NoStreaming, script=["scripted"]) as seam:
        chunks = list(_NoStreaming().stream("x"))
    assert [c.text for c in chunks] == ["scripted"]  # one chunk: core's non-streaming fallback
    assert "_stream" not in _NoStreaming.__dict__
    assert seam.calls[0].streaming is False


def test_nested_interceptions_answer_innermost_first_and_unwind() -> None:
    with intercept(ChatOpenAI, script=["outer"]):
        with intercept(ChatOpenAI, script=["inner"]):
            assert _openai().invoke("x").text == "inner"
        assert _openai().invoke("x").text == "outer"


def test_scripted_errors_reach_the_app_through_its_retry() -> None:
    script = [Turn(error=errors.RateLimitError(retry_after=1.0)), "after the retry"]
    with virtual_time(), intercept(ChatOpenAI, script=script) as seam:
        reply = _openai().with_retry(retry_if_exception_type=(errors.RateLimitError,)).invoke("x")
    assert reply.text == "after the retry"
    assert seam.call_count == 2


def test_streams_keep_their_scripted_delays_on_virtual_time() -> None:
    llm = _openai()

    async def stream() -> list[str]:
        return [c.text async for c in llm.astream("x")]

    with intercept(ChatOpenAI, script=[Turn("a b c", first_token_delay=2.0, delay=0.5)]):
        result = run_scenario(stream())
    assert result.results == (["a ", "b ", "c"],)
    assert result.elapsed == 3.0


def test_one_script_answers_several_classes_in_call_order() -> None:
    claude = ChatAnthropic(model="claude-sonnet-4-6", api_key="sk-ant-dummy")
    with intercept(ChatOpenAI, ChatAnthropic, script=["from openai", "from anthropic"]) as seam:
        assert _openai().invoke("x").text == "from openai"
        reply = claude.invoke("y")
    assert reply.text == "from anthropic"
    assert reply.response_metadata["model_provider"] == "anthropic"
    assert [c.model for c in seam.calls] == ["gpt-4o-mini", "claude-sonnet-4-6"]


def test_init_chat_model_covers_every_installed_provider_class() -> None:
    seam = intercept("init_chat_model", script=[])
    assert {ChatOpenAI, ChatAnthropic} <= set(seam.classes)


def test_a_call_past_the_script_is_unexpected_and_reported_at_exit() -> None:
    seam = intercept(ChatOpenAI, script=["only one"])
    with pytest.raises(UnusedTurns) as at_exit, seam:
        _openai().invoke("first")
        with pytest.raises(UnexpectedCall, match=r"intercept\(ChatOpenAI\) received call #1"):
            _openai().invoke("second")
    assert str(at_exit.value).startswith(
        "UnexpectedCall (the app may have swallowed it): intercept(ChatOpenAI) received call #1"
    )


def test_unused_turns_name_the_interception() -> None:
    with pytest.raises(UnusedTurns) as at_exit, intercept(ChatOpenAI, script=["a", "b"]):
        _openai().invoke("x")
    assert str(at_exit.value).startswith(
        "UnusedTurns: intercept(ChatOpenAI) was scripted with turns it never played (1 call made):"
    )


def test_nothing_intercepted_is_an_error_at_exit() -> None:
    expected = r"^Nothing intercepted: intercept\(ChatAnthropic\)"
    with pytest.raises(UnusedTurns, match=expected), intercept(ChatAnthropic, script=["never"]):
        assert _openai().model_name == "gpt-4o-mini"  # built, never called through ChatAnthropic


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        (
            "no_such_package.Chat",
            ImportError,
            "intercept('no_such_package.Chat'): cannot import 'no_such_package' (No module "
            "named 'no_such_package'); name a class as 'package.module.ClassName', pass the "
            "class itself, or 'init_chat_model'",
        ),
        (
            dict,
            TypeError,
            "intercept(<class 'dict'>): expected a BaseChatModel subclass (such as ChatOpenAI), "
            "its dotted name, or 'init_chat_model'",
        ),
        (
            "ChatOpenAI",
            ImportError,
            "intercept('ChatOpenAI'): not a dotted name; name a class as "
            "'package.module.ClassName', pass the class itself, or 'init_chat_model'",
        ),
        (
            "fakellm.FakeChatModel",
            TypeError,
            "intercept(FakeChatModel): fakellm's own models need no interception",
        ),
        (
            "langchain_openai.OpenAI",
            TypeError,
            "intercept(langchain_openai.llms.base.OpenAI): a completion model (BaseLLM) cannot "
            "be intercepted, only chat models (BaseChatModel subclasses such as ChatOpenAI); "
            "pass the app a fakellm.FakeLLM instead, or intercept the chat model class it "
            "could use",
        ),
    ],
)
def test_bad_targets_are_clear_errors(target: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as caught:
        intercept(target, script=[])
    assert str(caught.value) == message


def test_async_invoke_runs_natively_under_virtual_time() -> None:
    llm = _openai()
    with intercept(
        ChatOpenAI, script=[Turn("x", first_token_delay=5.0), Turn("y", first_token_delay=1.0)]
    ):

        async def both() -> list[str]:
            replies = await asyncio.gather(llm.ainvoke("1"), llm.ainvoke("2"))
            return [r.text for r in replies]

        result = run_scenario(both())
    assert result.results == (["x", "y"],)
    assert result.elapsed == 5.0


class _Odd(BaseChatModel):
    """A provider that reports usage no script can hold (negative counts)."""

    @property
    def _llm_type(self) -> str:
        return "odd"

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any) -> Any:
        usage = {"input_tokens": -1, "output_tokens": 1, "total_tokens": 0}
        message = AIMessage("odd", usage_metadata=usage)  # type: ignore[arg-type]
        return ChatResult(generations=[ChatGeneration(message=message)])


def test_an_answer_no_script_can_hold_reaches_the_app_and_fails_at_the_end(tmp_path: Any) -> None:
    seam = intercept(_Odd, cassette=tmp_path / "odd.yaml", record="once")
    with pytest.raises(UnusedTurns) as at_exit, seam:
        assert _Odd().invoke("x").text == "odd"  # the provider's answer, untouched
    assert str(at_exit.value) == (
        "Unrecorded: an answer could not be written as a script turn (InvalidScript: invalid "
        "script: stream[0].usage_metadata.input_tokens: a token count must be an integer >= 0 "
        "(got -1))"
    )
    assert not (tmp_path / "odd.yaml").exists()


class Flower(BaseModel):
    name: str
    price: float


def test_the_integrations_own_structured_output_runs_on_scripted_answers() -> None:
    script = [
        '{"name": "rose", "price": 4.5}',  # ChatOpenAI's default: a JSON schema answer
        Turn('{"name": "tulip", "price": 2.0}', chunks=3),  # the same, streamed
        Turn(tool_calls=[ToolCall("Flower", {"name": "lily", "price": 3.0})]),
        Turn(tool_calls=[ToolCall("Flower", {"name": "iris", "price": 1.5})]),  # Anthropic's
    ]
    claude = ChatAnthropic(model="claude-sonnet-4-6", api_key="sk-ant-dummy")
    with intercept(ChatOpenAI, ChatAnthropic, script=script) as seam:
        parsed = _openai().with_structured_output(Flower).invoke("x")
        streamed = list(_openai().with_structured_output(Flower).stream("x"))
        by_tool = _openai().with_structured_output(Flower, method="function_calling").invoke("x")
        anthropic = claude.with_structured_output(Flower).invoke("x")

    assert parsed == Flower(name="rose", price=4.5)
    assert streamed[-1] == Flower(name="tulip", price=2.0)
    assert by_tool == Flower(name="lily", price=3.0)
    assert anthropic == Flower(name="iris", price=1.5)
    assert seam.calls[0].kwargs["response_format"] is Flower  # as ChatOpenAI bound it
    assert seam.calls[3].tool_choice == {"type": "tool", "name": "Flower"}  # Anthropic's form


def _call(model: BaseChatModel, path: str) -> None:
    if path == "invoke":
        model.invoke("x")
    elif path == "stream":
        list(model.stream("x"))
    elif path == "ainvoke":
        run_scenario(model.ainvoke("x"))
    else:

        async def drain() -> None:
            async for _ in model.astream("x"):
                pass

        run_scenario(drain())


@pytest.mark.parametrize("path", ["invoke", "stream", "ainvoke", "astream"])
def test_scripted_errors_are_the_intercepted_providers_sdk_errors(path: str) -> None:
    import anthropic
    import openai
    from langchain_core.exceptions import ModelAPIError, ModelRateLimitError

    claude = ChatAnthropic(model="claude-sonnet-4-6", api_key="sk-ant-dummy", max_retries=0)
    script = [
        Turn(error=errors.RateLimitError(retry_after=2)),  # before the first chunk
        Turn("one two three", error=errors.ServerError(529), at_chunk=1),  # mid-stream
    ]
    with intercept(ChatOpenAI, ChatAnthropic, script=script):
        with pytest.raises(openai.RateLimitError) as rate:
            _call(ChatOpenAI(model="gpt-4o-mini", api_key="sk-dummy", max_retries=0), path)
        with pytest.raises(anthropic.OverloadedError) as overloaded:
            _call(claude, path)
    # Still the scripted error, in langchain-core's hierarchy, with what apps read.
    assert isinstance(rate.value, errors.RateLimitError)
    assert isinstance(rate.value, ModelRateLimitError)
    assert rate.value.retry_after == 2
    assert rate.value.response.headers["retry-after"] == "2"
    assert isinstance(overloaded.value, errors.ServerError)
    assert isinstance(overloaded.value, ModelAPIError)
    assert overloaded.value.status_code == 529
