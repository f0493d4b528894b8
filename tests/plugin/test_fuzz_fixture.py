"""The fakellm_fuzz fixture and its marker, seen from a user's suite: a planted
bug found and shrunk to its shortest trajectory, a clean agent passing, the
marker's settings applied, misuse named."""

from __future__ import annotations

import langchain.agents  # noqa: F401  (imported once here: pytester's inner runs share it)
import langchain_core.tools  # noqa: F401
import pytest

import fakellm.fuzz  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
FAST = ("-p", "no:cacheprovider", "-p", "no:unraisableexception")

AGENTS = """
import pytest
from langchain.agents import create_agent
from langchain_core.tools import tool

from fakellm import fuzz


@tool
def lookup(q: str) -> str:
    \"\"\"Look a word up.\"\"\"
    return f"{q} starts with {q[0]}"  # planted: an empty query crashes


@tool
def safe_lookup(q: str) -> str:
    \"\"\"Look a word up.\"\"\"
    return f"{q} starts with {q[:1] or 'nothing'}"


ASK = {"messages": [("user", "look up a word")]}
"""


def test_a_planted_bug_is_found_and_shrunk_and_a_clean_agent_passes(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        AGENTS
        + """

@pytest.mark.fakellm_fuzz(max_examples=50, derandomize=True, max_steps=3)
def test_lookup(fakellm_fuzz):
    agent = create_agent(fakellm_fuzz.model, tools=[lookup])
    fakellm_fuzz.check(lambda: agent.invoke(ASK), fuzz.terminates(within=4))


@pytest.mark.fakellm_fuzz(max_examples=50, derandomize=True, max_steps=3)
def test_safe_lookup(fakellm_fuzz):
    agent = create_agent(fakellm_fuzz.model, tools=[safe_lookup])
    fakellm_fuzz.check(lambda: agent.invoke(ASK), fuzz.terminates(within=4), fuzz.final_text())
    assert fakellm_fuzz.examples == 50


@pytest.mark.fakellm_fuzz(derandomize=True, text=1)
def test_marker_decisions_and_check_overrides(fakellm_fuzz):
    agent = create_agent(fakellm_fuzz.model, tools=[lookup])
    fakellm_fuzz.check(lambda: agent.invoke(ASK), fuzz.final_text(), max_examples=7)
    assert fakellm_fuzz.examples == 7
    # text=1: every answer was text, so lookup never ran
    assert [c.turn.tool_calls for c in fakellm_fuzz.model.calls] == [()] * 7


@pytest.mark.fakellm_fuzz(max_examples=5, derandomize=True)
def test_an_async_agent(fakellm_fuzz):
    agent = create_agent(fakellm_fuzz.model, tools=[safe_lookup])

    async def run():
        return await agent.ainvoke(ASK)

    fakellm_fuzz.check(run, fuzz.terminates(within=6))
    assert fakellm_fuzz.examples == 5
"""
    )
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "E       fakellm.fuzz.InvariantError: the agent broke 1 invariant:",
            "E       - terminates(within=4): the agent did not return: it raised "
            "IndexError: string index out of range",
            # "Falsifying example:", or "Failing test case:" from Hypothesis 6.16x on
            "E       F* test_lookup(",
            "E           decisions=<Decisions drawn call by call (max_steps=3); "
            "the trajectory is printed below>,",
            "E       )",
            "E       Agent trajectory (1 model call; the agent raised IndexError: "
            "string index out of range):",
            'E         step 0: tool call lookup({"q": ""})',
            "E             lookup raised IndexError: string index out of range",
            "E       Replay it as a regular test with FakeChatModel(script=...) and this script:",
            "E       Script([",
            "E           Turn(tool_calls=[ToolCall('lookup', {'q': ''})]),",
            "E       ])",
        ],
        consecutive=True,
    )
    assert "Explanation:" not in result.stdout.str()  # no explain phase: slow, and redundant


def test_misuse_is_named(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        AGENTS
        + """

@pytest.mark.fakellm_fuzz(max_examples=5, textt=0.5)
def test_unknown_argument(fakellm_fuzz):
    pass


@pytest.mark.fakellm_fuzz(5)
def test_positional(fakellm_fuzz):
    pass


@pytest.mark.fakellm_fuzz(text=2, max_examples=5)
def test_bad_probability(fakellm_fuzz):
    agent = create_agent(fakellm_fuzz.model, tools=[lookup])
    fakellm_fuzz.check(lambda: agent.invoke(ASK))


@pytest.mark.fakellm_fuzz(max_examples=5)
def test_a_lambda_returning_a_coroutine(fakellm_fuzz):
    agent = create_agent(fakellm_fuzz.model, tools=[lookup])
    fakellm_fuzz.check(lambda: agent.ainvoke(ASK))
"""
    )
    result = pytester.runpytest(*FAST)
    result.assert_outcomes(failed=2, errors=2)
    lines = result.stdout.lines
    accepted = (
        "max_examples, derandomize, max_steps, text, parallel, max_parallel, repeat, "
        "invalid_arguments, errors, error_types, max_ms, texts, final_tool, call_limit, "
        "malformed, hallucinated, refusals, ignore_tool_choice, model_settings"
    )
    for line in (
        "@pytest.mark.fakellm_fuzz on test_misuse_is_named.py::test_unknown_argument: "
        f"unknown argument 'textt'; accepted: {accepted}",
        "@pytest.mark.fakellm_fuzz on test_misuse_is_named.py::test_positional: "
        "takes keyword arguments only, got (5,)",
        "E           hypothesis.errors.InvalidArgument: text=2: expected a probability "
        "between 0 and 1",
        "E       TypeError: the target returned a coroutine: pass an async def function "
        "(async def run(): return await agent.ainvoke(...)), not a lambda",
    ):
        assert line in lines, line
