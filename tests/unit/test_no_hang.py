"""Every wait that used to hang under virtual time now ends, exactly or with its error."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import sys
import threading

import pytest

from fakellm import errors, run_scenario, virtual_time
from fakellm._loop import VirtualTimeLoop


def run_on(coro_fn, **loop_kwargs):
    loop = VirtualTimeLoop(**loop_kwargs)
    with asyncio.Runner(loop_factory=lambda: loop) as runner:
        return runner.run(coro_fn())


class TestLongTimers:
    @pytest.mark.parametrize("seconds", [2.0**24, 1e9, 3e9 + 0.000001])
    def test_timers_past_2_to_the_24_fire_exactly(self, seconds):
        async def main() -> tuple[float, dt.datetime]:
            await asyncio.sleep(seconds)
            return asyncio.get_running_loop().time(), dt.datetime.now()

        result = run_scenario(main, budget=None)
        assert result.elapsed == seconds
        assert result.results[0][0] == seconds
        micros = round(seconds * 1_000_000)
        assert result.results[0][1] == dt.datetime(2024, 1, 1) + dt.timedelta(microseconds=micros)

    def test_two_long_timers_keep_their_order(self):
        order: list[str] = []

        async def after(name: str, seconds: float) -> None:
            await asyncio.sleep(seconds)
            order.append(name)

        run_scenario(after("b", 1e9 + 2e-6), after("a", 1e9 + 1e-6), budget=None)
        assert order == ["a", "b"]

    def test_sleep_forever_is_cancelled_like_on_a_stock_loop(self):
        async def sleeper() -> str:
            try:
                await asyncio.sleep(math.inf)
            except asyncio.CancelledError:
                return f"cancelled at {asyncio.get_running_loop().time()}"
            return "woke"

        async def main() -> str:
            task = asyncio.create_task(sleeper())
            await asyncio.sleep(5)
            task.cancel()
            return await task

        assert run_scenario(main).results == ("cancelled at 5.0",)

    def test_sleep_forever_alone_is_a_deadlock_not_a_hang(self):
        async def forever() -> None:
            await asyncio.sleep(math.inf)

        with pytest.raises(errors.DeadlockError) as excinfo:
            run_scenario(forever, names=["sleeper"])
        message = str(excinfo.value)
        assert message.startswith(
            "virtual time 0 s: nothing can ever wake the event loop (no timers, no executor "
            "jobs, no child processes, no I/O watchers; 1 timer(s) due at math.inf never fire)"
        )
        assert "'sleeper' at " in message

    def test_a_delay_past_the_year_9999_is_refused_clearly(self):
        async def main() -> None:
            await asyncio.sleep(1e12)

        with pytest.raises(errors.TimeBudgetExceeded) as excinfo:
            run_scenario(main, budget=None)
        assert str(excinfo.value).startswith(
            "virtual time 0 s: the next timer is due at 1e+12 s, past the last instant "
            "a datetime can hold (9999-12-31)."
        )


class TestBudget:
    def test_default_budget_is_a_day_and_names_the_fix(self):
        async def main() -> None:
            await asyncio.sleep(1e9)

        with pytest.raises(errors.TimeBudgetExceeded) as excinfo:
            run_scenario(main, names=["waiter"])
        message = str(excinfo.value)
        assert message.startswith(
            "virtual time 0 s: the next timer is due at 1e+09 s, past this scope's budget "
            "of 86400 virtual seconds. If the wait is meant to be that long, raise the "
            "budget (budget=... on virtual_time(), run_scenario() or the loop factory, or "
            "the fakellm_virtual_time_budget ini option; None for none).\n"
            "2 task(s) are still waiting:\n"
        )
        assert "  - 'waiter' at " in message

    def test_livelock_under_a_heartbeat_names_the_timer_that_kept_firing(self):
        beats: list[float] = []

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(1)
                beats.append(asyncio.get_running_loop().time())

        async def main() -> None:
            beat = asyncio.create_task(heartbeat(), name="heartbeat")
            await asyncio.Event().wait()  # never set
            beat.cancel()

        with pytest.raises(errors.TimeBudgetExceeded) as excinfo:
            run_scenario(main, names=["main"], budget=100)
        assert beats == [float(i) for i in range(1, 101)]
        message = str(excinfo.value)
        assert message.startswith(
            "virtual time 100 s: the next timer is due at 101 s, past this scope's budget "
            "of 100 virtual seconds."
        )
        assert "Timers that fired most: task 'heartbeat' (100 times)." in message
        assert "A periodic task beside a wait that never ends is a livelock" in message

    def test_sync_sleeps_have_a_budget_too(self):
        with virtual_time(budget=10) as vt:
            vt.clock.advance(10)
            with pytest.raises(errors.TimeBudgetExceeded, match=r"a sleep of 0.5 s would end"):
                vt.clock.advance(0.5)
        assert vt.elapsed == 10.0

    @pytest.mark.parametrize(
        ("budget", "error", "pattern"),
        [(0, ValueError, "budget=0: expected a positive"), ("1", TypeError, "budget='1'")],
    )
    def test_bad_budget(self, budget, error, pattern):
        with pytest.raises(error, match=pattern):
            run_scenario(asyncio.sleep(0), budget=budget)


class TestRealWork:
    def test_a_blocked_executor_job_stalls_with_stacks_instead_of_hanging(self):
        release = threading.Event()
        # Lets the blocked worker go after the error, so the runner can shut down.
        threading.Timer(1.0, release.set).start()

        async def main() -> None:
            await asyncio.get_running_loop().run_in_executor(None, release.wait)

        with pytest.raises(errors.Stalled) as excinfo:
            run_on(main, stall_timeout=0.2)
        message = str(excinfo.value)
        assert message.startswith(
            "virtual time 0 s: the event loop has been waiting for 1 executor job(s) for "
            "0.2 real seconds with no progress (stall_timeout)."
        )
        assert "Threads:\n" in message
        assert "in wait" in message  # the worker's stack shows where it is blocked

    def test_a_real_child_process_is_pending_work_not_a_deadlock(self):
        async def main() -> tuple[int, float]:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "import time; time.sleep(0.3)"
            )
            return await proc.wait(), asyncio.get_running_loop().time()

        assert run_scenario(main).results == ((0, 0.0),)

    def test_asyncio_run_inside_virtual_time_runs_on_the_scope_clock(self):
        async def main() -> str:
            await asyncio.sleep(5)
            return type(asyncio.get_running_loop()).__name__

        with virtual_time() as vt:
            assert asyncio.run(main()) == "VirtualTimeLoop"
            assert vt.elapsed == 5.0
            assert dt.datetime.now() == dt.datetime(2024, 1, 1, 0, 0, 5)

    def test_anyio_to_thread_runs_and_reads_virtual_time(self):
        import time

        import anyio.to_thread

        def in_worker() -> tuple[float, str]:
            time.sleep(2)  # virtual: advances the loop's clock
            return time.time(), threading.current_thread().name

        async def main() -> tuple[float, str]:
            await asyncio.sleep(1)
            return await anyio.to_thread.run_sync(in_worker)

        result = run_scenario(main)
        ((now, thread),) = result.results
        assert thread == "AnyIO worker thread"
        assert now == dt.datetime(2024, 1, 1, 0, 0, 3).replace(tzinfo=dt.UTC).timestamp()
        assert result.elapsed == 3.0


class TestRealIO:
    def test_a_loopback_server_answers_inside_a_virtual_timeout_while_a_heartbeat_ticks(self):
        import socket

        server = socket.create_server(("127.0.0.1", 0))
        port = server.getsockname()[1]

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                conn.recv(4)
                threading.Event().wait(0.05)  # 50 ms of real work
                conn.sendall(b"pong")

        thread = threading.Thread(target=serve)
        thread.start()
        beats: list[float] = []

        async def heartbeat() -> None:
            while True:
                await asyncio.sleep(1)
                beats.append(asyncio.get_running_loop().time())

        async def main() -> tuple[bytes, float]:
            beat = asyncio.create_task(heartbeat())
            await asyncio.sleep(2.5)
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"ping")
            await writer.drain()
            data = await asyncio.wait_for(reader.read(4), 30)
            writer.close()
            await writer.wait_closed()
            beat.cancel()
            return data, asyncio.get_running_loop().time()

        try:
            # A generous grace keeps this exact on a loaded machine; the
            # default (0.25 s) is plenty for a 50 ms answer.
            assert run_on(main, io_grace=5.0) == (b"pong", 2.5)
        finally:
            thread.join()
            server.close()
        assert beats == [1.0, 2.0]  # no beat while the socket had real work in flight


def test_assert_stream_matches_invoke_runs_its_astream_mode_inside_virtual_time():
    from fakellm import FakeChatModel, Turn
    from fakellm.assertions import assert_stream_matches_invoke

    def model() -> FakeChatModel:
        return FakeChatModel(script=[Turn("Roses and lilies.", first_token_delay=2.0, delay=0.5)])

    with virtual_time() as vt:
        assert_stream_matches_invoke(model, "Flowers?", modes=["invoke", "astream"])
    # invoke: 2.0 + 0.5 + 0.5 (three word chunks); astream the same, on the scope's clock
    assert vt.elapsed == 6.0


class TestExecutorJobs:
    def test_a_job_raising_stop_iteration_does_not_crash_the_loop(self) -> None:
        # A future refuses StopIteration (asyncio logs that and leaves the future
        # pending, on a stock loop too): the loop reports the job that never comes
        # back, instead of dying with a TypeError inside select().
        async def main() -> object:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, next, iter([]))

        loop = VirtualTimeLoop(stall_timeout=0.2)
        try:
            with pytest.raises(errors.Stalled, match="waiting for 1 executor job"):
                loop.run_until_complete(main())
        finally:
            loop.close()
