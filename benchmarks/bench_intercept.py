"""What answering through an intercepted ChatOpenAI costs against FakeChatModel itself.

Run: ``python benchmarks/bench_intercept.py [--rounds 9] [--budget 2000]``

Both sides play the same scripted turn (text cut into ``n`` chunks, repeated)
through ``stream``, ``astream`` and ``invoke``: ``FakeChatModel`` directly, and
a ``ChatOpenAI`` (dummy key, never called) whose class is intercepted for the
whole run, so each call also runs ChatOpenAI's own parameter handling, the
seam's routing (the model name LangChain reports, the stream-usage decision),
the run bookkeeping of a streamed call and what the seam adds to each chunk.
Also: replaying a recorded ``stream`` turn (chunks exactly as written) against
the same text as a written turn, both through FakeChatModel. Timing rules:
``_harness.py``; figures are CPU microseconds per chunk.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from _harness import Row, Section, arguments, measure, on_loop, render, row

from fakellm import FakeChatModel, Rule, Script, Turn, intercept

SIZES = (3, 20, 2000)
PATHS = ("stream", "astream", "invoke")


def _turn(n: int) -> Turn:
    return Turn(chunks=[f"w{i} " for i in range(n)])


def _recorded(n: int) -> Turn:
    chunks: list[Any] = [{"content": f"w{i} ", "id": None} for i in range(n)]
    chunks[-1]["response_metadata"] = {"finish_reason": "stop", "model_name": "m"}
    chunks[-1]["usage_metadata"] = {"input_tokens": 3, "output_tokens": n, "total_tokens": n + 3}
    return Turn(stream=chunks)


def _script(make: Callable[[int], Turn], sizes: tuple[int, ...]) -> Script:
    """One rule per size: the prompt ``q<n>`` gets the turn of ``n`` chunks, every time."""
    return Script(rules=[Rule(match=re.compile(f"^q{n}$"), respond=make(n)) for n in sizes])


def _section(model: Any, path: str, calls: int, n: int, loop: Any) -> Section:
    prompt = f"q{n}"
    if path == "stream":

        def run() -> int:
            for _ in range(calls):
                for _chunk in model.stream(prompt):
                    pass
            return calls * n

        return run
    if path == "invoke":

        def run_invoke() -> int:
            for _ in range(calls):
                model.invoke(prompt)
            return calls * n

        return run_invoke

    async def run_async() -> int:
        for _ in range(calls):
            async for _chunk in model.astream(prompt):
                pass
        return calls * n

    return on_loop(loop, run_async)


def sections(
    budget: int, loop: asyncio.AbstractEventLoop, sizes: tuple[int, ...]
) -> tuple[dict[str, Section], Callable[[], None]]:
    """Timed sections ``"<side> <path> <n>"``, and what ends the interception."""
    from langchain_openai import ChatOpenAI

    seam = intercept(ChatOpenAI, script=_script(_turn, sizes))
    seam.install()
    sides: dict[str, Any] = {
        "intercepted": ChatOpenAI(model="gpt-4o-mini", api_key="sk-dummy"),  # type: ignore[arg-type]
        "fake": FakeChatModel(script=_script(_turn, sizes)),
        "recorded": FakeChatModel(script=_script(_recorded, sizes)),
    }
    out: dict[str, Section] = {}
    for n in sizes:
        calls = max(1, budget // n)
        for side, model in sides.items():
            for path in PATHS:
                section = _section(model, path, calls, n, loop)
                section()  # warm-up, not timed
                out[f"{side} {path} {n}"] = section
    return out, seam.uninstall


def rows(budget: int = 2000, n_rounds: int = 9, sizes: tuple[int, ...] = SIZES) -> list[Row]:
    """Report rows: µs per chunk, intercepted ChatOpenAI against FakeChatModel, and a
    recorded stream turn against the written one."""
    done: list[Callable[[], None]] = []

    def build(loop: asyncio.AbstractEventLoop) -> dict[str, Section]:
        made, stop = sections(budget, loop, sizes)
        done.append(stop)
        return made

    try:
        times = measure(build, n_rounds)
    finally:
        for stop in done:
            stop()
    out = [
        row(
            f"intercepted ChatOpenAI vs FakeChatModel, {path}, {n} chunks",
            times,
            f"intercepted {path} {n}",
            f"fake {path} {n}",
            "µs/chunk",
        )
        for n in sizes
        for path in PATHS
    ]
    out += [
        row(
            f"recorded stream turn vs written turn, {path}, {n} chunks",
            times,
            f"recorded {path} {n}",
            f"fake {path} {n}",
            "µs/chunk",
        )
        for n in sizes
        for path in PATHS
    ]
    return out


def main() -> None:
    args = arguments(__doc__, rounds=9, budget=2000)
    print("\n".join(render(rows(args.budget, args.rounds))))


if __name__ == "__main__":
    main()
