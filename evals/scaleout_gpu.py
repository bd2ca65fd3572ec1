"""Scale-out on one GPU: ``ksearch run trimul --parallel 2`` against ``--parallel 1`` (local backend).

For each K it runs the real CLI (playbook policy, the same rounds), sampling the GPU with ``nvidia-smi dmon``
throughout, and records candidates evaluated per hour, the GPU's busy fraction (share of 1 s samples with
SM activity, and the mean SM %), and every candidate's measured speedup. Timing honesty under
parallelism is checked two ways: the candidates both runs evaluated (the playbook is deterministic, so
they share ids) must have the same speedup within noise whether timed alone (K=1) or beside another cycle
(K=2, under the per-GPU lease), and the two runs' best kernels are re-timed side by side in one call.

Ray is not exercised here: its wheel (ray 2.60, cp312 manylinux: 79 MB) is larger than the 64 MiB a device
call carries, so the comparison uses the local backend; the Ray backend is covered by the CPU tests.

Each K gets its own fresh cache directory, so K=2 does not load kernels K=1 compiled (the playbook makes the
same candidates in both runs). ``MAX_ATTEMPTS`` caps each cycle (coder try plus repairs) to keep both runs
inside one device call.

Usage (GPU machine, package installed): ``python evals/scaleout_gpu.py OUTDIR [ROUNDS [TASK [MAX_ATTEMPTS]]]``;
writes ``OUTDIR/scaleout_1gpu.json`` and ``OUTDIR/scaleout_1gpu.md``.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from device_info import gpu_and_date

from ksearch_agent.engine import Engine
from ksearch_agent.resources import store_for
from ksearch_agent.task import load_task


class GpuSampler:
    """``nvidia-smi dmon -s u -d 1`` in the background: one line per second with SM and memory %."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["nvidia-smi", "dmon", "-s", "u", "-d", "1", "-i", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def stop(self) -> list[dict[str, float]]:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=30)
        samples = []
        for line in out.splitlines():
            parts = line.split()
            if not parts or line.startswith("#") or not parts[0].isdigit():
                continue
            try:
                samples.append({"sm": float(parts[1]), "mem": float(parts[2])})
            except (IndexError, ValueError):
                continue
        return samples


def busy(samples: list[dict[str, float]]) -> dict[str, Any]:
    if not samples:
        return {"samples": 0, "busy_fraction": None, "mean_sm_pct": None}
    return {
        "samples": len(samples),
        "busy_fraction": sum(1 for s in samples if s["sm"] > 0) / len(samples),
        "mean_sm_pct": statistics.fmean(s["sm"] for s in samples),
    }


def run_once(
    task: str, rounds: int, max_attempts: int, parallel: int, runs_root: Path, env: dict[str, str]
) -> dict[str, Any]:
    sampler = GpuSampler()
    t0 = time.perf_counter()
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "ksearch_agent.cli",
            "run",
            task,
            "--policy",
            "playbook",
            "--rounds",
            str(rounds),
            "--max-attempts",
            str(max_attempts),
            "--device",
            "gpu",
            "--parallel",
            str(parallel),
            "--backend",
            "local",
            "--confirm-top",
            "0",
            "--runs-root",
            str(runs_root),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    seconds = time.perf_counter() - t0
    samples = sampler.stop()
    print(cli.stdout[-1500:], cli.stderr[-1500:], flush=True)
    run_dir = next(runs_root.glob(f"{task}-*"))
    store = store_for(run_dir)
    rows = store.candidates()
    evaluated = [r for r in rows if r["status"] is not None]
    placed = [e for e in store.events() if e["kind"] == "placed"]
    return {
        "parallel": parallel,
        "exit": cli.returncode,
        "seconds": seconds,
        "run_dir": str(run_dir),
        "evaluated": len(evaluated),
        "passed": sum(1 for r in evaluated if r["status"] == "PASSED"),
        "candidates_per_hour": 3600 * len(evaluated) / seconds,
        "gpu": busy(samples),
        "slots": sorted({e["slot"] for e in placed}),
        "devices": store.get_meta("gpu_models"),
        "best": store.best_candidate(),
        "candidates": rows,
        "cli_stdout": cli.stdout[-2000:],
    }


def agreement(one: dict[str, Any], two: dict[str, Any]) -> dict[str, Any]:
    """Candidates both runs timed: the K=2 speedup over the K=1 speedup, per candidate."""
    a = {r["id"]: r["geomean_speedup"] for r in one["candidates"] if r["geomean_speedup"]}
    b = {r["id"]: r["geomean_speedup"] for r in two["candidates"] if r["geomean_speedup"]}
    ratios = {cid: b[cid] / a[cid] for cid in sorted(a.keys() & b.keys())}
    logs = [abs(math.log(r)) for r in ratios.values()]
    return {
        "common_candidates": len(ratios),
        "ratios_k2_over_k1": ratios,
        "median_abs_deviation_pct": 100 * (math.exp(statistics.median(logs)) - 1) if logs else None,
        "max_abs_deviation_pct": 100 * (math.exp(max(logs)) - 1) if logs else None,
    }


def best_side_by_side(task: str, one: dict[str, Any], two: dict[str, Any], cache: Path) -> dict[str, Any]:
    """The two runs' best kernels timed in one call, K=2's against K=1's as the baseline."""
    if not one["best"] or not two["best"]:
        return {"error": "a run has no passing kernel"}
    c1 = store_for(one["run_dir"]).load_candidate(one["best"]["id"])
    c2 = store_for(two["run_dir"]).load_candidate(two["best"]["id"])
    with Engine(device="gpu", cache_dir=cache) as engine:
        prof = engine.profile(load_task(task), c2, baseline=c1)
    speedups = [w.speedup_vs_baseline for w in prof.workloads if w.speedup_vs_baseline]
    return {
        "k1_best": one["best"]["id"],
        "k2_best": two["best"]["id"],
        "same_kernel": one["best"]["id"] == two["best"]["id"],
        "k1_best_recorded_speedup": one["best"]["geomean_speedup"],
        "k2_best_recorded_speedup": two["best"]["geomean_speedup"],
        "k2_over_k1_side_by_side": math.exp(statistics.fmean(math.log(s) for s in speedups))
        if speedups
        else None,
        "profile": prof.model_dump(),
    }


def markdown(rec: dict[str, Any]) -> str:
    lines = [
        f"# Scale-out on one GPU: --parallel 1 vs 2 — {rec['date']}",
        "",
        f"Device: {rec['gpu']}. Command: `{rec['command']}`. Local backend (Ray's wheel is too large to carry "
        "to the device machine; Ray is tested on the CPU).",
        "",
        "| K | exit | seconds | evaluated | passed | candidates/hour | GPU busy fraction | mean SM % | slots | best |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rec["runs"]:
        g = r["gpu"]
        best = r["best"] or {}
        frac = "—" if g["busy_fraction"] is None else f"{g['busy_fraction']:.2f}"
        sm = "—" if g["mean_sm_pct"] is None else f"{g['mean_sm_pct']:.1f}"
        lines.append(
            f"| {r['parallel']} | {r['exit']} | {r['seconds']:.0f} | {r['evaluated']} | {r['passed']} | "
            f"{r['candidates_per_hour']:.0f} | {frac} | {sm} | {', '.join(r['slots'])} | "
            f"{best.get('id')} ({best.get('geomean_speedup')}) |"
        )
    a = rec["agreement"]
    lines += [
        "",
        f"Timing agreement over the {a['common_candidates']} candidates both runs timed (K=2 speedup / K=1 "
        f"speedup): median deviation {a['median_abs_deviation_pct']}%, largest {a['max_abs_deviation_pct']}%.",
    ]
    s = rec["best_side_by_side"]
    if "error" not in s:
        lines.append(
            f"Best kernels: K=1 {s['k1_best']} ({s['k1_best_recorded_speedup']}), K=2 {s['k2_best']} "
            f"({s['k2_best_recorded_speedup']}); timed side by side, K=2's best is "
            f"{s['k2_over_k1_side_by_side']}x as fast as K=1's."
        )
    return "\n".join(lines) + "\n"


def main(out: Path, rounds: int, task: str, max_attempts: int) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    import torch
    import triton

    rec: dict[str, Any] = {
        **gpu_and_date(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "command": f"python evals/scaleout_gpu.py $OUT {rounds} {task} {max_attempts}",
        "rounds": rounds,
        "max_attempts": max_attempts,
        "task": task,
        "runs": [],
    }
    for k in (1, 2):
        env = {**os.environ, "KSEARCH_CACHE_DIR": tempfile.mkdtemp(prefix=f"ksearch-cache-k{k}-")}
        env.pop("KSEARCH_MODEL", None)
        runs_root = Path(tempfile.mkdtemp(prefix=f"ksearch-k{k}-"))
        rec["runs"].append(run_once(task, rounds, max_attempts, k, runs_root, env))
    cache = Path(tempfile.mkdtemp(prefix="ksearch-cache-best-"))
    one, two = rec["runs"]
    rec["speedup_candidates_per_hour"] = two["candidates_per_hour"] / one["candidates_per_hour"]
    rec["agreement"] = agreement(one, two)
    rec["best_side_by_side"] = best_side_by_side(task, one, two, cache)
    (out / "scaleout_1gpu.json").write_text(json.dumps(rec, indent=1, default=str))
    (out / "scaleout_1gpu.md").write_text(markdown(rec))
    return rec


if __name__ == "__main__":
    result = main(
        Path(sys.argv[1] if len(sys.argv) > 1 else "evals/results"),
        int(sys.argv[2]) if len(sys.argv) > 2 else 6,
        sys.argv[3] if len(sys.argv) > 3 else "trimul",
        int(sys.argv[4]) if len(sys.argv) > 4 else 2,
    )
    print(markdown(result))
