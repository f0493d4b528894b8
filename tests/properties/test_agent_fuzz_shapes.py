"""The shapes models produce beyond well-formed calls, drawn: malformed
arguments, hallucinated tools, refusals, text despite a forced tool_choice.
Each reaches a real ``create_agent`` agent and shrinks to one minimal step,
whose printed script replays it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import jsonschema
from hypothesis import find, given, settings
from langchain.agents import create_agent
from langchain.agents.structured_output import ToolStrategy
from langchain_core.tools import tool
from pydantic import BaseModel

from fakellm import FakeChatModel, Script, ToolCall, Turn, errors, fuzz

from .common import FAST
from .test_agent_fuzz import BOOK, PING, SEARCH, ask

MINIMAL = settings(FAST, max_examples=100)

# ------------------------------------------------------------ what the model draws


@FAST
@given(fuzz.decisions(text=0, parallel=0, malformed=1))
def test_malformed_arguments_are_valid_json_with_a_stray_brace_in_invalid_tool_calls(decisions):
    (message,) = ask(decisions, [SEARCH])
    assert message.tool_calls == []
    (bad,) = message.invalid_tool_calls
    assert (bad["name"], bad["id"], bad["error"]) == ("search", "call_0_0", None)
    assert bad["args"].endswith("}}")
    jsonschema.validate(json.loads(bad["args"][:-1]), SEARCH["function"]["parameters"])


@FAST
@given(fuzz.decisions(text=0, parallel=1, max_parallel=3, hallucinated=1))
def test_hallucinated_calls_name_tools_that_are_not_bound(decisions):
    (message,) = ask(decisions, [SEARCH, BOOK])
    assert 2 <= len(message.tool_calls) <= 3
    for call in message.tool_calls:
        assert call["name"] not in ("search", "book")
        assert re.fullmatch("[a-z]{1,12}", call["name"])
        assert isinstance(call["args"], dict)


def _kind_of_unbound_args(args: dict[str, Any]) -> str:
    """Which of the three kinds of arguments a hallucinated call carries."""
    if not args:
        return "empty"
    for t in (SEARCH, BOOK):
        if jsonschema.Draft202012Validator(t["function"]["parameters"]).is_valid(args):
            return "a bound tool's"
    assert all(re.fullmatch("[a-z_]{1,4}", k) for k in args), args  # free JSON's keys
    return "free"


def test_hallucinated_calls_draw_empty_free_or_a_bound_tools_arguments():
    seen: dict[str, int] = {}

    @settings(FAST, max_examples=60)
    @given(fuzz.decisions(text=0, parallel=0, hallucinated=1))
    def sample(decisions):
        (call,) = ask(decisions, [SEARCH, BOOK])[0].tool_calls
        kind = _kind_of_unbound_args(call["args"])
        seen[kind] = seen.get(kind, 0) + 1

    sample()
    assert sorted(seen) == ["a bound tool's", "empty", "free"], seen


def test_hallucinated_arguments_shrink_to_empty():
    def holds(decisions: fuzz.Decisions) -> bool:
        (call,) = ask(decisions, [SEARCH, BOOK])[0].tool_calls
        return call["name"] != "a"  # any example but the simplest

    found = find(fuzz.decisions(text=0, parallel=0, hallucinated=1), holds, settings=MINIMAL)
    (call,) = found.model.calls[-1].turn.tool_calls
    assert (call.name, call.args, call.allow_unbound) == ("b", {}, True)


@FAST
@given(fuzz.decisions(text=0, hallucinated=1))
def test_a_named_tool_choice_is_never_hallucinated_away(decisions):
    (message,) = ask(decisions, [SEARCH, BOOK], tool_choice="book")
    assert [c["name"] for c in message.tool_calls] == ["book"]


@FAST
@given(fuzz.decisions(refusals=1))
def test_refusals_one_refuses_every_step_even_when_a_tool_is_forced(decisions):
    for message in ask(decisions, [SEARCH], calls=2, tool_choice="any"):
        assert message.tool_calls == []
        (block,) = message.content
        assert block["type"] == "refusal"
        assert isinstance(block["refusal"], str)
        assert block["refusal"]


@FAST
@given(fuzz.decisions(text=0, parallel=0, ignore_tool_choice=1))
def test_ignore_tool_choice_answers_text_only_where_a_tool_is_forced(decisions):
    forced, free = ask(decisions, [SEARCH], calls=1, tool_choice="any") + ask(decisions, [SEARCH])
    assert forced.tool_calls == []
    assert isinstance(forced.content, str)
    assert forced.content
    assert [c["name"] for c in free.tool_calls] == ["search"]


def test_each_shape_shrinks_towards_none_of_it():
    """Half the calls in a two-call step are each shape: the simplest step with
    one of them keeps every other call plain."""
    for option, odd in (
        ("malformed", lambda tc: tc.raw_args is not None),
        ("hallucinated", lambda tc: tc.allow_unbound),
    ):
        strategy = fuzz.decisions(text=0, parallel=1, max_parallel=2, **{option: 0.5})
        steps: list[Turn] = []

        def holds(decisions: fuzz.Decisions, odd: Any = odd, steps: list[Turn] = steps) -> bool:
            ask(decisions, [PING])  # no arguments to shrink: a fast search
            (call,) = decisions.model.calls
            steps.append(call.turn)
            return any(odd(tc) for tc in call.turn.tool_calls)

        find(strategy, holds, settings=MINIMAL)
        flags = [odd(tc) for tc in steps[-1].tool_calls]
        assert sorted(flags) == [False, True], option


# ------------------------------------------------------------ on a real agent


@tool
def search(q: str) -> str:
    """Search the web."""
    return f"found {q}"


class Answer(BaseModel):
    text: str


INPUT = {"messages": [("user", "hi")]}
AGENT = create_agent(fuzz.model(), [search])
STRUCTURED = create_agent(fuzz.model(), [search], response_format=ToolStrategy(Answer))


def shrunk(strategy: Any, agent: Any, wanted: Callable[[fuzz.AgentRun], bool]) -> fuzz.AgentRun:
    """The simplest run of ``agent`` that ``wanted`` holds for. Hypothesis'
    find() plays the shrunk example last."""
    runs: list[fuzz.AgentRun] = []

    def holds(decisions: fuzz.Decisions) -> bool:
        run = decisions.play(lambda: agent.invoke(INPUT))
        if wanted(run):
            runs.append(run)
            return True
        return False

    find(strategy, holds, settings=MINIMAL)
    return runs[-1]


def replayed(run: fuzz.AgentRun, agent_tools: Any = (), **agent: Any) -> list[Any]:
    """The messages the agent ends with when the printed script replays ``run``."""
    namespace = {"Script": Script, "Turn": Turn, "ToolCall": ToolCall, "errors": errors}
    script = eval(run.script_source(), namespace)
    assert script.turns == run.script().turns
    model = FakeChatModel(script=script)
    return create_agent(model, [search], **agent).invoke(INPUT)["messages"]


def shape(messages: list[Any]) -> list[tuple[Any, ...]]:
    """The messages without their ids (a shared model numbers its calls on)."""

    def calls(m: Any, kind: str) -> list[dict[str, Any]]:
        return [{k: v for k, v in c.items() if k != "id"} for c in getattr(m, kind, None) or ()]

    return [
        (m.type, m.content, calls(m, "tool_calls"), calls(m, "invalid_tool_calls"))
        for m in messages
    ]


def test_a_malformed_call_ends_create_agent_with_its_invalid_tool_calls():
    run = shrunk(
        fuzz.decisions(malformed=1),
        AGENT,
        lambda r: any(tc.raw_args for s in r.steps for tc in s.turn.tool_calls),
    )
    assert run.trajectory() == (
        "Agent trajectory (1 model call; the agent returned):\n"
        '  step 0: tool call search({"q": ""}}) [malformed: not JSON]\n'
        "      search: not run (the message's invalid_tool_calls)"
    )
    assert run.script_source() == (
        "Script([\n"
        """    Turn(tool_calls=[ToolCall('search', raw_args='{"q": ""}}')]),\n"""
        "])"
    )
    assert run.result["messages"][-1].invalid_tool_calls == [
        {
            "type": "invalid_tool_call",
            "id": run.steps[0].tools[0].id,
            "name": "search",
            "args": '{"q": ""}}',
            "error": None,
        }
    ]
    assert run.steps[0].tools[0].id.startswith("call_")
    assert run.tool_runs == ()
    assert shape(replayed(run)) == shape(run.result["messages"])


def test_a_hallucinated_tool_gets_langgraphs_not_a_valid_tool_answer():
    run = shrunk(
        fuzz.decisions(hallucinated=1),
        AGENT,
        lambda r: any(tc.allow_unbound for s in r.steps for tc in s.turn.tool_calls),
    )
    assert run.trajectory() == (
        "Agent trajectory (2 model calls; the agent returned):\n"
        "  step 0: tool call a({}) [not bound]\n"
        "      a not run; the agent answered error message "
        "'Error: a is not a valid tool, try one of [search].'\n"
        "  step 1: text '0'"
    )
    assert run.script_source() == (
        "Script([\n"
        "    Turn(tool_calls=[ToolCall('a', {}, allow_unbound=True)]),\n"
        "    Turn('0'),\n"
        "])"
    )
    reply = run.steps[0].tools[0].reply
    assert (reply.content, reply.status, reply.tool_call_id) == (
        "Error: a is not a valid tool, try one of [search].",
        "error",
        run.steps[0].tools[0].id,
    )
    assert run.tool_runs == ()
    assert shape(replayed(run)) == shape(run.result["messages"])


def test_a_refusal_is_create_agents_final_message():
    run = shrunk(
        fuzz.decisions(refusals=0.5), AGENT, lambda r: r.steps[-1].turn.refusal is not None
    )
    assert run.trajectory() == (
        "Agent trajectory (1 model call; the agent returned):\n  step 0: refusal '0'"
    )
    assert run.script_source() == "Script([\n    Turn(refusal='0'),\n])"
    assert run.result["messages"][-1].content == [{"type": "refusal", "refusal": "0", "index": 0}]
    assert shape(replayed(run)) == shape(run.result["messages"])


def test_text_despite_the_forced_structured_output_tool_leaves_no_structured_response():
    run = shrunk(
        fuzz.decisions(ignore_tool_choice=0.5),
        STRUCTURED,
        lambda r: any(s.turn.ignore_tool_choice for s in r.steps),
    )
    assert run.trajectory() == (
        "Agent trajectory (1 model call; the agent returned):\n"
        "  step 0: text '0' (ignoring the forced tool_choice)"
    )
    assert run.script_source() == "Script([\n    Turn('0', ignore_tool_choice=True),\n])"
    assert run.result["structured_response"] is None
    assert shape(replayed(run, response_format=ToolStrategy(Answer))) == shape(
        run.result["messages"]
    )
