"""Agent tests as users write them: create_agent and a hand-built LangGraph graph.

Each assertion is one line; the broken variants' exact messages are pinned in
tests/plugin/test_agent_assertions.py.
"""

from __future__ import annotations

import sys
from pathlib import Path
from unittest.mock import ANY, call

import pytest
from langchain.agents import create_agent
from langgraph.types import Command

from fakellm import FakeChatModel, Recorder, ToolCall, Turn, run_scenario
from fakellm.assertions import (
    assert_nodes,
    assert_tool_called,
    assert_tool_calls,
    assert_tool_not_called,
    assert_well_formed,
)

sys.path.insert(0, str(Path(__file__).parent))
import travel_app


@pytest.fixture
def agent_run():
    model = FakeChatModel(
        script=[
            Turn(tool_calls=[ToolCall("get_weather", {"city": "Paris"})]),
            Turn(tool_calls=[ToolCall("book", {"city": "Paris", "nights": 2})]),
            "Booked.",
        ]
    )
    agent = create_agent(model, tools=travel_app.TOOLS)
    rec = Recorder()
    result = agent.invoke({"messages": [("human", "2 nights in Paris")]}, {"callbacks": [rec]})
    return rec, result


def test_create_agent_trajectory_in_one_line_each(agent_run):
    rec, result = agent_run
    assert_tool_calls(
        rec, [("get_weather", {"city": "Paris"}), ("book", {"city": "Paris", "nights": 2})]
    )
    assert_tool_calls(result, [call.get_weather(city="Paris"), call.book(city=ANY, nights=2)])
    assert_tool_calls(rec, ["book", "get_weather"], mode="unordered")
    assert_tool_calls(rec, ["book"], mode="superset")
    assert_tool_calls(rec, ["get_weather", "book", "cancel"], mode="subset")
    assert_tool_called(rec, "book", {"city": str.istitle, "nights": lambda n: n > 1})
    assert_tool_called(rec, "get_weather", times=1)
    assert_tool_not_called(rec, "cancel")
    assert_nodes(rec, ["model", "tools", "model", "tools", "model"])
    assert_well_formed(rec)


def test_create_agent_per_node_views(agent_run):
    rec, _ = agent_run
    log = rec.events
    assert log.nodes() == ["model", "tools", "model", "tools", "model"]
    assert [r.name for r in log.node_runs("tools")] == ["tools", "tools"]
    assert len(log.model_runs(node="model")) == 3
    assert log.model_runs(node="tools") == []
    second = log.model_runs(node="model")[1]
    assert log.node_of(second) == "model"
    assert log.messages(second) == [
        {"type": "human", "content": "2 nights in Paris"},
        {
            "type": "ai",
            "content": "",
            "tool_calls": [{"name": "get_weather", "args": {"city": "Paris"}}],
        },
        {"type": "tool", "content": "Sunny in Paris", "name": "get_weather"},
    ]
    assert log.tool_calls(node="model") == [
        ("get_weather", {"city": "Paris"}),
        ("book", {"city": "Paris", "nights": 2}),
    ]


def test_modes_agree_with_agentevals_semantics(agent_run):
    rec, _ = agent_run
    for expected, mode in [
        (["book", "get_weather"], "strict"),
        (["get_weather"], "strict"),
        (["get_weather"], "unordered"),
        (["get_weather", "book", "book"], "superset"),
        (["get_weather"], "subset"),
    ]:
        with pytest.raises(AssertionError):
            assert_tool_calls(rec, expected, mode=mode)


def test_any_is_not_greedy_in_unordered_matching(agent_run):
    rec, _ = agent_run
    # ANY could take get_weather, leaving nothing for the narrower expectation;
    # a maximum matching pairs them the other way round.
    assert_tool_calls(rec, [ANY, ("get_weather", {"city": "Paris"})], mode="unordered")


def test_bad_expectations_name_the_item():
    rec = Recorder()
    with pytest.raises(TypeError, match=r"expected\[1\]=42 is not a tool call expectation"):
        assert_tool_calls(rec, ["a", 42])
    with pytest.raises(ValueError, match=r"mode='exact' is not a match mode; accepted: strict"):
        assert_tool_calls(rec, [], mode="exact")
    with pytest.raises(TypeError, match=r"spell a tool call as call.get_weather"):
        assert_tool_calls(rec, [call.get_weather("Paris")])
    with pytest.raises(TypeError, match=r"node='agent' needs an EventLog"):
        assert_tool_calls([], [], node="agent")


def _travel(rec):
    app = travel_app.build(
        FakeChatModel(script=travel_app.planner_script()),
        FakeChatModel(script=travel_app.quote_script()),
    )
    cfg = {"configurable": {"thread_id": "trip"}, "callbacks": [rec]}
    return app, cfg


def test_graph_interrupt_is_its_own_outcome_and_resume_finishes():
    rec = Recorder()
    app, cfg = _travel(rec)
    paused = app.invoke(travel_app.REQUEST, cfg)
    assert [i.value for i in paused["__interrupt__"]] == [
        {"approve": ["Paris: 120 EUR", "Rome: 95 EUR"]}
    ]
    log = rec.events
    assert list(log.errors()) == []
    # It unwinds through review, the subgraph, the node's function and the node.
    assert [(ev.run_name, ev.kind) for ev in log.interrupts()] == [
        ("review", "chain_error"),
        ("LangGraph", "chain_error"),
        ("approval", "chain_error"),
        ("approval", "chain_error"),
    ]
    assert [r.status for r in log.runs(name="review")] == ["interrupted"]
    assert log.roots()[0].status == "ok"
    assert log.normalized(times=False)[log.interrupts()[0].seq] == {
        "kind": "chain_error",
        "run": log.run(log.interrupts()[0]).label,
        "parent": log.run(log.run(log.interrupts()[0]).parent_id).label,
        "name": "review",
        "type": "chain",
        "tags": ["graph:step:1"],
        "interrupt": [
            {"$type": "Interrupt", "value": {"approve": ["Paris: 120 EUR", "Rome: 95 EUR"]}}
        ],
    }

    done = app.invoke(Command(resume="approved"), cfg)
    assert done["decision"] == "approved"
    log = rec.events
    resumed = log.roots()[1]
    assert log.normalized(times=False)[resumed.start]["inputs"] == {
        "$type": "Command",
        "resume": "approved",
    }
    assert [r.status for r in log.runs(name="review")] == ["interrupted", "ok"]
    assert_well_formed(log)


def test_graph_trajectory_fan_out_and_subgraph_nodes():
    rec = Recorder()
    app, cfg = _travel(rec)
    app.invoke(travel_app.REQUEST, cfg)
    app.invoke(Command(resume="approved"), cfg)
    assert_tool_calls(rec, [call.get_weather(city="Paris"), call.book(city="Paris", nights=2)])
    assert_tool_calls(rec, [], node="quote")
    assert_nodes(
        rec,
        [
            "agent", "tools", "agent", "tools", "agent", "fan_out", "quote", "quote",
            "approval", "approval/review", "approval", "approval/review",
        ],
    )  # fmt: skip
    log = rec.events
    # Subgraph runs keep their place: review runs under the subgraph, under approval.
    review = log.node_runs("approval/review")[0]
    assert [log.run(review.parent_id).name, log.parent(log.run(review.parent_id)).name] == [
        "LangGraph",
        "approval",
    ]
    quotes = sorted(log.text(r) or log.output_text(r) for r in log.model_runs(node="quote"))
    assert quotes == ["Paris: 120 EUR", "Rome: 95 EUR"]
    assert sorted(m[0]["content"] for m in map(log.messages, log.model_runs(node="quote"))) == [
        "Price of a night in Paris?",
        "Price of a night in Rome?",
    ]


def test_events_carry_the_scenario_task_name_through_gather_and_graph_tasks():
    import asyncio

    rec = Recorder()
    model = FakeChatModel(script=["a", "b", "c"])

    async def alice():
        cfg = {"callbacks": [rec]}
        await asyncio.gather(model.ainvoke("x", cfg), model.ainvoke("y", cfg))

    async def bob():
        app, cfg = _travel(rec)
        await app.ainvoke(travel_app.REQUEST, cfg)

    run_scenario(alice, bob, names=["alice", "bob"])
    by_task = {ev.task for ev in rec.events}
    assert by_task == {"alice", "bob"}
    assert {ev.task for ev in rec.events if ev.run_name in ("quote", "agent")} == {"bob"}


def test_fan_out_branches_share_a_step_and_resume_reads_in_the_timeline():
    rec = Recorder()
    app, cfg = _travel(rec)
    app.invoke(travel_app.REQUEST, cfg)
    app.invoke(Command(resume="approved"), cfg)
    log = rec.events
    assert [s for s in log.node_steps() if s[1] in ("fan_out", "quote", "approval")] == [
        (6, "fan_out"),
        (7, "quote"),
        (7, "quote"),
        (8, "approval"),
        (8, "approval"),
    ]
    resumed = log.roots()[1]
    lines = log.timeline(runs=[resumed], view="list").splitlines()
    assert lines[1].endswith("r30 LangGraph: resume 'approved'")
    interrupted = log.timeline(runs=log.runs(name="review"), view="list").splitlines()
    assert [line.split("  ")[-1] for line in interrupted[1:]] == [
        "r29 review: start",
        "r29 review: interrupt",
        "r34 review: start",
        "r34 review: end",
    ]
