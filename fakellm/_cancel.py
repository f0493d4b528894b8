"""Closing the runs that a cancellation leaves open.

langchain-core reports a model run's end or error from inside ``agenerate`` and
``astream``; a call cancelled while core awaits its callbacks (the start event
being dispatched, the task that runs the model not yet started, the end event
being gathered) never reaches that report, and the run stays open for good. The
models watch their own runs with :class:`RunWatch`, an inline handler added
first, and when a call is cancelled while a run it started is still open, report
the cancellation as the run's error, once. (Only a cancellation: a handler that
raises with ``raise_error`` keeps core's own outcome.)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    BaseCallbackHandler,
    BaseCallbackManager,
)
from langchain_core.outputs import LLMResult

__all__ = ["RunWatch", "watched"]


class RunWatch(BaseCallbackHandler):
    """Notes which model runs started and which ended (inline, so in event order)."""

    run_inline = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[UUID, UUID | None] = {}
        self._handed = False

    @property
    def ignore_llm(self) -> bool:
        """True once its runs were handed over (:meth:`hand_over`): core then sends
        it no token, end or error events, which it no longer needs."""
        return self._handed

    def hand_over(self) -> None:
        """Core now ends every run this watch saw start, whatever happens.

        A model's ``astream`` calls this once core's stream yielded its first
        chunk: core is then inside the block that reports the run's error (a
        cancellation included) or its end, so the run is no longer this watch's
        to close; as when the watch sees that report begin.
        """
        with self._lock:
            self._open.clear()
            self._handed = True

    def _start(self, run_id: UUID, parent_run_id: UUID | None) -> None:
        with self._lock:
            self._open[run_id] = parent_run_id

    def _end(self, run_id: UUID) -> None:
        with self._lock:
            self._open.pop(run_id, None)

    def on_chat_model_start(
        self,
        serialized: Any,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, parent_run_id)

    def on_llm_start(
        self,
        serialized: Any,
        prompts: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        self._start(run_id, parent_run_id)

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def open_runs(self) -> list[tuple[UUID, UUID | None]]:
        """The runs that started and have not ended, in start order."""
        with self._lock:
            return list(self._open.items())

    def with_me(self, callbacks: Any) -> Any:
        """``callbacks`` (a list, a manager or None) with this watch first.

        First, not last: core creates every handler's coroutine before awaiting
        them in order, and a handler that raises (``raise_error``) leaves the
        ones after it never awaited, which Python warns about. Inline handlers
        never give up the loop between each other, so a cancellation finds the
        watch and them agreeing on which runs started and ended.
        """
        if isinstance(callbacks, BaseCallbackManager):
            manager = callbacks.copy()
            manager.handlers = [self, *manager.handlers]
            return manager
        return [self, *(callbacks or [])]

    async def close_open(
        self, model: Any, callbacks: Any, tags: Any, metadata: Any, error: BaseException
    ) -> None:
        """Report ``error`` for every run still open, to the handlers core would use."""
        runs = self.open_runs()
        if not runs:
            return
        manager = AsyncCallbackManager.configure(
            callbacks, model.callbacks, model.verbose, tags, model.tags, metadata, model.metadata
        )
        for run_id, parent_run_id in runs:
            run = AsyncCallbackManagerForLLMRun(
                run_id=run_id,
                handlers=manager.handlers,
                inheritable_handlers=manager.inheritable_handlers,
                parent_run_id=parent_run_id,
                tags=manager.tags,
                inheritable_tags=manager.inheritable_tags,
                metadata=manager.metadata,
                inheritable_metadata=manager.inheritable_metadata,
            )
            await run.on_llm_error(error, response=LLMResult(generations=[]))


async def watched(
    model: Any, generate: Callable[..., Awaitable[LLMResult]], args: Any, kwargs: dict[str, Any]
) -> LLMResult:
    """Run ``generate`` (a model's ``agenerate``) so that no run it starts stays open.

    ``args`` and ``kwargs`` are ``agenerate``'s: the inputs, ``stop``,
    ``callbacks`` (third), then keywords (``tags``, ``metadata``, ...).
    """
    args = list(args)
    callbacks = args[2] if len(args) > 2 else kwargs.get("callbacks")
    watch = RunWatch()
    if len(args) > 2:
        args[2] = watch.with_me(callbacks)
    else:
        kwargs["callbacks"] = watch.with_me(callbacks)
    try:
        return await generate(*args, **kwargs)
    except asyncio.CancelledError as exc:
        await watch.close_open(model, callbacks, kwargs.get("tags"), kwargs.get("metadata"), exc)
        raise
