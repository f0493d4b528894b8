"""Bad input: arbitrary script data and YAML texts raise only InvalidScript, with a
field path that points into the input; every public callable given a wrong type
raises a TypeError that names the parameter and what it accepts."""

from __future__ import annotations

import itertools
import re
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakellm import (
    EventLog,
    FakeChatModel,
    FakeLLM,
    Rule,
    Script,
    ToolCall,
    Turn,
    Usage,
    errors,
    load_script,
    run_scenario,
    virtual_time,
)
from fakellm import assertions as A
from fakellm._script import parse_script_text
from fakellm.errors import InvalidScript

FIELDS = sorted(
    {*Script.model_fields, *Turn.model_fields, *ToolCall.model_fields, *Usage.model_fields}
    | {*Rule.model_fields, "repeat", "regex", "type", "message", "retry_after"}
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 5)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["words", "chars", "end", "RateLimitError", "hello world", "", "raise"])
    | st.text(max_size=6)
)
keys = st.sampled_from(FIELDS) | st.text(max_size=4) | st.integers(0, 3) | st.none()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=25,
)
turn_like = st.dictionaries(st.sampled_from(sorted(Turn.model_fields)) | keys, values, max_size=5)
script_like = (
    st.fixed_dictionaries(
        {"turns": st.lists(turn_like | scalars, max_size=4)},
        optional={"rules": values, "when_exhausted": values},
    )
    | st.dictionaries(keys, values, max_size=4)
    | st.lists(turn_like | values, max_size=4)
    | values
)


def resolves(path: str, data: Any) -> bool:
    """Whether a problem's field path walks into ``data`` (a missing last key is fine).

    A list is a script's turns, as loading reads it; ``script`` names the value itself.
    Keys may hold dots or brackets themselves, so each step tries every key that fits.
    """
    if path == "script":
        return True
    if isinstance(data, list):
        data = {"turns": data}
    return _walk(path, data)


def _walk(rest: str, node: Any) -> bool:
    if not rest:
        return True
    index = re.match(r"\[(\d+)\]", rest)
    if index and isinstance(node, list | tuple):
        k = int(index.group(1))
        return k < len(node) and _walk(rest[index.end() :].removeprefix("."), node[k])
    if not isinstance(node, dict):
        return False
    for key, value in node.items():
        name = f"[{key}]" if isinstance(key, int) and rest.startswith("[") else str(key)
        fits = rest == name or (rest.startswith(name) and rest[len(name)] in ".[")
        if fits and _walk(rest[len(name) :].removeprefix("."), value):
            return True
    return not re.search(r"[.\[]", rest)  # a required key that is missing


def check(data: Any, run: Callable[[], Any]) -> None:
    try:
        with watchdog(20):
            result = run()
    except InvalidScript as exc:
        problems = exc.problems
    else:
        assert isinstance(result, Script)
        return
    assert problems
    for problem in problems:
        assert problem.message
        assert problem.path == "" or resolves(problem.path, data), (problem, data)


@contextmanager
def watchdog(seconds: int) -> Iterator[None]:
    """Turn a hang into a failure (a generous bound, not a timing assertion)."""

    def hung(signum: int, frame: Any) -> None:
        raise AssertionError(f"still running after {seconds} s: a hang")

    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


FUZZ = settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@FUZZ
@given(script_like)
def test_arbitrary_script_data_raises_only_invalid_script_with_a_path(data):
    check(data, lambda: load_script(data))


yaml_fragments = st.sampled_from(
    [
        "turns:",
        "rules:",
        "- ",
        "text: ",
        "tool_calls:",
        "name: f",
        "args: ",
        "delay: ",
        "error: ",
        "RateLimitError",
        "at_chunk: ",
        "chunks: ",
        "usage: ",
        "repeat: ",
        "when_exhausted: ",
        "\n",
        "\n  ",
        "\n    ",
        "[",
        "]",
        "{",
        "}",
        ", ",
        ": ",
        "&a ",
        "*a",
        "!!str ",
        "!!python/name:os.system",
        "---\n",
        "...",
        "'",
        '"',
        "#",
        "1",
        "-1",
        "0.5",
        ".nan",
        ".inf",
        "~",
        "true",
        "2024-01-01",
        "? ",
        "|\n  x",
        "\t",
        "%YAML",
    ]
)
yaml_texts = st.lists(yaml_fragments | st.text(max_size=4), max_size=30).map("".join) | (
    script_like.map(lambda d: yaml.safe_dump(d, allow_unicode=True))
)


@FUZZ
@given(yaml_texts)
def test_arbitrary_yaml_raises_only_invalid_script(text):
    try:
        data = yaml.safe_load(text)
    except Exception:
        data = None
    check(data, lambda: parse_script_text(text))


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(text=yaml_texts, suffix=st.sampled_from([".yaml", ".json", ".yml", ""]))
def test_arbitrary_script_files_raise_only_invalid_script(tmp_path_factory, text, suffix):
    path = tmp_path_factory.mktemp("scripts") / f"script{suffix}"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_script(path)
    except InvalidScript as exc:
        source, problems = exc.source, exc.problems
    else:
        return
    assert source == str(path)
    assert problems


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[" * 1500 + "]" * 1500, id="nested-too-deeply"),
        pytest.param("turns: &t [*t]", id="self-reference"),
        pytest.param(
            "turns: [{tool_calls: [{name: f, args: {a: &a [x,x,x,x,x,x,x,x,x], "
            + ", ".join(
                f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]"
                for p, c in itertools.pairwise("abcdefghi")
            )
            + "}}]}]",
            id="billion-laughs",
        ),
    ],
)
def test_hostile_yaml_is_refused_quickly(text):
    with (
        watchdog(20),
        pytest.raises(
            InvalidScript,
            match=r"<script>: (not valid YAML: nested too deeply"
            r"|the YAML expands to more than 1,000,000 values)",
        ),
    ):
        parse_script_text(text)


def test_non_string_keys_are_named_with_their_path():
    with pytest.raises(InvalidScript) as info:
        load_script({"turns": ["ok", {"tool_calls": [{1: "x"}]}]})
    assert str(info.value) == (
        "invalid script: turns[1].tool_calls[0]: a key of ToolCall must be a string; "
        "accepted keys: name, args, id, raw_args, allow_unbound (got 1)"
    )


# -- wrong types ---------------------------------------------------------------------------------


def _log() -> EventLog:
    return EventLog()


WRONG_TYPES: list[tuple[str, Callable[[], Any], str]] = [
    (
        "FakeChatModel(script=42)",
        lambda: FakeChatModel(script=42),
        r"script: a script is a Script, a list of turns or a mapping \(got 42\)",
    ),
    (
        "FakeLLM(script=42)",
        lambda: FakeLLM(script=42),
        r"script: a script is a Script, a list of turns or a mapping",
    ),
    (
        "FakeChatModel(script='hi')",
        lambda: FakeChatModel(script="hi"),
        r"script: .*for one reply use \[text\]",
    ),
    ("Script(42)", lambda: Script(42), r"turns: turns must be a list of turns \(got 42\)"),
    (
        "Script(when_exhausted=1)",
        lambda: Script(["a"], when_exhausted=1),
        r"when_exhausted: accepted: 'raise', 'cycle', 'repeat_last'",
    ),
    ("Turn(42)", lambda: Turn(42), r"text: Input should be a valid string \(got 42\)"),
    (
        "Turn(delay='x')",
        lambda: Turn("a", delay="x"),
        r"delay: delay must be a number of seconds >= 0",
    ),
    (
        "Turn(chunks=2.5)",
        lambda: Turn("a", chunks=2.5),
        r"chunks: chunks must be 'words', 'chars', a chunk size",
    ),
    (
        "Turn(error=42)",
        lambda: Turn("a", error=42),
        r"error: error must be an exception instance or class",
    ),
    ("ToolCall(42)", lambda: ToolCall(42), r"name: Input should be a valid string"),
    ("ToolCall('f', 42)", lambda: ToolCall("f", 42), r"args: Input should be a valid dictionary"),
    (
        "Usage(input_tokens='x')",
        lambda: Usage(input_tokens="x"),
        r"input_tokens: Input should be a valid integer",
    ),
    (
        "Rule(match=42)",
        lambda: Rule(match=42, respond="x"),
        r"match: Input should be a valid pattern",
    ),
    ("Rule(responder=42)", lambda: Rule(responder=42), r"responder: Input should be callable"),
    (
        "load_script(42)",
        lambda: load_script(42),
        r"script: a script is a Script, a list of turns or a mapping \(got 42\)",
    ),
    ("load_script(NUL path)", lambda: load_script("a\x00b.yaml"), r"not a usable file path"),
    (
        "EventLog(42)",
        lambda: EventLog(42),
        r"events=42 is not iterable; EventLog takes an iterable of fakellm Event",
    ),
    ("EventLog([42])", lambda: EventLog([42]), r"events\[0\]=42 is not an Event"),
    (
        "EventLog.filter(kind=42)",
        lambda: _log().filter(kind=42),
        r"kind=42 must be an event kind \(str\) or a collection",
    ),
    (
        "EventLog.run(42)",
        lambda: _log().run(42),
        r"run=42 is not a run reference; accepted: a run id",
    ),
    (
        "EventLog.normalized(times='x')",
        lambda: _log().normalized(times="x"),
        r"times='x' must be True, False or None",
    ),
    (
        "EventLog.timeline(42)",
        lambda: _log().timeline(42),
        r"runs=42 must be a list of run references or None",
    ),
    (
        "EventLog.usage(model=42)",
        lambda: _log().usage(model=42),
        r"model=42 must be a model name \(str\) or None",
    ),
    (
        "run_scenario(42)",
        lambda: run_scenario(42),
        r"runnables\[0\]=42: expected a coroutine, a coroutine function"
        r" or a zero-argument callable",
    ),
    (
        "run_scenario(names=42)",
        lambda: run_scenario(lambda: 1, names=42),
        r"names=42: expected a sequence of 1 task names or None",
    ),
    (
        "run_scenario(start=42)",
        lambda: run_scenario(lambda: 1, start=42),
        r"start=42: expected a datetime, an ISO-8601 string or None",
    ),
    (
        "run_scenario(return_exceptions='x')",
        lambda: run_scenario(lambda: 1, return_exceptions="x"),
        r"return_exceptions='x': expected True or False",
    ),
    (
        "virtual_time(start=42)",
        lambda: virtual_time(start=42),
        r"start=42: expected a datetime, an ISO-8601 string or None",
    ),
    (
        "virtual_time(freeze='y')",
        lambda: virtual_time(freeze="y"),
        r"freeze='y': expected True or False",
    ),
    (
        "virtual_time()(42)",
        lambda: virtual_time()(42),
        r"virtual_time\(\) decorates a function, got 42",
    ),
    (
        "assert_events(42, ...)",
        lambda: A.assert_events(42, []),
        r"log=42 is not an EventLog; pass recorder.events or the Recorder",
    ),
    (
        "assert_events(expected=42)",
        lambda: A.assert_events(_log(), 42),
        r"expected=42 must be a list of expectation strings",
    ),
    (
        "assert_events(expected=[42])",
        lambda: A.assert_events(_log(), [42]),
        r"expected\[0\]=42 is not a string; accepted: 'kind'",
    ),
    (
        "assert_events(exact=1)",
        lambda: A.assert_events(_log(), [], exact=1),
        r"exact=1 must be True or False",
    ),
    (
        "assert_events(run=42)",
        lambda: A.assert_events(_log(), [], run=42),
        r"run=42 is not a run reference; accepted",
    ),
    ("assert_well_formed(42)", lambda: A.assert_well_formed(42), r"log=42 is not an EventLog"),
    (
        "assert_interleaved(42, ...)",
        lambda: A.assert_interleaved(42, "a", "b"),
        r"log=42 is not an EventLog",
    ),
    (
        "assert_interleaved(run=42)",
        lambda: A.assert_interleaved(_log(), 42, 43),
        r"run=42 is not a run reference; accepted",
    ),
    (
        "assert_sequential(42, ...)",
        lambda: A.assert_sequential(42, "a", "b"),
        r"log=42 is not an EventLog",
    ),
    ("assert_usage(42)", lambda: A.assert_usage(42, input_tokens=1), r"log=42 is not an EventLog"),
    (
        "assert_usage(input_tokens='x')",
        lambda: A.assert_usage(_log(), input_tokens="x"),
        r"input_tokens='x' must be an int \(a token count\) or None",
    ),
    (
        "assert_usage(model=42)",
        lambda: A.assert_usage(_log(), input_tokens=1, model=42),
        r"model=42 must be a model name \(str\) or None",
    ),
    (
        "assert_stream_matches_invoke(42)",
        lambda: A.assert_stream_matches_invoke(42, "hi"),
        r"model=42 is neither a model nor a factory returning one",
    ),
    (
        "assert_stream_matches_invoke(modes=42)",
        lambda: A.assert_stream_matches_invoke(lambda: FakeChatModel(script=["a"]), "hi", modes=42),
        r"modes=42 must be a list of mode names \(invoke, stream",
    ),
    (
        "assert_stream_matches_invoke(config=42)",
        lambda: A.assert_stream_matches_invoke(
            lambda: FakeChatModel(script=["a"]), "hi", config=42
        ),
        r"config=42 must be a RunnableConfig \(a mapping\) or None",
    ),
    (
        "RateLimitError(retry_after='x')",
        lambda: errors.RateLimitError(retry_after="x"),
        r"retry_after='x': expected a finite number of seconds >= 0 or None",
    ),
    (
        "ServerError(status_code='x')",
        lambda: errors.ServerError(status_code="x"),
        r"status_code='x': expected an HTTP status \(int\) or None",
    ),
    (
        "ProviderError(42)",
        lambda: errors.ProviderError(42),
        r"message=42: expected the error text \(a str\) or None",
    ),
]


@pytest.mark.parametrize(
    ("call", "message"), [(c, m) for _, c, m in WRONG_TYPES], ids=[i for i, _, _ in WRONG_TYPES]
)
def test_a_wrong_type_says_what_is_accepted(call, message):
    with pytest.raises(TypeError, match=message):
        call()


@pytest.mark.parametrize(
    ("kwargs", "field", "accepted"),
    [
        ({"model": 42}, "model", "Input should be a valid string"),
        ({"max_tokens": "x"}, "max_tokens", "Input should be a valid integer"),
        ({"streaming": "maybe"}, "streaming", "Input should be a valid boolean"),
    ],
)
@pytest.mark.parametrize("cls", [FakeChatModel, FakeLLM])
def test_a_wrong_model_setting_names_the_field_and_what_is_accepted(cls, kwargs, field, accepted):
    # Model settings are pydantic fields, validated the way every LangChain model
    # validates them: a pydantic ValidationError (a ValueError), not a TypeError.
    with pytest.raises(
        ValueError, match=rf"(?s)validation error for {cls.__name__}\n{field}\n  {accepted}"
    ):
        cls(**kwargs)
