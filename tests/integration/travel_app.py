"""A small travel agent as a hand-built LangGraph graph, shared by the agent tests.

It has what agent tests meet: a model node with tools and a tool node, a
``Send`` fan-out (one quote per city, answered by rules on the message), a
subgraph, and a human approval that interrupts the graph until it is resumed
with ``Command(resume=...)``.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Send, interrupt

from fakellm import FakeChatModel, Rule, Script, ToolCall, Turn


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


@tool
def book(city: str, nights: int) -> str:
    """Book a hotel."""
    return f"Booked {nights} nights in {city}"


TOOLS = [get_weather, book]


class State(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    cities: list[str]
    quotes: Annotated[list[str], operator.add]
    decision: str


class Review(TypedDict, total=False):
    quotes: list[str]
    decision: str


def planner_script() -> list[Any]:
    return [
        Turn(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]),
        Turn(tool_calls=[ToolCall("book", {"city": "Paris", "nights": 2})]),
        "Booked: 2 nights in Paris.",
    ]


def quote_script() -> Script:
    return Script(
        rules=[
            Rule(match="Paris", respond=Turn("Paris: 120 EUR", first_token_delay=0.3)),
            Rule(match="Rome", respond=Turn("Rome: 95 EUR", first_token_delay=0.1)),
        ]
    )


def build(planner: FakeChatModel, quoter: FakeChatModel) -> Any:
    """The compiled graph (with a checkpointer, so it can be interrupted)."""
    bound = planner.bind_tools(TOOLS)

    def agent(state: State) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    async def aagent(state: State) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    def fan_out(state: State) -> list[Send]:
        return [Send("quote", {"city": c}) for c in state.get("cities", [])]

    def quote(state: dict[str, Any]) -> dict[str, Any]:
        answer = quoter.invoke([HumanMessage(f"Price of a night in {state['city']}?")])
        return {"quotes": [answer.text]}

    async def aquote(state: dict[str, Any]) -> dict[str, Any]:
        prompt = [HumanMessage(f"Price of a night in {state['city']}?")]
        return {"quotes": [(await quoter.ainvoke(prompt)).text]}

    def review(state: Review) -> dict[str, Any]:
        decision = interrupt({"approve": sorted(state["quotes"])})
        return {"decision": decision}

    approval = StateGraph(Review).add_node("review", review).add_edge(START, "review").compile()

    def approve(state: State) -> dict[str, Any]:
        result = approval.invoke({"quotes": state["quotes"]})
        return {"decision": result["decision"]}

    async def aapprove(state: State) -> dict[str, Any]:
        result = await approval.ainvoke({"quotes": state["quotes"]})
        return {"decision": result["decision"]}

    graph = StateGraph(State)
    # Each node has a sync and an async body: an async graph runs the async
    # one on the event loop (deterministic under virtual time), not in a thread.
    graph.add_node("agent", RunnableLambda(agent, afunc=aagent, name="agent"))
    graph.add_node("tools", ToolNode(TOOLS))
    graph.add_node("quote", RunnableLambda(quote, afunc=aquote, name="quote"))
    graph.add_node("approval", RunnableLambda(approve, afunc=aapprove, name="approval"))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: "fan_out"})
    graph.add_node("fan_out", lambda state: {})
    graph.add_conditional_edges("fan_out", fan_out, ["quote"])
    graph.add_edge("tools", "agent")
    graph.add_edge("quote", "approval")
    graph.add_edge("approval", END)
    return graph.compile(checkpointer=InMemorySaver())


REQUEST = {"messages": [("human", "Plan 2 nights in Paris")], "cities": ["Paris", "Rome"]}
