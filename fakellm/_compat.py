"""The one fence around other packages' private names.

fakellm reaches into langchain-core, pydantic, asyncio and freezegun in a few
places where no public API does the job. Every such use lives here, so an
upgrade that moves a private name breaks one module, and each name here is
pinned by a test in ``tests/unit/test_compat.py`` that fails with the name.
"""

from __future__ import annotations

import asyncio

__all__: list[str] = []

# -- asyncio: the Recorder's hot path ----------------------------------------------------

#: The running event loop of this thread, or None. ``asyncio.get_running_loop``
#: raises RuntimeError instead, and catching that on every recorded event
#: outside a loop (the sync ``stream``/``invoke`` paths) costs about 13 times
#: the lookup itself. asyncio exports it from ``asyncio.events`` for event-loop
#: implementations.
get_running_loop_or_none = asyncio._get_running_loop
__all__ += ["get_running_loop_or_none"]
