"""Thread safety: one Recorder and one model shared by 8 threads, thousands of calls."""

from __future__ import annotations

import itertools
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fakellm import FakeChatModel, Recorder, Script, Turn
from fakellm.assertions import assert_well_formed

THREADS = 8

pytestmark = pytest.mark.usefixtures("no_thread_left")


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every 10 µs instead of 5 ms, so races get their chance."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(old)


def run_threads(work: Callable[[int], None]) -> None:
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def target(k: int) -> None:
        start.wait()
        try:
            work(k)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=target, args=(k,), name=f"worker-{k}") for k in range(THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_a_shared_model_and_recorder_lose_nothing_and_serve_each_turn_once():
    per_thread = 150
    calls = THREADS * per_thread
    turns = [Turn(f"reply {i}", chunks="words") for i in range(calls)]
    model = FakeChatModel(script=Script(turns))
    rec = Recorder()
    replies: dict[int, list[tuple[str, str]]] = {k: [] for k in range(THREADS)}

    def work(k: int) -> None:
        cfg: Any = {"callbacks": [rec], "tags": [f"worker-{k}"]}
        for j in range(per_thread):
            if j % 2:
                text = "".join(c.text for c in model.stream("hi", config=cfg))
                replies[k].append(("stream", text))
            else:
                replies[k].append(("invoke", model.invoke("hi", config=cfg).text))

    run_threads(work)

    # No turn taken twice, none skipped: every reply is a distinct turn.
    texts = sorted(text for rs in replies.values() for _, text in rs)
    assert texts == sorted(f"reply {i}" for i in range(calls))
    # Calls are numbered in the order they took their turn, and got that turn.
    assert [c.index for c in model.calls] == list(range(calls))
    assert all(c.turn is turns[c.index] for c in model.calls)
    assert model.unused_turns == []

    log = rec.events
    # Every event kept: start + end per call, and 2 tokens per streamed call.
    streamed = THREADS * (per_thread // 2)
    assert log.kinds().count("chat_model_start") == calls
    assert log.kinds().count("llm_end") == calls
    assert log.kinds().count("llm_new_token") == 2 * streamed
    assert len(log) == 2 * calls + 2 * streamed
    # One total order: sequence numbers 0, 1, 2, ... and clock times never going back.
    assert [ev.seq for ev in log] == list(range(len(log)))
    assert all(a.time <= b.time for a, b in itertools.pairwise(log))
    assert_well_formed(log)
    # Each thread's runs are recorded in the order that thread made them.
    for k in range(THREADS):
        ends = [ev for ev in log.filter(kind="llm_end", tag=f"worker-{k}")]
        assert [ev.thread for ev in ends] == [f"worker-{k}"] * per_thread
        assert [ev.output_text for ev in ends] == [text for _, text in replies[k]]


def test_the_recorder_alone_keeps_every_event_in_one_order():
    per_thread = 5000
    rec = Recorder()
    runs = [uuid.uuid4() for _ in range(THREADS)]

    def work(k: int) -> None:
        for j in range(per_thread):
            rec.on_llm_new_token(str(j), run_id=runs[k])

    run_threads(work)
    log = rec.events
    assert len(log) == len(rec) == THREADS * per_thread
    assert [ev.seq for ev in log] == list(range(THREADS * per_thread))
    for k in range(THREADS):
        mine = [ev for ev in log if ev.run_id == runs[k]]
        assert [ev.token for ev in mine] == [str(j) for j in range(per_thread)]
        assert {ev.thread for ev in mine} == {f"worker-{k}"}
