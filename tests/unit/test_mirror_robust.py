"""The freezegun mirror comes out right when the process does odd things around it.

Modules deleted and imported inside a scope, a failure part-way through
starting the mirror, and a user's ``freeze_time`` that does not nest with a
scope: after each, no module keeps freezegun's fakes while nothing is frozen,
and the next scope works.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
import types
from collections.abc import Iterator

import freezegun
import freezegun.api as fg
import pytest

import fakellm
from fakellm import _clock, _compat, virtual_time

START = dt.datetime(2030, 6, 1, 12, 0, 0)


@pytest.fixture
def scanned() -> Iterator[list[str]]:
    """A first scope has scanned (the scan lingers); names put in the list are removed after."""
    assert fakellm.stop_virtual_time() is True
    with virtual_time():
        pass
    assert _clock._MIRROR.lingering
    names: list[str] = []
    try:
        yield names
    finally:
        for name in names:
            sys.modules.pop(name, None)
        fakellm.stop_virtual_time()


def imported_now(name: str) -> types.ModuleType:
    """A module that does ``from datetime import datetime`` and ``from time import time`` now."""
    module = types.ModuleType(name)
    exec("from datetime import datetime\nfrom time import time\n", module.__dict__)
    sys.modules[name] = module
    return module


def assert_real(module: types.ModuleType) -> None:
    assert (module.datetime, module.time) == (fg.real_datetime, fg.real_time)


def put_last(name: str) -> None:
    sys.modules[name] = types.ModuleType(name)


# ------------------------------------------------- modules imported inside a scope


def test_a_module_imported_after_deleting_the_last_one_is_put_back_after_the_scope(
    scanned: list[str],
) -> None:
    # The deleted module's id used to be free for the next module (CPython
    # hands the freed block to the next object of its size), and the
    # signature (count, id of the last) then looked unchanged: the new module
    # kept freezegun's fakes after the scope.
    scanned += ["robust_last", "robust_new"]
    put_last("robust_last")
    fakellm.stop_virtual_time()
    with virtual_time():  # scans with robust_last last
        pass
    with virtual_time(START):
        del sys.modules["robust_last"]
        new = imported_now("robust_new")
        assert (new.datetime, new.time) == (fg.FakeDatetime, fg.fake_time)
        assert new.datetime.now() == START
    assert_real(new)
    with virtual_time(START):  # and the next scope scans it
        assert new.datetime.now() == START
        assert new.time() == START.replace(tzinfo=dt.UTC).timestamp()
    assert_real(new)


def test_deleting_two_modules_and_putting_the_last_back_after_an_import_is_seen(
    scanned: list[str],
) -> None:
    # Same count and the same last module object as at the scan.
    scanned += ["robust_a", "robust_b", "robust_new2"]
    put_last("robust_a")
    put_last("robust_b")
    fakellm.stop_virtual_time()
    with virtual_time():
        pass
    with virtual_time(START):
        b = sys.modules.pop("robust_b")
        del sys.modules["robust_a"]
        new = imported_now("robust_new2")
        sys.modules["robust_b"] = b
        assert new.datetime.now() == START
    assert_real(new)


# ------------------------------------------------- a start that fails part-way


class Injected(Exception):
    pass


def assert_nothing_frozen(module: types.ModuleType) -> None:
    assert fg.freeze_factories == []
    assert (dt.datetime, dt.date, time.time, time.monotonic) == (
        fg.real_datetime,
        fg.real_date,
        fg.real_time,
        fg.real_monotonic,
    )
    assert time.sleep is _clock._real_sleep
    assert_real(module)
    assert _clock.current_clock() is None
    assert not _clock._MIRROR.started


def assert_next_scope_works(module: types.ModuleType) -> None:
    with virtual_time(START):
        assert (module.datetime.now(), dt.datetime.now()) == (START, START)
        assert module.time() == START.replace(tzinfo=dt.UTC).timestamp()
    assert_nothing_frozen(module)


@pytest.fixture
def probe(scanned: list[str]) -> types.ModuleType:
    """A module bound to the real clock, imported before the scan of a fresh first scope."""
    scanned.append("robust_probe")
    module = imported_now("robust_probe")
    fakellm.stop_virtual_time()
    return module


def test_a_scan_that_fails_part_way_leaves_nothing_frozen(
    probe: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    bind = _compat.freezegun_bind_fakes

    def bind_then_fail(ignore: tuple[str, ...]) -> object:
        bind(ignore)  # every module bound, the list of bindings lost
        raise Injected

    monkeypatch.setattr(_compat, "freezegun_bind_fakes", bind_then_fail)
    with pytest.raises(Injected), virtual_time(START):
        pytest.fail("the scope must not start")
    assert_nothing_frozen(probe)
    monkeypatch.undo()
    assert_next_scope_works(probe)


def test_an_unpark_that_fails_part_way_leaves_nothing_frozen(
    probe: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    with virtual_time():  # the scan, then parked
        pass
    set_bindings = _compat.freezegun_set_bindings

    def set_then_fail(bindings: tuple[object, ...], *, fake: bool) -> None:
        set_bindings(bindings, fake=fake)  # type: ignore[arg-type]
        if fake:
            raise Injected

    monkeypatch.setattr(_compat, "freezegun_set_bindings", set_then_fail)
    with pytest.raises(Injected), virtual_time(START):
        pytest.fail("the scope must not start")
    assert_nothing_frozen(probe)
    assert _clock._MIRROR.lingering  # the scan is kept, parked
    monkeypatch.undo()
    assert_next_scope_works(probe)


def test_a_start_on_top_of_your_freeze_that_fails_leaves_your_freeze_as_it_was(
    probe: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    push = _compat.freezegun_push

    def push_then_fail(factory: object, ignore: tuple[str, ...]) -> None:
        push(factory, ignore)
        raise Injected

    monkeypatch.setattr(_compat, "freezegun_push", push_then_fail)
    with freezegun.freeze_time("2001-02-03"):
        with pytest.raises(Injected), virtual_time(START):
            pytest.fail("the scope must not start")
        assert len(fg.freeze_factories) == 1
        assert (dt.datetime.now(), probe.datetime.now()) == (dt.datetime(2001, 2, 3),) * 2
        assert probe.time() == 981158400.0
    assert_nothing_frozen(probe)
    monkeypatch.undo()
    assert_next_scope_works(probe)


# ------------------------------------------------- your freeze_time, not nested


@pytest.mark.parametrize("import_meanwhile", [False, True])
def test_your_freeze_started_inside_a_scope_and_stopped_after_it_puts_everything_back(
    probe: types.ModuleType, scanned: list[str], import_meanwhile: bool
) -> None:
    # freezegun's stop used to fail part-way ('_freeze_time' object has no
    # attribute 'fake_names'): time.time stayed patched, the scan's bindings fake.
    with virtual_time():  # the scan, then parked
        pass
    yours = freezegun.freeze_time("2001-02-03")
    with virtual_time(START):
        yours.start()
        assert probe.datetime.now() == dt.datetime(2001, 2, 3)  # yours wins inside
    # The scope ended first: your freeze goes on.
    assert (dt.datetime.now(), probe.datetime.now()) == (dt.datetime(2001, 2, 3),) * 2
    assert probe.time() == 981158400.0
    late = None
    if import_meanwhile:
        scanned.append("robust_late")
        late = imported_now("robust_late")
        assert late.datetime is fg.FakeDatetime
    yours.stop()
    assert_nothing_frozen(probe)
    if late is not None:
        assert_real(late)
    assert_next_scope_works(probe)


@pytest.mark.parametrize("scan_lingers", [False, True])
def test_your_freeze_started_before_a_scope_and_stopped_inside_it_ends_with_the_scope(
    probe: types.ModuleType, scan_lingers: bool
) -> None:
    # freezegun's stop pops the innermost entry: it used to take the scope's,
    # and leave yours frozen for good (dt.datetime.now() was 2001 from then on).
    if scan_lingers:
        with virtual_time():
            pass
    yours = freezegun.freeze_time("2001-02-03")
    yours.start()
    with virtual_time(START):
        assert probe.datetime.now() == START
        yours.stop()
        assert (dt.datetime.now(), probe.datetime.now()) == (START, START)  # the scope goes on
        assert len(fg.freeze_factories) == 1
    assert_nothing_frozen(probe)
    assert_next_scope_works(probe)


def test_freezes_of_yours_that_do_not_nest_with_each_other_are_left_to_freezegun(
    probe: types.ModuleType,
) -> None:
    # Only patches the mirror made are put back by it: with yours in place (a freeze
    # started while nothing else ran), the last-stop hook declines.
    with virtual_time():
        pass
    outer, inner = freezegun.freeze_time("2001-02-03"), freezegun.freeze_time("2002-03-04")
    outer.start()
    inner.start()
    try:
        del fg.freeze_factories[1:], fg.tz_offsets[1:], fg.ignore_lists[1:], fg.tick_flags[1:]
        assert _clock._MIRROR._end_nested_last() is False
        assert len(fg.freeze_factories) == 1
        assert dt.datetime.now() == dt.datetime(2001, 2, 3)
    finally:
        outer.stop()
    assert_nothing_frozen(probe)
