"""A K-Search run on the GPU with the playbook policy, recorded for evals/results/.

Runs ``trimul`` (and ``rmsnorm``) through the real graph, engine and run store, then times the best TriMul
kernel against the seed and the PyTorch reference side by side in both protocols (flushed, GPUMode).

Usage (GPU machine, package installed): ``python evals/search_gpu_run.py OUTDIR [ROUNDS [PREVIOUS_BEST.py]]``;
writes ``OUTDIR/search_gpu.json``. With PREVIOUS_BEST, the best kernel is also timed side by side against that
file (an earlier session's best), so progress is a ratio from one run rather than a comparison across runs.
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

from device_info import gpu_and_date

from ksearch_agent.candidate import Candidate
from ksearch_agent.context import SearchContext
from ksearch_agent.engine import Engine
from ksearch_agent.resources import register_engine, store_for
from ksearch_agent.runner import run_search
from ksearch_agent.task import BUNDLED_TASKS_DIR, load_task
from ksearch_agent.world_model import WorldModel


def per_round(run_dir: str) -> list[dict[str, Any]]:
    rows = store_for(run_dir).candidates()
    best, out = 0.0, []
    for r in rows:
        sp = r["geomean_speedup"] or 0.0
        best = max(best, sp if r["status"] == "PASSED" else 0.0)
        out.append({**r, "best_so_far": best})
    return out


def _from_run_dir(run_dir: Path, seconds: float, status: str) -> dict[str, Any]:
    store = store_for(run_dir)
    wm = WorldModel.model_validate(store.snapshots()[-1]["world_model"])
    best = store.best_candidate()
    lineage = (
        [{"id": n.id, "decision": n.decision} for n in wm.lineage(best["action_node"])[1:]] if best else []
    )
    return {
        "seconds": seconds,
        "status": status,
        "run_dir": str(run_dir),
        "best": best,
        "lineage": lineage,
        "confirmation": store.get_meta("confirmed_best"),
        "world_model": wm.snapshot(),
        "outline": wm.outline(),
        "candidates": per_round(str(run_dir)),
    }


def main(out: Path, rounds: int, previous: Path | None = None) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        **gpu_and_date(),
        "command": f"ksearch run trimul --rounds {rounds} --device gpu (via python evals/search_gpu_run.py $OUT {rounds})",
    }
    import torch
    import triton

    record.update(torch=torch.__version__, triton=triton.__version__)
    runs_root = Path(tempfile.mkdtemp(prefix="ksearch-runs-"))
    cache = Path(tempfile.mkdtemp(prefix="ksearch-cache-"))
    env = {**os.environ, "KSEARCH_CACHE_DIR": str(cache)}
    env.pop("KSEARCH_MODEL", None)
    t0 = time.perf_counter()
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "ksearch_agent.cli",
            "run",
            "trimul",
            "--rounds",
            str(rounds),
            "--device",
            "gpu",
            "--runs-root",
            str(runs_root),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    seconds = time.perf_counter() - t0
    print(cli.stdout[-2000:], cli.stderr[-1500:], flush=True)
    run_dir = next(runs_root.glob("trimul-*"))
    record["trimul"] = _from_run_dir(run_dir, seconds, f"exit {cli.returncode}")
    record["trimul"]["cli_stdout"] = cli.stdout[-3000:]
    record["trimul"]["cli_says_playbook"] = "using the playbook policy" in cli.stderr
    submission = out / "trimul_best_submission.py"
    exp = subprocess.run(
        [sys.executable, "-m", "ksearch_agent.cli", "export", str(run_dir), str(submission), "--gpumode"],
        capture_output=True,
        text=True,
        env=env,
    )
    record["export"] = {"exit": exp.returncode, "stdout": exp.stdout[-500:], "stderr": exp.stderr[-500:]}
    ev = subprocess.run(
        [sys.executable, "-m", "ksearch_agent.cli", "eval", "trimul", str(submission), "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    record["eval_exported"] = {
        "exit": ev.returncode,
        "json": json.loads(ev.stdout) if ev.stdout.strip().startswith("{") else ev.stdout[-2000:],
    }
    with Engine(device="gpu", cache_dir=cache) as engine:
        register_engine("gpu", engine)
        t = load_task("trimul")
        best = Candidate.from_path(submission)
        seed = Candidate.from_path(BUNDLED_TASKS_DIR / "trimul" / "seeds" / "triton_simple.py")
        side = engine.profile(t, best, baseline=seed)
        gm = engine.profile(t, best, baseline=seed, protocol="gpumode")
        record["trimul_best_vs_seed"] = {"flushed": side.model_dump(), "gpumode": gm.model_dump()}
        if previous is not None:
            prev = Candidate.from_path(previous)
            record["trimul_best_vs_previous"] = {
                "previous": str(previous),
                "flushed": engine.profile(t, best, baseline=prev).model_dump(),
                "gpumode": engine.profile(t, best, baseline=prev, protocol="gpumode").model_dump(),
            }
        ctx = SearchContext(policy="playbook", device="gpu", runs_root=str(runs_root), max_rounds=4)
        t1 = time.perf_counter()
        final = run_search("rmsnorm", ctx)
        record["rmsnorm"] = _from_run_dir(Path(final["run_dir"]), time.perf_counter() - t1, final["status"])
    (out / "search_gpu.json").write_text(json.dumps(record, indent=1, default=str))
    return record


if __name__ == "__main__":
    rec = main(
        Path(sys.argv[1] if len(sys.argv) > 1 else "evals/results"),
        int(sys.argv[2]) if len(sys.argv) > 2 else 5,
        Path(sys.argv[3]) if len(sys.argv) > 3 else None,
    )
    for task in ("trimul", "rmsnorm"):
        r = rec[task]
        print(f"\n== {task}: {r['status']} in {r['seconds']:.0f}s; best {r['best']}")
        for c in r["candidates"]:
            print(
                f"  round {c['round']} {c['action_node']} {c['origin']:6s} {c['id']} {c['status']:20s} "
                f"speedup {c['geomean_speedup']} best {c['best_so_far']:.3f}"
            )
        print(r["outline"])
    for side_key in ("trimul_best_vs_seed", "trimul_best_vs_previous"):
        for proto, p in rec.get(side_key, {}).items():
            if proto == "previous":
                continue
            print(
                f"trimul best, {proto}: geomean {p['geomean_latency_ms']} ms vs reference {p['geomean_reference_ms']} ms"
            )
            for w in p["workloads"]:
                print(
                    f"   {w['workload'][:36]:36s} {w['latency_ms']:.4f} ms  baseline {w.get('baseline_latency_ms') or 0:.4f}"
                    f"  ref {w['reference_latency_ms']:.4f}  x{w['speedup']:.2f}"
                )
