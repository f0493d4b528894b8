"""A flower-shop assistant written the way real apps are: no seam left for tests.

The chat model is built at import time, a helper builds another through
``init_chat_model``, and the agent is compiled when the module loads. The
tests beside this file test it unchanged, through ``fake_llm.intercept``.
"""

from __future__ import annotations

from langchain.agents import create_agent
from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

PRICES = {"rose": 4.5, "tulip": 2.0, "lily": 3.25}

llm = ChatOpenAI(model="gpt-4o-mini", temperature=0)


def summarizer() -> BaseChatModel:
    """The model that writes the order summary (configured by name, as apps do)."""
    return init_chat_model("openai:gpt-4o-mini", temperature=0)


@tool
def get_price(flower: str) -> float:
    """The price of one stem of ``flower``, in euros."""
    return PRICES[flower]


agent = create_agent(
    llm,
    tools=[get_price],
    system_prompt="You sell flowers. Look prices up with get_price; never guess them.",
)


def suggest(occasion: str) -> str:
    """One flower for an occasion."""
    return llm.invoke(f"Suggest one flower for {occasion}. Answer with its name.").text


def quote(question: str) -> str:
    """Answer a customer's question, looking prices up as needed."""
    result = agent.invoke({"messages": [("user", question)]})
    return result["messages"][-1].text


def summarize(order: str) -> str:
    """A one-line summary of an order."""
    return summarizer().invoke(f"Summarize this order in one line: {order}").text
