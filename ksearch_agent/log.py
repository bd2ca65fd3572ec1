"""structlog set up once: JSON lines when stderr is not a terminal, a readable console otherwise.

Every record carries ``task``, ``candidate`` and ``stage`` (None when not inside an evaluation); the
engine binds them with ``structlog.contextvars.bound_contextvars``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_configured = False


def _ensure_keys(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in ("task", "candidate", "stage"):
        event.setdefault(key, None)
    return event


def configure_logging(level: str = "INFO", *, json_lines: bool | None = None, force: bool = False) -> None:
    """Configure structlog for the process; later calls are no-ops unless ``force``."""
    global _configured
    if _configured and not force:
        return
    if json_lines is None:
        json_lines = not sys.stderr.isatty()
    renderer: Any = structlog.processors.JSONRenderer() if json_lines else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _ensure_keys,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured = True
