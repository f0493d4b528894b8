"""Recorded callback events and the queries a test asks of them (pure).

An :class:`Event` is one callback call, as the :class:`~fakellm.Recorder` saw
it; an :class:`EventLog` is an immutable sequence of them in the one total
order they happened, with queries (runs, run tree, tokens, text, output, usage,
errors), a plain comparable form (:meth:`EventLog.normalized`) and a text
timeline (:meth:`EventLog.timeline`).

This module imports neither LangChain nor pytest: payloads are kept as the
references LangChain handed over and are only looked at (by duck typing) when a
query needs them, so recording stays cheap.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import os
import re
from array import array
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple, overload
from uuid import UUID

__all__ = ["KINDS", "Event", "EventLog", "Run", "RunRef", "ToolUse", "is_interrupt"]

#: Every event kind: a LangChain callback method name without its ``on_`` prefix.
KINDS: tuple[str, ...] = (
    "chain_start",
    "chain_end",
    "chain_error",
    "chat_model_start",
    "llm_start",
    "llm_new_token",
    "stream_event",
    "llm_end",
    "llm_error",
    "tool_start",
    "tool_end",
    "tool_error",
    "retriever_start",
    "retriever_end",
    "retriever_error",
    "agent_action",
    "agent_finish",
    "retry",
    "text",
    "custom_event",
)
_KIND_SET = frozenset(KINDS)
START_KINDS = frozenset(k for k in KINDS if k.endswith("_start"))
END_KINDS = frozenset({"chain_end", "llm_end", "tool_end", "retriever_end"})
ERROR_KINDS = frozenset(k for k in KINDS if k.endswith("_error"))
FINISH_KINDS = END_KINDS | ERROR_KINDS

_EMPTY: Mapping[str, Any] = {}

#: The name of the scenario task the current code runs under (set by
#: ``run_scenario`` for each of its tasks). Tasks inherit their creator's
#: context, so a task that ``asyncio.gather`` makes inside a scenario task
#: still knows which scenario task it serves: the Recorder names events by it
#: instead of asyncio's ``Task-7``.
scenario_task: ContextVar[str | None] = ContextVar("fakellm_scenario_task", default=None)


class Event(NamedTuple):
    """One callback call, recorded as an immutable record.

    A ``NamedTuple`` rather than a frozen dataclass because the Recorder builds
    one per streamed token: tuple construction is about 15 times cheaper.

    Attributes:
        seq: Position in the Recorder's one global order (0, 1, 2, ...).
        kind: The callback without ``on_``: ``"chat_model_start"``,
            ``"llm_new_token"``, ``"chain_error"``, ... (see :data:`KINDS`).
        run_id: The run the callback belongs to.
        parent_run_id: Its parent run, or None for a root run.
        run_name: The run's name, carried on every event of the run.
        run_type: ``"chain"``, ``"prompt"``, ``"parser"``, ``"chat_model"``,
            ``"llm"``, ``"tool"`` or ``"retriever"``.
        tags: The run's tags.
        metadata: The run's metadata (as given on its start event).
        token: ``llm_new_token``: the token (a string or content blocks).
        chunk: ``llm_new_token``: the generation chunk, as given.
        inputs: start events: messages, prompts, chain inputs, tool input or query.
        outputs: end events: the LLMResult, chain outputs, tool output or documents.
        error: error events: the exception.
        data: ``stream_event``, ``custom_event``, ``text``, ``retry``,
            ``agent_action``/``agent_finish``: the payload.
        output_text: ``llm_end``: the text of the first generation.
        usage: ``llm_end``: token usage (``input_tokens``, ``output_tokens``,
            ``total_tokens``, ...) as plain data, or None.
        model_name: ``llm_end``: the model name the response reported.
        time: The clock: the event loop's time inside a running loop (virtual
            under the harness), otherwise the active sync clock.
        virtual: Whether ``time`` came from a virtual clock (deterministic).
        wall_time: ``datetime.now()`` at the event (frozen under the harness).
        task: Inside ``run_scenario``, the name of the scenario task the
            code serves (also from tasks it gathered, LangGraph's node tasks
            and executor threads); elsewhere the current asyncio task's name,
            or None outside one.
        thread: Name of the current thread.
        extra: Other keyword arguments of the callback (``invocation_params``,
            ``batch_size``, a custom event's ``name``, ...).
    """

    seq: int
    kind: str
    run_id: UUID | None
    parent_run_id: UUID | None
    run_name: str | None
    run_type: str | None
    tags: tuple[str, ...]
    metadata: Mapping[str, Any]
    token: Any = None
    chunk: Any = None
    inputs: Any = None
    outputs: Any = None
    error: BaseException | None = None
    data: Any = None
    output_text: str | None = None
    usage: Mapping[str, Any] | None = None
    model_name: str | None = None
    time: float = 0.0
    virtual: bool = False
    wall_time: datetime | None = None
    task: str | None = None
    thread: str = ""
    extra: Mapping[str, Any] = _EMPTY

    def __repr__(self) -> str:
        name = f":{self.run_name}" if self.run_name else ""
        detail = ""
        if self.kind == "llm_new_token":
            detail = f" {self.token!r}"
        elif self.error is not None:
            detail = f" {_error_text(self.error)}"
        return f"<Event #{self.seq} {self.kind}{name}{detail}>"

    @property
    def short(self) -> str:
        """``kind:run_name``, the form expectations in assertions use."""
        return f"{self.kind}:{self.run_name}" if self.run_name else self.kind


@dataclass(frozen=True, slots=True)
class Run:
    """One run (chain, model, tool, retriever call) as seen in an EventLog.

    Attributes:
        id: The run id.
        label: Stable label (``"r1"``, ``"r2"``, ...) in order of appearance.
        name: The run's name (None if the log never saw it start).
        type: The run's type (see :attr:`Event.run_type`).
        parent_id: The parent run id, or None for a root.
        tags: Tags from the run's start event.
        start: Index in the log of its start event, or None.
        end: Index of its first end or error event, or None while running.
        status: ``"ok"``, ``"error"``, ``"interrupted"`` (a LangGraph
            ``interrupt()`` paused it: a pause, not a failure), ``"running"``
            (started, not finished) or ``"unseen"`` (known only as another
            run's parent).
        children: Ids of its child runs, in order of appearance.
    """

    id: UUID
    label: str
    name: str | None
    type: str | None
    parent_id: UUID | None
    tags: tuple[str, ...]
    start: int | None
    end: int | None
    status: Literal["ok", "error", "interrupted", "running", "unseen"]
    children: tuple[UUID, ...]

    def __str__(self) -> str:
        return f"{self.label} {self.name or '?'}"


class ToolUse(NamedTuple):
    """One tool call a model asked for: compares equal to ``(name, args)``."""

    name: str
    args: dict[str, Any]


#: How queries accept a run: its id, a Run, one of its Events, its name (when
#: unique in the log) or its label (``"r3"``).
RunRef = UUID | Run | Event | str


class EventLog(Sequence[Event]):
    """An immutable, totally ordered sequence of events, with queries.

    Indexing and slicing work as on a tuple (a slice is an EventLog).
    Queries that take a run accept a :data:`RunRef`.

    Cost of queries, for a log of N events and R runs: the first query that
    needs runs indexes the log once (O(N)), and the first that names a run by
    its name tables the names once (O(R)); after that ``run``, ``parent``,
    ``end_event``, ``output``, ``output_text`` and ``error`` cost O(1);
    ``tokens``, ``text`` and ``filter(run=...)`` cost the run's own events
    (with ``subtree=True``, the subtree's events, merged in order); ``usage(run)``
    the subtree's events; ``children`` and ``subtree`` their result's size;
    ``runs``, ``roots`` and ``tree`` O(R). Whole-log views (``kinds``,
    ``shorts``, ``filter`` without a run, ``errors``, ``usage``,
    ``usage_by_run``, ``usage_by_model``, ``normalized``, ``timeline``) are
    O(N), so a loop of a per-run query over every run is O(N) in all.
    """

    __slots__ = ("_events", "_index", "_labels")

    def __init__(self, events: Iterable[Event] = ()) -> None:
        """Wrap ``events`` (any iterable of :class:`Event`) in recorded order."""
        if not isinstance(events, Iterable):
            raise TypeError(
                f"events={events!r} is not iterable; EventLog takes an iterable of fakellm "
                "Event records (e.g. recorder.events)"
            )
        self._events: tuple[Event, ...] = tuple(events)
        for i, ev in enumerate(self._events):
            if not isinstance(ev, Event):
                raise TypeError(
                    f"events[{i}]={ev!r} is not an Event; EventLog holds only fakellm Event records"
                )
        self._labels: dict[UUID, str] | None = None
        self._index: _RunIndex | None = None

    @classmethod
    def _trusted(cls, events: tuple[Event, ...]) -> EventLog:
        """Wrap a tuple already known to hold only Events (skips the check)."""
        log = cls.__new__(cls)
        log._events, log._labels, log._index = events, None, None
        return log

    # -- sequence protocol -------------------------------------------------

    def __len__(self) -> int:
        return len(self._events)

    @overload
    def __getitem__(self, index: int) -> Event: ...
    @overload
    def __getitem__(self, index: slice) -> EventLog: ...
    def __getitem__(self, index: int | slice) -> Event | EventLog:
        if isinstance(index, slice):
            return EventLog(self._events[index])
        return self._events[index]

    def __iter__(self) -> Iterator[Event]:
        return iter(self._events)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, EventLog):
            return self._events == other._events
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._events)

    def __repr__(self) -> str:
        return f"EventLog({len(self._events)} events, {len(self.runs())} runs)"

    # -- plain views ---------------------------------------------------------

    def kinds(self) -> list[str]:
        """The kinds of the events, in order."""
        return [ev.kind for ev in self._events]

    def shorts(self) -> list[str]:
        """``kind:run_name`` of each event, in order (what assertions compare)."""
        return [ev.short for ev in self._events]

    def filter(
        self,
        *,
        kind: str | Collection[str] | None = None,
        run: RunRef | None = None,
        name: str | None = None,
        tag: str | None = None,
        subtree: bool = False,
    ) -> EventLog:
        """The events matching every given criterion, in order.

        Args:
            kind: One kind or several (see :data:`KINDS`).
            run: Only this run's events (and its descendants' if ``subtree``).
            name: Only events of runs with this name.
            tag: Only events of runs carrying this tag.
            subtree: With ``run``, include the events of its descendant runs.
        """
        kinds = _check_kinds(kind) if kind is not None else None
        candidates: Iterable[Event] = self._events
        if run is not None:
            candidates = self._run_events(run, subtree=subtree)
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name={name!r} must be a run name (str)")
        if tag is not None and not isinstance(tag, str):
            raise TypeError(f"tag={tag!r} must be a tag (str)")
        return EventLog._trusted(
            tuple(
                ev
                for ev in candidates
                if (kinds is None or ev.kind in kinds)
                and (name is None or ev.run_name == name)
                and (tag is None or tag in ev.tags)
            )
        )

    def _run_events(self, run: RunRef, *, subtree: bool = False) -> list[Event]:
        """The events of ``run`` (and its descendants'), in log order, from the index."""
        index = self._run_table()
        events = self._events
        k = self._ordinal(run)
        if not subtree:
            return [events[i] for i in index.positions(k)]
        ordinal = index.ordinal
        lists = [index.positions(ordinal[r.id]) for r in self.subtree(index.runs[k])]
        positions = lists[0] if len(lists) == 1 else sorted(itertools.chain(*lists))
        return [events[i] for i in positions]

    # -- runs and the run tree ----------------------------------------------

    def labels(self) -> dict[UUID, str]:
        """Run id → stable label (``"r1"``, ...), in order of first appearance."""
        if self._labels is None:
            labels: dict[UUID, str] = {}
            # Ids repeat from one event to the next (a model's tokens): the very
            # objects just labelled are skipped without hashing (UUID.__hash__
            # is Python code).
            last_parent: object = _NOTHING
            last_rid: object = _NOTHING
            for ev in self._events:
                parent, rid = ev.parent_run_id, ev.run_id
                if parent is not last_parent:
                    last_parent = parent
                    if parent is not None and parent not in labels:
                        labels[parent] = f"r{len(labels) + 1}"
                if rid is not last_rid:
                    last_rid = rid
                    if rid is not None and rid not in labels:
                        labels[rid] = f"r{len(labels) + 1}"
            self._labels = labels
        return self._labels

    def _run_table(self) -> _RunIndex:
        if self._index is None:
            self._index = _RunIndex(self._events)
        return self._index

    def runs(
        self,
        *,
        name: str | None = None,
        type: str | None = None,
        tag: str | None = None,
    ) -> list[Run]:
        """Runs that had events in this log, in order of appearance."""
        return [
            r
            for r in self._run_table().runs
            if r.status != "unseen"
            and (name is None or r.name == name)
            and (type is None or r.type == type)
            and (tag is None or tag in r.tags)
        ]

    def run(self, ref: RunRef) -> Run:
        """The run ``ref`` names (id, Run, Event, unique name or label)."""
        return self._run_table().runs[self._ordinal(ref)]

    def _ordinal(self, ref: RunRef) -> int:
        """The position in the run index of the run ``ref`` names (see :meth:`run`)."""
        index = self._run_table()
        if isinstance(ref, Run):
            ref = ref.id
        elif isinstance(ref, Event):
            if ref.run_id is None:
                raise ValueError(f"run={ref!r}: this event belongs to no run")
            ref = ref.run_id
        if isinstance(ref, UUID):
            k = index.ordinal.get(ref)
            if k is None:
                raise ValueError(f"run={ref!r} is not a run in this log; runs: {self._run_list()}")
            return k
        if isinstance(ref, str):
            named = index.by_name().get(ref, [])
            if len(named) == 1:
                return named[0]
            if len(named) > 1:
                raise ValueError(
                    f"run={ref!r} is ambiguous: {len(named)} runs have that name "
                    f"({', '.join(index.runs[k].label for k in named)}); pass a run id, a Run "
                    f"from log.runs(name={ref!r}) or a label"
                )
            k = index.labelled(ref)
            if k is not None:
                return k
            raise ValueError(f"run={ref!r} matches no run name or label; runs: {self._run_list()}")
        raise TypeError(
            f"run={ref!r} is not a run reference; accepted: a run id (UUID), a Run, "
            "an Event, a run name or a label like 'r1'"
        )

    def _runs_and_positions(self) -> Iterator[tuple[Run, list[int]]]:
        """Each run that had events, in :meth:`runs` order, with the indices of
        its own events in log order (from the index: O(N) for all of them)."""
        index = self._run_table()
        for k, r in enumerate(index.runs):
            if r.status != "unseen":
                yield r, index.positions(k)

    def _run_list(self) -> str:
        return ", ".join(str(r) for r in self.runs()) or "(none)"

    def roots(self) -> list[Run]:
        """Runs whose parent is None or was never seen in this log."""
        table = self._run_table()
        return [
            r for r in self.runs() if r.parent_id is None or table[r.parent_id].status == "unseen"
        ]

    def parent(self, run: RunRef) -> Run | None:
        """The parent of ``run``, or None if it has none.

        A parent that never appeared in this log (a constructor callback sees
        only its own object's runs) comes back as a ``Run`` with status
        ``"unseen"``: its id is known, nothing else. :meth:`roots` counts the
        children of such parents as roots.
        """
        r = self.run(run)
        return None if r.parent_id is None else self._run_table()[r.parent_id]

    def children(self, run: RunRef) -> list[Run]:
        """Direct children of ``run``, in order of appearance."""
        table = self._run_table()
        return [table[c] for c in self.run(run).children]

    def subtree(self, run: RunRef) -> list[Run]:
        """``run`` and all its descendants, depth first."""
        table = self._run_table()
        out: list[Run] = []
        seen: set[UUID] = set()  # a log built by hand may name a run its own ancestor
        stack = [self.run(run)]
        while stack:
            r = stack.pop()
            if r.id in seen:
                continue
            seen.add(r.id)
            out.append(r)
            stack.extend(table[c] for c in reversed(r.children))
        return out

    def tree(self) -> str:
        """The run tree as indented text, one run per line."""
        table = self._run_table()
        lines: list[str] = []
        for root in self.roots():
            stack = [(root, 0)]
            while stack:
                r, depth = stack.pop()
                lines.append(f"{'  ' * depth}{r} [{r.type}] {r.status}")
                stack.extend((table[c], depth + 1) for c in reversed(r.children))
        return "\n".join(lines)

    # -- payload queries ------------------------------------------------------

    def tokens(self, run: RunRef) -> list[Any]:
        """The tokens ``run`` streamed (``on_llm_new_token``), in order."""
        return [ev.token for ev in self._run_events(run) if ev.kind == "llm_new_token"]

    def text(self, run: RunRef) -> str:
        """The text ``run`` streamed: its string tokens concatenated."""
        return "".join(t for t in self.tokens(run) if isinstance(t, str))

    def end_event(self, run: RunRef) -> Event | None:
        """The first end or error event of ``run``, or None while it runs."""
        r = self.run(run)
        return None if r.end is None else self._events[r.end]

    def output(self, run: RunRef) -> Any:
        """The final output of ``run`` as LangChain gave it (an LLMResult for
        models, the outputs for chains and tools, documents for retrievers);
        None if the run has not ended or ended in error."""
        ev = self.end_event(run)
        return None if ev is None or ev.kind in ERROR_KINDS else ev.outputs

    def output_text(self, run: RunRef) -> str | None:
        """The final text of ``run``: a model's first generation's text, or a
        chain's output when that is a string; None otherwise."""
        ev = self.end_event(run)
        if ev is None or ev.kind in ERROR_KINDS:
            return None
        if ev.kind == "llm_end":
            return ev.output_text
        return str(ev.outputs) if isinstance(ev.outputs, str) else None

    def error(self, run: RunRef) -> BaseException | None:
        """The exception ``run`` ended with, or None."""
        ev = self.end_event(run)
        return ev.error if ev is not None else None

    def errors(self) -> EventLog:
        """Every error event (``*_error``), in order, except LangGraph
        interrupts: a graph paused for a human is not a failure (see
        :meth:`interrupts`)."""
        return EventLog._trusted(
            tuple(ev for ev in self._events if ev.kind in ERROR_KINDS and not is_interrupt(ev))
        )

    def interrupts(self) -> EventLog:
        """The ``chain_error`` events that carry a LangGraph ``interrupt()``
        (``GraphInterrupt``), in order: each run it unwound through has status
        ``"interrupted"``."""
        return EventLog._trusted(tuple(ev for ev in self._events if is_interrupt(ev)))

    # -- agents and graphs ------------------------------------------------------

    def _start_metadata(self, run: Run) -> Mapping[str, Any]:
        return self._events[run.start].metadata if run.start is not None else _EMPTY

    def node_of(self, run: RunRef) -> str | None:
        """The LangGraph node ``run`` ran in, as a path (``"tools"``, or
        ``"approval/review"`` inside a subgraph); None outside any graph node.
        Read from the ``langgraph_checkpoint_ns`` metadata LangGraph gives every
        run inside a node, without its per-run task ids."""
        return _node_path(self._start_metadata(self.run(run)))

    def node_runs(self, node: str | None = None) -> list[Run]:
        """The runs that *are* LangGraph nodes (one per node execution), in
        the order they started; only those of ``node`` (a name or a path as
        :meth:`node_of` spells it) if given. The graph's ``__start__`` input
        step is left out."""
        if node is not None and not isinstance(node, str):
            raise TypeError(f"node={node!r} must be a node name or path (str) or None")
        table = self._run_table()
        out: list[Run] = []
        for r in self.runs():
            meta = self._start_metadata(r)
            name = meta.get("langgraph_node")
            if name is None or name != r.name or name == "__start__":
                continue
            parent = table.get(r.parent_id) if r.parent_id is not None else None
            ns = meta.get("langgraph_checkpoint_ns")
            if (
                parent is not None
                and self._start_metadata(parent).get("langgraph_checkpoint_ns") == ns
            ):
                continue  # a runnable inside the node that happens to share its name
            path = _node_path(meta)
            if node is None or node in (name, path):
                out.append(r)
        return out

    def nodes(self) -> list[str]:
        """The LangGraph nodes that ran, in order, one entry per execution
        (subgraph nodes as paths: ``"approval/review"``)."""
        return [self.node_of(r) or str(r.name) for r in self.node_runs()]

    def node_steps(self) -> list[tuple[int | None, str]]:
        """``(step, node)`` for each node execution, in order: the superstep
        LangGraph ran it in (``langgraph_step``). Branches of a fan-out share
        a step: ``[..., (7, "quote"), (7, "quote"), (8, "approval")]``."""
        out: list[tuple[int | None, str]] = []
        for r in self.node_runs():
            step = self._start_metadata(r).get("langgraph_step")
            out.append((step if isinstance(step, int) else None, self.node_of(r) or str(r.name)))
        return out

    def model_runs(self, *, node: str | None = None) -> list[Run]:
        """Chat model and LLM runs in order of appearance; with ``node``, only
        those that ran inside that graph node (name or path)."""
        runs = [r for r in self.runs() if r.type in ("chat_model", "llm")]
        if node is None:
            return runs
        if not isinstance(node, str):
            raise TypeError(f"node={node!r} must be a node name or path (str) or None")
        return [r for r in runs if _in_node(self.node_of(r), node)]

    def messages(self, run: RunRef) -> list[dict[str, Any]]:
        """What a model run saw: its input messages (or prompts) as plain
        data, the same form :meth:`normalized` uses."""
        r = self.run(run)
        if r.type not in ("chat_model", "llm") or r.start is None:
            raise ValueError(f"run={r} is a {r.type} run; messages() takes a chat model or LLM run")
        inputs = self._events[r.start].inputs
        first = inputs[0] if isinstance(inputs, list | tuple) and inputs else inputs
        plain = _plain(first, self.labels())
        return plain if isinstance(plain, list) else [plain]

    def tool_calls(self, *, node: str | None = None, run: RunRef | None = None) -> list[ToolUse]:
        """The tool calls the models asked for, in the order their responses
        ended: ``[ToolUse("get_weather", {"city": "Paris"}), ...]``.

        Args:
            node: Only calls made by models inside this graph node.
            run: Only calls made inside this run's subtree.
        """
        ids = {r.id for r in self.subtree(run)} if run is not None else None
        wanted = {r.id for r in self.model_runs(node=node)}
        out: list[ToolUse] = []
        for ev in self._events:
            if ev.kind != "llm_end" or ev.run_id not in wanted:
                continue
            if ids is not None and ev.run_id not in ids:
                continue
            for call in _message_tool_calls(_response_message(ev.outputs)):
                out.append(ToolUse(str(call.get("name")), dict(call.get("args") or {})))
        return out

    # -- usage ----------------------------------------------------------------

    def usage_by_run(self) -> dict[UUID, dict[str, int]]:
        """Token usage per model run that reported any, in order."""
        out: dict[UUID, dict[str, int]] = {}
        for ev in self._events:
            if ev.kind == "llm_end" and ev.usage and ev.run_id is not None:
                out[ev.run_id] = _add_usage(out.get(ev.run_id), ev.usage)
        return out

    def usage_by_model(self) -> dict[str, dict[str, int]]:
        """Token usage per model name, counted as
        ``get_usage_metadata_callback`` counts it: a response counts only when it
        reports both usage and a model name."""
        out: dict[str, dict[str, int]] = {}
        for ev in self._events:
            if ev.kind == "llm_end" and ev.usage and ev.model_name:
                out[ev.model_name] = _add_usage(out.get(ev.model_name), ev.usage)
        return out

    def usage(self, run: RunRef | None = None, *, model: str | None = None) -> dict[str, int]:
        """Total token usage, of one run's subtree if ``run`` is given, of one
        model name if ``model`` is given (then only responses that name their
        model count, as in ``get_usage_metadata_callback``)."""
        if model is not None and not isinstance(model, str):
            raise TypeError(f"model={model!r} must be a model name (str) or None")
        events = self._events if run is None else self._run_events(run, subtree=True)
        total = _add_usage(None, {})
        for ev in events:
            if ev.kind == "llm_end" and ev.usage and (model is None or ev.model_name == model):
                total = _add_usage(total, ev.usage)
        return total

    # -- comparable and readable forms ----------------------------------------

    def normalized(self, *, times: bool | None = None) -> list[dict[str, Any]]:
        """A plain, JSON-serialisable form of the log that compares with ``==``.

        Run ids become labels (``"r1"``, ... in order of appearance); wall
        times, task and thread names and metadata are dropped; payloads become
        plain data (messages as ``{"type", "content"}``, errors as
        ``"Type: message"``, other objects as ``"<TypeName>"``).

        Args:
            times: Include each event's clock time relative to the first event
                (rounded to 1 µs). Default: only when every event's time is
                virtual, because only virtual times repeat run to run.
        """
        if times is not None and not isinstance(times, bool):
            raise TypeError(f"times={times!r} must be True, False or None")
        if times is None:
            times = bool(self._events) and all(ev.virtual for ev in self._events)
        labels = self.labels()
        t0 = self._events[0].time if self._events else 0.0
        out: list[dict[str, Any]] = []
        # Consecutive events mostly share their ids: label them once per change
        # (UUID.__hash__ is Python code).
        rid: object = _NOTHING
        parent: object = _NOTHING
        run_label = parent_label = None
        for ev in self._events:
            if ev.run_id is not rid:
                rid = ev.run_id
                run_label = labels.get(rid) if rid else None
            if ev.parent_run_id is not parent:
                parent = ev.parent_run_id
                parent_label = labels.get(parent) if parent else None
            row: dict[str, Any] = {
                "kind": ev.kind,
                "run": run_label,
                "parent": parent_label,
                "name": ev.run_name,
                "type": ev.run_type,
                "tags": list(ev.tags),
            }
            if times:
                row["time"] = round(ev.time - t0, 6)
            row.update(_payload(ev, labels))
            out.append(row)
        return out

    def to_text(self, *, times: bool | None = None) -> str:
        """The normalized log as text, one line per event: made for snapshot
        files and diffs (a changed event is a changed line).

        Each line is ``[time ]run kind name key=value ...`` with JSON values
        (keys sorted, one line each). The run's parent, type and tags appear on
        its first line (``r3<r1``, ``type=``, ``tags=``) and again only if they
        change, so the text holds everything :meth:`normalized` does::

            +0.000 r1 chain_start RunnableSequence type="chain" inputs={"q":"Hi"}
            +0.000 r2<r1 chat_model_start FakeChatModel type="chat_model" ...

        Args:
            times: As in :meth:`normalized`.
        """
        seen: dict[str | None, tuple[Any, Any, Any]] = {}
        lines: list[str] = []
        for row in self.normalized(times=times):
            row = dict(row)
            kind, run, parent = row.pop("kind"), row.pop("run"), row.pop("parent")
            name, rtype, tags = row.pop("name"), row.pop("type"), row.pop("tags")
            time = row.pop("time", None)
            head = f"{time:+.6f} " if time is not None else ""
            who = run or "-"
            first = seen.get(run)
            if first is None or first[0] != parent:
                who += f"<{parent}" if parent else ""
            parts = [f"{head}{who}", kind, _compact_json(name)]
            if first is None or first[1] != rtype:
                parts.append(f"type={_compact_json(rtype)}")
            if tags and (first is None or first[2] != tags):
                parts.append(f"tags={_compact_json(tags)}")
            elif first is not None and first[2] and not tags:
                parts.append("tags=[]")
            seen[run] = (parent, rtype, tags)
            parts += [f"{k}={_compact_json(v)}" for k, v in row.items()]
            lines.append(" ".join(parts))
        return "\n".join(lines)

    def to_html(self, path: str | os.PathLike[str] | None = None, *, title: str = "") -> str:
        """A self-contained HTML timeline (one file, no network): a lane per
        run, nested by the run tree, tokens and tool calls on hover, zoom for
        hundreds of runs. Returns the HTML and writes it to ``path`` if given."""
        from fakellm._html import render_html

        html = render_html(self, title=title)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(html)
        return html

    def to_chrome_trace(self, path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
        """The log in Chrome's trace-event format, for Perfetto or
        ``chrome://tracing``: a complete event (``"ph": "X"``) per run, an
        instant event (``"ph": "i"``) per token or other event inside a run.
        Returns the JSON object and writes it to ``path`` if given."""
        from fakellm._trace import chrome_trace

        trace = chrome_trace(self)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                json.dump(trace, f, ensure_ascii=False)
        return trace

    def timeline(
        self,
        runs: Iterable[RunRef] | None = None,
        *,
        view: Literal["auto", "lanes", "list"] = "auto",
        max_events: int | None = None,
    ) -> str:
        """Text timeline: swimlanes (one column per run) for a few runs, a
        list indented by run depth for more; one row per event, times shown.

        Args:
            runs: Only these runs (and their rows); default all runs.
            view: ``"lanes"``, ``"list"`` or ``"auto"`` (lanes for up to 8
                runs if they fit in 120 columns, else the list).
            max_events: Show at most this many rows (first and last halves).
        """
        from fakellm._timeline import render_timeline

        if runs is not None and (isinstance(runs, str) or not isinstance(runs, Iterable)):
            raise TypeError(f"runs={runs!r} must be a list of run references or None")
        if view not in ("auto", "lanes", "list"):
            raise ValueError(f"view={view!r}; accepted: 'auto', 'lanes', 'list'")
        if max_events is not None and (
            isinstance(max_events, bool) or not isinstance(max_events, int) or max_events < 2
        ):
            raise ValueError(f"max_events={max_events!r} must be an int >= 2 or None")
        ids = None if runs is None else [self.run(r).id for r in runs]
        return render_timeline(self, ids, view=view, max_events=max_events)


class _RunIndex:
    """What per-run queries look up instead of scanning the log, built in one pass.

    Every id the log mentions (as a run or as a parent) gets a number in order
    of first appearance, its label's number minus one. Each run's own events
    form a chain: ``first[k]`` is the index of run ``k``'s first event and
    ``next[i]`` the index of the next event of event ``i``'s run (-1: none).
    The chain is two flat integer arrays, not a list of ints per run: on a long
    log that is far less memory to fill (8 bytes an event, no int objects) and
    nothing the garbage collector has to walk.

    Attributes:
        ordinal: Run id -> its number.
        runs: The Runs by number (runs only seen as a parent included).
        first: Run number -> index of its first event (-1: none).
        next: Event index -> index of its run's next event (-1: last).
    """

    __slots__ = ("_by_name", "first", "next", "ordinal", "runs")

    def __init__(self, events: Sequence[Event]) -> None:
        ordinal: dict[UUID, int] = {}
        ids: list[UUID] = []
        # Per run number: name, type, parent, tags, status; start, end, first
        # and last event index (-1: none). Flat lists, not a row object per run.
        names: list[str | None] = []
        types: list[str | None] = []
        parents: list[UUID | None] = []
        tags: list[tuple[str, ...]] = []
        statuses: list[Any] = []
        starts, ends, first, lasts = array("q"), array("q"), array("q"), array("q")
        links = array("q")  # (parent, child) number pairs, in the order children appear
        nxt = array("q", [-1]) * len(events)

        def number(rid: UUID) -> int:
            """``rid``'s number, given to it (as an unseen run) if it has none yet."""
            n = ordinal.setdefault(rid, len(ids))
            if n == len(ids):
                ids.append(rid)
                names.append(None)
                types.append(None)
                parents.append(None)
                tags.append(())
                statuses.append("unseen")
                starts.append(-1)
                ends.append(-1)
                first.append(-1)
                lasts.append(-1)
            return n

        # The current run (that of the previous event), its number, its last
        # event, and the parent object it last carried with that parent's
        # number. A run's events mostly follow one another (a model's tokens),
        # a child starts under the current run and hands back to it: those are
        # recognised by identity, without hashing an id (UUID.__hash__ is Python
        # code) or probing a large dict.
        cur: object = _NOTHING
        k = last = seen_k = -1
        seen: UUID | None = None
        unnamed = False
        for i, ev in enumerate(events):
            rid, parent = ev.run_id, ev.parent_run_id
            if rid is cur:
                nxt[last] = i
                last = i
                if parent is not seen:
                    seen, seen_k = parent, -1
                    if parent is not None:
                        seen_k = number(parent)
                        if parents[k] is None:
                            parents[k] = parent
                            links.extend((seen_k, k))
            else:
                # A parent is numbered before its child (labels() order).
                if parent is None:
                    p = -1
                elif parent is cur:
                    p = k
                elif parent is seen:
                    p = seen_k
                else:
                    p = number(parent)
                if rid is None:
                    continue
                if k >= 0:
                    lasts[k] = last
                k = seen_k if rid is seen else number(rid)
                if first[k] < 0:  # the run's first event: it was unseen until now
                    first[k] = i
                    statuses[k] = "running"
                else:
                    nxt[lasts[k]] = i
                cur, last, seen, seen_k = rid, i, parent, p
                unnamed = names[k] is None
                if parent is not None and parents[k] is None:
                    parents[k] = parent
                    links.extend((p, k))
            if unnamed:
                names[k], types[k] = ev.run_name, ev.run_type
                unnamed = names[k] is None
            kind = ev.kind
            if kind in START_KINDS:
                if starts[k] < 0:
                    starts[k] = i
                    tags[k] = tuple(ev.tags)
            elif kind in FINISH_KINDS and ends[k] < 0:
                ends[k] = i
                statuses[k] = _outcome(ev)
        children: list[list[UUID] | None] = [None] * len(ids)
        for j in range(0, len(links), 2):
            siblings = children[links[j]]
            if siblings is None:
                children[links[j]] = [ids[links[j + 1]]]
            else:
                siblings.append(ids[links[j + 1]])
        self.ordinal = ordinal
        self.runs = [
            Run(
                rid,
                f"r{n}",
                name,
                rtype,
                parent,
                tagged,
                None if s < 0 else s,
                None if e < 0 else e,
                status,
                () if kids is None else tuple(kids),
            )
            for n, (rid, name, rtype, parent, tagged, s, e, status, kids) in enumerate(
                zip(
                    ids, names, types, parents, tags, starts, ends, statuses, children, strict=True
                ),
                1,
            )
        ]
        self.first = first
        self.next = nxt
        self._by_name: dict[str | None, list[int]] | None = None

    def __getitem__(self, rid: UUID) -> Run:
        return self.runs[self.ordinal[rid]]

    def __contains__(self, rid: object) -> bool:
        return rid in self.ordinal

    def get(self, rid: UUID) -> Run | None:
        k = self.ordinal.get(rid)
        return None if k is None else self.runs[k]

    def positions(self, k: int) -> list[int]:
        """Indices of run ``k``'s own events, in log order."""
        out: list[int] = []
        i, nxt = self.first[k], self.next
        while i >= 0:
            out.append(i)
            i = nxt[i]
        return out

    def by_name(self) -> dict[str | None, list[int]]:
        """Run name -> the numbers of the runs with that name (built on first use)."""
        if self._by_name is None:
            by_name: dict[str | None, list[int]] = {}
            for k, r in enumerate(self.runs):
                by_name.setdefault(r.name, []).append(k)
            self._by_name = by_name
        return self._by_name

    def labelled(self, ref: str) -> int | None:
        """The number of the run labelled ``ref`` (``"r1"`` is 0), or None.

        Labels are ``"r"`` and the number plus one, without leading zeros, so
        reading the number back takes no table of labels.
        """
        digits = ref[1:]
        if ref[:1] != "r" or not (digits.isascii() and digits.isdigit()) or digits[0] == "0":
            return None
        k = int(digits) - 1
        return k if k < len(self.runs) else None


# -- helpers ----------------------------------------------------------------------


def _check_kinds(kind: str | Collection[str]) -> frozenset[str]:
    if not isinstance(kind, str | Iterable):
        raise TypeError(f"kind={kind!r} must be an event kind (str) or a collection of them")
    kinds = {kind} if isinstance(kind, str) else set(kind)
    unknown = kinds - _KIND_SET
    if unknown:
        raise ValueError(
            f"kind={kind!r}: unknown kind(s) {sorted(unknown)}; accepted: {', '.join(KINDS)}"
        )
    return frozenset(kinds)


_USAGE_KEYS = ("input_tokens", "output_tokens", "total_tokens")


def _add_usage(acc: dict[str, int] | None, usage: Mapping[str, Any]) -> dict[str, int]:
    base = acc or dict.fromkeys(_USAGE_KEYS, 0)
    return {k: base[k] + int(usage.get(k) or 0) for k in _USAGE_KEYS}


def _error_text(error: BaseException) -> str:
    msg = str(error)
    return f"{type(error).__name__}: {msg}" if msg else type(error).__name__


def _payload(ev: Event, labels: Mapping[UUID, str]) -> dict[str, Any]:
    kind = ev.kind
    if kind == "llm_new_token":
        return {"token": _plain(ev.token, labels)}
    if kind == "llm_end":
        row: dict[str, Any] = {"text": ev.output_text}
        message = _response_message(ev.outputs)
        calls = _message_tool_calls(message)
        if calls:
            row["tool_calls"] = _plain_tool_calls(calls, labels, 1)
        invalid = getattr(message, "invalid_tool_calls", None)
        if invalid:
            row["invalid_tool_calls"] = _plain_tool_calls(invalid, labels, 1)
        if ev.usage:
            row["usage"] = _add_usage(None, ev.usage)
        if ev.model_name:
            row["model"] = ev.model_name
        return row
    if kind in ERROR_KINDS:
        if is_interrupt(ev):
            # GraphInterrupt's args hold the Interrupt records (value, id).
            return {"interrupt": [_plain(i, labels) for i in _interrupts_of(ev.error)]}
        return {"error": _error_text(ev.error) if ev.error is not None else None}
    if kind in START_KINDS:
        return {"inputs": _plain(ev.inputs, labels)}
    if kind in END_KINDS:
        return {"outputs": _plain(ev.outputs, labels)}
    if kind == "custom_event":
        return {"event": ev.extra.get("name"), "data": _plain(ev.data, labels)}
    return {"data": _plain(ev.data, labels)}


def _interrupts_of(error: BaseException | None) -> list[Any]:
    args = getattr(error, "args", ())
    first = args[0] if args else ()
    return list(first) if isinstance(first, list | tuple) else [first]


def _plain_tool_calls(calls: Iterable[Any], labels: Mapping[UUID, str], depth: int) -> list[Any]:
    """Tool calls as ``{"name", "args"}`` (plus ``error`` for an invalid one);
    ids are left out: providers make them up afresh on every call."""
    out: list[Any] = []
    for c in calls:
        if not isinstance(c, Mapping):
            out.append(_plain(c, labels, depth + 1))
            continue
        row = {"name": c.get("name"), "args": _plain(c.get("args"), labels, depth + 1)}
        if c.get("error") is not None:
            row["error"] = _plain(c.get("error"), labels, depth + 1)
        out.append(row)
    return out


def _compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _sort_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _plain(value: Any, labels: Mapping[UUID, str], depth: int = 0) -> Any:
    """A JSON-serialisable, run-independent rendering of a payload.

    Lossless where a test can rely on it (tool calls, structured outputs,
    LangGraph commands, agent actions, retry state), and free of ids and
    timestamps, which differ on every run.
    """
    if isinstance(value, str):
        # Message ids like "lc_run--<run id>" embed run ids: label them too.
        text = str(value)  # str subclasses, e.g. the parser's TextAccessor
        return _UUID_RE.sub(lambda m: _uuid_label(m.group(0), labels), text)
    if value is None or type(value) in (bool, int):
        return value
    if isinstance(value, bool | int):
        return int(value) if not isinstance(value, bool) else bool(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth > 12:
        return f"<{type(value).__name__}>"
    if isinstance(value, UUID):
        return labels.get(value, "<uuid>")
    if isinstance(value, BaseException):
        return _error_text(value)
    if isinstance(value, Mapping):
        if value.get("type") == "tool_call" and "args" in value:
            return _plain_tool_calls([value], labels, depth)[0]
        return {str(k): _plain(v, labels, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple) and not hasattr(value, "_asdict"):
        return [_plain(v, labels, depth + 1) for v in value]
    if isinstance(value, set | frozenset):
        # Set order follows string hashes (PYTHONHASHSEED): sort for repeatability.
        return sorted((_plain(v, labels, depth + 1) for v in value), key=_sort_key)
    # LangChain objects by duck typing, so this module needs no LangChain import.
    content = getattr(value, "content", _MISSING)
    msg_type = getattr(value, "type", None)
    if content is not _MISSING and isinstance(msg_type, str):
        return _plain_message(value, msg_type, content, labels, depth)
    page = getattr(value, "page_content", None)
    if isinstance(page, str):
        return {
            "page_content": page,
            "metadata": _plain(getattr(value, "metadata", {}), labels, depth + 1),
        }
    messages = getattr(value, "messages", None)
    fields = getattr(type(value), "model_fields", None)
    # A prompt value holds messages; an AgentAction only derives them (a property).
    if isinstance(messages, list) and (fields is None or "messages" in fields):
        return {"messages": _plain(messages, labels, depth + 1)}
    return _plain_object(value, labels, depth)


def _plain_message(
    value: Any, msg_type: str, content: Any, labels: Mapping[UUID, str], depth: int
) -> dict[str, Any]:
    row: dict[str, Any] = {"type": msg_type, "content": _plain(content, labels, depth + 1)}
    name = getattr(value, "name", None)
    if isinstance(name, str) and name:
        row["name"] = name
    calls = getattr(value, "tool_calls", None)
    if calls:
        row["tool_calls"] = _plain_tool_calls(calls, labels, depth)
    invalid = getattr(value, "invalid_tool_calls", None)
    if invalid:
        row["invalid_tool_calls"] = _plain_tool_calls(invalid, labels, depth)
    if msg_type == "tool" and getattr(value, "status", "success") != "success":
        row["status"] = value.status
    return row


def _plain_object(value: Any, labels: Mapping[UUID, str], depth: int) -> Any:
    """Other objects as ``{"$type": ClassName, field: value, ...}``."""
    cls = type(value)
    fields: Mapping[str, Any] | None = None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Only fields that differ from their defaults: a LangGraph
        # Command(resume="yes") stays one short line.
        fields = {
            f.name: getattr(value, f.name)
            for f in dataclasses.fields(value)
            if f.default is dataclasses.MISSING or getattr(value, f.name) != f.default
        }
        if cls.__name__ == "Interrupt":
            fields = {k: v for k, v in fields.items() if k != "id"}  # a hash of task ids
    elif callable(getattr(value, "model_dump", None)):  # pydantic models
        try:
            fields = value.model_dump()
        except Exception:  # a model that cannot dump itself still gets its type name
            fields = None
    elif hasattr(value, "_asdict"):  # named tuples
        fields = value._asdict()
    elif hasattr(value, "attempt_number") and hasattr(value, "outcome"):
        fields = _retry_fields(value)
    elif cls.__name__ == "Send" and hasattr(value, "node") and hasattr(value, "arg"):
        fields = {"node": value.node, "arg": value.arg}
    if fields is None:
        return f"<{cls.__name__}>"
    row: dict[str, Any] = {"$type": cls.__name__}
    row.update({str(k): _plain(v, labels, depth + 1) for k, v in fields.items()})
    return row


def _retry_fields(state: Any) -> dict[str, Any]:
    """A tenacity RetryCallState: the attempt, what failed, the wait chosen."""
    out: dict[str, Any] = {"attempt": state.attempt_number}
    outcome = state.outcome
    if outcome is not None and getattr(outcome, "failed", False):
        out["error"] = outcome.exception()
    sleep = getattr(getattr(state, "next_action", None), "sleep", None)
    if sleep is not None:
        out["sleep"] = sleep
    return out


_MISSING = object()
_NOTHING = object()
_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def _uuid_label(text: str, labels: Mapping[UUID, str]) -> str:
    return labels.get(UUID(text), "<uuid>")


def is_interrupt(ev: Event) -> bool:
    """Whether ``ev`` is a LangGraph interrupt unwinding (``GraphInterrupt``,
    recognised by class name so this module needs no LangGraph import)."""
    return ev.error is not None and any(
        c.__name__ == "GraphInterrupt" for c in type(ev.error).__mro__
    )


def _outcome(ev: Event) -> Literal["ok", "error", "interrupted"]:
    if ev.kind not in ERROR_KINDS:
        return "ok"
    return "interrupted" if is_interrupt(ev) else "error"


def _node_path(meta: Mapping[str, Any]) -> str | None:
    ns = meta.get("langgraph_checkpoint_ns")
    if not isinstance(ns, str) or not ns:
        node = meta.get("langgraph_node")
        return str(node) if node is not None else None
    # "approval:<task id>|review:<task id>": keep the names, drop the ids.
    return "/".join(part.split(":", 1)[0] for part in ns.split("|"))


def _in_node(path: str | None, node: str) -> bool:
    if path is None:
        return False
    return path == node or path.startswith(node + "/") or path.rsplit("/", 1)[-1] == node


def _response_message(result: Any) -> Any:
    """The first generation's message of an LLMResult (duck typed), or None."""
    try:
        return result.generations[0][0].message
    except (AttributeError, IndexError, TypeError):
        return None


def _message_tool_calls(message: Any) -> list[Mapping[str, Any]]:
    calls = getattr(message, "tool_calls", None)
    return [c for c in calls if isinstance(c, Mapping)] if isinstance(calls, list) else []
