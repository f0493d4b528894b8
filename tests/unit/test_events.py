"""EventLog queries on hand-built logs (no LangChain)."""

import json
from uuid import UUID

import pytest

from fakellm._events import KINDS, Event, EventLog

SEQ = UUID(int=1)
MODEL = UUID(int=2)
PARSER = UUID(int=3)
OTHER = UUID(int=4)


def ev(seq, kind, run, parent=None, name=None, type_=None, **payload):
    payload.setdefault("time", seq * 0.5)
    payload.setdefault("virtual", True)
    return Event(seq, kind, run, parent, name, type_, payload.pop("tags", ()), {}, **payload)


def chain_log():
    """seq( model streams 'a ', 'b' with usage ; parser ) and a failing other run."""
    usage = {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    return EventLog(
        [
            ev(
                0,
                "chain_start",
                SEQ,
                None,
                "RunnableSequence",
                "chain",
                inputs={"q": "hi"},
            ),
            ev(
                1,
                "chat_model_start",
                MODEL,
                SEQ,
                "FakeChatModel",
                "chat_model",
                tags=("seq:step:1",),
                inputs=[["hi"]],
            ),
            ev(
                2,
                "llm_new_token",
                MODEL,
                SEQ,
                "FakeChatModel",
                "chat_model",
                token="a ",
            ),
            ev(3, "llm_new_token", MODEL, SEQ, "FakeChatModel", "chat_model", token="b"),
            ev(
                4,
                "llm_end",
                MODEL,
                SEQ,
                "FakeChatModel",
                "chat_model",
                output_text="a b",
                usage=usage,
                model_name="gpt-4o-mini",
                outputs="RESULT",
            ),
            ev(
                5,
                "chain_start",
                PARSER,
                SEQ,
                "StrOutputParser",
                "parser",
                tags=("seq:step:2",),
            ),
            ev(
                6,
                "chain_end",
                PARSER,
                SEQ,
                "StrOutputParser",
                "parser",
                outputs="a b",
                tags=("seq:step:2",),
            ),
            ev(7, "chain_end", SEQ, None, "RunnableSequence", "chain", outputs="a b"),
            ev(8, "llm_start", OTHER, None, "FakeLLM", "llm", inputs=["p"]),
            ev(9, "llm_error", OTHER, None, "FakeLLM", "llm", error=ValueError("boom")),
        ]
    )


def test_kinds_filter_and_shorts():
    log = chain_log()
    assert log.kinds()[:3] == ["chain_start", "chat_model_start", "llm_new_token"]
    assert log.filter(kind="llm_new_token").shorts() == [
        "llm_new_token:FakeChatModel",
        "llm_new_token:FakeChatModel",
    ]
    assert [e.seq for e in log.filter(kind={"chain_end", "llm_end"})] == [4, 6, 7]
    assert [e.seq for e in log.filter(run=PARSER)] == [5, 6]
    assert [e.seq for e in log.filter(run="RunnableSequence")] == [0, 7]
    assert [e.seq for e in log.filter(run=SEQ, subtree=True)] == list(range(8))
    assert [e.seq for e in log.filter(name="FakeLLM")] == [8, 9]
    assert [e.seq for e in log.filter(tag="seq:step:2")] == [5, 6]
    assert isinstance(log[1:3], EventLog)
    assert log[1:3].kinds() == ["chat_model_start", "llm_new_token"]


def test_run_tree():
    log = chain_log()
    assert [str(r) for r in log.runs()] == [
        "r1 RunnableSequence",
        "r2 FakeChatModel",
        "r3 StrOutputParser",
        "r4 FakeLLM",
    ]
    assert [str(r) for r in log.roots()] == ["r1 RunnableSequence", "r4 FakeLLM"]
    assert [r.label for r in log.children(SEQ)] == ["r2", "r3"]
    assert log.parent(MODEL).id == SEQ
    assert log.parent(SEQ) is None
    model = log.run("FakeChatModel")
    assert (model.start, model.end, model.status, model.type) == (
        1,
        4,
        "ok",
        "chat_model",
    )
    assert log.run("r4").status == "error"
    assert log.tree() == (
        "r1 RunnableSequence [chain] ok\n"
        "  r2 FakeChatModel [chat_model] ok\n"
        "  r3 StrOutputParser [parser] ok\n"
        "r4 FakeLLM [llm] error"
    )


def test_run_refs_resolve_and_reject():
    log = chain_log()
    assert log.run(log[2]).id == MODEL
    assert log.run(log.run(MODEL)).id == MODEL
    with pytest.raises(
        ValueError,
        match=r"run='Nope' matches no run name or label; "
        r"runs: r1 RunnableSequence, r2 FakeChat",
    ):
        log.run("Nope")
    with pytest.raises(ValueError, match=r"is not a run in this log"):
        log.run(UUID(int=99))
    with pytest.raises(TypeError, match=r"run=3 is not a run reference; accepted"):
        log.run(3)
    twice = EventLog([ev(0, "llm_start", MODEL, name="M"), ev(1, "llm_start", OTHER, name="M")])
    with pytest.raises(
        ValueError,
        match=r"run='M' is ambiguous: 2 runs have that "
        r"name \(r1, r2\)",
    ):
        twice.run("M")


def test_payload_queries():
    log = chain_log()
    assert log.tokens("FakeChatModel") == ["a ", "b"]
    assert log.text("FakeChatModel") == "a b"
    assert log.output("FakeChatModel") == "RESULT"
    assert log.output_text("FakeChatModel") == "a b"
    assert log.output_text(SEQ) == "a b"
    assert log.output("FakeLLM") is None
    assert str(log.error("FakeLLM")) == "boom"
    assert log.errors().shorts() == ["llm_error:FakeLLM"]


def test_usage():
    log = chain_log()
    one = {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    assert log.usage() == one
    assert log.usage(SEQ) == one
    assert log.usage(PARSER) == {
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
    }
    assert log.usage(model="gpt-4o-mini") == one
    assert log.usage(model="other")["total_tokens"] == 0
    assert log.usage_by_model() == {"gpt-4o-mini": one}
    assert log.usage_by_run() == {MODEL: one}
    # Like get_usage_metadata_callback: no model name, not counted per model.
    nameless = EventLog([ev(0, "llm_end", MODEL, usage=one)])
    assert nameless.usage_by_model() == {}
    assert nameless.usage() == one


def test_normalized_is_plain_and_labels_runs():
    log = chain_log()
    rows = log.normalized()
    assert json.loads(json.dumps(rows)) == rows
    assert rows[1] == {
        "kind": "chat_model_start",
        "run": "r2",
        "parent": "r1",
        "name": "FakeChatModel",
        "type": "chat_model",
        "tags": ["seq:step:1"],
        "time": 0.5,
        "inputs": [["hi"]],
    }
    assert rows[4]["usage"] == {
        "input_tokens": 3,
        "output_tokens": 2,
        "total_tokens": 5,
    }
    assert rows[9]["error"] == "ValueError: boom"
    # A UUID inside a payload string (message ids) becomes the run's label.
    tagged = EventLog([ev(0, "llm_start", MODEL, inputs=f"lc_run--{MODEL}")])
    assert tagged.normalized()[0]["inputs"] == "lc_run--r1"


def test_normalized_times_only_when_virtual():
    real = EventLog(
        [
            ev(0, "llm_start", MODEL, virtual=False, time=100.0),
            ev(1, "llm_end", MODEL, virtual=False, time=100.25),
        ]
    )
    assert "time" not in real.normalized()[0]
    assert [r["time"] for r in real.normalized(times=True)] == [0.0, 0.25]


def test_bad_arguments():
    with pytest.raises(TypeError, match=r"events\[0\]='x' is not an Event"):
        EventLog(["x"])
    with pytest.raises(
        ValueError,
        match=r"kind='llm_token': unknown kind\(s\) "
        r"\['llm_token'\]; accepted: chain_start",
    ):
        chain_log().filter(kind="llm_token")
    with pytest.raises(TypeError, match=r"name=3 must be a run name"):
        chain_log().filter(name=3)


def test_kinds_cover_every_callback_name():
    assert len(KINDS) == 20
    assert "stream_event" in KINDS
    assert "custom_event" in KINDS


# -- graphs and lossless payloads (stand-ins named like LangGraph's classes) -----------

import dataclasses  # noqa: E402
from typing import Any, NamedTuple  # noqa: E402


class GraphInterrupt(Exception):  # matched by class name, like langgraph.errors'
    pass


class NodeInterrupt(GraphInterrupt):
    pass


@dataclasses.dataclass
class Interrupt:
    value: Any
    id: str = ""


@dataclasses.dataclass
class Command:
    graph: str | None = None
    update: Any = None
    resume: Any = None
    goto: Any = ()


class Send:
    __slots__ = ("arg", "node")

    def __init__(self, node, arg):
        self.node, self.arg = node, arg


class Point(NamedTuple):
    x: int
    y: int


def test_interrupts_are_a_pause_not_an_error():
    pause = GraphInterrupt([Interrupt({"approve": 1}, id="9f86d081884c7d65")])
    log = EventLog(
        [
            ev(0, "chain_start", SEQ, None, "LangGraph", "chain"),
            ev(1, "chain_start", MODEL, SEQ, "review", "chain"),
            ev(2, "chain_error", MODEL, SEQ, "review", "chain", error=pause),
            ev(3, "chain_error", SEQ, None, "LangGraph", "chain", error=NodeInterrupt("x")),
            ev(4, "chain_start", OTHER, None, "LangGraph", "chain", inputs=Command(resume="yes")),
            ev(5, "chain_error", OTHER, None, "LangGraph", "chain", error=ValueError("boom")),
        ]
    )
    assert [r.status for r in log.runs()] == ["interrupted", "interrupted", "error"]
    assert [e.seq for e in log.errors()] == [5]
    assert [e.seq for e in log.interrupts()] == [2, 3]
    rows = log.normalized(times=False)
    assert rows[2]["interrupt"] == [{"$type": "Interrupt", "value": {"approve": 1}}]
    assert rows[3]["interrupt"] == ["x"]
    assert rows[4]["inputs"] == {"$type": "Command", "resume": "yes"}
    assert rows[5]["error"] == "ValueError: boom"
    assert log.timeline(view="list").splitlines()[3:6] == [
        "     2    +1.000    r2 review: interrupt",
        "     3    +1.500  r1 LangGraph: interrupt",
        "     4    +2.000  r3 LangGraph: resume 'yes'",
    ]


def test_payloads_stay_plain_data_without_ids():
    outputs = {
        "goto": Command(goto=[Send("quote", {"city": "Rome"})], update={"n": 1}),
        "colours": {"red", "blue", "green"},
        "frozen": frozenset({3, 1, 2}),
        "point": Point(1, 2),
        "call": {"name": "book", "args": {"n": 2}, "id": "call_x9", "type": "tool_call"},
        "bad": {"name": "book", "args": "{", "id": "c", "error": "bad JSON", "type": "tool_call"},
    }
    log = EventLog([ev(0, "chain_end", SEQ, None, "graph", "chain", outputs=outputs)])
    row = log.normalized()[0]["outputs"]
    assert row == {
        "goto": {
            "$type": "Command",
            "update": {"n": 1},
            "goto": [{"$type": "Send", "node": "quote", "arg": {"city": "Rome"}}],
        },
        "colours": ["blue", "green", "red"],
        "frozen": [1, 2, 3],
        "point": {"$type": "Point", "x": 1, "y": 2},
        "call": {"name": "book", "args": {"n": 2}},
        "bad": {"name": "book", "args": "{", "error": "bad JSON"},
    }
    json.dumps(row)  # serialisable as it is


def test_node_views_read_langgraph_metadata():
    def meta(node, ns, step):
        return {"langgraph_node": node, "langgraph_checkpoint_ns": ns, "langgraph_step": step}

    agent, sub = meta("agent", "agent:1a", 1), meta("sub", "sub:2b", 2)
    inner = meta("inner", "sub:2b|inner:3c", 1)
    nine, ten = UUID(int=9), UUID(int=10)
    events = [
        Event(0, "chain_start", SEQ, None, "LangGraph", "chain", (), {}),
        Event(1, "chain_start", MODEL, SEQ, "agent", "chain", (), agent),
        Event(2, "chain_start", PARSER, MODEL, "agent", "chain", (), agent),
        Event(3, "chat_model_start", OTHER, PARSER, "M", "chat_model", (), agent),
        Event(4, "chain_start", nine, SEQ, "sub", "chain", (), sub),
        Event(5, "chain_start", ten, nine, "inner", "chain", (), inner),
    ]
    log = EventLog(events)
    assert log.nodes() == ["agent", "sub", "sub/inner"]
    assert log.node_steps() == [(1, "agent"), (2, "sub"), (1, "sub/inner")]
    assert [r.label for r in log.node_runs("inner")] == ["r6"]
    assert log.node_of(OTHER) == "agent"
    assert [r.label for r in log.model_runs(node="agent")] == ["r4"]
    assert log.model_runs(node="sub") == []
    with pytest.raises(TypeError, match=r"node=3 must be a node name"):
        log.node_runs(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"messages\(\) takes a chat model or LLM run"):
        log.messages(SEQ)
