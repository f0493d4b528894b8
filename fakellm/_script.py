"""Scripts: what a fake model does, call by call. Pure, validated, immutable data.

No LangChain import here: a :class:`Script` is plain data that the models in
``_model.py`` play. Validation is pydantic's; every failure is turned into one
:class:`~fakellm.errors.InvalidScript` that names the field path, the value and
what is accepted.
"""

from __future__ import annotations

import builtins
import dataclasses
import functools
import inspect
import itertools
import json
import math
import os
import re
import threading
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import MISSING, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple, Self, TypeAlias, TypeVar
from uuid import UUID

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

from fakellm import _compat, _order, errors
from fakellm.errors import InvalidScript, ScriptProblem

__all__ = [
    "Call",
    "Chunk",
    "Piece",
    "Repeat",
    "Rule",
    "Script",
    "ScriptPlayer",
    "ToolCall",
    "Turn",
    "Usage",
    "load_script",
    "split_text",
]

Chunking: TypeAlias = "Literal['words', 'chars'] | int | tuple[str, ...] | re.Pattern[str]"

_WORDS = re.compile(r"\s*\S+\s*")


class _FieldError(ValueError):
    """A validation failure that knows which field it is about (for the path)."""

    def __init__(self, field_name: str | int | None, value: Any, message: str) -> None:
        super().__init__(message)
        self.field_name = field_name
        self.value = value
        self.message = message


_SEQUENCES: dict[type, tuple[str, ...]] = {}


def _is_sequence_type(annotation: Any) -> bool:
    """Whether a field is a tuple, or a tuple or None (not a union with scalars)."""
    if typing.get_origin(annotation) is tuple:
        return True
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return len(args) == 1 and typing.get_origin(args[0]) is tuple


_init_depth: ContextVar[int] = ContextVar("fakellm_init_depth", default=0)

_FIELD_NAMES: dict[type, frozenset[str]] = {}


def _field_names(cls: type[BaseModel]) -> frozenset[str]:
    """A part's field names (fixed once its class is built; ``model_fields`` is a
    descriptor that costs more than the check it serves)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(cls.model_fields)
    return names


_DERIVED_NAMES: dict[type, tuple[str, ...]] = {}


def _derived_names(cls: type) -> tuple[str, ...]:
    """The names of ``cls``'s cached properties: values kept in an instance's
    ``__dict__``, worked out from its fields."""
    names = _DERIVED_NAMES.get(cls)
    if names is None:
        names = _DERIVED_NAMES[cls] = tuple(
            name
            for klass in cls.__mro__
            for name, value in vars(klass).items()
            if isinstance(value, cached_property)
        )
    return names


class _Spec(BaseModel):
    """Base of every script part: frozen, and strict about unknown keys."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    def __init__(self, /, **data: Any) -> None:
        # pydantic calls a custom __init__ for nested parts too: only the
        # outermost call turns the ValidationError into InvalidScript, so the
        # nested errors keep their full field path.
        depth = _init_depth.get()
        token = _init_depth.set(depth + 1)
        try:
            if depth:
                super().__init__(**data)
            else:
                with _door():
                    _check_size(data)
                    super().__init__(**data)
        finally:
            _init_depth.reset(token)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """pydantic's ``model_copy``; with ``update``, what the copy had worked out from
        the original's fields (its chunks, counts, argument text) is dropped, so it is
        worked out again from the new ones. (As in pydantic, ``update`` is not
        validated; a Script validates a copied part again.)"""
        copied = super().model_copy(update=update, deep=deep)
        if update:
            fields = copied.__dict__
            kept = [k for k in fields if k.startswith("_fakellm_")]  # Turn's own caches
            for name in (*_derived_names(type(self)), *kept):
                fields.pop(name, None)
        return copied

    @model_validator(mode="wrap")
    @classmethod
    def _string_keys(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        # pydantic builds a part by calling its __init__(**data): a key that is not
        # a string would break that call with a bare TypeError and no field path.
        # Wrap validators run before that call; "before" ones only inside it.
        if isinstance(data, Mapping):
            for key in data:
                if not isinstance(key, str):
                    raise _FieldError(
                        None,
                        key,
                        f"a key of {cls.__name__} must be a string; accepted keys: "
                        f"{', '.join(cls.model_fields)}",
                    )
        return handler(data)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            for name in cls._sequence_fields():
                value = data.get(name)
                if value is not None and not isinstance(value, list | tuple):
                    raise _FieldError(name, value, _not_a_list(name, value))
            known = _field_names(cls)
            unknown = [key for key in data if key not in known]
            if unknown:
                accepted = ", ".join(cls.model_fields)
                key = unknown[0]
                more = f" (and {', '.join(map(repr, unknown[1:]))})" if len(unknown) > 1 else ""
                raise _FieldError(
                    str(key),
                    data[key],
                    f"unknown key {key!r}{more} in {cls.__name__}; accepted keys: {accepted}",
                )
        return data

    @classmethod
    def _sequence_fields(cls) -> tuple[str, ...]:
        # Fields typed as tuples take lists and tuples only: pydantic would also
        # take a set (whose order changes with PYTHONHASHSEED) or a generator.
        found = _SEQUENCES.get(cls)
        if found is None:
            found = _SEQUENCES[cls] = tuple(
                name
                for name, info in cls.model_fields.items()
                if _is_sequence_type(info.annotation)
            )
        return found

    @classmethod
    def parse(cls, data: Any, *, source: str = "") -> Self:
        """Validate ``data`` (a mapping, or an instance) into this class."""
        token = _init_depth.set(_init_depth.get() + 1)
        try:
            with _door(source):
                _check_size(data)
                return cls.model_validate(data)
        finally:
            _init_depth.reset(token)


def _invalid(exc: ValidationError, *, source: str = "") -> InvalidScript:
    problems = []
    for err in exc.errors(include_url=False):
        loc = list(err["loc"])
        cause = (err.get("ctx") or {}).get("error")
        value = err.get("input")
        if isinstance(cause, _FieldError):
            if cause.field_name is not None:
                loc.append(cause.field_name)
            value = cause.value
            message = cause.message
        elif err["type"] == "missing":
            value = None
            message = "this field is required"
        elif err["type"] == "model_type" and (err.get("ctx") or {}).get("class_name") == "Turn":
            message = _not_a_turn("respond" if loc and loc[-1] == "respond" else "a turn", value)
        else:
            message = err["msg"]
        if len(loc) >= 2 and loc[-1] == "[key]":
            # pydantic places a bad mapping key as (..., key, "[key]"): name the
            # mapping as the path and the key in the message instead.
            value, loc = loc[-2], loc[:-2]
            message = f"the key {value!r} is not accepted: {message}"
        problems.append(ScriptProblem(_clip(_format_loc(loc), 120), value, _clip(message, 500)))
    return InvalidScript(problems, source=source)


def _format_loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


_V = TypeVar("_V")


def _json_able(name: str, value: _V) -> _V:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise _FieldError(None, value, f"{name} must be JSON-serialisable: {exc}") from None
    return value


# -- the one door for bad input ----------------------------------------------------------


class _door:
    """Turn every failure while validating user data into one :class:`InvalidScript`.

    The specific checks name the field; this is the floor under them, so a
    library error (pydantic, re, PyYAML, arithmetic) never reaches the user raw.
    A class, not a generator context manager: every script part built by hand
    passes through here, and a generator costs a microsecond each time.
    """

    __slots__ = ("_source",)

    def __init__(self, source: str = "") -> None:
        self._source = source

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> Literal[False]:
        if exc is None or isinstance(exc, InvalidScript) or not isinstance(exc, Exception):
            return False  # nothing raised, already ours, or not an error (KeyboardInterrupt)
        source = self._source
        if isinstance(exc, ValidationError):
            try:
                invalid = _invalid(exc, source=source)
            except Exception as inner:  # a message that could not be built must not escape
                why = f"cannot be validated: {_describe_exception(inner)}"
                invalid = InvalidScript([ScriptProblem("", None, why)], source=source)
            raise invalid from None
        if isinstance(exc, _FieldError):
            raise InvalidScript(
                [ScriptProblem(str(exc.field_name or ""), exc.value, exc.message)], source=source
            ) from None
        if isinstance(exc, RecursionError):
            problem = ScriptProblem("", None, "nested too deeply to validate")
            raise InvalidScript([problem], source=source) from None
        problem = ScriptProblem("", None, f"cannot be validated: {_describe_exception(exc)}")
        raise InvalidScript([problem], source=source) from None


def _describe_exception(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # e.g. a message holding an int too long to print
        text = ""
    return f"{type(exc).__name__}: {_clip(text, 200)}" if text else type(exc).__name__


def show(value: Any) -> str:
    """A short repr of user data for messages: length capped, never raises."""
    return errors._short_repr(value, 60)


def _bad_regex(exc: Exception) -> str:
    why = exc if isinstance(exc, re.error) else _describe_exception(exc)
    return f"not a valid regular expression: {why}"


def _not_a_list(name: str, value: Any) -> str:
    """What to say when a mapping, set or other value stands where a list belongs."""
    if name == "turns" and isinstance(value, Mapping):
        if set(map(str, value)) & {"turns", "rules", "when_exhausted"}:
            return (
                "turns must be a list of turns, got a mapping of script fields: pass it "
                "to load_script(mapping) or Script.parse(mapping), or Script(**mapping)"
            )
        return (
            "turns must be a list of turns, got a mapping: a turn under `turns:` "
            "needs a leading `-` (`- text: ...`)"
        )
    if isinstance(value, Mapping):
        return f"{name} must be a list, got a mapping: each item needs a leading `-` in YAML"
    if isinstance(value, set | frozenset):
        return f"{name} must be a list, got a set: a set has no order; use a list"
    if name == "turns":
        return "turns must be a list of turns"
    return f"{name} must be a list or a tuple, got {type(value).__name__}"


def _not_a_turn(what: str, value: Any) -> str:
    """What to say when a turn is not a Turn, a string or a mapping (a bare YAML scalar)."""
    accepted = f"{what} is a Turn, its text (a string) or a mapping of Turn fields"
    if value is None:
        return f"{accepted}; an empty `-` item has no turn: write `- ''` for an empty reply"
    if isinstance(value, bool):
        return (
            f"{accepted}; got the boolean {value} (in YAML, yes, no, on, off, true and false "
            "are booleans): quote it to make it the reply text"
        )
    if isinstance(value, int | float) or type(value).__module__ == "datetime":
        try:
            text = str(value)
        except ValueError:  # an int too long to print
            text = "..."
        text = text if len(text) <= 40 else "..."
        quoted = f"- '{text}'" if what == "a turn" else f"{what}: '{text}'"
        return (
            f"{accepted}; got the {type(value).__name__} {text}: in YAML, quote it "
            f"(`{quoted}`) to make it the reply text"
        )
    if isinstance(value, list | tuple):
        return f"{accepted}; got a list (a turn's explicit chunks go under `chunks:`)"
    return f"{accepted}; got {type(value).__name__}"


# -- budgets ---------------------------------------------------------------------------------

#: The limits a script must stay within, by environment variable: (default, lowest allowed).
LIMITS: dict[str, tuple[int, int]] = {
    "FAKELLM_MAX_SCRIPT_BYTES": (10_000_000, 4096),
    "FAKELLM_MAX_TEXT_BYTES": (10_000_000, 4096),
    "FAKELLM_MAX_CHUNKS": (100_000, 256),
    "FAKELLM_MAX_DEPTH": (50, 8),
}


def limit(name: str, seen: dict[str, str | None] | None = None) -> int:
    """The limit ``name`` (a key of :data:`LIMITS`): its environment variable, else the default.

    No limit goes below its floor, so input under every floor (most scripts
    written by hand) is accepted without reading the environment at all.
    ``seen``, when given, gets the variable's value as read (None if unset).
    """
    default, floor = LIMITS[name]
    value = os.environ.get(name)
    if seen is not None:
        seen[name] = value
    raw = (value or "").strip().replace("_", "")
    if not raw:
        return default
    if raw.isdecimal() and len(raw) < 19 and int(raw) >= floor:
        return int(raw)
    msg = (
        f"the environment variable {name}={os.environ[name]!r} must be a whole number >= {floor:,}"
    )
    raise _FieldError(None, os.environ[name], msg)


def _floor(name: str) -> int:
    return LIMITS[name][1]


def _over(name: str, amount: int, seen: dict[str, str | None] | None = None) -> int | None:
    """The limit ``name`` if ``amount`` is over it, else None (read only past its floor)."""
    if amount <= _floor(name):
        return None
    cap = limit(name, seen)
    return cap if amount > cap else None


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _check_size(data: Any) -> None:
    """Refuse raw input that is nested too deeply or too large once shared parts
    (YAML aliases, or one Python object used in many places) count each time.

    Every value counts 8 bytes, a string its UTF-8 bytes on top; parts already
    validated (a Turn inside a Script) count nothing. The walk stops as soon as
    a limit is crossed, so its cost is bounded by the limit, not by the input.
    The limits are read from the environment only once the input crosses their
    floors (most scripts written by hand never do).
    """
    if type(data) is not dict and not isinstance(data, _CONTAINERS):
        return
    max_bytes, max_depth = _floor("FAKELLM_MAX_SCRIPT_BYTES"), _floor("FAKELLM_MAX_DEPTH")
    floors = True  # still checking against the floors
    total = 0
    # Each entry: (container, depth, link), link = (parent link, key) for the field path.
    stack: list[tuple[Any, int, Any]] = [(data, 1, None)]
    while stack:
        container, depth, link = stack.pop()
        if depth > max_depth and floors:
            max_bytes, max_depth, floors = *_size_limits(), False
        if depth > max_depth:
            msg = (
                f"nested more than {max_depth} levels deep (FAKELLM_MAX_DEPTH); "
                "a script needs far fewer"
            )
            raise _FieldError(_link_path(link), container, msg)
        is_mapping = type(container) is dict or isinstance(container, Mapping)
        if not is_mapping and len(container) > 8:
            # A long list of strings (a turn's explicit chunks): counted at once when
            # it stays under the limit, item by item (to name the item) when not.
            texts = _texts_size(container)
            if texts is not None:
                if total + texts > max_bytes and floors:  # one of them crosses the floor
                    max_bytes, max_depth, floors = *_size_limits(), False
                if total + texts <= max_bytes:
                    total += texts
                    continue
        for key, item in container.items() if is_mapping else enumerate(container):
            total += 16 if is_mapping else 8
            if is_mapping and isinstance(key, str):
                total += _utf8_len(key)
            kind = type(item)
            if kind is str or isinstance(item, str):
                total += _utf8_len(item)
            elif kind in _SCALARS:
                pass  # counted as a value: neither text nor a container
            elif isinstance(item, bytes | bytearray):
                total += len(item)
            elif isinstance(item, _CONTAINERS):
                stack.append((item, depth + 1, (link, key)))
            if total > max_bytes and floors:
                max_bytes, max_depth, floors = *_size_limits(), False
            if total > max_bytes:
                msg = (
                    f"the script's data is larger than FAKELLM_MAX_SCRIPT_BYTES={max_bytes:,} "
                    "bytes, counting each YAML alias (or shared object) every time it is used; "
                    "raise FAKELLM_MAX_SCRIPT_BYTES to load it"
                )
                raise _FieldError(_link_path((link, key)), item, msg)


def _size_limits() -> tuple[int, int]:
    """The byte and depth limits of :func:`_check_size`, read from the environment."""
    return limit("FAKELLM_MAX_SCRIPT_BYTES"), limit("FAKELLM_MAX_DEPTH")


def _texts_size(items: Any) -> int | None:
    """What :func:`_check_size` counts for a list or tuple of plain strings (8 bytes
    each plus their UTF-8 bytes); None if it holds anything else."""
    if type(items) not in (list, tuple):
        return None
    try:
        joined = "".join(items)  # one code point's UTF-8 bytes do not depend on its neighbours
    except TypeError:
        return None
    return 8 * len(items) + _utf8_len(joined)


_CONTAINERS = (Mapping, list, tuple, set, frozenset)
_SCALARS = frozenset({int, float, bool, type(None)})


def _link_path(link: Any) -> str:
    keys: list[Any] = []
    while link is not None:
        link, key = link
        keys.append(key)
    return _clip(_format_loc(reversed(keys)), 120)


# A cap no count reaches (itertools.islice takes at most sys.maxsize).
_UNCAPPED = 2**62


def _chunk_count(text: str | None, how: Any, cap: int) -> int:
    """How many chunks ``split_text(text, how)`` makes, counting no further than ``cap``."""
    if not text:
        return 0
    if how == "chars":
        return len(text)
    if isinstance(how, int):
        return -(-len(text) // how)
    if how == "words":
        return max(1, _word_count(text, cap))
    # Explicit chunks are counted by _explicit_count, once per turn.
    matches = (m for m in how.finditer(text) if m.end() > m.start())
    return max(1, sum(1 for _ in itertools.islice(matches, cap + 1)))


_SPACE = re.compile(r"\s")  # what \s means in _WORDS, and what str.split() splits on
_WORD_SLICE = 1 << 16


def _word_count(text: str, cap: int) -> int:
    """How many matches ``_WORDS`` has in ``text`` (one per run of non-whitespace),
    counting no further than ``cap + 1``.

    ``str.split()`` counts them in C, a slice of the text at a time, each cut at a
    whitespace so no word straddles two: a Python step per match costs 0.1 µs a
    word, and one split of a long text would hold a list of every word at once.
    """
    count, pos, length = 0, 0, len(text)
    while pos < length and count <= cap:
        end = pos + _WORD_SLICE
        if end < length:
            space = _SPACE.search(text, end)
            end = length if space is None else space.start()
        count += len(text[pos:end].split())
        pos = end
    return min(count, cap + 1)


def _turn_budget(turn: Turn) -> tuple[str | None, str | None] | None:
    """Check a turn's text bytes and chunk count against the limits, before its chunks exist.

    Returns the values of :data:`_TURN_LIMITS` in the environment if the limits
    were read (only a turn over a floor needs them), so the outcome may change
    with them; None if not. When the check read both, those are the values
    returned; otherwise both are read again for the return.
    """
    parts = {
        "text": _utf8_len(turn.text or ""),
        "reasoning": _utf8_len(turn.reasoning or ""),
        "tool_calls": sum(_utf8_len(c.args_json) for c in turn.tool_calls)
        if turn.tool_calls
        else 0,
        "stream": sum(c.size for c in turn.stream) if turn.stream else 0,
    }
    text_bytes = sum(parts.values())
    seen: dict[str, str | None] = {}
    if (max_text := _over("FAKELLM_MAX_TEXT_BYTES", text_bytes, seen)) is not None:
        name = max(parts, key=lambda k: parts[k])
        raise _FieldError(
            name,
            getattr(turn, name),
            f"this turn holds {text_bytes:,} bytes of text, more than "
            f"FAKELLM_MAX_TEXT_BYTES={max_text:,}; raise FAKELLM_MAX_TEXT_BYTES to allow it",
        )
    cap = _floor("FAKELLM_MAX_CHUNKS")
    over_cap = _turn_chunks(turn, cap) > cap
    if (
        over_cap
        and _turn_chunks(turn, max_chunks := limit("FAKELLM_MAX_CHUNKS", seen)) > max_chunks
    ):
        raise _FieldError(
            "chunks",
            turn.chunks,
            f"this turn streams more than FAKELLM_MAX_CHUNKS={max_chunks:,} chunks; "
            "cut it into bigger chunks, or raise FAKELLM_MAX_CHUNKS",
        )
    if not (over_cap or text_bytes > _floor("FAKELLM_MAX_TEXT_BYTES")):
        return None
    if len(seen) == len(_TURN_LIMITS):
        return seen["FAKELLM_MAX_TEXT_BYTES"], seen["FAKELLM_MAX_CHUNKS"]
    return _turn_limits_set()


#: The environment variables a turn's own validation may read (see _turn_budget).
_TURN_LIMITS = ("FAKELLM_MAX_TEXT_BYTES", "FAKELLM_MAX_CHUNKS")
_CHECKED = "_fakellm_checked"


def _turn_limits_set() -> tuple[str | None, str | None]:
    """The environment's values for :data:`_TURN_LIMITS`, as set (None where unset)."""
    get, (text, chunks) = os.environ.get, _TURN_LIMITS
    return get(text), get(chunks)


def _mark_checked(turn: Turn, env: tuple[str | None, str | None] | None) -> None:
    """Note on a turn that its validation passed, and under which limits (``env``, as
    ``_turn_budget`` read them) if it read any.

    Kept in the turn's ``__dict__`` next to its cached counts, with the identity of
    that dict: a copy (``model_copy``, pickling) gets a new one, so it is checked again.
    """
    fields = turn.__dict__
    fields[_CHECKED] = (id(fields), env)


def _still_checked(turn: Any) -> bool:
    """Whether validating ``turn`` (a Turn instance) again would give it back unchanged.

    A Turn's fields are frozen, so only the environment's limits can change the
    outcome, and only for a turn that read them. A Turn subclass, a turn built
    with ``model_construct`` or a copy is validated again.
    """
    if type(turn) is not Turn:
        return False
    fields = turn.__dict__
    mark = fields.get(_CHECKED)
    if mark is None or mark[0] != id(fields):
        return False
    return mark[1] is None or mark[1] == _turn_limits_set()


class WholePlay(NamedTuple):
    """What a turn played whole (nothing cut by ``stop`` or ``max_tokens``) does, on
    every call alike: worked out on its first play, then kept (see :func:`whole_play`)."""

    finish_reason: str
    chunk_count: int
    """How many chunks it emits (``piece_count``)."""
    error_at: int | None
    wait: float
    """How long the whole reply takes: ``sum(whole_delays(turn))``."""


_WHOLE = "_fakellm_whole"
_WHOLE_DELAYS = "_fakellm_whole_delays"


def whole_play(turn: Turn) -> WholePlay:
    """``turn``'s :class:`WholePlay`, kept in its ``__dict__`` beside its cached counts.

    A turn's fields are frozen, so these never change; a copy (whose fields
    ``model_copy(update=...)`` may change) gets a new dict and works them out again.
    """
    fields = turn.__dict__
    kept = fields.get(_WHOLE)
    if kept is not None and kept[0] == id(fields):
        return kept[1]  # type: ignore[no-any-return]
    if turn.stream is None and type(turn.delay) is float and turn.delay == 0.0:
        # Adding zeros changes no sum: a reply of thousands of chunks, no delay each,
        # needs no list of them unless it streams.
        wait = 0 + turn.first_token_delay  # as sum() adds from 0 (-0.0 reads 0.0)
    else:
        wait = sum(whole_delays(turn))
    play = WholePlay(
        turn.finish_reason or ("tool_calls" if turn.tool_calls else "stop"),
        turn.piece_count,
        turn.error_position,
        wait,
    )
    fields[_WHOLE] = (id(fields), play)
    return play


def whole_delays(turn: Turn) -> tuple[float, ...]:
    """The wait before each chunk of ``turn`` played whole (the first token's alone for
    a turn of no chunks), kept as :func:`whole_play` keeps its facts."""
    fields = turn.__dict__
    kept = fields.get(_WHOLE_DELAYS)
    if kept is not None and kept[0] == id(fields):
        return kept[1]  # type: ignore[no-any-return]
    count = turn.piece_count
    delay = turn.delay
    if turn.stream is None and type(delay) is float:
        delays = (turn.first_token_delay,) + (delay,) * (count - 1)  # turn.delays(count)
    else:
        delays = tuple(turn.delays(count)) or (turn.first_token_delay,)
    fields[_WHOLE_DELAYS] = (id(fields), delays)
    return delays


def _forget(turn: Turn) -> None:
    """Drop what a copied turn's dict kept of the original: its check mark and whole play."""
    fields = turn.__dict__
    fields.pop(_CHECKED, None)
    fields.pop(_WHOLE, None)
    fields.pop(_WHOLE_DELAYS, None)


def _turn_chunks(turn: Turn, cap: int) -> int:
    """How many chunks ``turn`` streams, counting text chunks no further than ``cap``."""
    if turn.stream is not None:
        return len(turn.stream)
    explicit = isinstance(turn.chunks, tuple)
    chunks = _chunk_count(turn.reasoning, "words" if explicit else turn.chunks, cap)
    if turn.content is not None:
        chunks += len(turn.content)
    elif explicit:
        chunks += _explicit_count(turn) if turn.text else 0
    else:
        chunks += _chunk_count(turn.text, turn.chunks, cap)
    return chunks + sum(c.args_json.count(", ") + 1 for c in turn.tool_calls)


def _explicit_count(turn: Turn) -> int:
    """How many chunks a turn's explicit chunks stream, counted once per chunks tuple
    (validation asks three times; a long list costs microseconds each time).

    The chunks ``split_text`` keeps: the non-empty ones, told apart as it tells
    them (``all`` stops at the first empty one, and costs half a ``count``).
    """
    how = turn.chunks
    known = turn.__dict__.get("_fakellm_explicit")
    if known is None or known[0] is not how:
        count = len(how) if all(how) else sum(1 for _ in filter(None, how))
        known = turn.__dict__["_fakellm_explicit"] = (how, count)
    return known[1]


# The explicit chunks Turn._chunks made last, and their join: Turn._consistent joins
# them again (a long list costs microseconds a join). Matched by identity of the
# tuple it holds, so a turn validated in another thread meanwhile only misses.
_joined_chunks: tuple[tuple[str, ...], str] | None = None


def _chunks_joined(chunks: tuple[str, ...]) -> str:
    """``"".join(chunks)``, taken from ``Turn._chunks`` when it just made ``chunks``."""
    global _joined_chunks
    kept = _joined_chunks
    if kept is not None and kept[0] is chunks:
        _joined_chunks = None
        return kept[1]
    return "".join(chunks)


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _FieldError(None, value, f"{name} must be a number of seconds >= 0")
    try:
        seconds = float(value)
    except OverflowError:  # an int too large for a float
        seconds = math.inf
    if not math.isfinite(seconds) or seconds < 0:
        raise _FieldError(None, value, f"{name} must be a finite number of seconds >= 0")
    return seconds


class ToolCall(_Spec):
    """A tool call the model makes: ``ToolCall("get_price", {"flower": "rose"})``.

    When ``id`` is omitted the model gives it a deterministic one,
    ``call_<call index>_<position>``, so traces are identical on every run.
    """

    name: str = Field(min_length=1, description="The tool's name, as bound.")
    args: dict[str, Any] = Field(default_factory=dict, description="JSON-able arguments.")
    id: str | None = Field(default=None, description="Tool call id; generated if omitted.")
    raw_args: str | None = Field(
        default=None,
        description=(
            "The argument text exactly as the model sends it, instead of args; text "
            "that is not a JSON object becomes an invalid_tool_calls entry, as with a "
            "real model."
        ),
    )
    allow_unbound: bool = Field(
        default=False,
        description="Call a tool that is not bound (models do hallucinate names).",
    )

    def __init__(
        self,
        name: str | None = None,
        args: Mapping[str, Any] | None = None,
        /,
        **data: Any,
    ) -> None:
        if name is not None:
            data["name"] = name
        if args is not None:
            data["args"] = args
        super().__init__(**data)

    @field_validator("args")
    @classmethod
    def _json_args(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _json_able("args", value)

    @model_validator(mode="after")
    def _one_kind_of_args(self) -> ToolCall:
        if self.raw_args is not None and self.args:
            raise _FieldError(
                "raw_args",
                self.raw_args,
                "give either args (a mapping) or raw_args (text), not both",
            )
        return self

    @cached_property
    def args_json(self) -> str:
        """The argument text a provider would stream: ``raw_args``, or ``args`` as JSON."""
        if self.raw_args is not None:
            return self.raw_args
        return json.dumps(self.args, ensure_ascii=False)


_INPUT_DETAILS = frozenset({"audio", "cache_creation", "cache_read"})
_OUTPUT_DETAILS = frozenset({"audio", "reasoning"})


class Usage(_Spec):
    """Token usage a turn reports. Omitted counts are computed by the model.

    ``input_tokens`` defaults to the offline counter applied to the request,
    ``output_tokens`` to the number of chunks the turn emits, ``total_tokens``
    to their sum.
    """

    input_tokens: int | None = Field(default=None, ge=0)
    output_tokens: int | None = Field(default=None, ge=0)
    total_tokens: int | None = Field(default=None, ge=0)
    input_token_details: dict[str, int] = Field(default_factory=dict)
    output_token_details: dict[str, int] = Field(default_factory=dict)

    @field_validator("input_token_details", "output_token_details", mode="before")
    @classmethod
    def _known_details(cls, value: dict[str, int], info: Any) -> dict[str, int]:
        allowed = _INPUT_DETAILS if info.field_name == "input_token_details" else _OUTPUT_DETAILS
        if not isinstance(value, Mapping):
            raise _FieldError(
                None,
                value,
                f"{info.field_name} must be a mapping of token counts, with keys from: "
                f"{', '.join(sorted(allowed))}",
            )
        for key, count in value.items():
            if key not in allowed:
                raise _FieldError(
                    _clip(str(key), 60),
                    count,
                    f"unknown detail {show(key)}; accepted: {', '.join(sorted(allowed))}",
                )
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise _FieldError(key, count, "a token count must be an integer >= 0")
        return value

    @model_validator(mode="after")
    def _total_adds_up(self) -> Usage:
        i, o, t = self.input_tokens, self.output_tokens, self.total_tokens
        if i is not None and o is not None and t is not None and t != i + o:
            raise _FieldError(
                "total_tokens", t, f"total_tokens must equal input_tokens + output_tokens = {i + o}"
            )
        return self


class Repeat(_Spec):
    """Delays between chunks that repeat: ``Repeat(repeat=[0.05, 0.2])``."""

    repeat: tuple[float, ...] = Field(min_length=1)

    @field_validator("repeat", mode="before")
    @classmethod
    def _check(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return tuple(_seconds("each repeated delay", v) for v in value)
        return value


@dataclass(frozen=True, slots=True)
class Piece:
    """One stream chunk of a turn, before it becomes a LangChain chunk.

    ``kind`` is ``"reasoning"``, ``"text"``, ``"block"`` (content block number
    ``index``), ``"tool"`` (a fragment of the arguments of tool call number
    ``index``; the model puts that call's name and id on the fragment with
    ``first=True``) or ``"chunk"`` (chunk number ``index`` of the turn's
    ``stream``, played as written).
    """

    kind: Literal["reasoning", "text", "block", "tool", "chunk"]
    text: str = ""
    block: Mapping[str, Any] | None = None
    index: int = 0
    first: bool = False


_USAGE_COUNTS = ("input_tokens", "output_tokens", "total_tokens")
_TOOL_CHUNK_KEYS = ("name", "args", "id", "index")


class Chunk(_Spec):
    """One stream chunk exactly as a provider integration produced it (a Turn's ``stream``).

    Its fields are the ``AIMessageChunk``'s own, played as written: ``content``
    (text, or a list of content blocks such as Anthropic's), ``tool_call_chunks``
    (argument fragments with their ``index``, ``name`` and ``id`` as streamed),
    ``additional_kwargs``, ``response_metadata``, ``usage_metadata`` (empty
    detail maps kept) and ``chunk_position``; ``delay`` is the wait before it. A
    chunk without ``id`` carries the turn's ``id``; ``id: null`` sends it without
    one (LangChain then gives it the run's id, as it does for a provider's).
    """

    delay: float = Field(default=0.0, description="Seconds before this chunk.")
    content: str | tuple[str | dict[str, Any], ...] = Field(
        default="", description="The chunk's content: text or a list of content blocks."
    )
    tool_call_chunks: tuple[dict[str, Any], ...] = Field(
        default=(), description="Tool-call argument fragments: {index, name, id, args}."
    )
    additional_kwargs: dict[str, Any] = Field(default_factory=dict)
    response_metadata: dict[str, Any] = Field(default_factory=dict)
    usage_metadata: dict[str, Any] | None = Field(
        default=None, description="Token usage on this chunk, as LangChain's UsageMetadata."
    )
    id: str | None = Field(default=None, description="The message id; the turn's if omitted.")
    chunk_position: Literal["last"] | None = Field(default=None)

    @field_validator("delay", mode="before")
    @classmethod
    def _delay(cls, value: Any) -> float:
        return _seconds("delay", value)

    @field_validator("content", mode="before")
    @classmethod
    def _content(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value
        if not isinstance(value, list | tuple):
            raise _FieldError(None, value, "content must be text or a list of content blocks")
        for i, block in enumerate(value):
            if not isinstance(block, str | Mapping):
                raise _FieldError(i, block, "a content block is a mapping (or a string)")
        return tuple(_json_able("content", v if isinstance(v, str) else dict(v)) for v in value)

    @field_validator("tool_call_chunks", mode="before")
    @classmethod
    def _tool_call_chunks(cls, value: Any) -> Any:
        if not isinstance(value, list | tuple):
            return value  # the sequence check names it
        out = []
        for i, part in enumerate(value):
            if not isinstance(part, Mapping):
                raise _FieldError(
                    i, part, "a tool-call chunk is a mapping: {index, name, id, args}"
                )
            # As LangChain types them: "type" is implied, a missing key is None.
            part = {
                k: v
                for k, v in part.items()
                if v is not None and (k != "type" or v != "tool_call_chunk")
            }
            for key, item in part.items():
                if key not in _TOOL_CHUNK_KEYS:
                    accepted = ", ".join(_TOOL_CHUNK_KEYS)
                    raise _FieldError(i, part, f"unknown key {show(key)}; accepted: {accepted}")
                wanted: Any = int if key == "index" else str
                if item is not None and (isinstance(item, bool) or not isinstance(item, wanted)):
                    what = "an integer" if key == "index" else "a string"
                    raise _FieldError(i, part, f"{key} must be {what} or null, got {show(item)}")
            out.append(part)
        return tuple(out)

    @field_validator("additional_kwargs", "response_metadata")
    @classmethod
    def _json_maps(cls, value: dict[str, Any], info: Any) -> dict[str, Any]:
        return _json_able(info.field_name, value)

    @field_validator("usage_metadata", mode="before")
    @classmethod
    def _usage(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise _FieldError(None, value, "usage_metadata must be a mapping of token counts")
        for key, count in value.items():
            if key in _USAGE_COUNTS:
                counts = {key: count}
            elif key in ("input_token_details", "output_token_details"):
                if not isinstance(count, Mapping):
                    raise _FieldError(key, count, f"{key} must be a mapping of token counts")
                counts = dict(count)
            else:
                accepted = ", ".join(
                    (*_USAGE_COUNTS, "input_token_details", "output_token_details")
                )
                raise _FieldError(key, count, f"unknown key {show(key)}; accepted: {accepted}")
            for name, n in counts.items():
                if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                    raise _FieldError(name, n, "a token count must be an integer >= 0")
        return dict(value)

    def __eq__(self, other: object) -> bool:
        # Whether the chunk names its id (null included) changes what it plays.
        return (
            super().__eq__(other)
            and isinstance(other, Chunk)
            and ("id" in self.model_fields_set) == ("id" in other.model_fields_set)
        )

    __hash__ = _Spec.__hash__

    @property
    def text(self) -> str:
        """The chunk's text: its string content, or its text blocks joined."""
        if isinstance(self.content, str):
            return self.content
        return "".join(
            b if isinstance(b, str) else str(b.get("text") or "")
            for b in self.content
            if isinstance(b, str) or b.get("type") == "text"
        )

    @property
    def size(self) -> int:
        """The bytes of text this chunk holds (for the script's budgets)."""
        args = sum(_utf8_len(str(t.get("args") or "")) for t in self.tool_call_chunks)
        blocks = 0 if isinstance(self.content, str) else len(json.dumps(self.content))
        return _utf8_len(self.text) + args + blocks


_ERROR_POSITIONS = "0 (before the first chunk), a chunk count up to the number of chunks, or 'end'"


class Turn(_Spec):
    """What the model does for one call.

    ``Turn("Roses, lilies and sunflowers.", chunks="words", first_token_delay=0.3,
    delay=0.05)`` streams four chunks, the first after 0.3 s and each next one
    0.05 s later. The chunks of a turn are, in order: its reasoning, its text (or
    content blocks, one chunk each), then its tool calls (one chunk per argument
    fragment, see :func:`split_tool_args`).
    """

    text: str | None = Field(default=None, description="The reply text.")
    content: tuple[dict[str, Any], ...] | None = Field(
        default=None,
        description="Content blocks instead of text, e.g. [{'type': 'text', 'text': 'hi'}].",
    )
    reasoning: str | None = Field(default=None, description="Reasoning text, streamed first.")
    tool_calls: tuple[ToolCall, ...] = Field(default=(), description="Tool calls, streamed last.")
    chunks: Any = Field(
        default="words",
        description=(
            "How text and reasoning are cut: 'words' (whitespace kept), 'chars', a "
            "chunk size in characters, an explicit list of strings, or a regex "
            "({'regex': ...} in files) whose matches are the chunks."
        ),
    )
    first_token_delay: float = Field(default=0.0, description="Seconds before the first chunk.")
    delay: float | tuple[float, ...] | Repeat = Field(
        default=0.0,
        description=(
            "Seconds before each later chunk: one number, a list with one delay per "
            "later chunk, or {'repeat': [...]} to cycle through a sequence."
        ),
    )
    error: Any = Field(
        default=None,
        description=(
            "An exception instance or class to raise (in files: a name from "
            "fakellm.errors or the builtins, or {'type': name, ...arguments})."
        ),
    )
    at_chunk: int | Literal["end"] = Field(
        default=0, description="Where the error strikes: after this many chunks, or 'end'."
    )
    usage: Usage | None = Field(default=None, description="Token usage; computed when omitted.")
    finish_reason: str | None = Field(
        default=None, description="Defaults to 'tool_calls' with tool calls, else 'stop'."
    )
    response_metadata: dict[str, Any] = Field(
        default_factory=dict, description="Extra response metadata for the final message."
    )
    refusal: str | None = Field(
        default=None,
        description=(
            "The model refuses: a refusal content block with this text, which makes "
            "with_structured_output raise ModelRefusalError."
        ),
    )
    structured: Any = Field(
        default=None,
        description=(
            "Structured output (a pydantic model instance or a JSON-able mapping), "
            "sent the way the app's with_structured_output method expects it."
        ),
    )
    ignore_tool_choice: bool = Field(
        default=False,
        description="Answer even when the call's tool_choice forbids this turn's answer.",
    )
    id: str | None = Field(
        default=None, description="The message id; by default stable per model and call."
    )
    name: str | None = Field(default=None, description="The message's name.")
    additional_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="The message's additional_kwargs (first chunk)."
    )
    stream: tuple[Chunk, ...] | None = Field(
        default=None,
        description=(
            "The chunks exactly as a provider streamed them (what a cassette records), "
            "each with its delay; played as written, instead of text, tool_calls, usage "
            "and the other answer fields."
        ),
    )
    # Written by fakellm's recorder (see _cassette.py); the model never reads it.
    request: dict[str, Any] | None = Field(
        default=None,
        description=(
            "In a cassette: the request this turn answered when it was recorded "
            "(messages, tools, settings, fingerprint); replay matches calls against it."
        ),
    )

    def __init__(self, text: str | None = None, /, **data: Any) -> None:
        if text is not None:
            data["text"] = text
        super().__init__(**data)

    @field_validator("first_token_delay", mode="before")
    @classmethod
    def _first_delay(cls, value: Any) -> float:
        return _seconds("first_token_delay", value)

    @field_validator("delay", mode="before")
    @classmethod
    def _delay(cls, value: Any) -> Any:
        if isinstance(value, Repeat):
            return value
        if isinstance(value, Mapping):
            if set(value) != {"repeat"} or not isinstance(value["repeat"], list | tuple):
                raise _FieldError(None, value, "a delay mapping must be {'repeat': [seconds, ...]}")
            if not value["repeat"]:
                raise _FieldError("repeat", value["repeat"], "repeat needs at least one delay")
            delays = []
            for i, v in enumerate(value["repeat"]):
                try:
                    delays.append(_seconds("each repeated delay", v))
                except _FieldError as exc:
                    raise _FieldError(f"repeat[{i}]", v, exc.message) from None
            # Validated just above: construct directly, so a problem keeps its full path.
            return Repeat.model_construct(repeat=tuple(delays))
        if isinstance(value, list | tuple):
            return tuple(_seconds("each delay", v) for v in value)
        try:
            return _seconds("delay", value)
        except _FieldError:
            raise _FieldError(
                None,
                value,
                "delay must be a number of seconds >= 0, a list of them (one per "
                "chunk after the first), or {'repeat': [...]}",
            ) from None

    @field_validator("chunks", mode="before")
    @classmethod
    def _chunks(cls, value: Any) -> Any:
        if value in ("words", "chars"):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise _FieldError(None, value, "a chunk size must be an integer >= 1")
            return value
        if isinstance(value, re.Pattern):
            if not isinstance(value.pattern, str):
                raise _FieldError(None, value, "a chunks regex must be a str pattern, not bytes")
            return value
        if isinstance(value, Mapping) and set(value) == {"regex"}:
            value = value["regex"]
            if not isinstance(value, str):
                raise _FieldError("regex", value, "a chunks regex must be a string")
            try:
                return re.compile(value)
            except (re.error, RecursionError, OverflowError) as exc:
                raise _FieldError("regex", value, _bad_regex(exc)) from None
        if isinstance(value, list | tuple):
            try:
                joined = "".join(value)  # fails exactly when a part is not a string
            except TypeError:
                for i, part in enumerate(value):
                    if not isinstance(part, str):
                        raise _FieldError(i, part, "explicit chunks must be strings") from None
                raise  # not reached: join fails only on a part that is not a string
            chunks = tuple(value)
            global _joined_chunks
            _joined_chunks = (chunks, joined)  # for _consistent, which needs the join too
            return chunks
        raise _FieldError(
            None,
            value,
            "chunks must be 'words', 'chars', a chunk size >= 1, a list of strings, "
            "or a regex ({'regex': pattern} in files)",
        )

    @field_validator("error", mode="before")
    @classmethod
    def _error(cls, value: Any) -> Any:
        return _resolve_error(value)

    @field_validator("structured", mode="before")
    @classmethod
    def _structured(cls, value: Any) -> Any:
        if value is None:
            return None
        dump = getattr(value, "model_dump", None)
        if isinstance(value, BaseModel) and callable(dump):
            value = value.model_dump(mode="json")
        if not isinstance(value, Mapping):
            raise _FieldError(
                None, value, "structured must be a pydantic model instance or a mapping"
            )
        return dict(_json_able("structured", value))

    @field_validator("additional_kwargs")
    @classmethod
    def _json_kwargs(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _json_able("additional_kwargs", value)

    @field_validator("at_chunk", mode="before")
    @classmethod
    def _at_chunk(cls, value: Any) -> Any:
        if value == "end" or (
            isinstance(value, int) and not isinstance(value, bool) and value >= 0
        ):
            return value
        raise _FieldError(None, value, f"at_chunk must be {_ERROR_POSITIONS}")

    @model_validator(mode="after")
    def _consistent(self) -> Turn:
        if self.stream is not None:
            return self._stream_alone()
        if self.text is not None and self.content is not None:
            raise _FieldError("content", self.content, "give either text or content, not both")
        if self.structured is not None:
            for other in ("text", "content", "tool_calls", "refusal"):
                if getattr(self, other):
                    raise _FieldError(
                        "structured",
                        self.structured,
                        f"give either structured or {other}, not both: structured becomes "
                        "the text or the tool call the app's structured-output method expects",
                    )
        refusal_block = {"type": "refusal", "refusal": self.refusal}
        if self.refusal is not None and not (self.content and self.content[-1] == refusal_block):
            if self.content is not None:
                raise _FieldError("refusal", self.refusal, "give either refusal or content")
            # A refusal is a content block, after any text, as providers send it.
            blocks: list[dict[str, Any]] = []
            if self.text:
                blocks.append({"type": "text", "text": self.text})
            blocks.append(refusal_block)
            object.__setattr__(self, "content", tuple(blocks))
            object.__setattr__(self, "text", None)
        if self.content is not None:
            for i, block in enumerate(self.content):
                if not isinstance(block.get("type"), str):
                    raise _FieldError(
                        f"content[{i}]", block, "a content block needs a 'type' string"
                    )
            if "chunks" in self.model_fields_set:
                raise _FieldError(
                    "chunks", self.chunks, "content blocks stream one chunk per block; drop chunks"
                )
        if isinstance(self.chunks, tuple):
            joined = _chunks_joined(self.chunks)
            if self.text is None and self.content is None:
                object.__setattr__(self, "text", joined)
            elif self.text is not None and joined != self.text:
                raise _FieldError(
                    "chunks",
                    self.chunks,
                    f"explicit chunks must join to the text {self.text!r}, they join to {joined!r}",
                )
        limits_read = _turn_budget(self)
        n = self.piece_count
        if isinstance(self.delay, tuple) and len(self.delay) != max(n - 1, 0):
            raise _FieldError(
                "delay",
                self.delay,
                f"a list of delays needs one delay per chunk after the first: "
                f"{max(n - 1, 0)} for this turn's {n} chunks",
            )
        if self.at_chunk != "end":
            if self.error is None and "at_chunk" in self.model_fields_set:
                raise _FieldError("at_chunk", self.at_chunk, "at_chunk needs an error to place")
            if isinstance(self.at_chunk, bool) or not 0 <= self.at_chunk <= n:
                raise _FieldError(
                    "at_chunk",
                    self.at_chunk,
                    f"the error position is past the last chunk; this turn has {n} "
                    f"chunk{'' if n == 1 else 's'}, accepted: {_ERROR_POSITIONS}",
                )
        elif self.error is None:
            raise _FieldError("at_chunk", self.at_chunk, "at_chunk needs an error to place")
        _mark_checked(self, limits_read)
        return self

    _STREAM_WITH: ClassVar[frozenset[str]] = frozenset(
        {"stream", "id", "name", "error", "at_chunk", "request"}
    )

    def _stream_alone(self) -> Turn:
        """A ``stream`` turn says everything about its answer in its chunks."""
        assert self.stream is not None
        if not self.stream:
            raise _FieldError("stream", self.stream, "a stream needs at least one chunk")
        for name in sorted(self.model_fields_set - self._STREAM_WITH):
            raise _FieldError(
                name,
                getattr(self, name),
                f"give either stream or {name}, not both: a stream's chunks carry the "
                "whole answer (content, tool_call_chunks, usage_metadata, "
                "response_metadata, each chunk's delay); the turn adds only id, name, "
                "error and at_chunk",
            )
        limits_read = _turn_budget(self)
        if self.at_chunk != "end":
            if self.error is None and "at_chunk" in self.model_fields_set:
                raise _FieldError("at_chunk", self.at_chunk, "at_chunk needs an error to place")
            if not 0 <= self.at_chunk <= len(self.stream):
                raise _FieldError(
                    "at_chunk",
                    self.at_chunk,
                    f"the error position is past the last chunk; this stream has "
                    f"{len(self.stream)} chunks, accepted: {_ERROR_POSITIONS}",
                )
        elif self.error is None:
            raise _FieldError("at_chunk", self.at_chunk, "at_chunk needs an error to place")
        _mark_checked(self, limits_read)
        return self

    # A copy is not a checked turn, whatever its __dict__ says: ``model_copy(update=...)``
    # changes it without validation, and a copy of that copy made once the original is
    # freed may get the original's __dict__ address back (the check mark's identity).
    def __copy__(self) -> Self:
        copied = super().__copy__()
        _forget(copied)
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        copied = super().__deepcopy__(memo)
        _forget(copied)
        return copied

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        _forget(self)

    @cached_property
    def piece_count(self) -> int:
        """``len(self.pieces)``, counted without building them.

        Validation and a call that is not streamed need only the count; a
        turn of thousands of chunks builds its pieces when first streamed.
        """
        return _turn_chunks(self, _UNCAPPED)

    @cached_property
    def reasoning_piece_count(self) -> int:
        """How many of :attr:`pieces` are reasoning, counted without building them."""
        how = "words" if isinstance(self.chunks, tuple) else self.chunks
        return _chunk_count(self.reasoning, how, _UNCAPPED)

    @cached_property
    def pieces(self) -> tuple[Piece, ...]:
        """The chunks this turn streams, in order."""
        if self.stream is not None:
            return tuple(Piece("chunk", c.text, index=i) for i, c in enumerate(self.stream))
        out: list[Piece] = []
        if self.reasoning:
            # An explicit chunk list describes the text; reasoning is then cut by words.
            how = "words" if isinstance(self.chunks, tuple) else self.chunks
            out.extend(Piece("reasoning", t) for t in split_text(self.reasoning, how))
        if self.content is not None:
            out.extend(Piece("block", block=b, index=i) for i, b in enumerate(self.content))
        elif self.text:
            out.extend(Piece("text", t) for t in split_text(self.text, self.chunks))
        for i, call in enumerate(self.tool_calls):
            for j, fragment in enumerate(split_tool_args(call.args_json)):
                out.append(Piece("tool", fragment, index=i, first=j == 0))
        return tuple(out)

    @property
    def error_position(self) -> int | None:
        """After how many chunks the error strikes, or None without an error."""
        if self.error is None:
            return None
        return self.piece_count if self.at_chunk == "end" else self.at_chunk

    def delays(self, n: int) -> list[float]:
        """The wait before each of the first ``n`` chunks (index 0: first token)."""
        if n <= 0:
            return []
        if self.stream is not None:
            return [c.delay for c in self.stream[:n]]
        d = self.delay
        if isinstance(d, float):
            rest = [d] * (n - 1)
        elif isinstance(d, Repeat):
            rest = [d.repeat[i % len(d.repeat)] for i in range(n - 1)]
        else:
            rest = list(d[: n - 1])
        return [self.first_token_delay, *rest]

    def make_error(self) -> BaseException | None:
        """The exception to raise: a class is instantiated anew each time; an
        instance is raised as given (like ``unittest.mock``'s ``side_effect``),
        with its previous traceback cleared."""
        err: BaseException | type[BaseException] | None = self.error
        if err is None:
            return None
        if isinstance(err, type):
            return err()
        return err.with_traceback(None)

    def describe(self) -> str:
        """A one-line summary, used in failure messages."""
        parts = []
        if self.stream is not None:
            text = "".join(c.text for c in self.stream)
            called = [t["name"] for c in self.stream for t in c.tool_call_chunks if t.get("name")]
            parts.append(f"stream of {len(self.stream)} chunks")
            if text:
                parts.append(repr(_clip(text)))
            if called:
                parts.append(f"tool_calls=[{', '.join(called)}]")
        if self.reasoning:
            parts.append(f"reasoning={_clip(self.reasoning)!r}")
        if self.text:
            parts.append(repr(_clip(self.text)))
        if self.content is not None:
            parts.append(f"{len(self.content)} content blocks")
        if self.tool_calls:
            names = ", ".join(c.name for c in self.tool_calls)
            parts.append(f"tool_calls=[{names}]")
        if self.refusal is not None:
            parts.append(f"refusal={_clip(self.refusal)!r}")
        if self.structured is not None:
            parts.append(f"structured={_clip(json.dumps(self.structured))!r}")
        if self.error is not None:
            err = self.error.__name__ if isinstance(self.error, type) else repr(self.error)
            parts.append(f"error={err} at_chunk={self.at_chunk}")
        return f"Turn({', '.join(parts) or 'empty'})"


def _turn_from_message(message: Any, *, source: str = "") -> Turn:
    """The turn that replays a LangChain ``AIMessage`` (duck-typed: no LangChain import)."""
    content = message.content
    data: dict[str, Any] = {
        "tool_calls": [
            {"name": tc["name"], "args": tc["args"], "id": tc.get("id")}
            for tc in message.tool_calls
        ],
        "id": message.id,
        "name": message.name,
        "additional_kwargs": dict(message.additional_kwargs),
    }
    if isinstance(content, str):
        data["text"] = content
    else:
        data["content"] = [
            {"type": "text", "text": b} if isinstance(b, str) else dict(b) for b in content
        ]
    return Turn.parse(data, source=source)


def split_text(text: str, how: Any) -> list[str]:
    """Cut ``text`` into chunks that concatenate back to exactly ``text``.

    ``how`` is ``"words"`` (each word with the whitespace after it; leading
    whitespace stays with the first word), ``"chars"``, a chunk size, a tuple of
    explicit chunks, or a compiled regex whose matches are the chunks (text
    between matches joins the next chunk, trailing text the last one).
    """
    if not text:
        return []
    if how == "words":
        return _WORDS.findall(text) or [text]
    if how == "chars":
        return list(text)
    if isinstance(how, int):
        return [text[i : i + how] for i in range(0, len(text), how)]
    if isinstance(how, tuple):
        return [c for c in how if c]
    out: list[str] = []
    pos = 0
    for m in how.finditer(text):
        if m.end() > m.start():
            out.append(text[pos : m.end()])
            pos = m.end()
    if pos < len(text):
        if out:
            out[-1] += text[pos:]
        else:
            out.append(text[pos:])
    return out


def split_tool_args(args_json: str) -> list[str]:
    """Cut a tool call's JSON arguments into stream fragments: after each ``", "``.

    ``{"a": 1, "b": 2}`` streams as ``{"a": 1, `` then ``"b": 2}``; an object
    with one key (or none) is one fragment.
    """
    parts = args_json.split(", ")
    return [p + ", " for p in parts[:-1]] + [parts[-1]]


def _resolve_error(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, BaseException):
        _scriptable(type(value), value)
        return value
    if isinstance(value, type) and issubclass(value, BaseException):
        _scriptable(value, value)
        return value
    if isinstance(value, str):
        return _error_class(value)
    if isinstance(value, Mapping):
        spec = dict(value)
        name = spec.pop("type", None)
        if not isinstance(name, str):
            raise _FieldError("type", name, "an error mapping needs 'type': an error class name")
        cls = _error_class(name)
        if "message" in spec and not issubclass(cls, errors.ProviderError):
            spec = {"args": [spec.pop("message")], **spec}
        args = spec.pop("args", ())
        if not isinstance(args, list | tuple):
            raise _FieldError("args", args, "args must be a list of the error's arguments")
        try:
            return cls(*args, **spec)
        except Exception as exc:
            why = _clip(str(exc), 200) if isinstance(exc, TypeError) else _describe_exception(exc)
            raise _FieldError(
                None,
                value,
                f"cannot build {name} from these arguments: {why}; "
                f"accepted keys: {_error_arguments(cls)}",
            ) from None
    raise _FieldError(
        None,
        value,
        "error must be an exception instance or class, an error class name, "
        "or {'type': name, ...arguments}",
    )


def _scriptable(cls: type[BaseException], value: Any) -> None:
    """Refuse what would not fail the call but stop the test run or end an iterator."""
    if not issubclass(cls, Exception):
        raise _FieldError(
            None,
            value,
            f"{cls.__name__} is not an Exception subclass: raised from a model call it would "
            "stop the test run instead of failing the call; script an Exception such as "
            "APIConnectionError or TimeoutError",
        )
    if issubclass(cls, StopIteration | StopAsyncIteration):
        raise _FieldError(
            None,
            value,
            f"{cls.__name__} ends an iterator instead of failing the call (inside a stream "
            "Python turns it into RuntimeError); script another Exception",
        )


def _error_arguments(cls: type[BaseException]) -> str:
    """The keys an error mapping accepts for ``cls``, for messages."""
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):  # builtin exceptions have no signature
        return "type, message, args (a list of positional arguments)"
    names = ["type"]
    for p in params:
        if p.kind is p.VAR_POSITIONAL:
            names.append("args (a list of positional arguments)")
        elif p.kind is p.VAR_KEYWORD:
            names.append("other keyword arguments")
        else:
            names.append(p.name)
    if "message" not in names:
        names.append("message")
    return ", ".join(names)


def _error_class(name: str) -> type[BaseException]:
    cls = getattr(errors, name, None) or getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        _scriptable(cls, name)
        return cls
    known = ", ".join(
        n for n in errors.__all__ if issubclass(getattr(errors, n), errors.ProviderError)
    )
    raise _FieldError(
        None,
        name,
        f"unknown error {show(name)}; accepted: a fakellm.errors provider error ({known}) "
        "or a builtin exception name such as TimeoutError",
    )


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Call:
    """One request a fake model received, as an immutable record.

    Attributes:
        index: 0 for the model's first call, 1 for the next, ...
        messages: the messages sent (chat models); empty for ``FakeLLM``.
        prompt: the prompt text (``FakeLLM``); ``None`` for chat models.
        tools: the bound tools, in OpenAI tool format.
        tool_choice: the ``tool_choice`` the call was made with, if any.
        stop: stop sequences, if any.
        model: the per-call ``model=`` override, if any.
        kwargs: every other keyword argument the call carried.
        streaming: whether the call was served as a stream.
        run_id: the LangChain run id of the call, when LangChain gave one.
        tags: the run's tags.
        metadata: the run's metadata (LangSmith's ``ls_*`` keys left out).
        turn: the turn that answered, or ``None`` for an unexpected call.
        unexpected: the :class:`~fakellm.errors.UnexpectedCall` (or
            :class:`~fakellm.errors.ResponderError`) raised, if any.
    """

    index: int
    messages: tuple[Any, ...] = ()
    prompt: str | None = None
    tools: tuple[Mapping[str, Any], ...] = ()
    tool_choice: Any = None
    stop: tuple[str, ...] | None = None
    model: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    streaming: bool = False
    run_id: UUID | None = None
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    turn: Turn | None = None
    unexpected: BaseException | None = None

    @property
    def tool_names(self) -> tuple[str, ...]:
        """Names of the bound tools."""
        return tuple(_tool_name(t) for t in self.tools)

    @property
    def last_human_message(self) -> str | None:
        """Text of the last human message (for ``FakeLLM``: the prompt)."""
        if self.prompt is not None:
            return self.prompt
        for msg in reversed(self.messages):
            if getattr(msg, "type", None) == "human":
                return str(msg.text)
        return None

    @property
    def last_message(self) -> str | None:
        """Text of the last message of any type (a tool result, an AI turn, ...)."""
        if self.prompt is not None:
            return self.prompt
        return str(self.messages[-1].text) if self.messages else None

    @property
    def node(self) -> str | None:
        """The LangGraph node that made the call (its ``langgraph_node`` metadata)."""
        node = self.metadata.get("langgraph_node")
        return None if node is None else str(node)


def new_call(**values: Any) -> Call:
    """``Call(**values)``, built the way a model records every call: straight into
    the record's ``__dict__`` (a frozen dataclass sets each field through
    ``object.__setattr__``, which costs more than the rest of recording it)."""
    call = object.__new__(Call)
    fields = call.__dict__
    fields.update(_CALL_DEFAULTS)
    for name, factory in _CALL_FACTORIES:
        fields[name] = factory()
    fields.update(values)
    return call


def chat_call(
    messages: tuple[Any, ...],
    tools: tuple[Mapping[str, Any], ...],
    tool_choice: Any,
    stop: tuple[str, ...] | None,
    model: str | None,
    kwargs: Mapping[str, Any],
    streaming: bool,
    run_id: UUID | None,
    tags: tuple[str, ...],
    metadata: Mapping[str, Any],
) -> Call:
    """``new_call(index=-1, ...)`` for a chat model's call, its values given in place.

    Every chat call is recorded through here: the dataclass's ``__init__``, which
    writes each field through ``object.__setattr__``, costs more than the rest of
    the record (the values go in in the dataclass's field order, so ``vars()``
    reads as the dataclass's own).
    """
    call = object.__new__(Call)
    # Stored one by one into the record's own __dict__: it then shares its keys with
    # every other record's (a dict less than half the size of one built apart, which
    # a model keeps per call), for less than building that dict costs.
    fields = call.__dict__
    fields["index"] = -1
    fields["messages"] = messages
    fields["prompt"] = None
    fields["tools"] = tools
    fields["tool_choice"] = tool_choice
    fields["stop"] = stop
    fields["model"] = model
    fields["kwargs"] = kwargs
    fields["streaming"] = streaming
    fields["run_id"] = run_id
    fields["tags"] = tags
    fields["metadata"] = metadata
    fields["turn"] = None
    fields["unexpected"] = None
    return call


_CALL_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Call) if f.default is not MISSING}
_CALL_FACTORIES = tuple(
    (f.name, f.default_factory)
    for f in dataclasses.fields(Call)
    if f.default_factory is not MISSING
)


def _tool_name(tool: Mapping[str, Any]) -> str:
    fn = tool.get("function")
    if isinstance(fn, Mapping):
        return str(fn.get("name", ""))
    return str(tool.get("name", ""))


Responder: TypeAlias = Callable[[Call], Any]


class Rule(_Spec):
    """Answers every request that matches, before the turn queue is consulted.

    ``Rule(match=r"price", respond=Turn(tool_calls=[ToolCall("get_price")]))``.
    A rule matches when all of its conditions hold: ``match`` (a regex searched
    in the last human message), ``when`` (a predicate on the :class:`Call`) and
    ``tools`` (names that must all be bound), ``node`` (the LangGraph node
    making the call) and ``match_last`` (a regex searched in the last message
    of any type, such as a tool result). It answers with ``respond`` (a
    turn) or with what ``responder`` (a function of the call, in the spirit of
    pydantic-ai's ``FunctionModel``) returns; ``times`` limits how often.

    Rules route by what a request is, so concurrent calls get the same answer
    whatever order threads run them in.
    """

    respond: Turn | None = Field(default=None, description="The turn (or its text) to answer with.")
    responder: Callable[[Call], Any] | None = Field(
        default=None, description="A function of the Call returning a Turn, text or mapping."
    )
    match: re.Pattern[str] | None = Field(
        default=None, description="Regex on the last human message."
    )
    when: Callable[[Call], bool] | None = Field(default=None, description="Predicate on the Call.")
    tools: tuple[str, ...] | None = Field(
        default=None, description="Tool names that must be bound."
    )
    node: str | None = Field(
        default=None, description="LangGraph node name (the call's langgraph_node metadata)."
    )
    match_last: re.Pattern[str] | None = Field(
        default=None, description="Regex on the last message, of any type."
    )
    times: int | None = Field(default=None, ge=1, description="Answer at most this many calls.")
    name: str | None = Field(default=None, description="A label for failure messages.")

    @field_validator("respond", mode="before")
    @classmethod
    def _respond(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"text": value}
        return value

    @field_validator("match", "match_last", mode="before")
    @classmethod
    def _match(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return re.compile(value)
            except (re.error, RecursionError, OverflowError) as exc:
                raise _FieldError(None, value, _bad_regex(exc)) from None
        if isinstance(value, re.Pattern) and not isinstance(value.pattern, str):
            raise _FieldError(None, value, "match must be a str pattern, not bytes")
        return value

    @model_validator(mode="after")
    def _one_answer(self) -> Rule:
        if (self.respond is None) == (self.responder is None):
            raise _FieldError(
                "respond",
                self.respond,
                "a rule needs exactly one of respond (a turn) or responder (a function)",
            )
        return self

    def matches(self, call: Call) -> bool:
        """Whether this rule answers ``call`` (ignoring ``times``)."""
        if self.tools is not None and not set(self.tools) <= set(call.tool_names):
            return False
        if self.match is not None:
            text = call.last_human_message
            if text is None or not self.match.search(text):
                return False
        if self.node is not None and call.node != self.node:
            return False
        if self.match_last is not None:
            last = call.last_message
            if last is None or not self.match_last.search(last):
                return False
        return self.when is None or bool(self.when(call))

    def answer(self, call: Call) -> Turn | PendingTurn:
        """The turn this rule gives ``call``; a :class:`PendingTurn` when the
        responder is async (the async paths await it)."""
        if self.respond is not None:
            return self.respond
        assert self.responder is not None  # guaranteed by _one_answer
        value = self.responder(call)
        if inspect.isawaitable(value):
            return PendingTurn(value, self)
        return _coerce_turn(value, source=f"the responder of {self.describe()}")

    def describe(self) -> str:
        """A one-line summary, used in failure messages."""
        if self.name:
            return f"Rule {self.name!r}"
        conds = []
        if self.match is not None:
            conds.append(f"match={self.match.pattern!r}")
        if self.tools is not None:
            conds.append(f"tools={list(self.tools)}")
        if self.node is not None:
            conds.append(f"node={self.node!r}")
        if self.match_last is not None:
            conds.append(f"match_last={self.match_last.pattern!r}")
        if self.when is not None:
            conds.append(f"when={getattr(self.when, '__name__', 'predicate')}")
        return f"Rule({', '.join(conds) or 'any request'})"


def _coerce_turn(value: Any, *, source: str = "") -> Turn:
    if isinstance(value, Turn):
        return value
    if isinstance(value, str):
        return Turn(value)
    if isinstance(value, Mapping):
        return Turn.parse(value, source=source)
    if getattr(value, "type", None) == "ai" and hasattr(value, "tool_calls"):
        return _turn_from_message(value, source=source)
    raise InvalidScript(
        [
            ScriptProblem(
                "",
                value,
                "a turn must be a Turn, a string, an AIMessage, or a mapping of Turn fields",
            )
        ],
        source=source,
    )


class Script(_Spec):
    """An ordered queue of turns, optional rules, and what to do when it runs out.

    ``Script(["hello", "world"])`` answers two calls. ``when_exhausted`` is
    ``"raise"`` (default: a further call raises ``UnexpectedCall``), ``"cycle"``
    (start again from the first turn) or ``"repeat_last"``.
    """

    turns: tuple[Turn, ...] = Field(default=(), description="Turns answered in order.")
    rules: tuple[Rule, ...] = Field(default=(), description="Rules tried before the queue.")
    when_exhausted: Literal["raise", "cycle", "repeat_last"] = Field(
        default="raise", description="What a call past the last turn gets."
    )
    allow_races: bool = Field(
        default=False,
        description="Let threads decide which concurrent call gets which queued turn.",
    )

    _known_policies: ClassVar[tuple[str, ...]] = ("raise", "cycle", "repeat_last")

    def __init__(self, turns: Sequence[Any] | None = None, /, **data: Any) -> None:
        if turns is not None:
            data["turns"] = turns
        super().__init__(**data)

    @field_validator("turns", mode="wrap")
    @classmethod
    def _turns(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise _FieldError(None, value, "turns must be a list of turns")
        if not isinstance(value, list | tuple):
            raise _FieldError(None, value, _not_a_list("turns", value))
        turns = tuple(Turn(v) if isinstance(v, str) else v for v in value)
        if all(_still_checked(t) for t in turns):
            # Validating a Turn instance again only re-runs its checks: their outcome
            # is known (a model built with one turn would pay for its checks twice).
            return turns
        return handler(turns)

    @model_validator(mode="after")
    def _within_budget(self) -> Script:
        _script_budget(self)
        return self

    @field_validator("when_exhausted", mode="before")
    @classmethod
    def _policy(cls, value: Any) -> Any:
        if value not in cls._known_policies:
            raise _FieldError(
                None, value, f"accepted: {', '.join(repr(p) for p in cls._known_policies)}"
            )
        return value

    @model_validator(mode="after")
    def _policy_needs_turns(self) -> Script:
        if self.when_exhausted != "raise" and not self.turns:
            raise _FieldError(
                "when_exhausted",
                self.when_exhausted,
                "cycling or repeating needs at least one turn",
            )
        return self


def _script_budget(script: Script) -> None:
    """Refuse a script whose turns (and rule replies) hold too much text or too many chunks."""
    turns = [*script.turns, *(r.respond for r in script.rules if r.respond is not None)]
    text = chunks = 0
    for turn in turns:
        text += _utf8_len(turn.text or "") + _utf8_len(turn.reasoning or "")
        text += sum(_utf8_len(c.args_json) for c in turn.tool_calls)
        text += sum(c.size for c in turn.stream or ())
        chunks += turn.piece_count
    for name, amount, what in (
        ("FAKELLM_MAX_TEXT_BYTES", text, "hold {:,} bytes of text"),
        ("FAKELLM_MAX_CHUNKS", chunks, "stream {:,} chunks"),
    ):
        if (cap := _over(name, amount)) is not None:
            raise _FieldError(
                "turns",
                amount,
                f"the script's turns {what.format(amount)} in all, more than "
                f"{name}={cap:,}; raise {name} to allow it",
            )


ScriptLike: TypeAlias = "Script | Sequence[Turn | str | Mapping[str, Any]] | Mapping[str, Any]"


def as_script(value: Any) -> Script:
    """Accept a Script, a list of turns (strings, Turns, mappings) or a mapping."""
    if isinstance(value, Script):
        return value
    if isinstance(value, Mapping):
        return Script.parse(value)
    if isinstance(value, str | bytes | Path):
        raise InvalidScript(
            [
                ScriptProblem(
                    "script",
                    value,
                    "a script is a Script, a list of turns or a mapping; for a file "
                    "use load_script(path), for one reply use [text]",
                )
            ]
        )
    if isinstance(value, list | tuple):
        return _of_checked_turns(value) or Script(value)
    if isinstance(value, set | frozenset):
        message = "a script is a list of turns, not a set: a set has no order; use a list"
    else:
        message = "a script is a Script, a list of turns or a mapping"
    raise InvalidScript([ScriptProblem("script", value, message)])


# So few turns cannot cross the size floor of _check_size (16 + 5 bytes for the
# "turns" key, 8 per turn; a limit is never below its floor of 4,096 bytes).
_FEW_TURNS = 500


def _of_checked_turns(turns: Sequence[Any]) -> Script | None:
    """``Script(turns)`` for a short list of checked Turns (``_still_checked``),
    without the validation whose outcome is known: the size walk cannot fail, the
    turns are given back as they are, and only the script's budget is checked (for
    two turns or more: one turn's is its own). None for anything else, and for a
    budget over its limit: ``Script(turns)`` then raises, with its usual message and
    path."""
    if len(turns) > _FEW_TURNS or not all(_still_checked(t) for t in turns):
        return None
    # Script.model_construct(turns=...), from a prototype (its generic code costs more
    # than building the rest of a model); tests/unit/test_script_checks_once.py compares.
    proto = _script_prototype()
    script = _compat.shallow_copy(proto, {**proto.__dict__, "turns": tuple(turns)})
    if len(turns) == 1:
        # One turn's budget is the script's (the same sums, against the same limits
        # under the same environment, which _still_checked saw unchanged): it passed.
        return script
    try:
        _script_budget(script)
    except _FieldError:
        return None
    return script


@functools.cache
def _script_prototype() -> Script:
    """``Script.model_construct(turns=())``: what ``_of_checked_turns`` copies."""
    return Script.model_construct(turns=())


def load_script(source: Script | Mapping[str, Any] | Sequence[Any] | str | Path) -> Script:
    """Load a script from a path (``.yaml``, ``.yml``, ``.json``), a mapping or a list.

    A file holds either a mapping with ``turns``/``rules``/``when_exhausted`` or
    a bare list of turns. Errors name the file and the field path.
    """
    if not isinstance(source, str | Path):
        return as_script(source)
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidScript(
            [ScriptProblem("", str(path), f"cannot read the script file: {exc.strerror}")],
            source=str(path),
        ) from None
    except UnicodeDecodeError as exc:
        raise InvalidScript(
            [ScriptProblem("", str(path), f"a script file must be UTF-8 text: {exc.reason}")],
            source=str(path),
        ) from None
    except ValueError as exc:  # e.g. "embedded null byte"
        raise InvalidScript(
            [ScriptProblem("", str(path), f"not a usable file path: {exc}")], source=str(path)
        ) from None
    return parse_script_text(text, source=str(path), json_only=path.suffix == ".json")


def parse_script_text(text: str, *, source: str = "", json_only: bool = False) -> Script:
    """Parse YAML (a superset of JSON) or, with ``json_only``, strict JSON text.

    Syntax errors name the line and column; the data must stay within the
    size and depth limits (see :data:`LIMITS`) before it is validated.
    """
    with _door(source):
        data = _parse_json(text) if json_only else _parse_yaml(text)
        _check_size(data)
        if isinstance(data, list):
            data = {"turns": data}
        if not isinstance(data, Mapping):
            raise _FieldError(
                None, data, "a script file holds a mapping (turns, rules, ...) or a list of turns"
            )
        return Script.parse(data, source=source)


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        line = _line(text, exc.lineno - 1)
        raise _FieldError(None, line, f"not valid JSON: {where}: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # too many digits; nested too deeply
        why = "nested too deeply" if isinstance(exc, RecursionError) else _describe_exception(exc)
        raise _FieldError(None, None, f"not valid JSON: {why}") from None


def _parse_yaml(text: str) -> Any:
    loader = _Loader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = exc.problem or exc.context or "unreadable"
        context = exc.context if exc.problem else None
        if context and exc.context_mark is not None and exc.context_mark is not mark:
            cm = exc.context_mark
            context = f" ({context} at line {cm.line + 1}, column {cm.column + 1})"
        else:
            context = ""
        line = _line(text, mark.line) if mark else ""
        if not line.strip() and exc.context_mark is not None:
            line = _line(text, exc.context_mark.line)
        raise _FieldError(None, line, f"not valid YAML: {where}{problem}{context}") from None
    except yaml.YAMLError as exc:
        raise _FieldError(None, None, f"not valid YAML: {_describe_exception(exc)}") from None
    except RecursionError:
        raise _FieldError(None, None, "not valid YAML: nested too deeply") from None
    finally:
        loader.dispose()


def _line(text: str, index: int) -> str:
    lines = text.splitlines()
    return _clip(lines[index], 60) if 0 <= index < len(lines) else ""


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses deep nesting while composing (with the line
    and column), and reports a value it cannot construct (``!!bool maybe``, an
    integer with too many digits) as a marked error instead of a bare exception."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._max_depth = 0  # the limit, read when nesting passes its floor

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > _floor("FAKELLM_MAX_DEPTH") and not self._max_depth:
                self._max_depth = limit("FAKELLM_MAX_DEPTH")
            if self._max_depth and self._depth > self._max_depth:
                raise yaml.composer.ComposerError(
                    None,
                    None,
                    f"nested more than {self._max_depth} levels deep (FAKELLM_MAX_DEPTH)",
                    self.peek_event().start_mark,  # type: ignore[no-untyped-call]
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (yaml.YAMLError, RecursionError):
            raise
        except Exception as exc:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"cannot read the value {show(node.value)} tagged {node.tag!r}: "
                f"{_describe_exception(exc)}",
                node.start_mark,
            ) from None


@dataclass(frozen=True)
class PendingTurn:
    """What an async responder promised: awaited by the model's async paths."""

    awaitable: Any
    rule: Rule
    position: int = 0

    def failed(self, call: Call, exc: Exception) -> errors.ResponderError:
        """The error for a responder whose awaitable raised ``exc``."""
        return _rule_failed(self.rule, self.position, "responder", call, exc)

    def turn(self, value: Any) -> Turn:
        """The turn the awaited ``value`` stands for."""
        return _coerce_turn(value, source=f"the responder of {self.rule.describe()}")


def _rule_failed(
    rule: Rule, position: int, part: str, call: Call, exc: Exception
) -> errors.ResponderError:
    last = call.last_human_message
    shown = "(no human message)" if last is None else repr(_clip(last, 80))
    return errors.ResponderError(
        f"the {part} of {rule.describe()} (rules[{position}]) raised "
        f"{type(exc).__name__}: {exc} on call #{call.index} (last human message: {shown}). "
        f"Fix the {part}; the call is recorded, so the test fails even if the app "
        "swallowed this error."
    )


class Exhausted(Exception):
    """The script has no answer for a call."""


class ScriptPlayer:
    """The mutable cursor over a script; one per model. Thread-safe.

    Each call takes exactly one answer, under a lock, in the order the calls
    reach :meth:`take`.
    """

    def __init__(self, script: Script) -> None:
        self.script = script
        self._lock = threading.RLock()
        self._next = 0
        self._rule_uses = [0] * len(script.rules)
        # Queued takes whose order threads may have decided.
        self._raced = _order.RaceLog()

    def take(self, call: Call, ordered: bool = False) -> Turn | PendingTurn:
        """The turn that answers ``call`` (pending for an async responder); raises
        :class:`Exhausted` if none.

        ``ordered`` says the caller already put this take in a deterministic
        order (a ``batch`` input's take); see :mod:`fakellm._order`.
        """
        script = self.script
        with self._lock:
            for i, rule in enumerate(script.rules):
                if rule.times is not None and self._rule_uses[i] >= rule.times:
                    continue
                try:
                    hit = rule.matches(call)
                except Exception as exc:
                    raise _rule_failed(rule, i, "when predicate", call, exc) from exc
                if hit:
                    self._rule_uses[i] += 1
                    try:
                        answer = rule.answer(call)
                    except errors.FakeLLMError:
                        # The harness's own errors (an invalid turn, a helper's
                        # deliberate UnexpectedCall or limit) already say what to fix.
                        raise
                    except Exception as exc:
                        raise _rule_failed(rule, i, "responder", call, exc) from exc
                    if isinstance(answer, PendingTurn):
                        return PendingTurn(answer.awaitable, rule, i)
                    return answer
            turns = script.turns
            k = self._next
            if not turns or (k >= len(turns) and script.when_exhausted == "raise"):
                raise Exhausted
            self._next += 1
            if not script.allow_races:
                where = _order.by_threads(ordered)
                if where is not None:
                    self._raced.record(call.index, k, where)
            if k < len(turns):
                return turns[k]
            if script.when_exhausted == "cycle":
                return turns[k % len(turns)]
            return turns[-1]

    def races(self) -> list[str]:
        """Queued turns handed out in an order threads decided, one line each.

        Only takes another such take could have swapped with: one call in a
        worker thread, alone, or calls whose work was handed back before the
        next was handed over (see :mod:`fakellm._order`), race with nothing.
        """
        with self._lock:
            turns = self.script.turns
            return [
                f"call #{index} (thread {thread!r}) got turns[{k % len(turns)}]: "
                f"{turns[k % len(turns)].describe()}"
                for index, k, thread in self._raced.raced()
            ]

    @property
    def turns_used(self) -> int:
        """How many queued turns have been served (cycled ones count again)."""
        return self._next

    def unused(self) -> list[str]:
        """Descriptions of what the script still held: queued turns and limited rules."""
        with self._lock:
            out = [
                f"turns[{i}]: {t.describe()}"
                for i, t in enumerate(self.script.turns)
                if i >= self._next
            ]
            for i, rule in enumerate(self.script.rules):
                if rule.times is not None and self._rule_uses[i] < rule.times:
                    left = rule.times - self._rule_uses[i]
                    out.append(f"rules[{i}]: {rule.describe()} ({left} of {rule.times} uses left)")
            return out

    def held(self) -> str:
        """What the script held, for an UnexpectedCall message."""
        s = self.script
        n = len(s.turns)
        text = "no turns" if n == 0 else f"{n} turn{'s' if n != 1 else ''}, all used"
        if s.rules:
            rules = "; ".join(r.describe() for r in s.rules)
            text += f"; rules (none matched or all used up): {rules}"
        return text


def stub_tools(script: Script) -> list[dict[str, Any]]:
    """OpenAI-format stubs of every tool ``script`` calls (turns and rule replies).

    Bind them (``model.bind_tools(stub_tools(script))``) to play a script's tool
    calls when the real tools do not matter; their arguments are not constrained.
    """
    turns = [*script.turns, *(r.respond for r in script.rules if r.respond is not None)]
    names = dict.fromkeys(call.name for turn in turns for call in turn.tool_calls)
    return [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": f"stub of the tool {name!r} (bound by fakellm)",
                "parameters": {"type": "object", "properties": {}},
            },
        }
        for name in names
    ]
