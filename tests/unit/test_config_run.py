"""config_run's shortcut (no ensure_config, no configure) gives what the full path gives.

The shortcut is taken when no tags or metadata can come from anywhere; the run
id, the run's tags and metadata, and the config core ends up with must be the
ones the full path (ensure_config, then configure as core does) works out.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler, CallbackManager
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.runnables.config import ensure_config
from langsmith.run_helpers import tracing_context

from fakellm import FakeChatModel
from fakellm._model import _RunInfo, config_run

RUN = uuid.UUID(int=5)
HANDLER = BaseCallbackHandler()


def full_path(model: Any, config: RunnableConfig | None) -> tuple[RunnableConfig, _RunInfo]:
    """What config_run computed before it had a shortcut (the reference)."""
    config = ensure_config(config)
    if config.get("run_id") is None:
        config["run_id"] = RUN
    manager = CallbackManager.configure(
        config.get("callbacks"),
        None,
        False,
        config.get("tags"),
        model.tags,
        config.get("metadata"),
        model.metadata,
    )
    meta = {k: v for k, v in manager.metadata.items() if not k.startswith("ls_")}
    return config, _RunInfo(config["run_id"], tuple(manager.tags), meta)


PLAIN: dict[str, RunnableConfig | None] = {
    "none": None,
    "empty": {},
    "a handler": {"callbacks": [HANDLER]},
    "no callbacks": {"callbacks": None},
    "a run id": {"run_id": RUN},
    "no run id": {"run_id": None, "callbacks": [HANDLER]},
    "empty tags and metadata": {"tags": [], "metadata": {}},
    "name and limits": {"run_name": "named", "recursion_limit": 7, "max_concurrency": 2},
}


@pytest.mark.parametrize("config", PLAIN.values(), ids=list(PLAIN))
def test_the_shortcut_gives_what_the_full_path_gives(
    config: RunnableConfig | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("langchain_core.callbacks.manager.uuid7", lambda: RUN)
    model = FakeChatModel()
    given = None if config is None else dict(config)
    got, info = config_run(model, config)
    want, want_info = full_path(model, config)
    assert info == want_info == _RunInfo(RUN, (), {})
    assert ensure_config(got) == ensure_config(want)  # what core makes of it
    assert got["run_id"] == RUN
    assert config == given  # the caller's config is left alone


MERGING: list[tuple[str, RunnableConfig, dict[str, Any]]] = [
    ("tags", {"tags": ["t"]}, {}),
    ("metadata", {"metadata": {"k": 1}}, {}),
    ("configurable model", {"configurable": {"model": "m"}}, {}),
    ("an unknown key", {"model": "m"}, {}),  # ensure_config moves it to configurable
    ("a manager", {"callbacks": CallbackManager([HANDLER], tags=["mt"], metadata={"a": 1})}, {}),
    ("model tags", {}, {"tags": ["model-tag"]}),
    ("model metadata", {}, {"metadata": {"m": 2}}),
]


@pytest.mark.parametrize(
    ("config", "fields"), [(c, f) for _, c, f in MERGING], ids=[n for n, _, _ in MERGING]
)
def test_anything_that_brings_tags_or_metadata_takes_the_full_path(
    config: RunnableConfig, fields: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("langchain_core.callbacks.manager.uuid7", lambda: RUN)
    model = FakeChatModel(**fields)
    got, info = config_run(model, config)
    want, want_info = full_path(model, config)
    assert info == want_info
    assert info != _RunInfo(RUN, (), {})  # each brings something
    assert strip(got) == strip(want)


def strip(config: RunnableConfig) -> dict[str, Any]:
    """``config`` with a callback manager (which ensure_config copies) by its contents."""
    out: dict[str, Any] = dict(config)
    if isinstance(out.get("callbacks"), CallbackManager):
        out["callbacks"] = vars(out["callbacks"])
    return out


def test_a_config_from_an_enclosing_runnable_and_langsmith_tags_are_merged() -> None:
    model = FakeChatModel()
    seen: list[_RunInfo] = []

    def inner(_: Any) -> None:
        seen.append(config_run(model, None)[1])  # config from the context, as core reads it

    RunnableLambda(inner).invoke("x", config={"tags": ["outer"], "metadata": {"o": 1}})
    with tracing_context(tags=["ls-tag"]):
        seen.append(config_run(model, {"callbacks": [HANDLER]})[1])
    assert seen[0].tags == ("outer",)
    assert seen[0].metadata == {"o": 1}
    assert seen[1].tags == ("ls-tag",)
