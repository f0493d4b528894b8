"""Closing the runs that a cancellation leaves open.

langchain-core reports a model run's end or error from inside ``agenerate`` and
``astream``; a call cancelled while core awaits its callbacks (the start event
being dispatched, the task that runs the model not yet started, the end event
being gathered) never reaches that report, and the run stays open for good.
When a call is cancelled while a run it started is still unreported, the model
reports the cancellation as the run's error, once. (Only a cancellation: a
handler that raises with ``raise_error`` keeps core's own outcome.)

Two ways to know which runs those are:

- :class:`OpenRun`, for a call that starts exactly one run (a chat model's
  ``ainvoke``, every ``astream``): the run's id is chosen up front, as core
  would choose it, and the run counts as reported from the moment core's (or
  the model's) end or error report of it begins. No callback handler is added,
  so core's dispatch costs what it costs without fakellm.
- :class:`RunWatch`, an inline handler added first, for the rest: an
  ``agenerate`` of several inputs, and every ``agenerate`` of a completion
  model (``BaseLLM``), which dispatches the start event in a task of its own:
  cancelled before that task's first step, the run never started, and only a
  handler can tell.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    BaseCallbackHandler,
    BaseCallbackManager,
)
from langchain_core.outputs import LLMResult

__all__ = ["OpenRun", "RunWatch", "adopt", "stream_began", "watched"]


class RunWatch(BaseCallbackHandler):
    """Notes which model runs started and which ended (inline, so in event order)."""

    run_inline = True

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[UUID, UUID | None] = {}

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
            await _run_manager(manager, run_id, parent_run_id).on_llm_error(
                error, response=LLMResult(generations=[])
            )


def _run_manager(
    manager: AsyncCallbackManager, run_id: UUID, parent_run_id: UUID | None
) -> AsyncCallbackManagerForLLMRun:
    """The run manager core's ``on_chat_model_start`` builds for ``run_id``."""
    return AsyncCallbackManagerForLLMRun(
        run_id=run_id,
        handlers=manager.handlers,
        inheritable_handlers=manager.inheritable_handlers,
        parent_run_id=parent_run_id,
        tags=manager.tags,
        inheritable_tags=manager.inheritable_tags,
        metadata=manager.metadata,
        inheritable_metadata=manager.inheritable_metadata,
    )


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


# The OpenRun of the call running in this context: agenerate's own run, or an
# astream's run parked around core's first step (see OpenRun).
_open_run: ContextVar[OpenRun | None] = ContextVar("fakellm_open_run", default=None)


class OpenRun:
    """The one run of a call, closed on cancellation unless its report has begun.

    The call chooses the run's id before core starts the run (core takes a
    ``run_id`` it is given), so it can name the run however far core got. The
    run's report is someone else's once it begins:

    - ``agenerate``: when ``on_llm_end`` or ``on_llm_error`` of the run manager
      core built for the run starts running (:func:`adopt` gives that manager,
      where the model's code receives it, a class that notes it on the manager).
      A report created but never started (a task of a gather cancelled first)
      reports nothing, and leaves the run open; one that started completes, as
      core shields it.
    - ``astream``: when the model's ``_astream`` begins (:func:`stream_began`
      sets ``reported``; so does an ``agenerate`` that takes the run over).
      Core calls it first thing inside the block that reports the run's error,
      a cancellation included, or its end; before it, the start event's
      dispatch and a rate limiter are the only places a cancellation can land,
      and there core reports nothing.

    A cancellation before then is reported here, as the run's error, to the
    handlers core started the run with.
    """

    __slots__ = ("manager", "reported", "run_id", "stream")

    def __init__(self, run_id: UUID, *, stream: bool = False) -> None:
        self.run_id = run_id
        self.stream = stream
        self.reported = False
        self.manager: AsyncCallbackManagerForLLMRun | None = None

    def park(self) -> Any:
        """Make this the context's open run (a token for :meth:`unpark`)."""
        return _open_run.set(self)

    @staticmethod
    def unpark(token: Any) -> None:
        _open_run.reset(token)

    @staticmethod
    def claim(run_id: UUID | None) -> None:
        """An ``agenerate`` of ``run_id`` takes over that run from the astream that
        parked it (core's astream falls back to ``ainvoke`` when streaming is off)."""
        run = _open_run.get()
        if run is not None and run.stream and run.run_id == run_id:
            run.reported = True

    async def close(
        self, model: Any, callbacks: Any, tags: Any, metadata: Any, error: BaseException
    ) -> None:
        """Report ``error`` as the run's error unless its report began (once)."""
        manager = self.manager
        if self.reported or getattr(manager, "fakellm_reported", False):
            return
        self.reported = True
        if manager is None:  # the model's code never saw the run: configure as core did
            configured = AsyncCallbackManager.configure(
                callbacks,
                model.callbacks,
                model.verbose,
                tags,
                model.tags,
                metadata,
                model.metadata,
            )
            manager = _run_manager(configured, self.run_id, configured.parent_run_id)
        await manager.on_llm_error(error, response=LLMResult(generations=[]))


def adopt(run_manager: AsyncCallbackManagerForLLMRun | None) -> None:
    """Where a model's code first receives core's manager of a run: if it is the
    context's agenerate run, note when its end or error report begins."""
    run = _open_run.get()
    if run is None or run.stream or run_manager is None or run_manager.run_id != run.run_id:
        return
    run.manager = run_manager
    # A class, not bound methods kept on the manager: those would make it a
    # reference cycle, left to the garbage collector instead of freed at once.
    run_manager.__class__ = _noting(type(run_manager))


@functools.cache
def _noting(cls: type[AsyncCallbackManagerForLLMRun]) -> type[AsyncCallbackManagerForLLMRun]:
    """``cls`` whose end and error reports note, on their first step (not when
    their coroutine is made), that the run's report began."""

    class Noting(cls):  # type: ignore[valid-type,misc]
        async def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
            self.fakellm_reported = True
            await super().on_llm_end(*args, **kwargs)

        async def on_llm_error(self, *args: Any, **kwargs: Any) -> None:
            self.fakellm_reported = True
            await super().on_llm_error(*args, **kwargs)

    # Code that looks at the manager's type (a subclass's _agenerate) sees core's name.
    Noting.__name__, Noting.__qualname__ = cls.__name__, cls.__qualname__
    return Noting


def stream_began() -> None:
    """Called first thing in a model's ``_astream``: a parked astream run is
    core's to report from here (see :class:`OpenRun`)."""
    run = _open_run.get()
    if run is not None and run.stream:
        run.reported = True
