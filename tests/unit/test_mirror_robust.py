"""The freezegun mirror comes out right when the process does odd things around it.

Modules deleted and imported inside a scope, a failure part-way through
starting the mirror, and a user's ``freeze_time`` that does not nest with a
scope: after each, no module keeps freezegun's fakes while nothing is frozen,
and the next scope works.
"""

from __future__ import annotations

import datetime as dt
import sys
import types
from collections.abc import Iterator

import freezegun.api as fg
import pytest

import fakellm
from fakellm import _clock, virtual_time

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
