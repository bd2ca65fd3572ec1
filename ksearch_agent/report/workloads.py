"""One row per workload of an evaluation: correctness and timing side by side, ready to plot or print.

An :class:`~ksearch_agent.results.EvalReport` keeps correctness and timing in two lists; the report's bar
chart and tables want them joined by workload, with every opponent's latency (the reference, the baseline
kernel, and any other ``*_latency_ms`` field a profile carries, e.g. a library kernel) under one name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ksearch_agent.results import EvalReport

_KNOWN_LATENCIES = {"latency_ms", "reference_latency_ms", "baseline_latency_ms", "floor_ms", "iqr_ms"}


@dataclass(frozen=True)
class WorkloadRow:
    """Correctness and timing of one workload for one candidate (``None``: not measured)."""

    workload: str
    status: str
    max_abs_error: float | None = None
    max_rel_error: float | None = None
    latency_ms: float | None = None
    reference_ms: float | None = None
    baseline_ms: float | None = None
    speedup: float | None = None
    roofline_fraction: float | None = None
    opponents_ms: dict[str, float] = field(default_factory=dict)


def workload_rows(report: EvalReport) -> list[WorkloadRow]:
    """Rows in the correctness order, then any workload only the profile has; a timing failure's status
    wins over a correctness pass, as in ``ksearch eval``."""
    timing = {w.workload: w for w in (report.profile.workloads if report.profile else [])}
    names = [w.workload for w in report.correctness.workloads]
    names += [n for n in timing if n not in names]
    correctness = {w.workload: w for w in report.correctness.workloads}
    rows: list[WorkloadRow] = []
    for name in names:
        c, t = correctness.get(name), timing.get(name)
        status = t.status if t is not None and t.status != "PASSED" else (c.status if c else "PASSED")
        extras = {
            k.removesuffix("_latency_ms"): float(v)
            for k, v in ((t.model_extra or {}) if t else {}).items()
            if k.endswith("_latency_ms") and k not in _KNOWN_LATENCIES and isinstance(v, int | float)
        }
        rows.append(
            WorkloadRow(
                workload=name,
                status=status,
                max_abs_error=c.max_abs_error if c else None,
                max_rel_error=c.max_rel_error if c else None,
                latency_ms=t.latency_ms if t else None,
                reference_ms=t.reference_latency_ms if t else None,
                baseline_ms=t.baseline_latency_ms if t else None,
                speedup=t.speedup if t else None,
                roofline_fraction=t.roofline_fraction if t else None,
                opponents_ms=extras,
            )
        )
    return rows
