"""The run's LLM transcript: every exchange with the model, one JSON line each, in ``RUN/llm_transcript.jsonl``.

When a model misbehaves the first question is what it was asked and what it answered; the graph state keeps
only what the search needs. Each line holds the node, round and action, the request messages and the
parameters sent, the raw reply text with its tool calls (valid and invalid), the finish reason, token usage,
latency and any error. API keys are never written: the request headers are not recorded, and every line
goes through :func:`~ksearch_agent.llm.redact.redact`, which masks the key wherever it might appear (an
error message that echoes it, say).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage

from ksearch_agent.llm.redact import redact, remember_key_in

__all__ = [
    "TRANSCRIPT_FILE",
    "Exchange",
    "TranscriptWriter",
    "format_transcript",
    "read_transcript",
    "recoveries",
]

TRANSCRIPT_FILE = "llm_transcript.jsonl"
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(str(path), threading.Lock())


def message_view(msg: BaseMessage) -> dict[str, Any]:
    """A message as the transcript shows it: role, text and, for the model's turns, its tool calls."""
    view: dict[str, Any] = {"role": msg.type, "content": msg.content}
    if isinstance(msg, AIMessage):
        if msg.tool_calls:
            view["tool_calls"] = [dict(c) for c in msg.tool_calls]
        if msg.invalid_tool_calls:
            view["invalid_tool_calls"] = [dict(c) for c in msg.invalid_tool_calls]
    tool_call_id = getattr(msg, "tool_call_id", None)
    if tool_call_id:
        view["tool_call_id"] = tool_call_id
    return view


class Exchange(dict[str, Any]):
    """One transcript record (a plain dict, so it serialises as is)."""


class TranscriptWriter:
    """Appends exchanges of one run to its transcript file, redacted; safe to share between threads."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / TRANSCRIPT_FILE

    @classmethod
    def for_key_env(cls, run_dir: str | Path, api_key_env: str) -> TranscriptWriter:
        """A writer for a run whose API key is in the environment variable ``api_key_env`` (masked)."""
        remember_key_in(api_key_env)
        return cls(run_dir)

    def write(self, record: dict[str, Any]) -> None:
        line = redact(json.dumps(record, default=str))
        with _lock_for(self.path), open(self.path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def read_transcript(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every exchange recorded for the run (an empty list when there is none); a torn last line is skipped."""
    path = Path(run_dir) / TRANSCRIPT_FILE
    if not path.is_file():
        return []
    out: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters]"


def format_transcript(records: Iterable[dict[str, Any]], *, full: bool = False) -> list[str]:
    """Readable lines for ``ksearch show RUN --llm``: a header per exchange, the last request message and the
    reply (texts clipped unless ``full``)."""
    limit = 10**9 if full else 1500
    lines: list[str] = []
    for n, r in enumerate(records, 1):
        usage = r.get("usage") or {}
        head = (
            f"#{n} {r.get('node')} · round {r.get('round')} · action {r.get('action') or '—'} · "
            f"finish {r.get('finish_reason') or '—'} · {usage.get('input_tokens', 0)} in + "
            f"{usage.get('output_tokens', 0)} out tokens · {r.get('latency_s', 0):.2f} s"
        )
        if r.get("dropped"):
            head += f" · sent without {', '.join(r['dropped'])}"
        lines.append(head)
        messages = r.get("messages") or []
        if messages:
            last = messages[-1]
            lines.append(f"  asked ({len(messages)} messages, last {last.get('role')}):")
            lines.extend("    " + x for x in _clip(str(last.get("content", "")), limit).splitlines())
        if r.get("error"):
            lines.append(f"  error: {r['error']}")
        reply = r.get("reply")
        if reply is not None:
            lines.append("  answered:")
            lines.extend("    " + x for x in _clip(str(reply.get("content", "")), limit).splitlines())
            for call in reply.get("tool_calls") or []:
                lines.append(f"    tool call {call.get('name')}({_clip(json.dumps(call.get('args')), 300)})")
            for call in reply.get("invalid_tool_calls") or []:
                lines.append(f"    invalid tool call {call.get('name')}: {_clip(str(call.get('args')), 300)}")
    return lines


def recoveries(records: Iterable[dict[str, Any]]) -> list[str]:
    """What the run recovered from in the model's answers, one phrase per kind (empty when nothing): answers
    cut at the output-token limit, which were asked for again, and tool calls whose arguments could not be
    read, which were answered with the parse problem. Printed at the end of a run, so it is not silent."""
    cut = invalid = 0
    for r in records:
        reply = r.get("reply") or {}
        cut += r.get("finish_reason") == "length"
        invalid += len(reply.get("invalid_tool_calls") or [])
    out = []
    if cut:
        out.append(
            f"{cut} answer(s) cut off at the output-token limit were asked for again (--max-output-tokens)"
        )
    if invalid:
        out.append(f"{invalid} tool call(s) with unreadable arguments were answered with the parse problem")
    return out
