"""An OpenAI-compatible chat-completions server on loopback that behaves the way real endpoints do.

Each test gives it a script of answers and, optionally, a ``refuse`` rule: a function of the request body
that returns an HTTP error (status, error body) the way OpenAI, vLLM or a small local server would, before
any script item is used. Script items are a text answer, a ``Reply`` (finish reason, raw tool calls) or an
``Error`` (status, message, headers). Every request body and its headers are kept for the assertions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# Retry-After in milliseconds, which the openai SDK honours: retried requests come back at once.
FAST_RETRY = {"retry-after-ms": "10"}


@dataclass
class Reply:
    """A 200 answer: text, finish reason and raw tool calls (``arguments`` as the server sends them)."""

    content: str = ""
    finish_reason: str = "stop"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Error:
    """An HTTP error answer with an OpenAI-style body ``{"error": {...}}``."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    repeat: bool = False  # answer every later request the same way too


def tool_call(name: str, arguments: str, call_id: str = "call_1") -> dict[str, Any]:
    """A raw tool call, arguments as a string exactly as it goes over the wire (possibly not JSON)."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


REASONING_MODEL = lambda body: (  # noqa: E731 - a rule reads best as one expression
    Error(
        400,
        "Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value "
        "is supported.",
        param="temperature",
        code="unsupported_value",
    )
    if "temperature" in body
    else None
)
VLLM_WITHOUT_TOOL_PARSER = lambda body: (  # noqa: E731
    Error(400, '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set')
    if "tools" in body
    else None
)
NO_JSON_MODE = lambda body: (  # noqa: E731
    Error(400, "response_format is not supported by this server", param="response_format")
    if "response_format" in body
    else None
)


class Endpoint:
    """The server; ``url`` is its /v1 base URL. Use as a context manager."""

    def __init__(
        self,
        script: list[str | Reply | Error],
        refuse: Callable[[dict[str, Any]], Error | None] | None = None,
    ) -> None:
        self.script, self.refuse = list(script), refuse
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._sticky: Error | None = None
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                status, payload, headers = endpoint._answer(body, dict(self.headers))
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Endpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in headers.items()})
            item: str | Reply | Error | None = self._sticky or (self.refuse(body) if self.refuse else None)
            if item is None:
                item = self.script.pop(0) if self.script else Error(500, "test script exhausted")
            if isinstance(item, Error) and item.repeat:
                self._sticky = item
        if isinstance(item, Error):
            err = {
                "message": item.message,
                "type": "invalid_request_error",
                "param": item.param,
                "code": item.code,
            }
            return item.status, {"error": err}, item.headers
        reply = Reply(item) if isinstance(item, str) else item
        message: dict[str, Any] = {"role": "assistant", "content": reply.content or None}
        if reply.tool_calls:
            message["tool_calls"] = reply.tool_calls
        prompt = sum(len(str(m.get("content") or "")) for m in body.get("messages", [])) // 4
        completion = len(reply.content) // 4 + 1
        return (
            200,
            {
                "id": f"chatcmpl-{time.time_ns()}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "m"),
                "choices": [{"index": 0, "finish_reason": reply.finish_reason, "message": message}],
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                },
            },
            {},
        )


def closed_port_url() -> str:
    """A loopback URL where nothing listens (the port was bound and released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
