"""fakellm's pytest plugin, loaded automatically through the ``pytest11`` entry point.

For now it does two things: it registers :mod:`fakellm.assertions` for
pytest's assertion rewriting, and it answers pytest-asyncio's
``pytest_asyncio_loop_factories`` hook so that an async test opts into virtual
time with one line::

    @pytest.mark.asyncio(loop_factories=["virtual_time"])
    async def test_timeout():
        ...

Async tests that do not opt in keep their loop and their test ids
(pytest-asyncio >= 1.4 is needed for the hook).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

pytest.register_assert_rewrite("fakellm.assertions")

from fakellm._clock import asyncio_loop_factories  # noqa: E402 - after the rewrite hook


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Offer the virtual-time loop to tests that ask for it, the default to others."""
    return asyncio_loop_factories(item)


def pytest_configure(config: pytest.Config) -> None:
    """Document the marker argument this plugin adds to pytest-asyncio's."""
    config.addinivalue_line(
        "markers",
        'asyncio(loop_factories=["virtual_time"]): run an async test on fakellm\'s '
        "virtual-time loop (scripted delays cost no wall-clock time)",
    )


__all__: list[str] = []
