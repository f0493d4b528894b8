"""A model built from validated parts does not validate them again, with the same outcome.

``Script([turn])`` used to re-run every Turn's checks, and the size check walked
large input twice; these tests pin that the shortcuts give exactly the errors
(message, path, value) the full checks give, and fall back to them wherever
the outcome could differ: limits changed in the environment since the turn
was checked, a copy, a turn built without validation, a Turn subclass.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakellm import FakeChatModel, Script, Turn, _script
from fakellm.errors import InvalidScript


def _message(fn: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(InvalidScript) as info:
        fn(*args, **kwargs)
    return str(info.value)


# -- the size walk: one pass, as the two passes it replaced -----------------------------


def _reference_walk(data: Any, max_bytes: int, max_depth: int, *, final: bool) -> bool:
    """The size walk as it was (a floor pass, then a full pass): the reference."""
    total = 0
    stack: list[tuple[Any, int, Any]] = [(data, 1, None)]
    while stack:
        container, depth, link = stack.pop()
        if depth > max_depth:
            if not final:
                return True
            msg = (
                f"nested more than {max_depth} levels deep (FAKELLM_MAX_DEPTH); "
                "a script needs far fewer"
            )
            raise _script._FieldError(_script._link_path(link), container, msg)
        is_mapping = isinstance(container, Mapping)
        for key, item in container.items() if is_mapping else enumerate(container):
            total += 16 if is_mapping else 8
            if is_mapping and isinstance(key, str):
                total += _script._utf8_len(key)
            if isinstance(item, str):
                total += _script._utf8_len(item)
            elif isinstance(item, bytes | bytearray):
                total += len(item)
            elif isinstance(item, _script._CONTAINERS):
                stack.append((item, depth + 1, (link, key)))
            if total > max_bytes:
                if not final:
                    return True
                msg = (
                    f"the script's data is larger than FAKELLM_MAX_SCRIPT_BYTES={max_bytes:,} "
                    "bytes, counting each YAML alias (or shared object) every time it is used; "
                    "raise FAKELLM_MAX_SCRIPT_BYTES to load it"
                )
                raise _script._FieldError(_script._link_path((link, key)), item, msg)
    return False


def _reference_check(data: Any) -> None:
    if not isinstance(data, _script._CONTAINERS):
        return
    floors = _script._floor("FAKELLM_MAX_SCRIPT_BYTES"), _script._floor("FAKELLM_MAX_DEPTH")
    if _reference_walk(data, *floors, final=False):
        _reference_walk(
            data,
            _script.limit("FAKELLM_MAX_SCRIPT_BYTES"),
            _script.limit("FAKELLM_MAX_DEPTH"),
            final=True,
        )


def _outcome(check: Any, data: Any) -> tuple[str, str, Any] | None:
    try:
        check(data)
    except _script._FieldError as exc:
        return (str(exc.field_name), exc.message, exc.value)
    return None


_texts = st.text(alphabet=st.sampled_from(["a", "é", "玫", "\ud800", " "]), max_size=400)
_data = st.recursive(
    _texts | st.integers() | st.binary(max_size=300),
    lambda inner: (
        st.lists(inner, max_size=30)
        | st.lists(_texts, min_size=9, max_size=60).map(tuple)
        | st.dictionaries(st.text(max_size=20), inner, max_size=6)
    ),
    max_leaves=80,
)


@settings(max_examples=300, deadline=None)
@given(
    data=st.dictionaries(st.sampled_from(["turns", "chunks", "x"]), _data, max_size=3),
    max_bytes=st.sampled_from([None, "4096", "6000", "20000"]),
    max_depth=st.sampled_from([None, "8", "9"]),
)
def test_the_size_check_finds_what_the_two_pass_walk_found(
    data: Any, max_bytes: str | None, max_depth: str | None
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in (
            ("FAKELLM_MAX_SCRIPT_BYTES", max_bytes),
            ("FAKELLM_MAX_DEPTH", max_depth),
        ):
            if value is None:
                mp.delenv(name, raising=False)
            else:
                mp.setenv(name, value)
        assert _outcome(_script._check_size, data) == _outcome(_reference_check, data)


def test_a_long_list_of_strings_over_the_limit_names_the_item_that_crosses_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKELLM_MAX_SCRIPT_BYTES", "5000")
    chunks = [f"w{i} " for i in range(2000)]
    assert _message(Turn, chunks=chunks) == (
        "invalid script: chunks[391]: the script's data is larger than "
        "FAKELLM_MAX_SCRIPT_BYTES=5,000 bytes, counting each YAML alias (or shared object) "
        "every time it is used; raise FAKELLM_MAX_SCRIPT_BYTES to load it (got 'w391 ')"
    )
    monkeypatch.setenv("FAKELLM_MAX_SCRIPT_BYTES", "lots")
    assert _message(Turn, chunks=chunks) == (
        "invalid script: <script>: the environment variable FAKELLM_MAX_SCRIPT_BYTES='lots' "
        "must be a whole number >= 4,096 (got 'lots')"
    )
    monkeypatch.delenv("FAKELLM_MAX_SCRIPT_BYTES")
    assert Turn(chunks=chunks).text == "".join(chunks)


def test_explicit_chunks_that_are_not_strings_are_named_by_index() -> None:
    chunks: list[Any] = [f"w{i} " for i in range(20)]
    chunks[13] = 13
    assert _message(Turn, chunks=chunks) == (
        "invalid script: chunks[13]: explicit chunks must be strings (got 13)"
    )


# -- a checked Turn inside a Script ------------------------------------------------------


def _turn_budget_calls(monkeypatch: pytest.MonkeyPatch) -> list[Turn]:
    seen: list[Turn] = []
    real = _script._turn_budget

    def counting(turn: Turn) -> bool:
        seen.append(turn)
        return real(turn)

    monkeypatch.setattr(_script, "_turn_budget", counting)
    return seen


def test_a_checked_turn_is_not_checked_again_by_its_script(monkeypatch: pytest.MonkeyPatch) -> None:
    small, big = Turn("hello there"), Turn(chunks=[f"w{i} " for i in range(2000)])
    seen = _turn_budget_calls(monkeypatch)
    script = Script([small, big, "a string is checked once, as it becomes a turn"])
    assert len(seen) == 1
    assert seen[0] is script.turns[2]
    assert script.turns[:2] == (small, big)
    assert script.turns[0] is small
    FakeChatModel(script=[small, big])
    assert len(seen) == 1


def test_a_turn_over_a_floor_is_checked_again_when_the_limits_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    big = Turn("x" * 5000)  # over the text floor (4,096 bytes): it read the limit
    small = Turn("x" * 4000)  # under every floor: no limit can refuse it
    monkeypatch.setenv("FAKELLM_MAX_TEXT_BYTES", "4096")
    assert Script([small]).turns == (small,)
    assert _message(Script, [small, big]) == (
        "invalid script: turns[1].text: this turn holds 5,000 bytes of text, more than "
        f"FAKELLM_MAX_TEXT_BYTES=4,096; raise FAKELLM_MAX_TEXT_BYTES to allow it "
        f"(got '{'x' * 76}...)"
    )
    # The same error as a turn never checked gives under these limits.
    unchecked = Turn.model_construct(**{k: getattr(big, k) for k in Turn.model_fields})
    assert _message(Script, [small, big]) == _message(Script, [small, unchecked])
    monkeypatch.setenv("FAKELLM_MAX_TEXT_BYTES", "10_000")
    assert Script([big]).turns == (big,)
    chunky = Turn("ab" * 200, chunks="chars")  # over the chunk floor (256)
    monkeypatch.setenv("FAKELLM_MAX_CHUNKS", "300")
    assert _message(Script, [chunky]).startswith(
        "invalid script: turns[0].chunks: this turn streams more than FAKELLM_MAX_CHUNKS=300"
    )


def test_turns_not_known_to_be_checked_are_validated_as_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    turn = Turn("hi", error=ValueError, at_chunk=1)
    # Built without validation: an inconsistent turn is refused by the script.
    broken = Turn.model_construct(text="hi", content=({"type": "text", "text": "x"},))
    assert _message(Script, [turn, broken]) == (
        "invalid script: turns[1].content: give either text or content, not both "
        "(got ({'type': 'text', 'text': 'x'},))"
    )
    # A copy changed without validation is validated again too.
    changed = turn.model_copy(update={"at_chunk": 5})
    assert _message(Script, [changed]).startswith(
        "invalid script: turns[0].at_chunk: the error position is past the last chunk"
    )

    class Custom(Turn):
        pass

    seen = _turn_budget_calls(monkeypatch)
    custom = Custom("hi")
    copies = [copy.copy(turn), copy.deepcopy(turn), pickle.loads(pickle.dumps(turn))]
    seen.clear()
    script = Script([custom, *copies])
    assert [t for t in seen] == [custom, *copies]
    assert script.turns == (custom, *copies)
    assert all(c == turn for c in copies)


def test_the_check_mark_is_invisible() -> None:
    turn = Turn("hello", chunks=["hel", "lo"])
    again = Turn("hello", chunks=["hel", "lo"])
    assert turn == again
    assert repr(turn) == repr(again)
    assert "_fakellm" not in repr(turn)
    assert "_fakellm_checked" not in turn.model_dump()
    assert turn.model_dump() == again.model_dump()


# -- a model's script from a list of checked turns ----------------------------------------


def test_a_list_of_checked_turns_becomes_the_script_its_validation_builds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small, explicit = Turn("hello there"), Turn(chunks=["a ", "b"], id="x")
    for turns in ([small, explicit], (explicit,), [small] * 501, [small, "a string"], []):
        quick, validated = _script.as_script(turns), Script(turns)
        assert quick == validated
        assert vars(quick) == vars(validated)
        assert quick.model_fields_set == validated.model_fields_set
        assert repr(quick) == repr(validated)
        assert FakeChatModel(script=turns).script == validated
    seen = _turn_budget_calls(monkeypatch)
    _script.as_script([small, explicit])
    assert seen == []
    # Over the script's budget: the error Script(...) gives, path and all.
    big = Turn("a " * 60_000)
    assert (
        _message(FakeChatModel, script=[big, big])
        == _message(Script, [big, big])
        == (
            "invalid script: turns: the script's turns stream 120,000 chunks in all, more than "
            "FAKELLM_MAX_CHUNKS=100,000; raise FAKELLM_MAX_CHUNKS to allow it (got 120000)"
        )
    )
    monkeypatch.setenv("FAKELLM_MAX_CHUNKS", "lots")
    assert _message(_script.as_script, [big]) == _message(Script, [big])


def test_a_copy_of_a_changed_copy_is_validated_once_its_original_is_gone() -> None:
    # The original's __dict__ is freed with it; the next dict made (the copy's copy)
    # takes its address, which the mark carried over by model_copy names.
    def changed() -> Turn:
        return Turn("hello world").model_copy(update={"at_chunk": 1})

    expected = "invalid script: turns[0].at_chunk: at_chunk needs an error to place (got 1)"
    again = changed()
    for made in (
        again.model_copy(),
        copy.copy(changed()),
        copy.deepcopy(changed()),
        pickle.loads(pickle.dumps(changed())),
    ):
        assert _message(_script.as_script, [made]) == expected
        assert _message(Script, [made]) == expected
        assert _message(FakeChatModel, script=[made]) == expected
