"""The one fence around other packages' private names.

fakellm reaches into langchain-core, pydantic, asyncio and freezegun in a few
places where no public API does the job. Every such use lives here, so an
upgrade that moves a private name breaks one module, and each name here is
pinned by a test in ``tests/unit/test_compat.py`` that fails with the name.
"""

from __future__ import annotations

import sys
from typing import Any

__all__: list[str] = []


# ------------------------------------------------------------------ virtual time (#13)
# freezegun keeps its active freezes in module-level stacks. fakellm starts one
# freeze and then answers every reader from the calling thread's virtual
# clock: it swaps its own factory in, switches its own ignore list between
# "everything real" (no scope active) and the real-time modules, and makes
# freezegun look only at the direct caller (so code run by a worker thread is
# not mistaken for the threading module's own clock calls).

import freezegun.api as _freezegun_api

#: The datetime class freezegun saved before patching ``datetime.datetime``.
FREEZEGUN_REAL_DATETIME = _freezegun_api.real_datetime


def freezegun_replace_factory(factory: object) -> int:
    """Put ``factory`` in place of the innermost freeze's time factory; return its slot."""
    _freezegun_api.freeze_factories[-1] = factory  # type: ignore[call-overload]
    return len(_freezegun_api.freeze_factories) - 1


def freezegun_set_ignore(slot: int, ignore: tuple[str, ...]) -> None:
    """Replace the ignore list of the freeze at ``slot`` (module-name prefixes)."""
    if 0 <= slot < len(_freezegun_api.ignore_lists):
        _freezegun_api.ignore_lists[slot] = ignore


def freezegun_inspection_limit(limit: int) -> int:
    """Set how many caller frames freezegun checks against the ignore list; return the old value."""
    old: int = _freezegun_api.call_stack_inspection_limit
    _freezegun_api.call_stack_inspection_limit = limit
    return old


__all__ += [
    "FREEZEGUN_REAL_DATETIME",
    "freezegun_inspection_limit",
    "freezegun_replace_factory",
    "freezegun_set_ignore",
]


def current_frames() -> dict[int, Any]:
    """Every thread's innermost frame, by thread id (for stall reports)."""
    return sys._current_frames()


__all__ += ["current_frames"]
