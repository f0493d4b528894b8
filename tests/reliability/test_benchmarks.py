"""The benchmark runner produces its whole table (shape only: timings are never asserted)."""

from __future__ import annotations

import importlib.util
import re
import sys
from types import ModuleType

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
    spec.loader.exec_module(module)
    return module


TINY = {
    "model": {"chunks": 3, "streams": 1, "rounds": 1},
    "recorder": {"chunks": 3, "repeats": 1},
    "virtual_time": {"streams": 2, "repeat": 1},
    "explore": {"examples": 2},
    "chunks": (2, 4),
    "streams": (1, 2),
    "events": (4, 8),
    "repeat": 1,
}

ROWS = [
    "FakeChatModel.stream vs floor",
    "FakeChatModel.stream vs floor (fresh chunks)",
    "FakeChatModel.stream vs FakeListChatModel",
    "FakeChatModel.astream vs floor",
    "FakeChatModel.astream vs floor (fresh chunks)",
    "FakeChatModel.astream vs FakeListChatModel",
    "FakeChatModel.astream vs GenericFakeChatModel.astream",
    "Recorder vs no-op handler (stream)",
    "Recorder vs no-op handler (astream)",
    "run_scenario, zero delays vs zero delays on a stock loop",
    "run_scenario, scripted delays vs zero delays on a stock loop",
    "10 min of scripted latency (10 calls): virtual vs real time",
    "explore: 3 calls x 20 chunks, examples/s",
    "explore: playing vs drawing only",
]
SCALING = [
    "FakeChatModel.astream, recorded",
    "concurrent streams, run_scenario",
    "EventLog queries + assert_well_formed",
]


def test_the_runner_prints_every_row_and_every_scaling_line(runner):
    table = runner.render(runner.ratio_rows(TINY), runner.scaling_rows(TINY))
    lines = table.splitlines()
    ratio_lines = lines[1 : 1 + len(ROWS)]
    assert [line.split("  ")[0].rstrip() for line in ratio_lines] == ROWS
    number = r"\d+\.\d{3}"
    for line in ratio_lines:
        assert re.search(
            rf"  {number}  +{number}  (µs/chunk|ms|s/s|ex/s|s/ex) +\s*{number}x"
            r"  (<=|>=) [\d.]+ +(ok|MISS)$",
            line,
        ), line
    assert lines[1 + len(ROWS) :][:2] == [
        "",
        "scaling (cost per unit at growing sizes; growth ~1.0x = linear)",
    ]
    scaling = lines[3 + len(ROWS) :]
    assert [line.split("  ")[0] for line in scaling] == SCALING
    assert all(re.search(r"growth \d+\.\d\dx over 2x size$", line) for line in scaling)


def test_the_quick_flag_picks_the_small_sizes(runner, monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(
        runner, "ratio_rows", lambda sizes: seen.append(sizes) or [("r", 2.0, 1.0, "ms", "<= 1.20")]
    )
    monkeypatch.setattr(
        runner, "scaling_rows", lambda sizes: [("s", "µs/event", [(1, 2.0), (4, 2.0)])]
    )
    table = runner.main(["--quick"])
    assert seen == [runner.QUICK]
    assert capsys.readouterr().out == table + "\n"
    assert table.splitlines()[1].endswith("2.000x  <= 1.20   MISS")
    assert table.splitlines()[-1].endswith("growth 1.00x over 4x size")
