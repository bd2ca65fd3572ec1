"""Everything the HTML report of one run shows, read from the run directory into plain data.

Reading and drawing are kept apart: :func:`load_run_report` only reads (the store, the usage history and
the checkpoints), and :mod:`ksearch_agent.report.page` only renders what it is given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ksearch_agent.report.checkpoints import read_checkpoints, transcript_excerpt
from ksearch_agent.report.history import (
    AttemptRecord,
    CurvePoint,
    RoundUsage,
    attempts,
    best_curves,
    usage_per_round,
)
from ksearch_agent.report.rundb import open_run, usage_history
from ksearch_agent.report.summary import RunSummary, final_world_model, run_summary
from ksearch_agent.report.tree import TreeFrame, tree_frames
from ksearch_agent.report.workloads import WorkloadRow, workload_rows


@dataclass(frozen=True)
class RunReport:
    """One run, ready to draw: summary, attempts, curves, the best kernel's workloads, tree frames, usage."""

    summary: RunSummary
    attempts: list[AttemptRecord]
    curves: dict[str, list[CurvePoint]]
    workloads: list[WorkloadRow]
    best_note: str
    frames: list[TreeFrame]
    usage_rounds: list[RoundUsage]
    best_source: str | None = None
    kernel_summary: str = ""
    open_questions: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load_run_report(run_dir: Path) -> RunReport:
    """Read one run directory (``NotARunDirectory`` when it is none).  Parts that cannot be read (the
    checkpoints of a run that crashed early, a best kernel whose files are gone) are left empty and named
    in ``problems``, so the page still renders."""
    run_dir = run_dir.resolve()
    store = open_run(run_dir)
    run_id = str(store.get_meta("run_id") or run_dir.name)
    problems: list[str] = []
    view = read_checkpoints(run_dir, run_id)
    if view.error:
        problems.append(view.error)
    summary = run_summary(run_dir, view.final)
    records = attempts(store, {r: transcript_excerpt(m) for r, m in view.transcripts.items() if m})
    rows: list[WorkloadRow] = []
    note, source = "", None
    if summary.best is not None:
        report = store.get_evaluation(summary.best.candidate_id)
        if report is not None:
            rows = workload_rows(report)
            note = "; ".join(
                n for n in (report.correctness.note, report.profile.note if report.profile else "") if n
            )
        try:
            cand = store.load_candidate(summary.best.candidate_id)
            source = cand.files[cand.entry]
        except (OSError, KeyError, ValueError) as exc:
            problems.append(f"best kernel's sources unreadable: {type(exc).__name__}: {exc}")
    wm = final_world_model(store)
    return RunReport(
        summary=summary,
        attempts=records,
        curves=best_curves(records),
        workloads=rows,
        best_note=note,
        frames=tree_frames(store.snapshots(), summary.best.action_id if summary.best else None),
        usage_rounds=usage_per_round(usage_history(run_dir)),
        best_source=source,
        kernel_summary=wm.kernel_summary if wm else "",
        open_questions=list(wm.open_questions) if wm else [],
        problems=problems,
    )
