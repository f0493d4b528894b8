"""Unit tests of virtual time: the clock, the loop, virtual_time and run_scenario.

No LangChain here. No wall-clock assertions; the only real sleeps are tiny ones
inside executor jobs, which is what those tests are about.
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime as dt
import gc
import socket
import time
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor

import freezegun.api
import pytest

from fakellm import _clock
from fakellm._clock import (
    DEFAULT_START,
    LeakedTasks,
    ScenarioResult,
    VirtualClock,
    VirtualTimeLoop,
    run_scenario,
    virtual_loop_factory,
    virtual_time,
)
from fakellm.errors import DeadlockError, FakeLLMError

START = dt.datetime(2024, 1, 1, 0, 0, 0)


def now_loop() -> float:
    return asyncio.get_running_loop().time()


def run_on_virtual_loop(coro_fn, **loop_kwargs):
    """Run on a bare VirtualTimeLoop through asyncio.Runner, as pytest-asyncio does."""
    loop = VirtualTimeLoop(**loop_kwargs)
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        return runner.run(coro_fn()), loop


def freezegun_stopped() -> bool:
    return dt.datetime is freezegun.api.real_datetime


# ------------------------------------------------------------------ VirtualClock


class TestVirtualClock:
    def test_starts_at_the_default_instant(self):
        clock = VirtualClock()
        assert clock.start == DEFAULT_START == START
        assert clock.elapsed == 0.0
        assert clock.ticks == 0
        assert clock.now() == START

    def test_advance_is_exact_to_the_microsecond(self):
        clock = VirtualClock()
        for _ in range(10):
            clock.advance(0.1)
        assert clock.ticks == 1_000_000
        assert clock.elapsed == 1.0
        assert clock.now() == START + dt.timedelta(seconds=1)

    def test_aware_start_is_converted_to_naive_utc(self):
        tz = dt.timezone(dt.timedelta(hours=2))
        clock = VirtualClock(dt.datetime(2030, 6, 1, 12, 0, tzinfo=tz))
        assert clock.start == dt.datetime(2030, 6, 1, 10, 0)

    def test_iso_string_start(self):
        assert VirtualClock("2025-03-04T05:06:07").start == dt.datetime(2025, 3, 4, 5, 6, 7)

    @pytest.mark.parametrize("bad", [12, 1.5, dt.date(2024, 1, 1)])
    def test_bad_start_type(self, bad):
        with pytest.raises(TypeError, match=r"start=.*expected a datetime"):
            VirtualClock(bad)

    def test_bad_start_string(self):
        with pytest.raises(ValueError, match=r"start='yesterday': expected an ISO-8601"):
            VirtualClock("yesterday")

    @pytest.mark.parametrize("bad", [-0.5, float("nan"), float("inf")])
    def test_advance_rejects_bad_values(self, bad):
        with pytest.raises(ValueError, match=r"seconds="):
            VirtualClock().advance(bad)

    @pytest.mark.parametrize("bad", ["1", True, None])
    def test_advance_rejects_non_numbers(self, bad):
        with pytest.raises(TypeError, match=r"seconds=.*expected a number"):
            VirtualClock().advance(bad)


# ---------------------------------------------------------------- VirtualTimeLoop


async def seed_s2(out: list[str]) -> None:
    """The seed's S2 program, printing into ``out``."""

    async def compute() -> None:
        out.append("start compute")
        await asyncio.sleep(0.5)
        out.append("finish compute")

    async def another_task() -> None:
        out.append("start another")
        await asyncio.sleep(1)
        out.append("finish another")

    task1 = asyncio.create_task(compute())
    task2 = asyncio.create_task(another_task())
    await task1
    await task2


class TestLoop:
    def test_seed_s2_interleaving_and_elapsed(self, capsys):
        async def main() -> None:
            out: list[str] = []
            await seed_s2(out)
            print("\n".join(out))

        result = run_scenario(main)
        assert capsys.readouterr().out.splitlines() == [
            "start compute",
            "start another",
            "finish compute",
            "finish another",
        ]
        assert result.elapsed == 1.0

    def test_works_as_asyncio_runner_loop_factory(self):
        async def main() -> float:
            await asyncio.sleep(5)
            await asyncio.sleep(48 * 3600)
            return now_loop()

        result, loop = run_on_virtual_loop(main, budget=3 * 86_400)
        assert result == 5 + 48 * 3600
        assert loop.is_closed()

    def test_equal_deadlines_fire_first_in_first_out(self):
        async def main() -> list[int]:
            woke: list[int] = []

            async def sleeper(i: int) -> None:
                await asyncio.sleep(1.0)
                woke.append(i)

            await asyncio.gather(*(sleeper(i) for i in range(8)))
            return woke

        assert run_scenario(main).results == ([0, 1, 2, 3, 4, 5, 6, 7],)

    def test_float_noise_does_not_reorder_timers(self):
        # Unrounded, 0.1 + 0.2 = 0.30000000000000004 > 0.15 + 0.15 = 0.3 and
        # "b" would wake first. Rounded to 1 µs both are due at 0.3, and "a"
        # scheduled its timer first (at 0.1, "b" at 0.15).
        woke: list[tuple[str, float]] = []

        async def b() -> None:
            await asyncio.sleep(0.15)
            await asyncio.sleep(0.15)
            woke.append(("b", now_loop()))

        async def a() -> None:
            await asyncio.sleep(0.1)
            await asyncio.sleep(0.2)
            woke.append(("a", now_loop()))

        run_scenario(b, a)
        assert woke == [("a", 0.3), ("b", 0.3)]

    def test_deadlines_are_rounded_to_the_microsecond(self):
        async def main() -> tuple[float, float]:
            loop = asyncio.get_running_loop()
            handle = loop.call_at(0.1234564, lambda: None)
            await asyncio.sleep(0.0000004)  # rounds to "now"
            return handle.when(), now_loop()

        assert run_scenario(main).results == ((0.123456, 0.0),)

    def test_wait_for_times_out_at_virtual_one_second(self):
        async def main() -> float:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(asyncio.sleep(2), timeout=1.0)
            return now_loop()

        result = run_scenario(main)
        assert result.results == (1.0,)
        assert result.elapsed == 1.0

    def test_asyncio_timeout_and_taskgroup(self):
        async def main() -> list[tuple[str, float]]:
            seen: list[tuple[str, float]] = []

            async def job(name: str, delay: float) -> None:
                await asyncio.sleep(delay)
                seen.append((name, now_loop()))

            async with asyncio.TaskGroup() as tg:
                tg.create_task(job("slow", 3))
                tg.create_task(job("fast", 1))
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.25):
                    await asyncio.sleep(10)
            seen.append(("timeout", now_loop()))
            return seen

        assert run_scenario(main).results == ([("fast", 1.0), ("slow", 3.0), ("timeout", 3.25)],)

    def test_clock_ignores_freezegun_patched_monotonic(self):
        # freezegun patches time.monotonic to the frozen epoch; the loop must
        # not read it, so loop time still starts at 0 and moves only by jumps.
        async def main() -> tuple[float, float, float]:
            frozen_monotonic = time.monotonic()
            await asyncio.sleep(2)
            return now_loop(), time.monotonic() - frozen_monotonic, time.time()

        result = run_scenario(main)
        assert result.results == (
            (2.0, 2.0, dt.datetime(2024, 1, 1, 0, 0, 2, tzinfo=dt.UTC).timestamp()),
        )

    def test_sync_sleep_on_the_loop_thread_advances_the_loop_clock(self):
        # A sync delay blocks the loop, so time moves on and the other task's
        # timer is overdue when the loop gets control back.
        async def main() -> list[tuple[str, float]]:
            seen: list[tuple[str, float]] = []

            async def timer() -> None:
                await asyncio.sleep(0.5)
                seen.append(("timer", now_loop()))

            task = asyncio.create_task(timer())
            await asyncio.sleep(0)
            _clock.sleep(2.0)
            seen.append(("blocked", now_loop()))
            await task
            return seen

        result, _ = run_on_virtual_loop(main)
        assert result == [("blocked", 2.0), ("timer", 2.0)]

    def test_real_io_is_polled(self):
        async def main() -> tuple[bytes, float]:
            loop = asyncio.get_running_loop()
            left, right = socket.socketpair()
            left.setblocking(False)
            right.setblocking(False)
            try:

                async def send_later() -> None:
                    await asyncio.sleep(5)
                    right.send(b"hi")

                sender = asyncio.create_task(send_later())
                data = await loop.sock_recv(left, 10)
                await sender
                return data, now_loop()
            finally:
                left.close()
                right.close()

        assert run_scenario(main).results == ((b"hi", 5.0),)

    def test_bad_loop_arguments(self):
        with pytest.raises(TypeError, match=r"start=.*, budget=.* and clock=.*give one"):
            VirtualTimeLoop(start=START, clock=VirtualClock())
        with pytest.raises(TypeError, match=r"clock=3: expected a VirtualClock"):
            VirtualTimeLoop(clock=3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"freeze=1: expected True or False"):
            VirtualTimeLoop(freeze=1)  # type: ignore[arg-type]


# ------------------------------------------------------------------ cancellation


class TestCancellation:
    def test_cancelled_sleep_leaves_no_timer(self):
        async def main() -> tuple[int, int, float]:
            loop = asyncio.get_running_loop()
            assert isinstance(loop, VirtualTimeLoop)
            task = asyncio.create_task(asyncio.sleep(10))
            await asyncio.sleep(0)  # the sleep is now waiting on its timer
            during = loop.pending_timers
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return during, loop.pending_timers, now_loop()

        assert run_scenario(main).results == ((1, 0, 0.0),)

    def test_cancel_before_the_task_starts(self):
        async def main() -> tuple[bool, int]:
            loop = asyncio.get_running_loop()
            task = asyncio.create_task(asyncio.sleep(10))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return task.cancelled(), loop.pending_timers  # type: ignore[attr-defined]

        assert run_scenario(main).results == ((True, 0),)

    def test_cancelling_one_of_a_tie_keeps_the_others(self):
        async def main() -> tuple[list[str], int]:
            loop = asyncio.get_running_loop()
            woke: list[str] = []

            async def sleeper(name: str) -> None:
                await asyncio.sleep(1)
                woke.append(name)

            tasks = {n: asyncio.create_task(sleeper(n)) for n in "abc"}
            await asyncio.sleep(0.5)
            tasks["b"].cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            return woke, loop.pending_timers  # type: ignore[attr-defined]

        assert run_scenario(main).results == ((["a", "c"], 0),)

    def test_timeouts_leave_no_timers(self):
        async def main() -> int:
            loop = asyncio.get_running_loop()
            for _ in range(3):
                await asyncio.wait_for(asyncio.sleep(0.1), timeout=5)
                async with asyncio.timeout(5):
                    await asyncio.sleep(0.1)
            return loop.pending_timers  # type: ignore[attr-defined]

        result = run_scenario(main)
        assert result.results == (0,)
        assert result.elapsed == 0.6

    def test_timer_handle_cancel_after_firing_is_harmless(self):
        async def main() -> int:
            loop = asyncio.get_running_loop()
            fired: list[int] = []
            handle = loop.call_later(1, fired.append, 1)
            await asyncio.sleep(2)
            handle.cancel()
            assert fired == [1]
            return loop.pending_timers  # type: ignore[attr-defined]

        assert run_scenario(main).results == (0,)


# ---------------------------------------------------------------------- deadlocks


class TestDeadlock:
    def test_future_nobody_resolves(self):
        async def waiter() -> None:
            await asyncio.get_running_loop().create_future()

        with pytest.raises(DeadlockError) as excinfo:
            run_scenario(waiter)
        message = str(excinfo.value)
        assert "nothing can ever wake the event loop" in message
        assert "'scenario-0' at " in message
        assert "in waiter(): await asyncio.get_running_loop().create_future()" in message
        assert isinstance(excinfo.value, FakeLLMError)
        assert freezegun_stopped()

    def test_after_some_virtual_time_and_on_an_event(self):
        async def main() -> None:
            await asyncio.sleep(1.5)
            await asyncio.Event().wait()

        pattern = r"(?s)virtual time 1.5 s: .*'stuck' at .*Event\(\).wait\(\)"
        with pytest.raises(DeadlockError, match=pattern):
            run_scenario(main, names=["stuck"])

    def test_on_a_bare_runner(self):
        async def main() -> None:
            await asyncio.Queue().get()

        with pytest.raises(DeadlockError, match=r"1 task\(s\) are still waiting"):
            run_on_virtual_loop(main)


# ----------------------------------------------------------------- executor jobs


class TestExecutorJobs:
    def test_loop_waits_for_jobs_with_time_frozen(self):
        # A real 0.01 s job takes zero virtual time: it is done "before" a
        # 0.05 s timer, and the loop does not jump while it runs.
        async def main() -> list[tuple[str, float]]:
            seen: list[tuple[str, float]] = []

            async def timer() -> None:
                await asyncio.sleep(0.05)
                seen.append(("timer", now_loop()))

            task = asyncio.create_task(timer())
            await asyncio.to_thread(_clock._real_sleep, 0.01)
            seen.append(("job", now_loop()))
            await task
            return seen

        assert run_scenario(main).results == ([("job", 0.0), ("timer", 0.05)],)

    def test_waiting_only_on_a_job_is_not_a_deadlock(self):
        async def main() -> int:
            loop = asyncio.get_running_loop()
            value = await loop.run_in_executor(None, lambda: (time.sleep(0.01), 7)[1])
            return value + loop.pending_jobs  # type: ignore[attr-defined]

        assert run_scenario(main).results == (7,)

    def test_fakellm_sleep_in_a_job_advances_the_clock(self):
        # asyncio.to_thread copies the context, and so the scenario's sleeper.
        async def main() -> float:
            await asyncio.to_thread(_clock.sleep, 0.2)
            return now_loop()

        assert run_scenario(main).results == (0.2,)


# -------------------------------------------------------------- freezegun coupling


class TestFreezegun:
    def test_datetime_follows_virtual_time_exactly(self):
        async def main() -> list[tuple[dt.datetime, dt.date, float]]:
            seen = []
            for delay in (0.25, 1.25, 3600 - 1.5):
                await asyncio.sleep(delay)
                seen.append((dt.datetime.now(), dt.date.today(), time.time()))
            return seen

        result = run_scenario(main, start="2024-12-31T23:00:00")
        base = dt.datetime(2024, 12, 31, 23, 0)
        expected = [base + dt.timedelta(seconds=s) for s in (0.25, 1.5, 3600)]
        assert [now for now, _, _ in result.results[0]] == expected
        assert [today for _, today, _ in result.results[0]] == [
            dt.date(2024, 12, 31),
            dt.date(2024, 12, 31),
            dt.date(2025, 1, 1),
        ]
        assert [t for _, _, t in result.results[0]] == [
            e.replace(tzinfo=dt.UTC).timestamp() for e in expected
        ]
        assert result.end == base + dt.timedelta(hours=1)
        assert freezegun_stopped()

    def test_freeze_false_leaves_datetime_alone(self):
        async def main() -> bool:
            await asyncio.sleep(1)
            return freezegun_stopped()

        assert run_scenario(main, freeze=False).results == (True,)

    def test_loop_factory_freezes_until_close(self):
        factory = virtual_loop_factory(start="2030-01-01T00:00:00")

        async def main() -> dt.datetime:
            await asyncio.sleep(90)
            return dt.datetime.now()

        with asyncio.Runner(loop_factory=factory) as runner:
            assert runner.run(main()) == dt.datetime(2030, 1, 1, 0, 1, 30)
        assert freezegun_stopped()


# -------------------------------------------------------------------- determinism


async def _busy_scenario(trace: list[tuple[str, float, dt.datetime]]) -> None:
    async def worker(name: str, delays: list[float]) -> None:
        for delay in delays:
            await asyncio.sleep(delay)
            trace.append((name, now_loop(), dt.datetime.now()))

    async with asyncio.TaskGroup() as tg:
        tg.create_task(worker("a", [0.1, 0.2, 0.3, 0.0]))
        tg.create_task(worker("b", [0.15, 0.15, 0.3, 0.0]))
        tg.create_task(worker("c", [0.3, 0.3, 0.0, 0.0]))
        tg.create_task(worker("d", [0.6] * 2))


def test_same_scenario_hundred_times_gives_one_trace():
    traces = set()
    for _ in range(100):
        trace: list[tuple[str, float, dt.datetime]] = []
        result = run_scenario(_busy_scenario(trace))
        assert result.elapsed == 1.2
        traces.add(tuple(trace))
    assert len(traces) == 1
    (trace,) = traces
    # Hand-computed: timers due at one tick wake in the order they were set
    # (c's 0.3 s timer was set at 0, a's at 0.1, b's at 0.15); sleep(0) only
    # yields, so at 0.6 the tasks take turns once per loop iteration.
    assert [(name, t) for name, t, _ in trace] == [
        ("a", 0.1),
        ("b", 0.15),
        ("c", 0.3),
        ("a", 0.3),
        ("b", 0.3),
        ("d", 0.6),
        ("c", 0.6),
        ("a", 0.6),
        ("b", 0.6),
        ("c", 0.6),
        ("a", 0.6),
        ("b", 0.6),
        ("c", 0.6),
        ("d", 1.2),
    ]
    assert all(now == START + dt.timedelta(seconds=t) for _, t, now in trace)


# ------------------------------------------------------------------- run_scenario


class TestRunScenario:
    def test_results_in_order_with_names(self):
        async def sleeper(value: str, delay: float) -> str:
            await asyncio.sleep(delay)
            assert asyncio.current_task().get_name() == f"t-{value}"  # type: ignore[union-attr]
            return value

        result = run_scenario(sleeper("x", 2), sleeper("y", 1), names=["t-x", "t-y"])
        assert result == ScenarioResult(
            results=("x", "y"), elapsed=2.0, names=("t-x", "t-y"), start=START
        )

    def test_default_names(self):
        async def name() -> str:
            return asyncio.current_task().get_name()  # type: ignore[union-attr]

        assert run_scenario(name, name).results == ("scenario-0", "scenario-1")

    def test_accepts_coroutine_functions_and_sync_callables(self):
        async def coro_fn() -> str:
            await asyncio.sleep(1)
            return "async"

        def sync_fn() -> str:
            _clock.sleep(3)  # blocks the loop: advances the clock
            return "sync"

        # Task 1 blocks the loop from 0 to 3, so task 2 only starts its 1 s
        # sleep at 3 (task 0's timer, due at 1, is then overdue).
        result = run_scenario(coro_fn, sync_fn, lambda: coro_fn())
        assert result.results == ("async", "sync", "async")
        assert result.elapsed == 4.0

    def test_first_exception_is_raised_after_all_tasks_finish(self):
        finished: list[str] = []

        async def fails(delay: float, exc: Exception) -> None:
            await asyncio.sleep(delay)
            raise exc

        async def slow() -> None:
            await asyncio.sleep(5)
            finished.append("slow")

        with pytest.raises(KeyError, match="first"):
            run_scenario(slow, fails(2, KeyError("first")), fails(1, ValueError("second")))
        assert finished == ["slow"]

    def test_return_exceptions(self):
        error = ValueError("boom")

        async def fails() -> None:
            raise error

        async def ok() -> int:
            return 1

        result = run_scenario(fails, ok, return_exceptions=True)
        assert result.results == (error, 1)

    def test_leaked_task_is_named_and_cancelled(self):
        cancelled: list[bool] = []

        async def forever() -> None:
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                cancelled.append(True)
                raise

        async def leaks() -> None:
            asyncio.create_task(forever(), name="orphan")  # noqa: RUF006
            await asyncio.sleep(1)

        with pytest.raises(LeakedTasks) as excinfo:
            run_scenario(leaks)
        message = str(excinfo.value)
        assert "finished at virtual time 1 s but left 1 task(s) pending" in message
        assert "'orphan' at " in message
        assert "in forever(): await asyncio.sleep(100)" in message
        assert isinstance(excinfo.value, AssertionError)
        assert cancelled == [True]

    def test_every_call_is_isolated(self):
        async def main() -> tuple[float, dt.datetime]:
            start = now_loop()
            await asyncio.sleep(7)
            return start, dt.datetime.now()

        first = run_scenario(main)
        second = run_scenario(main)
        assert first == second
        assert first.results == ((0.0, START + dt.timedelta(seconds=7)),)

    @pytest.mark.parametrize(
        ("kwargs", "error", "pattern"),
        [
            ({"start": 5}, TypeError, r"start=5: expected a datetime"),
            ({"names": "ab"}, TypeError, r"names='ab': expected a sequence"),
            ({"names": ["a"]}, ValueError, r"expected 2 non-empty strings"),
            ({"names": ["a", "a"]}, ValueError, r"must be unique"),
            ({"return_exceptions": 1}, TypeError, r"return_exceptions=1: expected"),
            ({"freeze": "yes"}, TypeError, r"freeze='yes': expected True or False"),
        ],
    )
    def test_bad_arguments(self, kwargs, error, pattern):
        async def noop() -> None:
            return None

        coro = noop()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # "never awaited" would be a bug
            with pytest.raises(error, match=pattern):
                run_scenario(coro, noop, **kwargs)
        assert coro.cr_frame is None  # closed, not leaked

    def test_needs_something_to_run(self):
        with pytest.raises(TypeError, match=r"needs at least one"):
            run_scenario()

    def test_rejects_non_callables(self):
        with pytest.raises(TypeError, match=r"runnables\[0\]=42: expected a coroutine"):
            run_scenario(42)  # type: ignore[arg-type]

    def test_a_finished_scenario_leaves_no_task_for_the_garbage_collector(self):
        # A task kept alive until a full collection is copied by every
        # asyncio.all_tasks() in the process meanwhile (Hypothesis exploration
        # runs thousands of scenarios between full collections).
        tasks: list[weakref.ref[asyncio.Task[None]]] = []

        async def ticks(n: int) -> None:
            tasks.append(weakref.ref(asyncio.current_task()))  # type: ignore[arg-type]
            for _ in range(n):
                await asyncio.sleep(0.5)

        gc.collect()
        gc.disable()
        try:
            result = run_scenario(ticks(2), ticks(3), ticks(1))
            alive = [ref() for ref in tasks]
        finally:
            gc.enable()
        assert result.elapsed == 1.5
        assert alive == [None, None, None]

    def test_refuses_to_nest_in_a_running_loop(self):
        async def inner() -> None:
            return None

        async def outer() -> None:
            coro = inner()
            with pytest.raises(RuntimeError, match="cannot run inside a running one"):
                run_scenario(coro)

        run_scenario(outer)


# ------------------------------------------------------------------- virtual_time


class TestVirtualTimeSync:
    def test_context_manager_advances_without_sleeping(self):
        with virtual_time() as vt:
            assert vt.now() == START
            _clock.sleep(1.5)
            _clock.sleep(0.25)
            assert vt.elapsed == 1.75
            assert dt.datetime.now() == START + dt.timedelta(seconds=1.75)
            assert (
                time.time() == dt.datetime(2024, 1, 1, 0, 0, 1, 750000, tzinfo=dt.UTC).timestamp()
            )
        assert vt.elapsed == 1.75  # readable after exit
        assert freezegun_stopped()
        assert _clock._sync_sleeper.get() is time.sleep

    def test_start_and_no_freeze(self):
        with virtual_time("2025-05-05T05:05:05", freeze=False) as vt:
            _clock.sleep(5)
            assert freezegun_stopped()
        assert vt.now() == dt.datetime(2025, 5, 5, 5, 5, 10)

    def test_decorator_on_sync_function(self):
        vt = virtual_time(START + dt.timedelta(days=1))

        @vt
        def job(n: int) -> dt.datetime:
            for _ in range(n):
                _clock.sleep(60)
            return dt.datetime.now()

        assert job(3) == dt.datetime(2024, 1, 2, 0, 3)
        assert job(1) == dt.datetime(2024, 1, 2, 0, 1)  # each call starts afresh
        assert vt.elapsed == 60.0
        assert job.__name__ == "job"

    def test_decorator_on_async_function_runs_on_a_virtual_loop(self):
        vt = virtual_time()

        @vt
        async def main(delay: float) -> tuple[str, dt.datetime]:
            loop = asyncio.get_running_loop()
            await asyncio.sleep(delay)
            return type(loop).__name__, dt.datetime.now()

        assert main(30) == ("VirtualTimeLoop", START + dt.timedelta(seconds=30))
        assert vt.elapsed == 30.0
        assert freezegun_stopped()

    def test_threads_add_their_delays_up(self):
        # Documented rule: concurrent sync delays add up on the shared clock.
        with virtual_time() as vt, ThreadPoolExecutor(max_workers=4) as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, _clock.sleep, 0.5) for _ in range(4)
            ]
            for future in futures:
                future.result()
            assert vt.elapsed == 2.0
            assert dt.datetime.now() == START + dt.timedelta(seconds=2)

    def test_nested_use_of_one_object_is_refused(self):
        vt = virtual_time()
        with vt, pytest.raises(RuntimeError, match="already active"), vt:
            pass

    def test_async_with_is_refused_with_the_fix(self):
        async def main() -> None:
            async with virtual_time():
                pass

        with pytest.raises(TypeError, match=r"decorate the async function"):
            asyncio.run(main())

    @pytest.mark.parametrize(
        ("kwargs", "error", "pattern"),
        [
            ({"start": -1}, TypeError, r"start=-1: expected a datetime"),
            ({"start": "soon"}, ValueError, r"start='soon'"),
            ({"freeze": None}, TypeError, r"freeze=None: expected True or False"),
        ],
    )
    def test_bad_arguments(self, kwargs, error, pattern):
        with pytest.raises(error, match=pattern):
            virtual_time(**kwargs)

    def test_decorating_a_non_callable(self):
        with pytest.raises(TypeError, match="decorates a function"):
            virtual_time()(3)  # type: ignore[call-overload]

    def test_outside_any_scope_sleep_is_real(self):
        assert _clock._sync_sleeper.get() is time.sleep
        assert _clock.current_clock() is None


def test_a_clock_scope_entered_again_inside_itself_is_refused_and_stays_open() -> None:
    clock = VirtualClock()
    scope = _clock.clock_scope(clock, sync=True, freeze=False)
    with scope:
        with pytest.raises(RuntimeError, match="entered again while it is open"):
            scope.__enter__()
        assert _clock._context_clock.get() is clock  # the scope is still open
    assert _clock._context_clock.get() is None
