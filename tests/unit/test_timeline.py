"""Text timelines (no LangChain)."""

from uuid import UUID

from fakellm._events import Event, EventLog

A, B, P = UUID(int=1), UUID(int=2), UUID(int=3)


def ev(seq, kind, run, name, time, parent=None, **payload):
    return Event(
        seq,
        kind,
        run,
        parent,
        name,
        "chat_model",
        (),
        {},
        time=time,
        virtual=True,
        **payload,
    )


def two_streams():
    return EventLog(
        [
            ev(0, "chat_model_start", A, "M", 0.0),
            ev(1, "chat_model_start", B, "M", 0.0),
            ev(2, "llm_new_token", A, "M", 0.3, token="Roses, "),
            ev(3, "llm_new_token", B, "M", 0.35, token="Tulips"),
            ev(4, "llm_end", A, "M", 0.4),
            ev(5, "llm_error", B, "M", 1.5, error=TimeoutError("slow")),
        ]
    )


def test_two_streams_swimlanes():
    assert two_streams().timeline() == (
        "     #      time  r1 M             r2 M\n"
        "     0    +0.000  start\n"
        "     1    +0.000  │                start\n"
        "     2    +0.300  token 'Roses, '  │\n"
        "     3    +0.350  │                token 'Tulips'\n"
        "     4    +0.400  end              │\n"
        "     5    +1.500                   error TimeoutError"
    )


def test_only_selected_runs_and_clipping():
    log = two_streams()
    assert log.timeline(runs=[B]) == (
        "     #      time  r2 M\n"
        "     1    +0.000  start\n"
        "     3    +0.350  token 'Tulips'\n"
        "     5    +1.500  error TimeoutError"
    )
    long = EventLog([ev(0, "llm_new_token", A, "M", 0.0, token="x" * 40)])
    assert long.timeline().splitlines()[1] == ("     0    +0.000  token '" + "x" * 20 + "…")


def test_stream_events_and_custom_events_read_short():
    log = EventLog(
        [
            ev(
                0,
                "stream_event",
                A,
                "M",
                0.0,
                data={
                    "event": "content-block-delta",
                    "index": 0,
                    "delta": {"type": "text-delta", "text": "hi"},
                },
            ),
            ev(
                1,
                "stream_event",
                A,
                "M",
                0.0,
                data={"event": "content-block-finish", "index": 1},
            ),
            ev(2, "custom_event", A, "M", 0.0, data=1, extra={"name": "progress"}),
        ]
    )
    assert [line[18:].rstrip() for line in log.timeline().splitlines()[1:]] == [
        "delta 'hi'",
        "block-finish 1",
        "custom progress",
    ]


def test_empty_log():
    assert EventLog().timeline() == "(no events)"
