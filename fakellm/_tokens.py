"""The deterministic offline token counter.

Real tokenizers need downloads (langchain-core falls back to GPT-2 through
``transformers``), so fakellm counts tokens with one documented rule instead,
simple enough to compute by hand in a test:

* every run of letters, digits and underscores is one token (``sunflowers`` = 1,
  ``gpt4o_mini`` = 1),
* every CJK ideograph, kana or hangul syllable is one token on its own
  (``玫瑰`` = 2), since those scripts do not separate words with spaces,
* every other non-space character (punctuation, symbols, emoji) is one token,
* whitespace is free.

So ``"Roses, lilies and sunflowers."`` is 6 tokens. The same counter computes
``usage_metadata["input_tokens"]`` and backs ``get_num_tokens`` /
``get_token_ids``, so token-buffer memories trim exactly where usage says.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable

__all__ = ["count_tokens", "count_tokens_in", "token_ids", "tokenize"]

_CJK = (
    r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
    r"\uff66-\uff9f\U00020000-\U0003134f"
)
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into tokens by the rule in this module's docstring."""
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """Number of tokens in ``text`` (see the module docstring for the rule)."""
    return len(_TOKEN.findall(text))


def count_tokens_in(texts: Iterable[str]) -> int:
    """Total number of tokens over several texts."""
    return sum(len(_TOKEN.findall(t)) for t in texts)


def token_ids(text: str) -> list[int]:
    """Stable ids for the tokens of ``text``: the same on every run and machine.

    An id is the CRC-32 of the token's UTF-8 bytes, which, unlike ``hash()``,
    does not change with ``PYTHONHASHSEED``.
    """
    return [zlib.crc32(tok.encode("utf-8")) for tok in _TOKEN.findall(text)]
