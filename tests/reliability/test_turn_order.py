"""Turn assignment that cannot race: input order for batch, rules for fan-outs, a detector."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from langchain_core.runnables import RunnableLambda, RunnableParallel

from fakellm import FakeChatModel, Script
from tests.reliability import turn_order_app
from tests.reliability.conftest import ROOT, subprocess_env

pytest_plugins = ["pytester"]

GOLDEN = {
    "abatch": ["answer 0", "answer 1", "answer 2", "answer 3"],
    "batch": ["answer 0", "answer 1", "answer 2", "answer 3"],
    "nodes": ["summarize: a summary", "translate: une traduction"],
    "parallel": {"a": "one", "b": "two"},
    "send": ["rose is lovely", "lily is lovely", "tulip is lovely", "daisy is lovely"],
}


def test_each_fan_out_gets_the_routed_or_input_order_answer():
    assert turn_order_app.outcome() == GOLDEN


def test_thirty_fresh_processes_under_three_hash_seeds_give_one_result():
    # The races are first-call races: a warm process hides them, so every run
    # is a fresh interpreter. 3 seeds x 10 processes, a small pool.
    def one(seed: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "tests.reliability.turn_order_app"],
            cwd=ROOT,
            env=subprocess_env(PYTHONHASHSEED=seed),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return done.stdout.strip()

    with ThreadPoolExecutor(3) as pool:
        outputs = list(pool.map(one, [seed for seed in ("0", "1", "4242") for _ in range(10)]))
    assert Counter(outputs) == Counter({json.dumps(GOLDEN, sort_keys=True): 30})


def unrouted_fan_out(script: Script) -> tuple[FakeChatModel, dict[str, str]]:
    model = FakeChatModel(script=script)
    fan = RunnableParallel(
        a=RunnableLambda(lambda _: "first") | model,
        b=RunnableLambda(lambda _: "second") | model,
    )
    return model, {k: v.text for k, v in fan.invoke(None).items()}


RACE_LINE = r"call #(\d) \(thread '([^']+)'\) got turns\[(\d)\]: Turn\('(one|two)'\)"


def test_the_detector_names_each_call_its_thread_and_turn():
    model, got = unrouted_fan_out(Script(turns=["one", "two"]))
    assert sorted(got.values()) == ["one", "two"]  # which branch got which: the threads'
    lines = model.races
    assert len(lines) == 2
    parsed = [re.fullmatch(RACE_LINE, line) for line in lines]
    assert all(parsed), lines
    assert [(m[1], m[3], m[4]) for m in parsed if m] == [("0", "0", "one"), ("1", "1", "two")]
    assert all(m[2] != threading.main_thread().name for m in parsed if m)


def test_opting_out_and_sequential_use_record_no_race():
    model, _ = unrouted_fan_out(Script(turns=["one", "two"], allow_races=True))
    assert model.races == []
    sequential = FakeChatModel(script=["one", "two"])
    sequential.invoke("a")
    worker = threading.Thread(target=sequential.invoke, args=("b",))
    worker.start()
    worker.join()
    assert sequential.races == []  # one call in a thread has nothing to race with


def test_strict_teardown_fails_an_unrouted_fan_out_with_the_fix(pytester):
    pytester.makepyfile(
        """
        from langchain_core.runnables import RunnableLambda, RunnableParallel

        def test_fan_out(fake_llm):
            model = fake_llm(["one", "two"])
            fan = RunnableParallel(
                a=RunnableLambda(lambda _: "first") | model,
                b=RunnableLambda(lambda _: "second") | model,
            )
            fan.invoke(None)
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "fakellm teardown checks failed:",
            "",
            "Race: FakeChatModel(model_name='fake-chat-model') handed out queued turns "
            "in an order that thread scheduling decided:",
            # fnmatch: [[] is a literal "[" (thread names vary by process)
            "  - call #0 (thread '*') got turns[[]0]: Turn('one')",
            "  - call #1 (thread '*') got turns[[]1]: Turn('two')",
            "Another run may give these calls each other's turns. Route them by what they "
            "ask with rules (Rule(match=...), Rule(match_last=...), Rule(node=...) for "
            "LangGraph nodes), call model.batch(...) (it keeps input order), or, if any "
            "order is fine, opt out with Script(..., allow_races=True).",
        ]
    )
