"""Lossless normalized traces, their one-line text form and golden files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import tenacity
from langchain_core.agents import AgentAction
from langchain_core.runnables import RunnableLambda
from pydantic import BaseModel

from fakellm import Recorder
from fakellm.assertions import assert_trace

HERE = Path(__file__).parent
GOLDEN = HERE / "traces" / "travel.txt"

SCENARIO = f"""
import sys
sys.path.insert(0, {str(HERE)!r})
import travel_app
from fakellm import FakeChatModel, Recorder, run_scenario
from langgraph.types import Command

def travel_trace():
    rec = Recorder()
    app = travel_app.build(
        FakeChatModel(script=travel_app.planner_script()),
        FakeChatModel(script=travel_app.quote_script()),
    )
    cfg = {{"configurable": {{"thread_id": "t"}}, "callbacks": [rec]}}

    async def trip():
        await app.ainvoke(travel_app.REQUEST, cfg)
        await app.ainvoke(Command(resume="approved"), cfg)

    run_scenario(trip, names=["trip"])
    return rec.events
"""


def _travel_log():
    ns: dict = {}
    exec(SCENARIO, ns)
    return ns["travel_trace"]()


class Flower(BaseModel):
    name: str
    colours: set[str]


def test_structured_outputs_sets_agent_actions_and_retry_state_survive():
    rec = Recorder()
    chain = RunnableLambda(lambda q: Flower(name="rose", colours={"red", "pink", "white"}))
    chain.invoke("?", {"callbacks": [rec]})
    assert rec.events.normalized()[-1]["outputs"] == {
        "$type": "Flower",
        "name": "rose",
        "colours": ["pink", "red", "white"],
    }
    run = uuid.uuid4()
    rec.on_chain_start({}, {}, run_id=run, name="agent")
    rec.on_agent_action(
        AgentAction(tool="search", tool_input={"q": "roses"}, log="..."), run_id=run
    )
    state = tenacity.RetryCallState(None, None, (), {})
    state.attempt_number = 2
    state.set_exception((ValueError, ValueError("flaky"), None))
    rec.on_retry(state, run_id=run)
    rows = rec.events.normalized(times=False)
    assert rows[-2]["data"] == {
        "$type": "AgentAction",
        "tool": "search",
        "tool_input": {"q": "roses"},
        "log": "...",
        "type": "AgentAction",
    }
    assert rows[-1]["data"] == {
        "$type": "RetryCallState",
        "attempt": 2,
        "error": "ValueError: flaky",
    }


def test_text_form_is_one_line_per_event_and_holds_what_normalized_holds():
    log = _travel_log()
    lines = log.to_text().splitlines()
    assert len(lines) == len(log)
    assert lines[0] == (
        '+0.000000 r1 chain_start "LangGraph" type="chain" inputs={"cities":["Paris","Rome"],'
        '"messages":[["human","Plan 2 nights in Paris"]]}'
    )
    assert lines[4] == (
        '+0.000000 r4 llm_end "FakeChatModel" text="" tool_calls=[{"args":{"city":"Paris"},'
        '"name":"get_weather"}] usage={"input_tokens":5,"output_tokens":1,"total_tokens":6} '
        'model="fake-chat-model"'
    )
    # Every normalized value appears in its line: nothing is lost on the way.
    for row, line in zip(log.normalized(), lines, strict=True):
        assert row["kind"] in line
        assert (row["run"] or "-") in line
    interrupted = [line for line in lines if " interrupt=" in line]
    assert len(interrupted) == 4
    assert all("chain_error" in line for line in interrupted)


def test_travel_trace_matches_its_golden_file():
    assert_trace(_travel_log(), "traces/travel.txt")


def test_the_trace_is_identical_under_three_hash_seeds_and_on_two_xdist_workers(tmp_path):
    """Fresh processes, run side by side: seeds 0 and 1 print the trace; seed 2
    runs two tests on two xdist workers, each comparing with the golden file."""
    script = SCENARIO + "\nsys.stdout.write(travel_trace().to_text() + '\\n')\n"
    suite = tmp_path / "test_two.py"
    suite.write_text(
        SCENARIO
        + f"""
from fakellm.assertions import assert_trace

def test_a():
    assert_trace(travel_trace(), {str(GOLDEN)!r})

def test_b():
    assert_trace(travel_trace(), {str(GOLDEN)!r})
""",
        encoding="utf-8",
    )
    runs = [
        ("0", [sys.executable, "-c", script]),
        ("1", [sys.executable, "-c", script]),
        ("2", [sys.executable, "-m", "pytest", "-p", "xdist.plugin", "-v", "-n", "2", str(suite)]),
    ]
    procs = [
        subprocess.Popen(
            cmd,
            # Only xdist: the other installed plugins would cost each process seconds.
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed, cmd in runs
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    golden = GOLDEN.read_text(encoding="utf-8")
    assert [out for out, _ in outputs[:2]] == [golden, golden]
    report = outputs[2][0]
    assert "2 passed" in report
    assert "[gw0] [" in report  # one test on each worker
    assert "[gw1] [" in report


def test_assert_trace_writes_compares_and_explains(pytester):
    pytester.makepyfile(
        test_golden="""
import json
import os
from fakellm import FakeChatModel, Recorder, virtual_time
from fakellm.assertions import assert_trace

def test_poem():
    rec = Recorder()
    model = FakeChatModel(script=[os.environ.get("ANSWER", "Roses are red.")])
    with virtual_time():
        model.invoke("A poem?", config={"callbacks": [rec]})
    assert_trace(rec, "traces/poem.txt")
"""
    )
    missing = pytester.runpytest("-p", "no:cacheprovider", "--tb=short")
    missing.assert_outcomes(failed=1)
    missing.stdout.fnmatch_lines(
        [
            "E   *: no golden trace at */traces/poem.txt.",
            "E   Run pytest with --fakellm-update-traces*",
        ]
    )
    pytester.runpytest(
        "-p", "no:cacheprovider", "--tb=short", "--fakellm-update-traces"
    ).assert_outcomes(passed=1)
    golden = (pytester.path / "traces" / "poem.txt").read_text(encoding="utf-8")
    assert golden.splitlines()[0] == (
        '+0.000000 r1 chat_model_start "FakeChatModel" type="chat_model" '
        'inputs=[[{"content":"A poem?","type":"human"}]]'
    )
    pytester.runpytest("-p", "no:cacheprovider", "--tb=short").assert_outcomes(passed=1)
    os.environ["ANSWER"] = "Violets are blue."
    try:
        changed = pytester.runpytest("-p", "no:cacheprovider", "--tb=short")
    finally:
        del os.environ["ANSWER"]
    changed.assert_outcomes(failed=1)
    changed.stdout.fnmatch_lines(
        [
            "E   *: trace differs from */traces/poem.txt.",
            "E   --- poem.txt (expected)",
            "E   +++ actual",
            "E   @@ *",
            '*-+0.000000 r1 llm_end "FakeChatModel" text="Roses are red."*',
            '*++0.000000 r1 llm_end "FakeChatModel" text="Violets are blue."*',
            "E   If the change is intended, run pytest with --fakellm-update-traces*",
        ]
    )


def test_assert_trace_rejects_a_bad_path():
    with pytest.raises(TypeError, match=r"path=3 must be a file path"):
        assert_trace(Recorder(), 3)  # type: ignore[arg-type]


def _parse_text(text):
    """Read to_text() back into normalized() rows: proof that it loses nothing."""
    decoder = json.JSONDecoder()
    rows, runs = [], {}
    for line in text.splitlines():
        head, _, rest = line.partition(" ")
        time = None
        if head[0] in "+-":
            time, (head, _, rest) = float(head), rest.partition(" ")
        run, _, parent = head.partition("<")
        kind, _, rest = rest.partition(" ")
        name, end = decoder.raw_decode(rest)
        fields = {}
        rest = rest[end:]
        while rest:
            key, _, rest = rest.lstrip(" ").partition("=")
            fields[key], end = decoder.raw_decode(rest)
            rest = rest[end:]
        known = runs.get(run, {"parent": None, "type": None, "tags": []})
        known = {
            "parent": parent or (known["parent"] if run in runs else None),
            "type": fields.pop("type", known["type"]),
            "tags": fields.pop("tags", known["tags"]),
        }
        runs[run] = known
        row = {"kind": kind, "run": None if run == "-" else run, **known, "name": name}
        if time is not None:
            row["time"] = time
        rows.append({**row, **fields})
    return rows


def test_text_form_reads_back_into_the_normalized_log():
    log = _travel_log()
    assert _parse_text(log.to_text()) == log.normalized()
    assert _parse_text(log.to_text(times=False)) == log.normalized(times=False)


class Bloom(BaseModel):
    name: str
    petals: int


def test_with_structured_output_keeps_the_object_and_the_tool_call():
    from fakellm import FakeChatModel, ToolCall, Turn

    model = FakeChatModel(
        script=[Turn(tool_calls=[ToolCall("Bloom", {"name": "rose", "petals": 5})])]
    )
    rec = Recorder()
    assert model.with_structured_output(Bloom).invoke("?", {"callbacks": [rec]}) == Bloom(
        name="rose", petals=5
    )
    assert rec.events.to_text(times=False).splitlines()[2:] == [
        'r2 llm_end "FakeChatModel" text="" tool_calls=[{"args":{"name":"rose","petals":5},'
        '"name":"Bloom"}] usage={"input_tokens":1,"output_tokens":2,"total_tokens":3} '
        'model="fake-chat-model"',
        'r3<r1 chain_start "PydanticToolsParser" type="parser" tags=["seq:step:2"] '
        'inputs={"content":"","tool_calls":[{"args":{"name":"rose","petals":5},"name":"Bloom"}],'
        '"type":"ai"}',
        'r3 chain_end "PydanticToolsParser" outputs={"$type":"Bloom","name":"rose","petals":5}',
        'r1 chain_end "RunnableSequence" outputs={"$type":"Bloom","name":"rose","petals":5}',
    ]
