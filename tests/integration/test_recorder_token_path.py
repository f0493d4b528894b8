"""The Recorder's per-token fast path records exactly what its generic path records.

``on_llm_new_token`` builds its Event itself (it runs once per streamed chunk);
these tests hold it to the event the generic ``_add`` builds for the same
callback, field for field, in each clock context: a sync ``virtual_time()``
scope, a virtual-time event loop inside a named task, and plain real time.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any
from uuid import UUID

from fakellm import Event, Recorder, _clock, run_scenario, virtual_time

RUN, PARENT = UUID(int=1), UUID(int=2)
SAME = ("kind", "run_id", "parent_run_id", "run_name", "run_type", "tags", "metadata", "token")
SAME += ("chunk", "inputs", "outputs", "error", "data", "output_text", "usage", "model_name")
SAME += ("virtual", "task", "thread", "extra")


def _both(rec: Recorder, chunk: Any) -> tuple[Event, Event]:
    """One token through the fast path, the same one through ``_add``."""
    rec.on_llm_new_token("hi", chunk=chunk, run_id=RUN, parent_run_id=PARENT, tags=["t"], x=1)
    rec._add("llm_new_token", RUN, PARENT, ["t"], None, token="hi", chunk=chunk, extra={"x": 1})
    fast, generic = list(rec.events)[-2:]
    return fast, generic


def _started() -> Recorder:
    rec = Recorder()
    rec.on_chat_model_start(
        {}, [[]], run_id=RUN, parent_run_id=PARENT, tags=["t"], metadata={"m": 1}, name="Model"
    )
    return rec


def _assert_same(fast: Event, generic: Event) -> None:
    assert {f: getattr(fast, f) for f in SAME} == {f: getattr(generic, f) for f in SAME}
    assert fast.seq + 1 == generic.seq
    assert fast.time <= generic.time
    assert fast.run_name == "Model"
    assert fast.run_type == "chat_model"


def test_sync_virtual_time_scope() -> None:
    rec, chunk = _started(), object()
    with virtual_time():
        _clock.sleep(2.5)  # what a scripted delay spends
        fast, generic = _both(rec, chunk)
    _assert_same(fast, generic)
    assert (fast.time, fast.virtual, fast.task) == (2.5, True, None)
    assert fast.thread == threading.current_thread().name
    assert fast.chunk is chunk


def test_virtual_time_loop_inside_a_named_task() -> None:
    rec = _started()

    async def play() -> tuple[Event, Event]:
        await asyncio.sleep(3)
        return _both(rec, None)

    result = run_scenario(play, names=["streamer"])
    fast, generic = result.results[0]
    _assert_same(fast, generic)
    assert (fast.time, fast.virtual, fast.task) == (3.0, True, "streamer")


def test_real_time_outside_any_loop() -> None:
    rec = _started()
    fast, generic = _both(rec, None)
    _assert_same(fast, generic)
    assert (fast.virtual, fast.task) == (False, None)


def test_an_unstarted_run_has_no_name() -> None:
    rec = Recorder()
    fast, generic = _both(rec, None)
    assert (fast.run_name, fast.run_type) == (None, None) == (generic.run_name, generic.run_type)


def _token(rec: Recorder, run_id: UUID) -> Event:
    rec.on_llm_new_token("t", run_id=run_id)
    return list(rec.events)[-1]


def test_interleaved_runs_each_keep_their_own_name() -> None:
    rec, other = _started(), UUID(int=3)
    rec.on_llm_start({}, ["p"], run_id=other, name="Other")
    names = [(e.run_name, e.run_type) for e in (_token(rec, RUN), _token(rec, other))]
    names += [(e.run_name, e.run_type) for e in (_token(rec, RUN), _token(rec, other))]
    assert names == [("Model", "chat_model"), ("Other", "llm")] * 2


def test_a_run_started_again_under_the_same_id_names_its_later_tokens() -> None:
    rec = _started()
    assert _token(rec, RUN).run_name == "Model"
    rec.on_chat_model_start({}, [[]], run_id=RUN, name="Renamed")
    assert (_token(rec, RUN).run_name, _token(rec, RUN).run_type) == ("Renamed", "chat_model")


def test_after_clear_a_run_still_in_flight_keeps_its_name() -> None:
    rec = _started()
    assert _token(rec, RUN).run_name == "Model"
    rec.clear()
    event = _token(rec, RUN)
    assert (event.seq, event.run_name, event.run_type) == (2, "Model", "chat_model")
    rec.clear()  # twice: the run is still in flight
    rec.on_llm_end(None, run_id=RUN)  # type: ignore[arg-type]
    assert [(e.seq, e.kind, e.run_name, e.run_type) for e in rec.events] == [
        (3, "llm_end", "Model", "chat_model")
    ]


def test_after_clear_a_run_that_had_ended_is_forgotten() -> None:
    rec = _started()
    rec.on_chat_model_start({}, [[]], run_id=PARENT, name="Other")
    rec.on_llm_end(None, run_id=RUN)  # type: ignore[arg-type]
    rec.on_llm_error(ValueError("x"), run_id=PARENT)
    rec.clear()
    late = [_token(rec, RUN), _token(rec, PARENT)]
    assert [(e.seq, e.run_name, e.run_type) for e in late] == [(4, None, None), (5, None, None)]


def test_a_token_without_extra_arguments_has_empty_extra() -> None:
    assert _token(_started(), RUN).extra == {}


def test_reading_between_tokens_gives_the_same_events_as_reading_once() -> None:
    early, late = _started(), _started()
    early_logs = []
    for i in range(3):
        for rec in (early, late):
            rec.on_llm_new_token(f"t{i}", run_id=RUN, parent_run_id=PARENT, tags=["t"])
        early_logs.append(early.events)
    rec_a, rec_b = list(early.events), list(late.events)
    fields = ("seq", *SAME)
    assert [[getattr(e, f) for f in fields] for e in rec_a] == [
        [getattr(e, f) for f in fields] for e in rec_b
    ]
    assert [(e.seq, e.token) for e in rec_a] == [(0, None), (1, "t0"), (2, "t1"), (3, "t2")]
    assert [len(log) for log in early_logs] == [2, 3, 4]
    assert early_logs[0][1] is rec_a[1]  # built once, then kept


def test_tags_are_the_ones_the_token_came_with() -> None:
    rec, tags = _started(), ["a"]
    rec.on_llm_new_token("x", run_id=RUN, tags=tags)
    tags.append("b")
    rec.on_llm_new_token("y", run_id=RUN, tags=tags)
    assert [e.tags for e in rec.events][1:] == [("a",), ("a", "b")]


def test_seq_keeps_counting_across_clear_and_reads() -> None:
    rec = _started()
    rec.on_llm_new_token("a", run_id=RUN)
    assert [e.seq for e in rec.events] == [0, 1]
    rec.on_llm_new_token("b", run_id=RUN)
    rec.clear()
    rec.on_llm_new_token("c", run_id=RUN)
    rec.on_llm_end(None, run_id=RUN)  # type: ignore[arg-type]
    rec.on_llm_new_token("d", run_id=RUN)
    events = rec.events
    assert [(e.seq, e.kind, e.token) for e in events] == [
        (3, "llm_new_token", "c"),
        (4, "llm_end", None),
        (5, "llm_new_token", "d"),
    ]
    assert len(rec) == 3
    assert repr(rec) == "<Recorder 3 events>"
