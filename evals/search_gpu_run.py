"""A K-Search run on the GPU with the playbook policy, recorded for evals/results/.

Runs ``trimul`` (and ``rmsnorm``) through the real graph, engine and run store, then times the best TriMul
kernel against the seed and the PyTorch reference side by side in both protocols (flushed, GPUMode).

Usage (GPU machine, package installed): ``python evals/search_gpu_run.py OUTDIR [ROUNDS]``; writes
``OUTDIR/search_gpu.json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def main(out: Path, rounds: int) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                              "command": f"python evals/search_gpu_run.py $OUT {rounds}"}
    import torch
    import triton

    record.update(torch=torch.__version__, triton=triton.__version__)
    record["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                   capture_output=True, text=True).stdout.strip()
    runs_root = tempfile.mkdtemp(prefix="ksearch-runs-")
    with Engine(device="gpu", cache_dir=Path(tempfile.mkdtemp(prefix="ksearch-cache-"))) as engine:
        register_engine("gpu", engine)
        for task, n in (("trimul", rounds), ("rmsnorm", 4)):
            ctx = SearchContext(policy="playbook", device="gpu", runs_root=runs_root, max_rounds=n)
            t0 = time.perf_counter()
            events: list[dict[str, Any]] = []
            final = run_search(task, ctx, on_event=events.append)
            wm = WorldModel.model_validate(final["world_model"])
            record[task] = {"seconds": time.perf_counter() - t0, "status": final["status"], "best": final["best"],
                            "eval_summary": final["eval_summary"], "lineage": final["lineage"],
                            "world_model": final["world_model"], "outline": wm.outline(),
                            "candidates": per_round(final["run_dir"]),
                            "events": [e for e in events if e["event"] in ("cycle_start", "evaluated", "new_best")]}
            print(f"{task}: {final['status']} best {final['best']} in {time.perf_counter() - t0:.0f}s", flush=True)
            if task == "trimul" and final["best"]:
                best = store_for(final["run_dir"]).load_candidate(final["best"]["candidate_id"])
                (out / "trimul_best_submission.py").write_text(best.files[best.entry])
                t = load_task("trimul")
                seed = Candidate.from_path(BUNDLED_TASKS_DIR / "trimul" / "seeds" / "triton_simple.py")
                side = engine.profile(t, best, baseline=seed)
                gm = engine.profile(t, best, baseline=seed, protocol="gpumode")
                record["trimul_best_vs_seed"] = {"flushed": side.model_dump(), "gpumode": gm.model_dump()}
    (out / "search_gpu.json").write_text(json.dumps(record, indent=1, default=str))
    return record


if __name__ == "__main__":
    rec = main(Path(sys.argv[1] if len(sys.argv) > 1 else "evals/results"), int(sys.argv[2]) if len(sys.argv) > 2 else 5)
    for task in ("trimul", "rmsnorm"):
        r = rec[task]
        print(f"\n== {task}: {r['status']} in {r['seconds']:.0f}s")
        for c in r["candidates"]:
            print(f"  round {c['round']} {c['action_node']} {c['origin']:6s} {c['id']} {c['status']:20s} "
                  f"speedup {c['geomean_speedup']} best {c['best_so_far']:.3f}")
        print(r["outline"])
    if "trimul_best_vs_seed" in rec:
        for proto, p in rec["trimul_best_vs_seed"].items():
            print(f"trimul best, {proto}: geomean {p['geomean_latency_ms']} ms vs reference {p['geomean_reference_ms']} ms")
            for w in p["workloads"]:
                print(f"   {w['workload'][:36]:36s} {w['latency_ms']:.4f} ms  seed {w.get('baseline_latency_ms') or 0:.4f}"
                      f"  ref {w['reference_latency_ms']:.4f}  x{w['speedup']:.2f}")
