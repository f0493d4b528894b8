"""A booking agent on ``create_agent``, whose middleware must keep ``book`` behind ``confirm``.

The planted bug: :class:`ConfirmFirst` lets ``book`` through when ``confirm``
for the same room is *requested* in the same model message, not when it has
*finished*. The agent runs a message's tool calls concurrently, so a model
that calls ``book`` and ``confirm`` together books an unconfirmed room. A
sequential test (confirm, then book) never sees it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware
from langchain.agents.middleware.types import ToolCallRequest
from langchain_core.messages import ToolMessage
from langchain_core.tools import tool
from langgraph.types import Command
from pydantic import Field

ROOMS = {1: "single", 2: "double", 3: "suite"}


@tool
async def find_rooms(kind: str) -> str:
    """Rooms of a kind: single, double or suite."""
    return ", ".join(str(n) for n, k in ROOMS.items() if k == kind) or "none"


@tool
async def confirm(room: int = Field(ge=1, le=3)) -> str:
    """Ask the guest to confirm a room."""
    return f"room {room} confirmed"


@tool
async def book(room: int = Field(ge=1, le=3)) -> str:
    """Book a room (only once the guest confirmed it)."""
    return f"room {room} booked"


class ConfirmFirst(AgentMiddleware):  # type: ignore[type-arg]
    """Refuses ``book`` for a room the guest has not confirmed."""

    def __init__(self, *, fixed: bool) -> None:
        super().__init__()
        self.fixed = fixed

    def _confirmed(self, request: ToolCallRequest) -> set[Any]:
        messages = request.state["messages"]
        done = {
            m.tool_call_id for m in messages if isinstance(m, ToolMessage) and m.status == "success"
        }
        rooms = set()
        for m in messages:
            for call in getattr(m, "tool_calls", None) or ():
                if call["name"] != "confirm":
                    continue
                # The bug: a confirm requested alongside the booking counts as done.
                if self.fixed and call["id"] not in done:
                    continue
                rooms.add(call["args"].get("room"))
        return rooms

    async def awrap_tool_call(
        self,
        request: ToolCallRequest,
        handler: Callable[[ToolCallRequest], Awaitable[ToolMessage | Command[Any]]],
    ) -> ToolMessage | Command[Any]:
        call = request.tool_call
        if call["name"] == "book" and call["args"].get("room") not in self._confirmed(request):
            return ToolMessage(
                "Confirm the room with the guest first.",
                tool_call_id=call["id"],
                name="book",
                status="error",
            )
        return await handler(request)


def build_agent(model: Any, *, fixed: bool) -> Any:
    """The booking agent on ``model``: three async tools, one middleware."""
    return create_agent(
        model,
        tools=[find_rooms, confirm, book],
        system_prompt="You book hotel rooms.",
        middleware=[ConfirmFirst(fixed=fixed)],
    )


def request() -> dict[str, Any]:
    return {"messages": [("user", "Book me a double room.")]}
