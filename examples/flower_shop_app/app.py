"""A small flower-shop assistant built on LangChain: the app under test.

Nothing here knows about fakellm. The chat model is a dependency
(``FlowerShop(ChatOpenAI(model="gpt-4o-mini"))`` in production), so tests hand
in a scripted fake instead. The app:

* renders a ``ChatPromptTemplate`` (system prompt, conversation history, question),
* binds two tools (``get_price``, ``check_stock``) and runs a tool-calling loop
  until the model answers in text,
* parses that answer with a ``StrOutputParser``,
* remembers each session's conversation (a list of messages per session, fed to
  the prompt's ``history`` placeholder),
* retries the model call on the provider errors it is told about,
* forwards streamed tokens to a UI callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool, tool

PRICES = {"rose": 4.5, "lily": 6.0, "sunflower": 3.0}
STOCK = {"rose": 24, "lily": 0, "sunflower": 12}

SYSTEM_PROMPT = (
    "You are the assistant of a small flower shop. "
    "Use the tools for prices and stock; answer in one short sentence."
)


@tool
def get_price(flower: str) -> str:
    """Price of one stem of a flower, in euros."""
    price = PRICES.get(flower)
    return f"{flower}: unknown" if price is None else f"{flower}: {price:.2f} EUR"


@tool
def check_stock(flower: str) -> str:
    """How many stems of a flower the shop has in stock."""
    return f"{flower}: {STOCK.get(flower, 0)} in stock"


TOOLS: dict[str, BaseTool] = {t.name: t for t in (get_price, check_stock)}

PROMPT = ChatPromptTemplate.from_messages(
    [
        ("system", SYSTEM_PROMPT),
        MessagesPlaceholder("history"),
        ("human", "{question}"),
    ]
)


class TooManyToolRounds(RuntimeError):
    """The model kept calling tools past the app's limit."""


class _TokenForwarder(BaseCallbackHandler):
    """Sends each streamed text token to the UI (tool-call chunks carry no text)."""

    def __init__(self, on_token: Callable[[str], None]) -> None:
        self.on_token = on_token

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        if token:
            self.on_token(token)


class FlowerShop:
    """The assistant: ``FlowerShop(model).ask("How much is a rose?")``.

    Args:
        model: any LangChain chat model that supports tool calling.
        retry_on: provider errors worth retrying (e.g. ``(openai.RateLimitError,)``).
        max_attempts: attempts per model call when ``retry_on`` is given.
        max_tool_rounds: how many times the model may call tools for one question.
    """

    def __init__(
        self,
        model: BaseChatModel,
        *,
        retry_on: tuple[type[BaseException], ...] = (),
        max_attempts: int = 3,
        max_tool_rounds: int = 3,
    ) -> None:
        llm: Runnable[Any, Any] = model.bind_tools(list(TOOLS.values()))
        if retry_on:
            llm = llm.with_retry(
                retry_if_exception_type=retry_on,
                stop_after_attempt=max_attempts,
                wait_exponential_jitter=False,
            ).with_config(run_name="retrying_model")
        self._llm = llm
        self._parser = StrOutputParser()
        self._max_tool_rounds = max_tool_rounds
        # langchain-core 1.x deprecates InMemoryChatMessageHistory and
        # RunnableWithMessageHistory; a list of messages per session does the job.
        self._sessions: dict[str, list[BaseMessage]] = {}
        self._agent = RunnableLambda(self._answer, name="flower_shop")

    def history(self, session_id: str = "default") -> list[BaseMessage]:
        """A copy of one session's conversation so far: questions and final answers."""
        return list(self._sessions.get(session_id, []))

    def ask(
        self,
        question: str,
        *,
        session_id: str = "default",
        on_token: Callable[[str], None] | None = None,
        callbacks: list[BaseCallbackHandler] | None = None,
    ) -> str:
        """Answer ``question`` in a session.

        ``on_token`` gets each text token as it arrives when the model streams
        (``ChatOpenAI(streaming=True)``); ``callbacks`` are LangChain handlers
        for the whole run.
        """
        handlers = list(callbacks or [])
        if on_token is not None:
            handlers.append(_TokenForwarder(on_token))
        history = self._sessions.setdefault(session_id, [])
        inputs = {"question": question, "history": list(history)}
        answer: str = self._agent.invoke(inputs, {"callbacks": handlers})
        history += [HumanMessage(question), AIMessage(answer)]
        return answer

    def _answer(self, inputs: dict[str, Any], config: RunnableConfig) -> str:
        messages: list[BaseMessage] = PROMPT.invoke(inputs, config).to_messages()
        for _ in range(self._max_tool_rounds + 1):
            reply: AIMessage = self._llm.invoke(messages, config)
            messages.append(reply)
            if not reply.tool_calls:
                return self._parser.invoke(reply, config)
            for call in reply.tool_calls:
                # Invoking a tool with the whole tool call returns a ToolMessage.
                messages.append(TOOLS[call["name"]].invoke(call, config))
        msg = f"the model still called tools after {self._max_tool_rounds} rounds"
        raise TooManyToolRounds(msg)
