"""Virtual time with anyio, pytest-asyncio, LangChain and the fake models."""

from __future__ import annotations

import asyncio
import datetime as dt

import anyio
import pytest
from langchain_core.runnables import RunnableLambda

from fakellm import _clock
from fakellm._clock import (
    VIRTUAL_TIME_LOOP,
    VirtualTimeLoop,
    run_scenario,
    virtual_loop_factory,
    virtual_time,
)
from fakellm._model import FakeChatModel
from fakellm._script import Turn

pytest_plugins = ["pytester"]

START = dt.datetime(2024, 1, 1)


def at(seconds: float) -> dt.datetime:
    return START + dt.timedelta(seconds=seconds)


# ------------------------------------------------------------------------- anyio


def test_anyio_on_a_virtual_loop():
    async def main() -> list[tuple[str, float]]:
        seen: list[tuple[str, float]] = []

        async def job(name: str, delay: float) -> None:
            await anyio.sleep(delay)
            seen.append((name, anyio.current_time()))

        async with anyio.create_task_group() as tg:
            tg.start_soon(job, "slow", 2.0)
            tg.start_soon(job, "fast", 0.5)
        with anyio.move_on_after(1.5) as scope:
            await anyio.sleep(60)
        seen.append(("moved on", anyio.current_time()))
        assert scope.cancelled_caught
        with pytest.raises(TimeoutError), anyio.fail_after(0.25):
            await anyio.sleep(60)
        seen.append(("failed after", anyio.current_time()))
        return seen

    seen = anyio.run(
        main,
        backend="asyncio",
        backend_options={"loop_factory": virtual_loop_factory()},
    )
    assert seen == [
        ("fast", 0.5),
        ("slow", 2.0),
        ("moved on", 3.5),
        ("failed after", 3.75),
    ]


def test_anyio_code_in_run_scenario():
    async def waiter(event: anyio.Event) -> float:
        await event.wait()
        return anyio.current_time()

    async def main() -> tuple[float, dt.datetime]:
        event = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter, event)
            await anyio.sleep(4)
            event.set()
        return anyio.current_time(), dt.datetime.now()

    assert run_scenario(main).results == ((4.0, at(4)),)


# ---------------------------------------------------------------- pytest-asyncio

CONFTEST = """
from fakellm._clock import asyncio_loop_factories

def pytest_asyncio_loop_factories(config, item):
    return asyncio_loop_factories(item)
"""

TESTS = """
import asyncio
import datetime

import pytest

from fakellm._clock import VirtualTimeLoop


@pytest.mark.asyncio(loop_factories=["virtual_time"])
async def test_opted_in():
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    await asyncio.sleep(3600)
    assert loop.time() == 3600
    assert datetime.datetime.now() == datetime.datetime(2024, 1, 1, 1, 0)


@pytest.mark.asyncio(loop_factories=["virtual_time"])
async def test_each_test_gets_a_fresh_clock():
    assert asyncio.get_running_loop().time() == 0.0


async def test_not_opted_in():
    loop = asyncio.get_running_loop()
    assert not isinstance(loop, VirtualTimeLoop)
    assert type(loop) is type(asyncio.new_event_loop())


@pytest.mark.parametrize("n", [1, 2])
async def test_parametrized_not_opted_in(n):
    assert not isinstance(asyncio.get_running_loop(), VirtualTimeLoop)
"""


def test_pytest_asyncio_one_line_opt_in_keeps_other_tests_ids(
    pytester: pytest.Pytester,
):
    pytester.makeini(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_loops=TESTS)
    result = pytester.runpytest_inprocess("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    assert [line.split(" ")[0] for line in result.outlines if " PASSED" in line] == [
        "test_loops.py::test_opted_in",
        "test_loops.py::test_each_test_gets_a_fresh_clock",
        "test_loops.py::test_not_opted_in",
        "test_loops.py::test_parametrized_not_opted_in[1]",
        "test_loops.py::test_parametrized_not_opted_in[2]",
    ]


def test_loop_factory_names():
    class Marker:
        def __init__(self) -> None:
            self.kwargs = {"loop_factories": [VIRTUAL_TIME_LOOP]}

    class Item:
        def __init__(self, marker: Marker | None) -> None:
            self.marker = marker

        def get_closest_marker(self, name: str) -> Marker | None:
            assert name == "asyncio"
            return self.marker

    assert list(_clock.asyncio_loop_factories(Item(None))) == ["asyncio"]
    chosen = _clock.asyncio_loop_factories(Item(Marker()))
    assert list(chosen) == ["asyncio", "virtual_time"]
    loop = chosen["virtual_time"]()
    try:
        assert isinstance(loop, VirtualTimeLoop)
    finally:
        loop.close()


# --------------------------------------------------------------------- LangChain


def test_langchain_batch_threads_share_the_clock():
    # batch copies contextvars into its worker threads, so the scope's sleeper
    # is there too; concurrent delays add up on the shared clock.
    def slow_double(x: int) -> tuple[int, dt.datetime]:
        _clock.sleep(1.0)
        return x * 2, dt.datetime.now()

    with virtual_time() as vt:
        results = RunnableLambda(slow_double).batch([1, 2, 3])
        assert vt.elapsed == 3.0
        assert dt.datetime.now() == at(3)
    assert [value for value, _ in results] == [2, 4, 6]
    assert sorted(now for _, now in results) == [at(1), at(2), at(3)]


def test_sync_fake_model_delays_are_virtual():
    model = FakeChatModel(script=[Turn("a b c", chunks="words", first_token_delay=0.3, delay=0.05)])
    with virtual_time() as vt:
        chunks = [(chunk.content, dt.datetime.now()) for chunk in model.stream("hi")]
    assert chunks == [("a ", at(0.3)), ("b ", at(0.35)), ("c", at(0.4))]
    assert vt.elapsed == 0.4


def test_three_concurrent_streams_interleave_in_hand_computed_order():
    models = {
        "a": FakeChatModel(
            script=[Turn("a1 a2 a3", chunks="words", first_token_delay=0.3, delay=0.05)]
        ),
        "b": FakeChatModel(
            script=[Turn("b1 b2 b3", chunks="words", first_token_delay=0.1, delay=0.2)]
        ),
        "c": FakeChatModel(
            script=[Turn("c1 c2 c3", chunks="words", first_token_delay=0.0, delay=0.15)]
        ),
    }
    seen: list[tuple[float, str]] = []

    async def consume(name: str) -> str:
        text = ""
        async for chunk in models[name].astream(f"hello {name}"):
            seen.append((asyncio.get_running_loop().time(), str(chunk.content).strip()))
            text += str(chunk.content)
        return text

    result = run_scenario(*(lambda n=n: consume(n) for n in "abc"), names=list("abc"))
    # a: 0.3, 0.35, 0.4   b: 0.1, 0.3, 0.5   c: 0.0, 0.15, 0.3
    # At 0.3 the timers fire in the order they were set: a's at 0, b's at 0.1,
    # c's at 0.15.
    assert seen == [
        (0.0, "c1"),
        (0.1, "b1"),
        (0.15, "c2"),
        (0.3, "a1"),
        (0.3, "b2"),
        (0.3, "c3"),
        (0.35, "a2"),
        (0.4, "a3"),
        (0.5, "b3"),
    ]
    assert result.results == ("a1 a2 a3", "b1 b2 b3", "c1 c2 c3")
    assert result.elapsed == 0.5


def test_wait_for_around_a_slow_first_token_times_out_at_one_second():
    model = FakeChatModel(script=[Turn("too late", first_token_delay=2.0)])

    async def main() -> tuple[float, dt.datetime]:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(model.ainvoke("hi"), 1.0)
        return asyncio.get_running_loop().time(), dt.datetime.now()

    result = run_scenario(main)
    assert result.results == ((1.0, at(1)),)
    assert result.elapsed == 1.0


SCOPES = """
import asyncio

import pytest

LOOPS = []


@pytest.mark.asyncio(loop_scope="module", loop_factories=["virtual_time"])
async def test_first():
    LOOPS.append(asyncio.get_running_loop())
    await asyncio.sleep(5)


@pytest.mark.asyncio(loop_scope="module", loop_factories=["virtual_time"])
async def test_second_shares_the_loop_and_its_clock():
    assert asyncio.get_running_loop() is LOOPS[0]
    assert asyncio.get_running_loop().time() == 5.0


@pytest.mark.asyncio(loop_factories=["virtual_time"])
async def test_leaks_a_task():
    async def forgotten():
        await asyncio.sleep(30)

    asyncio.create_task(forgotten(), name="forgotten")
    await asyncio.sleep(1)


@pytest.mark.asyncio(loop_factories=["virtual_time"])
async def test_leaks_a_timer():
    asyncio.get_running_loop().call_later(7, print)
"""


def test_loop_scope_is_honoured_and_leaks_fail_the_test(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_scopes=SCOPES)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "LeakedTasks: the test finished at virtual time 1 s but left 1 task(s) pending:",
            "  - 'forgotten' at */test_scopes.py:23 in forgotten(): await asyncio.sleep(30)",
            "Await every task you create (or cancel it) before the test ends.",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "LeakedTasks: the test finished at virtual time 0 s but left 1 timer(s) pending:",
            "  - a timer due at 7 s, scheduled by task 'Task-*'",
            "Cancel every call_later/call_at handle you schedule before the test ends.",
        ]
    )


BUDGETS = """
import asyncio
import time

import pytest


def test_sync_over_budget(virtual_clock):
    time.sleep(20)


@pytest.mark.asyncio(loop_factories=["virtual_time"])
async def test_async_over_budget():
    await asyncio.sleep(20)


def test_within_budget(virtual_clock):
    time.sleep(10)
    assert virtual_clock.elapsed == 10.0
"""


def test_the_ini_budget_applies_to_every_virtual_time_test(pytester: pytest.Pytester):
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
        "fakellm_virtual_time_budget = 10\n"
    )
    pytester.makepyfile(test_budgets=BUDGETS)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*TimeBudgetExceeded: virtual time 0 s: a sleep of 20 s would end at 20 s, past "
            "this scope's budget of 10 virtual seconds.*"
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*TimeBudgetExceeded: virtual time 0 s: the next timer is due at 20 s, past this "
            "scope's budget of 10 virtual seconds.*"
        ]
    )


def test_a_bad_ini_budget_is_a_usage_error(pytester: pytest.Pytester):
    pytester.makeini("[pytest]\nfakellm_virtual_time_budget = soon\n")
    pytester.makepyfile(test_nothing="def test_nothing():\n    pass\n")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.stderr.fnmatch_lines(
        [
            "*fakellm_virtual_time_budget = 'soon': expected a positive number of virtual "
            "seconds, or none"
        ]
    )
