"""Turn assignment that cannot race: input order for batch, rules for fan-outs, a detector."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.runnables import RunnableLambda, RunnableParallel
from langgraph.graph import END, START, StateGraph

from fakellm import FakeChatModel, Script, Turn, run_scenario
from tests.reliability import turn_order_app
from tests.reliability.conftest import ROOT, subprocess_env

pytest_plugins = ["pytester"]

GOLDEN = {
    "abatch": ["answer 0", "answer 1", "answer 2", "answer 3"],
    "batch": ["answer 0", "answer 1", "answer 2", "answer 3"],
    "nodes": ["summarize: a summary", "translate: une traduction"],
    "parallel": {"a": "one", "b": "two"},
    "send": ["rose is lovely", "lily is lovely", "tulip is lovely", "daisy is lovely"],
    "retry_batch": ["C", "A", "B"],
    "stock_loop": {
        "abatch": ["answer 0", "answer 1", "answer 2", "answer 3"],
        "retry": ["C", "A", "B"],
        "races": [
            "call #0 (thread 'MainThread') got turns[0]: Turn('one')",
            "call #1 (thread 'MainThread') got turns[1]: Turn('two')",
        ],
    },
    "agent": {
        "answers": ["sub two", "sub one", "sub three"],
        "events": [
            "start alpha",
            "start beta",
            "start alpha",
            "end sub one",
            "end sub two",
            "end sub three",
        ],
    },
    "hops": {
        "sequential": [["one", "two"], []],
        "concurrent": [["0", "turns[0]"], ["1", "turns[1]"]],
    },
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


# -- the detector: work the virtual loop hands to a thread and takes back ------------------


def hops(concurrent: bool) -> FakeChatModel:
    model = FakeChatModel(script=["one", "two"])

    async def main() -> None:
        if concurrent:
            await asyncio.gather(*(asyncio.to_thread(model.invoke, q) for q in "ab"))
        else:
            for q in "ab":
                await asyncio.to_thread(model.invoke, q)

    run_scenario(main)
    return model


def test_sync_calls_hopped_to_the_executor_one_after_the_other_do_not_race():
    # Each call runs in a worker thread, and the two may run in different ones;
    # the loop took the first result back before it handed the second call over.
    model = hops(concurrent=False)
    assert [c.turn.text for c in model.calls if c.turn] == ["one", "two"]
    assert model.races == []


def test_sync_nodes_of_an_async_graph_in_successive_steps_do_not_race():
    # LangGraph runs a sync node of an async graph on the executor: here the two
    # calls land on worker threads one step after the other.
    model = FakeChatModel(script=["one", "two"])
    graph = StateGraph(turn_order_app._Fan)
    graph.add_node("first", lambda _: {"answers": [model.invoke("a").text]})
    graph.add_node("second", lambda _: {"answers": [model.invoke("b").text]})
    graph.add_edge(START, "first")
    graph.add_edge("first", "second")
    graph.add_edge("second", END)
    app = graph.compile()

    async def main() -> list[str]:
        return list((await app.ainvoke({"answers": []}))["answers"])

    assert run_scenario(main).results[0] == ["one", "two"]
    assert model.races == []


def test_sync_calls_hopped_to_the_executor_at_once_still_race():
    lines = hops(concurrent=True).races
    parsed = [re.fullmatch(RACE_LINE, line) for line in lines]
    assert all(parsed), lines
    assert [(m[1], m[3], m[4]) for m in parsed if m] == [("0", "0", "one"), ("1", "1", "two")]


def test_a_thread_fakellm_did_not_hand_work_to_still_races_with_one_it_did():
    # A thread the test starts has no known hand-over: it may run at any time.
    model = FakeChatModel(script=["one", "two"])

    async def main() -> None:
        await asyncio.to_thread(model.invoke, "a")

    run_scenario(main)
    worker = threading.Thread(target=model.invoke, args=("b",), name="mine")
    worker.start()
    worker.join()
    assert [line.split(" got ")[0].split(" (")[0] for line in model.races] == [
        "call #0",
        "call #1",
    ]
    assert model.races[1] == "call #1 (thread 'mine') got turns[1]: Turn('two')"


def test_strict_teardown_passes_sequential_hops_and_fails_concurrent_ones(pytester):
    pytester.makepyfile(
        """
        import asyncio

        import pytest

        @pytest.mark.fakellm(virtual_time=True)
        @pytest.mark.asyncio
        async def test_sequential(fake_llm):
            model = fake_llm(["one", "two"])
            first = await asyncio.to_thread(model.invoke, "a")
            second = await asyncio.to_thread(model.invoke, "b")
            assert [first.text, second.text] == ["one", "two"]

        @pytest.mark.fakellm(virtual_time=True)
        @pytest.mark.asyncio
        async def test_concurrent(fake_llm):
            model = fake_llm(["one", "two"])
            await asyncio.gather(*(asyncio.to_thread(model.invoke, q) for q in "ab"))
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_concurrent*",
            "*fakellm teardown checks failed:",
            "",
            "Race: FakeChatModel(model_name='fake-chat-model') handed out queued turns "
            "in an order that thread scheduling decided:",
            "  - call #0 (thread 'asyncio_*') got turns[[]0]: Turn('one')",
            "  - call #1 (thread 'asyncio_*') got turns[[]1]: Turn('two')",
        ]
    )
    assert "test_sequential" not in "\n".join(
        line for line in result.outlines if "ERROR at teardown" in line
    )


# -- batch and abatch: every turn of input i, retries included, on any loop ----------------


def test_with_retry_batch_takes_turns_round_by_round_in_input_order():
    model = FakeChatModel(script=turn_order_app._failing_script())
    retry = model.with_retry(wait_exponential_jitter=False, stop_after_attempt=3)
    assert [r.text for r in retry.batch(["a", "b", "c"])] == ["C", "A", "B"]
    # (input, turn it took, retry tags of the call) in take order: LangChain's rounds
    taken = [
        (c.last_human_message, c.turn.describe() if c.turn else None, sorted(c.tags))
        for c in model.calls
    ]
    assert taken == [
        ("a", "Turn(error=ValueError('boom') at_chunk=0)", []),
        ("b", "Turn('A')", []),
        ("c", "Turn(error=ValueError('x') at_chunk=0)", []),
        ("a", "Turn(error=ValueError('y') at_chunk=0)", ["retry:attempt:2"]),
        ("c", "Turn('B')", ["retry:attempt:2"]),
        ("a", "Turn('C')", ["retry:attempt:3"]),
    ]
    assert model.races == []


def test_with_retry_abatch_on_a_stock_loop_takes_the_same_rounds():
    model = FakeChatModel(script=turn_order_app._failing_script())
    retry = model.with_retry(wait_exponential_jitter=False, stop_after_attempt=3)

    async def main() -> list[str]:
        return [r.text for r in await retry.abatch(["a", "b", "c"])]

    assert asyncio.run(main()) == ["C", "A", "B"]
    assert [c.last_human_message for c in model.calls] == ["a", "b", "c", "a", "c", "a"]


def test_batch_input_whose_retries_run_out_returns_its_error_in_place():
    model = FakeChatModel(
        script=[Turn(error=ValueError("one")), "A", "B", Turn(error=ValueError("two"))]
    )
    retry = model.with_retry(wait_exponential_jitter=False, stop_after_attempt=2)
    got = retry.batch(["a", "b", "c"], return_exceptions=True)
    assert [type(g).__name__ if isinstance(g, Exception) else g.text for g in got] == [
        "ValueError",
        "A",
        "B",
    ]
    assert str(got[0]) == "two"


def test_abatch_on_a_stock_loop_keeps_input_order_when_an_earlier_hop_ends_last():
    assert turn_order_app.stock_loop_abatches()["abatch"] == [f"answer {i}" for i in range(4)]


def test_batch_and_abatch_honour_max_concurrency():
    model = FakeChatModel(script=[f"answer {i}" for i in range(6)])
    config: Any = {"max_concurrency": 2}
    assert [r.text for r in model.batch(["q0", "q1", "q2"], config)] == [
        "answer 0",
        "answer 1",
        "answer 2",
    ]

    async def main() -> list[str]:
        return [r.text for r in await model.abatch(["q3", "q4", "q5"], config)]

    assert asyncio.run(main()) == ["answer 3", "answer 4", "answer 5"]


# -- a stock event loop: concurrent calls that hop to the executor first -------------------


def stock_loop_calls(*, concurrent: bool, handler: bool) -> list[str]:
    model = FakeChatModel(script=["one", "two"])
    config: Any = {"callbacks": [turn_order_app._PlainHandler()]} if handler else None

    async def main() -> None:
        if concurrent:
            await asyncio.gather(model.ainvoke("a", config), model.ainvoke("b", config))
        else:
            await model.ainvoke("a", config)
            await model.ainvoke("b", config)

    asyncio.run(main())
    return model.races


def test_concurrent_calls_that_hop_on_a_stock_loop_are_reported():
    # The sync handler runs on the executor before each call takes its turn;
    # on a stock loop the thread that ends first decides who goes first.
    assert stock_loop_calls(concurrent=True, handler=True) == [
        "call #0 (thread 'MainThread') got turns[0]: Turn('one')",
        "call #1 (thread 'MainThread') got turns[1]: Turn('two')",
    ]


def test_stock_loop_calls_that_do_not_hop_or_run_in_turn_are_not():
    assert stock_loop_calls(concurrent=False, handler=True) == []
    assert stock_loop_calls(concurrent=True, handler=False) == []


def test_abatch_with_an_async_responder_runs_its_inputs_concurrently():
    # An async responder's promise is the input's one turn: the next input takes at
    # once (they used to wait for each other: 3.0 virtual seconds, or a deadlock for
    # responders that wait on each other).
    from fakellm import Rule

    async def slow(call: Any) -> str:
        await asyncio.sleep(1)
        return f"answer to {call.last_human_message}"

    model = FakeChatModel(script=Script(rules=[Rule(responder=slow)]))

    async def main() -> list[str]:
        replies = await model.abatch(["a", "b", "c"])
        return [r.text for r in replies]

    result = run_scenario(main)
    assert result.results[0] == ["answer to a", "answer to b", "answer to c"]
    assert result.elapsed == 1.0

    barrier_model = FakeChatModel(script=Script(rules=[Rule(responder=_meet)]))

    async def on_a_stock_loop() -> list[str]:
        global _BARRIER
        _BARRIER = asyncio.Barrier(2)
        return [r.text for r in await barrier_model.abatch(["x", "y"])]

    assert asyncio.run(on_a_stock_loop()) == ["met", "met"]


_BARRIER: asyncio.Barrier | None = None


async def _meet(call: Any) -> str:
    assert _BARRIER is not None
    await asyncio.wait_for(_BARRIER.wait(), 10)
    return "met"
