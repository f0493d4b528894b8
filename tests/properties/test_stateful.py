"""A chat app with memory, driven by a Hypothesis state machine: each step
scripts the next reply (text, delays, maybe an error) and asks a question."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from fakellm import FakeChatModel, Turn, strategies, virtual_time
from fakellm.strategies import TurnFeed

from .apps import ChatWithMemory
from .common import FAST


class ChatMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Each step hands the model the reply it drew, then asks.
        self.feed = TurnFeed()
        self.model = FakeChatModel(script=self.feed.script())
        self.app = ChatWithMemory(self.model)
        self.remembered: list[str] = []
        self.reply_tokens: list[int] = []  # output tokens of each remembered reply

    @rule(question=st.text(max_size=8), reply=strategies.turns(max_chunks=4, max_ms=20))
    def ask(self, question, reply):
        self.feed.push(reply)
        before = list(self.remembered)
        with virtual_time(freeze=False) as vt:
            if reply.error is None:
                answer = self.app.ask(question)
                assert answer == "".join(reply.chunks)
                self.remembered += [question, answer]
                given_ = reply.usage.output_tokens if reply.usage else None
                self.reply_tokens.append(len(reply.pieces) if given_ is None else given_)
            else:
                with pytest.raises(reply.error):
                    self.app.ask(question)
        # The model got the whole conversation so far, then the new question.
        assert [m.text for m in self.model.last_call.messages] == [*before, question]
        # Virtual time moved by the reply's delays, up to its last chunk or its error.
        n = len(reply.pieces)
        done = n if reply.error is None else reply.error_position
        assert vt.elapsed == pytest.approx(sum(reply.delays(max(n, 1))[: done + 1]), abs=1e-6)

    @rule()
    def forget(self):
        self.app.history.clear()
        self.remembered.clear()
        self.reply_tokens.clear()

    @invariant()
    def memory_is_the_conversation(self):
        assert [m.text for m in self.app.history] == self.remembered

    @invariant()
    def every_scripted_reply_was_used(self):
        assert self.feed.pending == ()

    @invariant()
    def each_remembered_reply_reports_its_scripted_usage(self):
        replies = [m for m in self.app.history if m.type == "ai"]
        assert [m.usage_metadata["output_tokens"] for m in replies] == self.reply_tokens


ChatMachine.TestCase.settings = settings(FAST, max_examples=15, stateful_step_count=8)
TestChatWithMemory = ChatMachine.TestCase


def test_a_request_with_nothing_fed_is_an_unexpected_call() -> None:
    from fakellm.errors import UnexpectedCall

    feed = TurnFeed()
    model = FakeChatModel(script=feed.script())
    feed.push("first", "second")
    assert feed.pending == (Turn("first"), Turn("second"))
    assert model.invoke("a").text == "first"
    assert model.invoke("b").text == "second"
    with pytest.raises(UnexpectedCall, match="Rule 'TurnFeed'"):
        model.invoke("c")
    assert repr(feed) == "TurnFeed(pending=[])"
