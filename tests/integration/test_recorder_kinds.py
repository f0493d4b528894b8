"""The Recorder records the callbacks of tools, retrievers, retries, agents and text."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from langchain_core.agents import AgentAction, AgentFinish
from langchain_core.callbacks import CallbackManager, dispatch_custom_event
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from tenacity import RetryCallState, Retrying

from fakellm import FakeChatModel, Recorder, Turn, errors
from fakellm.assertions import assert_events, assert_well_formed


@tool
def get_price(flower: str) -> float:
    """Price of one flower, in euros."""
    if flower == "orchid":
        raise ValueError("no orchids today")
    return 2.5


class Shelf(BaseRetriever):
    """Finds the documents whose text contains the query."""

    docs: list[str]

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return [Document(page_content=d) for d in self.docs if query in d]


def kinds(rec: Recorder) -> list[str]:
    return [f"{e.kind}:{e.run_name}" for e in rec.events]


def test_tool_runs_are_recorded_with_input_output_and_error() -> None:
    rec = Recorder()
    assert get_price.invoke({"flower": "rose"}, config={"callbacks": [rec]}) == 2.5
    with pytest.raises(ValueError, match="no orchids today"):
        get_price.invoke({"flower": "orchid"}, config={"callbacks": [rec]})
    assert kinds(rec) == [
        "tool_start:get_price",
        "tool_end:get_price",
        "tool_start:get_price",
        "tool_error:get_price",
    ]
    start, end, _, error = rec.events
    assert start.inputs == "{'flower': 'rose'}"  # LangChain's input_str
    assert start.extra["inputs"] == {"flower": "rose"}
    assert end.outputs == 2.5
    assert str(error.error) == "no orchids today"
    assert_well_formed(rec.events)


def test_retriever_runs_are_recorded() -> None:
    rec = Recorder()
    shelf = Shelf(docs=["pink roses", "white lilies", "red roses"])
    found = shelf.invoke("roses", config={"callbacks": [rec]})
    assert [d.page_content for d in found] == ["pink roses", "red roses"]
    assert kinds(rec) == ["retriever_start:Shelf", "retriever_end:Shelf"]
    assert rec.events[0].inputs == "roses"
    assert [d.page_content for d in rec.events[1].outputs] == ["pink roses", "red roses"]


def test_with_retry_shows_the_failed_and_the_good_attempt() -> None:
    # langchain-core's RunnableRetry fires no on_retry; each attempt is its own run.
    rec = Recorder()
    model = FakeChatModel(script=[Turn(error=errors.RateLimitError), "recovered"])
    retrying = model.with_retry(
        retry_if_exception_type=(errors.RateLimitError,),
        wait_exponential_jitter=False,
        stop_after_attempt=2,
    )
    assert retrying.invoke("x", config={"callbacks": [rec]}).content == "recovered"
    assert_events(
        rec.events,
        [
            "chain_start",
            "chat_model_start",
            "llm_error",
            "chat_model_start",
            "llm_end",
            "chain_end",
        ],
    )


def test_custom_events_are_recorded_in_the_run_that_sent_them() -> None:
    rec = Recorder()

    def step(x: str) -> str:
        dispatch_custom_event("progress", {"done": 1})
        return x

    RunnableLambda(step, name="step").invoke("x", config={"callbacks": [rec]})
    assert kinds(rec) == ["chain_start:step", "custom_event:step", "chain_end:step"]
    assert rec.events[1].data == {"done": 1}


def test_agent_text_and_retry_callbacks_are_recorded() -> None:
    rec = Recorder()
    manager = CallbackManager.configure(inheritable_callbacks=[rec])
    run_id = uuid.uuid4()
    (chain_run,) = [manager.on_chain_start({"name": "agent"}, {"input": "q"}, run_id=run_id)]
    chain_run.on_text("thinking about roses")
    chain_run.on_agent_action(AgentAction("get_price", {"flower": "rose"}, "log"))
    chain_run.on_agent_finish(AgentFinish({"output": "2.5"}, "done"))
    retry_state = RetryCallState(retry_object=Retrying(), fn=None, args=(), kwargs={})
    chain_run.on_retry(retry_state)
    chain_run.on_chain_end({"output": "2.5"})
    assert kinds(rec) == [
        "chain_start:agent",
        "text:agent",
        "agent_action:agent",
        "agent_finish:agent",
        "retry:agent",
        "chain_end:agent",
    ]
    assert rec.events[1].data == "thinking about roses"
    assert rec.events[2].data.tool == "get_price"
    assert rec.events[4].data is retry_state
    assert all(e.run_id == run_id for e in rec.events)
