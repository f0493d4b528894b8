"""fakellm's runs get their ids where core's runs get theirs.

The models choose a run's id before core starts the run (so they can close it
if a cancellation leaves it open). A test that patches the generator core's
callback manager calls, to get known run ids, must get them from fakellm's
runs too, on every path, as it does from a model that does not choose.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import manager
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage

from fakellm import FakeChatModel, FakeLLM, Recorder, Turn


def _known_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    counter: Iterator[int] = iter(range(1, 1000))
    monkeypatch.setattr(manager, "uuid7", lambda: UUID(int=next(counter)))


def _drain(call: str, model: Any, rec: Recorder) -> None:
    config: Any = {"callbacks": [rec]}
    if call == "invoke":
        model.invoke("hi", config)
    elif call == "stream":
        list(model.stream("hi", config))
    elif call == "ainvoke":
        asyncio.run(model.ainvoke("hi", config))
    else:

        async def drain() -> None:
            async for _ in model.astream("hi", config):
                pass

        asyncio.run(drain())


CALLS = ["invoke", "stream", "ainvoke", "astream"]
MODELS: dict[str, Callable[[], Any]] = {
    "FakeChatModel": lambda: FakeChatModel(script=[Turn("a b")]),
    "FakeLLM": lambda: FakeLLM(script=[Turn("a b")]),
}


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("call", CALLS)
def test_a_run_takes_its_id_from_core_s_generator(
    monkeypatch: pytest.MonkeyPatch, call: str, model: str
) -> None:
    _known_ids(monkeypatch)
    rec = Recorder()
    _drain(call, MODELS[model](), rec)
    assert {ev.run_id for ev in rec.events} == {UUID(int=1)}


@pytest.mark.parametrize("call", CALLS)
def test_core_s_own_fake_takes_the_same_id(monkeypatch: pytest.MonkeyPatch, call: str) -> None:
    # The premise: a model that lets core name its run gets the patched id.
    _known_ids(monkeypatch)
    rec = Recorder()
    _drain(call, GenericFakeChatModel(messages=iter([AIMessage("a b")])), rec)
    assert {ev.run_id for ev in rec.events} == {UUID(int=1)}
