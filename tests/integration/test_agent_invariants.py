"""The invariants and trajectories of fakellm.fuzz on real agents: create_agent
with middleware, hand-built LangGraph graphs (ToolNode, parallel calls,
interrupts), sync and async, replayed from scripts with exact outcomes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import AnyMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import StructuredTool, tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition

from fakellm import FakeChatModel, Script, ToolCall, Turn, errors, fuzz

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@tool
def lookup(city: str) -> str:
    """The weather in a city."""
    if city == "Atlantis":
        raise ValueError("no such city")
    return f"sunny in {city}"


@tool
async def alookup(city: str) -> str:
    """The weather in a city (async)."""
    return f"sunny in {city}"


def _loose(**kwargs: Any) -> str:
    return f"noted {kwargs}"


# A dict schema: langchain-core does not validate the arguments of such a tool.
note = StructuredTool.from_function(
    func=_loose,
    name="note",
    description="Take a note.",
    args_schema={
        "type": "object",
        "properties": {"text": {"type": "string"}},
        "required": ["text"],
    },
)

ASK = {"messages": [("user", "Weather in Paris?")]}


def scripted(*turns: Turn) -> FakeChatModel:
    return FakeChatModel(script=Script(list(turns)))


def call(name: str, **args: Any) -> Turn:
    return Turn(tool_calls=[ToolCall(name, args)])


def test_a_replayed_create_agent_run_lists_steps_tools_and_usage():
    model = scripted(call("lookup", city="Paris"), Turn("Sunny."))
    agent = create_agent(model, tools=[lookup])
    run = fuzz.play(lambda: agent.invoke(ASK), model=model)

    assert run.trajectory() == (
        "Agent trajectory (2 model calls; the agent returned):\n"
        '  step 0: tool call lookup({"city": "Paris"})\n'
        "      lookup returned 'sunny in Paris'\n"
        "  step 1: text 'Sunny.'"
    )
    assert [s.kind for s in run.steps] == ["tool_calls", "text"]
    assert run.steps[0].tools[0].id == "call_0_0"
    assert run.steps[0].tools[0].run is run.tool_runs[0]
    assert run.tool_runs[0].args == {"city": "Paris"}
    assert run.tool_runs[0].step == 0
    # Usage as the fake reported it: input by its token counter, one output token per chunk.
    assert [s.usage for s in run.steps] == [
        {"input_tokens": 4, "output_tokens": 1, "total_tokens": 5},
        {"input_tokens": 17, "output_tokens": 1, "total_tokens": 18},
    ]
    assert run.usage == {"input_tokens": 21, "output_tokens": 2, "total_tokens": 23}
    replies = [m for m in run.result["messages"] if m.type == "ai"]
    assert [m.usage_metadata for m in replies] == [s.usage for s in run.steps]
    assert run.script() == Script([call("lookup", city="Paris"), Turn("Sunny.")])
    run.check(
        fuzz.terminates(within=2),
        fuzz.final_text(),
        fuzz.no_tool_errors(handled=False),
        fuzz.token_budget(total=23),
        fuzz.valid_arguments(),
    )


def test_every_broken_invariant_is_named_with_the_trajectory():
    model = scripted(call("lookup", city="Paris"), Turn("Sunny."))
    agent = create_agent(model, tools=[lookup])
    run = fuzz.play(lambda: agent.invoke(ASK), model=model)

    with pytest.raises(fuzz.InvariantError) as info:
        run.check(
            fuzz.terminates(within=1),
            fuzz.token_budget(total=22, output=5),
            fuzz.before("confirm", "lookup"),
        )
    assert str(info.value) == (
        "the agent broke 3 invariants:\n"
        "- terminates(within=1): the agent made 2 model calls\n"
        "- token_budget(total=22, output=5): the run used 23 total tokens (budget 22); "
        "total tokens per model call: [5, 18]\n"
        "- before('confirm', 'lookup'): lookup ran at step 0 with {\"city\": \"Paris\"} "
        "before any confirm had ended at an earlier step\n" + run.trajectory()
    )


def test_an_unhandled_tool_error_is_the_agents_exception():
    model = scripted(call("lookup", city="Atlantis"))
    agent = create_agent(model, tools=[lookup])
    with pytest.raises(ValueError, match="no such city"):
        fuzz.play(lambda: agent.invoke(ASK), model=model)

    model = scripted(call("lookup", city="Atlantis"))
    agent = create_agent(model, tools=[lookup])
    run = fuzz.play(lambda: agent.invoke(ASK), model=model, raises=False)
    assert isinstance(run.exception, ValueError)
    assert run.trajectory().splitlines()[1:] == [
        '  step 0: tool call lookup({"city": "Atlantis"})',
        "      lookup raised ValueError: no such city",
    ]
    with pytest.raises(fuzz.InvariantError) as info:
        run.check(fuzz.no_tool_errors())
    assert str(info.value).splitlines()[1] == (
        "- no_tool_errors(handled=True): the tool lookup raised ValueError: no such city "
        "and the agent did not handle it"
    )


def _graph(model: Any, tools: list[Any], **node: Any) -> Any:
    class State(TypedDict):
        messages: Annotated[list[AnyMessage], add_messages]

    bound = model.bind_tools(tools)

    def agent(state: State) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    async def aagent(state: State) -> dict[str, Any]:
        return {"messages": [await bound.ainvoke(state["messages"])]}

    graph = StateGraph(State)
    graph.add_node("agent", RunnableLambda(agent, afunc=aagent))
    graph.add_node("tools", ToolNode(tools, **node))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition, {"tools": "tools", END: END})
    graph.add_edge("tools", "agent")
    return graph.compile()


def test_a_tool_error_the_graph_handles_is_fine_unless_asked_otherwise():
    model = scripted(call("lookup", city="Atlantis"), Turn("No such city."))
    graph = _graph(model, [lookup], handle_tool_errors=True)
    run = fuzz.play(graph.ainvoke(ASK), model=model)

    assert run.trajectory().splitlines()[1:3] == [
        '  step 0: tool call lookup({"city": "Atlantis"})',
        "      lookup raised ValueError: no such city",
    ]
    assert run.steps[0].tools[0].reply.status == "error"
    run.check(fuzz.no_tool_errors(), fuzz.final_text(), fuzz.terminates(within=2))
    with pytest.raises(fuzz.InvariantError, match=r"the tool lookup raised ValueError: no such"):
        run.check(fuzz.no_tool_errors(handled=False))


def test_parallel_calls_on_an_async_tool_node_keep_the_models_order():
    model = scripted(
        Turn(tool_calls=[ToolCall("alookup", {"city": c}) for c in ("Oslo", "Lima", "Rome")]),
        Turn("All sunny."),
    )
    graph = _graph(model, [alookup])
    run = fuzz.play(graph.ainvoke(ASK), model=model)

    assert [(r.args["city"], r.step, r.status) for r in run.tool_runs] == [
        ("Oslo", 0, "ok"),
        ("Lima", 0, "ok"),
        ("Rome", 0, "ok"),
    ]
    assert run.trajectory().splitlines()[1] == (
        '  step 0: parallel tool calls alookup({"city": "Oslo"}) + alookup({"city": "Lima"})'
        ' + alookup({"city": "Rome"})'
    )
    assert run.result["messages"][-1].text == "All sunny."


def test_valid_arguments_catches_a_tool_run_with_arguments_its_schema_rejects():
    model = scripted(call("note", text=5), Turn("Noted."))
    agent = create_agent(model, tools=[note])
    run = fuzz.play(lambda: agent.invoke(ASK), model=model)
    assert run.tool_runs[0].status == "ok"  # nothing stopped it
    with pytest.raises(fuzz.InvariantError) as info:
        run.check(fuzz.valid_arguments())
    assert str(info.value).splitlines()[1] == (
        "- valid_arguments(): note ran at step 0 with {'text': 5}, which breaks its schema: "
        "5 is not of type 'string'"
    )

    # A pydantic-schema tool rejects the same mistake before its body runs: fine.
    model = scripted(call("lookup", city=5), Turn("Sorry."))
    agent = create_agent(model, tools=[lookup])
    run = fuzz.play(lambda: agent.invoke(ASK), model=model)
    assert run.tool_runs[0].rejected_arguments
    run.check(fuzz.valid_arguments(), fuzz.final_text())


def test_final_text_needs_a_text_answer_the_agent_returned():
    model = scripted(Turn(error=errors.RateLimitError))
    agent = create_agent(model, tools=[lookup])
    run = fuzz.play(lambda: agent.invoke(ASK), model=model, raises=False)
    assert run.trajectory() == (
        "Agent trajectory (1 model call; the agent raised RateLimitError: rate limit exceeded "
        "(scripted by fakellm)):\n"
        "  step 0: the model call failed: RateLimitError: rate limit exceeded (scripted by fakellm)"
    )
    with pytest.raises(
        fuzz.InvariantError, match=r"final_text\(\): the agent raised RateLimitError"
    ):
        run.check(fuzz.final_text())


def reviewed(model: Any, weather: Any) -> Any:
    """An agent that pauses for a reviewer before every call of ``weather``."""
    return create_agent(
        model,
        tools=[weather],
        middleware=[HumanInTheLoopMiddleware(interrupt_on={weather.name: True})],
        checkpointer=InMemorySaver(),
    )


def test_an_interrupt_is_resumed_with_a_given_answer_and_shows_in_the_trajectory():
    model = scripted(call("lookup", city="Paris"), Turn("Done."))
    agent = reviewed(model, lookup)
    approve = {"decisions": [{"type": "approve"}]}
    run = fuzz.play(lambda: fuzz.resume(agent, ASK, answer=approve), model=model)

    assert len(run.resumes) == 1
    assert run.resumes[0].after_step == 1
    assert run.resumes[0].answer == approve
    assert run.trajectory() == (
        "Agent trajectory (2 model calls; the agent returned):\n"
        '  step 0: tool call lookup({"city": "Paris"})\n'
        "      interrupt {'action_requests': [{'name': 'lookup', 'args': {'city': 'Paris'}, "
        "'descripti... resumed with {'decisions': [{'type': 'approve'}]}\n"
        "      lookup returned 'sunny in Paris'\n"
        "  step 1: text 'Done.'"
    )
    run.check(fuzz.final_text())


@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(fuzz.decisions(max_steps=2, text=0))
def test_interrupt_answers_drawn_in_the_example_are_recorded(decisions):
    agent = reviewed(decisions.model, alookup)
    decision = st.sampled_from([{"type": "approve"}, {"type": "reject", "message": "no"}])

    def answers(interrupt: Any) -> st.SearchStrategy[Any]:
        n = len(interrupt["action_requests"])  # one decision per paused tool call
        return st.lists(decision, min_size=n, max_size=n).map(lambda d: {"decisions": d})

    async def go() -> Any:
        return await fuzz.aresume(agent, ASK, answer=answers)

    run = decisions.play(go)
    assert run.resumes
    for r in run.resumes:
        assert [d["type"] in ("approve", "reject") for d in r.answer["decisions"]] == [True] * len(
            r.interrupts[0]["action_requests"]
        )
    run.check(fuzz.terminates(within=3))


def test_a_strategy_answer_needs_a_running_play():
    model = scripted(call("lookup", city="Paris"), Turn("Done."))
    agent = reviewed(model, lookup)
    with pytest.raises(TypeError, match=r"answer= is a strategy, so resume\(\) must run inside"):
        fuzz.play(lambda: fuzz.resume(agent, ASK, answer=st.just(1)), model=model)


def test_check_refuses_what_is_not_an_invariant_and_takes_custom_ones():
    model = scripted(Turn("Hi."))
    run = fuzz.play(lambda: model.invoke("hi"), model=model)
    with pytest.raises(TypeError, match=r"is not an Invariant"):
        run.check(lambda r: None)  # type: ignore[arg-type]
    short = fuzz.Invariant(
        "short", lambda r: None if len(r.steps[0].turn.text) <= 3 else "too long"
    )
    short(run)
    assert repr(short) == "short"
    assert fuzz.token_budget(input=1).name == "token_budget(input=1)"


def test_play_refuses_what_it_cannot_run_and_can_freeze_the_clock():
    model = scripted(Turn("Hi.", first_token_delay=2.5))
    with pytest.raises(TypeError, match=r"target=42: expected a zero-argument callable"):
        fuzz.play(42, model=model)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"model='m': expected the FakeChatModel"):
        fuzz.play(lambda: None, model="m")  # type: ignore[arg-type]

    def ask_and_read_the_clock() -> str:
        model.invoke("hi")
        return datetime.now().isoformat()

    run = fuzz.play(ask_and_read_the_clock, model=model, freeze=True)
    assert run.result == "2024-01-01T00:00:02.500000"
    assert run.elapsed == 2.5


@settings(max_examples=5, deadline=None, derandomize=True, database=None)
@given(fuzz.decisions())
def test_decisions_draw_takes_strategies_only(decisions):
    with pytest.raises(InvalidArgument, match=r"strategy=3: expected a Hypothesis strategy"):
        decisions.draw(3)
    assert decisions.draw(st.just("yes")) == "yes"
