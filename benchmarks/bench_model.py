"""What FakeChatModel costs per call against a correct floor, fresh and reused.

Run: ``python benchmarks/bench_model.py [--rounds 9] [--quick]``

The floor is what the cheapest *correct* chat model integration costs: each
call builds its own chunks (langchain-core writes ``id`` and metadata into
every chunk it is handed, so chunks cannot be reused across calls), the first
carrying the model name and the last the usage and finish reason, as a real
provider integration does; ``_generate`` builds one message with usage.

Two cases, each for ``stream``, ``astream``, ``invoke`` and ``ainvoke`` at 3,
20 and 2000 chunks:

- *fresh*: what a test does. Every call builds its model and plays its one
  turn once (the model's first call), on both sides.
- *reused*: one model plays the same turn again and again (its first call was
  a warm-up, not timed), on both sides.

Every call has one no-op inline callback handler attached, so langchain-core
dispatches callbacks as it does in a recorded test. Also: FakeChatModel.astream
against langchain-core's ``GenericFakeChatModel.astream`` on the same text.
Timing rules: see ``_harness.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from functools import partial
from typing import Any

from _harness import Row, Section, arguments, measure, on_loop, render, row
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import Field

from fakellm import FakeChatModel, Script, Turn

SIZES = (3, 20, 2000)
GENERIC_CHUNKS = 20
PATHS = ("stream", "astream", "invoke", "ainvoke")
TARGETS = {  # (path kind, chunks) -> ratio target against the floor
    ("stream", 3): "<= 1.10",
    ("stream", 20): "<= 1.00",
    ("stream", 2000): "<= 1.00",
    ("invoke", 3): "<= 1.15",
    ("invoke", 20): "<= 1.15",
    ("invoke", 2000): "<= 1.15",
}


class NoOp(BaseCallbackHandler):
    """An inline handler that does nothing: makes core dispatch every callback."""

    run_inline = True


class Floor(BaseChatModel):
    """The cheapest correct chat model: fresh chunks per call, the model name on
    the first, usage on the last (the floor every target row is measured against).
    """

    # Kept out of the repr: a real integration's model holds its settings, not its
    # replies, so what core serializes on its first call does not grow with them.
    words: list[str] = Field(repr=False)
    model_name: str = "floor-model"

    @property
    def _llm_type(self) -> str:
        return "floor"

    def _usage(self, messages: list[BaseMessage]) -> UsageMetadata:
        n = len(self.words)
        return {"input_tokens": 3, "output_tokens": n, "total_tokens": n + 3}

    def _message_id(self) -> str | None:
        return None

    def _chunks(self, messages: list[BaseMessage]) -> Iterator[ChatGenerationChunk]:
        message_id = self._message_id()
        words, last = self.words, len(self.words) - 1
        for i, word in enumerate(words):
            if i == 0:
                msg = AIMessageChunk(
                    content=word, id=message_id, response_metadata={"model_name": self.model_name}
                )
            elif i == last:
                msg = AIMessageChunk(
                    content=word,
                    id=message_id,
                    usage_metadata=self._usage(messages),
                    response_metadata={"finish_reason": "stop"},
                    chunk_position="last",
                )
            else:
                msg = AIMessageChunk(content=word, id=message_id)
            yield ChatGenerationChunk(message=msg)

    def _result(self, message: AIMessage, usage: UsageMetadata) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        usage = self._usage(messages)
        message = AIMessage(
            content="".join(self.words),
            id=self._message_id(),
            usage_metadata=usage,
            response_metadata={"model_name": self.model_name, "finish_reason": "stop"},
        )
        return self._result(message, usage)

    async def _agenerate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        return self._generate(messages)

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        yield from self._chunks(messages)

    async def _astream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._chunks(messages):
            yield chunk


class IntegrationFloor(Floor):
    """The floor plus what a real integration also does per call, network aside
    (as ``ChatOpenAI`` does): it reads its input into the request payload and
    counts its tokens, puts a provider message id on the reply and on every chunk,
    returns an ``llm_output`` of usage and model name that ``generate`` sums, and
    names provider and model for tracing. Its rows are reported beside the
    target rows, never instead of them.
    """

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "floor"
        params["ls_model_name"] = kwargs.get("model") or self.model_name
        return params

    def _combine_llm_outputs(self, llm_outputs: list[dict[str, Any] | None]) -> dict[str, Any]:
        usage: dict[str, int] = {}
        for out in llm_outputs:
            for key, count in (out or {}).get("token_usage", {}).items():
                usage[key] = usage.get(key, 0) + count
        return {"token_usage": usage, "model_name": self.model_name}

    def _usage(self, messages: list[BaseMessage]) -> UsageMetadata:
        request = [{"role": m.type, "content": m.content} for m in messages]
        n = len(self.words)
        i = sum(len(str(m["content"]).split()) for m in request)
        return {"input_tokens": i, "output_tokens": n, "total_tokens": n + i}

    def _message_id(self) -> str | None:
        return f"floor-{uuid.uuid4()}"

    def _result(self, message: AIMessage, usage: UsageMetadata) -> ChatResult:
        llm_output = {
            "token_usage": {
                "prompt_tokens": usage["input_tokens"],
                "completion_tokens": usage["output_tokens"],
                "total_tokens": usage["total_tokens"],
            },
            "model_name": self.model_name,
        }
        return ChatResult(generations=[ChatGeneration(message=message)], llm_output=llm_output)


def words(n: int) -> list[str]:
    return [f"w{i} " for i in range(n)]


def _fake(chunks: list[str], *, reused: bool) -> FakeChatModel:
    turn = Turn(chunks=chunks)
    script = Script([turn], when_exhausted="repeat_last") if reused else [turn]
    return FakeChatModel(script=script)


def _calls(n: int, budget: int, path: str = "stream") -> int:
    """Calls per timed section: about ``budget`` chunks' worth, at least one.

    An invoke returns one message, so its cost does not grow with the chunks as
    a stream's does: its sections are sized as 20-chunk ones (a section of one
    call measured noise: 0.95x-2.98x across the rounds of one run).
    """
    return max(1, budget // (min(n, INVOKE_UNIT) if path.endswith("invoke") else n))


INVOKE_UNIT = 20
# Chunks of the rows against IntegrationFloor (informational, no target).
INTEGRATION_SIZE = 20


def _section(
    make: Callable[[], BaseChatModel],
    path: str,
    calls: int,
    loop: asyncio.AbstractEventLoop,
) -> Section:
    """``calls`` calls of ``path`` on models from ``make`` (each call asks ``make``)."""

    if path == "stream":

        def sync_stream() -> int:
            for _ in range(calls):
                for _chunk in make().stream("hi", config={"callbacks": [NoOp()]}):
                    pass
            return calls

        return sync_stream
    if path == "invoke":

        def sync_invoke() -> int:
            for _ in range(calls):
                make().invoke("hi", config={"callbacks": [NoOp()]})
            return calls

        return sync_invoke

    async def run_async() -> int:
        for _ in range(calls):
            model = make()
            if path == "astream":
                async for _chunk in model.astream("hi", config={"callbacks": [NoOp()]}):
                    pass
            else:
                await model.ainvoke("hi", config={"callbacks": [NoOp()]})
        return calls

    return on_loop(loop, run_async)


def _const(model: BaseChatModel) -> Callable[[], BaseChatModel]:
    return lambda: model


def sections(
    budget: int, loop: asyncio.AbstractEventLoop, sizes: tuple[int, ...] = SIZES
) -> dict[str, Section]:
    """Every timed section, by name ``"<model> <case> <path> <n>"``; µs per call."""
    out: dict[str, Section] = {}
    for n in sizes:
        # Both sides build their model from the same text, made once: a test's
        # reply text is written, not generated, so making it is no part of the cost.
        text = words(n)
        fresh = {"fake": partial(_fake, text, reused=False), "floor": partial(Floor, words=text)}
        reused = {"fake": _const(_fake(text, reused=True)), "floor": _const(Floor(words=text))}
        for path in PATHS:
            calls = _calls(n, budget, path)
            for side in ("fake", "floor"):
                # A reused model's first call (and core's serialization of it) is not timed.
                _section(reused[side], path, 1, loop)()
                out[f"{side} fresh {path} {n}"] = _section(fresh[side], path, calls, loop)
                out[f"{side} reused {path} {n}"] = _section(reused[side], path, calls, loop)
        if n == INTEGRATION_SIZE:
            for path in PATHS:
                out[f"integration fresh {path} {n}"] = _section(
                    partial(IntegrationFloor, words=text), path, _calls(n, budget, path), loop
                )
    text = "".join(words(GENERIC_CHUNKS))

    def generic() -> BaseChatModel:
        return GenericFakeChatModel(messages=iter([AIMessage(text)]))

    calls = _calls(GENERIC_CHUNKS, budget)
    out["generic astream"] = _section(generic, "astream", calls, loop)
    out["fake vs generic astream"] = _section(
        partial(_fake, words(GENERIC_CHUNKS), reused=False), "astream", calls, loop
    )
    return out


def rows(budget: int = 2000, n_rounds: int = 9, sizes: tuple[int, ...] = SIZES) -> list[Row]:
    """Report rows for ``benchmarks/run.py``: µs per call, ratio to the floor per round."""
    times = measure(lambda loop: sections(budget, loop, sizes), n_rounds)
    out = []
    for case in ("fresh", "reused"):
        for path in PATHS:
            for n in sizes:
                kind = "invoke" if path.endswith("invoke") else "stream"
                out.append(
                    row(
                        f"FakeChatModel.{path} {case}, {n} chunks vs floor",
                        times,
                        f"fake {case} {path} {n}",
                        f"floor {case} {path} {n}",
                        "µs/call",
                        TARGETS.get((kind, n), ""),
                    )
                )
    if INTEGRATION_SIZE in sizes:
        n = INTEGRATION_SIZE
        for path in PATHS:
            out.append(
                row(
                    f"FakeChatModel.{path} fresh, {n} chunks vs integration-like floor",
                    times,
                    f"fake fresh {path} {n}",
                    f"integration fresh {path} {n}",
                    "µs/call",
                    "",
                )
            )
    out.append(
        row(
            f"FakeChatModel.astream fresh vs GenericFakeChatModel, {GENERIC_CHUNKS} chunks",
            times,
            "fake vs generic astream",
            "generic astream",
            "µs/call",
            "<= 0.20",
        )
    )
    return out


def main() -> None:
    args = arguments(__doc__, rounds=9, budget=2000)
    print("\n".join(render(rows(args.budget, args.rounds))))


if __name__ == "__main__":
    main()
