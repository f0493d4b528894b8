"""One virtual clock for every reader, in every thread, with exact values."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

from fakellm import FakeChatModel, Turn, errors, run_scenario, virtual_time

EPOCH_2024 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp()


def test_eight_threads_running_scenarios_each_read_their_own_exact_clock():
    results: dict[int, tuple[Any, ...]] = {}

    def one(i: int) -> None:
        async def main() -> tuple[float, float, dt.datetime]:
            for _ in range(20):
                await asyncio.sleep(i + 1)
            return time.time(), time.monotonic(), dt.datetime.now()

        start = dt.datetime(2024, 1, 1 + i)
        got = run_scenario(main, start=start)
        results[i] = (got.elapsed, *got.results[0])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(8):
        start = dt.datetime(2024, 1, 1 + i)
        now = start + dt.timedelta(seconds=20 * (i + 1))
        epoch = now.replace(tzinfo=dt.UTC).timestamp()
        assert results[i] == (20.0 * (i + 1), epoch, epoch, now)


class ClockReader(BaseCallbackHandler):
    """A plain sync handler: LangChain runs it on its executor in async code."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, float, float, dt.datetime, bool]] = []

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        on_loop_thread = threading.current_thread() is threading.main_thread()
        self.seen.append((token, time.time(), time.monotonic(), dt.datetime.now(), on_loop_thread))


def test_a_sync_handler_on_the_executor_reads_virtual_time_at_each_token():
    model = FakeChatModel(script=[Turn("a b c", chunks="words", first_token_delay=1.0, delay=0.5)])
    handler = ClockReader()

    async def main() -> None:
        async for _ in model.astream("go", config={"callbacks": [handler]}):
            pass

    run_scenario(main)
    expected = []
    for token, at in (("a ", 1.0), ("b ", 1.5), ("c", 2.0)):
        when = dt.datetime(2024, 1, 1) + dt.timedelta(seconds=at)
        expected.append((token, EPOCH_2024 + at, EPOCH_2024 + at, when, False))
    assert handler.seen == expected


def test_time_sleep_in_sync_code_and_its_threads_advances_virtual_time():
    def worker(seconds: float) -> float:
        time.sleep(seconds)
        return time.time() - EPOCH_2024

    with virtual_time() as vt:
        time.sleep(2)
        assert vt.elapsed == 2.0
        assert time.monotonic() == EPOCH_2024 + 2
        thread = threading.Thread(target=worker, args=(3,))
        thread.start()
        thread.join()
        assert vt.elapsed == 5.0
        with ThreadPoolExecutor(2) as pool:
            assert list(pool.map(worker, [1])) == [6.0]
    assert vt.elapsed == 6.0


def test_model_retry_middleware_sync_backoff_is_exactly_its_waits():
    from langchain.agents import create_agent
    from langchain.agents.middleware import ModelRetryMiddleware

    model = FakeChatModel(
        script=[
            Turn(error=errors.RateLimitError()),
            Turn(error=errors.RateLimitError()),
            Turn("Roses."),
        ]
    )
    retry = ModelRetryMiddleware(
        max_retries=2, initial_delay=1.0, backoff_factor=2.0, jitter=False, retry_on=(Exception,)
    )
    agent = create_agent(model, tools=[], middleware=[retry])
    with virtual_time() as vt:
        state = agent.invoke({"messages": [("user", "Flowers?")]})
    assert state["messages"][-1].content == "Roses."
    assert vt.elapsed == 3.0  # 1 s, then 2 s of backoff


def test_threads_older_than_every_scope_keep_real_time():
    go = threading.Event()
    seen: list[float] = []

    def poller() -> None:  # a library's background thread, started before the scope
        go.wait()
        time.sleep(0.01)
        seen.append(time.time())

    thread = threading.Thread(target=poller)
    thread.start()
    with virtual_time() as vt:
        go.set()
        thread.join()
        assert vt.elapsed == 0.0  # its sleep was real, not a virtual jump
    assert seen[0] > dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp()  # the real clock
