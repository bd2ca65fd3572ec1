"""What only LangGraph's checkpoints hold: the coder's transcript of each round and the final graph state.

``run.sqlite`` keeps candidates, evaluations and events, but the coder's conversation (its tool calls and
answers) lives in graph state and is reset at each new round, so the checkpoint history is the only place
it survives.  Read through a read-only connection; a missing or unreadable checkpoint file gives an empty
view rather than an error, because a report must still render for a run that crashed early.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHECKPOINT_FILE = "checkpoints.sqlite"


@dataclass(frozen=True)
class CheckpointView:
    """The latest graph state and, per round, the longest coder transcript seen (messages as dicts)."""

    final: dict[str, Any] = field(default_factory=dict)
    transcripts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    error: str | None = None


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)


def latest_state(run_dir: Path, thread_id: str) -> dict[str, Any]:
    """The newest checkpoint's graph state of ``thread_id`` ({} when there is none or it cannot be read)."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = run_dir / CHECKPOINT_FILE
    if not path.is_file():
        return {}
    try:
        with closing(_connect(path)) as conn:
            item = SqliteSaver(conn).get_tuple({"configurable": {"thread_id": thread_id}})
    except (sqlite3.Error, ValueError, TypeError):
        return {}
    return dict(item.checkpoint.get("channel_values") or {}) if item is not None else {}


def read_checkpoints(run_dir: Path, thread_id: str) -> CheckpointView:
    """Walk every checkpoint of ``thread_id`` (newest first) in ``run_dir/checkpoints.sqlite``."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = run_dir / CHECKPOINT_FILE
    if not path.is_file():
        return CheckpointView()
    final: dict[str, Any] = {}
    transcripts: dict[int, list[dict[str, Any]]] = {}
    try:
        with closing(_connect(path)) as conn:
            for item in SqliteSaver(conn).list({"configurable": {"thread_id": thread_id}}):
                values = item.checkpoint.get("channel_values") or {}
                if not final:
                    final = dict(values)
                rnd, messages = values.get("round"), values.get("coder_transcript")
                if (
                    isinstance(rnd, int)
                    and isinstance(messages, list)
                    and len(messages) > len(transcripts.get(rnd, []))
                ):
                    transcripts[rnd] = messages
    except (sqlite3.Error, ValueError, TypeError) as exc:
        return CheckpointView(error=f"checkpoints unreadable: {type(exc).__name__}: {exc}")
    return CheckpointView(final=final, transcripts=transcripts)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content if b)
    return str(content or "")


def transcript_excerpt(messages: list[dict[str, Any]], *, per_message: int = 800, total: int = 6000) -> str:
    """The transcript as readable text: one block per message (its role, text and tool calls), each cut to
    ``per_message`` characters and the whole to ``total``, so a long coder answer cannot swamp the page."""
    blocks: list[str] = []
    for msg in messages:
        data = msg.get("data") or {}
        role = str(msg.get("type") or data.get("type") or "message")
        text = _content_text(data.get("content")).strip()
        calls = data.get("tool_calls") or []
        if calls:
            names = ", ".join(
                f"{c.get('name')}({str(c.get('args', ''))[:120]})" for c in calls if isinstance(c, dict)
            )
            text = f"{text}\n[tool calls: {names}]".strip()
        if len(text) > per_message:
            text = text[:per_message] + f" … [{len(text) - per_message} more characters]"
        blocks.append(f"{role}: {text}")
    out = "\n\n".join(blocks)
    return out if len(out) <= total else out[:total] + " … [cut]"
