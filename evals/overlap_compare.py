"""Launch overlaps side by side from ``fib_gpu.py --launch-overlap-us A,B`` runs: per evaluation its score and the
median over workloads of the candidate's and the library's interquartile range, to judge whether a longer
overlap steadies the timing (it should narrow candidate IQRs without widening the library's).

Usage: ``python evals/overlap_compare.py RUN.json [RUN.json ...]`` (prints a markdown table).
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any


def label(evaluation: dict[str, Any]) -> str:
    knobs = evaluation.get("knobs") or {}
    return f"{evaluation['task'].split('_')[0]} " + (
        json.dumps(knobs, separators=(",", ":")) if knobs else "seed"
    )


def rows(path: Path) -> list[str]:
    data = json.loads(path.read_text())
    out = []
    for ev in data["tasks"]:
        ws = [w for w in ev["workloads"] if w.get("candidate_iqr_ms") is not None]
        if not ws:
            continue
        cand = statistics.median(w["candidate_iqr_ms"] for w in ws)
        lib = statistics.median(w["library_iqr_ms"] for w in ws if w.get("library_iqr_ms") is not None)
        score = "—" if ev.get("score") is None else f"{ev['score']:.1f}"
        set_us = ev.get("launch_overlap_us")
        overlap = ("task's" if set_us is None else f"{set_us:.0f}") + (
            f", gate {ev['launch_gate_us']:.0f}" if ev.get("launch_gate_us") else ""
        )
        out.append(f"| {path.name} | {label(ev)} | {overlap} | {score} | {cand:.4f} | {lib:.4f} |")
    return out


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    print("| run | evaluation | overlap µs | score | median IQR candidate ms | median IQR library ms |")
    print("|---|---|---|---|---|---|")
    for arg in argv:
        print("\n".join(rows(Path(arg))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
