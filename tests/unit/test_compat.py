"""Pins every private name of another package that fakellm uses (all in fakellm._compat).

Each name the fence exports gets a test here that fails, naming it, when an
upgrade moves or changes it.
"""

from __future__ import annotations

import fakellm._compat as compat


def test_every_exported_name_exists() -> None:
    missing = [name for name in compat.__all__ if not hasattr(compat, name)]
    assert missing == []


# ------------------------------------------------------------------ virtual time (#13)


def test_freezegun_real_datetime_is_the_unpatched_class() -> None:
    import datetime as dt

    assert compat.FREEZEGUN_REAL_DATETIME is dt.datetime  # no freeze is active here


def test_freezegun_factory_ignore_and_limit_are_where_fakellm_puts_them() -> None:
    import datetime as dt
    import time

    import freezegun

    with freezegun.freeze_time("2024-01-01") as factory:
        slot = compat.freezegun_replace_factory(lambda: dt.datetime(2030, 1, 2) - dt.timedelta(0))
        assert slot == 0
        assert dt.datetime.now() == dt.datetime(2030, 1, 2)
        compat.freezegun_set_ignore(slot, ("",))  # every caller reads real time
        assert time.time() < dt.datetime(2030, 1, 2, tzinfo=dt.UTC).timestamp()
        old = compat.freezegun_inspection_limit(1)
        assert old == 5
        assert compat.freezegun_inspection_limit(old) == 1
        del factory


def test_current_frames_has_this_thread() -> None:
    import threading

    assert threading.get_ident() in compat.current_frames()
