"""FakeChatModel and FakeLLM: real LangChain models that play a Script.

This is the only module that subclasses LangChain models. Both models share
:class:`_Scripted` (script playing, call recording, token counting); each
implements LangChain's native sync and async paths, so langchain-core never
falls back to its thread-pool executor and concurrent streams interleave only
where the script's delays say.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import Any, Literal, TypeVar

from langchain_core.callbacks import (
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, BaseLLM, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.output_parsers import JsonOutputParser, PydanticOutputParser
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    ChatResult,
    Generation,
    GenerationChunk,
    LLMResult,
)
from langchain_core.runnables import Runnable, RunnableConfig, RunnableMap, RunnablePassthrough
from langchain_core.runnables.config import ensure_config
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_json_schema, convert_to_openai_tool
from langchain_core.utils.pydantic import is_basemodel_subclass
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_validator

from fakellm import _clock, _tokens
from fakellm._cancel import RunWatch, watched
from fakellm._script import Call, Exhausted, Piece, Script, ScriptPlayer, Turn, _clip, as_script
from fakellm.errors import UnexpectedCall, UnknownToolError, UnusedTurns

__all__ = ["FakeChatModel", "FakeLLM"]

_M = TypeVar("_M", bound=BaseModel)

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


@dataclass(frozen=True, slots=True)
class _RunInfo:
    run_id: uuid.UUID | None
    tags: tuple[str, ...]
    metadata: Mapping[str, Any]


# LangChain hands `_stream` no run manager on its `stream()` and invoke-streaming
# paths; the overrides below park the run's identity here for `_stream` to read.
_pending_run: ContextVar[_RunInfo | None] = ContextVar("fakellm_pending_run", default=None)


def _run_info(manager: Any) -> _RunInfo | None:
    if manager is None:
        return None
    meta = {k: v for k, v in (manager.metadata or {}).items() if not k.startswith("ls_")}
    return _RunInfo(getattr(manager, "run_id", None), tuple(manager.tags or ()), meta)


@dataclass(slots=True)
class _Plan:
    """What one call will emit: pieces, waits, and where (if anywhere) it fails."""

    turn: Turn
    pieces: tuple[Piece, ...]
    delays: list[float]
    error_at: int | None
    finish_reason: str
    usage: UsageMetadata
    model_name: str
    tool_ids: list[str]

    def wait_before(self, k: int) -> float:
        """Total delay spent before chunk ``k`` (or before failing at ``k``)."""
        if k < len(self.delays):
            return sum(self.delays[: k + 1])
        return sum(self.delays)


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

    def _setup(self) -> None:
        self._player = ScriptPlayer(self.script)
        self._calls = []
        self._lock = threading.Lock()

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
        """Requests the script did not cover (each raised ``UnexpectedCall``)."""
        return [c for c in self.calls if c.unexpected is not None]

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
        # The per-call `model=` override must show in traces (FACTS.md section 1).
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

    def _take(self, draft: Call) -> tuple[Call, Turn]:
        """Record ``draft`` and return it (indexed) with the turn that answers it.

        Raises UnexpectedCall (after recording the call) when the script has no answer.
        """
        with self._lock:
            call = replace(draft, index=len(self._calls))
            try:
                turn = self._player.take(call)
            except Exhausted:
                err = UnexpectedCall(self._unexpected_message(call))
                self._calls.append(replace(call, unexpected=err))
                raise err from None
            except BaseException:
                self._calls.append(call)
                raise
            call = replace(call, turn=turn)
            self._calls.append(call)
            return call, turn

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
        *,
        stop: Sequence[str] | None,
        max_tokens: int | None,
        model_name: str,
        input_tokens: int,
    ) -> _Plan:
        if turn.tool_calls:
            bound = call.tool_names
            for tc in turn.tool_calls:
                if tc.name not in bound:
                    offered = ", ".join(repr(n) for n in bound) if bound else "none"
                    msg = (
                        f"{self._label()} call #{call.index}: the script calls tool {tc.name!r}, "
                        f"which is not bound (bound tools: {offered}). Bind it with "
                        "model.bind_tools([...]) or fix the tool name in the script."
                    )
                    raise UnknownToolError(msg)
        pieces = turn.pieces
        finish = turn.finish_reason or ("tool_calls" if turn.tool_calls else "stop")
        if stop:
            pieces, stopped = _truncate_at_stop(pieces, stop)
            if stopped:
                finish = "stop"
        if max_tokens is not None and len(pieces) > max_tokens:
            pieces = pieces[:max_tokens]
            finish = "length"
        error_at = turn.error_position
        if error_at is not None:
            error_at = min(error_at, len(pieces))
        delays = turn.delays(len(turn.pieces))[: max(len(pieces), 1)]
        if not pieces and not delays:
            delays = [turn.first_token_delay]
        return _Plan(
            turn=turn,
            pieces=pieces,
            delays=delays,
            error_at=error_at,
            finish_reason=finish,
            usage=_usage(turn, input_tokens, len(pieces)),
            model_name=model_name,
            tool_ids=[tc.id or f"call_{call.index}_{i}" for i, tc in enumerate(turn.tool_calls)],
        )


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


def _usage(turn: Turn, input_tokens: int, n_chunks: int) -> UsageMetadata:
    spec = turn.usage
    i = spec.input_tokens if spec and spec.input_tokens is not None else input_tokens
    o = spec.output_tokens if spec and spec.output_tokens is not None else n_chunks
    t = spec.total_tokens if spec and spec.total_tokens is not None else i + o
    usage = UsageMetadata(input_tokens=i, output_tokens=o, total_tokens=t)
    if spec and spec.input_token_details:
        usage["input_token_details"] = dict(spec.input_token_details)  # type: ignore[typeddict-item]
    if spec and spec.output_token_details:
        usage["output_token_details"] = dict(spec.output_token_details)  # type: ignore[typeddict-item]
    return usage


def _message_texts(messages: Sequence[BaseMessage]) -> Iterator[str]:
    for m in messages:
        yield m.text
        for tc in getattr(m, "tool_calls", None) or ():
            yield tc["name"]
            yield str(tc["args"])


def _split_kwargs(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k not in _CALL_FIELDS}


class FakeChatModel(_Scripted, BaseChatModel):
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

    script: Script = Field(
        default_factory=Script, description="What the model answers, call by call."
    )
    model_name: str = Field(
        default="fake-chat-model", alias="model", description="Reported model name."
    )
    provider: str = Field(
        default="fakellm", description="Reported as ls_provider and model_provider."
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
    _scripted_turns: frozenset[int] = PrivateAttr()
    _template_cache: dict[int, tuple[Turn, list[ChatGenerationChunk | None]]] = PrivateAttr()

    @field_validator("script", mode="before")
    @classmethod
    def _as_script(cls, value: Any) -> Script:
        return as_script(value)

    def model_post_init(self, context: Any, /) -> None:
        self._setup()
        fixed = [*self.script.turns, *(r.respond for r in self.script.rules if r.respond)]
        self._scripted_turns = frozenset(id(t) for t in fixed)
        self._template_cache = {}

    @property
    def _llm_type(self) -> str:
        return "fakellm-chat"

    def get_num_tokens_from_messages(
        self, messages: list[BaseMessage], tools: Sequence[Any] | None = None
    ) -> int:
        """Token count of the messages' text and tool calls: the usage ``input_tokens``."""
        return _tokens.count_tokens_in(_message_texts(messages))

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
        parser: Runnable[Any, Any] = (
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

    def _generate_with_cache(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        token = _pending_run.set(_run_info(run_manager))
        try:
            return super()._generate_with_cache(messages, stop, run_manager, **kwargs)
        finally:
            _pending_run.reset(token)

    async def agenerate(self, *args: Any, **kwargs: Any) -> LLMResult:
        """Core's ``agenerate``; a run a cancellation leaves open is closed (see _cancel)."""
        return await watched(self, super().agenerate, args, kwargs)

    async def _agenerate_with_cache(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        token = _pending_run.set(_run_info(run_manager))
        try:
            return await super()._agenerate_with_cache(messages, stop, run_manager, **kwargs)
        except asyncio.CancelledError as exc:
            # Core's agenerate reports errors after its gather returns, which a
            # cancelled caller (wait_for, asyncio.timeout) never reaches: the run
            # would stay open forever. Report it here, as core's astream does; but
            # only a cancellation from outside: a CancelledError the script raises
            # returns through that gather and core reports it itself.
            task = asyncio.current_task()
            if run_manager is not None and task is not None and task.cancelling():
                await run_manager.on_llm_error(exc, response=LLMResult(generations=[]))
            raise
        finally:
            _pending_run.reset(token)

    def _config_run(self, config: RunnableConfig | None) -> tuple[RunnableConfig, _RunInfo]:
        """Give the run an id up front and work out its tags and metadata as core will."""
        config = ensure_config(config)
        if config.get("run_id") is None:
            config["run_id"] = uuid.uuid4()
        manager = CallbackManager.configure(
            config.get("callbacks"),
            None,
            False,
            config.get("tags"),
            self.tags,
            config.get("metadata"),
            self.metadata,
        )
        info = _RunInfo(
            config["run_id"],
            tuple(manager.tags),
            {k: v for k, v in manager.metadata.items() if not k.startswith("ls_")},
        )
        return config, info

    def stream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> Iterator[AIMessageChunk]:
        config, info = self._config_run(config)
        inner = super().stream(input, config, stop=stop, **kwargs)
        token = _pending_run.set(info)
        try:
            first = next(inner, None)
        finally:
            _pending_run.reset(token)
        if first is None:
            return
        try:
            yield first
            yield from inner
        finally:
            inner.close()  # type: ignore[attr-defined]  # as in astream: ends the run now

    async def astream(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[AIMessageChunk]:
        config, info = self._config_run(config)
        watch = RunWatch()
        callbacks = config.get("callbacks")
        config["callbacks"] = watch.with_me(callbacks)
        inner = super().astream(input, config, stop=stop, **kwargs)
        # This generator alone closes core's stream (in its finally). The event
        # loop must not close it too, at shutdown or when both are garbage at
        # once, or one of the two aclose() calls finds it running and asyncio logs
        # "aclose(): asynchronous generator is already running". So core's stream
        # is kept off the loop's list (no firstiter hook) and alive until closed.
        _open_streams.add(inner)
        try:
            token = _pending_run.set(info)
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
                _pending_run.reset(token)
            yield first
            async for chunk in inner:
                yield chunk
        except asyncio.CancelledError as exc:
            await _aclose(inner)
            # A cancellation while core dispatches the start event leaves it no run
            # manager to report with; close the run here (see _cancel).
            await watch.close_open(self, callbacks, config.get("tags"), config.get("metadata"), exc)
            raise
        finally:
            # A consumer that stops early closes this generator (aclosing and
            # cancellation at once; after a break, the loop's finalizer hook soon
            # after): close core's stream with it, so its run ends (recorded as
            # GeneratorExit) then, not whenever the garbage collector gets to it.
            try:
                await _aclose(inner)
            finally:
                _open_streams.discard(inner)

    # -- the native paths -----------------------------------------------------------------------

    def _begin(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: Any,
        kwargs: dict[str, Any],
        *,
        streaming: bool,
    ) -> _Plan:
        info = _run_info(run_manager) or _pending_run.get() or _RunInfo(None, (), {})
        stop = stop if stop is not None else self.stop
        override = kwargs.get("model")
        draft = Call(
            index=-1,
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
        return self._plan(
            call,
            turn,
            stop=stop,
            max_tokens=kwargs.get("max_tokens", self.max_tokens),
            model_name=override or self.model_name,
            input_tokens=self.get_num_tokens_from_messages(messages),
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        plan = self._begin(messages, stop, run_manager, kwargs, streaming=False)
        if plan.error_at is not None:
            _clock.sleep(plan.wait_before(plan.error_at))
            raise plan.turn.make_error()  # type: ignore[misc]
        _clock.sleep(plan.wait_before(len(plan.pieces)))
        return self._result(plan)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        plan = self._begin(messages, stop, run_manager, kwargs, streaming=False)
        if plan.error_at is not None:
            await _clock.asleep(plan.wait_before(plan.error_at))
            raise plan.turn.make_error()  # type: ignore[misc]
        await _clock.asleep(plan.wait_before(len(plan.pieces)))
        return self._result(plan)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        plan = self._begin(messages, stop, run_manager, kwargs, streaming=True)
        stream_usage = kwargs.get("stream_usage", self.stream_usage)
        chunks = self._chunks(plan, stream_usage=stream_usage)
        error_at = plan.error_at
        sleep = _clock.sleep
        for k, (chunk, wait) in enumerate(zip(chunks, plan.delays, strict=False)):
            if wait:
                sleep(wait)
            if k == error_at:
                raise plan.turn.make_error()  # type: ignore[misc]
            yield chunk
        if error_at is not None:
            raise plan.turn.make_error()  # type: ignore[misc]

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        plan = self._begin(messages, stop, run_manager, kwargs, streaming=True)
        stream_usage = kwargs.get("stream_usage", self.stream_usage)
        chunks = self._chunks(plan, stream_usage=stream_usage)
        error_at = plan.error_at
        asleep = _clock.asleep
        for k, (chunk, wait) in enumerate(zip(chunks, plan.delays, strict=False)):
            if wait:
                await asleep(wait)
            if k == error_at:
                raise plan.turn.make_error()  # type: ignore[misc]
            yield chunk
        if error_at is not None:
            raise plan.turn.make_error()  # type: ignore[misc]

    # -- building LangChain objects ----------------------------------------------------------------

    def _final_metadata(self, plan: _Plan) -> dict[str, Any]:
        return {
            "model_name": plan.model_name,
            "model_provider": self.provider,
            "finish_reason": plan.finish_reason,
            **plan.turn.response_metadata,
        }

    def _piece_chunk(self, plan: _Plan, p: Piece) -> ChatGenerationChunk:
        turn = plan.turn
        blocks = turn.reasoning is not None or turn.content is not None
        kind = p.kind
        if kind == "text":
            msg = AIMessageChunk(
                content=[{"type": "text", "text": p.text, "index": _text_index(turn)}]
                if blocks
                else p.text
            )
        elif kind == "reasoning":
            msg = AIMessageChunk(content=[{"type": "reasoning", "reasoning": p.text, "index": 0}])
        elif kind == "block":
            msg = AIMessageChunk(content=[{**(p.block or {}), "index": _block_index(turn, p)}])
        else:
            tc = turn.tool_calls[p.index]
            msg = AIMessageChunk(
                content=[] if blocks else "",
                tool_call_chunks=[
                    {
                        "type": "tool_call_chunk",
                        "name": tc.name if p.first else None,
                        "args": p.text,
                        "id": plan.tool_ids[p.index] if p.first else None,
                        "index": p.index,
                    }
                ],
            )
        return ChatGenerationChunk(message=msg)

    def _templates(self, plan: _Plan) -> list[ChatGenerationChunk | None] | None:
        """Prebuilt chunks of a scripted turn, built once; None where a call differs.

        Tool-call chunks carry per-call ids, so they are never templated. Turns
        a responder returns are new objects every call: they get no templates
        (None), since building and then copying them would be work done twice.
        """
        turn = plan.turn
        key = id(turn)
        if key not in self._scripted_turns:
            return None
        cached = self._template_cache.get(key)
        if cached is not None and cached[0] is turn:
            return cached[1]
        built = [None if p.kind == "tool" else self._piece_chunk(plan, p) for p in turn.pieces]
        self._template_cache[key] = (turn, built)
        return built

    def _chunks(self, plan: _Plan, *, stream_usage: bool) -> list[ChatGenerationChunk]:
        """Fresh chunks for one call (core mutates them), the last carrying the totals."""
        full = plan.turn.pieces
        templates = self._templates(plan)
        out: list[ChatGenerationChunk] = []
        for k, p in enumerate(plan.pieces):
            # A piece cut by a stop sequence is a new Piece: no template for it.
            template = templates[k] if templates is not None and p is full[k] else None
            if template is None:
                out.append(self._piece_chunk(plan, p))
            else:
                fresh = _clone(template)
                fresh.__dict__["message"] = _clone(template.message)
                out.append(fresh)
        if not out:
            blocks = plan.turn.reasoning is not None or plan.turn.content is not None
            out.append(ChatGenerationChunk(message=AIMessageChunk(content=[] if blocks else "")))
        last = out[-1].message
        last.chunk_position = "last"  # type: ignore[attr-defined]
        last.response_metadata = self._final_metadata(plan)
        if stream_usage:
            last.usage_metadata = plan.usage  # type: ignore[attr-defined]
        return out

    def _result(self, plan: _Plan) -> ChatResult:
        turn = plan.turn
        pieces = plan.pieces
        blocks = turn.reasoning is not None or turn.content is not None
        content: str | list[str | dict[str, Any]]
        if blocks:
            content = []
            reasoning = "".join(p.text for p in pieces if p.kind == "reasoning")
            if reasoning:
                content.append({"type": "reasoning", "reasoning": reasoning, "index": 0})
            content.extend(
                {**(p.block or {}), "index": _block_index(turn, p)}
                for p in pieces
                if p.kind == "block"
            )
            text = "".join(p.text for p in pieces if p.kind == "text")
            if text:
                content.append({"type": "text", "text": text, "index": _text_index(turn)})
        else:
            content = "".join(p.text for p in pieces if p.kind == "text")
        emitted = {p.index for p in pieces if p.kind == "tool"}
        tool_calls = [
            {"type": "tool_call", "name": tc.name, "args": dict(tc.args), "id": plan.tool_ids[i]}
            for i, tc in enumerate(turn.tool_calls)
            if i in emitted
        ]
        message = AIMessage(
            content=content,
            tool_calls=tool_calls,
            usage_metadata=plan.usage,
            response_metadata=self._final_metadata(plan),
        )
        usage = plan.usage
        llm_output = {
            "token_usage": {
                "prompt_tokens": usage["input_tokens"],
                "completion_tokens": usage["output_tokens"],
                "total_tokens": usage["total_tokens"],
            },
            "model_name": plan.model_name,
        }
        return ChatResult(generations=[ChatGeneration(message=message)], llm_output=llm_output)


_open_streams: set[Any] = set()


async def _aclose(stream: Any) -> None:
    # A stream still running in another task (a chain's step that a cancellation
    # interrupted) cannot be closed from here: that task ends it. Closing anyway
    # only makes asyncio log "aclose(): asynchronous generator is already running".
    if not stream.ag_running:
        await stream.aclose()


def _clone(obj: _M) -> _M:
    """A shallow copy of a validated pydantic model, for the per-chunk hot path.

    It does what ``model_copy()`` does (no validation; fresh ``__dict__`` and
    fields-set, so mutating the copy leaves the original alone) without its
    generic machinery, which costs more than langchain-core's whole per-chunk
    callback dispatch. ``tests/unit/test_model_internals.py`` checks that it
    stays equivalent to ``model_copy()``.
    """
    new = obj.__class__.__new__(obj.__class__)
    object.__setattr__(new, "__dict__", obj.__dict__.copy())
    object.__setattr__(new, "__pydantic_fields_set__", set(obj.__pydantic_fields_set__))
    extra = obj.__pydantic_extra__
    object.__setattr__(new, "__pydantic_extra__", None if extra is None else dict(extra))
    private = obj.__pydantic_private__
    object.__setattr__(new, "__pydantic_private__", None if private is None else dict(private))
    return new


def _text_index(turn: Turn) -> int:
    return 1 if turn.reasoning else 0


def _block_index(turn: Turn, piece: Piece) -> int:
    return piece.index + (1 if turn.reasoning else 0)


class FakeLLM(_Scripted, BaseLLM):
    """A completion-style LLM (``BaseLLM``) that plays a Script, for code like
    ``await llm.agenerate(["..."])``. One turn answers one prompt.

    Usage is reported the way completion APIs do, in ``llm_output["token_usage"]``
    (so ``get_openai_callback`` counts it), and per generation in
    ``generation_info``.
    """

    __test__ = False

    model_config = ConfigDict(populate_by_name=True, arbitrary_types_allowed=True, extra="forbid")

    script: Script = Field(
        default_factory=Script, description="What the model answers, call by call."
    )
    model_name: str = Field(default="fake-llm", alias="model", description="Reported model name.")
    provider: str = Field(default="fakellm", description="Reported as ls_provider.")
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

    @field_validator("script", mode="before")
    @classmethod
    def _as_script(cls, value: Any) -> Script:
        return as_script(value)

    def model_post_init(self, context: Any, /) -> None:
        self._setup()

    @property
    def _llm_type(self) -> str:
        return "fakellm-llm"

    async def agenerate(self, *args: Any, **kwargs: Any) -> LLMResult:
        """Core's ``agenerate``; a run a cancellation leaves open is closed (see _cancel)."""
        return await watched(self, super().agenerate, args, kwargs)

    def _begin(
        self,
        prompt: str,
        stop: list[str] | None,
        run_manager: Any,
        kwargs: dict[str, Any],
        *,
        streaming: bool,
    ) -> _Plan:
        info = _run_info(run_manager) or _RunInfo(None, (), {})
        stop = stop if stop is not None else self.stop
        override = kwargs.get("model")
        draft = Call(
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

    def _generation(self, plan: _Plan) -> Generation:
        return Generation(
            text="".join(p.text for p in plan.pieces),
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
        for prompt in prompts:
            plan = self._begin(prompt, stop, run_manager, kwargs, streaming=self.streaming)
            plans.append(plan)
            if self.streaming:
                for _ in self._play(plan, run_manager):
                    pass
                generations.append([self._generation(plan)])
                continue
            if plan.error_at is not None:
                _clock.sleep(plan.wait_before(plan.error_at))
                raise plan.turn.make_error()  # type: ignore[misc]
            _clock.sleep(plan.wait_before(len(plan.pieces)))
            generations.append([self._generation(plan)])
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
        for prompt in prompts:
            plan = self._begin(prompt, stop, run_manager, kwargs, streaming=self.streaming)
            plans.append(plan)
            if self.streaming:
                async for _ in self._aplay(plan, run_manager):
                    pass
                generations.append([self._generation(plan)])
                continue
            if plan.error_at is not None:
                await _clock.asleep(plan.wait_before(plan.error_at))
                raise plan.turn.make_error()  # type: ignore[misc]
            await _clock.asleep(plan.wait_before(len(plan.pieces)))
            generations.append([self._generation(plan)])
        return LLMResult(generations=generations, llm_output=self._llm_output(plans))

    def _play(
        self, plan: _Plan, run_manager: CallbackManagerForLLMRun | None
    ) -> Iterator[GenerationChunk]:
        # BaseLLM.stream() fires no token callbacks of its own (unlike chat models).
        chunks = [GenerationChunk(text=p.text) for p in plan.pieces] or [GenerationChunk(text="")]
        last = chunks[-1]
        last.generation_info = {"finish_reason": plan.finish_reason, **plan.turn.response_metadata}
        for k, (chunk, wait) in enumerate(zip(chunks, plan.delays, strict=False)):
            _clock.sleep(wait)
            if k == plan.error_at:
                raise plan.turn.make_error()  # type: ignore[misc]
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
        if plan.error_at is not None:
            raise plan.turn.make_error()  # type: ignore[misc]

    async def _aplay(
        self, plan: _Plan, run_manager: AsyncCallbackManagerForLLMRun | None
    ) -> AsyncIterator[GenerationChunk]:
        chunks = [GenerationChunk(text=p.text) for p in plan.pieces] or [GenerationChunk(text="")]
        last = chunks[-1]
        last.generation_info = {"finish_reason": plan.finish_reason, **plan.turn.response_metadata}
        for k, (chunk, wait) in enumerate(zip(chunks, plan.delays, strict=False)):
            await _clock.asleep(wait)
            if k == plan.error_at:
                raise plan.turn.make_error()  # type: ignore[misc]
            if run_manager is not None:
                await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk
        if plan.error_at is not None:
            raise plan.turn.make_error()  # type: ignore[misc]

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        plan = self._begin(prompt, stop, run_manager, kwargs, streaming=True)
        yield from self._play(plan, run_manager)

    async def _astream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[GenerationChunk]:
        plan = self._begin(prompt, stop, run_manager, kwargs, streaming=True)
        async for chunk in self._aplay(plan, run_manager):
            yield chunk
