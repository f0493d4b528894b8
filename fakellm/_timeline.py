"""Text timelines of an EventLog: one column per run, one row per event (pure).

Used by :meth:`EventLog.timeline` and appended to every assertion failure, so
it favours a compact, diff-friendly layout over decoration::

       #      time  r1 RunnableSequence  r2 FakeChatModel
       0    +0.000  start
       1    +0.000  │                    start
       2    +0.300  │                    token 'Roses, '
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from fakellm._events import Event, EventLog

__all__ = ["cell_text", "render_timeline"]

_MIN_WIDTH = 14
_MAX_WIDTH = 28
_ACTIVE = "│"


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
    column = {rid: i for i, rid in enumerate(run_ids)}
    headers = [_clip(str(table[rid]), _MAX_WIDTH) if rid in table else "?" for rid in run_ids]
    widths = [max(_MIN_WIDTH, len(h)) for h in headers]
    for ev in log:
        col = column.get(ev.run_id) if ev.run_id is not None else None
        if col is not None:
            widths[col] = min(max(widths[col], len(cell_text(ev))), _MAX_WIDTH)

    # A run's lane shows as active from its first event to its end or error.
    first: dict[UUID, int] = {}
    for i, ev in enumerate(log):
        if ev.run_id in column and ev.run_id not in first:
            first[ev.run_id] = i
    last: dict[UUID, int] = {}
    for rid in first:
        end = table[rid].end
        last[rid] = end if end is not None else len(log)

    t0 = log[0].time if len(log) else 0.0
    lines = [
        "  #".rjust(6)
        + "time".rjust(10)
        + "  "
        + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    ]
    for i, ev in enumerate(log):
        col = column.get(ev.run_id) if ev.run_id is not None else None
        if col is None:
            continue
        cells = []
        for j, rid in enumerate(run_ids):
            if j == col:
                text = _clip(cell_text(ev), widths[j])
            elif rid in first and first[rid] < i < last[rid]:
                text = _ACTIVE
            else:
                text = ""
            cells.append(text.ljust(widths[j]))
        lines.append(f"{ev.seq:6d}{ev.time - t0:+10.3f}  " + "  ".join(cells).rstrip())
    return "\n".join(lines)
