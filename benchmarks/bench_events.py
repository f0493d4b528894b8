"""How EventLog queries scale: cost per event from 1k to 100k events.

Run: ``python benchmarks/bench_events.py [--rounds 3] [--sizes 1000 10000 100000]``

The log is a recorded app call (a prompt | model chain, streamed: a root run,
two child runs, two tokens) repeated with new run ids until it holds N events,
so the number of runs grows with N as in a long test or an exploration. Every
timed section wraps the events in a new EventLog, so building the run index is
part of what it pays. Per-run queries run over *every* run (or every root):
with an index they cost the run's own events, so the loop stays linear; a scan
per query would make it quadratic. A per-event cost growing about 1.0x from
the smallest log to the largest means linear. Timing rules: see ``_harness.py``.

The logs are built after :func:`_harness.settle` has frozen the imports and
warm-ups, so the collector still sees them, as it sees a test's log: a full
collection that a query's allocations trigger walks the whole log, and the
query pays for it. (Building them first would freeze them too, and hide that
cost; ``--freeze-log`` does so, to show how much of a row it is.)

How much a full collection costs a query depends on the rest of the heap, so
one informational row (no target) sits beside ``normalized()``: its floor,
which builds only what every row of ``normalized()`` must hold (a dict with
the six fixed keys and its own tags list) and nothing else. Its per-event cost
grows too: that growth is the collector walking the log and the rows, which
no way of building the same rows avoids. The logs copy one recorded call, so
their payloads are shared: about 1.4 objects per event for the collector to
track, against about 9 in a log a Recorder recorded (each token keeps its own
chunk and message). CPython runs a full collection once the old generation
has grown by a quarter (and ten younger collections have run), so on the
heavier heap a query's survivors trigger fewer of them, each walking more.
``--recorded-log`` records every log call by call instead (minutes, not
seconds), to show the queries on that heap.

Every query runs once on the recorded call before :func:`settle` (imports it
makes on first use, like ``timeline()``'s, and caches it fills are warm-up,
not per-event cost).
"""

from __future__ import annotations

import argparse
import gc
import statistics
from collections.abc import Callable
from uuid import UUID

from _harness import Row, Section, render, rounds, settle
from langchain_core.prompts import ChatPromptTemplate

from fakellm import EventLog, FakeChatModel, Recorder, Script, Turn
from fakellm._events import Event
from fakellm.assertions import assert_well_formed

SIZES = (1_000, 10_000, 100_000)


def recorded(calls: int) -> tuple[Event, ...]:
    """The events of ``calls`` streamed ``prompt | model`` calls, as one Recorder
    recorded them (every event its own payload objects)."""
    model = FakeChatModel(script=Script([Turn("a b")], when_exhausted="repeat_last"))
    chain = ChatPromptTemplate.from_template("{q}") | model
    rec = Recorder()
    for _ in range(calls):
        for _chunk in chain.stream({"q": "hi"}, config={"callbacks": [rec]}):
            pass
    return tuple(rec.events)


def recorded_call() -> tuple[Event, ...]:
    """The events of one streamed ``prompt | model`` call."""
    return recorded(1)


def make_events(n: int, pattern: tuple[Event, ...]) -> tuple[Event, ...]:
    """About ``n`` events: whole copies of ``pattern``, each with its own run ids
    (deterministic), so the log stays well formed."""
    out: list[Event] = []
    for copy in range(copies(n, pattern)):
        ids: dict[UUID, UUID] = {}
        for ev in pattern:
            run_id, parent = (
                None if rid is None else ids.setdefault(rid, UUID(int=copy * 16 + len(ids) + 1))
                for rid in (ev.run_id, ev.parent_run_id)
            )
            out.append(ev._replace(seq=len(out), run_id=run_id, parent_run_id=parent))
    return tuple(out)


def copies(n: int, pattern: tuple[Event, ...]) -> int:
    """How many copies of ``pattern`` make about ``n`` events."""
    return max(1, round(n / len(pattern)))


def recorded_log(n: int, pattern: tuple[Event, ...]) -> tuple[Event, ...]:
    """As many recorded calls as :func:`make_events` copies ``pattern``."""
    return recorded(copies(n, pattern))


def _every_run(query: Callable[[EventLog, object], object]) -> Callable[[EventLog], None]:
    def loop(log: EventLog) -> None:
        for r in log.runs():
            query(log, r)

    return loop


def _every_root(query: Callable[[EventLog, object], object]) -> Callable[[EventLog], None]:
    def loop(log: EventLog) -> None:
        for r in log.roots():
            query(log, r)

    return loop


#: Query name -> what it does with a fresh EventLog.
QUERIES: dict[str, Callable[[EventLog], object]] = {
    "run index (runs())": lambda log: log.runs(),
    "text(run) over every run": _every_run(lambda log, r: log.text(r)),  # type: ignore[arg-type]
    "tokens(run) over every run": _every_run(lambda log, r: log.tokens(r)),  # type: ignore[arg-type]
    "filter(run=) over every run": _every_run(lambda log, r: log.filter(run=r)),  # type: ignore[arg-type]
    "filter(run=, subtree) over roots": _every_root(
        lambda log, r: log.filter(run=r, subtree=True)  # type: ignore[arg-type]
    ),
    "usage(run) over roots": _every_root(lambda log, r: log.usage(r)),  # type: ignore[arg-type]
    "output_text(run) over every run": _every_run(lambda log, r: log.output_text(r)),  # type: ignore[arg-type]
    "run(label) over every run": _every_run(lambda log, r: log.run(r.label)),  # type: ignore[attr-defined]
    "usage()": lambda log: log.usage(),
    "tree()": lambda log: log.tree(),
    "normalized()": lambda log: log.normalized(),
    "timeline()": lambda log: log.timeline(),
    "assert_well_formed": assert_well_formed,
}


def normalized_floor(log: EventLog) -> list[dict[str, object]]:
    """The least ``normalized()`` must build: per event a dict with the six keys
    every row has and its own tags list. No labels, no payloads."""
    return [
        {
            "kind": ev.kind,
            "run": None,
            "parent": None,
            "name": ev.run_name,
            "type": ev.run_type,
            "tags": list(ev.tags),
        }
        for ev in log._events
    ]


#: Informational rows (no target): what a query's output costs at the least.
FLOORS: dict[str, Callable[[EventLog], object]] = {
    "normalized() floor (row dict + tags list)": normalized_floor,
}


def sections(
    sizes: tuple[int, ...],
    pattern: tuple[Event, ...],
    *,
    gc_off: bool = False,
    log: Callable[[int, tuple[Event, ...]], tuple[Event, ...]] = make_events,
) -> dict[str, Section]:
    """Timed sections ``"<query> @<n>"``; µs per event. ``gc_off``: the collector
    is disabled while each query runs (a diagnostic: how much of the growth is
    collection passes over what the query itself builds). ``log`` builds the
    log of about ``n`` events."""
    out: dict[str, Section] = {}
    for n in sizes:
        events = log(n, pattern)
        for name, query in {**QUERIES, **FLOORS}.items():

            def section(
                events: tuple[Event, ...] = events,
                query: Callable[[EventLog], object] = query,
            ) -> int:
                if gc_off:
                    gc.disable()
                try:
                    query(EventLog._trusted(events))
                finally:
                    gc.enable()
                return len(events)

            out[f"{name} @{n}"] = section
    return out


def warm_up(pattern: tuple[Event, ...]) -> None:
    """Every query once on a small log: what a first call imports or caches."""
    for query in (*QUERIES.values(), *FLOORS.values()):
        query(EventLog._trusted(pattern))


def prepared(
    sizes: tuple[int, ...],
    *,
    gc_off: bool = False,
    freeze_log: bool = False,
    recorded_logs: bool = False,
) -> dict[str, Section]:
    """The sections, with the imports and warm-ups settled (:func:`settle`) and
    the logs left in the collector's sight unless ``freeze_log``.
    ``recorded_logs``: every log recorded call by call, not copied."""
    pattern = recorded_call()
    warm_up(pattern)
    log = recorded_log if recorded_logs else make_events
    if freeze_log:
        timed = sections(sizes, pattern, gc_off=gc_off, log=log)
        settle()
        return timed
    settle()
    return sections(sizes, pattern, gc_off=gc_off, log=log)


def rows(
    sizes: tuple[int, ...] = SIZES,
    n_rounds: int = 3,
    *,
    gc_off: bool = False,
    freeze_log: bool = False,
    recorded_logs: bool = False,
) -> tuple[list[Row], list[str]]:
    """Growth rows (per-event cost at the largest size over the smallest, per round)
    and the per-size detail lines. ``freeze_log`` and ``recorded_logs`` are
    diagnostics: the logs frozen with the imports (out of every collection's
    sight), or recorded call by call (a heavier heap)."""
    times = rounds(
        prepared(sizes, gc_off=gc_off, freeze_log=freeze_log, recorded_logs=recorded_logs),
        n_rounds,
    )
    small, large = sizes[0], sizes[-1]
    # Each floor's row right after the query it is the floor of (its name's start).
    names = {}
    for query in QUERIES:
        names[query] = "<= 1.30"
        names.update((floor, "") for floor in FLOORS if floor.startswith(query))
    out = [
        Row(
            f"EventLog {name}: per-event cost, {large:,} vs {small:,} events",
            "µs/event",
            times[f"{name} @{large}"],
            times[f"{name} @{small}"],
            target,
        )
        for name, target in names.items()
    ]
    width = max(len(name) for name in names)
    detail = [
        f"{'EventLog query, µs/event (median)':<{width}}  " + "".join(f"{n:>12,}" for n in sizes)
    ]
    detail += [
        f"{name:<{width}}  "
        + "".join(f"{statistics.median(times[f'{name} @{n}']):>12.3f}" for n in sizes)
        for name in names
    ]
    return out, detail


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument(
        "--gc-off", action="store_true", help="disable the collector inside each query"
    )
    parser.add_argument(
        "--freeze-log",
        action="store_true",
        help="freeze the logs with the imports (hides the collections' walks over them)",
    )
    parser.add_argument(
        "--recorded-log",
        action="store_true",
        help="record every log call by call (each event its own payload objects)",
    )
    args = parser.parse_args()
    growth, detail = rows(
        tuple(args.sizes),
        args.rounds,
        gc_off=args.gc_off,
        freeze_log=args.freeze_log,
        recorded_logs=args.recorded_log,
    )
    print("\n".join([*render(growth), "", *detail]))


if __name__ == "__main__":
    main()
