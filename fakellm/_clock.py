"""Where the fake models spend their scripted delays.

Async delays are ``await asyncio.sleep(seconds)`` on the running loop, so they
follow whatever clock that loop keeps. Sync delays go through :func:`sleep`,
the one seam that virtual time replaces: outside the harness it sleeps for
real, inside it advances the virtual clock without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextvars import ContextVar

__all__ = ["asleep", "sleep"]

# The active sync-sleep function. A ContextVar rather than a global, so that a
# virtual-time scope in one thread or task does not leak into others.
_sync_sleeper: ContextVar[Callable[[float], None]] = ContextVar(
    "fakellm_sync_sleeper", default=time.sleep
)


def sleep(seconds: float) -> None:
    """Spend ``seconds`` of a sync call's scripted delay on the active clock."""
    if seconds > 0:
        _sync_sleeper.get()(seconds)


async def asleep(seconds: float) -> None:
    """Spend ``seconds`` of an async call's scripted delay on the running loop."""
    if seconds > 0:
        await asyncio.sleep(seconds)
