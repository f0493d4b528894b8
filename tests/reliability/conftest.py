"""Shared helpers for the reliability suite."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


class Hung(BaseException):
    """Raised by :func:`watchdog`: a BaseException, so no ``except Exception`` swallows it."""


@contextmanager
def watchdog(seconds: int) -> Iterator[None]:
    """Turn a hang into a failure (a generous bound, not a timing assertion)."""

    def hung(signum: int, frame: Any) -> None:
        raise Hung(f"still running after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
