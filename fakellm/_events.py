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

import itertools
import math
import re
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple, overload
from uuid import UUID

__all__ = ["KINDS", "Event", "EventLog", "Run", "RunRef"]

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
        task: Name of the current asyncio task, or None outside one.
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


@dataclass(frozen=True)
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
        status: ``"ok"``, ``"error"``, ``"running"`` (started, not finished) or
            ``"unseen"`` (known only as another run's parent).
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
    status: Literal["ok", "error", "running", "unseen"]
    children: tuple[UUID, ...]

    def __str__(self) -> str:
        return f"{self.label} {self.name or '?'}"


#: How queries accept a run: its id, a Run, one of its Events, its name (when
#: unique in the log) or its label (``"r3"``).
RunRef = UUID | Run | Event | str


class EventLog(Sequence[Event]):
    """An immutable, totally ordered sequence of events, with queries.

    Indexing and slicing work as on a tuple (a slice is an EventLog).
    Queries that take a run accept a :data:`RunRef`.

    Cost of queries, for a log of N events and R runs: the first query that
    needs runs indexes the log once (O(N)); after that ``run``, ``parent``,
    ``end_event``, ``output``, ``output_text`` and ``error`` cost O(1);
    ``tokens``, ``text`` and ``filter(run=...)`` cost the run's own events
    (with ``subtree=True``, the subtree's events, merged in order); ``usage(run)``
    the subtree's events; ``children`` and ``subtree`` their result's size;
    ``runs``, ``roots`` and ``tree`` O(R). Whole-log views (``kinds``,
    ``shorts``, ``filter`` without a run, ``errors``, ``usage``,
    ``usage_by_run``, ``usage_by_model``, ``normalized``, ``timeline``) are
    O(N), so a loop of a per-run query over every run is O(N) in all.
    """

    __slots__ = ("_events", "_index", "_labels", "_runs")

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
        self._runs: dict[UUID, Run] | None = None
        self._index: _RunIndex | None = None

    @classmethod
    def _trusted(cls, events: tuple[Event, ...]) -> EventLog:
        """Wrap a tuple already known to hold only Events (skips the check)."""
        log = cls.__new__(cls)
        log._events, log._labels, log._runs, log._index = events, None, None, None
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
        self._run_table()
        index = self._index
        assert index is not None  # built with the run table
        events = self._events
        if not subtree:
            return [events[i] for i in index.positions.get(self.run(run).id, ())]
        lists = [index.positions.get(r.id, ()) for r in self.subtree(run)]
        positions = lists[0] if len(lists) == 1 else sorted(itertools.chain(*lists))
        return [events[i] for i in positions]

    # -- runs and the run tree ----------------------------------------------

    def labels(self) -> dict[UUID, str]:
        """Run id → stable label (``"r1"``, ...), in order of first appearance."""
        if self._labels is None:
            labels: dict[UUID, str] = {}
            for ev in self._events:
                for rid in (ev.parent_run_id, ev.run_id):
                    if rid is not None and rid not in labels:
                        labels[rid] = f"r{len(labels) + 1}"
            self._labels = labels
        return self._labels

    def _run_table(self) -> dict[UUID, Run]:
        if self._runs is not None:
            return self._runs
        labels = self.labels()
        # One list row per run (faster than dict rows on long logs):
        # name, type, parent, tags, start, end, status, children.
        info: dict[UUID, list[Any]] = {
            rid: [None, None, None, (), None, None, "unseen", []] for rid in labels
        }
        positions: dict[UUID, list[int]] = {}
        for i, ev in enumerate(self._events):
            rid = ev.run_id
            if rid is None:
                continue
            row = info[rid]
            if row[6] == "unseen":
                row[6] = "running"
                positions[rid] = [i]
            else:
                positions[rid].append(i)
            if row[0] is None:
                row[0], row[1] = ev.run_name, ev.run_type
            if row[2] is None and ev.parent_run_id is not None:
                row[2] = ev.parent_run_id
                info[ev.parent_run_id][7].append(rid)
            kind = ev.kind
            if kind in START_KINDS:
                if row[4] is None:
                    row[4], row[3] = i, ev.tags
            elif kind in FINISH_KINDS and row[5] is None:
                row[5] = i
                row[6] = "error" if kind in ERROR_KINDS else "ok"
        self._runs = {
            rid: Run(rid, labels[rid], r[0], r[1], r[2], tuple(r[3]), r[4], r[5], r[6], tuple(r[7]))
            for rid, r in info.items()
        }
        by_name: dict[str | None, list[Run]] = {}
        for r in self._runs.values():
            by_name.setdefault(r.name, []).append(r)
        self._index = _RunIndex(positions, by_name, {r.label: r for r in self._runs.values()})
        return self._runs

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
            for r in self._run_table().values()
            if r.status != "unseen"
            and (name is None or r.name == name)
            and (type is None or r.type == type)
            and (tag is None or tag in r.tags)
        ]

    def run(self, ref: RunRef) -> Run:
        """The run ``ref`` names (id, Run, Event, unique name or label)."""
        table = self._run_table()
        if isinstance(ref, Run):
            ref = ref.id
        elif isinstance(ref, Event):
            if ref.run_id is None:
                raise ValueError(f"run={ref!r}: this event belongs to no run")
            ref = ref.run_id
        if isinstance(ref, UUID):
            if ref not in table:
                raise ValueError(f"run={ref!r} is not a run in this log; runs: {self._run_list()}")
            return table[ref]
        if isinstance(ref, str):
            index = self._index
            assert index is not None  # built with the run table
            named = index.by_name.get(ref, [])
            if len(named) == 1:
                return named[0]
            if len(named) > 1:
                raise ValueError(
                    f"run={ref!r} is ambiguous: {len(named)} runs have that name "
                    f"({', '.join(r.label for r in named)}); pass a run id, a Run "
                    f"from log.runs(name={ref!r}) or a label"
                )
            if ref in index.by_label:
                return index.by_label[ref]
            raise ValueError(f"run={ref!r} matches no run name or label; runs: {self._run_list()}")
        raise TypeError(
            f"run={ref!r} is not a run reference; accepted: a run id (UUID), a Run, "
            "an Event, a run name or a label like 'r1'"
        )

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
        stack = [self.run(run)]
        while stack:
            r = stack.pop()
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
        """Every error event (``*_error``), in order."""
        return EventLog(ev for ev in self._events if ev.kind in ERROR_KINDS)

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
        for ev in self._events:
            row: dict[str, Any] = {
                "kind": ev.kind,
                "run": labels.get(ev.run_id) if ev.run_id else None,
                "parent": labels.get(ev.parent_run_id) if ev.parent_run_id else None,
                "name": ev.run_name,
                "type": ev.run_type,
                "tags": list(ev.tags),
            }
            if times:
                row["time"] = round(ev.time - t0, 6)
            row.update(_payload(ev, labels))
            out.append(row)
        return out

    def timeline(self, runs: Iterable[RunRef] | None = None) -> str:
        """Text swimlanes: one column per run, one row per event, times shown.

        Args:
            runs: Only these runs (and their rows); default all runs.
        """
        from fakellm._timeline import render_timeline

        if runs is not None and (isinstance(runs, str) or not isinstance(runs, Iterable)):
            raise TypeError(f"runs={runs!r} must be a list of run references or None")
        ids = None if runs is None else [self.run(r).id for r in runs]
        return render_timeline(self, ids)


@dataclass(frozen=True, slots=True)
class _RunIndex:
    """What per-run queries look up instead of scanning the log.

    Attributes:
        positions: Run id -> indices of the run's own events, in log order.
        by_name: Run name -> the runs with that name, in order of appearance.
        by_label: Label -> run.
    """

    positions: dict[UUID, list[int]]
    by_name: dict[str | None, list[Run]]
    by_label: dict[str, Run]


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
        if ev.usage:
            row["usage"] = _add_usage(None, ev.usage)
        if ev.model_name:
            row["model"] = ev.model_name
        return row
    if kind in ERROR_KINDS:
        return {"error": _error_text(ev.error) if ev.error is not None else None}
    if kind in START_KINDS:
        return {"inputs": _plain(ev.inputs, labels)}
    if kind in END_KINDS:
        return {"outputs": _plain(ev.outputs, labels)}
    if kind == "custom_event":
        return {"event": ev.extra.get("name"), "data": _plain(ev.data, labels)}
    return {"data": _plain(ev.data, labels)}


def _plain(value: Any, labels: Mapping[UUID, str], depth: int = 0) -> Any:
    """A JSON-serialisable, run-independent rendering of a payload."""
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
    if depth > 8:
        return f"<{type(value).__name__}>"
    if isinstance(value, UUID):
        return labels.get(value, "<uuid>")
    if isinstance(value, BaseException):
        return _error_text(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, labels, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, labels, depth + 1) for v in value]
    # LangChain objects by duck typing, so this module needs no LangChain import.
    content = getattr(value, "content", _MISSING)
    msg_type = getattr(value, "type", None)
    if content is not _MISSING and isinstance(msg_type, str):
        row = {"type": msg_type, "content": _plain(content, labels, depth + 1)}
        calls = getattr(value, "tool_calls", None)
        if calls:
            row["tool_calls"] = [
                {
                    "name": c.get("name"),
                    "args": _plain(c.get("args"), labels, depth + 1),
                }
                for c in calls
            ]
        return row
    page = getattr(value, "page_content", None)
    if isinstance(page, str):
        return {
            "page_content": page,
            "metadata": _plain(getattr(value, "metadata", {}), labels, depth + 1),
        }
    messages = getattr(value, "messages", None)
    if isinstance(messages, list):
        return {"messages": _plain(messages, labels, depth + 1)}
    return f"<{type(value).__name__}>"


_MISSING = object()
_UUID_RE = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def _uuid_label(text: str, labels: Mapping[UUID, str]) -> str:
    return labels.get(UUID(text), "<uuid>")
