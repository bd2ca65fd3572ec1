"""Reference times for tasks with ``reference_timing: cached``, kept on the engine side.

A judge times such a reference once and divides every later evaluation by that time. Kept only in the judge,
the time would be measured again by a replacement judge and separately by each slot of a scale-out backend,
and candidates judged in different places would be divided by different times (a Python-loop reference moved
by up to a third between evaluations on the H100). The engine keeps the first time each judge reports and
hands it to its judges with every profile request; the slots of one local backend share one table.
"""

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
