"""The K-Search score against a library: 100 x mean over workloads of (library latency / candidate latency).

0 unless every workload passed; None when the library was not timed on every workload (no GPU, no library,
or the library failed), so a missing opponent never reads as a score.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def library_score(workloads: Sequence[Any], *, with_plan: bool = False) -> float | None:
    """Score over timing records with ``status``, ``latency_ms`` and the library's latencies."""
    if not workloads:
        return None
    key = "library_plan_latency_ms" if with_plan else "library_latency_ms"
    library = [getattr(w, key, None) for w in workloads]
    if any(v is None or v <= 0 for v in library):
        return None
    if any(w.status != "PASSED" or not w.latency_ms for w in workloads):
        return 0.0
    ratios = [lib / w.latency_ms for lib, w in zip(library, workloads, strict=True)]
    return 100.0 * sum(ratios) / len(ratios)
