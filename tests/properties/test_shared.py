"""Scenarios over one shared model, as apps hold it: routed by rules, with a
number of calls that shrinks, and sync calls refused with the fix."""

from __future__ import annotations

import pytest
from hypothesis import given

from fakellm import Recorder, Script, Turn, strategies
from fakellm.strategies import Scenario

from .apps import stream_reply
from .common import FAST, HUNT

plain = strategies.scripts(turns=strategies.turns(errors=False, usage=False), max_turns=1)


class BuggyTypingIndicator:
    """Shows "typing..." while a reply streams. The bug: one flag for every
    stream, so the first stream to finish switches it off for the others."""

    def __init__(self, model):
        self.model = model
        self.typing = False
        self.unseen: list[str] = []  # chunks that arrived while "typing" was off

    async def reply(self, question: str) -> str:
        self.typing = True
        parts = []
        async for chunk in self.model.astream(question):
            if not self.typing:
                self.unseen.append(chunk.text)
            parts.append(chunk.text)
        self.typing = False
        return "".join(parts)


class TypingIndicator(BuggyTypingIndicator):
    """The fix: count the streams in flight."""

    def __init__(self, model):
        super().__init__(model)
        self.streams = 0

    async def reply(self, question: str) -> str:
        self.streams += 1
        self.typing = True
        try:
            parts = []
            async for chunk in self.model.astream(question):
                if not self.typing:
                    self.unseen.append(chunk.text)
                parts.append(chunk.text)
            return "".join(parts)
        finally:
            self.streams -= 1
            self.typing = self.streams > 0


def typing_property(make_app, seen=None):
    @given(strategies.scenarios(min_calls=1, max_calls=5, scripts=plain))
    def check(scenario):
        if seen is not None:
            seen.append(scenario)
        rec = Recorder()
        model = scenario.shared_model(rec)
        app = make_app(model)  # built once, before the calls, as apps are
        scenario.run(lambda i, m: app.reply(f"question {i}"), model=model, recorder=rec)
        assert app.unseen == [], f"chunks streamed while 'typing' was off: {app.unseen}"

    return check


def test_bystander_calls_shrink_away_on_a_shared_model():
    seen = []
    with pytest.raises(AssertionError, match=r"while 'typing' was off: \[''\]") as caught:
        HUNT(typing_property(BuggyTypingIndicator, seen))()
    # Up to five calls were drawn; the shrunk example keeps the two that matter:
    # one that ends at once, and one whose (final, empty) chunk comes 1 ms later.
    assert seen[-1] == Scenario(
        scripts=(
            Script([Turn(chunks=())]),
            Script([Turn(chunks=(), first_token_delay=0.001)]),
        ),
        starts_ms=(0, 0),
    )
    assert "Scenario with 2 concurrent calls:" in "\n".join(caught.value.__notes__)


def test_the_fixed_indicator_passes():
    FAST(typing_property(TypingIndicator))()


# -- routing ---------------------------------------------------------------------------------


def test_each_call_gets_its_own_scripts_turns_from_the_shared_model():
    scenario = Scenario(
        scripts=(
            Script(["a1", Turn("a2", first_token_delay=0.002)]),
            Script([Turn("b1", first_token_delay=0.001)]),
        ),
        starts_ms=(0, 0),
    )

    async def call(i, model):
        first = (await model.ainvoke(f"q{i}")).text
        if i == 0:
            return [first, (await model.ainvoke("again")).text]
        return [first]

    run = scenario.run(call, shared=True)
    assert run.results == (["a1", "a2"], ["b1"])
    assert run.models[0] is run.models[1]
    assert run.models[0].unused_turns == []
    # The runs of each call, found by the routing rule that answered them.
    assert [run.events.output_text(r) for r in run.runs(0)] == ["a1", "a2"]
    assert [run.events.output_text(r) for r in run.runs(1)] == ["b1"]
    assert run.elapsed == 0.002


def test_a_call_past_its_script_is_an_unexpected_call_and_unused_turns_are_reported():
    from fakellm.errors import UnexpectedCall

    scenario = Scenario(scripts=(Script(["a"]), Script(["b", "c"])), starts_ms=(0, 0))

    async def twice(i, model):
        return [(await model.ainvoke("hi")).text for _ in range(2)] if i == 0 else None

    run = scenario.run(twice, shared=True, return_exceptions=True)
    assert isinstance(run.results[0], UnexpectedCall)
    assert "Rule 'call0'" in str(run.results[0])
    assert run.models[1].unused_turns == [
        "rules[1]: Rule 'call1' (2 of 2 uses left)",
    ]


def test_a_shared_model_from_another_scenario_is_refused():
    scenario = Scenario(scripts=(Script(["a"]),), starts_ms=(0,))
    other = Scenario(scripts=(Script(["b"]),), starts_ms=(0,)).shared_model()
    with pytest.raises(TypeError, match="expected a model made by this scenario's shared_model"):
        scenario.run(stream_reply, model=other, recorder=Recorder())


def test_a_sync_call_is_refused_with_the_fix():
    scenario = Scenario(scripts=(Script(["a"]),), starts_ms=(0,))
    with pytest.raises(TypeError) as caught:
        scenario.run(lambda i, model: model.invoke("hi").text)
    assert str(caught.value) == (
        "call(0, model) returned 'a', not an awaitable: the calls of a scenario run "
        "concurrently on one event loop, so call must be async (async def, or a lambda "
        "returning a coroutine); sync app code would block the loop (wrap it: await "
        "asyncio.to_thread(...))"
    )
