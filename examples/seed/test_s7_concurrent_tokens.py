"""S7: token totals of three concurrent ``agenerate`` calls.

The tutorial's last program runs
``asyncio.gather(*[llm.agenerate(["What colour flowers does my sister like?"]) for _ in range(3)])``
inside one ``get_openai_callback()`` and prints the tokens used. Here the
completion model is scripted with the same answer and three different
latencies, so the calls finish in another order than they started, on virtual
time; the counter must still see exactly three times what one call costs.
"""

from __future__ import annotations

import asyncio

import pytest

from fakellm import Recorder, Turn
from fakellm.assertions import assert_interleaved, assert_usage, assert_well_formed
from fakellm.fixtures import FakeLLMFactory

get_openai_callback = pytest.importorskip("langchain_community.callbacks").get_openai_callback

QUESTION = "What colour flowers does my sister like?"  # 8 tokens: 7 words and "?"
ANSWER = "She likes pink roses."  # streamed as 4 words: 4 output tokens


@pytest.mark.asyncio(loop_factories=["virtual_time"])
@pytest.mark.fakellm(
    [
        Turn(ANSWER, first_token_delay=0.5),  # the single call, to compare with
        Turn(ANSWER, first_token_delay=0.6),
        Turn(ANSWER, first_token_delay=0.3),
        Turn(ANSWER, first_token_delay=0.45),
    ]
)
async def test_three_concurrent_calls_cost_three_times_one(
    fake_llm: FakeLLMFactory, llm_recorder: Recorder
):
    llm = fake_llm.completion(model="gpt-3.5-turbo-instruct", temperature=0.5)
    loop = asyncio.get_running_loop()

    with get_openai_callback() as one:
        await llm.agenerate([QUESTION])
    assert (one.prompt_tokens, one.completion_tokens, one.total_tokens) == (8, 4, 12)

    started = loop.time()
    with get_openai_callback() as cb:
        results = await asyncio.gather(
            *[llm.agenerate([QUESTION], callbacks=[llm_recorder]) for _ in range(3)]
        )
    print("\ntokens used in the additional interactions:", cb.total_tokens)

    assert [r.generations[0][0].text for r in results] == [ANSWER] * 3
    assert (cb.prompt_tokens, cb.completion_tokens, cb.total_tokens) == (24, 12, 36)
    assert cb.total_tokens == 3 * one.total_tokens
    assert cb.successful_requests == 3
    # The single call's 0.5 s, then 0.6 s for all three: the slowest call's
    # latency, not 0.6 + 0.3 + 0.45.
    assert (started, loop.time()) == (0.5, 1.1)

    log = llm_recorder.events
    assert_well_formed(log)
    assert_usage(log, input_tokens=24, output_tokens=12, total_tokens=36)
    first, second, third = log.runs()
    assert_interleaved(log, first, second)
    assert_interleaved(log, second, third)
    # All three start at once; they end in the order of their latencies.
    assert [(e.kind, log.run(e).label, round(e.time - started, 6)) for e in log] == [
        ("llm_start", "r1", 0.0),
        ("llm_start", "r2", 0.0),
        ("llm_start", "r3", 0.0),
        ("llm_end", "r2", 0.3),
        ("llm_end", "r3", 0.45),
        ("llm_end", "r1", 0.6),
    ]
    assert [call.prompt for call in llm.calls] == [QUESTION] * 4
