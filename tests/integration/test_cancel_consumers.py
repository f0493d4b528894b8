"""Real consumers cancelled at every point: no model run stays open, nothing is logged.

``langchain.agents.create_agent``, a hand-built LangGraph graph whose node
streams the model, and ``with_retry`` around a failing call, each under
``asyncio.wait_for`` / ``asyncio.timeout`` with the deadline swept across the
whole run in virtual time, and cancelled after every number of loop turns on a
stock loop. Every model run that started ends with exactly one end or error
event. (Chain runs are LangChain's and LangGraph's to end; only the model runs,
fakellm's, are checked.)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypedDict

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AnyMessage
from langchain_core.tools import tool
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages

from fakellm import FakeChatModel, Recorder, ToolCall, Turn, errors, run_scenario

MODEL_STARTS = {"chat_model_start", "llm_start"}
MODEL_ENDS = {"llm_end", "llm_error"}


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def timing(slow: bool, first: float, each: float = 0.0) -> dict[str, float]:
    """Scripted delays in virtual time, or none (a stock loop would wait for real)."""
    return {"first_token_delay": first, "delay": each} if slow else {}


def agent_model(slow: bool) -> FakeChatModel:
    return FakeChatModel(
        script=[
            Turn(tool_calls=[ToolCall("get_weather", {"city": "Paris"})], **timing(slow, 1.0)),
            Turn("It is sunny.", **timing(slow, 1.0, 0.5)),
        ]
    )


async def agent_ainvoke(callbacks: list[Any], slow: bool) -> Any:
    agent = create_agent(agent_model(slow), tools=[get_weather])
    return await agent.ainvoke(
        {"messages": [("human", "Weather in Paris?")]}, {"callbacks": callbacks}
    )


async def agent_astream(callbacks: list[Any], slow: bool) -> Any:
    agent = create_agent(agent_model(slow), tools=[get_weather])
    async for _ in agent.astream(
        {"messages": [("human", "Weather in Paris?")]},
        {"callbacks": callbacks},
        stream_mode="messages",
    ):
        pass


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


async def graph_astream(callbacks: list[Any], slow: bool) -> Any:
    model = FakeChatModel(script=[Turn("a b c d", **timing(slow, 1.0, 0.5))] * 2)

    async def ask(state: State) -> dict[str, Any]:
        text = ""
        async for chunk in model.astream(state["messages"]):
            text += chunk.text
        return {"messages": [("ai", text)]}

    async def again(state: State) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_node("again", again)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", "again")
    graph = builder.compile()
    return await graph.ainvoke({"messages": [("human", "hi")]}, {"callbacks": callbacks})


async def retried(callbacks: list[Any], slow: bool) -> Any:
    model = FakeChatModel(
        script=[
            Turn(error=errors.RateLimitError(), **timing(slow, 1.0)),
            Turn("ok", **timing(slow, 1.0)),
        ]
    )
    return await model.with_retry(
        retry_if_exception_type=(Exception,), stop_after_attempt=2, wait_exponential_jitter=False
    ).ainvoke("hi", config={"callbacks": callbacks})


APPS: dict[str, Callable[[list[Any], bool], Awaitable[Any]]] = {
    "create_agent ainvoke": agent_ainvoke,
    "create_agent astream": agent_astream,
    "graph streaming a model": graph_astream,
    "with_retry": retried,
}


def model_runs_end_once(recorder: Recorder) -> None:
    ends: Counter[Any] = Counter()
    started = set()
    for event in recorder.events:
        if event.kind in MODEL_STARTS:
            started.add(event.run_id)
        elif event.kind in MODEL_ENDS:
            ends[event.run_id] += 1
    assert started, "no model run started"
    assert ends == dict.fromkeys(started, 1), recorder.events.kinds()


@pytest.mark.parametrize("app", APPS.values(), ids=list(APPS))
@pytest.mark.parametrize("how", ["wait_for", "timeout"])
def test_a_deadline_anywhere_leaves_no_model_run_open(app: Any, how: str) -> None:
    outcomes = set()
    for tenths in range(0, 65, 5):  # every half second of the runs (5 s at most), in virtual time
        recorder = Recorder()

        async def main(deadline: float = tenths / 10, recorder: Recorder = recorder) -> str:
            try:
                if how == "wait_for":
                    await asyncio.wait_for(app([recorder], True), deadline)
                else:
                    async with asyncio.timeout(deadline):
                        await app([recorder], True)
            except TimeoutError:
                return "timed out"
            return "finished"

        outcomes.add(run_scenario(main).results[0])
        if recorder.events.filter(kind="chat_model_start"):
            model_runs_end_once(recorder)
    assert outcomes == {"timed out", "finished"}  # the sweep reached past the end


@pytest.mark.parametrize("app", APPS.values(), ids=list(APPS))
def test_cancelled_after_any_number_of_loop_turns_leaves_no_model_run_open(app: Any) -> None:
    for turns in range(0, 120, 3):
        recorder = Recorder()
        logged: list[str] = []

        async def main(
            turns: int = turns, recorder: Recorder = recorder, logged: list[str] = logged
        ) -> None:
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(lambda _, context: logged.append(str(context["message"])))
            task = asyncio.create_task(app([recorder], False))
            for _ in range(turns):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            for _ in range(20):
                await asyncio.sleep(0)

        asyncio.run(main())
        assert logged == [], (turns, logged)
        if recorder.events.filter(kind="chat_model_start"):
            model_runs_end_once(recorder)
