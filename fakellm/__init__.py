"""fakellm: offline, deterministic fake LLMs for testing LangChain apps.

The curated public API; everything else lives in private modules. Submodules
``fakellm.errors`` and ``fakellm.assertions`` are public too, and
``fakellm.fixtures`` is the pytest plugin (loaded automatically).

Names are imported on first use, so loading the pytest plugin (which imports
this package) does not import LangChain in suites that never use fakellm.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from fakellm import errors

if TYPE_CHECKING:
    from fakellm._cassette import dump_script
    from fakellm._clock import stop_virtual_time
    from fakellm._events import Event, EventLog
    from fakellm._intercept import Interception, intercept
    from fakellm._model import FakeChatModel, FakeLLM
    from fakellm._recorder import Recorder
    from fakellm._scenario import run_scenario, virtual_time
    from fakellm._script import Call, Chunk, Rule, Script, ToolCall, Turn, Usage, load_script

try:
    __version__: str = version("langchain-fakellm")
    """The installed distribution's version (``langchain-fakellm`` on PyPI)."""
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Call",
    "Chunk",
    "Event",
    "EventLog",
    "FakeChatModel",
    "FakeLLM",
    "Interception",
    "Recorder",
    "Rule",
    "Script",
    "ToolCall",
    "Turn",
    "Usage",
    "dump_script",
    "errors",
    "intercept",
    "load_script",
    "run_scenario",
    "stop_virtual_time",
    "virtual_time",
]

_HOMES = {
    "dump_script": "fakellm._cassette",
    "Interception": "fakellm._intercept",
    "intercept": "fakellm._intercept",
    "Event": "fakellm._events",
    "EventLog": "fakellm._events",
    "FakeChatModel": "fakellm._model",
    "FakeLLM": "fakellm._model",
    "Recorder": "fakellm._recorder",
    "run_scenario": "fakellm._scenario",
    "stop_virtual_time": "fakellm._clock",
    "virtual_time": "fakellm._scenario",
    **dict.fromkeys(
        ("Call", "Chunk", "Rule", "Script", "ToolCall", "Turn", "Usage", "load_script"),
        "fakellm._script",
    ),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        msg = f"module {__name__!r} has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
