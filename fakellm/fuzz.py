"""Fuzz an agent: Hypothesis draws what the model decides at every step.

:func:`decisions` is a Hypothesis strategy for a :class:`Decisions`: a
:class:`~fakellm.FakeChatModel` whose every answer is drawn *when the call
arrives*, from what the call carries (the bound tools and their JSON schemas,
``tool_choice``, the step number). Give the model to the real agent, play the
agent with :meth:`Decisions.play`, and check what it did::

    @settings(max_examples=200, deadline=None)
    @given(fuzz.decisions(max_steps=5))
    def test_booking_agent(decisions):
        agent = create_agent(decisions.model, tools=[search, confirm, book])
        run = decisions.play(lambda: agent.invoke({"messages": [("user", "a room")]}))
        run.check(fuzz.terminates(within=6), fuzz.before("confirm", "book"))

A failure shrinks towards fewer steps, fewer tool calls per step, the
simplest valid arguments, text answers and no errors, and prints as a
readable trajectory (step, tool, arguments, what the tool returned) followed
by a :class:`~fakellm.Script` that replays it as a regular test.

Prior art: pydantic-ai's ``TestModel`` calls every tool once with schema
data; here every decision is Hypothesis' to make, step by step, so the search
covers orders, repetitions and parallel calls nobody scripted.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import string
from collections.abc import Callable, Coroutine, Generator, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal

from hypothesis import currently_in_test_context, note
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.strategies import SearchStrategy
from langchain_core.tracers.context import register_configure_hook

from fakellm import _clock
from fakellm import errors as _errors
from fakellm import strategies as _strategies
from fakellm._events import Event, EventLog
from fakellm._model import FakeChatModel
from fakellm._recorder import Recorder
from fakellm._script import Call, Rule, Script, ToolCall, Turn
from fakellm.chaos import _malformed_call

if TYPE_CHECKING:
    from hypothesis.vendor.pretty import RepresentationPrinter

__all__ = [
    "AgentRun",
    "Decisions",
    "Fuzzer",
    "Invariant",
    "InvariantError",
    "Resume",
    "Step",
    "TooManyModelCalls",
    "ToolRun",
    "ToolUse",
    "aresume",
    "before",
    "decisions",
    "final_text",
    "model",
    "no_tool_errors",
    "play",
    "resume",
    "terminates",
    "token_budget",
    "valid_arguments",
]

# Every callback manager LangChain configures while a play is running gets
# this recorder (inherited by child runs), so tool runs are recorded without
# the app passing a config. Inert (one None check per configure) otherwise.
_playing: ContextVar[Recorder | None] = ContextVar("fakellm_fuzz_recorder", default=None)
register_configure_hook(_playing, inheritable=True)


class _PlayRecorder(Recorder):
    """A Recorder that is truthy when empty: the configure hook takes an empty
    (falsy, it has a length) handler for "none set" and builds a class instead."""

    def __bool__(self) -> bool:
        return True


_SCALE = 1 << 16  # resolution of a drawn probability: two bytes
_MS = 1000


class TooManyModelCalls(_errors.FakeLLMError):
    """The agent kept calling the drawing model past its ``call_limit``.

    Raised from the model call, so an agent that never ends fails the example
    instead of hanging the test.
    """


class InvariantError(AssertionError):
    """An agent run broke one or more invariants (see :meth:`AgentRun.check`)."""


# ------------------------------------------------------------------ the strategy


@dataclasses.dataclass(frozen=True)
class _Config:
    max_steps: int
    text: float
    parallel: float
    max_parallel: int
    repeat: float
    invalid_arguments: float
    malformed: float
    hallucinated: float
    refusals: float
    ignore_tool_choice: float
    errors: float
    error_types: tuple[type[BaseException], ...]
    max_ms: int
    texts: SearchStrategy[str]
    final_tool: str | None
    call_limit: int
    model_settings: Mapping[str, Any]
    # Step strategies built for this config, by what the call carries: built
    # once and reused, since Hypothesis validates every new strategy it draws.
    steps: dict[Any, SearchStrategy[Any]] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )


def decisions(
    *,
    max_steps: int = 5,
    text: float = 0.2,
    parallel: float = 0.2,
    max_parallel: int = 3,
    repeat: float = 0.1,
    invalid_arguments: float = 0.0,
    errors: float = 0.0,
    error_types: Sequence[type[BaseException]] = _strategies.DEFAULT_ERRORS,
    max_ms: int = 0,
    texts: SearchStrategy[str] | None = None,
    final_tool: str | None = None,
    call_limit: int | None = None,
    malformed: float = 0.0,
    hallucinated: float = 0.0,
    refusals: float = 0.0,
    ignore_tool_choice: float = 0.0,
    model_settings: Mapping[str, Any] | None = None,
) -> SearchStrategy[Decisions]:
    """A :class:`Decisions`: a fresh model whose answers Hypothesis draws call by call.

    At call ``k < max_steps`` the model, in this order, fails with a provider
    error (probability ``errors``), refuses (``refusals``), answers text
    despite a forced ``tool_choice`` (``ignore_tool_choice``), answers text
    (probability ``text``, and always when no tool is bound or
    ``tool_choice="none"``) or calls tools: one, or (probability
    ``parallel``) 2..``max_parallel`` in one message, each a bound tool with
    arguments that fit its JSON schema (a fraction ``invalid_arguments`` of
    them valid JSON that breaks the schema, a fraction ``malformed`` text
    that is not JSON at all) or (``hallucinated``, unless ``tool_choice``
    names a tool) a tool that is not bound, or (probability ``repeat``) one
    of its earlier calls again, verbatim. From
    call ``max_steps`` on it answers text, so agents end. ``tool_choice`` is
    honoured as providers honour it: a named tool is the one called, "any" /
    "required" force a tool call (past ``max_steps``: ``final_tool``, by
    default the last bound tool, where ``create_agent`` puts its
    structured-output tool), a named tool that is not bound fails with
    :class:`~fakellm.errors.BadRequestError`.

    Each probability is exact for a fresh draw; over a run the shares drift
    (within 0.3: Hypothesis also runs the simplest examples and copies parts
    of examples), and every choice shrinks towards the simplest: no error, no refusal, a text
    answer, one call, the first bound tool, no malformed or hallucinated
    call, the simplest valid arguments, no delay. So a failure shrinks to the
    fewest steps and tool calls that still break.

    Args:
        max_steps: model calls with drawn decisions; later calls answer text.
        text: probability that a step answers text instead of calling tools.
        parallel: probability that a tool-calling step calls more than one tool.
        max_parallel: most tool calls in one step.
        repeat: probability that a tool-calling step repeats one of this
            run's earlier tool calls verbatim, as a model stuck in a loop does.
        invalid_arguments: probability that a call's arguments break its schema
            (a required field left out, or a value of the wrong type).
        errors: probability that a step fails with one of ``error_types``.
        error_types: the provider errors to pick from (default: the ones
            :func:`fakellm.strategies.errors` picks from).
        max_ms: each answer's first token comes after 0..``max_ms`` virtual ms.
        texts: the text of text answers (default: 1-10 characters of any
            unicode, shrinking to ``"0"``).
        final_tool: the tool called past ``max_steps`` when ``tool_choice``
            forces a tool call (default: the last bound tool).
        call_limit: past this many calls the model raises
            :class:`TooManyModelCalls` (default ``max_steps + 20``).
        malformed: probability that a call's arguments are not valid JSON (its
            valid arguments with a stray closing brace): the message carries it
            in ``invalid_tool_calls``, not ``tool_calls``.
        hallucinated: probability that a call names a tool that is not bound
            (a drawn name; arguments empty, a small free JSON object, or valid
            for a bound tool, shrinking to empty); LangGraph's tool node
            answers it with an error message.
        refusals: probability that a step is a refusal (a ``refusal`` content
            block with a drawn text, as providers send it).
        ignore_tool_choice: probability that a step whose ``tool_choice``
            forces a tool call answers text instead, as models sometimes do.
        model_settings: more :class:`~fakellm.FakeChatModel` settings
            (``model``, ``max_tokens``, ...).
    """
    return _decisions(
        _Options(
            max_steps=max_steps,
            text=text,
            parallel=parallel,
            max_parallel=max_parallel,
            repeat=repeat,
            invalid_arguments=invalid_arguments,
            errors=errors,
            error_types=error_types,
            max_ms=max_ms,
            texts=texts,
            final_tool=final_tool,
            call_limit=call_limit,
            malformed=malformed,
            hallucinated=hallucinated,
            refusals=refusals,
            ignore_tool_choice=ignore_tool_choice,
            model_settings=model_settings,
        )
    )


class _Options(dict[str, Any]):
    """decisions()' arguments, validated at the first draw (as Hypothesis
    validates its own: a bad argument fails its test, not the collection of
    the module) and kept, so every example shares one config and its cache."""

    config: _Config | None = None

    def validated(self) -> _Config:
        if self.config is None:
            self.config = _validate(self)
        return self.config


@st.composite
def _decisions(draw: st.DrawFn, options: _Options) -> Decisions:
    return Decisions(draw, options.validated())


_CHANCES = (
    "text",
    "parallel",
    "repeat",
    "invalid_arguments",
    "malformed",
    "hallucinated",
    "refusals",
    "ignore_tool_choice",
    "errors",
)


def _validate(o: dict[str, Any]) -> _Config:
    for name in _CHANCES:
        _probability(name, o[name])
    _count("max_steps", o["max_steps"], 0)
    _count("max_parallel", o["max_parallel"], 1)
    _count("max_ms", o["max_ms"], 0)
    types = o["error_types"]
    if isinstance(types, type) or not isinstance(types, Sequence) or not types:
        raise InvalidArgument(
            f"error_types={types!r}: expected a non-empty sequence of exception classes"
        )
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise InvalidArgument(f"error_types: {t!r} is not an exception class")
    texts = o["texts"]
    if texts is None:
        texts = st.text(min_size=1, max_size=10)
    elif not isinstance(texts, SearchStrategy):
        raise InvalidArgument(f"texts={texts!r}: expected a strategy of strings, or None")
    final = o["final_tool"]
    if final is not None and (not isinstance(final, str) or not final):
        raise InvalidArgument(f"final_tool={final!r}: expected a tool name, or None")
    limit = o["call_limit"]
    if limit is None:
        limit = o["max_steps"] + 20
    _count("call_limit", limit, max(o["max_steps"], 1))
    settings = o["model_settings"] or {}
    if not isinstance(settings, Mapping) or "script" in settings:
        raise InvalidArgument(
            f"model_settings={settings!r}: expected a mapping of FakeChatModel settings "
            "other than script (the drawing model writes its own)"
        )
    return _Config(
        max_steps=o["max_steps"],
        text=o["text"],
        parallel=o["parallel"],
        max_parallel=o["max_parallel"],
        repeat=o["repeat"],
        invalid_arguments=o["invalid_arguments"],
        malformed=o["malformed"],
        hallucinated=o["hallucinated"],
        refusals=o["refusals"],
        ignore_tool_choice=o["ignore_tool_choice"],
        errors=o["errors"],
        error_types=tuple(types),
        max_ms=o["max_ms"],
        texts=texts,
        final_tool=final,
        call_limit=limit,
        model_settings=dict(settings),
    )


def _probability(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise InvalidArgument(f"{name}={value!r}: expected a probability between 0 and 1")


def _count(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InvalidArgument(f"{name}={value!r}: expected an integer >= {low}")


# Two bytes are drawn uniformly (and shrink to zero bytes); st.integers leans
# towards small values and bounds: 0.71 of integers(0, 9999) fall below 3000.
_TWO_BYTES = st.binary(min_size=2, max_size=2)


def _flip(draw: st.DrawFn, p: float) -> bool:
    """True with probability ``p``; shrinks to False. A certain outcome (0 or
    1) draws nothing, so options left at zero keep the layout of choices (and
    the examples failures shrink to)."""
    if p <= 0 or p >= 1:
        return p >= 1
    return int.from_bytes(draw(_TWO_BYTES), "big") >= _SCALE - round(p * _SCALE)


#: The tools a call binds, as (name, parameters schema as sorted JSON).
_Tools = tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class _Repeat:
    """A drawn step that repeats the earlier call at ``index`` verbatim."""

    index: int
    delay: float


def _step(
    c: _Config, tools: _Tools, mode: str, named: str | None, final: bool, earlier: int
) -> SearchStrategy[Turn | _Repeat]:
    """The strategy for one model answer given what the call carries (cached
    on the config: the same few shapes recur at every step of every example)."""
    key = (tools, mode, named, final, earlier)
    found = c.steps.get(key)
    if found is None:
        if len(c.steps) > 4096:  # tool sets that change from call to call
            c.steps.clear()
        found = c.steps[key] = _draw_step(c, tools, mode, named, final, earlier)
    return found


def _draw_step(
    c: _Config, tools: _Tools, mode: str, named: str | None, final: bool, earlier: int
) -> SearchStrategy[Turn | _Repeat]:
    names = [name for name, _ in tools]
    schemas = dict(tools)
    if named is not None and named not in schemas:
        error = _errors.BadRequestError(
            f"tool_choice names the tool {named!r}, which is not among the "
            f"bound tools ({', '.join(map(repr, names)) or 'none'})"
        )

        @st.composite
        def failing(draw: st.DrawFn) -> Turn:
            return Turn(error=error, first_token_delay=_delay(draw, c))

        return failing()
    forced = mode in ("any", "named")
    pick = st.sampled_from([(named, schemas[named])] if named is not None else list(tools))
    errors = st.sampled_from(c.error_types)
    again = st.sampled_from(range(earlier)) if earlier else st.nothing()
    unbound = _names.filter(lambda n: n not in schemas)
    unbound_args = _unbound_args(tuple(schemas.values()))

    @st.composite
    def step(draw: st.DrawFn) -> Turn | _Repeat:
        # Every step draws its choices in the same layout whatever came
        # before, so deleting earlier steps keeps later ones.
        if final:
            if mode in ("auto", "none") or not tools:
                return Turn(draw(c.texts), first_token_delay=_delay(draw, c))
            name = named or c.final_tool or names[-1]
            if name not in schemas:
                name = names[-1]
            call = _call(draw, name, schemas[name], valid=True)
            return Turn(tool_calls=[call], first_token_delay=_delay(draw, c))
        if _flip(draw, c.errors):
            return Turn(error=draw(errors), first_token_delay=_delay(draw, c))
        if _flip(draw, c.refusals):
            return Turn(refusal=draw(c.texts), first_token_delay=_delay(draw, c))
        if forced and tools and _flip(draw, c.ignore_tool_choice):
            text = draw(c.texts)
            return Turn(text, ignore_tool_choice=True, first_token_delay=_delay(draw, c))
        if not tools or mode == "none" or (not forced and not _flip(draw, 1 - c.text)):
            return Turn(draw(c.texts), first_token_delay=_delay(draw, c))
        if _flip(draw, c.repeat) and earlier:
            return _Repeat(draw(again), _delay(draw, c))
        count = 1  # a provider forced to one named tool calls it once
        if named is None and c.max_parallel > 1 and _flip(draw, c.parallel):
            count = draw(st.integers(2, c.max_parallel))
        calls = []
        for _ in range(count):
            if named is None and _flip(draw, c.hallucinated):
                calls.append(ToolCall(draw(unbound), draw(unbound_args), allow_unbound=True))
                continue
            name, schema = draw(pick)
            if _flip(draw, c.malformed):
                calls.append(_malformed_call(_call(draw, name, schema, valid=True)))
                continue
            valid = not _flip(draw, c.invalid_arguments)
            calls.append(_call(draw, name, schema, valid=valid))
        return Turn(tool_calls=calls, first_token_delay=_delay(draw, c))

    return step()


# Hallucinated tool names: short lowercase words, shrinking to "a".
_names = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=12)


@functools.lru_cache(maxsize=256)
def _unbound_args(schemas: tuple[str, ...]) -> SearchStrategy[dict[str, Any]]:
    """Arguments of a call to a tool that is not bound: empty (the simplest),
    a small free JSON object, or arguments that fit one of the bound tools (a
    model that mixes up names keeps the arguments it meant)."""
    return st.one_of(
        st.just({}),
        _strategies.from_json_schema({"type": "object"}),
        *(_valid_args(schema) for schema in schemas),
    )


def _delay(draw: st.DrawFn, c: _Config) -> float:
    return draw(_millis(c.max_ms)) / _MS if c.max_ms else 0.0


@functools.lru_cache(maxsize=16)
def _millis(most: int) -> SearchStrategy[int]:
    return st.integers(0, most)


def _call(draw: st.DrawFn, name: str, schema: str, *, valid: bool) -> ToolCall:
    return ToolCall(name, draw(_valid_args(schema) if valid else _invalid_args(schema)))


# ------------------------------------------------------------ the drawing model


class Decisions:
    """What :func:`decisions` draws: a model whose answers are drawn as calls arrive.

    Give the agent :attr:`model` (or a shared :func:`model`), run it with
    :meth:`play`, check the :class:`AgentRun` it returns.
    """

    def __init__(self, draw: st.DrawFn, config: _Config) -> None:
        self._draw = draw
        self._config = config
        self._answered: list[tuple[Call, Turn]] = []
        self._aborted: BaseException | None = None
        self._model: FakeChatModel | None = None

    @property
    def model(self) -> FakeChatModel:
        """A fresh :class:`~fakellm.FakeChatModel` (one per example) answering
        with this example's decisions. To build the agent once for all examples,
        give it a shared :func:`model` instead; :meth:`play` routes its calls here."""
        if self._model is None:
            rule = Rule(responder=self._respond, name="fuzz.decisions")
            self._model = FakeChatModel(script=Script(rules=[rule]), **self._config.model_settings)
        return self._model

    def __repr__(self) -> str:
        c = self._config
        return (
            f"<Decisions drawn call by call (max_steps={c.max_steps}); "
            "the trajectory is printed below>"
        )

    def draw(self, strategy: SearchStrategy[Any]) -> Any:
        """Draw a value in the same example (an interrupt's answer, a user reply).

        It shrinks with the model's decisions."""
        if not isinstance(strategy, SearchStrategy):
            raise InvalidArgument(f"strategy={strategy!r}: expected a Hypothesis strategy")
        return self._draw(strategy)

    # -- one answer -----------------------------------------------------------------------

    def _respond(self, call: Call) -> Turn:
        try:
            turn = self._decide(call, len(self._answered))
        except Exception:
            raise
        except BaseException as exc:
            # Hypothesis ends an example from inside a draw (its data ran out)
            # with a BaseException; langchain-core's async generate turns that
            # into an AttributeError. Kept here, so play() re-raises it as is.
            self._aborted = exc
            raise
        self._answered.append((call, turn))
        return turn

    def _decide(self, call: Call, step: int) -> Turn:
        c = self._config
        if step >= c.call_limit:
            raise TooManyModelCalls(
                f"the agent made more than call_limit={c.call_limit} model calls "
                f"(max_steps={c.max_steps}: every call from step {c.max_steps} on was "
                "answered with text, and the agent kept calling); pass a larger "
                "call_limit to decisions() if the agent needs it"
            )
        tools = tuple((_tool_name(t), _schema_json(t)) for t in call.tools)
        names = {name for name, _ in tools}
        mode, named = _tool_choice(call.tool_choice)
        earlier = tuple(
            tc
            for _, turn in self._answered
            for tc in turn.tool_calls
            if (named is None or tc.name == named) and tc.name in names and tc.raw_args is None
        )
        final = step >= c.max_steps
        # One draw per step: the shrinker can then drop a whole step at once.
        drawn = self._draw(_step(c, tools, mode, named, final, len(earlier)))
        if isinstance(drawn, _Repeat):
            again = earlier[drawn.index]
            return Turn(
                tool_calls=[ToolCall(again.name, again.args)], first_token_delay=drawn.delay
            )
        turn: Turn = drawn
        return turn

    # -- playing an agent -------------------------------------------------------------------

    def play(
        self,
        target: Callable[[], Any] | Coroutine[Any, Any, Any],
        *,
        raises: bool = True,
        freeze: bool = False,
    ) -> AgentRun:
        """Run the agent on virtual time, recorded, and return what it did.

        ``target`` is a zero-argument callable (``lambda: agent.invoke(...)``,
        run inside :func:`fakellm.virtual_time`) or a coroutine or coroutine
        function (``agent.ainvoke(...)``, run on a fresh virtual-time loop by
        :func:`fakellm.run_scenario`). Every LangChain run inside it is
        recorded (models, tools, chains: no config needed) and the trajectory
        is passed to :func:`hypothesis.note`, so a failing example prints it.

        Args:
            target: the agent's run.
            raises: re-raise the agent's exception (the default: a crash is a
                failure); with False it is kept in :attr:`AgentRun.exception`.
            freeze: couple freezegun to the virtual clock (about 8 ms an
                example, since freezegun scans every loaded module).
        """
        first = len(self._answered)
        current = _current.set(self)
        try:
            return _play(
                target,
                lambda: self._answered[first:],
                raises=raises,
                freeze=freeze,
                aborted=lambda: self._aborted,
            )
        finally:
            _current.reset(current)


def play(
    target: Callable[[], Any] | Coroutine[Any, Any, Any],
    *,
    model: FakeChatModel,
    raises: bool = True,
    freeze: bool = False,
) -> AgentRun:
    """:meth:`Decisions.play` for a scripted model: replay a shrunk trajectory
    (``FakeChatModel(script=run.script())``) and check it with the same
    invariants, as a regular test. Steps are the calls ``model`` got during
    the run."""
    if not isinstance(model, FakeChatModel):
        raise TypeError(f"model={model!r}: expected the FakeChatModel the agent calls")
    first = model.call_count

    def answered() -> list[tuple[Call, Turn]]:
        return [(c, c.turn) for c in model.calls[first:] if c.turn is not None]

    return _play(target, answered, raises=raises, freeze=freeze)


@dataclasses.dataclass(frozen=True)
class Resume:
    """An interrupt the run paused at, and the answer it was resumed with.

    Attributes:
        after_step: how many model calls the agent had made when it paused.
        interrupts: the interrupts' values (``Interrupt.value``).
        answer: what :func:`resume` gave ``Command(resume=...)``.
    """

    after_step: int
    interrupts: tuple[Any, ...]
    answer: Any


@dataclasses.dataclass
class _Session:
    answered: Callable[[], Sequence[tuple[Call, Turn]]]
    resumes: list[Resume]


_session: ContextVar[_Session | None] = ContextVar("fakellm_fuzz_session", default=None)


def _play(
    target: Callable[[], Any] | Coroutine[Any, Any, Any],
    answered: Callable[[], Sequence[tuple[Call, Turn]]],
    *,
    raises: bool,
    freeze: bool,
    aborted: Callable[[], BaseException | None] = lambda: None,
) -> AgentRun:
    recorder = _PlayRecorder()
    token = _playing.set(recorder)
    session = _Session(answered, [])
    session_token = _session.set(session)
    result: Any = None
    exception: Exception | None = None
    elapsed = 0.0
    try:
        if inspect.iscoroutine(target) or inspect.iscoroutinefunction(target):
            outcome = _clock.run_scenario(
                target, names=["agent"], return_exceptions=True, freeze=freeze
            )
            result, elapsed = outcome.results[0], outcome.elapsed
            if isinstance(result, Exception):
                result, exception = None, result
            elif isinstance(result, BaseException):
                raise result
        elif callable(target):
            scope = _clock.virtual_time(freeze=freeze)
            try:
                with scope:
                    result = target()
            except Exception as exc:  # kept on the run; re-raised below if asked
                exception = exc
            elapsed = scope.elapsed
        else:
            raise TypeError(
                f"target={target!r}: expected a zero-argument callable, a coroutine "
                "or a coroutine function (e.g. lambda: agent.invoke(inputs))"
            )
    finally:
        _session.reset(session_token)
        _playing.reset(token)
    stop = aborted()
    if stop is not None:
        raise stop
    run = _build_run(answered(), recorder.events, result, exception, elapsed)
    run = dataclasses.replace(run, resumes=tuple(session.resumes))
    if currently_in_test_context():
        note(_Report(run))
    if exception is not None and raises:
        raise exception
    return run


_current: ContextVar[Decisions | None] = ContextVar("fakellm_fuzz_decisions", default=None)


def _respond_playing(call: Call) -> Turn:
    decisions = _current.get()
    if decisions is None:
        raise RuntimeError(
            "a fuzz.model() answers only while Decisions.play(...) runs the agent; "
            "call the agent inside play(), or give it decisions.model instead"
        )
    return decisions._respond(call)


def model(**settings: Any) -> FakeChatModel:
    """A :class:`~fakellm.FakeChatModel` that answers with the decisions of
    whichever :meth:`Decisions.play` is running: build the agent once, outside
    ``@given``, and play it in every example (building an agent per example
    often costs more than running it). ``settings`` are model settings."""
    if "script" in settings:
        raise TypeError("fuzz.model() writes its own script; pass other settings only")
    rule = Rule(responder=_respond_playing, name="fuzz.model")
    return FakeChatModel(script=Script(rules=[rule]), **settings)


class Fuzzer:
    """Play an agent over many drawn decision sequences and check invariants:
    the property test of :func:`decisions`, without writing ``@given``.

    The pytest plugin's ``fakellm_fuzz`` fixture is one, configured by the
    test's ``@pytest.mark.fakellm_fuzz(...)`` marker::

        @pytest.mark.fakellm_fuzz(max_examples=200, max_steps=5, parallel=0.5)
        def test_booking(fakellm_fuzz):
            agent = create_agent(fakellm_fuzz.model, tools=[search, confirm, book])
            fakellm_fuzz.check(
                lambda: agent.invoke({"messages": [("user", "a room")]}),
                fuzz.terminates(within=6),
                fuzz.before("confirm", "book"),
            )

    ``options`` are :func:`decisions`' arguments, plus ``max_examples`` (default
    100) and ``derandomize`` (default False) for Hypothesis; other Hypothesis
    settings come from the active profile (``deadline`` is off: an agent's
    wall time is not the property).
    """

    _SETTINGS = ("max_examples", "derandomize")

    def __init__(self, *, name: str = "fuzzed_agent", **options: Any) -> None:
        self.name = name
        self.options = options
        self.examples = 0
        self._model: FakeChatModel | None = None

    @property
    def model(self) -> FakeChatModel:
        """A shared :func:`model` for the agent: build the agent once, with it."""
        if self._model is None:
            self._model = model()
        return self._model

    def decisions(self, **options: Any) -> SearchStrategy[Decisions]:
        """The :func:`decisions` strategy with this fuzzer's options (and ``options`` over them)."""
        merged = {**self.options, **options}
        return decisions(**{k: v for k, v in merged.items() if k not in self._SETTINGS})

    def check(
        self,
        target: Callable[[], Any],
        *invariants: Invariant,
        **options: Any,
    ) -> None:
        """Play ``target`` (``lambda: agent.invoke(...)``, or an ``async def``
        function awaiting ``agent.ainvoke(...)``) in every example and check
        ``invariants``; an exception the agent raises fails the example too.

        A failure shrinks, then raises with the shortest trajectory and its
        replay script in the error's notes. ``options`` override this fuzzer's
        for this call. :attr:`examples` counts the agent runs played
        (shrinking's replays included).
        """
        if not callable(target) or inspect.iscoroutine(target):
            raise TypeError(
                f"target={target!r}: expected a zero-argument callable "
                "(lambda: agent.invoke(...)) or an async def function"
            )
        for i in invariants:
            if not isinstance(i, Invariant):
                raise TypeError(f"invariants: {i!r} is not a fuzz.Invariant")
        __tracebackhide__ = True
        from hypothesis import Phase, given, settings

        merged = {**self.options, **options}
        hyp: dict[str, Any] = {"max_examples": merged.get("max_examples", 100), "deadline": None}
        if "derandomize" in merged:
            hyp["derandomize"] = merged["derandomize"]
        # Explaining re-runs examples under a tracer: slow on an agent, and the
        # trajectory already says what happened.
        hyp["phases"] = [p for p in settings().phases if p is not Phase.explain]
        self.examples = 0

        def prop(decisions: Decisions) -> None:
            __tracebackhide__ = True
            run = decisions.play(target, raises=False)
            self.examples += 1
            if inspect.iscoroutine(run.result):
                run.result.close()
                raise TypeError(
                    "the target returned a coroutine: pass an async def function "
                    "(async def run(): return await agent.ainvoke(...)), not a lambda"
                )
            run.check(*invariants)
            if run.exception is not None:
                raise run.exception

        prop.__name__ = prop.__qualname__ = self.name
        given(self.decisions(**options))(settings(**hyp)(prop))()


def resume(
    graph: Any,
    input: Any,
    *,
    answer: Any,
    config: Mapping[str, Any] | None = None,
    max_resumes: int = 10,
) -> Any:
    """``graph.invoke(input)``, resuming every interrupt (LangGraph's ``interrupt``,
    ``HumanInTheLoopMiddleware``) with ``Command(resume=...)`` until it ends.

    ``answer`` is the resume value, a function of the interrupt's value (or of
    the tuple of values, when several are pending), or a Hypothesis strategy
    drawn in the example being played, where it shrinks with the model's
    decisions; a function may return a strategy too, to draw an answer that
    fits the interrupt. The graph needs a checkpointer; without a
    ``thread_id`` in ``config`` the run uses ``"fuzz"``. Each pause and its
    answer show in the trajectory (:attr:`AgentRun.resumes`).
    """
    config = _thread_config(config)
    steps = _resuming(input, answer, max_resumes)
    result = graph.invoke(next(steps), config)
    while True:
        try:
            result = graph.invoke(steps.send(result), config)
        except StopIteration as done:
            return done.value


async def aresume(
    graph: Any,
    input: Any,
    *,
    answer: Any,
    config: Mapping[str, Any] | None = None,
    max_resumes: int = 10,
) -> Any:
    """:func:`resume` with ``ainvoke``."""
    config = _thread_config(config)
    steps = _resuming(input, answer, max_resumes)
    result = await graph.ainvoke(next(steps), config)
    while True:
        try:
            result = await graph.ainvoke(steps.send(result), config)
        except StopIteration as done:
            return done.value


def _resuming(input: Any, answer: Any, max_resumes: int) -> Generator[Any, Any, Any]:
    """What to invoke next, given the last result: ``input``, then a
    ``Command(resume=...)`` per interrupt, until the graph ends."""
    from langgraph.types import Command

    result = yield input
    for _ in range(max_resumes):
        pending = _interrupts(result)
        if not pending:
            return result
        result = yield Command(resume=_answer(answer, pending))
    if _interrupts(result):
        raise RuntimeError(f"the graph was still interrupted after max_resumes={max_resumes}")
    return result


def _thread_config(config: Mapping[str, Any] | None) -> dict[str, Any]:
    out = dict(config or {})
    configurable = dict(out.get("configurable") or {})
    configurable.setdefault("thread_id", "fuzz")
    out["configurable"] = configurable
    return out


def _interrupts(result: Any) -> tuple[Any, ...]:
    if isinstance(result, Mapping):
        return tuple(getattr(i, "value", i) for i in result.get("__interrupt__") or ())
    return ()


def _answer(answer: Any, pending: tuple[Any, ...]) -> Any:
    session = _session.get()
    value = answer
    if callable(answer) and not isinstance(answer, SearchStrategy):
        value = answer(pending[0] if len(pending) == 1 else pending)
    if isinstance(value, SearchStrategy):
        decisions = _current.get()
        if decisions is None:
            raise TypeError(
                "answer= is a strategy, so resume() must run inside Decisions.play(...), "
                "where it can be drawn; or give a value or a function of the interrupts"
            )
        value = decisions.draw(value)
    if session is not None:
        session.resumes.append(Resume(len(session.answered()), pending, value))
    return value


def _tool_name(tool: Mapping[str, Any]) -> str:
    fn = tool.get("function")
    return str((fn if isinstance(fn, Mapping) else tool).get("name", ""))


def _parameters(tool: Mapping[str, Any]) -> dict[str, Any]:
    fn = tool.get("function")
    spec = fn if isinstance(fn, Mapping) else tool
    params = spec.get("parameters") or spec.get("input_schema") or {"type": "object"}
    return dict(params)


# One encoder for every call: json.dumps builds a new one whenever an option is set.
_sorted_json = json.JSONEncoder(sort_keys=True).encode


def _schema_json(tool: Mapping[str, Any]) -> str:
    """The tool's parameters schema as sorted JSON: the key its strategies are cached by."""
    return _sorted_json(_parameters(tool))


def _tool_choice(choice: Any) -> tuple[Literal["auto", "none", "any", "named"], str | None]:
    """``tool_choice`` in any provider's spelling, as (mode, named tool)."""
    if choice is None or choice is False or choice == "auto":
        return "auto", None
    if choice == "none":
        return "none", None
    if choice is True or choice in ("any", "required"):
        return "any", None
    if isinstance(choice, str):
        return "named", choice
    if isinstance(choice, Mapping):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else choice.get("name")
        if isinstance(name, str) and name:
            return "named", name
        kind = choice.get("type")
        if kind in ("any", "required"):
            return "any", None
        if kind == "none":
            return "none", None
    return "auto", None


@functools.lru_cache(maxsize=256)
def _valid_args(schema_json: str) -> SearchStrategy[dict[str, Any]]:
    return _strategies.from_json_schema(json.loads(schema_json))


@functools.lru_cache(maxsize=256)
def _validator(schema_json: str) -> Any:
    import jsonschema  # only when arguments are checked

    cls = jsonschema.validators.validator_for(
        json.loads(schema_json), jsonschema.Draft202012Validator
    )
    return cls(json.loads(schema_json))


#: JSON values of each type, to put where the schema wants another type.
_WRONG_TYPES: tuple[Any, ...] = ("0", 0, 0.5, True, None, [], {})


@functools.lru_cache(maxsize=256)
def _invalid_args(schema_json: str) -> SearchStrategy[dict[str, Any]]:
    """Valid JSON objects that break the schema: a required property left out,
    or a property set to a value of another JSON type. Arguments that cannot
    be broken that way (no properties) are drawn valid instead."""
    schema = json.loads(schema_json)
    props = list((schema.get("properties") or {}).keys())
    required = [p for p in schema.get("required") or () if p in props]
    if not props:
        return _valid_args(schema_json)
    validator = _validator(schema_json)

    @st.composite
    def broken(draw: st.DrawFn) -> dict[str, Any]:
        args = dict(draw(_valid_args(schema_json)))
        drop: bool = bool(required) and draw(st.booleans())
        if drop:
            args.pop(draw(st.sampled_from(required)), None)
        else:
            wrong: Any = draw(st.sampled_from(_WRONG_TYPES))
            args[draw(st.sampled_from(props))] = wrong
        return args

    return broken().filter(lambda args: not validator.is_valid(args))


# -------------------------------------------------------------------- the trajectory


@dataclasses.dataclass(frozen=True)
class ToolRun:
    """One tool run the agent made, as recorded.

    Attributes:
        name: the tool's name.
        args: the arguments it was given (the dict form, when LangChain gave one).
        tool_call_id: the id of the model's tool call it answers, if any.
        status: ``"ok"``, ``"error"`` or ``"running"`` (never ended).
        output: what it returned (for LangGraph's tool node: a ``ToolMessage``).
        error: what it raised.
        step: the model step whose tool call it answers, or None.
        start: position of its start event in :attr:`AgentRun.events`.
        end: position of its end or error event, or None.
    """

    name: str
    args: Any
    tool_call_id: str | None
    status: Literal["ok", "error", "running"]
    output: Any = None
    error: BaseException | None = None
    step: int | None = None
    start: int = 0
    end: int | None = None

    @property
    def rejected_arguments(self) -> bool:
        """Whether it failed because its arguments did not validate (the tool's
        body never ran)."""
        return self.error is not None and _is_validation_error(self.error)


@dataclasses.dataclass(frozen=True)
class ToolUse:
    """One tool call the model made at a step, and the tool run that answered it.

    Attributes:
        name: the tool the model called.
        args: the arguments it gave.
        id: the tool call id, as the agent saw it.
        run: the tool run with that id, or None if the agent never ran it.
        reply: the ``ToolMessage`` with that id that the agent sent back to
            the model (or returned), or None.
    """

    name: str
    args: Mapping[str, Any]
    id: str | None
    run: ToolRun | None
    reply: Any = None

    @property
    def status(self) -> Literal["ok", "error", "running", "not run"]:
        """The run's status, or ``"not run"``."""
        return "not run" if self.run is None else self.run.status


@dataclasses.dataclass(frozen=True)
class Step:
    """One model call of the agent: what the model decided and what came of it.

    Attributes:
        index: 0 for the first model call, 1 for the next, ...
        turn: the turn the model answered with (drawn, or scripted on replay).
        tools: the tool calls it made, each with its tool run.
        usage: the token usage it reported, or None if it failed.
        bound: the tools bound on that call (OpenAI format).
    """

    index: int
    turn: Turn
    tools: tuple[ToolUse, ...]
    usage: Mapping[str, int] | None
    bound: tuple[Mapping[str, Any], ...] = ()

    @property
    def kind(self) -> Literal["text", "tool_calls", "error"]:
        """``"error"`` (a provider error), ``"tool_calls"`` or ``"text"``."""
        if self.turn.error is not None:
            return "error"
        return "tool_calls" if self.turn.tool_calls else "text"


@dataclasses.dataclass(frozen=True, repr=False)
class AgentRun:
    """What :meth:`Decisions.play` returns: the agent's run, step by step.

    Attributes:
        steps: one :class:`Step` per model call, in order.
        tool_runs: every tool run, in the order they started.
        result: what the agent returned (None if it raised).
        exception: what the agent raised, or None.
        events: everything recorded during the run.
        elapsed: virtual seconds the run took.
        resumes: the interrupts :func:`resume` answered, in order.
    """

    steps: tuple[Step, ...]
    tool_runs: tuple[ToolRun, ...]
    result: Any
    exception: Exception | None
    events: EventLog
    elapsed: float
    resumes: tuple[Resume, ...] = ()

    @property
    def model_calls(self) -> int:
        """How many times the agent called the model."""
        return len(self.steps)

    @property
    def usage(self) -> dict[str, int]:
        """Token usage summed over every model call, as the fake reported it."""
        return self.events.usage()

    def script(self) -> Script:
        """A script that answers the same calls the same way: replay the run with
        ``FakeChatModel(script=run.script())``."""
        return Script([s.turn for s in self.steps])

    def script_source(self) -> str:
        """:meth:`script` as Python source, to paste into a regular test."""
        body = "".join(f"    {_turn_source(s.turn)},\n" for s in self.steps)
        return f"Script([\n{body}])"

    def trajectory(self) -> str:
        """The run as readable text: per step the model's decision and what each
        tool returned, then how the agent ended."""
        if self.exception is not None:
            end = f"the agent raised {_error_text(self.exception)}"
        else:
            end = "the agent returned"
        n = len(self.steps)
        lines = [f"Agent trajectory ({n} model call{'' if n == 1 else 's'}; {end}):"]
        resumes = list(self.resumes)
        for s in self.steps:
            # An interrupt after a model call pauses before its tools answer.
            head, *rest = _describe_step(s)
            lines.append(head)
            while resumes and resumes[0].after_step <= s.index + 1:
                r = resumes.pop(0)
                shown = _clip(repr(r.interrupts[0] if len(r.interrupts) == 1 else r.interrupts))
                lines.append(f"      interrupt {shown} resumed with {_clip(repr(r.answer))}")
            lines.extend(rest)
        if not self.steps:
            lines.append("  (the agent never called the model)")
        return "\n".join(lines)

    def report(self) -> str:
        """The trajectory and the script that replays it, as printed for a
        failing example."""
        return (
            f"{self.trajectory()}\nReplay it as a regular test with "
            f"FakeChatModel(script=...) and this script:\n{self.script_source()}"
        )

    def check(self, *invariants: Invariant) -> None:
        """Check every invariant; raise one :class:`InvariantError` naming each
        that broke (with the trajectory, outside a Hypothesis test, where it is
        not printed already)."""
        __tracebackhide__ = True
        problems = []
        for inv in invariants:
            if not isinstance(inv, Invariant):
                raise TypeError(
                    f"{inv!r} is not an Invariant; build one with fuzz.terminates(...), "
                    "fuzz.before(...), ... or Invariant(name, check)"
                )
            problem = inv.problem(self)
            if problem is not None:
                problems.append(f"{inv.name}: {problem}")
        if problems:
            text = "\n".join(f"- {p}" for p in problems)
            if not currently_in_test_context():
                text += "\n" + self.trajectory()
            raise InvariantError(
                f"the agent broke {len(problems)} invariant{'s' if len(problems) > 1 else ''}:\n"
                + text
            )

    def __repr__(self) -> str:
        outcome = "raised" if self.exception is not None else "returned"
        return f"<AgentRun: {len(self.steps)} model calls, {outcome}>"


def _build_run(
    answered: Sequence[tuple[Call, Turn]],
    events: EventLog,
    result: Any,
    exception: Exception | None,
    elapsed: float,
) -> AgentRun:
    ends: dict[Any, tuple[int, Event]] = {}
    starts: dict[Any, tuple[int, Event]] = {}
    for i, ev in enumerate(events):
        if ev.kind in ("llm_end", "llm_error", "tool_end", "tool_error"):
            ends.setdefault(ev.run_id, (i, ev))
        elif ev.kind == "tool_start":
            starts[ev.run_id] = (i, ev)
    # Which step (and which of its calls) each tool call id belongs to.
    step_ids: list[list[str | None]] = []
    step_ends: list[int] = []
    owner: dict[str, tuple[int, int]] = {}
    for index, (call, turn) in enumerate(answered):
        i, end = ends.get(call.run_id, (len(events), None))
        ids = _tool_call_ids(end, turn.tool_calls)
        step_ids.append(ids)
        step_ends.append(i)
        owner.update({tc_id: (index, k) for k, tc_id in enumerate(ids) if tc_id})
    keyed = []
    for run_id, (i, ev) in starts.items():
        j, end = ends.get(run_id, (None, None))
        tc_id = ev.extra.get("tool_call_id")
        step, k = owner.get(tc_id, (None, 0)) if tc_id else (None, 0)
        args = ev.extra.get("inputs")
        tool_run = ToolRun(
            name=ev.run_name or "",
            args=ev.inputs if args is None else args,
            tool_call_id=tc_id,
            status="running" if end is None else ("ok" if end.kind == "tool_end" else "error"),
            output=None if end is None else end.outputs,
            error=None if end is None else end.error,
            step=step,
            start=i,
            end=j,
        )
        # A message's tool calls run concurrently and may start in any order:
        # list them in the order the model called them, so runs compare equal.
        before = sum(1 for e in step_ends if e < i) - 1
        key = (before, 1, i) if step is None else (step, 0, k)
        keyed.append((key, tool_run))
    tool_runs = tuple(r for _, r in sorted(keyed, key=lambda item: item[0]))
    by_id = {r.tool_call_id: r for r in tool_runs if r.tool_call_id}
    seen = [m for call, _ in answered for m in call.messages]
    if isinstance(result, Mapping) and isinstance(result.get("messages"), list):
        seen.extend(result["messages"])
    replies = {m.tool_call_id: m for m in seen if getattr(m, "type", None) == "tool"}
    steps = []
    for index, ((call, turn), ids) in enumerate(zip(answered, step_ids, strict=True)):
        _, end = ends.get(call.run_id, (0, None))
        uses = tuple(
            ToolUse(tc.name, tc.args, tc_id, by_id.get(tc_id), replies.get(tc_id))
            if tc_id
            else ToolUse(tc.name, tc.args, None, None)
            for tc, tc_id in zip(turn.tool_calls, ids, strict=True)
        )
        usage = dict(end.usage) if end is not None and end.usage else None
        steps.append(Step(index, turn, uses, usage, call.tools))
    return AgentRun(
        steps=tuple(steps),
        tool_runs=tool_runs,
        result=result,
        exception=exception,
        events=events,
        elapsed=elapsed,
    )


def _tool_call_ids(end: Event | None, calls: Sequence[ToolCall]) -> list[str | None]:
    """The ids the agent saw on a model call's tool calls (from its llm_end).

    Malformed calls come back in ``invalid_tool_calls``, the rest in
    ``tool_calls``, each list in the order the model made them."""
    ids: list[str | None] = [None] * len(calls)
    if end is None or end.kind != "llm_end":
        return ids
    try:
        message = end.outputs.generations[0][0].message
    except (AttributeError, IndexError, TypeError):
        return ids
    valid = list(getattr(message, "tool_calls", None) or ())
    invalid = list(getattr(message, "invalid_tool_calls", None) or ())
    for k, tc in enumerate(calls):
        if invalid and tc.raw_args is not None and invalid[0].get("args") == tc.raw_args:
            ids[k] = invalid.pop(0).get("id")
        elif valid:
            ids[k] = valid.pop(0).get("id")
    return ids


def _is_validation_error(error: BaseException) -> bool:
    from pydantic import ValidationError

    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, ValidationError) or type(e).__name__ == "ToolInvocationError":
            return True
        e = e.__cause__ or e.__context__
    return False


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_text(error: BaseException) -> str:
    return _clip(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)


def _output_text(output: Any) -> str:
    content = getattr(output, "content", output)
    status = getattr(output, "status", None)
    text = _clip(content if isinstance(content, str) else repr(content))
    prefix = "error message " if status == "error" else ""
    return f"{prefix}{text!r}" if isinstance(content, str) else prefix + text


def _describe_step(step: Step) -> list[str]:
    turn = step.turn
    head = f"  step {step.index}: "
    if turn.error is not None:
        err = turn.error if isinstance(turn.error, BaseException) else turn.error()
        return [head + f"the model call failed: {_error_text(err)}"]
    if turn.refusal is not None:
        return [head + f"refusal {_clip(turn.refusal)!r}"]
    if not turn.tool_calls:
        text = head + f"text {_clip(turn.text or '')!r}"
        return [text + (" (ignoring the forced tool_choice)" if turn.ignore_tool_choice else "")]
    calls = " + ".join(_call_text(tc) for tc in turn.tool_calls)
    lines = [head + ("parallel tool calls " if len(turn.tool_calls) > 1 else "tool call ") + calls]
    for tc, use in zip(turn.tool_calls, step.tools, strict=True):
        run = use.run
        if run is None and use.reply is not None:
            lines.append(f"      {use.name} not run; the agent answered {_output_text(use.reply)}")
        elif run is None and tc.raw_args is not None:
            lines.append(f"      {use.name}: not run (the message's invalid_tool_calls)")
        elif run is None:
            lines.append(f"      {use.name}: not run")
        elif run.status == "ok":
            lines.append(f"      {use.name} returned {_output_text(run.output)}")
        elif run.status == "error" and run.error is not None:
            lines.append(f"      {use.name} raised {_error_text(run.error)}")
        else:
            lines.append(f"      {use.name}: still running when the agent ended")
    return lines


def _call_text(tc: ToolCall) -> str:
    if tc.raw_args is not None:
        return f"{tc.name}({tc.raw_args}) [malformed: not JSON]"
    return f"{tc.name}({tc.args_json})" + (" [not bound]" if tc.allow_unbound else "")


def _call_source(tc: ToolCall) -> str:
    if tc.raw_args is not None:
        return f"ToolCall({tc.name!r}, raw_args={tc.raw_args!r})"
    return f"ToolCall({tc.name!r}, {tc.args!r}{', allow_unbound=True' if tc.allow_unbound else ''})"


def _turn_source(turn: Turn) -> str:
    """A drawn (or replayed) turn as Python source."""
    args = []
    if turn.refusal is not None:
        args.append(f"refusal={turn.refusal!r}")
    elif turn.text is not None:
        args.append(repr(turn.text))
    if turn.tool_calls:
        calls = ", ".join(_call_source(tc) for tc in turn.tool_calls)
        args.append(f"tool_calls=[{calls}]")
    if turn.ignore_tool_choice:
        args.append("ignore_tool_choice=True")
    err = turn.error
    if isinstance(err, type):
        args.append(f"error=errors.{err.__name__}")
    elif err is not None:
        args.append(f"error=errors.{type(err).__name__}({str(err)!r})")
    if turn.first_token_delay:
        args.append(f"first_token_delay={turn.first_token_delay!r}")
    return f"Turn({', '.join(args)})"


class _Report:
    """A note built only when Hypothesis shows it (the final, shrunk example)."""

    def __init__(self, run: AgentRun) -> None:
        self._run = run

    def __repr__(self) -> str:
        return self._run.report()

    def _repr_pretty_(self, p: RepresentationPrinter, cycle: bool) -> None:
        for k, line in enumerate(repr(self).splitlines()):
            if k:
                p.break_()
            p.text(line)


# -------------------------------------------------------------------------- invariants


class Invariant:
    """A property of an agent run, checked by :meth:`AgentRun.check`.

    Build your own with ``Invariant(name, check)``, where ``check(run)``
    returns None when the run is fine, or a sentence saying what broke.
    """

    def __init__(self, name: str, check: Callable[[AgentRun], str | None]) -> None:
        self.name = name
        self._check = check

    def problem(self, run: AgentRun) -> str | None:
        """What broke in ``run``, or None."""
        return self._check(run)

    def __call__(self, run: AgentRun) -> None:
        """Check ``run`` alone: ``fuzz.terminates(within=6)(run)``."""
        run.check(self)

    def __repr__(self) -> str:
        return self.name


def terminates(*, within: int) -> Invariant:
    """The agent returned (did not raise) after at most ``within`` model calls."""
    _count("within", within, 1)

    def check(run: AgentRun) -> str | None:
        if run.exception is not None:
            return f"the agent did not return: it raised {_error_text(run.exception)}"
        if run.model_calls > within:
            return f"the agent made {run.model_calls} model calls"
        return None

    return Invariant(f"terminates(within={within})", check)


def no_tool_errors(*, handled: bool = True) -> Invariant:
    """No tool error escaped the agent (``handled=True``, the default: an error
    the agent turned into a message to the model is fine), or no tool raised at
    all (``handled=False``)."""

    def check(run: AgentRun) -> str | None:
        failed = [r for r in run.tool_runs if r.status == "error" and r.error is not None]
        if not handled and failed:
            r = failed[0]
            return f"the tool {r.name} raised {_error_text(r.error)}"  # type: ignore[arg-type]
        if run.exception is not None:
            for r in failed:
                if _caused_by(run.exception, r.error):  # type: ignore[arg-type]
                    return (
                        f"the tool {r.name} raised {_error_text(r.error)} "  # type: ignore[arg-type]
                        "and the agent did not handle it"
                    )
        return None

    return Invariant(f"no_tool_errors(handled={handled})", check)


def _caused_by(error: BaseException, cause: BaseException) -> bool:
    seen: set[int] = set()
    e: BaseException | None = error
    while e is not None and id(e) not in seen:
        if e is cause:
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def token_budget(
    *, total: int | None = None, input: int | None = None, output: int | None = None
) -> Invariant:
    """The tokens the model reported, summed over the run, stay within each
    given budget (exact: the fake's usage)."""
    budgets = {"total": total, "input": input, "output": output}
    given = {k: v for k, v in budgets.items() if v is not None}
    if not given:
        raise InvalidArgument("token_budget() needs at least one of total=, input=, output=")
    for k, v in given.items():
        _count(k, v, 0)

    def check(run: AgentRun) -> str | None:
        used = run.usage
        over = [
            f"{used.get(f'{k}_tokens', 0)} {k} tokens (budget {v})"
            for k, v in given.items()
            if used.get(f"{k}_tokens", 0) > v
        ]
        if over:
            per_step = [s.usage.get("total_tokens", 0) if s.usage else 0 for s in run.steps]
            return f"the run used {' and '.join(over)}; total tokens per model call: {per_step}"
        return None

    spec = ", ".join(f"{k}={v}" for k, v in given.items())
    return Invariant(f"token_budget({spec})", check)


def before(first: str, then: str) -> Invariant:
    """Every run of the tool ``then`` that ended without error came after a run
    of ``first`` that ended without error: ``before("confirm", "book")``.

    "After" means at a later model step: the tool calls of one model message
    run concurrently in LangGraph agents (``create_agent``, ``ToolNode``), so
    their order is the scheduler's, not the agent's. Tool runs that answer no
    model tool call are ordered by when they started and ended.
    """

    def came_after(f: ToolRun, r: ToolRun) -> bool:
        if f.step is not None and r.step is not None:
            return f.step < r.step
        return f.end is not None and f.end < r.start

    def check(run: AgentRun) -> str | None:
        done = [f for f in run.tool_runs if f.name == first and f.status == "ok"]
        for r in run.tool_runs:
            if r.name == then and r.status == "ok" and not any(came_after(f, r) for f in done):
                where = f" at step {r.step}" if r.step is not None else ""
                return (
                    f"{then} ran{where} with {json.dumps(r.args)} before any {first} had "
                    "ended at an earlier step"
                )
        return None

    return Invariant(f"before({first!r}, {then!r})", check)


def valid_arguments() -> Invariant:
    """No tool's body ran with arguments that break the JSON schema the model
    was given for it (runs the tool rejected with a validation error are fine)."""

    def check(run: AgentRun) -> str | None:
        # The first definition of each name; serialized only for the tools that ran.
        bound: dict[str, Mapping[str, Any]] = {}
        for s in run.steps:
            for t in s.bound:
                bound.setdefault(_tool_name(t), t)
        for r in run.tool_runs:
            if r.rejected_arguments or r.name not in bound:
                continue
            validator = _validator(_schema_json(bound[r.name]))
            args = r.args if isinstance(r.args, Mapping) else None
            if args is None or not validator.is_valid(dict(args)):
                reason = (
                    "not an object"
                    if args is None
                    else next(iter(validator.iter_errors(dict(args)))).message
                )
                where = f" at step {r.step}" if r.step is not None else ""
                return f"{r.name} ran{where} with {r.args!r}, which breaks its schema: {reason}"
        return None

    return Invariant("valid_arguments()", check)


def final_text() -> Invariant:
    """The agent returned, and its last model call answered with text (no tool
    calls, no error); when the result holds ``messages``, the last one is that
    text message."""

    def check(run: AgentRun) -> str | None:
        if run.exception is not None:
            return f"the agent raised {_error_text(run.exception)}"
        if not run.steps:
            return "the agent never called the model"
        last = run.steps[-1]
        if last.kind != "text":
            return f"the last model call (step {last.index}) answered with {last.kind}"
        messages = run.result.get("messages") if isinstance(run.result, Mapping) else None
        if messages:
            final = messages[-1]
            if getattr(final, "type", None) != "ai" or getattr(final, "tool_calls", None):
                return f"the last message of the result is {type(final).__name__}, not the answer"
            if final.text != last.turn.text:
                return f"the last message says {final.text!r}, the model said {last.turn.text!r}"
        return None

    return Invariant("final_text()", check)
