"""A support agent on ``create_agent`` whose middleware bounds its model calls.

The planted bug: :class:`StepBudget` counts the *distinct* tool calls the model
made, so that a retry of a failed lookup is not charged. A model that repeats
the same call is never stopped: the loop ends only when the model changes its
mind, which a real model stuck in a loop may never do.
"""

from __future__ import annotations

import json
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, AgentState, hook_config
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.runtime import Runtime

BUDGET = 3


@tool
def order_status(order_id: str) -> str:
    """Where an order is."""
    return f"order {order_id!r}: shipped"


@tool
def refund(order_id: str, reason: str) -> str:
    """Start a refund."""
    return f"refund of {order_id!r} started"


class StepBudget(AgentMiddleware):  # type: ignore[type-arg]
    """Ends the run with an apology once the model has used its budget of steps."""

    def __init__(self, budget: int, *, fixed: bool) -> None:
        super().__init__()
        self.budget = budget
        self.fixed = fixed

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: AgentState, runtime: Runtime[Any]) -> dict[str, Any] | None:
        replies = [m for m in state["messages"] if isinstance(m, AIMessage)]
        if self.fixed:
            used = len(replies)
        else:  # the bug: repeating a call is free
            calls = {
                (c["name"], json.dumps(c["args"], sort_keys=True))
                for m in replies
                for c in m.tool_calls
            }
            used = len(calls)
        if used >= self.budget:
            return {"jump_to": "end", "messages": [AIMessage("Sorry, I could not finish.")]}
        return None


def build_agent(model: Any, *, fixed: bool) -> Any:
    """The support agent on ``model``: two tools and a step budget of three model calls."""
    return create_agent(
        model,
        tools=[order_status, refund],
        system_prompt="You help customers with their orders.",
        middleware=[StepBudget(BUDGET, fixed=fixed)],
    )


def request() -> dict[str, Any]:
    return {"messages": [("user", "Where is my order 42?")]}
