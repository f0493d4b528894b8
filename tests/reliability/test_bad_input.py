"""Bad input: arbitrary script data and YAML texts raise only InvalidScript, with a
field path that points into the input; every public callable given a wrong type
raises a TypeError that names the parameter and what it accepts."""

from __future__ import annotations

import functools
import itertools
import json
import re
import subprocess
import sys
from collections.abc import Callable
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
from fakellm._cli import main as cli_main
from fakellm._script import parse_script_text
from fakellm.errors import InvalidScript
from tests.reliability.conftest import subprocess_env, watchdog

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


FUZZ = settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


@FUZZ
@given(script_like)
def test_arbitrary_script_data_raises_only_invalid_script_with_a_path(data):
    check(data, lambda: load_script(data))


YAML_FRAGMENTS = [
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
yaml_fragments = st.sampled_from(YAML_FRAGMENTS)
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
            match=r"(<script>: not valid YAML: line 1, column 51: nested more than 50 levels deep"
            r"|turns\[0\]\[0\].*: nested more than 50 levels deep \(FAKELLM_MAX_DEPTH\)"
            r"|turns\[0\].tool_calls\[0\].args.*: the script's data is larger than "
            r"FAKELLM_MAX_SCRIPT_BYTES=10,000,000 bytes)",
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


# -- each input the hardening round found escaping or misread -----------------------------------

DEEP = functools.reduce(lambda inner, _: {"a": inner}, range(1000), {})
TURN = "a turn is a Turn, its text (a string) or a mapping of Turn fields"
NOT_AN_EXCEPTION = (
    "is not an Exception subclass: raised from a model call it would stop the test run "
    "instead of failing the call; script an Exception such as APIConnectionError or TimeoutError"
)
HUGE = "10000000000000000000000000000000000000000000000000000000000000000000000000000..."

ESCAPES: list[tuple[str, Callable[[], Any], str]] = [
    (
        "turn-without-dash",
        lambda: parse_script_text("turns:\n  text: hi\n  chunks: chars\n"),
        "turns: turns must be a list of turns, got a mapping: a turn under `turns:` needs a "
        "leading `-` (`- text: ...`) (got {'text': 'hi', 'chunks': 'chars'})",
    ),
    (
        "script-fields-as-turns",
        lambda: Script({"turns": ["hi"]}),
        "turns: turns must be a list of turns, got a mapping of script fields: pass it to "
        "load_script(mapping) or Script.parse(mapping), or Script(**mapping) "
        "(got {'turns': ['hi']})",
    ),
    (
        "set-of-turns",
        lambda: FakeChatModel(script={"a"}),
        "script: a script is a list of turns, not a set: a set has no order; use a list "
        "(got {'a'})",
    ),
    (
        "set-under-turns",
        lambda: Script(turns=frozenset({"a"})),
        "turns: turns must be a list, got a set: a set has no order; use a list "
        "(got frozenset({'a'}))",
    ),
    (
        "set-of-tools",
        lambda: Rule(tools={"search"}, respond="x"),
        "tools: tools must be a list, got a set: a set has no order; use a list (got {'search'})",
    ),
    (
        "mapping-of-rules",
        lambda: parse_script_text("rules:\n  match: x\n  respond: y\n"),
        "rules: rules must be a list, got a mapping: each item needs a leading `-` in YAML "
        "(got {'match': 'x', 'respond': 'y'})",
    ),
    (
        "details-null",
        lambda: parse_script_text("- text: hi\n  usage: {input_token_details: null}\n"),
        "turns[0].usage.input_token_details: input_token_details must be a mapping of token "
        "counts, with keys from: audio, cache_creation, cache_read (got None)",
    ),
    (
        "details-list",
        lambda: parse_script_text("- text: hi\n  usage: {output_token_details: [1]}\n"),
        "turns[0].usage.output_token_details: output_token_details must be a mapping of token "
        "counts, with keys from: audio, reasoning (got [1])",
    ),
    (
        "details-string",
        lambda: Turn("hi", usage={"input_token_details": "x"}),
        "usage.input_token_details: input_token_details must be a mapping of token counts, "
        "with keys from: audio, cache_creation, cache_read (got 'x')",
    ),
    (
        "400-digit-delay",
        lambda: parse_script_text("- text: hi\n  delay: 1" + "0" * 400 + "\n"),
        "turns[0].delay: delay must be a number of seconds >= 0, a list of them (one per "
        f"chunk after the first), or {{'repeat': [...]}} (got {HUGE})",
    ),
    (
        "400-digit-repeat",
        lambda: Turn("a b", delay={"repeat": [10**400]}),
        "delay.repeat[0]: each repeated delay must be a finite number of seconds >= 0 "
        f"(got {HUGE})",
    ),
    (
        "400-digit-first-token-delay",
        lambda: Turn("hi", first_token_delay=10**400),
        "first_token_delay: first_token_delay must be a finite number of seconds >= 0 "
        f"(got {HUGE})",
    ),
    (
        "binary-regex",
        lambda: parse_script_text("- text: hi\n  chunks: {regex: !!binary aGk=}\n"),
        "turns[0].chunks.regex: a chunks regex must be a string (got b'hi')",
    ),
    (
        "bytes-pattern",
        lambda: Turn("hi", chunks=re.compile(b"h")),
        "chunks: a chunks regex must be a str pattern, not bytes (got re.compile(b'h'))",
    ),
    (
        "bytes-rule-match",
        lambda: Rule(match=re.compile(b"h"), respond="x"),
        "match: match must be a str pattern, not bytes (got re.compile(b'h'))",
    ),
    (
        "bool-maybe",
        lambda: parse_script_text("- !!bool maybe\n"),
        "<script>: not valid YAML: line 1, column 3: cannot read the value 'maybe' tagged "
        "'tag:yaml.org,2002:bool': KeyError: 'maybe' (got '- !!bool maybe')",
    ),
    (
        "timestamp-tomorrow",
        lambda: parse_script_text("- text: hi\n  finish_reason: !!timestamp tomorrow\n"),
        "<script>: not valid YAML: line 2, column 18: cannot read the value 'tomorrow' tagged "
        "'tag:yaml.org,2002:timestamp': AttributeError: 'NoneType' object has no attribute "
        "'groupdict' (got '  finish_reason: !!timestamp tomorrow')",
    ),
    (
        "nested-1000-deep",
        lambda: FakeChatModel(script=[Turn("x", response_metadata=DEEP)]),
        "response_metadata" + ".a" * 49 + ": nested more than 50 levels deep "
        "(FAKELLM_MAX_DEPTH); a script needs far fewer "
        "(got {'a': {'a': {'a': {'a': {'a': {'a': {...}}}}}}})",
    ),
    (
        "at-chunk-4400-digits",
        lambda: parse_script_text(
            "- text: hi\n  error: ValueError\n  at_chunk: " + "9" * 4400 + "\n"
        ),
        "<script>: not valid YAML: line 3, column 13: cannot read the value "
        f"'{'9' * 56}... tagged 'tag:yaml.org,2002:int': ValueError: Exceeds the limit (4300 "
        "digits) for integer string conversion: value has 4400 digits; use "
        "sys.set_int_max_str_digits() to increase the limit "
        f"(got '  at_chunk: {'9' * 45}...')",
    ),
    (
        "at-chunk-5001-digits-in-python",
        lambda: Turn("hi", error=ValueError, at_chunk=10**5000),
        "at_chunk: the error position is past the last chunk; this turn has 1 chunk, "
        "accepted: 0 (before the first chunk), a chunk count up to the number of chunks, or "
        "'end' (got <int object>)",
    ),
    (
        "turn-5001-digit-int",
        lambda: Script([None, 10**5000]),
        f"2 problems\n  - turns[0]: {TURN}; an empty `-` item has no turn: write `- ''` for an "
        f"empty reply (got None)\n  - turns[1]: {TURN}; got the int ...: in YAML, quote it "
        "(`- '...'`) to make it the reply text (got <int object>)",
    ),
    (
        "error-SystemExit",
        lambda: parse_script_text("- error: SystemExit\n"),
        f"turns[0].error: SystemExit {NOT_AN_EXCEPTION} (got 'SystemExit')",
    ),
    (
        "error-KeyboardInterrupt",
        lambda: Turn(error=KeyboardInterrupt()),
        f"error: KeyboardInterrupt {NOT_AN_EXCEPTION} (got KeyboardInterrupt())",
    ),
    (
        "error-arguments",
        lambda: parse_script_text("- error: {type: ServerError, status: 503}\n"),
        "turns[0].error: cannot build ServerError from these arguments: "
        "ServerError.__init__() got an unexpected keyword argument 'status'; accepted keys: "
        "type, message, status_code, retry_after (got {'type': 'ServerError', 'status': 503})",
    ),
]


@pytest.mark.parametrize(
    ("call", "message"), [(c, m) for _, c, m in ESCAPES], ids=[i for i, _, _ in ESCAPES]
)
def test_bad_input_is_one_invalid_script_with_its_path(call, message):
    with pytest.raises(InvalidScript) as info:
        call()
    assert str(info.value) == f"invalid script: {message}"
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__ or info.value.__context__ is None


def test_yaml_syntax_errors_name_the_file_line_and_column(tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text("turns:\n  - text: [hi\n  - b\n", encoding="utf-8")
    with pytest.raises(InvalidScript) as info:
        load_script(path)
    assert str(info.value) == (
        f"invalid script in {path}: <script>: not valid YAML: line 4, column 1: expected ',' "
        "or ']', but got '<stream end>' (while parsing a flow sequence at line 2, column 11) "
        "(got '  - text: [hi')"
    )


def test_bare_scalars_under_turns_say_to_quote_them():
    with pytest.raises(InvalidScript) as info:
        parse_script_text("turns:\n- 4\n- yes\n- 2024-01-01\n-\n", source="shop.yaml")
    assert str(info.value) == (
        "invalid script in shop.yaml: 4 problems\n"
        f"  - turns[0]: {TURN}; got the int 4: in YAML, quote it (`- '4'`) to make it the "
        "reply text (got 4)\n"
        f"  - turns[1]: {TURN}; got the boolean True (in YAML, yes, no, on, off, true and "
        "false are booleans): quote it to make it the reply text (got True)\n"
        f"  - turns[2]: {TURN}; got the date 2024-01-01: in YAML, quote it (`- '2024-01-01'`) "
        "to make it the reply text (got datetime.date(2024, 1, 1))\n"
        f"  - turns[3]: {TURN}; an empty `-` item has no turn: write `- ''` for an empty "
        "reply (got None)"
    )


def test_a_rule_reply_that_is_a_bare_scalar_says_to_quote_it():
    with pytest.raises(InvalidScript) as info:
        parse_script_text("rules: [{respond: 5}]")
    assert str(info.value) == (
        "invalid script: rules[0].respond: respond is a Turn, its text (a string) or a mapping "
        "of Turn fields; got the int 5: in YAML, quote it (`respond: '5'`) to make it the "
        "reply text (got 5)"
    )


YAML_ESCAPES = {
    "bool-maybe.yaml": "- !!bool maybe\n",
    "timestamp.yaml": "- text: hi\n  finish_reason: !!timestamp tomorrow\n",
    "details.yaml": "- text: hi\n  usage: {input_token_details: null}\n",
    "delay.yaml": "- text: hi\n  delay: 1" + "0" * 400 + "\n",
    "regex.yaml": "- text: hi\n  chunks: {regex: !!binary aGk=}\n",
    "digits.yaml": "- text: hi\n  error: ValueError\n  at_chunk: " + "9" * 4400 + "\n",
    "deep.yaml": "- text: hi\n  response_metadata: " + "[" * 1000 + "]" * 1000 + "\n",
    "exit.yaml": "- error: SystemExit\n",
    "no-dash.yaml": "turns:\n  text: hi\n",
    "scalars.yaml": "turns:\n- 4\n- yes\n",
    "laughs.yaml": "a: &a ["
    + ", ".join(["x" * 1000] * 100)
    + "]\n"
    + "".join(f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in itertools.pairwise("abcd"))
    + "turns: [*d]\n",
}


def test_validate_reports_every_bad_file_without_a_traceback(tmp_path, capsys):
    paths = []
    for name, text in YAML_ESCAPES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        paths.append(str(tmp_path / name))
    assert cli_main(["validate", "--color", "never", *paths]) == 1
    out, err = capsys.readouterr()
    assert err == ""
    assert "Traceback" not in out
    headers = [line for line in out.splitlines() if not line.startswith(" ")]
    assert headers == [
        f"{p}: invalid, {2 if p.endswith('scalars.yaml') else 1} "
        f"problem{'s' if p.endswith('scalars.yaml') else ''}"
        for p in paths
    ]


def test_the_marker_reports_bad_scripts_as_one_line_setup_errors(pytester):
    for name, text in YAML_ESCAPES.items():
        pytester.path.joinpath(name).write_text(text, encoding="utf-8")
    tests = "\n".join(
        f"@pytest.mark.fakellm({name!r})\ndef test_{i}(fake_llm):\n    pass\n"
        for i, name in enumerate(YAML_ESCAPES)
    )
    inline = (
        "@pytest.mark.fakellm([{'text': 'x', 'response_metadata': DEEP}])\n"
        "def test_deep(fake_llm):\n    pass\n\n"
        "@pytest.mark.fakellm([Turn('x', chunks='words')] and {'a', 'b'})\n"
        "def test_set(fake_llm):\n    pass\n\n"
        "@pytest.mark.fakellm('turns:' * 1000)\n"
        "def test_name_too_long(fake_llm):\n    pass\n"
    )
    pytester.makepyfile(
        "import functools\nimport pytest\nfrom fakellm import Turn\n"
        "DEEP = functools.reduce(lambda inner, _: {'a': inner}, range(1000), {})\n\n"
        + tests
        + "\n"
        + inline
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(errors=len(YAML_ESCAPES) + 3)
    text = result.stdout.str()
    # One message per test in the errors section (the short summary repeats them
    # in full when CI is set, on lines of its own that start with "ERROR").
    messages = [line for line in result.stdout.lines if line.startswith("@pytest.mark.fakellm on ")]
    assert len(messages) == len(YAML_ESCAPES) + 3
    result.stdout.fnmatch_lines(
        [
            "@pytest.mark.fakellm on test_the_marker_reports_bad_scripts_as_one_line_setup_errors"
            ".py::test_name_too_long: script='" + "turns:" * 9 + "tu...: not a usable file path "
            "(File name too long)"
        ]
    )
    # Every failure is the marker's one-line message: no traceback into fakellm or PyYAML.
    assert "fakellm/_script.py" not in text
    assert "yaml/" not in text
    assert "Traceback" not in text


# -- budgets --------------------------------------------------------------------------------------

LAUGHS_IN_CHUNKS = (
    "a: &a ["
    + ", ".join(["w"] * 2000)
    + "]\n"
    + "".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n" for p, c in itertools.pairwise("abcdefgh")
    )
    + "turns: [{chunks: *h}]\n"
)
LAUGHS_IN_ARGS = (
    "a: &a {"
    + ", ".join(f"k{i}: vvvvvvvv" for i in range(500))
    + "}\n"
    + "".join(
        f"{c}: &{c} {{{', '.join(f'{c}{i}: *{p}' for i in range(10))}}}\n"
        for p, c in itertools.pairwise("abcd")
    )
    + "turns: [{tool_calls: [{name: f, args: *d}]}]\n"
)
# Ten turns share one 1 KB argument through a YAML alias: about 10 KB once expanded.
SHARED_ARGS = (
    "turns:\n- tool_calls: [{name: f, args: &a {k: "
    + "v" * 1000
    + "}}]\n"
    + "- tool_calls: [{name: f, args: *a}]\n" * 9
)
TOO_LARGE = (
    "the script's data is larger than FAKELLM_MAX_SCRIPT_BYTES=10,000,000 bytes, counting "
    "each YAML alias (or shared object) every time it is used; raise FAKELLM_MAX_SCRIPT_BYTES "
    "to load it"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            LAUGHS_IN_CHUNKS,
            f"turns[0].chunks[9][9][9][9][4][4][4][494]: {TOO_LARGE} (got 'w')",
            id="20-billion-chunks",
        ),
        pytest.param(
            LAUGHS_IN_ARGS,
            f"turns[0].tool_calls[0].args.d2.c8.b1.k440: {TOO_LARGE} (got 'vvvvvvvv')",
            id="aliased-tool-arguments",
        ),
    ],
)
def test_alias_expansion_is_counted_in_bytes_while_loading(text, message):
    assert len(text.encode()) < 30_000
    with watchdog(60), pytest.raises(InvalidScript) as info:
        parse_script_text(text)
    assert str(info.value) == f"invalid script: {message}"


def test_alias_expansion_is_refused_before_memory_grows():
    # In a fresh process, so the peak resident size is this load's alone.
    code = (
        "import json, resource, sys\n"
        "from fakellm._script import parse_script_text\n"
        "from fakellm.errors import InvalidScript\n"
        "growth = []\n"
        "for text in json.load(sys.stdin):\n"
        "    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "    try:\n"
        "        parse_script_text(text)\n"
        "    except InvalidScript:\n"
        "        pass\n"
        "    growth.append(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
        "print(json.dumps(growth))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps([LAUGHS_IN_CHUNKS, LAUGHS_IN_ARGS]),
        capture_output=True,
        text=True,
        check=True,
        env=subprocess_env(),
        timeout=120,
    )
    growth_kib = json.loads(done.stdout)
    # Before the byte budget these took 1.75 GB and 867 MB; refused, they stay small.
    assert all(kib < 50_000 for kib in growth_kib), growth_kib


def test_a_turn_with_too_many_chunks_is_refused_before_they_are_built():
    with pytest.raises(InvalidScript) as info:
        Turn("ab" * 60_000, chunks="chars")
    assert str(info.value) == (
        "invalid script: chunks: this turn streams more than FAKELLM_MAX_CHUNKS=100,000 chunks; "
        "cut it into bigger chunks, or raise FAKELLM_MAX_CHUNKS (got 'chars')"
    )


def test_the_chunk_and_text_budgets_count_the_whole_script():
    big = Turn("a " * 60_000)
    with pytest.raises(InvalidScript) as info:
        Script([big, big])
    assert str(info.value) == (
        "invalid script: turns: the script's turns stream 120,000 chunks in all, more than "
        "FAKELLM_MAX_CHUNKS=100,000; raise FAKELLM_MAX_CHUNKS to allow it (got 120000)"
    )
    five_mb = Turn("x" * 5_000_000)
    with pytest.raises(InvalidScript) as info:
        Script(rules=[Rule(match="a", respond=five_mb)] * 2, turns=[five_mb])
    assert str(info.value) == (
        "invalid script: turns: the script's turns hold 15,000,000 bytes of text in all, more "
        "than FAKELLM_MAX_TEXT_BYTES=10,000,000; raise FAKELLM_MAX_TEXT_BYTES to allow it "
        "(got 15000000)"
    )


def test_the_limits_are_raised_and_lowered_by_environment_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("FAKELLM_MAX_CHUNKS", "200_000")
    assert len(Turn("ab" * 60_000, chunks="chars").pieces) == 120_000
    monkeypatch.setenv("FAKELLM_MAX_SCRIPT_BYTES", "5000")
    with pytest.raises(InvalidScript, match="larger than FAKELLM_MAX_SCRIPT_BYTES=5,000 bytes"):
        parse_script_text(SHARED_ARGS)
    monkeypatch.setenv("FAKELLM_MAX_SCRIPT_BYTES", "20000")
    assert len(parse_script_text(SHARED_ARGS).turns) == 10
    monkeypatch.setenv("FAKELLM_MAX_TEXT_BYTES", "4096")
    with pytest.raises(InvalidScript) as info:
        Turn(reasoning="é" * 2049)
    assert str(info.value) == (
        "invalid script: reasoning: this turn holds 4,098 bytes of text, more than "
        "FAKELLM_MAX_TEXT_BYTES=4,096; raise FAKELLM_MAX_TEXT_BYTES to allow it "
        f"(got '{'é' * 76}...)"
    )
    monkeypatch.setenv("FAKELLM_MAX_DEPTH", "8")
    nested = functools.reduce(lambda inner, _: {"a": inner}, range(5), {})
    with pytest.raises(InvalidScript) as info:
        load_script({"turns": [{"text": "x", "response_metadata": nested}]})
    assert str(info.value) == (
        "invalid script: turns[0].response_metadata.a.a.a.a.a: nested more than 8 levels deep "
        "(FAKELLM_MAX_DEPTH); a script needs far fewer (got {})"
    )
    with pytest.raises(InvalidScript) as info:
        parse_script_text("turns: [[[[[[[[x]]]]]]]]")
    assert str(info.value) == (
        "invalid script: <script>: not valid YAML: line 1, column 15: nested more than 8 "
        "levels deep (FAKELLM_MAX_DEPTH) (got 'turns: [[[[[[[[x]]]]]]]]')"
    )
    monkeypatch.setenv("FAKELLM_MAX_DEPTH", "7")
    with pytest.raises(InvalidScript) as info:
        Turn("x", response_metadata={"a": [[[[[[[[]]]]]]]]})
    assert str(info.value) == (
        "invalid script: <script>: the environment variable FAKELLM_MAX_DEPTH='7' must be a "
        "whole number >= 8 (got '7')"
    )
    monkeypatch.setenv("FAKELLM_MAX_CHUNKS", "lots")
    with pytest.raises(InvalidScript) as info:
        Turn("x" * 300, chunks="chars")
    assert str(info.value) == (
        "invalid script: <script>: the environment variable FAKELLM_MAX_CHUNKS='lots' must be "
        "a whole number >= 256 (got 'lots')"
    )


def test_validate_applies_the_limits_from_the_environment(tmp_path, capsys, monkeypatch):
    path = tmp_path / "shared.yaml"
    path.write_text(SHARED_ARGS, encoding="utf-8")
    monkeypatch.setenv("FAKELLM_MAX_SCRIPT_BYTES", "5000")
    assert cli_main(["validate", "--color", "never", str(path)]) == 1
    assert capsys.readouterr().out.splitlines()[0] == f"{path}: invalid, 1 problem"
    monkeypatch.setenv("FAKELLM_MAX_SCRIPT_BYTES", "20000")
    assert cli_main(["validate", "--color", "never", str(path)]) == 0
    assert capsys.readouterr().out == f"{path}: ok (10 turns, 0 rules)\n"
