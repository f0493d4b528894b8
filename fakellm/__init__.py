"""fakellm: offline, deterministic fake LLMs for testing LangChain apps.

The curated public API; everything else lives in private modules. Submodules
``fakellm.errors`` and ``fakellm.assertions`` are public too, and
``fakellm.fixtures`` is the pytest plugin (loaded automatically).
"""

from fakellm import errors
from fakellm._cassette import dump_script
from fakellm._clock import run_scenario, virtual_time
from fakellm._events import Event, EventLog
from fakellm._intercept import Interception, intercept
from fakellm._model import FakeChatModel, FakeLLM
from fakellm._recorder import Recorder
from fakellm._script import Call, Rule, Script, ToolCall, Turn, Usage, load_script

__all__ = [
    "Call",
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
    "virtual_time",
]
