"""Hypothesis strategies for scripts, and exploration of concurrent scenarios.

Strategies for every part of a :class:`~fakellm.Turn` (token streams,
latencies, errors, usage, tool calls), whole turns and scripts, and
:func:`scenarios`: N concurrent calls of an app against fake models whose
timing and failures Hypothesis chooses, each example on a fresh virtual-time
loop, recorded, and shrunk to a minimal, readable counterexample on failure::

    @settings(deadline=None, max_examples=100)
    @given(strategies.scenarios(calls=3))
    def test_collector(scenario):
        collector = TokenCollector()
        run = scenario.run(lambda i, model: stream_reply(model, collector))
        for i, streamed in enumerate(run.results):
            assert collector.text(run.runs(i)[0].id) == streamed

Every strategy only makes what the models accept: explicit chunks with one
delay per chunk, errors at a position the turn has, tool calls of bound tools.
Latencies are whole milliseconds, so shrunk examples read as ``0``/``1`` ms.
Defaults are small so that a suite of property tests runs in seconds.

Scenarios can also play over one shared model routed by rules, as apps hold
it (:meth:`Scenario.shared_model`), with provider faults in front of it
(:func:`chaos`, see :mod:`fakellm.chaos`); :class:`TurnFeed` hands a model its
next turn from a stateful test's rule step.

As in Hypothesis, arguments are checked at first use and a bad one raises
``InvalidArgument``. Importing this module registers the strategies for
``st.from_type`` and teaches Hypothesis' printer to show scripts as code
(:func:`source`). The pytest plugin never imports it, so a suite that never
uses Hypothesis never loads it.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import dataclasses
import functools
import inspect
import itertools
import math
import string
import threading
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, TypeVar, TypeVarTuple

from hypothesis import currently_in_test_context, note
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy
from hypothesis.vendor.pretty import pretty
from langchain_core.utils.function_calling import convert_to_openai_tool

from fakellm import _clock, _compat, _loop, _scenario
from fakellm import errors as _errors
from fakellm._events import EventLog, Run
from fakellm._model import FakeChatModel
from fakellm._recorder import Recorder
from fakellm._script import (
    Call,
    Exhausted,
    PendingTurn,
    Rule,
    Script,
    ScriptPlayer,
    ToolCall,
    Turn,
    Usage,
    split_text,
    split_tool_args,
    stub_tools,
)
from fakellm._source import register_pretty, source
from fakellm.chaos import Chaos, Quota

if TYPE_CHECKING:
    from hypothesis.vendor.pretty import RepresentationPrinter

__all__ = [
    "DEFAULT_ERRORS",
    "ErrorAt",
    "Scenario",
    "ScenarioRun",
    "TurnFeed",
    "chaos",
    "errors",
    "latencies",
    "scenarios",
    "scripts",
    "source",
    "token_streams",
    "tool_calls",
    "tools_for",
    "turns",
    "usage",
]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

#: The provider errors :func:`errors` picks from, simplest (shrink target) first.
DEFAULT_ERRORS: tuple[type[BaseException], ...] = (
    _errors.RateLimitError,
    _errors.APIConnectionError,
    _errors.APITimeoutError,
    _errors.ServerError,
    _errors.BadRequestError,
    _errors.ContentFilterError,
    _errors.AuthenticationError,
)

# Any character but a lone surrogate (unicode must survive the stream
# unchanged); it shrinks towards "0", so counterexamples stay readable.
_TEXT_CHARS = st.characters()  # excludes lone surrogates (Cs) by default
_NAME_CHARS = string.ascii_lowercase
_FREE_TOOL_NAMES = ("lookup", "search", "calculate")
_MS = 1000
# The branch choice of ``st.none() | x`` (0: None), drawn without one_of's spans.
_ONE_OF_TWO = st.integers(0, 1)


# ------------------------------------------------------------- argument checks
#
# As in Hypothesis itself, a strategy's arguments are checked when it is first
# used (drawn from, or validated by @given), not when it is built: a bad
# ``@given(scenarios(calls=0))`` at module level fails its own test, not the
# collection of the whole file. Every message names the argument and the value
# as ``name=value`` and says what is accepted.


def _lazy(
    name: str,
    arguments: Mapping[str, Any],
    build: Callable[[], SearchStrategy[T]],
    makes: type | None = None,
) -> SearchStrategy[T]:
    """``build()`` deferred to first use, shown as the call that made it."""
    shown = ", ".join(f"{k}={_shown(v)}" for k, v in arguments.items())
    built: list[SearchStrategy[T]] = []

    def definition() -> SearchStrategy[T]:
        if not built:
            built.append(build())
        return built[0]

    definition.__name__ = definition.__qualname__ = f"{name}({shown})"
    strategy = st.deferred(definition)
    _MADE[strategy] = (definition.__name__, makes, definition)
    return strategy


# Each strategy of this module: the call that made it (for messages: Hypothesis
# shows it as deferred(...)), what it draws, so that passing one where another
# is expected (scripts=turns()) is named before anything is drawn, and how it is
# built (see _inner).
_MADE: weakref.WeakKeyDictionary[
    SearchStrategy[Any], tuple[str, type | None, Callable[[], SearchStrategy[Any]]]
] = weakref.WeakKeyDictionary()


def _inner(strategy: SearchStrategy[T]) -> SearchStrategy[T]:
    """What to draw from in place of ``strategy`` inside another of this module's
    strategies: one of ours built (its arguments checked now, at the outer one's
    first use), without the deferred layer around it; anything else as given."""
    made = _MADE.get(strategy)
    return strategy if made is None else made[2]()


def _shown(value: Any) -> str:
    made = _MADE.get(value) if isinstance(value, SearchStrategy) else None
    return made[0] if made is not None else repr(value)


def _check_int(name: str, value: Any, *, at_least: int = 0, what: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < at_least:
        raise InvalidArgument(f"{name}={value!r}: expected an integer >= {at_least}{what}")
    return value


def _check_bounds(low_name: str, low: Any, high_name: str, high: Any, *, at_least: int = 0) -> None:
    _check_int(low_name, low, at_least=at_least)
    _check_int(high_name, high, at_least=at_least)
    if high < low:
        raise InvalidArgument(
            f"{high_name}={high!r} < {low_name}={low!r}: expected {low_name} <= {high_name}"
        )


def _check_bool(name: str, value: Any, what: str = "") -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name}={value!r}: expected True or False{what}")
    return value


def _check_strategy(name: str, value: Any, of: str) -> SearchStrategy[Any]:
    if not isinstance(value, SearchStrategy):
        raise InvalidArgument(f"{name}={value!r}: expected a strategy of {of}")
    return value


def _check_alphabet(value: Any) -> SearchStrategy[str] | str:
    if isinstance(value, str) and value:
        return value
    if not isinstance(value, SearchStrategy):
        raise InvalidArgument(
            f"alphabet={value!r}: expected a strategy of characters, such as "
            "st.characters(), or a non-empty string of them"
        )
    return value


def _check_error_types(name: str, value: Any) -> tuple[type[BaseException], ...]:
    accepted = (
        "a non-empty list or tuple of exception classes, such as "
        "[errors.RateLimitError, errors.ServerError]"
    )
    if not isinstance(value, list | tuple) or not value:
        raise InvalidArgument(f"{name}={value!r}: expected {accepted}")
    for i, t in enumerate(value):
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise InvalidArgument(f"{name}[{i}]={t!r}: not an exception class; expected {accepted}")
    return tuple(value)


def _check_tools(value: Any) -> list[dict[str, Any]]:
    accepted = (
        "None (free-form calls) or a non-empty list of what bind_tools takes: "
        "functions, pydantic models, BaseTools, OpenAI tool dicts"
    )
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence) or not value:
        raise InvalidArgument(f"tools={value!r}: expected {accepted}")
    schemas = []
    for i, tool in enumerate(value):
        try:
            schemas.append(convert_to_openai_tool(tool)["function"])
        except Exception as exc:  # langchain-core raises ValueError, TypeError, ...
            raise InvalidArgument(
                f"tools[{i}]={tool!r}: cannot be bound as a tool: {exc}"
            ) from None
    return schemas


def _check_ms(name: str, value: Any) -> int:
    return _check_int(name, value, what=" (whole milliseconds)")


# -------------------------------------------------------------- parts of a turn


def token_streams(
    *,
    text: str | None = None,
    min_chunks: int = 0,
    max_chunks: int = 6,
    max_chunk_size: int = 4,
    alphabet: SearchStrategy[str] | str = _TEXT_CHARS,
) -> SearchStrategy[tuple[str, ...]]:
    """Chunkings of a text: tuples of strings, for ``Turn(chunks=...)``.

    Without ``text`` each chunk is drawn (up to ``max_chunk_size`` characters
    of ``alphabet``, any unicode by default); with ``text`` the chunks are cuts
    of it that join back to it. Either way chunks can be empty (the model
    drops them: they are not streamed). ``min_chunks``/``max_chunks`` bound the
    number of chunks, empty ones included (with ``text`` there is always at
    least one).

    Shrinks towards fewer chunks, shorter (then empty) chunks and simpler
    characters (``"0"``); with ``text``, towards fewer cuts at its start.
    """
    arguments = _given(
        text=(text, None),
        min_chunks=(min_chunks, 0),
        max_chunks=(max_chunks, 6),
        max_chunk_size=(max_chunk_size, 4),
        alphabet=(alphabet, _TEXT_CHARS),
    )

    def build() -> SearchStrategy[tuple[str, ...]]:
        _check_bounds("min_chunks", min_chunks, "max_chunks", max_chunks)
        _check_int("max_chunk_size", max_chunk_size)
        letters = _check_alphabet(alphabet)
        if text is None:
            return _drawn_chunks(min_chunks, max_chunks, max_chunk_size, letters)
        if not isinstance(text, str):
            raise InvalidArgument(f"text={text!r}: expected a string or None")
        if max_chunks < 1:
            raise InvalidArgument(
                f"max_chunks={max_chunks!r}: cuts of text={text!r} are at least one chunk; "
                "expected max_chunks >= 1"
            )
        return _cuts(text, min_chunks, max_chunks)

    return _lazy("token_streams", arguments, build)


def _given(**pairs: tuple[Any, Any]) -> dict[str, Any]:
    """The arguments that differ from their defaults, to show a strategy as its call."""
    return {k: v for k, (v, default) in pairs.items() if v is not default and v != default}


def _cuts(whole: str, min_chunks: int, max_chunks: int) -> SearchStrategy[tuple[str, ...]]:
    cuts = st.lists(
        st.integers(0, len(whole)),
        min_size=max(min_chunks - 1, 0),
        max_size=max_chunks - 1,
    )

    @st.composite
    def cut(draw: st.DrawFn) -> tuple[str, ...]:
        bounds = [0, *sorted(draw(cuts)), len(whole)]
        return tuple(whole[a:b] for a, b in itertools.pairwise(bounds))

    return cut()


@functools.lru_cache(maxsize=64)
def _drawn_chunks(
    min_chunks: int, max_chunks: int, max_chunk_size: int, alphabet: SearchStrategy[str] | str
) -> SearchStrategy[tuple[str, ...]]:
    draw_chunks = _chunk_drawer(min_chunks, max_chunks, max_chunk_size, alphabet)
    return st.composite(draw_chunks)()


@functools.lru_cache(maxsize=64)
def _chunk_drawer(
    min_chunks: int, max_chunks: int, max_chunk_size: int, alphabet: SearchStrategy[str] | str
) -> Callable[[st.DrawFn], tuple[str, ...]]:
    """Draws a chunking with the caller's ``draw`` (turns() draws it inline)."""
    # Two choices however many chunks: one byte per chunk giving its length,
    # then a text of exactly the total length, cut in turn. (One choice per
    # chunk made long streams slow to draw.)
    modulo = max_chunk_size + 1
    sizes: SearchStrategy[Any]
    if max_chunk_size < 256:
        sizes = st.binary(min_size=min_chunks, max_size=max_chunks)  # each byte % modulo
    else:  # one byte cannot say every length
        sizes = st.lists(st.integers(0, max_chunk_size), min_size=min_chunks, max_size=max_chunks)

    @functools.cache
    def text_of(length: int) -> SearchStrategy[str]:
        return st.text(alphabet, min_size=length, max_size=length)

    def draw_chunks(draw: st.DrawFn) -> tuple[str, ...]:
        lengths = [b % modulo for b in draw(sizes)]
        whole = draw(text_of(sum(lengths)))
        out = []
        pos = 0
        for size in lengths:
            out.append(whole[pos : pos + size])
            pos += size
        return tuple(out)

    return draw_chunks


def latencies(
    *,
    size: int | None = None,
    min_size: int = 0,
    max_size: int = 6,
    max_ms: int = 50,
) -> SearchStrategy[tuple[int, ...]]:
    """Delays in whole milliseconds, each in ``[0, max_ms]``: ``size`` of them,
    or between ``min_size`` and ``max_size``.

    Drawn as one base value plus a per-delay offset, so they shrink towards
    0 and towards all being equal (ties are where concurrency bugs hide, and
    equal delays read best in a counterexample). Divide by 1000 for seconds.
    """
    arguments = _given(
        size=(size, None), min_size=(min_size, 0), max_size=(max_size, 6), max_ms=(max_ms, 50)
    )

    def build() -> SearchStrategy[tuple[int, ...]]:
        low, high = min_size, max_size
        if size is not None:
            low = high = _check_int("size", size)
        _check_bounds("min_size", low, "max_size", high)
        return _latencies(low, high, _check_ms("max_ms", max_ms))

    return _lazy("latencies", arguments, build)


@functools.lru_cache(maxsize=256)
def _latencies(min_size: int, max_size: int, max_ms: int) -> SearchStrategy[tuple[int, ...]]:
    return st.composite(_latency_drawer(min_size, max_size, max_ms))()


@functools.lru_cache(maxsize=256)
def _latency_drawer(
    min_size: int, max_size: int, max_ms: int
) -> Callable[[st.DrawFn], tuple[int, ...]]:
    """Draws latencies with the caller's ``draw`` (turns() and scenarios() draw
    them inline, one per drawn chunk count: cached)."""
    #
    # The offsets come from one bytes choice (1 or 2 bytes each) rather than
    # one integer choice each: three times faster to draw for long streams,
    # and the bytes still shrink towards zero, which decodes to offset 0.
    width = 1 if max_ms <= 127 else 2
    top = (1 << (8 * width - 1)) - 1
    base_ms = st.integers(0, max_ms)
    raw = st.binary(min_size=min_size * width, max_size=max_size * width)

    def draw_latencies(draw: st.DrawFn) -> tuple[int, ...]:
        base = draw(base_ms)
        data = draw(raw)
        out = []
        for i in range(0, len(data) - width + 1, width):
            b = int.from_bytes(data[i : i + width], "big")
            zigzag = b >> 1 if b % 2 == 0 else -((b + 1) >> 1)  # 0, -1, 1, -2, 2, ...
            out.append(min(max(base + int(zigzag * max_ms / top), 0), max_ms))
        return tuple(out)

    return draw_latencies


class ErrorAt(NamedTuple):
    """An error and where it strikes: ``Turn(error=e.error, at_chunk=e.at_chunk)``."""

    error: type[BaseException]
    at_chunk: int | Literal["end"]


def errors(
    *,
    chunks: int = 0,
    types: Sequence[type[BaseException]] = DEFAULT_ERRORS,
    end: bool = True,
) -> SearchStrategy[ErrorAt]:
    """Which error (a class from ``types``) and where it strikes in a turn of
    ``chunks`` chunks: after 0..``chunks`` chunks, or (if ``end`` and the turn
    has chunks) ``"end"``.

    Shrinks towards the first type (a rate limit) striking before the first
    chunk.
    """
    arguments = _given(chunks=(chunks, 0), types=(types, DEFAULT_ERRORS), end=(end, True))

    def build() -> SearchStrategy[ErrorAt]:
        return _errors_at(
            _check_int("chunks", chunks),
            _check_error_types("types", types),
            _check_bool("end", end),
        )

    return _lazy("errors", arguments, build)


@functools.lru_cache(maxsize=256)
def _errors_at(
    chunks: int, types: tuple[type[BaseException], ...], end: bool
) -> SearchStrategy[ErrorAt]:
    # One integer choice; with ``end``, one past the last position means "end"
    # (not offered without chunks, where "end" is the same place as 0).
    where = st.integers(0, chunks + 1 if end and chunks else chunks).map(
        lambda k: "end" if k > chunks else k
    )
    return st.builds(ErrorAt, st.sampled_from(types), where)


def usage(*, max_tokens: int = 100, details: bool = True) -> SearchStrategy[Usage | None]:
    """Usage a turn reports: None (the model computes it), or a :class:`Usage`
    with some counts given and the rest computed, totals always consistent;
    with ``details``, cache and reasoning token details too.

    Shrinks towards None, then towards fewer given counts and zeros.
    """
    arguments = _given(max_tokens=(max_tokens, 100), details=(details, True))

    def build() -> SearchStrategy[Usage | None]:
        return st.none() | _given_usage(
            _check_int("max_tokens", max_tokens), _check_bool("details", details)
        )

    return _lazy("usage", arguments, build)


@functools.lru_cache(maxsize=16)
def _given_usage(max_tokens: int, details: bool) -> SearchStrategy[Usage]:
    tokens = st.integers(0, max_tokens)
    flag = st.booleans()

    def count(draw: st.DrawFn) -> int | None:
        return draw(tokens) if draw(_ONE_OF_TWO) else None  # st.none() | tokens

    @st.composite
    def draw_usage(draw: st.DrawFn) -> Usage:
        i, o = count(draw), count(draw)
        data: dict[str, Any] = {"input_tokens": i, "output_tokens": o}
        if i is not None and o is not None and draw(flag):
            data["total_tokens"] = i + o
        # Details are parts of a count: at most that count when it is given.
        if details and draw(flag):
            data["input_token_details"] = {"cache_read": min(draw(tokens), i or 0)}
        if details and draw(flag):
            data["output_token_details"] = {"reasoning": min(draw(tokens), o or 0)}
        return Usage(**data)

    return draw_usage()


def tool_calls(
    *,
    tools: Sequence[Any] | None = None,
    min_calls: int = 1,
    max_calls: int = 2,
) -> SearchStrategy[tuple[ToolCall, ...]]:
    """Tool calls: with ``tools`` (anything ``bind_tools`` takes: functions,
    pydantic models, ``BaseTool``s, OpenAI dicts), calls of those tools with
    arguments that fit their JSON schemas; without, calls of ``lookup``,
    ``search`` or ``calculate`` with free JSON arguments (bind
    :func:`tools_for` the script).

    Shrinks towards fewer calls and the simplest arguments (optional ones
    left out), whichever tool takes those.
    """
    arguments = _given(tools=(tools, None), min_calls=(min_calls, 1), max_calls=(max_calls, 2))

    def build() -> SearchStrategy[tuple[ToolCall, ...]]:
        _check_bounds("min_calls", min_calls, "max_calls", max_calls)
        one = _one_tool_call(None if tools is None else _check_tools(tools))
        return _as(tuple, st.lists(one, min_size=min_calls, max_size=max_calls))

    return _lazy("tool_calls", arguments, build)


def _one_tool_call(schemas: list[dict[str, Any]] | None) -> SearchStrategy[ToolCall]:
    if schemas is None:
        free = st.dictionaries(
            st.text(_NAME_CHARS, min_size=1, max_size=4), _json_leaves(), max_size=3
        )
        return st.builds(ToolCall, st.sampled_from(_FREE_TOOL_NAMES), free)
    return st.one_of(
        [
            st.builds(
                ToolCall,
                st.just(s["name"]),
                _from_schema(s.get("parameters") or {"type": "object"}),
            )
            for s in schemas
        ]
    )


def tools_for(script: Script | Sequence[Turn]) -> list[dict[str, Any]]:
    """OpenAI tool schemas for every tool ``script`` calls, to bind them:
    ``model.bind_tools(tools_for(script))``. Arguments are not constrained."""
    return stub_tools(script if isinstance(script, Script) else Script(list(script)))


# ---------------------------------------------------------------- turns, scripts


def turns(
    *,
    min_chunks: int = 0,
    max_chunks: int = 6,
    max_ms: int = 50,
    errors: bool | Sequence[type[BaseException]] = True,
    usage: bool = True,
    tools: Sequence[Any] | None = None,
    max_tool_calls: int = 2,
    reasoning: bool = False,
    alphabet: SearchStrategy[str] | str = _TEXT_CHARS,
    max_first_token_ms: int | None = None,
) -> SearchStrategy[Turn]:
    """Valid :class:`~fakellm.Turn` objects: explicit chunks (see
    :func:`token_streams`), a first-token delay and one delay per later chunk
    (see :func:`latencies`), and optionally an error (``errors``: True for
    :data:`DEFAULT_ERRORS`, or the classes to pick from), explicit usage,
    reasoning, and tool calls of ``tools`` (none unless ``tools`` is given,
    since a model rejects calls of tools it does not have bound).
    ``max_first_token_ms`` (default ``max_ms``) lets first tokens be slow,
    as they are on a loaded provider, while later chunks stay quick.

    Delays that are all equal are written as one number (``delay=0.002``),
    zero ones left out, so a turn reads as its script would. Turns with
    reasoning or tool calls are for ``FakeChatModel``; the others also suit
    ``FakeLLM``. Shrinks towards no error, computed usage, no tool calls,
    fewer and simpler chunks and zero, equal delays.
    """
    arguments = _given(
        min_chunks=(min_chunks, 0),
        max_chunks=(max_chunks, 6),
        max_ms=(max_ms, 50),
        errors=(errors, True),
        usage=(usage, True),
        tools=(tools, None),
        max_tool_calls=(max_tool_calls, 2),
        reasoning=(reasoning, False),
        alphabet=(alphabet, _TEXT_CHARS),
        max_first_token_ms=(max_first_token_ms, None),
    )

    def build() -> SearchStrategy[Turn]:
        _check_bounds("min_chunks", min_chunks, "max_chunks", max_chunks)
        _check_ms("max_ms", max_ms)
        first_ms = (
            max_ms
            if max_first_token_ms is None
            else _check_ms("max_first_token_ms", max_first_token_ms)
        )
        if errors is True or errors is False:
            error_types = DEFAULT_ERRORS if errors else ()
        elif isinstance(errors, list | tuple):
            error_types = _check_error_types("errors", errors)
        else:
            raise InvalidArgument(
                f"errors={errors!r}: expected True (DEFAULT_ERRORS), False (no errors), "
                "or a non-empty list or tuple of exception classes"
            )
        _check_bool("usage", usage, " (explicit usage on some turns, or always computed)")
        _check_int("max_tool_calls", max_tool_calls)
        _check_bool("reasoning", reasoning)
        schemas = None if tools is None else _check_tools(tools)
        return _turns(
            min_chunks,
            max_chunks,
            max_ms,
            first_ms,
            error_types,
            usage,
            schemas,
            max_tool_calls,
            reasoning,
            _check_alphabet(alphabet),
        )

    return _lazy("turns", arguments, build, Turn)


def _turns(
    min_chunks: int,
    max_chunks: int,
    max_ms: int,
    first_ms: int,
    error_types: tuple[type[BaseException], ...],
    usage: bool,
    schemas: list[dict[str, Any]] | None,
    max_tool_calls: int,
    reasoning: bool,
    alphabet: SearchStrategy[str] | str,
) -> SearchStrategy[Turn]:
    draw_chunks = _chunk_drawer(min_chunks, max_chunks, 4, alphabet)
    usage_strategy = _given_usage(100, True)
    calls_strategy = (
        None
        if schemas is None
        else _as(tuple, st.lists(_one_tool_call(schemas), max_size=max_tool_calls))
    )
    reasoning_strategy = st.text(alphabet, min_size=1, max_size=8)
    first_wait = st.integers(0, first_ms)

    error_type = st.sampled_from(error_types) if error_types else st.nothing()

    @functools.lru_cache(maxsize=64)
    def error_place(n: int) -> SearchStrategy[int]:
        return st.integers(0, n + 1 if n else 0)  # as _errors_at(n, error_types, True)

    @st.composite
    def draw_turn(draw: st.DrawFn) -> Turn:
        chunks = draw_chunks(draw)
        data: dict[str, Any] = {"chunks": chunks}
        n = sum(1 for c in chunks if c)
        if reasoning:
            # Each optional part is one 0/1 choice, then the part: the choices
            # st.none() | part makes, with fewer spans around them.
            thought = draw(reasoning_strategy) if draw(_ONE_OF_TWO) else None
            if thought is not None:
                data["reasoning"] = thought
                n += len(split_text(thought, "words"))
        if calls_strategy is not None:
            calls = draw(calls_strategy)
            if calls:
                data["tool_calls"] = calls
                n += sum(len(split_tool_args(tc.args_json)) for tc in calls)
        if first_ms == max_ms:
            waits = _latency_drawer(max(n, 1), max(n, 1), max_ms)(draw)
            first, later = waits[0], waits[1:]
        else:
            first = draw(first_wait)
            later = _latency_drawer(max(n - 1, 0), max(n - 1, 0), max_ms)(draw)
        if first:
            data["first_token_delay"] = first / _MS
        if len(set(later)) > 1:
            data["delay"] = tuple(w / _MS for w in later)
        elif later and later[0]:
            data["delay"] = later[0] / _MS
        if error_types and draw(_ONE_OF_TWO) == 1:
            data["error"] = draw(error_type)
            place = draw(error_place(n))
            if place != 0:
                data["at_chunk"] = "end" if place > n else place
        if usage and draw(_ONE_OF_TWO) == 1:
            data["usage"] = draw(usage_strategy)
        return Turn(**data)

    return draw_turn()


def scripts(
    *,
    turns: SearchStrategy[Turn] | None = None,
    min_turns: int = 1,
    max_turns: int = 3,
) -> SearchStrategy[Script]:
    """Scripts of ``min_turns``..``max_turns`` turns drawn from ``turns``
    (default: :func:`turns` with its defaults). Shrinks towards fewer, simpler
    turns."""
    arguments = _given(turns=(turns, None), min_turns=(min_turns, 1), max_turns=(max_turns, 3))

    def build() -> SearchStrategy[Script]:
        _check_bounds("min_turns", min_turns, "max_turns", max_turns)
        each = _inner(_turn_strategy()) if turns is None else _checked_draws("turns", turns, Turn)
        return _as(Script, st.lists(each, min_size=min_turns, max_size=max_turns))

    return _lazy("scripts", arguments, build, Script)


_turn_strategy = turns  # scripts() has a parameter of that name


def _short(value: Any, limit: int = 80) -> str:
    text = source(value) if isinstance(value, Turn | Script | ToolCall | Usage) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as(make: Callable[[Any], T], strategy: SearchStrategy[Any]) -> SearchStrategy[T]:
    """``strategy.map(make)``, but the result prints as itself: Hypothesis would
    show a mapped value as the call that made it (``tuple([...])``)."""

    @st.composite
    def made(draw: st.DrawFn) -> T:
        return make(draw(strategy))

    return made()


def _checked_draws(name: str, strategy: Any, cls: type[T]) -> SearchStrategy[T]:
    """``strategy``, whose every draw must be a ``cls``: a wrong one is named at once."""
    _check_strategy(name, strategy, cls.__name__)
    makes = _MADE[strategy][1] if strategy in _MADE else None
    if makes is not None and issubclass(makes, cls):
        return _inner(strategy)  # only ever draws a cls: nothing to check per draw
    if makes is not None:
        shown = _shown(strategy)
        hint = ""
        if makes is Turn and cls is Script:
            hint = f" (scripts of such turns: scripts(turns={shown}))"
        raise InvalidArgument(
            f"{name}={shown}: a strategy of {makes.__name__}; expected a strategy of "
            f"{cls.__name__}{hint}"
        )

    def check(value: Any) -> T:
        if not isinstance(value, cls):
            raise InvalidArgument(
                f"{name}={_shown(strategy)} drew {_short(value)}, not a {cls.__name__}; "
                f"expected a strategy of {cls.__name__}"
            )
        return value

    return _as(check, strategy)


_script_strategy = scripts  # scenarios() has a parameter of that name


# -------------------------------------------------------------------- scenarios

# Which scenario call the running code belongs to: set in each call's task, and
# copied into everything it starts (tasks, executor jobs), so a shared model's
# routing rules know whose request they see.
_current_call: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "fakellm_scenario_call", default=None
)


class _CallRoute:
    """The routing rule of call ``i`` on a shared model: it matches that call's
    requests while its script has a turn for them, and answers with that turn."""

    def __init__(self, i: int, script: Script, scenario: Scenario) -> None:
        self.i = i
        self.scenario = scenario
        self.player = ScriptPlayer(script)
        self.run_ids: list[Any] = []
        self._taken: Turn | PendingTurn | None = None

    def when(self, call: Call) -> bool:
        if _current_call.get() != self.i:
            return False
        # The model asks `when`, then (under its lock) the responder: taking the
        # turn here lets a call past its script fall through to the model's own
        # UnexpectedCall, recorded and strict like any other.
        try:
            self._taken = self.player.take(call)
        except Exhausted:
            return False
        return True

    def respond(self, call: Call) -> Any:
        self.run_ids.append(call.run_id)
        taken, self._taken = self._taken, None
        assert taken is not None  # set by when(), which the model asked just before
        # An async responder in the call's own script: hand its awaitable on, so
        # the model's async path awaits it as it would the script's own.
        return taken.awaitable if isinstance(taken, PendingTurn) else taken

    def rule(self) -> Rule:
        script = self.player.script
        # With a plain queue, `times` makes the model report unused turns at teardown.
        plain = not script.rules and script.when_exhausted == "raise" and script.turns
        return Rule(
            when=self.when,
            responder=self.respond,
            name=f"call{self.i}",
            times=len(script.turns) if plain else None,
        )


@dataclasses.dataclass(frozen=True, repr=False)
class Scenario:
    """N concurrent calls of an app, call ``i`` answered by ``scripts[i]``.

    Attributes:
        scripts: one script per call.
        starts_ms: how long (ms) after the start each call begins.
        holds: opt-in ready-queue perturbation (``scenarios(perturb=True)``):
            ``(step, k)`` holds the ``step``-th callback scheduled with
            ``call_soon`` back for ``k`` loop iterations. Empty: plain FIFO.
        chaos: provider faults (see :mod:`fakellm.chaos`): request-level ones
            (quota, failures) counted over every call on a shared model, or per
            model; turn-level ones (``truncate``, ``slow``) on turn ``k`` of each
            call's script.
    """

    scripts: tuple[Script, ...]
    starts_ms: tuple[int, ...]
    holds: tuple[tuple[int, int], ...] = ()
    chaos: Chaos | None = None

    def __post_init__(self) -> None:
        if len(self.starts_ms) != len(self.scripts):
            raise ValueError(
                f"starts_ms has {len(self.starts_ms)} entries for {len(self.scripts)} scripts"
            )

    @property
    def calls(self) -> int:
        """How many concurrent calls the scenario makes."""
        return len(self.scripts)

    def models(self, recorder: Recorder | None = None, **kwargs: Any) -> list[FakeChatModel]:
        """Fresh models, one per call, named ``call0``, ``call1``, ... (their
        run name), each recording into ``recorder`` if given."""
        if recorder is not None:
            kwargs = {"callbacks": [recorder], **kwargs}
        return [
            FakeChatModel(script=self._with_chaos(s), name=f"call{i}", **kwargs)
            for i, s in enumerate(self.scripts)
        ]

    def shared_model(self, recorder: Recorder | None = None, **kwargs: Any) -> FakeChatModel:
        """One model for every call, as an app holds it: a rule per call routes
        that call's requests (made from its task, or from anything the task
        started) to its script, turn after turn. The chaos rule, if any, comes
        first, so a quota counts every call's requests.

        Give it to :meth:`run` as ``model=`` (with the same ``recorder``).
        """
        chaos = self.chaos if self.chaos is not None else Chaos()
        routes = [_CallRoute(i, chaos.faulty_turns(s), self) for i, s in enumerate(self.scripts)]
        rules = tuple(r.rule() for r in routes)
        script = chaos.apply(Script(rules=rules))
        if recorder is not None:
            kwargs = {"callbacks": [recorder], **kwargs}
        return FakeChatModel(script=script, **kwargs)

    def _with_chaos(self, script: Script) -> Script:
        return script if self.chaos is None else self.chaos.apply(script)

    def run(
        self,
        call: Callable[[int, FakeChatModel], Awaitable[T]],
        *,
        shared: bool = False,
        model: FakeChatModel | None = None,
        recorder: Recorder | None = None,
        return_exceptions: bool = False,
        freeze: bool = False,
        **model_kwargs: Any,
    ) -> ScenarioRun[T]:
        """Play the scenario: ``call(i, model)`` for every call ``i``, concurrently,
        each after its start delay, on a fresh virtual-time loop.

        By default each call gets a fresh model of its own; with ``shared=True``
        every call gets one :meth:`shared_model`, and with ``model=`` (made by
        :meth:`shared_model`) that one, so an app built around it beforehand
        can be played. The models record into ``recorder`` (a fresh
        :class:`~fakellm.Recorder` unless given; attach the same one to your
        app's config to record its chains too). The scripts, held callbacks and
        the timeline are passed to :func:`hypothesis.note`, so a failing
        example shows them.

        Args:
            call: the app's part in call ``i``, given the model; an ``async``
                function (or one returning an awaitable). Sync app code blocks
                the loop, so it is refused: wrap it (``await
                asyncio.to_thread(...)``) if it must run.
            shared: one model for every call, routed by rules.
            model: a model from :meth:`shared_model` to give every call.
            recorder: where the models record.
            return_exceptions: keep a call's exception in ``results`` instead of
                raising the first one (in call order) once every call finished.
            freeze: couple freezegun to the virtual clock (microseconds an
                example: freezegun scans the loaded modules once per process).
            **model_kwargs: more ``FakeChatModel`` settings for every model.
        """
        rec = recorder if recorder is not None else Recorder()
        routes: list[_CallRoute] | None = None
        if model is not None:
            routes = _routes_of(model, self)
            if recorder is None:
                raise TypeError(
                    "model= needs recorder=: give run() the Recorder you gave shared_model()"
                )
            models = [model] * self.calls
        elif shared:
            model = self.shared_model(rec, **model_kwargs)
            routes = _routes_of(model, self)
            models = [model] * self.calls
        else:
            models = self.models(rec, **model_kwargs)
        outcomes: list[Any] = [None] * self.calls

        def play(i: int) -> Callable[[], Awaitable[None]]:
            async def one() -> None:
                _current_call.set(i)
                await _clock.asleep(self.starts_ms[i] / _MS)
                refused = None
                try:
                    pending = call(i, models[i])
                    if inspect.isawaitable(pending):
                        outcomes[i] = await pending
                    else:
                        refused = TypeError(
                            f"call({i}, model) returned {pending!r}, not an awaitable: the calls "
                            "of a scenario run concurrently on one event loop, so call must be "
                            "async (async def, or a lambda returning a coroutine); sync app code "
                            "would block the loop (wrap it: await asyncio.to_thread(...))"
                        )
                except Exception as exc:  # kept per call, raised below if asked
                    outcomes[i] = exc
                if refused is not None:
                    raise refused

            return one

        loop_held: list[str] = []
        try:
            if self.holds:
                elapsed = _run_perturbed(
                    [play(i) for i in range(self.calls)], self.holds, freeze, loop_held
                )
            else:
                elapsed = _scenario.run_scenario(
                    *[play(i) for i in range(self.calls)],
                    names=[f"call{i}" for i in range(self.calls)],
                    freeze=freeze,
                ).elapsed
        except BaseException:
            _note(_Report(self, rec.events, loop_held))
            raise
        result = ScenarioRun(
            scenario=self,
            results=tuple(outcomes),
            models=tuple(models),
            events=rec.events,
            elapsed=elapsed,
            held=tuple(loop_held),
            run_ids=None if routes is None else {i: tuple(r.run_ids) for i, r in enumerate(routes)},
        )
        _note(_Report(self, result.events, loop_held))
        if not return_exceptions:
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        return result

    def describe(self) -> str:
        """The scenario as readable text: per call, its start and its turns
        (delays in ms), then the chaos and held callbacks if any."""
        lines = [f"Scenario with {self.calls} concurrent call{'s' if self.calls != 1 else ''}:"]
        for i, (s, start) in enumerate(zip(self.scripts, self.starts_ms, strict=True)):
            lines.append(f"  call{i}: starts at {start} ms")
            lines.extend(f"    turn {k}: {_describe_turn(t)}" for k, t in enumerate(s.turns))
        if self.chaos is not None:
            lines.append(f"  chaos: {self.chaos!r}")
        if self.holds:
            held = ", ".join(f"step {s} held {k}" for s, k in self.holds)
            lines.append(f"  ready-queue holds: {held}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return pretty(self)

    def _repr_pretty_(self, p: RepresentationPrinter, cycle: bool) -> None:
        # One field per line, as a reader would write it: the form to paste.
        p.text("Scenario(")
        with p.indent(4):
            p.break_()
            p.text("scripts=(")
            with p.indent(4):
                for s in self.scripts:
                    p.break_()
                    p.pretty(s)
                    p.text(",")
            p.break_()
            p.text("),")
            fields: list[tuple[str, Any]] = [("starts_ms", self.starts_ms)]
            if self.holds:
                fields.append(("holds", self.holds))
            if self.chaos is not None:
                fields.append(("chaos", self.chaos))
            for name, value in fields:
                p.break_()
                p.text(f"{name}=")
                p.pretty(value)
                p.text(",")
        p.break_()
        p.text(")")


def _routes_of(model: FakeChatModel, scenario: Scenario) -> list[_CallRoute]:
    """The routing rules ``scenario.shared_model()`` gave ``model`` (to map runs to calls)."""
    rules = getattr(model, "script", None)
    routes = [
        owner
        for rule in (rules.rules if isinstance(rules, Script) else ())
        if isinstance(owner := getattr(rule.when, "__self__", None), _CallRoute)
    ]
    if len(routes) != scenario.calls or any(r.scenario is not scenario for r in routes):
        raise TypeError(
            f"model={type(model).__name__}(...): expected a model made by this scenario's "
            "shared_model(recorder)"
        )
    return routes


@dataclasses.dataclass(frozen=True, repr=False)
class ScenarioRun(Generic[T]):
    """What :meth:`Scenario.run` returns.

    Attributes:
        scenario: the scenario played.
        results: each call's return value (or exception, with
            ``return_exceptions=True``), in call order.
        models: the model each call was given (the same one for every call
            in shared mode).
        events: everything the recorder saw.
        elapsed: virtual seconds until the last call finished.
        held: the callbacks the perturbed loop held back (empty unless perturbed).
        run_ids: in shared mode, the run ids of each call's requests.
    """

    scenario: Scenario
    results: tuple[T | BaseException, ...]
    models: tuple[FakeChatModel, ...]
    events: EventLog
    elapsed: float
    held: tuple[str, ...] = ()
    run_ids: Mapping[int, tuple[Any, ...]] | None = None

    @property
    def exceptions(self) -> tuple[BaseException | None, ...]:
        """Each call's exception, or None if it returned."""
        return tuple(r if isinstance(r, BaseException) else None for r in self.results)

    def runs(self, i: int) -> list[Run]:
        """The model runs of call ``i``, in order (in shared mode, the requests
        its routing rule answered; else the runs named ``call<i>``)."""
        if self.run_ids is not None:
            mine = set(self.run_ids.get(i, ()))
            return [r for r in self.events.runs() if r.id in mine]
        return [r for r in self.events.runs() if r.name == f"call{i}"]

    def timeline(self) -> str:
        """The recorded timeline (see :meth:`EventLog.timeline`)."""
        return self.events.timeline()

    def __repr__(self) -> str:
        return f"<ScenarioRun of {self.scenario.calls} calls: results={self.results!r}>"


def _note(report: _Report) -> None:
    """Note ``report`` for a failing example; outside a Hypothesis test, do nothing
    (a scenario can be replayed by hand from its printed form)."""
    if currently_in_test_context():
        note(report)


class _Report:
    """A note built only when Hypothesis shows it (the final, shrunk example)."""

    def __init__(self, scenario: Scenario, events: EventLog, held: list[str]) -> None:
        self._scenario = scenario
        self._events = events
        self._held = held

    def __repr__(self) -> str:
        parts = [self._scenario.describe()]
        if self._held:
            parts.append("Held back by the perturbed loop:\n" + "\n".join(self._held))
        parts.append("Timeline:\n" + (self._events.timeline() if self._events else "(no events)"))
        return "\n".join(parts)

    def _repr_pretty_(self, p: RepresentationPrinter, cycle: bool) -> None:
        for k, line in enumerate(repr(self).splitlines()):
            if k:
                p.break_()
            p.text(line)


def scenarios(
    *,
    calls: int | None = None,
    min_calls: int | None = None,
    max_calls: int | None = None,
    scripts: SearchStrategy[Script] | None = None,
    max_start_ms: int = 50,
    chaos: SearchStrategy[Chaos] | Chaos | None = None,
    perturb: bool = False,
    max_holds: int = 3,
    max_step: int = 200,
    max_hold: int = 3,
) -> SearchStrategy[Scenario]:
    """Scenarios of concurrent calls: ``calls`` of them, or from ``min_calls``
    to ``max_calls`` (default 1 to 3), each with a script (default: one turn
    from :func:`turns`) and a start delay (ms, see :func:`latencies`), and
    ``chaos`` if given (a :class:`~fakellm.chaos.Chaos`, or a strategy of them
    such as :func:`chaos`).

    Interleavings come from latencies alone by default: every schedule they
    produce can happen with a real provider. With ``perturb=True`` the loop
    also holds up to ``max_holds`` callbacks (``call_soon`` number
    ``0..max_step``) back for ``1..max_hold`` iterations, in the spirit of PCT
    scheduling. It can find more, but **it can produce orders a real asyncio
    loop never would** (it breaks ``call_soon``'s first-in, first-out promise),
    so check a failure it reports can happen before fixing it.

    Shrinks towards fewer calls (bystanders drop out), fewer and simpler
    turns, equal zero starts, less chaos and no holds.
    """
    arguments = _given(
        calls=(calls, None),
        min_calls=(min_calls, None),
        max_calls=(max_calls, None),
        scripts=(scripts, None),
        max_start_ms=(max_start_ms, 50),
        chaos=(chaos, None),
        perturb=(perturb, False),
        max_holds=(max_holds, 3),
        max_step=(max_step, 200),
        max_hold=(max_hold, 3),
    )

    def build() -> SearchStrategy[Scenario]:
        if calls is not None:
            _check_int("calls", calls, at_least=1, what=" (how many concurrent calls)")
            if min_calls is not None or max_calls is not None:
                other = "min_calls" if min_calls is not None else "max_calls"
                raise InvalidArgument(
                    f"calls={calls!r} and {other}={arguments[other]!r}: give either calls "
                    "(a fixed number) or min_calls/max_calls (a range that shrinks), not both"
                )
            low = high = calls
        else:
            low = 1 if min_calls is None else min_calls
            high = max(3, low) if max_calls is None else max_calls
            _check_bounds("min_calls", low, "max_calls", high, at_least=1)
        _check_ms("max_start_ms", max_start_ms)
        each = (
            _inner(_script_strategy(min_turns=1, max_turns=1))
            if scripts is None
            else _checked_draws("scripts", scripts, Script)
        )
        chaos_strategy: SearchStrategy[Chaos] | None = None
        given_chaos: Chaos | None = None
        if chaos is None or isinstance(chaos, Chaos):
            given_chaos = chaos
        else:
            chaos_strategy = _checked_draws("chaos", chaos, Chaos)
        holds: SearchStrategy[tuple[tuple[int, int], ...]] | None = None
        _check_int("max_holds", max_holds)
        _check_int("max_step", max_step)
        _check_int("max_hold", max_hold, at_least=1, what=" (loop iterations)")
        if _check_bool("perturb", perturb):
            holds = _as(
                lambda hs: tuple(sorted(hs)),
                st.lists(
                    st.tuples(st.integers(0, max_step), st.integers(1, max_hold)),
                    max_size=max_holds,
                    unique_by=lambda h: h[0],
                ),
            )
        script_lists = st.lists(each, min_size=low, max_size=high)

        @st.composite
        def draw_scenario(draw: st.DrawFn) -> Scenario:
            drawn = tuple(draw(script_lists))
            starts = _latency_drawer(len(drawn), len(drawn), max_start_ms)(draw)
            # A constant (no holds, the chaos given) is no choice: not drawn.
            held = () if holds is None else draw(holds)
            drawn_chaos = given_chaos if chaos_strategy is None else draw(chaos_strategy)
            return Scenario(drawn, starts, held, drawn_chaos)

        return draw_scenario()

    return _lazy("scenarios", arguments, build, Scenario)


# ------------------------------------------------------------------------ chaos


def chaos(
    *,
    quota: Quota | SearchStrategy[Quota] | None = None,
    failure_rate: float = 0.0,
    max_requests: int = 10,
    failure: type[Exception] = _errors.ServerError,
    truncate_rate: float = 0.0,
    slow_rate: float = 0.0,
    max_turns: int = 3,
    max_slow_ms: int = 5000,
    malformed_rate: float = 0.0,
) -> SearchStrategy[Chaos]:
    """Provider faults (:class:`~fakellm.chaos.Chaos`) for a model or a scenario:
    ``quota`` as given (or drawn); failing request numbers among the first
    ``max_requests``, each about ``failure_rate`` of the time; and among the
    first ``max_turns`` turns, streams cut (``truncate_rate``, after 0 to 3
    chunks), first tokens slowed by up to ``max_slow_ms`` (``slow_rate``) and
    tool calls whose arguments are not valid JSON (``malformed_rate``).
    Hypothesis decides, so it also tries the unlikely plans.

    Shrinks towards fewer faults (each one drops out on its own), cuts after
    fewer chunks, shorter slowdowns, and the simplest quota drawn.
    """
    arguments = _given(
        quota=(quota, None),
        failure_rate=(failure_rate, 0.0),
        max_requests=(max_requests, 10),
        failure=(failure, _errors.ServerError),
        truncate_rate=(truncate_rate, 0.0),
        slow_rate=(slow_rate, 0.0),
        max_turns=(max_turns, 3),
        max_slow_ms=(max_slow_ms, 5000),
        malformed_rate=(malformed_rate, 0.0),
    )

    def build() -> SearchStrategy[Chaos]:
        quotas: SearchStrategy[Quota | None]
        if quota is None or isinstance(quota, Quota):
            quotas = st.just(quota)
        else:
            quotas = _checked_draws("quota", quota, Quota)
        _check_int("max_requests", max_requests)
        _check_int("max_turns", max_turns)
        _check_int("max_slow_ms", max_slow_ms, at_least=1, what=" (whole milliseconds)")
        if not (isinstance(failure, type) and issubclass(failure, Exception)):
            raise InvalidArgument(
                f"failure={failure!r}: expected an exception class such as errors.ServerError"
            )
        fails = _hits("failure_rate", failure_rate, max_requests, st.just(0))
        cuts = _hits("truncate_rate", truncate_rate, max_turns, st.integers(0, 3))
        slows = _hits("slow_rate", slow_rate, max_turns, st.integers(1, max_slow_ms))
        broken = _hits("malformed_rate", malformed_rate, max_turns, st.just(0))

        @st.composite
        def draw_chaos(draw: st.DrawFn) -> Chaos:
            return Chaos(
                quota=draw(quotas),
                failures=tuple(n for n, _ in draw(fails)),
                failure=failure,
                truncate=draw(cuts),
                slow=draw(slows),
                malformed=tuple(k for k, _ in draw(broken)),
            )

        return draw_chaos()

    return _lazy("chaos", arguments, build, Chaos)


def _hits(
    name: str, rate: Any, count: int, value: SearchStrategy[int]
) -> SearchStrategy[tuple[tuple[int, int], ...]]:
    """``(k, value)`` for each ``k < count`` that a fault strikes, about ``rate`` of them."""
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
        raise InvalidArgument(f"{name}={rate!r}: expected a probability in [0, 1]")
    if rate == 0 or count == 0:
        return st.just(())
    # A uniform draw in per mille per place, striking at the top `rate` of the
    # range: draws shrink towards 0, so faults drop out one by one.
    threshold = 1000 - round(rate * 1000)
    one = st.tuples(st.integers(0, 999).map(lambda x: x >= threshold), value)

    @st.composite
    def draw_hits(draw: st.DrawFn) -> tuple[tuple[int, int], ...]:
        out = []
        for k in range(count):
            hit, v = draw(one)
            if hit:
                out.append((k, v))
        return tuple(out)

    return draw_hits()


# ----------------------------------------------------------------- stateful tests


class TurnFeed:
    """Turns a test hands a model one step at a time: the stateful recipe.

    In a ``RuleBasedStateMachine``, each rule step pushes the turn it drew,
    then drives the app; the model answers the app's next request with it::

        feed = TurnFeed()
        model = FakeChatModel(script=feed.script())
        ...
        @rule(reply=strategies.turns())
        def ask(self, reply):
            self.feed.push(reply)
            self.app.ask("...")

    A request with nothing pushed is an unexpected call (strict, as with any
    script); :attr:`pending` lists what was pushed and not yet answered, for
    an invariant.
    """

    def __init__(self) -> None:
        self._queue: collections.deque[Turn] = collections.deque()
        self._lock = threading.Lock()

    def push(self, *turns: Turn | str) -> None:
        """Queue ``turns`` (Turns, or reply texts) for the next requests."""
        with self._lock:
            self._queue.extend(Turn(t) if isinstance(t, str) else t for t in turns)

    @property
    def pending(self) -> tuple[Turn, ...]:
        """Turns pushed and not yet answered, oldest first."""
        with self._lock:
            return tuple(self._queue)

    def rule(self) -> Rule:
        """A rule that answers with the oldest pushed turn, when there is one."""
        return Rule(when=self._has_turn, responder=self._next, name="TurnFeed")

    def script(self) -> Script:
        """A script of just :meth:`rule`: every request must be fed."""
        return Script(rules=[self.rule()])

    def _has_turn(self, call: Call) -> bool:
        return bool(self._queue)

    def _next(self, call: Call) -> Turn:
        with self._lock:
            return self._queue.popleft()

    def __repr__(self) -> str:
        return f"TurnFeed(pending={list(self.pending)!r})"


# ------------------------------------------------------- the perturbed event loop


class _PerturbedLoop(_compat.RunOnceHook, _loop.VirtualTimeLoop):
    """A virtual-time loop that holds chosen ``call_soon`` callbacks back.

    ``holds`` maps the number of a ``call_soon`` call (0, 1, ... in the order
    they happen, which is deterministic) to how many loop iterations its
    callback waits. When nothing else is ready, held callbacks are released at
    once, so holding never stalls the loop or fakes a deadlock.
    """

    def __new__(cls, holds: Mapping[int, int], *, freeze: bool = False) -> _PerturbedLoop:
        return super().__new__(cls, freeze=freeze)  # type: ignore[return-value]

    def __init__(self, holds: Mapping[int, int], *, freeze: bool = False) -> None:
        super().__init__(freeze=freeze)
        self._pct_holds = dict(holds)
        self._pct_step = 0
        self._pct_held: list[list[Any]] = []  # [iterations left, handle]
        self.held_log: list[tuple[int, int, Callable[..., object]]] = []

    def call_soon(
        self,
        callback: Callable[[*Ts], object],
        *args: *Ts,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        handle = super().call_soon(callback, *args, context=context)
        step, self._pct_step = self._pct_step, self._pct_step + 1
        hold = self._pct_holds.get(step)
        ready = _compat.ready_handles(self)
        if hold and ready and ready[-1] is handle:
            ready.pop()
            self._pct_held.append([hold, handle])
            self.held_log.append((step, hold, callback))
        return handle

    def _before_run_once(self) -> None:
        held = self._pct_held
        if held:
            ready = _compat.ready_handles(self)
            release_all = not ready
            keep = []
            for item in held:
                item[0] -= 1
                if release_all or item[0] <= 0:
                    ready.append(item[1])
                else:
                    keep.append(item)
            self._pct_held = keep


def _run_perturbed(
    runnables: list[Callable[[], Awaitable[None]]],
    holds: tuple[tuple[int, int], ...],
    freeze: bool,
    held_out: list[str],
) -> float:
    """:func:`fakellm.run_scenario` on a :class:`_PerturbedLoop`."""
    loop = _PerturbedLoop(dict(holds), freeze=freeze)
    names = [f"call{i}" for i in range(len(runnables))]
    try:
        _, elapsed = _scenario.run_tasks(loop, runnables, names, freeze=freeze)
    finally:
        # Described at the end: a task gets its name after its first call_soon.
        held_out.extend(
            f"  call_soon #{step}: {_describe_callback(cb)} held for {hold} iteration(s)"
            for step, hold, cb in loop.held_log
        )
    return elapsed


def _describe_callback(callback: Callable[..., object]) -> str:
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        return f"a step of task {owner.get_name()!r}"
    return getattr(callback, "__qualname__", repr(callback))


# ------------------------------------------------------------------------ helpers


def _json_leaves() -> SearchStrategy[Any]:
    return (
        st.none()
        | st.booleans()
        | st.integers(-1000, 1000)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(_TEXT_CHARS, max_size=6)
    )


#: Containers deep after which a drawn JSON value holds only what its schema
#: requires (minItems items, required properties), so nesting stays cheap.
_DEEP = 3


def _from_schema(schema: Mapping[str, Any], depth: int = 0) -> SearchStrategy[Any]:
    """JSON values that fit a (tool parameters) JSON schema; a practical subset:
    const, enum, anyOf/oneOf, type (or a list of them), string lengths and
    patterns, number bounds (inclusive and exclusive), integer multipleOf,
    arrays, objects with required and optional properties. Not ``$ref`` or
    ``format``."""
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([_from_schema(s, depth) for s in schema[key]])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return _from_schema(schema["allOf"][0], depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([_from_schema({**schema, "type": k}, depth) for k in kind])
    if kind == "string":
        shortest = int(schema.get("minLength", 0))
        longest = int(schema.get("maxLength", shortest + 6))
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True).filter(
                lambda text: shortest <= len(text) <= longest
            )
        return st.text(_TEXT_CHARS, min_size=shortest, max_size=longest)
    if kind == "integer":
        low: int | None = schema.get("minimum")
        high: int | None = schema.get("maximum")
        if "exclusiveMinimum" in schema:
            low = math.floor(schema["exclusiveMinimum"]) + 1
        if "exclusiveMaximum" in schema:
            high = math.ceil(schema["exclusiveMaximum"]) - 1
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0:
            first = 0 if low is None else -(-low // step)
            last = None if high is None else high // step
            return st.integers(first, last).map(lambda k: k * step)
        return st.integers(low, high)
    if kind == "number":
        return st.floats(
            schema.get("minimum", schema.get("exclusiveMinimum")),
            schema.get("maximum", schema.get("exclusiveMaximum")),
            exclude_min="exclusiveMinimum" in schema and "minimum" not in schema,
            exclude_max="exclusiveMaximum" in schema and "maximum" not in schema,
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        low = int(schema.get("minItems", 0))
        items = schema.get("items") or {}
        # Below _DEEP containers a value stays small (only the items and
        # properties the schema requires) but still follows the schema.
        high = low if depth >= _DEEP else int(schema.get("maxItems", low + 2))
        return st.lists(_from_schema(items, depth + 1), min_size=low, max_size=high)
    if kind == "object" or "properties" in schema:
        props: Mapping[str, Any] = schema.get("properties") or {}
        if not props:
            if schema.get("additionalProperties") is False or depth >= _DEEP:
                return st.just({})
            return st.dictionaries(
                st.text(_NAME_CHARS, min_size=1, max_size=4), _json_leaves(), max_size=2
            )
        required = set(schema.get("required") or ())
        optional = {} if depth >= _DEEP else props
        return st.fixed_dictionaries(
            {k: _from_schema(v, depth + 1) for k, v in props.items() if k in required},
            optional={
                k: _from_schema(v, depth + 1) for k, v in optional.items() if k not in required
            },
        )
    return _json_leaves()


def _describe_turn(turn: Turn) -> str:
    parts = [f"chunks={list(c for c in split_text(turn.text or '', turn.chunks))!r}"]
    if turn.reasoning:
        parts.append(f"reasoning={turn.reasoning!r}")
    for tc in turn.tool_calls:
        parts.append(f"tool call {tc.name}({tc.args_json})")
    n = len(turn.pieces)
    waits = turn.delays(max(n, 1))
    parts.append(f"waits(ms)={[round(w * _MS) for w in waits]}")
    if turn.error is not None:
        name = turn.error.__name__ if isinstance(turn.error, type) else repr(turn.error)
        parts.append(f"{name} after {turn.error_position} of {n} chunks")
    if turn.usage is not None:
        given = turn.usage.model_dump(exclude_defaults=True)
        parts.append(f"usage={given}")
    return ", ".join(parts)


# ---------------------------------------------------------- from_type registration


def _register() -> None:
    register_pretty()
    st.register_type_strategy(Turn, turns())
    st.register_type_strategy(Script, scripts())
    st.register_type_strategy(ToolCall, _lazy("ToolCall", {}, lambda: _one_tool_call(None)))
    st.register_type_strategy(Usage, _lazy("Usage", {}, lambda: _given_usage(100, True)))
    st.register_type_strategy(ErrorAt, errors(chunks=3))
    st.register_type_strategy(Scenario, scenarios())
    st.register_type_strategy(Chaos, chaos())
    st.register_type_strategy(
        Quota, st.builds(Quota, st.integers(1, 5), st.sampled_from((1.0, 10.0, 60.0)))
    )


_register()


# ------------------------------------------------ public wrapper (for fakellm.fuzz)


def from_json_schema(schema: Mapping[str, Any]) -> SearchStrategy[Any]:
    """JSON values that fit ``schema``, with the machinery :func:`tool_calls`
    uses for arguments (same subset: const, enum, anyOf/oneOf, types, string
    lengths and patterns, number bounds, arrays, nested objects with required
    and optional properties) at any depth: below three containers a value
    holds only what its schema requires (``minItems`` items, required
    properties). Shrinks towards the simplest value, optional properties left
    out."""
    return _from_schema(schema)


__all__ += ["from_json_schema"]
