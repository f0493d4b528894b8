"""Shared helpers for the reliability suite."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import fakellm

#: The checkout this fakellm was imported from: subprocesses run from it.
ROOT = Path(fakellm.__file__).resolve().parents[1]


def subprocess_env(**extra: str) -> dict[str, str]:
    """The current environment with the checkout importable, plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


@pytest.fixture
def no_thread_left() -> Iterator[None]:
    """Fail the test if it leaves a thread running that was not there before."""
    before = set(threading.enumerate())
    yield
    left = [t.name for t in threading.enumerate() if t not in before and t.is_alive()]
    assert left == []
