"""Per-chunk cost of streaming FakeChatModel, against a floor and the stock fakes.

Run: ``python benchmarks/bench_model.py [--chunks 200] [--streams 200] [--rounds 7]``

All models run side by side in one process, interleaved round by round, each
with one no-op callback handler attached. The floor
is a chat model whose ``_stream``/``_astream`` yield prebuilt chunks: what
langchain-core's callback manager itself costs. Figures are medians over rounds,
reported in microseconds per chunk and as ratios to the floor. Targets (issue 2):
FakeChatModel within 1.15x of the floor for stream and astream; at least 5x
faster than GenericFakeChatModel.astream.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from fakellm import FakeChatModel, Script, Turn
from fakellm._compat import shallow_copy as _clone


class NoOp(BaseCallbackHandler):
    run_inline = True


class Floor(BaseChatModel):
    """Yields prebuilt chunks: the cheapest a streaming chat model can be."""

    chunks: list[Any]

    @property
    def _llm_type(self) -> str:
        return "floor"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        raise NotImplementedError

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        yield from self.chunks

    async def _astream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        for c in self.chunks:
            yield c


class FreshFloor(Floor):
    """Yields shallow copies of prebuilt chunks: the floor for a *correct* fake.

    langchain-core mutates every chunk it is given (message id, metadata) and
    hands the message to the caller, so a fake that reuses chunk objects across
    calls corrupts earlier results; fresh objects per call are the minimum.
    """

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        for c in self.chunks:
            fresh = _clone(c)
            fresh.__dict__["message"] = _clone(c.message)
            yield fresh

    async def _astream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        for c in self.chunks:
            fresh = _clone(c)
            fresh.__dict__["message"] = _clone(c.message)
            yield fresh


def _models(n: int) -> dict[str, Callable[[], BaseChatModel]]:
    words = [f"w{i} " for i in range(n)]
    prebuilt = [ChatGenerationChunk(message=AIMessageChunk(content=w)) for w in words]
    prebuilt[-1].message.chunk_position = "last"  # type: ignore[attr-defined]
    floor = Floor(chunks=prebuilt)
    fresh_floor = FreshFloor(chunks=prebuilt)
    fake = FakeChatModel(script=Script([Turn(chunks=words)], when_exhausted="repeat_last"))
    text = "".join(words)
    return {
        "floor": lambda: floor,
        "floor (fresh chunks)": lambda: fresh_floor,
        "FakeChatModel": lambda: fake,
        "GenericFakeChatModel": lambda: GenericFakeChatModel(messages=iter([AIMessage(text)])),
        # FakeListChatModel streams one chunk per character: give it n characters.
        "FakeListChatModel": lambda: FakeListChatModel(responses=["x" * n]),
    }


def _sync_round(make: Callable[[], BaseChatModel], streams: int, n: int) -> float:
    cfg = {"callbacks": [NoOp()]}
    models = [make() for _ in range(streams)]
    t0 = time.perf_counter()
    for m in models:
        for _ in m.stream("hi", config=cfg):
            pass
    return (time.perf_counter() - t0) / (streams * n) * 1e6


async def _async_round(make: Callable[[], BaseChatModel], streams: int, n: int) -> float:
    cfg = {"callbacks": [NoOp()]}
    models = [make() for _ in range(streams)]
    t0 = time.perf_counter()
    for m in models:
        async for _ in m.astream("hi", config=cfg):
            pass
    return (time.perf_counter() - t0) / (streams * n) * 1e6


def measure(n: int, k: int, rounds: int) -> dict[tuple[str, str], float]:
    """Median µs per chunk of every model, ``(name, "stream" | "astream")``."""
    models = _models(n)
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for name, make in models.items():
            results.setdefault((name, "stream"), []).append(_sync_round(make, k, n))
            results.setdefault((name, "astream"), []).append(asyncio.run(_async_round(make, k, n)))
    return {key: statistics.median(v) for key, v in results.items()}


def rows(
    chunks: int = 200, streams: int = 100, rounds: int = 7
) -> list[tuple[str, float, float, str, str]]:
    """Ratio rows for ``benchmarks/run.py``: (name, measured, baseline, unit, target)."""
    med = measure(chunks, streams, rounds)
    fake = "FakeChatModel"
    out = []
    for path in ("stream", "astream"):
        for base in ("floor", "floor (fresh chunks)", "FakeListChatModel"):
            out.append(
                (
                    f"{fake}.{path} vs {base}",
                    med[(fake, path)],
                    med[(base, path)],
                    "µs/chunk",
                    "<= 1.15",
                )
            )
    out.append(
        (
            f"{fake}.astream vs GenericFakeChatModel.astream",
            med[(fake, "astream")],
            med[("GenericFakeChatModel", "astream")],
            "µs/chunk",
            "<= 0.20",
        )
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=200)
    ap.add_argument("--streams", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    n, k = args.chunks, args.streams
    models = _models(n)
    med = measure(n, k, args.rounds)
    print(f"per-chunk cost, µs (median of {args.rounds} rounds; {k} streams x {n} chunks)")
    print(f"{'model':<22}{'stream':>10}{'ratio':>8}{'astream':>10}{'ratio':>8}  (ratio to floor)")
    for name in models:
        s, a = med[(name, "stream")], med[(name, "astream")]
        print(
            f"{name:<22}{s:>10.2f}{s / med[('floor', 'stream')]:>7.2f}x"
            f"{a:>10.2f}{a / med[('floor', 'astream')]:>7.2f}x"
        )
    for base in ("floor", "floor (fresh chunks)"):
        s = med[("FakeChatModel", "stream")] / med[(base, "stream")]
        a = med[("FakeChatModel", "astream")] / med[(base, "astream")]
        print(f"FakeChatModel vs {base}: stream {s:.2f}x, astream {a:.2f}x")
    speedup = med[("GenericFakeChatModel", "astream")] / med[("FakeChatModel", "astream")]
    print(f"FakeChatModel.astream is {speedup:.1f}x faster than GenericFakeChatModel.astream")


if __name__ == "__main__":
    main()
