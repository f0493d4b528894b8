"""Recorder: the LangChain callback handler that records every callback.

Why a *sync* handler with ``run_inline=True``: under
asyncio, langchain-core calls inline sync handlers directly on the loop, in
the order the callbacks fire, while non-inline sync handlers go to a thread
pool (15 different orders in 15 runs). An async handler would also keep order,
but the sync paths (``invoke``, ``stream``, ``batch``) would then run it on a
fresh event loop in an executor thread per callback: slow, and its
``get_running_loop().time()`` would read the wrong loop. A sync inline handler
is called on the caller's own thread and loop on every path.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from fakellm import _clock, _compat
from fakellm._events import Event, EventLog, scenario_task

if TYPE_CHECKING:
    from langchain_core.agents import AgentAction, AgentFinish
    from langchain_core.documents import Document
    from langchain_core.messages import BaseMessage
    from langchain_core.outputs import ChatGenerationChunk, GenerationChunk, LLMResult
    from tenacity import RetryCallState

__all__ = ["Recorder"]

_EMPTY: Mapping[str, Any] = {}
_UNNAMED: tuple[str | None, str | None] = (None, None)
_NO_LAST: tuple[object, tuple[str | None, str | None]] = (object(), _UNNAMED)
_new_event = tuple.__new__  # skips NamedTuple.__new__'s keyword handling (hot path)
_get_running_loop = _compat.get_running_loop_or_none
_current_task = asyncio.current_task
_current_thread = threading.current_thread
_VirtualTimeLoop = _clock.VirtualTimeLoop
_scenario_task = scenario_task.get
# Its list of live scopes is empty outside every virtual-time scope, and then
# no thread has a virtual clock: one attribute read instead of the clock lookup.
_mirror = _clock.MIRROR


def _sync_time() -> tuple[float, bool]:
    """The clock outside a running event loop: ``(seconds, is_virtual)``.

    Inside a ``virtual_time()`` scope the active sync sleeper is that scope's
    ``VirtualClock.advance``; its clock is then the time source. Otherwise
    real monotonic time (not deterministic, so ``normalized()`` drops it).
    """
    clock = _clock.current_sync_clock() if _mirror.live else None
    if clock is not None:
        return clock.elapsed, True
    return time.monotonic(), False


def _task_name(loop: asyncio.AbstractEventLoop | None) -> str | None:
    """Inside run_scenario, the scenario task the code serves (also from tasks it
    gathered, LangGraph's node tasks and executor threads, which all inherit its
    context); elsewhere the running asyncio task's name, or None."""
    task_name = _scenario_task()
    if task_name is None and loop is not None:
        task = _current_task(loop)
        return task.get_name() if task is not None else None
    return task_name


def _now(loop: asyncio.AbstractEventLoop | None) -> tuple[float, bool]:
    """``(time, is_virtual)``: the running loop's clock, else the sync clock."""
    if loop is None:
        return _sync_time()
    return loop.time(), isinstance(loop, _VirtualTimeLoop)


def _run_name(name: Any, serialized: Mapping[str, Any] | None) -> str | None:
    """The run's name the way langchain-core's tracers assign it."""
    if name:
        return str(name)
    if serialized:
        if serialized.get("name"):
            return str(serialized["name"])
        ids = serialized.get("id")
        if isinstance(ids, list | tuple) and ids:
            return str(ids[-1])
    return None


def _llm_result_info(
    response: Any,
) -> tuple[str | None, Mapping[str, Any] | None, str | None]:
    """``(text, usage, model_name)`` of an LLMResult, read the way
    ``get_usage_metadata_callback`` reads it (first generation's message), with
    completion LLMs' ``llm_output["token_usage"]`` as the fallback."""
    try:
        generation = response.generations[0][0]
    except (AttributeError, IndexError, TypeError):
        generation = None
    text = getattr(generation, "text", None)
    message = getattr(generation, "message", None)
    usage = getattr(message, "usage_metadata", None)
    model_name = None
    if message is not None:
        meta = getattr(message, "response_metadata", None) or {}
        model_name = meta.get("model_name")
    if not usage:
        llm_output = getattr(response, "llm_output", None) or {}
        token_usage = llm_output.get("token_usage") or {}
        if token_usage:
            usage = {
                "input_tokens": int(token_usage.get("prompt_tokens") or 0),
                "output_tokens": int(token_usage.get("completion_tokens") or 0),
                "total_tokens": int(token_usage.get("total_tokens") or 0),
            }
            model_name = model_name or llm_output.get("model_name")
        else:
            usage = None
    return (text if isinstance(text, str) else None), usage, model_name


def _token_event(seq: int, record: tuple[Any, ...]) -> Event:
    """The Event of a token kept by ``Recorder.on_llm_new_token`` as a plain tuple."""
    run_id, parent_run_id, names, tags, token, chunk, now, virtual, wall, task, thread, extra = (
        record
    )
    return _new_event(
        Event,
        (
            seq,
            "llm_new_token",
            run_id,
            parent_run_id,
            names[0],
            names[1],
            tags,
            _EMPTY,
            token,
            chunk,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            now,
            virtual,
            wall,
            task,
            thread,
            extra or _EMPTY,
        ),
    )


class Recorder(BaseCallbackHandler):
    """Records every LangChain callback as an immutable :class:`Event`.

    Attach it per request (``config={"callbacks": [rec]}``: sees the run and
    every child run) or in a constructor (``Model(callbacks=[rec])``: sees only
    that object's runs). Thread-safe: one lock and one global sequence number,
    so :attr:`events` is the order the callbacks happened in, also across
    ``batch`` threads and concurrent tasks.

    Attributes:
        raise_error: True, so that a failure inside the Recorder fails the run
            instead of being logged and silently losing events.
    """

    run_inline = True
    raise_error = True

    def __init__(self) -> None:
        """Create an empty recorder."""
        self._lock = threading.Lock()
        # Everything recorded, in order. A streamed token is kept as a plain
        # tuple (see on_llm_new_token) until ``events`` turns it into its Event;
        # the first ``_built`` entries are all Events. An entry's seq is
        # ``_base`` plus its index (``clear`` moves ``_base`` on).
        self._events: list[Any] = []
        self._built = 0
        self._base = 0
        self._names: dict[UUID, tuple[str | None, str | None]] = {}
        # The token path's last run and its name: a UUID hashes in Python.
        self._last: tuple[object, tuple[str | None, str | None]] = _NO_LAST

    def __repr__(self) -> str:
        return f"<Recorder {len(self._events)} events>"

    # A recorder is shared by identity: copying a model or config must not fork it.
    def __copy__(self) -> Recorder:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Recorder:
        return self

    def __len__(self) -> int:
        return len(self._events)

    @property
    def events(self) -> EventLog:
        """A snapshot of everything recorded so far, in order."""
        with self._lock:
            events = self._events
            base = self._base
            for i in range(self._built, len(events)):
                record = events[i]
                if type(record) is tuple:
                    events[i] = _token_event(base + i, record)
            self._built = len(events)
            return EventLog._trusted(tuple(events))

    def clear(self) -> None:
        """Forget every recorded event (the sequence number keeps counting).

        The names of runs still in flight are kept: a token or end event that
        arrives after ``clear`` for a run started before it still carries the
        run's name and type.
        """
        with self._lock:
            ended = {
                record.run_id
                for record in self._events
                if type(record) is not tuple and record.kind.endswith(("_end", "_error"))
            }
            # Every named run started since the last clear or was in flight
            # then; those that ended since are forgotten.
            self._names = {r: n for r, n in self._names.items() if r not in ended}
            self._base += len(self._events)
            self._built = 0
            self._events.clear()
            self._last = _NO_LAST

    # -- the one recording path ---------------------------------------------

    def _add(
        self,
        kind: str,
        run_id: UUID | None,
        parent_run_id: UUID | None,
        tags: Sequence[str] | None,
        metadata: Mapping[str, Any] | None,
        start: tuple[str | None, str | None] | None = None,
        token: Any = None,
        chunk: Any = None,
        inputs: Any = None,
        outputs: Any = None,
        error: BaseException | None = None,
        data: Any = None,
        output_text: str | None = None,
        usage: Mapping[str, Any] | None = None,
        model_name: str | None = None,
        extra: Mapping[str, Any] = _EMPTY,
    ) -> None:
        loop = _get_running_loop()
        thread = _current_thread().name
        task_name = _task_name(loop)
        # Clock, sequence number and append under one lock, so times never go
        # backwards along the recorded order even with threads.
        with self._lock:
            now, virtual = _now(loop)
            if start is not None:
                self._names[run_id] = start  # type: ignore[index]
                self._last = (run_id, start)
                names = start
            else:
                names = self._names.get(run_id, _UNNAMED)  # type: ignore[arg-type]
            seq = self._base + len(self._events)
            # datetime.now is looked up per call (not bound once) so freezegun,
            # which swaps the module's ``datetime``, drives wall_time.
            self._events.append(
                _new_event(
                    Event,
                    (
                        seq,
                        kind,
                        run_id,
                        parent_run_id,
                        names[0],
                        names[1],
                        tuple(tags) if tags else (),
                        metadata or _EMPTY,
                        token,
                        chunk,
                        inputs,
                        outputs,
                        error,
                        data,
                        output_text,
                        usage,
                        model_name,
                        now,
                        virtual,
                        datetime.now(),
                        task_name,
                        thread,
                        extra,
                    ),
                )
            )

    # -- start events ---------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_chain_start``."""
        start = (
            _run_name(kwargs.get("name"), serialized),
            kwargs.get("run_type") or "chain",
        )
        self._add(
            "chain_start",
            run_id,
            parent_run_id,
            tags,
            metadata,
            start,
            inputs=inputs,
            extra=kwargs,
        )

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_chat_model_start`` (defined, so core never falls back
        to ``on_llm_start`` for chat models)."""
        start = (_run_name(kwargs.get("name"), serialized), "chat_model")
        self._add(
            "chat_model_start",
            run_id,
            parent_run_id,
            tags,
            metadata,
            start,
            inputs=messages,
            extra=kwargs,
        )

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_llm_start`` (completion LLMs)."""
        start = (_run_name(kwargs.get("name"), serialized), "llm")
        self._add(
            "llm_start",
            run_id,
            parent_run_id,
            tags,
            metadata,
            start,
            inputs=prompts,
            extra=kwargs,
        )

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_tool_start``; ``inputs`` (the dict form) goes to extra."""
        start = (_run_name(kwargs.get("name"), serialized), "tool")
        extra = {**kwargs, "inputs": inputs} if inputs is not None else kwargs
        self._add(
            "tool_start",
            run_id,
            parent_run_id,
            tags,
            metadata,
            start,
            inputs=input_str,
            extra=extra,
        )

    def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_retriever_start``."""
        start = (_run_name(kwargs.get("name"), serialized) or "Retriever", "retriever")
        self._add(
            "retriever_start",
            run_id,
            parent_run_id,
            tags,
            metadata,
            start,
            inputs=query,
            extra=kwargs,
        )

    # -- model output -----------------------------------------------------------

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: GenerationChunk | ChatGenerationChunk | None = None,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_llm_new_token`` (the token and the chunk, by reference).

        Fired once per streamed chunk, so it does the least it can while the
        stream waits: it reads what only this moment can tell (clocks, task,
        thread, the run's name and tags) into a plain tuple, and ``events``
        builds the Event from it, the same Event ``_add`` would have built.
        """
        loop = _get_running_loop()
        thread = _current_thread().name
        task_name = _scenario_task()
        if loop is not None and task_name is None:
            task = _current_task(loop)
            task_name = task.get_name() if task is not None else None
        # ``_add``'s steps inline (each call costs here), the lock taken by hand.
        lock = self._lock
        lock.acquire()
        try:
            if loop is not None:
                now, virtual = loop.time(), isinstance(loop, _VirtualTimeLoop)
            elif _mirror.live:
                now, virtual = _sync_time()
            else:
                now, virtual = time.monotonic(), False
            # Every token of a run comes with the same run id object, and a
            # UUID hashes in Python: the last run's name is kept at hand.
            last, names = self._last
            if run_id is not last:
                names = self._names.get(run_id, _UNNAMED)
                self._last = (run_id, names)
            # datetime.now is looked up per call, as in ``_add``.
            self._events.append(
                (
                    run_id,
                    parent_run_id,
                    names,
                    tuple(tags) if tags else (),
                    token,
                    chunk,
                    now,
                    virtual,
                    datetime.now(),
                    task_name,
                    thread,
                    kwargs or _EMPTY,  # as its Event will hold it: no empty dict kept per token
                )
            )
        finally:
            lock.release()

    def on_stream_event(
        self,
        event: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record a ``stream_events(version="v3")`` protocol event."""
        self._add("stream_event", run_id, parent_run_id, tags, None, data=event, extra=kwargs)

    def on_llm_end(
        self,
        response: LLMResult,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_llm_end``, with text, usage and model name pre-extracted
        so the EventLog never needs LangChain types."""
        text, usage, model_name = _llm_result_info(response)
        self._add(
            "llm_end",
            run_id,
            parent_run_id,
            tags,
            None,
            outputs=response,
            output_text=text,
            usage=usage,
            model_name=model_name,
            extra=kwargs,
        )

    def on_llm_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        tags: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_llm_error`` (a partial ``response`` stays in extra)."""
        self._add("llm_error", run_id, parent_run_id, tags, None, error=error, extra=kwargs)

    # -- chain, tool, retriever ends ----------------------------------------------

    def on_chain_end(
        self,
        outputs: dict[str, Any],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_chain_end``."""
        self._add(
            "chain_end",
            run_id,
            parent_run_id,
            kwargs.get("tags"),
            None,
            outputs=outputs,
            extra=kwargs,
        )

    def on_chain_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_chain_error``."""
        self._add(
            "chain_error",
            run_id,
            parent_run_id,
            kwargs.get("tags"),
            None,
            error=error,
            extra=kwargs,
        )

    def on_tool_end(
        self,
        output: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_tool_end``."""
        self._add(
            "tool_end",
            run_id,
            parent_run_id,
            kwargs.get("tags"),
            None,
            outputs=output,
            extra=kwargs,
        )

    def on_tool_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_tool_error``."""
        self._add(
            "tool_error",
            run_id,
            parent_run_id,
            kwargs.get("tags"),
            None,
            error=error,
            extra=kwargs,
        )

    def on_retriever_end(
        self,
        documents: Sequence[Document],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_retriever_end``."""
        self._add(
            "retriever_end",
            run_id,
            parent_run_id,
            kwargs.get("tags"),
            None,
            outputs=documents,
            extra=kwargs,
        )

    def on_retriever_error(
        self,
        error: BaseException,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_retriever_error``."""
        self._add(
            "retriever_error",
            run_id,
            parent_run_id,
            kwargs.get("tags"),
            None,
            error=error,
            extra=kwargs,
        )

    # -- events inside a run ----------------------------------------------------

    def on_agent_action(
        self,
        action: AgentAction,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_agent_action``."""
        self._add(
            "agent_action",
            run_id,
            parent_run_id,
            kwargs.get("tags"),
            None,
            data=action,
            extra=kwargs,
        )

    def on_agent_finish(
        self,
        finish: AgentFinish,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_agent_finish``."""
        self._add(
            "agent_finish",
            run_id,
            parent_run_id,
            kwargs.get("tags"),
            None,
            data=finish,
            extra=kwargs,
        )

    def on_text(
        self,
        text: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_text``."""
        self._add(
            "text",
            run_id,
            parent_run_id,
            kwargs.get("tags"),
            None,
            data=text,
            extra=kwargs,
        )

    def on_retry(
        self,
        retry_state: RetryCallState,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_retry`` (the tenacity retry state, by reference)."""
        self._add(
            "retry",
            run_id,
            parent_run_id,
            kwargs.get("tags"),
            None,
            data=retry_state,
            extra=kwargs,
        )

    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Record ``on_custom_event``; its name is ``extra["name"]``."""
        self._add(
            "custom_event",
            run_id,
            kwargs.get("parent_run_id"),
            tags,
            metadata,
            data=data,
            extra={**kwargs, "name": name},
        )
