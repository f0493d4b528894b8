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


def recorded_call() -> tuple[Event, ...]:
    """The events of one streamed ``prompt | model`` call."""
    model = FakeChatModel(script=Script([Turn("a b")], when_exhausted="repeat_last"))
    chain = ChatPromptTemplate.from_template("{q}") | model
    rec = Recorder()
    for _ in chain.stream({"q": "hi"}, config={"callbacks": [rec]}):
        pass
    return tuple(rec.events)


def make_events(n: int, pattern: tuple[Event, ...]) -> tuple[Event, ...]:
    """About ``n`` events: whole copies of ``pattern``, each with its own run ids
    (deterministic), so the log stays well formed."""
    out: list[Event] = []
    for copy in range(max(1, round(n / len(pattern)))):
        ids: dict[UUID, UUID] = {}
        for ev in pattern:
            run_id, parent = (
                None if rid is None else ids.setdefault(rid, UUID(int=copy * 16 + len(ids) + 1))
                for rid in (ev.run_id, ev.parent_run_id)
            )
            out.append(ev._replace(seq=len(out), run_id=run_id, parent_run_id=parent))
    return tuple(out)


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


def sections(
    sizes: tuple[int, ...], pattern: tuple[Event, ...], *, gc_off: bool = False
) -> dict[str, Section]:
    """Timed sections ``"<query> @<n>"``; µs per event. ``gc_off``: the collector
    is disabled while each query runs (a diagnostic: how much of the growth is
    collection passes over what the query itself builds)."""
    out: dict[str, Section] = {}
    for n in sizes:
        events = make_events(n, pattern)
        for name, query in QUERIES.items():

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


def prepared(
    sizes: tuple[int, ...], *, gc_off: bool = False, freeze_log: bool = False
) -> dict[str, Section]:
    """The sections, with the imports and warm-ups settled (:func:`settle`) and
    the logs left in the collector's sight unless ``freeze_log``."""
    pattern = recorded_call()
    if freeze_log:
        timed = sections(sizes, pattern, gc_off=gc_off)
        settle()
        return timed
    settle()
    return sections(sizes, pattern, gc_off=gc_off)


def rows(
    sizes: tuple[int, ...] = SIZES,
    n_rounds: int = 3,
    *,
    gc_off: bool = False,
    freeze_log: bool = False,
) -> tuple[list[Row], list[str]]:
    """Growth rows (per-event cost at the largest size over the smallest, per round)
    and the per-size detail lines. ``freeze_log``: a diagnostic, the logs are
    frozen with the imports (out of every collection's sight)."""
    times = rounds(prepared(sizes, gc_off=gc_off, freeze_log=freeze_log), n_rounds)
    small, large = sizes[0], sizes[-1]
    out = [
        Row(
            f"EventLog {name}: per-event cost, {large:,} vs {small:,} events",
            "µs/event",
            times[f"{name} @{large}"],
            times[f"{name} @{small}"],
            "<= 1.30",
        )
        for name in QUERIES
    ]
    width = max(len(name) for name in QUERIES)
    detail = [
        f"{'EventLog query, µs/event (median)':<{width}}  " + "".join(f"{n:>12,}" for n in sizes)
    ]
    detail += [
        f"{name:<{width}}  "
        + "".join(f"{statistics.median(times[f'{name} @{n}']):>12.3f}" for n in sizes)
        for name in QUERIES
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
    args = parser.parse_args()
    growth, detail = rows(
        tuple(args.sizes), args.rounds, gc_off=args.gc_off, freeze_log=args.freeze_log
    )
    print("\n".join([*render(growth), "", *detail]))


if __name__ == "__main__":
    main()
