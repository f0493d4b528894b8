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


def test_after_clear_a_token_of_an_earlier_run_has_no_name() -> None:
    rec = _started()
    assert _token(rec, RUN).run_name == "Model"
    rec.clear()
    event = _token(rec, RUN)
    assert (event.seq, event.run_name, event.run_type) == (2, None, None)


def test_a_token_without_extra_arguments_has_empty_extra() -> None:
    assert _token(_started(), RUN).extra == {}
