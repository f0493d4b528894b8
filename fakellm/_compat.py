"""The one fence around other packages' private names.

fakellm reaches into langchain-core, pydantic, asyncio and freezegun in a few
places where no public API does the job. Every such use lives here, so an
upgrade that moves a private name breaks one module, and each name here is
pinned by a test in ``tests/unit/test_compat.py`` that fails with the name.
"""

from __future__ import annotations

__all__: list[str] = []


# --- issue #12: langchain-core model internals -------------------------------------------
# langchain-core hands BaseLLM._generate only the first prompt's run manager, combines
# chat llm_outputs into {} unless a model overrides _combine_llm_outputs, and builds a
# configured model afresh per call in RunnableConfigurableFields._prepare. The classes
# below are the only places fakellm touches those names.

import contextvars
from collections.abc import Callable
from typing import Any, TypeVar

from langchain_core.runnables.configurable import RunnableConfigurableFields
from pydantic import BaseModel

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


class DefaultProfile:
    """Mixin for a ``BaseChatModel``: the model's own default ``profile``.

    Core fills ``profile`` from ``_resolve_model_profile`` when none is given; the
    model's ``_default_profile`` says what that is.
    """

    _default_profile: Callable[[], Any]

    def _resolve_model_profile(self) -> Any:
        return self._default_profile()


_BM = TypeVar("_BM", bound=BaseModel)


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
    "PerPromptRunManagers",
    "SharedConfigurableFields",
    "llm_run_managers",
    "shallow_copy",
]
