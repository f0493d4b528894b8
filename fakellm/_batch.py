"""``batch``/``abatch`` of a fake model, in input order.

Input *i* takes the turns a sequential loop (``[r.invoke(x) for x in inputs]``)
would give it, on every run and on any event loop; the
inputs still run concurrently (LangChain's thread pool, or ``gather``). The
order itself lives in :mod:`fakellm._order`; this module runs the inputs the
way ``Runnable.batch``/``abatch`` do, each inside its slot.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import get_config_list, get_executor_for_config

from fakellm import _order

__all__ = ["abatch_in_order", "batch_in_order"]


def batch_in_order(
    model: Runnable[Any, Any],
    inputs: list[Any],
    config: RunnableConfig | list[RunnableConfig] | None,
    return_exceptions: bool,
    kwargs: dict[str, Any],
) -> list[Any]:
    """``Runnable.batch`` of ``model``, its takes of queued turns in input order."""
    if len(inputs) <= 1:  # Runnable.batch runs a lone input in the calling thread
        return Runnable.batch(model, inputs, config, return_exceptions=return_exceptions, **kwargs)
    configs = get_config_list(config, len(inputs))

    def run(per_input: Callable[[int, Callable[[], Any]], Any]) -> list[Any]:
        def one(i: int, input_: Any, cfg: RunnableConfig) -> Any:
            call = functools.partial(model.invoke, input_, cfg, **kwargs)
            if not return_exceptions:
                return per_input(i, call)
            try:
                return per_input(i, call)
            except Exception as exc:  # returned in place, as Runnable.batch does
                return exc

        with get_executor_for_config(configs[0]) as executor:
            return list(executor.map(one, range(len(inputs)), inputs, configs))

    return _order.ordered_batch(model, inputs, run)


async def abatch_in_order(
    model: Runnable[Any, Any],
    inputs: list[Any],
    config: RunnableConfig | list[RunnableConfig] | None,
    return_exceptions: bool,
    kwargs: dict[str, Any],
) -> list[Any]:
    """``Runnable.abatch`` of ``model``, its takes of queued turns in input order."""
    if not inputs:
        return []
    configs = get_config_list(config, len(inputs))

    async def one(input_: Any, cfg: RunnableConfig) -> Any:
        if not return_exceptions:
            return await model.ainvoke(input_, cfg, **kwargs)
        try:
            return await model.ainvoke(input_, cfg, **kwargs)
        except Exception as exc:  # returned in place, as Runnable.abatch does
            return exc

    calls = [functools.partial(one, x, c) for x, c in zip(inputs, configs, strict=True)]
    return await _order.ordered_abatch(model, calls, configs[0].get("max_concurrency"))
