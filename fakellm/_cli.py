"""The ``fakellm`` command: ``fakellm demo`` plays a bundled scenario offline."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from importlib import resources

from langchain_core.callbacks import get_usage_metadata_callback
from langchain_core.messages import AIMessageChunk

from fakellm._clock import run_scenario
from fakellm._model import FakeChatModel
from fakellm._script import parse_script_text

DEMO_PROMPT = "Which flowers suit a birthday? Just 3, under 50 characters."


def _bundled(name: str) -> str:
    return resources.files("fakellm.scenarios").joinpath(name).read_text(encoding="utf-8")


async def _stream(model: FakeChatModel, prompt: str, out: list[str]) -> AIMessageChunk | None:
    full: AIMessageChunk | None = None
    async for chunk in model.astream(prompt):
        out.append(chunk.text)
        full = chunk if full is None else full + chunk
    return full


def demo() -> int:
    """Play the bundled flower-shop scenario and print its stream and usage."""
    script = parse_script_text(_bundled("flower_shop.yaml"), source="flower_shop.yaml")
    model = FakeChatModel(script=script, model="gpt-4o-mini")
    tokens: list[str] = []
    started = time.perf_counter()
    with get_usage_metadata_callback() as usage:
        outcome = run_scenario(_stream(model, DEMO_PROMPT, tokens))
    wall = time.perf_counter() - started
    print("== flower shop (streamed) ==")
    print(f"prompt: {DEMO_PROMPT}")
    print("tokens: " + " | ".join(repr(t) for t in tokens))
    print(f"answer: {''.join(tokens)}")
    for name, u in usage.usage_metadata.items():
        print(
            f"usage[{name}]: input={u['input_tokens']} output={u['output_tokens']} "
            f"total={u['total_tokens']}"
        )
    print(f"virtual time: {outcome.elapsed:.2f} s (scripted latency)")
    print(f"wall time: {wall:.3f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fakellm`` console script."""
    parser = argparse.ArgumentParser(prog="fakellm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help="play the bundled scenarios offline")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo()
    parser.error(f"unknown command {args.command!r}")  # pragma: no cover
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
