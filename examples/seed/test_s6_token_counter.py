"""S6: a token counter around a three-round ``ConversationChain``.

The tutorial's S6 program wraps three rounds of a flower-shop conversation
(``ConversationChain(llm=OpenAI(...), memory=ConversationBufferMemory())``) in
``with get_openai_callback() as cb:``, prints the memory buffer after each
round and the total tokens at the end (966 in the article: a real model, a
real tokenizer). Here the model is scripted, tokens are counted by fakellm's
offline rule (a word is one token, so is every other non-space character;
output tokens are the chunks streamed), so the prompts sent and the totals are
exact. The second test replays it with a chat model, as the program would be
written today, under ``get_usage_metadata_callback()`` too.
"""

from __future__ import annotations

import pytest
from langchain_core.callbacks import get_usage_metadata_callback
from langchain_core.messages import HumanMessage

from fakellm import Recorder
from fakellm.fixtures import FakeLLMFactory

ConversationChain = pytest.importorskip("langchain_classic.chains").ConversationChain
ConversationBufferMemory = pytest.importorskip("langchain_classic.memory").ConversationBufferMemory
get_openai_callback = pytest.importorskip("langchain_community.callbacks").get_openai_callback

pytestmark = [
    pytest.mark.filterwarnings(f"ignore:The class `{name}` was deprecated:DeprecationWarning")
    for name in ("ConversationChain", "ConversationBufferMemory", "InMemoryChatMessageHistory")
]

ROUNDS = (
    # day one
    "My sister's birthday is tomorrow and I need a birthday bouquet.",
    "She likes pink roses; the colour is pink.",
    # day two
    "I'm back. Do you remember why I came to buy flowers yesterday?",
)
ANSWERS = [
    "Happy birthday to your sister! A bouquet of roses, lilies and gerberas would be lovely.",
    "Pink roses it is: a dozen pink roses with a little baby's breath.",
    "Yes: you came for a birthday bouquet for your sister, who likes pink roses.",
]
# ConversationChain's prompt, as the model receives it.
PREAMBLE = (
    "The following is a friendly conversation between a human and an AI. The AI is "
    "talkative and provides lots of specific details from its context. If the AI does "
    "not know the answer to a question, it truthfully says it does not know.\n"
    "\n"
    "Current conversation:\n"
)
DAY_ONE = "\n".join(
    [f"Human: {ROUNDS[0]}", f"AI: {ANSWERS[0]}", f"Human: {ROUNDS[1]}", f"AI: {ANSWERS[1]}"]
)
# Round 3's prompt holds all of day one: that is what makes buffer memory costly.
ROUND_3_PROMPT = f"{PREAMBLE}{DAY_ONE}\nHuman: {ROUNDS[2]}\nAI:"
# Per round (input, output): (68, 15), (100, 13), (137, 14): the prompts grow.
TOTALS = {"input_tokens": 305, "output_tokens": 42, "total_tokens": 347}


@pytest.mark.fakellm(ANSWERS)
def test_three_rounds_with_a_completion_model(fake_llm: FakeLLMFactory, llm_recorder: Recorder):
    llm = fake_llm.completion(model="gpt-3.5-turbo-instruct", temperature=0.5)
    conversation = ConversationChain(llm=llm, memory=ConversationBufferMemory())
    buffers = []

    with (
        get_openai_callback() as cb,
        get_usage_metadata_callback() as usage,
    ):
        for text in ROUNDS:
            conversation.invoke({"input": text}, config={"callbacks": [llm_recorder]})
            buffers.append(conversation.memory.buffer)

    assert buffers == [
        f"Human: {ROUNDS[0]}\nAI: {ANSWERS[0]}",
        DAY_ONE,
        f"{DAY_ONE}\nHuman: {ROUNDS[2]}\nAI: {ANSWERS[2]}",
    ]
    assert [call.prompt for call in llm.calls] == [
        f"{PREAMBLE}\nHuman: {ROUNDS[0]}\nAI:",
        f"{PREAMBLE}Human: {ROUNDS[0]}\nAI: {ANSWERS[0]}\nHuman: {ROUNDS[1]}\nAI:",
        ROUND_3_PROMPT,
    ]
    assert (cb.prompt_tokens, cb.completion_tokens, cb.total_tokens) == (305, 42, 347)
    assert cb.successful_requests == 3
    # get_usage_metadata_callback reads chat messages' usage_metadata only: a
    # completion model's usage (in llm_output) is invisible to it.
    assert usage.usage_metadata == {}
    assert list(llm_recorder.events.usage_by_run().values()) == [
        {"input_tokens": 68, "output_tokens": 15, "total_tokens": 83},
        {"input_tokens": 100, "output_tokens": 13, "total_tokens": 113},
        {"input_tokens": 137, "output_tokens": 14, "total_tokens": 151},
    ]


@pytest.mark.fakellm(ANSWERS)
def test_three_rounds_with_a_chat_model(fake_llm: FakeLLMFactory):
    model = fake_llm(model="gpt-4o-mini", temperature=0.5)
    conversation = ConversationChain(llm=model, memory=ConversationBufferMemory())

    with (
        get_openai_callback() as cb,
        get_usage_metadata_callback() as usage,
    ):
        answers = [conversation.invoke({"input": text})["response"] for text in ROUNDS]

    assert answers == ANSWERS
    assert model.calls[2].messages == (HumanMessage(ROUND_3_PROMPT),)
    # Both counters agree, to the token.
    assert usage.usage_metadata == {"gpt-4o-mini": TOTALS}
    assert (cb.prompt_tokens, cb.completion_tokens, cb.total_tokens) == (305, 42, 347)
    assert cb.successful_requests == 3
