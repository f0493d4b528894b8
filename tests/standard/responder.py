"""A responder that answers langchain-tests' fixed prompts the way a real model would.

The standard suites send free-form prompts ("What is the value of
magic_function(3)? Use the tool.", "Tell me a joke about cats.") and check the
shape of the answer. This responder is a script rule's function: it calls a
bound tool with arguments read from the prompt and the tool's JSON schema,
answers JSON when a response format asks for it, and otherwise says hello.
"""

from __future__ import annotations

import json
import re
from typing import Any

from fakellm import Call, ToolCall, Turn

_QUOTED = re.compile(r"'([^']+)'")
_INT = re.compile(r"-?\d+")


def respond(call: Call) -> Turn:
    last = call.messages[-1] if call.messages else None
    response_format = call.kwargs.get("response_format")
    if response_format is not None:
        schema = (response_format.get("json_schema") or {}).get("schema") or _JOKE
        return Turn(json.dumps(_value(schema, call.last_human_message or "")))
    if call.tools and getattr(last, "type", None) != "tool":
        tool = _pick_tool(call)
        schema = tool["function"].get("parameters") or {}
        args = _value(schema, call.last_human_message or "") if schema.get("properties") else {}
        return Turn(tool_calls=[ToolCall(tool["function"]["name"], args)])
    return Turn("Hello! I am a scripted model, happy to help.")


# json_mode carries no schema; the suite's json_mode test asks for a joke.
_JOKE = {
    "type": "object",
    "properties": {"setup": {"type": "string"}, "punchline": {"type": "string"}},
    "required": ["setup", "punchline"],
}


def _pick_tool(call: Call) -> dict[str, Any]:
    choice = call.tool_choice
    by_name = {t["function"]["name"]: t for t in call.tools}
    if isinstance(choice, str) and choice in by_name:
        return dict(by_name[choice])
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        if name in by_name:
            return dict(by_name[name])
    text = call.last_human_message or ""
    for name, tool in by_name.items():
        if name in text:
            return dict(tool)
    return dict(call.tools[0])


def _value(schema: dict[str, Any], prompt: str) -> Any:
    ints = iter(int(n) for n in _INT.findall(prompt))
    quoted = _QUOTED.findall(prompt)
    return _fill(schema, ints, quoted, schema)


def _fill(schema: dict[str, Any], ints: Any, quoted: list[str], root: dict[str, Any]) -> Any:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = (root.get("$defs") or root.get("definitions") or {})[name]
    if "anyOf" in schema:
        schema = next(s for s in schema["anyOf"] if s.get("type") != "null")
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        required = schema.get("required", list(props))
        return {k: _fill(props[k], ints, quoted, root) for k in props if k in required}
    if kind in ("integer", "number"):
        return next(ints, 3)
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    return quoted[0] if quoted else "a scripted answer"
