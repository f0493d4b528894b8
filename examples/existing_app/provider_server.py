"""A local server that speaks OpenAI's chat completions wire format, for recording tests.

It answers ``POST /v1/chat/completions`` on 127.0.0.1 (pytest-httpserver) from a
queue of replies, as JSON or as server-sent events when the request streams:
text in given chunks, tool calls as argument fragments, usage (when the client
asks for it in streams), and error statuses (429 with ``retry-after``, 500).
Real ``langchain-openai`` clients talk to it through ``base_url``.
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
    """One answer: text chunks and/or tool calls ``(id, name, [argument fragments])``."""

    chunks: list[str] = field(default_factory=list)
    tool_calls: list[tuple[str, str, list[str]]] = field(default_factory=list)
    usage: tuple[int, int] = (12, 5)
    pause: float = 0.004  # seconds before each streamed chunk, so latencies are measurable
    status: int = 200
    retry_after: str | None = None


class OpenAIServer:
    """Serves queued replies in order; ``requests`` keeps every JSON body received."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.queue: list[Reply] = []
        self.requests: list[dict[str, Any]] = []
        server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(
            self._handle
        )

    @property
    def base_url(self) -> str:
        return self.server.url_for("/v1")

    def add(self, *replies: Reply) -> None:
        self.queue.extend(replies)

    def _handle(self, request: Request) -> Response:
        body = json.loads(request.get_data())
        self.requests.append(body)
        reply = self.queue.pop(0)
        if reply.status != 200:
            headers = {"retry-after": reply.retry_after} if reply.retry_after else {}
            error = {"error": {"message": f"local error {reply.status}", "type": "local"}}
            return Response(
                json.dumps(error), reply.status, headers, content_type="application/json"
            )
        if body.get("stream"):
            usage = (body.get("stream_options") or {}).get("include_usage", False)
            return Response(self._events(reply, usage), content_type="text/event-stream")
        return Response(json.dumps(self._completion(reply)), content_type="application/json")

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

    def _events(self, reply: Reply, usage: bool) -> Iterator[str]:
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
