"""S3: constructor callbacks vs request callbacks, and StdOutCallbackHandler.

The tutorial's section on callback handlers says that every LangChain
component takes handlers in two places, the constructor and the request, and
that ``verbose=True`` is the same as adding a handler that prints to stdout.
These tests pin down exactly which handler sees which event, on a
``"1 + {number} = "`` chain whose completion model is scripted to answer "3".
"""

from __future__ import annotations

import pytest
from langchain_core.callbacks import StdOutCallbackHandler
from langchain_core.prompts import PromptTemplate

from fakellm import Recorder
from fakellm.fixtures import FakeLLMFactory

PROMPT = PromptTemplate.from_template("1 + {number} = ")
MODEL = "gpt-3.5-turbo-instruct"
BOLD, RESET = "\x1b[1m", "\x1b[0m"


def test_constructor_callbacks_see_only_their_own_object(fake_llm: FakeLLMFactory):
    on_model = Recorder()
    llm = fake_llm.completion(["3"], model=MODEL, callbacks=[on_model])
    chain = PROMPT | llm

    assert chain.invoke({"number": 2}) == "3"

    assert on_model.events.shorts() == ["llm_start:FakeLLM", "llm_end:FakeLLM"]
    (model_run,) = on_model.events.runs()
    # Its parent (the sequence) is known only by id: this handler never saw it run.
    assert on_model.events.parent(model_run).status == "unseen"
    assert on_model.events.roots() == [model_run]


def test_request_callbacks_are_inherited_by_every_child_run(
    fake_llm: FakeLLMFactory, llm_recorder: Recorder
):
    chain = PROMPT | fake_llm.completion(["3"], model=MODEL)

    assert chain.invoke({"number": 2}, config={"callbacks": [llm_recorder]}) == "3"

    assert llm_recorder.events.shorts() == [
        "chain_start:RunnableSequence",
        "chain_start:PromptTemplate",
        "chain_end:PromptTemplate",
        "llm_start:FakeLLM",
        "llm_end:FakeLLM",
        "chain_end:RunnableSequence",
    ]
    assert llm_recorder.events.tree() == (
        "r1 RunnableSequence [chain] ok\n  r2 PromptTemplate [prompt] ok\n  r3 FakeLLM [llm] ok"
    )
    assert llm_recorder.events.filter(kind="llm_start")[0].inputs == ["1 + 2 = "]


def test_one_handler_given_both_ways_is_called_once(fake_llm: FakeLLMFactory):
    both = Recorder()
    llm = fake_llm.completion(["3"], model=MODEL, callbacks=[both])

    llm.invoke("1 + 2 = ", config={"callbacks": [both]})

    assert both.events.kinds() == ["llm_start", "llm_end"]


def test_stdout_handler_prints_each_chain_it_sees(
    fake_llm: FakeLLMFactory, capsys: pytest.CaptureFixture[str]
):
    chain = PROMPT | fake_llm.completion(["3"], model=MODEL)

    chain.invoke({"number": 2}, config={"callbacks": [StdOutCallbackHandler()]})

    # Given per request it is inherited: the prompt's run prints too.
    assert capsys.readouterr().out == (
        f"\n\n{BOLD}> Entering new RunnableSequence chain...{RESET}\n"
        f"\n\n{BOLD}> Entering new PromptTemplate chain...{RESET}\n"
        f"\n{BOLD}> Finished chain.{RESET}\n"
        f"\n{BOLD}> Finished chain.{RESET}\n"
    )


@pytest.mark.filterwarnings("ignore:The class `LLMChain` was deprecated:DeprecationWarning")
@pytest.mark.parametrize("verbose", [True, False])
def test_verbose_true_adds_a_stdout_handler(
    fake_llm: FakeLLMFactory, capsys: pytest.CaptureFixture[str], verbose: bool
):
    chains = pytest.importorskip("langchain_classic.chains")
    chain = chains.LLMChain(
        llm=fake_llm.completion(["3"], model=MODEL), prompt=PROMPT, verbose=verbose
    )

    assert chain.invoke({"number": 2}) == {"number": 2, "text": "3"}

    printed = capsys.readouterr().out
    if verbose:
        assert printed == (
            f"\n\n{BOLD}> Entering new LLMChain chain...{RESET}\n"
            "Prompt after formatting:\n"
            f"\x1b[32;1m\x1b[1;3m1 + 2 = {RESET}\n"
            f"\n{BOLD}> Finished chain.{RESET}\n"
        )
    else:
        assert printed == ""
