"""Concurrent calls on one model whose turn assignment used to depend on threads.

Run as ``python -m tests.reliability.turn_order_app`` it prints one JSON line;
every fresh process, under every hash seed, must print the same one.
"""

from __future__ import annotations

import asyncio
import json
import operator
import re
import time
from typing import Annotated, Any, TypedDict

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.runnables import RunnableLambda, RunnableParallel
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from fakellm import FakeChatModel, Rule, Script, ToolCall, Turn, run_scenario

FLOWERS = ("rose", "lily", "tulip", "daisy")


def batch() -> list[str]:
    """Sync ``batch``: LangChain's thread pool, queued turns, no rules."""
    model = FakeChatModel(script=[f"answer {i}" for i in range(4)])
    return [m.text for m in model.batch([f"question {i}" for i in range(4)])]


class _Fan(TypedDict):
    answers: Annotated[list[str], operator.add]


def send_fan_out() -> list[str]:
    """A LangGraph map step (``Send``) over one model, routed by rules."""
    model = FakeChatModel(
        script=Script(rules=[Rule(match=name, respond=f"{name} is lovely") for name in FLOWERS])
    )

    def describe(state: dict[str, str]) -> dict[str, list[str]]:
        return {"answers": [model.invoke(f"describe the {state['flower']}").text]}

    graph = StateGraph(_Fan)
    graph.add_node("describe", describe)
    graph.add_conditional_edges(
        START, lambda _: [Send("describe", {"flower": f}) for f in FLOWERS], ["describe"]
    )
    graph.add_edge("describe", END)
    return list(graph.compile().invoke({"answers": []})["answers"])


def parallel_nodes() -> list[str]:
    """Two LangGraph nodes in one step, routed by ``Rule(node=...)``."""
    model = FakeChatModel(
        script=Script(
            rules=[
                Rule(node="summarize", respond="a summary"),
                Rule(node="translate", respond="une traduction"),
            ]
        )
    )

    def node(name: str) -> Any:
        return lambda _: {"answers": [f"{name}: {model.invoke('the text').text}"]}

    graph = StateGraph(_Fan)
    graph.add_node("summarize", node("summarize"))
    graph.add_node("translate", node("translate"))
    graph.add_edge(START, "summarize")
    graph.add_edge(START, "translate")
    graph.add_edge("summarize", END)
    graph.add_edge("translate", END)
    return sorted(graph.compile().invoke({"answers": []})["answers"])


def runnable_parallel() -> dict[str, str]:
    """``RunnableParallel.invoke`` over one model, routed by the last message."""
    model = FakeChatModel(
        script=Script(
            rules=[
                Rule(match_last="^first", respond="one"),
                Rule(match_last="^second", respond="two"),
            ]
        )
    )
    fan = RunnableParallel(
        a=RunnableLambda(lambda _: "first") | model,
        b=RunnableLambda(lambda _: "second") | model,
    )
    return {k: v.text for k, v in fan.invoke(None).items()}


class _PlainHandler(BaseCallbackHandler):
    """A user's sync handler: LangChain runs it on its executor in async code."""

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        return None


def abatch_with_a_sync_handler() -> list[str]:
    """``abatch`` on the virtual loop with a handler that hops to the executor."""
    model = FakeChatModel(script=[Turn(f"answer {i}", first_token_delay=0.1) for i in range(4)])

    async def main() -> list[str]:
        replies = await model.abatch(
            [f"question {i}" for i in range(4)], config={"callbacks": [_PlainHandler()]}
        )
        return [r.text for r in replies]

    result: list[str] = run_scenario(main).results[0]
    return result


def _failing_script() -> list[Turn | str]:
    """LangChain's retry rounds give a, b, c [boom, A, x], then a, c [y, B], then a [C]."""
    return [
        Turn(error=ValueError("boom")),
        "A",
        Turn(error=ValueError("x")),
        Turn(error=ValueError("y")),
        "B",
        "C",
    ]


def retry_batch() -> list[str]:
    """``with_retry().batch``: each retry round is an ordered batch of the failed inputs."""
    model = FakeChatModel(script=_failing_script())
    retry = model.with_retry(wait_exponential_jitter=False, stop_after_attempt=3)
    replies = retry.batch(["a", "b", "c"], config={"callbacks": [_PlainHandler()]})
    return [r.text for r in replies] + model.races


class _SlowFirstHandler(BaseCallbackHandler):
    """A sync handler that takes longer for the first input: its executor hop ends last."""

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        if messages[0][-1].content in ("question 0", "a"):
            time.sleep(0.02)  # real time: this runs on a stock loop


def stock_loop_abatches() -> dict[str, list[str]]:
    """``abatch``, ``with_retry().abatch`` and ``gather`` on a stock loop with a sync handler."""
    plain = FakeChatModel(script=[f"answer {i}" for i in range(4)])
    failing = FakeChatModel(script=_failing_script())
    config: Any = {"callbacks": [_SlowFirstHandler()]}

    racing = FakeChatModel(script=["one", "two"])

    async def main() -> dict[str, list[str]]:
        replies = await plain.abatch([f"question {i}" for i in range(4)], config=config)
        retry = failing.with_retry(wait_exponential_jitter=False, stop_after_attempt=3)
        retried = await retry.abatch(["a", "b", "c"], config=config)
        # concurrent ainvokes that each hop first: the threads pick who goes first
        await asyncio.gather(*(racing.ainvoke(q, config) for q in ("question 0", "b")))
        return {"abatch": [r.text for r in replies], "retry": [r.text for r in retried]}

    return {**asyncio.run(main()), "races": racing.races}


_RACE = re.compile(r"call #(\d+) \(thread '[^']+'\) got (turns\[\d+\])")


def executor_hops() -> dict[str, Any]:
    """Sync calls on the virtual loop's executor: one after the other, then at once."""
    sequential = FakeChatModel(script=["one", "two"])
    concurrent = FakeChatModel(script=["one", "two"])

    async def main() -> list[str]:
        first = await asyncio.to_thread(sequential.invoke, "a")
        second = await asyncio.to_thread(sequential.invoke, "b")
        await asyncio.gather(*(asyncio.to_thread(concurrent.invoke, q) for q in "ab"))
        return [first.text, second.text]

    answers: list[str] = run_scenario(main).results[0]
    return {
        "sequential": [answers, sequential.races],
        # which call got which answer is the threads' choice; the report is not
        "concurrent": [list(m.groups()) for m in map(_RACE.match, concurrent.races) if m],
    }


class _ToolEvents(BaseCallbackHandler):
    """Records when each tool call starts and ends (inline: the order is the loop's)."""

    run_inline = True

    def __init__(self) -> None:
        self.events: list[str] = []

    def on_tool_start(self, serialized: Any, input_str: str, **kwargs: Any) -> None:
        self.events.append(f"start {serialized['name']}")

    def on_tool_end(self, output: Any, **kwargs: Any) -> None:
        self.events.append(f"end {output.content}")


def agent_tool_calls() -> dict[str, list[str]]:
    """Three tool calls of one ``create_agent`` step with a wrapping middleware.

    langsmith's ``traceable`` hops each middleware hook to the executor, tracing
    off or on; the virtual loop finishes those hops before anything else runs.
    """
    from langchain.agents import create_agent
    from langchain.agents.middleware import AgentMiddleware
    from langchain_core.tools import tool

    helper = FakeChatModel(script=["sub one", "sub two", "sub three"])

    @tool
    async def alpha(q: str) -> str:
        """Ask the helper, after one pass of the loop."""
        await asyncio.sleep(0)
        return (await helper.ainvoke(f"alpha {q}")).text

    @tool
    async def beta(q: str) -> str:
        """Ask the helper."""
        return (await helper.ainvoke(f"beta {q}")).text

    class Passthrough(AgentMiddleware):  # type: ignore[type-arg]
        async def awrap_tool_call(self, request: Any, handler: Any) -> Any:
            return await handler(request)

    calls = [
        ToolCall(name=n, args={"q": q}) for n, q in (("alpha", "x"), ("beta", "y"), ("alpha", "z"))
    ]
    model = FakeChatModel(script=[Turn(tool_calls=calls), "done"])
    agent = create_agent(model, tools=[alpha, beta], middleware=[Passthrough()])
    events = _ToolEvents()

    async def main() -> list[str]:
        out = await agent.ainvoke({"messages": [("user", "go")]}, {"callbacks": [events]})
        return [m.content for m in out["messages"] if m.type == "tool"]

    return {"answers": run_scenario(main).results[0], "events": events.events}


def outcome() -> dict[str, Any]:
    return {
        "batch": batch(),
        "send": send_fan_out(),
        "nodes": parallel_nodes(),
        "parallel": runnable_parallel(),
        "abatch": abatch_with_a_sync_handler(),
        "retry_batch": retry_batch(),
        "stock_loop": stock_loop_abatches(),
        "hops": executor_hops(),
        "agent": agent_tool_calls(),
    }


if __name__ == "__main__":
    print(json.dumps(outcome(), sort_keys=True))
