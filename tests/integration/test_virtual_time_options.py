"""The two per-test virtual-time options: ``real_perf_counter`` and ``budget``.

Spelled the same on ``virtual_time()``, ``run_scenario()``,
``virtual_loop_factory()`` and the ``fakellm`` marker; bad values name the
field, the value and what is accepted.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time

import freezegun.api as fg
import pytest

from fakellm import run_scenario, virtual_time
from fakellm._loop import virtual_loop_factory

pytest_plugins = ["pytester"]

START = dt.datetime(2030, 1, 1)
START_EPOCH = START.replace(tzinfo=dt.UTC).timestamp()


def _bracketed_perf_counter() -> tuple[float, int]:
    """perf_counter and perf_counter_ns, each checked against the real one around it."""
    low, low_ns = fg.real_perf_counter(), fg.real_perf_counter_ns()
    got, got_ns = time.perf_counter(), time.perf_counter_ns()
    high, high_ns = fg.real_perf_counter(), fg.real_perf_counter_ns()
    assert low <= got <= high
    assert low_ns <= got_ns <= high_ns
    return got, got_ns


def test_virtual_time_real_perf_counter_leaves_every_other_reader_virtual() -> None:
    with virtual_time(START, real_perf_counter=True) as vt:
        time.sleep(3)
        _bracketed_perf_counter()
        assert (time.time(), time.monotonic(), dt.datetime.now()) == (
            START_EPOCH + 3,
            START_EPOCH + 3,
            START + dt.timedelta(seconds=3),
        )
    assert vt.elapsed == 3.0
    assert vt.clock.real_perf_counter is True
    with virtual_time(START):  # the default: perf_counter is virtual too
        assert (time.perf_counter(), time.perf_counter_ns()) == (START_EPOCH, START_EPOCH * 1e9)


def test_run_scenario_and_the_loop_factory_take_it_too() -> None:
    async def real_perf() -> float:
        await asyncio.sleep(2)
        perf, _ = _bracketed_perf_counter()
        assert time.monotonic() == START_EPOCH + 2
        return perf

    async def virtual_perf() -> tuple[float, float]:
        await asyncio.sleep(2)
        return time.perf_counter(), time.monotonic()

    assert run_scenario(real_perf, start=START, real_perf_counter=True).elapsed == 2.0
    assert run_scenario(virtual_perf, start=START).results == ((START_EPOCH + 2,) * 2,)
    factory = virtual_loop_factory(start=START, real_perf_counter=True)
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(real_perf())


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: virtual_time(real_perf_counter="yes"),  # type: ignore[arg-type]
            TypeError,
            "real_perf_counter='yes': expected True or False",
        ),
        (
            lambda: run_scenario(asyncio.sleep, real_perf_counter=1),  # type: ignore[arg-type]
            TypeError,
            "real_perf_counter=1: expected True or False",
        ),
        (
            lambda: virtual_loop_factory(real_perf_counter=None),  # type: ignore[arg-type]
            TypeError,
            "real_perf_counter=None: expected True or False",
        ),
        (
            lambda: virtual_time(budget=math.inf),
            ValueError,
            "budget=inf: expected a positive, finite number of virtual seconds, or None",
        ),
    ],
)
def test_bad_values_name_the_field_the_value_and_what_is_accepted(
    call: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        call()  # type: ignore[operator]
    assert str(info.value) == message


MARKED = """
import asyncio
import time

import freezegun.api as fg
import pytest

START_EPOCH = 1704067200.0


def real_perf_counter_read():
    low = fg.real_perf_counter()
    got = time.perf_counter()
    assert low <= got <= fg.real_perf_counter()


@pytest.mark.fakellm(virtual_time=True, budget=5)
def test_sync_over_its_budget():
    time.sleep(6)


@pytest.mark.fakellm(virtual_time=True, budget=5)
async def test_async_over_its_budget():
    await asyncio.sleep(6)


@pytest.mark.asyncio(loop_factories=["virtual_time"])
@pytest.mark.fakellm(budget=5)
async def test_loop_factory_over_its_budget():
    await asyncio.sleep(6)


@pytest.mark.fakellm(budget=5)
def test_virtual_clock_over_its_budget(virtual_clock):
    time.sleep(6)


@pytest.mark.fakellm(virtual_time=True, budget=None)
def test_no_budget_beats_the_ini_one():
    time.sleep(100)


def test_the_ini_budget_still_applies(virtual_clock):
    time.sleep(100)


@pytest.mark.fakellm(virtual_time=True, real_perf_counter=True)
def test_sync_real_perf_counter():
    time.sleep(1)
    real_perf_counter_read()
    assert time.monotonic() == START_EPOCH + 1


@pytest.mark.fakellm(virtual_time=True, real_perf_counter=True)
async def test_async_real_perf_counter():
    await asyncio.sleep(1)
    real_perf_counter_read()
    assert time.monotonic() == START_EPOCH + 1


@pytest.mark.fakellm(real_perf_counter=True)
def test_virtual_clock_real_perf_counter(virtual_clock):
    real_perf_counter_read()
    assert time.monotonic() == START_EPOCH


@pytest.mark.fakellm(virtual_time=True)
def test_perf_counter_is_virtual_by_default():
    assert time.perf_counter() == START_EPOCH
"""


def test_the_marker_sets_budget_and_real_perf_counter_per_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        "[pytest]\nasyncio_default_fixture_loop_scope = function\nasyncio_mode = auto\n"
        "fakellm_virtual_time_budget = 50\n"
    )
    pytester.makepyfile(test_marked=MARKED)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=5, failed=5)
    over = "E   *TimeBudgetExceeded: virtual time 0 s: {what}, past this scope's budget of {n} *"
    sleep, timer = "a sleep of {s} s would end at {s} s", "the next timer is due at {s} s"
    expected = [
        ("test_sync_over_its_budget", sleep, 6, 5),
        ("test_async_over_its_budget", timer, 6, 5),
        ("test_loop_factory_over_its_budget*", timer, 6, 5),
        ("test_virtual_clock_over_its_budget", sleep, 6, 5),
        ("test_the_ini_budget_still_applies", sleep, 100, 50),
    ]
    lines = []
    for name, what, secs, budget in expected:
        lines += [f"_* {name} _*", over.format(what=what.format(s=secs), n=budget)]
    result.stdout.fnmatch_lines(lines)


BAD = """
import pytest


@pytest.mark.fakellm(virtual_time=True, budget=-1)
def test_negative_budget():
    pass


@pytest.mark.fakellm(virtual_time=True, budget="soon")
def test_text_budget():
    pass


@pytest.mark.fakellm(virtual_time=True, real_perf_counter="yes")
def test_text_flag():
    pass


@pytest.mark.fakellm(budget=5)
def test_budget_without_virtual_time():
    pass


@pytest.mark.fakellm(real_perf_counter=True)
def test_real_perf_counter_without_virtual_time():
    pass
"""


def test_bad_marker_values_are_setup_errors_that_say_what_is_accepted(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_bad=BAD)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(errors=5)
    no_virtual_time = (
        ", but this test has no virtual time: add virtual_time=True, the virtual_clock "
        "fixture, or loop_factories=[[]'virtual_time']"  # [[] is fnmatch for [
    )
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_negative_budget*",
            "@pytest.mark.fakellm on *::test_negative_budget: budget=-1: expected a positive, "
            "finite number of virtual seconds, or None",
            "*ERROR at setup of test_text_budget*",
            "@pytest.mark.fakellm on *::test_text_budget: budget='soon': expected a positive, "
            "finite number of virtual seconds, or None",
            "*ERROR at setup of test_text_flag*",
            "@pytest.mark.fakellm on *::test_text_flag: real_perf_counter='yes': expected True "
            "or False",
            "*ERROR at setup of test_budget_without_virtual_time*",
            "@pytest.mark.fakellm on *::test_budget_without_virtual_time: budget= sets the "
            "test's virtual-time budget" + no_virtual_time,
            "*ERROR at setup of test_real_perf_counter_without_virtual_time*",
            "@pytest.mark.fakellm on *::test_real_perf_counter_without_virtual_time: "
            "real_perf_counter= makes time.perf_counter read real time under virtual time"
            + no_virtual_time,
        ]
    )
