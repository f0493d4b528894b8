"""freezegun's scan lingers between virtual-time scopes, and nobody outside them can tell.

After the first scope, fakellm parks its freeze instead of stopping it: the
``time``/``datetime``/``uuid`` attributes and pickling go back to the real ones
and the fakes freezegun's scan bound into modules answer exactly like the real
functions, so the next scope costs a few assignments. These tests run in a
non-UTC zone (America/New_York), where "real" and "freezegun's UTC" differ by
hours, and bracket each real reading between two readings of the real function.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import freezegun
import freezegun.api as fg
import pytest

import fakellm
from fakellm import _clock, run_scenario, virtual_time

HELPER = """\
from datetime import date, datetime
from time import localtime, monotonic, perf_counter, time


def readings():
    return {
        "now": datetime.now(),
        "utcnow": datetime.utcnow(),
        "today": date.today(),
        "time": time(),
        "monotonic": monotonic(),
        "perf_counter": perf_counter(),
        "hour": localtime().tm_hour,
    }
"""

START = dt.datetime(2030, 6, 1, 12, 0, 0)
START_EPOCH = START.replace(tzinfo=dt.UTC).timestamp()


@pytest.fixture
def new_york() -> Iterator[None]:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.fixture
def helper(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ModuleType]:
    """A module with ``from time import time``-style bindings, imported while nothing
    is frozen and then scanned by a first scope (the scan lingers)."""
    assert fakellm.stop_virtual_time() is True
    name = f"linger_helper_{request.node.name.replace('[', '_').replace(']', '_')}"
    (tmp_path / f"{name}.py").write_text(HELPER)
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module(name)
        run_scenario(_noop)
        assert _clock._MIRROR.lingering
        assert not _clock._MIRROR.started
        yield module
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)
        fakellm.stop_virtual_time()


async def _noop() -> None:
    return None


def _real_readings() -> dict[str, Any]:
    return {
        "now": fg.real_datetime.now(),
        "utcnow": fg.real_datetime.now(dt.UTC).replace(tzinfo=None),
        "time": fg.real_time(),
        "monotonic": fg.real_monotonic(),
        "perf_counter": fg.real_perf_counter(),
    }


def _bracketed(module: ModuleType) -> dict[str, Any]:
    """The helper's readings, each checked against the real functions around it."""
    before = _real_readings()
    got = module.readings()
    after = _real_readings()
    for key, low in before.items():
        assert low <= got[key] <= after[key], (key, low, got[key], after[key])
    assert got["today"] in (before["now"].date(), after["now"].date())
    assert got["hour"] in (before["now"].hour, after["now"].hour)
    return got


def test_parked_bindings_answer_like_the_real_functions_in_local_time(
    new_york: None, helper: ModuleType
) -> None:
    # The scan bound freezegun's class there; parked, the real one is back.
    assert helper.datetime is fg.real_datetime
    got = _bracketed(helper)
    assert type(got["now"]) is fg.real_datetime
    assert type(got["today"]) is fg.real_date
    # The zone is real too: naive datetimes are local, not UTC.
    assert helper.datetime.fromtimestamp(0) == dt.datetime(1969, 12, 31, 19, 0)
    assert helper.datetime(2020, 1, 1).timestamp() == 1577854800.0
    assert dt.datetime(2020, 1, 1).timestamp() == 1577854800.0


def test_outside_scopes_the_modules_and_pickling_are_the_real_ones(
    new_york: None, helper: ModuleType
) -> None:
    assert dt.datetime is fg.real_datetime
    assert dt.date is fg.real_date
    assert time.time is fg.real_time
    assert time.monotonic is fg.real_monotonic
    assert b"freezegun" not in pickle.dumps(dt.datetime.now())
    # An instance of freezegun's class (a module imported inside a scope holds it):
    made = fg.FakeDatetime(2020, 1, 1, 5, 6, 7)
    data = pickle.dumps(made)
    assert b"freezegun" not in data
    assert (type(pickle.loads(data)), pickle.loads(data)) == (
        fg.real_datetime,
        dt.datetime(2020, 1, 1, 5, 6, 7),
    )
    # Inside a scope the same readers are virtual (freezegun's world is UTC).
    with virtual_time(START):
        assert dt.datetime is fg.FakeDatetime
        inside = helper.readings()
    assert inside == {
        "now": START,
        "utcnow": START,
        "today": START.date(),
        "time": START_EPOCH,
        "monotonic": START_EPOCH,
        "perf_counter": START_EPOCH,
        # freezegun's localtime() subtracts time.timezone (5 h here) from its UTC
        "hour": 7,
    }
    assert dt.datetime is fg.real_datetime


def test_a_thread_without_a_scope_reads_real_time_while_another_has_one(
    new_york: None, helper: ModuleType
) -> None:
    seen: dict[str, Any] = {}
    ready, done = threading.Event(), threading.Event()

    def outsider() -> None:  # started before the scope: it has none
        ready.wait(10)
        seen.update(_bracketed(helper))
        low = fg.real_datetime.now()
        seen["datetime.now"] = dt.datetime.now()  # freezegun's class is installed now
        seen["bracket"] = (low, fg.real_datetime.now())
        done.set()

    thread = threading.Thread(target=outsider)
    thread.start()
    with virtual_time(START):
        ready.set()
        assert done.wait(10)
        assert helper.readings()["now"] == START
    thread.join(10)
    low, high = seen["bracket"]
    assert low <= seen["datetime.now"] <= high
    assert type(seen["now"]) is fg.real_datetime


def test_modules_imported_between_scopes_are_scanned_by_the_next_one(
    helper: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "linger_late_import.py").write_text(HELPER)
    try:
        late = importlib.import_module("linger_late_import")
        assert late.time is fg.real_time  # imported while parked: the real function
        with virtual_time(START):
            assert late.readings()["time"] == START_EPOCH
            assert late.readings()["now"] == START
    finally:
        sys.modules.pop("linger_late_import", None)


def test_stop_virtual_time_undoes_the_scan_and_refuses_inside_a_scope(
    helper: ModuleType,
) -> None:
    assert helper.time is fg.real_time  # parked: the real function is bound
    with virtual_time():
        assert helper.time is fg.fake_time
        assert fakellm.stop_virtual_time() is False
    assert fakellm.stop_virtual_time() is True
    assert not _clock._MIRROR.lingering
    assert (helper.time, helper.monotonic, helper.datetime) == (
        fg.real_time,
        fg.real_monotonic,
        fg.real_datetime,
    )
    assert fakellm.stop_virtual_time() is True  # nothing left: still fine


def test_your_own_freeze_time_between_scopes_works_as_without_fakellm(
    new_york: None, helper: ModuleType
) -> None:
    with freezegun.freeze_time("2001-02-03 04:05:06"):
        assert dt.datetime.now() == dt.datetime(2001, 2, 3, 4, 5, 6)
        assert helper.readings()["now"] == dt.datetime(2001, 2, 3, 4, 5, 6)
        assert time.time() == 981173106.0
    # real_asyncio is honoured (a freeze started on top of ours would not see it)
    with freezegun.freeze_time("2001-02-03", real_asyncio=True):
        asyncio.run(asyncio.sleep(0.001))
    _bracketed(helper)
    # freezegun's stop() put back what its own scan found: the parked state.
    assert helper.datetime is fg.real_datetime
    result = run_scenario(lambda: helper.readings()["now"], start=START)
    assert result.results == (START,)
    _bracketed(helper)


def test_your_own_freeze_time_inside_and_around_a_scope(helper: ModuleType) -> None:
    with virtual_time(START):
        with freezegun.freeze_time("2001-02-03"):
            assert helper.readings()["now"] == dt.datetime(2001, 2, 3)
        assert helper.readings()["now"] == START
    with freezegun.freeze_time("2001-02-03"):
        assert run_scenario(lambda: dt.datetime.now(), start=START).results == (START,)
        # Our scope ended inside yours: your frozen time is back, still frozen.
        assert dt.datetime.now() == dt.datetime(2001, 2, 3)
        assert time.time() == 981158400.0
    assert dt.datetime is fg.real_datetime
    _bracketed(helper)


def test_the_plugin_stops_virtual_time_at_the_end_of_a_session(
    pytester: pytest.Pytester,
) -> None:
    run_scenario(_noop)
    assert _clock._MIRROR.lingering
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        import datetime
        from fakellm import run_scenario

        def test_one():
            r = run_scenario(lambda: datetime.datetime.now(), start="2030-01-01")
            assert r.results == (datetime.datetime(2030, 1, 1),)
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    assert not _clock._MIRROR.lingering
    assert dt.datetime is fg.real_datetime


_EXIT_SCRIPT = """
import datetime
from fakellm import virtual_time

with virtual_time():
    pass

from pydantic import BaseModel  # imported (by the scan, before the fix) under the freeze


class Booking(BaseModel):
    when: datetime.datetime


print(Booking(when="2030-01-01T09:00").when.hour)
"""


def test_a_process_that_used_virtual_time_builds_datetime_models_and_exits_quietly() -> None:
    # freezegun's scan read every lazy name (fakellm's own, langchain_core's), which
    # imported pydantic under the freeze: its datetime schema was then keyed on
    # freezegun's class for good. And the atexit stop walked dir() of every module;
    # langchain_core.callbacks' lazy names then imported langsmith's pydantic
    # models while pydantic still held freezegun's datetime, and the interpreter
    # printed that failure on its way out.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH")])
    )
    result = subprocess.run(
        [sys.executable, "-c", _EXIT_SCRIPT], capture_output=True, text=True, env=env, timeout=120
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "9\n", "")
