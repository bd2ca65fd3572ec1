"""What the evaluator measured for one candidate, as compact text for a prompt.

Repair and the world-model update reason from the same evidence a person would look at: the status and
error per workload, latency against the reference, the roofline and (for tasks with a library opponent) the
library per workload, and the compiler's registers, spills and shared memory per kernel. A geomean alone hides
which shapes are slow and why.
"""

from __future__ import annotations

from ksearch_agent.results import CompileResult, EvalReport


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def workload_table(report: EvalReport) -> str:
    """One line per workload: timing when profiled, else the correctness verdict and error size."""
    prof = report.profile
    if prof is not None and prof.workloads:
        library = any(w.library_latency_ms is not None for w in prof.workloads)
        lines = [
            "workload | status | latency ms | reference ms | speedup | roofline fraction"
            + (" | library ms" if library else "")
        ]
        for w in prof.workloads:
            lines.append(
                f"{w.workload} | {w.status} | {_num(w.latency_ms, '.4f')} | {_num(w.reference_latency_ms, '.4f')}"
                f" | {_num(w.speedup, '.3f')} | {_num(w.roofline_fraction, '.2f')}"
                + (f" | {_num(w.library_latency_ms, '.4f')}" if library else "")
            )
        if prof.geomean_speedup is not None:
            lines.append(f"geomean speedup {prof.geomean_speedup:.3f}x the reference")
        if prof.library_score is not None:
            lines.append(
                f"score against the library {prof.library_score:.1f} "
                "(100 x mean of library / candidate latency; above 100 beats it)"
            )
        return "\n".join(lines)
    corr = report.correctness
    if not corr.workloads:
        return f"correctness {corr.status} ({corr.checked}): {corr.note or 'no per-workload detail'}".strip()
    # The errors' text is in the attempt's log, which the prompt shows beside this table.
    lines = ["workload | status | max abs error | max rel error"]
    for c in corr.workloads:
        lines.append(
            f"{c.workload} | {c.status} | {_num(c.max_abs_error, '.3g')} | {_num(c.max_rel_error, '.3g')}"
        )
    if prof is not None and not prof.measured and prof.note:
        lines.append(f"speed not measured: {prof.note}")
    return "\n".join(lines)


def compile_stats(compiled: CompileResult | None) -> str:
    """Registers, spills and shared memory per compiled kernel (sm_90a), or why there are none."""
    if compiled is None:
        return "compile statistics: not available"
    if not compiled.ok:
        return f"compile {compiled.status}: " + "; ".join(compiled.errors)[:600]
    if not compiled.kernels:
        return f"compile statistics: none reported ({compiled.language})"
    lines = ["kernel | registers | spill stores | spill loads | shared bytes | local bytes"]
    for k in compiled.kernels:
        lines.append(
            f"{k.name} | {_num(k.registers, 'd')} | {_num(k.spill_stores, 'd')} | {_num(k.spill_loads, 'd')}"
            f" | {_num(k.shared_bytes, 'd')} | {_num(k.local_bytes, 'd')}"
        )
    return "\n".join(lines)


def measured_evidence(report: EvalReport | None) -> str:
    """The per-workload table and the compile statistics of one evaluation."""
    if report is None:
        return "(no evaluation: the attempt produced no code to run)"
    return f"{workload_table(report)}\n{compile_stats(report.compile)}"
