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


def _streams(n, name="M", token="ab"):
    events, seq = [], 0
    for i in range(n):
        events.append(ev(seq, "chat_model_start", UUID(int=100 + i), name, 0.0))
        events.append(ev(seq + 1, "llm_new_token", UUID(int=100 + i), name, 0.1, token=token))
        events.append(ev(seq + 2, "llm_end", UUID(int=100 + i), name, 0.2))
        seq += 3
    return EventLog(events)


def test_wide_characters_keep_lanes_aligned():
    log = EventLog(
        [
            ev(0, "llm_new_token", A, "M", 0.0, token="你好"),
            ev(1, "llm_new_token", B, "M", 0.1, token="ok"),
        ]
    )
    from fakellm._timeline import width

    lines = log.timeline(view="lanes").splitlines()
    # "token '你好'" is 12 columns wide (each CJK character takes two).
    assert lines[1] == "     0    +0.000  token '你好'"
    assert lines[2] == "     1    +0.100  │               token 'ok'"
    assert width(lines[1]) == 30
    assert log.timeline(view="lanes").splitlines()[0].index("r2") == 34


def test_many_runs_switch_to_the_list_view_indented_by_depth():
    log = EventLog(
        [
            ev(0, "chain_start", P, "Sequence", 0.0),
            ev(1, "chat_model_start", A, "M", 0.0, parent=P),
            ev(2, "llm_end", A, "M", 0.1, parent=P),
            ev(3, "chain_end", P, "Sequence", 0.1),
        ]
    )
    assert log.timeline(view="list") == (
        "     #      time  event\n"
        "     0    +0.000  r1 Sequence: start\n"
        "     1    +0.000    r2 M: start\n"
        "     2    +0.100    r2 M: end\n"
        "     3    +0.100  r1 Sequence: end"
    )
    assert _streams(9).timeline().splitlines()[0] == "     #      time  event"
    assert _streams(3).timeline().splitlines()[0].endswith("r3 M")


def test_long_names_keep_distinct_headers_and_long_logs_truncate():
    a = ev(0, "chat_model_start", A, "RunnableLambda<step_number_one>", 0.0)
    b = ev(1, "chat_model_start", B, "RunnableLambda<step_number_two>", 0.0)
    header = EventLog([a, b]).timeline().splitlines()[0]
    assert "r1 RunnableLam…p_number_one>" in header
    assert "r2 RunnableLam…p_number_two>" in header
    text = _streams(100).timeline(max_events=10)
    lines = text.splitlines()
    assert len(lines) == 12
    assert lines[6] == "   … 290 events not shown (log.timeline() shows them all) …"
    assert lines[-1].startswith("   299")
