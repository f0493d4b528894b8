"""bench_fuzz times what its rows claim: the fuzzed examples have the 5-step
shape, the replay baselines replay exactly the trajectories the fuzzer drew
(or the fixed one), and the tally counts the agent runs Hypothesis does not
count as examples. Timings themselves are never asserted."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from fakellm import Script, fuzz
from tests.reliability.conftest import ROOT

EXAMPLES = 12


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_fuzz

        yield bench_fuzz
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


@pytest.fixture(scope="module")
def drawn(bench: ModuleType) -> Any:
    tally = bench.Tally(keep=True)
    assert bench.fuzzed(EXAMPLES, tally=tally)() == EXAMPLES
    return tally


def test_the_fuzzed_examples_are_the_five_step_shape_and_tallies_add_up(
    bench: ModuleType, drawn: Any
) -> None:
    assert len(drawn.trajectories) == EXAMPLES
    assert all(len(t) == 6 and not t[-1].tool_calls for t in drawn.trajectories)
    assert all(len(t.tool_calls) == 1 for trajectory in drawn.trajectories for t in trajectory[:5])
    tally = bench.Tally()
    section = bench.fuzzed(EXAMPLES, tally=tally)
    assert section() == section() == EXAMPLES
    assert tally.trajectories == []  # kept only when asked
    assert tally.runs >= 2 * EXAMPLES
    assert 12 * EXAMPLES <= tally.model_calls <= 6 * tally.runs


def test_the_tally_counts_the_runs_hypothesis_does_not_count(drawn: Any) -> None:
    # Counted examples make 6 calls each; a run that overran stopped at a draw.
    assert drawn.runs >= EXAMPLES
    extra = drawn.runs - EXAMPLES
    assert 6 * EXAMPLES <= drawn.model_calls <= 6 * EXAMPLES + 6 * extra


@pytest.mark.parametrize("play", [True, False])
def test_the_replay_replays_exactly_the_drawn_trajectories(
    bench: ModuleType, drawn: Any, play: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    models: list[Any] = []
    original = bench.FakeChatModel
    monkeypatch.setattr(
        bench, "FakeChatModel", lambda **kw: models.append(original(**kw)) or models[-1]
    )
    section = bench.replayed(drawn.trajectories, play=play)
    assert section() == section() == EXAMPLES
    assert len(models) == 2  # a fresh model per round, as the fuzzer's
    every_turn = [t for trajectory in drawn.trajectories for t in trajectory]
    assert all([c.turn for c in m.calls] == every_turn for m in models)
    if play:
        played: list[fuzz.AgentRun] = []
        real = fuzz.play
        monkeypatch.setattr(
            bench.fuzz, "play", lambda *a, **k: played.append(real(*a, **k)) or played[-1]
        )
        section()
        assert [r.script() for r in played] == [Script(t) for t in drawn.trajectories]


def test_the_fixed_baseline_replays_one_trajectory_per_example(bench: ModuleType) -> None:
    assert [t.tool_calls[0].name for t in bench.FIXED[:5]] == ["search"] * 5
    assert bench.FIXED[5].text == "Booked."
    assert not bench.FIXED[5].tool_calls
    assert bench.replayed([bench.FIXED] * 3, play=False)() == 3
