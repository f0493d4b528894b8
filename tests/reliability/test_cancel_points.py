"""A cancellation at each exact point of a model run's life ends the run once.

tests/reliability/test_cancel.py sweeps cancellation over loop turns; here each
point where a run's report changes hands is hit on purpose, by cancelling the
call from inside it: the start event's dispatch, a rate limiter, the model's own
code (then core reports), the moment the model's work is done but core has not
yet gathered the end event, the moment core gathered it but its task never ran,
and the end event's dispatch itself (then the run has ended: nothing more). Also
the paths that keep the inline run watch (an agenerate of several prompts,
FakeLLM's agenerate), the astream that falls back to ainvoke when streaming is
off, and FakeLLM's astream, whose run core starts before its try block.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, AsyncCallbackManager
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.outputs import ChatGenerationChunk, GenerationChunk
from langchain_core.rate_limiters import BaseRateLimiter
from langchain_core.runnables import RunnableConfig
from langchain_core.utils.uuid import uuid7

from fakellm import FakeChatModel, FakeLLM, Recorder, Rule, Script, Turn
from fakellm.assertions import assert_well_formed

START_ERROR = [("chat_model_start", None), ("llm_error", "CancelledError")]
START_END = [("chat_model_start", None), ("llm_end", None)]
LLM_START_ERROR = [("llm_start", None), ("llm_error", "CancelledError")]


def trace(recorder: Recorder) -> list[tuple[str, str | None]]:
    return [
        (e.kind, None if e.error is None else type(e.error).__name__)
        for e in recorder.events
        if e.kind != "llm_new_token"
    ]


def cancelled(make: Callable[[Callable[[], None]], Awaitable[Any]]) -> None:
    """Run ``make(cancel)`` as a task; ``cancel()`` cancels that task from anywhere.

    Checks that asyncio logged nothing and the call ended cancelled.
    """
    logged: list[str] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: logged.append(str(context["message"])))
        holder: list[asyncio.Task[Any]] = []
        task = asyncio.create_task(make(lambda: holder[0].cancel()))
        holder.append(task)
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(20):  # let shielded reports finish
            await asyncio.sleep(0)

    asyncio.run(main())
    assert logged == []


class CancelsIn(AsyncCallbackHandler):
    """An async handler (core gathers it) that cancels the call inside ``where``."""

    def __init__(self, where: str, cancel: Callable[[], None]) -> None:
        self.where = where
        self.cancel = cancel

    async def _at(self, where: str) -> None:
        if where == self.where:
            self.cancel()
        await asyncio.sleep(0)

    async def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        await self._at("start")

    async def on_llm_start(self, *args: Any, **kwargs: Any) -> None:
        await self._at("start")

    async def on_llm_end(self, *args: Any, **kwargs: Any) -> None:
        await self._at("end")

    async def on_llm_error(self, *args: Any, **kwargs: Any) -> None:
        await self._at("error")


def responder(action: Callable[[], None]) -> Script:
    """A script whose answer runs ``action`` inside the model's own code first."""

    def answer(call: Any) -> str:
        action()
        return "a b c"

    return Script(rules=[Rule(responder=answer)])


def suspending_responder(action: Callable[[], None]) -> Script:
    """A script whose async answer runs ``action`` and then gives the loop a turn
    (so a cancellation lands inside the model's own code)."""

    async def answer(call: Any) -> str:
        action()
        await asyncio.sleep(0)
        return "a b c"

    return Script(rules=[Rule(responder=answer)])


async def ainvoke(model: Any, callbacks: list[Any]) -> None:
    await model.ainvoke("x", config={"callbacks": callbacks})


async def astream(model: Any, callbacks: list[Any]) -> None:
    async for _ in model.astream("x", config={"callbacks": callbacks}):
        pass


CALLS = {"ainvoke": ainvoke, "astream": astream}


# -- before the model's code runs: the run is fakellm's to close ---------------------------------


@pytest.mark.parametrize("path", CALLS)
def test_cancelled_while_an_async_handler_takes_the_start_event(path: str) -> None:
    recorder = Recorder()
    model = FakeChatModel(script=["a b c"], allow_unused=True)
    cancelled(lambda cancel: CALLS[path](model, [recorder, CancelsIn("start", cancel)]))
    assert trace(recorder) == START_ERROR
    assert_well_formed(recorder.events)
    assert model.calls == []  # the model's code never ran: only fakellm could end the run


class CancellingLimiter(BaseRateLimiter):
    """A rate limiter that cancels the call while it makes the call wait."""

    def __init__(self) -> None:
        self.cancel: Callable[[], None] = lambda: None

    def acquire(self, *, blocking: bool = True) -> bool:
        return True

    async def aacquire(self, *, blocking: bool = True) -> bool:
        self.cancel()
        await asyncio.sleep(0)
        return True


@pytest.mark.parametrize("path", CALLS)
def test_cancelled_while_a_rate_limiter_makes_the_call_wait(path: str) -> None:
    recorder = Recorder()
    limiter = CancellingLimiter()
    model = FakeChatModel(script=["a b c"], allow_unused=True, rate_limiter=limiter)

    def make(cancel: Callable[[], None]) -> Awaitable[None]:
        limiter.cancel = cancel
        return CALLS[path](model, [recorder])

    cancelled(make)
    assert trace(recorder) == START_ERROR
    assert model.calls == []


# -- inside the model's code: core reports the run -----------------------------------------------


# The calls whose one run fakellm closes without a handler: (model class, call,
# the run's start event).
ONE_RUN: dict[str, tuple[Any, Callable[[Any, list[Any]], Awaitable[None]], str]] = {
    "ainvoke": (FakeChatModel, ainvoke, "chat_model_start"),
    "astream": (FakeChatModel, astream, "chat_model_start"),
    "FakeLLM astream": (FakeLLM, astream, "llm_start"),
}


@pytest.mark.parametrize("path", ONE_RUN)
def test_cancelled_inside_the_models_code_is_reported_once(path: str) -> None:
    model_class, call, start_event = ONE_RUN[path]
    recorder = Recorder()
    cancel_now: list[Callable[[], None]] = []
    model = model_class(script=suspending_responder(lambda: cancel_now[0]()))

    def make(cancel: Callable[[], None]) -> Awaitable[None]:
        cancel_now.append(cancel)
        return call(model, [recorder])

    cancelled(make)
    # one error: core's, not fakellm's as well
    assert trace(recorder) == [(start_event, None), ("llm_error", "CancelledError")]
    assert len(model.calls) == 1


# -- after the model's code: core's end report, begun or not -------------------------------------


@pytest.mark.parametrize("later", [False, True], ids=["before the gather", "gathered, not run"])
def test_cancelled_after_the_model_answered_before_core_reports_the_end(later: bool) -> None:
    # The model's task ends. Not later: the cancellation lands before core's
    # agenerate wakes up to gather the end event, and it wakes up cancelled.
    # Later: one loop turn on, core's agenerate wakes up and gathers the end
    # event's task, and the cancellation lands in that same turn after it, so
    # the gathered task is cancelled before its first step and reports nothing.
    recorder = Recorder()
    armed: list[Callable[[], None]] = []

    def when_done() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        task.add_done_callback(lambda _: loop.call_soon(armed[0]) if later else armed[0]())

    model = FakeChatModel(script=responder(when_done))

    def make(cancel: Callable[[], None]) -> Awaitable[None]:
        armed.append(cancel)
        return ainvoke(model, [recorder])

    cancelled(make)
    assert trace(recorder) == START_ERROR
    assert len(model.calls) == 1


@pytest.mark.parametrize("path", ONE_RUN)
def test_cancelled_while_an_async_handler_takes_the_end_event_ends_the_run_once(path: str) -> None:
    # The end event's report began (the Recorder, inline, has it): the run has
    # ended, and a cancellation there adds no error to it.
    model_class, call, start_event = ONE_RUN[path]
    recorder = Recorder()
    model = model_class(script=["a b c"])
    cancelled(lambda cancel: call(model, [recorder, CancelsIn("end", cancel)]))
    assert trace(recorder) == [(start_event, None), ("llm_end", None)]


# -- no handler of fakellm's on the common paths -------------------------------------------------


@pytest.mark.parametrize("path", ONE_RUN)
def test_the_run_has_only_the_callers_handlers(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model_class, call, start_event = ONE_RUN[path]
    seen: list[list[Any]] = []
    start = getattr(AsyncCallbackManager, f"on_{start_event}")

    async def spy(self: AsyncCallbackManager, *args: Any, **kwargs: Any) -> Any:
        seen.append(list(self.handlers))
        return await start(self, *args, **kwargs)

    monkeypatch.setattr(AsyncCallbackManager, f"on_{start_event}", spy)
    recorder = Recorder()
    asyncio.run(call(model_class(script=["a b c"]), [recorder]))
    assert seen == [[recorder]]
    assert trace(recorder) == [(start_event, None), ("llm_end", None)]


# -- the paths that keep the run watch, and astream's fall-back to ainvoke -----------------------


def test_an_agenerate_of_two_prompts_cancelled_after_the_first_answer_ends_both_runs() -> None:
    recorder = Recorder()
    armed: list[Callable[[], None]] = []
    answered: list[int] = []

    def when_done() -> None:
        answered.append(1)
        if len(answered) == 1:
            asyncio.current_task().add_done_callback(lambda _: armed[0]())  # type: ignore[union-attr]

    model = FakeChatModel(script=responder(when_done))

    def make(cancel: Callable[[], None]) -> Awaitable[Any]:
        armed.append(cancel)
        return model.agenerate([[HumanMessage("x")], [HumanMessage("y")]], callbacks=[recorder])

    cancelled(make)
    kinds = trace(recorder)
    assert kinds[:2] == [("chat_model_start", None)] * 2
    assert (
        sorted(kinds[2:]) == [("llm_end", None), ("llm_error", "CancelledError")]
        or sorted(kinds[2:]) == [("llm_error", "CancelledError")] * 2
    )
    assert_well_formed(recorder.events)
    assert {e.run_id for e in recorder.events[2:]} == {e.run_id for e in recorder.events[:2]}


class InlineCancelsIn(CancelsIn):
    """Inline: core gives an LLM's start event to non-inline handlers only when
    the run has no inline handler, and the Recorder is one."""

    run_inline = True


@pytest.mark.parametrize("where", ["start", "end"])
def test_fake_llm_cancelled_in_an_async_handler_ends_its_runs_once(where: str) -> None:
    recorder = Recorder()
    model = FakeLLM(script=[Turn("a b c")] * 2, allow_unused=True)
    cancelled(
        lambda cancel: model.agenerate(
            ["x", "y"], callbacks=[recorder, InlineCancelsIn(where, cancel)]
        )
    )
    assert_well_formed(recorder.events)
    ends = Counter(e.run_id for e in recorder.events if e.kind in ("llm_end", "llm_error"))
    starts = [e.run_id for e in recorder.events if e.kind == "llm_start"]
    assert starts
    assert ends == dict.fromkeys(starts, 1)


@pytest.mark.parametrize("settings", [{"disable_streaming": True}, {"streaming": False}])
@pytest.mark.parametrize("where", ["start", "model"])
def test_an_astream_that_falls_back_to_ainvoke_ends_its_run_once(
    settings: dict[str, Any], where: str
) -> None:
    recorder = Recorder()
    cancel_now: list[Callable[[], None]] = []
    script = (
        suspending_responder(lambda: cancel_now[0]()) if where == "model" else Script(["a b c"])
    )
    model = FakeChatModel(script=script, allow_unused=True, **settings)

    def make(cancel: Callable[[], None]) -> Awaitable[None]:
        cancel_now.append(cancel)
        handlers: list[Any] = [recorder]
        if where == "start":
            handlers.append(CancelsIn("start", cancel))
        return astream(model, handlers)

    cancelled(make)
    assert trace(recorder) == START_ERROR
    assert [c.streaming for c in model.calls] == ([False] if where == "model" else [])


def test_a_cancelled_call_does_not_leak_its_run_into_the_next() -> None:
    # The run a cancelled ainvoke parked is gone once it returns: the next call
    # on the same task records its own run id.
    recorder = Recorder()
    model = FakeChatModel(script=["a b c"] * 2)

    async def main() -> None:
        task = asyncio.create_task(ainvoke(model, [recorder, CancelsIn("start", lambda: None)]))
        await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await ainvoke(model, [recorder])

    asyncio.run(main())
    runs = [e.run_id for e in recorder.events if e.kind == "chat_model_start"]
    assert len(set(runs)) == 2
    assert [c.run_id for c in model.calls] == runs[1:]


# -- FakeLLM's astream: core starts the run before its try block -----------------------------------


class Records(CancelsIn):
    """A handler that records the events it gets and cancels the call inside ``where``."""

    def __init__(self, where: str, cancel: Callable[[], None]) -> None:
        super().__init__(where, cancel)
        self.seen: list[tuple[str, Any, str | None]] = []

    async def on_llm_start(self, *args: Any, run_id: Any, **kwargs: Any) -> None:
        self.seen.append(("llm_start", run_id, None))
        await self._at("start")

    async def on_llm_end(self, *args: Any, run_id: Any, **kwargs: Any) -> None:
        self.seen.append(("llm_end", run_id, None))
        await self._at("end")

    async def on_llm_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> None:
        self.seen.append(("llm_error", run_id, type(error).__name__))
        await self._at("error")


def test_fake_llm_astream_cancelled_while_an_inline_async_handler_takes_the_start_event() -> None:
    recorder = Recorder()
    model = FakeLLM(script=["a b c"], allow_unused=True)
    cancelled(lambda cancel: astream(model, [recorder, InlineCancelsIn("start", cancel)]))
    assert trace(recorder) == LLM_START_ERROR
    assert_well_formed(recorder.events)
    assert recorder.events[0].run_id == recorder.events[1].run_id
    assert model.calls == []


def test_fake_llm_astream_cancelled_in_its_only_handler_at_the_start_event() -> None:
    # No inline handler: core gathers the start event to the async handler.
    # The handler got the start, and gets the run's error once.
    handler: list[Records] = []
    model = FakeLLM(script=["a b c"], allow_unused=True)

    def make(cancel: Callable[[], None]) -> Awaitable[None]:
        handler.append(Records("start", cancel))
        return astream(model, handler)

    cancelled(make)
    run_id = handler[0].seen[0][1]
    assert handler[0].seen == [("llm_start", run_id, None), ("llm_error", run_id, "CancelledError")]
    assert model.calls == []


def test_fake_llm_astream_names_its_run_as_the_caller_asked() -> None:
    recorder = Recorder()
    run_id = uuid7()
    model = FakeLLM(script=["a b c"], allow_unused=True, tags=["m"])

    async def call(cancel: Callable[[], None]) -> None:
        config: RunnableConfig = {
            "callbacks": [recorder, InlineCancelsIn("start", cancel)],
            "run_id": run_id,
            "tags": ["c"],
            "metadata": {"k": 1},
        }
        async for _ in model.astream("x", config=config):
            pass

    cancelled(call)
    assert trace(recorder) == LLM_START_ERROR
    assert [e.run_id for e in recorder.events] == [run_id, run_id]
    assert recorder.events[0].tags == recorder.events[1].tags == ("c", "m")  # as core started it


# -- a subclass's own _astream: core reports the run from its call ------------------------------


@pytest.mark.parametrize("where", ["before", "after"], ids=["before a chunk", "after a chunk"])
@pytest.mark.parametrize("base", [FakeChatModel, FakeLLM], ids=["chat", "FakeLLM"])
def test_a_subclass_with_its_own_astream_cancelled_inside_it_is_reported_once(
    base: Any, where: str
) -> None:
    # A subclass may wait before it hands over to the model's _astream, or stream its
    # own chunks: core calls its _astream inside the block that reports the run, so
    # core reports the cancellation, and fakellm must not report it again.
    recorder = Recorder()
    cancel_now: list[Callable[[], None]] = []
    first = (
        ChatGenerationChunk(message=AIMessageChunk(content="a"))
        if base is FakeChatModel
        else GenerationChunk(text="a")
    )

    class Own(base):  # type: ignore[misc,valid-type]
        async def _astream(self, *args: Any, **kwargs: Any) -> Any:
            if where == "after":
                yield first
            cancel_now[0]()
            await asyncio.sleep(0)
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk

    model = Own(script=["a b c"], allow_unused=True)

    def make(cancel: Callable[[], None]) -> Awaitable[None]:
        cancel_now.append(cancel)
        return astream(model, [recorder])

    cancelled(make)
    start = "chat_model_start" if base is FakeChatModel else "llm_start"
    assert trace(recorder) == [(start, None), ("llm_error", "CancelledError")]
    assert_well_formed(recorder.events)
    assert model.calls == []


def test_the_run_manager_a_subclass_receives_reads_as_core_s() -> None:
    # fakellm notes when core's report of the run begins by giving core's run
    # manager a subclass; code that receives the manager sees core's class name,
    # and an instance of it.
    from langchain_core.callbacks import AsyncCallbackManagerForLLMRun

    seen: list[Any] = []

    class Inspecting(FakeChatModel):
        async def _agenerate(
            self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
        ) -> Any:
            seen.append(run_manager)
            return await super()._agenerate(messages, stop, run_manager, **kwargs)

    model = Inspecting(script=[Turn("hi")])
    assert asyncio.run(model.ainvoke("q")).content == "hi"
    (manager,) = seen
    assert isinstance(manager, AsyncCallbackManagerForLLMRun)
    assert type(manager).__name__ == "AsyncCallbackManagerForLLMRun"
    assert type(manager).__qualname__ == "AsyncCallbackManagerForLLMRun"
