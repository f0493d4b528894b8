"""Faults: each is recorded as what it is, the model moves on to its next turn,
and nothing (task, timer, thread) is left behind."""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing, closing
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from fakellm import FakeChatModel, Recorder, Turn, errors, run_scenario, virtual_time
from fakellm._events import EventLog

pytestmark = pytest.mark.usefixtures("no_thread_left")


def trace(log: EventLog) -> list[str]:
    """``kind run [payload] @time`` per event: what a fault must look like."""
    out = []
    for ev in log.normalized():
        detail = ev.get("token") if ev["kind"] == "llm_new_token" else ev.get("error")
        text = f"{ev['kind']} {ev['run']}" + (f" {detail!r}" if detail is not None else "")
        out.append(text + (f" @{ev['time']:g}" if "time" in ev else ""))
    return out


async def nothing_left_behind() -> None:
    """Called last inside a scenario task: no other task, no timer, no executor job."""
    for _ in range(3):
        await asyncio.sleep(0)
    loop: Any = asyncio.get_running_loop()
    assert (loop.pending_timers, loop.pending_jobs) == (0, 0)
    assert sorted(t.get_name() for t in asyncio.all_tasks()) == ["run_scenario", "scenario-0"]


def abc_then_next(**turn: Any) -> FakeChatModel:
    return FakeChatModel(script=[Turn("a b c", **turn), "next"])


def assert_moved_on(model: FakeChatModel) -> None:
    """The faulty call used turn 0, the following call got turn 1, nothing is left."""
    assert [c.turn for c in model.calls] == list(model.script.turns)
    assert model.unused_turns == []


# -- a consumer that stops reading ---------------------------------------------------------


@virtual_time()
def test_sync_consumer_stops_reading_half_way():
    model, rec = abc_then_next(delay=1.0), Recorder()
    cfg: Any = {"callbacks": [rec]}
    with closing(model.stream("hi", config=cfg)) as stream:
        assert [next(stream).text, next(stream).text] == ["a ", "b "]
    assert model.invoke("again", config=cfg).text == "next"
    assert trace(rec.events) == [
        "chat_model_start r1 @0",
        "llm_new_token r1 'a ' @0",
        "llm_new_token r1 'b ' @1",
        "llm_error r1 'GeneratorExit' @1",
        "chat_model_start r2 @1",
        "llm_end r2 @1",
    ]
    assert_moved_on(model)


@pytest.mark.parametrize("close", ["aclosing", "dropped"])
def test_async_consumer_stops_reading_half_way(close):
    model, rec = abc_then_next(delay=1.0), Recorder()
    cfg: Any = {"callbacks": [rec]}

    async def app() -> str:
        got = []
        if close == "aclosing":
            async with aclosing(model.astream("hi", config=cfg)) as stream:
                async for chunk in stream:
                    got.append(chunk.text)
                    if len(got) == 2:
                        break
        else:
            # Dropped without aclose(): Python finalizes the generator in a task.
            async for chunk in model.astream("hi", config=cfg):
                got.append(chunk.text)
                if len(got) == 2:
                    break
            await asyncio.sleep(0)
        assert got == ["a ", "b "]
        reply = await model.ainvoke("again", config=cfg)
        await nothing_left_behind()
        return reply.text

    assert run_scenario(app).results == ("next",)
    closed = ["llm_error r1 'GeneratorExit' @1"]
    assert trace(rec.events) == [
        "chat_model_start r1 @0",
        "llm_new_token r1 'a ' @0",
        "llm_new_token r1 'b ' @1",
        *(closed if close == "aclosing" else []),
        "chat_model_start r2 @1",
        # A dropped stream ends when its finalizer task runs: later, but still ends.
        *(closed if close == "dropped" else []),
        "llm_end r2 @1",
    ]
    assert_moved_on(model)


# -- cancellation and timeouts -------------------------------------------------------------


def test_task_cancelled_mid_stream():
    model, rec = abc_then_next(delay=1.0), Recorder()
    cfg: Any = {"callbacks": [rec]}

    async def app() -> str:
        async def consume() -> list[str]:
            return [c.text async for c in model.astream("hi", config=cfg)]

        task = asyncio.create_task(consume(), name="consumer")
        await asyncio.sleep(1.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        reply = await model.ainvoke("again", config=cfg)
        await nothing_left_behind()
        return reply.text

    result = run_scenario(app)
    assert (result.results, result.elapsed) == (("next",), 1.5)
    assert trace(rec.events) == [
        "chat_model_start r1 @0",
        "llm_new_token r1 'a ' @0",
        "llm_new_token r1 'b ' @1",
        "llm_error r1 'CancelledError' @1.5",
        "chat_model_start r2 @1.5",
        "llm_end r2 @1.5",
    ]
    assert_moved_on(model)


@pytest.mark.parametrize("how", ["wait_for ainvoke", "timeout ainvoke", "timeout astream"])
def test_timeout_around_a_call(how):
    model, rec = abc_then_next(first_token_delay=2.0, delay=1.0), Recorder()
    cfg: Any = {"callbacks": [rec]}

    async def app() -> str:
        with pytest.raises(TimeoutError):
            if how == "wait_for ainvoke":
                await asyncio.wait_for(model.ainvoke("hi", config=cfg), 2.5)
            elif how == "timeout ainvoke":
                async with asyncio.timeout(2.5):
                    await model.ainvoke("hi", config=cfg)
            else:
                async with asyncio.timeout(2.5):
                    async for _ in model.astream("hi", config=cfg):
                        pass
        reply = await model.ainvoke("again", config=cfg)
        await nothing_left_behind()
        return reply.text

    assert run_scenario(app).results == ("next",)
    # ainvoke waits for the whole reply (4 s); astream has the first token at 2 s.
    tokens = ["llm_new_token r1 'a ' @2"] if how == "timeout astream" else []
    assert trace(rec.events) == [
        "chat_model_start r1 @0",
        *tokens,
        "llm_error r1 'CancelledError' @2.5",
        "chat_model_start r2 @2.5",
        "llm_end r2 @2.5",
    ]
    assert_moved_on(model)


# -- errors raised by a user's callback handler ------------------------------------------------


class Faulty(BaseCallbackHandler):
    """An inline handler that raises in one callback."""

    run_inline = True

    def __init__(self, where: str, raise_error: bool) -> None:
        self.where, self.raise_error = where, raise_error

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        if self.where == "start":
            raise ValueError("handler failed at start")

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        if self.where == "token" and token == "b ":
            raise ValueError("handler failed at a token")

    def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        if self.where == "end":
            raise ValueError("handler failed at end")


def _play(model: FakeChatModel, mode: str, cfg: Any) -> str:
    if mode == "stream":
        return "".join(c.text for c in model.stream("hi", config=cfg))
    if mode == "invoke":
        return model.invoke("hi", config=cfg).text

    async def play() -> str:
        if mode == "astream":
            return "".join([c.text async for c in model.astream("hi", config=cfg)])
        return (await model.ainvoke("hi", config=cfg)).text

    return run_scenario(play).results[0]


STREAMED = ["chat_model_start r1", "llm_new_token r1 'a '", "llm_new_token r1 'b '"]
FULL_STREAM = [*STREAMED, "llm_new_token r1 'c'", "llm_end r1"]
FULL_INVOKE = ["chat_model_start r1", "llm_end r1"]


@pytest.mark.parametrize("mode", ["stream", "astream", "invoke", "ainvoke"])
@pytest.mark.parametrize("where", ["start", "token", "end"])
def test_a_handler_error_without_raise_error_is_logged_and_the_run_goes_on(mode, where, caplog):
    model, rec = abc_then_next(), Recorder()
    with caplog.at_level(logging.WARNING):
        assert _play(model, mode, {"callbacks": [rec, Faulty(where, raise_error=False)]}) == "a b c"
    streamed = mode.endswith("stream")
    assert [t.replace(" @0", "") for t in trace(rec.events)] == (
        FULL_STREAM if streamed else FULL_INVOKE
    )
    fired = where != "token" or streamed  # invoke fires no token callbacks
    callback = {"start": "chat_model_start", "token": "llm_new_token", "end": "llm_end"}[where]
    what = "a token" if where == "token" else where
    logged = [r.getMessage() for r in caplog.records if "Faulty" in r.getMessage()]
    expected = f"Error in Faulty.on_{callback} callback: ValueError('handler failed at {what}')"
    assert logged == ([expected] if fired else [])
    assert model.invoke("again").text == "next"
    assert_moved_on(model)


@pytest.mark.parametrize("mode", ["stream", "astream", "invoke", "ainvoke"])
@pytest.mark.parametrize("where", ["start", "token", "end"])
def test_a_handler_error_with_raise_error_fails_the_call_and_is_recorded(mode, where):
    model, rec = abc_then_next(), Recorder()
    streamed = mode.endswith("stream")
    cfg = {"callbacks": [rec, Faulty(where, raise_error=True)]}
    if where == "token" and not streamed:
        assert _play(model, mode, cfg) == "a b c"  # no token callbacks: nothing fails
        expected = FULL_INVOKE
    else:
        with pytest.raises(ValueError, match="handler failed at"):
            _play(model, mode, cfg)
        expected = {
            # The run is refused before the model is called: its turn stays queued.
            "start": ["chat_model_start r1"],
            # The failing token callback fails the run, recorded as its error.
            "token": [*STREAMED, "llm_error r1 'ValueError: handler failed at a token'"],
            # Every other handler has seen the end already.
            "end": FULL_STREAM if streamed else FULL_INVOKE,
        }[where]
    assert [t.replace(" @0", "") for t in trace(rec.events)] == expected
    if where == "start":
        assert model.call_count == 0
        assert model.invoke("again").text == "a b c"
        assert model.invoke("again").text == "next"
    else:
        assert model.invoke("again").text == "next"
    assert_moved_on(model)


# -- a scripted error at every position of a turn -----------------------------------------------


@pytest.mark.parametrize("mode", ["stream", "astream", "invoke", "ainvoke"])
@pytest.mark.parametrize("at", [0, 1, 2, 3, "end"])
def test_an_error_at_every_position_of_a_turn(mode, at):
    model = FakeChatModel(
        script=[
            Turn("a b c", error=errors.ServerError(), at_chunk=at, first_token_delay=1, delay=1),
            Turn("next", first_token_delay=1),
        ]
    )
    rec = Recorder()
    cfg: Any = {"callbacks": [rec]}
    k = 3 if at == "end" else at
    streamed = mode.endswith("stream")

    async def app() -> tuple[list[str], str]:
        got: list[str] = []
        with pytest.raises(errors.ServerError):
            if mode == "astream":
                async for chunk in model.astream("hi", config=cfg):
                    got.append(chunk.text)
            else:
                await model.ainvoke("hi", config=cfg)
        reply = await model.ainvoke("again", config=cfg)
        await nothing_left_behind()
        return got, reply.text

    if mode.startswith("a"):
        result = run_scenario(app)
        got, reply = result.results[0]
        # Chunk j arrives at j+1 s; the error strikes when chunk k would (3 s at most).
        assert result.elapsed == min(k + 1, 3) + 1
    else:
        got = []
        with virtual_time() as vt:  # sync delays spent on a virtual clock, not slept
            with pytest.raises(errors.ServerError):
                if mode == "stream":
                    got.extend(c.text for c in model.stream("hi", config=cfg))
                else:
                    model.invoke("hi", config=cfg)
            reply = model.invoke("again", config=cfg).text
        assert vt.elapsed == min(k + 1, 3) + 1
    tokens = ["a ", "b ", "c"][:k] if streamed else []
    assert (got, reply) == (tokens, "next")
    assert [t.split(" @")[0] for t in trace(rec.events)] == [
        "chat_model_start r1",
        *(f"llm_new_token r1 {t!r}" for t in tokens),
        "llm_error r1 'ServerError: internal server error (scripted by fakellm)'",
        "chat_model_start r2",
        "llm_end r2",
    ]
    assert_moved_on(model)
