"""A self-contained HTML timeline of an EventLog (pure).

One file, no network: styles and the few lines of script are inline, so the
page opens from a CI artifact or a mail attachment as it is. Each run is a
lane (``<div class="lane" data-run="r3">``), indented by its depth in the run
tree, with a bar from its start to its end coloured by outcome; tokens and
other events are ticks on the bar. Hovering shows the details (the token's
text, the tool calls a model asked for, a tool's arguments, an error). The
zoom buttons (or Ctrl + wheel) stretch the time axis for hundreds of runs.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

from fakellm._timeline import cell_text

if TYPE_CHECKING:
    from fakellm._events import Event, EventLog

__all__ = ["render_html"]

_STYLE = """
body{font:13px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#fafbfc}
header{position:sticky;top:0;background:#fff;border-bottom:1px solid #d8dde6;padding:8px 12px;
z-index:2}
header h1{font-size:15px;margin:0 0 4px}
header .meta{color:#5b6475}
header button{margin-left:6px}
.legend span{display:inline-block;padding:0 6px;margin-right:6px;border-radius:3px;color:#fff}
#scroll{overflow-x:auto}
#lanes{width:calc(100% * var(--zoom,1));min-width:100%}
.lane{display:flex;align-items:center;height:18px;border-bottom:1px solid #eef0f4}
.lane:hover{background:#eef3ff}
.name{flex:0 0 280px;position:sticky;left:0;background:inherit;white-space:nowrap;overflow:hidden;
text-overflow:ellipsis;padding-left:6px;font-family:ui-monospace,monospace;font-size:12px;z-index:1}
.track{position:relative;flex:1;height:100%}
.bar{position:absolute;top:3px;height:12px;min-width:2px;border-radius:2px;opacity:.85}
.tick{position:absolute;top:1px;width:2px;height:16px;background:#1d2330;opacity:.55}
.tick.error{background:#c62828;width:3px;opacity:1}
.ok{background:#4f7cd8}.error{background:#d9534f}.interrupted{background:#e0a030}
.running{background:#8a94a6}.unseen{background:#c3c9d4}
.chat_model,.llm{filter:saturate(1.4)}
"""

_SCRIPT = """
(function(){
  var lanes=document.getElementById('lanes'),zoom=1;
  function set(z){zoom=Math.max(1,Math.min(z,200));lanes.style.setProperty('--zoom',zoom);
    document.getElementById('zoom').textContent=zoom.toFixed(1)+'x';}
  document.getElementById('zin').onclick=function(){set(zoom*2)};
  document.getElementById('zout').onclick=function(){set(zoom/2)};
  document.getElementById('scroll').addEventListener('wheel',function(e){
    if(e.ctrlKey){e.preventDefault();set(zoom*(e.deltaY<0?1.25:0.8));}},{passive:false});
})();
"""


def _pct(value: float) -> str:
    return f"{value * 100:.4f}%"


def _details(log: EventLog, ev: Event) -> str:
    text = cell_text(ev)
    if ev.kind == "llm_new_token" and isinstance(ev.token, str):
        text = f"token {ev.token!r}"
    return f"#{ev.seq} {text}"


def render_html(log: EventLog, *, title: str = "") -> str:
    """The HTML page for ``log`` (``title`` goes in the heading)."""
    from fakellm._events import START_KINDS
    from fakellm._trace import _tree_order

    order = _tree_order(log)
    n = len(log)
    t0 = log[0].time if n else 0.0
    span = (log[n - 1].time - t0) if n else 0.0
    by_time = span > 0
    index = {ev.seq: i for i, ev in enumerate(log)}

    def x(ev: Event) -> float:
        if by_time:
            return (ev.time - t0) / span
        return index[ev.seq] / max(n - 1, 1)

    ticks: dict[Any, list[str]] = {}
    for ev in log:
        if ev.run_id is None or ev.kind in START_KINDS or ev.kind.endswith("_end"):
            continue
        cls = "tick error" if ev.kind.endswith("_error") else "tick"
        ticks.setdefault(ev.run_id, []).append(
            f'<div class="{cls}" style="left:{_pct(x(ev))}" '
            f'title="{html.escape(_details(log, ev))}"></div>'
        )
    rows: list[str] = []
    for r, depth in order:
        start = x(log[r.start]) if r.start is not None else 0.0
        end = x(log[r.end]) if r.end is not None else 1.0
        hover = [f"{r} [{r.type}] {r.status}"]
        node = log.node_of(r)
        if node is not None:
            hover.append(f"node: {node}")
        if r.type in ("chat_model", "llm"):
            said = log.text(r) or log.output_text(r)
            if said:
                hover.append(f"text: {said}")
            hover += [
                f"tool call: {c.name}({json.dumps(c.args, ensure_ascii=False)})"
                for c in log.tool_calls(run=r)
            ]
        elif r.type == "tool" and r.start is not None:
            hover.append(f"input: {log[r.start].inputs}")
        if r.status == "error" and log.error(r) is not None:
            hover.append(f"error: {type(log.error(r)).__name__}: {log.error(r)}")
        label = html.escape(f"{r}")
        indent = 6 + 12 * depth
        width = _pct(max(end - start, 0.0))
        rows.append(
            f'<div class="lane" data-run="{r.label}" data-depth="{depth}">'
            f'<div class="name" style="padding-left:{indent}px" title="{label}">{label}</div>'
            f'<div class="track"><div class="bar {r.status} {r.type}" '
            f'style="left:{_pct(start)};width:{width}" '
            f'title="{html.escape(chr(10).join(hover))}"></div>'
            f"{''.join(ticks.get(r.id, ()))}</div></div>"
        )
    axis = f"time: {span:.3f} s" if by_time else "axis: event order (times did not advance)"
    heading = html.escape(title or "fakellm timeline")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{heading}</title><style>{_STYLE}</style></head><body>"
        f'<header><h1>{heading}</h1><div class="meta">{len(order)} runs, {n} events, '
        f'{axis}<button id="zout">-</button><span id="zoom">1.0x</span>'
        '<button id="zin">+</button></div><div class="legend">'
        '<span class="ok">ok</span><span class="error">error</span>'
        '<span class="interrupted">interrupted</span><span class="running">running</span>'
        "</div></header>"
        f'<div id="scroll"><div id="lanes">{"".join(rows)}</div></div>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
