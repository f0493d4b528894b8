"""The plugin under pytest-xdist: the same results per test as a serial run."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("xdist")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
# pytest-benchmark (a langchain-tests dependency) warns that xdist disables it.
PLUGINS_OFF = ("-p", "no:benchmark")

SUITE = """
import asyncio

import pytest
from hypothesis import given, strategies as st

from fakellm import Turn


def test_passes(fake_llm, llm_recorder):
    model = fake_llm([Turn("Roses and lilies", chunks="words")])
    model.invoke("x", config={"callbacks": [llm_recorder]})
    assert llm_recorder.events.kinds() == ["chat_model_start", "llm_end"]


def test_unused_turn(fake_llm):
    fake_llm(["a", "b"]).invoke("x")


def test_swallowed_unexpected_call(fake_llm):
    model = fake_llm([])
    try:
        model.invoke("x")
    except Exception:
        pass


def test_fails_with_timeline(fake_llm, llm_recorder, virtual_clock):
    fake_llm([Turn("a b", delay=1)]).invoke("x", config={"callbacks": [llm_recorder]})
    assert virtual_clock.elapsed == 2


@pytest.mark.asyncio(loop_factories=["virtual_time"])
async def test_async_virtual_time(fake_llm):
    await fake_llm([Turn("late", first_token_delay=60)]).ainvoke("x")
    assert asyncio.get_running_loop().time() == 60


@given(st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=4))
def test_property(words):
    from fakellm import FakeChatModel

    model = FakeChatModel(script=[" ".join(words)])
    assert model.invoke("x").content == " ".join(words)
"""

BUDGET = """
from hypothesis import given, strategies as st

from fakellm import FakeChatModel


@given(st.integers(min_value=1, max_value=50))
def test_replies_fit_the_budget(n):
    model = FakeChatModel(script=[" ".join(["word"] * n)])
    assert model.invoke("x").usage_metadata["output_tokens"] < 7
"""

CONFTEST = """
from hypothesis import Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

# The database is named outright: under CI=true Hypothesis' default profile has
# none. "replay" runs only what the database holds, so it fails only if an
# earlier run's counterexample was saved and found again; "nodb" neither reads
# nor writes it. No deadlines: two busy workers on two cores must not turn a
# slow example into a failure.
DB = DirectoryBasedExampleDatabase(".hypothesis/examples")
settings.register_profile("shared", database=DB, deadline=None)
REPLAY = [Phase.explicit, Phase.reuse]
settings.register_profile("replay", database=DB, deadline=None, phases=REPLAY)
settings.register_profile("nodb", database=None, deadline=None)
settings.load_profile("shared")
"""

OUTCOME = re.compile(r"^(PASSED|FAILED|ERROR) (\S+)", re.MULTILINE)
EXPECTED = [
    ("ERROR", "test_app.py::test_swallowed_unexpected_call"),
    ("ERROR", "test_app.py::test_unused_turn"),
    ("FAILED", "test_app.py::test_fails_with_timeline"),
    ("FAILED", "test_budget.py::test_replies_fit_the_budget"),
    ("PASSED", "test_app.py::test_async_virtual_time"),
    ("PASSED", "test_app.py::test_passes"),
    ("PASSED", "test_app.py::test_property"),
    ("PASSED", "test_app.py::test_swallowed_unexpected_call"),
    ("PASSED", "test_app.py::test_unused_turn"),
]


# Hypothesis says "Falsifying example:" or, in newer releases, "Failing test case:";
# the patterns match both. The runs are subprocesses: Hypothesis' pytest plugin
# loads --hypothesis-profile into its process-wide settings, which an in-process
# run would leave behind for every later test of this suite.


def outcomes(result: pytest.RunResult) -> list[tuple[str, str]]:
    return sorted(OUTCOME.findall(result.stdout.str()))


def test_the_same_results_under_two_workers_and_a_shared_example_database(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_app=SUITE, test_budget=BUDGET)
    parallel = pytester.runpytest_subprocess(
        *PLUGINS_OFF, "-p", "no:cacheprovider", "-rA", "-n", "2"
    )
    assert any((pytester.path / ".hypothesis" / "examples").iterdir())
    replay = pytester.runpytest_subprocess(
        *PLUGINS_OFF,
        "-p",
        "no:cacheprovider",
        "-n",
        "2",
        "--hypothesis-profile=replay",
        "test_budget.py",
    )
    replay.assert_outcomes(failed=1)
    replay.stdout.fnmatch_lines(["*: test_replies_fit_the_budget(*", "*n=7,*"])
    serial = pytester.runpytest_subprocess(
        *PLUGINS_OFF, "-p", "no:cacheprovider", "-rA", "--hypothesis-profile=nodb"
    )
    for result in (parallel, serial):
        assert outcomes(result) == EXPECTED
        result.stdout.fnmatch_lines(
            [
                "*- fakellm timeline -*",
                "     #      time  r1 FakeChatModel",
                "     0    +0.000  start",
                "     1    +1.000  end",
            ]
        )
        result.stdout.fnmatch_lines(["UnusedTurns: *", "  - turns[[]1]: Turn('b')"])
        result.stdout.fnmatch_lines(["*: test_replies_fit_the_budget(*", "*n=7,*"])
