"""A loopback OpenAI-compatible chat-completions server that replays scripted answers (for CLI tests).

Run as ``python fake_openai_server.py SCRIPT.json PORTFILE``: binds 127.0.0.1 on a free port, writes the
port to PORTFILE, answers each POST /v1/chat/completions with the next scripted text (with usage), and
logs each request body to SCRIPT.json.requests.jsonl.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

script: list[str] = []
lock = threading.Lock()
log_path: Path


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        if "response_format" in body and os.environ.get("FAKE_REJECT_JSON_MODE"):
            data = json.dumps(
                {
                    "error": {
                        "message": "response_format is not supported",
                        "type": "invalid_request_error",
                        "code": None,
                        "param": "response_format",
                    }
                }
            ).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        with lock:
            with open(log_path, "a") as f:
                f.write(json.dumps(body) + "\n")
            text = script.pop(0) if script else "script exhausted"
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
        reply = {
            "id": f"chatcmpl-{time.time_ns()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "fake"),
            "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
            ],
            "usage": {
                "prompt_tokens": prompt_chars // 4,
                "completion_tokens": len(text) // 4,
                "total_tokens": prompt_chars // 4 + len(text) // 4,
            },
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main() -> None:
    global log_path
    script_file, port_file = Path(sys.argv[1]), Path(sys.argv[2])
    script.extend(json.loads(script_file.read_text()))
    log_path = Path(str(script_file) + ".requests.jsonl")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_file.write_text(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
