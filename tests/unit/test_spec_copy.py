"""A script part copied with ``model_copy(update=...)`` plays its new fields.

A Turn works out its chunks and counts once and keeps them in its ``__dict__``
(a ToolCall its argument text); pydantic's ``model_copy`` copies that dict and
then applies the update, so without care a copy would stream the original's
chunks while its ``text`` says otherwise.
"""

from __future__ import annotations

from fakellm import FakeChatModel, Script, ToolCall, Turn


def test_a_turn_copied_with_new_text_streams_and_counts_the_new_text() -> None:
    original = Turn("a b c")
    assert original.piece_count == 3
    assert len(original.pieces) == 3
    copied = original.model_copy(update={"text": "x y"})

    assert copied.piece_count == 2
    assert [p.text for p in copied.pieces] == ["x ", "y"]
    streamed = FakeChatModel(script=Script([copied])).stream("hi")
    assert [c.content for c in streamed] == ["x ", "y"]
    reply = FakeChatModel(script=Script([copied])).invoke("hi")
    assert reply.content == "x y"
    assert reply.usage_metadata is not None
    assert reply.usage_metadata["output_tokens"] == 2
    # The original keeps its own.
    assert [p.text for p in original.pieces] == ["a ", "b ", "c"]


def test_a_turn_copied_with_new_chunks_plays_them() -> None:
    original = Turn(chunks=["one ", "two"])
    assert original.piece_count == 2
    copied = original.model_copy(update={"chunks": ("1", "2", "3"), "text": "123"})
    assert [c.content for c in FakeChatModel(script=Script([copied])).stream("hi")] == [
        "1",
        "2",
        "3",
    ]


def test_a_tool_call_copied_with_new_args_streams_the_new_argument_text() -> None:
    original = ToolCall("lookup", {"q": "rose"}, allow_unbound=True)
    assert original.args_json == '{"q": "rose"}'
    copied = original.model_copy(update={"args": {"q": "tulip"}})
    assert copied.args_json == '{"q": "tulip"}'
    reply = FakeChatModel(script=Script([Turn(tool_calls=[copied])])).invoke("hi")
    assert reply.tool_calls[0]["args"] == {"q": "tulip"}


def test_a_copy_without_update_keeps_what_was_worked_out() -> None:
    original = Turn("a b c")
    pieces = original.pieces
    assert original.model_copy().pieces is pieces
