"""A self-contained HTML timeline of an EventLog (pure).

One file, no network: styles and the few lines of script are inline, so the
page opens from a CI artifact or a mail attachment as it is. Each run is a
lane (``<div class="lane" data-run="r3">``), indented by its depth in the run
tree, with a bar from its start to its end coloured by outcome; tokens and
other events are ticks on the bar. Hovering shows the details (the token's
text, the tool calls a model asked for, a tool's arguments, an error). The
zoom buttons (or Ctrl + wheel, or ``#zoom=4`` in the address) stretch the
time axis for hundreds of runs.
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
.bar,.tick{position:absolute;left:min(var(--l),calc(100% - 3px))}
.bar{top:3px;height:12px;width:var(--w);min-width:3px;border-radius:2px;opacity:.85}
.tick{top:1px;width:2px;height:16px;background:#1d2330;opacity:.55}
#lanes.time .bar,#lanes.time .tick{--l:var(--tl);--w:var(--tw)}
#lanes.order .bar,#lanes.order .tick{--l:var(--ol);--w:var(--ow)}
.tick.error{background:#c62828;width:3px;opacity:1}
.tick.interrupt{background:#9a6200;width:3px;opacity:1}
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
  var axis=document.getElementById('axis');
  axis.onclick=function(){var t=lanes.className==='time';lanes.className=t?'order':'time';
    axis.textContent=t?'axis: event order':'axis: time';};
  var m=/zoom=([0-9.]+)/.exec(location.hash);if(m){set(parseFloat(m[1]));}
  if(/axis=order/.test(location.hash)&&lanes.className==='time'){axis.onclick();}
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
    from fakellm._events import START_KINDS, is_interrupt
    from fakellm._trace import _tree_order

    order = _tree_order(log)
    n = len(log)
    t0 = log[0].time if n else 0.0
    span = (log[n - 1].time - t0) if n else 0.0
    index = {ev.seq: i for i, ev in enumerate(log)}
    # Two axes, both in the page (the button switches): time shows latency,
    # event order separates what happened at the same instant. Start with
    # time unless most runs took no time (a bar of width zero says nothing).
    instant = sum(
        1
        for r, _ in order
        if r.start is not None and r.end is not None and log[r.start].time == log[r.end].time
    )
    by_time = span > 0 and instant * 2 < len(order)

    def pos(ev: Event | None, default: float) -> tuple[float, float]:
        if ev is None:
            return default, default
        t = (ev.time - t0) / span if span > 0 else 0.0
        return t, index[ev.seq] / max(n - 1, 1)

    def place(start: tuple[float, float], end: tuple[float, float] | None = None) -> str:
        css = f"--tl:{_pct(start[0])};--ol:{_pct(start[1])}"
        if end is not None:
            css += f";--tw:{_pct(max(end[0] - start[0], 0.0))}"
            css += f";--ow:{_pct(max(end[1] - start[1], 0.0))}"
        return css

    ticks: dict[Any, list[str]] = {}
    for ev in log:
        if ev.run_id is None or ev.kind in START_KINDS or ev.kind.endswith("_end"):
            continue
        cls = "tick"
        if ev.kind.endswith("_error"):
            cls = "tick interrupt" if is_interrupt(ev) else "tick error"
        ticks.setdefault(ev.run_id, []).append(
            f'<div class="{cls}" style="{place(pos(ev, 0.0))}" '
            f'title="{html.escape(_details(log, ev))}"></div>'
        )
    rows: list[str] = []
    for r, depth in order:
        start = pos(log[r.start] if r.start is not None else None, 0.0)
        end = pos(log[r.end] if r.end is not None else None, 1.0)
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
        rows.append(
            f'<div class="lane" data-run="{r.label}" data-depth="{depth}">'
            f'<div class="name" style="padding-left:{indent}px" title="{label}">{label}</div>'
            f'<div class="track"><div class="bar {r.status} {r.type}" '
            f'style="{place(start, end)}" '
            f'title="{html.escape(chr(10).join(hover))}"></div>'
            f"{''.join(ticks.get(r.id, ()))}</div></div>"
        )
    axis = "time" if by_time else "order"
    heading = html.escape(title or "fakellm timeline")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{heading}</title><style>{_STYLE}</style></head><body>"
        f'<header><h1>{heading}</h1><div class="meta">{len(order)} runs, {n} events, '
        f"{span:.3f} s"
        f'<button id="axis">axis: {"time" if by_time else "event order"}</button>'
        '<button id="zout">-</button><span id="zoom">1.0x</span>'
        '<button id="zin">+</button></div><div class="legend">'
        '<span class="ok">ok</span><span class="error">error</span>'
        '<span class="interrupted">interrupted</span><span class="running">running</span>'
        "</div></header>"
        f'<div id="scroll"><div id="lanes" class="{axis}">{"".join(rows)}</div></div>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
