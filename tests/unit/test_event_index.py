"""EventLog's per-run index answers exactly what a scan of the whole log answers (no LangChain).

Per-run queries read an index built once per log instead of scanning every
event, so a loop over all runs stays linear; these tests pin that the index
never changes an answer, on arbitrary logs (interleaved runs, parents never
seen, events after a run ended, runs that never end), and that timelines of
many runs list events instead of growing a column per run.
"""

from __future__ import annotations

from uuid import UUID

from hypothesis import given, settings
from hypothesis import strategies as st

from fakellm._events import KINDS, Event, EventLog

IDS = [UUID(int=i) for i in range(1, 7)]
NAMES = ["A", "B", "M"]


@st.composite
def logs(draw: st.DrawFn) -> EventLog:
    # A parent comes earlier in IDS (run trees have no cycles) or is never seen.
    parents = {
        rid: draw(st.sampled_from([None, *IDS[:i], UUID(int=99)])) for i, rid in enumerate(IDS)
    }
    names = {rid: draw(st.sampled_from(NAMES)) for rid in IDS}
    events = []
    for seq in range(draw(st.integers(0, 40))):
        rid = draw(st.sampled_from([*IDS, None]))
        kind = draw(st.sampled_from(KINDS))
        parent = parents[rid] if rid is not None else None
        usage = {"input_tokens": 1, "output_tokens": seq, "total_tokens": seq + 1}
        events.append(
            Event(
                seq,
                kind,
                rid,
                parent,
                # Recorded before the run's start was seen: no name yet.
                names[rid] if rid is not None and draw(st.booleans()) else None,
                draw(st.sampled_from(["chat_model", "chain", None])),
                draw(st.sampled_from([(), ("a",), ("a", "b")])),
                {},
                token=f"t{seq}" if kind == "llm_new_token" else None,
                usage=usage if kind == "llm_end" else None,
                time=float(seq),
            )
        )
    return EventLog(events)


def _scan(log: EventLog, ids: set[UUID]) -> list[Event]:
    return [ev for ev in log if ev.run_id in ids]


@settings(max_examples=100, deadline=None)
@given(logs())
def test_per_run_queries_match_a_scan_of_the_whole_log(log: EventLog) -> None:
    for run in log.runs():
        own = _scan(log, {run.id})
        assert list(log.filter(run=run)) == own
        assert log.tokens(run) == [ev.token for ev in own if ev.kind == "llm_new_token"]
        assert log.text(run) == "".join(ev.token for ev in own if ev.kind == "llm_new_token")
        family = {r.id for r in log.subtree(run)}
        assert list(log.filter(run=run, subtree=True)) == _scan(log, family)
        assert list(log.filter(run=run, subtree=True, kind="llm_end")) == [
            ev for ev in _scan(log, family) if ev.kind == "llm_end"
        ]
        total = {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
        for ev in _scan(log, family):
            if ev.kind == "llm_end" and ev.usage:
                total = {k: total[k] + ev.usage[k] for k in total}
        assert log.usage(run) == total
        assert log.run(run.label) == run
        named = [r for r in log.runs() if r.name == run.name]
        if run.name is not None and len(named) == 1:
            assert log.run(run.name) == run


@settings(max_examples=50, deadline=None)
@given(logs())
def test_tree_indents_each_run_by_its_depth(log: EventLog) -> None:
    table = {r.id: r for r in log.runs()}
    expected = []
    for root in log.roots():
        for r in log.subtree(root):
            depth, p = 0, r
            while p.id != root.id and p.parent_id is not None:
                depth, p = depth + 1, log.parent(p)  # type: ignore[assignment]
            expected.append(f"{'  ' * depth}{r} [{r.type}] {r.status}")
    assert log.tree() == "\n".join(expected)
    assert set(table) >= {r.id for r in log.roots()}


def _ev(seq: int, kind: str, run: UUID, name: str, parent: UUID | None = None) -> Event:
    return Event(seq, kind, run, parent, name, "chat_model", (), {}, time=seq / 10, virtual=True)


def test_many_runs_are_listed_one_line_per_event() -> None:
    # Past a handful of lanes the timeline lists events (one line each, indented
    # by depth) instead of growing a column per run: linear in events.
    root = UUID(int=100)
    events = [_ev(0, "chain_start", root, "Agent")]
    for k in range(20):
        run = UUID(int=k + 1)
        events.append(_ev(len(events), "chat_model_start", run, "Model", root))
        events.append(_ev(len(events), "llm_end", run, "Model", root))
    events.append(_ev(len(events), "chain_end", root, "Agent"))
    lines = EventLog(events).timeline().splitlines()
    assert len(lines) == 1 + len(events)
    assert lines[0] == "     #      time  event"
    assert lines[-1].startswith("    41    +4.100  ")
