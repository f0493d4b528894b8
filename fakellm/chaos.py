"""Seeded chaos on virtual time: rate limits, failing requests, cut streams, slow tokens,
malformed tool-call arguments.

Real providers fail in ways a single scripted error does not show: a quota of N
requests per minute answered with HTTP 429 and ``retry-after`` until the window
rolls, a fraction of requests failing, streams cut mid-way, first tokens that
take seconds, tool-call arguments that are not valid JSON. :class:`Chaos` is
that failure model as plain, immutable data, applied to a
:class:`~fakellm.Script` with :meth:`Chaos.apply`::

    chaos = Chaos(quota=Quota(requests=2, window=10.0), failures=(3,))
    model = FakeChatModel(script=chaos.apply(script))

It is built on the script machinery: request-level faults are one
:class:`~fakellm.Rule` in front of the script's own rules (so a failed request
consumes no turn, and the retry gets the turn the script had for it), and
turn-level faults rewrite the queued turns. Time is the running loop's (virtual
under the harness), so a quota window rolls at the same instant on every run.

Chaos comes from a seed (:meth:`Chaos.seeded`, the same plan for the same seed
on every machine) or from Hypothesis (:func:`fakellm.strategies.chaos`, which
shrinks it to the fewest faults that still fail); either way it prints as code
to paste into a test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import time
from typing import Any

from fakellm import _clock, errors
from fakellm._script import Call, Rule, Script, ToolCall, Turn
from fakellm._source import error_source

__all__ = ["Chaos", "Quota"]

_MS = 1000


def _check(ok: bool, name: str, value: Any, accepted: str) -> None:
    if not ok:
        raise ValueError(f"{name}={value!r}: expected {accepted}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class Quota:
    """A provider's rate limit: ``requests`` per ``window`` virtual seconds.

    Windows are fixed and start at virtual time 0 (``[0, window)``,
    ``[window, 2 * window)``, ...). A request past the quota gets
    :class:`~fakellm.errors.RateLimitError` (HTTP 429) with ``retry_after``
    set to the seconds until its window rolls; rejected requests do not count.
    """

    requests: int
    window: float = 60.0

    def __post_init__(self) -> None:
        _check(
            _is_int(self.requests) and self.requests >= 1,
            "requests",
            self.requests,
            "an integer >= 1",
        )
        _check(
            isinstance(self.window, int | float)
            and not isinstance(self.window, bool)
            and math.isfinite(self.window)
            and self.window > 0,
            "window",
            self.window,
            "a finite number of seconds > 0",
        )


@dataclasses.dataclass(frozen=True, repr=False)
class Chaos:
    """Faults a provider adds to a script.

    Attributes:
        quota: a rate limit (429 with ``retry_after`` past it), or None.
        failures: request numbers (0 for the first request the model receives,
            in arrival order, 429s included) answered with ``failure``
            before their first chunk; the request consumes no turn.
        failure: the error class of ``failures`` (a 500 by default).
        truncate: ``(turn, chunks)`` pairs: queued turn number ``turn`` streams
            only its first ``chunks`` chunks, then the connection is cut
            (:class:`~fakellm.errors.APIConnectionError`).
        slow: ``(turn, ms)`` pairs: queued turn number ``turn`` waits ``ms``
            more milliseconds before its first token.
        malformed: queued turn numbers whose tool calls arrive with arguments
            that are not valid JSON (a stray closing brace after the object):
            the message carries them in ``invalid_tool_calls``.
    """

    quota: Quota | None = None
    failures: tuple[int, ...] = ()
    failure: type[Exception] = errors.ServerError
    truncate: tuple[tuple[int, int], ...] = ()
    slow: tuple[tuple[int, int], ...] = ()
    malformed: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _check(
            self.quota is None or isinstance(self.quota, Quota),
            "quota",
            self.quota,
            "a Quota or None",
        )
        _check(
            isinstance(self.failures, tuple) and all(_is_int(n) and n >= 0 for n in self.failures),
            "failures",
            self.failures,
            "a tuple of request numbers >= 0",
        )
        _check(
            isinstance(self.malformed, tuple)
            and all(_is_int(n) and n >= 0 for n in self.malformed),
            "malformed",
            self.malformed,
            "a tuple of turn numbers >= 0",
        )
        _check(
            isinstance(self.failure, type) and issubclass(self.failure, Exception),
            "failure",
            self.failure,
            "an exception class such as errors.ServerError",
        )
        for name, pairs in (("truncate", self.truncate), ("slow", self.slow)):
            _check(
                isinstance(pairs, tuple)
                and all(
                    isinstance(p, tuple) and len(p) == 2 and all(_is_int(x) and x >= 0 for x in p)
                    for p in pairs
                ),
                name,
                pairs,
                "a tuple of (turn number, count) pairs of integers >= 0",
            )

    # -- applying it ---------------------------------------------------------------------

    def apply(self, script: Script) -> Script:
        """``script`` with these faults: the chaos rule first, then its own rules and turns.

        Each call of ``apply`` gets fresh counters (request numbers, quota use),
        so give every model its own applied script.
        """
        rules = script.rules
        if self.quota is not None or self.failures:
            rules = (self.rule(), *rules)
        turns = self.faulty_turns(script).turns
        return Script(turns=turns, rules=rules, when_exhausted=script.when_exhausted)

    def faulty_turns(self, script: Script) -> Script:
        """``script`` with only the turn-level faults (``truncate``, ``slow``,
        ``malformed``) applied."""
        if not (self.truncate or self.slow or self.malformed):
            return script
        cut = dict(self.truncate)
        slower = dict(self.slow)
        turns = tuple(
            _faulty(t, cut.get(k), slower.get(k), k in self.malformed)
            for k, t in enumerate(script.turns)
        )
        return Script(turns=turns, rules=script.rules, when_exhausted=script.when_exhausted)

    def rule(self) -> Rule:
        """The request-level faults (quota, failures) as one rule, with fresh counters."""
        state = _State(self)
        return Rule(when=state.strikes, responder=state.answer, name="chaos")

    # -- making it -----------------------------------------------------------------------

    @classmethod
    def seeded(
        cls,
        seed: int,
        *,
        requests: int,
        failure_rate: float = 0.0,
        quota: Quota | None = None,
        turns: int = 0,
        truncate_rate: float = 0.0,
        slow_rate: float = 0.0,
        max_slow_ms: int = 5000,
        failure: type[Exception] = errors.ServerError,
        malformed_rate: float = 0.0,
    ) -> Chaos:
        """The same plan for the same arguments on every run and machine.

        Each of the first ``requests`` requests fails with probability
        ``failure_rate``; each of the first ``turns`` queued turns is cut with
        probability ``truncate_rate`` (after a uniform number of chunks from 0
        to 3), slowed with probability ``slow_rate`` (by up to
        ``max_slow_ms``) and has its tool calls' arguments malformed with
        probability ``malformed_rate``. A rate of 0 draws nothing, so adding
        one leaves the plans of the others as they were.
        """
        for name, rate in (
            ("failure_rate", failure_rate),
            ("truncate_rate", truncate_rate),
            ("slow_rate", slow_rate),
            ("malformed_rate", malformed_rate),
        ):
            _check(
                isinstance(rate, int | float) and 0 <= rate <= 1,
                name,
                rate,
                "a probability in [0, 1]",
            )
        _check(_is_int(requests) and requests >= 0, "requests", requests, "an integer >= 0")
        _check(_is_int(turns) and turns >= 0, "turns", turns, "an integer >= 0")
        rng = random.Random(seed)  # string seeds hash the same everywhere; ints are ints
        failures = tuple(n for n in range(requests) if rng.random() < failure_rate)
        truncate = tuple(
            (k, rng.randint(0, 3)) for k in range(turns) if rng.random() < truncate_rate
        )
        slow = tuple(
            (k, rng.randint(1, max_slow_ms)) for k in range(turns) if rng.random() < slow_rate
        )
        malformed = tuple(
            k for k in range(turns) if malformed_rate and rng.random() < malformed_rate
        )
        return cls(
            quota=quota,
            failures=failures,
            failure=failure,
            truncate=truncate,
            slow=slow,
            malformed=malformed,
        )

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            parts.append(f"{f.name}={error_source(value) if f.name == 'failure' else repr(value)}")
        return f"Chaos({', '.join(parts)})"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))


def _faulty(turn: Turn, cut: int | None, slower: int | None, malformed: bool = False) -> Turn:
    if cut is None and slower is None and not (malformed and turn.tool_calls):
        return turn
    changes: dict[str, Any] = {}
    if malformed and turn.tool_calls:
        changes["tool_calls"] = [_malformed_call(tc) for tc in turn.tool_calls]
    if slower is not None:
        changes["first_token_delay"] = round(turn.first_token_delay + slower / _MS, 6)
    if cut is not None:
        n = len(turn.pieces)
        keep = min(cut, n)
        if turn.error is None or (turn.error_position or 0) > keep:
            changes["error"] = errors.APIConnectionError
            changes["at_chunk"] = keep
    data = {name: getattr(turn, name) for name in turn.model_fields_set}
    if isinstance(turn.chunks, tuple):
        data["chunks"] = turn.chunks
    return Turn(**{**data, **changes})


def _malformed_call(tc: ToolCall) -> ToolCall:
    """``tc`` with argument text that is not valid JSON: its arguments and a stray
    closing brace (langchain-core's lenient parser repairs text cut short, but not
    text past the end of the object). A call already malformed is kept."""
    if tc.raw_args is not None:
        return tc
    return ToolCall(tc.name, raw_args=tc.args_json + "}", id=tc.id, allow_unbound=tc.allow_unbound)


def _now() -> float:
    """Seconds on the running loop's clock (virtual under the harness), else the sync clock."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        pass
    clock = _clock.current_sync_clock()
    return clock.elapsed if clock is not None else time.monotonic()


class _State:
    """The counters of one applied chaos rule; its ``when`` decides, its responder answers."""

    def __init__(self, chaos: Chaos) -> None:
        self.chaos = chaos
        self.requests = 0
        self.window = -1
        self.used = 0
        self.pending: Exception | None = None

    def strikes(self, call: Call) -> bool:
        number, self.requests = self.requests, self.requests + 1
        quota = self.chaos.quota
        if quota is not None:
            now = _now()
            # A hair of slack: a client that waits exactly retry_after lands on the
            # boundary, which float rounding could put a nanosecond short of it.
            window = math.floor((now + 1e-9) / quota.window)
            if window != self.window:
                self.window, self.used = window, 0
            if self.used >= quota.requests:
                retry = round((window + 1) * quota.window - now, 6)
                self.pending = errors.RateLimitError(
                    f"rate limit reached: {quota.requests} requests per {quota.window:g} s; "
                    f"retry after {retry:g} s (scripted by fakellm chaos)",
                    retry_after=retry,
                )
                return True
            self.used += 1
        if number in self.chaos.failures:
            self.pending = self.chaos.failure()
            return True
        return False

    def answer(self, call: Call) -> Turn:
        error, self.pending = self.pending, None
        return Turn(error=error)
