"""Pins every private name of another package that fakellm uses (all in fakellm._compat).

Each name the fence exports gets a test here that fails, naming it, when an
upgrade moves or changes it.
"""

from __future__ import annotations

import fakellm._compat as compat


def test_every_exported_name_exists() -> None:
    missing = [name for name in compat.__all__ if not hasattr(compat, name)]
    assert missing == []


# -- asyncio: the Recorder's hot path ------------------------------------------------------


def test_get_running_loop_or_none_is_none_outside_a_loop_and_the_loop_inside() -> None:
    import asyncio

    assert compat.get_running_loop_or_none() is None

    async def inside() -> bool:
        return compat.get_running_loop_or_none() is asyncio.get_running_loop()

    assert asyncio.run(inside()) is True
