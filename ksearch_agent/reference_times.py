"""Reference times for tasks with ``reference_timing: cached``, the only place they are kept.

Such a reference is timed once and every later evaluation is divided by that time. The engine keeps the first
time a judge reports and sends it with every profile request, so a replacement judge does not time it again
and the slots of one local backend, which share one table, divide by the same time (a Python-loop reference
moved by up to a third between evaluations on the H100)."""

from __future__ import annotations

import threading
from typing import Any


class ReferenceTimes:
    """Thread-safe table of the judge's reference statistics by ``worker.protocol.reference_key``; the first
    time recorded under a key is kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats: dict[str, dict[str, Any]] = {}

    def known(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        with self._lock:
            return {k: dict(self._stats[k]) for k in keys if k in self._stats}

    def record(self, key: str, stats: dict[str, Any]) -> None:
        with self._lock:
            self._stats.setdefault(key, dict(stats))
