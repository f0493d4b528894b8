"""Who gets which queued turn: input order for ``batch``, and a race detector.

A script's queued turns are handed out in the order calls take them. That
order is the app's own when calls are sequential, or concurrent on one event
loop (the virtual-time loop runs them in a reproducible order). It is the
thread scheduler's when calls run in several threads at once: a thread-pool
fan-out (``RunnableParallel.invoke``, a LangGraph step with several tasks,
``Send``), or threads the test starts. Then another run may give two calls
each other's turns.

Two things here:

* :func:`ordered_batch` gives input *i* of a sync ``batch`` the turn a
  sequential loop would have given it: each input's first take waits until
  every earlier input has taken its own.
* :func:`origin` tells the script player whether a take's order was decided
  by threads, so it can record the race and strict teardown can fail the test
  on its first run (the fix: route such calls with rules, or opt out).

Pure: no LangChain; only threading and contextvars.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["Origin", "in_turn", "ordered_batch", "origin", "race_message"]

T = TypeVar("T")


class _Gate:
    """Lets batch input *i* take its first turn only after inputs 0..i-1 took theirs."""

    def __init__(self, size: int) -> None:
        self._cond = threading.Condition()
        self._taken = [False] * size
        self._next = 0

    def wait(self, i: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._next >= i)

    def done(self, i: int) -> None:
        with self._cond:
            if self._taken[i]:
                return
            self._taken[i] = True
            while self._next < len(self._taken) and self._taken[self._next]:
                self._next += 1
            self._cond.notify_all()


@dataclass
class _Slot:
    owner: object
    gate: _Gate
    index: int
    first: bool = True


_slot: contextvars.ContextVar[_Slot | None] = contextvars.ContextVar(
    "fakellm_batch_slot", default=None
)


def ordered_batch(
    owner: object,
    inputs: Sequence[Any],
    run: Callable[[Callable[[int, Any], Any]], list[T]],
) -> list[T]:
    """Run ``batch`` so that input *i* takes the *i*-th queued turn of ``owner``.

    Args:
        owner: the model whose takes are ordered (other models are not held).
        inputs: the batch's inputs.
        run: runs ``per_input(i, input)`` for every input (in threads, as
            ``Runnable.batch`` does) and returns the outputs in input order.
    """
    gate = _Gate(len(inputs))

    def per_input(i: int, call: Any) -> Any:
        token = _slot.set(_Slot(owner, gate, i))
        try:
            return call()
        finally:
            _slot.reset(token)
            gate.done(i)  # also when the input failed before taking a turn

    return run(per_input)


@contextlib.contextmanager
def in_turn(owner: object) -> Iterator[bool]:
    """Wrap one take by ``owner``: wait for the batch order; yield whether it is ordered."""
    slot = _slot.get()
    if slot is None or slot.owner is not owner or not slot.first:
        yield False
        return
    slot.gate.wait(slot.index)
    slot.first = False
    try:
        yield True
    finally:
        slot.gate.done(slot.index)


@dataclass(frozen=True)
class Origin:
    """Where a take came from: the thread, and whether threads decided its order."""

    thread: str
    by_threads: bool


def origin(ordered: bool) -> Origin:
    """The origin of a take made now, in this thread.

    A take is ordered by the app when it is made in the main thread, in a
    thread running an event loop (the loop orders its tasks), or as a
    batch input's first take (:func:`ordered_batch`). Anywhere else (a pool
    worker, a thread the test started) threads decided when it happened.
    """
    thread = threading.current_thread()
    if ordered or thread is threading.main_thread():
        return Origin(thread.name, by_threads=False)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return Origin(thread.name, by_threads=True)
    return Origin(thread.name, by_threads=False)


def race_message(label: str, races: Sequence[str]) -> str:
    """The teardown finding for a model whose queued turns threads handed out."""
    lines = "\n".join(f"  - {line}" for line in races)
    return (
        f"{label} handed out queued turns in an order that thread scheduling decided:\n"
        f"{lines}\nAnother run may give these calls each other's turns. Route them by "
        "what they ask with rules (Rule(match=...), Rule(match_last=...), Rule(node=...) "
        "for LangGraph nodes), call model.batch(...) (it keeps input order), or, if any "
        "order is fine, opt out with Script(..., allow_races=True)."
    )
