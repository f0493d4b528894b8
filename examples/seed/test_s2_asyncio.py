"""S2: the tutorial's asyncio program, replayed on virtual time.

The tutorial's second program starts ``compute`` (which awaits
``asyncio.sleep(0.5)``) and ``another_task`` (``asyncio.sleep(1)``) with
``asyncio.create_task`` and shows that their prints interleave: start compute,
start another, finish compute, finish another. Here the same coroutines run on
fakellm's virtual-time loop: the sleeps cost no wall-clock time, and every print
happens at an exact, repeatable instant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

Say = Callable[[str], None]

# -- the tutorial's program (print kept as a parameter so tests can stamp it) --


async def compute(x: int, y: int, callback: Callable[[int], None], say: Say = print) -> None:
    say("Starting compute...")
    await asyncio.sleep(0.5)  # an asynchronous operation
    result = x + y
    callback(result)
    say("Finished compute...")


async def another_task(say: Say = print) -> None:
    say("Starting another task...")
    await asyncio.sleep(1)
    say("Finished another task...")


async def main(callback: Callable[[int], None], say: Say = print) -> None:
    say("Main starts...")
    task1 = asyncio.create_task(compute(3, 4, callback, say))
    task2 = asyncio.create_task(another_task(say))
    await task1
    await task2
    say("Main ends...")


# -- the tests ----------------------------------------------------------------


@pytest.mark.asyncio(loop_factories=["virtual_time"])
async def test_the_prints_interleave_in_the_order_the_delays_decide(
    capsys: pytest.CaptureFixture[str],
):
    await main(callback=lambda value: None)  # the tutorial comments the callback out

    assert capsys.readouterr().out == (
        "Main starts...\n"
        "Starting compute...\n"
        "Starting another task...\n"
        "Finished compute...\n"
        "Finished another task...\n"
        "Main ends...\n"
    )


@pytest.mark.asyncio(loop_factories=["virtual_time"])
async def test_each_print_happens_at_an_exact_virtual_instant():
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    said: list[tuple[float, str]] = []

    def say(text: str) -> None:
        said.append((loop.time() - t0, text))

    def print_result(value: int) -> None:
        say(f"The result is: {value}")

    await main(print_result, say)

    assert said == [
        (0.0, "Main starts..."),
        (0.0, "Starting compute..."),
        (0.0, "Starting another task..."),
        (0.5, "The result is: 7"),
        (0.5, "Finished compute..."),
        (1.0, "Finished another task..."),
        (1.0, "Main ends..."),
    ]
    # Exactly 1.0: on a real loop it would be a little more, and take a second.
    assert loop.time() - t0 == 1.0


@pytest.mark.asyncio
@pytest.mark.fakellm(virtual_time=True, start="2024-05-01T09:00:00")
async def test_the_wall_clock_follows_the_virtual_one():
    stamps: list[str] = []

    def say(text: str) -> None:
        stamps.append(f"{datetime.now():%H:%M:%S.%f} {text}")

    await main(callback=lambda value: None, say=say)

    assert stamps == [
        "09:00:00.000000 Main starts...",
        "09:00:00.000000 Starting compute...",
        "09:00:00.000000 Starting another task...",
        "09:00:00.500000 Finished compute...",
        "09:00:01.000000 Finished another task...",
        "09:00:01.000000 Main ends...",
    ]
    assert datetime.now() - datetime(2024, 5, 1, 9) == timedelta(seconds=1)
