"""Cancelling a call at any point ends its run once, and early exit logs nothing.

Each call shape is cancelled after k loop turns, for every k from 0 (before the
call starts) to well past its end, with the Recorder alone, with an async
handler (which suspends inside every callback), with an inline one (core awaits
it in order, and gives it an LLM's start event) and with a sync handler that
runs on the executor (many loop turns per callback). Every run that started must
end with exactly one end or error event, and asyncio must log nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableConfig
from langchain_core.utils.uuid import uuid7

from fakellm import FakeChatModel, FakeLLM, Recorder, Turn
from fakellm.assertions import assert_well_formed

TURNS = [Turn("a b c", delay=0.0)] * 3
STARTS = {"chat_model_start", "llm_start", "chain_start"}
ENDS = {"llm_end", "llm_error", "chain_end", "chain_error"}


class Suspending(AsyncCallbackHandler):
    """An async handler that gives the loop a turn inside every model callback."""

    async def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0)

    async def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0)

    async def on_llm_new_token(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0)

    async def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0)

    async def on_llm_error(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.sleep(0)


class OnExecutor(BaseCallbackHandler):
    """A sync handler that is not inline: core runs it on the loop's executor."""

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        pass


Call = Callable[[list[Any]], Awaitable[Any]]


async def ainvoke(callbacks: list[Any]) -> None:
    await FakeChatModel(script=TURNS, allow_unused=True).ainvoke(
        "x", config={"callbacks": callbacks}
    )


async def astream(callbacks: list[Any]) -> None:
    model = FakeChatModel(script=TURNS, allow_unused=True)
    async for _ in model.astream("x", config={"callbacks": callbacks}):
        pass


async def abatch(callbacks: list[Any]) -> None:
    await FakeChatModel(script=TURNS, allow_unused=True).abatch(
        ["x", "y"], config={"callbacks": callbacks}
    )


async def llm_agenerate(callbacks: list[Any]) -> None:
    await FakeLLM(script=TURNS, allow_unused=True).agenerate(["x", "y"], callbacks=callbacks)


async def llm_astream(callbacks: list[Any]) -> None:
    model = FakeLLM(script=TURNS, allow_unused=True)
    async for _ in model.astream("x", config={"callbacks": callbacks}):
        pass


async def llm_astream_in_run(callbacks: list[Any]) -> None:
    model = FakeLLM(script=TURNS, allow_unused=True, tags=["t"])
    config: RunnableConfig = {"callbacks": callbacks, "metadata": {"k": 1}, "run_id": uuid7()}
    async for _ in model.astream("x", config=config):
        pass


async def llm_astream_break(callbacks: list[Any]) -> None:
    model = FakeLLM(script=TURNS, allow_unused=True)
    async for _ in model.astream("x", config={"callbacks": callbacks}):
        break


SHAPES: list[Call] = [
    ainvoke,
    astream,
    abatch,
    llm_agenerate,
    llm_astream,
    llm_astream_in_run,
    llm_astream_break,
]


class InlineSuspending(Suspending):
    """Inline: core awaits it in order, the Recorder first (and, for an LLM's
    start event, gives it only to the inline handlers, so this one gets it)."""

    run_inline = True


HANDLERS: dict[str, Callable[[], list[Any]]] = {
    "recorder-only": list,
    "async-handler": lambda: [Suspending()],
    "inline-async-handler": lambda: [InlineSuspending()],
    "executor-handler": lambda: [OnExecutor()],
}


def cancel_after(turns: int, call: Call, callbacks: list[Any]) -> list[str]:
    """Start ``call``, cancel it after ``turns`` loop turns; what asyncio logged."""
    logged: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: logged.append(str(context["message"])))
        task = asyncio.create_task(call(callbacks))
        for _ in range(turns):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for _ in range(20):  # let executor callbacks land
            await asyncio.sleep(0)

    asyncio.run(main())
    return logged


def ends_per_run(recorder: Recorder) -> dict[Any, int]:
    counts: Counter[Any] = Counter()
    for event in recorder.events:
        if event.kind in STARTS:
            counts[event.run_id] += 0
        elif event.kind in ENDS:
            counts[event.run_id] += 1
    return dict(counts)


@pytest.mark.parametrize("handlers", HANDLERS, ids=list(HANDLERS))
@pytest.mark.parametrize("call", SHAPES, ids=[s.__name__ for s in SHAPES])
def test_a_call_cancelled_at_any_point_ends_its_runs_once(call: Call, handlers: str) -> None:
    for turns in range(40):
        recorder = Recorder()
        logged = cancel_after(turns, call, [recorder, *HANDLERS[handlers]()])
        assert logged == [], (turns, logged)
        assert_well_formed(recorder.events)
        assert set(ends_per_run(recorder).values()) <= {1}, (turns, recorder.events.kinds())


def test_the_runs_are_reported_cancelled() -> None:
    recorder = Recorder()
    assert cancel_after(1, ainvoke, [recorder]) == []
    assert recorder.events.kinds() == ["chat_model_start", "llm_error"]
    assert isinstance(recorder.events[-1].error, asyncio.CancelledError)


def chain() -> Any:
    model = FakeChatModel(script=TURNS, allow_unused=True)
    return ChatPromptTemplate.from_template("{q}") | model | StrOutputParser()


@pytest.mark.parametrize("stop", ["break", "cancel"])
def test_leaving_a_chain_stream_early_logs_nothing(stop: str) -> None:
    for turns in range(30):
        recorder = Recorder()

        async def consume(callbacks: list[Any]) -> None:
            async for _ in chain().astream({"q": "x"}, config={"callbacks": callbacks}):
                if stop == "break":
                    break
                await asyncio.sleep(0)

        logged = cancel_after(turns, consume, [recorder])
        assert logged == [], (turns, logged)
        # Every run ends once (core ends the model's run after its parent's, as it
        # does for its own fake models).
        assert set(ends_per_run(recorder).values()) <= {1}, (turns, recorder.events.kinds())
