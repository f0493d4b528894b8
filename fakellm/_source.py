"""Scripts as Python source: compact reprs that evaluate back to equal objects.

A counterexample is only useful if it can be pasted into a test. pydantic's own
repr of a :class:`~fakellm.Turn` lists all twelve fields and shows an error class
as ``<class '...'>``; these helpers write only the fields that differ from their
defaults, errors by importable name, and plain-text turns of a script as bare
strings. The text evaluates back to an equal object with::

    from fakellm import Rule, Script, ToolCall, Turn, Usage, errors

(callables of a rule are written by name, so they must be in scope too, and a
regex chunking as ``re.compile(...)``, which needs ``import re``).
:func:`register_pretty` teaches Hypothesis' printer the same forms, so every
falsifying example shows them. Pure: no LangChain, no Hypothesis import at
module level.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from fakellm import errors
from fakellm._script import Repeat, Rule, Script, ToolCall, Turn, Usage

if TYPE_CHECKING:
    from hypothesis.vendor.pretty import RepresentationPrinter

__all__ = ["register_pretty", "source"]

_IDENTIFIER_PATH = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def source(obj: Turn | Script | Rule | ToolCall | Usage) -> str:
    """``obj`` as Python source that evaluates back to an equal object."""
    return "".join(_pieces(obj, _flat))


def error_source(error: Any) -> str:
    """An error class or instance as importable source: ``errors.RateLimitError``."""
    cls = error if isinstance(error, type) else type(error)
    if getattr(errors, cls.__name__, None) is cls:
        name = f"errors.{cls.__name__}"
    elif getattr(builtins, cls.__name__, None) is cls:
        name = cls.__name__
    else:
        name = f"{cls.__module__}.{cls.__qualname__}"
    if isinstance(error, type):
        return name
    if isinstance(error, errors.ProviderError):
        # ProviderError's repr is its keyword form: RateLimitError(retry_after=1.0)
        return f"{name}{repr(error).removeprefix(cls.__name__)}"
    return f"{name}({', '.join(map(repr, error.args))})"


def _callable_source(fn: Any) -> str:
    name = getattr(fn, "__qualname__", None) or ""
    return name if _IDENTIFIER_PATH.fullmatch(name) else repr(fn)


# -- one writer for both outputs: the flat string and Hypothesis' pretty printer -------------
#
# _pieces yields the parts of a call: ("open", "Turn("), ("arg", text or object),
# ("close", ")"). Nested script parts are yielded as objects, so the pretty
# printer can lay them out (and break long lines) with the same printers.


def _value(value: Any) -> Any:
    """What to write for a field value: a part to recurse into, or its source text."""
    if isinstance(value, Turn | Script | Rule | ToolCall | Usage):
        return value
    if isinstance(value, tuple) and value and all(isinstance(v, Turn | Rule) for v in value):
        return _Seq("(", value, ")")
    if isinstance(value, Repeat):
        return f"Repeat(repeat={value.repeat!r})"
    if isinstance(value, re.Pattern):
        return f"re.compile({value.pattern!r})"
    return repr(value)


class _Seq:
    def __init__(self, opening: str, items: tuple[Any, ...] | list[Any], closing: str) -> None:
        self.opening, self.items, self.closing = opening, items, closing


def _turn_args(turn: Turn) -> list[tuple[str, Any]]:
    args: list[tuple[str, Any]] = []
    explicit = isinstance(turn.chunks, tuple)
    for name, info in Turn.model_fields.items():
        value = getattr(turn, name)
        default = info.get_default(call_default_factory=True)
        if name == "text":
            # Explicit chunks set the text; writing both would say it twice.
            if value is None or (
                explicit and turn.content is None and value == "".join(turn.chunks)
            ):
                continue
            args.append(("", repr(value)))
            continue
        if value == default and not (name == "chunks" and explicit):
            continue
        if name == "error":
            args.append((name, error_source(value)))
        elif name == "tool_calls":
            args.append((name, _Seq("(", value, ",)" if len(value) == 1 else ")")))
        else:
            args.append((name, _value(value)))
    return args


def _args(obj: Any) -> tuple[str, list[tuple[str, Any]]]:
    if isinstance(obj, Turn):
        return "Turn", _turn_args(obj)
    if isinstance(obj, ToolCall):
        args: list[tuple[str, Any]] = [("", repr(obj.name))]
        if obj.args or obj.id is not None:
            args.append(("", repr(obj.args)))
        if obj.id is not None:
            args.append(("id", repr(obj.id)))
        return "ToolCall", args
    if isinstance(obj, Usage):
        given = obj.model_dump(exclude_defaults=True)
        return "Usage", [(k, repr(v)) for k, v in given.items()]
    if isinstance(obj, Rule):
        out: list[tuple[str, Any]] = []
        for name in Rule.model_fields:
            value = getattr(obj, name)
            if value is None:
                continue
            if name in ("when", "responder"):
                out.append((name, _callable_source(value)))
            elif name == "match":
                out.append((name, repr(value.pattern)))
            else:
                out.append((name, _value(value)))
        return "Rule", out
    if isinstance(obj, Script):
        turns = [_text_only(t) or t for t in obj.turns]
        out = [("", _Seq("[", turns, "]"))] if obj.turns else []
        if obj.rules:
            out.append(("rules", _Seq("(", obj.rules, ",)" if len(obj.rules) == 1 else ")")))
        if obj.when_exhausted != "raise":
            out.append(("when_exhausted", repr(obj.when_exhausted)))
        return "Script", out
    raise TypeError(f"no source form for {type(obj).__name__}")


def _text_only(turn: Turn) -> str | None:
    """``'hi'`` for a turn a script may write as its bare text (``Turn('hi')``)."""
    if turn.text and turn == Turn(turn.text):
        return repr(turn.text)
    return None


def _pieces(obj: Any, emit: Callable[[Any], str]) -> Iterator[str]:
    name, args = _args(obj)
    yield f"{name}("
    for k, (keyword, value) in enumerate(args):
        if k:
            yield ", "
        if keyword:
            yield f"{keyword}="
        yield emit(value)
    yield ")"


def _flat(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, _Seq):
        return value.opening + ", ".join(map(_flat, value.items)) + value.closing
    return "".join(_pieces(value, _flat))


# -- Hypothesis' pretty printer ------------------------------------------------------------


def _pretty(obj: Any, p: RepresentationPrinter, cycle: bool) -> None:
    name, args = _args(obj)
    with p.group(len(name) + 1, f"{name}(", ")"):
        for k, (keyword, value) in enumerate(args):
            if k:
                p.text(",")
                p.breakable()
            if keyword:
                p.text(f"{keyword}=")
            _pretty_value(value, p)


def _pretty_value(value: Any, p: RepresentationPrinter) -> None:
    if isinstance(value, str):
        p.text(value)
    elif isinstance(value, _Seq):
        with p.group(len(value.opening), value.opening, value.closing):
            for k, item in enumerate(value.items):
                if k:
                    p.text(",")
                    p.breakable()
                _pretty_value(item, p)
    else:
        p.pretty(value)


def register_pretty() -> None:
    """Make Hypothesis print scripts, turns, rules, tool calls and usage as source."""
    from hypothesis.vendor.pretty import for_type_by_name

    for cls in (Turn, Script, Rule, ToolCall, Usage):
        for_type_by_name(cls.__module__, cls.__qualname__, _pretty)
