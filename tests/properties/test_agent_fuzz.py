"""The drawing model: what it draws, how the distribution arguments shape it,
and that its tool arguments fit the bound tools' JSON schemas."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from fakellm import Turn, errors, fuzz, strategies, virtual_time

from .common import FAST


def tool(name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "description": name, "parameters": parameters},
    }


SEARCH = tool(
    "search",
    {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
)
BOOK = tool(
    "book",
    {
        "type": "object",
        "properties": {
            "room": {"type": "integer", "minimum": 1, "maximum": 9},
            "kind": {"enum": ["single", "double"]},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["room", "kind"],
    },
)
PING = tool("ping", {"type": "object", "properties": {}, "additionalProperties": False})


def ask(
    decisions: fuzz.Decisions, tools: list[dict[str, Any]], calls: int = 1, **bind: Any
) -> list[Any]:
    """Call the drawing model ``calls`` times with ``tools`` bound; return the messages."""
    model = decisions.model.bind_tools(tools, **bind) if tools else decisions.model
    with virtual_time(freeze=False):
        return [model.invoke("go") for _ in range(calls)]


# ------------------------------------------------------------ JSON-schema arguments

_PATTERNS = ("^[a-z]{1,5}$", "^[A-Z][0-9]{2}$", "^(yes|no)$")
_NAMES = st.sampled_from(["a", "b", "c", "id", "n"])
_JSON_SCALARS = st.none() | st.booleans() | st.integers(-5, 5) | st.text("xyz", max_size=3)


@st.composite
def _bounds(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind}
    low = draw(st.none() | st.integers(-50, 50))
    high = None if low is None else draw(st.none() | st.integers(low + 2, low + 100))
    if low is not None:
        out["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
    if high is not None:
        out["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = high
    if kind == "integer" and draw(st.booleans()):
        out["multipleOf"] = draw(st.integers(1, 3))
        if low is not None and high is not None:
            out.pop("exclusiveMaximum", None)
            out["maximum"] = high + 6  # room for a multiple in range
    return out


@st.composite
def _string(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"type": "string", "pattern": draw(st.sampled_from(_PATTERNS))}
    low = draw(st.integers(0, 4))
    out: dict[str, Any] = {"type": "string", "minLength": low}
    if draw(st.booleans()):
        out["maxLength"] = draw(st.integers(low, low + 5))
    return out


LEAVES = st.one_of(
    _string(),
    _bounds("integer"),
    _bounds("number"),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.lists(_JSON_SCALARS, min_size=1, max_size=4, unique_by=repr).map(lambda v: {"enum": v}),
    _JSON_SCALARS.map(lambda v: {"const": v}),
)


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def obj(draw: st.DrawFn) -> dict[str, Any]:
        props = draw(st.dictionaries(_NAMES, children, max_size=3))
        required = draw(st.lists(st.sampled_from(sorted(props)), unique=True)) if props else []
        return {"type": "object", "properties": props, "required": required}

    @st.composite
    def array(draw: st.DrawFn) -> dict[str, Any]:
        low = draw(st.integers(0, 2))
        return {"type": "array", "items": draw(children), "minItems": low, "maxItems": low + 2}

    return st.one_of(
        obj(),
        array(),
        st.lists(children, min_size=1, max_size=3).map(lambda s: {"anyOf": s}),
        st.lists(
            st.sampled_from(["string", "integer", "boolean", "null"]),
            min_size=1,
            max_size=3,
            unique=True,
        ).map(lambda kinds: {"type": kinds}),
    )


def _nested(levels: int) -> st.SearchStrategy[dict[str, Any]]:
    """Schemas with up to ``levels`` containers (objects, arrays, anyOf) inside each other."""
    out = LEAVES
    for _ in range(levels):
        out = LEAVES | _extend(out)
    return out


@st.composite
def _deep(draw: st.DrawFn) -> dict[str, Any]:
    """A chain of 4-7 containers (objects, arrays, anyOf) around a small schema,
    each container required to hold the next, so values reach the bottom."""
    schema = draw(_nested(1))
    for _ in range(draw(st.integers(4, 7))):
        kind = draw(st.sampled_from(["object", "array", "anyOf"]))
        if kind == "object":
            name = draw(_NAMES)
            schema = {"type": "object", "properties": {name: schema}, "required": [name]}
        elif kind == "array":
            low = draw(st.integers(1, 2))
            schema = {"type": "array", "items": schema, "minItems": low, "maxItems": low + 1}
        else:
            schema = {"anyOf": [schema, draw(LEAVES)]}
    return schema


SCHEMAS = _nested(3)
PARAMETERS = st.dictionaries(_NAMES, _nested(2) | _deep(), min_size=1, max_size=3).flatmap(
    lambda props: st.lists(st.sampled_from(sorted(props)), unique=True).map(
        lambda required: {"type": "object", "properties": props, "required": required}
    )
)


@settings(FAST, max_examples=300)
@given(SCHEMAS | _deep(), st.data())
def test_values_drawn_from_a_schema_are_valid_against_it(schema, data):
    value = data.draw(strategies.from_json_schema(schema))
    jsonschema.validate(value, schema, cls=jsonschema.Draft202012Validator)


def test_arrays_nested_four_containers_deep_fit_their_items():
    schema = {"type": "array", "items": {"type": "boolean"}, "minItems": 1}
    for _ in range(3):
        schema = {"type": "array", "items": schema, "minItems": 1, "maxItems": 1}
    # Free JSON there would find the first non-boolean; the items schema allows only True.
    value = find(strategies.from_json_schema(schema), lambda v: v[0][0][0][0] is not False)
    assert value == [[[[True]]]]
    jsonschema.validate(value, schema)


@settings(FAST, max_examples=150)
@given(PARAMETERS, fuzz.decisions(text=0, parallel=0.5))
def test_the_model_calls_bound_tools_with_arguments_that_fit_their_schemas(parameters, decisions):
    message = ask(decisions, [tool("t", parameters)])[0]
    assert message.tool_calls
    for call in message.tool_calls:
        assert call["name"] == "t"
        jsonschema.validate(call["args"], parameters, cls=jsonschema.Draft202012Validator)


@settings(FAST, max_examples=100)
@given(fuzz.decisions(text=0, parallel=0, invalid_arguments=1))
def test_invalid_arguments_are_json_that_breaks_the_schema(decisions):
    message = ask(decisions, [BOOK])[0]
    (call,) = message.tool_calls
    assert not jsonschema.Draft202012Validator(BOOK["function"]["parameters"]).is_valid(
        call["args"]
    )
    assert message.invalid_tool_calls == []  # valid JSON: the agent gets a dict


@FAST
@given(fuzz.decisions(text=0, parallel=0, invalid_arguments=1))
def test_a_tool_without_properties_cannot_be_broken_and_gets_valid_arguments(decisions):
    (call,) = ask(decisions, [PING])[0].tool_calls
    assert call["args"] == {}


# ------------------------------------------------------------ the distribution


@FAST
@given(fuzz.decisions(max_steps=3, text=0))
def test_past_max_steps_the_model_answers_text(decisions):
    messages = ask(decisions, [SEARCH, BOOK], calls=5)
    assert [bool(m.tool_calls) for m in messages] == [True, True, True, False, False]
    assert all(m.text for m in messages[3:])


@FAST
@given(fuzz.decisions(text=1))
def test_text_one_always_answers_text(decisions):
    messages = ask(decisions, [SEARCH], calls=3)
    assert [m.tool_calls for m in messages] == [[], [], []]


@FAST
@given(fuzz.decisions(text=0))
def test_without_tools_the_model_answers_text(decisions):
    (message,) = ask(decisions, [])
    assert message.tool_calls == []
    assert 1 <= len(message.text) <= 10


@FAST
@given(fuzz.decisions(text=0, parallel=1, max_parallel=4))
def test_parallel_one_always_calls_two_to_max_parallel_tools(decisions):
    (message,) = ask(decisions, [SEARCH, BOOK])
    assert 2 <= len(message.tool_calls) <= 4
    assert {c["name"] for c in message.tool_calls} <= {"search", "book"}
    assert len({c["id"] for c in message.tool_calls}) == len(message.tool_calls)


@FAST
@given(fuzz.decisions(text=0, parallel=0))
def test_parallel_zero_calls_one_tool(decisions):
    (message,) = ask(decisions, [SEARCH, BOOK])
    assert len(message.tool_calls) == 1


@FAST
@given(fuzz.decisions(errors=1, error_types=[errors.RateLimitError, errors.ServerError]))
def test_errors_one_fails_every_step_with_one_of_the_given_types(decisions):
    with pytest.raises((errors.RateLimitError, errors.ServerError)):
        ask(decisions, [SEARCH])


@FAST
@given(fuzz.decisions(max_ms=40, text=1))
def test_latencies_are_virtual_milliseconds_up_to_max_ms(decisions):
    with virtual_time(freeze=False) as vt:
        decisions.model.invoke("go")
    assert 0 <= vt.elapsed <= 0.040
    assert round(vt.elapsed * 1000, 6) == round(vt.elapsed * 1000)


def _shares(p: float, calls: int) -> dict[str, int]:
    """Text and tool answers over a fixed (derandomized) run of 200 examples
    of ``calls`` model calls each, with ``text=p``."""
    seen = {"text": 0, "tools": 0}

    @settings(FAST, max_examples=200)
    @given(fuzz.decisions(text=p, parallel=0.5))
    def sample(decisions):
        for message in ask(decisions, [SEARCH, BOOK], calls=calls):
            seen["tools" if message.tool_calls else "text"] += 1

    sample()
    return seen


@pytest.mark.parametrize("p", [0.0, 0.001, 0.1, 0.25, 0.5, 0.9, 0.999, 1.0])
def test_a_fresh_draw_makes_a_choice_with_exactly_its_probability(p):
    # Two uniform bytes per choice: of the 65536 values, round(p * 65536) say yes,
    # and the simplest (zero bytes) says no.
    def draw(value: int) -> Any:
        return lambda strategy: value.to_bytes(2, "big")

    yes = sum(fuzz._flip(draw(v), p) for v in range(65536))
    assert yes == round(p * 65536)
    assert fuzz._flip(draw(0), p) is (p == 1.0)


# Hypothesis is a search, not a sampler: it runs the simplest example and
# simplest continuations (text) and mutates examples by copying their parts
# (tool-calling steps have more parts), so shares over a run drift from p; the
# docs state 0.3 as the bound. Exact counts are not pinned: a derandomized run
# still depends on the pool of constants Hypothesis collects from every loaded
# project module (it differs between this file alone and the whole suite).


@pytest.mark.parametrize("calls", [1, 5])
def test_over_a_run_the_share_of_text_answers_stays_within_the_stated_tolerance(calls):
    shares = []
    for p in (0.1, 0.5, 0.9):
        seen = _shares(p, calls)
        assert seen["text"] + seen["tools"] == 200 * calls
        shares.append(seen["text"] / (200 * calls))
        assert abs(shares[-1] - p) <= 0.3, (p, calls, seen)
    assert shares == sorted(shares)


# ------------------------------------------------------------ tool_choice, as providers honour it


@FAST
@given(fuzz.decisions(text=1))
def test_a_named_tool_choice_is_the_tool_called_even_when_text_is_likely(decisions):
    for message in ask(decisions, [SEARCH, BOOK], calls=2, tool_choice="book"):
        assert [c["name"] for c in message.tool_calls] == ["book"]


@FAST
@given(fuzz.decisions(text=1, max_steps=1))
def test_any_forces_a_tool_call_and_past_max_steps_the_final_tool(decisions):
    first, later = ask(decisions, [SEARCH, BOOK], calls=2, tool_choice="any")
    assert first.tool_calls
    assert [c["name"] for c in later.tool_calls] == ["book"]  # the last bound tool


@FAST
@given(fuzz.decisions(text=0, max_steps=0, final_tool="search"))
def test_final_tool_names_the_tool_called_past_max_steps(decisions):
    (message,) = ask(decisions, [SEARCH, BOOK], tool_choice="required")
    assert [c["name"] for c in message.tool_calls] == ["search"]


@FAST
@given(fuzz.decisions(text=0))
def test_tool_choice_none_gets_text(decisions):
    (message,) = ask(decisions, [SEARCH], tool_choice="none")
    assert message.tool_calls == []


@FAST
@given(fuzz.decisions(text=0))
def test_a_tool_choice_naming_an_unbound_tool_fails_as_a_provider_would(decisions):
    with pytest.raises(
        errors.BadRequestError, match=r"tool_choice names the tool 'nope'.*'search'"
    ):
        ask(decisions, [SEARCH], tool_choice={"type": "function", "function": {"name": "nope"}})


# ------------------------------------------------------------ bad arguments


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": 1.5}, "text=1.5: expected a probability between 0 and 1"),
        ({"parallel": "often"}, "parallel='often': expected a probability between 0 and 1"),
        ({"malformed": -0.1}, "malformed=-0.1: expected a probability between 0 and 1"),
        ({"refusals": True}, "refusals=True: expected a probability between 0 and 1"),
        ({"ignore_tool_choice": 2}, "ignore_tool_choice=2: expected a probability between 0 and 1"),
        ({"max_steps": -1}, "max_steps=-1: expected an integer >= 0"),
        ({"max_parallel": 0}, "max_parallel=0: expected an integer >= 1"),
        (
            {"error_types": ValueError},
            "error_types=<class 'ValueError'>: expected a non-empty sequence",
        ),
        (
            {"error_types": ["RateLimitError"]},
            "error_types: 'RateLimitError' is not an exception class",
        ),
        ({"texts": "hi"}, "texts='hi': expected a strategy of strings, or None"),
        ({"call_limit": 2, "max_steps": 5}, "call_limit=2: expected an integer >= 5"),
        ({"model_settings": {"script": []}}, "model_settings={'script': []}: expected a mapping"),
    ],
)
def test_bad_arguments_fail_their_test_naming_the_argument(kwargs, message):
    strategy = fuzz.decisions(**kwargs)  # building it never raises: the draw does

    @FAST
    @given(strategy)
    def uses_it(decisions):
        pass

    with pytest.raises(InvalidArgument, match=re.escape(message)):
        uses_it()


def test_a_shared_model_answers_only_inside_play():
    model = fuzz.model()
    # The model's rule wraps a plain exception its responder raises (and records it).
    with pytest.raises(errors.ResponderError, match=r"answers only while Decisions\.play") as info:
        model.invoke("hi")
    assert type(info.value.__cause__) is RuntimeError
    with pytest.raises(TypeError, match="writes its own script"):
        fuzz.model(script=["hi"])


@FAST
@given(fuzz.decisions(max_steps=1, text=0, call_limit=3))
def test_an_agent_that_never_stops_calling_fails_at_call_limit(decisions):
    # A fakellm error raised by the model's own responder reaches the app as it is.
    with pytest.raises(fuzz.TooManyModelCalls, match=r"more than call_limit=3 model calls"):
        ask(decisions, [SEARCH], calls=4)


def test_turns_are_plain_turns():
    @FAST
    @given(fuzz.decisions(text=0, parallel=0))
    def check(decisions):
        ask(decisions, [SEARCH])
        (call,) = decisions.model.calls
        assert isinstance(call.turn, Turn)
        assert call.turn.tool_calls[0].name == "search"

    check()


# ------------------------------------------------------------ determinism


_HUNT = """
from examples.fuzz_agents import research
from examples.fuzz_agents.test_fuzz_agents import RESEARCH, RESEARCH_RULES, hunt, play_research
from fakellm import fuzz

agent = research.build_agent(fuzz.model(), fixed=False)
found = hunt(RESEARCH, play_research(agent), *RESEARCH_RULES)
print(found.examples, found.first_failure)
print(found.last.report())
"""


def test_a_hunt_shrinks_to_the_same_trajectory_in_fresh_processes_with_other_hash_seeds():
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "ignore", "-c", _HUNT],
            cwd=root,
            env={**env, "PYTHONHASHSEED": seed},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in ("0", "12345")
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    first, second = (out for out, _ in outputs)
    assert first == second
    assert first.split("\n", 1)[1] == (
        "Agent trajectory (1 model call; the agent raised IndexError: list index out of range):\n"
        '  step 0: tool call search({"query": "0"})\n'
        "      search returned '[]'\n"
        "Replay it as a regular test with FakeChatModel(script=...) and this script:\n"
        "Script([\n"
        "    Turn(tool_calls=[ToolCall('search', {'query': '0'})]),\n"
        "])\n"
    )
