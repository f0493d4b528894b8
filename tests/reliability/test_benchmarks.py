"""The benchmarks time things the way their figures claim, against a correct floor,
and the runner prints every row. Timings themselves are never asserted."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
from types import ModuleType
from typing import Any

import pytest

from tests.reliability.conftest import ROOT


@pytest.fixture(scope="module")
def runner() -> ModuleType:
    path = ROOT / "benchmarks" / "run.py"
    spec = importlib.util.spec_from_file_location("fakellm_benchmarks_run", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)  # puts benchmarks/ on sys.path
    return module


@pytest.fixture
def harness(runner: ModuleType) -> ModuleType:
    import _harness

    return _harness


# -- the harness -----------------------------------------------------------------------


def test_each_round_collects_garbage_then_times_every_section_once_in_a_shuffled_order(
    harness: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    log: list[str] = []
    clock = iter(range(0, 10_000, 2))  # every section takes 2 "CPU seconds"
    monkeypatch.setattr(harness.gc, "collect", lambda: log.append("gc"))
    monkeypatch.setattr(harness, "cpu", lambda: float(next(clock)))

    def section(name: str, units: int) -> Any:
        return lambda: log.append(name) or units

    names = "abcdefgh"
    times = harness.rounds({n: section(n, 4) for n in names}, 5)

    assert times == {n: [0.5e6] * 5 for n in names}  # 2 s over 4 units, in µs per unit
    assert log[::2] == ["gc"] * 40  # a collection before every timed section
    orders = ["".join(log[1 + 16 * r : 16 * (r + 1) : 2]) for r in range(5)]
    assert all(sorted(order) == list(names) for order in orders)
    assert len(set(orders)) > 1  # shuffled per round
    log.clear()
    clock = iter(range(0, 10_000, 2))
    harness.rounds({n: section(n, 4) for n in names}, 5)
    assert ["".join(log[1 + 16 * r : 16 * (r + 1) : 2]) for r in range(5)] == orders  # seeded


def test_the_clock_is_process_cpu_time(
    harness: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(harness.time, "process_time", lambda: 42.0)
    assert harness.cpu() == 42.0


def test_ratios_are_taken_per_round_and_reported_as_median_and_spread(harness: ModuleType) -> None:
    # Per round 1.0, 0.5, 2.5: median 1.0. The ratio of the medians would be 20 / 12.
    row = harness.Row("fake vs floor", "µs/call", [10.0, 20.0, 30.0], [10.0, 40.0, 12.0], "<= 1.10")
    assert row.ratios == [1.0, 0.5, 2.5]
    assert row.ratio == 1.0
    assert row.ok is True
    assert harness.Row("x", "µs", [3.0], [2.0], "<= 1.10").ok is False
    assert harness.Row("x", "ex/s", [350.0], None, ">= 300").ok is True
    assert harness.Row("x", "ex/s", [350.0], None, "").ok is None
    lines = harness.render([row, harness.Row("explore", "ex/s", [250.0, 350.0], None, ">= 300")])
    assert lines[1] == (
        "fake vs floor      20.000      12.000  µs/call     1.000x  [0.500 - 2.500]    <= 1.10   ok"
    )
    assert lines[2] == (
        "explore           300.000              ex/s      300.000   [250.000 - 350.000]  "
        ">= 300    ok"
    )


def test_settle_collects_then_freezes_what_survived(
    harness: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(harness.gc, "collect", lambda: calls.append("collect"))
    monkeypatch.setattr(harness.gc, "freeze", lambda: calls.append("freeze"))
    harness.settle()
    assert calls == ["collect", "freeze"]


# -- the floor -------------------------------------------------------------------------


def test_the_floor_builds_fresh_chunks_per_call_like_a_real_integration(runner: ModuleType) -> None:
    import bench_model
    from langchain_core.messages import HumanMessage

    floor = bench_model.Floor(words=["a ", "b ", "c "])
    question = [HumanMessage("one two three")]
    first = list(floor._stream(question))
    second = list(floor._stream(question))
    assert all(
        x is not y and x.message is not y.message for x, y in zip(first, second, strict=True)
    )
    assert [c.message.content for c in first] == ["a ", "b ", "c "]
    assert first[0].message.response_metadata == {"model_name": "floor-model"}
    assert first[1].message.response_metadata == {}
    assert {c.message.id for c in first} == {None}  # core gives the run's id
    last = first[-1].message
    assert last.chunk_position == "last"
    assert last.usage_metadata == {"input_tokens": 3, "output_tokens": 3, "total_tokens": 6}
    assert last.response_metadata == {"finish_reason": "stop"}

    streamed = list(floor.stream("hi"))
    assert "".join(c.content for c in streamed) == "a b c "
    reply = floor.invoke("hi")
    assert (reply.content, reply.usage_metadata["output_tokens"]) == ("a b c ", 3)
    assert reply.response_metadata["model_name"] == "floor-model"
    assert floor.generate([question]).llm_output == {}
    # Its replies are not part of its repr, which core serializes on a first call.
    assert "a " not in repr(floor)


def test_the_integration_floor_adds_what_a_provider_client_does(runner: ModuleType) -> None:
    import bench_model
    from langchain_core.messages import HumanMessage

    floor = bench_model.IntegrationFloor(words=["a ", "b ", "c "])
    question = [HumanMessage("one two three")]
    first = list(floor._stream(question))
    second = list(floor._stream(question))
    # One provider message id on every chunk of a reply, another on the next reply.
    assert len({c.message.id for c in first}) == 1
    assert first[0].message.id != second[0].message.id
    assert first[0].message.id.startswith("floor-")
    assert first[-1].message.usage_metadata == {
        "input_tokens": 3,
        "output_tokens": 3,
        "total_tokens": 6,
    }
    reply = floor.invoke("hi")
    assert reply.id.startswith("floor-")
    assert reply.usage_metadata == {"input_tokens": 1, "output_tokens": 3, "total_tokens": 4}
    # generate's llm_output sums the prompts' usage, as ChatOpenAI's does.
    result = floor.generate([question, [HumanMessage("hi")]])
    assert result.llm_output == {
        "token_usage": {"prompt_tokens": 4, "completion_tokens": 6, "total_tokens": 10},
        "model_name": "floor-model",
    }
    params = floor._get_ls_params(model="other")
    assert (params["ls_provider"], params["ls_model_name"]) == ("floor", "other")


def test_fresh_sections_build_a_model_per_call_and_reused_ones_do_not(runner: ModuleType) -> None:
    import bench_model

    loop = asyncio.new_event_loop()
    try:
        sections = bench_model.sections(budget=6, loop=loop, sizes=(3,))
        built: list[Any] = []
        original = bench_model.FakeChatModel
        bench_model.FakeChatModel = lambda **kw: built.append(kw) or original(**kw)  # type: ignore[assignment]
        try:
            assert sections["fake fresh astream 3"]() == 2  # 6 chunks' worth of 3-chunk calls
            assert len(built) == 2
            assert sections["fake reused stream 3"]() == 2
            assert len(built) == 2
        finally:
            bench_model.FakeChatModel = original
    finally:
        loop.close()


# -- the runner ------------------------------------------------------------------------

TINY: dict[str, Any] = {
    "model": {"budget": 3, "n_rounds": 1, "sizes": (3,)},
    "recorder": {"budget": 20, "n_rounds": 1, "sizes": (20,)},
    "events": {"sizes": (20, 40), "n_rounds": 1},
    "virtual_time": {"streams": 2, "n_rounds": 1},
    "explore": {"examples": 2, "n_rounds": 1},
}

ROWS = [
    *(
        f"FakeChatModel.{path} {case}, 3 chunks vs floor"
        for case in ("fresh", "reused")
        for path in ("stream", "astream", "invoke", "ainvoke")
    ),
    "FakeChatModel.astream fresh vs GenericFakeChatModel, 20 chunks",
    "Recorder vs no-op inline handler, stream, 20 chunks",
    "Recorder vs no-op inline handler, astream, 20 chunks",
    "Recorder recorded and read vs no-op inline handler, stream, 20 chunks",
    "Recorder recorded and read vs no-op inline handler, astream, 20 chunks",
    *(
        f"EventLog {query}: per-event cost, 40 vs 20 events"
        for query in (
            "run index (runs())",
            "text(run) over every run",
            "tokens(run) over every run",
            "filter(run=) over every run",
            "filter(run=, subtree) over roots",
            "usage(run) over roots",
            "output_text(run) over every run",
            "run(label) over every run",
            "usage()",
            "tree()",
            "normalized()",
            "normalized() floor (row dict + tags list)",
            "timeline()",
            "assert_well_formed",
        )
    ),
    "run_scenario, zero delays vs zero delays on a stock loop",
    "run_scenario, scripted delays vs zero delays on a stock loop",
    "10 min of scripted latency (10 calls): virtual vs real time",
    "explore: 3 calls x 20 chunks, freezegun on",
    "explore: 3 calls x 20 chunks, freezegun off",
    "explore: 3 calls x 20 chunks, playing vs drawing only (freezegun on)",
]


def test_the_runner_reports_every_row(runner: ModuleType) -> None:
    rows, detail = runner.report(TINY)
    assert [r.name for r in rows] == ROWS
    for line in runner.render(rows)[1:]:
        assert re.search(r"  \d+\.\d{3}x? +\[\d+\.\d{3} - \d+\.\d{3}\]", line), line
    assert detail[0].split()[-2:] == ["20", "40"]
    assert len(detail) == 15


def test_the_quick_flag_picks_the_small_sizes(
    runner: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen = []
    row = runner.Row("r", "ms", [2.0], [1.0], "<= 1.20")
    monkeypatch.setattr(runner, "report", lambda sizes: seen.append(sizes) or ([row], ["d"]))
    monkeypatch.setattr(runner, "settle", lambda: None)
    table = runner.main(["--quick"])
    assert seen == [runner.QUICK]
    assert capsys.readouterr().out == table + "\n"
    assert table.splitlines()[1].endswith("2.000x  [2.000 - 2.000]    <= 1.20   MISS")
    assert table.splitlines()[-1] == "d"


# -- EventLog growth ---------------------------------------------------------------------


@pytest.mark.parametrize("freeze_log", [False, True])
def test_event_logs_stay_in_the_collectors_sight_unless_asked(
    runner: ModuleType, freeze_log: bool
) -> None:
    # A full collection that a query triggers walks a test's log, so the
    # benchmark's logs must not be frozen with the imports: that would hide it.
    import gc

    import bench_events

    sections = bench_events.prepared((20,), freeze_log=freeze_log)
    event = sections["usage() @20"].__defaults__[0][0]  # type: ignore[attr-defined]
    # gc.get_objects() lists the collector's generations, not the frozen objects.
    assert any(obj is event for obj in gc.get_objects()) is not freeze_log
    assert sections["usage() @20"]() == 16  # 2 copies of the 8-event call


def test_the_normalized_floor_builds_each_row_s_fixed_keys_and_nothing_else(
    runner: ModuleType,
) -> None:
    import bench_events

    from fakellm import EventLog

    events = bench_events.recorded_call()
    log = EventLog(events)
    floor = bench_events.normalized_floor(log)
    rows = log.normalized()
    fixed = ["kind", "run", "parent", "name", "type", "tags"]
    assert [list(row)[:6] for row in rows] == [fixed] * len(events)
    assert [list(row) for row in floor] == [fixed] * len(events)
    for row, lean in zip(rows, floor, strict=True):
        assert {k: lean[k] for k in ("kind", "name", "type", "tags")} == {
            k: row[k] for k in ("kind", "name", "type", "tags")
        }
        assert (lean["run"], lean["parent"]) == (None, None)
        assert type(lean["tags"]) is list
    # Every row its own dict and tags list, as normalized() gives them.
    assert len({id(r) for r in floor} | {id(r["tags"]) for r in floor}) == 2 * len(events)


def test_every_query_runs_once_on_the_recorded_call_before_the_freeze(
    runner: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A first call's imports (timeline() imports its renderer) are warm-up, not
    # per-event cost: they must land before settle(), whatever size runs first.
    import bench_events

    calls: list[tuple[str, int]] = []
    queries = {
        name: (lambda log, name=name: calls.append((name, len(log))))
        for name in (*bench_events.QUERIES, *bench_events.FLOORS)
    }
    monkeypatch.setattr(bench_events, "QUERIES", {k: queries[k] for k in bench_events.QUERIES})
    monkeypatch.setattr(bench_events, "FLOORS", {k: queries[k] for k in bench_events.FLOORS})
    monkeypatch.setattr(bench_events, "settle", lambda: calls.append(("settle", 0)))
    sections = bench_events.prepared((20,))
    assert calls == [*((name, 8) for name in queries), ("settle", 0)]
    sections["timeline() @20"]()
    assert calls[-1] == ("timeline()", 16)


def test_recorded_logs_give_every_call_its_own_payloads(runner: ModuleType) -> None:
    import bench_events

    pattern = bench_events.recorded_call()
    copied = bench_events.make_events(24, pattern)
    recorded = bench_events.recorded_log(24, pattern)
    assert (
        [ev.kind for ev in recorded]
        == [ev.kind for ev in copied]
        == [ev.kind for ev in pattern] * 3
    )
    assert [ev.seq for ev in recorded] == list(range(24))
    assert len({ev.run_id for ev in recorded}) == 9  # 3 runs a call
    chunks = [ev.chunk for ev in recorded if ev.kind == "llm_new_token"]
    assert len({id(c) for c in chunks}) == 6
    assert len({id(ev.chunk) for ev in copied if ev.kind == "llm_new_token"}) == 2
    sections = bench_events.prepared((24,), recorded_logs=True)
    events = sections["usage() @24"].__defaults__[0]  # type: ignore[attr-defined]
    assert len({id(ev.chunk) for ev in events if ev.kind == "llm_new_token"}) == 6
