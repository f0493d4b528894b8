"""Assertion helpers for recorded LangChain runs.

Each helper raises :class:`AssertionError` worded like ``unittest.mock``
(``Expected: ... / Actual: ...``) followed by the timeline of the runs
involved, and hides its own frame from pytest tracebacks
(``__tracebackhide__``).

pytest assertion rewriting: the helpers build their own messages, so they work
without it; to have pytest rewrite any plain ``assert`` in this module as well,
``pytest.register_assert_rewrite("fakellm.assertions")`` must run *before*
``fakellm.assertions`` is first imported. The fakellm pytest plugin
(``fakellm.fixtures``, loaded through the ``pytest11`` entry point) does that
at import; a suite that disables the plugin calls it at the top of its root
``conftest.py``.
"""

from __future__ import annotations

import asyncio
import copy
import difflib
import inspect
import itertools
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from unittest import mock
from uuid import UUID

from fakellm._events import (
    FINISH_KINDS,
    KINDS,
    START_KINDS,
    EventLog,
    Run,
    RunRef,
    ToolUse,
)

__all__ = [
    "MATCH_MODES",
    "STREAM_MODES",
    "FakeLLMAssertionError",
    "assert_events",
    "assert_interleaved",
    "assert_nodes",
    "assert_sequential",
    "assert_stream_matches_invoke",
    "assert_tool_called",
    "assert_tool_calls",
    "assert_tool_not_called",
    "assert_trace",
    "assert_usage",
    "assert_well_formed",
    "update_traces",
]

# -- assert_events ---------------------------------------------------------------------

_EXPECT_RE = re.compile(r"^(?P<kind>[a-z_]+)(?::(?P<name>.+?))?(?P<rep>[+*?]|\{\d+(?:,\d*)?\})?$")
_ANY_LINE = r"[^\n]*\n"
_GAP = f"(?:{_ANY_LINE})*?"


def _element_pattern(item: Any, index: int) -> tuple[str, str]:
    if not isinstance(item, str):
        raise TypeError(
            f"expected[{index}]={item!r} is not a string; accepted: 'kind', "
            "'kind:RunName', optionally followed by +, *, ? or {n} / {m,n}"
        )
    m = _EXPECT_RE.match(item)
    if m is None or m["kind"] not in KINDS:
        raise ValueError(
            f"expected[{index}]={item!r} is not an expectation; accepted: "
            "'kind', 'kind:RunName', optionally followed by +, *, ? or {n}, where "
            f"kind is one of: {', '.join(KINDS)}"
        )
    name = re.escape(m["name"]) if m["name"] else "[^\n]*"
    return f"{m['kind']}:{name}\n", m["rep"] or ""


def _compile(expected: Sequence[str], exact: bool) -> list[str]:
    parts = []
    for i, item in enumerate(expected):
        body, rep = _element_pattern(item, i)
        # Subsequence mode lets other events sit before each repetition too.
        parts.append(f"(?:{body}){rep}" if exact else f"(?:{_GAP}{body}){rep}")
    return parts


def _encode(log: EventLog) -> str:
    return "".join(f"{ev.kind}:{(ev.run_name or '').replace(chr(10), ' ')}\n" for ev in log)


def _compact(shorts: Sequence[str]) -> str:
    """Render event shorts as a list, folding repeats: ``'x' x3``."""
    items: list[str] = []
    i = 0
    while i < len(shorts):
        j = i
        while j + 1 < len(shorts) and shorts[j + 1] == shorts[i]:
            j += 1
        n = j - i + 1
        items.append(f"{shorts[i]!r}" + (f" x{n}" if n > 1 else ""))
        i = j + 1
    return "[" + ", ".join(items) + "]"


class FakeLLMAssertionError(AssertionError):
    """An assertion failure whose message already holds the timeline (so the
    pytest plugin does not print it a second time)."""


#: Timeline rows an assertion message shows at most (head and tail are kept).
MESSAGE_EVENTS = 40


def _fail(lines: Iterable[str], log: EventLog, runs: Iterable[RunRef] | None) -> None:
    __tracebackhide__ = True
    text = "\n".join(lines)
    timeline = log.timeline(runs, max_events=MESSAGE_EVENTS)
    raise FakeLLMAssertionError(f"{text}\n\nTimeline:\n{timeline}")


def _check_log(log: Any) -> EventLog:
    if isinstance(log, EventLog):
        return log
    events = getattr(log, "events", None)  # a Recorder
    if isinstance(events, EventLog):
        return events
    raise TypeError(f"log={log!r} is not an EventLog; pass recorder.events or the Recorder")


def assert_events(
    log: EventLog | Any,
    expected: Sequence[str],
    *,
    exact: bool = True,
    run: RunRef | None = None,
) -> None:
    """Assert the events match ``expected``.

    Each expectation is ``"kind"`` or ``"kind:RunName"`` (kinds as in
    :data:`fakellm._events.KINDS`, the callback name without ``on_``),
    optionally followed by a repetition: ``+`` one or more, ``*`` any number,
    ``?`` optional, ``{n}`` or ``{m,n}``. Example::

        assert_events(rec.events, ["chat_model_start", "llm_new_token+", "llm_end"])

    Args:
        log: The EventLog (or the Recorder).
        expected: The expectations, in order.
        exact: True: the events are exactly this sequence. False: the
            expectations match an ordered subsequence (other events may sit
            between them).
        run: Only look at this run and its descendants.
    """
    __tracebackhide__ = True
    log = _check_log(log)
    if isinstance(expected, str) or not isinstance(expected, Sequence):
        raise TypeError(
            f"expected={expected!r} must be a list of expectation strings, "
            "e.g. ['chat_model_start', 'llm_new_token+', 'llm_end']"
        )
    if not isinstance(exact, bool):
        raise TypeError(f"exact={exact!r} must be True or False")
    if run is not None:
        log = log.filter(run=run, subtree=True)
    parts = _compile(expected, exact)
    tail = "" if exact else f"(?:{_ANY_LINE})*"
    encoded = _encode(log)
    if re.fullmatch("".join(parts) + tail, encoded):
        return
    # The longest prefix of expectations that still matches says where it broke.
    matched = 0
    for k in range(len(parts) - 1, -1, -1):
        if re.fullmatch("".join(parts[:k]) + f"(?:{_ANY_LINE})*", encoded):
            matched = k
            break
    mode = "exact" if exact else "ordered subsequence"
    where = (
        f"First unmatched expectation: [{matched}] {expected[matched]!r}"
        if matched < len(expected)
        else "All expectations matched, but events remain after them"
    )
    _fail(
        [
            f"events do not match ({mode}).",
            f"Expected: {list(expected)!r}",
            f"Actual: {_compact(log.shorts())}",
            where,
        ],
        log,
        None,
    )


# -- assert_well_formed ----------------------------------------------------------------


def _chunk_input_tokens(chunk: Any) -> int:
    usage = getattr(getattr(chunk, "message", None), "usage_metadata", None)
    return int(usage.get("input_tokens") or 0) if usage else 0


def well_formed_problems(log: EventLog) -> list[tuple[Run, str]]:
    """Every violation of the trace invariants (see :func:`assert_well_formed`).

    Each run is checked against its own events, read through the log's run
    index: linear in events, with no per-event record built on the way.
    """
    events = log._events
    problems: list[tuple[Run, str]] = []
    for r, positions in log._runs_and_positions():
        starts: list[int] = []
        finishes: list[int] = []
        inside: list[int] = []
        for i in positions:
            kind = events[i].kind
            if kind in START_KINDS:
                starts.append(i)
            elif kind in FINISH_KINDS:
                finishes.append(i)
            else:
                inside.append(i)
        if not starts:
            problems.append((r, "has events but never started"))
        elif len(starts) > 1:
            problems.append((r, f"started {len(starts)} times (#{', #'.join(map(str, starts))})"))
        if not finishes:
            problems.append((r, "never ended or errored"))
        elif len(finishes) > 1:
            kinds = ", ".join(f"{events[i].kind} #{events[i].seq}" for i in finishes)
            problems.append((r, f"finished {len(finishes)} times ({kinds})"))
        # The run's first start and first end or error, as Run.start and Run.end hold them.
        first, last = r.start, r.end
        for i in inside:
            if first is None or i < first:
                problems.append((r, f"{events[i].kind} #{events[i].seq} before the run started"))
            elif last is not None and i > last:
                problems.append((r, f"{events[i].kind} #{events[i].seq} after the run finished"))
        parent = log.parent(r) if r.parent_id is not None else None
        if parent is not None and parent.start is not None and first is not None:
            if first < parent.start:
                problems.append((r, f"started before its parent {parent}"))
            if parent.end is not None and (last is None or last > parent.end):
                problems.append((r, f"still running after its parent {parent} finished"))
        end = events[last] if last is not None else None
        if end is not None and end.kind == "llm_end":
            token_events = [events[i] for i in inside if events[i].kind == "llm_new_token"]
            tokens = [ev.token for ev in token_events]
            if (
                tokens
                and end.output_text is not None
                and all(isinstance(t, str) for t in tokens)
                and "".join(tokens) != end.output_text
            ):
                problems.append(
                    (
                        r,
                        f"streamed text {''.join(tokens)!r} != final text {end.output_text!r}",
                    )
                )
            counted = [ev.seq for ev in token_events if _chunk_input_tokens(ev.chunk) > 0]
            if len(counted) > 1:
                problems.append(
                    (
                        r,
                        f"usage counted {len(counted)} times: chunks "
                        f"#{', #'.join(map(str, counted))} all report "
                        "input tokens",
                    )
                )
    return problems


def assert_well_formed(log: EventLog | Any) -> None:
    """Assert the trace keeps the invariants of a LangChain run tree.

    Checked: each run starts once and ends or errors exactly once; its other
    events (tokens, protocol events, ...) come between the two; a child starts
    after its parent and finishes before it; streamed tokens concatenate to the
    final message text; at most one stream chunk of a run reports input tokens
    (usage counted once per run).
    """
    __tracebackhide__ = True
    log = _check_log(log)
    problems = well_formed_problems(log)
    if not problems:
        return
    involved = list(dict.fromkeys(r.id for r, _ in problems))
    _fail(
        [
            "Expected: a well-formed trace",
            f"Actual: {len(problems)} problem(s):",
            *(f"  - {r}: {what}" for r, what in problems),
        ],
        log,
        involved,
    )


# -- interleaving ----------------------------------------------------------------------


def _span(log: EventLog, run: Run) -> tuple[set[UUID], list[int]]:
    ids = {r.id for r in log.subtree(run)}
    return ids, [i for i, ev in enumerate(log) if ev.run_id in ids]


def _two_runs(log: EventLog, run_a: RunRef, run_b: RunRef) -> tuple[Run, Run]:
    a, b = log.run(run_a), log.run(run_b)
    if a.id == b.id:
        raise ValueError(f"run_a={run_a!r} and run_b={run_b!r} are the same run {a}")
    for outer, inner, name in ((a, b, "run_b"), (b, a, "run_a")):
        if inner.id in {r.id for r in log.subtree(outer)}:
            raise ValueError(
                f"{name}={inner} runs inside {outer}; compare runs that are not "
                "nested in each other"
            )
    return a, b


def assert_interleaved(log: EventLog | Any, run_a: RunRef, run_b: RunRef) -> None:
    """Assert the events of two runs (with their descendants) interleave:
    neither run's events all come before the other's."""
    __tracebackhide__ = True
    log = _check_log(log)
    a, b = _two_runs(log, run_a, run_b)
    ids_a, idx_a = _span(log, a)
    _, idx_b = _span(log, b)
    owners = [log[i].run_id in ids_a for i in sorted({*idx_a, *idx_b})]
    switches = sum(1 for x, y in itertools.pairwise(owners) if x != y)
    if switches >= 2:
        return
    first, second = (a, b) if (idx_a or [0])[0] <= (idx_b or [0])[0] else (b, a)
    _fail(
        [
            f"Expected: {a} and {b} interleaved",
            f"Actual: every event of {first} came before every event of {second} "
            f"({_range(log, first)} then {_range(log, second)})",
        ],
        log,
        [a.id, b.id],
    )


def _range(log: EventLog, run: Run) -> str:
    _, idx = _span(log, run)
    return f"#{log[idx[0]].seq}..#{log[idx[-1]].seq}" if idx else "no events"


def assert_sequential(log: EventLog | Any, *runs: RunRef) -> None:
    """Assert the runs (with their descendants) ran one after another, in the
    given order: each one's last event comes before the next one's first."""
    __tracebackhide__ = True
    log = _check_log(log)
    if len(runs) < 2:
        raise ValueError(f"runs={runs!r}: give at least two runs to compare")
    resolved = [log.run(r) for r in runs]
    for x, y in itertools.pairwise(resolved):
        _two_runs(log, x, y)
        _, idx_x = _span(log, x)
        _, idx_y = _span(log, y)
        if idx_x and idx_y and idx_x[-1] < idx_y[0]:
            continue
        intruder = next((i for i in idx_y if i < idx_x[-1]), idx_y[0]) if idx_y else None
        detail = (
            f"{log[intruder].kind} #{log[intruder].seq} of {y} came before "
            f"{x} finished (#{log[idx_x[-1]].seq})"
            if intruder is not None and idx_x
            else "a run has no events"
        )
        _fail(
            [
                f"Expected: {', then '.join(map(str, resolved))}, one after another",
                f"Actual: {detail}",
            ],
            log,
            [r.id for r in resolved],
        )


# -- usage -----------------------------------------------------------------------------


def _check_count(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name}={value!r} must be an int (a token count) or None")
    if value < 0:
        raise ValueError(f"{name}={value!r} must be >= 0")


def assert_usage(
    log: EventLog | Any,
    *,
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    total_tokens: int | None = None,
    model: str | None = None,
    run: RunRef | None = None,
) -> None:
    """Assert token usage totals, counted as ``get_usage_metadata_callback``
    counts them when ``model`` is given (see :meth:`EventLog.usage`).

    Args:
        log: The EventLog (or the Recorder).
        input_tokens: Expected input tokens; None: not checked.
        output_tokens: Expected output tokens; None: not checked.
        total_tokens: Expected total tokens; None: not checked.
        model: Only count responses reporting this model name.
        run: Only count this run and its descendants.
    """
    __tracebackhide__ = True
    log = _check_log(log)
    expected = {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": total_tokens,
    }
    for key, value in expected.items():
        _check_count(key, value)
    expected = {k: v for k, v in expected.items() if v is not None}
    if not expected:
        raise ValueError(
            "assert_usage needs at least one of input_tokens=, output_tokens=, total_tokens="
        )
    if model is not None and not isinstance(model, str):
        raise TypeError(f"model={model!r} must be a model name (str) or None")
    totals = log.usage(run, model=model)
    actual = {k: totals[k] for k in expected}
    if actual == expected:
        return
    scope = f" for model {model!r}" if model is not None else ""
    model_runs = [r.id for r in log.runs() if r.type in ("chat_model", "llm")]
    _fail(
        [
            f"usage{scope} differs.",
            f"Expected: {expected!r}",
            f"Actual: {actual!r}",
            f"Per model: {log.usage_by_model()!r}",
        ],
        log,
        model_runs or None,
    )


# -- stream / invoke parity ------------------------------------------------------------

#: The ways :func:`assert_stream_matches_invoke` runs a model.
STREAM_MODES: tuple[str, ...] = (
    "invoke",
    "stream",
    "astream",
    "batch",
    "stream_events",
)


def _summary(message: Any) -> dict[str, Any]:
    usage = getattr(message, "usage_metadata", None)
    return {
        "text": message.text if isinstance(message.text, str) else message.text(),
        "tool_calls": [(c["name"], c["args"]) for c in getattr(message, "tool_calls", [])],
        "usage": None
        if usage is None
        else {k: usage.get(k) for k in ("input_tokens", "output_tokens", "total_tokens")},
    }


def _merge(chunks: list[Any]) -> Any:
    if not chunks:
        raise AssertionError("the model streamed no chunks")
    out = chunks[0]
    for c in chunks[1:]:
        out = out + c
    return out


def _run_async(factory: Callable[[], Any]) -> Any:
    """Run a coroutine on a fresh loop, on a helper thread if one is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(factory())
        except BaseException as exc:  # re-raised on the caller's thread
            box["error"] = exc

    t = threading.Thread(target=target, name="fakellm-assert-stream")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _fresh(model: Any) -> Any:
    """A copy of ``model`` with fresh private state (a scripted model restarts
    its script): rebuilt from its set fields, since models holding locks cannot
    be deep-copied; a binding (``bind_tools``) gets a fresh bound model."""
    bound = getattr(model, "bound", None)
    if bound is not None and hasattr(model, "model_copy"):
        return model.model_copy(update={"bound": _fresh(bound)})
    fields = getattr(model, "model_fields_set", None)
    if fields is None:
        return copy.deepcopy(model)
    return type(model)(**{name: getattr(model, name) for name in fields})


def _play(model: Any, mode: str, input: Any, config: dict[str, Any]) -> Any:
    if mode == "invoke":
        return model.invoke(input, config)
    if mode == "stream":
        return _merge(list(model.stream(input, config)))
    if mode == "astream":

        async def collect() -> Any:
            return _merge([c async for c in model.astream(input, config)])

        return _run_async(collect)
    if mode == "batch":
        return model.batch([input], config)[0]
    with warnings.catch_warnings():  # v3 is beta and says so on every call
        warnings.simplefilter("ignore")
        return model.stream_events(input, config, version="v3").output


def assert_stream_matches_invoke(
    model: Any,
    input: Any,
    *,
    modes: Sequence[str] = STREAM_MODES,
    config: Mapping[str, Any] | None = None,
) -> None:
    """Assert one turn gives the same message text, tool calls and usage
    however it is run: ``invoke``, ``stream`` (chunks merged), ``astream``,
    ``batch`` and ``stream_events(version="v3")``.

    Args:
        model: A zero-argument factory returning a fresh model (preferred: a
            scripted model's turns are used up), or a model, which is then
            rebuilt from its fields for each mode so each mode plays the same
            turn.
        input: What to send the model.
        modes: A subset of :data:`STREAM_MODES`, in the order to run them.
        config: A RunnableConfig for each call (a Recorder is added per mode).
    """
    __tracebackhide__ = True
    from fakellm._recorder import Recorder

    if not isinstance(modes, str | Iterable):
        raise TypeError(f"modes={modes!r} must be a list of mode names ({', '.join(STREAM_MODES)})")
    if config is not None and not isinstance(config, Mapping):
        raise TypeError(f"config={config!r} must be a RunnableConfig (a mapping) or None")
    modes = list(modes) if not isinstance(modes, str) else [modes]
    bad = [m for m in modes if m not in STREAM_MODES]
    if bad or len(modes) < 2:
        raise ValueError(f"modes={modes!r}: give at least two of {', '.join(STREAM_MODES)}")
    if hasattr(model, "invoke"):
        template = model

        def make() -> Any:
            return _fresh(template)
    elif callable(model):
        make = model
    else:
        raise TypeError(f"model={model!r} is neither a model nor a factory returning one")
    results: dict[str, dict[str, Any]] = {}
    logs: dict[str, EventLog] = {}
    for mode in modes:
        rec = Recorder()
        cfg = dict(config or {})
        cfg["callbacks"] = [*(cfg.get("callbacks") or []), rec]
        results[mode] = _summary(_play(make(), mode, input, cfg))
        logs[mode] = rec.events
    base_mode = modes[0]
    differing = [m for m in modes if results[m] != results[base_mode]]
    if not differing:
        return
    lines = [
        f"the modes disagree with {base_mode}.",
        f"Expected: {base_mode}: {results[base_mode]!r}",
        "Actual:",
    ]
    lines += [f"  {m}: {results[m]!r}" + (" (differs)" if m in differing else "") for m in modes]
    timelines = "\n\n".join(f"[{m}]\n{logs[m].timeline()}" for m in [base_mode, *differing])
    raise AssertionError("\n".join(lines) + "\n\nTimelines:\n" + timelines)


# -- tool calls and graph nodes ----------------------------------------------------------

#: How :func:`assert_tool_calls` and :func:`assert_nodes` compare, as in
#: agentevals' trajectory match: ``strict`` (same calls, same order),
#: ``unordered`` (same calls, any order), ``subset`` (every actual call is
#: expected; expected ones may be missing), ``superset`` (every expected call
#: happened; others may happen too).
MATCH_MODES: tuple[str, ...] = ("strict", "unordered", "subset", "superset")

_MockCall = type(mock.call)


class _Expected(NamedTuple):
    name: Any  # a str, or mock.ANY
    args: Any  # None (any args), mock.ANY, a predicate, or a mapping


def _is_predicate(value: Any) -> bool:
    return callable(value) and not isinstance(value, type) and value is not mock.ANY


def _expected_call(item: Any, index: int) -> _Expected:
    if isinstance(item, str) or item is mock.ANY:
        return _Expected(item, None)
    if isinstance(item, _MockCall) and len(item) == 3:
        name, args, kwargs = item
        if not name or args:
            raise TypeError(
                f"expected[{index}]={item!r}: spell a tool call as "
                "call.get_weather(city='Paris') (keyword arguments only)"
            )
        return _Expected(name, dict(kwargs))
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        name, args = item
        if args is None or args is mock.ANY or _is_predicate(args) or isinstance(args, Mapping):
            return _Expected(name, args)
    raise TypeError(
        f"expected[{index}]={item!r} is not a tool call expectation; accepted: a name "
        "('get_weather': any arguments), a (name, args) pair where args is a dict (values "
        "may be mock.ANY or predicates), mock.ANY or a predicate, or "
        "mock.call.get_weather(city='Paris')"
    )


def _value_matches(expected: Any, actual: Any) -> bool:
    if _is_predicate(expected):
        return bool(expected(actual))
    return bool(expected == actual)


def _call_matches(exp: _Expected, act: tuple[str, Any]) -> bool:
    name, args = act
    if exp.name is not mock.ANY and exp.name != name:
        return False
    spec = exp.args
    if spec is None or spec is mock.ANY:
        return True
    if _is_predicate(spec):
        return bool(spec(args))
    if not isinstance(args, Mapping) or set(spec) != set(args):
        return False
    return all(_value_matches(v, args[k]) for k, v in spec.items())


def _show_value(value: Any) -> str:
    if value is mock.ANY:
        return "<ANY>"
    if _is_predicate(value):
        return f"<{getattr(value, '__name__', type(value).__name__)}>"
    return _clip_repr(value)


def _clip_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show_call(name: Any, args: Any) -> str:
    head = "<ANY>" if name is mock.ANY else str(name)
    if args is None:
        return f"{head}(...)"
    if args is mock.ANY or _is_predicate(args) or not isinstance(args, Mapping):
        return f"{head}({_show_value(args)})"
    if all(isinstance(k, str) and k.isidentifier() for k in args):
        return f"{head}({', '.join(f'{k}={_show_value(v)}' for k, v in args.items())})"
    return f"{head}(**{{{', '.join(f'{k!r}: {_show_value(v)}' for k, v in args.items())}}})"


def _max_matching(
    expected: Sequence[Any], actual: Sequence[Any], ok: Callable[[Any, Any], bool]
) -> dict[int, int]:
    """A largest pairing expected index -> actual index (augmenting paths):
    a greedy pass could pair ANY with the one call a narrower expectation needed."""
    owner: dict[int, int] = {}

    def place(i: int, seen: set[int]) -> bool:
        for j, act in enumerate(actual):
            if j in seen or not ok(expected[i], act):
                continue
            seen.add(j)
            if j not in owner or place(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(expected)):
        place(i, set())
    return {i: j for j, i in owner.items()}


def _aligned(
    expected: Sequence[Any], actual: Sequence[Any], ok: Callable[[Any, Any], bool]
) -> list[tuple[int | None, int | None]]:
    """The longest in-order matching, as diff rows (expected index, actual index)."""
    n, m = len(expected), len(actual)
    best = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            best[i][j] = (
                best[i + 1][j + 1] + 1
                if ok(expected[i], actual[j])
                else max(best[i + 1][j], best[i][j + 1])
            )
    rows: list[tuple[int | None, int | None]] = []
    i = j = 0
    while i < n or j < m:
        if i < n and j < m and ok(expected[i], actual[j]) and best[i][j] == best[i + 1][j + 1] + 1:
            rows.append((i, j))
            i, j = i + 1, j + 1
        elif i < n and (j == m or best[i + 1][j] >= best[i][j + 1]):
            rows.append((i, None))  # "- expected" before "+ actual", as diffs print
            i += 1
        else:
            rows.append((None, j))
            j += 1
    return rows


def _trajectory_problem(
    expected: Sequence[Any],
    actual: Sequence[Any],
    ok: Callable[[Any, Any], bool],
    mode: str,
) -> list[tuple[int | None, int | None]] | None:
    """None if ``actual`` matches ``expected`` in ``mode``; else diff rows."""
    if mode == "strict":
        rows = _aligned(expected, actual, ok)
        return None if all(e is not None and a is not None for e, a in rows) else rows
    pairs = _max_matching(expected, actual, ok)
    missing = [i for i in range(len(expected)) if i not in pairs]
    matched_actual = set(pairs.values())
    extra = [j for j in range(len(actual)) if j not in matched_actual]
    if (
        (mode == "unordered" and not missing and not extra)
        or (mode == "subset" and not extra)
        or (mode == "superset" and not missing)
    ):
        return None
    by_actual = {j: i for i, j in pairs.items()}
    unordered: list[tuple[int | None, int | None]] = [
        (by_actual.get(j), j) for j in range(len(actual))
    ]
    return unordered + [(i, None) for i in missing]


def _diff_lines(
    rows: Sequence[tuple[int | None, int | None]],
    show_expected: Callable[[int], str],
    show_actual: Callable[[int], str],
) -> list[str]:
    out = ["Diff (- expected, + actual):"]
    for e, a in rows:
        if e is not None and a is not None:
            out.append(f"    {show_actual(a)}")
        elif e is not None:
            out.append(f"  - {show_expected(e)}")
        elif a is not None:
            out.append(f"  + {show_actual(a)}")
    return out


def _check_mode(mode: Any) -> str:
    if mode not in MATCH_MODES:
        raise ValueError(f"mode={mode!r} is not a match mode; accepted: {', '.join(MATCH_MODES)}")
    return str(mode)


def _source_calls(source: Any, node: str | None) -> tuple[list[ToolUse], EventLog | None]:
    """The tool calls of an EventLog, a Recorder, a message list or an agent's
    state (``{"messages": [...]}``), with the log when there is one."""
    log: EventLog | None = None
    if isinstance(source, EventLog) or isinstance(getattr(source, "events", None), EventLog):
        log = _check_log(source)
        return log.tool_calls(node=node), log
    if node is not None:
        raise TypeError(
            f"node={node!r} needs an EventLog or a Recorder; a message list has no nodes"
        )
    messages = source.get("messages") if isinstance(source, Mapping) else source
    if isinstance(messages, Sequence) and not isinstance(messages, str):
        calls: list[ToolUse] = []
        for msg in messages:
            for c in getattr(msg, "tool_calls", None) or ():
                calls.append(ToolUse(str(c.get("name")), dict(c.get("args") or {})))
        return calls, None
    raise TypeError(
        f"source={source!r} is not a trajectory; pass an EventLog, a Recorder, a list of "
        "messages or an agent's state dict with 'messages'"
    )


def _tool_timeline_runs(log: EventLog) -> list[UUID]:
    return [r.id for r in log.runs() if r.type in ("chat_model", "llm", "tool")]


def _fail_calls(lines: list[str], log: EventLog | None) -> None:
    __tracebackhide__ = True
    if log is None:
        raise FakeLLMAssertionError("\n".join(lines))
    _fail(lines, log, _tool_timeline_runs(log) or None)


def assert_tool_calls(
    source: EventLog | Any,
    expected: Sequence[Any],
    *,
    mode: str = "strict",
    node: str | None = None,
) -> None:
    """Assert the tool calls the models asked for match ``expected``.

    Example::

        assert_tool_calls(rec, [("get_weather", {"city": "Paris"}), "book"])
        assert_tool_calls(result, [call.get_weather(city=ANY)], mode="superset")

    Args:
        source: An EventLog or Recorder (calls from every model response, in
            order), a list of messages or an agent's state (``{"messages": ...}``).
        expected: Each call as a tool name (any arguments), a ``(name, args)``
            pair, or ``mock.call.name(**args)``. Argument values may be
            ``mock.ANY`` or predicates (``lambda city: city.istitle()``); args
            may also be one predicate on the whole dict.
        mode: One of :data:`MATCH_MODES`.
        node: Only calls made by models inside this LangGraph node.
    """
    __tracebackhide__ = True
    if isinstance(expected, str) or not isinstance(expected, Sequence):
        raise TypeError(
            f"expected={expected!r} must be a list of tool calls, e.g. "
            "[('get_weather', {'city': 'Paris'}), 'book']"
        )
    mode = _check_mode(mode)
    specs = [_expected_call(item, i) for i, item in enumerate(expected)]
    actual, log = _source_calls(source, node)
    rows = _trajectory_problem(specs, actual, _call_matches, mode)
    if rows is None:
        return
    where = f" in node {node!r}" if node is not None else ""
    _fail_calls(
        [
            f"tool calls{where} do not match ({mode}).",
            f"Expected: [{', '.join(_show_call(*e) for e in specs)}]",
            f"Actual: [{', '.join(_show_call(*a) for a in actual)}]",
            *_diff_lines(rows, lambda i: _show_call(*specs[i]), lambda j: _show_call(*actual[j])),
        ],
        log,
    )


def assert_tool_called(
    source: EventLog | Any,
    name: str,
    args: Any = None,
    /,
    *,
    times: int | None = None,
    node: str | None = None,
) -> None:
    """Assert a model asked for tool ``name`` (with ``args``, if given), like
    ``Mock.assert_any_call``; with ``times``, exactly that many such calls.

    ``args`` is a dict (values may be ``mock.ANY`` or predicates) or one
    predicate on the whole dict; None accepts any arguments.
    """
    __tracebackhide__ = True
    if not isinstance(name, str):
        raise TypeError(f"name={name!r} must be a tool name (str)")
    if times is not None:
        _check_count("times", times)
    spec = _expected_call((name, args), 0)
    actual, log = _source_calls(source, node)
    hits = [a for a in actual if _call_matches(spec, a)]
    if (times is None and hits) or (times is not None and len(hits) == times):
        return
    wanted = _show_call(*spec)
    header = (
        "expected tool call not found."
        if times is None
        else f"expected tool call {times} time(s), found {len(hits)}."
    )
    _fail_calls(
        [
            header,
            f"Expected: {wanted}" + ("" if times is None else f" x{times}"),
            f"Actual: [{', '.join(_show_call(*a) for a in actual)}]",
        ],
        log,
    )


def assert_tool_not_called(
    source: EventLog | Any, name: str, /, *, node: str | None = None
) -> None:
    """Assert no model asked for tool ``name``."""
    __tracebackhide__ = True
    assert_tool_called(source, name, None, times=0, node=node)


def assert_nodes(log: EventLog | Any, expected: Sequence[Any], *, mode: str = "strict") -> None:
    """Assert the LangGraph nodes that ran (see :meth:`EventLog.nodes`), one
    entry per execution, match ``expected`` (names or paths such as
    ``"approval/review"``, or ``mock.ANY``) in ``mode`` (:data:`MATCH_MODES`)."""
    __tracebackhide__ = True
    log = _check_log(log)
    if isinstance(expected, str) or not isinstance(expected, Sequence):
        raise TypeError(f"expected={expected!r} must be a list of node names")
    for i, item in enumerate(expected):
        if not isinstance(item, str) and item is not mock.ANY:
            raise TypeError(f"expected[{i}]={item!r} must be a node name (str) or mock.ANY")
    mode = _check_mode(mode)
    actual = log.nodes()
    rows = _trajectory_problem(expected, actual, lambda e, a: e == a, mode)
    if rows is None:
        return
    _fail(
        [
            f"graph nodes do not match ({mode}).",
            f"Expected: {list(expected)!r}",
            f"Actual: {actual!r}",
            *_diff_lines(rows, lambda i: repr(expected[i]), lambda j: repr(actual[j])),
        ],
        log,
        [r.id for r in log.node_runs()] or None,
    )


# -- golden trace files -----------------------------------------------------------------

_update_traces = os.environ.get("FAKELLM_UPDATE_TRACES", "") not in ("", "0")


def update_traces(on: bool) -> None:
    """Make :func:`assert_trace` write its files instead of comparing (what
    ``pytest --fakellm-update-traces`` or ``FAKELLM_UPDATE_TRACES=1`` turn on)."""
    global _update_traces
    if not isinstance(on, bool):
        raise TypeError(f"on={on!r} must be True or False")
    _update_traces = on


#: Diff lines an :func:`assert_trace` failure shows at most.
MESSAGE_DIFF_LINES = 80


def assert_trace(
    log: EventLog | Any,
    path: str | os.PathLike[str],
    *,
    times: bool | None = None,
) -> None:
    """Assert the log's text form (:meth:`EventLog.to_text`) equals the golden
    file at ``path``; a relative path is relative to the calling test's file.

    Run pytest with ``--fakellm-update-traces`` (or set
    ``FAKELLM_UPDATE_TRACES=1``) to write or rewrite the files, then review
    them with ``git diff``. A missing file fails the test until then.

    Args:
        log: The EventLog (or the Recorder).
        path: The golden file, e.g. ``"traces/booking.txt"``.
        times: As in :meth:`EventLog.normalized`.
    """
    __tracebackhide__ = True
    log = _check_log(log)
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path={path!r} must be a file path (str or os.PathLike)")
    target = Path(path)
    if not target.is_absolute():
        caller = inspect.currentframe()
        caller = caller.f_back if caller is not None else None
        filename = caller.f_code.co_filename if caller is not None else ""
        target = (Path(filename).parent if filename else Path.cwd()) / target
    text = log.to_text(times=times) + "\n"
    if _update_traces:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
        return
    if not target.exists():
        raise FakeLLMAssertionError(
            f"no golden trace at {target}.\nRun pytest with --fakellm-update-traces to write "
            "it, then review and commit the file."
        )
    golden = target.read_text(encoding="utf-8")
    if golden == text:
        return
    diff = list(
        difflib.unified_diff(
            golden.splitlines(),
            text.splitlines(),
            fromfile=f"{target.name} (expected)",
            tofile="actual",
            lineterm="",
            n=1,
        )
    )
    shown = diff[:MESSAGE_DIFF_LINES]
    if len(diff) > len(shown):
        shown.append(f"… {len(diff) - len(shown)} more diff lines")
    raise FakeLLMAssertionError(
        f"trace differs from {target}.\n"
        + "\n".join(shown)
        + "\nIf the change is intended, run pytest with --fakellm-update-traces and review "
        "the file's diff."
    )
