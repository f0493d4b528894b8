"""Unit tests for scripts (fakellm._script): pure data, no LangChain."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from fakellm import errors
from fakellm._script import (
    Call,
    Exhausted,
    Piece,
    Repeat,
    Rule,
    Script,
    ScriptPlayer,
    ToolCall,
    Turn,
    Usage,
    as_script,
    load_script,
    parse_script_text,
    split_text,
    split_tool_args,
)
from fakellm.errors import InvalidScript, ScriptProblem

DATA = Path(__file__).parent / "data"

TURN_KEYS = (
    "text, content, reasoning, tool_calls, chunks, first_token_delay, delay, error, "
    "at_chunk, usage, finish_reason, response_metadata, refusal, structured, "
    "ignore_tool_choice, id, name, additional_kwargs, stream, request"
)
POSITIONS = "0 (before the first chunk), a chunk count up to the number of chunks, or 'end'"
KNOWN_ERRORS = (
    "APIConnectionError, APITimeoutError, AuthenticationError, BadRequestError, "
    "ContentFilterError, ContextOverflowError, NotFoundError, PermissionDeniedError, "
    "ProviderError, RateLimitError, ServerError"
)
DELAY_MSG = (
    "delay must be a number of seconds >= 0, a list of them (one per chunk after "
    "the first), or {'repeat': [...]}"
)
CHUNKS_MSG = (
    "chunks must be 'words', 'chars', a chunk size >= 1, a list of strings, or a "
    "regex ({'regex': pattern} in files)"
)
ONE_ANSWER = "a rule needs exactly one of respond (a turn) or responder (a function)"


def invalid(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> InvalidScript:
    """Call ``fn`` and return the InvalidScript it raises."""
    with pytest.raises(InvalidScript) as info:
        fn(*args, **kwargs)
    err = info.value
    assert isinstance(err, TypeError)
    return err


def texts(turn: Turn) -> list[str]:
    return [p.text for p in turn.pieces]


def human(text: str) -> SimpleNamespace:
    return SimpleNamespace(type="human", text=text)


def ai(text: str) -> SimpleNamespace:
    return SimpleNamespace(type="ai", text=text)


def call(text: str | None = None, *, index: int = 0, tools: tuple = ()) -> Call:
    messages = (human(text),) if text is not None else ()
    return Call(index=index, messages=messages, tools=tools)


def tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {}}}


# =====================================================================================
# split_text: every chunking mode
# =====================================================================================


@pytest.mark.parametrize(
    ("text", "chunks"),
    [
        ("Roses, lilies and sunflowers.", ["Roses, ", "lilies ", "and ", "sunflowers."]),
        ("one", ["one"]),
        ("  leading", ["  leading"]),
        ("  hi there", ["  hi ", "there"]),
        ("trailing  ", ["trailing  "]),
        ("hi there \n", ["hi ", "there \n"]),
        ("a   b\n\tc", ["a   ", "b\n\t", "c"]),
        ("   ", ["   "]),
        ("\n", ["\n"]),
        ("", []),
    ],
)
def test_split_words(text, chunks) -> None:
    assert split_text(text, "words") == chunks
    assert "".join(chunks) == text


def test_split_chars() -> None:
    assert split_text("héllo 🌹", "chars") == ["h", "é", "l", "l", "o", " ", "🌹"]
    assert split_text("", "chars") == []


@pytest.mark.parametrize(
    ("size", "chunks"),
    [
        (1, ["a", "b", "c", "d", "e", "f", "g"]),
        (3, ["abc", "def", "g"]),
        (7, ["abcdefg"]),
        (100, ["abcdefg"]),
    ],
)
def test_split_fixed_size(size, chunks) -> None:
    assert split_text("abcdefg", size) == chunks


def test_split_explicit_drops_empty_chunks() -> None:
    assert split_text("ab", ("a", "", "b")) == ["a", "b"]
    assert split_text("", ("a",)) == []


@pytest.mark.parametrize(
    ("pattern", "text", "chunks"),
    [
        # text between matches joins the next chunk, trailing text the last one
        (r"\w+", "Hello, world!", ["Hello", ", world!"]),
        (r"[A-Z]\w*", "say Hello to Bob now", ["say Hello", " to Bob now"]),
        (r"\w+\s*", "a b c", ["a ", "b ", "c"]),
        # no match at all: one chunk
        (r"\d+", "no digits", ["no digits"]),
        # zero-length matches are skipped
        (r"\b", "two words", ["two words"]),
        (r"\w*", "ab, cd", ["ab", ", cd"]),
        (r"x*", "axxb", ["axxb"]),
    ],
)
def test_split_regex(pattern, text, chunks) -> None:
    assert split_text(text, re.compile(pattern)) == chunks
    assert "".join(chunks) == text


def test_split_regex_empty_text() -> None:
    assert split_text("", re.compile(r"\w+")) == []


# =====================================================================================
# Turn: chunks and pieces
# =====================================================================================


def test_turn_default_chunking_is_words() -> None:
    turn = Turn("Roses, lilies and sunflowers.")
    assert turn.chunks == "words"
    assert turn.pieces == (
        Piece("text", "Roses, "),
        Piece("text", "lilies "),
        Piece("text", "and "),
        Piece("text", "sunflowers."),
    )


def test_turn_chars_and_size() -> None:
    assert texts(Turn("abc", chunks="chars")) == ["a", "b", "c"]
    assert texts(Turn("abcde", chunks=2)) == ["ab", "cd", "e"]


def test_turn_regex_from_pattern_and_from_mapping() -> None:
    compiled = Turn("Hello, world!", chunks=re.compile(r"\w+"))
    from_file = Turn("Hello, world!", chunks={"regex": r"\w+"})
    assert isinstance(from_file.chunks, re.Pattern)
    assert from_file.chunks.pattern == r"\w+"
    assert texts(compiled) == texts(from_file) == ["Hello", ", world!"]


def test_turn_explicit_chunks() -> None:
    turn = Turn("Hello", chunks=["He", "", "llo"])
    assert turn.chunks == ("He", "", "llo")
    assert texts(turn) == ["He", "llo"]


def test_turn_text_is_derived_from_explicit_chunks() -> None:
    turn = Turn(chunks=["Hel", "lo", " world"])
    assert turn.text == "Hello world"
    assert texts(turn) == ["Hel", "lo", " world"]


def test_turn_empty_explicit_chunks_give_empty_text() -> None:
    turn = Turn(chunks=[])
    assert turn.text == ""
    assert turn.pieces == ()


def test_turn_explicit_chunks_must_join_to_the_text() -> None:
    err = invalid(Turn, "Hello", chunks=["He", "y"])
    assert str(err) == (
        "invalid script: chunks: explicit chunks must join to the text 'Hello', "
        "they join to 'Hey' (got ('He', 'y'))"
    )
    assert err.problems == (
        ScriptProblem(
            "chunks",
            ("He", "y"),
            "explicit chunks must join to the text 'Hello', they join to 'Hey'",
        ),
    )


@pytest.mark.parametrize(
    ("chunks", "path", "message", "got"),
    [
        (0, "chunks", "a chunk size must be an integer >= 1", "0"),
        (-3, "chunks", "a chunk size must be an integer >= 1", "-3"),
        ("lines", "chunks", CHUNKS_MSG, "'lines'"),
        (True, "chunks", CHUNKS_MSG, "True"),
        (1.5, "chunks", CHUNKS_MSG, "1.5"),
        ({"re": "x"}, "chunks", CHUNKS_MSG, "{'re': 'x'}"),
        (
            {"regex": "("},
            "chunks.regex",
            "not a valid regular expression: missing ), unterminated subpattern at position 0",
            "'('",
        ),
        (
            {"regex": 5},
            "chunks.regex",
            "a chunks regex must be a string",
            "5",
        ),
    ],
)
def test_turn_bad_chunks(chunks, path, message, got) -> None:
    err = invalid(Turn, "abc", chunks=chunks)
    assert str(err) == f"invalid script: {path}: {message} (got {got})"


def test_turn_explicit_chunks_must_be_strings() -> None:
    err = invalid(Turn, "a1", chunks=["a", 1])
    assert str(err).startswith("invalid script: chunks")
    assert str(err).endswith(": explicit chunks must be strings (got 1)")


def test_turn_explicit_chunk_path_uses_brackets() -> None:
    err = invalid(Turn, "a1", chunks=["a", 1])
    assert str(err) == "invalid script: chunks[1]: explicit chunks must be strings (got 1)"


def test_pieces_order_reasoning_text_tool_calls() -> None:
    turn = Turn(
        "Here you go.",
        reasoning="Think first.",
        tool_calls=[
            ToolCall("get_price", {"flower": "rose", "color": "pink"}),
            ToolCall("search"),
        ],
    )
    assert turn.pieces == (
        Piece("reasoning", "Think "),
        Piece("reasoning", "first."),
        Piece("text", "Here "),
        Piece("text", "you "),
        Piece("text", "go."),
        Piece("tool", '{"flower": "rose", ', index=0, first=True),
        Piece("tool", '"color": "pink"}', index=0, first=False),
        Piece("tool", "{}", index=1, first=True),
    )
    # the first fragment is where the consumer takes name and id from
    firsts = [p for p in turn.pieces if p.kind == "tool" and p.first]
    assert [turn.tool_calls[p.index].name for p in firsts] == ["get_price", "search"]


def test_pieces_with_content_blocks() -> None:
    blocks = [
        {"type": "text", "text": "Roses"},
        {"type": "image_url", "image_url": {"url": "data:,"}},
    ]
    turn = Turn(content=blocks, reasoning="hmm ok")
    assert turn.content == tuple(blocks)
    assert turn.pieces == (
        Piece("reasoning", "hmm "),
        Piece("reasoning", "ok"),
        Piece("block", block=blocks[0], index=0),
        Piece("block", block=blocks[1], index=1),
    )


def test_chunking_applies_to_reasoning_too() -> None:
    turn = Turn("abcd", reasoning="xyz", chunks=2)
    assert [(p.kind, p.text) for p in turn.pieces] == [
        ("reasoning", "xy"),
        ("reasoning", "z"),
        ("text", "ab"),
        ("text", "cd"),
    ]


def test_explicit_chunks_do_not_replace_the_reasoning() -> None:
    turn = Turn("a b", reasoning="think hard", chunks=["a ", "b"])
    reasoning = "".join(p.text for p in turn.pieces if p.kind == "reasoning")
    text = "".join(p.text for p in turn.pieces if p.kind == "text")
    assert (reasoning, text) == ("think hard", "a b")


@pytest.mark.parametrize("turn", [Turn(), Turn(""), Turn(reasoning="")])
def test_empty_turns_have_no_pieces(turn) -> None:
    assert turn.pieces == ()
    assert turn.delays(0) == []
    assert turn.error_position is None


def test_split_tool_args() -> None:
    assert split_tool_args('{"a": 1, "b": 2, "c": 3}') == ['{"a": 1, ', '"b": 2, ', '"c": 3}']
    assert split_tool_args('{"a": 1}') == ['{"a": 1}']
    assert split_tool_args("{}") == ["{}"]


def test_tool_call_args_json() -> None:
    assert ToolCall("get_price", {"flower": "玫瑰", "n": 2}).args_json == (
        '{"flower": "玫瑰", "n": 2}'
    )
    assert ToolCall("noop").args_json == "{}"


# =====================================================================================
# ToolCall
# =====================================================================================


def test_tool_call_forms() -> None:
    positional = ToolCall("get_price", {"flower": "rose"})
    keyword = ToolCall(name="get_price", args={"flower": "rose"}, id="call_9")
    assert (positional.name, positional.args, positional.id) == (
        "get_price",
        {"flower": "rose"},
        None,
    )
    assert (keyword.name, keyword.args, keyword.id) == (
        "get_price",
        {"flower": "rose"},
        "call_9",
    )
    assert ToolCall("x").args == {}


def test_tool_call_missing_name() -> None:
    err = invalid(ToolCall)
    assert str(err) == "invalid script: name: this field is required (got None)"
    err = invalid(Turn, tool_calls=[{"name": "ok"}, {"args": {"a": 1}}])
    assert str(err) == ("invalid script: tool_calls[1].name: this field is required (got None)")


def test_tool_call_empty_name() -> None:
    err = invalid(ToolCall, "")
    assert str(err) == ("invalid script: name: String should have at least 1 character (got '')")


def test_tool_call_args_must_be_json() -> None:
    err = invalid(ToolCall, "x", {"when": {1, 2}})
    assert str(err) == (
        "invalid script: args: args must be JSON-serialisable: Object of type set "
        "is not JSON serializable (got {'when': {1, 2}})"
    )


# =====================================================================================
# Delays
# =====================================================================================


def test_delay_number() -> None:
    turn = Turn("a b c", first_token_delay=0.3, delay=0.05)
    assert turn.delays(3) == [0.3, 0.05, 0.05]
    assert turn.delays(1) == [0.3]
    assert turn.delays(0) == []


def test_delay_ints_become_floats() -> None:
    turn = Turn("a b", first_token_delay=1, delay=2)
    assert turn.delays(2) == [1.0, 2.0]
    assert all(type(d) is float for d in turn.delays(2))


def test_delay_list_needs_one_per_later_chunk() -> None:
    turn = Turn("a b c", first_token_delay=0.5, delay=[0.1, 0.2])
    assert turn.delay == (0.1, 0.2)
    assert turn.delays(3) == [0.5, 0.1, 0.2]
    assert Turn("one", delay=[]).delays(1) == [0.0]
    assert Turn(delay=[]).pieces == ()


@pytest.mark.parametrize(
    ("turn_kwargs", "delay", "want", "n"),
    [
        ({"text": "a b c"}, [0.1], 2, 3),
        ({"text": "a b c"}, [0.1, 0.2, 0.3], 2, 3),
        ({"text": "one"}, [0.1], 0, 1),
        ({}, [0.1], 0, 0),
    ],
)
def test_delay_list_of_wrong_length(turn_kwargs, delay, want, n) -> None:
    err = invalid(Turn, delay=delay, **turn_kwargs)
    assert str(err) == (
        "invalid script: delay: a list of delays needs one delay per chunk after "
        f"the first: {want} for this turn's {n} chunks (got {tuple(delay)!r})"
    )


def test_delay_list_counts_every_piece() -> None:
    # reasoning (1) + text (2) + tool fragments (2) = 5 pieces, 4 later delays
    kwargs = {
        "reasoning": "hm",
        "tool_calls": [ToolCall("f", {"a": 1, "b": 2})],
    }
    turn = Turn("a b", delay=[0.1, 0.2, 0.3, 0.4], **kwargs)
    assert len(turn.pieces) == 5
    assert turn.delays(5) == [0.0, 0.1, 0.2, 0.3, 0.4]
    err = invalid(Turn, "a b", delay=[0.1, 0.2, 0.3], **kwargs)
    assert "4 for this turn's 5 chunks" in str(err)


def test_delay_repeat_cycles() -> None:
    from_mapping = Turn("a b c d e f", first_token_delay=0.3, delay={"repeat": [0.05, 0.2]})
    from_class = Turn("a b c d e f", first_token_delay=0.3, delay=Repeat(repeat=[0.05, 0.2]))
    assert from_mapping.delay == from_class.delay == Repeat(repeat=(0.05, 0.2))
    want = [0.3, 0.05, 0.2, 0.05, 0.2, 0.05]
    assert from_mapping.delays(6) == from_class.delays(6) == want
    assert Turn("a b c", delay={"repeat": [7]}).delays(3) == [0.0, 7.0, 7.0]


@pytest.mark.parametrize(
    ("delay", "message", "got"),
    [
        (-1, DELAY_MSG, "-1"),
        (float("nan"), DELAY_MSG, "nan"),
        (float("inf"), DELAY_MSG, "inf"),
        (True, DELAY_MSG, "True"),
        ("0.1", DELAY_MSG, "'0.1'"),
        (None, DELAY_MSG, "None"),
        (
            {"repeat": [1], "x": 2},
            "a delay mapping must be {'repeat': [seconds, ...]}",
            "{'repeat': [1], 'x': 2}",
        ),
        ([-1], "each delay must be a finite number of seconds >= 0", "-1"),
        (["x"], "each delay must be a number of seconds >= 0", "'x'"),
        ([False], "each delay must be a number of seconds >= 0", "False"),
    ],
)
def test_bad_delay(delay, message, got) -> None:
    err = invalid(Turn, "a b", delay=delay)
    assert str(err) == f"invalid script: delay: {message} (got {got})"


@pytest.mark.parametrize(
    ("value", "message", "got"),
    [
        (-0.1, "first_token_delay must be a finite number of seconds >= 0", "-0.1"),
        (float("inf"), "first_token_delay must be a finite number of seconds >= 0", "inf"),
        ("1", "first_token_delay must be a number of seconds >= 0", "'1'"),
        (True, "first_token_delay must be a number of seconds >= 0", "True"),
    ],
)
def test_bad_first_token_delay(value, message, got) -> None:
    err = invalid(Turn, "a", first_token_delay=value)
    assert str(err) == f"invalid script: first_token_delay: {message} (got {got})"


def test_repeat_validation() -> None:
    err = invalid(Repeat, repeat=[0.1, -1])
    assert str(err) == (
        "invalid script: repeat: each repeated delay must be a finite number of "
        "seconds >= 0 (got -1)"
    )
    err = invalid(Repeat, repeat=[])
    assert str(err) == (
        "invalid script: repeat: Tuple should have at least 1 item after validation, not 0 (got ())"
    )


def test_bad_repeat_in_a_script_keeps_the_full_path() -> None:
    err = invalid(Script, [{"text": "a b", "delay": {"repeat": [0.1, -1]}}])
    assert str(err) == (
        "invalid script: turns[0].delay.repeat[1]: each repeated delay must be a "
        "finite number of seconds >= 0 (got -1)"
    )


# =====================================================================================
# Errors in turns
# =====================================================================================


@pytest.mark.parametrize(
    ("at_chunk", "position"),
    [(0, 0), (1, 1), (2, 2), ("end", 2)],
)
def test_error_positions(at_chunk, position) -> None:
    turn = Turn("a b", error=errors.ServerError, at_chunk=at_chunk)
    assert turn.error_position == position


def test_error_defaults_to_before_the_first_chunk() -> None:
    turn = Turn("a b", error=errors.APIConnectionError)
    assert turn.at_chunk == 0
    assert turn.error_position == 0


def test_error_at_end_of_an_empty_turn() -> None:
    assert Turn(error=ValueError, at_chunk="end").error_position == 0
    assert Turn(error=ValueError).error_position == 0


def test_error_position_counts_tool_fragments() -> None:
    turn = Turn(
        tool_calls=[ToolCall("f", {"a": 1, "b": 2})],
        error=errors.APIConnectionError,
        at_chunk="end",
    )
    assert turn.error_position == 2


@pytest.mark.parametrize(("at_chunk", "got"), [(3, "3"), (99, "99")])
def test_error_position_out_of_range(at_chunk, got) -> None:
    err = invalid(Turn, "a b", error=ValueError, at_chunk=at_chunk)
    assert str(err) == (
        "invalid script: at_chunk: the error position is past the last chunk; this "
        f"turn has 2 chunks, accepted: {POSITIONS} (got {got})"
    )


def test_negative_error_position_is_rejected_as_such() -> None:
    err = invalid(Turn, "a b", error=ValueError, at_chunk=-1)
    assert str(err) == f"invalid script: at_chunk: at_chunk must be {POSITIONS} (got -1)"


@pytest.mark.parametrize(("at_chunk", "got"), [(0, "0"), (1, "1"), ("end", "'end'")])
def test_at_chunk_without_error(at_chunk, got) -> None:
    err = invalid(Turn, "a b", at_chunk=at_chunk)
    assert str(err) == f"invalid script: at_chunk: at_chunk needs an error to place (got {got})"


def test_at_chunk_bad_string_is_one_clear_problem() -> None:
    err = invalid(Turn, "a b", error=ValueError, at_chunk="middle")
    assert str(err) == f"invalid script: at_chunk: at_chunk must be {POSITIONS} (got 'middle')"


def test_at_chunk_rejects_bool() -> None:
    invalid(Turn, "a b", error=ValueError, at_chunk=True)


def test_make_error_with_a_class_builds_a_fresh_instance() -> None:
    turn = Turn("a", error=errors.RateLimitError)
    first, second = turn.make_error(), turn.make_error()
    assert type(first) is type(second) is errors.RateLimitError
    assert first is not second
    assert str(first) == "rate limit exceeded (scripted by fakellm)"
    assert first.retry_after is None


def test_make_error_with_an_instance_raises_it_as_is() -> None:
    instance = errors.RateLimitError(retry_after=2)
    turn = Turn("a", error=instance)
    assert turn.error is instance
    with pytest.raises(errors.RateLimitError) as info:
        raise turn.make_error()
    assert info.value is instance
    assert instance.__traceback__ is not None
    again = turn.make_error()
    assert again is instance
    assert again.__traceback__ is None


def test_make_error_without_error() -> None:
    assert Turn("a").make_error() is None


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("RateLimitError", errors.RateLimitError),
        ("ContentFilterError", errors.ContentFilterError),
        ("TimeoutError", TimeoutError),
        ("ValueError", ValueError),
        ("KeyError", KeyError),
    ],
)
def test_error_by_name(name, cls) -> None:
    assert Turn(error=name).error is cls


@pytest.mark.parametrize(
    ("spec", "cls", "text", "attrs"),
    [
        (
            {"type": "RateLimitError", "retry_after": 2},
            errors.RateLimitError,
            "rate limit exceeded (scripted by fakellm)",
            {"retry_after": 2, "status_code": 429},
        ),
        (
            {"type": "ServerError", "status_code": 503, "message": "down"},
            errors.ServerError,
            "down",
            {"status_code": 503, "message": "down"},
        ),
        ({"type": "ValueError", "message": "boom"}, ValueError, "boom", {"args": ("boom",)}),
        ({"type": "KeyError", "args": ["k"]}, KeyError, "'k'", {"args": ("k",)}),
        ({"type": "ValueError", "args": ["a", 1]}, ValueError, "('a', 1)", {"args": ("a", 1)}),
        (
            {"type": "APITimeoutError"},
            errors.APITimeoutError,
            "request timed out (scripted by fakellm)",
            {"status_code": None},
        ),
    ],
)
def test_error_by_mapping(spec, cls, text, attrs) -> None:
    err = Turn(error=spec).make_error()
    assert type(err) is cls
    assert str(err) == text
    for key, value in attrs.items():
        assert getattr(err, key) == value


@pytest.mark.parametrize(
    "err",
    [
        errors.RateLimitError(retry_after=1.5),
        errors.RateLimitError("slow", retry_after=0, status_code=503),
        errors.ServerError(status_code=502),
        errors.APIConnectionError("reset"),
        errors.ContentFilterError(),
    ],
    ids=repr,
)
def test_provider_error_spec_round_trips_through_a_turn(err) -> None:
    rebuilt = Turn(error=err.spec()).error
    assert type(rebuilt) is type(err)
    assert rebuilt.spec() == err.spec()
    assert str(rebuilt) == str(err)


@pytest.mark.parametrize(
    ("error", "path", "message", "got"),
    [
        (
            "Nope",
            "error",
            f"unknown error 'Nope'; accepted: a fakellm.errors provider error "
            f"({KNOWN_ERRORS}) or a builtin exception name such as TimeoutError",
            "'Nope'",
        ),
        (
            "ScriptProblem",  # a class in fakellm.errors, but not an exception
            "error",
            f"unknown error 'ScriptProblem'; accepted: a fakellm.errors provider "
            f"error ({KNOWN_ERRORS}) or a builtin exception name such as TimeoutError",
            "'ScriptProblem'",
        ),
        (
            {"retry_after": 2},
            "error.type",
            "an error mapping needs 'type': an error class name",
            "None",
        ),
        (
            {"type": 5},
            "error.type",
            "an error mapping needs 'type': an error class name",
            "5",
        ),
        (
            {"type": "RateLimitError", "retry_after": -1},
            "error",
            "cannot build RateLimitError from these arguments: retry_after=-1: "
            "expected a finite number of seconds >= 0 or None; accepted keys: type, message, "
            "status_code, retry_after",
            "{'type': 'RateLimitError', 'retry_after': -1}",
        ),
        (
            {"type": "ServerError", "status": 503},
            "error",
            "cannot build ServerError from these arguments: ServerError.__init__() got an "
            "unexpected keyword argument 'status'; accepted keys: type, message, status_code, "
            "retry_after",
            "{'type': 'ServerError', 'status': 503}",
        ),
        (
            {"type": "ValueError", "code": 1},
            "error",
            "cannot build ValueError from these arguments: ValueError() takes no keyword "
            "arguments; accepted keys: type, message, args (a list of positional arguments)",
            "{'type': 'ValueError', 'code': 1}",
        ),
        (
            {"type": "ValueError", "args": 5},
            "error.args",
            "args must be a list of the error's arguments",
            "5",
        ),
        (
            {"type": "UnicodeDecodeError", "args": ["x"]},
            "error",
            "cannot build UnicodeDecodeError from these arguments: function takes exactly 5 "
            "arguments (1 given); accepted keys: type, message, args (a list of positional "
            "arguments)",
            "{'type': 'UnicodeDecodeError', 'args': ['x']}",
        ),
        (
            42,
            "error",
            "error must be an exception instance or class, an error class name, or "
            "{'type': name, ...arguments}",
            "42",
        ),
        (
            int,
            "error",
            "error must be an exception instance or class, an error class name, or "
            "{'type': name, ...arguments}",
            "<class 'int'>",
        ),
    ],
)
def test_bad_error(error, path, message, got) -> None:
    err = invalid(Turn, "a", error=error)
    assert str(err) == f"invalid script: {path}: {message} (got {got})"


STOPS_THE_RUN = (
    "is not an Exception subclass: raised from a model call it would stop the test run "
    "instead of failing the call; script an Exception such as APIConnectionError or TimeoutError"
)
ENDS_AN_ITERATOR = (
    "ends an iterator instead of failing the call (inside a stream Python turns it into "
    "RuntimeError); script another Exception"
)


@pytest.mark.parametrize(
    ("error", "message", "got"),
    [
        ("SystemExit", f"SystemExit {STOPS_THE_RUN}", "'SystemExit'"),
        ("KeyboardInterrupt", f"KeyboardInterrupt {STOPS_THE_RUN}", "'KeyboardInterrupt'"),
        ("GeneratorExit", f"GeneratorExit {STOPS_THE_RUN}", "'GeneratorExit'"),
        ({"type": "SystemExit", "args": [3]}, f"SystemExit {STOPS_THE_RUN}", "'SystemExit'"),
        (KeyboardInterrupt, f"KeyboardInterrupt {STOPS_THE_RUN}", "<class 'KeyboardInterrupt'>"),
        (SystemExit(2), f"SystemExit {STOPS_THE_RUN}", "SystemExit(2)"),
        (BaseException, f"BaseException {STOPS_THE_RUN}", "<class 'BaseException'>"),
        ("StopIteration", f"StopIteration {ENDS_AN_ITERATOR}", "'StopIteration'"),
        (StopAsyncIteration(), f"StopAsyncIteration {ENDS_AN_ITERATOR}", "StopAsyncIteration()"),
    ],
)
def test_only_exceptions_that_fail_a_call_can_be_scripted(error, message, got) -> None:
    err = invalid(Turn, "a", error=error)
    assert str(err) == f"invalid script: error: {message} (got {got})"


# =====================================================================================
# Usage
# =====================================================================================


def test_usage_valid() -> None:
    usage = Usage(
        input_tokens=3,
        output_tokens=2,
        total_tokens=5,
        input_token_details={"cache_read": 1, "audio": 0, "cache_creation": 2},
        output_token_details={"reasoning": 1, "audio": 0},
    )
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (3, 2, 5)
    assert usage.output_token_details == {"reasoning": 1, "audio": 0}
    partial = Usage(output_tokens=4)
    assert (partial.input_tokens, partial.output_tokens, partial.total_tokens) == (
        None,
        4,
        None,
    )


def test_usage_total_mismatch() -> None:
    err = invalid(Usage, input_tokens=1, output_tokens=2, total_tokens=4)
    assert str(err) == (
        "invalid script: total_tokens: total_tokens must equal input_tokens + "
        "output_tokens = 3 (got 4)"
    )


def test_usage_total_not_checked_when_a_part_is_missing() -> None:
    assert Usage(input_tokens=1, total_tokens=7).total_tokens == 7


def test_usage_in_a_turn_keeps_the_path() -> None:
    err = invalid(
        Script,
        ["ok", {"text": "a", "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 3}}],
    )
    assert str(err) == (
        "invalid script: turns[1].usage.total_tokens: total_tokens must equal "
        "input_tokens + output_tokens = 2 (got 3)"
    )


@pytest.mark.parametrize(
    ("kwargs", "path", "message", "got"),
    [
        (
            {"input_token_details": {"reasoning": 1}},
            "input_token_details.reasoning",
            "unknown detail 'reasoning'; accepted: audio, cache_creation, cache_read",
            "1",
        ),
        (
            {"output_token_details": {"cache_read": 1}},
            "output_token_details.cache_read",
            "unknown detail 'cache_read'; accepted: audio, reasoning",
            "1",
        ),
        (
            {"input_token_details": {"audio": -1}},
            "input_token_details.audio",
            "a token count must be an integer >= 0",
            "-1",
        ),
        (
            {"input_tokens": -1},
            "input_tokens",
            "Input should be greater than or equal to 0",
            "-1",
        ),
    ],
)
def test_usage_bad_values(kwargs, path, message, got) -> None:
    err = invalid(Usage, **kwargs)
    assert str(err) == f"invalid script: {path}: {message} (got {got})"


def test_usage_detail_rejects_bool() -> None:
    invalid(Usage, input_token_details={"audio": True})


# =====================================================================================
# Unknown keys, content blocks
# =====================================================================================


@pytest.mark.parametrize(
    ("cls", "accepted"),
    [
        (Turn, TURN_KEYS),
        (ToolCall, "name, args, id, raw_args, allow_unbound"),
        (
            Usage,
            "input_tokens, output_tokens, total_tokens, input_token_details, output_token_details",
        ),
        (Repeat, "repeat"),
        (Rule, "respond, responder, match, when, tools, node, match_last, times, name"),
        (Script, "turns, rules, when_exhausted, allow_races"),
    ],
)
def test_unknown_key(cls, accepted) -> None:
    err = invalid(cls, bogus=1)
    assert str(err) == (
        f"invalid script: bogus: unknown key 'bogus' in {cls.__name__}; "
        f"accepted keys: {accepted} (got 1)"
    )
    assert err.problems == (
        ScriptProblem(
            "bogus", 1, f"unknown key 'bogus' in {cls.__name__}; accepted keys: {accepted}"
        ),
    )


def test_unknown_key_nested_path() -> None:
    err = invalid(Script, turns=["a", {"txt": "b"}])
    assert str(err) == (
        "invalid script: turns[1].txt: unknown key 'txt' in Turn; accepted keys: "
        f"{TURN_KEYS} (got 'b')"
    )
    err = invalid(Script, rules=[{"respond": {"txet": "b"}}])
    assert str(err) == (
        "invalid script: rules[0].respond.txet: unknown key 'txet' in Turn; "
        f"accepted keys: {TURN_KEYS} (got 'b')"
    )


def test_content_validation() -> None:
    err = invalid(Turn, "x", content=[{"type": "text", "text": "x"}])
    assert str(err) == (
        "invalid script: content: give either text or content, not both "
        "(got ({'type': 'text', 'text': 'x'},))"
    )
    err = invalid(Turn, content=[{"type": "text"}, {"text": "x"}])
    assert str(err) == (
        "invalid script: content[1]: a content block needs a 'type' string (got {'text': 'x'})"
    )
    err = invalid(Turn, content=[{"type": "text"}], chunks="chars")
    assert str(err) == (
        "invalid script: chunks: content blocks stream one chunk per block; drop "
        "chunks (got 'chars')"
    )


def test_turn_is_immutable() -> None:
    turn = Turn("a")
    with pytest.raises(ValueError, match="frozen"):
        turn.text = "b"  # type: ignore[misc]


# =====================================================================================
# Turn.describe
# =====================================================================================


@pytest.mark.parametrize(
    ("turn", "text"),
    [
        (Turn(), "Turn(empty)"),
        (Turn("hello"), "Turn('hello')"),
        (Turn("x" * 41), "Turn('" + "x" * 37 + "...')"),
        (Turn("x" * 40), "Turn('" + "x" * 40 + "')"),
        (Turn(content=[{"type": "text"}]), "Turn(1 content blocks)"),
        (
            Turn(tool_calls=[ToolCall("a"), ToolCall("b")]),
            "Turn(tool_calls=[a, b])",
        ),
        (Turn("a b", error=ValueError), "Turn('a b', error=ValueError at_chunk=0)"),
        (
            Turn(
                "hi",
                reasoning="why",
                error=errors.RateLimitError(retry_after=1),
                at_chunk="end",
            ),
            "Turn(reasoning='why', 'hi', error=RateLimitError(retry_after=1) at_chunk=end)",
        ),
    ],
)
def test_turn_describe(turn, text) -> None:
    assert turn.describe() == text


# =====================================================================================
# Call
# =====================================================================================


def test_call_last_human_message() -> None:
    msgs = (human("first"), ai("reply"), human("second"), ai("another"))
    assert Call(0, messages=msgs).last_human_message == "second"
    assert Call(0, messages=(ai("only ai"),)).last_human_message is None
    assert Call(0).last_human_message is None
    assert Call(0, prompt="a prompt", messages=msgs).last_human_message == "a prompt"


def test_call_tool_names() -> None:
    c = Call(0, tools=(tool("get_price"), {"name": "search"}, {"type": "x"}))
    assert c.tool_names == ("get_price", "search", "")


def test_call_is_frozen() -> None:
    c = Call(3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.index = 4  # type: ignore[misc]
    assert (c.index, c.messages, c.turn, c.streaming, dict(c.kwargs)) == (
        3,
        (),
        None,
        False,
        {},
    )


# =====================================================================================
# Rule
# =====================================================================================


def test_rule_respond_text_becomes_a_turn() -> None:
    rule = Rule(respond="It costs 3.")
    assert rule.respond == Turn("It costs 3.")
    assert rule.answer(call("x")) is rule.respond


@pytest.mark.parametrize(
    ("rule_kwargs", "the_call", "matches"),
    [
        ({}, call("anything"), True),
        ({}, Call(0), True),
        ({"match": "price"}, call("what is the price?"), True),
        ({"match": "price"}, call("what does it cost?"), False),
        ({"match": "^price"}, call("the price"), False),  # search, but anchored
        ({"match": re.compile("PRICE", re.I)}, call("price?"), True),
        ({"match": "price"}, Call(0), False),
        # the last *human* message counts, not the last message
        (
            {"match": "price"},
            Call(0, messages=(human("price?"), ai("no price here"), human("thanks"))),
            False,
        ),
        ({"match": "price"}, Call(0, prompt="price of roses"), True),
        ({"when": lambda c: c.index == 2}, call("x", index=2), True),
        ({"when": lambda c: c.index == 2}, call("x", index=1), False),
        ({"tools": ["get_price"]}, call("x", tools=(tool("get_price"),)), True),
        (
            {"tools": ["get_price"]},
            call("x", tools=(tool("search"), tool("get_price"))),
            True,
        ),
        ({"tools": ["get_price", "search"]}, call("x", tools=(tool("get_price"),)), False),
        ({"tools": ["get_price"]}, call("x"), False),
        ({"tools": []}, call("x"), True),
        (
            {"match": "rose", "tools": ["get_price"], "when": lambda c: True},
            call("rose?", tools=(tool("get_price"),)),
            True,
        ),
        (
            {"match": "rose", "tools": ["get_price"], "when": lambda c: False},
            call("rose?", tools=(tool("get_price"),)),
            False,
        ),
    ],
)
def test_rule_matches(rule_kwargs, the_call, matches) -> None:
    assert Rule(respond="ok", **rule_kwargs).matches(the_call) is matches


def test_rule_when_receives_the_call() -> None:
    seen = []
    rule = Rule(respond="ok", when=lambda c: seen.append(c) or True)
    the_call = call("hi", index=7)
    assert rule.matches(the_call) is True
    assert seen == [the_call]


def test_rule_needs_exactly_one_answer() -> None:
    err = invalid(Rule)
    assert str(err) == f"invalid script: respond: {ONE_ANSWER} (got None)"
    err = invalid(Rule, respond="x", responder=lambda c: "y")
    assert str(err).startswith(f"invalid script: respond: {ONE_ANSWER} (got Turn(text='x'")
    err = invalid(Script, rules=[{"match": "x"}])
    assert str(err) == f"invalid script: rules[0].respond: {ONE_ANSWER} (got None)"


def test_rule_bad_fields() -> None:
    err = invalid(Rule, respond="x", match="(")
    assert str(err) == (
        "invalid script: match: not a valid regular expression: missing ), "
        "unterminated subpattern at position 0 (got '(')"
    )
    err = invalid(Rule, respond="x", times=0)
    assert str(err) == ("invalid script: times: Input should be greater than or equal to 1 (got 0)")


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ("plain text", Turn("plain text")),
        ({"text": "from a mapping", "chunks": "chars"}, Turn("from a mapping", chunks="chars")),
        (Turn("a turn", delay=0.5), Turn("a turn", delay=0.5)),
    ],
)
def test_rule_responder_returns(returned, expected) -> None:
    rule = Rule(responder=lambda c: returned)
    turn = rule.answer(call("x"))
    assert isinstance(turn, Turn)
    assert turn == expected
    if isinstance(returned, Turn):
        assert turn is returned


def test_rule_responder_gets_the_call() -> None:
    rule = Rule(responder=lambda c: f"you said {c.last_human_message}")
    assert rule.answer(call("roses")).text == "you said roses"


def test_rule_responder_bad_return() -> None:
    rule = Rule(responder=lambda c: 5)
    err = invalid(rule.answer, call("x"))
    assert str(err) == (
        "invalid script in the responder of Rule(any request): <script>: a turn must "
        "be a Turn, a string, an AIMessage, or a mapping of Turn fields (got 5)"
    )
    assert err.source == "the responder of Rule(any request)"
    named = Rule(responder=lambda c: None, name="prices")
    err = invalid(named.answer, call("x"))
    assert str(err) == (
        "invalid script in the responder of Rule 'prices': <script>: a turn must be "
        "a Turn, a string, an AIMessage, or a mapping of Turn fields (got None)"
    )


def test_rule_responder_bad_mapping_names_the_responder() -> None:
    rule = Rule(responder=lambda c: {"txt": "x"}, name="prices")
    err = invalid(rule.answer, call("x"))
    assert err.source == "the responder of Rule 'prices'"
    assert str(err) == (
        "invalid script in the responder of Rule 'prices': txt: unknown key 'txt' in "
        f"Turn; accepted keys: {TURN_KEYS} (got 'x')"
    )


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (Rule(respond="x"), "Rule(any request)"),
        (Rule(respond="x", name="prices", match="p"), "Rule 'prices'"),
        (Rule(respond="x", match="price"), "Rule(match='price')"),
        (Rule(respond="x", tools=["a", "b"]), "Rule(tools=['a', 'b'])"),
        (Rule(respond="x", when=lambda c: True), "Rule(when=<lambda>)"),
        (
            Rule(respond="x", match="p", tools=["t"], when=callable),
            "Rule(match='p', tools=['t'], when=callable)",
        ),
    ],
)
def test_rule_describe(rule, text) -> None:
    assert rule.describe() == text


# =====================================================================================
# Script
# =====================================================================================


def test_script_forms() -> None:
    turns = ("hello", Turn("world"), {"text": "!", "chunks": "chars"})
    positional = Script(list(turns))
    keyword = Script(turns=turns)
    assert positional == keyword
    assert positional.turns == (Turn("hello"), Turn("world"), Turn("!", chunks="chars"))
    assert positional.rules == ()
    assert positional.when_exhausted == "raise"
    assert Script().turns == ()


def test_script_bad_fields() -> None:
    err = invalid(Script, "abc")
    assert str(err) == "invalid script: turns: turns must be a list of turns (got 'abc')"
    err = invalid(Script, 5)
    assert str(err) == "invalid script: turns: turns must be a list of turns (got 5)"
    err = invalid(Script, ["a", 5])
    assert str(err) == (
        "invalid script: turns[1]: a turn is a Turn, its text (a string) or a mapping of Turn "
        "fields; got the int 5: in YAML, quote it (`- '5'`) to make it the reply text (got 5)"
    )
    err = invalid(Script, ["a"], when_exhausted="loop")
    assert str(err) == (
        "invalid script: when_exhausted: accepted: 'raise', 'cycle', 'repeat_last' (got 'loop')"
    )


@pytest.mark.parametrize("policy", ["cycle", "repeat_last"])
def test_cycling_needs_turns(policy) -> None:
    err = invalid(Script, when_exhausted=policy, rules=[Rule(respond="x")])
    assert str(err) == (
        "invalid script: when_exhausted: cycling or repeating needs at least one "
        f"turn (got {policy!r})"
    )


def test_script_reports_every_problem() -> None:
    err = invalid(
        Script,
        [{"delay": -1}, {"first_token_delay": -1}, "fine", {"at_chunk": 1}],
        when_exhausted="x",
    )
    assert str(err) == (
        "invalid script: 4 problems\n"
        f"  - turns[0].delay: {DELAY_MSG} (got -1)\n"
        "  - turns[1].first_token_delay: first_token_delay must be a finite number "
        "of seconds >= 0 (got -1)\n"
        "  - turns[3].at_chunk: at_chunk needs an error to place (got 1)\n"
        "  - when_exhausted: accepted: 'raise', 'cycle', 'repeat_last' (got 'x')"
    )
    assert [p.path for p in err.problems] == [
        "turns[0].delay",
        "turns[1].first_token_delay",
        "turns[3].at_chunk",
        "when_exhausted",
    ]
    assert err.source == ""


# =====================================================================================
# ScriptPlayer
# =====================================================================================


def take_texts(player: ScriptPlayer, n: int, text: str = "x") -> list[str | None]:
    return [player.take(call(text, index=i)).text for i in range(n)]


def test_player_plays_the_queue_in_order_then_raises() -> None:
    player = ScriptPlayer(Script(["a", "b"]))
    assert player.turns_used == 0
    assert take_texts(player, 2) == ["a", "b"]
    assert player.turns_used == 2
    with pytest.raises(Exhausted):
        player.take(call("x"))
    with pytest.raises(Exhausted):
        player.take(call("x"))
    assert player.turns_used == 2
    assert player.unused() == []


def test_player_empty_script_raises_at_once() -> None:
    with pytest.raises(Exhausted):
        ScriptPlayer(Script()).take(call("x"))


def test_player_cycle() -> None:
    player = ScriptPlayer(Script(["a", "b"], when_exhausted="cycle"))
    assert take_texts(player, 5) == ["a", "b", "a", "b", "a"]
    assert player.turns_used == 5
    assert player.unused() == []


def test_player_repeat_last() -> None:
    player = ScriptPlayer(Script(["a", "b"], when_exhausted="repeat_last"))
    assert take_texts(player, 4) == ["a", "b", "b", "b"]
    assert player.turns_used == 4


def test_player_returns_the_script_turn_objects() -> None:
    script = Script(["a"])
    assert ScriptPlayer(script).take(call("x")) is script.turns[0]


def test_player_rules_come_before_the_queue() -> None:
    script = Script(
        ["queued 1", "queued 2"],
        rules=[Rule(match="price", respond="3 euros")],
    )
    player = ScriptPlayer(script)
    got = [player.take(call(t)).text for t in ["price?", "hi", "price again", "hello"]]
    assert got == ["3 euros", "queued 1", "3 euros", "queued 2"]
    assert player.turns_used == 2
    assert player.take(call("price!")).text == "3 euros"  # rules outlive the queue
    with pytest.raises(Exhausted):
        player.take(call("no match"))


def test_player_first_matching_rule_wins() -> None:
    script = Script(
        rules=[
            Rule(match="rose", respond="first"),
            Rule(match="ro", respond="second"),
        ]
    )
    player = ScriptPlayer(script)
    assert player.take(call("rose")).text == "first"
    assert player.take(call("robin")).text == "second"


def test_player_rule_times_limit() -> None:
    script = Script(["queued"], rules=[Rule(match="price", respond="ruled", times=2)])
    player = ScriptPlayer(script)
    assert player.unused() == [
        "turns[0]: Turn('queued')",
        "rules[0]: Rule(match='price') (2 of 2 uses left)",
    ]
    assert player.take(call("price")).text == "ruled"
    assert player.unused() == [
        "turns[0]: Turn('queued')",
        "rules[0]: Rule(match='price') (1 of 2 uses left)",
    ]
    assert player.take(call("price")).text == "ruled"
    assert player.take(call("price")).text == "queued"
    assert player.unused() == []
    with pytest.raises(Exhausted):
        player.take(call("price"))


def test_player_non_matching_calls_do_not_use_up_a_rule() -> None:
    player = ScriptPlayer(Script(["q1", "q2"], rules=[Rule(match="price", respond="r", times=1)]))
    assert take_texts(player, 2, "hello") == ["q1", "q2"]
    assert player.unused() == ["rules[0]: Rule(match='price') (1 of 1 uses left)"]


def test_player_responder_rule() -> None:
    rule = Rule(responder=lambda c: f"call {c.index}: {c.last_human_message}")
    player = ScriptPlayer(Script(rules=[rule]))
    assert player.take(call("hi", index=4)).text == "call 4: hi"


def test_player_unused_lists_remaining_turns() -> None:
    script = Script(
        ["a", Turn(tool_calls=[ToolCall("get_price")]), Turn(error=ValueError)],
        rules=[Rule(respond="x", match="never", name="unlimited")],
    )
    player = ScriptPlayer(script)
    player.take(call("hello"))
    assert player.unused() == [
        "turns[1]: Turn(tool_calls=[get_price])",
        "turns[2]: Turn(error=ValueError at_chunk=0)",
    ]


def test_player_held() -> None:
    assert ScriptPlayer(Script(["a"])).held() == "1 turn, all used"
    assert ScriptPlayer(Script(["a", "b"])).held() == "2 turns, all used"
    script = Script(
        ["a", "b"],
        rules=[
            Rule(respond="x", name="price"),
            Rule(respond="y", match="x", tools=["t"]),
        ],
    )
    assert ScriptPlayer(script).held() == (
        "2 turns, all used; rules (none matched or all used up): "
        "Rule 'price'; Rule(match='x', tools=['t'])"
    )


def test_player_is_thread_safe() -> None:
    n_threads, per_thread = 8, 500
    script = Script([f"t{i}" for i in range(n_threads * per_thread)])
    player = ScriptPlayer(script)
    barrier = threading.Barrier(n_threads)
    results: list[list[str]] = [[] for _ in range(n_threads)]
    failures: list[BaseException] = []

    def worker(k: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                results[k].append(player.take(call("x", index=i)).text)
        except BaseException as exc:  # reported below
            failures.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)

    assert failures == []
    taken = [text for chunk in results for text in chunk]
    assert len(taken) == 4000
    assert sorted(taken) == sorted(f"t{i}" for i in range(4000))
    assert player.turns_used == 4000
    assert player.unused() == []
    for chunk in results:  # each thread saw the queue in order
        order = [int(t[1:]) for t in chunk]
        assert order == sorted(order)
    with pytest.raises(Exhausted):
        player.take(call("x"))


# =====================================================================================
# as_script, load_script, parse_script_text
# =====================================================================================


def test_as_script_accepts_scripts_lists_and_mappings() -> None:
    script = Script(["a"])
    assert as_script(script) is script
    assert as_script(["a", {"text": "b"}]).turns == (Turn("a"), Turn("b"))
    assert as_script(("a",)).turns == (Turn("a"),)
    mapping = as_script({"turns": ["a"], "when_exhausted": "cycle"})
    assert mapping == Script(["a"], when_exhausted="cycle")


@pytest.mark.parametrize("value", ["flowers.yaml", b"flowers.yaml", Path("flowers.yaml")])
def test_as_script_rejects_paths_and_text(value) -> None:
    err = invalid(as_script, value)
    assert str(err) == (
        "invalid script: script: a script is a Script, a list of turns or a mapping; "
        "for a file use load_script(path), for one reply use [text] "
        f"(got {value!r})"
    )


def test_as_script_rejects_other_values() -> None:
    err = invalid(as_script, 5)
    assert str(err) == (
        "invalid script: script: a script is a Script, a list of turns or a mapping (got 5)"
    )


def test_as_script_mapping_problem() -> None:
    err = invalid(as_script, {"turns": [{"delay": -1}]})
    assert str(err) == f"invalid script: turns[0].delay: {DELAY_MSG} (got -1)"


def test_load_script_passes_objects_through() -> None:
    script = Script(["a"])
    assert load_script(script) is script
    assert load_script(["a", "b"]) == Script(["a", "b"])
    assert load_script({"turns": ["a"]}) == Script(["a"])


def test_load_script_yaml_fixture() -> None:
    script = load_script(DATA / "flowers.yaml")
    # a str path works too (error instances compare by identity, so compare views)
    again = load_script(str(DATA / "flowers.yaml"))
    assert [t.describe() for t in again.turns] == [t.describe() for t in script.turns]
    assert script.when_exhausted == "raise"
    (rule,) = script.rules
    assert (rule.name, rule.match.pattern, rule.times) == ("price", "(?i)price", 1)
    assert rule.respond == Turn("Roses cost 3 euros.")

    first, tools, rate, reset, regex, explicit = script.turns
    assert texts(first) == ["Roses, ", "lilies ", "and ", "sunflowers."]
    assert first.delays(4) == [0.3, 0.05, 0.05, 0.05]

    assert tools.tool_calls == (ToolCall("get_price", {"flower": "rose", "color": "pink"}),)
    assert [p.text for p in tools.pieces] == ['{"flower": "rose", ', '"color": "pink"}']

    err = rate.make_error()
    assert type(err) is errors.RateLimitError
    assert (err.retry_after, err.status_code) == (1.5, 429)
    assert rate.error_position == 0

    assert reset.error is errors.APIConnectionError
    assert reset.error_position == 1
    assert texts(reset) == ["Pink ", "roses!"]

    assert texts(regex) == ["Hello", ", world!"]
    assert regex.delays(2) == [0.0, 0.1]

    assert explicit.text == "Hello"
    assert explicit.usage == Usage(input_tokens=3, output_tokens=2, total_tokens=5)

    player = ScriptPlayer(script)
    assert player.take(call("What's the PRICE?")).text == "Roses cost 3 euros."
    assert player.take(call("price again")) is first


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".txt", ""])
def test_load_script_yaml_suffixes(tmp_path, suffix) -> None:
    path = tmp_path / f"s{suffix}"
    path.write_text(
        "turns:\n  - hello\n  - text: world\n    chunks: chars\nwhen_exhausted: cycle\n",
        encoding="utf-8",
    )
    script = load_script(path)
    assert script == Script(["hello", Turn("world", chunks="chars")], when_exhausted="cycle")


def test_load_script_json(tmp_path) -> None:
    data = {
        "turns": [
            "hello",
            {
                "text": "玫瑰",
                "chunks": "chars",
                "error": {"type": "ServerError", "status_code": 503},
                "at_chunk": "end",
            },
        ],
        "rules": [{"match": "price", "respond": {"text": "3"}}],
    }
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    script = load_script(path)
    assert [t.text for t in script.turns] == ["hello", "玫瑰"]
    assert script.turns[1].error_position == 2
    assert script.turns[1].make_error().status_code == 503
    assert script.rules[0].respond == Turn("3")


def test_load_script_bare_list(tmp_path) -> None:
    yaml_path = tmp_path / "list.yaml"
    yaml_path.write_text("- hello\n- text: world\n  delay: 0.5\n", encoding="utf-8")
    json_path = tmp_path / "list.json"
    json_path.write_text('["hello", {"text": "world", "delay": 0.5}]', encoding="utf-8")
    want = Script(["hello", Turn("world", delay=0.5)])
    assert load_script(yaml_path) == want
    assert load_script(json_path) == want


@pytest.mark.parametrize(
    ("content", "got"),
    [("42", "42"), ("hello", "'hello'"), ("", "None"), ("null", "None")],
)
def test_load_script_non_mapping_file(tmp_path, content, got) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(content, encoding="utf-8")
    err = invalid(load_script, path)
    assert err.source == str(path)
    assert str(err) == (
        f"invalid script in {path}: <script>: a script file holds a mapping (turns, "
        f"rules, ...) or a list of turns (got {got})"
    )


def test_load_script_missing_file(tmp_path, monkeypatch) -> None:
    # A relative path keeps the message independent of how long the temporary
    # directory's path is (xdist workers and macOS have long ones, and the
    # "(got ...)" part clips long values).
    monkeypatch.chdir(tmp_path)
    err = invalid(load_script, "missing.yaml")
    assert err.source == "missing.yaml"
    assert str(err) == (
        "invalid script in missing.yaml: <script>: cannot read the script file: No such "
        "file or directory (got 'missing.yaml')"
    )
    assert err.problems == (
        ScriptProblem("", "missing.yaml", "cannot read the script file: No such file or directory"),
    )
    # A long absolute path is still named in full, as the source.
    deep = tmp_path.joinpath(*["a-long-directory-name"] * 6, "missing.yaml")
    long_err = invalid(load_script, deep)
    assert long_err.source == str(deep)
    assert str(long_err).startswith(f"invalid script in {deep}: <script>: cannot read")
    assert long_err.problems[0].value == str(deep)


def test_load_script_directory(tmp_path) -> None:
    err = invalid(load_script, str(tmp_path))
    assert str(err) == (
        f"invalid script in {tmp_path}: <script>: cannot read the script file: Is a "
        f"directory (got {str(tmp_path)!r})"
    )


def test_load_script_non_utf8_file(tmp_path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"- caf\xe9\n")
    err = invalid(load_script, path)
    assert err.source == str(path)
    assert str(err).startswith(f"invalid script in {path}: <script>: ")


def test_load_script_invalid_yaml(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("a: [1, 2", encoding="utf-8")
    err = invalid(load_script, path)
    assert err.source == str(path)
    assert str(err) == (
        f"invalid script in {path}: <script>: not valid YAML: line 1, column 9: expected ',' "
        "or ']', but got '<stream end>' (while parsing a flow sequence at line 1, column 4) "
        "(got 'a: [1, 2')"
    )


def test_load_script_invalid_json(tmp_path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("turns: [hi]", encoding="utf-8")  # YAML, but not JSON
    err = invalid(load_script, path)
    assert str(err) == (
        f"invalid script in {path}: <script>: not valid JSON: line 1, column 1: Expecting "
        "value (got 'turns: [hi]')"
    )


def test_parse_script_text_clips_the_shown_text() -> None:
    text = "{" + "x" * 60
    err = invalid(parse_script_text, text, source="inline", json_only=True)
    assert str(err) == (
        "invalid script in inline: <script>: not valid JSON: line 1, column 2: Expecting "
        f"property name enclosed in double quotes (got {'{' + 'x' * 56 + '...'!r})"
    )


def test_parse_script_text_yaml_is_a_superset_of_json() -> None:
    assert parse_script_text('{"turns": ["hi"]}') == Script(["hi"])
    assert parse_script_text('["hi"]', json_only=True) == Script(["hi"])


def test_parse_script_text_problem_without_source() -> None:
    err = invalid(parse_script_text, "turns:\n  - delay: -1\n")
    assert str(err) == f"invalid script: turns[0].delay: {DELAY_MSG} (got -1)"


def test_load_script_problem_names_the_file(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("turns:\n  - delay: -1\n", encoding="utf-8")
    err = invalid(load_script, path)
    assert err.source == str(path)
    assert str(err) == f"invalid script in {path}: turns[0].delay: {DELAY_MSG} (got -1)"


def test_load_script_several_problems_name_the_file(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "turns:\n"
        "  - text: a b\n"
        "    at_chunk: 5\n"
        "    error: ServerError\n"
        "  - tool_calls: [{args: {a: 1}}]\n"
        "when_exhausted: forever\n",
        encoding="utf-8",
    )
    err = invalid(load_script, path)
    assert str(err) == (
        f"invalid script in {path}: 3 problems\n"
        "  - turns[0].at_chunk: the error position is past the last chunk; this turn "
        f"has 2 chunks, accepted: {POSITIONS} (got 5)\n"
        "  - turns[1].tool_calls[0].name: this field is required (got None)\n"
        "  - when_exhausted: accepted: 'raise', 'cycle', 'repeat_last' (got 'forever')"
    )


def test_load_script_several_problems_content(tmp_path) -> None:
    # The part of the multi-problem report that works today (no file name).
    path = tmp_path / "s.yaml"
    path.write_text(
        "turns:\n"
        "  - text: a b\n"
        "    at_chunk: 5\n"
        "    error: ServerError\n"
        "  - tool_calls: [{args: {a: 1}}]\n"
        "when_exhausted: forever\n",
        encoding="utf-8",
    )
    err = invalid(load_script, path)
    assert [str(p) for p in err.problems] == [
        "turns[0].at_chunk: the error position is past the last chunk; this turn "
        f"has 2 chunks, accepted: {POSITIONS} (got 5)",
        "turns[1].tool_calls[0].name: this field is required (got None)",
        "when_exhausted: accepted: 'raise', 'cycle', 'repeat_last' (got 'forever')",
    ]
    assert str(err).endswith(": 3 problems\n" + "\n".join(f"  - {p}" for p in err.problems))
