"""Unit tests for the offline token counter (fakellm._tokens)."""

from __future__ import annotations

import zlib

import pytest

from fakellm._tokens import count_tokens, count_tokens_in, token_ids, tokenize

CASES = [
    # (text, tokens)
    (
        "Roses, lilies and sunflowers.",
        ["Roses", ",", "lilies", "and", "sunflowers", "."],
    ),
    ("我想买玫瑰", ["我", "想", "买", "玫", "瑰"]),
    ("I want 玫瑰 roses!", ["I", "want", "玫", "瑰", "roses", "!"]),
    ("abc玫瑰def", ["abc", "玫", "瑰", "def"]),
    # fullwidth comma and exclamation mark are punctuation: one token each
    ("你好\uff0c世界\uff01", ["你", "好", "\uff0c", "世", "界", "\uff01"]),
    ("こんにちは", ["こ", "ん", "に", "ち", "は"]),
    ("カタカナ", ["カ", "タ", "カ", "ナ"]),
    ("안녕하세요", ["안", "녕", "하", "세", "요"]),
    ("I love 🌹!", ["I", "love", "🌹", "!"]),
    ("🌹🌹", ["🌹", "🌹"]),
    ("gpt4o_mini", ["gpt4o_mini"]),
    ("don't", ["don", "'", "t"]),
    ("3.14", ["3", ".", "14"]),
    ("a-b", ["a", "-", "b"]),
    ("naïve café", ["naïve", "café"]),
    ("...", [".", ".", "."]),
    ("", []),
    ("   ", []),
    (" \n\t\r ", []),
    ("  spaced   out  ", ["spaced", "out"]),
]


@pytest.mark.parametrize(("text", "tokens"), CASES)
def test_tokenize(text, tokens) -> None:
    assert tokenize(text) == tokens


@pytest.mark.parametrize(("text", "tokens"), CASES)
def test_count_tokens_is_the_number_of_tokens(text, tokens) -> None:
    assert count_tokens(text) == len(tokens)


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Roses, lilies and sunflowers.", 6),
        ("我想买玫瑰", 5),
        ("玫瑰", 2),
        ("sunflowers", 1),
        ("I want 玫瑰 roses!", 6),
        ("I love 🌹!", 4),
        ("", 0),
        ("    ", 0),
    ],
)
def test_documented_counts(text, count) -> None:
    assert count_tokens(text) == count


def test_count_tokens_in_sums_over_texts() -> None:
    texts = ["Roses, lilies and sunflowers.", "我想买玫瑰", "", "  "]
    assert count_tokens_in(texts) == 11
    assert count_tokens_in([]) == 0
    assert count_tokens_in(iter(["a b", "c"])) == 3


def test_token_ids_are_crc32_of_utf8() -> None:
    assert token_ids("Roses") == [1619387790]
    first_three = token_ids("Roses, lilies and sunflowers.")[:3]
    assert first_three == [1619387790, 3772416878, 3181804750]
    assert token_ids("玫") == [zlib.crc32("玫".encode())]
    assert token_ids("") == []


def test_token_ids_same_token_same_id() -> None:
    ids = token_ids("rose Rose rose")
    assert ids[0] == ids[2]
    assert ids[0] != ids[1]


@pytest.mark.parametrize(("text", "tokens"), CASES)
def test_token_ids_length_matches_count(text, tokens) -> None:
    ids = token_ids(text)
    assert len(ids) == count_tokens(text) == len(tokens)
    assert ids == [zlib.crc32(t.encode("utf-8")) for t in tokens]
    assert all(0 <= i < 2**32 for i in ids)


def test_supplementary_plane_ideographs_are_one_token_each() -> None:
    assert count_tokens("\U00020000\U00020001") == 2


def test_emoji_modifiers_and_joiners_are_separate_tokens() -> None:
    # Documents the rule as implemented: one token per non-space code point.
    assert tokenize("👋🏽") == ["👋", "🏽"]
    assert count_tokens("👨\u200d👩\u200d👧") == 5
