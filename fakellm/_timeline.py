"""Text timelines of an EventLog: one column per run, one row per event (pure).

Used by :meth:`EventLog.timeline` and appended to every assertion failure, so
it favours a compact, diff-friendly layout over decoration::

       #      time  r1 RunnableSequence  r2 FakeChatModel
       0    +0.000  start
       1    +0.000  │                    start
       2    +0.300  │                    token 'Roses, '
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from fakellm._events import Event, EventLog

__all__ = ["cell_text", "render_timeline"]

_MIN_WIDTH = 14
_MAX_WIDTH = 28
_ACTIVE = "│"
#: More runs than this share lanes (see render_timeline).
_MAX_COLUMNS = 16


def cell_text(ev: Event) -> str:
    """The short text an event shows in its run's column."""
    kind = ev.kind
    if kind.endswith("_start"):
        return "start"
    if kind.endswith("_end"):
        return "end"
    if kind.endswith("_error"):
        return f"error {type(ev.error).__name__}" if ev.error is not None else "error"
    if kind == "llm_new_token":
        return f"token {ev.token!r}" if isinstance(ev.token, str) else "token [blocks]"
    if kind == "stream_event":
        return _stream_event_text(ev.data)
    if kind == "custom_event":
        return f"custom {ev.extra.get('name')}"
    return kind


def _stream_event_text(data: object) -> str:
    if not isinstance(data, Mapping):
        return "stream_event"
    name = str(data.get("event") or "stream_event")
    if name == "content-block-delta":
        delta = data.get("delta")
        text = delta.get("text") if isinstance(delta, Mapping) else None
        return f"delta {text!r}" if isinstance(text, str) else "delta"
    if name.startswith("content-block-"):
        return f"{name[len('content-') :]} {data.get('index')}"
    return name


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 1)] + "…"


def render_timeline(log: EventLog, run_ids: Sequence[UUID] | None = None) -> str:
    """Render ``log`` as text swimlanes.

    Up to ``_MAX_COLUMNS`` runs get a column each, headed by the run. More runs
    share lanes: a run takes the leftmost lane free at its first event and
    gives it back after its last, its first cell names it (``r7 Model start``),
    and the width is the most runs active at once, not the number of runs, so
    rendering stays linear in the number of events.

    Args:
        log: The events to show.
        run_ids: The runs to give columns (in this order); default every run in
            order of appearance. Events of other runs are left out.
    """
    runs = log.runs()
    if run_ids is None:
        run_ids = [r.id for r in runs]
    if not run_ids:
        return "(no events)"
    table = {r.id: r for r in runs}
    shown = set(run_ids)
    # A run's lane shows as active from its first event to its end or error.
    first: dict[UUID, int] = {}
    last_event: dict[UUID, int] = {}
    for i, ev in enumerate(log):
        rid = ev.run_id
        if rid in shown:
            first.setdefault(rid, i)
            last_event[rid] = i
    last: dict[UUID, int] = {}
    for rid in first:
        end = table[rid].end
        last[rid] = end if end is not None else len(log)

    packed = len(run_ids) > _MAX_COLUMNS
    if packed:
        lane = _pack(first, last_event, last)
        headers = [f"lane {j + 1}" for j in range(max(lane.values(), default=-1) + 1)]
    else:
        lane = {rid: j for j, rid in enumerate(run_ids)}
        headers = [_clip(str(table[rid]), _MAX_WIDTH) if rid in table else "?" for rid in run_ids]

    def text(i: int, ev: Event) -> str:
        cell = cell_text(ev)
        return f"{table[ev.run_id]} {cell}" if packed and first[ev.run_id] == i else cell  # type: ignore[index]

    widths = [max(_MIN_WIDTH, len(h)) for h in headers]
    for i, ev in enumerate(log):
        col = lane.get(ev.run_id) if ev.run_id is not None else None
        if col is not None:
            widths[col] = min(max(widths[col], len(text(i, ev))), _MAX_WIDTH)

    t0 = log[0].time if len(log) else 0.0
    lines = [
        "  #".rjust(6)
        + "time".rjust(10)
        + "  "
        + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    ]
    occupant: list[UUID | None] = [None] * len(headers)
    for i, ev in enumerate(log):
        col = lane.get(ev.run_id) if ev.run_id is not None else None
        if col is None:
            continue
        occupant[col] = ev.run_id
        cells = []
        for j, rid in enumerate(occupant):
            if j == col:
                cell = _clip(text(i, ev), widths[j])
            elif rid is not None and first[rid] < i < last[rid]:
                cell = _ACTIVE
            else:
                cell = ""
            cells.append(cell.ljust(widths[j]))
        lines.append(f"{ev.seq:6d}{ev.time - t0:+10.3f}  " + "  ".join(cells).rstrip())
    return "\n".join(lines)


def _pack(
    first: dict[UUID, int], last_event: dict[UUID, int], last: dict[UUID, int]
) -> dict[UUID, int]:
    """Lanes for runs (in order of first event): the leftmost one free at a run's
    first event, held until both its last event and its end have been drawn."""
    free: list[int] = []
    held: list[tuple[int, int]] = []  # (last row the run needs, lane)
    lanes: dict[UUID, int] = {}
    count = 0
    for rid, start in first.items():
        while held and held[0][0] < start:
            heapq.heappush(free, heapq.heappop(held)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane, count = count, count + 1
        lanes[rid] = lane
        heapq.heappush(held, (max(last_event[rid], last[rid]), lane))
    return lanes
