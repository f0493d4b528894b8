"""The one-pass run index and the index-based well-formedness check give exactly
the answers of the straightforward versions they replaced (no LangChain).

``reference_*`` below are the previous implementations, kept verbatim as the
specification: a table of rows built in a second pass after labelling every id,
per-run position lists, and a well-formedness check that gathers each run's
events in dicts of its own. The logs drawn here are adversarial for the new
index, which recognises ids by identity before hashing: equal ids carried by
distinct UUID objects, parents that change or vanish in the middle of a run,
events that belong to no run but name a parent, runs that are their own
parent, names that look like labels, and interrupts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakellm._events import (
    FINISH_KINDS,
    KINDS,
    START_KINDS,
    Event,
    EventLog,
    Run,
    _outcome,
)
from fakellm.assertions import well_formed_problems

IDS = [UUID(int=i) for i in range(1, 6)]
NEVER_SEEN = UUID(int=99)
NAMES = [None, "A", "B", "M", "r2", "r1"]
#: Strings a test might pass as a run reference: names, labels, near-labels.
REFS = [
    "A",
    "B",
    "M",
    "r1",
    "r2",
    "r3",
    "r7",
    "r0",
    "r01",
    "r",
    "R1",
    "r\u00b2",
    "r\u0661",
    "r-1",
    "r+1",
]


class GraphInterrupt(Exception):  # matched by class name, like langgraph.errors'
    pass


class _Message:
    def __init__(self, input_tokens: int) -> None:
        self.usage_metadata = {"input_tokens": input_tokens}


class _Chunk:
    def __init__(self, input_tokens: int) -> None:
        self.message = _Message(input_tokens)


def _copy(rid: UUID | None, fresh: bool) -> UUID | None:
    """``rid`` itself, or an equal UUID that is another object."""
    return UUID(int=rid.int) if fresh and rid is not None else rid


@st.composite
def adversarial_logs(draw: st.DrawFn) -> EventLog:
    parent_of = {rid: draw(st.sampled_from([None, *IDS, NEVER_SEEN])) for rid in IDS}
    events = []
    for seq in range(draw(st.integers(0, 30))):
        rid = draw(st.sampled_from([*IDS, IDS[0], IDS[0], None]))
        how = draw(st.sampled_from(["own", "own", "own", "none", "other"]))
        if how == "own" and rid is not None:
            parent = parent_of[rid]
        elif how == "other" or rid is None:
            parent = draw(st.sampled_from([None, *IDS, NEVER_SEEN]))
        else:
            parent = None
        kind = draw(st.sampled_from([*KINDS, "llm_new_token", "llm_new_token"]))
        payload: dict[str, Any] = {}
        if kind == "llm_new_token":
            payload["token"] = draw(st.sampled_from(["a", "b", ["block"]]))
            payload["chunk"] = _Chunk(draw(st.sampled_from([0, 0, 3])))
        elif kind == "llm_end":
            payload["output_text"] = draw(st.sampled_from([None, "", "a", "ab", "ba"]))
        elif kind.endswith("_error"):
            payload["error"] = draw(
                st.sampled_from([None, ValueError("boom"), GraphInterrupt("pause")])
            )
        events.append(
            Event(
                seq,
                kind,
                _copy(rid, draw(st.booleans())),
                _copy(parent, draw(st.booleans())),
                draw(st.sampled_from(NAMES)),
                draw(st.sampled_from(["chat_model", "chain", None])),
                draw(st.sampled_from([(), ("a",), ("a", "b")])),
                {},
                time=float(seq),
                **payload,
            )
        )
    return EventLog(events)


# -- the previous implementations -----------------------------------------------------


def reference_labels(events: Sequence[Event]) -> dict[UUID, str]:
    labels: dict[UUID, str] = {}
    for ev in events:
        for rid in (ev.parent_run_id, ev.run_id):
            if rid is not None and rid not in labels:
                labels[rid] = f"r{len(labels) + 1}"
    return labels


def reference_table(events: Sequence[Event]) -> tuple[dict[UUID, Run], dict[UUID, list[int]]]:
    labels = reference_labels(events)
    info: dict[UUID, list[Any]] = {
        rid: [None, None, None, (), None, None, "unseen", []] for rid in labels
    }
    positions: dict[UUID, list[int]] = {}
    for i, ev in enumerate(events):
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
            row[6] = _outcome(ev)
    table = {
        rid: Run(rid, labels[rid], r[0], r[1], r[2], tuple(r[3]), r[4], r[5], r[6], tuple(r[7]))
        for rid, r in info.items()
    }
    return table, positions


def reference_run(events: Sequence[Event], ref: str) -> Run:
    table, _ = reference_table(events)
    by_name: dict[str | None, list[Run]] = {}
    for r in table.values():
        by_name.setdefault(r.name, []).append(r)
    by_label = {r.label: r for r in table.values()}
    listed = ", ".join(str(r) for r in table.values() if r.status != "unseen") or "(none)"
    named = by_name.get(ref, [])
    if len(named) == 1:
        return named[0]
    if len(named) > 1:
        raise ValueError(
            f"run={ref!r} is ambiguous: {len(named)} runs have that name "
            f"({', '.join(r.label for r in named)}); pass a run id, a Run "
            f"from log.runs(name={ref!r}) or a label"
        )
    if ref in by_label:
        return by_label[ref]
    raise ValueError(f"run={ref!r} matches no run name or label; runs: {listed}")


def _chunk_input_tokens(chunk: Any) -> int:
    usage = getattr(getattr(chunk, "message", None), "usage_metadata", None)
    return int(usage.get("input_tokens") or 0) if usage else 0


def reference_problems(log: EventLog) -> list[tuple[Run, str]]:
    table = {r.id: r for r in log.runs()}
    problems: list[tuple[Run, str]] = []
    starts: dict[UUID, list[int]] = {}
    finishes: dict[UUID, list[int]] = {}
    inside: dict[UUID, list[tuple[int, Event]]] = {}
    for i, ev in enumerate(log):
        if ev.run_id is None:
            continue
        if ev.kind in START_KINDS:
            starts.setdefault(ev.run_id, []).append(i)
        elif ev.kind in FINISH_KINDS:
            finishes.setdefault(ev.run_id, []).append(i)
        else:
            inside.setdefault(ev.run_id, []).append((i, ev))
    for r in table.values():
        s, f = starts.get(r.id, []), finishes.get(r.id, [])
        if not s:
            problems.append((r, "has events but never started"))
        elif len(s) > 1:
            problems.append((r, f"started {len(s)} times (#{', #'.join(map(str, s))})"))
        if not f:
            problems.append((r, "never ended or errored"))
        elif len(f) > 1:
            kinds = ", ".join(f"{log[i].kind} #{log[i].seq}" for i in f)
            problems.append((r, f"finished {len(f)} times ({kinds})"))
        first, last = (s[0] if s else None), (f[0] if f else None)
        own = inside.get(r.id, [])
        for i, ev in own:
            if first is None or i < first:
                problems.append((r, f"{ev.kind} #{ev.seq} before the run started"))
            elif last is not None and i > last:
                problems.append((r, f"{ev.kind} #{ev.seq} after the run finished"))
        parent = table.get(r.parent_id) if r.parent_id is not None else None
        if parent is not None and parent.start is not None and first is not None:
            if first < parent.start:
                problems.append((r, f"started before its parent {parent}"))
            p_end = finishes.get(parent.id, [None])[0]
            if p_end is not None and (last is None or last > p_end):
                problems.append((r, f"still running after its parent {parent} finished"))
        end = log[last] if last is not None else None
        if end is not None and end.kind == "llm_end":
            token_events = [ev for _, ev in own if ev.kind == "llm_new_token"]
            tokens = [ev.token for ev in token_events]
            if (
                tokens
                and end.output_text is not None
                and all(isinstance(t, str) for t in tokens)
                and "".join(tokens) != end.output_text
            ):
                problems.append(
                    (r, f"streamed text {''.join(tokens)!r} != final text {end.output_text!r}")
                )
            counted = [ev.seq for ev in token_events if _chunk_input_tokens(ev.chunk) > 0]
            if len(counted) > 1:
                problems.append(
                    (
                        r,
                        f"usage counted {len(counted)} times: chunks "
                        f"#{', #'.join(map(str, counted))} all report input tokens",
                    )
                )
    return problems


# -- the comparisons ---------------------------------------------------------------------


def _outcome_of(call: Any) -> Any:
    try:
        return call()
    except (ValueError, TypeError) as e:
        return type(e), str(e)


@settings(max_examples=300, deadline=None)
@given(adversarial_logs())
def test_run_index_matches_the_two_pass_table(log: EventLog) -> None:
    events = list(log)
    table, positions = reference_table(events)
    assert list(log.labels().items()) == list(reference_labels(events).items())
    # Every id, unseen parents included, resolves to the same Run, in label order.
    assert [log.run(rid) for rid in table] == list(table.values())
    assert log.runs() == [r for r in table.values() if r.status != "unseen"]
    for r in log.runs():
        assert list(log.filter(run=r)) == [events[i] for i in positions[r.id]]
        assert log.parent(r) == (None if r.parent_id is None else table[r.parent_id])
    for ref in REFS:
        assert _outcome_of(lambda ref=ref: log.run(ref)) == _outcome_of(
            lambda ref=ref: reference_run(events, ref)
        )


@settings(max_examples=300, deadline=None)
@given(adversarial_logs())
def test_well_formed_problems_match_the_previous_check(log: EventLog) -> None:
    assert well_formed_problems(log) == reference_problems(log)


def test_the_logs_drawn_reach_every_case_the_identity_shortcuts_skip() -> None:
    # The draws above must hold what the shortcuts could get wrong; pin that
    # they do by building one such log by hand and checking it too.
    a, b = IDS[0], IDS[1]
    events = [
        Event(0, "text", None, a, None, None, (), {}),  # no run, names a parent
        Event(1, "chain_start", a, None, "A", "chain", (), {}),
        Event(2, "chat_model_start", b, UUID(int=a.int), "r1", "chat_model", (), {}),
        Event(3, "llm_new_token", UUID(int=b.int), None, "r1", None, (), {}, token="x"),
        Event(4, "llm_new_token", b, NEVER_SEEN, None, None, (), {}, token="y"),
        Event(5, "chain_start", IDS[2], IDS[2], "A", "chain", (), {}),  # its own parent
        Event(6, "llm_end", b, a, "r1", None, (), {}, output_text="xz"),
        Event(7, "chain_error", a, None, "A", None, (), {}, error=GraphInterrupt()),
    ]
    log = EventLog(events)
    table, _ = reference_table(events)
    assert [log.run(rid) for rid in table] == list(table.values())
    assert [r.status for r in table.values()] == ["interrupted", "ok", "unseen", "running"]
    assert log.run("r1") == table[b]  # a name wins over a label
    assert log.run("r3").id == NEVER_SEEN
    assert well_formed_problems(log) == reference_problems(log) != []


@pytest.mark.parametrize("n", [0, 1, 9])
def test_labels_are_read_back_only_in_their_exact_spelling(n: int) -> None:
    events = [
        Event(i, "chain_start", UUID(int=i + 1), None, f"N{i}", "chain", (), {}) for i in range(n)
    ]
    log = EventLog(events)
    for ref in ["r0", "r01", "r1", f"r{n}", f"r{n + 1}", "r\u0663", "r\u00b3", " r1", "r1 "]:
        assert _outcome_of(lambda ref=ref: log.run(ref)) == _outcome_of(
            lambda ref=ref: reference_run(events, ref)
        )


def test_subtree_ends_on_a_log_whose_runs_are_each_others_parents() -> None:
    # Drawn logs can name a run its own ancestor; subtree walked that cycle forever.
    a, b = IDS[0], IDS[1]
    log = EventLog(
        [
            Event(0, "chain_start", a, b, "A", "chain", (), {}, time=0.0),
            Event(1, "chain_start", b, a, "B", "chain", (), {}, time=1.0),
            Event(2, "chain_start", IDS[2], IDS[2], "C", "chain", (), {}, time=2.0),
        ]
    )
    assert [r.name for r in log.subtree(a)] == ["A", "B"]
    assert [r.name for r in log.subtree(b)] == ["B", "A"]
    assert [r.name for r in log.subtree(IDS[2])] == ["C"]
