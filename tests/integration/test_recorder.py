"""The Recorder against real langchain-core runs of the fake models."""

import asyncio
import threading
import warnings
from datetime import datetime

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.messages import HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from fakellm._clock import run_scenario, virtual_time
from fakellm._model import FakeChatModel, FakeLLM
from fakellm._recorder import Recorder
from fakellm._script import Turn
from fakellm.errors import APIConnectionError

USAGE = {"input_tokens": 2, "output_tokens": 2, "total_tokens": 4}


def chain(*turns, **kw):
    model = FakeChatModel(script=list(turns), model_name="gpt-4o-mini", **kw)
    prompt = ChatPromptTemplate.from_messages([("human", "{q}")])
    return prompt | model | StrOutputParser(), model


def rows(log, *keys):
    return [
        tuple(r.get(k) for k in ("kind", "run", "parent", "name", *keys)) for r in log.normalized()
    ]


def test_invoke_trace_of_prompt_model_parser_is_exact():
    app, _ = chain("hello world")
    rec = Recorder()
    with virtual_time():
        assert app.invoke({"q": "hi there"}, config={"callbacks": [rec]}) == "hello world"
    h = {"type": "human", "content": "hi there"}
    assert rec.events.normalized() == [
        {
            "kind": "chain_start",
            "run": "r1",
            "parent": None,
            "name": "RunnableSequence",
            "type": "chain",
            "tags": [],
            "time": 0.0,
            "inputs": {"q": "hi there"},
        },
        {
            "kind": "chain_start",
            "run": "r2",
            "parent": "r1",
            "name": "ChatPromptTemplate",
            "type": "prompt",
            "tags": ["seq:step:1"],
            "time": 0.0,
            "inputs": {"q": "hi there"},
        },
        {
            "kind": "chain_end",
            "run": "r2",
            "parent": "r1",
            "name": "ChatPromptTemplate",
            "type": "prompt",
            "tags": ["seq:step:1"],
            "time": 0.0,
            "outputs": {"messages": [h]},
        },
        {
            "kind": "chat_model_start",
            "run": "r3",
            "parent": "r1",
            "name": "FakeChatModel",
            "type": "chat_model",
            "tags": ["seq:step:2"],
            "time": 0.0,
            "inputs": [[h]],
        },
        {
            "kind": "llm_end",
            "run": "r3",
            "parent": "r1",
            "name": "FakeChatModel",
            "type": "chat_model",
            "tags": ["seq:step:2"],
            "time": 0.0,
            "text": "hello world",
            "usage": USAGE,
            "model": "gpt-4o-mini",
        },
        {
            "kind": "chain_start",
            "run": "r4",
            "parent": "r1",
            "name": "StrOutputParser",
            "type": "parser",
            "tags": ["seq:step:3"],
            "time": 0.0,
            "inputs": {"type": "ai", "content": "hello world"},
        },
        {
            "kind": "chain_end",
            "run": "r4",
            "parent": "r1",
            "name": "StrOutputParser",
            "type": "parser",
            "tags": ["seq:step:3"],
            "time": 0.0,
            "outputs": "hello world",
        },
        {
            "kind": "chain_end",
            "run": "r1",
            "parent": None,
            "name": "RunnableSequence",
            "type": "chain",
            "tags": [],
            "time": 0.0,
            "outputs": "hello world",
        },
    ]


def test_stream_trace_with_virtual_delays_is_exact():
    app, _ = chain(Turn("Roses, lilies and sunflowers.", first_token_delay=0.3, delay=0.05))
    rec = Recorder()
    with virtual_time():
        out = list(app.stream({"q": "flowers?"}, config={"callbacks": [rec]}))
    assert out == ["Roses, ", "lilies ", "and ", "sunflowers."]
    assert rows(rec.events, "time", "token", "text") == [
        ("chain_start", "r1", None, "RunnableSequence", 0.0, None, None),
        ("chain_start", "r2", "r1", "ChatPromptTemplate", 0.0, None, None),
        ("chain_end", "r2", "r1", "ChatPromptTemplate", 0.0, None, None),
        ("chat_model_start", "r3", "r1", "FakeChatModel", 0.0, None, None),
        ("llm_new_token", "r3", "r1", "FakeChatModel", 0.3, "Roses, ", None),
        # The parser starts only once the first chunk reaches it (a streaming transform).
        ("chain_start", "r4", "r1", "StrOutputParser", 0.3, None, None),
        ("llm_new_token", "r3", "r1", "FakeChatModel", 0.35, "lilies ", None),
        ("llm_new_token", "r3", "r1", "FakeChatModel", 0.4, "and ", None),
        ("llm_new_token", "r3", "r1", "FakeChatModel", 0.45, "sunflowers.", None),
        (
            "llm_end",
            "r3",
            "r1",
            "FakeChatModel",
            0.45,
            None,
            "Roses, lilies and sunflowers.",
        ),
        ("chain_end", "r4", "r1", "StrOutputParser", 0.45, None, None),
        ("chain_end", "r1", None, "RunnableSequence", 0.45, None, None),
    ]
    log = rec.events
    assert log.text("FakeChatModel") == "Roses, lilies and sunflowers."
    assert log.usage(model="gpt-4o-mini") == {
        "input_tokens": 2,
        "output_tokens": 4,
        "total_tokens": 6,
    }


def test_error_at_chunk_propagates_up_the_run_tree():
    app, _ = chain(Turn("a b c d", error=APIConnectionError("reset"), at_chunk=2))
    rec = Recorder()
    with pytest.raises(APIConnectionError):
        list(app.stream({"q": "x"}, config={"callbacks": [rec]}))
    log = rec.events
    assert [(r[0], r[1], r[-1]) for r in rows(log, "token", "error")] == [
        ("chain_start", "r1", None),
        ("chain_start", "r2", None),
        ("chain_end", "r2", None),
        ("chat_model_start", "r3", None),
        ("llm_new_token", "r3", None),
        ("chain_start", "r4", None),
        ("llm_new_token", "r3", None),
        ("llm_error", "r3", "APIConnectionError: reset"),
        ("chain_error", "r4", "APIConnectionError: reset"),
        ("chain_error", "r1", "APIConnectionError: reset"),
    ]
    assert log.tokens("FakeChatModel") == ["a ", "b "]
    assert [r.status for r in log.runs()] == ["error", "ok", "error", "error"]
    assert log.errors().shorts() == [
        "llm_error:FakeChatModel",
        "chain_error:StrOutputParser",
        "chain_error:RunnableSequence",
    ]


def test_constructor_callbacks_see_only_their_object():
    ctor, req = Recorder(), Recorder()
    app, _ = chain("hello world", callbacks=[ctor])
    app.invoke({"q": "hi"}, config={"callbacks": [req]})
    assert ctor.events.shorts() == [
        "chat_model_start:FakeChatModel",
        "llm_end:FakeChatModel",
    ]
    assert len(req.events) == 8
    # Its parent is a run the constructor recorder never saw start.
    model_run = ctor.events.runs()[0]
    assert model_run.parent_id == req.events.run("RunnableSequence").id
    assert [r.label for r in ctor.events.roots()] == ["r2"]
    # The same handler given both ways is called once per event.
    both = Recorder()
    app2, _ = chain("hello world", callbacks=[both])
    app2.invoke({"q": "hi"}, config={"callbacks": [both]})
    assert len(both.events) == 8


def test_s5_sync_token_printer_and_async_sleepy_handler_interleave_exactly():
    printed = []

    class SyncHandler(BaseCallbackHandler):
        def on_llm_new_token(self, token, **kwargs):
            printed.append(f"token: {token}")

    class AsyncHandler(AsyncCallbackHandler):
        async def on_llm_start(self, serialized, prompts, **kwargs):
            printed.append("fetching...")
            await asyncio.sleep(0.5)
            printed.append("fetched.")

        async def on_llm_end(self, response, **kwargs):
            printed.append("tidying...")
            await asyncio.sleep(0.5)
            printed.append("have a nice day!")

    rec = Recorder()
    model = FakeChatModel(
        script=[Turn("Roses, lilies, tulips.", delay=0.1)],
        streaming=True,
        max_tokens=100,
        callbacks=[SyncHandler(), AsyncHandler(), rec],
    )

    async def main():
        await model.agenerate([[HumanMessage("Which flowers suit a birthday?")]])

    result = run_scenario(main)
    assert printed == [
        "fetching...",
        "fetched.",
        "token: Roses, ",
        "token: lilies, ",
        "token: tulips.",
        "tidying...",
        "have a nice day!",
    ]
    assert result.elapsed == pytest.approx(1.2)
    assert [(r["kind"], r["time"]) for r in rec.events.normalized()] == [
        ("chat_model_start", 0.0),
        ("llm_new_token", 0.5),
        ("llm_new_token", 0.6),
        ("llm_new_token", 0.7),
        ("llm_end", 0.7),
    ]
    # Tokens fire on the scenario's task; core runs start/end callbacks in
    # tasks of its own (asyncio.gather), whose names normalized() drops.
    assert len({ev.task for ev in rec.events.filter(kind="llm_new_token")}) == 1


def three_streams_trace():
    rec = Recorder()
    model = FakeChatModel(
        script=[
            Turn("a b c", first_token_delay=0.1, delay=0.3),
            Turn("d e f", first_token_delay=0.2, delay=0.3),
            Turn("g h i", first_token_delay=0.3, delay=0.3),
        ]
    )

    async def stream(name):
        return "".join(
            [
                c.text
                async for c in model.astream(name, config={"callbacks": [rec], "run_name": name})
            ]
        )

    run_scenario(stream("A"), stream("B"), stream("C"), names=["a", "b", "c"])
    return rec.events


def test_three_concurrent_streams_same_normalized_trace_every_run():
    first = three_streams_trace()
    assert [(e.kind, e.run_name, e.token) for e in first if e.kind == "llm_new_token"] == [
        ("llm_new_token", "A", "a "),
        ("llm_new_token", "B", "d "),
        ("llm_new_token", "C", "g "),
        ("llm_new_token", "A", "b "),
        ("llm_new_token", "B", "e "),
        ("llm_new_token", "C", "h "),
        ("llm_new_token", "A", "c"),
        ("llm_new_token", "B", "f"),
        ("llm_new_token", "C", "i"),
    ]
    assert [ev.task for ev in first.filter(name="B", kind="llm_new_token")] == ["b"] * 3
    expected = first.normalized()
    for _ in range(99):
        assert three_streams_trace().normalized() == expected


def test_sync_batch_over_threads_loses_nothing():
    rec = Recorder()
    model = FakeChatModel(script=[f"reply {i}" for i in range(40)])
    out = model.batch(
        [f"q{i}" for i in range(40)], config={"callbacks": [rec], "max_concurrency": 8}
    )
    assert len(out) == 40
    log = rec.events
    assert [e.seq for e in log] == list(range(len(log)))
    assert len(log.runs()) == 40
    assert sorted(log.kinds()) == sorted(["chat_model_start", "llm_end"] * 40)
    assert all(r.status == "ok" for r in log.runs())
    assert len({ev.thread for ev in log}) > 1


def test_stream_events_v3_records_protocol_events():
    rec = Recorder()
    model = FakeChatModel(script=["hi there"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # v3 is beta and says so
        stream = model.stream_events("q", {"callbacks": [rec]}, version="v3")
    assert stream.output.text == "hi there"
    events = [r["data"]["event"] for r in rec.events.normalized() if r["kind"] == "stream_event"]
    assert events == [
        "message-start",
        "content-block-start",
        "content-block-delta",
        "content-block-delta",
        "content-block-finish",
        "message-finish",
    ]
    assert rec.events.kinds()[0] == "chat_model_start"
    assert rec.events.kinds()[-1] == "llm_end"


def test_completion_llm_usage_and_custom_events_and_wall_time():
    from langchain_core.callbacks.manager import dispatch_custom_event
    from langchain_core.runnables import RunnableLambda

    rec = Recorder()
    llm = FakeLLM(script=["one two three"], model_name="davinci")
    with virtual_time(start="2024-05-01T12:00:00"):
        llm.invoke("count", config={"callbacks": [rec]})

        def step(x):
            dispatch_custom_event("progress", {"pct": 50})
            return x

        RunnableLambda(step).invoke(1, config={"callbacks": [rec]})
    log = rec.events
    assert log.shorts()[:2] == ["llm_start:FakeLLM", "llm_end:FakeLLM"]
    assert log.usage_by_model()["davinci"]["output_tokens"] == 3
    custom = log.filter(kind="custom_event")[0]
    assert (custom.extra["name"], custom.data, custom.run_name) == (
        "progress",
        {"pct": 50},
        "step",
    )
    assert log[0].wall_time == datetime(2024, 5, 1, 12, 0, 0)
    assert log[0].thread == threading.current_thread().name


def test_events_are_immutable_and_recorder_is_shared_on_copy():
    import copy

    rec = Recorder()
    FakeChatModel(script=["x"]).invoke("q", config={"callbacks": [rec]})
    ev = rec.events[0]
    with pytest.raises(AttributeError):
        ev.kind = "other"
    assert copy.deepcopy(rec) is rec
    rec.clear()
    assert len(rec.events) == 0
