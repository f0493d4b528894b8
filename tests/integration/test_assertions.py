"""Each assertion helper passes on a right trace and fails, exactly, on a wrong one."""

import itertools
from uuid import UUID

import pytest

from fakellm import assertions as A
from fakellm._clock import run_scenario, virtual_time
from fakellm._events import Event, EventLog
from fakellm._model import FakeChatModel
from fakellm._recorder import Recorder
from fakellm._script import Turn

STREAM_TIMELINE = (
    "Timeline:\n"
    "     #      time  r1 FakeChatModel\n"
    "     0    +0.000  start\n"
    "     1    +0.000  token 'a '\n"
    "     2    +0.100  token 'b '\n"
    "     3    +0.200  token 'c'\n"
    "     4    +0.200  end"
)


@pytest.fixture
def streamed():
    rec = Recorder()
    with virtual_time():
        list(
            FakeChatModel(script=[Turn("a b c", delay=0.1)]).stream(
                "hi", config={"callbacks": [rec]}
            )
        )
    return rec


def fails(fn, *args, **kwargs):
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_assert_events_exact(streamed):
    A.assert_events(streamed, ["chat_model_start", "llm_new_token+", "llm_end"])
    A.assert_events(
        streamed.events,
        ["chat_model_start:FakeChatModel", "llm_new_token{3}", "llm_end", "chain_end*"],
    )
    assert fails(A.assert_events, streamed, ["chat_model_start", "llm_end"]) == (
        "events do not match (exact).\n"
        "Expected: ['chat_model_start', 'llm_end']\n"
        "Actual: ['chat_model_start:FakeChatModel', 'llm_new_token:FakeChatModel' x3, "
        "'llm_end:FakeChatModel']\n"
        "First unmatched expectation: [1] 'llm_end'\n\n" + STREAM_TIMELINE
    )


def test_assert_events_subsequence_and_run(streamed):
    A.assert_events(streamed, ["chat_model_start", "llm_end"], exact=False)
    A.assert_events(streamed, ["llm_new_token{2}"], exact=False, run="FakeChatModel")
    msg = fails(A.assert_events, streamed, ["llm_end", "chat_model_start"], exact=False)
    assert msg == (
        "events do not match (ordered subsequence).\n"
        "Expected: ['llm_end', 'chat_model_start']\n"
        "Actual: ['chat_model_start:FakeChatModel', 'llm_new_token:FakeChatModel' x3, "
        "'llm_end:FakeChatModel']\n"
        "First unmatched expectation: [1] 'chat_model_start'\n\n" + STREAM_TIMELINE
    )
    assert (
        fails(A.assert_events, streamed, ["chat_model_start:Other"]).splitlines()[3]
        == "First unmatched expectation: [0] 'chat_model_start:Other'"
    )


def test_assert_events_rejects_bad_expectations(streamed):
    with pytest.raises(
        ValueError,
        match=r"expected\[1\]='llm_token\+' is not an "
        r"expectation; accepted: 'kind'",
    ):
        A.assert_events(streamed, ["chat_model_start", "llm_token+"])
    with pytest.raises(TypeError, match=r"expected='llm_end' must be a list"):
        A.assert_events(streamed, "llm_end")
    with pytest.raises(TypeError, match=r"log=42 is not an EventLog"):
        A.assert_events(42, ["llm_end"])


M, P, Q = UUID(int=1), UUID(int=2), UUID(int=3)


def ev(seq, kind, run, parent=None, name="M", **payload):
    return Event(
        seq,
        kind,
        run,
        parent,
        name,
        "chat_model",
        (),
        {},
        time=0.0,
        virtual=True,
        **payload,
    )


def test_assert_well_formed(streamed):
    A.assert_well_formed(streamed)
    bad = EventLog(
        [
            ev(0, "chain_start", P, name="Seq"),
            ev(1, "chat_model_start", M, P),
            ev(2, "llm_new_token", M, P, token="a "),
            ev(3, "chain_end", P, name="Seq"),
            ev(4, "llm_new_token", M, P, token="b"),
            ev(5, "llm_end", M, P, output_text="a c"),
            ev(6, "llm_end", M, P, output_text="a c"),
            ev(7, "llm_new_token", Q, name="L", token="z"),
            ev(8, "llm_start", Q, name="L"),
            ev(9, "llm_end", Q, name="L", output_text="z"),
        ]
    )
    assert fails(A.assert_well_formed, bad) == (
        "Expected: a well-formed trace\n"
        "Actual: 4 problem(s):\n"
        "  - r2 M: finished 2 times (llm_end #5, llm_end #6)\n"
        "  - r2 M: still running after its parent r1 Seq finished\n"
        "  - r2 M: streamed text 'a b' != final text 'a c'\n"
        "  - r3 L: llm_new_token #7 before the run started\n"
        "\nTimeline:\n"
        "     #      time  r2 M            r3 L\n"
        "     1    +0.000  start\n"
        "     2    +0.000  token 'a '\n"
        "     4    +0.000  token 'b'\n"
        "     5    +0.000  end\n"
        "     6    +0.000  end\n"
        "     7    +0.000                  token 'z'\n"
        "     8    +0.000                  start\n"
        "     9    +0.000                  end"
    )


def two_streams(delays_b):
    rec = Recorder()
    model = FakeChatModel(script=[Turn("a b c", delay=0.1), Turn("x y z", **delays_b)])

    async def go(name):
        async for _ in model.astream(name, config={"callbacks": [rec], "run_name": name}):
            pass

    run_scenario(go("A"), go("B"))
    return rec.events


def test_assert_interleaved_and_sequential():
    mixed = two_streams({"delay": 0.1, "first_token_delay": 0.05})
    A.assert_interleaved(mixed, "A", "B")
    assert fails(A.assert_sequential, mixed, "A", "B").splitlines()[:2] == [
        "Expected: r1 A, then r2 B, one after another",
        "Actual: chat_model_start #2 of r2 B came before r1 A finished (#7)",
    ]
    rec = Recorder()
    model = FakeChatModel(script=["one", "two"])
    model.invoke("q", config={"callbacks": [rec], "run_name": "A"})
    model.invoke("q", config={"callbacks": [rec], "run_name": "B"})
    A.assert_sequential(rec, "A", "B")
    assert fails(A.assert_interleaved, rec, "A", "B") == (
        "Expected: r1 A and r2 B interleaved\n"
        "Actual: every event of r1 A came before every event of r2 B "
        "(#0..#1 then #2..#3)\n"
        "\nTimeline:\n" + rec.events.timeline(["A", "B"])
    )
    with pytest.raises(ValueError, match=r"runs=\('A',\): give at least two runs"):
        A.assert_sequential(rec, "A")


def test_assert_usage(streamed):
    A.assert_usage(streamed, input_tokens=1, output_tokens=3, total_tokens=4)
    A.assert_usage(streamed, total_tokens=4, model="fake-chat-model")
    assert fails(A.assert_usage, streamed, output_tokens=4, model="fake-chat-model") == (
        "usage for model 'fake-chat-model' differs.\n"
        "Expected: {'output_tokens': 4}\n"
        "Actual: {'output_tokens': 3}\n"
        "Per model: {'fake-chat-model': {'input_tokens': 1, 'output_tokens': 3, "
        "'total_tokens': 4}}\n\n" + STREAM_TIMELINE
    )
    with pytest.raises(ValueError, match=r"needs at least one of input_tokens="):
        A.assert_usage(streamed)
    with pytest.raises(TypeError, match=r"output_tokens='3' must be an int"):
        A.assert_usage(streamed, output_tokens="3")
    with pytest.raises(ValueError, match=r"total_tokens=-1 must be >= 0"):
        A.assert_usage(streamed, total_tokens=-1)


def test_assert_stream_matches_invoke():
    A.assert_stream_matches_invoke(
        lambda: FakeChatModel(script=["Roses, lilies and sunflowers."]), "flowers?"
    )
    A.assert_stream_matches_invoke(FakeChatModel(script=["hello world"]), "hi")
    replies = itertools.cycle(["hello world", "hello world", "hello there"])
    msg = fails(
        A.assert_stream_matches_invoke,
        lambda: FakeChatModel(script=[next(replies)]),
        "hi",
        modes=["invoke", "stream", "batch"],
    )
    head, _, timelines = msg.partition("\n\nTimelines:\n")
    usage = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    assert head == (
        "the modes disagree with invoke.\n"
        "Expected: invoke: "
        f"{{'text': 'hello world', 'tool_calls': [], 'usage': {usage!r}}}\n"
        "Actual:\n"
        f"  invoke: {{'text': 'hello world', 'tool_calls': [], 'usage': {usage!r}}}\n"
        f"  stream: {{'text': 'hello world', 'tool_calls': [], 'usage': {usage!r}}}\n"
        f"  batch: {{'text': 'hello there', 'tool_calls': [], 'usage': {usage!r}}}"
        " (differs)"
    )
    assert timelines.startswith("[invoke]\n")
    assert "\n\n[batch]\n" in timelines
    with pytest.raises(ValueError, match=r"modes=\['invoke'\]: give at least two of"):
        A.assert_stream_matches_invoke(FakeChatModel(script=["x"]), "hi", modes=["invoke"])
