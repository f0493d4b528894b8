"""The one fence around other packages' private names.

fakellm reaches into langchain-core, pydantic, asyncio and freezegun in a few
places where no public API does the job. Every such use lives here, so an
upgrade that moves a private name breaks one module, and each name here is
pinned by a test in ``tests/unit/test_compat.py`` that fails with the name.
"""

from __future__ import annotations

__all__: list[str] = []


# ---- issue 14: intercepting provider classes (fakellm._intercept, fakellm._cassette) ----
# `_get_ls_params` is the one place every integration states its provider and its
# model name (with the per-call `model=` override); `_BUILTIN_PROVIDERS` is the
# fixed table `init_chat_model` builds from (it has no public registry).
from typing import Any as _Any

__all__ += ["chat_model_ls_params", "init_chat_model_classes"]


def chat_model_ls_params(
    model: _Any, stop: list[str] | None, kwargs: dict[str, _Any]
) -> dict[str, _Any]:
    """LangChain's standard tracing parameters of a call (``ls_provider``, ``ls_model_name``)."""
    return dict(model._get_ls_params(stop=stop, **kwargs))


def init_chat_model_classes() -> list[tuple[str, str, str]]:
    """``(provider, module, class name)`` for every provider ``init_chat_model`` knows."""
    from langchain.chat_models import base

    return [(key, module, name) for key, (module, name, _) in base._BUILTIN_PROVIDERS.items()]
