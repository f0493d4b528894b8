"""The curated public API is exactly what fakellm promises, and all of it is typed."""

from __future__ import annotations

import inspect
from pathlib import Path

import fakellm
from fakellm import errors

PROMISED = {
    "FakeChatModel", "FakeLLM",
    "Script", "Turn", "Chunk", "ToolCall", "load_script", "Rule", "Call", "Usage",
    "Recorder", "EventLog", "Event",
    "virtual_time", "run_scenario", "stop_virtual_time",
    "errors",
    "intercept", "Interception", "dump_script",
}  # fmt: skip


def test_all_is_the_promised_api() -> None:
    assert set(fakellm.__all__) == PROMISED
    for name in fakellm.__all__:
        assert getattr(fakellm, name) is not None


def test_every_error_named_in_errors_all_is_an_exception() -> None:
    for name in errors.__all__:
        obj = getattr(errors, name)
        if name == "ScriptProblem":
            continue
        assert issubclass(obj, Exception), name


def test_harness_errors_derive_from_the_base_and_the_expected_builtins() -> None:
    assert issubclass(errors.InvalidScript, TypeError)
    assert issubclass(errors.UnusedTurns, AssertionError)
    assert issubclass(errors.LeakedTasks, AssertionError)
    assert issubclass(errors.DeadlockError, RuntimeError)
    assert issubclass(errors.NetworkBlocked, OSError)
    for cls in (errors.InvalidScript, errors.UnexpectedCall, errors.UnknownToolError):
        assert issubclass(cls, errors.FakeLLMError)


def test_package_ships_py_typed() -> None:
    assert (Path(fakellm.__file__).parent / "py.typed").is_file()


def test_public_functions_are_annotated() -> None:
    for name in (
        "load_script",
        "virtual_time",
        "run_scenario",
        "stop_virtual_time",
        "intercept",
        "dump_script",
    ):
        sig = inspect.signature(getattr(fakellm, name))
        assert sig.return_annotation is not inspect.Signature.empty, name
        for param in sig.parameters.values():
            if param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                assert param.annotation is not inspect.Parameter.empty, (name, param.name)
