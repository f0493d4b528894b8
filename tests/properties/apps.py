"""Small example apps for the property tests: two with a planted concurrency bug
(and their fixed versions), and a chat app with memory."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage


class BuggyTokenCollector(BaseCallbackHandler):
    """Files each streamed token under the run that started last (the bug)."""

    run_inline = True  # called in order on the loop thread, never in a worker

    def __init__(self) -> None:
        self.tokens: defaultdict[UUID | None, list[str]] = defaultdict(list)
        self.current: UUID | None = None

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kw: Any):
        self.current = run_id

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kw: Any):
        self.tokens[self.current].append(token)

    def text(self, run_id: UUID) -> str:
        return "".join(self.tokens[run_id])


class TokenCollector(BuggyTokenCollector):
    """The fix: file each token under the ``run_id`` LangChain gives it."""

    def on_llm_new_token(self, token: Any, *, run_id: UUID, **kw: Any):
        self.tokens[run_id].append(token)


async def stream_reply(model: Any, collector: BaseCallbackHandler) -> str:
    """Stream one reply with ``collector`` attached; return the streamed text."""
    parts = [c.text async for c in model.astream("hi", config={"callbacks": [collector]})]
    return "".join(parts)


class BuggyUsageMeter:
    """Adds each reply's output tokens to a shared total, with a read-modify-write
    split by an await (the bug: concurrent updates are lost)."""

    def __init__(self) -> None:
        self.total = 0

    async def add(self, tokens: int) -> None:
        seen = self.total
        await asyncio.sleep(0)  # e.g. an audit-log write between read and write
        self.total = seen + tokens

    async def ask(self, model: Any) -> int:
        reply = await model.ainvoke("hi")
        used = reply.usage_metadata["output_tokens"]
        await self.add(used)
        return int(used)


class UsageMeter(BuggyUsageMeter):
    """The fix: the update happens in one step, with no await inside it."""

    async def add(self, tokens: int) -> None:
        await asyncio.sleep(0)
        self.total += tokens


class ChatWithMemory:
    """A chat app that keeps the conversation and sends all of it each time.

    A failed call leaves the memory as it was, so the user can retry.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        self.history: list[BaseMessage] = []

    def ask(self, text: str) -> str:
        question = HumanMessage(text)
        reply = self.model.invoke([*self.history, question])
        assert isinstance(reply, AIMessage)
        self.history += [question, reply]
        return reply.text
