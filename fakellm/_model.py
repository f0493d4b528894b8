"""FakeChatModel and FakeLLM: real LangChain models that play a Script.

This is the only module that subclasses LangChain models. Both models share
:class:`_Scripted` (script playing, call recording, token counting); each
implements LangChain's native sync and async paths, so langchain-core never
falls back to its thread-pool executor and concurrent streams interleave only
where the script's delays say.
"""

from __future__ import annotations

import asyncio
import copy
import difflib
import functools
import inspect
import json
import sys
import threading
import types
import uuid
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextvars import ContextVar
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import Any, Generic, Literal, NamedTuple, TypeAlias, TypeVar

from langchain_core.callbacks import (
    AsyncCallbackHandler,
    AsyncCallbackManagerForLLMRun,
    BaseCallbackManager,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.exceptions import ModelRefusalError
from langchain_core.language_models import (
    BaseChatModel,
    BaseLanguageModel,
    BaseLLM,
    LanguageModelInput,
)
from langchain_core.language_models.chat_models import generate_from_stream
from langchain_core.load.serializable import SerializedNotImplemented
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.ai import UsageMetadata, add_usage
from langchain_core.messages.base import TextAccessor
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    ChatResult,
    Generation,
    GenerationChunk,
    LLMResult,
)
from langchain_core.runnables import (
    Runnable,
    RunnableConfig,
    RunnableLambda,
    RunnableMap,
    RunnablePassthrough,
)
from langchain_core.runnables.config import ensure_config, var_child_runnable_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    SkipValidation,
    field_validator,
    model_validator,
)

from fakellm import _batch, _clock, _compat, _order, _tokens, errors
from fakellm._cancel import OpenRun, adopt, stream_began, watched
from fakellm._loop import VirtualTimeLoop
from fakellm._script import (
    Call,
    Exhausted,
    PendingTurn,
    Piece,
    Script,
    ScriptPlayer,
    ToolCall,
    Turn,
    _clip,
    as_script,
    chat_call,
    new_call,
    split_text,
    whole_delays,
    whole_play,
)
from fakellm.errors import (
    ResponderError,
    ToolChoiceError,
    UnexpectedCall,
    UnknownToolError,
    UnusedTurns,
)

__all__ = ["FakeChatModel", "FakeLLM"]

_T = TypeVar("_T")

DEFAULT_PROFILE: Mapping[str, Any] = {
    "max_input_tokens": 128_000,
    "max_output_tokens": 16_384,
    "text_inputs": True,
    "text_outputs": True,
    "image_inputs": True,
    "tool_calling": True,
    "tool_choice": True,
    "tool_call_streaming": True,
    "structured_output": True,
    "reasoning_output": True,
}
"""FakeChatModel's default ``profile``: a tool-calling, structured-output-capable model."""

# Keyword arguments that Call records in their own fields, not in Call.kwargs.
_CALL_FIELDS = frozenset(
    {
        "tools",
        "tool_choice",
        "model",
        "stream",
        "stream_usage",
        "ls_structured_output_format",
        "structured_output_format",
    }
)


class _RunInfo(NamedTuple):
    """A run's id, tags and metadata (``ls_*`` keys left out), as its Call records them."""

    run_id: uuid.UUID | None
    tags: tuple[str, ...]
    metadata: Mapping[str, Any]


# LangChain hands `_stream` no run manager on its `stream()` and invoke-streaming
# paths; the overrides below park the run's identity here for `_stream` to read.
_pending_run: ContextVar[_RunInfo | None] = ContextVar("fakellm_pending_run", default=None)


class _PendingRun:
    """Parks a run's identity in ``_pending_run`` for a ``with`` block (no generator)."""

    __slots__ = ("_info", "_token")

    def __init__(self, info: _RunInfo | None) -> None:
        self._info = info

    def __enter__(self) -> None:
        self._token = _pending_run.set(self._info)

    def __exit__(self, *exc: object) -> None:
        _pending_run.reset(self._token)


class _APendingRun(_PendingRun):
    """``_PendingRun`` for ``async with``, which also reports a cancellation from outside.

    Core's agenerate reports errors after its gather returns, which a cancelled
    caller (wait_for, asyncio.timeout) never reaches: the run would stay open
    forever. It is reported here, as core's astream does; but only a
    cancellation from outside: a CancelledError the script raises returns
    through that gather and core reports it itself.
    """

    __slots__ = ("_run_manager",)

    def __init__(self, info: _RunInfo | None, run_manager: Any) -> None:
        super().__init__(info)
        self._run_manager = run_manager

    async def __aenter__(self) -> None:
        self._token = _pending_run.set(self._info)

    async def __aexit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            if isinstance(exc, asyncio.CancelledError) and self._run_manager is not None:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    await self._run_manager.on_llm_error(exc, response=LLMResult(generations=[]))
        finally:
            _pending_run.reset(self._token)


def _run_info(manager: Any) -> _RunInfo | None:
    if manager is None:
        return None
    meta = manager.metadata
    meta = {k: v for k, v in meta.items() if not k.startswith("ls_")} if meta else {}
    tags = manager.tags
    return _RunInfo(getattr(manager, "run_id", None), tuple(tags) if tags else (), meta)


def config_run(
    model: BaseLanguageModel[Any], config: RunnableConfig | None
) -> tuple[RunnableConfig, _RunInfo]:
    """Give a model's run an id up front and work out its tags and metadata as core will
    (for ``_stream``, which core calls without the run; see ``_pending_run``)."""
    if (
        config is None
        or (
            type(config) is dict
            and config.keys() <= _PLAIN_KEYS
            and not (config.get("tags") or config.get("metadata"))
        )
    ) and not (
        model.tags
        or model.metadata
        or var_child_runnable_config.get()
        or isinstance(config and config.get("callbacks"), BaseCallbackManager)
        or _compat.langsmith_tags()
    ):
        # Nothing to merge (the common direct call): no tags and no metadata
        # anywhere, so core's own ensure_config and configure find none either.
        run_id = config.get("run_id") if config else None
        if run_id is None:
            run_id = _compat.core_run_id()  # what core gives a run it names itself
        plain: RunnableConfig = {**config, "run_id": run_id} if config else {"run_id": run_id}
        return plain, _RunInfo(run_id, (), {})
    config = ensure_config(config)
    if config.get("run_id") is None:
        config["run_id"] = _compat.core_run_id()
    callbacks, tags, metadata = (
        config.get("callbacks"),
        config.get("tags"),
        config.get("metadata"),
    )
    manager = CallbackManager.configure(
        callbacks, None, False, tags, model.tags, metadata, model.metadata
    )
    info = _RunInfo(
        config["run_id"],
        tuple(manager.tags),
        {k: v for k, v in manager.metadata.items() if not k.startswith("ls_")},
    )
    return config, info


# Config keys that put no tags or metadata on a run when empty (``configurable``
# can: core copies its ``model`` and ``checkpoint_ns`` into the metadata).
_PLAIN_KEYS = frozenset(
    {"callbacks", "run_id", "run_name", "recursion_limit", "max_concurrency", "tags", "metadata"}
)


def stream_in_run(info: _RunInfo, inner: Iterator[_C]) -> Iterator[_C]:
    """``inner``, a core stream, its first step (where core starts the run and calls
    ``_stream``) taken with ``info`` parked; closed as soon as the caller stops, as
    ``astream`` is, so the run ends then."""
    token = _pending_run.set(info)
    try:
        first = next(inner, _NO_CHUNK)
    finally:
        _pending_run.reset(token)
    if first is _NO_CHUNK:
        return
    try:
        yield first
        yield from inner
    finally:
        inner.close()  # type: ignore[attr-defined]  # core's stream is a generator


_NO_CHUNK: Any = object()


@dataclass(slots=True)
class _Plan:
    """What one call will emit: pieces, waits, and where (if anywhere) it fails."""

    turn: Turn
    cut: tuple[Piece, ...] | None
    """The pieces when ``stop`` or ``max_tokens`` cut the turn short; None: all of them."""
    count: int
    """How many pieces the call emits."""
    given_delays: Sequence[float] | None
    """The wait before each piece; None: the whole turn's (see ``delays``)."""
    error_at: int | None
    finish_reason: str
    usage: UsageMetadata
    model_name: str
    tool_ids: list[str]
    message_id: str
    whole_wait: float | None = None
    """``sum(delays)`` when the call plays its turn whole (worked out once per turn)."""

    @property
    def pieces(self) -> tuple[Piece, ...]:
        """The pieces the call emits (a whole turn's are built on first use, then kept)."""
        return self.turn.pieces if self.cut is None else self.cut

    @property
    def delays(self) -> Sequence[float]:
        """The wait before each piece (a whole turn's are built on first use, then kept:
        a call that is not streamed needs only their sum, ``whole_wait``)."""
        given = self.given_delays
        return whole_delays(self.turn) if given is None else given

    def wait_before(self, k: int) -> float:
        """Total delay spent before chunk ``k`` (or before failing at ``k``)."""
        if k == self.count and self.whole_wait is not None:
            return self.whole_wait
        if k < len(self.delays):
            return sum(self.delays[: k + 1])
        return sum(self.delays)


def _hopped(run_manager: object) -> bool:
    """Whether LangChain ran a handler of this call on the executor, on a stock loop.

    Core runs a sync handler without ``run_inline`` in a thread before the
    model's code; the virtual loop hands such jobs back in order, a stock
    loop in whatever order the threads finish.
    """
    if not isinstance(run_manager, AsyncCallbackManagerForLLMRun):
        return False
    if isinstance(asyncio.get_running_loop(), VirtualTimeLoop):
        return False
    for h in run_manager.handlers:  # a loop, not any(...): no generator per call
        if not h.run_inline and not h.ignore_chat_model and not isinstance(h, AsyncCallbackHandler):
            return True
    return False


class _Scripted:
    """What both fake models share: the script, the call log, the token counter."""

    # Declared on each model class as pydantic fields; listed here for type checkers.
    script: Script
    model_name: str
    provider: str
    max_tokens: int | None
    stop: list[str] | None
    allow_unused: bool
    _player: ScriptPlayer
    _calls: list[Call]
    _lock: threading.Lock

    # Validators shared by both models (pydantic collects them from this base too).
    @field_validator("script", mode="before")
    @classmethod
    def _as_script(cls, value: Any) -> Script:
        return as_script(value)

    @field_validator("stop", mode="before")
    @classmethod
    def _stop(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _known_settings(cls, data: Any) -> Any:
        _check_settings(cls, data)
        return data

    def _setup(self) -> None:
        # Written straight into the private values: pydantic's __setattr__ for a
        # private attribute costs more than building what it holds.
        _compat.private_values(self).update(
            _player=ScriptPlayer(self.script), _calls=[], _lock=threading.Lock()
        )

    # -- copies: same script, own position and call log ----------------------------------

    def _fresh_copy(self, deep: bool, memo: dict[int, Any] | None = None) -> Any:
        """A copy that plays the same script from its start, with an empty call log.

        ``copy.copy``, ``copy.deepcopy``, ``model_copy()`` and pickling all go
        through here: a copy sharing the original's position would make two models
        consume one script, and a copy of the position would replay from the middle.
        """
        fields = type(self).model_fields  # type: ignore[attr-defined]
        values = {name: getattr(self, name) for name in fields}
        if deep:
            # The script is immutable and callbacks are shared services: both kept.
            for name, value in values.items():
                if name not in ("script", "callbacks"):
                    values[name] = copy.deepcopy(value, memo)
        return type(self).model_construct(  # type: ignore[attr-defined]
            set(self.model_fields_set),  # type: ignore[attr-defined]
            **values,
        )

    def __copy__(self) -> Any:
        return self._fresh_copy(deep=False)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        return self._fresh_copy(deep=True, memo=memo)

    def __reduce__(self) -> tuple[Any, ...]:
        fields = type(self).model_fields  # type: ignore[attr-defined]
        values = {name: getattr(self, name) for name in fields}
        return (_rebuild_model, (type(self), values, set(self.model_fields_set)))  # type: ignore[attr-defined]

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Any:
        """A copy that plays the same script from its start, with an empty call log.

        ``update`` values are validated like constructor arguments (a new
        ``script`` may be a list of turns), and an unknown name is an error.
        """
        if not update:
            return self._fresh_copy(deep=deep)
        _check_settings(type(self), update)
        values = {name: getattr(self, name) for name in type(self).model_fields}  # type: ignore[attr-defined]
        values.update(update)
        new = type(self).model_validate(values)  # type: ignore[attr-defined]
        return new

    def _adopt_configured(self, configured: Any) -> None:
        """Make a per-call configured copy play and record as this model (same script)."""
        if isinstance(configured, _Scripted) and configured.script is self.script:
            configured._player = self._player
            configured._calls = self._calls
            configured._lock = self._lock

    # -- public surface, in unittest.mock's vocabulary ---------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every request this model received, in the order they started."""
        with self._lock:
            return list(self._calls)

    @property
    def call_count(self) -> int:
        """How many requests this model received (unexpected ones included)."""
        return len(self._calls)

    @property
    def last_call(self) -> Call | None:
        """The most recent request, or None before the first."""
        with self._lock:
            return self._calls[-1] if self._calls else None

    @property
    def unexpected_calls(self) -> list[Call]:
        """Requests the script could not answer: each raised ``UnexpectedCall`` (or
        ``ResponderError``, when a rule's responder or ``when`` predicate failed)."""
        return [c for c in self.calls if c.unexpected is not None]

    @property
    def races(self) -> list[str]:
        """Queued turns that threads, not the app, decided the order of (one line each)."""
        return self._player.races()

    @property
    def unused_turns(self) -> list[str]:
        """What the script still holds: queued turns and rules with uses left."""
        return self._player.unused()

    def assert_all_turns_used(self) -> None:
        """Raise :class:`~fakellm.errors.UnusedTurns` if the script holds turns still.

        A model built with ``allow_unused=True`` never raises.
        """
        left = self.unused_turns
        if left and not self.allow_unused:
            lines = "\n".join(f"  - {d}" for d in left)
            msg = (
                f"{self._label()} was scripted with turns it never played "
                f"({self.call_count} call{'s' if self.call_count != 1 else ''} made):\n{lines}\n"
                "If that is on purpose, pass allow_unused=True (to the model, to fake_llm(...) "
                "or to @pytest.mark.fakellm), or end the script earlier."
            )
            raise UnusedTurns(msg)

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "provider": self.provider}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        # The per-call `model=` override must show in traces (LangSmith reads ls_model_name).
        params = super()._get_ls_params(stop=stop, **kwargs)  # type: ignore[misc]
        params["ls_provider"] = self.provider
        params["ls_model_name"] = kwargs.get("model") or self.model_name
        return params

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids by fakellm's offline counter (see ``fakellm._tokens``)."""
        return _tokens.token_ids(text)

    def get_num_tokens(self, text: str) -> int:
        """Token count by fakellm's offline counter; never downloads a tokenizer."""
        return _tokens.count_tokens(text)

    # -- playing the script -------------------------------------------------------------

    def _label(self) -> str:
        return f"{type(self).__name__}(model_name={self.model_name!r})"

    def to_json_not_implemented(self) -> SerializedNotImplemented:
        """LangChain's serialized form of this model, its label standing in for its repr.

        Core serializes a model on its first call (the ``serialized`` callbacks
        receive); the repr of a whole script costs more than the call itself and
        tells a callback nothing the label does not.
        """
        cls = type(self)
        return {
            "lc": 1,
            "type": "not_implemented",
            "id": [*cls.__module__.split("."), cls.__name__],
            "repr": self._label(),
        }

    def _error(self, plan: _Plan) -> BaseException:
        """The turn's error, as this model's provider (when it names an SDK) raises it."""
        err = plan.turn.make_error()
        assert err is not None  # only called where the plan places an error
        return errors.flavoured(err, self.provider)

    def _take(self, draft: Call) -> tuple[Call, Turn | PendingTurn]:
        """Record ``draft`` and return it (indexed) with the turn that answers it.

        Raises UnexpectedCall (after recording the call) when the script has no answer.
        """
        private = _compat.private_values(self)  # read once: see private_values
        calls, player, lock = private["_calls"], private["_player"], private["_lock"]
        # A batch input waits here for the inputs before it (fakellm._order).
        turning = _order.in_turn(self)
        if turning is _order.UNORDERED:  # no batch: nothing to wait for or to report
            with lock:
                return self._taken(draft, calls, player, False)
        with turning as taking, lock:
            call, turn = self._taken(draft, calls, player, True)
            taking.took(turn)
            return call, turn

    def _taken(
        self, draft: Call, calls: list[Call], player: ScriptPlayer, ordered: bool
    ) -> tuple[Call, Turn | PendingTurn]:
        """``_take``'s work, under the model's lock: index, take, record."""
        # The record is built once and completed here, in place, before anyone
        # else holds it: a copy per field (dataclasses.replace) costs more than
        # the rest of recording it (what object.__setattr__ does, without slots).
        call = draft
        call.__dict__["index"] = len(calls)
        try:
            turn = player.take(call, ordered)
        except Exhausted:
            err = UnexpectedCall(self._unexpected_message(call))
            calls.append(replace(call, unexpected=err))
            raise err from None
        except ResponderError as err:
            calls.append(replace(call, unexpected=err))
            raise
        except BaseException:
            calls.append(call)
            raise
        if isinstance(turn, PendingTurn):
            calls.append(call)  # its turn is filled in once awaited
            return call, turn
        # A rule's predicate or responder may hold the call: it gets a copy with the turn.
        if player.script.rules:
            call = replace(call, turn=turn)
        else:
            call.__dict__["turn"] = turn
        calls.append(call)
        return call, turn

    # Each model's _open records the call, takes its answer and says how to plan it.
    _open: Callable[..., tuple[Call, Turn | PendingTurn, Callable[[Turn], _Plan]]]

    def _begin(self, *args: Any, streaming: bool) -> _Plan:
        call, turn, finish = self._open(*args, streaming=streaming)
        return finish(self._resolved(call, turn))

    async def _abegin(self, *args: Any, streaming: bool) -> _Plan:
        if _order.in_batch(self):
            await _order.await_turn(self)  # an abatch input's turn, without blocking the loop
        if _hopped(args[2]):
            _order.hopped()
        call, turn, finish = self._open(*args, streaming=streaming)
        return finish(turn if type(turn) is Turn else await self._aresolved(call, turn))

    def _record(self, call: Call, **changes: Any) -> None:
        with self._lock:
            self._calls[call.index] = replace(self._calls[call.index], **changes)

    def _resolved(self, call: Call, turn: Turn | PendingTurn) -> Turn:
        """The turn, on a sync path: an async responder cannot answer here."""
        if not isinstance(turn, PendingTurn):
            return turn
        close = getattr(turn.awaitable, "close", None)
        if close is not None:
            close()  # never awaited: say so here, not in a "never awaited" warning
        err = turn.failed(
            call,
            TypeError(
                "it is async, and this call is synchronous; async responders answer "
                "ainvoke/astream/abatch (use a plain function for sync calls)"
            ),
        )
        self._record(call, unexpected=err)
        raise err

    async def _aresolved(self, call: Call, turn: Turn | PendingTurn) -> Turn:
        """The turn, awaiting an async responder's answer."""
        if not isinstance(turn, PendingTurn):
            return turn
        try:
            value = await turn.awaitable
        except Exception as exc:
            err = turn.failed(call, exc)
            self._record(call, unexpected=err)
            raise err from exc
        resolved = turn.turn(value)
        self._record(call, turn=resolved)
        return resolved

    def _unexpected_message(self, call: Call) -> str:
        last = call.last_human_message
        shown = "(no human message)" if last is None else repr(_clip(last, 120))
        return (
            f"{self._label()} received call #{call.index} but its script has no answer "
            f"for it.\nLast human message: {shown}\nThe script held: {self._player.held()}.\n"
            "Add a turn (or a rule) for this call, or set "
            "when_exhausted='cycle' / 'repeat_last' on the Script."
        )

    def _plan(
        self,
        call: Call,
        turn: Turn,
        stop: Sequence[str] | None,
        max_tokens: int | None,
        model_name: str,
        input_tokens: int,
    ) -> _Plan:
        if turn.stream is not None:
            return _stream_plan(
                turn, model_name, turn.id or f"fakellm-{self.model_name}-{call.index}"
            )
        if turn.structured is not None:
            turn = _structured_turn(self, call, turn)
        if (
            call.tool_choice is not None
            and not turn.ignore_tool_choice
            and turn.error_position != 0
        ):
            _check_tool_choice(self, call, turn)  # no tool_choice forces nothing
        if turn.tool_calls:
            bound = call.tool_names
            for tc in turn.tool_calls:
                if tc.name not in bound and not tc.allow_unbound:
                    offered = ", ".join(repr(n) for n in bound) if bound else "none"
                    msg = (
                        f"{self._label()} call #{call.index}: the script calls tool {tc.name!r}, "
                        f"which is not bound (bound tools: {offered}). Bind it with "
                        "model.bind_tools([...]), fix the tool name in the script, or set "
                        "allow_unbound=True on the ToolCall to script a hallucinated tool."
                    )
                    raise UnknownToolError(msg)
        # A turn played whole needs no pieces until it streams (cut is None).
        cut: tuple[Piece, ...] | None = None
        whole = whole_play(turn)
        total = count = whole.chunk_count
        finish = whole.finish_reason
        # Only text pieces can hold a stop sequence (see _truncate_at_stop).
        if stop and turn.content is None and turn.text and any(s and s in turn.text for s in stop):
            cut, stopped = _truncate_at_stop(turn.pieces, stop)
            count = len(cut)
            if stopped:
                finish = "stop"
        if max_tokens is not None and count > max_tokens:
            cut = (turn.pieces if cut is None else cut)[:max_tokens]
            count = max_tokens
            finish = "length"
        error_at: int | None
        delays: Sequence[float] | None
        whole_wait: float | None = None
        if cut is None:
            error_at, delays, whole_wait = whole.error_at, None, whole.wait
        else:
            error_at = turn.error_position
            if error_at is not None:
                error_at = min(error_at, count)
            delays = turn.delays(min(total, max(count, 1)))  # a prefix of turn.delays(total)
            if not count and not delays:
                delays = [turn.first_token_delay]
        if turn.usage is None and not turn.reasoning:  # the common turn: counted, no details
            usage: UsageMetadata = {
                "input_tokens": input_tokens,
                "output_tokens": count,
                "total_tokens": input_tokens + count,
            }
        else:
            usage = _usage(turn, input_tokens, cut, count)
        return _Plan(
            turn=turn,
            cut=cut,
            count=count,
            given_delays=delays,
            error_at=error_at,
            finish_reason=finish,
            usage=usage,
            model_name=model_name,
            tool_ids=[tc.id or f"call_{call.index}_{i}" for i, tc in enumerate(turn.tool_calls)]
            if turn.tool_calls
            else [],
            message_id=turn.id or f"fakellm-{self.model_name}-{call.index}",
            whole_wait=whole_wait,
        )


_C = TypeVar("_C")
_O = TypeVar("_O")  # what a model's astream yields
_Step: TypeAlias = tuple[float, "_C | BaseException"]
"""One step of a plan: wait this long, then emit the item (or raise the error)."""


def _whole(
    plan: _Plan, error: Callable[[_Plan], BaseException], build: Callable[[_Plan], _C]
) -> _Step[_C]:
    """A non-streamed reply's one step: all of it (or the error) after its delays."""
    if plan.error_at is not None:
        return plan.wait_before(plan.error_at), error(plan)
    return plan.wait_before(plan.count), build(plan)


def _steps(
    plan: _Plan, chunks: Sequence[_C], error: Callable[[_Plan], BaseException]
) -> Iterator[_Step[_C]]:
    """A stream's steps: each chunk after its delay, the error where the turn places it."""
    error_at = plan.error_at
    for k, (chunk, wait) in enumerate(zip(chunks, plan.delays, strict=False)):
        if k == error_at:
            yield wait, error(plan)
            return
        yield wait, chunk
    if error_at is not None:
        yield 0.0, error(plan)


# The drivers: the only places that wait on the clock and raise a scripted error.


def _settle(step: _Step[_C]) -> _C:
    wait, item = step
    if wait:
        _clock.sleep(wait)
    if isinstance(item, BaseException):
        raise item
    return item


async def _asettle(step: _Step[_C]) -> _C:
    wait, item = step
    if wait:
        await _clock.asleep(wait)
    if isinstance(item, BaseException):
        raise item
    return item


def _drive(
    steps: Iterable[_Step[_C]], on_chunk: Callable[[_C], object] | None = None
) -> Iterator[_C]:
    sleep = _clock.sleep
    for wait, item in steps:
        if wait:
            sleep(wait)
        if isinstance(item, BaseException):
            raise item
        if on_chunk is not None:
            on_chunk(item)
        yield item


async def _adrive(
    steps: Iterable[_Step[_C]], on_chunk: Callable[[_C], Awaitable[object]] | None = None
) -> AsyncIterator[_C]:
    asleep = _clock.asleep
    for wait, item in steps:
        if wait:
            await asleep(wait)
        if isinstance(item, BaseException):
            raise item
        if on_chunk is not None:
            await on_chunk(item)
        yield item


def _token_callback(manager: CallbackManagerForLLMRun) -> Callable[[GenerationChunk], object]:
    return lambda chunk: manager.on_llm_new_token(chunk.text, chunk=chunk)


def _atoken_callback(
    manager: AsyncCallbackManagerForLLMRun,
) -> Callable[[GenerationChunk], Awaitable[object]]:
    return lambda chunk: manager.on_llm_new_token(chunk.text, chunk=chunk)


def _structured_turn(model: _Scripted, call: Call, turn: Turn) -> Turn:
    """``turn.structured`` in the form the app's structured-output method reads.

    A call that forces a tool (``function_calling``, an agent's tool strategy) gets
    a call of the schema's tool: the forced one, the only one bound, or the one
    whose parameters are exactly the data's keys. Any other call (``json_schema``,
    ``json_mode``, a provider strategy) gets the JSON text.
    """
    fields = {k: getattr(turn, k) for k in turn.model_fields_set if k != "structured"}
    data = turn.structured
    forced = _forced_tool(call.tool_choice)
    if forced is None or forced == "none":
        return Turn(**fields, text=json.dumps(data, ensure_ascii=False))
    names = call.tool_names
    name = forced if forced != "any" else None
    if name is None and len(names) == 1:
        name = names[0]
    if name is None:
        tools = zip(names, call.tools, strict=True)
        fits = [n for n, t in tools if set(_tool_params(t)) == set(data)]
        name = fits[0] if len(fits) == 1 else None
    if name is None:
        offered = ", ".join(map(repr, names)) or "none"
        msg = (
            f"{model._label()} call #{call.index}: {turn.describe()} is structured output "
            f"for a forced tool call, but which bound tool it fills is unclear (bound "
            f"tools: {offered}). Script Turn(tool_calls=[ToolCall(name, {{...}})]) instead."
        )
        raise ToolChoiceError(msg)
    return Turn(**fields, tool_calls=(ToolCall(name, data),))


def _tool_params(tool: Mapping[str, Any]) -> Mapping[str, Any]:
    fn = tool.get("function")
    params = (fn if isinstance(fn, Mapping) else tool).get("parameters") or {}
    return params.get("properties") or {} if isinstance(params, Mapping) else {}


def _raise_if_refused(message: BaseMessage) -> BaseMessage:
    """Raise ModelRefusalError for a refusal, as integrations' structured output does."""
    for block in message.content_blocks:
        if block["type"] == "refusal":
            raise ModelRefusalError.from_refusal(block, raw_message=message)
    return message


def _forced_tool(tool_choice: Any) -> str | None:
    """``"any"``, ``"none"``, a tool name, or None (the model may choose)."""
    if tool_choice is None or tool_choice is False or tool_choice == "auto":
        return None
    if tool_choice is True or tool_choice in ("any", "required"):
        return "any"
    if isinstance(tool_choice, str):
        return tool_choice
    if isinstance(tool_choice, Mapping):
        fn = tool_choice.get("function")
        name = fn.get("name") if isinstance(fn, Mapping) else tool_choice.get("name")
        if isinstance(name, str):
            return name
        kind = tool_choice.get("type")
        if kind in ("any", "required", "none", "auto"):
            return _forced_tool(kind)
    return None


def _check_tool_choice(model: _Scripted, call: Call, turn: Turn) -> None:
    """Raise ToolChoiceError where a real model could not answer ``call`` with ``turn``."""
    forced = _forced_tool(call.tool_choice)
    if forced is None or turn.refusal is not None:
        return  # models refuse even under a forced tool choice
    where = f"{model._label()} call #{call.index} (tool_choice={call.tool_choice!r})"
    optout = "or set ignore_tool_choice=True on the turn to script a model that ignores it."
    names = [tc.name for tc in turn.tool_calls]
    if forced == "none":
        if names:
            msg = (
                f"{where}: tool_choice='none' forbids tool calls, but {turn.describe()} "
                f"calls {', '.join(names)}. Script a text reply, {optout}"
            )
            raise ToolChoiceError(msg)
        return
    if forced != "any" and forced not in call.tool_names:
        offered = ", ".join(map(repr, call.tool_names)) or "none"
        msg = (
            f"{where}: tool_choice names {forced!r}, which is not bound (bound tools: "
            f"{offered}); a real provider rejects the request. Bind the tool, {optout}"
        )
        raise ToolChoiceError(msg)
    if forced == "any" and names:
        return
    if forced in names:
        return
    wanted = "a tool call" if forced == "any" else f"a call of {forced!r}"
    msg = (
        f"{where}: the call forces {wanted}, but {turn.describe()} answers without one; "
        "a real model would call the tool. Script "
        f"Turn(tool_calls=[ToolCall({'name' if forced == 'any' else repr(forced)}, {{...}})]) "
        f"(or Turn(structured=...) for with_structured_output), {optout}"
    )
    raise ToolChoiceError(msg)


def _truncate_at_stop(
    pieces: tuple[Piece, ...], stop: Sequence[str]
) -> tuple[tuple[Piece, ...], bool]:
    """Cut the text at the first stop sequence, as a provider would."""
    text = "".join(p.text for p in pieces if p.kind == "text")
    hits = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    if not hits:
        return pieces, False
    cut = min(hits)
    out: list[Piece] = []
    seen = 0
    for p in pieces:
        if p.kind != "text":
            if seen < cut or p.kind == "reasoning":
                out.append(p)
                continue
            break
        if seen + len(p.text) <= cut:
            out.append(p)
            seen += len(p.text)
            continue
        if cut > seen:
            out.append(Piece("text", p.text[: cut - seen]))
        break
    return tuple(out), True


def _usage(
    turn: Turn, input_tokens: int, cut: tuple[Piece, ...] | None, count: int
) -> UsageMetadata:
    spec = turn.usage
    i = spec.input_tokens if spec and spec.input_tokens is not None else input_tokens
    o = spec.output_tokens if spec and spec.output_tokens is not None else count
    t = spec.total_tokens if spec and spec.total_tokens is not None else i + o
    usage = UsageMetadata(input_tokens=i, output_tokens=o, total_tokens=t)
    if spec and spec.input_token_details:
        usage["input_token_details"] = dict(spec.input_token_details)  # type: ignore[typeddict-item]
    if spec and spec.output_token_details:
        usage["output_token_details"] = dict(spec.output_token_details)  # type: ignore[typeddict-item]
    elif turn.reasoning and not (spec and spec.output_tokens is not None):
        # Reasoning chunks count as output tokens; providers report them apart too.
        if cut is None:
            reasoning = turn.reasoning_piece_count
        else:
            reasoning = sum(1 for p in cut if p.kind == "reasoning")
        usage["output_token_details"] = {"reasoning": reasoning}
    return usage


def _input_tokens(messages: Sequence[BaseMessage]) -> int:
    """Tokens of the messages' text and tool calls (names and arguments)."""
    count = _tokens.count_tokens
    total = 0
    for m in messages:
        content = m.content
        kind = type(m)
        # Core's ``text`` of a str content is that str (a TextAccessor, built per read).
        if type(content) is str and kind in _CORE_MESSAGES:
            total += count(content)
        else:
            total += count(m.text)
        if kind in _NO_TOOL_CALLS and not m.model_extra:
            continue  # _tool_calls_of(m) is None: no frame for it
        for tc in _tool_calls_of(m) or ():
            total += count(tc["name"]) + count(str(tc["args"]))
    return total


# langchain-core's message classes that declare no ``tool_calls``: on them
# ``getattr(m, "tool_calls", None)`` has pydantic raise and catch an
# AttributeError, which costs more than counting the message's tokens.
_NO_TOOL_CALLS = frozenset({HumanMessage, SystemMessage, ToolMessage, ChatMessage, FunctionMessage})


_CORE_MESSAGES = _NO_TOOL_CALLS | {AIMessage}


def _tool_calls_of(message: BaseMessage) -> Any:
    """``getattr(message, "tool_calls", None)``, where only an extra field can hold it."""
    if type(message) in _NO_TOOL_CALLS:
        extra = message.model_extra
        return extra.get("tool_calls") if extra else None
    return getattr(message, "tool_calls", None)


def _stop_list(stop: str | Sequence[str] | None) -> list[str] | None:
    """Stop sequences as a list: a single string is one sequence, as providers take it."""
    if stop is None:
        return None
    return [stop] if isinstance(stop, str) else list(stop)


def _prompt_managers(prompts: list[str], first: _T) -> list[_T]:
    """Each prompt's run manager (core hands ``_generate`` only the first one)."""
    managers = _compat.llm_run_managers.get()
    if managers is not None and len(managers) == len(prompts) and managers[0] is first:
        return list(managers)
    return [first] * len(prompts)


def _rebuild_model(cls: type[Any], values: dict[str, Any], fields_set: set[str]) -> Any:
    return cls.model_construct(fields_set, **values)


_accepted: dict[type[Any], frozenset[str]] = {}


def _accepted_settings(cls: type[Any]) -> frozenset[str]:
    """A model class's setting names and aliases (fixed once the class is built)."""
    names = _accepted.get(cls)
    if names is None:
        fields = cls.model_fields
        names = _accepted[cls] = frozenset(fields) | {f.alias for f in fields.values() if f.alias}
    return names


def _check_settings(cls: type[Any], data: Any) -> None:
    """Refuse an unknown setting with the list of accepted ones (and a likely fix)."""
    if not isinstance(data, Mapping):
        return
    accepted = _accepted_settings(cls)
    unknown = [k for k in data if k not in accepted]
    if not unknown:
        return
    fields = cls.model_fields
    key = unknown[0]
    close = difflib.get_close_matches(str(key), sorted(accepted), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    own = [n for n in fields if n in inspect.get_annotations(cls)]
    msg = (
        f"{cls.__name__} got an unknown setting {key}={data[key]!r}{hint}. "
        f"Accepted settings: {', '.join(own)}; and LangChain's "
        f"{', '.join(n for n in fields if n not in own)}."
    )
    raise TypeError(msg)


def _split_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k not in _CALL_FIELDS} if kwargs else {}


def _began_when_called(astream: Callable[..., Any]) -> Callable[..., Any]:
    """A subclass's own ``_astream``, noting ``stream_began()`` when called: core
    calls it inside the block that reports the run (see _cancel.OpenRun). The
    call, not a wrapping generator: the stream itself is the subclass's own."""

    @functools.wraps(astream)
    def _astream(*args: Any, **kwargs: Any) -> Any:
        stream_began()
        return astream(*args, **kwargs)

    return _astream


class _StreamsInRun(Generic[_O]):
    """``astream`` for a model whose run core may start and never report: a call
    cancelled while core dispatches the start event (see _cancel.OpenRun). First
    in a model's bases, ahead of core's class, whose ``astream`` it wraps."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("_astream")
        if isinstance(own, types.FunctionType) and own.__module__ != __name__:
            # A user's subclass streams its own way: it may wait (or yield) before
            # the model's _astream, which marks the run core's, ever runs.
            cls._astream = _began_when_called(own)  # type: ignore[attr-defined]

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[_O]:
        config, info = config_run(self, config)  # type: ignore[arg-type]  # a model's mixin
        run = OpenRun(config["run_id"], stream=True)  # type: ignore[arg-type]  # config_run set it
        inner = super().astream(input, config, stop=stop, **kwargs)  # type: ignore[misc]  # core's
        # This generator alone closes core's stream (in its finally). The event
        # loop must not close it too, at shutdown or when both are garbage at
        # once, or one of the two aclose() calls finds it running and asyncio logs
        # "aclose(): asynchronous generator is already running". So core's stream
        # is kept off the loop's list (no firstiter hook) and alive until closed.
        _open_streams.add(inner)
        try:
            token = _pending_run.set(info)
            parked = run.park()
            try:
                hooks = sys.get_asyncgen_hooks()
                sys.set_asyncgen_hooks(firstiter=None, finalizer=hooks.finalizer)
                try:
                    step = inner.__anext__()  # the hooks are taken here, on the first step
                finally:
                    sys.set_asyncgen_hooks(*hooks)
                try:
                    first = await step
                except StopAsyncIteration:
                    return
            finally:
                run.unpark(parked)
                _pending_run.reset(token)
            yield first
            async for chunk in inner:
                yield chunk
        except asyncio.CancelledError as exc:
            await _aclose(inner)
            # A cancellation while core dispatches the start event leaves it no run
            # manager to report with; close the run here (see _cancel).
            await run.close(
                self, config.get("callbacks"), config.get("tags"), config.get("metadata"), exc
            )
            raise
        finally:
            # A consumer that stops early closes this generator (aclosing and
            # cancellation at once; after a break, the loop's finalizer hook soon
            # after): close core's stream with it, so its run ends (recorded as
            # GeneratorExit) then, not whenever the garbage collector gets to it.
            try:
                if inner.ag_frame is not None:  # exhausted: nothing to close
                    await _aclose(inner)
            finally:
                _open_streams.discard(inner)


class FakeChatModel(
    _StreamsInRun[AIMessageChunk],
    _Scripted,
    _compat.GenerateWithCacheHook,
    _compat.CombinedLLMOutputs,
    _compat.DefaultProfile,
    _compat.ProfileKeysCheckedOnce,
    BaseChatModel,
):
    """A chat model that plays a :class:`~fakellm.Script`, offline and exactly.

    ``FakeChatModel(script=["hello", Turn("world", delay=0.1)])`` answers two
    calls. It streams token by token, binds tools, reports usage and passes
    langchain-tests' standard suites, so LangChain cannot tell it from a real
    provider. Every request is recorded in :attr:`calls`.
    """

    __test__ = False  # not a test class, whatever pytest's naming rules say

    # Unknown settings are an error, not silently dropped: a typo in a test's
    # model setup must not pass unnoticed.
    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, extra="forbid")

    def batch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """``Runnable.batch``, with input *i* given the turns a sequential loop would give it.

        Inputs still run concurrently on LangChain's thread pool; only the
        moments they take queued turns are put in input order.
        """
        return _batch.batch_in_order(self, inputs, config, return_exceptions, kwargs)

    async def abatch(
        self,
        inputs: list[LanguageModelInput],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[AIMessage]:
        """``Runnable.abatch``, in input order like :meth:`batch`, on any event loop."""
        return await _batch.abatch_in_order(self, inputs, config, return_exceptions, kwargs)

    script: SkipValidation[Script] = Field(
        default_factory=Script, description="What the model answers, call by call."
    )
    model_name: str = Field(
        default="fake-chat-model", alias="model", description="Reported model name."
    )
    provider: str = Field(
        default="fakellm",
        description=(
            "Reported as ls_provider and model_provider. 'openai' or 'anthropic' also "
            "makes scripted provider errors instances of that SDK's exceptions."
        ),
    )
    temperature: float | None = Field(
        default=None, description="Recorded; does not change the script."
    )
    max_tokens: int | None = Field(
        default=None, ge=1, description="Cut replies after this many chunks."
    )
    stop: list[str] | None = Field(default=None, description="Default stop sequences.")
    allow_unused: bool = Field(
        default=False, description="If True, turns left unplayed are not an error."
    )
    streaming: bool = Field(default=False, description="If True, invoke streams token by token.")
    stream_usage: bool = Field(default=True, description="Report usage on the last stream chunk.")
    timeout: float | None = Field(default=None, description="Accepted like a provider's; unused.")
    max_retries: int = Field(default=2, ge=0, description="Accepted like a provider's; unused.")
    api_key: SecretStr | None = Field(
        default=None, description="Accepted like a provider's; never sent."
    )

    _player: ScriptPlayer = PrivateAttr()
    _calls: list[Call] = PrivateAttr()
    _lock: threading.Lock = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._setup()

    @property
    def _llm_type(self) -> str:
        return "fakellm-chat"

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Token count of the messages' text and tool calls: the usage ``input_tokens``."""
        return _input_tokens(messages)

    def _default_profile(self) -> dict[str, Any]:
        """The profile of a capable provider model, which LangChain reads to decide.

        ``structured_output`` makes ``create_agent(response_format=...)`` use the
        provider strategy (a ``response_format`` request), as with OpenAI or
        Anthropic; ``max_input_tokens`` is what summarization's fractional triggers
        count against; ``tool_calling``/``tool_choice`` say tools can be bound and
        forced. Pass ``profile={...}`` to the model to change any of it.
        """
        return dict(DEFAULT_PROFILE)

    def _summed_llm_output(self, llm_outputs: list[dict[str, Any] | None]) -> dict[str, Any]:
        """``generate``'s ``llm_output``: token usage summed over its prompts, as
        chat providers report it."""
        usage: dict[str, int] = {}
        model_name = self.model_name
        for i, out in enumerate(o for o in llm_outputs if o):
            for key, count in out.get("token_usage", {}).items():
                usage[key] = usage.get(key, 0) + count
            if i == 0:
                model_name = out.get("model_name", model_name)
        return {"token_usage": usage, "model_name": model_name}

    def configurable_fields(self, **kwargs: Any) -> Any:
        """As LangChain's, but each configured call plays and records as this model.

        LangChain builds a new model for every configured call; fakellm's copy
        would start the script afresh. Here it takes this model's next turn and
        shows up in this model's :attr:`calls`.
        """
        for key in kwargs:
            if key not in type(self).model_fields:
                msg = (
                    f"configurable_fields got {key!r}, which is not a setting of "
                    f"{type(self).__name__}; accepted: {', '.join(type(self).model_fields)}"
                )
                raise ValueError(msg)
        return _compat.SharedConfigurableFields(default=self, fields=kwargs)

    # -- tools and structured output ---------------------------------------------------------

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | bool | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools (converted to OpenAI format, as providers receive them)."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        if tool_choice is not None and tool_choice is not False:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        method: Literal["function_calling", "json_schema", "json_mode"] = "function_calling",
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """Structured output by tool calling (default), JSON schema or JSON mode.

        With ``json_schema`` and ``json_mode`` the scripted turn's text must be the
        JSON object; with ``function_calling`` the turn calls the schema's tool.
        """
        if method == "function_calling":
            return super().with_structured_output(schema, include_raw=include_raw, **kwargs)
        if method not in ("json_schema", "json_mode"):
            msg = (
                f"method={method!r} is not supported; accepted: "
                "'function_calling', 'json_schema', 'json_mode'"
            )
            raise ValueError(msg)
        kwargs.pop("strict", None)
        if kwargs:
            msg = f"with_structured_output got unsupported arguments {sorted(kwargs)}"
            raise ValueError(msg)
        ls_format = {"kwargs": {"method": method}, "schema": schema}
        if method == "json_mode":
            response_format: dict[str, Any] = {"type": "json_object"}
        else:
            json_schema = convert_to_json_schema(schema)
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": json_schema.get("title", "output"), "schema": json_schema},
            }
        llm = self.bind(response_format=response_format, ls_structured_output_format=ls_format)
        parser: Runnable[Any, Any] = RunnableLambda(_raise_if_refused) | (
            PydanticOutputParser(pydantic_object=schema)
            if isinstance(schema, type) and is_basemodel_subclass(schema)
            else JsonOutputParser()
        )
        if not include_raw:
            return llm | parser
        with_parsed = RunnablePassthrough.assign(
            parsed=itemgetter("raw") | parser, parsing_error=lambda _: None
        )
        fallback = RunnablePassthrough.assign(parsed=lambda _: None)
        return RunnableMap(raw=llm) | with_parsed.with_fallbacks(
            [fallback], exception_key="parsing_error"
        )

    # -- where LangChain hides the run from `_stream` ----------------------------------------

    def _around_generate(self, run_manager: CallbackManagerForLLMRun | None) -> _PendingRun:
        return _PendingRun(_run_info(run_manager))

    async def agenerate(
        self,
        messages: list[list[BaseMessage]],
        stop: list[str] | None = None,
        callbacks: Any = None,
        *,
        tags: list[str] | None = None,
        metadata: dict[str, Any] | None = None,
        run_name: str | None = None,
        run_id: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        """Core's ``agenerate``; a run a cancellation leaves open is closed (see _cancel)."""
        with _order.async_call():  # for the race detector on a stock event loop
            if len(messages) != 1:
                return await watched(
                    self,
                    super().agenerate,
                    (messages, stop, callbacks),
                    {
                        "tags": tags,
                        "metadata": metadata,
                        "run_name": run_name,
                        "run_id": run_id,
                        **kwargs,
                    },
                )
            OpenRun.claim(run_id)  # an astream that fell back to ainvoke hands its run over
            run = OpenRun(run_id if run_id is not None else _compat.core_run_id())
            token = run.park()
            try:
                return await super().agenerate(
                    messages,
                    stop,
                    callbacks,
                    tags=tags,
                    metadata=metadata,
                    run_name=run_name,
                    run_id=run.run_id,
                    **kwargs,
                )
            except asyncio.CancelledError as exc:
                await run.close(self, callbacks, tags, metadata, exc)
                raise
            finally:
                run.unpark(token)

    def _around_agenerate(self, run_manager: AsyncCallbackManagerForLLMRun | None) -> _APendingRun:
        adopt(run_manager)
        return _APendingRun(_run_info(run_manager), run_manager)

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        config, info = config_run(self, config)
        yield from stream_in_run(info, super().stream(input, config, stop=stop, **kwargs))

    # -- the native paths -----------------------------------------------------------------------

    def _open(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: Any,
        kwargs: dict[str, Any],
        *,
        streaming: bool,
    ) -> tuple[Call, Turn | PendingTurn, Callable[[Turn], _Plan]]:
        """Record the call and take its answer; ``finish`` plans the answer once known."""
        pending = _pending_run.get()
        if pending is not None and (
            run_manager is None
            or pending.run_id is run_manager.run_id  # the same run's own id: no UUID.__eq__
            or pending.run_id == run_manager.run_id
        ):
            info = pending  # _around_generate's (or stream's) reading of this same run
        else:
            info = _run_info(run_manager) or _RunInfo(None, (), {})
        if stop is None:
            stop = self.stop
        if stop is not None:
            stop = _stop_list(stop)
        override = kwargs.get("model")
        draft = chat_call(
            messages=tuple(messages),
            tools=tuple(kwargs.get("tools") or ()),
            tool_choice=kwargs.get("tool_choice"),
            stop=tuple(stop) if stop else None,
            model=override,
            kwargs=_split_kwargs(kwargs),
            streaming=streaming,
            run_id=info.run_id,
            tags=info.tags,
            metadata=info.metadata,
        )
        call, turn = self._take(draft)
        plan = self._plan
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        model_name = override or self.model_name
        input_tokens = self.get_num_tokens_from_messages(messages)

        def finish(turn: Turn) -> _Plan:
            return plan(call, turn, stop, max_tokens, model_name, input_tokens)

        return call, turn, finish

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call, turn, finish = self._open(messages, stop, run_manager, kwargs, streaming=False)
        plan = finish(turn if type(turn) is Turn else self._resolved(call, turn))
        # _settle(_whole(plan, self._error, self._result)) in one frame: the reply
        # (or the error) is built, then the turn's delays pass, as there.
        error_at = plan.error_at
        if error_at is None:
            wait = plan.whole_wait
            if wait is None:
                wait = plan.wait_before(plan.count)
            result = self._result(plan)
            if wait:
                _clock.sleep(wait)
            return result
        wait, err = plan.wait_before(error_at), self._error(plan)
        if wait:
            _clock.sleep(wait)
        raise err

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        plan = await self._abegin(messages, stop, run_manager, kwargs, streaming=False)
        wait, item = _whole(plan, self._error, self._result)  # _asettle's work, one frame less
        if wait:
            await _clock.asleep(wait)
        if isinstance(item, BaseException):
            raise item
        return item

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        plan = self._begin(messages, stop, run_manager, kwargs, streaming=True)
        yield from _drive(self._chunk_steps(plan, kwargs))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        stream_began()  # core reports the run from here (see _cancel.OpenRun)
        plan = await self._abegin(messages, stop, run_manager, kwargs, streaming=True)
        async for chunk in _adrive(self._chunk_steps(plan, kwargs)):
            yield chunk

    def _chunk_steps(
        self, plan: _Plan, kwargs: Mapping[str, Any]
    ) -> Iterator[_Step[ChatGenerationChunk]]:
        # Called where the stream's first step is taken (see _stream): the chunks
        # are built then, as they were when this was a generator itself.
        chunks = self._chunks(plan, stream_usage=kwargs.get("stream_usage", self.stream_usage))
        return _steps(plan, chunks, self._error)

    # -- building LangChain objects ----------------------------------------------------------------

    def _final_metadata(self, plan: _Plan) -> dict[str, Any]:
        return {
            "model_name": plan.model_name,
            "model_provider": self.provider,
            "finish_reason": plan.finish_reason,
            **plan.turn.response_metadata,
        }

    def _piece_chunk(self, plan: _Plan, p: Piece) -> ChatGenerationChunk:
        """A scripted-block or tool-call chunk, validated (see ``_chunks``)."""
        turn = plan.turn
        content: str | list[str | dict[str, Any]]
        tool_call_chunks: list[Any] = []
        if p.kind == "block":
            content = [{**(p.block or {}), "index": _block_index(turn, p)}]
        else:
            tc = turn.tool_calls[p.index]
            content = [] if turn.reasoning is not None or turn.content is not None else ""
            tool_call_chunks = [
                {
                    "type": "tool_call_chunk",
                    "name": tc.name if p.first else None,
                    "args": p.text,
                    "id": plan.tool_ids[p.index] if p.first else None,
                    "index": p.index,
                }
            ]
        msg = AIMessageChunk(
            content=content, tool_call_chunks=tool_call_chunks, id=plan.message_id, name=turn.name
        )
        return ChatGenerationChunk(message=msg)

    def _chunks(self, plan: _Plan, *, stream_usage: bool) -> list[ChatGenerationChunk]:
        """Fresh chunks for one call (core mutates them), the last carrying the totals.

        Text and reasoning chunks are copies of a validated prototype; tool-call
        and scripted-block chunks are validated one by one (their fields are
        derived by langchain-core's validators: parsed arguments, block shapes).
        """
        turn = plan.turn
        if turn.stream is not None:
            return _stream_chunks(plan)
        blocks = turn.reasoning is not None or turn.content is not None
        message_id = plan.message_id
        name = turn.name
        out: list[ChatGenerationChunk] = []
        built = plan.cut if plan.cut is not None else turn.__dict__.get("pieces")
        if built is None and not blocks and not turn.tool_calls:
            # A whole plain-text turn played for the first time: its pieces are its
            # text chunks, so they need not be built (a model is usually played once).
            texts = split_text(turn.text, turn.chunks) if turn.text else []
            out = [_copied_chunk(t, t, message_id, name) for t in texts]
        else:
            for p in plan.pieces:
                kind = p.kind
                if kind == "text":
                    if blocks:
                        content: Any = [
                            {"type": "text", "text": p.text, "index": _text_index(turn)}
                        ]
                    else:
                        content = p.text
                    out.append(_copied_chunk(content, p.text, message_id, name))
                elif kind == "reasoning":
                    content = [{"type": "reasoning", "reasoning": p.text, "index": 0}]
                    out.append(_copied_chunk(content, "", message_id, name))
                else:
                    out.append(self._piece_chunk(plan, p))
        if not out:
            out.append(_copied_chunk([] if blocks else "", "", message_id, name))
        if turn.additional_kwargs:
            # Core merges additional_kwargs across chunks: they go on the first only.
            out[0].message.additional_kwargs = dict(turn.additional_kwargs)
        last = out[-1].message
        last.chunk_position = "last"  # type: ignore[attr-defined]
        last.response_metadata = self._final_metadata(plan)
        if stream_usage:
            last.usage_metadata = plan.usage  # type: ignore[attr-defined]
        return out

    def _result(self, plan: _Plan) -> ChatResult:
        turn = plan.turn
        if turn.stream is not None:
            return _stream_result(plan)
        usage = plan.usage
        text = turn.text or ""
        if (
            plan.cut is None
            and turn.reasoning is None
            and turn.content is None
            and not turn.tool_calls
            and type(text) is str  # a copy's unvalidated str subclass: validated below
            and _plain_usage(usage)  # three ints (a subclass may count input otherwise)
        ):
            # The common reply, whole plain text: _copyable holds (see _copied_result).
            return _built_result(
                text,
                plan.message_id,
                turn.name,
                dict(turn.additional_kwargs),
                usage,
                self._final_metadata(plan),
                _llm_output(usage, plan.model_name),
            )
        content: str | list[str | dict[str, Any]]
        if plan.cut is None and turn.reasoning is None and turn.content is None:
            # A whole plain-text turn (the common reply): its text, and its tool calls.
            content = turn.text or ""
        elif turn.reasoning is not None or turn.content is not None:
            reasoning, blocks, text = _joined(plan)
            content = []
            if reasoning:
                content.append({"type": "reasoning", "reasoning": reasoning, "index": 0})
            content.extend(blocks)
            if text:
                content.append({"type": "text", "text": text, "index": _text_index(turn)})
        else:
            content = _joined(plan)[2]
        tool_calls, invalid_tool_calls = _tool_calls(plan) if turn.tool_calls else ([], [])
        reply = _Reply(
            content,
            plan.message_id,
            turn.name,
            dict(turn.additional_kwargs),
            tool_calls,
            invalid_tool_calls,
            dict(usage),
            self._final_metadata(plan),
            _llm_output(usage, plan.model_name),
        )
        return _copied_result(reply) if _copyable(reply) else _validated_result(reply)


_open_streams: set[Any] = set()


# -- a Turn's `stream`: chunks played exactly as written (recorded) ----------------------------


def _stream_plan(turn: Turn, model_name: str, message_id: str) -> _Plan:
    """A recorded stream is the provider's answer as given: no tool, tool-choice, stop
    or max_tokens check applies (the provider applied them when it answered)."""
    assert turn.stream is not None
    usage: Any = None
    for chunk in turn.stream:
        if chunk.usage_metadata is not None:
            usage = add_usage(usage, chunk.usage_metadata)  # type: ignore[arg-type]
    finish = next(
        (c.response_metadata["finish_reason"] for c in reversed(turn.stream)
         if isinstance(c.response_metadata.get("finish_reason"), str)),
        "stop",
    )  # fmt: skip
    count = turn.piece_count
    return _Plan(
        turn=turn,
        cut=None,
        count=count,
        given_delays=turn.delays(count),
        error_at=turn.error_position,
        finish_reason=finish,
        usage=usage,
        model_name=model_name,
        tool_ids=[],
        message_id=message_id,
    )


def _stream_chunks(plan: _Plan) -> list[ChatGenerationChunk]:
    """Fresh chunks (core mutates them) built from the turn's ``stream`` as written."""
    turn = plan.turn
    assert turn.stream is not None
    out = []
    for c in turn.stream:
        content = c.content if isinstance(c.content, str) else copy.deepcopy(list(c.content))
        message = AIMessageChunk(
            content=content,
            additional_kwargs=copy.deepcopy(c.additional_kwargs),
            response_metadata=copy.deepcopy(c.response_metadata),
            tool_call_chunks=[
                tool_call_chunk(**{k: t.get(k) for k in ("name", "args", "id", "index")})
                for t in c.tool_call_chunks
            ],
            usage_metadata=copy.deepcopy(c.usage_metadata),  # type: ignore[arg-type]
            id=c.id if "id" in c.model_fields_set else plan.message_id,
            name=turn.name,
            chunk_position=c.chunk_position,
        )
        out.append(ChatGenerationChunk(message=message))
    return out


def _stream_result(plan: _Plan) -> ChatResult:
    """The non-streamed answer: the stream's chunks merged, as core merges a stream.

    No ``llm_output``: core would merge it into the message's response_metadata,
    which the chunks already hold as recorded.
    """
    return generate_from_stream(iter(_stream_chunks(plan)))


async def _aclose(stream: Any) -> None:
    # A stream still running in another task (a chain's step that a cancellation
    # interrupted) cannot be closed from here: that task ends it. Closing anyway
    # only makes asyncio log "aclose(): asynchronous generator is already running".
    if not stream.ag_running:
        await stream.aclose()


def _joined(plan: _Plan) -> tuple[str, list[dict[str, Any]], str]:
    """The reasoning, content blocks and text a stream of ``plan``'s chunks adds up to."""
    turn = plan.turn
    if plan.cut is None:
        # A whole turn's pieces join back to its own fields: no need to build them.
        text = (turn.text or "") if turn.content is None else ""
        shift = 1 if turn.reasoning else 0
        whole = [{**b, "index": i + shift} for i, b in enumerate(turn.content or ())]
        return turn.reasoning or "", whole, text
    pieces = plan.cut
    return (
        "".join(p.text for p in pieces if p.kind == "reasoning"),
        [{**(p.block or {}), "index": _block_index(turn, p)} for p in pieces if p.kind == "block"],
        "".join(p.text for p in pieces if p.kind == "text"),
    )


def _tool_calls(plan: _Plan) -> tuple[list[Any], list[Any]]:
    """The tool calls (and invalid ones) a stream of ``plan``'s chunks adds up to.

    A call whose argument fragments were all emitted is the scripted call; one cut
    short (by ``max_tokens``) is parsed from its fragments by langchain-core's own
    chunk parser, exactly as a streamed reply is, so invoke and stream agree.
    """
    fragments: dict[int, list[str]] = {}
    if plan.cut is None:
        fragments = {i: [tc.args_json] for i, tc in enumerate(plan.turn.tool_calls)}
    for p in plan.cut or ():
        if p.kind == "tool":
            fragments.setdefault(p.index, []).append(p.text)
    calls: list[Any] = []
    invalid: list[Any] = []
    for i, parts in fragments.items():
        tc = plan.turn.tool_calls[i]
        raw = "".join(parts)
        if tc.raw_args is None and raw == tc.args_json:
            calls.append(
                {
                    "type": "tool_call",
                    "name": tc.name,
                    "args": dict(tc.args),
                    "id": plan.tool_ids[i],
                }
            )
            continue
        chunk = AIMessageChunk(
            content="",
            tool_call_chunks=[
                {
                    "type": "tool_call_chunk",
                    "name": tc.name,
                    "args": raw,
                    "id": plan.tool_ids[i],
                    "index": i,
                }
            ],
        )
        calls.extend(chunk.tool_calls)
        invalid.extend(chunk.invalid_tool_calls)
    return calls, invalid


def _text_index(turn: Turn) -> int:
    return 1 if turn.reasoning else 0


def _block_index(turn: Turn, piece: Piece) -> int:
    return piece.index + (1 if turn.reasoning else 0)


@functools.cache
def _prototype() -> tuple[ChatGenerationChunk, tuple[str, ...]]:
    """One validated text chunk, and the names of its message's container fields.

    Every copied chunk starts from its fields and fields-set.
    """
    message = AIMessageChunk(content="", tool_call_chunks=[], id="prototype", name=None)
    containers = tuple(k for k, v in message.__dict__.items() if type(v) in (list, dict))
    return ChatGenerationChunk(message=message), containers


def _copied_chunk(
    content: Any, text: str, message_id: str, name: str | None
) -> ChatGenerationChunk:
    """A chunk equal to ``AIMessageChunk(content=..., tool_call_chunks=[], id=..., name=...)``.

    Validation of such a chunk only fills ``tool_calls``/``invalid_tool_calls`` with
    empty lists and the generation's text with the message's text, so a copy of the
    prototype with these fields set is the same object for a fraction of the cost.
    Every container is the copy's own: an app mutating one call's chunk cannot
    reach another call's. tests/integration/test_chunk_isolation.py compares each
    streamed chunk with a validated build field for field.
    """
    proto, containers = _prototype()
    message = _compat.shallow_copy(proto.message)
    fields = message.__dict__
    for key in containers:
        fields[key] = fields[key].copy()
    fields["content"] = content
    fields["id"] = message_id
    fields["name"] = name
    chunk = _compat.shallow_copy(proto)
    chunk.__dict__["message"] = message
    chunk.__dict__["text"] = text
    return chunk


class _Reply(NamedTuple):
    """What a non-streamed reply is made of: ``AIMessage``'s arguments and ``llm_output``."""

    content: str | list[str | dict[str, Any]]
    id: str
    name: str | None
    additional_kwargs: dict[str, Any]
    tool_calls: list[Any]
    invalid_tool_calls: list[Any]
    usage_metadata: dict[str, Any]
    response_metadata: dict[str, Any]
    llm_output: dict[str, Any]


def _validated_result(reply: _Reply) -> ChatResult:
    message = AIMessage(
        content=reply.content,
        id=reply.id,
        name=reply.name,
        additional_kwargs=reply.additional_kwargs,
        tool_calls=reply.tool_calls,
        invalid_tool_calls=reply.invalid_tool_calls,
        usage_metadata=reply.usage_metadata,
        response_metadata=reply.response_metadata,
    )
    return ChatResult(generations=[ChatGeneration(message=message)], llm_output=reply.llm_output)


_USAGE_KEYS = frozenset({"input_tokens", "output_tokens", "total_tokens"})


def _llm_output(usage: Mapping[str, Any], model_name: str) -> dict[str, Any]:
    """A reply's ``llm_output``: its token usage as chat providers report it."""
    return {
        "token_usage": {
            "prompt_tokens": usage["input_tokens"],
            "completion_tokens": usage["output_tokens"],
            "total_tokens": usage["total_tokens"],
        },
        "model_name": model_name,
    }


def _copyable(reply: _Reply) -> bool:
    """A plain-text reply without tool calls or usage details: validating it only
    copies its containers and sets the generation's text (see ``_copied_result``)."""
    return (
        type(reply.content) is str
        and not reply.tool_calls
        and not reply.invalid_tool_calls
        and _plain_usage(reply.usage_metadata)
    )


def _plain_usage(usage: Mapping[str, Any]) -> bool:
    """Usage of exactly the three counts, each an int: validating it only copies it."""
    return (
        len(usage) == 3  # with the three below: exactly _USAGE_KEYS
        and type(usage.get("input_tokens")) is int
        and type(usage.get("output_tokens")) is int
        and type(usage.get("total_tokens")) is int
    )


class _ResultPrototype(NamedTuple):
    """One validated plain-text reply, taken apart for ``_copied_result``."""

    result: ChatResult
    generation: ChatGeneration
    message: AIMessage
    fresh: tuple[str, ...]
    """The message's container fields no reply field replaces: copied per reply."""


@functools.cache
def _result_prototype() -> _ResultPrototype:
    """One validated plain-text reply, and what ``_copied_result`` needs of it."""
    result = _validated_result(
        _Reply("", "prototype", None, {}, [], [], dict.fromkeys(_USAGE_KEYS, 0), {}, {})
    )
    generation = result.generations[0]
    message = generation.message
    assert isinstance(message, AIMessage)
    containers = (k for k, v in message.__dict__.items() if type(v) in (list, dict))
    fresh = tuple(k for k in containers if k not in _REPLY_FIELDS)
    return _ResultPrototype(result, generation, message, fresh)


# The message fields ``_copied_result`` takes from the reply (the reply's own values).
_REPLY_FIELDS = frozenset(
    {"content", "id", "name", "additional_kwargs", "usage_metadata", "response_metadata"}
)


def _copied_result(reply: _Reply) -> ChatResult:
    """The ChatResult ``_validated_result(reply)`` builds, for a copyable reply, by copying.

    As with ``_copied_chunk``: validation of such a reply copies its containers
    (each of ``reply``'s is fresh for this call) and sets the generation's text
    to the message's, so the prototype's values with these fields set are the
    same object for a fraction of the cost. tests/integration/test_invoke_message.py
    compares the two field for field.
    """
    assert type(reply.content) is str  # as _copyable says
    return _built_result(
        reply.content,
        reply.id,
        reply.name,
        reply.additional_kwargs,
        reply.usage_metadata,
        reply.response_metadata,
        reply.llm_output,
    )


def _built_result(
    content: str,
    message_id: str,
    name: str | None,
    additional_kwargs: dict[str, Any],
    usage: Any,
    response_metadata: dict[str, Any],
    llm_output: dict[str, Any],
) -> ChatResult:
    """``_copied_result``'s work, from the reply's fields (every container fresh for
    this call; the tool-call lists are the prototype's, copied)."""
    proto = _result_prototype()
    message_proto = proto.message
    fields = message_proto.__dict__.copy()
    for key in proto.fresh:
        fields[key] = fields[key].copy()
    fields["content"] = content
    fields["id"] = message_id
    fields["name"] = name
    fields["additional_kwargs"] = additional_kwargs
    fields["usage_metadata"] = usage
    fields["response_metadata"] = response_metadata
    message = _compat.shallow_copy(message_proto, fields)
    generation_proto = proto.generation
    fields = generation_proto.__dict__.copy()
    fields["message"] = message
    fields["text"] = TextAccessor(content)  # message.text of a str content, one frame less
    generation = _compat.shallow_copy(generation_proto, fields)
    fields = proto.result.__dict__.copy()
    fields["generations"] = [generation]
    fields["llm_output"] = llm_output
    return _compat.shallow_copy(proto.result, fields)


class FakeLLM(_StreamsInRun[str], _Scripted, _compat.PerPromptRunManagers, BaseLLM):
    """A completion-style LLM (``BaseLLM``) that plays a Script, for code like
    ``await llm.agenerate(["..."])``. One turn answers one prompt.

    Usage is reported the way completion APIs do, in ``llm_output["token_usage"]``
    (so ``get_openai_callback`` counts it), and per generation in
    ``generation_info``.
    """

    __test__ = False

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, extra="forbid")

    script: SkipValidation[Script] = Field(
        default_factory=Script, description="What the model answers, call by call."
    )
    model_name: str = Field(default="fake-llm", alias="model", description="Reported model name.")
    provider: str = Field(
        default="fakellm",
        description=(
            "Reported as ls_provider. 'openai' or 'anthropic' also makes scripted "
            "provider errors instances of that SDK's exceptions."
        ),
    )
    temperature: float | None = Field(
        default=None, description="Recorded; does not change the script."
    )
    max_tokens: int | None = Field(
        default=None, ge=1, description="Cut replies after this many chunks."
    )
    stop: list[str] | None = Field(default=None, description="Default stop sequences.")
    allow_unused: bool = Field(
        default=False, description="If True, turns left unplayed are not an error."
    )
    streaming: bool = Field(
        default=False, description="If True, generate streams tokens to callbacks."
    )
    timeout: float | None = Field(default=None, description="Accepted like a provider's; unused.")
    max_retries: int = Field(default=2, ge=0, description="Accepted like a provider's; unused.")
    api_key: SecretStr | None = Field(
        default=None, description="Accepted like a provider's; never sent."
    )

    _player: ScriptPlayer = PrivateAttr()
    _calls: list[Call] = PrivateAttr()
    _lock: threading.Lock = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._setup()

    @property
    def _llm_type(self) -> str:
        return "fakellm-llm"

    async def agenerate(self, *args: Any, **kwargs: Any) -> LLMResult:
        """Core's ``agenerate``; a run a cancellation leaves open is closed (see _cancel)."""
        return await watched(self, super().agenerate, args, kwargs)

    def _open(
        self,
        prompt: str,
        stop: list[str] | None,
        run_manager: Any,
        kwargs: dict[str, Any],
        *,
        streaming: bool,
    ) -> tuple[Call, Turn | PendingTurn, Callable[[Turn], _Plan]]:
        """Record the call and take its answer; ``finish`` plans the answer once known."""
        info = _run_info(run_manager) or _RunInfo(None, (), {})
        stop = _stop_list(stop if stop is not None else self.stop)
        override = kwargs.get("model")
        draft = new_call(
            index=-1,
            prompt=prompt,
            stop=tuple(stop) if stop else None,
            model=override,
            kwargs=_split_kwargs(kwargs),
            streaming=streaming,
            run_id=info.run_id,
            tags=info.tags,
            metadata=info.metadata,
        )
        call, turn = self._take(draft)

        def finish(turn: Turn) -> _Plan:
            if turn.tool_calls or turn.content is not None or turn.reasoning:
                msg = (
                    f"{self._label()} call #{call.index}: a completion LLM can only "
                    "return text; the turn has tool calls, content blocks or reasoning. "
                    "Use FakeChatModel for those."
                )
                raise UnknownToolError(msg) if turn.tool_calls else TypeError(msg)
            return self._plan(
                call,
                turn,
                stop=stop,
                max_tokens=kwargs.get("max_tokens", self.max_tokens),
                model_name=override or self.model_name,
                input_tokens=_tokens.count_tokens(prompt),
            )

        return call, turn, finish

    def _generation(self, plan: _Plan) -> Generation:
        return Generation(
            text=_joined(plan)[2],
            generation_info={"finish_reason": plan.finish_reason, **plan.turn.response_metadata},
        )

    def _llm_output(self, plans: list[_Plan]) -> dict[str, Any]:
        return {
            "token_usage": {
                "prompt_tokens": sum(p.usage["input_tokens"] for p in plans),
                "completion_tokens": sum(p.usage["output_tokens"] for p in plans),
                "total_tokens": sum(p.usage["total_tokens"] for p in plans),
            },
            "model_name": plans[0].model_name if plans else self.model_name,
        }

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        plans = []
        generations = []
        for prompt, manager in zip(prompts, _prompt_managers(prompts, run_manager), strict=True):
            plan = self._begin(prompt, stop, manager, kwargs, streaming=self.streaming)
            plans.append(plan)
            if self.streaming:
                on_token = None if manager is None else _token_callback(manager)
                for _ in _drive(self._llm_chunk_steps(plan), on_token):
                    pass
                generations.append([self._generation(plan)])
            else:
                generations.append([_settle(_whole(plan, self._error, self._generation))])
        return LLMResult(generations=generations, llm_output=self._llm_output(plans))

    async def _agenerate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> LLMResult:
        plans = []
        generations = []
        for prompt, manager in zip(prompts, _prompt_managers(prompts, run_manager), strict=True):
            plan = await self._abegin(prompt, stop, manager, kwargs, streaming=self.streaming)
            plans.append(plan)
            if self.streaming:
                on_token = None if manager is None else _atoken_callback(manager)
                async for _ in _adrive(self._llm_chunk_steps(plan), on_token):
                    pass
                generations.append([self._generation(plan)])
            else:
                generations.append([await _asettle(_whole(plan, self._error, self._generation))])
        return LLMResult(generations=generations, llm_output=self._llm_output(plans))

    def _llm_chunk_steps(self, plan: _Plan) -> Iterator[_Step[GenerationChunk]]:
        chunks = [GenerationChunk(text=p.text) for p in plan.pieces] or [GenerationChunk(text="")]
        last = chunks[-1]
        last.generation_info = {"finish_reason": plan.finish_reason, **plan.turn.response_metadata}
        yield from _steps(plan, chunks, self._error)

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        plan = self._begin(prompt, stop, run_manager, kwargs, streaming=True)
        # BaseLLM.stream() fires no token callbacks of its own (unlike chat models).
        on_token = None if run_manager is None else _token_callback(run_manager)
        yield from _drive(self._llm_chunk_steps(plan), on_token)

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        stream_began()  # core reports the run from here (see _cancel.OpenRun)
        plan = await self._abegin(prompt, stop, run_manager, kwargs, streaming=True)
        on_token = None if run_manager is None else _atoken_callback(run_manager)
        async for chunk in _adrive(self._llm_chunk_steps(plan), on_token):
            yield chunk
