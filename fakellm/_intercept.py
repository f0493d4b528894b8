"""Intercept the chat models an app builds: its classes answer from a script.

``with intercept(ChatOpenAI, script=[...]):`` patches the four provider hooks
LangChain documents for integrations (``_generate``, ``_agenerate``,
``_stream``, ``_astream``) on the named classes, for as long as the block runs.
Every instance, including ones the app built at import time, stays an
instance of its own class and runs its own ``bind_tools``,
``with_structured_output``, retries and callbacks; only the provider call is
answered, by a private :class:`~fakellm.FakeChatModel` playing the script, so
calls are recorded, delays run on the active clock, usage and errors are
scripted, and unplayed turns fail at the end as with any fake model.

With ``cassette=`` the same seam replays a recording (and, in a record mode,
lets the real provider answer and writes what it returned): see
:mod:`fakellm._cassette`.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from langchain_core.language_models import BaseChatModel, BaseLLM
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from pydantic import BaseModel, PrivateAttr

from fakellm import _compat, errors
from fakellm._cassette import (
    Cassette,
    Scrub,
    StreamRecording,
    request_summary,
    turn_from_error,
    turn_from_result,
)
from fakellm._model import (
    FakeChatModel,
    _aclose,
    _pending_run,
    _run_info,
    config_run,
    stream_in_run,
)
from fakellm._script import Call, Rule, Script, Turn, as_script
from fakellm.errors import UnexpectedCall, UnusedTurns

__all__ = ["INIT_CHAT_MODEL", "Interception", "intercept"]

#: Intercept every provider class ``init_chat_model`` can build (those installed).
INIT_CHAT_MODEL = "init_chat_model"

_HOOKS = ("_generate", "_agenerate", "_stream", "_astream")
_MISSING = object()

# Which recording the private model plays for the call being served.
_chosen: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "fakellm_cassette_choice", default=None
)

# Set while the real provider answers a recorded call: the hooks it calls itself
# (ChatOpenAI's _generate streams through its own _stream when streaming=True) are
# its own business, not more calls to answer or record.
_in_real: contextvars.ContextVar[bool] = contextvars.ContextVar("fakellm_in_real", default=False)

Target = type[BaseChatModel] | str


def _resolve(target: Target) -> list[type[BaseChatModel]]:
    if target == INIT_CHAT_MODEL:
        found: list[type[BaseChatModel]] = []
        for _, module, name in _compat.init_chat_model_classes():
            try:
                cls = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError):
                continue  # that provider's package is not installed
            if cls not in found:
                found.append(cls)
        if not found:
            msg = (
                "intercept('init_chat_model'): no provider package of init_chat_model is installed"
            )
            raise ImportError(msg)
        return found
    if isinstance(target, str):
        module, _, name = target.replace(":", ".").rpartition(".")
        how = (
            "name a class as 'package.module.ClassName', pass the class itself, "
            "or 'init_chat_model'"
        )
        if not module:
            msg = f"intercept({target!r}): not a dotted name; {how}"
            raise ImportError(msg)
        try:
            cls = getattr(importlib.import_module(module), name, None)
        except ImportError as exc:
            msg = f"intercept({target!r}): cannot import {module!r} ({exc}); {how}"
            raise ImportError(msg) from None
        if cls is None:
            msg = f"intercept({target!r}): {module!r} has no attribute {name!r}; {how}"
            raise ImportError(msg)
        target = cls
    if isinstance(target, type) and issubclass(target, BaseLLM):
        msg = (
            f"intercept({target.__module__}.{target.__qualname__}): a completion model "
            "(BaseLLM) cannot be intercepted, only chat models (BaseChatModel subclasses "
            "such as ChatOpenAI); pass the app a fakellm.FakeLLM instead, or intercept the "
            "chat model class it could use"
        )
        raise TypeError(msg)
    if not (isinstance(target, type) and issubclass(target, BaseChatModel)):
        msg = (
            f"intercept({target!r}): expected a BaseChatModel subclass (such as ChatOpenAI), "
            "its dotted name, or 'init_chat_model'"
        )
        raise TypeError(msg)
    if issubclass(target, FakeChatModel):
        msg = f"intercept({target.__name__}): fakellm's own models need no interception"
        raise TypeError(msg)
    return [target]


# Where a streaming class's run is known before core calls `_stream` without it.
_RUN_HOOKS = ("stream", "astream", *_compat.CACHED_GENERATE_HOOKS)


def _hooks_of(cls: type[BaseChatModel]) -> list[str]:
    """The hooks to patch: both generate paths, and streaming where the class streams
    (with the entry points that know the run, so a streamed call records its run id,
    tags and metadata as an invoked one does).

    Giving a class a ``_stream`` it never had would change LangChain's choice
    to stream, so a class without one keeps that.
    """
    streams = cls._stream is not BaseChatModel._stream or (
        cls._astream is not BaseChatModel._astream
    )
    return [*_HOOKS, *_RUN_HOOKS] if streams else ["_generate", "_agenerate"]


def _label(classes: Sequence[type[BaseChatModel]]) -> str:
    names = [c.__name__ for c in classes]
    return names[0] if len(names) == 1 else "/".join(names[:3]) + ("/..." if len(names) > 3 else "")


class Interception:
    """The named chat model classes answer from a script or a cassette while active.

    Use it as a context manager (``with intercept(ChatOpenAI, script=[...]) as
    seam:``), or through the ``fake_llm.intercept(...)`` fixture method or the
    marker argument ``@pytest.mark.fakellm(intercept=...)``, all spelled the
    same. On exit it checks (when ``strict``) that some intercepted model was
    called, that no call went unanswered and that no turn or recording was left
    unused, and raises :class:`~fakellm.errors.UnusedTurns` (or reports it to
    the plugin) otherwise.

    Attributes:
        classes: the classes patched.
        model: the private :class:`~fakellm.FakeChatModel` that plays the answers.
        cassette: the :class:`~fakellm._cassette.Cassette`, when one is used.
    """

    def __init__(
        self,
        *targets: Target,
        script: Any = None,
        cassette: str | os.PathLike[str] | None = None,
        record: str | None = None,
        match: str = "order",
        scrub: Scrub | None = None,
        allow_unused: bool = False,
        strict: bool = True,
    ) -> None:
        if not targets:
            msg = (
                "intercept() needs at least one class: a BaseChatModel subclass, its dotted "
                "name, or 'init_chat_model'"
            )
            raise TypeError(msg)
        if script is not None and cassette is not None:
            msg = "intercept(): give script= or cassette=, not both (a cassette is a script)"
            raise TypeError(msg)
        if record is not None and cassette is None:
            msg = f"intercept(): record={record!r} needs a cassette= to record to"
            raise TypeError(msg)
        classes: list[type[BaseChatModel]] = []
        for target in targets:
            classes += [c for c in _resolve(target) if c not in classes]
        self.classes = classes
        self.label = _label(classes)
        self.strict = strict
        self.cassette: Cassette | None = None
        self._scrub = scrub
        self._undo: list[tuple[type[BaseChatModel], str, Any]] = []
        self._reached = 0
        self._lock = threading.Lock()
        self._mismatches: dict[int, str] = {}
        self._unrecorded: list[str] = []
        if cassette is not None:
            self.cassette = Cassette(cassette, record=record or "none", match=match, scrub=scrub)
            rules = [
                Rule(when=_chooser(k), respond=turn, times=1, name=f"recording turns[{k}]")
                for k, turn in enumerate(self.cassette.entries)
            ]
            played = Script(rules=rules)
            allow_unused = True  # the cassette reports unused recordings itself
        else:
            played = as_script(script if script is not None else [])
        self.model = _SeamModel(
            script=played, model=self.label, provider="fakellm", allow_unused=allow_unused
        )
        self.model._seam_label = f"intercept({self.label})"

    def __repr__(self) -> str:
        source = repr(self.cassette) if self.cassette is not None else "script"
        return f"<intercept {self.label} from {source}: {self._reached} calls>"

    # -- what tests read ---------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every replayed or scripted call, as :attr:`FakeChatModel.calls` records them."""
        return self.model.calls

    @property
    def call_count(self) -> int:
        """How many calls reached the intercepted classes (recorded ones included)."""
        return self._reached

    def findings(self) -> list[str]:
        """What the end-of-test check reports, one paragraph each (empty when all is well)."""
        if not self.strict:
            return []
        out: list[str] = []
        if self._reached == 0:
            out.append(
                f"Nothing intercepted: intercept({self.label}) was active but no "
                f"{self.label} model was called. Check that the app builds that class "
                "(a subclass of it counts; a different provider class does not), or "
                "intercept 'init_chat_model' to catch every provider it builds."
            )
        for call in self.model.unexpected_calls:
            shown = self._mismatches.get(call.index, str(call.unexpected))
            out.append(f"UnexpectedCall (the app may have swallowed it): {shown}")
        if self._reached:
            try:
                self.model.assert_all_turns_used()
            except UnusedTurns as exc:
                out.append(f"UnusedTurns: {exc}")
        for problem in self._unrecorded:
            out.append(f"Unrecorded: an answer could not be written as a script turn ({problem})")
        if self.cassette is not None and self.cassette.replaying:
            left = self.cassette.unused()
            if left:
                lines = "\n".join(f"  - {line}" for line in left)
                out.append(
                    f"UnusedRecordings: cassette {str(self.cassette.path)!r} holds "
                    f"recordings this test never used:\n{lines}\nIf the app now makes "
                    "fewer calls, re-record with --fakellm-record=all, or delete them from "
                    "the cassette."
                )
        return out

    def check(self) -> None:
        """Raise :class:`~fakellm.errors.UnusedTurns` with every finding, if any."""
        found = self.findings()
        if found:
            raise UnusedTurns("\n\n".join(found))

    # -- installing --------------------------------------------------------------------

    def install(self) -> None:
        """Patch the classes (undo with :meth:`uninstall`)."""
        if self._undo:
            msg = "this interception is installed already"
            raise RuntimeError(msg)
        for cls in self.classes:
            for hook in _hooks_of(cls):
                self._undo.append((cls, hook, cls.__dict__.get(hook, _MISSING)))
                setattr(cls, hook, self._wrapper(hook, getattr(cls, hook)))

    def uninstall(self, *, save: bool = True) -> None:
        """Put the classes' own hooks back, and (with ``save``) write what was recorded."""
        while self._undo:
            cls, hook, original = self._undo.pop()
            if original is _MISSING:
                delattr(cls, hook)
            else:
                setattr(cls, hook, original)
        if self.cassette is not None and save:
            self.cassette.save()

    def __enter__(self) -> Interception:
        self.install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # A block that failed writes no recording (its run may be the broken one),
        # and its own exception is never hidden by the checks.
        self.uninstall(save=exc_type is None)
        if exc_type is None:
            self.check()

    # -- answering ---------------------------------------------------------------------

    def _wrapper(self, hook: str, real: Callable[..., Any]) -> Callable[..., Any]:
        if hook in _RUN_HOOKS:
            return _run_keeper(hook, real)
        seam = self
        if hook == "_generate":

            def _generate(
                model: BaseChatModel,
                messages: list[BaseMessage],
                stop: list[str] | None = None,
                run_manager: Any = None,
                **kwargs: Any,
            ) -> ChatResult:
                if _in_real.get():
                    return real(model, messages, stop, run_manager, **kwargs)  # type: ignore[no-any-return]
                route, request, fake_kwargs = seam._route(model, messages, stop, kwargs)
                if route == "record":
                    return seam._record_result(
                        real, model, messages, stop, run_manager, kwargs, request
                    )
                token = _chosen.set(route)
                try:
                    with seam._answering(model, request):
                        result = seam.model._generate(messages, stop, run_manager, **fake_kwargs)
                    return _Finish(model, kwargs).result(result)
                finally:
                    _chosen.reset(token)

            return _generate
        if hook == "_agenerate":

            async def _agenerate(
                model: BaseChatModel,
                messages: list[BaseMessage],
                stop: list[str] | None = None,
                run_manager: Any = None,
                **kwargs: Any,
            ) -> ChatResult:
                if _in_real.get():
                    return await real(model, messages, stop, run_manager, **kwargs)  # type: ignore[no-any-return]
                route, request, fake_kwargs = seam._route(model, messages, stop, kwargs)
                if route == "record":
                    started = time.perf_counter()
                    inside = _in_real.set(True)
                    try:
                        result = await real(model, messages, stop, run_manager, **kwargs)
                    except Exception as exc:
                        seam._keep(turn_from_error, exc, time.perf_counter() - started, request)
                        raise
                    finally:
                        _in_real.reset(inside)
                    seam._keep(turn_from_result, result, time.perf_counter() - started, request)
                    return result  # type: ignore[no-any-return]
                token = _chosen.set(route)
                try:
                    with seam._answering(model, request):
                        result = await seam.model._agenerate(
                            messages, stop, run_manager, **fake_kwargs
                        )
                    return _Finish(model, kwargs).result(result)
                finally:
                    _chosen.reset(token)

            return _agenerate
        if hook == "_stream":

            def _stream(
                model: BaseChatModel,
                messages: list[BaseMessage],
                stop: list[str] | None = None,
                run_manager: Any = None,
                **kwargs: Any,
            ) -> Iterator[ChatGenerationChunk]:
                if _in_real.get():
                    yield from real(model, messages, stop, run_manager, **kwargs)
                    return
                route, request, fake_kwargs = seam._route(
                    model, messages, stop, kwargs, stream=True
                )
                if route == "record":
                    yield from seam._record_stream(
                        real(model, messages, stop, run_manager, **kwargs), request
                    )
                    return
                token = _chosen.set(route)
                inner = seam.model._stream(messages, stop, run_manager, **fake_kwargs)
                try:
                    with seam._answering(model, request):
                        first = next(inner, None)
                finally:
                    _chosen.reset(token)
                if first is None:
                    return
                finish = _Finish(model, kwargs)
                with seam._answering(model, request):
                    yield finish.chunk(first)
                    for chunk in inner:
                        yield finish.chunk(chunk)

            return _stream

        async def _astream(
            model: BaseChatModel,
            messages: list[BaseMessage],
            stop: list[str] | None = None,
            run_manager: Any = None,
            **kwargs: Any,
        ) -> AsyncIterator[ChatGenerationChunk]:
            if _in_real.get():
                async for chunk in real(model, messages, stop, run_manager, **kwargs):
                    yield chunk
                return
            route, request, fake_kwargs = seam._route(model, messages, stop, kwargs, stream=True)
            if route == "record":
                recording = StreamRecording(time.perf_counter(), seam._scrub)
                try:
                    async for chunk in real(model, messages, stop, run_manager, **kwargs):
                        recording.add(time.perf_counter(), chunk)
                        yield chunk
                except Exception as exc:
                    recording.error, recording.error_time = exc, time.perf_counter()
                    raise
                finally:
                    seam._keep(StreamRecording.to_turn, recording, request)
                return
            token = _chosen.set(route)
            inner = seam.model._astream(messages, stop, run_manager, **fake_kwargs)
            try:
                with seam._answering(model, request):
                    first = await anext(inner, None)
            finally:
                _chosen.reset(token)
            if first is None:
                return
            finish = _Finish(model, kwargs)
            try:
                with seam._answering(model, request):
                    yield finish.chunk(first)
                    async for chunk in inner:
                        yield finish.chunk(chunk)
            finally:
                await inner.aclose()  # type: ignore[attr-defined]

        return _astream

    @contextlib.contextmanager
    def _answering(self, model: BaseChatModel, request: dict[str, Any]) -> Iterator[None]:
        """What the private player raises, as the intercepted integration would: a call
        past the recordings names the closest one, and a scripted provider error is
        also the integration's SDK error."""
        try:
            yield
        except UnexpectedCall as exc:
            raise self._unexpected(exc, request) from None
        except errors.ProviderError as exc:
            raise _as_provider_raises(model, exc) from None

    def _route(
        self,
        model: BaseChatModel,
        messages: list[BaseMessage],
        stop: list[str] | None,
        kwargs: dict[str, Any],
        *,
        stream: bool = False,
    ) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        """Decide who answers: a recording (its index), the script (None) or the real model."""
        with self._lock:
            self._reached += 1
        ls = _compat.chat_model_ls_params(model, stop, kwargs)
        fake_kwargs = {
            **kwargs,
            "model": kwargs.get("model") or ls.get("ls_model_name") or self.label,
        }
        if stream:
            fake_kwargs["stream_usage"] = _stream_usage(model, kwargs)
        cassette = self.cassette
        if cassette is None:
            return None, {}, fake_kwargs
        request = request_summary(messages, kwargs, ls, scrub=self._scrub)
        with self._lock:  # sync batches call from several threads
            chosen = cassette.select(request)
        if chosen is not None:
            return chosen, request, fake_kwargs
        if cassette.recording:
            return "record", request, fake_kwargs
        return None, request, fake_kwargs

    def _unexpected(self, exc: UnexpectedCall, request: dict[str, Any]) -> UnexpectedCall:
        call = self.model.last_call
        index = call.index if call is not None else 0
        if self.cassette is None or not request:
            message = str(exc)
        else:
            message = self.cassette.mismatch(f"intercept({self.label})", index, request)
        self._mismatches[index] = message
        return UnexpectedCall(message)

    # -- recording ---------------------------------------------------------------------

    def _keep(self, make_turn: Callable[..., Turn], *args: Any) -> None:
        """Keep the recording ``make_turn(*args, scrub)`` builds; one that no script
        can hold fails the test at the end instead of replacing the provider's
        answer or error with ours."""
        assert self.cassette is not None  # only the record route gets here
        try:
            self.cassette.add(make_turn(*args, self._scrub))
        except Exception as exc:  # reported by findings(): never lost, never raised here
            self._unrecorded.append(f"{type(exc).__name__}: {exc}")

    def _record_result(
        self,
        real: Callable[..., ChatResult],
        model: BaseChatModel,
        messages: list[BaseMessage],
        stop: list[str] | None,
        run_manager: Any,
        kwargs: dict[str, Any],
        request: dict[str, Any],
    ) -> ChatResult:
        started = time.perf_counter()
        inside = _in_real.set(True)
        try:
            result = real(model, messages, stop, run_manager, **kwargs)
        except Exception as exc:
            self._keep(turn_from_error, exc, time.perf_counter() - started, request)
            raise
        finally:
            _in_real.reset(inside)
        self._keep(turn_from_result, result, time.perf_counter() - started, request)
        return result

    def _record_stream(
        self, inner: Iterator[ChatGenerationChunk], request: dict[str, Any]
    ) -> Iterator[ChatGenerationChunk]:
        recording = StreamRecording(time.perf_counter(), self._scrub)
        try:
            for chunk in inner:
                recording.add(time.perf_counter(), chunk)
                yield chunk
        except Exception as exc:
            recording.error, recording.error_time = exc, time.perf_counter()
            raise
        finally:
            self._keep(StreamRecording.to_turn, recording, request)


def _run_keeper(hook: str, real: Callable[..., Any]) -> Callable[..., Any]:
    """``hook`` (a public stream method or core's cached-generate entry point) that
    parks its run's id, tags and metadata where the fake's ``_stream`` reads them."""
    if hook == "stream":

        def stream(
            model: BaseChatModel, input: Any, config: Any = None, **kwargs: Any
        ) -> Iterator[Any]:
            config, info = config_run(model, config)
            yield from stream_in_run(info, real(model, input, config, **kwargs))

        return stream
    if hook == "astream":

        async def astream(
            model: BaseChatModel, input: Any, config: Any = None, **kwargs: Any
        ) -> AsyncIterator[Any]:
            config, info = config_run(model, config)
            inner = real(model, input, config, **kwargs)
            try:
                token = _pending_run.set(info)
                try:
                    first = await anext(inner, _MISSING)
                finally:
                    _pending_run.reset(token)
                if first is _MISSING:
                    return
                yield first
                async for chunk in inner:
                    yield chunk
            finally:
                await _aclose(inner)

        return astream
    if hook == _compat.CACHED_GENERATE_HOOKS[0]:

        def generate_with_cache(
            model: BaseChatModel,
            messages: Any,
            stop: Any = None,
            run_manager: Any = None,
            **kw: Any,
        ) -> Any:
            token = _pending_run.set(_run_info(run_manager))
            try:
                return real(model, messages, stop, run_manager, **kw)
            finally:
                _pending_run.reset(token)

        return generate_with_cache

    async def agenerate_with_cache(
        model: BaseChatModel, messages: Any, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Any:
        token = _pending_run.set(_run_info(run_manager))
        try:
            return await real(model, messages, stop, run_manager, **kw)
        finally:
            _pending_run.reset(token)

    return agenerate_with_cache


def _as_provider_raises(model: BaseChatModel, error: BaseException) -> BaseException:
    """A scripted provider error as the intercepted integration would raise it: also an
    instance of its SDK's exception (``openai.RateLimitError``, ...), when installed."""
    provider = str(_compat.chat_model_ls_params(model, None, {}).get("ls_provider") or "")
    return errors.flavoured(error, provider)


class _Finish:
    """What the intercepted integration itself adds to an answer, added to the fake's.

    Its provider's name in ``response_metadata["model_provider"]``; and, for an
    OpenAI integration asked for a pydantic ``response_format`` (the default of
    its ``with_structured_output``), the parsed object in
    ``additional_kwargs["parsed"]``, which its SDK's ``parse()`` supplies and its
    output parser reads.
    """

    def __init__(self, model: BaseChatModel, kwargs: dict[str, Any]) -> None:
        ls = _compat.chat_model_ls_params(model, None, {})
        self.provider = str(ls.get("ls_provider") or "fakellm")
        fmt = kwargs.get("response_format")
        openai = any(c.__module__.startswith("langchain_openai") for c in type(model).__mro__)
        pydantic_class = isinstance(fmt, type) and issubclass(fmt, BaseModel)
        self.schema: type[BaseModel] | None = fmt if openai and pydantic_class else None
        self.text = ""

    def _message(self, message: BaseMessage, text: str) -> None:
        meta = message.response_metadata
        if meta.get("model_provider") == "fakellm":
            meta["model_provider"] = self.provider
        if self.schema is None:
            return
        recorded = message.additional_kwargs.get("parsed")
        if isinstance(recorded, dict):  # a recording keeps the object as its fields
            message.additional_kwargs["parsed"] = self.schema.model_validate(recorded)
        elif text:
            message.additional_kwargs["parsed"] = self.schema.model_validate_json(text)

    def chunk(self, chunk: ChatGenerationChunk) -> ChatGenerationChunk:
        if self.schema is not None and isinstance(chunk.message.content, str):
            self.text += chunk.message.content
        last = getattr(chunk.message, "chunk_position", None) == "last"
        self._message(chunk.message, self.text if last else "")
        return chunk

    def result(self, result: ChatResult) -> ChatResult:
        for generation in result.generations:
            self._message(generation.message, str(generation.message.text))
        return result


class _SeamModel(FakeChatModel):
    """The private player: a FakeChatModel whose messages name the interception."""

    _seam_label: str = PrivateAttr(default="")

    def _label(self) -> str:
        return self._seam_label or super()._label()


def _chooser(k: int) -> Callable[[Call], bool]:
    def chosen(call: Call) -> bool:
        return _chosen.get() == k

    chosen.__name__ = f"recording_{k}"
    return chosen


def _stream_usage(model: BaseChatModel, kwargs: dict[str, Any]) -> bool:
    """Whether the intercepted model would report usage on a stream, as it decides."""
    for source in (
        kwargs.get("stream_usage"),
        (kwargs.get("stream_options") or {}).get("include_usage"),
        getattr(model, "stream_usage", True),
    ):
        if isinstance(source, bool):
            return source
    return False


def intercept(
    *targets: Target,
    script: Any = None,
    cassette: str | os.PathLike[str] | None = None,
    record: str | None = None,
    match: str = "order",
    scrub: Scrub | None = None,
    allow_unused: bool = False,
    strict: bool = True,
) -> Interception:
    """Answer the named chat model classes from ``script`` (or a ``cassette``) while active.

    Args:
        targets: classes (``ChatOpenAI``), dotted names
            (``"langchain_openai.ChatOpenAI"``), or ``"init_chat_model"`` for every
            installed provider class that ``init_chat_model`` can build.
        script: what the models answer, as for :class:`~fakellm.FakeChatModel`.
        cassette: a cassette file to replay (and record, per ``record``) instead.
        record: ``"none"`` (default), ``"once"``, ``"new_episodes"`` or ``"all"``.
        match: how calls find recordings: ``"order"`` (default) or ``"fingerprint"``.
        scrub: rewrites message and reply text before a recording is written.
        allow_unused: turns left unplayed are not an error.
        strict: check at exit (some call was intercepted; none went unanswered;
            nothing was left unused).

    Returns:
        An :class:`Interception`, to use as a context manager.
    """
    return Interception(
        *targets,
        script=script,
        cassette=cassette,
        record=record,
        match=match,
        scrub=scrub,
        allow_unused=allow_unused,
        strict=strict,
    )


def resolve_path(path: str | os.PathLike[str], base: Path) -> Path:
    """A cassette path relative to ``base`` (the test file's folder) unless absolute."""
    p = Path(path)
    return p if p.is_absolute() else base / p
