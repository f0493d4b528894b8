"""fakellm: offline, deterministic fake LLMs for testing LangChain apps.

The curated public API; everything else lives in private modules. Submodules
``fakellm.errors`` and ``fakellm.assertions`` are public too, and
``fakellm.fixtures`` is the pytest plugin (loaded automatically).
"""

from fakellm import errors
from fakellm._events import Event, EventLog
from fakellm._model import FakeChatModel, FakeLLM
from fakellm._recorder import Recorder
from fakellm._scenario import run_scenario, virtual_time
from fakellm._script import Call, Rule, Script, ToolCall, Turn, Usage, load_script

__all__ = [
    "Call",
    "Event",
    "EventLog",
    "FakeChatModel",
    "FakeLLM",
    "Recorder",
    "Rule",
    "Script",
    "ToolCall",
    "Turn",
    "Usage",
    "errors",
    "load_script",
    "run_scenario",
    "virtual_time",
]
