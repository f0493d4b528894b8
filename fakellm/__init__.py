"""fakellm: offline, deterministic fake LLMs for testing LangChain apps.

The curated public API; everything else lives in private modules. Submodules
``fakellm.errors`` and ``fakellm.assertions`` are public too, and
``fakellm.fixtures`` is the pytest plugin (loaded automatically).
"""

from importlib.metadata import PackageNotFoundError, version

from fakellm import errors
from fakellm._clock import run_scenario, virtual_time
from fakellm._events import Event, EventLog
from fakellm._model import FakeChatModel, FakeLLM
from fakellm._recorder import Recorder
from fakellm._script import Call, Rule, Script, ToolCall, Turn, Usage, load_script

try:
    __version__: str = version("langchain-fakellm")
    """The installed distribution's version (``langchain-fakellm`` on PyPI)."""
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

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
