"""A research agent on a hand-built LangGraph graph: model, ``ToolNode``, then a
node that cites the first source of every search.

The planted bug: ``cite`` takes ``results[0]`` of each search, and a search
that finds nothing returns ``[]``: the graph crashes with ``IndexError``. Tests
that search for what the index holds never see it.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AnyMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from pydantic import Field

PAGES = [
    {"title": "Roses", "text": "Roses like sun and well-drained soil."},
    {"title": "Tulips", "text": "Tulips are planted in autumn."},
    {"title": "Lilies", "text": "Lilies are toxic to cats."},
]


@tool
def search(query: str, limit: int = Field(default=2, ge=1, le=3)) -> str:
    """Pages whose text contains the query (case-insensitive), as JSON."""
    hits = [p for p in PAGES if query.lower() in p["text"].lower()]
    return json.dumps(hits[:limit])


@tool
def word_count(text: str) -> int:
    """How many words a text has."""
    return len(text.split())


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    sources: list[str]


def build_agent(model: Any, *, fixed: bool) -> Any:
    """The graph: agent -> tools -> cite -> agent, until the model answers text."""
    bound = model.bind_tools([search, word_count])

    def agent(state: State) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    def cite(state: State) -> dict[str, Any]:
        sources = list(state.get("sources", []))
        for message in reversed(state["messages"]):
            if not isinstance(message, ToolMessage):
                break
            if message.name != "search" or message.status == "error":
                continue
            results = json.loads(message.text)
            if fixed and not results:
                continue
            sources.append(results[0]["title"])  # the bug: a search can find nothing
        return {"sources": sources}

    graph = StateGraph(State)
    graph.add_node("agent", agent)
    graph.add_node("tools", ToolNode([search, word_count]))
    graph.add_node("cite", cite)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "cite")
    graph.add_edge("cite", "agent")
    return graph.compile()


def request() -> dict[str, Any]:
    return {"messages": [("user", "What do roses need?")], "sources": []}
