"""An EventLog in Chrome's trace-event format, for Perfetto and ``chrome://tracing`` (pure).

The format (the "Trace Event Format" document Chrome's tracing team keeps)
is a JSON object whose ``traceEvents`` list holds events with ``name``,
``ph`` (phase), ``ts`` (microseconds), ``pid`` and ``tid``. Each run becomes
a complete event (``"ph": "X"`` with ``dur``) on its own track (a ``tid``),
named and ordered by the run tree through metadata events (``"ph": "M"``);
each token, error or other event inside a run becomes an instant event
(``"ph": "i"``, thread scope). Times are the log's clock (virtual under the
harness), relative to the first event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fakellm._timeline import cell_text

if TYPE_CHECKING:
    from fakellm._events import EventLog, Run

__all__ = ["chrome_trace"]

_PID = 1


def _us(seconds: float) -> float:
    return round(seconds * 1_000_000, 3)


def chrome_trace(log: EventLog) -> dict[str, Any]:
    """The trace-event JSON object for ``log``."""
    from fakellm._events import START_KINDS

    events: list[dict[str, Any]] = [_metadata("process_name", 0, name="fakellm")]
    if not len(log):
        return {"traceEvents": events, "displayTimeUnit": "ms"}
    t0 = log[0].time
    t_last = log[len(log) - 1].time
    order = _tree_order(log)
    tid = {r.id: i + 1 for i, (r, _) in enumerate(order)}
    for i, (r, depth) in enumerate(order):
        label = f"{'  ' * depth}{r}"
        events.append(_metadata("thread_name", tid[r.id], name=label))
        events.append(_metadata("thread_sort_index", tid[r.id], sort_index=i))
        start = log[r.start].time if r.start is not None else t0
        end = log[r.end].time if r.end is not None else t_last
        args: dict[str, Any] = {
            "run": r.label,
            "type": r.type,
            "status": r.status,
            "parent": log.labels().get(r.parent_id) if r.parent_id is not None else None,
        }
        node = log.node_of(r)
        if node is not None:
            args["node"] = node
        if r.type in ("chat_model", "llm"):
            args["text"] = log.text(r) or log.output_text(r)
            calls = log.tool_calls(run=r)
            if calls:
                args["tool_calls"] = [{"name": c.name, "args": c.args} for c in calls]
        events.append(
            {
                "name": str(r.name),
                "cat": str(r.type),
                "ph": "X",
                "ts": _us(start - t0),
                "dur": _us(max(end - start, 0.0)),
                "pid": _PID,
                "tid": tid[r.id],
                "args": args,
            }
        )
    for ev in log:
        if ev.run_id is None or ev.run_id not in tid or ev.kind in START_KINDS:
            continue
        if ev.kind in ("chain_end", "llm_end", "tool_end", "retriever_end"):
            continue  # the complete event's end already says it
        events.append(
            {
                "name": cell_text(ev),
                "cat": ev.kind,
                "ph": "i",
                "s": "t",
                "ts": _us(ev.time - t0),
                "pid": _PID,
                "tid": tid[ev.run_id],
                "args": {"seq": ev.seq},
            }
        )
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {"source": "fakellm", "virtual": all(ev.virtual for ev in log)},
    }


def _metadata(event: str, tid: int, **args: Any) -> dict[str, Any]:
    """A metadata event (``"ph": "M"``): names and orders the tracks."""
    return {"name": event, "ph": "M", "pid": _PID, "tid": tid, "args": args}


def _tree_order(log: EventLog) -> list[tuple[Run, int]]:
    """Every run, depth first from each root, with its depth."""
    out: list[tuple[Run, int]] = []
    for root in log.roots():
        stack = [(root, 0)]
        while stack:
            r, depth = stack.pop()
            out.append((r, depth))
            stack.extend((c, depth + 1) for c in reversed(log.children(r)))
    return out
