"""The one fence around other packages' private names.

fakellm reaches into langchain-core, pydantic, asyncio and freezegun in a few
places where no public API does the job. Every such use lives here, so an
upgrade that moves a private name breaks one module, and each name here is
pinned by a test in ``tests/unit/test_compat.py`` that fails with the name.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import freezegun.api as _freezegun_api

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__: list[str] = []


# -- asyncio: the Recorder's hot path ----------------------------------------------------

#: The running event loop of this thread, or None. ``asyncio.get_running_loop``
#: raises RuntimeError instead, and catching that on every recorded event
#: outside a loop (the sync ``stream``/``invoke`` paths) costs about 13 times
#: the lookup itself. asyncio exports it from ``asyncio.events`` for event-loop
#: implementations.
get_running_loop_or_none = asyncio._get_running_loop
__all__ += ["get_running_loop_or_none"]


# -- asyncio: the perturbed loop of scenario exploration (strategies) ----------------------


def ready_handles(loop: asyncio.AbstractEventLoop) -> Any:
    """The loop's queue of ready handles (a deque), which ``call_soon`` appends to
    and each iteration runs: exploration holds chosen callbacks back in it."""
    return loop._ready  # type: ignore[attr-defined]


class RunOnceHook:
    """Mixin for an asyncio event loop: ``_before_run_once()`` runs before every
    iteration of the loop (``BaseEventLoop._run_once``), the one place to move
    handles between iterations."""

    def _before_run_once(self) -> None:
        """Called before each loop iteration; the default does nothing."""

    def _run_once(self) -> None:
        self._before_run_once()
        super()._run_once()  # type: ignore[misc]


__all__ += ["RunOnceHook", "ready_handles"]


# ------------------------------------------------------------------ virtual time (#13)
# freezegun keeps its active freezes in module-level stacks. fakellm starts one
# freeze and then answers every reader from the calling thread's virtual
# clock: it swaps its own factory in, switches its own ignore list between
# "everything real" (no scope active) and the real-time modules, and makes
# freezegun look only at the direct caller (so code run by a worker thread is
# not mistaken for the threading module's own clock calls).


#: The datetime class freezegun saved before patching ``datetime.datetime``.
FREEZEGUN_REAL_DATETIME = _freezegun_api.real_datetime


def freezegun_replace_factory(factory: object) -> int:
    """Put ``factory`` in place of the innermost freeze's time factory; return its slot."""
    _freezegun_api.freeze_factories[-1] = factory  # type: ignore[call-overload]
    return len(_freezegun_api.freeze_factories) - 1


def freezegun_set_ignore(slot: int, ignore: tuple[str, ...]) -> None:
    """Replace the ignore list of the freeze at ``slot`` (module-name prefixes)."""
    if 0 <= slot < len(_freezegun_api.ignore_lists):
        _freezegun_api.ignore_lists[slot] = ignore


def freezegun_inspection_limit(limit: int) -> int:
    """Set how many caller frames freezegun checks against the ignore list; return the old value."""
    old: int = _freezegun_api.call_stack_inspection_limit
    _freezegun_api.call_stack_inspection_limit = limit
    return old


__all__ += [
    "FREEZEGUN_REAL_DATETIME",
    "freezegun_inspection_limit",
    "freezegun_replace_factory",
    "freezegun_set_ignore",
]


def current_frames() -> dict[int, Any]:
    """Every thread's innermost frame, by thread id (for stall reports)."""
    return sys._current_frames()


__all__ += ["current_frames"]


# --- issue #12: langchain-core model internals -------------------------------------------
# langchain-core hands BaseLLM._generate only the first prompt's run manager, combines
# chat llm_outputs into {} unless a model overrides _combine_llm_outputs, and builds a
# configured model afresh per call in RunnableConfigurableFields._prepare. The classes
# below are the only places fakellm touches those names.


llm_run_managers: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "fakellm_llm_run_managers", default=None
)
"""Every prompt's run manager of the BaseLLM.generate call in progress, in prompt order."""


class PerPromptRunManagers:
    """Mixin for a ``BaseLLM``: parks every prompt's run manager in :data:`llm_run_managers`.

    Core passes ``_generate`` only ``run_managers[0]``, so without this every prompt of a
    multi-prompt ``generate`` would be recorded under the first prompt's run.
    """

    def _generate_helper(
        self,
        prompts: list[str],
        stop: list[str] | None,
        run_managers: list[Any],
        *,
        new_arg_supported: bool,
        **kwargs: Any,
    ) -> Any:
        token = llm_run_managers.set(run_managers)
        try:
            return super()._generate_helper(  # type: ignore[misc]
                prompts, stop, run_managers, new_arg_supported=new_arg_supported, **kwargs
            )
        finally:
            llm_run_managers.reset(token)

    async def _agenerate_helper(
        self,
        prompts: list[str],
        stop: list[str] | None,
        run_managers: list[Any],
        *,
        new_arg_supported: bool,
        **kwargs: Any,
    ) -> Any:
        token = llm_run_managers.set(run_managers)
        try:
            return await super()._agenerate_helper(  # type: ignore[misc]
                prompts, stop, run_managers, new_arg_supported=new_arg_supported, **kwargs
            )
        finally:
            llm_run_managers.reset(token)


class CombinedLLMOutputs:
    """Mixin for a ``BaseChatModel``: ``generate``'s ``llm_output`` as chat providers give it.

    The model's own ``_summed_llm_output`` does the work; core only calls
    ``_combine_llm_outputs``.
    """

    _summed_llm_output: Callable[[list[dict[str, Any] | None]], dict[str, Any]]

    def _combine_llm_outputs(self, llm_outputs: list[dict[str, Any] | None]) -> dict[str, Any]:
        return self._summed_llm_output(llm_outputs)


class DefaultProfile:
    """Mixin for a ``BaseChatModel``: the model's own default ``profile``.

    Core fills ``profile`` from ``_resolve_model_profile`` when none is given; the
    model's ``_default_profile`` says what that is.
    """

    _default_profile: Callable[[], Any]

    def _resolve_model_profile(self) -> Any:
        return self._default_profile()


def _shared_configurable_fields() -> type:
    # Built on first use: importing langchain-core here would make loading the
    # pytest plugin (which imports this module) import LangChain in every suite.
    from langchain_core.runnables.configurable import RunnableConfigurableFields

    class SharedConfigurableFields(RunnableConfigurableFields):  # type: ignore[type-arg]
        """``configurable_fields`` whose per-call copies report back to the default model.

        Core builds a new model per configured call; the default's ``_adopt_configured``
        hook makes that copy play the default's script position and record into its
        call log, so turns are consumed and calls recorded once per call.
        """

        def _prepare(self, config: Any = None) -> tuple[Any, Any]:
            runnable, config = super()._prepare(config)
            if runnable is not self.default:
                adopt = getattr(self.default, "_adopt_configured", None)
                if adopt is not None:
                    adopt(runnable)
            return runnable, config

    return SharedConfigurableFields


# Classes that need langchain-core or pydantic to be defined, built on first use
# (so not in __all__, which a star import would resolve eagerly).
_LAZY_CLASSES: dict[str, Callable[[], type]] = {
    "SharedConfigurableFields": _shared_configurable_fields,
}


def __getattr__(name: str) -> Any:
    build = _LAZY_CLASSES.get(name)
    if build is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls = build()
    globals()[name] = cls
    return cls


class GenerateWithCacheHook:
    """Mixin for a ``BaseChatModel``: hooks around core's per-call entry points.

    Core calls ``_generate_with_cache``/``_agenerate_with_cache`` once per
    prompt with the run manager, then ``_generate``/``_stream`` without it on
    its streaming paths. The model's ``_around_generate(run_manager)`` (a context
    manager) and ``_around_agenerate(run_manager)`` (an async one) wrap that call.
    """

    _around_generate: Callable[[Any], Any]
    _around_agenerate: Callable[[Any], Any]

    def _generate_with_cache(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> Any:
        with self._around_generate(run_manager):
            return super()._generate_with_cache(  # type: ignore[misc]
                messages, stop, run_manager, **kwargs
            )

    async def _agenerate_with_cache(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> Any:
        async with self._around_agenerate(run_manager):
            return await super()._agenerate_with_cache(  # type: ignore[misc]
                messages, stop, run_manager, **kwargs
            )


_BM = TypeVar("_BM", bound="BaseModel")


def shallow_copy(obj: _BM) -> _BM:
    """A shallow copy of a validated pydantic model, for the per-chunk hot path.

    It does what ``model_copy()`` does (no validation; fresh ``__dict__``, fields-set,
    extra and private dicts, so mutating the copy leaves the original alone) without
    its generic machinery, which costs more than langchain-core's whole per-chunk
    callback dispatch. ``tests/unit/test_compat.py`` checks it stays equivalent.
    """
    new = obj.__class__.__new__(obj.__class__)
    object.__setattr__(new, "__dict__", obj.__dict__.copy())
    object.__setattr__(new, "__pydantic_fields_set__", set(obj.__pydantic_fields_set__))
    extra = obj.__pydantic_extra__
    object.__setattr__(new, "__pydantic_extra__", None if extra is None else dict(extra))
    private = obj.__pydantic_private__
    object.__setattr__(new, "__pydantic_private__", None if private is None else dict(private))
    return new


__all__ += [
    "CombinedLLMOutputs",
    "DefaultProfile",
    "GenerateWithCacheHook",
    "PerPromptRunManagers",
    "llm_run_managers",
    "shallow_copy",
]


# ---- issue 14: intercepting provider classes (fakellm._intercept, fakellm._cassette) ----
# `_get_ls_params` is the one place every integration states its provider and its
# model name (with the per-call `model=` override); `_BUILTIN_PROVIDERS` is the
# fixed table `init_chat_model` builds from (it has no public registry).


def chat_model_ls_params(
    model: Any, stop: list[str] | None, kwargs: dict[str, Any]
) -> dict[str, Any]:
    """LangChain's standard tracing parameters of a call (``ls_provider``, ``ls_model_name``)."""
    return dict(model._get_ls_params(stop=stop, **kwargs))


def init_chat_model_classes() -> list[tuple[str, str, str]]:
    """``(provider, module, class name)`` for every provider ``init_chat_model`` knows."""
    from langchain.chat_models import base

    return [(key, module, name) for key, (module, name, _) in base._BUILTIN_PROVIDERS.items()]


__all__ += ["chat_model_ls_params", "init_chat_model_classes"]


# --- follow-17: a fresh chat model's construction ----------------------------------------
# Every BaseChatModel construction runs core's `_check_profile_keys` validator, which
# resolves ModelProfile's type hints (typing.get_type_hints, about two thirds of a
# FakeChatModel's construction) to warn about unknown profile keys. The mixin below
# replaces that validator (pydantic keys model validators by name) with one that
# resolves the declared keys once and calls core's own `_warn_unknown_profile_keys`
# (same warning, same message) only when a profile has a key outside them.


@functools.cache
def _declared_profile_keys() -> frozenset[str] | None:
    from langchain_core.language_models import ModelProfile

    try:
        return frozenset(typing.get_type_hints(ModelProfile))
    except (TypeError, NameError):
        return None  # core's own function then logs and skips its check


def _profile_keys_checked_once() -> type:
    # Built on first use, like SharedConfigurableFields: the decorator needs pydantic,
    # which loading the pytest plugin (it imports this module) must not import.
    import pydantic

    class ProfileKeysCheckedOnce:
        """Mixin for a ``BaseChatModel``: core's unknown-profile-key check, hints resolved once."""

        @pydantic.model_validator(mode="after")
        def _check_profile_keys(self) -> Any:
            profile = getattr(self, "profile", None)
            if profile and isinstance(profile, dict):
                keys = _declared_profile_keys()
                if keys is None or not keys.issuperset(profile):
                    from langchain_core.language_models.model_profile import (
                        _warn_unknown_profile_keys,
                    )

                    _warn_unknown_profile_keys(profile)  # type: ignore[arg-type]
            return self

    return ProfileKeysCheckedOnce


_LAZY_CLASSES["ProfileKeysCheckedOnce"] = _profile_keys_checked_once

if TYPE_CHECKING:

    class ProfileKeysCheckedOnce:
        """What type checkers see of the class built on first use above."""


# --- r3-17: the call path's private state ------------------------------------------------


def private_values(model: Any) -> dict[str, Any]:
    """The values of ``model``'s pydantic private attributes, by name.

    Reading ``model._x`` goes through pydantic's ``BaseModel.__getattr__``, which
    first asks the attribute's declaration for a descriptor (2 µs, an
    AttributeError built and caught); the call path reads its three several
    times per call. The dict is the model's own: writes through it are writes
    to the attributes.
    """
    values: dict[str, Any] = model.__pydantic_private__
    return values
