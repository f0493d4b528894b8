"""Scripted provider errors against LangChain 1.x's real consumers.

Each test runs the consumer an app would use (``create_agent`` and its
middleware, ``with_retry``, LangGraph's retry policy, the openai SDK's own
exception classes) and checks the exact outcome and the exact number of model
calls, which is what a real provider's errors would produce.
"""

from __future__ import annotations

from typing import Any, TypedDict

import openai
import pytest
from langchain.agents import create_agent
from langchain.agents.middleware import (
    ModelFallbackMiddleware,
    ModelRetryMiddleware,
    SummarizationMiddleware,
)
from langchain_core.exceptions import ModelRateLimitError
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.types import RetryPolicy

from fakellm import FakeChatModel, Turn, errors


def _retry(max_retries: int = 2) -> ModelRetryMiddleware:
    # No backoff: the test is about which errors are retried, not how long it waits.
    return ModelRetryMiddleware(
        max_retries=max_retries, initial_delay=0, jitter=False, on_failure="error"
    )


@pytest.mark.parametrize(
    "error",
    [
        errors.RateLimitError(retry_after=1),
        errors.ServerError(503),
        errors.APITimeoutError(),
        errors.APIConnectionError(),
    ],
    ids=repr,
)
def test_retry_middleware_retries_transient_errors_up_to_its_limit(error: Exception) -> None:
    model = FakeChatModel(script=[Turn(error=error), Turn(error=error), "recovered"])
    agent = create_agent(model, middleware=[_retry(max_retries=2)])
    result = agent.invoke({"messages": [HumanMessage("hi")]})
    assert result["messages"][-1].text == "recovered"
    assert model.call_count == 3


def test_retry_middleware_gives_up_after_max_retries() -> None:
    error = errors.ServerError(502)
    model = FakeChatModel(script=[Turn(error=error)] * 3)
    agent = create_agent(model, middleware=[_retry(max_retries=2)])
    with pytest.raises(errors.ServerError) as info:
        agent.invoke({"messages": [HumanMessage("hi")]})
    assert info.value.status_code == 502
    assert model.call_count == 3


@pytest.mark.parametrize(
    "error",
    [
        errors.AuthenticationError(),
        errors.PermissionDeniedError(),
        errors.NotFoundError(),
        errors.BadRequestError(),
        errors.ContextOverflowError(),
    ],
    ids=repr,
)
def test_retry_middleware_never_retries_a_client_error(error: Exception) -> None:
    model = FakeChatModel(script=[Turn(error=error), "never played"], allow_unused=True)
    agent = create_agent(model, middleware=[_retry(max_retries=3)])
    with pytest.raises(type(error)):
        agent.invoke({"messages": [HumanMessage("hi")]})
    assert model.call_count == 1


def test_fallback_middleware_moves_to_the_next_model() -> None:
    primary = FakeChatModel(script=[Turn(error=errors.ServerError(503))], model="primary")
    fallback = FakeChatModel(script=["from the fallback"], model="fallback")
    agent = create_agent(primary, middleware=[ModelFallbackMiddleware(fallback)])
    result = agent.invoke({"messages": [HumanMessage("hi")]})
    assert result["messages"][-1].text == "from the fallback"
    assert (primary.call_count, fallback.call_count) == (1, 1)
    assert result["messages"][-1].response_metadata["model_name"] == "fallback"


def test_summarization_retries_a_summary_that_overflowed_the_context() -> None:
    summarizer = FakeChatModel(
        script=[Turn(error=errors.ContextOverflowError()), "the user greeted twice"],
        model="summarizer",
    )
    model = FakeChatModel(script=["answer"], model="main")
    agent = create_agent(
        model,
        middleware=[
            SummarizationMiddleware(summarizer, trigger=("messages", 4), keep=("messages", 1))
        ],
    )
    history: list[Any] = [
        HumanMessage("hello there, this is the first message"),
        AIMessage("hi, how can I help you today"),
        HumanMessage("hello again, this is the second message"),
        AIMessage("still here and happy to help"),
        HumanMessage("now answer"),
    ]
    result = agent.invoke({"messages": history})
    assert summarizer.call_count == 2
    first, retry = (c.last_human_message or "" for c in summarizer.calls)
    assert "[... middle of conversation omitted ...]" not in first
    assert "[... middle of conversation omitted ...]" in retry
    assert result["messages"][-1].text == "answer"
    assert "the user greeted twice" in model.calls[0].messages[0].text


def test_with_retry_filters_on_cores_classes() -> None:
    model = FakeChatModel(
        script=[Turn(error=errors.RateLimitError()), "ok", Turn(error=errors.ServerError())]
    )
    retrying = model.with_retry(
        retry_if_exception_type=(ModelRateLimitError,),
        stop_after_attempt=3,
        wait_exponential_jitter=False,
    )
    assert retrying.invoke("x").text == "ok"
    assert model.call_count == 2
    with pytest.raises(errors.ServerError):  # a ModelAPIError: not in the filter
        retrying.invoke("x")
    assert model.call_count == 3


class _State(TypedDict):
    answer: str


def _graph(model: FakeChatModel) -> Any:
    def call_model(state: _State) -> _State:
        return {"answer": model.invoke("hi").text}

    builder = StateGraph(_State)
    # LangGraph's default retry_on decides; no waiting between attempts.
    builder.add_node(
        "model", call_model, retry_policy=RetryPolicy(initial_interval=0, jitter=False)
    )
    builder.add_edge(START, "model")
    builder.add_edge("model", END)
    return builder.compile()


@pytest.mark.parametrize(
    "error",
    [errors.APITimeoutError(), errors.APIConnectionError(), errors.RateLimitError()],
    ids=repr,
)
def test_langgraphs_default_retry_policy_retries_transient_errors(error: Exception) -> None:
    # As with the SDKs' errors: a timeout is not the builtin TimeoutError (an
    # OSError), which the default policy would give up on at once.
    model = FakeChatModel(script=[Turn(error=error), "second time lucky"])
    assert _graph(model).invoke({"answer": ""}) == {"answer": "second time lucky"}
    assert model.call_count == 2


def test_an_openai_flavoured_model_raises_what_except_openai_catches() -> None:
    model = FakeChatModel(
        provider="openai", script=[Turn(error=errors.RateLimitError(retry_after=7))]
    )
    try:
        model.invoke("hi")
    except openai.RateLimitError as exc:
        caught = exc
    assert isinstance(caught, ModelRateLimitError)
    assert caught.status_code == 429
    assert caught.response.headers["retry-after"] == "7"
    assert model.call_count == 1


def test_an_openai_flavoured_stream_fails_mid_stream_with_the_sdks_class() -> None:
    model = FakeChatModel(
        provider="openai",
        script=[Turn("a b c", error=errors.APITimeoutError, at_chunk=2)],
    )
    got: list[str] = []
    with pytest.raises(openai.APITimeoutError) as info:
        got.extend(chunk.text for chunk in model.stream("hi"))
    assert got == ["a ", "b "]
    assert isinstance(info.value, openai.APIConnectionError)
    assert isinstance(info.value, errors.APITimeoutError)


def test_script_files_name_the_errors_as_before(tmp_path: Any) -> None:
    from fakellm import load_script

    path = tmp_path / "errors.yaml"
    path.write_text(
        "- error: {type: ServerError, status_code: 503, retry_after: 2}\n"
        "- error: ContextOverflowError\n"
        "- error: {type: RateLimitError, message: slow down}\n",
        encoding="utf-8",
    )
    script = load_script(path)
    assert [t.make_error().spec() for t in script.turns] == [
        {"type": "ServerError", "status_code": 503, "retry_after": 2},
        {"type": "ContextOverflowError"},
        {"type": "RateLimitError", "message": "slow down"},
    ]
    model = FakeChatModel(script=script, provider="anthropic", allow_unused=True)
    import anthropic

    with pytest.raises(anthropic.ServiceUnavailableError) as info:
        model.invoke("hi")
    assert info.value.response.headers["retry-after"] == "2"


async def test_retry_middleware_retries_a_stream_cut_mid_way_on_the_async_path() -> None:
    model = FakeChatModel(
        script=[Turn("Roses are", error=errors.APIConnectionError, at_chunk=1), "Roses are red."]
    )
    agent = create_agent(model, middleware=[_retry(max_retries=1)])
    tokens = [
        chunk.text
        async for chunk, _meta in agent.astream(
            {"messages": [HumanMessage("hi")]}, stream_mode="messages"
        )
    ]
    # The failed attempt's first token reached the stream before the cut, as with a
    # provider; the retry then streams the whole reply.
    assert tokens == ["Roses ", "Roses ", "are ", "red."]
    assert model.call_count == 2
    assert [c.streaming for c in model.calls] == [True, True]
