"""FakeChatModel, exercised through LangChain's public API with exact expectations."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.tools import tool
from pydantic import BaseModel

from fakellm import Call, FakeChatModel, Rule, Script, ToolCall, Turn, _clock, errors

FLOWERS = "Roses, lilies and sunflowers."


@tool
def get_price(flower: str) -> float:
    """Price of one flower, in euros."""
    return 2.5


@tool
def get_stock(flower: str, shop: str) -> int:
    """How many of a flower a shop has."""
    return 3


class Events(BaseCallbackHandler):
    """Records callback names and tokens, in order."""

    run_inline = True

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.run_ids: list[Any] = []

    def on_chat_model_start(
        self, serialized: Any, messages: Any, *, run_id: Any, **kw: Any
    ) -> None:
        self.seen.append("start")
        self.run_ids.append(run_id)

    def on_llm_new_token(self, token: str, **kw: Any) -> None:
        self.seen.append(f"token:{token}")

    def on_llm_end(self, response: Any, **kw: Any) -> None:
        self.seen.append("end")

    def on_llm_error(self, error: BaseException, **kw: Any) -> None:
        self.seen.append(f"error:{type(error).__name__}")


def merged(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    full = chunks[0]
    for c in chunks[1:]:
        full = full + c
    return full


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Sync delays the model spends, recorded instead of slept."""
    spent: list[float] = []
    token = _clock._sync_sleeper.set(spent.append)
    yield spent
    _clock._sync_sleeper.reset(token)


# -- invoke and stream ----------------------------------------------------------------------------


def test_invoke_returns_the_scripted_message_with_usage_and_metadata() -> None:
    model = FakeChatModel(script=[FLOWERS], model="gpt-4o-mini")
    msg = model.invoke("Which flowers suit a birthday?")
    assert isinstance(msg, AIMessage)
    assert msg.content == FLOWERS
    # input: Which|flowers|suit|a|birthday|? = 6; output: 4 chunks ("words").
    assert msg.usage_metadata == {"input_tokens": 6, "output_tokens": 4, "total_tokens": 10}
    assert msg.response_metadata["model_name"] == "gpt-4o-mini"
    assert msg.response_metadata["finish_reason"] == "stop"
    assert msg.response_metadata["model_provider"] == "fakellm"
    assert msg.response_metadata["token_usage"] == {
        "prompt_tokens": 6,
        "completion_tokens": 4,
        "total_tokens": 10,
    }


def test_stream_yields_the_scripted_chunks_with_totals_on_the_last_only() -> None:
    model = FakeChatModel(script=[FLOWERS], model="gpt-4o-mini")
    chunks = list(model.stream("Which flowers suit a birthday?"))
    assert [c.content for c in chunks] == ["Roses, ", "lilies ", "and ", "sunflowers."]
    assert [c.chunk_position for c in chunks] == [None, None, None, "last"]
    assert [c.usage_metadata for c in chunks[:-1]] == [None, None, None]
    assert chunks[-1].usage_metadata == {"input_tokens": 6, "output_tokens": 4, "total_tokens": 10}
    assert [c.response_metadata.get("model_name") for c in chunks] == [
        None,
        None,
        None,
        "gpt-4o-mini",
    ]
    full = merged(chunks)
    assert full.content == FLOWERS
    assert full.response_metadata["model_name"] == "gpt-4o-mini"
    assert full.usage_metadata == {"input_tokens": 6, "output_tokens": 4, "total_tokens": 10}


async def test_astream_and_ainvoke_match_the_sync_paths() -> None:
    model = FakeChatModel(script=[FLOWERS, FLOWERS])
    chunks = [c async for c in model.astream("hi")]
    assert [c.content for c in chunks] == ["Roses, ", "lilies ", "and ", "sunflowers."]
    msg = await model.ainvoke("hi")
    assert msg.content == merged(chunks).content == FLOWERS
    assert (
        msg.usage_metadata
        == merged(chunks).usage_metadata
        == {
            "input_tokens": 1,
            "output_tokens": 4,
            "total_tokens": 5,
        }
    )


def test_stream_fires_one_token_callback_per_chunk_and_no_extra_empty_token() -> None:
    handler = Events()
    model = FakeChatModel(script=["a b c"])
    list(model.stream("hi", config={"callbacks": [handler]}))
    assert handler.seen == ["start", "token:a ", "token:b ", "token:c", "end"]


def test_streaming_true_makes_invoke_stream_tokens_to_callbacks() -> None:
    handler = Events()
    model = FakeChatModel(script=["a b"], streaming=True)
    msg = model.invoke("hi", config={"callbacks": [handler]})
    assert msg.content == "a b"
    assert handler.seen == ["start", "token:a ", "token:b", "end"]
    assert model.last_call is not None
    assert model.last_call.streaming is True


def test_chunking_modes_as_streamed() -> None:
    model = FakeChatModel(
        script=[
            Turn("abcde", chunks=2),
            Turn("ab", chunks="chars"),
            Turn(chunks=["He", "llo"]),
            Turn("a1b22c", chunks=re.compile(r"\d+")),
        ]
    )
    assert [c.content for c in model.stream("x")] == ["ab", "cd", "e"]
    assert [c.content for c in model.stream("x")] == ["a", "b"]
    assert [c.content for c in model.stream("x")] == ["He", "llo"]
    assert [c.content for c in model.stream("x")] == ["a1", "b22c"]


def test_an_empty_turn_streams_one_empty_last_chunk() -> None:
    model = FakeChatModel(script=[Turn()])
    chunks = list(model.stream("x"))
    assert [(c.content, c.chunk_position) for c in chunks] == [("", "last")]
    assert chunks[0].usage_metadata == {"input_tokens": 1, "output_tokens": 0, "total_tokens": 1}


def test_chain_with_prompt_and_parser() -> None:
    model = FakeChatModel(script=[FLOWERS, FLOWERS])
    chain = ChatPromptTemplate.from_template("Flowers for {occasion}?") | model | StrOutputParser()
    assert chain.invoke({"occasion": "a birthday"}) == FLOWERS
    assert list(chain.stream({"occasion": "a wedding"})) == [
        "Roses, ",
        "lilies ",
        "and ",
        "sunflowers.",
    ]
    assert [c.last_human_message for c in model.calls] == [
        "Flowers for a birthday?",
        "Flowers for a wedding?",
    ]


# -- usage ----------------------------------------------------------------------------------------


def test_explicit_usage_and_details_are_reported_as_scripted() -> None:
    turn = Turn(
        "ok",
        usage={
            "input_tokens": 100,
            "output_tokens": 7,
            "input_token_details": {"cache_read": 40},
            "output_token_details": {"reasoning": 5},
        },
    )
    model = FakeChatModel(script=[turn, turn])
    expected = {
        "input_tokens": 100,
        "output_tokens": 7,
        "total_tokens": 107,
        "input_token_details": {"cache_read": 40},
        "output_token_details": {"reasoning": 5},
    }
    assert model.invoke("x").usage_metadata == expected
    assert merged(list(model.stream("x"))).usage_metadata == expected


def test_input_tokens_count_every_message_and_match_get_num_tokens_from_messages() -> None:
    model = FakeChatModel(script=["ok"])
    messages = [
        SystemMessage("You are a florist."),
        HumanMessage("My sister's birthday is tomorrow!"),
    ]
    # You|are|a|florist|. = 5; My|sister|'|s|birthday|is|tomorrow|! = 8
    assert model.get_num_tokens_from_messages(messages) == 13
    assert model.invoke(messages).usage_metadata == {
        "input_tokens": 13,
        "output_tokens": 1,
        "total_tokens": 14,
    }
    assert model.get_num_tokens("玫瑰 roses") == 3
    assert model.get_token_ids("roses roses") == [model.get_token_ids("roses")[0]] * 2


def test_stream_usage_false_reports_no_usage_when_streaming() -> None:
    model = FakeChatModel(script=["a b", "a b"], stream_usage=False)
    assert merged(list(model.stream("x"))).usage_metadata is None
    assert merged(list(model.stream("x", stream_usage=True))).usage_metadata == {
        "input_tokens": 1,
        "output_tokens": 2,
        "total_tokens": 3,
    }


# -- stop sequences and max_tokens ----------------------------------------------------------------


def test_stop_sequence_truncates_text_and_reports_stop() -> None:
    model = FakeChatModel(script=[FLOWERS, FLOWERS])
    msg = model.invoke("x", stop=["and"])
    assert msg.content == "Roses, lilies "
    assert msg.response_metadata["finish_reason"] == "stop"
    assert msg.usage_metadata is not None
    assert msg.usage_metadata["output_tokens"] == 2
    assert [c.content for c in model.stream("x", stop=["lil"])] == ["Roses, "]
    assert model.calls[0].stop == ("and",)


def test_stop_sequence_inside_a_chunk_cuts_that_chunk() -> None:
    model = FakeChatModel(script=[FLOWERS], stop=["ies"])
    assert [c.content for c in model.stream("x")] == ["Roses, ", "lil"]


def test_max_tokens_cuts_chunks_and_reports_length() -> None:
    model = FakeChatModel(script=[FLOWERS], max_tokens=2)
    msg = model.invoke("x")
    assert msg.content == "Roses, lilies "
    assert msg.response_metadata["finish_reason"] == "length"
    assert msg.usage_metadata == {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}


# -- model override and ls params -----------------------------------------------------------------


def test_per_call_model_override_shows_in_metadata_and_call_record() -> None:
    model = FakeChatModel(script=["a", "b"], model="gpt-4o-mini")
    assert model.invoke("x", model="gpt-4o").response_metadata["model_name"] == "gpt-4o"
    assert merged(list(model.stream("x", model="o3"))).response_metadata["model_name"] == "o3"
    assert [c.model for c in model.calls] == ["gpt-4o", "o3"]
    assert model._get_ls_params(model="o3")["ls_model_name"] == "o3"
    assert model._get_ls_params()["ls_model_name"] == "gpt-4o-mini"
    assert model._get_ls_params()["ls_provider"] == "fakellm"


def test_unknown_constructor_argument_is_rejected() -> None:
    # A TypeError, as Python's own "unexpected keyword argument" is.
    with pytest.raises(TypeError, match=r"unknown setting bogus=1\. Accepted settings: script,"):
        FakeChatModel(script=["a"], bogus=1)


def test_a_string_script_is_rejected_with_a_hint() -> None:
    with pytest.raises(errors.InvalidScript) as err:
        FakeChatModel(script="flowers.yaml")
    assert str(err.value) == (
        "invalid script: script: a script is a Script, a list of turns or a mapping; "
        "for a file use load_script(path), for one reply use [text] (got 'flowers.yaml')"
    )


# -- tool calls -----------------------------------------------------------------------------------


def test_tool_calls_invoke_with_deterministic_ids() -> None:
    model = FakeChatModel(
        script=[
            Turn(tool_calls=[ToolCall("get_price", {"flower": "rose"})]),
            Turn(tool_calls=[ToolCall("get_price", {"flower": "lily"}, id="mine")]),
        ]
    )
    bound = model.bind_tools([get_price])
    first = bound.invoke("price of a rose?")
    assert first.tool_calls == [
        {"name": "get_price", "args": {"flower": "rose"}, "id": "call_0_0", "type": "tool_call"}
    ]
    assert first.response_metadata["finish_reason"] == "tool_calls"
    assert bound.invoke("and a lily?").tool_calls[0]["id"] == "mine"


def test_tool_calls_stream_as_tool_call_chunks() -> None:
    model = FakeChatModel(
        script=[
            Turn(
                "Let me check.",
                tool_calls=[ToolCall("get_stock", {"flower": "rose", "shop": "east"})],
            )
        ]
    )
    chunks = list(model.bind_tools([get_stock]).stream("stock?"))
    assert [c.content for c in chunks] == ["Let ", "me ", "check.", "", ""]
    assert [c.tool_call_chunks for c in chunks[3:]] == [
        [
            {
                "name": "get_stock",
                "args": '{"flower": "rose", ',
                "id": "call_0_0",
                "index": 0,
                "type": "tool_call_chunk",
            }
        ],
        [
            {
                "name": None,
                "args": '"shop": "east"}',
                "id": None,
                "index": 0,
                "type": "tool_call_chunk",
            }
        ],
    ]
    full = merged(chunks)
    assert full.content == "Let me check."
    assert full.tool_calls == [
        {
            "name": "get_stock",
            "args": {"flower": "rose", "shop": "east"},
            "id": "call_0_0",
            "type": "tool_call",
        }
    ]
    assert full.usage_metadata is not None
    assert full.usage_metadata["output_tokens"] == 5


def test_a_message_with_only_tool_calls_streams() -> None:
    model = FakeChatModel(script=[Turn(tool_calls=[ToolCall("get_price", {"flower": "rose"})])])
    chunks = list(model.bind_tools([get_price]).stream("x"))
    assert len(chunks) == 1
    assert chunks[0].chunk_position == "last"
    assert merged(chunks).tool_calls[0]["args"] == {"flower": "rose"}


def test_calling_an_unbound_tool_names_the_bound_ones() -> None:
    model = FakeChatModel(script=[Turn(tool_calls=[ToolCall("get_weather")])])
    with pytest.raises(errors.UnknownToolError) as err:
        model.bind_tools([get_price, get_stock]).invoke("x")
    assert str(err.value) == (
        "FakeChatModel(model_name='fake-chat-model') call #0: the script calls tool "
        "'get_weather', which is not bound (bound tools: 'get_price', 'get_stock'). "
        "Bind it with model.bind_tools([...]), fix the tool name in the script, or set "
        "allow_unbound=True on the ToolCall to script a hallucinated tool."
    )


def test_bind_tools_records_tools_and_tool_choice() -> None:
    model = FakeChatModel(script=[Turn(tool_calls=[ToolCall("get_price", {"flower": "rose"})])])
    model.bind_tools([get_price], tool_choice="any").invoke("x", temperature=0.2)
    call = model.calls[0]
    assert call.tool_names == ("get_price",)
    assert call.tools[0]["type"] == "function"
    assert call.tool_choice == "any"
    assert dict(call.kwargs) == {"temperature": 0.2}


# -- structured output ----------------------------------------------------------------------------


class Bouquet(BaseModel):
    flowers: list[str]
    price: float


def test_structured_output_by_function_calling() -> None:
    model = FakeChatModel(
        script=[Turn(tool_calls=[ToolCall("Bouquet", {"flowers": ["rose"], "price": 9.5})])]
    )
    assert model.with_structured_output(Bouquet).invoke("x") == Bouquet(flowers=["rose"], price=9.5)
    assert model.calls[0].tool_choice == "any"


@pytest.mark.parametrize("method", ["json_schema", "json_mode"])
def test_structured_output_by_json(method: str) -> None:
    model = FakeChatModel(script=['{"flowers": ["lily"], "price": 4}'])
    result = model.with_structured_output(Bouquet, method=method).invoke("x")
    assert result == Bouquet(flowers=["lily"], price=4)
    response_format = model.calls[0].kwargs["response_format"]
    assert response_format["type"] == ("json_schema" if method == "json_schema" else "json_object")


def test_structured_output_include_raw() -> None:
    model = FakeChatModel(script=['{"flowers": [], "price": 0}'])
    out = model.with_structured_output(Bouquet, method="json_mode", include_raw=True).invoke("x")
    assert out["parsed"] == Bouquet(flowers=[], price=0)
    assert out["raw"].content == '{"flowers": [], "price": 0}'
    assert out["parsing_error"] is None


def test_structured_output_unknown_method() -> None:
    with pytest.raises(ValueError, match=r"method='xml' is not supported; accepted: "):
        FakeChatModel(script=[]).with_structured_output(Bouquet, method="xml")  # type: ignore[arg-type]


# -- content blocks, reasoning, output_version ----------------------------------------------------


def test_reasoning_streams_first_as_reasoning_blocks() -> None:
    model = FakeChatModel(
        script=[
            Turn("Roses.", reasoning="Birthday: cheerful."),
            Turn("Roses.", reasoning="Birthday: cheerful."),
        ]
    )
    chunks = list(model.stream("x"))
    assert [c.content for c in chunks] == [
        [{"type": "reasoning", "reasoning": "Birthday: ", "index": 0}],
        [{"type": "reasoning", "reasoning": "cheerful.", "index": 0}],
        [{"type": "text", "text": "Roses.", "index": 1}],
    ]
    full = merged(chunks)
    assert full.content == [
        {"type": "reasoning", "reasoning": "Birthday: cheerful.", "index": 0},
        {"type": "text", "text": "Roses.", "index": 1},
    ]
    assert full.text == "Roses."
    assert model.invoke("x").content == full.content


def test_output_version_v1_gives_standard_content_blocks() -> None:
    model = FakeChatModel(script=["a b", "a b"], output_version="v1")
    msg = model.invoke("x")
    assert msg.content == [{"type": "text", "text": "a b"}]
    assert msg.response_metadata["output_version"] == "v1"
    # Streamed blocks carry their index, as langchain-core adds it per chunk.
    assert merged(list(model.stream("x"))).content == [{"type": "text", "text": "a b", "index": 0}]


def test_v3_stream_events_assemble_the_scripted_message() -> None:
    model = FakeChatModel(script=[FLOWERS])
    stream = model.stream_events("x", version="v3")
    events = list(stream)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "message-start"
    assert kinds[-1] == "message-finish"
    assert kinds.count("content-block-delta") == 4
    message = stream.output
    assert message.text == FLOWERS
    assert model.calls[0].run_id is not None


# -- errors ---------------------------------------------------------------------------------------


def test_error_before_the_first_chunk() -> None:
    handler = Events()
    model = FakeChatModel(script=[Turn(error=errors.RateLimitError(retry_after=1.0))])
    with pytest.raises(errors.RateLimitError) as err:
        list(model.stream("x", config={"callbacks": [handler]}))
    assert err.value.retry_after == 1.0
    assert err.value.status_code == 429
    assert handler.seen == ["start", "error:RateLimitError"]


def test_error_at_chunk_n_streams_n_chunks_first() -> None:
    handler = Events()
    model = FakeChatModel(script=[Turn(FLOWERS, error=errors.APIConnectionError, at_chunk=2)])
    got: list[str] = []
    with pytest.raises(errors.APIConnectionError, match="connection error"):
        for chunk in model.stream("x", config={"callbacks": [handler]}):
            got.append(chunk.text)
    assert got == ["Roses, ", "lilies "]
    assert handler.seen == ["start", "token:Roses, ", "token:lilies ", "error:APIConnectionError"]


def test_error_after_the_last_chunk() -> None:
    model = FakeChatModel(
        script=[Turn("a b", error=errors.ServerError(status_code=503), at_chunk="end")]
    )
    got: list[str] = []
    with pytest.raises(errors.ServerError) as err:
        got.extend(c.text for c in model.stream("x"))
    assert got == ["a ", "b"]
    assert err.value.status_code == 503


async def test_errors_on_the_async_and_invoke_paths() -> None:
    model = FakeChatModel(
        script=[
            Turn("a b c", error=ValueError("boom"), at_chunk=1),
            Turn(error=errors.APITimeoutError),
        ]
    )
    got = []
    with pytest.raises(ValueError, match=r"^boom$"):
        async for chunk in model.astream("x"):
            got.append(chunk.text)
    assert got == ["a "]
    with pytest.raises(errors.APITimeoutError):
        await model.ainvoke("x")


def test_with_retry_recovers_from_a_scripted_rate_limit() -> None:
    model = FakeChatModel(script=[Turn(error=errors.RateLimitError), "recovered"])
    retrying = model.with_retry(
        retry_if_exception_type=(errors.RateLimitError,),
        wait_exponential_jitter=False,
        stop_after_attempt=2,
    )
    assert retrying.invoke("x").content == "recovered"
    assert model.call_count == 2


def test_with_fallbacks_moves_to_the_backup_model() -> None:
    primary = FakeChatModel(script=[Turn(error=errors.ServerError)], model="primary")
    backup = FakeChatModel(script=["from backup"], model="backup")
    assert primary.with_fallbacks([backup]).invoke("x").content == "from backup"


# -- strictness -----------------------------------------------------------------------------------


def test_a_call_past_the_script_raises_and_is_recorded() -> None:
    model = FakeChatModel(script=["only one"], model="gpt-4o-mini")
    model.invoke("first")
    with pytest.raises(errors.UnexpectedCall) as err:
        model.invoke([HumanMessage("second"), AIMessage("hm")])
    assert str(err.value) == (
        "FakeChatModel(model_name='gpt-4o-mini') received call #1 but its script has no "
        "answer for it.\nLast human message: 'second'\nThe script held: 1 turn, all used.\n"
        "Add a turn (or a rule) for this call, or set when_exhausted='cycle' / "
        "'repeat_last' on the Script."
    )
    assert model.call_count == 2
    assert [c.index for c in model.unexpected_calls] == [1]
    assert model.unexpected_calls[0].unexpected is err.value


def test_an_unexpected_call_swallowed_by_the_app_is_still_on_record() -> None:
    model = FakeChatModel(script=[])
    with contextlib.suppress(Exception):  # the app under test swallows errors
        model.invoke("x")
    assert len(model.unexpected_calls) == 1


def test_unused_turns_are_reported() -> None:
    model = FakeChatModel(
        script=Script(
            ["a", Turn(tool_calls=[ToolCall("f")])], rules=[Rule(match="x", respond="y", times=2)]
        )
    )
    model.invoke("hello")
    assert model.unused_turns == [
        "turns[1]: Turn(tool_calls=[f])",
        "rules[0]: Rule(match='x') (2 of 2 uses left)",
    ]
    with pytest.raises(errors.UnusedTurns) as err:
        model.assert_all_turns_used()
    assert str(err.value) == (
        "FakeChatModel(model_name='fake-chat-model') was scripted with turns it never "
        "played (1 call made):\n  - turns[1]: Turn(tool_calls=[f])\n"
        "  - rules[0]: Rule(match='x') (2 of 2 uses left)\n"
        "If that is on purpose, pass allow_unused=True (to the model, to fake_llm(...) or "
        "to @pytest.mark.fakellm), or end the script earlier."
    )


def test_allow_unused_silences_the_check_only() -> None:
    model = FakeChatModel(script=["a", "b"], allow_unused=True)
    model.invoke("x")
    model.assert_all_turns_used()
    assert model.unused_turns == ["turns[1]: Turn('b')"]


def test_all_turns_used_passes_silently() -> None:
    model = FakeChatModel(script=["a"])
    model.invoke("x")
    model.assert_all_turns_used()
    assert model.unused_turns == []


def test_exhaustion_policies() -> None:
    cycle = FakeChatModel(script=Script(["a", "b"], when_exhausted="cycle"))
    assert [cycle.invoke("x").content for _ in range(5)] == ["a", "b", "a", "b", "a"]
    last = FakeChatModel(script=Script(["a", "b"], when_exhausted="repeat_last"))
    assert [last.invoke("x").content for _ in range(4)] == ["a", "b", "b", "b"]


# -- rules ----------------------------------------------------------------------------------------


def test_rules_answer_matching_requests_before_the_queue() -> None:
    def echo(call: Call) -> str:
        return f"you said {call.last_human_message}"

    model = FakeChatModel(
        script=Script(
            ["queued"],
            rules=[
                Rule(match=r"\bprice\b", respond="2.50 euros", times=1),
                Rule(when=lambda c: "echo" in (c.last_human_message or ""), responder=echo),
            ],
        )
    )
    assert model.invoke("what is the price?").content == "2.50 euros"
    assert model.invoke("echo me").content == "you said echo me"
    assert model.invoke("echo again").content == "you said echo again"
    assert model.invoke("what is the price?").content == "queued"  # rule used up
    assert model.calls[0].turn is not None
    assert model.calls[0].turn.text == "2.50 euros"


def test_a_rule_can_require_bound_tools() -> None:
    model = FakeChatModel(
        script=Script(
            ["plain"],
            rules=[
                Rule(
                    tools=["get_price"],
                    respond=Turn(tool_calls=[ToolCall("get_price", {"flower": "rose"})]),
                )
            ],
        )
    )
    assert model.bind_tools([get_price]).invoke("x").tool_calls[0]["name"] == "get_price"
    assert model.invoke("x").content == "plain"


# -- call records ---------------------------------------------------------------------------------


def test_call_records_carry_run_id_tags_and_metadata_on_invoke_and_stream() -> None:
    handler = Events()
    model = FakeChatModel(script=["a", "b"], tags=["model-tag"])
    config: dict[str, Any] = {"callbacks": [handler], "tags": ["t1"], "metadata": {"user": "ann"}}
    model.invoke("x", config=config)
    list(model.stream("y", config=config))
    first, second = model.calls
    assert [first.run_id, second.run_id] == handler.run_ids
    assert (first.streaming, second.streaming) == (False, True)
    for call in (first, second):
        assert sorted(call.tags) == ["model-tag", "t1"]
        assert dict(call.metadata) == {"user": "ann"}


def test_call_records_in_a_chain_inherit_the_chain_tags() -> None:
    model = FakeChatModel(script=["a", "b"])
    chain = ChatPromptTemplate.from_template("{q}") | model
    chain.invoke({"q": "x"}, config={"tags": ["outer"]})
    list(chain.stream({"q": "y"}, config={"tags": ["outer"]}))
    assert [sorted(c.tags) for c in model.calls] == [
        ["outer", "seq:step:2"],
        ["outer", "seq:step:2"],
    ]


def test_calls_are_immutable_records() -> None:
    model = FakeChatModel(script=["a"])
    model.invoke("x")
    with pytest.raises(AttributeError):
        model.calls[0].index = 5  # type: ignore[misc]


# -- concurrency ----------------------------------------------------------------------------------


def test_batch_over_threads_takes_each_turn_exactly_once() -> None:
    texts = [f"answer {i}" for i in range(40)]
    model = FakeChatModel(script=texts)
    out = model.batch([f"q{i}" for i in range(40)], config={"max_concurrency": 8})
    assert sorted(m.content for m in out) == sorted(texts)
    assert sorted(c.index for c in model.calls) == list(range(40))
    # each call got the turn whose position is its index: the order calls started
    assert all(c.turn is not None and c.turn.text == f"answer {c.index}" for c in model.calls)


async def test_gather_takes_turns_in_the_order_calls_start() -> None:
    model = FakeChatModel(script=["first", "second", "third"])
    results = await asyncio.gather(model.ainvoke("a"), model.ainvoke("b"), model.ainvoke("c"))
    assert [r.content for r in results] == ["first", "second", "third"]
    assert [c.last_human_message for c in model.calls] == ["a", "b", "c"]


async def test_abatch_returns_results_in_input_order() -> None:
    model = FakeChatModel(script=["one", "two"])
    assert [m.content for m in await model.abatch(["a", "b"])] == ["one", "two"]


# -- delays (sync path: spent on the clock seam, never slept here) --------------------------------


def test_sync_stream_spends_scripted_delays_on_the_clock(waits: list[float]) -> None:
    model = FakeChatModel(script=[Turn(FLOWERS, first_token_delay=0.3, delay=[0.1, 0.2, 0.05])])
    list(model.stream("x"))
    assert waits == [0.3, 0.1, 0.2, 0.05]


def test_sync_invoke_spends_the_total_delay_at_once(waits: list[float]) -> None:
    model = FakeChatModel(
        script=[Turn(FLOWERS, first_token_delay=0.3, delay={"repeat": [0.1, 0.2]})]
    )
    model.invoke("x")
    assert waits == [pytest.approx(0.3 + 0.1 + 0.2 + 0.1)]


def test_sync_error_waits_until_the_failing_chunk(waits: list[float]) -> None:
    model = FakeChatModel(
        script=[Turn(FLOWERS, first_token_delay=1.0, delay=0.5, error=ValueError, at_chunk=2)]
    )
    with pytest.raises(ValueError, match=r"^$"):
        model.invoke("x")
    assert waits == [pytest.approx(2.0)]


def test_replaying_a_turn_leaves_earlier_results_and_the_template_untouched() -> None:
    model = FakeChatModel(script=Script([FLOWERS], when_exhausted="repeat_last"))
    first = list(model.stream("x"))
    second = list(model.stream("x", stop=["and"]))
    third = list(model.stream("x"))
    assert [c.chunk_position for c in first] == [None, None, None, "last"]
    assert [c.chunk_position for c in second] == [None, "last"]
    assert [c.chunk_position for c in third] == [None, None, None, "last"]
    assert [c.usage_metadata is None for c in third] == [True, True, True, False]
    assert first[0].id != third[0].id  # each run's own id, not the previous one's
    assert [c.content for c in first] == ["Roses, ", "lilies ", "and ", "sunflowers."]


def test_responder_turns_stream_the_same_every_call() -> None:
    model = FakeChatModel(script=Script(rules=[Rule(responder=lambda call: "a b c")]))
    assert [c.content for c in model.stream("x")] == ["a ", "b ", "c"]
    assert [c.content for c in model.stream("x")] == ["a ", "b ", "c"]


def test_breaking_out_of_astream_in_a_scenario_is_cleanup_not_a_leak() -> None:
    from fakellm import Recorder, run_scenario
    from fakellm.assertions import assert_well_formed

    recorder = Recorder()
    model = FakeChatModel(script=[Turn("a b c d", delay=1)])

    async def first_word() -> str:
        async for chunk in model.astream("x", config={"callbacks": [recorder]}):
            return chunk.text
        return ""

    outcome = run_scenario(first_word())
    assert outcome.results == ("a ",)
    assert outcome.elapsed == 0
    assert recorder.events.kinds() == ["chat_model_start", "llm_new_token", "llm_error"]
    assert_well_formed(recorder.events)


def test_a_cancellation_cannot_be_scripted() -> None:
    # CancelledError is a BaseException: a provider cannot raise it, only the app's
    # own cancellation can (tests/reliability/test_cancel.py cancels real calls).
    with pytest.raises(errors.InvalidScript, match="CancelledError is not an Exception subclass"):
        FakeChatModel(script=[Turn("a", error=asyncio.CancelledError)])


def test_callbacks_receive_the_models_label_as_its_serialized_repr() -> None:
    class Serialized(BaseCallbackHandler):
        def __init__(self) -> None:
            self.seen: list[Any] = []

        def on_chat_model_start(self, serialized: Any, messages: Any, **kw: Any) -> None:
            self.seen.append(serialized)

    handler = Serialized()
    model = FakeChatModel(script=[Turn("word " * 500)] * 3, model_name="gpt-fake")
    model.invoke("x", config={"callbacks": [handler]})
    list(model.stream("x", config={"callbacks": [handler]}))
    assert handler.seen == 2 * [
        {
            "lc": 1,
            "type": "not_implemented",
            "id": ["fakellm", "_model", "FakeChatModel"],
            "repr": "FakeChatModel(model_name='gpt-fake')",
            "name": "FakeChatModel",
        }
    ]
