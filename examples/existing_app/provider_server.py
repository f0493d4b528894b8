"""Local servers that speak OpenAI's and Anthropic's wire formats, for recording tests.

Each answers on 127.0.0.1 (pytest-httpserver) from a queue of replies, as JSON
or as server-sent events when the request streams: text in given chunks, tool
calls as argument fragments, usage, and error statuses (429 with
``retry-after``, 500). Real ``langchain-openai`` and ``langchain-anthropic``
clients talk to them through ``base_url``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

MODEL = "gpt-4o-mini-2024-07-18"


@dataclass
class Reply:
    """One answer: text chunks and/or tool calls ``(id, name, [argument fragments])``;
    for Anthropic also extended-thinking chunks, streamed first."""

    chunks: list[str] = field(default_factory=list)
    thinking: list[str] = field(default_factory=list)
    tool_calls: list[tuple[str, str, list[str]]] = field(default_factory=list)
    usage: tuple[int, int] = (12, 5)
    pause: float = 0.004  # seconds before each streamed chunk, so latencies are measurable
    status: int = 200
    retry_after: str | None = None


class _QueuedServer:
    """Serves queued replies in order; ``requests`` keeps every JSON body received."""

    path = ""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.queue: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        server.expect_request(self.path, method="POST").respond_with_handler(self._handle)

    def add(self, *replies: Reply) -> None:
        self.queue.extend(replies)

    def _handle(self, request: Request) -> Response:
        body = json.loads(request.get_data())
        self.requests.append(body)
        reply = self.queue.pop(0)
        if reply.status != 200:
            headers = {"retry-after": reply.retry_after} if reply.retry_after else {}
            return Response(
                json.dumps(self._error(reply.status)),
                reply.status,
                headers,
                content_type="application/json",
            )
        if body.get("stream"):
            return Response(self._events(reply, body), content_type="text/event-stream")
        return Response(json.dumps(self._completion(reply)), content_type="application/json")

    def _error(self, status: int) -> dict[str, Any]:
        raise NotImplementedError

    def _completion(self, reply: Reply) -> dict[str, Any]:
        raise NotImplementedError

    def _events(self, reply: Reply, body: dict[str, Any]) -> Iterator[str]:
        raise NotImplementedError


class OpenAIServer(_QueuedServer):
    """``POST /v1/chat/completions``, as OpenAI answers it."""

    path = "/v1/chat/completions"

    @property
    def base_url(self) -> str:
        return self.server.url_for("/v1")

    def _error(self, status: int) -> dict[str, Any]:
        return {"error": {"message": f"local error {status}", "type": "local"}}

    def _completion(self, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(reply.chunks) or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {"id": i, "type": "function", "function": {"name": n, "arguments": "".join(a)}}
                for i, n, a in reply.tool_calls
            ]
        return {
            "id": "chatcmpl-local",
            "object": "chat.completion",
            "created": 1700000000,
            "model": MODEL,
            "system_fingerprint": "fp_local",
            "choices": [{"index": 0, "message": message, "finish_reason": _finish(reply)}],
            "usage": _usage(reply),
        }

    def _events(self, reply: Reply, body: dict[str, Any]) -> Iterator[str]:
        usage = (body.get("stream_options") or {}).get("include_usage", False)

        def event(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> str:
            choices = (
                [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
            )
            chunk = {
                "id": "chatcmpl-local",
                "object": "chat.completion.chunk",
                "created": 1700000000,
                "model": MODEL,
                "system_fingerprint": "fp_local",
                "choices": choices,
                **extra,
            }
            return f"data: {json.dumps(chunk)}\n\n"

        yield event({"role": "assistant", "content": ""})
        for text in reply.chunks:
            time.sleep(reply.pause)
            yield event({"content": text})
        for k, (call_id, name, fragments) in enumerate(reply.tool_calls):
            time.sleep(reply.pause)
            yield event(
                {"tool_calls": [{"index": k, "id": call_id, "type": "function",
                                 "function": {"name": name, "arguments": ""}}]}
            )  # fmt: skip
            for fragment in fragments:
                time.sleep(reply.pause)
                yield event({"tool_calls": [{"index": k, "function": {"arguments": fragment}}]})
        yield event({}, _finish(reply))
        if usage:
            yield event(None, usage=_usage(reply))
        yield "data: [DONE]\n\n"


def _finish(reply: Reply) -> str:
    return "tool_calls" if reply.tool_calls else "stop"


def _usage(reply: Reply) -> dict[str, int]:
    i, o = reply.usage
    return {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o}


class AnthropicServer(_QueuedServer):
    """``POST /v1/messages``, as Anthropic answers it (content blocks, ``tool_use``)."""

    path = "/v1/messages"
    model = "claude-sonnet-4-6"

    @property
    def base_url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def _error(self, status: int) -> dict[str, Any]:
        kind = "rate_limit_error" if status == 429 else "api_error"
        return {"type": "error", "error": {"type": kind, "message": f"local error {status}"}}

    def _completion(self, reply: Reply) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if reply.thinking:
            content.append(
                {"type": "thinking", "thinking": "".join(reply.thinking), "signature": "sig-local"}
            )
        if reply.chunks:
            content.append({"type": "text", "text": "".join(reply.chunks)})
        for call_id, name, fragments in reply.tool_calls:
            content.append(
                {
                    "type": "tool_use",
                    "id": call_id,
                    "name": name,
                    "input": json.loads("".join(fragments)),
                }
            )
        return {**self._message(reply, content), "stop_reason": _stop(reply)}

    def _message(self, reply: Reply, content: list[dict[str, Any]]) -> dict[str, Any]:
        i, o = reply.usage
        return {
            "id": "msg_local",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": i, "output_tokens": o},
        }

    def _events(self, reply: Reply, body: dict[str, Any]) -> Iterator[str]:
        def event(kind: str, **data: Any) -> str:
            return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"

        start = self._message(reply, [])
        start["usage"] = {"input_tokens": reply.usage[0], "output_tokens": 1}
        yield event("message_start", message=start)
        index = 0
        if reply.thinking:
            block = {"type": "thinking", "thinking": "", "signature": ""}
            yield event("content_block_start", index=index, content_block=block)
            for text in reply.thinking:
                time.sleep(reply.pause)
                delta = {"type": "thinking_delta", "thinking": text}
                yield event("content_block_delta", index=index, delta=delta)
            delta = {"type": "signature_delta", "signature": "sig-local"}
            yield event("content_block_delta", index=index, delta=delta)
            yield event("content_block_stop", index=index)
            index += 1
        if reply.chunks:
            block = {"type": "text", "text": ""}
            yield event("content_block_start", index=index, content_block=block)
            for text in reply.chunks:
                time.sleep(reply.pause)
                yield event(
                    "content_block_delta", index=index, delta={"type": "text_delta", "text": text}
                )
            yield event("content_block_stop", index=index)
            index += 1
        for k, (call_id, name, fragments) in enumerate(reply.tool_calls, start=index):
            time.sleep(reply.pause)
            block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
            yield event("content_block_start", index=k, content_block=block)
            for fragment in fragments:
                time.sleep(reply.pause)
                delta = {"type": "input_json_delta", "partial_json": fragment}
                yield event("content_block_delta", index=k, delta=delta)
            yield event("content_block_stop", index=k)
        yield event(
            "message_delta",
            delta={"stop_reason": _stop(reply), "stop_sequence": None},
            usage={"input_tokens": reply.usage[0], "output_tokens": reply.usage[1]},
        )
        yield event("message_stop")


def _stop(reply: Reply) -> str:
    return "tool_use" if reply.tool_calls else "end_turn"
