"""Tests of the flower-shop assistant (issue 5), written against scripted models.

Each test scripts what the model answers (``@pytest.mark.fakellm([...])`` or a
YAML file), runs the app, and checks exactly what the model was sent and what
the app did with the answers. Nothing leaves the machine and no test waits.
"""

from __future__ import annotations

import pytest
from langchain_core.callbacks import get_usage_metadata_callback
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from fakellm import FakeChatModel, Recorder, ToolCall, Turn, errors
from fakellm.assertions import assert_events, assert_usage, assert_well_formed
from fakellm.fixtures import FakeLLMFactory
from flower_shop_app.app import SYSTEM_PROMPT, FlowerShop, TooManyToolRounds

SYSTEM = SystemMessage(SYSTEM_PROMPT)
PRICE_AND_STOCK = Turn(
    tool_calls=[
        ToolCall("get_price", {"flower": "rose"}),
        ToolCall("check_stock", {"flower": "rose"}),
    ]
)
ROSE_ANSWER = "Roses are 4.50 EUR a stem and we have 24."


@pytest.mark.fakellm([PRICE_AND_STOCK, ROSE_ANSWER])
def test_tools_are_called_and_their_results_fed_back(shop: FlowerShop, model: FakeChatModel):
    answer = shop.ask("How much is a rose, and do you have any?")

    assert answer == ROSE_ANSWER
    assert model.call_count == 2
    first, second = model.calls
    # The first request: the rendered prompt, with both tools bound.
    assert first.messages == (SYSTEM, HumanMessage("How much is a rose, and do you have any?"))
    assert first.tool_names == ("get_price", "check_stock")
    assert first.tools[0] == {
        "type": "function",
        "function": {
            "name": "get_price",
            "description": "Price of one stem of a flower, in euros.",
            "parameters": {
                "type": "object",
                "properties": {"flower": {"type": "string"}},
                "required": ["flower"],
            },
        },
    }
    # The second request: the same, plus the model's tool calls and the tools' results.
    assert second.messages[:2] == first.messages
    assert second.messages[2].tool_calls == [
        {"name": "get_price", "args": {"flower": "rose"}, "id": "call_0_0", "type": "tool_call"},
        {"name": "check_stock", "args": {"flower": "rose"}, "id": "call_0_1", "type": "tool_call"},
    ]
    assert second.messages[3:] == (
        ToolMessage("rose: 4.50 EUR", name="get_price", tool_call_id="call_0_0"),
        ToolMessage("rose: 24 in stock", name="check_stock", tool_call_id="call_0_1"),
    )
    assert second.tool_names == ("get_price", "check_stock")


@pytest.mark.fakellm(["We have roses, lilies and sunflowers.", "A dozen roses is 54 EUR.", "Hi!"])
def test_the_second_question_carries_the_first_exchange(shop: FlowerShop, model: FakeChatModel):
    shop.ask("Which flowers do you sell?")
    shop.ask("How much for a dozen roses?")
    shop.ask("Hello", session_id="another customer")

    first_exchange = [
        HumanMessage("Which flowers do you sell?"),
        AIMessage("We have roses, lilies and sunflowers."),
    ]
    assert model.calls[1].messages == (
        SYSTEM,
        *first_exchange,
        HumanMessage("How much for a dozen roses?"),
    )
    # Sessions do not share memory.
    assert model.calls[2].messages == (SYSTEM, HumanMessage("Hello"))
    assert shop.history() == [
        *first_exchange,
        HumanMessage("How much for a dozen roses?"),
        AIMessage("A dozen roses is 54 EUR."),
    ]


@pytest.mark.fakellm([Turn(error=errors.RateLimitError(retry_after=1.0)), "Yes, lilies are 6 EUR."])
def test_a_rate_limited_first_call_is_retried(
    shop: FlowerShop, model: FakeChatModel, llm_recorder: Recorder
):
    answer = shop.ask("Do you have lilies?", callbacks=[llm_recorder])

    assert answer == "Yes, lilies are 6 EUR."
    assert model.call_count == 2
    assert model.calls[0].tags == ()
    assert model.calls[1].tags == ("retry:attempt:2",)
    assert model.calls[1].messages == model.calls[0].messages
    assert_events(
        llm_recorder,
        [
            "chain_start:flower_shop",
            "chain_start:ChatPromptTemplate",
            "chain_end:ChatPromptTemplate",
            "chain_start:retrying_model",
            "chat_model_start:FakeChatModel",
            "llm_error:FakeChatModel",
            "chat_model_start:FakeChatModel",
            "llm_end:FakeChatModel",
            "chain_end:retrying_model",
            "chain_start:StrOutputParser",
            "chain_end:StrOutputParser",
            "chain_end:flower_shop",
        ],
    )
    (failure,) = llm_recorder.events.errors()
    assert failure.run_name == "FakeChatModel"
    assert isinstance(failure.error, errors.RateLimitError)
    assert failure.error.retry_after == 1.0


@pytest.mark.fakellm([Turn(error=errors.RateLimitError)] * 3)
def test_retries_stop_after_three_attempts(shop: FlowerShop, model: FakeChatModel):
    with pytest.raises(errors.RateLimitError, match="rate limit exceeded"):
        shop.ask("Do you have lilies?")

    assert model.call_count == 3
    assert shop.history() == []  # a failed question is not remembered


@pytest.mark.fakellm([Turn(error=errors.RateLimitError)])
def test_without_retry_the_error_reaches_the_caller(model: FakeChatModel):
    shop = FlowerShop(model)  # no retry_on

    with pytest.raises(errors.RateLimitError):
        shop.ask("Do you have lilies?")

    assert model.call_count == 1


@pytest.mark.fakellm([Turn(tool_calls=[ToolCall("check_stock", {"flower": "rose"})])] * 3)
def test_the_tool_loop_is_bounded(model: FakeChatModel):
    shop = FlowerShop(model, max_tool_rounds=2)

    with pytest.raises(TooManyToolRounds, match="after 2 rounds"):
        shop.ask("Roses?")

    assert model.call_count == 3


@pytest.mark.fakellm(
    [
        Turn(tool_calls=[ToolCall("get_price", {"flower": "rose"})], first_token_delay=0.2),
        Turn("Roses are 4.50 EUR a stem.", first_token_delay=0.5, delay=0.1),
    ]
)
def test_tokens_stream_to_the_ui(fake_llm: FakeLLMFactory, llm_recorder: Recorder, virtual_clock):
    model = fake_llm(model="gpt-4o-mini", streaming=True)
    shop = FlowerShop(model)
    ui: list[str] = []

    answer = shop.ask("How much is a rose?", on_token=ui.append, callbacks=[llm_recorder])

    assert ui == ["Roses ", "are ", "4.50 ", "EUR ", "a ", "stem."]
    assert answer == "".join(ui)
    assert virtual_clock.elapsed == 1.2  # 0.2 s tool call + 0.5 s first token + 5 x 0.1 s
    log = llm_recorder.events
    assert_well_formed(log)
    tool_round, answer_round = log.runs(type="chat_model")
    assert log.tokens(tool_round) == [""]  # the tool call streams as a chunk with no text
    assert log.text(answer_round) == answer
    assert log.timeline([tool_round, answer_round]).splitlines() == [
        "     #      time  r3 FakeChatModel              r5 FakeChatModel",
        "     3    +0.000  start",
        "     4    +0.200  token ''",
        '     5    +0.200  end → get_price({"flower": …',
        "     8    +0.200                                start",
        "     9    +0.700                                token 'Roses '",
        "    10    +0.800                                token 'are '",
        "    11    +0.900                                token '4.50 '",
        "    12    +1.000                                token 'EUR '",
        "    13    +1.100                                token 'a '",
        "    14    +1.200                                token 'stem.'",
        "    15    +1.200                                end",
    ]


@pytest.mark.fakellm([PRICE_AND_STOCK, ROSE_ANSWER])
def test_token_usage_totals(shop: FlowerShop, llm_recorder: Recorder):
    with get_usage_metadata_callback() as usage:
        shop.ask("How much is a rose, and do you have any?", callbacks=[llm_recorder])

    # fakellm counts tokens offline: a word is one token, so is each other
    # non-space character; output tokens are the chunks streamed.
    # call 1: system prompt (24) + question (12) = 36 in; 2 tool-call chunks out.
    # call 2: 36 + the tool calls (get_price, {'flower': 'rose'}, check_stock,
    #         {'flower': 'rose'}: 1 + 9 + 1 + 9) + the tool results ("rose: 4.50 EUR"
    #         6, "rose: 24 in stock" 5) = 67 in; the answer streams 10 words out.
    assert usage.usage_metadata == {
        "gpt-4o-mini": {"input_tokens": 103, "output_tokens": 12, "total_tokens": 115}
    }
    assert_usage(llm_recorder, input_tokens=103, output_tokens=12, total_tokens=115)
    assert list(llm_recorder.events.usage_by_run().values()) == [
        {"input_tokens": 36, "output_tokens": 2, "total_tokens": 38},
        {"input_tokens": 67, "output_tokens": 10, "total_tokens": 77},
    ]


@pytest.mark.fakellm("scripts/birthday_bouquet.yaml")
def test_a_birthday_order_from_a_yaml_script(shop: FlowerShop, model: FakeChatModel, virtual_clock):
    answer = shop.ask("I need a birthday bouquet with lilies or roses.")

    assert answer == (
        "Lilies are sold out, but we have 24 roses: a dozen pink roses would be lovely."
    )
    assert model.call_count == 3
    # The rate-limited call and its retry carried the same request.
    assert model.calls[1].messages == model.calls[2].messages
    assert model.calls[2].messages[3:] == (
        ToolMessage("lily: 0 in stock", name="check_stock", tool_call_id="call_0_0"),
        ToolMessage("rose: 24 in stock", name="check_stock", tool_call_id="call_0_1"),
    )
    assert virtual_clock.elapsed == 1.55  # 0.8 s first token + 15 x 0.05 s
