"""Who gets which queued turn: input order for ``batch``/``abatch``, and a race detector.

A script's queued turns are handed out in the order calls take them. That
order is the app's own when calls are sequential, or concurrent on one event
loop (the virtual-time loop runs them in a reproducible order). It is the
thread scheduler's when calls run in several threads at once: a thread-pool
fan-out (``RunnableParallel.invoke``, a LangGraph step with several tasks,
``Send``), or threads the test starts. Then another run may give two calls
each other's turns.

Three things here:

* :func:`ordered_batch` / :func:`ordered_abatch` give input *i* of a batch the
  turns a sequential loop would have given it, retries included: input *i*
  takes only after every earlier input took its last turn (a turn that cannot
  fail is its last; after one that fails, the input may retry until it ends).
* :func:`fork` marks work that fakellm's own code hands to another thread and
  takes back (the virtual loop's executor jobs), so the detector knows when
  such work began and when its result was handed back.
* :class:`RaceLog` records takes whose order threads may have decided and
  reports those that no known order separates. Work the app handed to a
  thread fakellm does not see hand off and take back (a thread pool, a
  thread it started) counts as concurrent with every other such take: a
  fan-out's branches usually run one after the other under the GIL, so how
  they happened to run proves nothing about how they may run next time.

Pure: no LangChain; only threading, asyncio and contextvars.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fakellm._compat import get_running_loop_or_none

__all__ = [
    "UNORDERED",
    "Origin",
    "RaceLog",
    "Taking",
    "Unit",
    "async_call",
    "await_turn",
    "by_threads",
    "fork",
    "hopped",
    "in_batch",
    "in_turn",
    "ordered_abatch",
    "ordered_batch",
    "origin",
    "race_message",
]

T = TypeVar("T")


class _Gate:
    """Lets batch input *i* take only after inputs 0..i-1 took their last turn."""

    def __init__(self, size: int) -> None:
        self._cond = threading.Condition()
        self._done = [False] * size
        self._next = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def wait(self, i: int) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._next >= i)

    async def await_turn(self, i: int) -> None:
        with self._cond:
            if self._next >= i:
                return
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append((i, waiter))
        await waiter

    def done(self, i: int) -> None:
        with self._cond:
            if self._done[i]:
                return
            self._done[i] = True
            while self._next < len(self._done) and self._done[self._next]:
                self._next += 1
            self._cond.notify_all()
            ready = [w for j, w in self._waiters if j <= self._next]
            self._waiters = [(j, w) for j, w in self._waiters if j > self._next]
        for waiter in ready:
            waiter.get_loop().call_soon_threadsafe(_wake, waiter)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


@dataclass
class _Slot:
    owner: object
    gate: _Gate
    index: int


_slot: contextvars.ContextVar[_Slot | None] = contextvars.ContextVar(
    "fakellm_batch_slot", default=None
)


def ordered_batch(
    owner: object,
    inputs: Sequence[Any],
    run: Callable[[Callable[[int, Callable[[], T]], T]], list[Any]],
) -> list[Any]:
    """Run a sync batch so that input *i* takes the turns a sequential loop gives it.

    Args:
        owner: the model whose takes are ordered (other models are not held).
        inputs: the batch's inputs.
        run: calls ``per_input(i, call)`` for every input, where ``call()``
            runs input *i* (in threads, as ``Runnable.batch`` does), and
            returns the outputs in input order.
    """
    gate = _Gate(len(inputs))

    def per_input(i: int, call: Callable[[], T]) -> T:
        token = _slot.set(_Slot(owner, gate, i))
        try:
            return call()
        finally:
            _slot.reset(token)
            gate.done(i)  # also when the input failed before taking a turn

    return run(per_input)


async def ordered_abatch(
    owner: object, calls: Sequence[Callable[[], Awaitable[T]]], limit: int | None
) -> list[T]:
    """``ordered_batch`` for coroutines on one loop, any loop: ``calls[i]()`` runs input *i*.

    At most ``limit`` inputs run at once (``max_concurrency``), started in input order.
    """
    gate = _Gate(len(calls))
    semaphore = asyncio.Semaphore(limit) if limit else None

    async def one(i: int, call: Callable[[], Awaitable[T]]) -> T:
        async with semaphore or contextlib.nullcontext():
            _slot.set(_Slot(owner, gate, i))  # this task's own context
            try:
                return await call()
            finally:
                gate.done(i)

    return list(await asyncio.gather(*(one(i, c) for i, c in enumerate(calls))))


def in_batch(owner: object) -> bool:
    """Whether this call is an input of ``owner``'s own batch (its takes are ordered)."""
    slot = _slot.get()
    return slot is not None and slot.owner is owner


async def await_turn(owner: object) -> None:
    """On an async path, wait (without blocking the loop) for this batch input's turn."""
    slot = _slot.get()
    if slot is not None and slot.owner is owner:
        await slot.gate.await_turn(slot.index)


@dataclass
class Taking:
    """One take under way: whether a batch orders it, and how to report what it got."""

    ordered: bool
    _slot: _Slot | None = None

    def took(self, answer: object) -> None:
        """Let the next batch input take its turn: each input of a model's own
        ``batch`` is one call, so it takes one turn (an answer, an error or an
        async responder's promise), and the inputs then run on concurrently."""
        if self._slot is not None:
            self._slot.gate.done(self._slot.index)


class _InTurn:
    """The context manager :func:`in_turn` returns (a class: one per take, on every call)."""

    __slots__ = ("_taking",)

    def __init__(self, taking: Taking) -> None:
        self._taking = taking

    def __enter__(self) -> Taking:
        return self._taking

    def __exit__(self, *exc: object) -> None:
        return None


# A take no batch orders: ``took`` has no slot to report to, so one object serves all
# (a caller that sees it may skip the ``with``: it waits for nothing, reports nothing).
UNORDERED = _InTurn(Taking(ordered=False))


def in_turn(owner: object) -> _InTurn:
    """Wrap one take by ``owner``: wait for the batch order (threads block here)."""
    slot = _slot.get()
    if slot is None or slot.owner is not owner:
        return UNORDERED
    slot.gate.wait(slot.index)
    return _InTurn(Taking(ordered=True, _slot=slot))


_stamps = itertools.count(1)
_stamp_lock = threading.Lock()


def _stamp() -> int:
    with _stamp_lock:
        return next(_stamps)


@dataclass(eq=False)
class Unit:
    """Work fakellm's own code handed to a thread: when it was handed over and taken back."""

    forked: int = field(default_factory=_stamp)
    joined: int | None = None
    #: Set in the worker once ``run`` has an outcome; the loop may wait on it.
    finished: threading.Event = field(default_factory=threading.Event)
    #: Whether the loop already waited for it (it does so once).
    waited: bool = False
    #: For an async call (:func:`async_call`): it went through the executor first.
    hopped: bool = False
    _outcome: tuple[bool, Any] | None = None

    def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func`` in the current thread as this unit, keeping its outcome."""
        stack = _units.__dict__.setdefault("stack", [])
        stack.append(self)
        try:
            value = func(*args)
        except BaseException as exc:
            self._outcome = (False, exc)
            raise
        else:
            self._outcome = (True, value)
            return value
        finally:
            stack.pop()
            self.finished.set()

    def hand_back(self, future: asyncio.Future[Any]) -> bool:
        """Settle ``future`` with the outcome now, if there is one; whether it did."""
        if self._outcome is None:
            return False
        ok, value = self._outcome
        if ok:
            future.set_result(value)
        elif isinstance(value, Exception) and not isinstance(value, StopIteration):
            future.set_exception(value)
        else:
            # KeyboardInterrupt and the like, and StopIteration (which a future
            # refuses): the executor's own path, as on a stock loop.
            return False
        return True

    def join(self, _done: object = None) -> None:
        """The result is back with the code that handed the work over (a done-callback)."""
        if self.joined is None:
            self.joined = _stamp()

    def before(self, other: Unit) -> bool:
        """Whether this unit's result was back before ``other`` was handed over."""
        return self.joined is not None and self.joined < other.forked


_units = threading.local()


class _AsyncCall:
    """One async call of a model (see :func:`async_call`).

    Its :class:`Unit` is only built if the call hops (:func:`hopped`): only then
    can the race detector ask when it was handed over and back. The stamp of
    its hand-over is taken as the call starts all the same.
    """

    __slots__ = ("_token", "forked", "unit")

    def __enter__(self) -> None:
        self.forked = _stamp()
        self.unit: Unit | None = None
        self._token = _call.set(self)

    def __exit__(self, *exc: object) -> None:
        if self.unit is not None:
            self.unit.join()
        _call.reset(self._token)


_call: contextvars.ContextVar[_AsyncCall | None] = contextvars.ContextVar(
    "fakellm_async_call", default=None
)


def async_call() -> _AsyncCall:
    """Wrap one async call of a model: it is handed over as it starts, back as it ends.

    On a stock event loop, the executor hop LangChain makes for a sync callback
    handler ends when the thread ends it; of two calls in flight at once that
    both hopped (:func:`hopped`), either may take the next turn first.
    """
    return _AsyncCall()


def hopped() -> None:
    """The current async call went through the executor, on a loop that does not order it."""
    call = _call.get()
    if call is not None and call.unit is None:
        call.unit = Unit(forked=call.forked, hopped=True)


def fork() -> Unit:
    """A unit handed over now; call :meth:`Unit.run` in the thread, :meth:`Unit.join` after."""
    return Unit()


@dataclass(frozen=True)
class Origin:
    """Where a take came from: the thread, whether threads may have decided its
    order, and the unit of handed-over work it ran in (None if fakellm did not hand it)."""

    thread: str
    by_threads: bool
    unit: Unit | None = None


def origin(ordered: bool) -> Origin:
    """The origin of a take made now, in this thread.

    A take is ordered by the app when it is made in the main thread, in a
    thread running an event loop (the loop orders its tasks; unless the call
    :func:`hopped`), or by a batch input (:func:`ordered_batch`). Anywhere
    else (a pool worker, a thread the test started) threads may have decided
    when it happened.
    """
    where = by_threads(ordered)
    return where if where is not None else Origin(threading.current_thread().name, False)


def by_threads(ordered: bool) -> Origin | None:
    """:func:`origin` of a take whose order threads may have decided; None (and nothing
    built) for a take the app ordered, which is nearly every take."""
    if ordered:
        return None
    if get_running_loop_or_none() is None:
        # The main thread by its id: no Thread lookup on the common direct call.
        if threading.get_ident() == threading.main_thread().ident:
            return None
        thread = threading.current_thread()
        stack: list[Unit] = getattr(_units, "stack", [])
        return Origin(thread.name, by_threads=True, unit=stack[-1] if stack else None)
    call = _call.get()
    if call is not None and call.unit is not None:  # it hopped
        return Origin(threading.current_thread().name, by_threads=True, unit=call.unit)
    return None


def _may_swap(a: Origin, b: Origin) -> bool:
    """Whether thread scheduling could have put these two takes the other way round."""
    if a.unit is None or b.unit is None:
        return True  # handed over by code fakellm does not see: no known order
    if a.unit is b.unit:
        return False  # one piece of work, run start to end in one thread
    return not (a.unit.before(b.unit) or b.unit.before(a.unit))


class RaceLog:
    """Queued takes whose order threads may have decided; reports those that raced."""

    def __init__(self) -> None:
        self._takes: list[tuple[int, int, Origin]] = []

    def record(self, call_index: int, turn_index: int, where: Origin) -> None:
        """Note a take by ``call_index`` of queued turn ``turn_index`` (if threads may order it)."""
        if where.by_threads:
            self._takes.append((call_index, turn_index, where))

    def raced(self) -> list[tuple[int, int, str]]:
        """(call index, turn index, thread) of each take another one could have swapped with."""
        takes = self._takes
        return [
            (index, k, where.thread)
            for n, (index, k, where) in enumerate(takes)
            if any(_may_swap(where, other) for m, (_, _, other) in enumerate(takes) if m != n)
        ]


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
