"""Cost of recording: per-chunk streaming cost with the Recorder vs a no-op
inline handler (target <= 1.3x), and memory per recorded event.

Run: python benchmarks/bench_recorder.py  (a plain script, not a test)
"""

import asyncio
import gc
import statistics
import sys
import time
import tracemalloc

from langchain_core.callbacks import BaseCallbackHandler

from fakellm._model import FakeChatModel
from fakellm._recorder import Recorder
from fakellm._script import Turn

CHUNKS = 2000
REPEATS = 7


class NoOp(BaseCallbackHandler):
    """The floor: an inline handler that does nothing."""

    run_inline = True

    def on_llm_new_token(self, token, **kwargs):
        pass


def make_model():
    return FakeChatModel(script=[Turn(" ".join(["w"] * CHUNKS))])


def per_chunk_sync(handler_factory):
    times = []
    for _ in range(REPEATS):
        model, handler = make_model(), handler_factory()
        gc.collect()
        t0 = time.perf_counter()
        for _ in model.stream("q", config={"callbacks": [handler]}):
            pass
        times.append((time.perf_counter() - t0) / CHUNKS * 1e6)
    return statistics.median(times)


def per_chunk_async(handler_factory):
    async def once():
        model, handler = make_model(), handler_factory()
        t0 = time.perf_counter()
        async for _ in model.astream("q", config={"callbacks": [handler]}):
            pass
        return (time.perf_counter() - t0) / CHUNKS * 1e6

    return statistics.median(asyncio.run(once()) for _ in range(REPEATS))


def memory_per_event():
    model = make_model()
    rec = Recorder()
    chunks = []
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    # Keep the chunks alive in both cases, so only the Recorder's own cost counts.
    for c in model.stream("q", config={"callbacks": [rec]}):
        chunks.append(c)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    stats = after.compare_to(before, "filename")
    recorder_files = ("_recorder.py", "_events.py")
    own = sum(s.size_diff for s in stats if s.traceback[0].filename.endswith(recorder_files))
    total = sum(s.size_diff for s in stats)
    n = len(rec.events)
    return own / n, total / n, sys.getsizeof(rec.events[1]), n


def rows(chunks=2000, repeats=REPEATS):
    """Ratio rows for ``benchmarks/run.py``: (name, measured, baseline, unit, target)."""
    global CHUNKS, REPEATS
    saved, CHUNKS, REPEATS = (CHUNKS, REPEATS), chunks, repeats
    try:
        return [
            (f"Recorder vs no-op handler ({label})", fn(Recorder), fn(NoOp), "µs/chunk", "<= 1.30")
            for label, fn in (("stream", per_chunk_sync), ("astream", per_chunk_async))
        ]
    finally:
        CHUNKS, REPEATS = saved


def main():
    global CHUNKS
    print(
        f"{'path':8} {'chunks':>6} {'gc':>3} {'no-op µs/chunk':>15} "
        f"{'Recorder µs/chunk':>18} {'ratio':>6}"
    )
    for chunks, gc_on in ((200, True), (2000, True), (2000, False)):
        CHUNKS = chunks
        for label, fn in (("stream", per_chunk_sync), ("astream", per_chunk_async)):
            # gc off isolates the Recorder's own work from the collector
            # traversing the chunks it keeps alive (it stores references).
            if not gc_on:
                gc.disable()
            try:
                noop, rec = fn(NoOp), fn(Recorder)
            finally:
                gc.enable()
            print(
                f"{label:8} {chunks:6d} {'on' if gc_on else 'off':>3} "
                f"{noop:15.2f} {rec:18.2f} {rec / noop:5.2f}x"
            )
    own, total, tuple_size, n = memory_per_event()
    print(
        f"\nmemory per recorded event ({n} events): {own:.0f} B allocated by the "
        f"Recorder, {total:.0f} B in all (incl. what langchain-core allocates for "
        f"the callback call), Event tuple itself {tuple_size} B"
    )


if __name__ == "__main__":
    main()
