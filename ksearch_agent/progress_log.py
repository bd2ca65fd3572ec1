"""Progress of a search as structured log lines, for when stderr is not a terminal (CI, nohup, a pipe).

The live table needs a terminal; elsewhere it would print nothing until the end. Each progress event becomes
one JSON line on stderr with the same figures the table shows: round, action, attempt, status and best.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

import structlog

from ksearch_agent.live_view import LiveView


class ProgressLog:
    """Feeds events to a :class:`LiveView` (which keeps the figures) and logs one line per event."""

    def __init__(self, task: str, stream: TextIO | None = None) -> None:
        self.view = LiveView(task)
        self._log = structlog.wrap_logger(
            structlog.PrintLogger(stream or sys.stderr),
            processors=[structlog.processors.TimeStamper(fmt="iso"), structlog.processors.JSONRenderer()],
            wrapper_class=structlog.BoundLogger,  # progress is not filtered by --log-level
        )

    def on_event(self, ev: dict[str, Any]) -> None:
        v = self.view
        v.on_event(ev)
        self._log.msg(
            str(ev.get("event")),
            task=v.task,
            round=v.round,
            action=v.action,
            attempt=v.attempt,
            status=v.status,
            best=v.best,
            best_candidate=None if v.best_id == "—" else v.best_id,
        )
