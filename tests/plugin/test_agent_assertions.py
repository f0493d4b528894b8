"""The agent assertions' failure messages, pinned as a user's pytest run shows them."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

APP = '''
from unittest.mock import ANY, call

from langchain.agents import create_agent
from langchain_core.tools import tool

from fakellm import FakeChatModel, ToolCall, Turn
from fakellm.assertions import assert_nodes, assert_tool_called, assert_tool_calls


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


@tool
def book(city: str, nights: int) -> str:
    """Book a hotel."""
    return "booked"


def run(llm_recorder):
    model = FakeChatModel(script=[
        Turn(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]),
        Turn(tool_calls=[ToolCall("book", {"city": "Paris", "nights": 2})]),
        "Booked.",
    ])
    agent = create_agent(model, tools=[get_weather, book])
    return agent.invoke({"messages": [("human", "Paris")]}, {"callbacks": [llm_recorder]})
'''


def _run(pytester: pytest.Pytester, body: str) -> pytest.RunResult:
    pytester.makepyfile(test_agent=APP + body)
    return pytester.runpytest("-p", "no:cacheprovider", "--tb=short")


def test_strict_trajectory_failure_shows_expected_actual_diff_and_timeline(pytester):
    result = _run(
        pytester,
        """
def test_books_rome(llm_recorder):
    run(llm_recorder)
    assert_tool_calls(
        llm_recorder, [call.get_weather(city="Paris"), call.book(city="Rome", nights=ANY)]
    )
""",
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E   *FakeLLMAssertionError: tool calls do not match (strict).",
            "E   Expected: [get_weather(city='Paris'), book(city='Rome', nights=<ANY>)]",
            "E   Actual: [get_weather(city='Paris'), book(city='Paris', nights=2)]",
            "E   Diff (- expected, + actual):",
            "E       get_weather(city='Paris')",
            "E     - book(city='Rome', nights=<ANY>)",
            "E     + book(city='Paris', nights=2)",
            "E   ",
            "E   Timeline:",
            "E        #      time  event",
            "E        2    +*  r3 FakeChatModel: start",
            'E        3    +*  r3 FakeChatModel: end → get_weather({"city": "Paris"})',
            "E        6    +*  r5 get_weather: start {'city': 'Paris'}",
            "E        7    +*  r5 get_weather: end 'Sunny in Paris'",
            "E       10    +*  r7 FakeChatModel: start",
            'E       11    +*  r7 FakeChatModel: end → book({"city": "Paris", "nights": 2})',
            "E       14    +*  r9 book: start {'city': 'Paris', 'nights': 2}",
            "E       15    +*  r9 book: end 'booked'",
            "E       18    +*  r11 FakeChatModel: start",
            "E       19    +*  r11 FakeChatModel: end",
        ]
    )
    # The message already holds the timeline: the report does not repeat it.
    assert "fakellm timeline" not in result.stdout.str()


def test_superset_and_called_with_failures(pytester):
    result = _run(
        pytester,
        """
def test_cancels(llm_recorder):
    run(llm_recorder)
    assert_tool_calls(llm_recorder, ["cancel"], mode="superset")


def test_weather_in_rome(llm_recorder):
    run(llm_recorder)
    assert_tool_called(llm_recorder, "get_weather", {"city": lambda c: c == "Rome"})


def test_books_twice(llm_recorder):
    run(llm_recorder)
    assert_tool_called(llm_recorder, "book", times=2)


def test_nodes(llm_recorder):
    run(llm_recorder)
    assert_nodes(llm_recorder, ["model", "tools", "model"])


def test_from_messages(llm_recorder):
    result = run(llm_recorder)
    assert_tool_calls(result, ["get_weather"])
""",
    )
    result.assert_outcomes(failed=5)
    result.stdout.fnmatch_lines(
        [
            "E   *FakeLLMAssertionError: tool calls do not match (superset).",
            "E   Expected: [cancel(...)]",
            "E   Actual: [get_weather(city='Paris'), book(city='Paris', nights=2)]",
            "E   Diff (- expected, + actual):",
            "E     + get_weather(city='Paris')",
            "E     + book(city='Paris', nights=2)",
            "E     - cancel(...)",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E   *FakeLLMAssertionError: expected tool call not found.",
            "E   Expected: get_weather(city=<<lambda>>)",
            "E   Actual: [get_weather(city='Paris'), book(city='Paris', nights=2)]",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E   *FakeLLMAssertionError: expected tool call 2 time(s), found 1.",
            "E   Expected: book(...) x2",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E   *FakeLLMAssertionError: graph nodes do not match (strict).",
            "E   Expected: ['model', 'tools', 'model']",
            "E   Actual: ['model', 'tools', 'model', 'tools', 'model']",
            "E   Diff (- expected, + actual):",
            "E       'model'",
            "E       'tools'",
            "E       'model'",
            "E     + 'tools'",
            "E     + 'model'",
        ]
    )
    # A message list has no timeline to show.
    result.stdout.fnmatch_lines(
        [
            "E   *FakeLLMAssertionError: tool calls do not match (strict).",
            "E   Expected: [get_weather(...)]",
            "E   Actual: [get_weather(city='Paris'), book(city='Paris', nights=2)]",
            "E   Diff (- expected, + actual):",
            "E       get_weather(city='Paris')",
            "E     + book(city='Paris', nights=2)",
        ]
    )


GRAPH = f"""
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent / "integration")!r})
import travel_app
from langgraph.types import Command
from fakellm import FakeChatModel
from fakellm.assertions import assert_nodes, assert_tool_calls


def run(llm_recorder):
    app = travel_app.build(
        FakeChatModel(script=travel_app.planner_script()),
        FakeChatModel(script=travel_app.quote_script()),
    )
    cfg = {{"configurable": {{"thread_id": "t"}}, "callbacks": [llm_recorder]}}
    app.invoke(travel_app.REQUEST, cfg)
    app.invoke(Command(resume="approved"), cfg)
"""


def test_graph_broken_variants_fail_with_exact_messages(pytester):
    pytester.makepyfile(
        test_graph=GRAPH
        + """
def test_approval_before_quotes(llm_recorder):
    run(llm_recorder)
    assert_nodes(llm_recorder, ["approval", "quote", "quote"], mode="superset")
    assert_nodes(llm_recorder, ["approval", "quote"], mode="subset")


def test_agent_books_three_nights(llm_recorder):
    run(llm_recorder)
    expected = ["get_weather", ("book", {"city": "Paris", "nights": 3})]
    assert_tool_calls(llm_recorder, expected, node="agent")
"""
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--tb=short")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "E   *FakeLLMAssertionError: graph nodes do not match (subset).",
            "E   Expected: ['approval', 'quote']",
            "E   Actual: ['agent', 'tools', 'agent', 'tools', 'agent', 'fan_out', 'quote', "
            "'quote', 'approval', 'approval/review', 'approval', 'approval/review']",
            "E   Diff (- expected, + actual):",
            "E     + 'agent'",
            "E     + 'tools'",
            "E     + 'agent'",
            "E     + 'tools'",
            "E     + 'agent'",
            "E     + 'fan_out'",
            "E       'quote'",
            "E     + 'quote'",
            "E       'approval'",
            "E     + 'approval/review'",
            "E     + 'approval'",
            "E     + 'approval/review'",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "E   *FakeLLMAssertionError: tool calls in node 'agent' do not match (strict).",
            "E   Expected: [get_weather(...), book(city='Paris', nights=3)]",
            "E   Actual: [get_weather(city='Paris'), book(city='Paris', nights=2)]",
            "E   Diff (- expected, + actual):",
            "E       get_weather(city='Paris')",
            "E     - book(city='Paris', nights=3)",
            "E     + book(city='Paris', nights=2)",
        ]
    )
