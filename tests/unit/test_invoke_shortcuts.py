"""invoke's shortcuts give what the general path gave, call for call.

``FakeChatModel._generate`` (and ``_agenerate``) take several shortcuts on every
call: a turn's whole-play facts (finish reason, chunk count, error position,
delays and their sum) worked out once per turn, a plain reply assembled from a
validated prototype, and the wait and the reply (or error) settled in one frame.
``Reference`` below is the model with the general path as it was before them:
every plan worked out per call, every reply validated by langchain-core, the
reply and its wait settled by ``_settle(_whole(...))`` (``_asettle`` for
ainvoke). The call record written positionally and an unbatched take are
checked on their own further down. Both play the same drawn turns (plain text,
explicit chunks, tool calls, reasoning, content blocks, recorded streams,
errors at a chunk, usage overrides, scripted metadata), cut or not by ``stop``
and ``max_tokens``, through invoke and ainvoke under virtual time, and must give
the same message field for field (pydantic's own state included), the same call
record, the same error at the same virtual moment, and the same elapsed time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import threading
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.outputs import ChatResult
from pydantic import ValidationError

from fakellm import (
    FakeChatModel,
    Script,
    ToolCall,
    Turn,
    Usage,
    _order,
    _script,
    strategies,
    virtual_time,
)
from fakellm._model import (
    _asettle,
    _check_tool_choice,
    _joined,
    _Plan,
    _Reply,
    _settle,
    _stream_plan,
    _stream_result,
    _structured_turn,
    _text_index,
    _tool_calls,
    _truncate_at_stop,
    _usage,
    _validated_result,
    _whole,
)
from fakellm._script import Call, Piece, split_text
from fakellm.errors import InvalidScript, UnknownToolError

PRICE = {
    "type": "function",
    "function": {
        "name": "price",
        "description": "Price of a flower.",
        "parameters": {"type": "object", "properties": {"flower": {"type": "string"}}},
    },
}


class Stamped(Exception):
    """An error that notes the (virtual) moment it was made: the reference makes the
    turn's error before the turn's delays pass, so a shortcut must too."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.made_at = dt.datetime.now()


class Reference(FakeChatModel):
    """FakeChatModel's invoke as it was before the shortcuts (fakellm 38096a4)."""

    def _plan(
        self,
        call: Call,
        turn: Turn,
        stop: Sequence[str] | None,
        max_tokens: int | None,
        model_name: str,
        input_tokens: int,
    ) -> _Plan:
        if turn.stream is not None:
            return _stream_plan(
                turn, model_name, turn.id or f"fakellm-{self.model_name}-{call.index}"
            )
        if turn.structured is not None:
            turn = _structured_turn(self, call, turn)
        if (
            call.tool_choice is not None
            and not turn.ignore_tool_choice
            and turn.error_position != 0
        ):
            _check_tool_choice(self, call, turn)
        if turn.tool_calls:
            bound = call.tool_names
            for tc in turn.tool_calls:
                if tc.name not in bound and not tc.allow_unbound:
                    offered = ", ".join(repr(n) for n in bound) if bound else "none"
                    msg = (
                        f"{self._label()} call #{call.index}: the script calls tool {tc.name!r}, "
                        f"which is not bound (bound tools: {offered}). Bind it with "
                        "model.bind_tools([...]), fix the tool name in the script, or set "
                        "allow_unbound=True on the ToolCall to script a hallucinated tool."
                    )
                    raise UnknownToolError(msg)
        cut: tuple[Piece, ...] | None = None
        total = count = turn.piece_count
        finish = turn.finish_reason or ("tool_calls" if turn.tool_calls else "stop")
        if stop and turn.content is None and turn.text and any(s and s in turn.text for s in stop):
            cut, stopped = _truncate_at_stop(turn.pieces, stop)
            count = len(cut)
            if stopped:
                finish = "stop"
        if max_tokens is not None and count > max_tokens:
            cut = (turn.pieces if cut is None else cut)[:max_tokens]
            count = max_tokens
            finish = "length"
        error_at = turn.error_position
        if error_at is not None:
            error_at = min(error_at, count)
        delays = turn.delays(min(total, max(count, 1)))
        if not count and not delays:
            delays = [turn.first_token_delay]
        return _Plan(
            turn=turn,
            cut=cut,
            count=count,
            given_delays=delays,
            error_at=error_at,
            finish_reason=finish,
            usage=_usage(turn, input_tokens, cut, count),
            model_name=model_name,
            tool_ids=[tc.id or f"call_{call.index}_{i}" for i, tc in enumerate(turn.tool_calls)]
            if turn.tool_calls
            else [],
            message_id=turn.id or f"fakellm-{self.model_name}-{call.index}",
        )

    def _result(self, plan: _Plan) -> ChatResult:
        turn = plan.turn
        if turn.stream is not None:
            return _stream_result(plan)
        content: Any
        if plan.cut is None and turn.reasoning is None and turn.content is None:
            content = turn.text or ""
        elif turn.reasoning is not None or turn.content is not None:
            reasoning, blocks, text = _joined(plan)
            content = []
            if reasoning:
                content.append({"type": "reasoning", "reasoning": reasoning, "index": 0})
            content.extend(blocks)
            if text:
                content.append({"type": "text", "text": text, "index": _text_index(turn)})
        else:
            content = _joined(plan)[2]
        tool_calls, invalid_tool_calls = _tool_calls(plan) if turn.tool_calls else ([], [])
        usage = plan.usage
        llm_output = {
            "token_usage": {
                "prompt_tokens": usage["input_tokens"],
                "completion_tokens": usage["output_tokens"],
                "total_tokens": usage["total_tokens"],
            },
            "model_name": plan.model_name,
        }
        reply = _Reply(
            content,
            plan.message_id,
            turn.name,
            dict(turn.additional_kwargs),
            tool_calls,
            invalid_tool_calls,
            dict(usage),
            self._final_metadata(plan),
            llm_output,
        )
        return _validated_result(reply)  # langchain-core's validation, never a copy

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        plan = self._begin(messages, stop, run_manager, kwargs, streaming=False)
        return _settle(_whole(plan, self._error, self._result))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        plan = await self._abegin(messages, stop, run_manager, kwargs, streaming=False)
        return await _asettle(_whole(plan, self._error, self._result))


def _state(value: Any) -> Any:
    """Everything pydantic holds for a model instance, nested models and lists of them too."""
    if isinstance(value, list):
        return [_state(v) for v in value]
    if isinstance(value, dict):
        return {k: _state(v) for k, v in value.items()}
    if not hasattr(value, "__pydantic_fields_set__"):
        return (type(value), value)
    return (
        type(value),
        {k: _state(v) for k, v in value.__dict__.items()},
        value.__pydantic_fields_set__,
        value.__pydantic_extra__,
        value.__pydantic_private__,
    )


def _record(call: Call) -> dict[str, Any]:
    return {k: v for k, v in vars(call).items() if k != "run_id"}  # each run has its own id


def _play(cls: type[FakeChatModel], turn: Turn, call_kwargs: dict[str, Any]) -> dict[str, Any]:
    model = cls(script=Script([turn] * 4))
    bound = model.bind_tools([PRICE])
    asked = [HumanMessage("Which flowers?")]
    seen: dict[str, Any] = {"replies": []}
    with virtual_time() as vt:
        # Each path twice: the first play and a second one (the whole-play facts kept).
        for path in ("invoke", "invoke", "ainvoke", "ainvoke"):
            try:
                if path == "invoke":
                    message = bound.invoke(asked, **call_kwargs)
                else:
                    message = asyncio.run(bound.ainvoke(asked, **call_kwargs))
            except Exception as err:  # compared below: type, words, moment made
                made = getattr(err, "made_at", None)
                seen["replies"].append(("error", type(err), str(err), made, vt.elapsed))
            else:
                seen["replies"].append(("message", _state(message), vt.elapsed))
    seen["calls"] = [_record(c) for c in model.calls]
    return seen


_SHAPES = {
    "plain words": Turn("Roses are red, violets are blue.", first_token_delay=0.2, delay=0.1),
    "plain chars": Turn("abc", chunks="chars"),
    "empty": Turn(""),
    "explicit with empties": Turn(chunks=["Ro", "", "ses ", "", "red"], delay=[0.1, 0.2]),
    "content blocks": Turn(
        content=[{"type": "image", "url": "u"}, {"type": "text", "text": "Pink."}] * 2
    ),
    "refusal alone": Turn(refusal="No."),
    "scripted fields": Turn(
        "a b c",
        finish_reason="end_turn",
        response_metadata={"region": "eu", "model_name": "scripted"},
        additional_kwargs={"audio": {"id": "a1"}},
        name="florist",
        id="msg-9",
    ),
    "usage with details": Turn(
        "a b", usage=Usage(input_tokens=10, output_token_details={"reasoning": 2})
    ),
    "tool call": Turn("Checking.", tool_calls=[ToolCall("price", {"flower": "rose"})]),
    "error at end": Turn("a b c", error=Stamped, at_chunk="end", delay=0.5),
    "error at start": Turn("a b c", error=TimeoutError("slow"), first_token_delay=1.0),
    "recorded stream": Turn(
        stream=[
            {"content": "He", "delay": 0.1},
            {"content": "llo", "usage_metadata": {"input_tokens": 2, "output_tokens": 2,
                                                  "total_tokens": 4}},
        ]
    ),
    "repeated delays": Turn("a b c d", delay={"repeat": [0.1, 0.2]}),
}  # fmt: skip


def _drawn_turns() -> st.SearchStrategy[Turn]:
    drawn = strategies.turns(
        max_chunks=5,
        errors=[Stamped, ValueError],
        tools=[PRICE],
        reasoning=True,
        max_first_token_ms=2000,
    )
    return st.one_of(st.sampled_from(list(_SHAPES.values())), drawn)


_CALL_KWARGS = st.fixed_dictionaries(
    {},
    optional={
        "stop": st.lists(st.sampled_from(["a", "e", "ses", "o", "zz", ""]), max_size=2),
        "max_tokens": st.integers(1, 6),
    },
)


@pytest.mark.parametrize("shape", list(_SHAPES), ids=list(_SHAPES))
@pytest.mark.parametrize(
    "cut", [{}, {"stop": ["e"]}, {"max_tokens": 2}], ids=["whole", "stop", "max"]
)
def test_each_shape_invokes_as_the_general_path_did(shape: str, cut: dict[str, Any]) -> None:
    turn = _SHAPES[shape]
    assert _play(FakeChatModel, turn, cut) == _play(Reference, turn, cut)


@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(_drawn_turns(), _CALL_KWARGS)
def test_drawn_turns_invoke_as_the_general_path_did(
    turn: Turn, call_kwargs: dict[str, Any]
) -> None:
    assert _play(FakeChatModel, turn, call_kwargs) == _play(Reference, turn, call_kwargs)


class _Text(str):
    """A str subclass: what a turn's text can be when a copy sets it unvalidated."""


def test_a_turn_whose_text_is_a_str_subclass_answers_as_the_general_path_did() -> None:
    # model_copy(update=...) does not validate (pydantic's rule), so the copy keeps the
    # subclass; the reply's content is validated into a plain str all the same.
    turn = Turn("a").model_copy(update={"text": _Text("b c")})
    assert type(turn.text) is _Text
    assert _play(FakeChatModel, turn, {}) == _play(Reference, turn, {})
    reply = FakeChatModel(script=[turn]).invoke("hi")
    assert type(reply.content) is str
    assert reply.content == "b c"


def test_a_plain_reply_never_shares_a_container_with_another_call() -> None:
    model = FakeChatModel(script=Script([Turn("a b", additional_kwargs={"k": [1]})] * 3))
    first, second = model.invoke("hi"), model.invoke("hi")
    for field in ("additional_kwargs", "response_metadata", "usage_metadata", "tool_calls"):
        assert getattr(first, field) is not getattr(second, field), field
    first.additional_kwargs["k"] = 2
    first.usage_metadata["output_tokens"] = 99  # type: ignore[index]
    first.tool_calls.append({"name": "x", "args": {}, "id": "1", "type": "tool_call"})
    assert second.additional_kwargs == {"k": [1]}
    assert second.usage_metadata["output_tokens"] == 2  # type: ignore[index]
    assert second.tool_calls == []
    assert model.invoke("hi").additional_kwargs == {"k": [1]}  # nor the turn's own


# -- the take ----------------------------------------------------


def test_a_batch_still_takes_its_turns_in_input_order() -> None:
    # An unbatched take skips the batch's context; a batch's own takes still wait.
    model = FakeChatModel(script=[f"reply {i}" for i in range(6)])
    replies = model.batch([f"q{i}" for i in range(6)], config={"max_concurrency": 3})
    assert [r.content for r in replies] == [f"reply {i}" for i in range(6)]
    assert [c.last_human_message for c in model.calls] == [f"q{i}" for i in range(6)]


# -- a turn's whole play, kept ---------------------------------------------------------


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.one_of(_drawn_turns(), strategies.turns(max_chunks=40, max_ms=5)))
def test_a_turns_whole_play_is_what_each_call_worked_out(turn: Turn) -> None:
    play = _script.whole_play(turn)
    count = turn.piece_count
    delays = turn.delays(count) or [turn.first_token_delay]
    assert play.chunk_count == count == len(turn.pieces)
    assert play.finish_reason == (
        turn.finish_reason or ("tool_calls" if turn.tool_calls else "stop")
    )
    assert play.error_at == turn.error_position
    assert list(_script.whole_delays(turn)) == delays
    assert play.wait == sum(delays)
    assert _script.whole_play(turn) is play  # kept
    assert _script.whole_delays(turn) is _script.whole_delays(turn)


def test_a_changed_copy_works_its_whole_play_out_again() -> None:
    turn = Turn("a b c", delay=0.5)
    assert _script.whole_play(turn).wait == 1.0
    changed = turn.model_copy(update={"delay": 0.25})
    assert _script.whole_play(changed).wait == 0.5
    assert _script.whole_play(turn).wait == 1.0


# -- explicit chunks: counted and joined as before ------------------------------------


@settings(max_examples=150, deadline=None, derandomize=True, database=None)
@given(st.lists(st.text(alphabet="ab \n", max_size=3), min_size=0, max_size=30))
def test_explicit_chunks_count_and_join_as_their_pieces(chunks: list[str]) -> None:
    turn = Turn(chunks=chunks)
    joined = "".join(chunks)
    assert turn.text == joined
    assert turn.chunks == tuple(chunks)
    expected = len(split_text(joined, tuple(chunks))) if joined else 0
    assert turn.piece_count == expected == len(turn.pieces)
    # Validated again with the chunks of other turns in between, and with text given.
    other = Turn(chunks=["x", "y"])
    assert Turn(joined, chunks=chunks).piece_count == expected
    assert other.text == "xy"


def test_a_join_kept_for_other_chunks_is_not_taken() -> None:
    Turn(chunks=["a", "b"])  # keeps ("a", "b")'s join if nothing took it
    assert _script._chunks_joined(("c", "d")) == "cd"
    assert _script._chunks_joined(("a", "b")) == "ab"


def test_bad_explicit_chunks_are_refused_as_before() -> None:
    with pytest.raises(InvalidScript) as caught:
        Turn(chunks=["a", 3, "b"])
    assert str(caught.value) == (
        "invalid script: chunks[1]: explicit chunks must be strings (got 3)"
    )
    with pytest.raises(InvalidScript) as caught:
        Turn("ab", chunks=["a", "c"])
    assert "explicit chunks must join to the text 'ab', they join to 'ac'" in str(caught.value)


def test_a_chunk_that_is_no_str_but_joins_is_counted_as_split_text_keeps_it() -> None:
    class Blank(str):
        """A non-empty str subclass that says it is empty: split_text drops it."""

        def __bool__(self) -> bool:
            return False

    turn = Turn(chunks=["a", Blank("b"), "c"])
    assert turn.piece_count == len(turn.pieces) == 2


def test_an_invoked_recorded_stream_is_each_calls_own() -> None:
    model = FakeChatModel(script=Script([_SHAPES["recorded stream"]] * 2))
    first, second = model.invoke("hi"), model.invoke("hi")
    assert first.usage_metadata == {"input_tokens": 2, "output_tokens": 2, "total_tokens": 4}
    assert first.usage_metadata is not second.usage_metadata


# -- a model's script of one checked turn -------------------------------------------


def test_one_checked_turn_is_a_script_only_under_the_limits_it_was_checked_under(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    turn = Turn(chunks=[f"w{i} " for i in range(300)])  # over the chunk floor: limits read
    assert FakeChatModel(script=[turn]).script == Script([turn])
    monkeypatch.setenv("FAKELLM_MAX_CHUNKS", "256")
    with pytest.raises(InvalidScript) as from_model:
        FakeChatModel(script=[turn])
    with pytest.raises(InvalidScript) as from_script:
        Script([turn])
    assert str(from_model.value) == str(from_script.value)
    assert "more than FAKELLM_MAX_CHUNKS=256" in str(from_model.value)
    monkeypatch.setenv("FAKELLM_MAX_CHUNKS", "1_000")
    assert FakeChatModel(script=[turn]).script == Script([turn])


class _HalfTokens:
    """A model counting input tokens its own way (a float): its usage is validated,
    and langchain-core refuses it, as the general path did (a copy would take it)."""

    def get_num_tokens_from_messages(self, messages: Any, tools: Any = None) -> Any:
        return 2.5


class HalfTokens(_HalfTokens, FakeChatModel):
    pass


class HalfTokensReference(_HalfTokens, Reference):
    pass


def test_input_tokens_counted_otherwise_give_the_validated_usage() -> None:
    turn = Turn("a b c")
    fast, slow = _play(HalfTokens, turn, {}), _play(HalfTokensReference, turn, {})
    assert fast == slow
    kind, error_type, words = fast["replies"][0][:3]
    assert (kind, error_type) == ("error", ValidationError)
    assert "usage_metadata.input_tokens" in words


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_forked_from_a_worker_thread_takes_that_thread_as_its_main() -> None:
    statuses: list[int] = []

    def fork_here() -> None:
        pid = os.fork()
        if pid == 0:  # the child: this thread is its main thread now
            # The main thread's id the shortcut compares with follows (a thread started
            # here may get the parent's main thread's old id, and must not pass for it).
            ok = (
                _order.by_threads(False) is None
                and threading.current_thread() is threading.main_thread()
                and threading.main_thread().ident == threading.get_ident()
            )
            os._exit(0 if ok else 1)
        statuses.append(os.waitpid(pid, 0)[1])

    worker = threading.Thread(target=fork_here)
    worker.start()
    worker.join()
    assert statuses == [0]
    assert _order.by_threads(False) is None  # and the parent's main thread is still its own


# -- words counted by str.split, a slice at a time --------------------------------------

_SPACES = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())


def _counted_by_matches(text: str, cap: int) -> int:
    """``_chunk_count(text, "words", cap)`` as it was: one Python step per match."""
    if not text:
        return 0
    matches = (m for m in _script._WORDS.finditer(text) if m.end() > m.start())
    return max(1, sum(1 for _ in itertools.islice(matches, cap + 1)))


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(
    st.text(alphabet=st.sampled_from(["a", "b", "é", *_SPACES]), max_size=60),
    st.integers(0, 20),
    st.integers(1, 8),
)
def test_words_are_counted_as_their_matches_were(text: str, cap: int, piece: int) -> None:
    real = _script._WORD_SLICE
    _script._WORD_SLICE = piece  # slices far shorter than the text: every cut is exercised
    try:
        assert _script._chunk_count(text, "words", cap) == _counted_by_matches(text, cap)
        uncapped = _script._chunk_count(text, "words", _script._UNCAPPED)
    finally:
        _script._WORD_SLICE = real
    assert uncapped == _counted_by_matches(text, _script._UNCAPPED)
    assert uncapped == max(1, len(split_text(text, "words"))) if text else uncapped == 0


def test_a_long_text_is_counted_as_its_pieces() -> None:
    text = "".join(f"w{i}{' ' if i % 7 else chr(0x3000)}" for i in range(30_000)) + "x" * 70_000
    turn = Turn(text)
    assert turn.piece_count == len(turn.pieces) == 30_001
    assert _script._chunk_count(text, "words", 256) == 257
