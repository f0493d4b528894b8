"""S4: ``LLMChain`` with a ``FileCallbackHandler`` and ``verbose=True``.

The tutorial's S4 program builds ``LLMChain(llm=OpenAI(), prompt="1 + {number} = ",
callbacks=[FileCallbackHandler("output.log")], verbose=True)``, runs it with
``number=2`` and logs the answer to the same ``output.log`` with loguru. Here
the model is a scripted completion model (answering "3" after 0.2 s), the file
lives in ``tmp_path``, the standard ``logging`` module stands in for loguru,
and virtual time makes the log's timestamp exact.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_core.callbacks import FileCallbackHandler
from langchain_core.prompts import PromptTemplate

from fakellm import Recorder, Turn
from fakellm.fixtures import FakeLLMFactory

LLMChain = pytest.importorskip("langchain_classic.chains").LLMChain

pytestmark = [
    pytest.mark.filterwarnings("ignore:The class `LLMChain` was deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The method `Chain.run` was deprecated:DeprecationWarning"),
]

BOLD, GREEN, RESET = "\x1b[1m", "\x1b[32;1m\x1b[1;3m", "\x1b[0m"


@pytest.fixture
def logfile(tmp_path: Path) -> Path:
    return tmp_path / "output.log"


@pytest.fixture
def logger(logfile: Path) -> Iterator[logging.Logger]:
    """The tutorial's ``logger.add(logfile)``, with the standard library."""
    log = logging.getLogger("flower_shop.s4")
    handler = logging.FileHandler(logfile, encoding="utf-8")
    formatter = logging.Formatter("%(asctime)s | %(levelname)s | %(message)s")
    formatter.converter = time.gmtime  # the same text in every time zone
    handler.setFormatter(formatter)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    yield log
    log.removeHandler(handler)
    handler.close()


@pytest.mark.fakellm([Turn("3", first_token_delay=0.2)])
def test_the_chain_logs_to_the_file_and_prints(
    fake_llm: FakeLLMFactory,
    logger: logging.Logger,
    logfile: Path,
    llm_recorder: Recorder,
    virtual_clock,
    capsys: pytest.CaptureFixture[str],
):
    llm = fake_llm.completion(model="gpt-3.5-turbo-instruct")
    prompt = PromptTemplate.from_template("1 + {number} = ")

    with FileCallbackHandler(str(logfile)) as handler:
        # this chain both prints to stdout (verbose=True) and writes to output.log
        chain = LLMChain(llm=llm, prompt=prompt, callbacks=[handler], verbose=True)
        answer = chain.run(number=2, callbacks=[llm_recorder])
    logger.info(answer)

    assert answer == "3"
    chain_output = (
        f"\n\n{BOLD}> Entering new LLMChain chain...{RESET}\n"
        "Prompt after formatting:\n"
        f"{GREEN}1 + 2 = {RESET}\n"
        f"\n{BOLD}> Finished chain.{RESET}\n"
    )
    assert capsys.readouterr().out == chain_output
    # The file gets the same lines without the bold (the prompt keeps its colour),
    # then the logged answer, stamped with the virtual clock: 0.2 s after the start.
    assert logfile.read_text(encoding="utf-8") == (
        "\n\n> Entering new LLMChain chain...\n"
        "Prompt after formatting:\n"
        f"{GREEN}1 + 2 = {RESET}\n"
        "\n> Finished chain.\n"
        "2024-01-01 00:00:00,200 | INFO | 3\n"
    )
    assert virtual_clock.elapsed == 0.2
    assert llm.calls[0].prompt == "1 + 2 = "
    assert llm_recorder.events.shorts() == [
        "chain_start:LLMChain",
        "text:LLMChain",  # "Prompt after formatting:", what the handlers print above
        "llm_start:FakeLLM",
        "llm_end:FakeLLM",
        "chain_end:LLMChain",
    ]


@pytest.mark.fakellm(["3"])
def test_without_verbose_only_the_file_gets_the_log(
    fake_llm: FakeLLMFactory, logfile: Path, capsys: pytest.CaptureFixture[str]
):
    llm = fake_llm.completion(model="gpt-3.5-turbo-instruct")
    prompt = PromptTemplate.from_template("1 + {number} = ")

    with FileCallbackHandler(str(logfile)) as handler:
        chain = LLMChain(llm=llm, prompt=prompt, callbacks=[handler])
        assert chain.run(number=2) == "3"

    assert capsys.readouterr().out == ""
    assert logfile.read_text(encoding="utf-8") == (
        "\n\n> Entering new LLMChain chain...\n"
        "Prompt after formatting:\n"
        f"{GREEN}1 + 2 = {RESET}\n"
        "\n> Finished chain.\n"
    )
