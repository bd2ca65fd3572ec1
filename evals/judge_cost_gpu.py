"""What the judge costs on the GPU: `ksearch eval trimul <dispatch seed> --json` end to end, and where the
time goes (issue 15's cost target: ≤ 20 s end to end on the H200).

Runs the real CLI as a subprocess N times: the first with an empty compile cache (cold, as for a new
candidate), the rest with the cache the first one filled (warm, as for a repeated evaluation). For each run it
records the wall time of the command (interpreter start and imports included), the report's own seconds,
and the phases the engine logs on stderr (compile, correctness, profile), then the contestant start-up
time and how long the judge waited for it (the warm spare hides the start when that wait is ~0), measured in
one in-process Engine over two evaluations.

Usage (GPU machine): ``python evals/judge_cost_gpu.py OUT_DIR [RUNS]``; writes OUT_DIR/judge_cost_gpu.{json,md}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "evals"))

from device_info import gpu_and_date  # noqa: E402

SEED = ROOT / "tasks" / "trimul" / "seeds" / "triton_dispatch.py"
PHASES = {
    "compiled": "compile",
    "compile cache hit": "compile",
    "correctness": "correctness",
    "profiled": "profile",
}


def _phases(stderr: str) -> dict[str, float]:
    """Seconds per phase from the engine's JSON log lines (a cache hit counts as 0 s of compiling)."""
    out: dict[str, float] = {}
    for line in stderr.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        phase = PHASES.get(str(rec.get("event")))
        if phase is not None:
            out[phase] = out.get(phase, 0.0) + float(rec.get("seconds") or 0.0)
    return out


def cli_run(cache_dir: Path) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-c",
        "from ksearch_agent.cli import app; app()",
        "--log-level",
        "INFO",
        "eval",
        "trimul",
        str(SEED),
        "--json",
    ]
    env = {**os.environ, "KSEARCH_CACHE_DIR": str(cache_dir)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    wall = time.perf_counter() - t0
    doc = json.loads(proc.stdout) if proc.stdout.strip().startswith("{") else {"status": "NO JSON"}
    return {
        "exit_code": proc.returncode,
        "wall_seconds": wall,
        "report_seconds": doc.get("seconds"),
        "status": doc.get("status"),
        "geomean_latency_ms": doc.get("geomean_latency_ms"),
        "geomean_speedup": doc.get("geomean_speedup"),
        "phases": _phases(proc.stderr),
        "stderr_tail": proc.stderr[-1500:] if proc.returncode else "",
    }


def contestant_startup(cache_dir: Path) -> list[dict[str, Any]]:
    """Two evaluations in one Engine: the contestant's start-up and the judge's wait for it, per evaluation."""
    os.environ["KSEARCH_CACHE_DIR"] = str(cache_dir)
    from ksearch_agent.candidate import Candidate
    from ksearch_agent.engine import Engine
    from ksearch_agent.task import load_task

    task, cand = load_task("trimul"), Candidate.from_path(SEED)
    rows = []
    with Engine(cache_dir=cache_dir) as engine:
        for i in range(2):
            t0 = time.perf_counter()
            report = engine.evaluate(task, cand)
            rows.append(
                {
                    "evaluation": i + 1,
                    "status": report.status,
                    "seconds": time.perf_counter() - t0,
                    **dict(engine.last_contestant),
                }
            )
    return rows


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        "# The judge's cost on the GPU: `ksearch eval trimul` of the dispatch seed, end to end",
        "",
        f"Device: {doc['device']}; {doc['date']}; torch {doc['torch']}, triton {doc['triton']}. "
        f"Command: `{doc['command']}`.",
        "",
        "| run | compile cache | exit | status | wall s | report s | compile s | correctness s | profile s | "
        "geomean ms | speedup |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in doc["cli_runs"]:
        p = r["phases"]
        lines.append(
            f"| {r['run']} | {r['cache']} | {r['exit_code']} | {r['status']} | {r['wall_seconds']:.1f} | "
            f"{(r['report_seconds'] or 0):.1f} | {p.get('compile', 0):.1f} | {p.get('correctness', 0):.1f} | "
            f"{p.get('profile', 0):.1f} | {(r['geomean_latency_ms'] or 0):.4f} | {(r['geomean_speedup'] or 0):.2f} |"
        )
    warm = [r["wall_seconds"] for r in doc["cli_runs"] if r["cache"] == "warm"]
    if warm:
        lines += ["", f"Warm end-to-end wall time: best {min(warm):.1f} s, target ≤ 20 s."]
    lines += ["", "| evaluation in one Engine | seconds | contestant start s | judge waited s | sandbox |"]
    lines.append("|---|---|---|---|---|")
    for c in doc["contestant"]:
        start, waited = c.get("start_seconds"), c.get("waited_seconds")
        lines.append(
            f"| {c['evaluation']} ({c['status']}) | {c['seconds']:.1f} | "
            f"{'-' if start is None else f'{start:.2f}'} | {'-' if waited is None else f'{waited:.2f}'} | "
            f"{json.dumps(c.get('sandbox'))} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "evals" / "results")
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    out.mkdir(parents=True, exist_ok=True)
    import torch
    import triton

    with tempfile.TemporaryDirectory(prefix="ksearch-judge-cost-") as tmp:
        cache = Path(tmp) / "cache"
        cli_runs = []
        for i in range(runs):
            row = {"run": i + 1, "cache": "cold" if i == 0 else "warm", **cli_run(cache)}
            print(json.dumps({k: v for k, v in row.items() if k != "stderr_tail"}), flush=True)
            cli_runs.append(row)
        contestant = contestant_startup(cache)
    where = gpu_and_date()
    doc = {
        "device": where["gpu"],
        "date": where["date"],
        "torch": torch.__version__,
        "triton": triton.__version__,
        "command": f"python evals/judge_cost_gpu.py OUT {runs} (each run: ksearch eval trimul {SEED.relative_to(ROOT)} --json)",
        "cli_runs": cli_runs,
        "contestant": contestant,
    }
    (out / "judge_cost_gpu.json").write_text(json.dumps(doc, indent=1))
    (out / "judge_cost_gpu.md").write_text(markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
