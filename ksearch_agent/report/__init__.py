"""``ksearch report``, ``show --json`` and ``runs``: reading a run directory and drawing it as one HTML page.

Small modules, one concern each: :mod:`.rundb` (opening a run for reading), :mod:`.checkpoints` (transcripts
and final state from LangGraph's checkpoints), :mod:`.history` (attempts, best-so-far curves, usage per
round), :mod:`.workloads`, :mod:`.tree` (the world model as drawn), :mod:`.summary` (the run at a glance),
:mod:`.run_report` (all of it for one page), :mod:`.plots` (matplotlib SVG), :mod:`.tree_html` and
:mod:`.page` (HTML).  This module only writes files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ksearch_agent.report.rundb import NotARunDirectory

__all__ = ["REPORT_FILE", "NotARunDirectory", "write_compare_report", "write_run_report"]

REPORT_FILE = "report.html"


def write_run_report(run_dir: Path, out: Path | None = None) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``run_dir/report.html``) and return its path."""
    from ksearch_agent.report.page import render_run_page
    from ksearch_agent.report.run_report import load_run_report

    page = render_run_page(load_run_report(run_dir))
    target = out if out is not None else run_dir / REPORT_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target


def write_compare_report(run_dirs: Sequence[Path], out: Path) -> Path:
    """Write one page overlaying the best-speedup curves of several runs to ``out`` and return its path."""
    from ksearch_agent.report.page import render_compare_page
    from ksearch_agent.report.run_report import load_run_report

    page = render_compare_page([load_run_report(d) for d in run_dirs])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
