"""fakellm: offline, deterministic fake LLMs for testing LangChain apps."""

from fakellm import errors
from fakellm._model import FakeChatModel, FakeLLM
from fakellm._script import Call, Rule, Script, ToolCall, Turn, Usage, load_script

__all__ = [
    "Call",
    "FakeChatModel",
    "FakeLLM",
    "Rule",
    "Script",
    "ToolCall",
    "Turn",
    "Usage",
    "errors",
    "load_script",
]
