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

The pytest plugin never imports this module, so a suite that never uses
Hypothesis never loads it.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import itertools
import math
import string
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, TypeVar, TypeVarTuple

from hypothesis import currently_in_test_context, note
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from langchain_core.utils.function_calling import convert_to_openai_tool

from fakellm import _clock
from fakellm import errors as _errors
from fakellm._events import EventLog, Run
from fakellm._model import FakeChatModel
from fakellm._recorder import Recorder
from fakellm._script import (
    Script,
    ToolCall,
    Turn,
    Usage,
    split_text,
    split_tool_args,
    stub_tools,
)

if TYPE_CHECKING:
    from hypothesis.vendor.pretty import RepresentationPrinter

__all__ = [
    "DEFAULT_ERRORS",
    "ErrorAt",
    "Scenario",
    "ScenarioRun",
    "errors",
    "latencies",
    "scenarios",
    "scripts",
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


# -------------------------------------------------------------- parts of a turn


def token_streams(
    *,
    text: str | None = None,
    min_chunks: int = 0,
    max_chunks: int = 6,
    max_chunk_size: int = 4,
    alphabet: SearchStrategy[str] = _TEXT_CHARS,
) -> SearchStrategy[tuple[str, ...]]:
    """Chunkings of a text: tuples of strings, for ``Turn(chunks=...)``.

    Without ``text`` each chunk is drawn (up to ``max_chunk_size`` characters
    of ``alphabet``, any unicode by default); with ``text`` the chunks are cuts
    of it that join back to it. Either way chunks can be empty (the model
    drops them: they are not streamed). ``min_chunks``/``max_chunks`` bound the
    number of chunks, empty ones included.

    Shrinks towards fewer chunks, shorter (then empty) chunks and simpler
    characters (``"0"``); with ``text``, towards fewer cuts at its start.
    """
    _check_range("chunks", min_chunks, max_chunks)
    if max_chunk_size < 0:
        raise ValueError(f"max_chunk_size={max_chunk_size!r}: expected >= 0")
    if text is None:
        return _drawn_chunks(min_chunks, max_chunks, max_chunk_size, alphabet)
    whole = text
    cuts = st.lists(
        st.integers(0, len(whole)),
        min_size=max(min_chunks - 1, 0),
        max_size=max(max_chunks - 1, 0),
    )

    def cut(points: list[int]) -> tuple[str, ...]:
        bounds = [0, *sorted(points), len(whole)]
        return tuple(whole[a:b] for a, b in itertools.pairwise(bounds))

    return cuts.map(cut)


@functools.lru_cache(maxsize=64)
def _drawn_chunks(
    min_chunks: int, max_chunks: int, max_chunk_size: int, alphabet: SearchStrategy[str]
) -> SearchStrategy[tuple[str, ...]]:
    # Two choices however many chunks: one byte per chunk giving its length,
    # then a text of exactly the total length, cut in turn. (One choice per
    # chunk made long streams slow to draw.)
    sizes: SearchStrategy[list[int]]
    if max_chunk_size < 256:
        sizes = st.binary(min_size=min_chunks, max_size=max_chunks).map(
            lambda raw: [b % (max_chunk_size + 1) for b in raw]
        )
    else:  # one byte cannot say every length
        sizes = st.lists(st.integers(0, max_chunk_size), min_size=min_chunks, max_size=max_chunks)

    @functools.cache
    def text_of(length: int) -> SearchStrategy[str]:
        return st.text(alphabet, min_size=length, max_size=length)

    @st.composite
    def draw_chunks(draw: st.DrawFn) -> tuple[str, ...]:
        lengths = draw(sizes)
        whole = draw(text_of(sum(lengths)))
        out = []
        pos = 0
        for size in lengths:
            out.append(whole[pos : pos + size])
            pos += size
        return tuple(out)

    return draw_chunks()


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
    if size is not None:
        min_size = max_size = size
    _check_range("latencies", min_size, max_size)
    if isinstance(max_ms, bool) or not isinstance(max_ms, int) or max_ms < 0:
        raise ValueError(f"max_ms={max_ms!r}: expected an integer number of milliseconds >= 0")
    return _latencies(min_size, max_size, max_ms)


@functools.lru_cache(maxsize=256)
def _latencies(min_size: int, max_size: int, max_ms: int) -> SearchStrategy[tuple[int, ...]]:
    # Cached: turns() asks for one per drawn chunk count, and building a
    # composite strategy costs more than drawing from it.
    #
    # The offsets come from one bytes choice (1 or 2 bytes each) rather than
    # one integer choice each: three times faster to draw for long streams,
    # and the bytes still shrink towards zero, which decodes to offset 0.
    width = 1 if max_ms <= 127 else 2
    top = (1 << (8 * width - 1)) - 1
    base_ms = st.integers(0, max_ms)
    raw = st.binary(min_size=min_size * width, max_size=max_size * width)

    @st.composite
    def draw_latencies(draw: st.DrawFn) -> tuple[int, ...]:
        base = draw(base_ms)
        data = draw(raw)
        out = []
        for i in range(0, len(data) - width + 1, width):
            b = int.from_bytes(data[i : i + width], "big")
            zigzag = b >> 1 if b % 2 == 0 else -((b + 1) >> 1)  # 0, -1, 1, -2, 2, ...
            out.append(min(max(base + int(zigzag * max_ms / top), 0), max_ms))
        return tuple(out)

    return draw_latencies()


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
    if not types:
        raise ValueError("types=(): give at least one exception class")
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise TypeError(f"types: {t!r} is not an exception class")
    if chunks < 0:
        raise ValueError(f"chunks={chunks!r}: expected >= 0")
    return _errors_at(chunks, tuple(types), end)


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


_error_strategy = errors  # turns() has a parameter of that name


def usage(*, max_tokens: int = 100, details: bool = True) -> SearchStrategy[Usage | None]:
    """Usage a turn reports: None (the model computes it), or a :class:`Usage`
    with some counts given and the rest computed, totals always consistent;
    with ``details``, cache and reasoning token details too.

    Shrinks towards None, then towards fewer given counts and zeros.
    """

    tokens = st.integers(0, max_tokens)
    count = st.none() | tokens
    flag = st.booleans()

    @st.composite
    def draw_usage(draw: st.DrawFn) -> Usage:
        i, o = draw(count), draw(count)
        data: dict[str, Any] = {"input_tokens": i, "output_tokens": o}
        if i is not None and o is not None and draw(flag):
            data["total_tokens"] = i + o
        # Details are parts of a count: at most that count when it is given.
        if details and draw(flag):
            data["input_token_details"] = {"cache_read": min(draw(tokens), i or 0)}
        if details and draw(flag):
            data["output_token_details"] = {"reasoning": min(draw(tokens), o or 0)}
        return Usage(**data)

    return st.none() | draw_usage()


_usage_strategy = usage  # turns() has a parameter of that name


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
    _check_range("calls", min_calls, max_calls)
    if tools is None:
        free = st.dictionaries(
            st.text(_NAME_CHARS, min_size=1, max_size=4), _json_leaves(), max_size=3
        )
        one = st.builds(ToolCall, st.sampled_from(_FREE_TOOL_NAMES), free)
    else:
        schemas = [convert_to_openai_tool(t)["function"] for t in tools]
        if not schemas:
            raise ValueError("tools=[]: give at least one tool, or None for free-form calls")
        one = st.one_of(
            [
                st.builds(
                    ToolCall,
                    st.just(s["name"]),
                    _from_schema(s.get("parameters") or {"type": "object"}),
                )
                for s in schemas
            ]
        )
    return st.lists(one, min_size=min_calls, max_size=max_calls).map(tuple)


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
    alphabet: SearchStrategy[str] = _TEXT_CHARS,
) -> SearchStrategy[Turn]:
    """Valid :class:`~fakellm.Turn` objects: explicit chunks (see
    :func:`token_streams`), a first-token delay and one delay per later chunk
    (see :func:`latencies`), and optionally an error (``errors``: True for
    :data:`DEFAULT_ERRORS`, or the classes to pick from), explicit usage,
    reasoning, and tool calls of ``tools`` (none unless ``tools`` is given,
    since a model rejects calls of tools it does not have bound).

    Turns with reasoning or tool calls are for ``FakeChatModel``; the others
    also suit ``FakeLLM``. Shrinks towards no error, computed usage, no tool
    calls, fewer and simpler chunks and zero, equal delays.
    """
    error_types = DEFAULT_ERRORS if errors is True else tuple(errors or ())
    chunk_strategy = token_streams(min_chunks=min_chunks, max_chunks=max_chunks, alphabet=alphabet)
    usage_strategy = _usage_strategy()
    calls_strategy = (
        None if tools is None else tool_calls(tools=tools, min_calls=0, max_calls=max_tool_calls)
    )
    reasoning_strategy = st.none() | st.text(alphabet, min_size=1, max_size=8)

    @functools.lru_cache(maxsize=64)
    def maybe_error(n: int) -> SearchStrategy[ErrorAt | None]:
        return st.none() | _error_strategy(chunks=n, types=error_types)

    @st.composite
    def draw_turn(draw: st.DrawFn) -> Turn:
        chunks = draw(chunk_strategy)
        data: dict[str, Any] = {"chunks": chunks}
        n = sum(1 for c in chunks if c)
        if reasoning:
            thought = draw(reasoning_strategy)
            if thought is not None:
                data["reasoning"] = thought
                n += len(split_text(thought, "words"))
        if calls_strategy is not None:
            calls = draw(calls_strategy)
            if calls:
                data["tool_calls"] = calls
                n += sum(len(split_tool_args(tc.args_json)) for tc in calls)
        waits = draw(latencies(size=max(n, 1), max_ms=max_ms))
        data["first_token_delay"] = waits[0] / _MS
        data["delay"] = tuple(w / _MS for w in waits[1:])
        if error_types:
            failure = draw(maybe_error(n))
            if failure is not None:
                data["error"], data["at_chunk"] = failure
        if usage:
            spec = draw(usage_strategy)
            if spec is not None:
                data["usage"] = spec
        return Turn(**data)

    return draw_turn()


_turn_strategy = turns  # scripts() has a parameter of that name


def scripts(
    *,
    turns: SearchStrategy[Turn] | None = None,
    min_turns: int = 1,
    max_turns: int = 3,
) -> SearchStrategy[Script]:
    """Scripts of ``min_turns``..``max_turns`` turns drawn from ``turns``
    (default: :func:`turns` with its defaults). Shrinks towards fewer, simpler
    turns."""
    _check_range("turns", min_turns, max_turns)
    each = turns if turns is not None else _turn_strategy()
    return st.lists(each, min_size=min_turns, max_size=max_turns).map(Script)


_script_strategy = scripts  # scenarios() has a parameter of that name


# -------------------------------------------------------------------- scenarios


@dataclasses.dataclass(frozen=True, repr=False)
class Scenario:
    """N concurrent calls of an app, call ``i`` against a model playing ``scripts[i]``.

    Attributes:
        scripts: one script per call.
        starts_ms: how long (ms) after the start each call begins.
        holds: opt-in ready-queue perturbation (``scenarios(perturb=True)``):
            ``(step, k)`` holds the ``step``-th callback scheduled with
            ``call_soon`` back for ``k`` loop iterations. Empty: plain FIFO.
    """

    scripts: tuple[Script, ...]
    starts_ms: tuple[int, ...]
    holds: tuple[tuple[int, int], ...] = ()

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
            FakeChatModel(script=s, name=f"call{i}", **kwargs) for i, s in enumerate(self.scripts)
        ]

    def run(
        self,
        call: Callable[[int, FakeChatModel], Awaitable[T]],
        *,
        recorder: Recorder | None = None,
        return_exceptions: bool = False,
        freeze: bool = False,
        **model_kwargs: Any,
    ) -> ScenarioRun[T]:
        """Play the scenario: ``call(i, model)`` for every call ``i``, concurrently,
        each after its start delay, on a fresh virtual-time loop.

        The models record into ``recorder`` (a fresh :class:`~fakellm.Recorder`
        unless given; attach the same one to your app's config to record its
        chains too). The scripts, held callbacks and the timeline are passed to
        :func:`hypothesis.note`, so a failing example shows them.

        Args:
            call: the app's part in call ``i``, given that call's fresh model.
            recorder: where the models record.
            return_exceptions: keep a call's exception in ``results`` instead of
                raising the first one (in call order) once every call finished.
            freeze: couple freezegun to the virtual clock (costs ~8 ms an
                example, since freezegun scans every loaded module).
            **model_kwargs: more ``FakeChatModel`` settings for every model.
        """
        rec = recorder if recorder is not None else Recorder()
        models = self.models(rec, **model_kwargs)
        outcomes: list[Any] = [None] * self.calls

        def play(i: int) -> Callable[[], Awaitable[None]]:
            async def one() -> None:
                await _clock.asleep(self.starts_ms[i] / _MS)
                try:
                    outcomes[i] = await call(i, models[i])
                except Exception as exc:  # kept per call, raised below if asked
                    outcomes[i] = exc

            return one

        loop_held: list[str] = []
        try:
            if self.holds:
                elapsed = _run_perturbed(
                    [play(i) for i in range(self.calls)], self.holds, freeze, loop_held
                )
            else:
                elapsed = _clock.run_scenario(
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
        )
        _note(_Report(self, result.events, loop_held))
        if not return_exceptions:
            for outcome in outcomes:
                if isinstance(outcome, BaseException):
                    raise outcome
        return result

    def describe(self) -> str:
        """The scenario as readable text: per call, its start and its turns
        (delays in ms), then the held callbacks if any."""
        lines = [f"Scenario with {self.calls} concurrent calls:"]
        for i, (s, start) in enumerate(zip(self.scripts, self.starts_ms, strict=True)):
            lines.append(f"  call{i}: starts at {start} ms")
            lines.extend(f"    turn {k}: {_describe_turn(t)}" for k, t in enumerate(s.turns))
        if self.holds:
            held = ", ".join(f"step {s} held {k}" for s, k in self.holds)
            lines.append(f"  ready-queue holds: {held}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        parts = ",\n".join(
            f"        Script([{', '.join(map(_turn_source, s.turns))}])" for s in self.scripts
        )
        holds = f"\n    holds={self.holds!r}," if self.holds else ""
        return (
            f"Scenario(\n    scripts=(\n{parts},\n    ),\n"
            f"    starts_ms={self.starts_ms!r},{holds}\n)"
        )

    def _repr_pretty_(self, p: RepresentationPrinter, cycle: bool) -> None:
        for k, line in enumerate(repr(self).splitlines()):
            if k:
                p.break_()
            p.text(line)


@dataclasses.dataclass(frozen=True, repr=False)
class ScenarioRun(Generic[T]):
    """What :meth:`Scenario.run` returns.

    Attributes:
        scenario: the scenario played.
        results: each call's return value (or exception, with
            ``return_exceptions=True``), in call order.
        models: the fresh model of each call (``calls``, ``unused_turns``, ...).
        events: everything the recorder saw.
        elapsed: virtual seconds until the last call finished.
        held: the callbacks the perturbed loop held back (empty unless perturbed).
    """

    scenario: Scenario
    results: tuple[T | BaseException, ...]
    models: tuple[FakeChatModel, ...]
    events: EventLog
    elapsed: float
    held: tuple[str, ...] = ()

    @property
    def exceptions(self) -> tuple[BaseException | None, ...]:
        """Each call's exception, or None if it returned."""
        return tuple(r if isinstance(r, BaseException) else None for r in self.results)

    def runs(self, i: int) -> list[Run]:
        """The model runs of call ``i`` (runs named ``call<i>``), in order."""
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
    calls: int = 3,
    scripts: SearchStrategy[Script] | None = None,
    max_start_ms: int = 50,
    perturb: bool = False,
    max_holds: int = 3,
    max_step: int = 200,
    max_hold: int = 3,
) -> SearchStrategy[Scenario]:
    """Scenarios of ``calls`` concurrent calls: one script each (default: one
    turn from :func:`turns`) and a start delay each (ms, see :func:`latencies`).

    Interleavings come from latencies alone by default: every schedule they
    produce can happen with a real provider. With ``perturb=True`` the loop
    also holds up to ``max_holds`` callbacks (``call_soon`` number
    ``0..max_step``) back for ``1..max_hold`` iterations, in the spirit of PCT
    scheduling. It can find more, but **it can produce orders a real asyncio
    loop never would** (it breaks ``call_soon``'s first-in, first-out promise),
    so check a failure it reports can happen before fixing it.

    Shrinks towards fewer turns, simpler turns, equal zero starts and no holds.
    """
    if calls < 1:
        raise ValueError(f"calls={calls!r}: expected at least one call")
    each = scripts if scripts is not None else _script_strategy(min_turns=1, max_turns=1)
    starts = latencies(size=calls, max_ms=max_start_ms)
    no_holds: SearchStrategy[tuple[tuple[int, int], ...]] = st.just(())
    holds = no_holds
    if perturb:
        holds = st.lists(
            st.tuples(st.integers(0, max_step), st.integers(1, max_hold)),
            max_size=max_holds,
            unique_by=lambda h: h[0],
        ).map(lambda hs: tuple(sorted(hs)))
    return st.builds(
        Scenario,
        st.lists(each, min_size=calls, max_size=calls).map(tuple),
        starts,
        holds,
    )


# ------------------------------------------------------- the perturbed event loop


class _PerturbedLoop(_clock.VirtualTimeLoop):
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
        ready: Any = self._ready  # type: ignore[attr-defined]
        if hold and ready and ready[-1] is handle:
            ready.pop()
            self._pct_held.append([hold, handle])
            self.held_log.append((step, hold, callback))
        return handle

    def _run_once(self) -> None:
        held = self._pct_held
        if held:
            ready: Any = self._ready  # type: ignore[attr-defined]
            release_all = not ready
            keep = []
            for item in held:
                item[0] -= 1
                if release_all or item[0] <= 0:
                    ready.append(item[1])
                else:
                    keep.append(item)
            self._pct_held = keep
        super()._run_once()  # type: ignore[misc]


def _run_perturbed(
    runnables: list[Callable[[], Awaitable[None]]],
    holds: tuple[tuple[int, int], ...],
    freeze: bool,
    held_out: list[str],
) -> float:
    """:func:`fakellm.run_scenario` on a :class:`_PerturbedLoop`."""
    loop = _PerturbedLoop(dict(holds), freeze=freeze)
    names = [f"call{i}" for i in range(len(runnables))]
    token = _clock._sync_sleeper.set(loop.clock.advance)
    try:
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            _, elapsed = runner.run(_clock._scenario_main(runnables, names))
    finally:
        _clock._sync_sleeper.reset(token)
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


def _check_range(what: str, low: int, high: int) -> None:
    if low < 0 or high < low:
        raise ValueError(f"min/max {what}: {low}..{high} is not a range of counts >= 0")


def _json_leaves() -> SearchStrategy[Any]:
    return (
        st.none()
        | st.booleans()
        | st.integers(-1000, 1000)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(_TEXT_CHARS, max_size=6)
    )


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
        return st.lists(
            _from_schema(items, depth + 1) if depth < 3 else _json_leaves(),
            min_size=low,
            max_size=int(schema.get("maxItems", low + 2)),
        )
    if kind == "object" or "properties" in schema:
        props: Mapping[str, Any] = schema.get("properties") or {}
        if not props:
            if schema.get("additionalProperties") is False or depth >= 3:
                return st.just({})
            return st.dictionaries(
                st.text(_NAME_CHARS, min_size=1, max_size=4), _json_leaves(), max_size=2
            )
        required = set(schema.get("required") or ())
        return st.fixed_dictionaries(
            {k: _from_schema(v, depth + 1) for k, v in props.items() if k in required},
            optional={k: _from_schema(v, depth + 1) for k, v in props.items() if k not in required},
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


def _turn_source(turn: Turn) -> str:
    """A Turn as Python source naming only the fields that were set."""
    args = []
    for name in Turn.model_fields:
        if name not in turn.model_fields_set:
            continue
        value = getattr(turn, name)
        if name in ("first_token_delay", "delay") and not any(
            value if isinstance(value, tuple) else (value,)
        ):
            continue  # zero delays: the default
        if name == "error" and isinstance(value, type):
            text = f"errors.{value.__name__}"
        elif name == "usage" and value is not None:
            given = value.model_dump(exclude_defaults=True)
            text = f"Usage({', '.join(f'{k}={v!r}' for k, v in given.items())})"
        elif name == "tool_calls":
            text = "(" + "".join(f"ToolCall({tc.name!r}, {tc.args!r}), " for tc in value) + ")"
        else:
            text = repr(value)
        args.append(f"{name}={text}")
    return f"Turn({', '.join(args)})"


# ------------------------------------------------ public wrapper (for fakellm.fuzz)


def from_json_schema(schema: Mapping[str, Any]) -> SearchStrategy[Any]:
    """JSON values that fit ``schema``, with the machinery :func:`tool_calls`
    uses for arguments (same subset: const, enum, anyOf/oneOf, types, string
    lengths and patterns, number bounds, arrays, nested objects with required
    and optional properties). Shrinks towards the simplest value, optional
    properties left out."""
    return _from_schema(schema)


__all__ += ["from_json_schema"]
