"""Determinism: one scenario, one trace, whatever the process, hash seed or worker.

The scenario (``scenario.py``): 10 concurrent conversations on a virtual-time
loop, each with a tool call, an async tool, a streamed answer (every third
fails mid-stream and is retried), a shared judge model behind a chain, and
three handlers (the Recorder, a user's async handler, a user's inline handler).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import datetime, timedelta

import pytest

from tests.reliability import scenario
from tests.reliability.conftest import ROOT, subprocess_env

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def golden() -> str:
    return scenario.dumps(scenario.run())


def test_the_scenario_does_what_it_says(golden):
    outcome = json.loads(golden)
    assert outcome["elapsed"] == 2.55
    assert [text for text, _ in outcome["results"]] == [
        f"conversation {i}: flower{i} it is" for i in range(10)
    ]
    # The judge's turns went out in the order the conversations reached it.
    assert [verdict for _, verdict in outcome["results"]] == [
        f"verdict {k}: fine" for k in (5, 0, 1, 7, 2, 3, 8, 4, 6, 9)
    ]
    assert Counter(ev["kind"] for ev in outcome["trace"]) == {
        "chain_start": 30,
        "chain_end": 30,
        "chat_model_start": 34,
        "llm_new_token": 58,
        "llm_end": 30,
        "llm_error": 4,
        "tool_start": 10,
        "tool_end": 10,
    }
    errors = [ev["error"] for ev in outcome["trace"] if ev["kind"] == "llm_error"]
    assert errors == ["APIConnectionError: connection error (scripted by fakellm)"] * 4
    assert outcome["tokens_counted"] == 58  # the user's async handler saw every token
    assert outcome["unused"] == [[]] * 11


def test_wall_times_follow_the_virtual_clock_exactly(golden):
    outcome = json.loads(golden)
    start = scenario.START
    assert [datetime.fromisoformat(w) for w in outcome["wall"]] == [
        start + timedelta(microseconds=round(t * 1_000_000)) for t in outcome["clock"]
    ]
    assert outcome["wall"][-1] == "2024-05-01T09:30:02.550000"
    # A user's handler reading datetime.now() sees the same frozen instants.
    ends = [
        w
        for w, ev in zip(outcome["wall"], outcome["trace"], strict=True)
        if ev["kind"] == "llm_end"
    ]
    assert outcome["end_wall_times"] == ends


def test_many_runs_in_one_process_give_one_trace(golden):
    assert {scenario.dumps(scenario.run()) for _ in range(15)} == {golden}


def test_subprocesses_with_other_hash_seeds_give_the_same_trace(golden):
    seeds = ["0", "1", "12345"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.scenario"],
            cwd=ROOT,
            env=subprocess_env(PYTHONHASHSEED=seed),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in seeds
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outputs]
    assert [out for out, _ in outputs] == [golden] * 3


XDIST_TESTS = textwrap.dedent(
    """
    import os
    import pytest
    from tests.reliability import scenario

    @pytest.mark.parametrize("copy", range(4))
    def test_scenario(copy, worker_id):
        out = os.path.join(os.environ["TRACE_DIR"], f"{worker_id}-{copy}.json")
        with open(out, "w") as f:
            f.write(scenario.dumps(scenario.run()))
    """
)


def test_xdist_workers_give_the_same_trace(golden, pytester, monkeypatch, tmp_path):
    pytest.importorskip("xdist")
    traces = tmp_path / "traces"
    traces.mkdir()
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_xdist_copies=XDIST_TESTS)
    monkeypatch.setenv("TRACE_DIR", str(traces))
    monkeypatch.setenv("PYTHONPATH", subprocess_env()["PYTHONPATH"])
    # Third-party plugins that play no part here are left out: worker start-up is the cost.
    unrelated = [
        arg for name in ("benchmark", "codspeed", "recording") for arg in ("-p", f"no:{name}")
    ]
    # The controller runs in this process; the two workers are fresh interpreters.
    result = pytester.runpytest_inprocess(
        "-n", "2", "-p", "xdist", "-p", "no:cacheprovider", *unrelated
    )
    result.assert_outcomes(passed=4)
    files = sorted(traces.iterdir())
    assert {f.name.split("-")[0] for f in files} == {"gw0", "gw1"}
    assert [f.read_text() for f in files] == [golden] * 4
