"""What a provider does that the fake got wrong: each test here failed before its fix.

Stop sequences given as one string, ``generate``'s ``llm_output``, ``max_tokens``
cutting a tool call's arguments, per-prompt run ids, copies and pickling,
configurable models, reasoning tokens, and model-setting typos.
"""

from __future__ import annotations

import copy
import pickle
from functools import reduce
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import HumanMessage
from langchain_core.runnables import ConfigurableField

from fakellm import FakeChatModel, FakeLLM, Script, ToolCall, Turn
from fakellm._script import stub_tools

REPLY = "Daisies are red END and violets blue"


def _streamed(model: Any, prompt: str = "?", **kwargs: Any) -> Any:
    return reduce(lambda a, b: a + b, model.stream(prompt, **kwargs))


def _text(reply: Any) -> str:
    return reply if isinstance(reply, str) else reply.text


# --- stop given as one string ----------------------------------------------------------


@pytest.mark.parametrize("path", ["invoke", "stream", "bind", "setting"])
def test_a_stop_string_is_one_stop_sequence(path: str) -> None:
    if path == "setting":
        model: Any = FakeChatModel(script=[REPLY], stop="END")
        assert model.stop == ["END"]
        got = model.invoke("?").text
    elif path == "bind":
        got = FakeChatModel(script=[REPLY]).bind(stop="END").invoke("?").text
    elif path == "stream":
        got = _streamed(FakeChatModel(script=[REPLY]), stop="END").text
    else:
        got = FakeChatModel(script=[REPLY]).invoke("?", stop="END").text
    assert got == "Daisies are red "


def test_a_stop_string_is_one_stop_sequence_for_the_llm() -> None:
    assert FakeLLM(script=[REPLY]).invoke("?", stop="END") == "Daisies are red "
    assert FakeLLM(script=[REPLY], stop="END").invoke("?") == "Daisies are red "
    llm = FakeLLM(script=[REPLY])
    llm.invoke("?", stop="END")
    assert llm.calls[0].stop == ("END",)


# --- generate's llm_output -------------------------------------------------------------


def test_chat_generate_sums_token_usage_in_llm_output() -> None:
    model = FakeChatModel(script=["a b", "c"], model="gpt-4o-mini")
    result = model.generate([[HumanMessage("x")], [HumanMessage("y y")]])
    usages = [g[0].message.usage_metadata for g in result.generations]
    assert [(u["input_tokens"], u["output_tokens"]) for u in usages] == [(1, 2), (2, 1)]
    assert result.llm_output == {
        "token_usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
        "model_name": "gpt-4o-mini",
    }


# --- max_tokens inside a tool call's arguments ---------------------------------------------

CUT = Turn(tool_calls=[ToolCall("price", {"flower": "rose", "size": "large"})])


@pytest.mark.parametrize("max_tokens", [1, 2])
def test_max_tokens_cuts_tool_arguments_the_same_on_invoke_and_stream(max_tokens: int) -> None:
    tools = stub_tools(Script([CUT]))
    model = FakeChatModel(script=[CUT, CUT], max_tokens=max_tokens).bind_tools(tools)
    invoked = model.invoke("?")
    streamed = _streamed(model)
    expected = {"flower": "rose"} if max_tokens == 1 else {"flower": "rose", "size": "large"}
    assert [c["args"] for c in invoked.tool_calls] == [expected]
    assert [c["args"] for c in streamed.tool_calls] == [expected]
    assert invoked.invalid_tool_calls == streamed.invalid_tool_calls == []
    assert invoked.response_metadata["finish_reason"] == (
        "length" if max_tokens == 1 else "tool_calls"
    )


# --- FakeLLM.generate with several prompts -------------------------------------------------


class _Starts(BaseCallbackHandler):
    def __init__(self) -> None:
        self.run_ids: list[Any] = []

    def on_llm_start(self, serialized: Any, prompts: Any, *, run_id: Any, **kw: Any) -> None:
        self.run_ids.append(run_id)


@pytest.mark.parametrize("streaming", [False, True])
async def test_each_prompt_of_a_generate_is_recorded_under_its_own_run(streaming: bool) -> None:
    llm = FakeLLM(script=["a", "b", "c", "d"], streaming=streaming)
    starts = _Starts()
    result = llm.generate(["p", "q"], callbacks=[starts])
    assert [c.run_id for c in llm.calls] == [r.run_id for r in result.run] == starts.run_ids
    assert len(set(starts.run_ids)) == 2
    result = await llm.agenerate(["r", "s"])
    assert [c.run_id for c in llm.calls[2:]] == [r.run_id for r in result.run]
    assert [c.prompt for c in llm.calls] == ["p", "q", "r", "s"]


# --- copies ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make_copy",
    [
        copy.copy,
        copy.deepcopy,
        lambda m: m.model_copy(),
        lambda m: m.model_copy(deep=True),
        lambda m: pickle.loads(pickle.dumps(m)),
    ],
    ids=["copy", "deepcopy", "model_copy", "model_copy(deep)", "pickle"],
)
@pytest.mark.parametrize("cls", [FakeChatModel, FakeLLM])
def test_a_copy_keeps_the_script_and_starts_afresh(cls: Any, make_copy: Any) -> None:
    model = cls(script=["one", "two"], model="m", temperature=0.5, tags=["t"])
    first = model.invoke("?")
    twin = make_copy(model)
    assert twin.script == model.script
    assert (twin.model_name, twin.temperature, twin.tags) == ("m", 0.5, ["t"])
    assert twin.calls == []
    assert twin.unused_turns == ["turns[0]: Turn('one')", "turns[1]: Turn('two')"]
    assert _text(twin.invoke("?")) == _text(first) == "one"
    assert _text(model.invoke("?")) == "two"
    assert (model.call_count, twin.call_count) == (2, 1)


def test_model_copy_update_is_validated_and_checked() -> None:
    model = FakeChatModel(script=["old"])
    assert model.model_copy(update={"script": ["new"]}).invoke("?").text == "new"
    with pytest.raises(TypeError, match=r"unknown setting scirpt=\[\] \(did you mean 'script'\?\)"):
        model.model_copy(update={"scirpt": []})


# --- configurable models ---------------------------------------------------------------------


def test_a_configurable_model_plays_its_turns_once_per_call() -> None:
    model = FakeChatModel(script=["one", "two", "three"])
    configurable = model.configurable_fields(
        temperature=ConfigurableField(id="temperature", name="temperature")
    )
    assert configurable.invoke("a", config={"configurable": {"temperature": 0.1}}).text == "one"
    assert configurable.invoke("b").text == "two"
    assert configurable.invoke("c", config={"configurable": {"temperature": 0.9}}).text == "three"
    assert [c.last_human_message for c in model.calls] == ["a", "b", "c"]
    assert [c.index for c in model.calls] == [0, 1, 2]
    assert model.unused_turns == []


def test_configurable_alternatives_record_each_call_on_the_model_that_answered() -> None:
    main = FakeChatModel(script=["main"], model="main")
    other = FakeChatModel(script=["other"], model="other")
    chooser = main.configurable_alternatives(
        ConfigurableField(id="llm"), default_key="main", other=other
    )
    assert chooser.invoke("x", config={"configurable": {"llm": "other"}}).text == "other"
    assert chooser.invoke("y").text == "main"
    assert (main.call_count, other.call_count) == (1, 1)


def test_configurable_fields_refuses_a_name_that_is_not_a_setting() -> None:
    with pytest.raises(ValueError, match=r"configurable_fields got 'temprature'"):
        FakeChatModel().configurable_fields(temprature=ConfigurableField(id="t"))


# --- reasoning tokens ----------------------------------------------------------------------------


def test_reasoning_chunks_are_reported_as_reasoning_tokens() -> None:
    turn = Turn("Roses.", reasoning="The user likes red flowers.")
    model = FakeChatModel(script=[turn, turn])
    expected = {
        "input_tokens": 1,
        "output_tokens": 6,
        "total_tokens": 7,
        "output_token_details": {"reasoning": 5},
    }
    assert model.invoke("?").usage_metadata == expected
    assert _streamed(model).usage_metadata == expected


# --- model-setting typos -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "kwargs", "start"),
    [
        (FakeChatModel, {"max_token": 5}, "FakeChatModel got an unknown setting max_token=5 "),
        (FakeChatModel, {"scirpt": []}, "FakeChatModel got an unknown setting scirpt=[] "),
        (FakeLLM, {"modle": "x"}, "FakeLLM got an unknown setting modle='x' "),
    ],
)
def test_a_setting_typo_lists_the_accepted_settings(cls: Any, kwargs: Any, start: str) -> None:
    with pytest.raises(TypeError) as info:
        cls(**kwargs)
    text = str(info.value)
    assert text.startswith(start)
    assert "Extra inputs are not permitted" not in text
    assert "Accepted settings: script, model_name, provider, " in text
    assert "; and LangChain's name, cache, verbose, callbacks, tags, metadata" in text


def test_a_setting_typo_suggests_the_likely_setting() -> None:
    with pytest.raises(TypeError, match=r"max_token=5 \(did you mean 'max_tokens'\?\)\."):
        FakeChatModel(max_token=5)
