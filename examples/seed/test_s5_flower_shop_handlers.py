"""S5: the flower-shop assistant with a sync token handler and an async handler.

The tutorial's S5 program streams an answer from ``ChatOpenAI(max_tokens=100,
streaming=True, callbacks=[MyFlowerShopSyncHandler(), MyFlowerShopAsyncHandler()])``
with ``await flower_shop_chat.agenerate([[HumanMessage(...)]])``. The sync handler
prints every new token; the async one awaits ``asyncio.sleep(0.5)`` in
``on_llm_start`` and in ``on_llm_end``. Here the chat model is scripted (the
first token after 0.3 s, then one every 0.05 s) and the program runs on
virtual time, so the order of every handler call and the instant it happened
are exact. Each print carries the virtual seconds since the start.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.messages import HumanMessage
from langchain_core.outputs import LLMResult

from fakellm import Recorder, Turn
from fakellm.assertions import assert_events, assert_well_formed
from fakellm.fixtures import FakeLLMFactory

START = datetime(2024, 1, 1)  # where virtual time starts unless a test says otherwise
QUESTION = "Which flowers suit a birthday? Just 3, under 50 characters."
ANSWER = Turn("Roses, lilies and sunflowers.", chunks="words", first_token_delay=0.3, delay=0.05)


def say(text: str) -> None:
    """The tutorial's print, stamped with the (virtual) time: datetime.now() follows it."""
    print(f"{(datetime.now() - START).total_seconds():.2f}s {text}")


class MyFlowerShopSyncHandler(BaseCallbackHandler):
    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        say(f"Fetching flower data: token: {token}")


class MyFlowerShopAsyncHandler(AsyncCallbackHandler):
    async def on_llm_start(
        self, serialized: dict[str, Any], prompts: list[str], **kwargs: Any
    ) -> None:
        say("Fetching flower data...")
        await asyncio.sleep(0.5)  # an asynchronous operation
        say("Flower data fetched. Making suggestions...")

    async def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        say("Sorting the flower suggestions...")
        await asyncio.sleep(0.5)  # an asynchronous operation
        say("Have a nice day!")


@pytest.mark.asyncio(loop_factories=["virtual_time"])
@pytest.mark.fakellm([ANSWER])
async def test_handlers_run_in_order_at_exact_times(
    fake_llm: FakeLLMFactory, llm_recorder: Recorder, capsys: pytest.CaptureFixture[str]
):
    flower_shop_chat = fake_llm(
        model="gpt-4o-mini",
        max_tokens=100,
        streaming=True,
        callbacks=[MyFlowerShopSyncHandler(), MyFlowerShopAsyncHandler()],
    )

    result = await flower_shop_chat.agenerate(
        [[HumanMessage(content=QUESTION)]], callbacks=[llm_recorder]
    )

    assert result.generations[0][0].text == "Roses, lilies and sunflowers."
    assert capsys.readouterr().out == (
        "0.00s Fetching flower data...\n"
        "0.50s Flower data fetched. Making suggestions...\n"
        "0.80s Fetching flower data: token: Roses, \n"
        "0.85s Fetching flower data: token: lilies \n"
        "0.90s Fetching flower data: token: and \n"
        "0.95s Fetching flower data: token: sunflowers.\n"
        "0.95s Sorting the flower suggestions...\n"
        "1.45s Have a nice day!\n"
    )
    # The model's own events, seen by a request-level recorder, on the same clock.
    log = llm_recorder.events
    assert_well_formed(log)
    assert_events(log, ["chat_model_start", "llm_new_token{4}", "llm_end"])
    assert [(e.kind, round(e.time, 6)) for e in log] == [
        ("chat_model_start", 0.0),
        ("llm_new_token", 0.8),
        ("llm_new_token", 0.85),
        ("llm_new_token", 0.9),
        ("llm_new_token", 0.95),
        ("llm_end", 0.95),
    ]
    assert asyncio.get_running_loop().time() == 1.45
    (call,) = flower_shop_chat.calls
    assert call.messages == (HumanMessage(QUESTION),)
    assert call.streaming is True


@pytest.mark.asyncio(loop_factories=["virtual_time"])
@pytest.mark.fakellm([ANSWER, ANSWER])
async def test_a_second_customer_is_served_while_the_first_handler_sleeps(
    fake_llm: FakeLLMFactory, capsys: pytest.CaptureFixture[str]
):
    """The tutorial's point about ``await asyncio.sleep(0.5)``: other requests run meanwhile."""
    flower_shop_chat = fake_llm(
        model="gpt-4o-mini", streaming=True, callbacks=[MyFlowerShopAsyncHandler()]
    )

    async def customer(delay: float) -> None:
        await asyncio.sleep(delay)
        await flower_shop_chat.agenerate([[HumanMessage(content=QUESTION)]])

    await asyncio.gather(customer(0.0), customer(0.2))

    assert capsys.readouterr().out == (
        "0.00s Fetching flower data...\n"
        "0.20s Fetching flower data...\n"
        "0.50s Flower data fetched. Making suggestions...\n"
        "0.70s Flower data fetched. Making suggestions...\n"
        "0.95s Sorting the flower suggestions...\n"
        "1.15s Sorting the flower suggestions...\n"
        "1.45s Have a nice day!\n"
        "1.65s Have a nice day!\n"
    )
