"""Request summaries and fingerprints: stable across processes, free of secrets and addresses."""

from __future__ import annotations

import os
import subprocess
import sys

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from fakellm._cassette import request_summary

PROGRAM = """
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from fakellm._cassette import request_summary

messages = [
    SystemMessage("You sell flowers."),
    HumanMessage("What does a rose cost?"),
    AIMessage("", tool_calls=[{"name": "get_price", "args": {"flower": "rose"}, "id": "c1"}]),
    ToolMessage("4.5", tool_call_id="c1"),
]
tools = [{"type": "function", "function": {"name": "get_price", "parameters": {
    "type": "object", "properties": {"flower": {"type": "string"}, "stems": {"type": "integer"}}}}}]
kwargs = {"tools": tools, "tool_choice": "auto", "extra": {"b", "a", "c"}, "seed": 7}
ls = {"ls_provider": "openai", "ls_model_name": "gpt-4o-mini", "ls_temperature": 0.0}
print(request_summary(messages, kwargs, ls)["fingerprint"])
"""


def _fingerprint_in_a_fresh_process(seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_fingerprint_is_the_same_in_every_process_and_hash_seed() -> None:
    prints: list[str] = []
    exec(PROGRAM.replace("print(", "prints.append("), {"prints": prints})  # this process
    assert {_fingerprint_in_a_fresh_process(seed) for seed in ("0", "1", "4242")} == {prints[0]}


def test_the_summary_is_readable_and_leaves_out_secrets_ids_and_addresses() -> None:
    class Opaque:
        pass

    messages = [
        HumanMessage("hi"),
        AIMessage(
            [{"type": "text", "text": "Let me check."}, {"type": "tool_use", "id": "toolu_9"}],
            tool_calls=[{"name": "get_price", "args": {"flower": "rose"}, "id": "toolu_9"}],
        ),
        ToolMessage("4.5", tool_call_id="toolu_9"),
    ]
    kwargs = {"api_key": "sk-secret", "extra_headers": {"x": "y"}, "stream": True, "obj": Opaque()}
    summary = request_summary(messages, kwargs, {"ls_provider": "x", "ls_model_type": "chat"})

    assert summary["messages"] == [
        {"human": "hi"},
        {"ai": "Let me check.", "tool_calls": [{"name": "get_price", "args": {"flower": "rose"}}]},
        {"tool": "4.5"},
    ]
    assert summary["settings"] == {
        "provider": "x",
        "obj": f"<{Opaque.__module__}.{Opaque.__qualname__} object>",  # no "at 0x..."
    }
    again = request_summary(messages, {**kwargs, "obj": Opaque()}, {"ls_provider": "x"})
    assert again["fingerprint"] == summary["fingerprint"]


def test_scrub_rewrites_the_request_it_fingerprints() -> None:
    def scrub(text: str) -> str:
        return text.replace("alice", "<name>")

    plain = request_summary([HumanMessage("hi alice")], {}, {})
    scrubbed = request_summary([HumanMessage("hi alice")], {}, {}, scrub=scrub)
    assert scrubbed["messages"] == [{"human": "hi <name>"}]
    assert (
        scrubbed["fingerprint"]
        == request_summary([HumanMessage("hi <name>")], {}, {})["fingerprint"]
    )
    assert plain["fingerprint"] != scrubbed["fingerprint"]
