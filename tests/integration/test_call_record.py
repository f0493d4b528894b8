"""A call record is built once, and says what core's own run says.

``stream``/``astream`` work out the run's tags and metadata before core starts
the run (``_stream`` gets no run manager); when nothing can contribute any, no
callback manager is configured for it. These tests hold every record to what a
callback handler receives for the same run, in each way tags and metadata can
arrive: the call's config, the model's own fields, a parent run's manager, a
LangSmith tracing context and a config's ``configurable`` values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.prompts import ChatPromptTemplate
from langsmith.run_helpers import tracing_context

from fakellm import Call, FakeChatModel, Rule, Script, Turn


class Starts(BaseCallbackHandler):
    """Each chat model run's id, tags and metadata, as core started it."""

    def __init__(self) -> None:
        self.runs: list[tuple[UUID, list[str], dict[str, Any]]] = []

    def on_chat_model_start(
        self,
        serialized: Any,
        messages: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self.runs.append((run_id, list(tags or []), dict(metadata or {})))


def _direct(model: Any, config: dict[str, Any], path: str) -> None:
    if path == "stream":
        list(model.stream("hi", config=config))
    elif path == "astream":

        async def drain() -> None:
            async for _ in model.astream("hi", config=config):
                pass

        asyncio.run(drain())
    else:
        model.invoke("hi", config=config)


def _in_chain(model: Any, config: dict[str, Any], path: str) -> None:
    # The model's callbacks arrive as the chain's child manager, with the chain's tags.
    _direct(ChatPromptTemplate.from_template("{q}") | model, config, path)


CASES: dict[str, tuple[dict[str, Any], dict[str, Any], Callable[..., None], dict[str, Any]]] = {
    # name: (model settings, config, how it is called, tracing context)
    "nothing": ({}, {}, _direct, {}),
    "config tags": ({}, {"tags": ["t1", "t2"]}, _direct, {}),
    "config metadata": ({}, {"metadata": {"user": "ann", "ls_x": 1}}, _direct, {}),
    "model tags and metadata": ({"tags": ["m"], "metadata": {"team": "a"}}, {}, _direct, {}),
    "configurable": ({}, {"configurable": {"thread_id": "th-1"}}, _direct, {}),
    "parent run": ({}, {}, _in_chain, {}),
    "parent run with tags": ({}, {"tags": ["outer"]}, _in_chain, {}),
    "tracing context tags": ({}, {}, _direct, {"tags": ["traced"]}),
}


@pytest.mark.parametrize("path", ["stream", "astream", "invoke"])
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_a_call_record_carries_the_runs_own_tags_and_metadata(case: str, path: str) -> None:
    settings, config, call, context = CASES[case]
    model = FakeChatModel(script=["a"], **settings)
    starts = Starts()
    with tracing_context(**context):
        call(model, {**config, "callbacks": [starts]}, path)
    (record,) = model.calls
    model_runs = [r for r in starts.runs if r[0] == record.run_id]
    assert len(model_runs) == 1
    _, tags, metadata = model_runs[0]
    assert (sorted(record.tags), dict(record.metadata)) == (
        sorted(tags),
        {k: v for k, v in metadata.items() if not k.startswith("ls_")},
    )


def test_the_records_of_a_plain_script_are_complete_and_immutable() -> None:
    turns = [Turn("a"), Turn("b")]
    model = FakeChatModel(script=turns)
    model.invoke("x")
    list(model.stream("y"))
    assert [(c.index, c.turn, c.streaming) for c in model.calls] == [
        (0, turns[0], False),
        (1, turns[1], True),
    ]
    with pytest.raises(AttributeError):
        model.calls[0].turn = None  # type: ignore[misc]


def test_a_call_a_rule_saw_is_not_changed_afterwards() -> None:
    seen: list[Call] = []

    def when(call: Call) -> bool:
        seen.append(call)
        return "price" in (call.last_human_message or "")

    answer = Turn("It costs 3.")
    model = FakeChatModel(script=Script(["hello"], rules=[Rule(when=when, respond=answer)]))
    model.invoke("hi")
    model.invoke("the price?")
    # What the predicate was handed stays as it was: index set, no turn yet.
    assert [(c.index, c.turn) for c in seen] == [(0, None), (1, None)]
    assert [c.turn.text for c in model.calls if c.turn] == ["hello", "It costs 3."]


@pytest.mark.parametrize("path", ["stream", "astream", "invoke"])
def test_a_run_the_app_does_not_name_gets_an_id_like_cores_own(path: str) -> None:
    # Core names a run it starts with a time-ordered UUIDv7; stream and astream
    # name theirs up front (to record it) and must not differ from it.
    model = FakeChatModel(script=["a", "b"])
    starts = Starts()
    _direct(model, {"callbacks": [starts]}, path)
    _direct(model, {"callbacks": [starts]}, path)
    first, second = (run_id for run_id, _, _ in starts.runs)
    assert [c.run_id for c in model.calls] == [first, second]
    assert (first.version, second.version) == (7, 7)
