"""Cassettes: recorded model runs kept as fakellm scripts, and ``dump_script``.

A cassette is a YAML file that :func:`~fakellm.load_script` loads: each turn is
one recorded answer, its ``stream`` of chunks exactly as the integration produced
them (content, tool-call fragments, metadata, usage, ids) with the delay measured
before each, or the error raised; and carries under ``request``
what it answered: the messages, the bound tools' names, the tool choice, the
settings that change the answer, and a fingerprint of all of it (tool schemas
included). Nothing that can hold a secret is written: no headers, no keys, and
a ``scrub`` hook rewrites message content before it is written.

Replay matches calls to recordings in order (the default) or by fingerprint;
a call that matches nothing is an :class:`~fakellm.errors.UnexpectedCall`
showing the closest recording and how the two requests differ. Record modes
follow vcrpy: ``none`` (replay only, the default), ``once`` (record when the
file is missing), ``new_episodes`` (replay what matches, record the rest),
``all`` (record everything again).

This module holds the data side (no patching): :mod:`fakellm._intercept` feeds it.
"""

from __future__ import annotations

import builtins
import difflib
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import yaml
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from fakellm import errors
from fakellm._script import Chunk, Repeat, Rule, Script, Turn, load_script

__all__ = [
    "MATCH_MODES",
    "RECORD_MODES",
    "Cassette",
    "Scrub",
    "StreamRecording",
    "dump_script",
    "error_from_exception",
    "error_spec",
    "request_diff",
    "request_summary",
    "turn_from_error",
    "turn_from_result",
]

Scrub: TypeAlias = Callable[[str], str]

RECORD_MODES: tuple[str, ...] = ("none", "once", "new_episodes", "all")
MATCH_MODES: tuple[str, ...] = ("order", "fingerprint")

# Per-call arguments that say how to deliver the answer, not what it is.
_DELIVERY_KWARGS = frozenset(
    {
        "stream",
        "stream_usage",
        "stream_options",
        "ls_structured_output_format",
        "structured_output_format",
        "tools",
        "tool_choice",
    }
)
# Never written, whatever the integration puts there.
_SECRET = re.compile(r"key|token|secret|auth|header|password|cookie", re.IGNORECASE)
# Never written from an answer's metadata (its token counts are no secret).
_REPLY_SECRET = re.compile(r"api_?key|secret|password|auth|header|cookie", re.IGNORECASE)


# ----------------------------------------------------------------- dump_script


def dump_script(script: Script, path: str | os.PathLike[str] | None = None) -> str:
    """The YAML text of ``script``; written to ``path`` too when one is given.

    ``load_script`` reads it back to an equal script: every field a file can
    hold round-trips (explicit chunks, regex chunking, repeated delays, usage,
    content blocks, tool calls, rules with ``respond``, ``when_exhausted``).
    A scripted error is written by class name, an error instance as
    ``{type: Name, ...its attributes}`` (a provider error's ``spec()``, a builtin's
    ``args``), and comes back as a new instance of the same class with the same
    attributes (exceptions compare by identity, so such scripts compare equal by
    their dumps). What a file cannot hold (a rule's ``when`` or ``responder``
    function, a regex with flags, an error class outside ``fakellm.errors`` and
    the builtins) is a ``ValueError`` naming the field.
    """
    text = yaml.dump(
        _script_data(script),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    if path is not None:
        _write(Path(path), text)
    return text


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


class _Dumper(yaml.SafeDumper):
    """Chunk, delay and tool lists on one line; every string that YAML would fold
    (NEL, line and paragraph separators, non-printable characters) double-quoted."""


class _Flow(list[Any]):
    """A list written on one line when short."""


class _FlowMap(dict[str, Any]):
    """A mapping written on one line when short (a recorded chunk)."""


def _represent_flow(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    short = sum(len(str(v)) + 4 for v in data) < 90
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=short)


def _represent_flow_map(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.Node:
    short = len(str(data)) < 90 and "\n" not in str(data)
    return dumper.represent_mapping("tag:yaml.org,2002:map", data, flow_style=short)


_FOLDED = re.compile(
    "[\x85\u2028\u2029]|[^\x09\x0a\x0d\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = '"' if _FOLDED.search(data) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(_Flow, _represent_flow)
_Dumper.add_representer(_FlowMap, _represent_flow_map)
_Dumper.add_representer(str, _represent_str)


def _script_data(script: Script) -> dict[str, Any]:
    out: dict[str, Any] = {
        "turns": [_turn_data(t, f"turns[{i}]") for i, t in enumerate(script.turns)]
    }
    if script.rules:
        out["rules"] = [_rule_data(r, f"rules[{i}]") for i, r in enumerate(script.rules)]
    if script.when_exhausted != "raise":
        out["when_exhausted"] = script.when_exhausted
    return out


def _non_default(part: Any) -> Iterable[tuple[str, Any]]:
    for name, info in type(part).model_fields.items():
        value = getattr(part, name)
        if value != info.get_default(call_default_factory=True):
            yield name, value


def _turn_data(turn: Turn, where: str) -> Any:
    data: dict[str, Any] = {}
    if turn.request is not None:
        data["request"] = _plain(turn.request)
    for name, value in _non_default(turn):
        if name == "request":
            continue
        if name == "chunks":
            data[name] = _chunks_data(value, f"{where}.chunks")
        elif name == "delay":
            data[name] = {"repeat": _Flow(value.repeat)} if isinstance(value, Repeat) else value
            if isinstance(value, tuple):
                data[name] = _Flow(value)
        elif name == "error":
            data[name] = error_spec(value, where=f"{where}.error")
        elif name == "usage":
            data[name] = dict(_non_default(value))
        elif name == "tool_calls":
            data[name] = [_plain(dict(_non_default(tc))) for tc in value]
        elif name == "stream":
            data[name] = [_chunk_data(c) for c in value]
        else:
            data[name] = _plain(value)
    if set(data) == {"text"}:
        return data["text"]  # a plain string is a turn with default settings
    return data


def _chunk_data(chunk: Chunk) -> dict[str, Any]:
    data = _FlowMap({name: _plain(value) for name, value in _non_default(chunk)})
    if "tool_call_chunks" in data:
        data["tool_call_chunks"] = [_FlowMap(t) for t in data["tool_call_chunks"]]
    for name in ("usage_metadata", "response_metadata", "additional_kwargs"):
        if data.get(name):
            data[name] = _FlowMap(data[name])
    if "id" in chunk.model_fields_set:
        data["id"] = chunk.id  # null too: the chunk came without an id
    return data


def _chunks_data(value: Any, where: str) -> Any:
    if isinstance(value, re.Pattern):
        if value.flags != re.compile(value.pattern).flags:
            msg = f"{where}: a regex with flags cannot be written to a file; use inline flags (?i)"
            raise ValueError(msg)
        return {"regex": value.pattern}
    return _Flow(value) if isinstance(value, tuple) else value


def _rule_data(rule: Rule, where: str) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, value in _non_default(rule):
        if name in ("when", "responder"):
            msg = f"{where}.{name}: a function cannot be written to a file; use match= or tools="
            raise ValueError(msg)
        if name == "match":
            data[name] = _chunks_data(value, f"{where}.match")["regex"]
        elif name == "respond":
            data[name] = _turn_data(value, f"{where}.respond")
        else:
            data[name] = _plain(value)
    return data


def error_spec(error: Any, *, where: str = "error") -> str | dict[str, Any]:
    """The script-file form of a scripted error (a class or an instance)."""
    cls = error if isinstance(error, type) else type(error)
    name = cls.__name__
    if getattr(errors, name, None) is not cls and getattr(builtins, name, None) is not cls:
        msg = (
            f"{where}: {name} cannot be written to a file; a script file names a "
            "fakellm.errors provider error or a builtin exception"
        )
        raise ValueError(msg)
    if isinstance(error, type):
        return name
    if isinstance(error, errors.ProviderError):
        return _plain(error.spec())  # type: ignore[no-any-return]
    return {"type": name, "args": _plain(list(error.args))}


def _plain(value: Any) -> Any:
    """Plain YAML data: tuples become lists, mappings plain dicts."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)  # langchain-core's text accessors are str subclasses
    return value


# ----------------------------------------------------------------- requests


def _jsonable(value: Any) -> Any:
    """JSON data for anything a request carries (schemas for pydantic classes)."""
    if isinstance(value, str):
        return str(value)
    if value is None or isinstance(value, int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    schema = getattr(value, "model_json_schema", None)
    if isinstance(value, type) and callable(schema):
        return schema()
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return _jsonable(dump())
    return _ADDRESS.sub("", repr(value))  # an object's address differs on every run


_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _scrubbed(value: Any, scrub: Scrub | None) -> Any:
    if scrub is None:
        return value
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {k: _scrubbed(v, scrub) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(v, scrub) for v in value]
    return value


def _message_data(message: BaseMessage, scrub: Scrub | None) -> dict[str, Any]:
    content: Any
    if message.type == "ai":
        # A model's own answer, as text and tool calls: a provider that answers in
        # content blocks (Anthropic) is replayed as plain text, and the next request
        # must still match the one recorded.
        content = str(message.text)
    elif isinstance(message.content, str):
        content = message.content
    else:
        content = _jsonable(message.content)
    data: dict[str, Any] = {message.type: _scrubbed(content, scrub)}
    for call in getattr(message, "tool_calls", None) or ():
        data.setdefault("tool_calls", []).append(
            {"name": call["name"], "args": _scrubbed(_jsonable(call["args"]), scrub)}
        )
    return data


def _tool_name(tool: Any) -> str:
    if isinstance(tool, Mapping):
        fn = tool.get("function")
        if isinstance(fn, Mapping):
            return str(fn.get("name", ""))
        return str(tool.get("name", ""))
    return str(getattr(tool, "name", None) or getattr(tool, "__name__", repr(tool)))


def request_summary(
    messages: Sequence[BaseMessage],
    kwargs: Mapping[str, Any],
    ls_params: Mapping[str, Any],
    *,
    scrub: Scrub | None = None,
) -> dict[str, Any]:
    """What a cassette writes about one request, with its fingerprint.

    ``settings`` holds LangChain's standard parameters of the call (provider,
    model, temperature, max tokens, stop) and every per-call argument that
    changes the answer; ``tools`` the bound tools' names (their full schemas
    count in the fingerprint). Ids are left out: they differ between runs.
    """
    settings = {
        key.removeprefix("ls_"): _jsonable(value)
        for key, value in ls_params.items()
        if value is not None and key not in ("ls_model_type", "ls_integration")
    }
    for key, value in kwargs.items():
        if key not in _DELIVERY_KWARGS and not _SECRET.search(key) and value is not None:
            settings[key] = _jsonable(value)
    out: dict[str, Any] = {"messages": [_message_data(m, scrub) for m in messages]}
    tools = list(kwargs.get("tools") or ())
    if tools:
        out["tools"] = [_tool_name(t) for t in tools]
    if kwargs.get("tool_choice") is not None:
        out["tool_choice"] = _jsonable(kwargs["tool_choice"])
    out["settings"] = dict(sorted(settings.items()))
    whole = {**out, "tools": [_jsonable(t) for t in tools]}
    digest = hashlib.sha256(json.dumps(whole, sort_keys=True, ensure_ascii=False).encode())
    out["fingerprint"] = digest.hexdigest()[:16]
    return out


def _same_request(recorded: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """Fingerprints decide; a recording whose fingerprint was deleted (hand-edited)
    matches on the parts it still states."""
    if "fingerprint" in recorded:
        return bool(recorded["fingerprint"] == live["fingerprint"])
    return all(live.get(key) == value for key, value in recorded.items())


def _render(request: Mapping[str, Any]) -> list[str]:
    return yaml.dump(
        _plain(dict(request)), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100
    ).splitlines()


def request_diff(recorded: Mapping[str, Any], live: Mapping[str, Any]) -> str:
    """A unified diff, recorded request against this call's."""
    lines = difflib.unified_diff(
        _render({k: v for k, v in recorded.items() if k != "fingerprint"}),
        _render({k: v for k, v in live.items() if k != "fingerprint"}),
        "recorded",
        "this call",
        lineterm="",
        n=2,
    )
    text = "\n".join(lines)
    if not text:
        return (
            "(the requests differ only in what the fingerprint covers beyond the "
            "cassette's text: the bound tools' schemas)"
        )
    return text


# ----------------------------------------------------------------- recording


def _reply_metadata(merged: Mapping[str, Any]) -> dict[str, Any]:
    """Response metadata as the app sees it, minus anything that can hold a secret."""
    return {k: _jsonable(v) for k, v in merged.items() if not _REPLY_SECRET.search(k)}


def _scrubbed_content(content: Any, scrub: Scrub | None) -> Any:
    """Content with its text scrubbed: a string, or the text parts of content blocks."""
    if scrub is None or isinstance(content, str):
        return _scrubbed(content, scrub)
    out = []
    for block in content:
        if isinstance(block, Mapping):
            block = {k: _scrubbed(v, scrub) if k in _BLOCK_TEXT else v for k, v in block.items()}
        out.append(_scrubbed(block, scrub))
    return out


# Where content blocks keep what the model said (text, thinking, tool input).
_BLOCK_TEXT = frozenset({"text", "thinking", "reasoning", "partial_json", "input", "args"})


def _chunk_spec(
    message: BaseMessage,
    generation_info: Mapping[str, Any] | None,
    delay: float,
    *,
    tool_call_chunks: list[dict[str, Any]],
    scrub: Scrub | None,
) -> dict[str, Any]:
    """One Chunk's data: the message as LangChain hands it to the app."""
    data: dict[str, Any] = {"delay": _round(delay)}
    content = _jsonable(message.content)
    if content != "":
        data["content"] = _scrubbed_content(content, scrub)
    if tool_call_chunks:
        data["tool_call_chunks"] = [
            {**t, "args": _scrubbed(t["args"], scrub)} if t.get("args") else t
            for t in tool_call_chunks
        ]
    if message.additional_kwargs:
        data["additional_kwargs"] = _scrubbed(_jsonable(message.additional_kwargs), scrub)
    # What core merges into the message before the app sees it.
    metadata = _reply_metadata({**(generation_info or {}), **message.response_metadata})
    if metadata:
        data["response_metadata"] = metadata
    usage = getattr(message, "usage_metadata", None)
    if usage is not None:
        data["usage_metadata"] = _jsonable(usage)
    position = getattr(message, "chunk_position", None)
    if position is not None:
        data["chunk_position"] = position
    data["id"] = message.id
    return data


def _stream_turn(request: dict[str, Any], chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """A ``stream`` turn's data: the first id the integration gave is the turn's; a
    chunk says its own only where it differs (``id: null`` where it gave none, as
    langchain-openai and langchain-anthropic do: LangChain then uses the run's id)."""
    turn_id = next((c["id"] for c in chunks if c["id"] is not None), None)
    for c in chunks:
        if turn_id is not None and c["id"] == turn_id:
            del c["id"]
    data: dict[str, Any] = {"request": request, "stream": chunks}
    if turn_id is not None:
        data["id"] = turn_id
    return data


def error_from_exception(exc: BaseException, scrub: Scrub | None) -> dict[str, Any]:
    """The scripted form of an error a real provider raised, by status and kind.

    Provider SDK errors become fakellm's provider errors (429 keeps its
    ``retry-after``); a builtin exception keeps its class. The message is kept.
    """
    message = _scrubbed(str(exc), scrub)
    status = getattr(exc, "status_code", None)
    names = {c.__name__ for c in type(exc).__mro__}
    if getattr(builtins, type(exc).__name__, None) is type(exc):
        return {"type": type(exc).__name__, "args": [message]}
    spec: dict[str, Any] = {"message": message}
    if status == 429 or "RateLimitError" in names:
        spec["type"] = "RateLimitError"
        retry = _retry_after(exc)
        if retry is not None:
            spec["retry_after"] = retry
    elif status == 401 or "AuthenticationError" in names:
        spec["type"] = "AuthenticationError"
    elif isinstance(status, int) and status >= 500:
        spec |= {"type": "ServerError", "status_code": status}
    elif isinstance(status, int) and 400 <= status < 500:
        spec |= {"type": "BadRequestError", "status_code": status}
    elif "APITimeoutError" in names or isinstance(exc, TimeoutError):
        spec["type"] = "APITimeoutError"
    else:
        spec["type"] = "APIConnectionError"
    return spec


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _round(seconds: float) -> float:
    return round(max(seconds, 0.0), 6)


@dataclass
class StreamRecording:
    """The chunks of one real stream as they arrived, copied on arrival (LangChain
    changes a chunk's id and metadata after the integration yields it)."""

    started: float
    scrub: Scrub | None = None
    chunks: list[dict[str, Any]] = field(default_factory=list)
    error: BaseException | None = None
    error_time: float | None = None
    _last: float | None = None

    def add(self, at: float, chunk: ChatGenerationChunk) -> None:
        """Keep ``chunk``, which arrived at ``at``, exactly as the integration made it."""
        message = chunk.message
        tool_call_chunks = [
            {k: tcc.get(k) for k in ("index", "name", "id", "args") if tcc.get(k) is not None}
            for tcc in getattr(message, "tool_call_chunks", None) or ()
        ]
        spec = _chunk_spec(
            message,
            chunk.generation_info,
            at - (self.started if self._last is None else self._last),
            tool_call_chunks=tool_call_chunks,
            scrub=self.scrub,
        )
        self.chunks.append(spec)
        self._last = at

    def to_turn(self, request: dict[str, Any], scrub: Scrub | None) -> Turn:
        """The recorded stream as a ``stream`` turn: every chunk as it came, with the
        delay measured before it; an error raised mid-stream after its last chunk."""
        if not self.chunks:
            if self.error is not None:
                at = self.error_time if self.error_time is not None else self.started
                return turn_from_error(self.error, at - self.started, request, scrub)
            return Turn(request=request)  # a stream that ended without a chunk
        data = _stream_turn(request, self.chunks)
        if self.error is not None:
            data["error"] = error_from_exception(self.error, scrub)
            data["at_chunk"] = "end"
        return Turn(**data)


def turn_from_result(
    result: ChatResult, elapsed: float, request: dict[str, Any], scrub: Scrub | None
) -> Turn:
    """A non-streamed answer as a ``stream`` turn of one chunk after ``elapsed`` seconds:
    its content, tool calls, usage and metadata exactly as the app received them."""
    generation = result.generations[0]
    message = generation.message
    tool_call_chunks: list[dict[str, Any]] = []
    for call in getattr(message, "tool_calls", None) or ():
        args = json.dumps(_jsonable(call["args"]), ensure_ascii=False)
        tool_call_chunks.append({"name": call["name"], "args": args, "id": call.get("id")})
    for bad in getattr(message, "invalid_tool_calls", None) or ():
        tool_call_chunks.append(
            {"name": bad.get("name"), "args": bad.get("args"), "id": bad.get("id")}
        )
    tool_call_chunks = [
        {"index": i, **{k: v for k, v in t.items() if v is not None}}
        for i, t in enumerate(tool_call_chunks)
    ]
    # Core merges llm_output into the message's metadata when one generation answers.
    info = {**(result.llm_output or {}), **(generation.generation_info or {})}
    chunk = _chunk_spec(message, info, elapsed, tool_call_chunks=tool_call_chunks, scrub=scrub)
    return Turn(**_stream_turn(request, [chunk]))


def turn_from_error(
    exc: BaseException, elapsed: float, request: dict[str, Any], scrub: Scrub | None
) -> Turn:
    """A call that failed before answering, after ``elapsed`` seconds."""
    return Turn(
        request=request,
        error=error_from_exception(exc, scrub),
        first_token_delay=_round(elapsed),
    )


# ----------------------------------------------------------------- the cassette


_HEADER = (
    "# A fakellm cassette: recorded model answers, one turn per call, as a fakellm script.\n"
    "# load_script() reads it; edit it like any script. Replayed by intercept(..., cassette=).\n"
)


class Cassette:
    """One cassette file in one record mode: what it replays and what it records.

    Args:
        path: the YAML file.
        record: ``"none"`` (replay only; the file must exist), ``"once"``
            (record if the file is missing, else replay), ``"new_episodes"``
            (replay what matches, record what does not), ``"all"`` (record
            every call, replacing the file).
        match: ``"order"`` (call N answers from recording N) or
            ``"fingerprint"`` (any unused recording of the same request).
        scrub: a function applied to every message text, reply text and tool
            argument string before it is written (and to live requests before
            they are compared, so scrubbed recordings still match).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        record: str = "none",
        match: str = "order",
        scrub: Scrub | None = None,
    ) -> None:
        if record not in RECORD_MODES:
            msg = f"record={record!r}: accepted: {', '.join(map(repr, RECORD_MODES))}"
            raise ValueError(msg)
        if match not in MATCH_MODES:
            msg = f"match={match!r}: accepted: {', '.join(map(repr, MATCH_MODES))}"
            raise ValueError(msg)
        self.path = Path(path)
        self.record_mode = record
        self.match = match
        self.scrub = scrub
        exists = self.path.is_file()
        if record == "none" and not exists:
            msg = (
                f"cassette {str(self.path)!r} does not exist, and record='none' only "
                "replays. Record it once against the real provider: run this test with "
                "--fakellm-record=once (or record='once')."
            )
            raise FileNotFoundError(msg)
        self.replaying = exists and record != "all"
        self.recording = record == "all" or record == "new_episodes" or not exists
        script = load_script(self.path) if self.replaying else Script()
        if script.rules or script.when_exhausted != "raise":
            msg = (
                f"cassette {str(self.path)!r} holds rules or when_exhausted: a cassette "
                "holds recorded turns only (load it with load_script and use it as a "
                "script instead)"
            )
            raise ValueError(msg)
        self.entries: list[Turn] = list(script.turns)
        self.used = [False] * len(self.entries)
        self.new: list[Turn] = []
        self._cursor = 0

    def __repr__(self) -> str:
        return f"Cassette({str(self.path)!r}, record={self.record_mode!r}, match={self.match!r})"

    def select(self, request: Mapping[str, Any]) -> int | None:
        """The recording that answers ``request`` (marked used), or None."""
        if not self.replaying:
            return None
        if self.match == "order":
            k = self._cursor
            if k < len(self.entries) and self._fits(k, request):
                self._cursor += 1
                self.used[k] = True
                return k
            return None
        for k in range(len(self.entries)):
            if not self.used[k] and self._fits(k, request):
                self.used[k] = True
                return k
        return None

    def _fits(self, k: int, request: Mapping[str, Any]) -> bool:
        recorded = self.entries[k].request
        return recorded is None or _same_request(recorded, request)

    def add(self, turn: Turn) -> None:
        """Keep a new recording, written by :meth:`save`."""
        self.new.append(turn)

    def save(self) -> bool:
        """Write the cassette if anything was recorded; whether it was written."""
        if not self.new:
            return False
        kept = self.entries if self.record_mode == "new_episodes" else []
        _write(self.path, _HEADER + dump_script(Script([*kept, *self.new])))
        return True

    def mismatch(self, label: str, index: int, request: Mapping[str, Any]) -> str:
        """The UnexpectedCall message for a call that no recording answers."""
        head = (
            f"{label} call #{index} has no recording in cassette {str(self.path)!r} "
            f"(record={self.record_mode!r}, match={self.match!r})."
        )
        closest = self._closest(request)
        if closest is None:
            used = sum(self.used)
            body = f"All {used} recording{'s' if used != 1 else ''} were used by earlier calls."
        else:
            recorded = self.entries[closest].request or {}
            body = (
                f"Closest recording: turns[{closest}] (fingerprint "
                f"{recorded.get('fingerprint', 'none')}, this call {request['fingerprint']}):\n"
                + request_diff(recorded, request)
            )
        fix = (
            "If the app changed on purpose, re-record: --fakellm-record=new_episodes "
            "(keeps what still matches) or --fakellm-record=all; or edit the cassette."
        )
        return f"{head}\n{body}\n{fix}"

    def _closest(self, request: Mapping[str, Any]) -> int | None:
        if self.match == "order":
            return self._cursor if self._cursor < len(self.entries) else None
        free = [k for k in range(len(self.entries)) if not self.used[k]]
        if not free:
            return None
        live = _render(request)

        def likeness(k: int) -> float:
            recorded = _render(self.entries[k].request or {})
            return difflib.SequenceMatcher(None, recorded, live).ratio()

        return max(free, key=likeness)

    def unused(self) -> list[str]:
        """One line per recording no call used (in the modes that replay)."""
        out = []
        for k, turn in enumerate(self.entries):
            if self.used[k]:
                continue
            request = turn.request or {}
            last = _last_human(request)
            shown = f"request {last!r}" if last is not None else "request (no human message)"
            out.append(f"turns[{k}]: {shown} -> {turn.describe()}")
        return out


def _last_human(request: Mapping[str, Any]) -> str | None:
    for message in reversed(request.get("messages") or []):
        if isinstance(message, Mapping) and "human" in message:
            text = message["human"]
            text = text if isinstance(text, str) else json.dumps(text)
            return text if len(text) <= 60 else text[:57] + "..."
    return None
