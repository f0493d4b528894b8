"""Text timelines of an EventLog (pure).

Used by :meth:`EventLog.timeline` and appended to every assertion failure, so
it favours a compact, diff-friendly layout over decoration. A few runs (that
fit in a wide terminal) get swimlanes, one column per run::

       #      time  r1 RunnableSequence  r2 FakeChatModel
       0    +0.000  start
       1    +0.000  │                    start
       2    +0.300  │                    token 'Roses, '

More runs than fit side by side get a list, one row per event, indented by
the run's depth in the run tree::

       #      time  event
       0    +0.000  r1 LangGraph: start
       1    +0.001    r2 model: start

Widths are display widths (``wcwidth``): CJK and emoji take two columns, so
lanes stay aligned whatever the text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from wcwidth import wcswidth, wcwidth

if TYPE_CHECKING:
    from fakellm._events import Event, EventLog, Run

__all__ = ["MAX_LANES", "MAX_LANES_WIDTH", "cell_text", "render_timeline"]

_MIN_WIDTH = 14
_MAX_WIDTH = 28
_LIST_WIDTH = 100
_ACTIVE = "│"
#: Runs shown as side-by-side lanes at most; more switch to the list view.
MAX_LANES = 8
#: Display columns lanes may take (a wide terminal); wider switches to the list.
MAX_LANES_WIDTH = 120


def width(text: str) -> int:
    """Display width of ``text`` in a terminal (control characters count 1)."""
    w = wcswidth(text)
    if w >= 0:
        return int(w)
    return sum(max(wcwidth(ch), 1) for ch in text)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` display columns, ``…`` marking the cut."""
    if width(text) <= limit:
        return text
    out, used = [], 0
    for ch in text:
        w = max(wcwidth(ch), 1)
        if used + w > limit - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _clip_middle(text: str, limit: int) -> str:
    """Cut the middle, keeping both ends: long names that differ only at the
    end (``RunnableLambda<step_a>``/``<step_b>``) stay distinguishable."""
    if width(text) <= limit:
        return text
    tail_budget = (limit - 1) // 2
    tail, used = "", 0
    for ch in reversed(text):
        w = max(wcwidth(ch), 1)
        if used + w > tail_budget:
            break
        tail, used = ch + tail, used + w
    return clip(text, limit - used) + tail if used else clip(text, limit)


def _pad(text: str, columns: int) -> str:
    return text + " " * max(columns - width(text), 0)


def _args(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def cell_text(ev: Event) -> str:
    """The short text an event shows: its kind in a word, and what it carried
    (token text, tool arguments, the tool calls a model asked for)."""
    from fakellm._events import _message_tool_calls, _response_message, is_interrupt

    kind = ev.kind
    if kind.endswith("_start"):
        if kind == "tool_start" and isinstance(ev.inputs, str):
            return f"start {ev.inputs}"
        resume = getattr(ev.inputs, "resume", None)
        if type(ev.inputs).__name__ == "Command" and resume is not None:
            return f"resume {resume!r}"  # a graph resumed after an interrupt
        return "start"
    if kind == "llm_end":
        calls = _message_tool_calls(_response_message(ev.outputs))
        if calls:
            shown = ", ".join(f"{c.get('name')}({_args(c.get('args'))})" for c in calls)
            return f"end → {shown}"
        return "end"
    if kind == "tool_end":
        content = getattr(ev.outputs, "content", ev.outputs)
        return f"end {content!r}" if isinstance(content, str) else "end"
    if kind.endswith("_end"):
        return "end"
    if kind.endswith("_error"):
        if is_interrupt(ev):
            return "interrupt"
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


def _truncate(lines: list[str], header: int, max_events: int | None) -> list[str]:
    body = lines[header:]
    if max_events is None or len(body) <= max_events:
        return lines
    head = max(max_events // 2, 1)
    tail = max(max_events - head, 1)
    hidden = len(body) - head - tail
    note = f"   … {hidden} events not shown (log.timeline() shows them all) …"
    return [*lines[:header], *body[:head], note, *body[-tail:]]


def render_timeline(
    log: EventLog,
    run_ids: Sequence[UUID] | None = None,
    *,
    view: Literal["auto", "lanes", "list"] = "auto",
    max_events: int | None = None,
) -> str:
    """Render ``log`` as text.

    Args:
        log: The events to show.
        run_ids: The runs to show (lanes in this order); default every run in
            order of appearance. Events of other runs are left out.
        view: ``"lanes"`` (one column per run), ``"list"`` (one row per event,
            indented by depth) or ``"auto"``: lanes for up to :data:`MAX_LANES`
            runs that fit in :data:`MAX_LANES_WIDTH` columns, else the list.
        max_events: Show at most this many events: the first and last halves,
            with a line saying how many are hidden between them.
    """
    runs = log.runs()
    if run_ids is None:
        run_ids = [r.id for r in runs]
    if not run_ids:
        return "(no events)"
    table = {r.id: r for r in runs}
    # Lanes cost events x runs: not drawn when "auto" would discard them anyway.
    lanes = view == "lanes" or (view == "auto" and len(run_ids) <= MAX_LANES)
    lines = _lane_lines(log, run_ids, table) if lanes else []
    if view == "list" or (
        view == "auto" and (not lanes or max(map(width, lines)) > MAX_LANES_WIDTH)
    ):
        lines = _list_lines(log, run_ids, table)
    return "\n".join(_truncate(lines, 1, max_events))


def _row_prefix(ev: Event, t0: float) -> str:
    return f"{ev.seq:6d}{ev.time - t0:+10.3f}  "


def _list_lines(log: EventLog, run_ids: Sequence[UUID], table: Mapping[UUID, Run]) -> list[str]:
    shown = set(run_ids)
    depth: dict[UUID, int] = {}
    for rid in run_ids:
        d, p = 0, table.get(rid)
        while p is not None and p.parent_id is not None and p.parent_id in table:
            d, p = d + 1, table[p.parent_id]
        depth[rid] = d
    base = min(depth.values(), default=0)
    t0 = log[0].time if len(log) else 0.0
    lines = ["  #".rjust(6) + "time".rjust(10) + "  event"]
    for ev in log:
        if ev.run_id not in shown:
            continue
        run = table.get(ev.run_id)
        indent = "  " * (depth[ev.run_id] - base)
        text = f"{indent}{_clip_middle(str(run), _MAX_WIDTH) if run else '?'}: {cell_text(ev)}"
        lines.append(_row_prefix(ev, t0) + clip(text, _LIST_WIDTH))
    return lines


def _lane_lines(log: EventLog, run_ids: Sequence[UUID], table: Mapping[UUID, Run]) -> list[str]:
    column = {rid: i for i, rid in enumerate(run_ids)}
    headers = [
        _clip_middle(str(table[rid]), _MAX_WIDTH) if rid in table else "?" for rid in run_ids
    ]
    widths = [max(_MIN_WIDTH, width(h)) for h in headers]
    for ev in log:
        col = column.get(ev.run_id) if ev.run_id is not None else None
        if col is not None:
            widths[col] = min(max(widths[col], width(cell_text(ev))), _MAX_WIDTH)

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
        + "  ".join(_pad(h, w) for h, w in zip(headers, widths, strict=True)).rstrip()
    ]
    for i, ev in enumerate(log):
        col = column.get(ev.run_id) if ev.run_id is not None else None
        if col is None:
            continue
        cells = []
        for j, rid in enumerate(run_ids):
            if j == col:
                text = clip(cell_text(ev), widths[j])
            elif rid in first and first[rid] < i < last[rid]:
                text = _ACTIVE
            else:
                text = ""
            cells.append(_pad(text, widths[j]))
        lines.append(_row_prefix(ev, t0) + "  ".join(cells).rstrip())
    return lines
