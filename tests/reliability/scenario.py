"""The determinism scenario: 10 concurrent conversations with tools, errors and handlers.

Run as ``python -m tests.reliability.scenario`` it prints its outcome as JSON, so
a subprocess (another ``PYTHONHASHSEED``, another xdist worker) can be compared
with the run in the test process. Each conversation asks its own model for a
tool call, runs the (async) tool, streams an answer (every third one fails mid-stream
with a scripted connection error and is retried after a back-off), then asks
one shared judge model through a prompt | model | parser chain, so the judge's
turns go to the conversations in the order virtual time brings them.

The tool is ``async def`` on purpose: LangChain runs a sync tool called from
async code in a thread pool, and concurrent thread jobs finish in the order
the OS schedules them, which no event loop can make repeatable.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime
from typing import Any

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool

from fakellm import FakeChatModel, Recorder, Script, ToolCall, Turn, errors, run_scenario

START = datetime(2024, 5, 1, 9, 30)
STREAMS = 10


@tool
async def get_price(flower: str) -> str:
    """The price of a flower."""
    await asyncio.sleep(0.25)
    return f"{flower} costs {len(flower)} EUR"


class TokenCounter(AsyncCallbackHandler):
    """A user's async handler: awaits inside every token callback."""

    def __init__(self) -> None:
        self.tokens = 0

    async def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        await asyncio.sleep(0)
        self.tokens += 1


class EndClock(BaseCallbackHandler):
    """A user's inline sync handler: reads the (frozen) wall clock at every model end."""

    run_inline = True

    def __init__(self) -> None:
        self.ends: list[str] = []

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ends.append(datetime.now().isoformat())


def _model(i: int) -> FakeChatModel:
    flower = f"flower{i}"
    turns = [
        Turn(
            tool_calls=[ToolCall("get_price", {"flower": flower})],
            first_token_delay=0.1 * (i % 3),
        )
    ]
    answer = f"conversation {i}: {flower} it is"
    if i % 3 == 0:
        turns.append(
            Turn(answer, error=errors.APIConnectionError(), at_chunk=2, delay=0.2 + 0.01 * i)
        )
    turns.append(Turn(answer, first_token_delay=0.05 * i, delay=0.1 + 0.01 * i))
    return FakeChatModel(model=f"model-{i}", script=turns)


async def _conversation(
    i: int, model: FakeChatModel, judge: Any, callbacks: list[Any]
) -> tuple[str, str]:
    cfg: Any = {"callbacks": callbacks, "tags": [f"conversation-{i}"]}
    bound = model.bind_tools([get_price])
    messages: list[BaseMessage] = [HumanMessage(f"What does flower{i} cost?")]
    ai = await bound.ainvoke(messages, config=cfg)
    messages.append(ai)
    for call in ai.tool_calls:
        messages.append(await get_price.ainvoke(call, config=cfg))
    for _attempt in range(2):
        text = ""
        try:
            async for chunk in bound.astream(messages, config=cfg):
                text += chunk.text
            break
        except errors.APIConnectionError:
            await asyncio.sleep(0.5)
    verdict = await judge.ainvoke({"text": text}, config=cfg)
    return text, verdict


def run() -> dict[str, Any]:
    """Play the scenario once on a fresh virtual-time loop; return everything observable."""
    rec, counter, clock = Recorder(), TokenCounter(), EndClock()
    models = [_model(i) for i in range(STREAMS)]
    judge_model = FakeChatModel(
        model="judge",
        script=Script([Turn(f"verdict {k}: fine", first_token_delay=0.01) for k in range(STREAMS)]),
    )
    judge = ChatPromptTemplate.from_template("Judge: {text}") | judge_model | StrOutputParser()
    result = run_scenario(
        *(_conversation(i, m, judge, [rec, counter, clock]) for i, m in enumerate(models)),
        start=START,
    )
    log = rec.events
    return {
        "results": [list(r) for r in result.results],
        "elapsed": result.elapsed,
        "trace": log.normalized(),
        "wall": [ev.wall_time.isoformat() if ev.wall_time else None for ev in log],
        "clock": [ev.time for ev in log],
        "tokens_counted": counter.tokens,
        "end_wall_times": clock.ends,
        "unused": [m.unused_turns for m in [*models, judge_model]],
    }


def dumps(outcome: dict[str, Any]) -> str:
    """The canonical text of an outcome, for comparing runs."""
    return json.dumps(outcome, sort_keys=True, ensure_ascii=True)


if __name__ == "__main__":
    sys.stdout.write(dumps(run()))
